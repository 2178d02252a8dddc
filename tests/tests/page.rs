//! The public /live page end to end: headless Chromium (Debian's, driven by
//! playwright-core from npm) against the real server, nginx-rtmp and a GStreamer
//! publisher. The browser side is web/tests/live-page.e2e.mjs.

use feza_tests::ingest::{Ingest, IngestPorts, require};
use feza_tests::{AppOptions, HOOK_SECRET, make_recording, repo_root, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_follows_shows_as_they_happen() {
    require("node", "nodejs");
    require("chromium", "chromium");
    let ports = IngestPorts::pick();
    let app = spawn_app_with(AppOptions {
        ingest_url: ports.ingest_url(),
        playback_base: ports.playback_base(),
        viewer_timeout_s: 12,
        ..Default::default()
    })
    .await;
    let _ingest = Ingest::start(ports, &app.hook_base(), HOOK_SECRET);
    let seller = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("replay.mkv");
    make_recording(&recording, 5, 1000, false);
    let root = repo_root();
    assert!(
        root.join("web/node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/web-deps.sh (make test does)"
    );
    let out = tokio::process::Command::new("node")
        .arg(root.join("web/tests/live-page.e2e.mjs"))
        .current_dir(root.join("web"))
        .env("FEZA_BASE", &app.base)
        .env("FEZA_SELLER_TOKEN", &seller)
        .env("FEZA_RECORDING", &recording)
        .output()
        .await
        .expect("run node");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "the page test failed:\n{stdout}\n{stderr}"
    );
}
