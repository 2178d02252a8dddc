//! The `live-server` command line: configuration errors stop it at start with a clear
//! message, and `admin create-seller` prints a token it never stores.

use std::process::{Command, Output};

fn live_server(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_live-server"));
    cmd.args(args)
        .env_clear()
        .env("FEZA_DATA_DIR", dir.join("data"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/feza.db", dir.display()),
        )
        .env("FEZA_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run live-server")
}

#[test]
fn a_bad_setting_stops_the_server_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "FEZA_INGEST_URL",
            "http://example.com/live",
            "rtmp://, rtmps:// or srt://",
        ),
        ("FEZA_INGEST_URL", "not a url", "is not a URL"),
        (
            "FEZA_PLAYBACK_BASE",
            "ftp://example.com/hls",
            "http:// or https://",
        ),
        ("FEZA_PUBLIC_URL", "example.com", "is not a URL"),
        ("FEZA_RECONNECT_GRACE_S", "0", "reconnect-grace-s"),
        ("FEZA_RECONNECT_GRACE_S", "soon", "reconnect-grace-s"),
        ("FEZA_LISTEN", "everywhere", "--listen"),
        (
            "DATABASE_URL",
            "mysql://db/feza",
            "DATABASE_URL must start with sqlite:// or postgres://",
        ),
        (
            "FEZA_HOOK_SECRET",
            "short",
            "FEZA_HOOK_SECRET must be at least 16 characters",
        ),
    ];
    for (var, value, needle) in cases {
        let out = live_server(dir.path(), &["serve"], &[(var, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} was accepted");
        assert!(stderr.contains(needle), "{var}={value}: {stderr}");
    }
}

#[test]
fn help_documents_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = live_server(dir.path(), &["serve", "--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "FEZA_LISTEN",
        "DATABASE_URL",
        "FEZA_DATA_DIR",
        "FEZA_INGEST_URL",
        "FEZA_PLAYBACK_BASE",
        "FEZA_HOOK_SECRET",
        "FEZA_RECONNECT_GRACE_S",
    ] {
        assert!(help.contains(var), "--help does not mention {var}:\n{help}");
    }
}

#[test]
fn create_seller_prints_the_token_last_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = live_server(
        dir.path(),
        &["admin", "create-seller", "--name", "Maria R."],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().last().unwrap().trim();
    assert!(token.starts_with("fzs_") && token.len() > 40, "{stdout}");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
            assert!(!found, "the token is stored in clear in {}", path.display());
        }
    }
    let out = live_server(dir.path(), &["admin", "create-seller", "--name", " "], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("name must be 1 to 80 characters"));
}
