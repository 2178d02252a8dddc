//! The headless broadcaster: a show from the command line.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use live_core::Outcome;
use live_media::{IngestUrl, VideoProfile};
use live_studio::queue::{EntryState, Queue};
use live_studio::{ApiClient, GoLive};
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// `println!`, except that nobody reading any more (a pipe's reader gone, `| head`, a
/// closed terminal) stops nothing: the show goes on and ends as asked.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!`, likewise.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Feza Live's headless broadcaster.
#[derive(Parser)]
#[command(name = "live-cast", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncoderArg {
    Auto,
    Software,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Save,
    Discard,
}

#[derive(clap::Args)]
struct GoLiveArgs {
    #[command(flatten)]
    seller: SellerArgs,
    /// The new show's title, as viewers see it.
    #[arg(long, required_unless_present = "stream", conflicts_with = "stream")]
    title: Option<String>,
    /// Go live on this show, scheduled earlier (viewers may be waiting for it with a
    /// reminder), instead of creating one; or take a live show up again whose broadcast
    /// stopped (a crash, a power cut): its viewers stay, and its replay is the whole show.
    #[arg(long, value_name = "ID")]
    stream: Option<String>,
    /// `test` (a moving pattern, a clock and a tone) or a camera id from `live-cast devices`.
    #[arg(long, default_value = "test")]
    source: String,
    /// Instead of a camera: a file of raw I420 frames at the profile's size, played
    /// over and over at its rate (`make bench` gives every broadcaster it compares the
    /// same picture this way).
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    raw_video: Option<std::path::PathBuf>,
    /// A microphone id from `live-cast devices`. Without one, the test source plays a
    /// tone and a camera goes out silent.
    #[arg(long)]
    microphone: Option<String>,
    /// Another destination (rtmp://, rtmps:// or srt://), besides the marketplace.
    #[arg(long = "extra-ingest")]
    extra_ingest: Vec<String>,
    /// Accept rtmps:// certificates signed by an authority this machine does not know
    /// (a private ingest); host name and dates are still checked.
    #[arg(long)]
    tls_allow_unknown_ca: bool,
    /// H.264 encoder: a hardware one when present (auto) or always x264 (software).
    #[arg(long, value_enum, default_value = "auto")]
    encoder: EncoderArg,
    /// Ends the show by itself after this long (30s, 5m, 1h, 1h30m).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// What happens to the show at the end.
    #[arg(long, value_enum, default_value = "save")]
    outcome: OutcomeArg,
    /// 1080p30, 720p30, 480p30 or 360p30.
    #[arg(long, default_value = "720p30")]
    profile: String,
    #[command(flatten)]
    upload: UploadArgs,
    /// Do not send the recording while live (only after the show, on save).
    #[arg(long)]
    no_progressive_upload: bool,
}

/// Who the seller is, where their server and recordings are.
#[derive(clap::Args, Clone)]
struct SellerArgs {
    /// The Feza Live server.
    #[arg(long, env = "FEZA_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The seller's token.
    #[arg(long, env = "FEZA_TOKEN", hide_env_values = true)]
    token: String,
    /// Where recordings (and their upload queue) are kept. The same folder whichever
    /// directory live-cast runs from: a crashed show is finished from there.
    #[arg(long, env = "FEZA_RECORD_DIR", default_value_os_t = default_record_dir())]
    record_dir: PathBuf,
}

/// `Feza Live` in the user's videos folder (XDG's, else `~/Videos`); `./recordings`
/// for a user with no home.
fn default_record_dir() -> PathBuf {
    dirs::video_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join("Videos")))
        .map_or_else(
            || PathBuf::from("recordings"),
            |videos| videos.join("Feza Live"),
        )
}

impl SellerArgs {
    fn client(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::new(&self.server, &self.token)?)
    }
}

#[derive(clap::Args, Clone)]
struct UploadArgs {
    /// Keep the local recording once its replay is ready on the server.
    #[arg(long)]
    keep_recording: bool,
    /// Upload at most this many megabytes a second (unlimited when unset).
    #[arg(long, value_parser = parse_rate)]
    upload_limit_mbps: Option<u64>,
    /// Bytes per upload request, in MiB.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    upload_chunk_mib: u64,
    /// How long to wait for the server to confirm the replay before handing the upload
    /// to the next run (30s, 5m).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    upload_wait: Duration,
}

