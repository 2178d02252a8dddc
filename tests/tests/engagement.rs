//! Real engagement: counts that equal their rows under concurrency, viewers who stop
//! counting when silent, moderation, reminders, rate limits, and the Server-Sent
//! Events that carry it all (resumable, shared between server instances).

use feza_tests::sse::SseClient;
use feza_tests::{AppOptions, TestApp, eventually, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn live_show(app: &TestApp, token: &str) -> String {
    let id = app.create_stream(token, "Spring sale").await.id;
    let key = app.start(token, &id).await.ingest.stream_key;
    let r = app.publish_hook(&key, "7").await;
    assert!(r.status.is_redirection(), "publish refused: {r:?}");
    id
}

/// A new viewer: (id, token).
async fn viewer(app: &TestApp, name: &str) -> (String, String) {
    let r = app
        .post(None, "/api/viewers", json!({ "display_name": name }))
        .await
        .expect(StatusCode::CREATED);
    (
        r.body["viewer_id"].as_str().unwrap().to_owned(),
        r.body["token"].as_str().unwrap().to_owned(),
    )
}

async fn count(app: &TestApp, sql: &str, id: &str) -> i64 {
    let row: (i64,) = sqlx::query_as(sql)
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    row.0
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> feza_tests::Reply {
    app.send(app.client.put(app.url(path)).bearer_auth(token).json(&body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_viewers_reacting_and_commenting_at_once_leave_counts_equal_to_rows() {
    let app = std::sync::Arc::new(spawn_app().await);
    let seller = app.seller("Maria").await;
    let id = live_show(&app, &seller).await;
    let mut viewers = Vec::new();
    for i in 0..200 {
        viewers.push(viewer(&app, &format!("Viewer {i}")).await);
    }
    let tasks: Vec<_> = viewers
        .into_iter()
        .enumerate()
        .map(|(i, (_, token))| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                let path = format!("/api/streams/{id}/reaction");
                app.post(
                    Some(&token),
                    &format!("/api/streams/{id}/viewers"),
                    Value::Null,
                )
                .await
                .expect(StatusCode::CREATED);
                // Changes of mind, ending on like, dislike or nothing.
                let last = ["like", "dislike", "none"][i % 3];
                for r in ["like", "none", "dislike", last] {
                    put(&app, &token, &path, json!({ "reaction": r }))
                        .await
                        .expect(StatusCode::OK);
                }
                app.post(
                    Some(&token),
                    &format!("/api/streams/{id}/comments"),
                    json!({ "text": format!("hello from {i}") }),
                )
                .await
                .expect(StatusCode::CREATED);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = app.stream(None, &id).await;
    let rows = |sql| count(&app, sql, &id);
    let likes =
        rows("select count(*) from reactions where stream_id = $1 and reaction = 'like'").await;
    let dislikes =
        rows("select count(*) from reactions where stream_id = $1 and reaction = 'dislike'").await;
    let comments =
        rows("select count(*) from comments where stream_id = $1 and deleted_at is null").await;
    let uniques =
        rows("select count(distinct user_id) from stream_viewers where stream_id = $1").await;
    assert_eq!((likes, dislikes, comments, uniques), (67, 67, 200, 200));
    assert_eq!(s.counts.likes, likes);
    assert_eq!(s.counts.dislikes, dislikes);
    assert_eq!(s.counts.comments, comments);
    assert_eq!(s.counts.unique_viewers, uniques);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_count_while_they_heartbeat_and_stop_counting_when_silent_or_gone() {
    let app = spawn_app().await;
    let seller = app.seller("Maria").await;
    let id = live_show(&app, &seller).await;
    let mut sessions = Vec::new();
    for i in 0..3 {
        let (_, token) = viewer(&app, &format!("V{i}")).await;
        let r = app
            .post(
                Some(&token),
                &format!("/api/streams/{id}/viewers"),
                Value::Null,
            )
            .await
            .expect(StatusCode::CREATED);
        sessions.push((token, r.body["session_id"].as_str().unwrap().to_owned()));
    }
    let watching = |n: i64| {
        let (app, id) = (&app, &id);
        async move {
            eventually(
                &format!("{n} watching"),
                Duration::from_secs(10),
                || async move {
                    let c = app.stream(None, id).await.counts;
                    (c.viewers == n).then_some(c)
                },
            )
            .await
        }
    };
    let c = watching(3).await;
    assert_eq!((c.peak_viewers, c.unique_viewers), (3, 3));
    // One heartbeats, one leaves, one goes silent for longer than 45 s.
    let (t0, s0) = &sessions[0];
    app.post(
        Some(t0),
        &format!("/api/streams/{id}/viewers/{s0}/heartbeat"),
        Value::Null,
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let (t1, s1) = &sessions[1];
    app.send(
        app.client
            .delete(app.url(&format!("/api/streams/{id}/viewers/{s1}")))
            .bearer_auth(t1),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let (t2, s2) = &sessions[2];
    app.sql(&format!(
        "update stream_viewers set last_heartbeat_at = last_heartbeat_at - 60000 where session_id = '{s2}'"
    ))
    .await;
    let c = watching(1).await;
    assert_eq!(c.peak_viewers, 3, "the peak stays");
    // A timed-out session is told to join again.
    let r = app
        .post(
            Some(t2),
            &format!("/api/streams/{id}/viewers/{s2}/heartbeat"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error_message().contains("join again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seller_moderates_and_viewers_set_reminders_within_limits() {
    let app = spawn_app_with(AppOptions {
        rate_per_min: 6,
        ..Default::default()
    })
    .await;
    let seller = app.seller("Maria").await;
    let other = app.seller("Ahmed").await;
    let id = live_show(&app, &seller).await;
    let (troll_id, troll) = viewer(&app, "Troll").await;
    let path = format!("/api/streams/{id}/comments");
    let c = app
        .post(
            Some(&troll),
            &path,
            json!({ "text": "<script>alert(1)</script>" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let comment_id = c.body["id"].as_str().unwrap().to_owned();
    assert_eq!(c.body["viewer_name"], "Troll");
    // Bad comments: empty, too long.
    for text in ["   ", &"x".repeat(501)] {
        let r = app.post(Some(&troll), &path, json!({ "text": text })).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    }
    // Only the owner removes a comment.
    let del = format!("/api/streams/{id}/comments/{comment_id}");
    let r = app
        .send(app.client.delete(app.url(&del)).bearer_auth(&other))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    app.send(app.client.delete(app.url(&del)).bearer_auth(&seller))
        .await
        .expect(StatusCode::NO_CONTENT);
    let list = app.get(None, &path).await.expect(StatusCode::OK);
    assert_eq!(list.body["comments"].as_array().unwrap().len(), 0);
    assert_eq!(app.stream(None, &id).await.counts.comments, 0);
    // Blocked: no more comments or reactions on this seller's shows.
    app.post(
        Some(&seller),
        &format!("/api/streams/{id}/blocks"),
        json!({ "viewer_id": troll_id }),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let r = app
        .post(Some(&troll), &path, json!({ "text": "again" }))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(
        &app,
        &troll,
        &format!("/api/streams/{id}/reaction"),
        json!({ "reaction": "dislike" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Rate limits: a burst passes, then 429 with Retry-After.
    let (_, fan) = viewer(&app, "Fan").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = app
            .post(Some(&fan), &path, json!({ "text": format!("{i}") }))
            .await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers.get("retry-after").is_some());
            assert_eq!(r.error_code(), "rate_limited");
        }
    }
    assert_eq!(statuses[0], StatusCode::CREATED);
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS);

    // Reminders: for shows still to come, counted once per viewer.
    let later = app.create_stream(&seller, "Tomorrow").await.id;
    let remind = format!("/api/streams/{later}/reminder");
    for _ in 0..2 {
        let r = put(&app, &fan, &remind, Value::Null)
            .await
            .expect(StatusCode::OK);
        assert_eq!(r.body["reminders"], 1);
    }
    let r = app
        .send(app.client.delete(app.url(&remind)).bearer_auth(&fan))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["reminders"], 0);
    let r = put(
        &app,
        &fan,
        &format!("/api/streams/{id}/reminder"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_live_and_resume_from_the_last_event_id() {
    let app = spawn_app().await;
    let seller = app.seller("Maria").await;
    let mut catalog = SseClient::connect(&app.url("/api/events"), None).await;
    let id = live_show(&app, &seller).await;
    let e = catalog
        .next_of("stream_live", Duration::from_secs(5))
        .await
        .expect("the catalog hears the show go live");
    assert_eq!(e.data["stream"]["id"], id.as_str());

    let url = app.url(&format!("/api/streams/{id}/events"));
    let mut events = SseClient::connect(&url, None).await;
    let (_, token) = viewer(&app, "Ana").await;
    let path = format!("/api/streams/{id}/comments");
    app.post(Some(&token), &path, json!({ "text": "first" }))
        .await
        .expect(StatusCode::CREATED);
    let first = events
        .next_of("comment", Duration::from_secs(5))
        .await
        .expect("a comment event");
    assert_eq!(first.data["comment"]["text"], "first");
    assert_eq!(first.data["comment"]["viewer_name"], "Ana");
    let counts = events
        .next_of("counts", Duration::from_secs(5))
        .await
        .expect("a counts event");
    assert_eq!(counts.data["counts"]["comments"], 1);
    drop(events);

    // While disconnected: two more comments, one removed.
    let second = app
        .post(Some(&token), &path, json!({ "text": "second" }))
        .await
        .expect(StatusCode::CREATED);
    app.post(Some(&token), &path, json!({ "text": "third" }))
        .await
        .expect(StatusCode::CREATED);
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    app.send(
        app.client
            .delete(app.url(&format!("{path}/{second_id}")))
            .bearer_auth(&seller),
    )
    .await
    .expect(StatusCode::NO_CONTENT);

    // The removed comment's text is gone from the log: the resumed stream has the
    // third comment and the removal, never the second's text.
    let mut resumed = SseClient::connect(&url, first.id).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = resumed
            .next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("missed events after {:?}: got {seen:?}", first.id));
        assert!(e.id > first.id, "ids increase: {e:?}");
        if e.kind != "counts" {
            seen.push((e.kind.clone(), e.data.clone()));
        }
    }
    assert_eq!(seen[0].0, "comment");
    assert_eq!(seen[0].1["comment"]["text"], "third");
    assert_eq!(
        seen[1],
        ("comment_deleted".to_owned(), json!({ "id": second_id }))
    );
    let rest = resumed.next(Duration::from_millis(1500)).await;
    assert!(
        rest.as_ref().is_none_or(|e| e.kind == "counts"),
        "nothing more: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_instances_on_one_database_deliver_each_others_events() {
    let a = spawn_app().await;
    let b = spawn_app_with(AppOptions {
        database_url: Some(a.state.database_url.to_string()),
        ..Default::default()
    })
    .await;
    let seller = a.seller("Maria").await;
    let id = live_show(&a, &seller).await;
    // Watching through B, commenting through A.
    let mut on_b = SseClient::connect(&b.url(&format!("/api/streams/{id}/events")), None).await;
    let (_, token) = viewer(&a, "Ana").await;
    a.post(
        Some(&token),
        &format!("/api/streams/{id}/comments"),
        json!({ "text": "via A" }),
    )
    .await
    .expect(StatusCode::CREATED);
    let e = on_b
        .next_of("comment", Duration::from_secs(10))
        .await
        .expect("B delivers A's comment");
    assert_eq!(e.data["comment"]["text"], "via A");
    // And the other way round, for the catalog.
    let mut catalog_a = SseClient::connect(&a.url("/api/events"), None).await;
    let later = b.create_stream(&seller, "Tomorrow").await.id;
    let e = catalog_a
        .next_of("stream_scheduled", Duration::from_secs(10))
        .await
        .expect("A delivers B's catalog change");
    assert_eq!(e.data["stream"]["id"], later.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_viewer_on_thirty_sessions_counts_as_one_watching() {
    let app = spawn_app().await;
    let seller = app.seller("Maria").await;
    let id = live_show(&app, &seller).await;
    let (_, token) = viewer(&app, "Scripted").await;
    for _ in 0..30 {
        app.post(
            Some(&token),
            &format!("/api/streams/{id}/viewers"),
            Value::Null,
        )
        .await
        .expect(StatusCode::CREATED);
    }
    let (_, other) = viewer(&app, "Ada").await;
    app.post(
        Some(&other),
        &format!("/api/streams/{id}/viewers"),
        Value::Null,
    )
    .await
    .expect(StatusCode::CREATED);
    let c = eventually("the watchers counted", Duration::from_secs(10), || async {
        let c = app.stream(None, &id).await.counts;
        (c.viewers >= 2 && c.unique_viewers == 2).then_some(c)
    })
    .await;
    // Counted for a few ticks more: it never goes above the two people.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = app.stream(None, &id).await.counts;
    assert_eq!(
        (c.viewers, c.peak_viewers, later.viewers, later.peak_viewers),
        (2, 2, 2, 2),
        "watching, and its peak, count people, not sessions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_minting_viewers_from_one_address_is_held_with_429() {
    let app = spawn_app_with(AppOptions {
        viewers_per_min: 10,
        ..AppOptions::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app.post(None, "/api/viewers", json!({})).await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
            assert_eq!(r.error_code(), "rate_limited");
        }
    }
    let made = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(
        made, 3,
        "a burst of a quarter of 10 a minute (at least 3), then 429: {statuses:?}"
    );
    assert!(statuses[made..].iter().all(|s| *s == 429), "{statuses:?}");
}
