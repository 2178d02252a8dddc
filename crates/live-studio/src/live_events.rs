//! A show's real-time events as the seller's tools see them: the counts (and the chat)
//! pushed by the server over Server-Sent Events, reconnecting with `Last-Event-ID`.

use crate::client::ApiClient;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use live_core::api::Counts;
use std::time::Duration;
use tokio::sync::watch;

/// Follows show `stream_id`'s events until the returned receiver is dropped; the
/// receiver holds the latest counts.
pub fn follow_counts(client: &ApiClient, stream_id: &str) -> watch::Receiver<Option<Counts>> {
    let (tx, rx) = watch::channel(None);
    let url = client.url(&format!("/api/streams/{stream_id}/events"));
    let http = client.http().clone();
    tokio::spawn(async move {
        let mut last_id: Option<String> = None;
        while !tx.is_closed() {
            let mut req = http
                .get(url.clone())
                .header("Accept", "text/event-stream")
                // A stream, not a call: no overall timeout.
                .timeout(Duration::from_secs(24 * 3600));
            if let Some(id) = &last_id {
                req = req.header("Last-Event-ID", id.as_str());
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let mut events = resp.bytes_stream().eventsource();
                    loop {
                        tokio::select! {
                            () = tx.closed() => return,
                            next = events.next() => match next {
                                Some(Ok(e)) => {
                                    if !e.id.is_empty() {
                                        last_id = Some(e.id.clone());
                                    }
                                    if e.event == "counts"
                                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.data)
                                        && let Ok(c) = serde_json::from_value::<Counts>(v["counts"].clone())
                                    {
                                        let _ = tx.send(Some(c));
                                    }
                                }
                                Some(Err(e)) => {
                                    tracing::debug!("show events interrupted: {e}");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                }
                Ok(resp) => tracing::debug!(status = %resp.status(), "show events refused"),
                Err(e) => tracing::debug!("show events unreachable: {}", e.without_url()),
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
    rx
}
