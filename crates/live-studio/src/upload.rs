//! Sending a recording to the server's tus 1.0.0 endpoint: created once, then appended
//! chunk by chunk (each with its SHA-256), always from the offset the server reports,
//! so a broken connection, a restarted server or a restarted broadcaster resumes where
//! the server's copy ends. A growing recording (progressive upload while live) is sent
//! as it grows, its length given only once it is final. Each request's body goes out in
//! small pieces, paced to the seller's limit and counted, so a limit keeps the uplink
//! free at every moment (not only on average) and progress moves while a chunk is sent.

use crate::client::ApiClient;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Digest;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const TUS: &str = "1.0.0";

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot reach the server: {0}")]
    Network(String),
    #[error("the server refused the upload ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the recording {path} cannot be read: {reason}")]
    File { path: String, reason: String },
}

impl UploadError {
    /// Worth trying again later (the network, or the server having a bad moment).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            // 409: the offset moved (a request that half-arrived); 423/5xx: busy or down.
            Self::Refused { status, .. } => {
                matches!(status, 409 | 423 | 429 | 460) || *status >= 500
            }
            Self::File { .. } => false,
        }
    }
}

/// How a file is sent.
#[derive(Clone, Copy, Debug)]
pub struct SendOptions {
    /// Bytes per request.
    pub chunk: usize,
    /// At most this many bytes a second (None: as fast as the link goes).
    pub rate_limit: Option<u64>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            chunk: 8 * 1024 * 1024,
            rate_limit: None,
        }
    }
}

/// Where an upload stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Bytes the server has confirmed.
    pub sent: u64,
    /// Bytes of the request under way already handed to the connection (not confirmed
    /// yet: a cut connection sends them again).
    pub in_flight: u64,
    /// Known once the recording is final.
    pub total: Option<u64>,
    /// Bytes per second over this run.
    pub rate: f64,
}

impl Progress {
    /// Bytes on their way or arrived.
    pub fn reached(&self) -> u64 {
        self.sent + self.in_flight
    }

    pub fn percent(&self) -> Option<f64> {
        self.total.map(|t| {
            if t == 0 {
                100.0
            } else {
                self.reached().min(t) as f64 * 100.0 / t as f64
            }
        })
    }

    pub fn eta(&self) -> Option<Duration> {
        let left = self.total?.saturating_sub(self.reached());
        (self.rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / self.rate))
    }

    /// `41.9 MB of 200.0 MB (21 %), 12.3 MB/s, 13 s left`.
    pub fn line(&self) -> String {
        let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
        let mut s = mb(self.reached());
        if let (Some(t), Some(p)) = (self.total, self.percent()) {
            s.push_str(&format!(" of {} ({p:.0} %)", mb(t)));
        }
        if self.rate >= 1e6 {
            s.push_str(&format!(", {:.1} MB/s", self.rate / 1e6));
        } else {
            s.push_str(&format!(", {:.0} kB/s", self.rate / 1e3));
        }
        if let Some(eta) = self.eta() {
            s.push_str(&format!(", {} s left", eta.as_secs()));
        }
        s
    }
}

/// tus requests against the server the client talks to.
#[derive(Clone)]
pub struct TusClient {
    api: ApiClient,
    /// Bytes put on the wire, acknowledged or not (what resuming costs).
    attempted: Arc<AtomicU64>,
    /// PATCH requests made (what a pass over a growing recording costs the server).
    appends: Arc<AtomicU64>,
}

fn network(e: reqwest::Error) -> UploadError {
    let (why, untrusted) = crate::client::cause(e);
    UploadError::Network(if untrusted {
        format!("{why}; {}", crate::client::UNTRUSTED_HINT)
    } else {
        why
    })
}

async fn refused(resp: reqwest::Response) -> UploadError {
    let status = resp.status().as_u16();
    let message = resp.text().await.unwrap_or_default();
    UploadError::Refused {
        status,
        message: message.trim().to_owned(),
    }
}

