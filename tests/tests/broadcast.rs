//! The broadcaster end to end: a show session (server lifecycle + GStreamer engine)
//! against the real server and nginx-rtmp; the ingest receives H.264 + AAC, and the
//! local recording is a complete, gapless, web-playable MP4.

use feza_tests::probe::{
    audio_span_s, codecs, duration_s, largest_video_gap, video_pts, video_span_s,
};
use feza_tests::relay::Relay;
use feza_tests::{eventually, stack, stack_reached_at, test_show, workspace_bin};
use live_core::StreamStatus;
use live_media::VideoProfile;
use live_studio::{Alert, AlertKind, ApiClient, GoLive, SessionEvent};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        duration: Some(SHOW),
        ..test_show(record_dir.path(), vec![])
    };
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = lines.clone();
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session =
        live_studio::session::go_live(&client, go, std::future::pending(), rx, move |event| {
            if let SessionEvent::Tick(tick) = event {
                seen.lock().unwrap().push(live_studio::session::stats_line(
                    &tick.stats,
                    Some(&tick.show),
                ));
            }
        });

    // Meanwhile, as a viewer: the show turns live and its HLS carries H.264 + AAC.
    let viewer = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        // A viewer watches, likes and comments: the seller's stats carry it.
        watch_like_and_comment(&app, &id).await;
        hls_codecs(&app, &id).await
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
            .any(|l| l.contains("show live") && output_state(l, 0) == "live"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("fzk_")),
        "a stream key leaked into the stats: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1 watching, 1 likes, 0 dislikes, 1 comments")),
        "the real counts reach the broadcaster: {lines:#?}"
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

// The server stops answering mid-show (connections open, no replies: an overloaded or
// cut-off server). Nothing of the show needs it: the stats go on every tick, the seller
// is told, the end comes the moment it is asked for, and the show is ended on the
// server once it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_never_holds_up_the_show() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let relay = Relay::start(&app.base).await;
    let client = ApiClient::new(&relay.base(), &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let ticks = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let seen = ticks.clone();
    let alerts = Arc::new(Mutex::new(Vec::<Alert>::new()));
    let told = alerts.clone();
    let (end, end_rx) = tokio::sync::oneshot::channel::<()>();
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = live_studio::session::go_live(
        &client,
        test_show(record_dir.path(), vec![]),
        async {
            let _ = end_rx.await;
        },
        rx,
        move |event| match event {
            SessionEvent::Tick(tick) => {
                let line = live_studio::session::stats_line(&tick.stats, Some(&tick.show));
                seen.lock().unwrap().push((Instant::now(), line));
            }
            SessionEvent::Alert(alert) => told.lock().unwrap().push(alert),
        },
    );
    let hang = Duration::from_secs(12);
    let seller = async {
        app.first_live_show(Duration::from_secs(15)).await;
        relay.hang(true);
        let hung_at = Instant::now();
        tokio::time::sleep(hang).await;
        let ended_at = Instant::now();
        let _ = end.send(());
        // Still hung for a while after the seller ends the show.
        tokio::time::sleep(Duration::from_secs(4)).await;
        relay.hang(false);
        (hung_at, ended_at)
    };
    let (report, (hung_at, ended_at)) = tokio::join!(session, seller);
    let report = report.expect("the show ends once the server answers again");

    let ticks = ticks.lock().unwrap();
    let while_hung: Vec<&String> = ticks
        .iter()
        .filter(|(t, _)| *t > hung_at && *t <= ended_at)
        .map(|(_, l)| l)
        .collect();
    // A tick every 0.5 s: 24 while the server hangs.
    assert!(
        while_hung.len() >= 18,
        "{} stats lines in {hang:?} of a hung server: {ticks:#?}",
        while_hung.len()
    );
    assert!(
        while_hung.iter().all(|l| output_state(l, 0) == "live"),
        "the ingest does not need the server: {while_hung:#?}"
    );
    // The broadcast stopped when the seller ended it, not when the server came back.
    let last_tick = ticks.last().unwrap().0;
    assert!(
        last_tick <= ended_at + Duration::from_secs(1),
        "stats went on {:?} after the end was asked for",
        last_tick.duration_since(ended_at)
    );
    let mp4 = report
        .mp4
        .expect("a saved show")
        .to_string_lossy()
        .into_owned();
    let recorded = duration_s(&mp4);
    let shown = report.duration.as_secs_f64();
    assert!(
        (recorded - shown).abs() <= 0.5,
        "recording {recorded:.2} s for a show of {shown:.2} s"
    );
    assert_eq!(report.stream.status, StreamStatus::Archived);
    let alerts = alerts.lock().unwrap().clone();
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::ServerSilent
            && a.message.contains("the server has not answered for")
            && a.message.contains("the show goes on")),
        "the seller is told the server is silent: {alerts:#?}"
    );
}

// The seller ends with "discard" while the server is down: nothing is lost (the
// recording stays, playable) and nothing is published either: the next run that
// reaches the server discards the show and deletes the recording, rather than save
// it as an interrupted show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discard_the_server_could_not_hear_is_done_when_it_can() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let relay = Relay::start(&app.base).await;
    let client = ApiClient::new(&relay.base(), &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let go = GoLive {
        outcome: live_core::Outcome::Discard,
        duration: Some(Duration::from_secs(6)),
        ..test_show(record_dir.path(), vec![])
    };
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = live_studio::session::go_live(&client, go, std::future::pending(), rx, |_| {});
    let seller = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        relay.down();
        id
    };
    let (ended, id) = tokio::join!(session, seller);
    let err = ended.expect_err("the server could not be told");
    assert!(err.to_string().contains("cannot reach the server"), "{err}");
    let mkv = record_dir.path().join(format!("{id}.mkv"));
    let marker = record_dir.path().join(format!("{id}.discard"));
    assert_eq!(codecs(&mkv.to_string_lossy()), vec!["aac", "h264"]);
    assert!(marker.exists());
    assert_ne!(
        app.stream(Some(&token), &id).await.status,
        StreamStatus::Ended,
        "the server never heard the end"
    );

    // The server is still out of reach: the next run keeps everything, saves nothing.
    assert!(
        live_studio::session::recover(&client, record_dir.path(), None)
            .await
            .is_empty()
    );
    assert!(mkv.exists() && marker.exists());
    relay.up();
    let recovered = live_studio::session::recover(&client, record_dir.path(), None).await;
    assert!(recovered.is_empty(), "nothing saved: {recovered:?}");
    let s = app.stream(Some(&token), &id).await;
    assert_eq!(
        (s.status, s.end_reason),
        (StreamStatus::Ended, Some(live_core::EndReason::Discarded))
    );
    assert!(
        !mkv.exists() && !marker.exists(),
        "the recording is deleted as asked"
    );
    assert!(!app.section_ids("recent").await.contains(&id));
}

// A seller scheduled a show (viewers hold reminders for it) and goes live on that very
// show: it leaves Upcoming for Live Now under its own id, and ends archived. A show
// that is no longer scheduled is refused with its status, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_scheduled_earlier_goes_live_as_itself() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let id = app
        .post(
            Some(&token),
            "/api/streams",
            serde_json::json!({"title": "Friday drop", "scheduled_at": at}),
        )
        .await
        .expect(reqwest::StatusCode::CREATED)
        .stream()
        .id;
    assert!(app.section_ids("upcoming").await.contains(&id));
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let scheduled = live_studio::Show::Scheduled { id: id.clone() };
    let go = GoLive {
        show: scheduled.clone(),
        duration: Some(Duration::from_secs(5)),
        ..test_show(record_dir.path(), vec![])
    };
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = live_studio::session::go_live(&client, go, std::future::pending(), rx, |_| {});
    let viewer = async {
        let live = app.first_live_show(Duration::from_secs(15)).await;
        (live, app.section_ids("upcoming").await)
    };
    let (report, (live, upcoming)) = tokio::join!(session, viewer);
    let report = report.expect("the show runs to its end");
    assert_eq!(live, id, "the scheduled show itself is live");
    assert!(!upcoming.contains(&id), "no longer upcoming: {upcoming:?}");
    assert_eq!(
        (report.stream.id.as_str(), report.stream.status),
        (id.as_str(), StreamStatus::Archived)
    );
    assert_eq!(report.stream.title, "Friday drop");

    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let again = GoLive {
        show: scheduled,
        ..test_show(record_dir.path(), vec![])
    };
    let err = live_studio::session::go_live(&client, again, std::future::pending(), rx, |_| {})
        .await
        .expect_err("an archived show cannot go live again");
    assert!(
        err.to_string().contains("is archived") && err.to_string().contains("create a new one"),
        "{err}"
    );
    let mine = app.get(Some(&token), "/api/me/streams").await;
    assert_eq!(
        mine.body["streams"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        mine.body
    );
}

// A missing camera, a recording folder that cannot be written, too little disk: each
// is a clear error before anything is announced, so no viewer sees a show that
// cannot start among the upcoming ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_that_cannot_start_is_never_announced() {
    let app = feza_tests::spawn_app().await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let cases = [
        (
            "a missing camera",
            GoLive {
                source: live_media::Source {
                    camera: Some("/dev/no-such-camera".into()),
                    ..Default::default()
                },
                ..test_show(dir.path(), vec![])
            },
            "live-cast devices",
        ),
        (
            "an unwritable folder",
            test_show(&not_a_dir.join("shows"), vec![]),
            "not writable",
        ),
        (
            "too little disk",
            GoLive {
                video: VideoProfile {
                    bitrate_kbps: u32::MAX,
                    ..VideoProfile::P360_30
                },
                ..test_show(dir.path(), vec![])
            },
            "free some space",
        ),
    ];
    for (case, go, says) in cases {
        let (_controls, rx) = tokio::sync::mpsc::channel(1);
        let err = live_studio::session::go_live(&client, go, std::future::pending(), rx, |_| {})
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: went live"));
        assert!(
            matches!(err, live_studio::SessionError::Media(_)) && err.to_string().contains(says),
            "{case}: {err}"
        );
        let mine = app.get(Some(&token), "/api/me/streams").await;
        assert_eq!(
            mine.body["streams"].as_array().map(Vec::len),
            Some(0),
            "{case}: a show was announced: {}",
            mine.body
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing is left in the recording folder but what was there"
    );
}

/// The codecs of show `id`'s HLS, once its playlist lists a segment.
async fn hls_codecs(app: &feza_tests::TestApp, id: &str) -> Vec<String> {
    let playback = app.stream(None, id).await.playback_url.unwrap();
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
}

/// A viewer joins show `id`, likes it and comments.
async fn watch_like_and_comment(app: &feza_tests::TestApp, id: &str) {
    let v = app
        .post(
            None,
            "/api/viewers",
            serde_json::json!({ "display_name": "Ana" }),
        )
        .await;
    let token = v.body["token"].as_str().unwrap().to_owned();
    app.post(
        Some(&token),
        &format!("/api/streams/{id}/viewers"),
        serde_json::Value::Null,
    )
    .await;
    app.send(
        app.client
            .put(app.url(&format!("/api/streams/{id}/reaction")))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "reaction": "like" })),
    )
    .await;
    app.post(
        Some(&token),
        &format!("/api/streams/{id}/comments"),
        serde_json::json!({ "text": "love it" }),
    )
    .await;
}

