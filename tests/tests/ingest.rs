//! End to end with the real nginx-rtmp ingest and a real GStreamer publisher: a show
//! goes live only when media arrives, plays over HLS under its public name, survives
//! a dropped publisher within the grace period, and refuses every wrong publisher.

use feza_tests::ingest::{Ingest, Publisher};
use feza_tests::probe::codecs;
use feza_tests::{TestApp, eventually};
use live_core::{EndReason, IngestState, StreamStatus};
use reqwest::StatusCode;
use std::time::Duration;

const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

async fn stack(grace_s: u32) -> (TestApp, Ingest) {
    feza_tests::stack(grace_s).await
}

async fn wait_for_ingest(app: &TestApp, token: &str, id: &str, want: Option<IngestState>) {
    eventually(&format!("ingest state {want:?}"), MEDIA_TIMEOUT, || async {
        (app.stream(Some(token), id).await.ingest_state == want).then_some(())
    })
    .await;
}

// The server runs in this runtime: give it a thread of its own beside the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_goes_live_on_media_plays_over_hls_and_refuses_wrong_publishers() {
    let (app, ingest) = stack(60).await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "Spring sale").await.id;
    let old_key = app.start(&maria, &id).await.ingest.stream_key;
    let go = app.start(&maria, &id).await;
    assert_eq!(go.ingest.url, ingest.publish_url("").trim_end_matches('/'));
    let key = go.ingest.stream_key;

    // A wrong key and the key of an earlier go-live: nginx drops them.
    for bad in ["fzk_wrong-key", old_key.as_str()] {
        let mut p = Publisher::start(&ingest.publish_url(bad));
        assert!(
            p.exits_within(MEDIA_TIMEOUT).await,
            "a publisher with a bad key was not dropped"
        );
        let s = app.stream(Some(&maria), &id).await;
        assert_eq!(
            (s.status, s.ingest_state),
            (StreamStatus::Scheduled, Some(IngestState::Waiting))
        );
    }

    // The current key: live once media reaches the ingest, not before.
    let mut publisher = Publisher::start(&ingest.publish_url(&key));
    wait_for_ingest(&app, &maria, &id, Some(IngestState::Connected)).await;
    let live = app.stream(None, &id).await;
    assert_eq!(live.status, StreamStatus::Live);
    assert_eq!(app.section_ids("live").await, vec![id.clone()]);
    let playback = live.playback_url.clone().unwrap();
    assert_eq!(
        playback,
        format!("http://127.0.0.1:{}/hls/{id}.m3u8", ingest.http_port)
    );

    let playlist = eventually("the HLS playlist", MEDIA_TIMEOUT, || async {
        let r = app.client.get(&playback).send().await.ok()?;
        let cors = r
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.ok()?;
        (text.contains("#EXTM3U") && text.contains(".ts")).then_some((text, cors))
    })
    .await;
    assert_eq!(playlist.1.as_deref(), Some("*"), "HLS is served with CORS");
    assert_eq!(
        codecs(&playback),
        vec!["aac", "h264"],
        "viewers get H.264 + AAC"
    );

    // The secret key appears nowhere public.
    assert!(!playlist.0.contains(&key));
    for entry in std::fs::read_dir(ingest.hls_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("fzk_"), "HLS file named after a key: {name}");
    }

    // A second publisher on the live key is dropped; the first goes on.
    let mut second = Publisher::start(&ingest.publish_url(&key));
    assert!(
        second.exits_within(MEDIA_TIMEOUT).await,
        "a second publisher was not dropped"
    );
    assert!(
        publisher.running(),
        "the first publisher must go on:\n{}",
        ingest.log_tail()
    );
    assert_eq!(
        app.stream(Some(&maria), &id).await.ingest_state,
        Some(IngestState::Connected)
    );

    // A hook call without the secret is refused.
    let r = app
        .send(
            app.client
                .post(format!("{}/publish", app.hook_base()))
                .form(&[("name", key.as_str())]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Dropped, then back within the grace period: the same show goes on.
    publisher.kill();
    wait_for_ingest(&app, &maria, &id, Some(IngestState::Reconnecting)).await;
    assert_eq!(app.stream(None, &id).await.status, StreamStatus::Live);
    let mut publisher = Publisher::start(&ingest.publish_url(&key));
    wait_for_ingest(&app, &maria, &id, Some(IngestState::Connected)).await;
    let resumed = app.stream(None, &id).await;
    assert_eq!(
        (resumed.status, resumed.started_at),
        (StreamStatus::Live, live.started_at)
    );

    // Ending the show drops its publisher at the ingest's next update.
    app.end(&maria, &id, "save").await.expect(StatusCode::OK);
    assert!(
        publisher.exits_within(MEDIA_TIMEOUT).await,
        "the publisher of an ended show was not dropped"
    );
    assert_eq!(app.section_ids("recent").await, vec![id.clone()]);
    assert!(app.section_ids("live").await.is_empty());
}

// The server runs in this runtime: give it a thread of its own beside the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_gone_past_the_grace_period_ends_the_show_which_can_still_be_saved() {
    let (app, ingest) = stack(3).await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "Spring sale").await.id;
    let key = app.start(&maria, &id).await.ingest.stream_key;
    let mut publisher = Publisher::start(&ingest.publish_url(&key));
    wait_for_ingest(&app, &maria, &id, Some(IngestState::Connected)).await;
    publisher.kill();

    eventually(
        "the show to end with ingest_lost",
        MEDIA_TIMEOUT,
        || async {
            let s = app.stream(Some(&maria), &id).await;
            (s.status == StreamStatus::Ended && s.end_reason == Some(EndReason::IngestLost))
                .then_some(())
        },
    )
    .await;
    assert!(app.section_ids("live").await.is_empty());
    app.get(None, &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    // Too late to come back with the same key.
    let mut late = Publisher::start(&ingest.publish_url(&key));
    assert!(late.exits_within(MEDIA_TIMEOUT).await);

    let saved = app.end(&maria, &id, "save").await.expect(StatusCode::OK);
    assert_eq!(saved.body["stream"]["status"], "archived");
    assert_eq!(app.section_ids("recent").await, vec![id.clone()]);
}

// The server runs in this runtime: give it a thread of its own beside the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_show_vanishes_from_every_public_list() {
    let (app, ingest) = stack(60).await;
    let maria = app.seller("Maria").await;
    let kept = app.create_stream(&maria, "Tomorrow").await.id;
    let id = app.create_stream(&maria, "Oops").await.id;
    let key = app.start(&maria, &id).await.ingest.stream_key;
    let mut publisher = Publisher::start(&ingest.publish_url(&key));
    wait_for_ingest(&app, &maria, &id, Some(IngestState::Connected)).await;
    assert_eq!(app.section_ids("live").await, vec![id.clone()]);

    app.end(&maria, &id, "discard").await.expect(StatusCode::OK);
    assert!(
        publisher.exits_within(MEDIA_TIMEOUT).await,
        "the publisher of a discarded show was not dropped"
    );
    assert!(app.section_ids("live").await.is_empty());
    assert!(app.section_ids("recent").await.is_empty());
    assert_eq!(app.section_ids("upcoming").await, vec![kept]);
    app.get(None, &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
}
