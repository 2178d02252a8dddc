//! The desktop app under test as a seller runs it: the real `feza-live` binary on a
//! display of its own (Xvfb), in a D-Bus session with a real Secret Service
//! (gnome-keyring, for the keyring), driven through WebDriver (tauri-driver in front of
//! Debian's WebKitWebDriver). Its home, config and data folders are a fresh temporary
//! folder.

use crate::ingest::require;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where tauri-driver is installed (scripts/app-deps.sh driver).
fn tauri_driver() -> PathBuf {
    let root = std::env::var("FEZA_TOOLS").unwrap_or_else(|_| "/var/tmp/feza-tools".into());
    let path = Path::new(&root).join("bin/tauri-driver");
    assert!(
        path.exists(),
        "tauri-driver is missing at {}: scripts/app-deps.sh driver installs it",
        path.display()
    );
    path
}

/// A free TCP port on the loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A desktop session: a display, a session bus with a keyring, and a WebDriver
/// server that starts the app.
pub struct Desktop {
    pub home: tempfile::TempDir,
    display: String,
    bus: String,
    driver_port: u16,
    xvfb: Child,
    session: Child,
}

impl Desktop {
    pub fn start() -> Self {
        for (program, package) in [
            ("Xvfb", "xvfb"),
            ("dbus-run-session", "dbus-x11"),
            ("gnome-keyring-daemon", "gnome-keyring"),
            ("secret-tool", "libsecret-tools"),
            ("WebKitWebDriver", "webkit2gtk-driver"),
        ] {
            require(program, package);
        }
        let driver = tauri_driver();
        let home = tempfile::tempdir().expect("a home folder");
        // Free, and never the same for two desktops of this process starting at once.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(90);
        let display_number =
            std::iter::from_fn(|| Some(NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)))
                .take(200)
                .find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
                .expect("a free display");
        let display = format!(":{display_number}");
        use std::os::unix::process::CommandExt;
        let xvfb = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display_number}"));
        wait_for("Xvfb's display", Duration::from_secs(10), || {
            socket.exists()
        });
        let runtime = home.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let bus_file = home.path().join("bus");
        let driver_port = free_port();
        let native_port = free_port();
        // The keyring unlocked with a password (an empty one makes it ask on screen).
        let script = r#"echo "$DBUS_SESSION_BUS_ADDRESS" > "$1"
eval "$(printf %s feza-test | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
exec "$2" --port "$3" --native-port "$4" --native-driver /usr/bin/WebKitWebDriver"#;
        // A process group of its own: the bus, the keyring, the drivers and the app
        // all end with it.
        let session = Command::new("dbus-run-session")
            .args(["--", "bash", "-c", script, "session"])
            .process_group(0)
            .arg(&bus_file)
            .arg(&driver)
            .args([driver_port.to_string(), native_port.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .env("XDG_CACHE_HOME", home.path().join(".cache"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DISPLAY", &display)
            .env("GDK_BACKEND", "x11")
            .env("LANG", "C.UTF-8")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-run-session");
        wait_for("the session bus", Duration::from_secs(10), || {
            std::fs::read_to_string(&bus_file).is_ok_and(|s| !s.trim().is_empty())
        });
        let bus = std::fs::read_to_string(&bus_file)
            .unwrap()
            .trim()
            .to_owned();
        wait_for("tauri-driver", Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_ok()
        });
        Self {
            home,
            display,
            bus,
            driver_port,
            xvfb,
            session,
        }
    }

    /// Starts the app (the binary built from src-tauri) and drives its window.
    pub async fn open_app(&self) -> fantoccini::Client {
        let app = crate::workspace_bin("feza-live");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        // Two TLS back ends are built in (through different crates): one is named.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // tauri-driver listens before the WebKit driver behind it does: a session asked
        // for too early is cut off, and asked for again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let session = fantoccini::ClientBuilder::rustls()
                .expect("a TLS setup for the WebDriver client")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", self.driver_port))
                .await;
            match session {
                Ok(client) => return client,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("the WebDriver session is not there yet ({e}); asking again");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("the app did not start under WebDriver: {e}"),
            }
        }
    }

    /// `secret-tool` in this session (the keyring's view).
    pub fn secret_tool(&self, args: &[&str]) -> String {
        let out = Command::new("secret-tool")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("HOME", self.home.path())
            .output()
            .expect("run secret-tool");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every file of the app's home (config, data, cache) that holds `text` as it is.
    pub fn files_holding(&self, text: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![self.home.path().to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if std::fs::read(&path)
                    .is_ok_and(|b| b.windows(text.len()).any(|w| w == text.as_bytes()))
                {
                    found.push(path);
                }
            }
        }
        found
    }

    /// Kills the app of this desktop (SIGKILL, as a crash or a power cut ends it):
    /// every `feza-live` process whose home is this desktop's.
    pub fn kill_app(&self) -> usize {
        let home = format!("HOME={}", self.home.path().display());
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let dir = entry.path();
            let is_app = std::fs::read_link(dir.join("exe"))
                .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "feza-live"));
            let ours = std::fs::read(dir.join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == home.as_bytes()));
            if is_app && ours {
                let pid = entry.file_name().to_string_lossy().into_owned();
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                killed += 1;
            }
        }
        killed
    }

    /// The display's name (`:N`), for screenshots of the whole screen.
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in [&mut self.session, &mut self.xvfb] {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a test's screenshots go: `FEZA_SCREENSHOTS`, or `screenshots` in the build
/// folder.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("FEZA_SCREENSHOTS").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| crate::repo_root().join("target"), PathBuf::from);
            target.join("screenshots")
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir
}

/// Saves what the app's window shows as `name`.png.
pub async fn screenshot(app: &fantoccini::Client, name: &str) {
    let png = app.screenshot().await.expect("a screenshot of the window");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("save a screenshot");
}