/// Runs `go` until `stop` is notified; returns the report and every stats line.
async fn run_until_notified(
    client: &ApiClient,
    go: GoLive,
    stop: Arc<tokio::sync::Notify>,
    controls: tokio::sync::mpsc::Receiver<live_studio::Control>,
) -> (live_studio::SessionReport, Vec<String>, Vec<Alert>) {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let alerts = Arc::new(Mutex::new(Vec::<Alert>::new()));
    let report = run_printing_into(client, go, stop, controls, lines.clone(), alerts.clone()).await;
    let lines = lines.lock().unwrap().clone();
    let alerts = alerts.lock().unwrap().clone();
    (report, lines, alerts)
}

/// A show run until `stop` is notified, its stats lines put in `lines` and the
/// seller's alerts in `alerts` as they come.
async fn run_printing_into(
    client: &ApiClient,
    go: GoLive,
    stop: Arc<tokio::sync::Notify>,
    controls: tokio::sync::mpsc::Receiver<live_studio::Control>,
    lines: Arc<Mutex<Vec<String>>>,
    alerts: Arc<Mutex<Vec<Alert>>>,
) -> live_studio::SessionReport {
    live_studio::session::go_live(
        client,
        go,
        async move { stop.notified().await },
        controls,
        move |event| match event {
            SessionEvent::Tick(tick) => lines.lock().unwrap().push(
                live_studio::session::stats_line(&tick.stats, Some(&tick.show)),
            ),
            SessionEvent::Alert(alert) => alerts.lock().unwrap().push(alert),
        },
    )
    .await
    .expect("the show runs to its end")
}

/// The state stats line `line` gives output `n` (the word after its address), or "".
fn output_state(line: &str, n: usize) -> &str {
    line.split(&format!("| out{n} "))
        .nth(1)
        .and_then(|out| out.split_whitespace().nth(1))
        .unwrap_or_default()
}

/// Waits until the server has show `id` live with its ingest connected.
async fn connected_again(app: &feza_tests::TestApp, token: &str, id: &str, within: Duration) {
    eventually("the ingest to be connected again", within, || async {
        let s = app.stream(Some(token), id).await;
        (s.ingest_state == Some(live_core::IngestState::Connected)
            && s.status == StreamStatus::Live)
            .then_some(())
    })
    .await;
}

/// The recording is whole: no jump over two frame durations, frames within 2 %.
fn assert_gapless(file: &str, fps: u32) {
    let media = duration_s(file);
    let frames = video_pts(file).len() as f64;
    let expected = f64::from(fps) * media;
    assert!(
        (frames - expected).abs() <= expected * 0.02,
        "{frames} frames in {media:.2} s at {fps} fps"
    );
    let gap = largest_video_gap(file);
    assert!(
        gap <= 2.0 / f64::from(fps) + 1e-3,
        "a gap of {gap:.3} s in {file}"
    );
}

// The ingest's heartbeats to the server hang for longer than the server's silence
// limit and nginx-rtmp's own timeout (a server that is down, restarting or stuck):
// nginx keeps the publisher, viewers keep the show, and when the server hears the
// heartbeats again the same connection is taken back, never cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_whose_server_stops_answering_keeps_the_show_on_air() {
    use feza_tests::ingest::{Ingest, IngestPorts};
    let ports = IngestPorts::pick();
    let app = feza_tests::spawn_app_with(feza_tests::AppOptions {
        ingest_url: ports.ingest_url(),
        playback_base: ports.playback_base(),
        ..Default::default()
    })
    .await;
    let relay = Relay::start(&app.base).await;
    let _ingest = Ingest::start(
        ports,
        &format!("{}/hooks/ingest", relay.base()),
        feza_tests::HOOK_SECRET,
    );
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = run_until_notified(
        &client,
        test_show(record_dir.path(), vec![]),
        stop.clone(),
        rx,
    );
    let script = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        // The first heartbeats (every 3 s) reach the server.
        tokio::time::sleep(Duration::from_secs(4)).await;
        relay.hang(true);
        // Past the server's 10 s of silence and nginx-rtmp's 10 s wait for an answer.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let silent = app.stream(Some(&token), &id).await.ingest_state;
        relay.hang(false);
        connected_again(&app, &token, &id, Duration::from_secs(15)).await;
        // A few heartbeats more, answered.
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.notify_one();
        silent
    };
    let ((report, lines, _), silent) = tokio::join!(session, script);
    assert_eq!(
        silent,
        Some(live_core::IngestState::Reconnecting),
        "the server heard nothing for 15 s"
    );
    assert_eq!(report.stream.status, StreamStatus::Archived);
    assert!(
        lines.iter().all(|l| !l.contains("reconnecting")),
        "the publisher was never cut: {lines:#?}"
    );
    let last = lines.last().unwrap();
    assert!(
        output_state(last, 0) == "live" && last.contains("reconnects 0"),
        "{last}"
    );
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broadcaster_reconnects_by_itself_after_the_ingest_dies_and_the_recording_has_no_gap() {
    let (_dir, mp4) = ingest_dies_mid_show(Duration::from_secs(3), Duration::from_secs(10)).await;
    assert!(duration_s(&mp4) > 15.0);
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

// The ingest dies as the show turns live, before its first heartbeat for the publisher
// (nginx-rtmp sends one every 3 s): the server, having heard only the publish, takes
// the publisher as gone after its silence all the same, so the broadcaster, reconnecting
// with the same key once the ingest is back, is let in and the show goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_that_dies_as_the_show_goes_live_lets_the_broadcaster_back_in() {
    let (_dir, mp4) = ingest_dies_mid_show(Duration::ZERO, Duration::from_secs(2)).await;
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

/// A show whose ingest is killed `after` it turns live and restarted `down` later: the
/// broadcaster comes back by itself and the same show goes on, live by the broadcaster's
/// last stats line. The show's recording folder and MP4 copy in it.
async fn ingest_dies_mid_show(after: Duration, down: Duration) -> (tempfile::TempDir, String) {
    let (app, mut ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let session = run_printing_into(
        &client,
        test_show(record_dir.path(), vec![]),
        stop.clone(),
        rx,
        lines.clone(),
        Default::default(),
    );
    let back = |l: &String| output_state(l, 0) == "live" && !l.contains("reconnects 0");

    let script = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        let started = app.stream(None, &id).await.started_at;
        tokio::time::sleep(after).await;
        ingest.kill();
        let died = Instant::now();
        tokio::time::sleep(down).await;
        tokio::task::block_in_place(|| ingest.restart());
        // The broadcaster comes back by itself; the same show goes on.
        eventually(
            "the broadcaster to be live again",
            Duration::from_secs(60),
            || async { lines.lock().unwrap().last().is_some_and(back).then_some(()) },
        )
        .await;
        eprintln!(
            "the broadcaster was live again {:.1} s after the ingest died",
            died.elapsed().as_secs_f64()
        );
        connected_again(&app, &token, &id, Duration::from_secs(5)).await;
        assert_eq!(app.stream(None, &id).await.started_at, started);
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.notify_one();
    };
    let (report, ()) = tokio::join!(session, script);
    let lines = lines.lock().unwrap().clone();
    assert_eq!(report.stream.status, StreamStatus::Archived);
    assert!(
        lines.iter().any(|l| l.contains("reconnecting")),
        "{lines:#?}"
    );
    let last = lines.last().unwrap();
    assert!(back(last), "{last}");
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    (record_dir, mp4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_destinations_get_the_same_stream_and_a_dead_one_harms_nothing() {
    use feza_tests::ingest::{free_port, require};
    require("ffmpeg", "ffmpeg");
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A second RTMP server: ffmpeg listening, saving what it receives.
    let port = free_port();
    let received = dir.path().join("received.flv");
    let mut listener = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-listen",
            "1",
            "-i",
            &format!("rtmp://127.0.0.1:{port}/app/extra-key-1234"),
            "-c",
            "copy",
            "-f",
            "flv",
        ])
        .arg(&received)
        .spawn()
        .expect("start ffmpeg");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extra =
        live_media::IngestUrl::parse(&format!("rtmp://127.0.0.1:{port}/app/extra-key-1234"))
            .unwrap();
    let dead = live_media::IngestUrl::parse(&format!(
        "rtmp://127.0.0.1:{}/app/dead-key-5678",
        free_port()
    ))
    .unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = run_until_notified(
        &client,
        test_show(dir.path(), vec![extra, dead]),
        stop.clone(),
        rx,
    );
    let script = async {
        app.first_live_show(Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        stop.notify_one();
    };
    let ((report, lines, _), ()) = tokio::join!(session, script);
    let _ = listener.wait();
    let last = lines.last().unwrap();
    assert!(
        last.contains("out1 rtmp://127.0.0.1") && last.contains("/app/*** live"),
        "{last}"
    );
    assert!(
        last.contains("out2") && last.contains("reconnecting"),
        "{last}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("extra-key-1234") && !l.contains("dead-key-5678")),
        "a key leaked"
    );
    let received = received.to_string_lossy().into_owned();
    assert_eq!(codecs(&received), vec!["aac", "h264"]);
    assert!(duration_s(&received) > 4.0);
    // Sound and picture both arrive (not only declared in the header).
    let (v, a) = (video_span_s(&received), audio_span_s(&received));
    assert!(
        v > 4.0 && (v - a).abs() < 1.0,
        "video {v:.2} s, audio {a:.2} s"
    );
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_and_camera_off_keep_every_connection_and_leave_silence_and_black() {
    use live_studio::Control;
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (controls, rx) = tokio::sync::mpsc::channel(4);
    let session = run_until_notified(&client, test_show(dir.path(), vec![]), stop.clone(), rx);
    let script = async {
        app.first_live_show(Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        controls.send(Control::Mic { muted: true }).await.unwrap();
        controls.send(Control::Camera { on: false }).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        controls.send(Control::Mic { muted: false }).await.unwrap();
        controls.send(Control::Camera { on: true }).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.notify_one();
    };
    let ((report, lines, _), ()) = tokio::join!(session, script);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("mic muted") && l.contains("camera off")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("reconnects 0")),
        "{lines:#?}"
    );
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
    let black = feza_tests::probe::black_spans(&mp4);
    assert!(
        black.iter().any(|(_, d)| (3.0..=5.0).contains(d)),
        "black spans {black:?}"
    );
    let silent = feza_tests::probe::silent_spans(&mp4);
    assert!(
        silent.iter().any(|(_, d)| (3.0..=5.0).contains(d)),
        "silent spans {silent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_broadcaster_leaves_a_playable_recording_that_the_next_run_finishes() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    // The seller records into a folder of their own videos and music: the recovery
    // (at every go-live, and `live-cast recover`) leaves every file of theirs as it is.
    let own = seller_files(dir.path());
    let live_cast = workspace_bin("live-cast");
    let mut child = std::process::Command::new(&live_cast)
        .args([
            "go-live",
            "--server",
            &app.base,
            "--token",
            &token,
            "--title",
            "Crash test",
            "--profile",
            "360p30",
        ])
        .arg("--record-dir")
        .arg(dir.path())
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(dir.path().join("out.log")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err.log")).unwrap())
        .spawn()
        .expect("start live-cast");
    let id = app.first_live_show(Duration::from_secs(20)).await;
    let live_since = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    child.kill().unwrap(); // SIGKILL: no chance to finish anything
    let _ = child.wait();
    let ran = live_since.elapsed().as_secs_f64();

    // Nothing it printed, stats or logs (at debug level), carries a stream key.
    let out = std::fs::read_to_string(dir.path().join("out.log")).unwrap();
    let err = std::fs::read_to_string(dir.path().join("err.log")).unwrap();
    assert!(
        out.lines().filter(|l| l.contains("show live")).count() >= 2,
        "{out}"
    );
    assert!(err.contains("going live"), "{err}");
    assert!(
        !out.contains("fzk_") && !err.contains("fzk_"),
        "a stream key leaked:\n{out}\n{err}"
    );

    let mkv = dir.path().join(format!("{id}.mkv"));
    let path = mkv.to_string_lossy().into_owned();
    assert_eq!(
        codecs(&path),
        vec!["aac", "h264"],
        "the recording plays after a kill -9"
    );
    let kept = feza_tests::probe::video_span_s(&path);
    assert!(kept >= ran - 2.0, "{kept:.2} s kept of {ran:.2} s live");

    // The next run finds it, finishes it and saves the show.
    let out = live_cast_recover(&app, &token, dir.path()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("recovered an interrupted recording") && stdout.contains("archived"),
        "{stdout}"
    );
    // It was still live: the seller learns how to take such a show up again.
    assert!(
        stdout.contains("was still live") && stdout.contains(&format!("--stream {id}")),
        "{stdout}"
    );
    let mp4 = dir
        .path()
        .join(format!("{id}.mp4"))
        .to_string_lossy()
        .into_owned();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    assert!((duration_s(&mp4) - kept).abs() < 1.0);
    assert_eq!(app.stream(None, &id).await.status, StreamStatus::Archived);
    // Finished recordings are left alone the next time.
    let again = live_cast_recover(&app, &token, dir.path()).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("no interrupted recording"));
    assert_eq!(seller_files_now(dir.path()), own, "the seller's own files");
    let mp4s: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mp4"))
        .collect();
    assert_eq!(mp4s, [format!("{id}.mp4")], "only the show's copy is made");
}

/// Files of the seller's own in `dir` (a video, a song with no picture, a note whose
/// name ends as a discarded show's marker does, one named as a joined show's is), by
/// name, with the SHA-256 of their bytes.
fn seller_files(dir: &std::path::Path) -> Vec<(String, String)> {
    feza_tests::make_media(&dir.join("holiday.mkv"), (320, 180), 30, 40, 300, "ball");
    let song = dir.join("song.mkv");
    let ok = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "audiotestsrc",
            "num-buffers=40",
            "!",
            "avenc_aac",
            "!",
            "aacparse",
        ])
        .args(["!", "matroskamux", "!", "filesink"])
        .arg(format!("location={}", song.display()))
        .status()
        .expect("run gst-launch-1.0")
        .success();
    assert!(ok, "could not make a song");
    std::fs::write(dir.join("groceries.discard"), b"milk, eggs").unwrap();
    std::fs::write(dir.join("trip.whole.mkv"), b"not a show").unwrap();
    let files = seller_files_now(dir);
    assert_eq!(files.len(), 4, "{files:?}");
    files
}

/// The seller's own files in `dir` as it holds them now: those still there, with the
/// SHA-256 of their bytes.
fn seller_files_now(dir: &std::path::Path) -> Vec<(String, String)> {
    use sha2::Digest;
    [
        "groceries.discard",
        "holiday.mkv",
        "song.mkv",
        "trip.whole.mkv",
    ]
    .into_iter()
    .filter_map(|n| {
        let bytes = std::fs::read(dir.join(n)).ok()?;
        Some((n.to_owned(), format!("{:x}", sha2::Sha256::digest(bytes))))
    })
    .collect()
}

/// The recording disk fills up mid-show: the show goes on, is saved, and its replay is
/// made from what was recorded (most of it sent while live) though neither the MP4 copy
/// nor the upload queue can be written; the copy is made once there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_disk_that_fills_up_still_gives_the_show_its_replay() {
    let Some(disk) = feza_tests::SmallDisk::mount(80) else {
        return;
    };
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let record_dir = disk.path().to_string_lossy().into_owned();
    let live_cast = workspace_bin("live-cast");
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&live_cast);
        cmd.args(args)
            .args(["--record-dir", &record_dir])
            .env("FEZA_SERVER", &app.base)
            .env("FEZA_TOKEN", &token)
            .env("RUST_BACKTRACE", "0")
            .stdin(std::process::Stdio::null());
        cmd
    };
    let show = run(&["go-live", "--title", "Full disk", "--profile", "360p30"])
        .args(["--duration", "12s"])
        .output();
    let filler = async {
        let id = app.first_live_show(Duration::from_secs(20)).await;
        // Two minutes of room left (at the profile's rate): the seller is warned…
        tokio::time::sleep(Duration::from_secs(2)).await;
        let low = disk.fill(15);
        // …and then it is full.
        tokio::time::sleep(Duration::from_secs(3)).await;
        (id, [low, disk.fill(0)])
    };
    let (out, (id, fillers)) = tokio::join!(show, filler);
    let out = out.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("minutes of recording space left"),
        "{stderr}"
    );
    assert!(stdout.contains("the recording stopped early"), "{stdout}");
    assert!(
        stdout.contains("the MP4 copy could not be made"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("replay of {id} is ready")),
        "{stdout}\n{stderr}"
    );
    let replay = app.stream(None, &id).await.replay.unwrap();
    assert_eq!(replay.state, live_core::api::ReplayState::Ready);
    let mkv = disk.path().join(format!("{id}.mkv"));
    let mp4 = disk.path().join(format!("{id}.mp4"));
    let recorded = video_span_s(&mkv.to_string_lossy());
    let replayed = replay.duration_s.unwrap();
    assert!(
        recorded >= 2.0 && (replayed - recorded).abs() < 0.5,
        "replay {replayed:.2} s of {recorded:.2} s recorded"
    );
    // No half-written copy that would pass for one; the recording stays for the copy.
    assert!(!mp4.exists());

    // Room again: the next run makes the copy, and the recording then goes.
    for filler in fillers {
        std::fs::remove_file(filler).unwrap();
    }
    let recovered = run(&["recover"]).output().await.unwrap();
    let said = String::from_utf8_lossy(&recovered.stdout);
    assert!(recovered.status.success(), "{said}");
    assert!(said.contains("archived"), "{said}");
    let mp4 = mp4.to_string_lossy().into_owned();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    assert!((duration_s(&mp4) - replayed).abs() < 0.5);
    let resumed = run(&["uploads", "--resume"]).output().await.unwrap();
    assert!(resumed.status.success());
    assert!(!mkv.exists(), "the replay is ready and the MP4 made");
}

