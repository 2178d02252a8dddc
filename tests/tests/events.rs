//! The real-time event log stays bounded, and resuming from it never floods a client
//! or the server: events chosen by show in the query, at most 500 replayed, a `reset`
//! for a client that missed more (or from before what is kept), old events pruned.
//! Runs on SQLite, and on PostgreSQL with `FEZA_TEST_DB=postgres`.

use feza_tests::sse::SseClient;
use feza_tests::{
    AppOptions, DbKind, HOOK_SECRET, TestApp, db_kind, eventually, spawn_app, spawn_app_with,
    workspace_bin,
};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn live_show(app: &TestApp, seller: &str, title: &str) -> String {
    let id = app.create_stream(seller, title).await.id;
    let key = app.start(seller, &id).await.ingest.stream_key;
    app.publish_hook(&key, &format!("client-{title}"))
        .await
        .expect(StatusCode::FOUND);
    id
}

async fn viewer(app: &TestApp) -> String {
    app.post(None, "/api/viewers", json!({"display_name": "Ana"}))
        .await
        .expect(StatusCode::CREATED)
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn say(app: &TestApp, token: &str, id: &str, text: &str) -> String {
    app.post(
        Some(token),
        &format!("/api/streams/{id}/comments"),
        json!({ "text": text }),
    )
    .await
    .expect(StatusCode::CREATED)
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Adds `n` events of kind `kind` about `show` (with `{i}` replaced by 0, 1, …).
async fn add_events(app: &TestApp, show: &str, kind: &str, n: u32) {
    let now = chrono::Utc::now().timestamp_millis();
    let stream = format!("'{show}'").replace("{i}", "' || i || '");
    let data = format!("'{{\"{kind}\":{{}}}}'");
    let select = match db_kind() {
        DbKind::Sqlite => format!(
            "with recursive k(i) as (select 1 union all select i + 1 from k where i < {n}) \
             select {stream}, 'stream', '{kind}', {data}, {now} from k"
        ),
        DbKind::Postgres => format!(
            "select {stream}, 'stream', '{kind}', {data}, {now} from generate_series(1, {n}) as i"
        ),
    };
    app.sql(&format!(
        "insert into events (stream_id, scope, kind, data, created_at) {select}"
    ))
    .await;
}

/// A process's resident memory, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb / 1024.0
}

/// Every event a client resuming after `last` gets before the stream goes quiet.
async fn resumed(url: &str, last: i64) -> Vec<(String, Value)> {
    resumed_with(&reqwest::Client::new(), url, last).await
}

async fn resumed_with(http: &reqwest::Client, url: &str, last: i64) -> Vec<(String, Value)> {
    let mut events = SseClient::connect_with(http, url, Some(last)).await;
    let mut seen = Vec::new();
    // The first may wait for a database connection among hundreds of clients.
    let mut wait = Duration::from_secs(20);
    while let Some(e) = events.next(wait).await {
        seen.push((e.kind, e.data));
        wait = Duration::from_millis(700);
    }
    seen
}

/// live-server as its own process (its memory is its own) on `database_url`.
struct ServerProcess {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    async fn start(database_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = feza_tests::ingest::free_port();
        let child = std::process::Command::new(workspace_bin("live-server"))
            .arg("serve")
            .env("FEZA_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("FEZA_DATA_DIR", dir.path())
            .env("FEZA_HOOK_SECRET", HOOK_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start live-server");
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/api/health");
        eventually("live-server to answer", Duration::from_secs(20), || async {
            reqwest::get(&health)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
        Self {
            child,
            base,
            _dir: dir,
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_resuming_from_the_first_of_a_million_events_get_their_shows_only() {
    let mut first = spawn_app().await;
    let seller = first.seller("Maria").await;
    let show = live_show(&first, &seller, "Spring sale").await;
    let token = viewer(&first).await;
    for text in ["one", "two", "three"] {
        say(&first, &token, &show, text).await;
    }
    let started = Instant::now();
    // A busy day of 1,000 other shows.
    add_events(&first, "other{i}", "counts", 1_000_000).await;
    println!(
        "1,000,000 events written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A server started on that log, as after a restart: a process of its own.
    first.shut_down().await;
    let server = ServerProcess::start(&first.state.database_url).await;
    let url = format!("{}/api/streams/{show}/events", server.base);

    let before = rss_mb(server.child.id());
    let started = Instant::now();
    let http = reqwest::Client::new();
    let mut peak = before;
    let mut results = Vec::new();
    // 1,000 clients, 250 at a time; the server's memory looked at between waves.
    for _ in 0..4 {
        let wave: Vec<Vec<(String, Value)>> = futures_util::stream::iter(0..250)
            .map(|_| resumed_with(&http, &url, 1))
            .buffer_unordered(250)
            .collect()
            .await;
        results.extend(wave);
        peak = peak.max(rss_mb(server.child.id()));
    }
    let grew = peak - before;
    println!(
        "1,000 clients resumed from id 1 in {:.1} s; live-server {before:.0} MB before, \
         {peak:.0} MB at most after a wave ({grew:.0} MB more)",
        started.elapsed().as_secs_f64()
    );
    for seen in &results {
        let texts: Vec<&str> = seen
            .iter()
            .filter(|(kind, _)| kind == "comment")
            .map(|(_, data)| data["comment"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            ["one", "two", "three"],
            "its show's comments: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|(kind, _)| ["comment", "counts", "status"].contains(&kind.as_str())),
            "only its show's events: {seen:?}"
        );
        assert!(
            seen.len() < 20,
            "its show's events only: {} events",
            seen.len()
        );
    }
    assert!(
        grew < 100.0,
        "memory stays flat while 1,000 clients resume: {grew:.0} MB more"
    );
    // The catalog resumed from the start: the show's catalog events, not the others'.
    let catalog = resumed(&format!("{}/api/events", server.base), 1).await;
    assert!(
        catalog.iter().any(|(k, _)| k == "stream_live")
            && catalog
                .iter()
                .all(|(k, d)| k.starts_with("stream_") && d["stream"]["id"] == show.as_str()),
        "{catalog:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_missed_more_than_is_replayed_is_told_to_reload() {
    let app = spawn_app().await;
    let seller = app.seller("Maria").await;
    let show = live_show(&app, &seller, "Spring sale").await;
    let token = viewer(&app).await;
    say(&app, &token, &show, "first").await;
    let url = app.url(&format!("/api/streams/{show}/events"));
    let mut events = SseClient::connect(&url, Some(1)).await;
    let mut last = 0;
    while let Some(e) = events.next(Duration::from_millis(700)).await {
        last = e.id.unwrap();
    }
    drop(events);
    assert!(last > 0, "the first comment was replayed");
    // 600 comments while away: more than the 500 replayed.
    add_events(&app, &show, "comment", 600).await;
    let mut again = SseClient::connect(&url, Some(last)).await;
    let e = again
        .next(Duration::from_secs(5))
        .await
        .expect("an answer to the resume");
    assert_eq!(e.kind, "reset", "{e:?}");
    let newest = e.id.unwrap();
    assert!(newest >= last + 600, "reset carries the newest id: {e:?}");
    // A few missed events are replayed as they are.
    let few = resumed(&url, newest - 3).await;
    assert!(
        (1..=3).contains(&few.len()) && few.iter().all(|(k, _)| k != "reset"),
        "{few:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_pruned_and_a_client_from_before_them_is_told_to_reload() {
    let app = spawn_app_with(AppOptions {
        event_retention: Duration::from_secs(3600),
        ..AppOptions::default()
    })
    .await;
    let seller = app.seller("Maria").await;
    let show = live_show(&app, &seller, "Spring sale").await;
    let token = viewer(&app).await;
    say(&app, &token, &show, "yesterday").await;
    // Everything so far is two hours old.
    app.sql("update events set created_at = created_at - 7200000")
        .await;
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let old: Vec<(i64,)> =
        sqlx::query_as("select id from events where created_at < $1 order by id")
            .bind(hour_ago)
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    say(&app, &token, &show, "today").await;
    let gone = live_server::events::prune(&app.state).await.unwrap();
    assert_eq!(gone as usize, old.len(), "the events older than an hour");
    let left: (i64,) = sqlx::query_as("select count(*) from events where created_at < $1")
        .bind(chrono::Utc::now().timestamp_millis() - 3_600_000)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(left.0, 0);

    let url = app.url(&format!("/api/streams/{show}/events"));
    let seen = resumed(&url, old[0].0).await;
    assert_eq!(
        seen.first().map(|(k, _)| k.as_str()),
        Some("reset"),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(_, d)| d.to_string().contains("yesterday")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_show_leaves_nothing_of_itself_to_replay() {
    let app = spawn_app().await;
    let seller = app.seller("Maria").await;
    let show = live_show(&app, &seller, "Secret prototype").await;
    let token = viewer(&app).await;
    say(&app, &token, &show, "is that the new one?").await;
    app.end(&seller, &show, "discard")
        .await
        .expect(StatusCode::OK);
    let catalog = resumed(&app.url("/api/events"), 1).await;
    let of_it: Vec<&str> = catalog
        .iter()
        .filter(|(_, d)| d["stream"]["id"] == show.as_str())
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(of_it, ["stream_ended"], "only its end: {catalog:?}");
    let left: (i64,) = sqlx::query_as(
        "select count(*) from events where stream_id = $1 and kind in ('comment', 'counts')",
    )
    .bind(&show)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert_eq!(left.0, 0, "its chat and counts are gone from the log");
    app.get(None, &format!("/api/streams/{show}/events"))
        .await
        .expect(StatusCode::NOT_FOUND);
}
