//! Feza Live Studio, the desktop app: the window's commands and events, wired to
//! `live-studio` (which does the work: the server, the show session, the uploads).

use live_core::api::{CreateStream, Stream, UpdateStream};
use live_studio::credentials::{CredentialError, Secrets};
use live_studio::studio::{self, Settings, StudioEvent};
use live_studio::{ApiClient, Control, GoLive, Show};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tauri::ipc::Channel;
use tauri::{Manager, State};
use tokio::sync::mpsc;

/// An error as the window shows it: a sentence saying what to do.
type Said<T> = Result<T, String>;

struct Studio {
    tokens: Secrets,
    settings_path: PathBuf,
    recordings: PathBuf,
    signed_in: Mutex<Option<ApiClient>>,
    /// The controls of the show on air, if one is.
    live: Mutex<Option<mpsc::Sender<Control>>>,
    /// A saved show's replay is on its way to the server.
    sending: AtomicBool,
}

impl Studio {
    /// Whether closing the window would cut something short (a show on air, a replay
    /// being sent): the app then stays, in the tray.
    fn busy(&self) -> bool {
        lock(&self.live).is_some() || self.sending.load(Ordering::Relaxed)
    }
}

/// A desktop notification, when the window is not in front (the seller would not see
/// the alert in it).
fn notify_unless_in_front(app: &tauri::AppHandle, message: &str) {
    use tauri_plugin_notification::NotificationExt;
    let in_front = app
        .get_webview_window("main")
        .is_some_and(|w| w.is_focused().unwrap_or(false) && w.is_visible().unwrap_or(false));
    if !in_front
        && let Err(e) = app
            .notification()
            .builder()
            .title("Feza Live")
            .body(message)
            .show()
    {
        log::warn!("could not show a notification: {e}");
    }
}