// The recording's disk takes nothing for 10 s mid-show (a drive waking up or failing, a
// network folder gone quiet). The recording waited for it, and the encoder for the
// recording: the show froze for viewers, the frames of those seconds were skipped, in
// the recording too, and the seller was told the computer was too busy. Now the show
// waits in memory for the disk: viewers see it as it is, the seller is told about the
// disk, and once the disk takes writes again the recording is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_disk_that_stalls_never_holds_up_the_live_show() {
    let Some(disk) = feza_tests::StallingDisk::mount() else {
        return;
    };
    let (app, ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = run_until_notified(&client, test_show(disk.path(), vec![]), stop.clone(), rx);
    let script = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        let live = Instant::now();
        let url = ingest_play_url(&app, &id, ingest.rtmp_port).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        disk.stall(true);
        let stalled = Instant::now();
        // A viewer joins 6 s into the stall: where is the show at the ingest?
        tokio::time::sleep(Duration::from_secs(6)).await;
        let asked = live.elapsed().as_secs_f64();
        let viewer = tokio::task::spawn_blocking(move || first_sound_at(&url));
        tokio::time::sleep_until((stalled + Duration::from_secs(10)).into()).await;
        disk.stall(false);
        let at = viewer.await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.notify_one();
        asked - at.expect("the viewer got the show's sound")
    };
    let ((report, lines, alerts), behind) = tokio::join!(session, script);
    // (A viewer joining the ingest's stream is 2–3 s behind; a show frozen since the
    // stall began would be 6 s more.)
    assert!(behind < 4.5, "the viewer is {behind:.1} s behind the show");
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::DiskSlow
            && a.message.contains("the recording's disk")
            && a.message.contains("is not keeping up")),
        "the seller is told about the disk: {alerts:#?}"
    );
    assert!(
        alerts.iter().all(|a| a.kind != AlertKind::TooBusy),
        "the disk is not the computer being busy: {alerts:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" s waiting for the disk")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("skipped")),
        "no frame was skipped: {lines:#?}"
    );
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

// The recording's disk stops taking writes just before the show ends and comes back
// 25 s later. The end gives the disk up after 10 s: the show is ended on the server and
// saved, its connection ends with it (not made anew once the ingest drops it as idle),
// the replay is made from what the disk had, and the recording stays (the disk may
// still write the end to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_ended_while_its_recording_disk_is_stalled_is_ended_and_saved() {
    let Some(disk) = feza_tests::StallingDisk::mount() else {
        return;
    };
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let mut cmd = live_cast_go_live(&app, &token);
    cmd.args([
        "--title",
        "Stalled end",
        "--profile",
        "360p30",
        "--duration",
        "10s",
    ])
    .args([
        "--outcome",
        "save",
        "--no-progressive-upload",
        "--record-dir",
    ])
    .arg(disk.path());
    let child = cmd.spawn().unwrap();
    let script = async {
        let id = app.first_live_show(Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_secs(7)).await;
        disk.stall(true);
        tokio::time::sleep(Duration::from_secs(25)).await;
        disk.stall(false);
        id
    };
    let (out, id) = tokio::join!(output_within(child, 120, "the show to end"), script);
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("the recording's disk took nothing for 10 s as the show ended"),
        "{said}"
    );
    assert!(!said.contains("reconnecting"), "{said}");
    assert!(said.contains(&format!("replay of {id} is ready")), "{said}");
    let show = app.stream(None, &id).await;
    assert_eq!(show.status, StreamStatus::Archived);
    let replayed = show.replay.unwrap().duration_s.unwrap();
    let mkv = disk.path().join(format!("{id}.mkv"));
    assert!(mkv.exists(), "the recording is kept: {said}");
    let recorded = video_span_s(&mkv.to_string_lossy());
    assert!(
        replayed >= 5.0 && recorded >= replayed - 0.1,
        "replay {replayed:.2} s, recording {recorded:.2} s"
    );
}

/// Sends SIGINT, as Ctrl-C on the seller's terminal does.
fn ctrl_c(child: &tokio::process::Child) {
    signal(child, "-INT");
}

