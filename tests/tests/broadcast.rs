//! The broadcaster end to end: a show session (server lifecycle + GStreamer engine)
//! against the real server and nginx-rtmp; the ingest receives H.264 + AAC, and the
//! local recording is a complete, gapless, web-playable MP4.

use feza_tests::probe::{codecs, duration_s, largest_video_gap, video_pts};
use feza_tests::{eventually, stack};
use live_core::{Outcome, StreamStatus};
use live_media::VideoProfile;
use live_studio::{ApiClient, GoLive};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SHOW: Duration = Duration::from_secs(8);

// The server runs in this runtime: give it a thread of its own beside the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_reaches_the_ingest_and_leaves_a_complete_recording() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let profile = VideoProfile::P360_30;
    let go = GoLive {
        title: "Spring sale".into(),
        video: profile,
        extra_ingests: vec![],
        record_dir: record_dir.path().to_owned(),
        duration: Some(SHOW),
        outcome: Outcome::Save,
        stats_every: Duration::from_millis(500),
    };
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    let session =
        live_studio::session::go_live(&client, go, std::future::pending(), move |stats, show| {
            seen.lock()
                .unwrap()
                .push(live_studio::session::stats_line(stats, show));
        });

    // Meanwhile, as a viewer: the show turns live and its HLS carries H.264 + AAC.
    let viewer = async {
        let id = eventually("the show to go live", Duration::from_secs(15), || async {
            let page = app.get(None, "/api/streams?section=live").await.body;
            page["streams"][0]["id"].as_str().map(str::to_owned)
        })
        .await;
        let playback = app.stream(None, &id).await.playback_url.unwrap();
        eventually("the HLS playlist", Duration::from_secs(15), || async {
            let text = app
                .client
                .get(&playback)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains(".ts").then_some(())
        })
        .await;
        tokio::task::spawn_blocking(move || codecs(&playback))
            .await
            .unwrap()
    };
    let (report, live_codecs) = tokio::join!(session, viewer);
    let report = report.expect("the show runs to its end");
    assert_eq!(
        live_codecs,
        vec!["aac", "h264"],
        "the ingest receives H.264 + AAC"
    );
    assert_eq!(report.stream.status, StreamStatus::Archived);

    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("show live") && l.contains("out0") && l.contains(" live ")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("fzk_")),
        "a stream key leaked into the stats: {lines:#?}"
    );

    let mp4 = report
        .mp4
        .expect("a web-playable copy")
        .to_string_lossy()
        .into_owned();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    let media = duration_s(&mp4);
    let shown = report.duration.as_secs_f64();
    assert!(
        (media - shown).abs() <= 0.5,
        "recording {media:.2} s for a show of {shown:.2} s"
    );
    assert!(
        (media - SHOW.as_secs_f64()).abs() <= 0.5,
        "recording {media:.2} s for {SHOW:?}"
    );
    let frames = video_pts(&mp4).len() as f64;
    let expected = f64::from(profile.fps) * media;
    assert!(
        (frames - expected).abs() <= expected * 0.02,
        "{frames} frames for {expected:.0} expected"
    );
    let gap = largest_video_gap(&mp4);
    assert!(
        gap <= 2.0 / f64::from(profile.fps) + 1e-3,
        "a gap of {gap:.3} s in the video"
    );
    // The crash-safe recording is kept beside it (it is what a replay upload sends).
    let mkv = report.recording.unwrap().to_string_lossy().into_owned();
    assert_eq!(codecs(&mkv), vec!["aac", "h264"]);
}
