//! The public /live page end to end: headless Chromium (Debian's, driven by
//! playwright-core from npm) against the real server, nginx-rtmp and a GStreamer
//! publisher, then a show from the Studio's own broadcaster. The browser side is
//! web/tests/live-page.e2e.mjs and web/tests/plays-live.e2e.mjs.

use feza_tests::ingest::{Ingest, IngestPorts, require};
use feza_tests::{AppOptions, HOOK_SECRET, make_recording, repo_root, spawn_app_with, test_show};
use live_core::Outcome;
use live_studio::{ApiClient, GoLive};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_follows_shows_as_they_happen() {
    let (app, _ingest) = page_stack(AppOptions {
        viewer_timeout_s: 12,
        ..Default::default()
    })
    .await;
    let seller = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("replay.mkv");
    make_recording(&recording, 5, 1000, false);
    let recording = recording.to_string_lossy();
    let (passed, output) = run_node(
        "live-page.e2e.mjs",
        &[
            ("FEZA_BASE", app.base.as_str()),
            ("FEZA_SELLER_TOKEN", seller.as_str()),
            ("FEZA_RECORDING", recording.as_ref()),
        ],
    )
    .await;
    assert!(passed, "the page test failed:\n{output}");
}

/// The server (with `opts`) and nginx-rtmp serving HLS; node and Chromium present.
async fn page_stack(opts: AppOptions) -> (feza_tests::TestApp, Ingest) {
    require("node", "nodejs");
    require("chromium", "chromium");
    let ports = IngestPorts::pick();
    let app = spawn_app_with(AppOptions {
        ingest_url: ports.ingest_url(),
        playback_base: ports.playback_base(),
        ..opts
    })
    .await;
    let ingest = Ingest::start(ports, &app.hook_base(), HOOK_SECRET);
    (app, ingest)
}

/// What the browser side printed, and whether it passed.
async fn run_node(script: &str, env: &[(&str, &str)]) -> (bool, String) {
    let root = repo_root();
    assert!(
        root.join("web/node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/web-deps.sh (make test does)"
    );
    let out = tokio::process::Command::new("node")
        .arg(root.join("web/tests").join(script))
        .current_dir(root.join("web"))
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.success() && stdout.contains("PASS"),
        format!("{stdout}\n{stderr}"),
    )
}

/// The Studio's broadcaster (the same session `live-cast go-live` runs) publishing, a
/// viewer's Chromium playing the show live from its HLS: what the publisher sends
/// (keyframes, codec data, timestamps) is what a browser must be able to start on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_from_the_studio_plays_live_in_the_browser() {
    let (app, _ingest) = page_stack(AppOptions::default()).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let go = GoLive {
        // Ended as soon as the browser has played it; this only bounds a failure.
        duration: Some(Duration::from_secs(60)),
        outcome: Outcome::Discard,
        keep_local: false,
        ..test_show(record_dir.path(), vec![])
    };
    let (end, ended) = tokio::sync::oneshot::channel::<()>();
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = live_studio::session::go_live(
        &client,
        go,
        async {
            let _ = ended.await;
        },
        rx,
        |_, _| {},
    );
    let viewer = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        let played = run_node(
            "plays-live.e2e.mjs",
            &[
                ("FEZA_BASE", app.base.as_str()),
                ("FEZA_SHOW_ID", id.as_str()),
            ],
        )
        .await;
        let _ = end.send(());
        played
    };
    let (report, (passed, output)) = tokio::join!(session, viewer);
    assert!(passed, "the live show did not play in Chromium:\n{output}");
    report.expect("the show ends cleanly");
}