fn header_u64(resp: &reqwest::Response, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

impl TusClient {
    pub fn new(api: &ApiClient) -> Self {
        Self {
            api: api.clone(),
            attempted: Default::default(),
            appends: Default::default(),
        }
    }

    /// Bytes this client has sent in PATCH requests, including ones cut off.
    pub fn bytes_attempted(&self) -> u64 {
        self.attempted.load(Ordering::Relaxed)
    }

    /// PATCH requests this client has made.
    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::Relaxed)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.api
            .http()
            .request(method, self.api.url(url))
            .bearer_auth(self.api.token())
            .header("Tus-Resumable", TUS)
    }

    /// A new upload for `stream_id`; its length now, or (None) later. Returns its URL.
    pub async fn create(
        &self,
        stream_id: &str,
        length: Option<u64>,
        filename: &str,
    ) -> Result<String, UploadError> {
        let meta = format!(
            "stream_id {},filename {}",
            B64.encode(stream_id),
            B64.encode(filename)
        );
        let mut req = self
            .request(reqwest::Method::POST, "/api/uploads")
            .header("Upload-Metadata", meta);
        req = match length {
            Some(l) => req.header("Upload-Length", l),
            None => req.header("Upload-Defer-Length", "1"),
        };
        let resp = req.send().await.map_err(network)?;
        if resp.status().as_u16() != 201 {
            return Err(refused(resp).await);
        }
        resp.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| self.api.url(l).to_string())
            .ok_or_else(|| UploadError::Refused {
                status: 201,
                message: "the server created the upload but did not say where".into(),
            })
    }

    /// (bytes the server has, the upload's length if known).
    pub async fn offset(&self, url: &str) -> Result<(u64, Option<u64>), UploadError> {
        let resp = self
            .request(reqwest::Method::HEAD, url)
            .send()
            .await
            .map_err(network)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(UploadError::Refused {
                status,
                message: match status {
                    404 | 410 => "the upload is gone from the server".into(),
                    403 => "the upload belongs to another seller".into(),
                    _ => "the server would not say how far the upload is".into(),
                },
            });
        }
        let offset = header_u64(&resp, "upload-offset").ok_or_else(|| UploadError::Refused {
            status: 200,
            message: "the server did not send Upload-Offset".into(),
        })?;
        Ok((offset, header_u64(&resp, "upload-length")))
    }

    /// Appends `data` at `offset`; `length` declares the final size (deferred uploads).
    /// The body goes out paced to `rate_limit` bytes a second (when set), each piece
    /// counted into `on_wire` as the connection takes it. Returns the new offset.
    pub async fn append(
        &self,
        url: &str,
        offset: u64,
        data: Vec<u8>,
        length: Option<u64>,
        rate_limit: Option<u64>,
        on_wire: Arc<AtomicU64>,
    ) -> Result<u64, UploadError> {
        let digest = B64.encode(sha2::Sha256::digest(&data));
        self.attempted
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.appends.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .request(reqwest::Method::PATCH, url)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Content-Length", data.len())
            .header("Upload-Offset", offset)
            .header("Upload-Checksum", format!("sha256 {digest}"))
            // A chunk on a slow uplink takes longer than an API call.
            .timeout(Duration::from_secs(600));
        if let Some(l) = length {
            req = req.header("Upload-Length", l);
        }
        let resp = req
            .body(paced_body(data, rate_limit, on_wire))
            .send()
            .await
            .map_err(network)?;
        if resp.status().as_u16() != 204 {
            return Err(refused(resp).await);
        }
        header_u64(&resp, "upload-offset").ok_or_else(|| UploadError::Refused {
            status: 204,
            message: "the server did not send Upload-Offset".into(),
        })
    }

    pub async fn terminate(&self, url: &str) -> Result<(), UploadError> {
        let resp = self
            .request(reqwest::Method::DELETE, url)
            .send()
            .await
            .map_err(network)?;
        match resp.status().as_u16() {
            204 | 404 | 410 => Ok(()),
            _ => Err(refused(resp).await),
        }
    }
}

