//! The desktop app, end to end as a seller uses it: the real `feza-live` binary under
//! Xvfb with a real keyring, driven through WebDriver, against the real server and
//! nginx-rtmp ingest.

use fantoccini::{Client, Locator};
use feza_tests::desktop::{Desktop, screenshot};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Fails the test with what the window shows (a screenshot, `failed.png`, and the
/// page's text).
async fn fail(ui: &Client, why: String) -> ! {
    screenshot(ui, "failed").await;
    let shown = text_now(ui, "body").await;
    panic!("{why}; the window shows:\n{shown}");
}

/// The first element `css` finds, once it is there.
async fn element(ui: &Client, css: &str) -> fantoccini::elements::Element {
    match ui
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(el) => el,
        Err(e) => fail(ui, format!("{css} never appeared: {e}")).await,
    }
}

/// The text of the first element `css` finds, once it is there.
async fn text(ui: &Client, css: &str) -> String {
    element(ui, css).await;
    text_now(ui, css).await
}

/// The text of the first element `css` finds now ("" when there is none). The DOM's
/// text, not WebDriver's "visible text" (WebKit's leaves out a line cut by ellipsis).
async fn text_now(ui: &Client, css: &str) -> String {
    ui.execute(
        "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';",
        vec![json!(css)],
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_owned))
    .unwrap_or_default()
}