impl UploadArgs {
    fn send_options(&self) -> live_studio::upload::SendOptions {
        live_studio::upload::SendOptions {
            chunk: (self.upload_chunk_mib * 1024 * 1024) as usize,
            rate_limit: self.upload_limit_mbps,
        }
    }
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let mb: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of megabytes a second, like 2.5"))?;
    if mb.is_nan() || mb <= 0.0 {
        return Err("the upload limit must be above 0".into());
    }
    Ok((mb * 1e6) as u64)
}

#[derive(Subcommand)]
enum Command {
    /// Creates a show, goes live with it, and ends it (after --duration or on Ctrl-C).
    GoLive(Box<GoLiveArgs>),
    /// Lists the cameras and microphones present.
    Devices,
    /// Lists the upload queue; with --resume, uploads what is unfinished.
    Uploads {
        #[command(flatten)]
        seller: SellerArgs,
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        upload: UploadArgs,
    },
    /// Queues a recording of one of your saved shows for upload, and uploads it.
    Upload {
        #[command(flatten)]
        seller: SellerArgs,
        /// The show the recording belongs to.
        #[arg(long)]
        stream: String,
        /// The recording (Matroska or MP4 with H.264).
        file: PathBuf,
        #[command(flatten)]
        upload: UploadArgs,
    },
    /// Finishes recordings an interrupted show left behind (go-live does it first too).
    Recover {
        #[command(flatten)]
        seller: SellerArgs,
    },
}