/// Pieces a request body is handed to the connection in: 64 KiB, or an eighth of a
/// second at a lower limit (4 KiB at least), so pacing and progress stay smooth.
fn piece_size(rate_limit: Option<u64>) -> usize {
    rate_limit.map_or(64 * 1024, |l| (l / 8).clamp(4 * 1024, 64 * 1024) as usize)
}

/// `data` as a streamed body: piece by piece, each counted into `on_wire` as the
/// connection takes it, none before its time at `rate_limit` bytes a second.
fn paced_body(data: Vec<u8>, rate_limit: Option<u64>, on_wire: Arc<AtomicU64>) -> reqwest::Body {
    reqwest::Body::wrap_stream(paced_pieces(data, rate_limit, on_wire))
}

fn paced_pieces(
    data: Vec<u8>,
    rate_limit: Option<u64>,
    on_wire: Arc<AtomicU64>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let data = bytes::Bytes::from(data);
    let piece = piece_size(rate_limit);
    let started = tokio::time::Instant::now();
    futures_util::stream::unfold(0usize, move |at| {
        let (data, on_wire) = (data.clone(), on_wire.clone());
        async move {
            if at >= data.len() {
                return None;
            }
            if let Some(limit) = rate_limit {
                let due = Duration::from_secs_f64(at as f64 / limit.max(1) as f64);
                tokio::time::sleep_until(started + due).await;
            }
            let end = (at + piece).min(data.len());
            on_wire.fetch_add((end - at) as u64, Ordering::Relaxed);
            Some((Ok(data.slice(at..end)), end))
        }
    })
}

/// How often progress is heard while a request is under way.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn file_error(path: &Path, e: impl std::fmt::Display) -> UploadError {
    UploadError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Reads up to `max` bytes of `path` from `at`.
async fn read_at(path: &Path, at: u64, max: usize) -> Result<Vec<u8>, UploadError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| file_error(path, e))?;
    f.seek(std::io::SeekFrom::Start(at))
        .await
        .map_err(|e| file_error(path, e))?;
    let mut buf = Vec::with_capacity(max);
    (&mut f)
        .take(max as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| file_error(path, e))?;
    Ok(buf)
}

