//! The published API contract stays exact (`/api/openapi.json`). Runs on SQLite, and on
//! PostgreSQL with `FEZA_TEST_DB=postgres` (scripts/test.sh runs it on both):
//! - the served document passes a standard OpenAPI 3.1 validator (openapi-spec-validator);
//! - the committed copy, `docs/openapi.json`, is what the server serves (`make openapi`);
//! - a property-based fuzzer driven by the document (schemathesis) calls every operation
//!   as a seller and as a viewer, with valid and invalid input, against real shows,
//!   sessions, comments and uploads: no 5xx, no status the document does not declare,
//!   every body of the type and schema declared for it;
//! - `/api/docs` renders the document with every operation, in headless Chromium.
//!
//! Both tools come from PyPI, installed by scripts/api-tools.sh (make test runs it).

use feza_tests::ingest::require;
use feza_tests::{AppOptions, HOOK_SECRET, TestApp, repo_root, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A command of the contract tools' virtualenv; fails, naming the fix, when missing.
fn api_tool(name: &str) -> PathBuf {
    let venv = std::env::var("FEZA_API_TOOLS_VENV").unwrap_or("/var/tmp/feza-apitools".into());
    let path = Path::new(&venv).join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/api-tools.sh install (make test does)",
        path.display()
    );
    path
}

