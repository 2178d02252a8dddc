//! A small Server-Sent Events reader for tests: connects (optionally resuming with
//! `Last-Event-ID`) and hands out events as they arrive.

use futures_util::StreamExt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub kind: String,
    pub data: serde_json::Value,
}

pub struct SseClient {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl SseClient {
    pub async fn connect(url: &str, last_event_id: Option<i64>) -> Self {
        Self::connect_with(&reqwest::Client::new(), url, last_event_id).await
    }

    /// As [`Self::connect`], on `http`'s connections (many clients, one pool).
    pub async fn connect_with(
        http: &reqwest::Client,
        url: &str,
        last_event_id: Option<i64>,
    ) -> Self {
        let mut req = http.get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("connect to the event stream");
        assert_eq!(resp.status(), reqwest::StatusCode::OK, "{url}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or None after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, "message".to_owned(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive
                }
                return Some(SseEvent {
                    id,
                    kind,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }

    /// The next event of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await?;
            if e.kind == kind {
                return Some(e);
            }
        }
    }
}
