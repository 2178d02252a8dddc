//! The public /live page end to end: headless Chromium (Debian's, driven by
//! playwright-core from npm) against the real server, nginx-rtmp and a GStreamer
//! publisher, then a show from the Studio's own broadcaster. The browser side is
//! web/tests/live-page.e2e.mjs, web/tests/plays-live.e2e.mjs and
//! web/tests/plays-on-after-a-crash.e2e.mjs.

use feza_tests::ingest::{Ingest, IngestPorts, require};
use feza_tests::{
    AppOptions, HOOK_SECRET, eventually, make_recording, repo_root, spawn_app_with, test_show,
    workspace_bin,
};
use live_core::IngestState::{Connected, Reconnecting};
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
/// Ended and saved by the seller while the viewer watches: the player says the show
/// ended, then offers its replay once the upload made it ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_from_the_studio_plays_live_in_the_browser() {
    let (app, _ingest) = page_stack(AppOptions::default()).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let queue = live_studio::queue::Queue::open(record_dir.path())
        .await
        .unwrap();
    let go = GoLive {
        // Ended as soon as the browser has played it; this only bounds a failure.
        duration: Some(Duration::from_secs(60)),
        outcome: Outcome::Save,
        queue: Some(queue.clone()),
        progressive_upload: true,
        keep_local: false,
        ..test_show(record_dir.path(), vec![])
    };
    let (end, ended) = tokio::sync::oneshot::channel::<()>();
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    // The show, then its upload (as `live-cast` does after a saved show).
    let seller = async {
        let report = live_studio::session::go_live(
            &client,
            go,
            async {
                let _ = ended.await;
            },
            rx,
            |_| {},
        )
        .await;
        let uploaded = live_studio::queue::run(
            &client,
            &queue,
            Default::default(),
            Duration::from_secs(60),
            std::future::pending(),
            |_, _| {},
        )
        .await;
        (report, uploaded)
    };
    let playing = record_dir.path().join("playing");
    let viewer = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        let playing_s = playing.to_string_lossy().into_owned();
        let env = [
            ("FEZA_BASE", app.base.as_str()),
            ("FEZA_SHOW_ID", id.as_str()),
            ("FEZA_PLAYING", playing_s.as_str()),
        ];
        let browser = run_node("plays-live.e2e.mjs", &env);
        tokio::pin!(browser);
        // The seller ends the show once the viewer plays it (or the viewer gave up).
        let ender = async {
            while !playing.exists() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            played = &mut browser => played,
            () = ender => {
                let _ = end.send(());
                browser.await
            }
        }
    };
    let ((report, uploaded), (passed, output)) = tokio::join!(seller, viewer);
    assert!(passed, "the live show did not play in Chromium:\n{output}");
    eprintln!("{output}");
    report.expect("the show ends cleanly");
    uploaded.expect("the recording is uploaded");
}

/// A viewer watches a show from `live-cast` when the broadcaster is killed (a crash, a
/// power cut) and started again on the same show: the viewer's player, never
/// reloaded, says it waits for the seller's video while the picture stands still, and
/// plays the show on once it is taken up again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_watches_on_when_the_sellers_broadcaster_crashes_and_is_started_again() {
    let (app, _ingest) = page_stack(AppOptions::default()).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let live_cast = |args: &[&str]| {
        tokio::process::Command::new(workspace_bin("live-cast"))
            .args(["go-live", "--server", &app.base, "--token", &token])
            .args(["--profile", "360p30", "--outcome", "discard"])
            .args(args)
            .arg("--record-dir")
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start live-cast")
    };
    let mut first = live_cast(&["--title", "Crash mid-show"]);
    let id = app.first_live_show(Duration::from_secs(20)).await;
    let (playing, taken_up) = (dir.path().join("playing"), dir.path().join("taken-up"));
    let (playing_s, taken_up_s) = (
        playing.to_string_lossy().into_owned(),
        taken_up.to_string_lossy().into_owned(),
    );
    let viewer = tokio::spawn({
        let (base, id) = (app.base.clone(), id.clone());
        async move {
            run_node(
                "plays-on-after-a-crash.e2e.mjs",
                &[
                    ("FEZA_BASE", base.as_str()),
                    ("FEZA_SHOW_ID", id.as_str()),
                    ("FEZA_PLAYING", playing_s.as_str()),
                    ("FEZA_TAKEN_UP", taken_up_s.as_str()),
                ],
            )
            .await
        }
    });
    eventually(
        "the viewer to play the show",
        Duration::from_secs(40),
        || async { (playing.exists() || viewer.is_finished()).then_some(()) },
    )
    .await;
    first.kill().await.unwrap();
    app.ingest_becomes(&token, &id, Reconnecting, Duration::from_secs(15))
        .await;
    // The seller takes a few seconds to start it again: the viewer's picture stands
    // still meanwhile.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let again = live_cast(&["--stream", &id, "--duration", "40s"]);
    app.ingest_becomes(&token, &id, Connected, Duration::from_secs(40))
        .await;
    std::fs::write(&taken_up, b"").unwrap();
    let (passed, output) = viewer.await.unwrap();
    assert!(passed, "the viewer lost the show:\n{output}");
    eprintln!("{output}");
    // Ended early (the viewer has seen what it needed): Ctrl-C, then discarded.
    let pid = again.id().expect("still live").to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), again.wait_with_output())
        .await
        .expect("live-cast ends")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Discarded: the recordings of both broadcasts are gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".mkv") || n.contains(".mp4"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