/// Ctrl-C ends the show; another during the upload after it pauses the upload at once
/// (a slow uplink never holds the seller's terminal), and the next run resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_the_show_and_another_pauses_its_upload_for_the_next_run() {
    use tokio::io::AsyncBufReadExt;
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let record_dir = dir.path().to_string_lossy().into_owned();
    let live_cast = workspace_bin("live-cast");
    // 20 kB/s: the recording (≈ 50 kB a second of show) takes several times the show.
    let mut child = tokio::process::Command::new(&live_cast)
        .args(["go-live", "--title", "Pause test", "--profile", "360p30"])
        .args(["--no-progressive-upload", "--upload-limit-mbps", "0.02"])
        .args(["--upload-chunk-mib", "1", "--record-dir", &record_dir])
        .env("FEZA_SERVER", &app.base)
        .env("FEZA_TOKEN", &token)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start live-cast");
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let mut line_with = async |what: &str, within: Duration| -> String {
        let found = tokio::time::timeout(within, async {
            while let Some(l) = out.next_line().await.unwrap() {
                printed.push(l.clone());
                if l.contains(what) {
                    return Some(l);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(l)) => l,
            _ => panic!("no line with {what:?} within {within:?}: {printed:#?}"),
        }
    };
    let id = app.first_live_show(Duration::from_secs(20)).await;
    line_with("show live", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    ctrl_c(&child);
    let ended = line_with("ended", Duration::from_secs(15)).await;
    assert!(
        ended.contains(&format!("show {id} ended (archived)")),
        "{ended}"
    );
    // The one request of the upload is under way, and its progress shows.
    let progress = line_with(&format!("upload {id}: "), Duration::from_secs(5)).await;
    assert!(progress.contains("kB/s"), "{progress}");
    let percent = feza_tests::upload_percent(&progress);
    assert!(percent > 0.0 && percent < 100.0, "{progress}");

    let interrupted = Instant::now();
    ctrl_c(&child);
    let paused = line_with("paused", Duration::from_secs(3)).await;
    let status = tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .expect("live-cast quits at once when its upload is paused")
        .unwrap();
    let took = interrupted.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        paused.contains(&format!("upload of {id} paused"))
            && paused.contains("live-cast uploads --resume"),
        "{paused}"
    );
    // The server holds only what the seller's limit let through: not all of it.
    assert!(!paused.contains("(100 %)"), "{paused}");
    assert_ne!(
        app.stream(None, &id).await.replay.map(|r| r.state),
        Some(live_core::api::ReplayState::Ready)
    );

    // Queued for the next run, which finishes it.
    let run = |args: &[&str]| {
        std::process::Command::new(&live_cast)
            .args(args)
            .args(["--record-dir", &record_dir])
            .env("FEZA_SERVER", &app.base)
            .env("FEZA_TOKEN", &token)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    let list = String::from_utf8_lossy(&run(&["uploads"]).stdout).into_owned();
    assert!(
        list.lines()
            .any(|l| l.contains(&id) && l.contains("queued")),
        "{list}"
    );
    let resumed = run(&["uploads", "--resume"]);
    let resumed_out = String::from_utf8_lossy(&resumed.stdout);
    assert!(resumed.status.success(), "{resumed_out}");
    assert!(
        resumed_out.contains(&format!("replay of {id} is ready")),
        "{resumed_out}"
    );
    let replay = app.stream(None, &id).await.replay.unwrap();
    assert_eq!(replay.state, live_core::api::ReplayState::Ready);
    eprintln!("paused {took:?} after the second Ctrl-C: {paused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmps_through_a_tls_front_reaches_the_ingest() {
    use feza_tests::ingest::{IngestPorts, TlsFront};
    let ports = IngestPorts::pick();
    // stunnel terminates TLS in front of nginx-rtmp: the server hands out rtmps://.
    let tls = TlsFront::start(ports.rtmp);
    let (app, _ingest) =
        stack_reached_at(ports, format!("rtmps://127.0.0.1:{}/live", tls.port)).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Its certificate is self-signed: refused by default, with a reason…
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = run_until_notified(&client, test_show(dir.path(), vec![]), stop.clone(), rx);
    let script = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.notify_one();
    };
    let ((refused, lines, _), ()) = tokio::join!(session, script);
    let last = lines.last().unwrap();
    assert!(
        last.contains("out0 rtmps://") && last.contains("reconnecting"),
        "{last}"
    );
    assert!(last.to_lowercase().contains("certificate"), "{last}");
    // It never reached viewers, so the server has it cancelled, not ended.
    assert_eq!(refused.stream.status, StreamStatus::Cancelled);

    // …and accepted when the seller trusts that ingest's authority.
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let mut trusting = test_show(dir.path(), vec![]);
    trusting.tls = live_media::TlsTrust::AllowUnknownCa;
    let session = run_until_notified(&client, trusting, stop.clone(), rx);
    let viewer = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        let found = hls_codecs(&app, &id).await;
        stop.notify_one();
        found
    };
    let ((report, lines, _), found) = tokio::join!(session, viewer);
    assert_eq!(found, vec!["aac", "h264"]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("out0 rtmps://") && output_state(l, 0) == "live")
    );
    assert_eq!(report.stream.status, StreamStatus::Archived);
}

/// A machine too busy for the profile (live-cast held to 15 % of a core once live,
/// where 720p30 takes more than twice that): the encoder skips frames instead of
/// letting the show fall ever further behind real time, the stats count them, and
/// the seller is told what to do. The recording still spans the whole show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_too_busy_for_the_profile_skips_frames_and_stays_live() {
    let Some(limit) = feza_tests::CpuLimit::new(15) else {
        return;
    };
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = live_cast_go_live(&app, &token);
    cmd.args([
        "--title",
        "Busy",
        "--profile",
        "720p30",
        "--duration",
        "20s",
    ])
    .args(["--no-progressive-upload", "--keep-recording"])
    .args(["--record-dir", "shows"])
    // A record dir relative to where live-cast runs, as a seller types it.
    .current_dir(dir.path());
    let (id, out) = run_busy(&app, &limit, cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("skipped (CPU too busy)"), "{stdout}");
    assert!(
        stderr.contains("too busy to encode 720p30") && stderr.contains("(480p30)"),
        "{stderr}"
    );
    let shown: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("show {id} ended (archived) after ")))
        .and_then(|l| l.trim_end_matches(" s").parse().ok())
        .unwrap_or_else(|| panic!("no end line in {stdout}"));
    let mp4 = dir.path().join("shows").join(format!("{id}.mp4"));
    let mp4 = mp4.to_string_lossy();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"], "{stdout}\n{stderr}");
    let video = video_span_s(&mp4);
    let audio = audio_span_s(&mp4);
    let frames = video_pts(&mp4).len();
    eprintln!("show {shown:.2} s, video {video:.2} s ({frames} frames), audio {audio:.2} s");
    // Behind real time, the recording would be seconds short of the show (a show
    // held to 15 % of a core fell 60 % behind); skipping, it keeps up.
    assert!(
        (shown - video).abs() < 1.0,
        "video {video:.2} s of a {shown:.2} s show"
    );
    assert!(
        (shown - audio).abs() < 1.0,
        "audio {audio:.2} s of a {shown:.2} s show"
    );
    assert!(
        (frames as f64) < 0.9 * 30.0 * video,
        "{frames} frames in {video:.2} s: nothing was skipped, so the machine was not busy"
    );
}

/// A show ended (or killed) before its first frame leaves a recording with no picture
/// (its audio starts first). Remuxing that waited forever for the video (ten minutes,
/// then every later run's recovery did the same); now it is seen at once, and the
/// recording, which holds nothing, is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_ended_before_its_first_frame_is_cleared_at_once() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let live_cast = workspace_bin("live-cast");
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&live_cast);
        cmd.args(args)
            .arg("--record-dir")
            .arg(dir.path())
            .env("FEZA_SERVER", &app.base)
            .env("FEZA_TOKEN", &token)
            .stdin(std::process::Stdio::null());
        cmd
    };
    let within = |what: &'static str, cmd: &mut tokio::process::Command| {
        let out = cmd.output();
        async move {
            let out = tokio::time::timeout(Duration::from_secs(60), out)
                .await
                .unwrap_or_else(|_| panic!("{what} still running after 60 s"))
                .unwrap();
            let said = printed(&out);
            assert!(out.status.success(), "{what}: {said}");
            said
        }
    };
    // Left by shows killed before their first frame: Matroska with its audio only, and
    // (killed sooner, or on a busy computer) its headers only, which no player reads;
    // each noted as its broadcaster notes the recordings it makes.
    feza_tests::ingest::require("gst-launch-1.0", "gstreamer1.0-tools");
    let left_over = |name: &str, buffers: u32| {
        use std::io::Write;
        let mut made_here = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(".feza-recordings"))
            .unwrap();
        writeln!(made_here, "{name}").unwrap();
        let left = dir.path().join(format!("{name}.mkv"));
        let made = std::process::Command::new("gst-launch-1.0")
            .args(["-q", "audiotestsrc", &format!("num-buffers={buffers}")])
            .args(["!", "avenc_aac", "!", "aacparse"])
            .args(["!", "matroskamux", "streamable=true", "!", "filesink"])
            .arg(format!("location={}", left.display()))
            .status()
            .unwrap();
        assert!(made.success());
        left
    };
    let sound_only = left_over("01a2000000000000000000000000dead", 5);
    assert_eq!(codecs(&sound_only.to_string_lossy()), vec!["aac"]);
    let headers_only = left_over("01a2000000000000000000000000beef", 0);
    let said = within("recover", &mut run(&["recover"])).await;
    assert!(said.contains("no interrupted recording"), "{said}");
    for left in [sound_only, headers_only] {
        assert!(
            !left.exists(),
            "a recording with no picture is removed: {said}"
        );
    }

    // A show ended at once: whatever it recorded, the run ends in seconds and leaves
    // no recording without a picture, and no half MP4.
    let said = within(
        "go-live --duration 0s",
        &mut run(&["go-live", "--title", "Gone", "--duration", "0s"]),
    )
    .await;
    assert!(said.contains("ended (cancelled)"), "{said}");
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let path = entry.path();
        let name = path.to_string_lossy().into_owned();
        assert!(!name.ends_with(".part"), "{name}");
        if name.ends_with(".mkv") || name.ends_with(".mp4") {
            assert_eq!(codecs(&name), vec!["aac", "h264"], "{name}: {said}");
        }
    }
}

/// The ingest stays away longer than the server's reconnect grace: the server ends
/// the show, and the broadcaster ends with it (rather than stream on to an ingest that
/// now refuses it, with viewers long gone), tells the seller why, and the show is
/// still saved with its whole recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_the_server_ends_after_its_ingest_was_lost_ends_here_too_and_is_saved() {
    let (app, mut ingest) = stack(2).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let record_dir = tempfile::tempdir().unwrap();
    let never = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = tokio::time::timeout(
        Duration::from_secs(120),
        run_until_notified(&client, test_show(record_dir.path(), vec![]), never, rx),
    );
    let script = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        // Killed after its first "still publishing" call (every 3 s): the server takes
        // it as gone 20 s after its last, and ends the show 2 s later.
        tokio::time::sleep(Duration::from_secs(6)).await;
        ingest.kill();
        eventually(
            "the server to end the show",
            Duration::from_secs(60),
            || async {
                (app.stream(Some(&token), &id).await.status == StreamStatus::Ended).then_some(())
            },
        )
        .await;
        // The ingest is back, too late for this show.
        tokio::task::block_in_place(|| ingest.restart());
        (id, Instant::now())
    };
    let (ended, (id, server_ended)) = tokio::join!(session, script);
    let (report, _, alerts) = ended.expect("the broadcaster ended with the show");
    assert!(
        server_ended.elapsed() < Duration::from_secs(10),
        "it went on {:?} after the server ended the show",
        server_ended.elapsed()
    );
    assert_eq!(report.stream.id, id);
    assert_eq!(report.stream.status, StreamStatus::Archived);
    assert_eq!(
        report.stream.end_reason,
        Some(live_core::EndReason::IngestLost)
    );
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::EndedOnServer
            && a.message.contains("the server ended the show")
            && a.message.contains("go live again")),
        "{alerts:#?}"
    );
    // The recording went on through the outage: the whole show is there.
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
    assert!(
        (duration_s(&mp4) - report.duration.as_secs_f64()).abs() < 0.5,
        "{:.2} s recorded of {:.2} s",
        duration_s(&mp4),
        report.duration.as_secs_f64()
    );
}

