//! Headless Chromium playing a video as a viewer would: a page served from a tiny
//! local HTTP listener plays it muted, seeks to the middle, and reports back to the
//! same listener where playback stands.

use crate::ingest::require;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the page saw: the video's duration, where the seek landed, and the position
/// 1.5 s of playing later.
#[derive(Debug)]
pub struct Playback {
    pub duration: f64,
    pub seeked_to: f64,
    pub later: f64,
}

const PAGE: &str = r#"<!doctype html><html><body><script>
const report = (o) => fetch('/result?' + new URLSearchParams(o));
const v = document.createElement('video');
v.muted = true; v.preload = 'auto'; v.src = VIDEO_URL;
document.body.appendChild(v);
v.addEventListener('error', () => report({error: 'media error ' + (v.error && v.error.code)}));
v.play().then(() => setTimeout(() => {
  v.addEventListener('seeked', () => {
    const at = v.currentTime;
    setTimeout(() => report({duration: v.duration, seeked: at, later: v.currentTime}), 1500);
  }, {once: true});
  v.currentTime = v.duration / 2;
}, 500)).catch(e => report({error: 'play refused: ' + e}));
</script></body></html>"#;

fn query(line: &str) -> HashMap<String, String> {
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let q = target.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

/// Plays `video_url` in headless Chromium, seeks to its middle, and reports.
pub async fn play_and_seek(video_url: &str) -> Result<Playback, String> {
    require("chromium", "chromium");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = PAGE.replace("VIDEO_URL", &format!("{video_url:?}"));
    let profile = tempfile::tempdir().unwrap();
    let mut browser = tokio::process::Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start chromium: {e}"))?;
    let serve = async {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(socket);
            let mut first = String::new();
            reader.read_line(&mut first).await.unwrap_or(0);
            // The rest of the request head.
            let mut line = String::new();
            while reader.read_line(&mut line).await.unwrap_or(0) > 2 {
                line.clear();
            }
            let mut socket = reader.into_inner();
            if first.starts_with("GET /result") {
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
                return query(&first);
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(45), serve).await;
    let _ = browser.kill().await;
    let result = result.map_err(|_| "the page never reported back".to_owned())?;
    if let Some(e) = result.get("error") {
        return Err(e.clone());
    }
    let num = |k: &str| {
        result
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("the page did not report {k}: {result:?}"))
    };
    Ok(Playback {
        duration: num("duration")?,
        seeked_to: num("seeked")?,
        later: num("later")?,
    })
}
