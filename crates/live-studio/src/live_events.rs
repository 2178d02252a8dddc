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

/// What happens in a show's chat.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatEvent {
    Comment(live_core::api::Comment),
    /// A comment removed (by the seller, here or elsewhere).
    Removed {
        id: String,
    },
}

/// Follows show `stream_id`'s chat until the returned receiver is dropped: its latest
/// comments first, then each one as it is said or removed (reconnecting with
/// `Last-Event-ID`, so nothing said meanwhile is missed).
pub fn follow_chat(client: &ApiClient, stream_id: &str) -> tokio::sync::mpsc::Receiver<ChatEvent> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let client = client.clone();
    let id = stream_id.to_owned();
    tokio::spawn(async move {
        let url = client.url(&format!("/api/streams/{id}/events"));
        let http = client.http().clone();
        let mut last_id: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        while !tx.is_closed() {
            if last_id.is_none()
                && let Ok(comments) = client.comments(&id).await
            {
                for c in comments {
                    if seen.insert(c.id.clone()) && tx.send(ChatEvent::Comment(c)).await.is_err() {
                        return;
                    }
                }
            }
            let mut req = http
                .get(url.clone())
                .header("Accept", "text/event-stream")
                .timeout(Duration::from_secs(24 * 3600));
            if let Some(last) = &last_id {
                req = req.header("Last-Event-ID", last.as_str());
            }
            if let Ok(resp) = req.send().await.and_then(|r| r.error_for_status()) {
                let mut events = resp.bytes_stream().eventsource();
                loop {
                    let next = tokio::select! {
                        () = tx.closed() => return,
                        next = events.next() => next,
                    };
                    let Some(Ok(e)) = next else { break };
                    if !e.id.is_empty() {
                        last_id = Some(e.id.clone());
                    }
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.data) else {
                        continue;
                    };
                    let said = match e.event.as_str() {
                        "comment" => serde_json::from_value(v["comment"].clone())
                            .ok()
                            .filter(|c: &live_core::api::Comment| seen.insert(c.id.clone()))
                            .map(ChatEvent::Comment),
                        "comment_deleted" => v["id"]
                            .as_str()
                            .map(|id| ChatEvent::Removed { id: id.to_owned() }),
                        // Missed too much: the latest comments again, from the start.
                        "reset" => {
                            last_id = None;
                            break;
                        }
                        _ => None,
                    };
                    if let Some(said) = said
                        && tx.send(said).await.is_err()
                    {
                        return;
                    }
                }
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
    rx
}