/// A show ended before its microphone was first heard (this one is heard 1.5 s after
/// it starts) ends without a word of the microphone: it gave no sound yet, and is not
/// said to give none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_ended_before_its_microphone_is_heard_says_nothing_of_it() {
    let Some(sound) = feza_tests::SoundServer::start() else {
        return;
    };
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let out = live_cast_go_live(&app, &token)
        .args([
            "--title",
            "Short",
            "--profile",
            "360p30",
            "--duration",
            "1s",
        ])
        .args(["--microphone", feza_tests::SoundServer::MICROPHONE])
        .args(["--no-progressive-upload", "--outcome", "discard"])
        .arg("--record-dir")
        .arg(dir.path())
        .envs(sound.env())
        .output()
        .await
        .unwrap();
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("the microphone"), "{said}");
}

/// A microphone pulled out mid-show (a USB headset, a Bluetooth one out of range) took
/// the whole show down with it; now the show goes on silent, every connection and the
/// recording untouched, the seller is told, and the microphone is heard again as soon
/// as it is back. The microphone is a real PulseAudio device (a tone source), found
/// by the device monitor, unplugged and plugged back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_pulled_out_mid_show_leaves_silence_and_is_heard_again_once_back() {
    let Some(sound) = feza_tests::SoundServer::start() else {
        return;
    };
    let pulled = Pulled::microphone(feza_tests::SoundServer::MICROPHONE, sound.env());
    let (_dir, mp4) = pulled_out_mid_show(pulled, || sound.unplug(), || sound.plug()).await;
    assert_heard_again(&mp4, 11.0);
}

/// The same with a microphone shared through PipeWire (as desktops share them), which
/// does not fail when it goes but sends nothing more: the show was left silent for
/// good, nothing said, and the microphone was never heard again once back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipewire_microphone_pulled_out_mid_show_is_heard_again_once_back() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    let pulled = Pulled::microphone(feza_tests::PipeWire::MICROPHONE, pipewire.env());
    let (_dir, mp4) = pulled_out_mid_show(
        pulled,
        || pipewire.unplug_microphone(),
        || pipewire.plug_microphone(),
    )
    .await;
    // Found gone 3 s after its last sound, at the next look (live-cast looks every 2
    // s) and a look after that: 5 to 7 s after it went, perhaps after it is back (6 s),
    // then looked for 2 s later: up to 2 s longer than the PulseAudio one.
    assert_heard_again(&mp4, 13.0);
}

/// A microphone that hangs mid-show (listed again, but it never starts: its driver
/// hung) held live-cast's every step: no more stats, and the show could not end, by
/// Ctrl-C or its duration. The show goes on now, silent, the seller told once and not
/// told it is back until it is heard; once a working microphone of that name is back,
/// it is heard again, and the show ends on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_hangs_mid_show_neither_stops_the_show_nor_flaps() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let device = ["--microphone", feza_tests::PipeWire::MICROPHONE];
    let child = pipewire_go_live(
        &app,
        &token,
        &pipewire,
        &dir,
        "Hung microphone",
        device,
        "30s",
    )
    .spawn()
    .unwrap();
    let id = app.first_live_show(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    pipewire.unplug_microphone();
    pipewire.plug_hung_microphone();
    // Found gone 5-7 s after it went, then looked for every 2 s: tried hung at least
    // three times.
    tokio::time::sleep(Duration::from_secs(14)).await;
    pipewire.unplug_microphone();
    pipewire.plug_microphone();
    let out = output_within(child, 45, "the show ends on time").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("show {id} ended (archived)")),
        "{stdout}"
    );
    for l in stderr.lines().filter(|l| l.contains("microphone")) {
        eprintln!("{l}");
    }
    assert_eq!(
        stderr.matches("the microphone stopped").count(),
        1,
        "told once: {stderr}"
    );
    assert_eq!(
        stderr.matches("the microphone is back").count(),
        1,
        "back once, when heard: {stderr}"
    );
    let stats: Vec<&str> = stdout.lines().filter(|l| l.contains(" | show ")).collect();
    // A stats line every 2 s through the whole show, the hung microphone's time too.
    assert!(stats.len() >= 13, "stats all along: {stats:#?}");
    assert!(
        stats.last().is_some_and(|l| !l.contains("mic LOST")),
        "heard again by the end: {stats:#?}"
    );
    let mp4 = dir.path().join(format!("{id}.mp4"));
    let mp4 = mp4.to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
    // Silent from its going (5 s) until the working one is back (14 s later), found
    // and heard: at most 5 s more.
    assert_heard_again(&mp4, 21.0);
}

/// The tone (once the microphone has started, in its first second or two), then
/// silence from the unplugging (6 s) until the microphone is found again (looked for
/// every 2 s, then started again), then the tone to the end: a silence of 5 s to
/// `longest`.
fn assert_heard_again(mp4: &str, longest: f64) {
    let audio = audio_span_s(mp4);
    let silent = feza_tests::probe::silent_spans(mp4);
    eprintln!("silent spans {silent:?} in {audio:.2} s");
    let (first, rest) = match silent.first() {
        Some(&(start, length)) if start < 0.5 && length < 2.5 => (Some(length), &silent[1..]),
        _ => (None, &silent[..]),
    };
    eprintln!("the microphone started after {first:?} s");
    let [(start, length)] = rest else {
        panic!("one silence, in the middle: {silent:?}");
    };
    assert!(*start > 3.0 && start + length < audio - 3.0, "{silent:?}");
    assert!((5.0..=longest).contains(length), "{silent:?}");
}

/// A camera pulled out mid-show (a USB camera, a loose cable) took the whole show
/// down with it, or (a camera shared by PipeWire, as desktops share them) froze the
/// picture with nothing said; now the show goes on in black, every connection and
/// the recording untouched, the seller is told, and the camera's picture is back as
/// soon as the camera is. The camera is a real PipeWire video source, found by the
/// device monitor, unplugged and plugged back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_pulled_out_mid_show_leaves_black_and_is_seen_again_once_back() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    let pulled = Pulled::camera(pipewire.env());
    let (_dir, mp4) = pulled_out_mid_show(pulled, || pipewire.unplug(), || pipewire.plug()).await;
    // The camera's bars, then black from the unplugging (6 s) until the camera is
    // found again (looked for every 2 s), then the bars to the end.
    assert_seen_again(&mp4, 5.0..=11.0);
}

/// A camera that hangs mid-show (listed, but its program stopped) and is then
/// replaced by a working one of the same name (its program started again): black
/// while it hangs, then its picture again, whatever its hung stop holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_hangs_mid_show_is_seen_again_once_it_works() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    let pulled = Pulled::camera(pipewire.env());
    let (_dir, mp4) = pulled_out_mid_show(
        pulled,
        || pipewire.hang(),
        || {
            pipewire.unplug();
            pipewire.plug();
        },
    )
    .await;
    // Frozen 1.5 s, then black until the working camera is found (6 s after the
    // hang): 4.5 s and up to two looks more.
    assert_seen_again(&mp4, 4.0..=11.0);
}

/// The camera's bars, then one stretch of black in the middle, as long as `lasts`,
/// then the bars to the end.
fn assert_seen_again(mp4: &str, lasts: std::ops::RangeInclusive<f64>) {
    let video = video_span_s(mp4);
    let black = feza_tests::probe::black_spans(mp4);
    eprintln!("black spans {black:?} in {video:.2} s");
    let [(start, length)] = black[..] else {
        panic!("one stretch of black, in the middle: {black:?}");
    };
    assert!(start > 3.0 && start + length < video - 3.0, "{black:?}");
    assert!(lasts.contains(&length), "{black:?}");
}

/// A camera that gives its picture as JPEG only (as many USB cameras give their
/// larger sizes at full rate, raw only at 5 or 10 frames a second) could not be used at
/// all: its picture went straight to a converter of raw pictures. Its JPEG picture is
/// decoded now, at the camera's full rate: every frame of the show a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_gives_jpeg_only_is_shown_at_its_full_frame_rate() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    pipewire.unplug();
    pipewire.plug_jpeg();
    let (app, ingest) = feza_tests::stack_alone(60).await;
    let (_dir, said, mp4) = camera_show_on(&app, ingest, &pipewire, "JPEG camera", "6s").await;
    assert!(!said.contains("camera LOST"), "{said}");
    assert!(
        !said.contains("enlarged") && !said.contains("frames a second and"),
        "a camera giving the show's size and rate: {said}"
    );
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
    let frames = feza_tests::probe::decoded_video_frames(&mp4);
    let distinct = feza_tests::probe::distinct_frames(&mp4);
    eprintln!("{distinct} distinct frames of {frames}");
    // 180 of 181 (the show alone on the machine: beside another show, a frame encoded
    // late is shown twice); at 20, 15 or 10 frames a second, two thirds, half or a
    // third.
    assert!(
        distinct as f64 >= frames as f64 * 0.9,
        "the camera's every frame: {distinct} distinct frames of {frames}"
    );
    assert_eq!(
        feza_tests::probe::black_spans(&mp4),
        vec![],
        "the camera's picture"
    );
}

/// A camera giving a smaller picture than the show's (an old webcam), or fewer frames
/// a second (a laptop's in low light), had its picture enlarged and its frames repeated
/// without a word: the seller paid the bandwidth of a sharp show that looked soft. It
/// is said at go-live, with a profile that fits when there is one; the show goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_smaller_or_slower_than_the_show_is_said_at_go_live() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    pipewire.unplug();
    pipewire.plug_small();
    let (_dir, said, mp4) = camera_show(&pipewire, "Old webcam", "3s").await;
    assert!(
        said.contains(
            "the camera gives a picture of 320×240 and the show is 640×360: viewers see it \
             enlarged"
        ),
        "{said}"
    );
    assert!(
        said.contains("the camera gives 15 frames a second and the show runs at 30"),
        "{said}"
    );
    // Said once, at go-live, not on every stats line.
    assert_eq!(said.matches("enlarged").count(), 1, "{said}");
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

/// A show of `duration` at 360p30 from the PipeWire camera, ended by itself and kept:
/// the recording's folder, what live-cast said, and the MP4 copy.
async fn camera_show(
    pipewire: &feza_tests::PipeWire,
    title: &str,
    duration: &str,
) -> (tempfile::TempDir, String, String) {
    let (app, ingest) = stack(60).await;
    camera_show_on(&app, ingest, pipewire, title, duration).await
}

/// [`camera_show`] on a stack made already (one holding the machine alone).
async fn camera_show_on(
    app: &feza_tests::TestApp,
    _ingest: feza_tests::ingest::Ingest,
    pipewire: &feza_tests::PipeWire,
    title: &str,
    duration: &str,
) -> (tempfile::TempDir, String, String) {
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let device = ["--source", feza_tests::PipeWire::CAMERA];
    let child = pipewire_go_live(app, &token, pipewire, &dir, title, device, duration)
        .spawn()
        .unwrap();
    let out = output_within(child, 60, "the show ends by itself").await;
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    let mp4 = said
        .lines()
        .find_map(|l| l.strip_prefix("recording: "))
        .unwrap_or_else(|| panic!("no MP4 copy: {said}"));
    let mp4 = mp4.to_owned();
    (dir, said, mp4)
}

