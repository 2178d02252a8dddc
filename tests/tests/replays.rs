//! Saved replays: tus uploads (resumable through a server kill), their refusals, and the
//! replay a browser plays and seeks.

use feza_tests::ingest::free_port;
use feza_tests::probe::{codecs, duration_s};
use feza_tests::{AppOptions, TestApp, eventually, make_recording, spawn_app, spawn_app_with};
use live_core::api::ReplayState;
use live_studio::ApiClient;
use live_studio::upload::{SendOptions, TusClient, send_file};
use reqwest::StatusCode;
use sha2::Digest;
use std::time::Duration;

/// A show of `token`'s seller, live (its ingest confirmed through the hook).
async fn live_show(app: &TestApp, token: &str) -> String {
    let id = app.create_stream(token, "Spring sale").await.id;
    let key = app.start(token, &id).await.ingest.stream_key;
    let r = app.publish_hook(&key, "7").await;
    assert!(r.status.is_redirection(), "publish refused: {r:?}");
    id
}

async fn saved_show(app: &TestApp, token: &str) -> String {
    let id = live_show(app, token).await;
    app.end(token, &id, "save").await.expect(StatusCode::OK);
    id
}

fn tus(app: &TestApp, token: &str) -> TusClient {
    TusClient::new(&ApiClient::new(&app.base, token).unwrap())
}

async fn replay_settles(app: &TestApp, id: &str) -> live_core::api::Replay {
    eventually("the replay to settle", Duration::from_secs(60), || async {
        let r = app.stream(None, id).await.replay?;
        matches!(r.state, ReplayState::Ready | ReplayState::Failed).then_some(r)
    })
    .await
}