/// Waits (up to `timeout`) until the text of `css` satisfies `ok`; returns it.
async fn text_until(
    ui: &Client,
    css: &str,
    timeout: Duration,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let now = text_now(ui, css).await;
        if ok(&now) {
            return now;
        }
        if Instant::now() > deadline {
            fail(ui, format!("{css} still says {now:?} after {timeout:?}")).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn type_into(ui: &Client, css: &str, value: &str) {
    let el = element(ui, css).await;
    // Into the field, as a person clicks before typing: the keys go where the focus
    // is, so the typing waits until it is there.
    el.click().await.expect("click into the field");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ui
        .execute(
            "return document.activeElement === document.querySelector(arguments[0]);",
            vec![json!(css)],
        )
        .await
        .ok()
        .and_then(|v| v.as_bool())
        != Some(true)
    {
        if Instant::now() > deadline {
            fail(ui, format!("{css} never took the focus")).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    el.clear().await.expect("clear the field");
    el.send_keys(value).await.expect("type into the field");
}

async fn click(ui: &Client, css: &str) {
    if let Err(e) = element(ui, css).await.click().await {
        fail(ui, format!("click {css}: {e}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_signs_in_schedules_a_show_goes_live_on_it_and_saves_it() {
    // Alone on the machine: a window, a show and its encoder beside another's would
    // measure the machine, not the app.
    let (app, _ingest) = feza_tests::stack_alone(60).await;
    let token = app.seller("Maria R.").await;
    let desktop = Desktop::start();
    let ui = desktop.open_app().await;

    // Sign in: a wrong token is refused in words, then the right one.
    type_into(&ui, "#server", &app.base).await;
    type_into(&ui, "#token", "fzs_not_hers").await;
    click(&ui, "#sign-in-button").await;
    let refused = text(&ui, "#sign-in-error").await;
    assert!(refused.contains("does not know this token"), "{refused}");
    screenshot(&ui, "sign-in").await;
    type_into(&ui, "#token", &token).await;
    click(&ui, "#sign-in-button").await;
    assert_eq!(text(&ui, "#seller-name").await, "Maria R.");
    // The token is in the keyring, and in no file of the app's.
    let kept = desktop.secret_tool(&["search", "--all", "service", "live.feza.studio"]);
    assert!(
        kept.contains(&format!("secret = {token}")),
        "the keyring holds: {kept}"
    );
    assert_eq!(
        desktop.files_holding(&token),
        Vec::<std::path::PathBuf>::new()
    );

    // Schedule a show; a title too long is said before anything is sent.
    type_into(&ui, "#show-title", &"x".repeat(130)).await;
    click(&ui, "#schedule-button").await;
    let said = text(&ui, "#schedule .field-error").await;
    assert!(said.contains("120 characters"), "{said}");
    type_into(&ui, "#show-title", "Linen dresses, spring colours").await;
    // The date picker set as a person's picking sets it (WebDriver cannot type into
    // WebKit's picker).
    let later = chrono::Local::now() + chrono::Duration::hours(3);
    ui.execute(
        "const el = document.querySelector('#show-when'); el.value = arguments[0]; \
         el.dispatchEvent(new Event('input', { bubbles: true }));",
        vec![json!(later.format("%Y-%m-%dT%H:%M").to_string())],
    )
    .await
    .expect("pick a date");
    click(&ui, "#schedule-button").await;
    text_until(&ui, "li.show .show-title", Duration::from_secs(10), |t| {
        t == "Linen dresses, spring colours"
    })
    .await;
    let mine = app
        .get(Some(&token), "/api/me/streams")
        .await
        .expect(StatusCode::OK);
    let shows = mine.body["streams"].as_array().unwrap().clone();
    assert_eq!(shows.len(), 1, "one show, nothing half-created: {shows:?}");
    let id = shows[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(shows[0]["status"], "scheduled");
    screenshot(&ui, "my-shows").await;

    // Go live on it: the same show turns live.
    click(&ui, &format!("li.show[data-id='{id}'] .live-button")).await;
    text_until(&ui, "#live-state", Duration::from_secs(30), |t| t == "Live").await;
    assert_eq!(
        app.stream(None, &id).await.status,
        live_core::StreamStatus::Live
    );

    // A viewer joins, likes and comments: the seller sees it within 2 s.
    let viewer = app
        .post(None, "/api/viewers", json!({ "display_name": "Ada" }))
        .await
        .expect(StatusCode::CREATED);
    let viewer = viewer.body["token"].as_str().unwrap().to_owned();
    let acted = Instant::now();
    app.post(
        Some(&viewer),
        &format!("/api/streams/{id}/viewers"),
        json!({}),
    )
    .await
    .expect(StatusCode::CREATED);
    app.send(
        app.client
            .put(app.url(&format!("/api/streams/{id}/reaction")))
            .bearer_auth(&viewer)
            .json(&json!({ "reaction": "like" })),
    )
    .await;
    app.post(
        Some(&viewer),
        &format!("/api/streams/{id}/comments"),
        json!({ "text": "Is the blue one in size M?" }),
    )
    .await
    .expect(StatusCode::CREATED);
    for counter in ["#count-likes", "#count-comments", "#count-viewers"] {
        text_until(&ui, counter, Duration::from_secs(3), |t| t == "1").await;
    }
    text_until(&ui, "#chat .comment-text", Duration::from_secs(3), |t| {
        t == "Is the blue one in size M?"
    })
    .await;
    let seen = acted.elapsed();
    assert!(
        seen < Duration::from_secs(2),
        "the counts and the comment took {seen:?}"
    );
    screenshot(&ui, "live").await;

    // Mute and camera off: what viewers get (the ingest's HLS) is silent and black
    // while they are, and the show goes on.
    let playback = app
        .stream(None, &id)
        .await
        .playback_url
        .expect("a live show's playback URL");
    // The ingest writes the playlist once it holds a first segment.
    feza_tests::eventually("the viewers' playlist", Duration::from_secs(20), || async {
        let r = app.client.get(&playback).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let capture = tempfile::tempdir().unwrap();
    let captured = capture.path().join("viewers.ts");
    let mut recorder = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i", &playback])
        .args(["-t", "16", "-c", "copy"])
        .arg(&captured)
        .kill_on_drop(true)
        .spawn()
        .expect("run ffmpeg");
    tokio::time::sleep(Duration::from_secs(3)).await;
    click(&ui, "#mute").await;
    click(&ui, "#camera").await;
    text_until(&ui, "#mute", Duration::from_secs(3), |t| t == "Unmute").await;
    text_until(&ui, "#camera", Duration::from_secs(3), |t| t == "Camera on").await;
    screenshot(&ui, "muted").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    click(&ui, "#mute").await;
    click(&ui, "#camera").await;
    text_until(&ui, "#mute", Duration::from_secs(3), |t| t == "Mute").await;
    let recorded = tokio::time::timeout(Duration::from_secs(40), recorder.wait())
        .await
        .expect("the viewers' stream recorded")
        .unwrap();
    assert!(
        recorded.success(),
        "ffmpeg could not record the viewers' stream"
    );
    let captured = captured.to_string_lossy().into_owned();
    let black = feza_tests::probe::black_spans(&captured);
    let silent = feza_tests::probe::silent_spans(&captured);
    assert!(
        black.iter().any(|(_, d)| (4.0..=8.0).contains(d)),
        "viewers saw black for as long: {black:?}"
    );
    assert!(
        silent.iter().any(|(_, d)| (4.0..=8.0).contains(d)),
        "viewers heard silence for as long: {silent:?}"
    );

    // Moderation: a comment removed leaves the chat everywhere; a viewer blocked can
    // no longer comment.
    let rude = app
        .post(
            Some(&viewer),
            &format!("/api/streams/{id}/comments"),
            json!({ "text": "This is overpriced junk" }),
        )
        .await
        .expect(StatusCode::CREATED);
    let rude = rude.body["id"].as_str().unwrap().to_owned();
    click(
        &ui,
        &format!("#chat li[data-id='{rude}'] button[title^='Remove']"),
    )
    .await;
    text_until(&ui, "#chat", Duration::from_secs(5), |t| {
        !t.contains("overpriced")
    })
    .await;
    let left = app
        .get(None, &format!("/api/streams/{id}/comments"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        left.body["comments"].as_array().unwrap().len(),
        1,
        "{:?}",
        left.body
    );
    click(&ui, "#chat li button[title^='This viewer']").await;
    feza_tests::eventually("the viewer blocked", Duration::from_secs(5), || async {
        let r = app
            .post(
                Some(&viewer),
                &format!("/api/streams/{id}/comments"),
                json!({ "text": "hello?" }),
            )
            .await;
        (r.status == StatusCode::FORBIDDEN).then_some(())
    })
    .await;

    // End with Save: the replay is sent, and the app says so.
    click(&ui, "#end").await;
    text(&ui, "#end-dialog").await;
    screenshot(&ui, "end-dialog").await;
    click(&ui, "#end-save").await;
    let done = text_until(&ui, "#upload-state", Duration::from_secs(120), |t| {
        t.contains("100 % sent")
    })
    .await;
    screenshot(&ui, "saved").await;
    eprintln!("the app says: {done}");
    let show = app.stream(None, &id).await;
    assert_eq!(show.status, live_core::StreamStatus::Archived);
    ui.close().await.expect("the app closes");
}

/// The app killed mid-show (a crash, the power cut): started again, it offers the show
/// (still live on the server, within its grace) for continuing, and continuing keeps it
/// the same show, live again, its viewers' page unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_show_left_by_a_killed_app_is_continued_as_the_same_show() {
    let (app, _ingest) = feza_tests::stack_alone(90).await;
    let token = app.seller("Maria R.").await;
    let desktop = Desktop::start();
    let ui = desktop.open_app().await;
    type_into(&ui, "#server", &app.base).await;
    type_into(&ui, "#token", &token).await;
    click(&ui, "#sign-in-button").await;
    type_into(&ui, "#show-title", "Silver rings, last pieces").await;
    click(&ui, "#go-live-now").await;
    text_until(&ui, "#live-state", Duration::from_secs(30), |t| t == "Live").await;
    let id = app.first_live_show(Duration::from_secs(5)).await;

    assert!(desktop.kill_app() >= 1, "no app to kill");
    drop(ui);
    // Started again: signed in from the keyring, the show offered for continuing.
    let ui = desktop.open_app().await;
    let offered = format!("li.show[data-id='{id}'] .live-button");
    text_until(&ui, &offered, Duration::from_secs(20), |t| t == "Continue").await;
    assert_eq!(
        app.stream(None, &id).await.status,
        live_core::StreamStatus::Live
    );
    screenshot(&ui, "continue").await;
    click(&ui, &offered).await;
    text_until(&ui, "#live-state", Duration::from_secs(60), |t| t == "Live").await;
    feza_tests::eventually(
        "the ingest connected again",
        Duration::from_secs(30),
        || async {
            let show = app.stream(Some(&token), &id).await;
            (show.ingest_state == Some(live_core::IngestState::Connected)).then_some(())
        },
    )
    .await;
    let mine = app
        .get(Some(&token), "/api/me/streams")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        mine.body["streams"].as_array().unwrap().len(),
        1,
        "the same show, not a new one"
    );
    click(&ui, "#end").await;
    click(&ui, "#end-save").await;
    text_until(&ui, "#upload-state", Duration::from_secs(120), |t| {
        t.contains("100 % sent")
    })
    .await;
    let show = app.stream(None, &id).await;
    assert_eq!(show.status, live_core::StreamStatus::Archived);
    ui.close().await.expect("the app closes");
}