impl Studio {
    fn client(&self) -> Said<ApiClient> {
        lock(&self.signed_in)
            .clone()
            .ok_or_else(|| "sign in first".to_owned())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The seller signed in, and where the token is kept.
#[derive(Serialize)]
struct SignedIn {
    server: String,
    seller_id: String,
    seller_name: String,
    /// Set when the token is kept for this run only (no keyring).
    keyring_note: Option<String>,
}

async fn signed_in(studio: &Studio, server: &str, token: &str, keep: bool) -> Said<SignedIn> {
    let (client, seller) = studio::sign_in(server, token).await?;
    let keyring_note = if keep {
        match studio.tokens.save(server.trim(), token.trim()).await {
            Ok(()) => None,
            Err(e @ CredentialError::NoKeyring(_)) => Some(e.to_string()),
            Err(e) => return Err(e.to_string()),
        }
    } else {
        None
    };
    let settings = Settings {
        server: Some(server.trim().to_owned()),
    };
    settings
        .save(&studio.settings_path)
        .map_err(|e| format!("could not keep the server's address: {e}"))?;
    *lock(&studio.signed_in) = Some(client);
    Ok(SignedIn {
        server: server.trim().to_owned(),
        seller_id: seller.id,
        seller_name: seller.name,
        keyring_note,
    })
}

/// Signs in again as the seller of the last run (token from the keyring), or as the
/// one `FEZA_SERVER` and `FEZA_TOKEN` name; none when neither is there.
#[tauri::command]
async fn restore(studio: State<'_, Studio>) -> Said<Option<SignedIn>> {
    if let (Ok(server), Ok(token)) = (std::env::var("FEZA_SERVER"), std::env::var("FEZA_TOKEN")) {
        return signed_in(&studio, &server, &token, true).await.map(Some);
    }
    let Some(server) = Settings::load(&studio.settings_path).server else {
        return Ok(None);
    };
    match studio.tokens.load(&server).await {
        Ok(Some(token)) => signed_in(&studio, &server, &token, false).await.map(Some),
        Ok(None) | Err(CredentialError::NoKeyring(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

#[tauri::command]
async fn sign_in(studio: State<'_, Studio>, server: String, token: String) -> Said<SignedIn> {
    signed_in(&studio, &server, &token, true).await
}

#[tauri::command]
async fn sign_out(studio: State<'_, Studio>) -> Said<()> {
    if lock(&studio.live).is_some() {
        return Err("end the show first".into());
    }
    let server = Settings::load(&studio.settings_path).server;
    *lock(&studio.signed_in) = None;
    if let Some(server) = server {
        studio
            .tokens
            .forget(&server)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tauri::command]
async fn my_shows(studio: State<'_, Studio>) -> Said<Vec<Stream>> {
    let client = studio.client()?;
    client.my_streams().await.map_err(|e| e.to_string())
}

#[tauri::command]
async fn schedule_show(studio: State<'_, Studio>, show: CreateStream) -> Said<Stream> {
    let client = studio.client()?;
    client.schedule(&show).await.map_err(|e| e.to_string())
}

#[tauri::command]
async fn update_show(studio: State<'_, Studio>, id: String, change: UpdateStream) -> Said<Stream> {
    let client = studio.client()?;
    client.update(&id, &change).await.map_err(|e| e.to_string())
}

#[tauri::command]
async fn cancel_show(studio: State<'_, Studio>, id: String) -> Said<Stream> {
    let client = studio.client()?;
    client.cancel(&id).await.map_err(|e| e.to_string())
}

/// How a show goes live: which show, and the picture's profile.
#[derive(Deserialize)]
struct GoLiveArgs {
    /// A show scheduled earlier; none: a new one with `title`.
    id: Option<String>,
    title: Option<String>,
    profile: String,
}

/// Goes live; everything that follows comes on `events`.
#[tauri::command]
async fn go_live(
    app: tauri::AppHandle,
    studio: State<'_, Studio>,
    args: GoLiveArgs,
    events: Channel<StudioEvent>,
) -> Said<()> {
    let client = studio.client()?;
    let video = live_media::VideoProfile::by_name(&args.profile)
        .ok_or_else(|| format!("there is no profile {:?}", args.profile))?;
    let queue = live_studio::queue::Queue::open(&studio.recordings)
        .await
        .map_err(|e| e.to_string())?;
    let show = match (args.id, args.title) {
        (Some(id), _) => Show::Scheduled { id },
        (None, Some(title)) => Show::New { title },
        (None, None) => return Err("name the show".into()),
    };
    let go = GoLive {
        show,
        source: live_media::Source::test(),
        video,
        encoder: Default::default(),
        extra_ingests: Vec::new(),
        tls: Default::default(),
        record_dir: studio.recordings.clone(),
        duration: None,
        outcome: live_core::Outcome::Save,
        stats_every: std::time::Duration::from_secs(1),
        queue: Some(queue),
        progressive_upload: true,
        keep_local: true,
    };
    let (controls, rx) = mpsc::channel(8);
    {
        let mut live = lock(&studio.live);
        if live.is_some() {
            return Err("a show is on air already".into());
        }
        *live = Some(controls);
    }
    let tell = move |event: StudioEvent| {
        let studio = app.state::<Studio>();
        match &event {
            // Off the air: no more controls; a saved show's replay is sent next.
            StudioEvent::Ended(ended) => {
                *lock(&studio.live) = None;
                studio.sending.store(ended.saved, Ordering::Relaxed);
            }
            StudioEvent::Failed { message } => {
                *lock(&studio.live) = None;
                studio.sending.store(false, Ordering::Relaxed);
                notify_unless_in_front(&app, message);
            }
            StudioEvent::Done(_) => studio.sending.store(false, Ordering::Relaxed),
            StudioEvent::Alert(alert) => notify_unless_in_front(&app, &alert.message),
            _ => {}
        }
        let _ = events.send(event);
    };
    tauri::async_runtime::spawn(studio::run_show(client, go, rx, tell));
    Ok(())
}

/// Sends the replays left waiting by an earlier run (the app quit, or the network was
/// down, while one was being sent), telling their progress on `events`. Nothing is
/// started while a show is on air or a replay is being sent already.
#[tauri::command]
async fn send_waiting_replays(
    app: tauri::AppHandle,
    studio: State<'_, Studio>,
    events: Channel<StudioEvent>,
) -> Said<()> {
    let client = studio.client()?;
    if lock(&studio.live).is_some() || studio.sending.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let queue = match live_studio::queue::Queue::open(&studio.recordings).await {
        Ok(queue) => queue,
        Err(e) => {
            studio.sending.store(false, Ordering::SeqCst);
            return Err(e.to_string());
        }
    };
    tauri::async_runtime::spawn(async move {
        let sent = studio::send_replays(&client, &queue, &mut |e| {
            let _ = events.send(e);
        })
        .await;
        app.state::<Studio>().sending.store(false, Ordering::SeqCst);
        for outcome in sent {
            let _ = events.send(StudioEvent::Done(studio::DoneView::of(&outcome)));
        }
    });
    Ok(())
}

/// Removes a comment from the seller's show.
#[tauri::command]
async fn remove_comment(studio: State<'_, Studio>, show: String, comment: String) -> Said<()> {
    let client = studio.client()?;
    client
        .remove_comment(&show, &comment)
        .await
        .map_err(|e| e.to_string())
}

/// Blocks a viewer from the seller's shows' chat and reactions.
#[tauri::command]
async fn block_viewer(studio: State<'_, Studio>, show: String, viewer: String) -> Said<()> {
    let client = studio.client()?;
    client
        .block(&show, &viewer)
        .await
        .map_err(|e| e.to_string())
}

/// What the window changes while live.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ControlArg {
    Mic { muted: bool },
    Camera { on: bool },
    End { save: bool },
}

#[tauri::command]
async fn control(studio: State<'_, Studio>, control: ControlArg) -> Said<()> {
    let controls = lock(&studio.live)
        .clone()
        .ok_or_else(|| "no show is on air".to_owned())?;
    let control = match control {
        ControlArg::Mic { muted } => Control::Mic { muted },
        ControlArg::Camera { on } => Control::Camera { on },
        ControlArg::End { save } => Control::End(if save {
            live_core::Outcome::Save
        } else {
            live_core::Outcome::Discard
        }),
    };
    controls
        .send(control)
        .await
        .map_err(|_| "the show has ended already".to_owned())
}

/// The tray icon: the window back, or quit (refused while busy).
fn tray(app: &tauri::App) -> tauri::Result<()> {
    use tauri::menu::{Menu, MenuItem};
    use tauri::tray::TrayIconBuilder;
    let show = MenuItem::with_id(app, "show", "Show Feza Live", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut tray = TrayIconBuilder::with_id("feza-live")
        .tooltip("Feza Live")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "show" => {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.show();
                    let _ = w.set_focus();
                }
            }
            "quit" if app.state::<Studio>().busy() => notify_unless_in_front(
                app,
                "A show is on air or its replay is being sent: end the show, or wait for the \
                 replay, before quitting.",
            ),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _, _| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.show();
                let _ = window.set_focus();
            }
        }))
        .plugin(
            tauri_plugin_log::Builder::new()
                .level(log::LevelFilter::Info)
                .build(),
        )
        .plugin(tauri_plugin_window_state::Builder::new().build())
        .plugin(tauri_plugin_notification::init())
        .setup(|app| {
            let config = app.path().app_config_dir()?;
            let data = app.path().app_data_dir()?;
            app.manage(Studio {
                tokens: Secrets::seller_tokens(),
                settings_path: config.join("settings.json"),
                recordings: data.join("recordings"),
                signed_in: Mutex::new(None),
                live: Mutex::new(None),
                sending: AtomicBool::new(false),
            });
            // Without a tray (no status-notifier host), the app goes on without one.
            if let Err(e) = tray(app) {
                log::warn!("no tray icon: {e}");
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window while a show is on air or its replay is being sent
            // hides it: the app goes on in the tray until the work is done.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && window.app_handle().state::<Studio>().busy()
            {
                api.prevent_close();
                let _ = window.hide();
                notify_unless_in_front(
                    window.app_handle(),
                    "Feza Live goes on in the tray until your show and its replay are done.",
                );
            }
        })
        .invoke_handler(tauri::generate_handler![
            restore,
            sign_in,
            sign_out,
            my_shows,
            schedule_show,
            update_show,
            cancel_show,
            go_live,
            control,
            remove_comment,
            block_viewer,
            send_waiting_replays
        ])
        .run(tauri::generate_context!())
        .expect("the Feza Live window could not open");
}
