//! A private nginx-rtmp ingest rendered from `deploy/`, and a GStreamer publisher.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether the tests must fail rather than skip when a part is missing.
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A free TCP port on loopback (bound, then released for a child to take), never the
/// same one twice in a test run. Taken below Linux's ephemeral range (32768 and up),
/// from which `bind(0)` and every outgoing connection draw their ports: one picked
/// there could be taken by a parallel test before the child bound it (an nginx that
/// could not bind was seen so).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Each test process starts at a place of its own.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!(
        "no free port on 127.0.0.1 between {FIRST} and {}",
        FIRST + SPAN
    );
}

/// Fails (with what is missing) when `program` is not installed.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is missing: install the Debian package {package} (scripts/install-deps.sh does)"
    );
}

/// nginx with the RTMP module, on free loopback ports, calling the server's hooks.
pub struct Ingest {
    pub dir: tempfile::TempDir,
    pub rtmp_port: u16,
    pub http_port: u16,
    child: Option<Child>,
    /// This test's share of the machine, held as long as its ingest.
    machine: Option<crate::MachineGuard>,
}

/// The ports an ingest will listen on, chosen before the server that must know them.
#[derive(Clone, Copy, Debug)]
pub struct IngestPorts {
    pub rtmp: u16,
    pub http: u16,
    /// Where nginx relays its publishers' heartbeats to the server.
    pub heartbeat: u16,
}

impl IngestPorts {
    pub fn pick() -> Self {
        Self {
            rtmp: free_port(),
            http: free_port(),
            heartbeat: free_port(),
        }
    }

    pub fn ingest_url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live", self.rtmp)
    }

    pub fn playback_base(&self) -> String {
        format!("http://127.0.0.1:{}/hls", self.http)
    }
}

impl Ingest {
    /// Keeps `guard` (the test's share of the machine) until this ingest is dropped.
    pub(crate) fn hold(&mut self, guard: crate::MachineGuard) {
        self.machine = Some(guard);
    }

    pub fn start(ports: IngestPorts, hook_base: &str, secret: &str) -> Self {
        require("nginx", "nginx libnginx-mod-rtmp");
        let dir = tempfile::tempdir().unwrap();
        let (rtmp_port, http_port) = (ports.rtmp, ports.http);
        let root = crate::repo_root();
        let rendered = Command::new(root.join("scripts/ingest.sh"))
            .arg("render")
            .arg(dir.path())
            .arg(format!("127.0.0.1:{rtmp_port}"))
            .arg(format!("127.0.0.1:{http_port}"))
            .arg(hook_base)
            .arg(secret)
            .arg(format!("127.0.0.1:{}", ports.heartbeat))
            .status()
            .expect("run scripts/ingest.sh");
        assert!(rendered.success(), "rendering the nginx config failed");
        // Tests keep the connection-level log, for failure messages.
        let conf = dir.path().join("nginx.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, text.replace("error.log warn;", "error.log info;")).unwrap();
        let mut ingest = Self {
            dir,
            rtmp_port,
            http_port,
            child: None,
            machine: None,
        };
        ingest.run();
        ingest
    }

    fn run(&mut self) {
        let dir = self.dir.path();
        use std::os::unix::process::CommandExt;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // A group of its own, so master and workers stop together.
            .process_group(0)
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        // Ready when both ports accept connections.
        for _ in 0..100 {
            let up = |p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
            if up(self.rtmp_port) && up(self.http_port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx-rtmp did not start; see {}",
            self.error_log_path().display()
        );
    }

    /// Stops nginx at once, master and workers (like a crash), keeping its directory.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
        // Its worker may outlive the master for a moment.
        let _ = std::fs::remove_file(self.dir.path().join("nginx.pid"));
    }

    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    pub fn publish_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp_port)
    }

    pub fn hls_dir(&self) -> PathBuf {
        self.dir.path().join("hls")
    }

    /// The last lines of nginx's error log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.error_log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `gst-launch-1.0` publishing a live test pattern and tone (H.264 + AAC in FLV).
pub struct Publisher {
    child: Child,
}

impl Publisher {
    pub fn start(url: &str) -> Self {
        require("gst-launch-1.0", "gstreamer1.0-tools");
        let pipeline = format!(
            "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=15/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=300 ! h264parse \
             ! flvmux name=mux streamable=true ! rtmp2sink location={url} \
             audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse ! mux."
        );
        let child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(pipeline.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gst-launch-1.0");
        Self { child }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for it to give up by itself (refused); true if it did.
    pub async fn exits_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if !self.running() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Drops the connection abruptly.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// stunnel terminating TLS in front of a local port (an `rtmps://` ingest, an `https://`
/// server), with a certificate for 127.0.0.1 made for the occasion.
pub struct TlsFront {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl TlsFront {
    /// A front whose certificate is its own (self-signed).
    pub fn start(rtmp_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            dir.path(),
            &format!(
                "{SELF_SIGNED} -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
                 -keyout key.pem -out cert.pem"
            ),
        );
        Self::spawn(dir, rtmp_port)
    }

    /// A front whose certificate for 127.0.0.1 a private authority issued, as a
    /// company's or a marketplace's own: its certificate is `authority(&self)`.
    pub fn with_authority(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path();
        openssl(
            at,
            &format!("{SELF_SIGNED} -subj /CN=Feza-test-authority -keyout ca.key -out ca.pem"),
        );
        openssl(
            at,
            "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out cert.csr",
        );
        std::fs::write(
            at.join("cert.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            at,
            "x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile cert.ext -out cert.pem",
        );
        Self::spawn(dir, port)
    }

    /// The authority's certificate (PEM) of a front made `with_authority`.
    pub fn authority(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// stunnel with `dir`'s cert.pem and key.pem, in front of `port`.
    fn spawn(dir: tempfile::TempDir, behind: u16) -> Self {
        require("stunnel4", "stunnel4");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let port = free_port();
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n\n[front]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{behind}\ncert = {}\nkey = {}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let front = Self {
            port,
            child: Command::new("stunnel4")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start stunnel4"),
            dir,
        };
        for _ in 0..100 {
            if is_listening(port) {
                return front;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("stunnel4 did not start listening on {port}");
    }
}

/// A new key and a certificate it signs itself, for two days.
const SELF_SIGNED: &str = "req -x509 -newkey rsa:2048 -nodes -days 2";

/// Runs `openssl` in `dir` with `args` (split at spaces), which must succeed.
fn openssl(dir: &std::path::Path, args: &str) {
    require("openssl", "openssl");
    let made = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(made.success(), "openssl {args} failed");
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether something listens on TCP `port` (read from /proc, without connecting: a
/// one-shot listener such as `ffmpeg -listen 1` would take a probe for its client).
pub fn is_listening(port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.len() > 3 && cols[1].ends_with(&wanted) && cols[3] == "0A"
            })
        })
    })
}