/// A 360p30 go-live of `duration` from `device` (its flag and id) on the test's
/// PipeWire server, its recording kept in `dir`.
fn pipewire_go_live(
    app: &feza_tests::TestApp,
    token: &str,
    pipewire: &feza_tests::PipeWire,
    dir: &tempfile::TempDir,
    title: &str,
    device: [&str; 2],
    duration: &str,
) -> tokio::process::Command {
    let mut cmd = live_cast_go_live(app, token);
    cmd.args(["--title", title, "--profile", "360p30"])
        .args(device)
        .args(["--no-progressive-upload", "--keep-recording"])
        .args(["--duration", duration])
        .arg("--record-dir")
        .arg(dir.path())
        .envs(pipewire.env());
    cmd
}

/// A camera that is there but sends no picture (another program holds it, or it
/// hung) is a clear error before the show is announced, not a show of a frozen or
/// black picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_sends_no_picture_is_a_clear_error_before_the_show_is_announced() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    pipewire.hang();
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let device = ["--source", feza_tests::PipeWire::CAMERA];
    let child = pipewire_go_live(&app, &token, &pipewire, &dir, "Hung camera", device, "10s")
        .spawn()
        .unwrap();
    let out = output_within(child, 30, "live-cast gives up on the camera").await;
    let said = printed(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "the camera {} cannot be used: it gave no picture within 5 s; check that no \
             other program is using it",
            feza_tests::PipeWire::CAMERA
        )),
        "{said}"
    );
    for section in ["live", "upcoming", "recent"] {
        assert_eq!(
            app.section_ids(section).await,
            Vec::<String>::new(),
            "{section}"
        );
    }
}

/// A microphone that is there but sends no sound at go-live (its driver hung) held
/// go-live for 30 s, the show announced meanwhile and then called off. The show goes
/// live now, on time, silent, and the seller is told once what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_sends_no_sound_at_go_live_leaves_the_show_silent_and_says_so() {
    let Some(pipewire) = feza_tests::PipeWire::start() else {
        return;
    };
    pipewire.unplug_microphone();
    pipewire.plug_hung_microphone();
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let device = ["--microphone", feza_tests::PipeWire::MICROPHONE];
    let started = std::time::Instant::now();
    let child = pipewire_go_live(
        &app,
        &token,
        &pipewire,
        &dir,
        "Hung microphone",
        device,
        "10s",
    )
    .spawn()
    .unwrap();
    let id = app.first_live_show(Duration::from_secs(10)).await;
    let out = output_within(child, 30, "the show ends on time").await;
    let took = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("show {id} ended (archived)")),
        "{stdout}"
    );
    assert!(took < 20.0, "a 10 s show took {took:.1} s");
    assert_eq!(
        stderr
            .matches(
                "the microphone gives no sound (it sent no sound for 3 s): viewers hear \
                 silence until it does; check that no other program is using it"
            )
            .count(),
        1,
        "told once: {stderr}"
    );
    assert!(!stderr.contains("the microphone is back"), "{stderr}");
    assert!(stdout.contains("mic LOST"), "the stats say so: {stdout}");
    let mp4 = dir.path().join(format!("{id}.mp4"));
    let mp4 = mp4.to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
    let audio = audio_span_s(&mp4);
    let silent = feza_tests::probe::silent_spans(&mp4);
    assert!(
        matches!(silent[..], [(start, length)] if start < 0.1 && length > audio - 0.2),
        "silent through the show: {silent:?} in {audio:.2} s"
    );
}

/// A device pulled out of a show and plugged back in.
struct Pulled {
    /// "camera" or "microphone", as live-cast names it.
    kind: &'static str,
    /// The go-live option that names the device.
    flag: &'static str,
    device: &'static str,
    /// What live-cast needs to find the device.
    env: Vec<(&'static str, String)>,
    /// What the seller is told viewers get instead.
    told: &'static str,
    /// What the stats lines say while it is away.
    lost: &'static str,
}

impl Pulled {
    /// Microphone `device`, found with `env`.
    fn microphone(device: &'static str, env: [(&'static str, String); 2]) -> Self {
        Self {
            kind: "microphone",
            flag: "--microphone",
            device,
            env: env.to_vec(),
            told: "viewers hear silence",
            lost: "mic LOST",
        }
    }

    /// The PipeWire camera, found with `env`.
    fn camera(env: [(&'static str, String); 2]) -> Self {
        Self {
            kind: "camera",
            flag: "--source",
            device: feza_tests::PipeWire::CAMERA,
            env: env.to_vec(),
            told: "viewers see black",
            lost: "camera LOST",
        }
    }
}

/// A 24 s 360p show from the device, pulled out 5 s after the show is live and plugged
/// back in 6 s later: the show ends by itself, saved, no connection dropped, the seller
/// told when the device went and when it came back, the stats saying so meanwhile and
/// no more by the end, the MP4 copy gapless with picture and sound to its end.
/// Returns the MP4 copy (and its folder).
async fn pulled_out_mid_show(
    pulled: Pulled,
    unplug: impl FnOnce(),
    plug: impl FnOnce(),
) -> (tempfile::TempDir, String) {
    let Pulled {
        kind,
        flag,
        device,
        env,
        told,
        lost,
    } = pulled;
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let devices = tokio::process::Command::new(workspace_bin("live-cast"))
        .arg("devices")
        .envs(env.clone())
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&devices.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(kind) && l.contains(device)),
        "the {kind} is listed: {listed}"
    );
    let child = live_cast_go_live(&app, &token)
        .args(["--title", "Unplugged", "--profile", "360p30"])
        .args([flag, device])
        .args(["--no-progressive-upload", "--keep-recording"])
        .args(["--duration", "24s"])
        .arg("--record-dir")
        .arg(dir.path())
        .envs(env)
        .spawn()
        .unwrap();
    let id = app.first_live_show(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    unplug();
    tokio::time::sleep(Duration::from_secs(6)).await;
    plug();
    let out = output_within(child, 60, "the show ends by itself").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("show {id} ended (archived)")),
        "{stdout}"
    );
    for l in stderr.lines().filter(|l| l.contains(kind)) {
        eprintln!("{l}");
    }
    assert!(
        stderr.contains(&format!("the {kind} stopped")) && stderr.contains(told),
        "the seller is told: {stderr}"
    );
    assert!(stderr.contains(&format!("the {kind} is back")), "{stderr}");
    assert!(stdout.contains(lost), "the stats say so: {stdout}");
    let stats: Vec<&str> = stdout.lines().filter(|l| l.contains(" | show ")).collect();
    assert!(
        stats.last().is_some_and(|l| !l.contains(lost)),
        "the {kind} is back by the end: {stats:#?}"
    );
    assert!(
        stats.iter().all(|l| l.contains("reconnects 0")),
        "no connection dropped: {stats:#?}"
    );
    let mp4 = dir.path().join(format!("{id}.mp4"));
    let mp4 = mp4.to_string_lossy().into_owned();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
    let (video, audio) = (video_span_s(&mp4), audio_span_s(&mp4));
    assert!(
        (video - audio).abs() < 0.5,
        "picture and sound through the whole show: video {video:.2} s, audio {audio:.2} s"
    );
    (dir, mp4)
}

/// The MP4 copy is written with its index in front, for which the muxer holds the
/// media in a file until the end; that file was in /tmp, often a small tmpfs in
/// memory, so a long show's copy failed there (and every later try too) whatever room
/// the recording's disk had. It is beside the recording now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mp4_copy_needs_no_room_outside_the_recording_folder() {
    let Some(tmp) = feza_tests::SmallDisk::mount(1) else {
        return;
    };
    tmp.fill(0);
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(workspace_bin("live-cast"))
        .args(["go-live", "--title", "Full tmp", "--profile", "360p30"])
        .args([
            "--duration",
            "4s",
            "--no-progressive-upload",
            "--keep-recording",
        ])
        .arg("--record-dir")
        .arg(dir.path())
        .env("TMPDIR", tmp.path())
        .env("FEZA_SERVER", &app.base)
        .env("FEZA_TOKEN", &token)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    let mp4 = said
        .lines()
        .find_map(|l| l.strip_prefix("recording: "))
        .unwrap_or_else(|| panic!("no MP4 copy: {said}"));
    assert_eq!(codecs(mp4), vec!["aac", "h264"]);
    let length = duration_s(mp4);
    assert!((3.5..=4.5).contains(&length), "{length:.2} s");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".feza-recordings")
        .collect();
    assert!(left.is_empty(), "left beside the recording: {left:?}");
}

/// A microphone's sound on a computer too busy for the show (a core held to 15 %):
/// it came too late for the mixer now and then, leaving gaps of 0.1 to 0.3 s every
/// second or two; the mixer waits for it a little, and the sound is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_machine_keeps_the_microphones_sound_whole() {
    let Some(sound) = feza_tests::SoundServer::start() else {
        return;
    };
    let Some(limit) = feza_tests::CpuLimit::new(15) else {
        return;
    };
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = live_cast_go_live(&app, &token);
    cmd.args(["--title", "Busy, with a microphone"])
        .args(["--microphone", feza_tests::SoundServer::MICROPHONE])
        .args(["--profile", "720p30", "--duration", "16s"])
        .args(["--no-progressive-upload", "--keep-recording"])
        .arg("--record-dir")
        .arg(dir.path())
        .envs(sound.env());
    let (id, out) = run_busy(&app, &limit, cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("skipped (CPU too busy)"), "busy: {stdout}");
    let mp4 = dir.path().join(format!("{id}.mp4"));
    let mp4 = mp4.to_string_lossy();
    let audio = audio_span_s(&mp4);
    // The microphone's first second or two (it starts) and the last moment aside.
    // Without the wait: 13 gaps in 16 s. With it: none (one at most, with the rest
    // of the suite loading the machine too).
    let gaps: Vec<(f64, f64)> = feza_tests::probe::silent_spans_of(&mp4, 0.1)
        .into_iter()
        .filter(|&(start, length)| start > 2.5 && start + length < audio - 0.5)
        .collect();
    eprintln!("gaps in the sound of {audio:.2} s: {gaps:?}");
    assert!(
        gaps.len() <= 1 && gaps.iter().all(|(_, length)| *length < 0.5),
        "gaps in the sound of {audio:.2} s: {gaps:?}"
    );
}

