//! Helpers for the end-to-end and integration tests: a server on a fresh database
//! (SQLite, or PostgreSQL when `FEZA_TEST_DB=postgres`), a private nginx-rtmp ingest,
//! and a GStreamer publisher.

pub mod ingest;
pub mod probe;

pub mod browser;
pub mod desktop;
pub mod relay;
pub mod sse;

use live_core::api::{StartResponse, Stream};
use live_server::config::Config;
use live_server::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const HOOK_SECRET: &str = "test-hook-secret-0123456789";

/// Which database the suite runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

pub fn db_kind() -> DbKind {
    match std::env::var("FEZA_TEST_DB").as_deref() {
        Ok("postgres") => DbKind::Postgres,
        Ok("sqlite") | Err(_) => DbKind::Sqlite,
        Ok(other) => panic!("FEZA_TEST_DB must be sqlite or postgres, not {other:?}"),
    }
}

/// A database of its own for one test (an SQLite file in `dir`, or a new PostgreSQL
/// database).
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match db_kind() {
        DbKind::Sqlite => format!("sqlite://{}/feza.db", dir.display()),
        DbKind::Postgres => {
            let admin = std::env::var("FEZA_TEST_PG_URL").expect(
                "FEZA_TEST_DB=postgres needs FEZA_TEST_PG_URL (scripts/test.sh starts PostgreSQL and sets it)",
            );
            let name = format!("feza_{}", uuid::Uuid::now_v7().simple());
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&admin)
                .await
                .expect("PostgreSQL for the tests is not reachable");
            sqlx::query(&format!("create database {name}"))
                .execute(&pool)
                .await
                .expect("create a test database");
            pool.close().await;
            let (base, _) = admin
                .rsplit_once('/')
                .expect("FEZA_TEST_PG_URL ends with /DB");
            format!("{base}/{name}")
        }
    }
}

/// Knobs a test may turn.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub reconnect_grace_s: u32,
    pub ingest_wait_s: u32,
    pub ingest_stale_s: u32,
    pub ingest_url: String,
    pub playback_base: String,
    pub upload_max_bytes: u64,
    /// `local`, or an s3:// URL.
    pub storage: String,
    /// Every per-viewer rate limit.
    pub rate_per_min: u32,
    /// Viewer identities one address may make per minute.
    pub viewers_per_min: u32,
    /// How long real-time events are kept.
    pub event_retention: Duration,
    /// Seconds of silence after which a viewer stops counting.
    pub viewer_timeout_s: u32,
    /// Another instance's database (a second server on it), instead of a fresh one.
    pub database_url: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            reconnect_grace_s: 60,
            ingest_wait_s: 600,
            ingest_stale_s: 10,
            ingest_url: "rtmp://127.0.0.1:1935/live".into(),
            playback_base: "http://127.0.0.1:8088/hls".into(),
            upload_max_bytes: 8 << 30,
            storage: "local".into(),
            rate_per_min: 600,
            viewers_per_min: 60_000,
            event_retention: Duration::from_secs(24 * 3600),
            database_url: None,
            viewer_timeout_s: 45,
        }
    }
}