/// Sends what `path` holds beyond the server's offset. With `finished`, the file is
/// final: its length is declared and the upload completes; otherwise (a recording
/// still growing) everything on disk now is sent and the length left open.
/// Transient failures are retried with backoff, resuming from the server's offset;
/// `progress` hears after every chunk, and every second while one is under way.
pub async fn send_file(
    tus: &TusClient,
    url: &str,
    path: &Path,
    finished: bool,
    opts: SendOptions,
    mut progress: impl FnMut(Progress),
) -> Result<u64, UploadError> {
    let started = Instant::now();
    let mut sent_this_run = 0u64;
    let mut failures = 0u32;
    loop {
        let attempt = async {
            let (mut offset, declared) = tus.offset(url).await?;
            let mut size = tokio::fs::metadata(path)
                .await
                .map_err(|e| file_error(path, e))?
                .len();
            // A final recording is what it was when its length was declared: bytes
            // written after (a disk that held a write past the show's end) are not
            // sent, and never make the server refuse the rest.
            if let Some(declared) = declared.filter(|d| finished && size > *d) {
                tracing::warn!(
                    "{} grew after its upload's length was set ({declared} bytes); that much is sent",
                    path.display()
                );
                size = declared;
            }
            if offset > size {
                return Err(UploadError::Refused {
                    status: 409,
                    message: format!(
                        "the server holds {offset} bytes, more than the recording's {size}: it is not this recording"
                    ),
                });
            }
            let total = if finished { Some(size) } else { declared };
            loop {
                let done = offset == size;
                if done && (!finished || declared == Some(size)) {
                    return Ok(offset);
                }
                // Up to the size seen at the start of this pass: a recording that grows
                // meanwhile is sent on the next pass, never chased (reading past that
                // size, the offset would pass it and the pass never end).
                let want = (size - offset).min(opts.chunk as u64) as usize;
                let data = read_at(path, offset, want).await?;
                let n = data.len() as u64;
                if n < want as u64 {
                    return Err(file_error(
                        path,
                        "it is shorter than when its upload began (was it replaced?)",
                    ));
                }
                // The last request of a finished file declares its length (an empty one
                // when everything was sent while it grew).
                let declare =
                    (finished && declared.is_none() && offset + n == size).then_some(size);
                let on_wire = Arc::new(AtomicU64::new(0));
                let request =
                    tus.append(url, offset, data, declare, opts.rate_limit, on_wire.clone());
                tokio::pin!(request);
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + PROGRESS_EVERY,
                    PROGRESS_EVERY,
                );
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let rate = |bytes: u64| bytes as f64 / started.elapsed().as_secs_f64().max(1e-3);
                offset = loop {
                    tokio::select! {
                        confirmed = &mut request => break confirmed?,
                        _ = tick.tick() => {
                            let in_flight = on_wire.load(Ordering::Relaxed).min(n);
                            progress(Progress {
                                sent: offset,
                                in_flight,
                                total,
                                rate: rate(sent_this_run + in_flight),
                            });
                        }
                    }
                };
                sent_this_run += n;
                progress(Progress {
                    sent: offset,
                    in_flight: 0,
                    total,
                    rate: rate(sent_this_run),
                });
                if declare.is_some() {
                    return Ok(offset);
                }
            }
        };
        match attempt.await {
            Ok(offset) => return Ok(offset),
            Err(e) if e.is_transient() && failures < 30 => {
                failures += 1;
                let wait = Duration::from_secs(1 << failures.min(5)).min(Duration::from_secs(30));
                tracing::warn!("upload interrupted ({e}); resuming in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_the_request_under_way_and_says_slow_rates_in_kb() {
        let p = Progress {
            sent: 1_000_000,
            in_flight: 500_000,
            total: Some(3_000_000),
            rate: 50_000.0,
        };
        assert_eq!(p.line(), "1.5 MB of 3.0 MB (50 %), 50 kB/s, 30 s left");
        let fast = Progress {
            rate: 12_300_000.0,
            ..p
        };
        assert_eq!(fast.line(), "1.5 MB of 3.0 MB (50 %), 12.3 MB/s, 0 s left");
    }

    #[tokio::test]
    async fn a_paced_body_keeps_to_the_limit_piece_by_piece() {
        use futures_util::StreamExt;
        let on_wire = Arc::new(AtomicU64::new(0));
        let pieces = paced_pieces(vec![7; 100_000], Some(200_000), on_wire.clone());
        let mut pieces = std::pin::pin!(pieces);
        let started = std::time::Instant::now();
        let mut got = 0;
        while let Some(piece) = pieces.next().await {
            let piece = piece.unwrap();
            // Never ahead of 200 kB/s by more than the piece just taken (25 kB).
            assert!(piece.len() <= 25_000, "{}", piece.len());
            got += piece.len();
            let allowed = started.elapsed().as_secs_f64() * 200_000.0 + 25_000.0;
            assert!(
                got as f64 <= allowed,
                "{got} B after {:?}",
                started.elapsed()
            );
            assert_eq!(on_wire.load(Ordering::Relaxed), got as u64);
        }
        assert_eq!(got, 100_000);
        // The last piece leaves at 75 kB's time (0.375 s), not at once.
        assert!(started.elapsed() >= Duration::from_millis(370));
    }

    #[test]
    fn pieces_are_an_eighth_of_a_second_at_a_low_limit() {
        assert_eq!(piece_size(None), 64 * 1024);
        assert_eq!(piece_size(Some(20_000)), 4 * 1024);
        assert_eq!(piece_size(Some(200_000)), 25_000);
        assert_eq!(piece_size(Some(40_000_000)), 64 * 1024);
    }
}