/// A duration as a seller writes one: `90` (seconds), `30s`, `5m`, `1h30m`, `1h 30min`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("{s:?} is not a duration like 30s, 5m, 1h or 1h30m"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // What went wrong and what to do, as a sentence: never a stack trace.
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say_err!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::GoLive(args) => {
            let GoLiveArgs {
                seller,
                title,
                stream,
                source,
                raw_video,
                microphone,
                extra_ingest,
                tls_allow_unknown_ca,
                encoder,
                duration,
                outcome,
                profile,
                upload,
                no_progressive_upload,
            } = *args;
            let source = live_media::Source {
                camera: (source != "test").then_some(source),
                raw_video,
                microphone,
            };
            let video = VideoProfile::by_name(&profile).with_context(|| {
                format!("unknown profile {profile:?}: use 1080p30, 720p30, 480p30 or 360p30")
            })?;
            let extra_ingests = extra_ingest
                .iter()
                .map(|u| IngestUrl::parse(u))
                .collect::<Result<Vec<_>, _>>()?;
            let client = seller.client()?;
            let record_dir = seller.record_dir.clone();
            let queue = Queue::open(&record_dir).await?;
            // A live show named here is one whose broadcast stopped, to be taken up
            // again: its recording so far is the session's to go on with.
            let taking_up = match &stream {
                Some(id) => client
                    .stream(id)
                    .await
                    .ok()
                    .filter(|s| s.status == live_core::StreamStatus::Live)
                    .map(|s| s.id),
                None => None,
            };
            let recovered =
                live_studio::session::recover(&client, &record_dir, taking_up.as_deref()).await;
            report_recovered(&recovered);
            queue_recovered(&queue, &recovered).await;
            let outcome_is_save = matches!(outcome, OutcomeArg::Save);
            let go = GoLive {
                show: match (stream, title) {
                    (Some(id), _) => live_studio::Show::Scheduled { id },
                    (None, title) => live_studio::Show::New {
                        title: title.unwrap_or_default(),
                    },
                },
                source,
                video,
                encoder: match encoder {
                    EncoderArg::Auto => live_media::EncoderChoice::Auto,
                    EncoderArg::Software => live_media::EncoderChoice::Software,
                },
                extra_ingests,
                tls: if tls_allow_unknown_ca {
                    live_media::TlsTrust::AllowUnknownCa
                } else {
                    live_media::TlsTrust::System
                },
                record_dir,
                duration,
                outcome: match outcome {
                    OutcomeArg::Save => Outcome::Save,
                    OutcomeArg::Discard => Outcome::Discard,
                },
                stats_every: Duration::from_secs(2),
                queue: Some(queue.clone()),
                progressive_upload: !no_progressive_upload,
                keep_local: upload.keep_recording,
            };
            let interrupts = Interrupts::listen()?;
            let first = interrupts.next();
            let stop = async {
                first.await;
                say_err!("ending the show…");
            };
            // Typed while live: see CONTROL_HELP.
            let (control_tx, controls) = tokio::sync::mpsc::channel(8);
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match live_studio::Control::parse(&line) {
                        Ok(c) => {
                            if control_tx.send(c).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => say_err!("{e}"),
                    }
                }
            });
            let session = live_studio::session::go_live(&client, go, stop, controls, |event| {
                // Alerts are in the log already (on stderr).
                if let live_studio::SessionEvent::Tick(tick) = event {
                    say!(
                        "{}",
                        live_studio::session::stats_line(&tick.stats, Some(&tick.show))
                    );
                }
            });
            let report = tokio::select! {
                report = session => report?,
                never = interrupts.while_ending() => match never {},
            };
            say!(
                "show {} ended ({}) after {:.1} s",
                report.stream.id,
                report.stream.status,
                report.duration.as_secs_f64()
            );
            if let Some(mp4) = &report.mp4 {
                say!("recording: {}", mp4.display());
            }
            if let (Some(e), Some(mkv)) = (&report.mp4_error, &report.recording) {
                say!(
                    "the MP4 copy could not be made ({e}): the recording is kept at {}, its \
                     upload goes ahead, and the next `live-cast` run makes the copy (on a full \
                     disk, once there is room)",
                    mkv.display()
                );
            }
            if let Some(e) = &report.recording_error {
                say!("the recording stopped early: {e}");
            }
            if !report.recording_lost.is_zero() {
                say!(
                    "the recording misses {:.0} s of the show: its disk took nothing for longer \
                     than a minute (the live show went on)",
                    report.recording_lost.as_secs_f64()
                );
            }
            if outcome_is_save && report.stream.status == live_core::StreamStatus::Archived {
                upload_queue(&client, &queue, &upload, &interrupts).await?;
            }
            Ok(())
        }
        Command::Uploads {
            seller,
            resume,
            upload,
        } => {
            let record_dir = &seller.record_dir;
            let queue = Queue::open(record_dir).await?;
            if resume {
                let client = seller.client()?;
                upload_queue(&client, &queue, &upload, &Interrupts::listen()?).await?;
            }
            let entries = queue.list().await?;
            if entries.is_empty() {
                say!("no uploads in {}", record_dir.display());
            }
            for e in entries {
                let size = e
                    .size
                    .map_or("?".into(), |s| format!("{:.1} MB", s as f64 / 1e6));
                say!(
                    "{:<34} {:<10} {:>10} of {:>10}  {}{}",
                    e.stream_id,
                    format!("{:?}", e.state).to_lowercase(),
                    format!("{:.1} MB", e.sent as f64 / 1e6),
                    size,
                    e.path.display(),
                    e.error.map(|r| format!("  ({r})")).unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Upload {
            seller,
            stream,
            file,
            upload,
        } => {
            anyhow::ensure!(file.is_file(), "{} is not a file", file.display());
            let client = seller.client()?;
            let queue = Queue::open(&seller.record_dir).await?;
            queue.enqueue(&stream, &file, true).await?;
            upload_queue(&client, &queue, &upload, &Interrupts::listen()?).await
        }
        Command::Recover { seller } => {
            let client = seller.client()?;
            let record_dir = &seller.record_dir;
            let found = live_studio::session::recover(&client, record_dir, None).await;
            if found.is_empty() {
                say!("no interrupted recording in {}", record_dir.display());
            }
            report_recovered(&found);
            queue_recovered(&Queue::open(record_dir).await?, &found).await;
            Ok(())
        }
        Command::Devices => {
            let devices = live_media::list_devices()?;
            if devices.is_empty() {
                say!("no camera or microphone found; `--source test` works without one");
            }
            for d in devices {
                let kind = match d.kind {
                    live_media::DeviceKind::Camera => "camera",
                    live_media::DeviceKind::Microphone => "microphone",
                };
                say!("{kind:<10} {:<28} {}", d.id, d.name);
            }
            Ok(())
        }
    }
}

/// Ctrl-C, a polite TERM from a supervisor, or a HUP from a terminal closed under it,
/// as they come: the first ends a show; one during an upload pauses it.
struct Interrupts(tokio::sync::watch::Receiver<u64>);

impl Interrupts {
    /// Listens from now on (the default of dying at once no longer holds).
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, rx) = tokio::sync::watch::channel(0);
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        let mut term = signal(SignalKind::terminate()).context("cannot listen for TERM")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for HUP")?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = int.recv() => {},
                    _ = term.recv() => {},
                    _ = hup.recv() => {},
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Ok(Self(rx))
    }

    /// Never resolves: once the show is ending (the first one from this call on), the
    /// next one says what is going on and how to quit; the one after quits at once
    /// (the recording is kept and the show noted, for the next run to finish).
    async fn while_ending(&self) -> std::convert::Infallible {
        let mut rx = self.0.clone();
        let start = *rx.borrow_and_update();
        loop {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
            match *rx.borrow_and_update() - start {
                2 => say_err!(
                    "still ending the show: closing the recording and telling the server \
                     (saved or discarded as asked). Ctrl-C once more quits now; the next \
                     live-cast run finishes it"
                ),
                n if n >= 3 => {
                    say_err!(
                        "quitting: the recording is kept, and the next live-cast run finishes \
                         the show"
                    );
                    std::process::exit(130);
                }
                _ => {}
            }
        }
    }

    /// The next one from this call on.
    fn next(&self) -> impl Future<Output = ()> + use<> {
        let mut rx = self.0.clone();
        rx.borrow_and_update();
        async move {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs the upload queue, printing progress at most once a second, until it is done or
/// the seller interrupts it (the upload then pauses, to be resumed).
async fn upload_queue(
    client: &ApiClient,
    queue: &Queue,
    args: &UploadArgs,
    interrupts: &Interrupts,
) -> anyhow::Result<()> {
    let mut last = std::time::Instant::now() - Duration::from_secs(2);
    let outcomes = live_studio::queue::run(
        client,
        queue,
        args.send_options(),
        args.upload_wait,
        interrupts.next(),
        |id, p| {
            let done = p.total == Some(p.sent);
            if done || last.elapsed() >= Duration::from_secs(1) {
                last = std::time::Instant::now();
                say!("upload {id}: {}", p.line());
            }
        },
    )
    .await?;
    let mut failed = false;
    for o in outcomes {
        match o.state {
            EntryState::Done => say!("replay of {} is ready", o.stream_id),
            EntryState::Processing => say!(
                "replay of {} is still being made on the server; `live-cast uploads` shows it",
                o.stream_id
            ),
            EntryState::Queued => say!(
                "upload of {} paused ({}); `live-cast uploads --resume` continues it",
                o.stream_id,
                o.error.unwrap_or_default()
            ),
            EntryState::Failed => {
                failed = true;
                say!(
                    "upload of {} failed: {}; the recording is kept",
                    o.stream_id,
                    o.error.unwrap_or_default()
                );
            }
        }
    }
    anyhow::ensure!(!failed, "an upload failed");
    Ok(())
}

/// Recordings finished after a crash are queued for upload like any saved show (one
/// whose replay is already made stays done).
async fn queue_recovered(queue: &Queue, found: &[live_studio::session::Recovered]) {
    for r in found.iter().filter(|r| r.saved.is_ok()) {
        if let Ok(Some(e)) = queue.get(&r.stream_id).await
            && e.state == EntryState::Done
        {
            // Its replay came before its MP4 copy: the recording was kept for the copy.
            if !e.keep_local
                && let Err(err) = std::fs::remove_file(&r.recording)
            {
                tracing::warn!("could not remove {}: {err}", r.recording.display());
            }
            continue;
        }
        if let Err(e) = queue.enqueue(&r.stream_id, &r.recording, false).await {
            tracing::warn!("could not queue {} for upload: {e}", r.recording.display());
        }
    }
}

fn report_recovered(found: &[live_studio::session::Recovered]) {
    for r in found {
        let server = match &r.saved {
            Ok(s) => format!("show {} is {}", r.stream_id, s.status),
            Err(e) => format!("show {} could not be saved: {e}", r.stream_id),
        };
        say!(
            "recovered an interrupted recording: {} ({server})",
            r.mp4.display()
        );
        if r.was_live {
            say!(
                "  show {} was still live, its viewers waiting: it is ended and saved now; \
                 next time, `live-cast go-live --stream {}` within the server's reconnect grace \
                 takes such a show up again",
                r.stream_id,
                r.stream_id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_seller_writes_them() {
        for (written, secs) in [
            ("90", 90),
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h 30min", 5400),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(written),
                Ok(Duration::from_secs(secs)),
                "{written}"
            );
        }
        for wrong in ["", "soon", "-5m", "5 parsecs"] {
            let err = parse_duration(wrong).unwrap_err();
            assert!(err.contains("1h30m"), "{wrong}: {err}");
        }
    }
}