/// A live-server on a free port, its own database, and an HTTP client.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = Config {
        listen: addr,
        database_url: match &opts.database_url {
            Some(url) => url.clone(),
            None => fresh_database(dir.path()).await,
        },
        data_dir: dir.path().join("data"),
        ingest_url: opts.ingest_url.parse().unwrap(),
        playback_base: opts.playback_base.parse().unwrap(),
        public_url: None,
        hook_secret: Some(HOOK_SECRET.into()),
        reconnect_grace_s: opts.reconnect_grace_s,
        ingest_wait_s: opts.ingest_wait_s,
        ingest_stale_s: opts.ingest_stale_s,
        upload_max_bytes: opts.upload_max_bytes,
        upload_expiry_h: 24,
        storage: opts.storage.clone(),
        rate_comments_per_min: opts.rate_per_min,
        rate_reactions_per_min: opts.rate_per_min,
        rate_joins_per_min: opts.rate_per_min,
        rate_heartbeats_per_min: opts.rate_per_min,
        rate_viewers_per_min: opts.viewers_per_min,
        rate_ip_per_min: opts.rate_per_min * 100,
        viewer_timeout_s: opts.viewer_timeout_s,
        event_retention: opts.event_retention,
    };
    let state = live_server::prepare(&cfg).await.expect("server state");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(live_server::serve(state.clone(), listener, async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        state,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    /// Stops this server, as a restart or a crash would, keeping its database.
    pub async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops within 10 s")
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A response's status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    pub fn stream(&self) -> Stream {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("not a Stream ({e}): {}", self.body))
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "unexpected reply: {}", self.body);
        self
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hook_base(&self) -> String {
        format!("{}/hooks/ingest", self.base)
    }

    /// A new seller's token.
    pub async fn seller(&self, name: &str) -> String {
        live_server::auth::create_seller(&self.state.db, name)
            .await
            .expect("create seller")
            .1
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    fn auth(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Reply {
        self.send(Self::auth(self.client.get(self.url(path)), token))
            .await
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Reply {
        self.send(Self::auth(self.client.post(self.url(path)), token).json(&body))
            .await
    }

    pub async fn patch(&self, token: Option<&str>, path: &str, body: Value) -> Reply {
        self.send(Self::auth(self.client.patch(self.url(path)), token).json(&body))
            .await
    }

    /// Creates a show starting now.
    pub async fn create_stream(&self, token: &str, title: &str) -> Stream {
        self.post(Some(token), "/api/streams", json!({ "title": title }))
            .await
            .expect(StatusCode::CREATED)
            .stream()
    }

    pub async fn start(&self, token: &str, id: &str) -> StartResponse {
        let r = self
            .post(
                Some(token),
                &format!("/api/streams/{id}/start"),
                Value::Null,
            )
            .await
            .expect(StatusCode::OK);
        serde_json::from_value(r.body).expect("a StartResponse")
    }

    pub async fn end(&self, token: &str, id: &str, outcome: &str) -> Reply {
        self.post(
            Some(token),
            &format!("/api/streams/{id}/end"),
            json!({ "outcome": outcome }),
        )
        .await
    }

    pub async fn stream(&self, token: Option<&str>, id: &str) -> Stream {
        self.get(token, &format!("/api/streams/{id}"))
            .await
            .expect(StatusCode::OK)
            .stream()
    }

    /// Ids of one whole section, every page walked.
    pub async fn section_ids(&self, section: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/streams?section={section}&limit=100&cursor={c}"),
                None => format!("/api/streams?section={section}&limit=100"),
            };
            let page = self.get(None, &path).await.expect(StatusCode::OK).body;
            for s in page["streams"].as_array().unwrap() {
                ids.push(s["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
    }

    /// Waits for a show to appear in Live Now; its id.
    pub async fn first_live_show(&self, timeout: Duration) -> String {
        eventually("a show to go live", timeout, || async {
            let page = self.get(None, "/api/streams?section=live").await.body;
            page["streams"][0]["id"].as_str().map(str::to_owned)
        })
        .await
    }

    /// Waits for the live show `id` (of the seller with `token`) to reach the ingest
    /// state `state`.
    pub async fn ingest_becomes(
        &self,
        token: &str,
        id: &str,
        state: live_core::IngestState,
        timeout: Duration,
    ) {
        let what = format!("the show's ingest to be {}", state.as_str());
        eventually(&what, timeout, || async {
            let s = self.stream(Some(token), id).await;
            (s.status == live_core::StreamStatus::Live && s.ingest_state == Some(state))
                .then_some(())
        })
        .await;
    }

    /// Calls an ingest hook as nginx-rtmp does (form-encoded).
    pub async fn hook(&self, which: &str, secret: Option<&str>, form: &[(&str, &str)]) -> Reply {
        let url = match secret {
            Some(s) => format!("{}/{which}?secret={s}", self.hook_base()),
            None => format!("{}/{which}", self.hook_base()),
        };
        self.send(self.client.post(url).form(form)).await
    }

    /// nginx-rtmp's `on_publish` for `key` from connection `client`.
    pub async fn publish_hook(&self, key: &str, client: &str) -> Reply {
        self.hook(
            "publish",
            Some(HOOK_SECRET),
            &[
                ("call", "publish"),
                ("app", "live"),
                ("name", key),
                ("type", "live"),
                ("addr", "127.0.0.1"),
                ("clientid", client),
            ],
        )
        .await
    }

    pub async fn publish_done_hook(&self, name: &str, client: &str) -> Reply {
        self.hook(
            "publish_done",
            Some(HOOK_SECRET),
            &[
                ("call", "publish_done"),
                ("app", "live"),
                ("name", name),
                ("addr", "127.0.0.1"),
                ("clientid", client),
            ],
        )
        .await
    }

    pub async fn update_hook(&self, name: &str, client: &str) -> Reply {
        self.hook(
            "update",
            Some(HOOK_SECRET),
            &[
                ("call", "update_publish"),
                ("app", "live"),
                ("name", name),
                ("addr", "127.0.0.1"),
                ("clientid", client),
            ],
        )
        .await
    }

    /// Runs one statement on the test database (to set up what the API cannot, such
    /// as a show scheduled in the past).
    pub async fn sql(&self, statement: &str) {
        sqlx::query(statement)
            .execute(&self.state.db.pool)
            .await
            .expect("test SQL");
    }
}

/// Polls `check` every 100 ms until it returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The machine the shows of a test binary share. A show's stack holds a share of it;
/// a test that measures a show frame by frame (every frame of a camera there) holds it
/// alone: beside another show on these two cores, a frame encoded late is shown twice,
/// which says nothing of the camera's rate.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A test's hold on [`MACHINE`].
pub enum MachineGuard {
    Shared(tokio::sync::RwLockReadGuard<'static, ()>),
    Alone(tokio::sync::RwLockWriteGuard<'static, ()>),
}

/// A server and a private nginx-rtmp ingest wired to each other.
pub async fn stack(reconnect_grace_s: u32) -> (TestApp, ingest::Ingest) {
    let machine = MachineGuard::Shared(MACHINE.read().await);
    stack_holding(reconnect_grace_s, machine).await
}

/// [`stack`], once every other show of this test binary has ended, and with none
/// starting until it is dropped: for a test that counts a show's frames.
pub async fn stack_alone(reconnect_grace_s: u32) -> (TestApp, ingest::Ingest) {
    let machine = MachineGuard::Alone(MACHINE.write().await);
    stack_holding(reconnect_grace_s, machine).await
}

async fn stack_holding(reconnect_grace_s: u32, machine: MachineGuard) -> (TestApp, ingest::Ingest) {
    let ports = ingest::IngestPorts::pick();
    let opts = AppOptions {
        reconnect_grace_s,
        ingest_url: ports.ingest_url(),
        ..Default::default()
    };
    let (app, mut ingest) = stack_with(ports, opts).await;
    ingest.hold(machine);
    (app, ingest)
}

/// A server and a private nginx-rtmp ingest at `ports` that sellers reach at
/// `ingest_url`: through something in front of it (a TLS front, a slow or a silent
/// network).
pub async fn stack_reached_at(
    ports: ingest::IngestPorts,
    ingest_url: String,
) -> (TestApp, ingest::Ingest) {
    let machine = MachineGuard::Shared(MACHINE.read().await);
    let opts = AppOptions {
        ingest_url,
        ..Default::default()
    };
    let (app, mut ingest) = stack_with(ports, opts).await;
    ingest.hold(machine);
    (app, ingest)
}

/// A server with `opts`, playing back from an ingest started at `ports` that calls its
/// hooks.
async fn stack_with(ports: ingest::IngestPorts, opts: AppOptions) -> (TestApp, ingest::Ingest) {
    let app = spawn_app_with(AppOptions {
        playback_base: ports.playback_base(),
        ..opts
    })
    .await;
    let ingest = ingest::Ingest::start(ports, &app.hook_base(), HOOK_SECRET);
    (app, ingest)
}

/// The repository root (for deploy/ and scripts/).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A binary of this workspace, built beside the tests (`cargo build --bins`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --bins`",
        path.display()
    );
    path
}

/// A real recording like the broadcaster's (H.264 + AAC in streamable Matroska) of
/// `seconds` of 1280x720 at `kbps`; `snow` makes every frame costly, so the file is as
/// large as the bitrate says.
pub fn make_recording(path: &std::path::Path, seconds: u32, kbps: u32, snow: bool) {
    let pattern = if snow { "snow" } else { "smpte" };
    make_media(
        path,
        (1280, 720),
        seconds * 30,
        seconds * 48_000 / 1024,
        kbps,
        pattern,
    );
}

/// A recording like the broadcaster's of `frames` at 30 fps in `size`, and
/// `audio_buffers` of 1024 samples of sound at 48 kHz (its sound may end before its
/// picture, as in one a crash cut short).
pub fn make_media(
    path: &std::path::Path,
    (width, height): (u32, u32),
    frames: u32,
    audio_buffers: u32,
    kbps: u32,
    pattern: &str,
) {
    ingest::require("gst-launch-1.0", "gstreamer1.0-tools");
    let description = format!(
        "videotestsrc pattern={pattern} num-buffers={frames} ! video/x-raw,width={width},height={height},framerate=30/1 \
         ! x264enc speed-preset=ultrafast bitrate={kbps} key-int-max=60 ! h264parse ! mux. \
         audiotestsrc num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
         ! avenc_aac ! aacparse ! mux. matroskamux name=mux streamable=true ! filesink location={}",
        path.display()
    );
    let ok = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(description.split_whitespace())
        .status()
        .expect("run gst-launch-1.0")
        .success();
    assert!(ok, "could not make a test recording");
}

/// A show from the test camera at 360p30, saved and kept locally, stats every 0.5 s,
/// running until stopped: what the broadcaster tests start from.
pub fn test_show(
    record_dir: &std::path::Path,
    extra: Vec<live_media::IngestUrl>,
) -> live_studio::GoLive {
    live_studio::GoLive {
        show: live_studio::Show::New {
            title: "Spring sale".into(),
        },
        source: live_media::Source::test(),
        video: live_media::VideoProfile::P360_30,
        encoder: Default::default(),
        extra_ingests: extra,
        tls: Default::default(),
        record_dir: record_dir.to_owned(),
        duration: None,
        outcome: live_core::Outcome::Save,
        stats_every: Duration::from_millis(500),
        queue: None,
        progressive_upload: false,
        keep_local: true,
    }
}

/// The percentage in one of `live-cast`'s upload lines (`upload ID: 0.4 MB of 1.1 MB
/// (36 %), …`).
pub fn upload_percent(line: &str) -> f64 {
    line.split('(')
        .nth(1)
        .and_then(|p| p.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no percentage in {line:?}"))
}

/// A small tmpfs (a disk that can be filled up), unmounted on drop.
pub struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// None (the test skips) where tmpfs cannot be mounted; under CI=true that fails.
    pub fn mount(size_mb: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Self(dir))
        } else {
            assert!(
                !ingest::strict(),
                "mounting a tmpfs failed: the full-disk tests need root (mount -t tmpfs)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here");
            None
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Fills it with a file up to `leave_mb` MB left (0: full); returns that file.
    pub fn fill(&self, leave_mb: u64) -> PathBuf {
        let df = std::process::Command::new("df")
            .args(["-B1M", "--output=avail"])
            .arg(self.path())
            .output()
            .expect("run df");
        let avail: u64 = String::from_utf8_lossy(&df.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df says how much room is left");
        let count = if leave_mb == 0 {
            u64::MAX / (1 << 20)
        } else {
            avail.saturating_sub(leave_mb)
        };
        let filler = self.path().join(format!("filler-{leave_mb}"));
        let _ = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", &format!("count={count}")])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// A folder on a disk that can be made to stall: while stalled, every write waits (a
/// drive waking up or failing, a network folder gone quiet), then goes through. A FUSE
/// file system (tests/tools/stalling-disk.py) over a temporary folder; unmounted on drop.
pub struct StallingDisk {
    mount: tempfile::TempDir,
    _backing: tempfile::TempDir,
    flag: PathBuf,
    process: std::process::Child,
}

impl StallingDisk {
    /// None (the test skips) where it cannot be mounted; under CI=true that fails.
    pub fn mount() -> Option<Self> {
        let (mount, backing) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let flag = backing.path().with_extension("stalled");
        let mut process = std::process::Command::new("/usr/bin/python3")
            .arg(repo_root().join("tests/tools/stalling-disk.py"))
            .args([backing.path(), mount.path(), &flag])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run /usr/bin/python3");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let target = mount.path().to_string_lossy().into_owned();
        loop {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
            if mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(target.as_str()))
            {
                return Some(Self {
                    mount,
                    _backing: backing,
                    flag,
                    process,
                });
            }
            let ended = process.try_wait().ok().flatten().is_some();
            if ended || std::time::Instant::now() > deadline {
                let _ = process.kill();
                let why = process
                    .wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default();
                assert!(
                    !ingest::strict(),
                    "the stalling disk (FUSE: python3-fusepy, /dev/fuse, root) could not be \
                     mounted: {why}"
                );
                eprintln!("SKIPPED: the stalling disk could not be mounted: {why}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.mount.path()
    }

    /// Makes every write wait from now on (true), or lets them go (false).
    pub fn stall(&self, stalled: bool) {
        if stalled {
            std::fs::write(&self.flag, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(&self.flag);
        }
    }

    /// Lets writes go at `kb_per_s` kB/s from now on (a slow disk).
    pub fn slow(&self, kb_per_s: u32) {
        std::fs::write(&self.flag, kb_per_s.to_string()).unwrap();
    }
}

impl Drop for StallingDisk {
    fn drop(&mut self) {
        self.stall(false);
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.mount.path())
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A CPU quota for the processes put in it (a cgroup): a machine too busy for a show.
/// Removed on drop, once what was put in it has ended.
pub struct CpuLimit(PathBuf);

impl CpuLimit {
    /// `percent` of one core. None (the test skips) where no cgroup with a CPU
    /// controller can be made; under CI=true that fails.
    pub fn new(percent: u32) -> Option<Self> {
        let name = format!("feza-test-{}-{}", std::process::id(), percent);
        // cgroup v1's cpu controller, or v2's (enabled for the root's children).
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        let made = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_period_us"), "100000"))
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.cfs_quota_us"), format!("{}", percent * 1000))
                })
                .map(|()| dir)
        } else {
            let root = PathBuf::from("/sys/fs/cgroup");
            let dir = root.join(&name);
            std::fs::write(root.join("cgroup.subtree_control"), "+cpu")
                .and_then(|()| std::fs::create_dir_all(&dir))
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.max"), format!("{} 100000", percent * 1000))
                })
                .map(|()| dir)
        };
        match made {
            Ok(dir) => Some(Self(dir)),
            Err(e) => {
                assert!(
                    !ingest::strict(),
                    "making a cgroup with a CPU quota failed ({e}): the busy-machine tests need \
                     root and a cgroup CPU controller (/sys/fs/cgroup/cpu or cgroup v2's cpu.max)"
                );
                eprintln!("SKIPPED: cannot make a cgroup with a CPU quota here ({e})");
                None
            }
        }
    }

    /// Puts process `pid` (all its threads) under the quota.
    pub fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("cannot put {pid} in {}: {e}", self.0.display()));
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // Whatever is still in it (a test that failed early) goes back to the root.
        let parent = self.0.parent().map(|p| p.join("cgroup.procs"));
        if let (Ok(pids), Some(parent)) =
            (std::fs::read_to_string(self.0.join("cgroup.procs")), parent)
        {
            for pid in pids.lines() {
                let _ = std::fs::write(&parent, pid);
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A PulseAudio sound server of the test's own with one microphone, found by
/// GStreamer's device monitor like any, that can be unplugged and plugged back in
/// mid-show. It hears a room where a 440 Hz tone plays (a null sink with a sine
/// played into it; the microphone is a source made of what that sink plays). With
/// another microphone present, PulseAudio would move a stream whose microphone went
/// to that one; here there is none, as on a computer with a single microphone.
/// Stopped on drop.
pub struct SoundServer {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
}

impl SoundServer {
    /// The microphone's name, as `live-cast devices` lists it.
    pub const MICROPHONE: &str = "feza-test-microphone";

    /// None (the test skips) where PulseAudio is missing; under CI=true that fails.
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("native");
        let daemon = std::process::Command::new("pulseaudio")
            .args([
                "--daemonize=no",
                "-n",
                "--use-pid-file=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--log-target=stderr",
            ])
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix auth-anonymous=1 socket={}",
                socket.display()
            ))
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let daemon = match daemon {
            Ok(d) => d,
            Err(e) => {
                assert!(
                    !ingest::strict(),
                    "starting pulseaudio failed ({e}): the microphone tests need the Debian \
                     packages pulseaudio and pulseaudio-utils (scripts/install-deps.sh)"
                );
                eprintln!("SKIPPED: no pulseaudio here ({e})");
                return None;
            }
        };
        let server = Self { dir, daemon };
        let started = std::time::Instant::now();
        while !server.pactl(&["info"]) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pulseaudio did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server.plug();
        Some(server)
    }

    /// The environment a program needs to reach this server.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            (
                "PULSE_SERVER",
                format!("unix:{}", self.dir.path().join("native").display()),
            ),
            // No cookie, no autospawn, no config from the machine's user.
            ("HOME", self.dir.path().display().to_string()),
        ]
    }

    fn pactl(&self, args: &[&str]) -> bool {
        std::process::Command::new("pactl")
            .args(args)
            .envs(self.env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The microphone appears.
    pub fn plug(&self) {
        let room = "feza-test-room";
        for module in [
            format!("module-null-sink sink_name={room}"),
            format!("module-sine sink={room} frequency=440"),
            format!(
                "module-remap-source master={room}.monitor source_name={}",
                Self::MICROPHONE
            ),
        ] {
            let mut args = vec!["load-module"];
            args.extend(module.split(' '));
            assert!(self.pactl(&args), "pactl could not {args:?}");
        }
    }

    /// The microphone goes away, as a USB one pulled out of a computer that has no
    /// other (the room goes, and the microphone made of it with it).
    pub fn unplug(&self) {
        assert!(
            self.pactl(&["unload-module", "module-null-sink"]),
            "pactl could not remove the test microphone"
        );
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A PipeWire media server of the test's own (with its session manager and a D-Bus
/// of its own), as desktops share cameras and microphones, with one camera and one
/// microphone on it, found by GStreamer's device monitor like any, each of which can be
/// unplugged and plugged back in mid-show. The camera shows colour bars moving (a
/// `videotestsrc` offered to PipeWire as a video source, as a virtual camera is); the
/// microphone hears a tone (PipeWire's own test source). When PipeWire runs,
/// GStreamer lists its devices only. Stopped on drop.
pub struct PipeWire {
    dir: tempfile::TempDir,
    daemons: Vec<std::process::Child>,
    camera: Mutex<Option<std::process::Child>>,
    /// The program holding the microphone (it goes with it).
    microphone: Mutex<Option<std::process::Child>>,
}

impl PipeWire {
    /// The camera's id, as `live-cast devices` lists it.
    pub const CAMERA: &str = "feza-test-camera";
    /// The microphone's id, as `live-cast devices` lists it.
    pub const MICROPHONE: &str = "feza-test-pipewire-microphone";

    /// None (the test skips) where PipeWire is missing; under CI=true that fails.
    pub fn start() -> Option<Self> {
        let missing = ["pipewire", "wireplumber", "pw-cli", "dbus-daemon"]
            .into_iter()
            .find(|p| which(p).is_none());
        if let Some(program) = missing {
            assert!(
                !ingest::strict(),
                "{program} is missing: the camera tests need the Debian packages pipewire, \
                 pipewire-bin, wireplumber, gstreamer1.0-pipewire and dbus (scripts/install-deps.sh)"
            );
            eprintln!("SKIPPED: no {program} here");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let bus = format!("unix:path={}", dir.path().join("bus").display());
        let mut server = Self {
            dir,
            daemons: Vec::new(),
            camera: Mutex::new(None),
            microphone: Mutex::new(None),
        };
        let spawn = |server: &Self, program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .envs(server.env())
                .env("DBUS_SESSION_BUS_ADDRESS", &bus)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
        };
        let dbus = spawn(
            &server,
            "dbus-daemon",
            &[
                "--session",
                "--nofork",
                "--nopidfile",
                &format!("--address={bus}"),
            ],
        );
        server.daemons.push(dbus);
        server.wait_for("the D-Bus of the camera tests", || {
            server.dir.path().join("bus").exists()
        });
        let pipewire = spawn(&server, "pipewire", &[]);
        server.daemons.push(pipewire);
        server.wait_for("pipewire", || {
            server.pw_cli_lists("PipeWire:Interface:Core")
        });
        let wireplumber = spawn(&server, "wireplumber", &[]);
        server.daemons.push(wireplumber);
        // WirePlumber links a program's stream to the device it asks for.
        server.wait_for("wireplumber", || server.pw_cli_lists("WirePlumber"));
        server.plug();
        server.plug_microphone();
        Some(server)
    }

    /// The environment a program needs to reach this server's devices.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("XDG_RUNTIME_DIR", self.dir.path().display().to_string()),
            // No configuration from the machine's user.
            ("HOME", self.dir.path().display().to_string()),
        ]
    }

    fn wait_for(&self, what: &str, ready: impl Fn() -> bool) {
        let started = std::time::Instant::now();
        while !ready() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{what} did not start within 15 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pw_cli_lists(&self, what: &str) -> bool {
        std::process::Command::new("pw-cli")
            .args(["ls"])
            .envs(self.env())
            .stderr(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(what))
    }

    /// The camera appears: its colour bars, moving, 640×360 at 30 frames a second,
    /// raw (as a camera gives it to be shown as it is).
    pub fn plug(&self) {
        self.provide(&["video/x-raw,format=YUY2,width=640,height=360,framerate=30/1"]);
    }

    /// The camera appears giving a small picture slowly, as an old webcam does (or a
    /// laptop's in low light): the same bars, 320×240 at 15 frames a second.
    pub fn plug_small(&self) {
        self.provide(&["video/x-raw,format=YUY2,width=320,height=240,framerate=15/1"]);
    }

    /// The camera appears giving its picture as JPEG only (as many USB cameras give
    /// their larger sizes at full rate): the same bars, 640×360 at 30 frames a second.
    pub fn plug_jpeg(&self) {
        self.provide(&[
            "video/x-raw,width=640,height=360,framerate=30/1",
            "!",
            "jpegenc",
            "!",
            "image/jpeg,width=640,height=360,framerate=30/1",
        ]);
    }

    /// The camera stays listed but sends nothing (stopped), as a camera that another
    /// program holds or that hung.
    pub fn hang(&self) {
        let camera = self.camera.lock().unwrap();
        hang(camera.as_ref().expect("the camera is plugged in"));
    }

    /// The camera goes away, as a USB camera pulled out.
    pub fn unplug(&self) {
        stop(&self.camera);
        self.wait_for("the test camera's going", || {
            !self.pw_cli_lists(Self::CAMERA)
        });
    }

    /// The microphone appears: PipeWire's test source (a tone), made by a `pw-cli`
    /// that holds it while it runs.
    pub fn plug_microphone(&self) {
        use std::io::Write;
        let mut holder = std::process::Command::new("pw-cli")
            .envs(self.env())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pw-cli for the test microphone");
        let create = format!(
            "create-node adapter {{ factory.name=audiotestsrc \
             library.name=audiotestsrc/libspa-audiotestsrc node.name={0} \
             node.description={0} media.class=Audio/Source }}\n",
            Self::MICROPHONE
        );
        holder
            .stdin
            .as_mut()
            .expect("pw-cli's input")
            .write_all(create.as_bytes())
            .expect("ask pw-cli for the test microphone");
        *self.microphone.lock().unwrap() = Some(holder);
        self.wait_for("the test microphone", || {
            self.pw_cli_lists(Self::MICROPHONE)
        });
    }

    /// A microphone of the same name appears that hangs: listed, but its program
    /// stopped (a sound device whose driver hung), so it never starts nor sends: a
    /// virtual source (`pw-loopback`), stopped once listed.
    pub fn plug_hung_microphone(&self) {
        let holder = std::process::Command::new("pw-loopback")
            .arg("--capture-props=media.class=Audio/Sink node.name=feza-test-loopback-in")
            .arg(format!(
                "--playback-props=media.class=Audio/Source node.name={0} node.description={0}",
                Self::MICROPHONE
            ))
            .envs(self.env())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pw-loopback for the hung microphone");
        let mut microphone = self.microphone.lock().unwrap();
        let holder = microphone.insert(holder);
        self.wait_for("the hung microphone", || {
            self.pw_cli_lists(Self::MICROPHONE)
        });
        hang(holder);
    }

    /// The microphone goes away, as a USB headset pulled out.
    pub fn unplug_microphone(&self) {
        stop(&self.microphone);
        self.wait_for("the test microphone's going", || {
            !self.pw_cli_lists(Self::MICROPHONE)
        });
    }

    /// The camera appears, its test picture made into `caps` (a gst-launch chain).
    fn provide(&self, caps: &[&str]) {
        let mut args = vec![
            "-q",
            "videotestsrc",
            "is-live=true",
            "pattern=smpte100",
            "horizontal-speed=4",
            "!",
        ];
        args.extend(caps);
        let props = format!(
            "stream-properties=props,media.class=\"Video/Source\",node.name={0},\
             node.description={0}",
            Self::CAMERA
        );
        args.extend(["!", "pipewiresink", "mode=provide", &props]);
        let device = std::process::Command::new("gst-launch-1.0")
            .args(&args)
            .envs(self.env())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the test camera (gst-launch-1.0)");
        *self.camera.lock().unwrap() = Some(device);
        self.wait_for("the test camera", || self.pw_cli_lists(Self::CAMERA));
    }
}

impl Drop for PipeWire {
    fn drop(&mut self) {
        stop(&self.camera);
        stop(&self.microphone);
        for daemon in self.daemons.iter_mut().rev() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }
}

/// Stops (SIGSTOP) the program holding a test device: the device stays listed but
/// hangs.
fn hang(holder: &std::process::Child) {
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &holder.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(stopped, "could not stop the test device's program");
}

/// Ends the program holding a test device, if one runs (SIGKILL ends a stopped one
/// too): the device goes with it.
fn stop(device: &Mutex<Option<std::process::Child>>) {
    let holder = device
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(mut holder) = holder {
        let _ = holder.kill();
        let _ = holder.wait();
    }
}

/// Where `program` is on the PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}