/// `live-cast go-live` as a seller runs it against `app` (more arguments to add): no
/// input, its output kept.
fn live_cast_go_live(app: &feza_tests::TestApp, token: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(workspace_bin("live-cast"));
    cmd.arg("go-live")
        .env("FEZA_SERVER", &app.base)
        .env("FEZA_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Runs `cmd` (a go-live) to its end, held to `limit` from the moment its show is
/// live; returns the show's id and what it printed.
async fn run_busy(
    app: &feza_tests::TestApp,
    limit: &feza_tests::CpuLimit,
    mut cmd: tokio::process::Command,
) -> (String, std::process::Output) {
    let child = cmd.spawn().unwrap();
    let id = app.first_live_show(Duration::from_secs(20)).await;
    limit.add(child.id().expect("still running"));
    (id, child.wait_with_output().await.unwrap())
}

/// A seller ends a show to be discarded while the server is slow to answer, loses
/// patience and presses Ctrl-C twice more: the second says what is going on, the third
/// quits at once. The discard was only noted once telling the server had failed, so a
/// live-cast stopped before that (quit, killed, a power cut) left a recording the next
/// run took for an interrupted show, and saved: the discarded show became a replay.
/// Now it is noted first, and the next run discards it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_show_stays_discarded_when_live_cast_is_quit_while_ending() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let relay = Relay::start(&app.base).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = live_cast_go_live(&app, &token)
        .args(["--title", "Not for keeps", "--profile", "360p30"])
        .args(["--outcome", "discard", "--record-dir"])
        .arg(dir.path())
        .env("FEZA_SERVER", relay.base())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = app.first_live_show(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    relay.hang(true);
    ctrl_c(&child);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "still ending, the server slow"
    );
    ctrl_c(&child);
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctrl_c(&child);
    let quit = Instant::now();
    let out = output_within(child, 5, "the third Ctrl-C quits at once").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "quit {:.2} s after the third Ctrl-C",
        quit.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("still ending the show") && stderr.contains("Ctrl-C once more quits"),
        "{stderr}"
    );
    let mkv = dir.path().join(format!("{id}.mkv"));
    assert!(mkv.exists(), "the recording is kept until the server hears");

    relay.hang(false);
    let recover = live_cast_recover(&app, &token, dir.path()).await;
    let said = String::from_utf8_lossy(&recover.stdout);
    assert!(recover.status.success(), "{said}");
    let s = app.stream(Some(&token), &id).await;
    assert_eq!(
        (s.status, s.end_reason),
        (StreamStatus::Ended, Some(live_core::EndReason::Discarded)),
        "{said}"
    );
    assert!(!mkv.exists(), "the recording is deleted as asked: {said}");
    assert!(!app.section_ids("recent").await.contains(&id));
}

/// The seller's computer stops for a while mid-show (it froze, or slept): the camera's
/// frames stop, its sound does not. The recording then held sound alone for seconds,
/// which the MP4 copy (and the server's replay, made the same way) waited on for ever:
/// two minutes later the copy was given up on and the replay failed. And on waking, the
/// frames missed came out all at once, to be skipped by the encoder, and the seller was
/// told the computer was too busy for the show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computer_that_stops_mid_show_still_gets_its_copy_and_replay() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let child = live_cast_go_live(&app, &token)
        .args([
            "--title",
            "Frozen",
            "--profile",
            "360p30",
            "--duration",
            "20s",
        ])
        .arg("--record-dir")
        .arg(dir.path())
        .spawn()
        .unwrap();
    let id = app.first_live_show(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(&child, "-STOP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    signal(&child, "-CONT");
    let out = output_within(
        child,
        90,
        "the show ends, its copy made and its replay uploaded",
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The stop told, with its length: 6 s, give or take a look's time.
    let told: Option<f64> = stderr
        .split("the show stopped for about ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok());
    assert!(
        told.is_some_and(|s| (5.0..=8.0).contains(&s)) && stderr.contains("the computer slept"),
        "the seller is told the show stood still 6 s: {stderr}"
    );
    assert!(
        !stderr.contains("too busy") && !stdout.contains("skipped"),
        "no frames were made to be skipped: {stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("replay of {id} is ready")),
        "{stdout}\n{stderr}"
    );

    let mp4 = dir.path().join(format!("{id}.mp4"));
    let mp4 = mp4.to_string_lossy().into_owned();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"], "{stdout}");
    let (shown, heard) = (video_span_s(&mp4), audio_span_s(&mp4));
    let gap = largest_video_gap(&mp4);
    eprintln!("copy: picture {shown:.2} s, sound {heard:.2} s, picture stopped {gap:.2} s");
    // The time the computer stood still has no frames of its own; the rest is whole.
    assert!((5.0..8.0).contains(&gap), "picture stopped {gap:.2} s");
    assert!(shown >= 19.0 && heard >= 19.0, "{shown:.2} s, {heard:.2} s");
    let replay = app.stream(None, &id).await.replay.unwrap();
    assert_eq!(replay.state, live_core::api::ReplayState::Ready);
    assert!((replay.duration_s.unwrap() - duration_s(&mp4)).abs() < 0.5);
}

/// What `child` printed, once it has ended; fails with `what` was expected when it
/// is still running after `seconds`.
async fn output_within(
    child: tokio::process::Child,
    seconds: u64,
    what: &str,
) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(seconds), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("still running after {seconds} s: {what}"))
        .unwrap()
}

/// All a process printed: its standard output, then its standard error.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends `signal` (`-STOP`, `-CONT`, …) to `child`.
fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("still running").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

// A seller who names no folder: their recordings (and the upload queue) go to one
// folder whichever directory live-cast runs from, so the run after a crash finds the
// show: "Feza Live" in their videos folder, as their desktop names it.
#[test]
fn recordings_go_to_one_folder_whichever_directory_live_cast_runs_from() {
    let home = tempfile::tempdir().unwrap();
    let folder_from = |cwd: &std::path::Path| -> String {
        let out = std::process::Command::new(workspace_bin("live-cast"))
            .args(["recover", "--server", "http://127.0.0.1:9", "--token", "t"])
            .current_dir(cwd)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("FEZA_RECORD_DIR")
            .output()
            .unwrap();
        let said = printed(&out);
        assert!(out.status.success(), "{said}");
        said.lines()
            .find_map(|l| l.strip_prefix("no interrupted recording in "))
            .unwrap_or_else(|| panic!("{said}"))
            .to_owned()
    };
    let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let videos = home.path().join("Videos").join("Feza Live");
    assert_eq!(folder_from(here.path()), videos.display().to_string());
    assert_eq!(folder_from(there.path()), videos.display().to_string());
    assert!(
        videos.join("uploads.db").exists(),
        "the upload queue is there"
    );
    // A desktop in German names its videos folder "Filme".
    let config = home.path().join(".config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("user-dirs.dirs"),
        "XDG_VIDEOS_DIR=\"$HOME/Filme\"\n",
    )
    .unwrap();
    let filme = home.path().join("Filme").join("Feza Live");
    assert_eq!(folder_from(here.path()), filme.display().to_string());
}

// A marketplace whose server's certificate its own authority issued (or a company
// network that inspects TLS): live-cast trusts what the computer trusts (its
// authorities, SSL_CERT_FILE), and says so when the certificate is not trusted rather
// than that the server cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_certificate_a_private_authority_issued_is_trusted_as_the_computer_trusts_it()
 {
    use feza_tests::ingest::TlsFront;
    let app = feza_tests::spawn_app().await;
    let token = app.seller("Maria").await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let tls = TlsFront::with_authority(port);
    let dir = tempfile::tempdir().unwrap();
    let go_live = |authority: Option<&std::path::Path>| {
        let mut cmd = tokio::process::Command::new(workspace_bin("live-cast"));
        cmd.args([
            "go-live",
            "--source",
            "test",
            "--stream",
            "0123456789abcdef",
        ])
        .args(["--server", &format!("https://127.0.0.1:{}", tls.port)])
        .args(["--token", &token])
        .arg("--record-dir")
        .arg(dir.path())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
        if let Some(ca) = authority {
            cmd.env("SSL_CERT_FILE", ca);
        }
        async move { printed(&cmd.output().await.unwrap()) }
    };
    let untrusted = go_live(None).await;
    assert!(
        untrusted.contains("certificate")
            && untrusted.contains("SSL_CERT_FILE")
            && !untrusted.contains("check the address and your connection"),
        "{untrusted}"
    );
    // Trusted: the server itself answers (there is no such show).
    let trusted = go_live(Some(&tls.authority())).await;
    assert!(trusted.contains("the server refused (404"), "{trusted}");
}

// A seller who pipes live-cast into a program that stops reading (`| head`, a log
// viewer closed, both output streams): the show goes on to its end, ended and saved as
// asked, its MP4 copy made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_goes_on_when_nothing_reads_what_live_cast_prints_any_more() {
    use tokio::io::AsyncBufReadExt;
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = terminal_show(&app, &token, "Piped", "8s", dir.path());
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = out.next_line().await.unwrap() {
        if line.contains("show live") {
            break;
        }
    }
    // The reader goes away: what live-cast prints next has nowhere to go.
    drop((out, child.stderr.take()));
    let id = app.first_live_show(Duration::from_secs(5)).await;
    ends_saved(&app, child, &id, dir.path(), 7.0..=9.0).await;
}

// The terminal live-cast runs in is closed mid-show (its window, an SSH connection
// gone): nothing reads its output any more and it is sent HUP. The show ends as Ctrl-C
// ends it, saved with its MP4 copy, never left to the server's reconnect grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_closed_mid_show_ends_it_as_ctrl_c_does() {
    let (app, _ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = terminal_show(&app, &token, "Closed", "60s", dir.path());
    let id = app.first_live_show(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop((child.stdout.take(), child.stderr.take()));
    signal(&child, "-HUP");
    ends_saved(&app, child, &id, dir.path(), 3.0..=7.0).await;
}

/// A 360p show of `duration` from `live-cast go-live` in a seller's terminal, recorded
/// in `dir` and kept there.
fn terminal_show(
    app: &feza_tests::TestApp,
    token: &str,
    title: &str,
    duration: &str,
    dir: &std::path::Path,
) -> tokio::process::Child {
    live_cast_go_live(app, token)
        .args([
            "--title",
            title,
            "--profile",
            "360p30",
            "--duration",
            duration,
        ])
        .args(["--no-progressive-upload", "--keep-recording"])
        .arg("--record-dir")
        .arg(dir)
        .spawn()
        .unwrap()
}

/// `child`, running show `id`, exits well within a minute; the show is archived as its
/// seller ended it, with an MP4 copy in `dir` of `length` seconds.
async fn ends_saved(
    app: &feza_tests::TestApp,
    mut child: tokio::process::Child,
    id: &str,
    dir: &std::path::Path,
    length: std::ops::RangeInclusive<f64>,
) {
    let ended = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("still running a minute on")
        .unwrap();
    assert!(ended.success(), "{ended}");
    let show = app.stream(None, id).await;
    assert_eq!(
        (show.status, show.end_reason),
        (
            StreamStatus::Archived,
            Some(live_core::EndReason::SellerEnded)
        )
    );
    let copy = duration_s(&dir.join(format!("{id}.mp4")).to_string_lossy());
    assert!(length.contains(&copy), "{copy:.2} s");
}

/// `live-cast recover` as a seller runs it against `app`, on the recordings in `dir`.
async fn live_cast_recover(
    app: &feza_tests::TestApp,
    token: &str,
    dir: &std::path::Path,
) -> std::process::Output {
    tokio::process::Command::new(workspace_bin("live-cast"))
        .args(["recover", "--server", &app.base, "--token", token])
        .arg("--record-dir")
        .arg(dir)
        .output()
        .await
        .unwrap()
}

// A seller whose uplink is slower than the show (220 kb/s for a 360p show of about
// 300 kb/s, 128 of them sound, with a home router's small queue): the connection keeps up by dropping
// frames, so viewers see the show as it is now (the picture pausing), never later and
// later; the seller is told; the recording is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_slower_than_the_show_drops_frames_instead_of_falling_behind() {
    use feza_tests::ingest::IngestPorts;
    use feza_tests::relay::SlowLink;
    let ports = IngestPorts::pick();
    let link = SlowLink::start(ports.rtmp, 220).await;
    let (app, _ingest) =
        stack_reached_at(ports, format!("rtmp://127.0.0.1:{}/live", link.port())).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = run_until_notified(&client, test_show(dir.path(), vec![]), stop.clone(), rx);

    // As a viewer at the ingest, now and then: how far behind the show is what it has?
    let rtmp = ports.rtmp;
    let viewer = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        let live = tokio::time::Instant::now();
        let url = ingest_play_url(&app, &id, rtmp).await;
        let mut behind = Vec::new();
        for at in [8, 14, 20] {
            tokio::time::sleep_until(live + Duration::from_secs(at)).await;
            let asked = live.elapsed().as_secs_f64();
            let url = url.clone();
            let now = tokio::task::spawn_blocking(move || first_sound_at(&url))
                .await
                .unwrap();
            behind.push((asked, asked - now));
        }
        stop.notify_one();
        behind
    };
    let ((report, lines, alerts), behind) = tokio::join!(session, viewer);
    // (A viewer joining the ingest's stream is about 3 s behind whatever the link.) A
    // show that falls behind this link, 80 kb/s short, does so by 1.5 s every 6 s.
    let (first, last) = (behind[0].1, behind[behind.len() - 1].1);
    assert!(
        last < first + 1.0 && last < 4.5,
        "viewers fell ever further behind the show ((seconds live, behind): {behind:.1?})"
    );
    let last = lines.last().unwrap();
    let dropped: u64 = last
        .split(" dropped ")
        .nth(2)
        .and_then(|d| d.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("out0's dropped frames in {last}"));
    assert!(dropped > 0, "{last}");
    assert!(
        lines.iter().any(|l| l.contains(" s behind) ")),
        "the stats say how far behind: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("reconnecting")),
        "the slow connection held: {lines:#?}"
    );
    let told = format!(
        "connection to out0 (rtmp://127.0.0.1:{}/live/***) is too slow for 360p30",
        link.port()
    );
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == AlertKind::DestinationTooSlow && a.message.contains(&told)),
        "the seller is told: {alerts:#?}"
    );
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

