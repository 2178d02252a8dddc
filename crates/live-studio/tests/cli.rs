//! `live-cast` refuses bad input before going live, with a message that says what to
//! do and never shows a stream key.

use std::process::Command;

fn live_cast(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_live-cast"))
        .args(args)
        // Not the user's own recording folder.
        .env(
            "FEZA_RECORD_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("recordings"),
        )
        // Errors are sentences whatever the environment asks of backtraces.
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run live-cast");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn go_live_with(extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "go-live",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--title",
        "x",
    ];
    args.extend_from_slice(extra);
    live_cast(&args)
}

#[test]
fn bad_destinations_are_refused_with_their_keys_hidden() {
    let (ok, err) = go_live_with(&["--extra-ingest", "http://example.com/live/secret-key-123"]);
    assert!(!ok && err.contains("rtmp://, rtmps:// or srt://"), "{err}");
    assert!(!err.contains("secret-key-123"), "{err}");
    let (ok, err) = go_live_with(&["--extra-ingest", "rtmp://ingest.example.com/secret-key-456"]);
    assert!(
        !ok && err.contains("must be rtmp://HOST/APP/STREAM_KEY"),
        "{err}"
    );
    assert!(!err.contains("secret-key-456"), "{err}");
}

#[test]
fn bad_settings_say_what_is_accepted() {
    let (ok, err) = go_live_with(&["--profile", "4k"]);
    assert!(
        !ok && err.contains("use 1080p30, 720p30, 480p30 or 360p30"),
        "{err}"
    );
    let (ok, err) = go_live_with(&["--duration", "soon"]);
    assert!(!ok && err.contains("like 30s, 5m, 1h or 1h30m"), "{err}");
    let (ok, err) = go_live_with(&[]);
    assert!(!ok && err.contains("cannot reach the server"), "{err}");
    assert!(
        !err.contains("backtrace"),
        "a sentence, not a stack trace: {err}"
    );
    // A new show needs a title; a scheduled one is named by its id, not both.
    let (ok, err) = live_cast(&["go-live", "--server", "http://127.0.0.1:9", "--token", "t"]);
    assert!(!ok && err.contains("--title"), "{err}");
    let (ok, err) = go_live_with(&["--stream", "01a2"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}