async fn served_document(app: &TestApp) -> String {
    let r = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("GET /api/openapi.json");
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.expect("the document's text")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_document_is_valid_openapi_3_1_and_is_the_committed_copy() {
    let app = spawn_app_with(AppOptions::default()).await;
    let doc = served_document(&app).await;
    let parsed: Value = serde_json::from_str(&doc).expect("the document is JSON");
    assert_eq!(parsed["openapi"], "3.1.0");

    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let out = tokio::process::Command::new(api_tool("openapi-spec-validator"))
        .arg(&file)
        .output()
        .await
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "the served document is not valid OpenAPI:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let committed = std::fs::read_to_string(repo_root().join("docs/openapi.json"))
        .expect("docs/openapi.json is committed (make openapi writes it)");
    assert!(
        committed == doc,
        "docs/openapi.json differs from what the server serves: run `make openapi` and commit it"
    );
}

/// Real things for the fuzzer to call operations on, beside the ids it makes up.
struct Fixture {
    seller: String,
    viewer: String,
    shows: Vec<String>,
    sessions: Vec<String>,
    comments: Vec<String>,
    uploads: Vec<String>,
    files: Vec<String>,
}

async fn fixture(app: &TestApp) -> Fixture {
    let seller = app.seller("Maria R.").await;
    let other_seller = app.seller("Jon K.").await;
    let viewer = app
        .post(None, "/api/viewers", json!({"display_name": "Ada"}))
        .await
        .expect(StatusCode::CREATED)
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A live show with a viewer watching and a comment, a scheduled one, another
    // seller's live show.
    let live = app.create_stream(&seller, "Spring sale").await.id;
    let key = app.start(&seller, &live).await.ingest.stream_key;
    app.publish_hook(&key, "1").await.expect(StatusCode::FOUND);
    let scheduled = app
        .post(
            Some(&seller),
            "/api/streams",
            json!({"title": "Jewelry", "scheduled_at": chrono::Utc::now() + chrono::Duration::hours(3)}),
        )
        .await
        .expect(StatusCode::CREATED)
        .stream()
        .id;
    let others = app.create_stream(&other_seller, "Shoes").await.id;
    let key = app.start(&other_seller, &others).await.ingest.stream_key;
    app.publish_hook(&key, "2").await.expect(StatusCode::FOUND);

    let session = app
        .post(
            Some(&viewer),
            &format!("/api/streams/{live}/viewers"),
            Value::Null,
        )
        .await
        .expect(StatusCode::CREATED)
        .body["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let comment = app
        .post(
            Some(&viewer),
            &format!("/api/streams/{live}/comments"),
            json!({"text": "How much is the blue one?"}),
        )
        .await
        .expect(StatusCode::CREATED)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A progressive upload of the live show's recording.
    use base64::Engine;
    let meta = format!(
        "stream_id {}",
        base64::engine::general_purpose::STANDARD.encode(&live)
    );
    let created = app
        .client
        .post(app.url("/api/uploads"))
        .bearer_auth(&seller)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Defer-Length", "1")
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let upload = location.rsplit('/').next().unwrap().to_owned();
    // A replay's picture as the replay worker leaves it in local storage.
    let replays = app.dir.path().join("data/replays");
    std::fs::create_dir_all(&replays).unwrap();
    std::fs::write(replays.join(format!("{live}.jpg")), [0xffu8; 4096]).unwrap();

    Fixture {
        seller,
        viewer,
        shows: vec![live.clone(), scheduled, others],
        sessions: vec![session],
        comments: vec![comment],
        uploads: vec![upload],
        files: vec![format!("{live}.jpg"), format!("{live}.mp4")],
    }
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The fuzzer's settings: `token` for both bearer schemes (the operations of the other
/// role then answer 401, as they must), the hook secret, and real ids mixed with made-up
/// ones.
fn config(f: &Fixture, token: &str) -> String {
    format!(
        r#"hooks = {hooks:?}
request-timeout = 10.0

[auth.openapi.seller]
bearer = {token:?}
[auth.openapi.viewer]
bearer = {token:?}
[auth.openapi.hook_secret]
api_key = {secret:?}

[dictionaries.shows]
values = {shows}
[dictionaries.sessions]
values = {sessions}
[dictionaries.comments]
values = {comments}
[dictionaries.uploads]
values = {uploads}
[dictionaries.files]
values = {files}

[parameters]
"path.id" = {{ dictionary = "shows", probability = 0.8 }}
"path.session_id" = {{ dictionary = "sessions", probability = 0.8 }}
"path.comment_id" = {{ dictionary = "comments", probability = 0.8 }}
"path.name" = {{ dictionary = "files", probability = 0.8 }}

[[operations]]
include-path-regex = "^/api/uploads/"
parameters = {{ "path.id" = {{ dictionary = "uploads", probability = 0.8 }} }}

# Event streams never end: each case reads events for a second.
[[operations]]
include-path-regex = "/events$"
request-timeout = 1.0
"#,
        hooks = repo_root()
            .join("tests/contract/hooks.py")
            .display()
            .to_string(),
        secret = HOOK_SECRET,
        shows = toml_list(&f.shows),
        sessions = toml_list(&f.sessions),
        comments = toml_list(&f.comments),
        uploads = toml_list(&f.uploads),
        files = toml_list(&f.files),
    )
}

/// Runs the fuzzer over every operation with `token`; panics with its report on a failure.
async fn fuzz(app: &TestApp, f: &Fixture, role: &str, token: &str) {
    let dir = app.dir.path().join(format!("fuzz-{role}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("schemathesis.toml");
    std::fs::write(&cfg, config(f, token)).unwrap();
    let examples = std::env::var("FEZA_FUZZ_EXAMPLES").unwrap_or("8".into());
    let out = tokio::process::Command::new(api_tool("schemathesis"))
        .arg("--config-file")
        .arg(&cfg)
        .args(["run", &app.url("/api/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--workers",
            "2",
            "--seed",
            "20261207",
            "--no-color",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary = report
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("fuzzing as the {role}:\n{summary}");
    assert!(
        out.status.success(),
        "the fuzzer, calling as the {role}, found answers the document does not declare:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation of the document but the document's own (schemathesis leaves out
    // the URL it read the schema from) is selected, and every one selected is tested.
    let operations = {
        let doc: serde_json::Value = app
            .client
            .get(app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|p| p.as_object().unwrap().keys())
            .filter(|k| {
                [
                    "get", "put", "post", "delete", "options", "head", "patch", "trace",
                ]
                .contains(&k.as_str())
            })
            .count()
    };
    let every = operations - 1;
    assert!(
        report.contains(&format!("Selected: {every}/{every}"))
            && report.contains(&format!("Tested: {every}\n")),
        "the fuzzer, calling as the {role}, did not test every operation ({every}):\n{summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fuzzer_driven_by_the_document_finds_no_answer_it_does_not_declare() {
    let app = spawn_app_with(AppOptions {
        // The fuzzer sends thousands of requests; limits are not what it checks.
        rate_per_min: 1_000_000,
        ..AppOptions::default()
    })
    .await;
    let f = fixture(&app).await;
    fuzz(&app, &f, "seller", &f.seller).await;
    fuzz(&app, &f, "viewer", &f.viewer).await;
}

/// The reference page renders the document in headless Chromium (Debian's, driven by
/// playwright-core): web/tests/api-docs.e2e.mjs. Here, not beside the /live page's
/// tests: its script is heavy, and those tests watch a live picture's timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_page_shows_every_operation_of_the_document() {
    require("node", "nodejs");
    require("chromium", "chromium");
    let root = repo_root();
    assert!(
        root.join("web/node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/web-deps.sh (make test does)"
    );
    let app = spawn_app_with(AppOptions::default()).await;
    let shot = app.dir.path().join("api-docs.png");
    let out = tokio::process::Command::new("node")
        .arg(root.join("web/tests/api-docs.e2e.mjs"))
        .current_dir(root.join("web"))
        .env("FEZA_BASE", &app.base)
        .env("FEZA_SCREENSHOT", &shot)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "the API reference page test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