// The seller's network goes silent for 15 s mid-show (Wi-Fi lost: the connection stays
// open, nothing passes either way, no error comes). live-cast notices within seconds,
// says so, and once the network is back the show is on air again by itself; the
// recording never stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_that_goes_silent_mid_show_is_noticed_and_the_show_comes_back() {
    use feza_tests::ingest::IngestPorts;
    let ports = IngestPorts::pick();
    let network = Relay::start(&format!("http://127.0.0.1:{}", ports.rtmp)).await;
    let (app, _ingest) = stack_reached_at(ports, format!("rtmp://{}/live", network.addr())).await;
    let token = app.seller("Maria").await;
    let client = ApiClient::new(&app.base, &token).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (_controls, rx) = tokio::sync::mpsc::channel(1);
    let session = run_until_notified(&client, test_show(dir.path(), vec![]), stop.clone(), rx);
    let script = async {
        let id = app.first_live_show(Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        network.hang(true);
        tokio::time::sleep(Duration::from_secs(15)).await;
        network.hang(false);
        let back = Instant::now();
        connected_again(&app, &token, &id, Duration::from_secs(30)).await;
        let back_in = back.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.notify_one();
        back_in
    };
    let ((report, lines, _), back_in) = tokio::join!(session, script);
    // The seller sees it fall behind, then live-cast give it up by itself (nothing
    // closed it) and connect anew.
    assert!(
        lines.iter().any(|l| l.contains(" s behind) ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("reconnecting") && l.contains("taken nothing")),
        "the silent connection was noticed: {lines:#?}"
    );
    let last = lines.last().unwrap();
    assert!(
        output_state(last, 0) == "live" && !last.contains("reconnecting"),
        "{last}"
    );
    assert!(
        back_in < Duration::from_secs(20),
        "on air again after {back_in:?}"
    );
    let mp4 = report.mp4.unwrap().to_string_lossy().into_owned();
    assert_gapless(&mp4, VideoProfile::P360_30.fps);
}

/// Where a viewer plays show `id` straight from the ingest (RTMP, on `rtmp_port`).
async fn ingest_play_url(app: &feza_tests::TestApp, id: &str, rtmp_port: u16) -> String {
    let playback = app.stream(None, id).await.playback_url.unwrap();
    let name = playback
        .rsplit_once('/')
        .unwrap()
        .1
        .trim_end_matches(".m3u8");
    format!("rtmp://127.0.0.1:{rtmp_port}/show/{name}")
}

/// The time in the show of the first sound a viewer who joins stream `url` (RTMP) now
/// gets: where the stream is at the ingest.
fn first_sound_at(url: &str) -> f64 {
    // (ffprobe's own timeout is not enough for a stream that sends nothing.)
    let out = std::process::Command::new("timeout")
        .args(["15", "ffprobe"])
        .args([
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-analyzeduration",
            "500000",
        ])
        .args(["-select_streams", "a:0", "-show_entries", "packet=pts_time"])
        .args(["-read_intervals", "%+#1", "-of", "csv=p=0", url])
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no sound from {url}: {}", printed(&out)))
}

/// `live-cast go-live` as a seller starts it against `app`, recording into `dir`;
/// what it prints goes to `<dir>/<log>.out` and `.err`.
fn live_cast_into(
    app: &feza_tests::TestApp,
    token: &str,
    dir: &std::path::Path,
    log: &str,
    args: &[&str],
) -> tokio::process::Child {
    tokio::process::Command::new(workspace_bin("live-cast"))
        .args(["go-live", "--server", &app.base, "--token", token])
        .args(args)
        .arg("--record-dir")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{log}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{log}.err"))).unwrap())
        .spawn()
        .expect("start live-cast")
}

/// A seller's 360p show from `live-cast go-live` (logs `first.out`, `first.err`),
/// live: the stack, the seller's token, the recording folder, live-cast and the show.
async fn live_cast_show(
    title: &str,
) -> (
    feza_tests::TestApp,
    feza_tests::ingest::Ingest,
    String,
    tempfile::TempDir,
    tokio::process::Child,
    String,
) {
    let (app, ingest) = stack(60).await;
    let token = app.seller("Maria").await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--title", title, "--profile", "360p30"];
    let child = live_cast_into(&app, &token, dir.path(), "first", &args);
    let id = app.first_live_show(Duration::from_secs(20)).await;
    (app, ingest, token, dir, child, id)
}

/// Kills the broadcaster of a live show (`kill -9`: a crash, a power cut) once it has
/// been live for `seconds`, and waits for the server to wait for it; returns how much
/// of the show its recording holds.
async fn crash_after(
    app: &feza_tests::TestApp,
    token: &str,
    id: &str,
    mut child: tokio::process::Child,
    seconds: u64,
    recording: &std::path::Path,
) -> f64 {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    child.kill().await.unwrap();
    let reconnecting = live_core::IngestState::Reconnecting;
    app.ingest_becomes(token, id, reconnecting, Duration::from_secs(15))
        .await;
    video_span_s(&recording.to_string_lossy())
}

/// Whatever is left in `dir` besides the finished MP4 copy, the queue and the logs.
fn left_over_recordings(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".mkv"))
        .collect()
}

// The broadcaster crashes mid-show (a kill -9: a crash, a power cut); the seller starts
// it again on the same show while the server still waits for it. The show was ended
// and saved as it stood, and refused to go live again ("show … is archived: only a
// scheduled show can go live"): its viewers lost it. Now it is taken up again: the
// same show goes on (never ended in between), at the size it was recorded at, and its
// replay and MP4 copy are the whole show, both broadcasts joined without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_whose_broadcaster_crashed_is_taken_up_again_and_its_replay_is_whole() {
    let (app, _ingest, token, dir, first, id) = live_cast_show("Taken up again").await;
    let started_at = app.stream(None, &id).await.started_at;
    let mkv = dir.path().join(format!("{id}.mkv"));
    let kept = crash_after(&app, &token, &id, first, 6, &mkv).await;
    assert!(kept >= 4.0, "{kept:.2} s recorded before the crash");

    // Again, on the same show; the profile asked (720p30, the default) is not the one
    // the show was recorded at.
    let again = live_cast_into(
        &app,
        &token,
        dir.path(),
        "again",
        &["--stream", &id, "--duration", "6s"],
    );
    let out = output_within(again, 120, "the show taken up again to end").await;
    let said = format!(
        "{}{}",
        std::fs::read_to_string(dir.path().join("again.out")).unwrap(),
        std::fs::read_to_string(dir.path().join("again.err")).unwrap()
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("taking the show up again") && said.contains("goes on at 360p30"),
        "{said}"
    );
    assert!(said.contains(&format!("replay of {id} is ready")), "{said}");

    let show = app.stream(None, &id).await;
    assert_eq!(show.status, StreamStatus::Archived);
    assert_eq!(show.started_at, started_at, "the same show went on");
    let mine = app.get(Some(&token), "/api/me/streams").await;
    assert_eq!(mine.body["streams"].as_array().map(Vec::len), Some(1));

    let mp4 = dir.path().join(format!("{id}.mp4"));
    assert_eq!(live_media::picture_size(&mp4), Some((640, 360)));
    let mp4 = mp4.to_string_lossy().into_owned();
    assert_eq!(codecs(&mp4), vec!["aac", "h264"]);
    let whole = duration_s(&mp4);
    eprintln!("before the crash {kept:.2} s, whole show {whole:.2} s");
    assert!(
        (kept + 5.0..kept + 7.5).contains(&whole),
        "{whole:.2} s for {kept:.2} s + 6 s"
    );
    assert_gapless(&mp4, 30);
    assert!((audio_span_s(&mp4) - video_span_s(&mp4)).abs() < 0.2);
    let replay = show.replay.expect("a replay");
    assert!(
        (replay.duration_s.unwrap() - whole).abs() < 0.5,
        "{replay:?}"
    );
    assert_eq!(left_over_recordings(dir.path()), Vec::<String>::new());
}

// Taken up again and crashed again: the next `live-cast recover` joins both
// broadcasts' recordings and saves the whole show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_taken_up_again_that_crashes_again_is_recovered_whole() {
    let (app, _ingest, token, dir, first, id) = live_cast_show("Twice").await;
    let mkv = dir.path().join(format!("{id}.mkv"));
    let one = crash_after(&app, &token, &id, first, 5, &mkv).await;
    let second = live_cast_into(
        &app,
        &token,
        dir.path(),
        "second",
        &["--stream", &id, "--profile", "360p30"],
    );
    let connected = live_core::IngestState::Connected;
    app.ingest_becomes(&token, &id, connected, Duration::from_secs(40))
        .await;
    let two = crash_after(&app, &token, &id, second, 5, &mkv).await;
    assert!(dir.path().join(format!("{id}.part1.mkv")).exists());

    let out = live_cast_recover(&app, &token, dir.path()).await;
    let said = printed(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("archived"), "{said}");
    let mp4 = dir
        .path()
        .join(format!("{id}.mp4"))
        .to_string_lossy()
        .into_owned();
    let whole = duration_s(&mp4);
    eprintln!("broadcasts of {one:.2} s and {two:.2} s, recovered {whole:.2} s");
    assert!((whole - (one + two)).abs() < 1.0, "{whole:.2} s");
    assert_gapless(&mp4, 30);
    assert_eq!(app.stream(None, &id).await.status, StreamStatus::Archived);
    assert!(!dir.path().join(format!("{id}.part1.mkv")).exists());
}
