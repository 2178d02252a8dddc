//! The HTTP API suite. Runs on SQLite, and on PostgreSQL with `FEZA_TEST_DB=postgres`
//! (scripts/test.sh runs it on both). Ingest hooks are called here as nginx-rtmp calls
//! them; `ingest.rs` drives the real nginx-rtmp.

use chrono::{Duration as TimeDelta, Utc};
use feza_tests::{AppOptions, HOOK_SECRET, TestApp, eventually, spawn_app, spawn_app_with};
use live_core::{EndReason, IngestState, StreamStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A show that is live, its key and the ingest's client id.
async fn live_show(app: &TestApp, token: &str, title: &str) -> (String, String) {
    let id = app.create_stream(token, title).await.id;
    let key = app.start(token, &id).await.ingest.stream_key;
    app.publish_hook(&key, "1").await.expect(StatusCode::FOUND);
    (id, key)
}

/// Waits until the server takes show `id`'s silent publisher as dropped.
async fn taken_as_dropped(app: &TestApp, token: &str, id: &str) {
    eventually(
        "the silent publisher to count as dropped",
        Duration::from_secs(10),
        || async {
            (app.stream(Some(token), id).await.ingest_state == Some(IngestState::Reconnecting))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_seller_schedules_a_show_that_anyone_can_read() {
    let app = spawn_app().await;
    let maria = app.seller("Maria R.").await;
    let at = Utc::now() + TimeDelta::hours(3);
    let r = app
        .post(
            Some(&maria),
            "/api/streams",
            json!({"title": "  Spring sale  ", "description": "Shoes", "scheduled_at": at}),
        )
        .await
        .expect(StatusCode::CREATED);
    let s = r.stream();
    assert_eq!(s.title, "Spring sale");
    assert_eq!(s.status, StreamStatus::Scheduled);
    assert_eq!(s.seller.name, "Maria R.");
    assert_eq!(
        s.scheduled_at.unwrap().timestamp_millis(),
        at.timestamp_millis()
    );
    assert!(s.share_url.ends_with(&format!("/live/{}", s.id)));
    assert_eq!(s.playback_url, None);
    assert_eq!(
        s.overdue,
        Some(false),
        "the owner sees whether it is overdue"
    );

    let public = app.stream(None, &s.id).await;
    assert_eq!(public.title, "Spring sale");
    assert_eq!(public.overdue, None, "owner-only fields stay hidden");
    assert_eq!(public.ingest_state, None);
}

/// An app signing in checks its token with `/api/me`: the seller it belongs to, or 401.
#[tokio::test]
async fn a_sellers_token_says_whose_it_is() {
    let app = spawn_app().await;
    let maria = app.seller("Maria R.").await;
    let me = app
        .get(Some(&maria), "/api/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["name"], "Maria R.");
    assert!(me.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    app.get(None, "/api/me")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.get(Some("fzs_not_a_real_token"), "/api/me")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let client = live_studio::ApiClient::new(&app.base, &maria).unwrap();
    assert_eq!(client.me().await.unwrap().name, "Maria R.");
    let (_, seller) = live_studio::studio::sign_in(&app.base, &maria)
        .await
        .unwrap();
    assert_eq!(seller.name, "Maria R.");
    let refused = live_studio::studio::sign_in(&app.base, "fzs_wrong")
        .await
        .err()
        .unwrap();
    assert!(refused.contains("does not know this token"), "{refused}");
    let down = live_studio::studio::sign_in("http://127.0.0.1:9", &maria)
        .await
        .err()
        .unwrap();
    assert!(down.contains("cannot reach the server"), "{down}");
}

#[tokio::test]
async fn upcoming_lists_soonest_first_until_an_hour_overdue() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let mut ids = Vec::new();
    for hours in [5, 1, 3] {
        let at = Utc::now() + TimeDelta::hours(hours);
        let r = app
            .post(
                Some(&maria),
                "/api/streams",
                json!({"title": format!("in {hours} h"), "scheduled_at": at}),
            )
            .await
            .expect(StatusCode::CREATED);
        ids.push((hours, r.stream().id));
    }
    let late = app.create_stream(&maria, "late a little").await.id;
    let overdue = app.create_stream(&maria, "very late").await.id;
    let now = Utc::now().timestamp_millis();
    app.sql(&format!(
        "update live_streams set scheduled_at = {} where id = '{late}'",
        now - 30 * 60_000
    ))
    .await;
    app.sql(&format!(
        "update live_streams set scheduled_at = {} where id = '{overdue}'",
        now - 61 * 60_000
    ))
    .await;

    let listed = app.section_ids("upcoming").await;
    let by_hours = |h| ids.iter().find(|(x, _)| *x == h).unwrap().1.clone();
    assert_eq!(
        listed,
        vec![late.clone(), by_hours(1), by_hours(3), by_hours(5)]
    );

    // The owner still sees the overdue show, marked as such.
    let mine = app
        .get(Some(&maria), "/api/me/streams?limit=100")
        .await
        .expect(StatusCode::OK)
        .body;
    let mine = mine["streams"].as_array().unwrap();
    assert_eq!(mine.len(), 5);
    let o = mine.iter().find(|s| s["id"] == overdue.as_str()).unwrap();
    assert_eq!(o["overdue"], true);
    let l = mine.iter().find(|s| s["id"] == late.as_str()).unwrap();
    assert_eq!(l["overdue"], false);
}

#[tokio::test]
async fn cursors_walk_every_show_exactly_once_in_order() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let base = Utc::now() + TimeDelta::days(1);
    // Two shows share each time, so the id breaks ties.
    let mut expected = Vec::new();
    for i in 0..11 {
        let at = base + TimeDelta::minutes(i / 2);
        let r = app
            .post(
                Some(&maria),
                "/api/streams",
                json!({"title": format!("show {i}"), "scheduled_at": at}),
            )
            .await
            .expect(StatusCode::CREATED);
        expected.push((at.timestamp_millis(), r.stream().id));
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let mut seen = Vec::new();
    let mut path = "/api/streams?section=upcoming&limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get(None, &path).await.expect(StatusCode::OK).body;
        pages += 1;
        let streams = page["streams"].as_array().unwrap();
        assert!(streams.len() <= 3);
        seen.extend(streams.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/streams?section=upcoming&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, expected);

    // The seller's own list pages the same way.
    let first = app
        .get(Some(&maria), "/api/me/streams?limit=6")
        .await
        .expect(StatusCode::OK)
        .body;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = app
        .get(
            Some(&maria),
            &format!("/api/me/streams?limit=6&cursor={cursor}"),
        )
        .await
        .expect(StatusCode::OK)
        .body;
    assert_eq!(
        first["streams"].as_array().unwrap().len() + second["streams"].as_array().unwrap().len(),
        11
    );
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn live_lists_latest_started_first_and_recent_latest_ended_first() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let (a, _) = live_show(&app, &maria, "first on air").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (b, _) = live_show(&app, &maria, "second on air").await;
    assert_eq!(app.section_ids("live").await, vec![b.clone(), a.clone()]);

    let live = app.stream(None, &a).await;
    assert_eq!(live.status, StreamStatus::Live);
    assert!(live.started_at.is_some());
    let playback = live.playback_url.expect("a live show has a playback URL");
    assert!(playback.ends_with(&format!("/{a}.m3u8")), "{playback}");

    app.end(&maria, &b, "save").await.expect(StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.end(&maria, &a, "save").await.expect(StatusCode::OK);
    assert_eq!(app.section_ids("recent").await, vec![a.clone(), b.clone()]);
    assert!(app.section_ids("live").await.is_empty());
}

#[tokio::test]
async fn going_live_waits_for_media_with_a_fresh_key_each_time() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "Spring sale").await.id;

    let first = app.start(&maria, &id).await;
    assert_eq!(first.ingest.url, "rtmp://127.0.0.1:1935/live");
    assert!(first.ingest.stream_key.len() >= 40);
    assert_eq!(
        first.stream.status,
        StreamStatus::Scheduled,
        "not live until media arrives"
    );
    assert_eq!(first.stream.ingest_state, Some(IngestState::Waiting));
    assert!(app.section_ids("live").await.is_empty());
    assert_eq!(
        app.stream(None, &id).await.ingest_state,
        None,
        "only the owner sees the ingest"
    );

    let second = app.start(&maria, &id).await;
    assert_ne!(first.ingest.stream_key, second.ingest.stream_key);
    let r = app.publish_hook(&first.ingest.stream_key, "7").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the replaced key is dead");

    let r = app
        .publish_hook(&second.ingest.stream_key, "8")
        .await
        .expect(StatusCode::FOUND);
    let location = r.headers["location"].to_str().unwrap();
    assert_eq!(location, id, "redirected to the public name");
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(s.status, StreamStatus::Live);
    assert_eq!(s.ingest_state, Some(IngestState::Connected));
    assert!(!s.playback_url.unwrap().contains(&second.ingest.stream_key));
    assert_eq!(app.section_ids("live").await, vec![id.clone()]);

    // A second publisher on the live key is refused; the first goes on.
    app.publish_hook(&second.ingest.stream_key, "9")
        .await
        .expect(StatusCode::FORBIDDEN);
    app.publish_done_hook(&second.ingest.stream_key, "9")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        app.stream(Some(&maria), &id).await.ingest_state,
        Some(IngestState::Connected)
    );

    // Keys are stored hashed only.
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("select ingest_key_hash from live_streams")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert!(
        stored
            .iter()
            .flatten()
            .all(|h| h.len() == 64 && !h.contains("fzk_"))
    );
}

#[tokio::test]
async fn unknown_keys_and_hooks_without_the_secret_are_refused() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "Spring sale").await.id;
    let key = app.start(&maria, &id).await.ingest.stream_key;

    app.publish_hook("fzk_not-a-key", "1")
        .await
        .expect(StatusCode::FORBIDDEN);
    app.publish_hook(&id, "1")
        .await
        .expect(StatusCode::FORBIDDEN);
    for which in ["publish", "publish_done", "update", "relay"] {
        for secret in [None, Some("wrong-secret-wrong-secret")] {
            let r = app
                .hook(
                    which,
                    secret,
                    &[("call", "publish"), ("name", &key), ("clientid", "1")],
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{which} with {secret:?}");
        }
    }
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(s.status, StreamStatus::Scheduled);
    assert_eq!(s.ingest_state, Some(IngestState::Waiting));
    // The relay to the public name is accepted only for a connected show.
    let relay = [
        ("call", "publish"),
        ("app", "show"),
        ("name", id.as_str()),
        ("clientid", "2"),
    ];
    app.hook("relay", Some(HOOK_SECRET), &relay)
        .await
        .expect(StatusCode::FORBIDDEN);
    app.publish_hook(&key, "1").await.expect(StatusCode::FOUND);
    app.hook("relay", Some(HOOK_SECRET), &relay)
        .await
        .expect(StatusCode::OK);
    // The secret may come in a header instead (the ingest's heartbeat relay sends it
    // so); a wrong one there is refused as well.
    let update = [
        ("call", "update_publish"),
        ("name", key.as_str()),
        ("clientid", "1"),
    ];
    for (secret, status) in [
        ("wrong-secret-wrong-secret", StatusCode::FORBIDDEN),
        (HOOK_SECRET, StatusCode::OK),
    ] {
        let req = app
            .client
            .post(format!("{}/update", app.hook_base()))
            .header("X-Feza-Hook-Secret", secret)
            .form(&update);
        app.send(req).await.expect(status);
    }
}

#[tokio::test]
async fn a_dropped_ingest_resumes_within_the_grace_period() {
    let app = spawn_app_with(AppOptions {
        reconnect_grace_s: 30,
        ..Default::default()
    })
    .await;
    let maria = app.seller("Maria").await;
    let (id, key) = live_show(&app, &maria, "Spring sale").await;
    let started = app.stream(None, &id).await.started_at;

    app.publish_done_hook(&id, "1").await.expect(StatusCode::OK);
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(
        s.status,
        StreamStatus::Live,
        "still live during the grace period"
    );
    assert_eq!(s.ingest_state, Some(IngestState::Reconnecting));

    app.publish_hook(&key, "2").await.expect(StatusCode::FOUND);
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(s.ingest_state, Some(IngestState::Connected));
    assert_eq!(s.started_at, started, "the same show goes on");
}

#[tokio::test]
async fn a_lost_ingest_ends_the_show_which_its_owner_can_still_save() {
    let app = spawn_app_with(AppOptions {
        reconnect_grace_s: 1,
        ..Default::default()
    })
    .await;
    let maria = app.seller("Maria").await;
    let (id, key) = live_show(&app, &maria, "Spring sale").await;
    app.publish_done_hook(&id, "1").await.expect(StatusCode::OK);

    // The sweeper stores the end; the public lists drop the show.
    eventually("the show to end", Duration::from_secs(10), || async {
        let row: (String, Option<String>) = sqlx::query_as(&format!(
            "select status, end_reason from live_streams where id = '{id}'"
        ))
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
        (row == ("ended".into(), Some("ingest_lost".into()))).then_some(())
    })
    .await;
    app.publish_hook(&key, "2")
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(app.section_ids("live").await.is_empty());
    app.get(None, &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(s.end_reason, Some(EndReason::IngestLost));

    let r = app.end(&maria, &id, "save").await.expect(StatusCode::OK);
    assert_eq!(r.body["stream"]["status"], "archived");
    assert_eq!(r.body["upload"]["endpoint"], "/api/uploads");
    assert_eq!(r.body["upload"]["metadata"]["stream_id"], id.as_str());
    assert_eq!(app.section_ids("recent").await, vec![id.clone()]);
    assert_eq!(
        app.stream(None, &id).await.replay.unwrap().state,
        live_core::api::ReplayState::Uploading
    );
}

#[tokio::test]
async fn a_silent_ingest_is_taken_as_dropped_and_an_ended_show_loses_its_publisher() {
    let app = spawn_app_with(AppOptions {
        ingest_stale_s: 1,
        ..Default::default()
    })
    .await;
    let maria = app.seller("Maria").await;
    let (id, _) = live_show(&app, &maria, "Spring sale").await;
    app.update_hook(&id, "1").await.expect(StatusCode::OK);
    app.update_hook(&id, "other-connection")
        .await
        .expect(StatusCode::FORBIDDEN);
    taken_as_dropped(&app, &maria, &id).await;
    // Stored as such (the sweeper runs every second), not only seen so when read.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The publisher was there all along (the server did not hear it): its next
    // heartbeat puts it back.
    app.update_hook(&id, "1").await.expect(StatusCode::OK);
    assert_eq!(
        app.stream(Some(&maria), &id).await.ingest_state,
        Some(IngestState::Connected)
    );

    let (other, _) = live_show(&app, &maria, "Second show").await;
    app.update_hook(&other, "1").await.expect(StatusCode::OK);
    app.end(&maria, &other, "save").await.expect(StatusCode::OK);
    app.update_hook(&other, "1")
        .await
        .expect(StatusCode::FORBIDDEN);
}

// The ingest dies (a crash, its machine restarted) before its first heartbeat for a
// publisher: the publish itself was the last word heard, so the silence counts from it.
// The show is not left "live" for ever, and the seller's broadcaster, reconnecting to
// the ingest once it is back, is let in again with the same key.
#[tokio::test]
async fn an_ingest_gone_before_its_first_heartbeat_lets_the_seller_back_in() {
    let app = spawn_app_with(AppOptions {
        ingest_stale_s: 1,
        ..Default::default()
    })
    .await;
    let maria = app.seller("Maria").await;
    let (id, key) = live_show(&app, &maria, "Spring sale").await;
    assert!(app.section_ids("live").await.contains(&id));
    taken_as_dropped(&app, &maria, &id).await;
    app.publish_hook(&key, "2").await.expect(StatusCode::FOUND);
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(
        (s.status, s.ingest_state),
        (StreamStatus::Live, Some(IngestState::Connected))
    );
    // The first connection's heartbeat, should it come late, no longer counts.
    app.update_hook(&id, "1")
        .await
        .expect(StatusCode::FORBIDDEN);
    app.update_hook(&id, "2").await.expect(StatusCode::OK);
}

// The server is down longer than a silence and a grace period, while the ingest kept
// the publisher: when it is back the show is still live, and the ingest's next
// heartbeat finds it so. Silence counts again from then on.
#[tokio::test]
async fn a_server_that_was_down_does_not_end_shows_whose_publisher_stayed() {
    let opts = AppOptions {
        ingest_stale_s: 1,
        reconnect_grace_s: 2,
        ..Default::default()
    };
    let mut before = spawn_app_with(opts.clone()).await;
    let maria = before.seller("Maria").await;
    let (id, _) = live_show(&before, &maria, "Spring sale").await;
    before.update_hook(&id, "1").await.expect(StatusCode::OK);
    before.shut_down().await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    let app = spawn_app_with(AppOptions {
        database_url: Some(before.state.database_url.to_string()),
        ..opts
    })
    .await;
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(
        (s.status, s.ingest_state),
        (StreamStatus::Live, Some(IngestState::Connected))
    );
    app.update_hook(&id, "1").await.expect(StatusCode::OK);
    assert!(app.section_ids("live").await.contains(&id));
    taken_as_dropped(&app, &maria, &id).await;
}

#[tokio::test]
async fn a_go_live_that_gets_no_media_lapses() {
    let app = spawn_app_with(AppOptions {
        ingest_wait_s: 1,
        ..Default::default()
    })
    .await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "Spring sale").await.id;
    let key = app.start(&maria, &id).await.ingest.stream_key;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.publish_hook(&key, "1")
        .await
        .expect(StatusCode::FORBIDDEN);
    let s = app.stream(Some(&maria), &id).await;
    assert_eq!(s.status, StreamStatus::Scheduled);
    assert_eq!(s.ingest_state, None);
    // Going live again works.
    let key = app.start(&maria, &id).await.ingest.stream_key;
    app.publish_hook(&key, "2").await.expect(StatusCode::FOUND);
}

#[tokio::test]
async fn a_discarded_show_vanishes_from_every_public_list_for_good() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let (id, key) = live_show(&app, &maria, "Oops").await;
    let r = app.end(&maria, &id, "discard").await.expect(StatusCode::OK);
    assert_eq!(r.body["stream"]["status"], "ended");
    assert_eq!(r.body["stream"]["end_reason"], "discarded");
    assert!(r.body["upload"].is_null());
    for section in ["live", "upcoming", "recent"] {
        assert!(!app.section_ids(section).await.contains(&id), "{section}");
    }
    app.get(None, &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    app.publish_hook(&key, "2")
        .await
        .expect(StatusCode::FORBIDDEN);
    let r = app
        .end(&maria, &id, "save")
        .await
        .expect(StatusCode::CONFLICT);
    assert!(
        r.error_message().contains("it is ended"),
        "{}",
        r.error_message()
    );
    let count: i64 = sqlx::query_scalar("select count(*) from saved_streams")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn saving_records_the_show_with_its_final_counts() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let (id, _) = live_show(&app, &maria, "Spring sale").await;
    app.sql(&format!(
        "update live_streams set like_count = 7, dislike_count = 1, comment_count = 3, \
         share_count = 2, peak_viewers = 12, unique_viewers = 20 where id = '{id}'"
    ))
    .await;
    app.end(&maria, &id, "save").await.expect(StatusCode::OK);
    let row: (String, String, i64, i64, i64, i64) = sqlx::query_as(
        "select stream_id, title, viewer_count, like_count, peak_viewers, total_revenue from saved_streams",
    )
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(row, (id.clone(), "Spring sale".into(), 20, 7, 12, 0));
    let s = app.stream(None, &id).await;
    assert_eq!(s.counts.likes, 7);
    assert_eq!(s.counts.viewers, 0, "nobody watches an archived show live");
}

#[tokio::test]
async fn every_refused_transition_is_409_naming_the_current_status() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let scheduled = app.create_stream(&maria, "scheduled").await.id;
    let (live, _) = live_show(&app, &maria, "live").await;
    let (archived, _) = live_show(&app, &maria, "archived").await;
    app.end(&maria, &archived, "save")
        .await
        .expect(StatusCode::OK);
    let (ended, _) = live_show(&app, &maria, "ended").await;
    app.end(&maria, &ended, "discard")
        .await
        .expect(StatusCode::OK);
    let cancelled = app.create_stream(&maria, "cancelled").await.id;
    app.post(
        Some(&maria),
        &format!("/api/streams/{cancelled}/cancel"),
        Value::Null,
    )
    .await
    .expect(StatusCode::OK);

    let cases: &[(&str, &str, &str, Value)] = &[
        (&scheduled, "scheduled", "end", json!({"outcome": "save"})),
        (
            &scheduled,
            "scheduled",
            "end",
            json!({"outcome": "discard"}),
        ),
        (&live, "live", "cancel", Value::Null),
        (&live, "live", "start", Value::Null),
        (&archived, "archived", "start", Value::Null),
        (&archived, "archived", "cancel", Value::Null),
        (&archived, "archived", "end", json!({"outcome": "save"})),
        (&archived, "archived", "end", json!({"outcome": "discard"})),
        (&ended, "ended", "start", Value::Null),
        (&ended, "ended", "cancel", Value::Null),
        (&ended, "ended", "end", json!({"outcome": "save"})),
        (&cancelled, "cancelled", "start", Value::Null),
        (&cancelled, "cancelled", "cancel", Value::Null),
        (&cancelled, "cancelled", "end", json!({"outcome": "save"})),
    ];
    for (id, status, action, body) in cases {
        let r = app
            .post(
                Some(&maria),
                &format!("/api/streams/{id}/{action}"),
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "{action} on {status}: {}",
            r.body
        );
        assert_eq!(r.error_code(), "illegal_transition");
        assert!(
            r.error_message().contains(&format!("it is {status}")),
            "{action} on {status}: {}",
            r.error_message()
        );
    }
    for (id, status) in [
        (&live, "live"),
        (&archived, "archived"),
        (&ended, "ended"),
        (&cancelled, "cancelled"),
    ] {
        let r = app
            .patch(
                Some(&maria),
                &format!("/api/streams/{id}"),
                json!({"title": "new"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "edit {status}");
        assert!(
            r.error_message().contains(&format!("it is {status}")),
            "{}",
            r.error_message()
        );
    }
    // Nothing changed.
    assert_eq!(
        app.stream(Some(&maria), &live).await.status,
        StreamStatus::Live
    );
    assert_eq!(
        app.stream(Some(&maria), &scheduled).await.status,
        StreamStatus::Scheduled
    );
}

#[tokio::test]
async fn a_scheduled_show_can_be_edited_and_cancelled() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "Draft").await.id;
    let at = Utc::now() + TimeDelta::days(2);
    let s = app
        .patch(
            Some(&maria),
            &format!("/api/streams/{id}"),
            json!({"title": "Final", "scheduled_at": at}),
        )
        .await
        .expect(StatusCode::OK)
        .stream();
    assert_eq!(s.title, "Final");
    assert_eq!(s.description, "");
    assert_eq!(
        s.scheduled_at.unwrap().timestamp_millis(),
        at.timestamp_millis()
    );
    let s = app
        .post(
            Some(&maria),
            &format!("/api/streams/{id}/cancel"),
            Value::Null,
        )
        .await
        .expect(StatusCode::OK)
        .stream();
    assert_eq!(s.status, StreamStatus::Cancelled);
    assert!(app.section_ids("upcoming").await.is_empty());
    app.get(None, &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(
        app.stream(Some(&maria), &id).await.status,
        StreamStatus::Cancelled
    );
}

#[tokio::test]
async fn another_seller_can_neither_write_nor_see_hidden_shows() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let ali = app.seller("Ali").await;
    let public = app.create_stream(&maria, "public").await.id;
    let hidden = app.create_stream(&maria, "hidden").await.id;
    app.post(
        Some(&maria),
        &format!("/api/streams/{hidden}/cancel"),
        Value::Null,
    )
    .await
    .expect(StatusCode::OK);

    for (action, body) in [
        ("start", Value::Null),
        ("cancel", Value::Null),
        ("end", json!({"outcome": "save"})),
    ] {
        let r = app
            .post(
                Some(&ali),
                &format!("/api/streams/{public}/{action}"),
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}");
        assert_eq!(r.error_code(), "not_owner");
        let r = app
            .post(Some(&ali), &format!("/api/streams/{hidden}/{action}"), body)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action} on a hidden show");
    }
    let r = app
        .patch(
            Some(&ali),
            &format!("/api/streams/{public}"),
            json!({"title": "mine"}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::FORBIDDEN, "not_owner")
    );
    app.get(Some(&ali), &format!("/api/streams/{hidden}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let mine = app
        .get(Some(&ali), "/api/me/streams")
        .await
        .expect(StatusCode::OK)
        .body;
    assert!(mine["streams"].as_array().unwrap().is_empty());
    assert_eq!(app.stream(None, &public).await.title, "public");
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "show").await.id;
    let viewer = app
        .post(None, "/api/viewers", json!({"display_name": "Ada"}))
        .await
        .expect(StatusCode::CREATED);
    let viewer_token = viewer.body["token"].as_str().unwrap().to_owned();
    assert!(viewer.body["viewer_id"].is_string());

    for token in [
        None,
        Some("fzs_not-a-real-token"),
        Some(viewer_token.as_str()),
    ] {
        let r = app.post(token, "/api/streams", json!({"title": "x"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.error_code(), "unauthorized");
        assert!(!r.error_message().is_empty());
        app.post(token, &format!("/api/streams/{id}/start"), Value::Null)
            .await
            .expect(StatusCode::UNAUTHORIZED);
        app.get(token, "/api/me/streams")
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    let r = app
        .send(
            app.client
                .get(app.url("/api/me/streams"))
                .header("authorization", "Basic abc"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error_message().contains("Bearer"));
    // A wrong token on a public read is refused too, so a client learns it is bad.
    app.get(Some("fzs_bad"), &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.get(Some(&viewer_token), &format!("/api/streams/{id}"))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn invalid_input_is_400_with_a_clear_message() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let past = Utc::now() - TimeDelta::hours(1);
    let far = Utc::now() + TimeDelta::days(400);
    let cases = [
        (json!({"title": ""}), "title must be 1 to 120 characters"),
        (
            json!({"title": "x".repeat(121)}),
            "title must be 1 to 120 characters",
        ),
        (json!({"title": "a\u{0}b"}), "control characters"),
        (
            json!({"title": "ok", "description": "d".repeat(2001)}),
            "at most 2000",
        ),
        (json!({"title": "ok", "scheduled_at": past}), "in the past"),
        (json!({"title": "ok", "scheduled_at": far}), "within a year"),
        (
            json!({"title": "ok", "scheduled_at": "tomorrow"}),
            "scheduled_at",
        ),
        (json!({"title": "ok", "price": 3}), "unknown field"),
        (json!({"description": "no title"}), "missing field `title`"),
    ];
    for (body, needle) in cases {
        let r = app.post(Some(&maria), "/api/streams", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            r.error_message().contains(needle),
            "{body}: {}",
            r.error_message()
        );
    }
    let r = app
        .send(
            app.client
                .post(app.url("/api/streams"))
                .bearer_auth(&maria)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    let id = app.create_stream(&maria, "show").await.id;
    let r = app
        .post(
            Some(&maria),
            &format!("/api/streams/{id}/end"),
            json!({"outcome": "keep"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error_message().contains("save"), "{}", r.error_message());
    for path in [
        "/api/streams",
        "/api/streams?section=popular",
        "/api/streams?section=live&limit=0",
        "/api/streams?section=live&limit=101",
        "/api/streams?section=live&cursor=%%%",
        "/api/streams?section=live&cursor=bm90LWEtY3Vyc29y",
    ] {
        let r = app.get(None, path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(!r.error_message().is_empty());
    }
    let r = app
        .post(
            None,
            "/api/viewers",
            json!({"display_name": "n".repeat(41)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.get(None, "/api/streams/no-such-show")
        .await
        .expect(StatusCode::NOT_FOUND);
    app.get(None, "/api/streams/0123456789abcdef0123456789abcdef")
        .await
        .expect(StatusCode::NOT_FOUND);
    let r = app
        .get(None, "/api/nothing-here")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
}

#[tokio::test]
async fn oversized_and_mistyped_bodies_are_413_and_415() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let huge = json!({"title": "big", "description": "x".repeat(200_000)});
    let r = app.post(Some(&maria), "/api/streams", huge).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let r = app
        .send(
            app.client
                .post(app.url("/api/streams"))
                .bearer_auth(&maria)
                .header("content-type", "text/plain")
                .body(r#"{"title":"x"}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let mine = app
        .get(Some(&maria), "/api/me/streams")
        .await
        .expect(StatusCode::OK)
        .body;
    assert!(
        mine["streams"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn concurrent_publishes_with_one_key_admit_exactly_one() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let id = app.create_stream(&maria, "race").await.id;
    let key = app.start(&maria, &id).await.ingest.stream_key;
    let tries = (0..8).map(|i| {
        let (app, key) = (&app, key.clone());
        async move { app.publish_hook(&key, &format!("c{i}")).await.status }
    });
    let statuses = join_all(tries.map(Box::pin).collect()).await;
    let admitted = statuses.iter().filter(|s| **s == StatusCode::FOUND).count();
    assert_eq!(admitted, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::FOUND || *s == StatusCode::FORBIDDEN)
    );
}

/// Polls every future together on this task (so they race for real) and collects
/// their outputs in order.
async fn join_all<F: std::future::Future + Unpin>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Option<F>> = futs.into_iter().map(Some).collect();
    let mut outs: Vec<Option<F::Output>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if let Some(fut) = f {
                match std::pin::Pin::new(fut).poll(cx) {
                    std::task::Poll::Ready(v) => {
                        outs[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let doc = app
        .get(None, "/api/openapi.json")
        .await
        .expect(StatusCode::OK)
        .body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/streams", "post"),
        ("/api/streams", "get"),
        ("/api/streams/{id}", "get"),
        ("/api/streams/{id}", "patch"),
        ("/api/streams/{id}/start", "post"),
        ("/api/streams/{id}/end", "post"),
        ("/api/streams/{id}/cancel", "post"),
        ("/api/me/streams", "get"),
        ("/api/viewers", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["Stream"].is_object());
}

#[tokio::test]
async fn a_viewer_identity_is_made_from_an_empty_body_a_null_or_a_name() {
    let app = spawn_app().await;
    let post = |body: Option<(&'static str, &'static str)>| {
        let mut req = app.client.post(app.url("/api/viewers"));
        if let Some((kind, text)) = body {
            req = req.header("content-type", kind).body(text);
        }
        app.send(req)
    };
    for body in [None, Some(("application/json", "null"))] {
        let r = post(body).await.expect(StatusCode::CREATED);
        assert!(r.body["token"].as_str().unwrap().starts_with("fzv_"));
    }
    post(Some(("application/json", r#"{"display_name": "Ada"}"#)))
        .await
        .expect(StatusCode::CREATED);
    // A body that is sent is still read as JSON: not JSON, or not as JSON, is refused.
    let r = post(Some(("application/json", "{")))
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_input");
    post(Some(("text/plain", r#"{"display_name": "Ada"}"#)))
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn rows_written_without_the_lifecycle_columns_never_fail_a_page() {
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let (real, _) = live_show(&app, &maria, "Spring sale").await;
    let vendor = app.stream(Some(&maria), &real).await.seller.id;
    let now = Utc::now().timestamp_millis();
    // As the marketplace's own tools write them, with the marketplace's columns only
    // (no ingest columns, no creation or change time): a "live" show nobody publishes,
    // a saved one with no end time or reason, and one whose status is none of the five.
    for (id, status, started) in [
        ("legacylive", "live", Some(now - 3_600_000)),
        ("legacysaved", "archived", Some(now - 7_200_000)),
        ("legacyodd", "paused", None),
    ] {
        let started = started.map_or("null".to_owned(), |t| t.to_string());
        app.sql(&format!(
            "insert into live_streams (id, vendor_id, title, description, thumbnail_url, \
             status, viewer_count, like_count, dislike_count, comment_count, video_path, \
             stream_url, scheduled_at, started_at, ended_at) values ('{id}', '{vendor}', \
             'Old {status} show', 'From the marketplace', null, '{status}', 0, 3, 0, 1, null, \
             null, {started}, {started}, null)"
        ))
        .await;
    }
    // Their creation and change times are the moment they were written.
    let (created, updated): (i64, i64) =
        sqlx::query_as("select created_at, updated_at from live_streams where id = 'legacylive'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    let written = Utc::now().timestamp_millis();
    assert!(
        (now..=written).contains(&created) && (now..=written).contains(&updated),
        "created {created}, updated {updated}: written between {now} and {written}"
    );
    for section in ["live", "upcoming", "recent"] {
        app.get(None, &format!("/api/streams?section={section}"))
            .await
            .expect(StatusCode::OK);
    }
    assert_eq!(
        app.section_ids("live").await,
        [real],
        "Live Now: only the show whose media reaches the ingest"
    );
    let mine = app
        .get(Some(&maria), "/api/me/streams?limit=100")
        .await
        .expect(StatusCode::OK);
    let status_of = |id: &str| {
        mine.body["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| (s["status"].clone(), s["end_reason"].clone()))
    };
    assert_eq!(
        status_of("legacylive"),
        Some((json!("ended"), json!("ingest_lost")))
    );
    assert_eq!(
        status_of("legacysaved"),
        Some((json!("archived"), json!("seller_ended")))
    );
    assert_eq!(
        status_of("legacyodd"),
        None,
        "a status that is none of ours is left out"
    );
    app.get(Some(&maria), "/api/streams/legacylive")
        .await
        .expect(StatusCode::OK);
    // The sweeper stores what the "live" row safely is.
    eventually(
        "the row stored as ended",
        Duration::from_secs(10),
        || async {
            let row: (String, Option<String>) = sqlx::query_as(
                "select status, end_reason from live_streams where id = 'legacylive'",
            )
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
            (row == ("ended".to_owned(), Some("ingest_lost".to_owned()))).then_some(())
        },
    )
    .await;
}

/// A database made before the marketplace's rows were taken in (its tables up to the
/// event log's bounds) is brought up to date with its shows, their engagement and its
/// keys whole, and takes rows with the marketplace's columns only from then on.
#[tokio::test]
async fn an_older_database_is_brought_up_to_date_with_everything_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = feza_tests::fresh_database(dir.path()).await;
    let old = live_server::db::Db::connect_only(&url).await.unwrap();
    let folder = match feza_tests::db_kind() {
        feza_tests::DbKind::Sqlite => "migrations/sqlite",
        feza_tests::DbKind::Postgres => "migrations/postgres",
    };
    let mut before = sqlx::migrate::Migrator::new(feza_tests::repo_root().join(folder))
        .await
        .unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(before.migrations.len(), 5);
    before.run(&old.pool).await.unwrap();
    let now = Utc::now().timestamp_millis();
    for statement in [
        format!(
            "insert into sellers (id, name, token_hash, created_at) values ('s1', 'Maria', 'h1', {now})"
        ),
        format!(
            "insert into viewers (id, display_name, token_hash, created_at) values ('v1', 'Ada', 'h2', {now})"
        ),
        format!(
            "insert into live_streams (id, vendor_id, title, status, scheduled_at, created_at, \
             updated_at, like_count) values ('old1', 's1', 'Spring sale', 'scheduled', {}, {now}, {now}, 0)",
            now + 3_600_000
        ),
        format!(
            "insert into live_streams (id, vendor_id, title, status, started_at, ended_at, \
             end_reason, created_at, updated_at, like_count, comment_count, replay_state) values \
             ('old2', 's1', 'Winter sale', 'archived', {}, {now}, 'seller_ended', {now}, {now}, 1, \
             1, 'ready')",
            now - 3_600_000
        ),
        format!(
            "insert into comments (id, stream_id, viewer_id, body, created_at) values \
             ('c1', 'old2', 'v1', 'Lovely', {now})"
        ),
        format!(
            "insert into reactions (stream_id, viewer_id, reaction, updated_at) values \
             ('old2', 'v1', 'like', {now})"
        ),
    ] {
        sqlx::query(&statement).execute(&old.pool).await.unwrap();
    }
    old.pool.close().await;

    let app = spawn_app_with(AppOptions {
        database_url: Some(url),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(app.section_ids("upcoming").await, ["old1"]);
    assert_eq!(app.section_ids("recent").await, ["old2"]);
    let comments = app
        .get(None, "/api/streams/old2/comments")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        comments.body["comments"][0]["text"], "Lovely",
        "{:?}",
        comments.body
    );
    // The keys still hold: a show of a seller who does not exist is refused.
    let orphan = sqlx::query(&format!(
        "insert into live_streams (id, vendor_id, title, status, created_at, updated_at) \
         values ('orphan', 'nobody', 'X', 'scheduled', {now}, {now})"
    ))
    .execute(&app.state.db.pool)
    .await;
    assert!(orphan.is_err(), "a show without its seller was stored");
    // And a row with the marketplace's columns only is taken.
    app.sql(
        "insert into live_streams (id, vendor_id, title, status, scheduled_at) \
         values ('market1', 's1', 'From the marketplace', 'cancelled', null)",
    )
    .await;
    let mine = app.state.db.pool.clone();
    let (count,): (i64,) =
        sqlx::query_as("select count(*) from live_streams where vendor_id = 's1'")
            .fetch_one(&mine)
            .await
            .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test]
async fn another_seller_touches_neither_a_shows_upload_nor_its_blocks() {
    use base64::Engine;
    let app = spawn_app().await;
    let maria = app.seller("Maria").await;
    let jon = app.seller("Jon").await;
    let (id, _) = live_show(&app, &maria, "Spring sale").await;
    let tus = |token: &str, method: reqwest::Method, url: &str| {
        app.client
            .request(method, app.url(url))
            .bearer_auth(token)
            .header("Tus-Resumable", "1.0.0")
    };
    let metadata = format!(
        "stream_id {}",
        base64::engine::general_purpose::STANDARD.encode(&id)
    );
    // Jon cannot start an upload for Maria's show.
    let r = tus(&jon, reqwest::Method::POST, "/api/uploads")
        .header("Upload-Defer-Length", "1")
        .header("Upload-Metadata", &metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Maria's progressive upload, 5 bytes in.
    let r = tus(&maria, reqwest::Method::POST, "/api/uploads")
        .header("Upload-Defer-Length", "1")
        .header("Upload-Metadata", &metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let upload = r.headers()["location"].to_str().unwrap().to_owned();
    let r = tus(&maria, reqwest::Method::PATCH, &upload)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Jon can neither read it, add to it nor drop it.
    for method in [reqwest::Method::HEAD, reqwest::Method::DELETE] {
        let r = tus(&jon, method.clone(), &upload).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method}");
    }
    let r = tus(&jon, reqwest::Method::PATCH, &upload)
        .header("Upload-Offset", "5")
        .header("Content-Type", "application/offset+octet-stream")
        .body("world")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = tus(&maria, reqwest::Method::HEAD, &upload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["upload-offset"],
        "5",
        "Maria's upload is untouched"
    );

    // Jon cannot block a viewer from Maria's show.
    let viewer = app
        .post(None, "/api/viewers", json!({"display_name": "Ada"}))
        .await
        .expect(StatusCode::CREATED)
        .body;
    let r = app
        .post(
            Some(&jon),
            &format!("/api/streams/{id}/blocks"),
            json!({"viewer_id": viewer["viewer_id"]}),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "not_owner");
    app.post(
        Some(viewer["token"].as_str().unwrap()),
        &format!("/api/streams/{id}/comments"),
        json!({"text": "still here"}),
    )
    .await
    .expect(StatusCode::CREATED);
}