fn sha256(path: &std::path::Path) -> Vec<u8> {
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_show_uploaded_with_tus_becomes_a_seekable_replay_that_counts_views() {
    let app = spawn_app().await;
    let token = app.seller("Maria").await;
    let id = saved_show(&app, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("show.mkv");
    make_recording(&recording, 6, 1500, false);

    // As `recent` shows it meanwhile: saved, its replay on its way.
    let before = app.stream(None, &id).await.replay.unwrap();
    assert_eq!(before.state, ReplayState::Uploading);

    let tus = tus(&app, &token);
    let size = std::fs::metadata(&recording).unwrap().len();
    let url = tus.create(&id, Some(size), "show.mkv").await.unwrap();
    let mut seen = Vec::new();
    let opts = SendOptions {
        chunk: 256 * 1024,
        rate_limit: None,
    };
    let sent = send_file(&tus, &url, &recording, true, opts, |p| seen.push(p))
        .await
        .unwrap();
    assert_eq!(sent, size);
    assert_eq!(seen.last().unwrap().percent(), Some(100.0));

    let replay = replay_settles(&app, &id).await;
    assert_eq!(replay.state, ReplayState::Ready, "{replay:?}");
    let duration = replay.duration_s.unwrap();
    assert!((duration - 6.0).abs() < 0.5, "{duration:.2} s");
    let video = replay.video_url.unwrap();
    // The MP4 plays (H.264 + AAC, the show's length) straight from the server…
    assert_eq!(codecs(&video), vec!["aac", "h264"]);
    assert!((duration_s(&video) - 6.0).abs() < 0.5);
    // …seeks with range requests…
    let part = app
        .client
        .get(&video)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().len(), 1000);
    // …and has its thumbnail.
    let thumb = app
        .client
        .get(replay.thumbnail_url.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    // The uploaded bytes are gone once the replay is made.
    let uploads = app.dir.path().join("data/uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);

    // A view is a play from the start: a GET of the whole file, or from byte 0. Seeks
    // (a later range) and HEAD requests are not views.
    let views = || async {
        let n: (i64,) =
            sqlx::query_as("select views_count from saved_streams where stream_id = $1")
                .bind(&id)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        n.0
    };
    let before = views().await;
    assert!(before >= 1, "ffprobe played it from the start: {before}");
    for (method, range, counts) in [
        (reqwest::Method::GET, None, true),
        (reqwest::Method::HEAD, None, false),
        (reqwest::Method::GET, Some("bytes=5000-"), false),
        (reqwest::Method::HEAD, Some("bytes=0-"), false),
        (reqwest::Method::GET, Some("bytes=0-"), true),
    ] {
        let was = views().await;
        let mut req = app.client.request(method.clone(), &video);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        let r = req.send().await.unwrap();
        assert!(
            r.status().is_success(),
            "{method} {range:?}: {}",
            r.status()
        );
        r.bytes().await.unwrap();
        assert_eq!(
            views().await - was,
            i64::from(counts),
            "{method} {range:?} counts as a view: {counts}"
        );
    }
    let replay = app.get(None, &format!("/api/streams/{id}/replay")).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.body["state"], "ready");
}

/// A recording that grows while it is sent (progressive upload while live): each pass
/// sends what was there when it began and ends, with a request per chunk; it never
/// chases the growth with a stream of requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_recording_is_sent_in_passes_that_end() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = spawn_app().await;
    let token = app.seller("Maria").await;
    let id = live_show(&app, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("show.mkv");
    std::fs::write(&recording, vec![1u8; 100_000]).unwrap();
    // Written to all along, a few kB a millisecond, as a recording is.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (recording.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(&[2u8; 2048]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let tus = tus(&app, &token);
    let url = tus.create(&id, None, "show.mkv").await.unwrap();
    let opts = SendOptions::default();
    let mut sent = 0;
    for pass in 0..20 {
        let before = tus.appends();
        sent = tokio::time::timeout(
            Duration::from_secs(5),
            send_file(&tus, &url, &recording, false, opts, |_| {}),
        )
        .await
        .unwrap_or_else(|_| panic!("pass {pass} never ended"))
        .unwrap();
        let requests = tus.appends() - before;
        assert!(requests <= 1, "pass {pass} made {requests} requests");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(sent > 100_000);
    // The last pass, the recording final: all of it, byte for byte.
    let size = std::fs::metadata(&recording).unwrap().len();
    let done = send_file(&tus, &url, &recording, true, opts, |_| {})
        .await
        .unwrap();
    assert_eq!(done, size);
}

/// A recording written to after its upload was made with its length (a disk that held
/// a write past the show's end and took it later): the upload completes with the
/// recording as it was; the server never refuses it for the bytes that came after.
#[tokio::test]
async fn a_recording_that_grew_after_its_length_was_set_still_completes() {
    let app = spawn_app().await;
    let token = app.seller("Maria").await;
    let id = live_show(&app, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("show.mkv");
    std::fs::write(&recording, vec![1u8; 100_000]).unwrap();
    let tus = tus(&app, &token);
    let url = tus.create(&id, Some(100_000), "show.mkv").await.unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&recording)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[2u8; 5_000]))
        .unwrap();
    let done = send_file(&tus, &url, &recording, true, SendOptions::default(), |_| {})
        .await
        .expect("the upload completes");
    assert_eq!(done, 100_000);
    assert_eq!(tus.offset(&url).await.unwrap(), (100_000, Some(100_000)));
}

/// A raw tus request.
fn tus_req(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
}

fn meta(id: &str) -> String {
    use base64::Engine;
    format!(
        "stream_id {}",
        base64::engine::general_purpose::STANDARD.encode(id)
    )
}

async fn create_upload(app: &TestApp, token: &str, id: &str, length: Option<u64>) -> String {
    let mut req = tus_req(app, reqwest::Method::POST, "/api/uploads", token)
        .header("Upload-Metadata", meta(id));
    req = match length {
        Some(l) => req.header("Upload-Length", l),
        None => req.header("Upload-Defer-Length", "1"),
    };
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn offset(app: &TestApp, token: &str, url: &str) -> u64 {
    let r = tus_req(app, reqwest::Method::HEAD, url, token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn patch(
    app: &TestApp,
    token: &str,
    url: &str,
    at: u64,
    body: &'static [u8],
) -> reqwest::RequestBuilder {
    tus_req(app, reqwest::Method::PATCH, url, token)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", at)
        .body(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_refuses_what_it_must_and_keeps_nothing_it_refused() {
    let app = spawn_app_with(AppOptions {
        upload_max_bytes: 1_000_000,
        ..Default::default()
    })
    .await;
    let token = app.seller("Maria").await;
    let other = app.seller("Ahmed").await;
    let id = live_show(&app, &token).await;

    // Discovery.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert_eq!(r.headers()["tus-max-size"], "1000000");
    let ext = r.headers()["tus-extension"].to_str().unwrap().to_owned();
    for e in [
        "creation",
        "creation-defer-length",
        "termination",
        "checksum",
        "expiration",
    ] {
        assert!(ext.contains(e), "{ext}");
    }
    // No protocol version: 412.
    let r = app
        .client
        .post(app.url("/api/uploads"))
        .bearer_auth(&token)
        .header("Upload-Length", 10)
        .header("Upload-Metadata", meta(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    // Another seller's show, a scheduled show, no show named.
    let r = tus_req(&app, reqwest::Method::POST, "/api/uploads", &other)
        .header("Upload-Length", 10)
        .header("Upload-Metadata", meta(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let scheduled = app.create_stream(&token, "Later").await.id;
    let r = tus_req(&app, reqwest::Method::POST, "/api/uploads", &token)
        .header("Upload-Length", 10)
        .header("Upload-Metadata", meta(&scheduled))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("scheduled"));
    // Nor a cancelled show, nor one ended without saving.
    app.post(
        Some(&token),
        &format!("/api/streams/{scheduled}/cancel"),
        serde_json::Value::Null,
    )
    .await
    .expect(StatusCode::OK);
    let discarded = live_show(&app, &token).await;
    app.end(&token, &discarded, "discard")
        .await
        .expect(StatusCode::OK);
    for (show, status) in [(&scheduled, "cancelled"), (&discarded, "ended")] {
        let r = tus_req(&app, reqwest::Method::POST, "/api/uploads", &token)
            .header("Upload-Length", 10)
            .header("Upload-Metadata", meta(show))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "{status}");
        assert!(r.text().await.unwrap().contains(status));
    }
    // Larger than the limit: 413 at creation, before any byte.
    let r = tus_req(&app, reqwest::Method::POST, "/api/uploads", &token)
        .header("Upload-Length", 2_000_000)
        .header("Upload-Metadata", meta(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A deferred-length upload (progressive, while live).
    let url = create_upload(&app, &token, &id, None).await;
    let r = tus_req(&app, reqwest::Method::HEAD, &url, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["upload-defer-length"], "1");
    let r = patch(&app, &token, &url, 0, b"0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["upload-offset"], "10");
    // Wrong offset: 409, and where to resume.
    let r = patch(&app, &token, &url, 3, b"abc").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["upload-offset"], "10");
    // Wrong checksum: 460, nothing stored.
    let r = patch(&app, &token, &url, 10, b"abc")
        .header("Upload-Checksum", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 460);
    assert_eq!(offset(&app, &token, &url).await, 10);
    // The right one (sha1 of "abc") is taken.
    let r = patch(&app, &token, &url, 10, b"abc")
        .header("Upload-Checksum", "sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Not the tus content type: 415.
    let r = tus_req(&app, reqwest::Method::PATCH, &url, &token)
        .header("Upload-Offset", 13)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Past the size limit: 413 before the bytes are stored.
    let big = vec![0u8; 1_100_000];
    let r = tus_req(&app, reqwest::Method::PATCH, &url, &token)
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", 13)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(offset(&app, &token, &url).await, 13);
    // Another seller may not even look.
    let r = tus_req(&app, reqwest::Method::HEAD, &url, &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Discarding the show terminates its upload and deletes its bytes.
    app.end(&token, &id, "discard").await.expect(StatusCode::OK);
    let r = tus_req(&app, reqwest::Method::HEAD, &url, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let uploads = app.dir.path().join("data/uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);

    // Termination by the client.
    let id = live_show(&app, &token).await;
    let url = create_upload(&app, &token, &id, Some(5)).await;
    let r = tus_req(&app, reqwest::Method::DELETE, &url, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);

    // Something that is not a recording: complete, then refused with a reason, and
    // its bytes removed.
    app.end(&token, &id, "save").await.expect(StatusCode::OK);
    let url = create_upload(&app, &token, &id, Some(12)).await;
    let r = patch(&app, &token, &url, 0, b"hello, world")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let replay = replay_settles(&app, &id).await;
    assert_eq!(replay.state, ReplayState::Failed);
    let reason = replay.reason.unwrap();
    assert!(reason.contains("not a usable recording"), "{reason}");
    assert!(
        !reason.contains(&*app.dir.path().to_string_lossy()),
        "names no file of the server: {reason}"
    );
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    // A failed replay is not listed as a recent replay.
    assert!(!app.section_ids("recent").await.contains(&id));
}

/// The server as its own process (so it can be killed), on a fixed port and database.
struct ServerProcess {
    child: std::process::Child,
}

impl ServerProcess {
    fn start(port: u16, dir: &std::path::Path) -> Self {
        let child = std::process::Command::new(feza_tests::workspace_bin("live-server"))
            .arg("serve")
            .env("FEZA_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/feza.db", dir.display()),
            )
            .env("FEZA_DATA_DIR", dir.join("data"))
            .env("FEZA_HOOK_SECRET", feza_tests::HOOK_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start live-server");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "live-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no goodbye
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_the_server_is_killed_and_arrives_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("show.mkv");
    make_recording(&recording, 20, 80_000, true);
    let size = std::fs::metadata(&recording).unwrap().len();
    assert!(size > 150_000_000, "a {size}-byte recording");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    let mut server = ServerProcess::start(port, &data);
    let made = std::process::Command::new(feza_tests::workspace_bin("live-server"))
        .args(["admin", "create-seller", "--name", "Maria"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/feza.db", data.display()),
        )
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&made.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let api = ApiClient::new(&base, &token).unwrap();
    let show = api.create_stream("Spring sale").await.unwrap();
    let key = api.start(&show.id).await.unwrap().ingest.stream_key;
    let hook = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!(
            "{base}/hooks/ingest/publish?secret={}",
            feza_tests::HOOK_SECRET
        ))
        .form(&[
            ("call", "publish"),
            ("app", "live"),
            ("name", key.as_str()),
            ("addr", "127.0.0.1"),
            ("clientid", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(hook.status().is_redirection(), "{hook:?}");

    // Throttled, so the kill lands mid-way.
    let chunk = 4 * 1024 * 1024;
    let tus = TusClient::new(&api);
    let url = tus.create(&show.id, Some(size), "show.mkv").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let upload = {
        let (tus, url, recording) = (tus.clone(), url.clone(), recording.clone());
        tokio::spawn(async move {
            let opts = SendOptions {
                chunk,
                rate_limit: Some(40_000_000),
            };
            send_file(&tus, &url, &recording, true, opts, |p| {
                let _ = tx.send(p.sent);
            })
            .await
        })
    };
    let mut acked = 0;
    while let Some(sent) = rx.recv().await {
        acked = sent;
        if sent * 100 / size >= 40 {
            break;
        }
    }
    server.kill();
    let kill_at = acked * 100 / size;
    assert!((30..=70).contains(&kill_at), "killed at {kill_at} %");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _server = ServerProcess::start(port, &data);
    let done = tokio::time::timeout(Duration::from_secs(120), upload)
        .await
        .expect("the upload finishes after the restart")
        .unwrap()
        .expect("the upload succeeds");
    assert_eq!(done, size);
    // It went on from the server's offset: at most the chunk in flight went twice.
    let resent = tus.bytes_attempted() - size;
    assert!(resent <= chunk as u64, "{resent} bytes sent twice");
    // The server's copy is the recording, byte for byte.
    let stored = std::fs::read_dir(data.join("data/uploads"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(sha256(&stored), sha256(&recording));
}

/// `live-cast` with these arguments against `app`; (success, stdout, stderr).
async fn live_cast(app: &TestApp, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(feza_tests::workspace_bin("live-cast"))
        .args(args)
        .env("FEZA_SERVER", &app.base)
        .env("FEZA_TOKEN", token)
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("run live-cast");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_uploader_resumes_from_its_persisted_queue() {
    let app = spawn_app().await;
    let token = app.seller("Maria").await;
    let id = saved_show(&app, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("show.mkv");
    make_recording(&recording, 10, 40_000, true);
    let size = std::fs::metadata(&recording).unwrap().len();
    let record_dir = dir.path().join("queue");
    let record_dir_arg = record_dir.to_string_lossy().into_owned();

    let mut child = tokio::process::Command::new(feza_tests::workspace_bin("live-cast"))
        .args(["upload", "--stream", &id, "--upload-limit-mbps", "20"])
        .args(["--upload-chunk-mib", "2", "--record-dir", &record_dir_arg])
        .arg(&recording)
        .env("FEZA_SERVER", &app.base)
        .env("FEZA_TOKEN", &token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed when the server holds between 30 % and 70 %.
    let uploads = app.dir.path().join("data/uploads");
    let at_kill = eventually(
        "the upload to pass 40 %",
        Duration::from_secs(30),
        || async {
            let held: u64 = std::fs::read_dir(&uploads)
                .ok()?
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum();
            (held * 100 / size >= 40).then_some(held)
        },
    )
    .await;
    child.kill().await.unwrap();
    let pct = at_kill * 100 / size;
    assert!((30..=70).contains(&pct), "killed at {pct} %");

    // The next run picks it up from the queue and the server's offset.
    let (ok, out, err) = live_cast(
        &app,
        &token,
        &["uploads", "--resume", "--record-dir", &record_dir_arg],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(&format!("replay of {id} is ready")), "{out}");
    let first = out.lines().find(|l| l.starts_with("upload ")).unwrap();
    let resumed_at = feza_tests::upload_percent(first);
    assert!(
        resumed_at >= pct as f64 - 1.0,
        "resumed at {resumed_at} %, killed at {pct} %: {first}"
    );
    let replay = replay_settles(&app, &id).await;
    assert_eq!(replay.state, ReplayState::Ready);
    assert!((replay.duration_s.unwrap() - 10.0).abs() < 0.5);
    // The seller's own file stays (it was not a recording of live-cast's).
    assert!(recording.exists());
    let (_, list, _) = live_cast(&app, &token, &["uploads", "--record-dir", &record_dir_arg]).await;
    assert!(list.contains(&id) && list.contains("done"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_minute_show_uploads_while_live_and_its_replay_plays_and_seeks_in_chromium() {
    let (app, _ingest) = feza_tests::stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let record_dir = dir.path().to_string_lossy().into_owned();
    let show = {
        let (app_base, token, record_dir) = (app.base.clone(), token.clone(), record_dir.clone());
        tokio::spawn(async move {
            let out = tokio::process::Command::new(feza_tests::workspace_bin("live-cast"))
                .args(["go-live", "--title", "Progressive", "--duration", "60s"])
                .args([
                    "--profile",
                    "360p30",
                    "--outcome",
                    "save",
                    "--record-dir",
                    &record_dir,
                ])
                .env("FEZA_SERVER", &app_base)
                .env("FEZA_TOKEN", &token)
                .env("RUST_BACKTRACE", "0")
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let id = app.first_live_show(Duration::from_secs(20)).await;
    // While live, the server already holds most of the recording.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let uploads = app.dir.path().join("data/uploads");
    let held: u64 = std::fs::read_dir(&uploads)
        .unwrap()
        .flatten()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let local = std::fs::metadata(dir.path().join(format!("{id}.mkv")))
        .unwrap()
        .len();
    assert!(
        held > 0 && held + 2_000_000 >= local,
        "server holds {held} of {local} bytes while live"
    );
    assert_eq!(
        app.stream(None, &id).await.status,
        live_core::StreamStatus::Live
    );

    let (ok, out, err) = show.await.unwrap();
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(&format!("replay of {id} is ready")),
        "{out}\n{err}"
    );
    let replay = app.stream(None, &id).await.replay.unwrap();
    assert_eq!(replay.state, ReplayState::Ready);
    let duration = replay.duration_s.unwrap();
    assert!((duration - 60.0).abs() < 1.5, "{duration:.2} s");
    // Sent once the replay was confirmed: the local recording is gone, the MP4 stays.
    assert!(!dir.path().join(format!("{id}.mkv")).exists());
    assert!(dir.path().join(format!("{id}.mp4")).exists());

    let played = feza_tests::browser::play_and_seek(&replay.video_url.unwrap())
        .await
        .expect("Chromium plays the replay");
    assert!((played.duration - duration).abs() < 0.5, "{played:?}");
    assert!(
        (played.seeked_to - duration / 2.0).abs() < 2.5,
        "{played:?}"
    );
    assert!(played.later > played.seeked_to + 0.5, "{played:?}");
}

/// moto's S3-compatible server (scripts/s3-local.sh), with one bucket.
struct LocalS3 {
    port: u16,
    child: std::process::Child,
}

impl LocalS3 {
    async fn start(bucket: &str) -> Self {
        let venv_bin = std::path::Path::new("/var/tmp/feza-moto/bin/moto_server");
        let installed = std::env::var_os("FEZA_MOTO_VENV")
            .map(|v| std::path::PathBuf::from(v).join("bin/moto_server"))
            .unwrap_or_else(|| venv_bin.to_owned());
        assert!(
            installed.exists(),
            "the local S3 server is missing: run scripts/s3-local.sh install (make test does)"
        );
        let port = free_port();
        let child = std::process::Command::new(feza_tests::repo_root().join("scripts/s3-local.sh"))
            .args(["run", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the local S3 server");
        let s3 = Self { port, child };
        let url = format!("http://127.0.0.1:{port}/{bucket}");
        eventually("the local S3 server", Duration::from_secs(30), || async {
            let r = reqwest::Client::new().put(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        s3
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_can_live_in_s3_compatible_object_storage() {
    let s3 = LocalS3::start("feza-replays").await;
    let app = spawn_app_with(AppOptions {
        storage: format!(
            "s3://feza-replays/replays?endpoint=http://127.0.0.1:{}&region=us-east-1\
             &allow_http=true&access_key_id=test&secret_access_key=test",
            s3.port
        ),
        ..Default::default()
    })
    .await;
    let token = app.seller("Maria").await;
    let id = saved_show(&app, &token).await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("show.mkv");
    make_recording(&recording, 4, 1500, false);
    let tus = tus(&app, &token);
    let size = std::fs::metadata(&recording).unwrap().len();
    let url = tus.create(&id, Some(size), "show.mkv").await.unwrap();
    send_file(&tus, &url, &recording, true, SendOptions::default(), |_| {})
        .await
        .unwrap();
    let replay = replay_settles(&app, &id).await;
    assert_eq!(replay.state, ReplayState::Ready, "{replay:?}");

    // The objects are in the bucket, not on the server's disk.
    let listing = reqwest::get(format!(
        "http://127.0.0.1:{}/feza-replays?list-type=2",
        s3.port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(listing.contains(&format!("replays/{id}.mp4")), "{listing}");
    assert!(listing.contains(&format!("replays/{id}.jpg")), "{listing}");
    let work = app.dir.path().join("data/replays-work");
    assert_eq!(
        std::fs::read_dir(&work).map_or(0, |d| d.count()),
        0,
        "nothing left on the server's disk"
    );
    // The replay URL sends players to the object store, which plays and seeks.
    let video = replay.video_url.unwrap();
    let r = app.client.get(&video).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(codecs(&video), vec!["aac", "h264"]);
    assert!((duration_s(&video) - 4.0).abs() < 0.5);
    let part = reqwest::Client::new()
        .get(&video)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().len(), 100);
}
