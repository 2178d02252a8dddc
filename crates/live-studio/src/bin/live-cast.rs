//! The headless broadcaster: a show from the command line.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use live_core::Outcome;
use live_media::{IngestUrl, VideoProfile};
use live_studio::{ApiClient, GoLive};
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

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
    /// The Feza Live server.
    #[arg(long, env = "FEZA_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The seller's token.
    #[arg(long, env = "FEZA_TOKEN", hide_env_values = true)]
    token: String,
    /// The show's title, as viewers see it.
    #[arg(long)]
    title: String,
    /// `test` (a moving pattern, a clock and a tone) or a camera id from `live-cast devices`.
    #[arg(long, default_value = "test")]
    source: String,
    /// A microphone id from `live-cast devices` (with a camera source; silent without).
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
    /// Ends the show by itself after this long (30s, 5m, 1h).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Where the recording goes.
    #[arg(long, default_value = "./recordings")]
    record_dir: PathBuf,
    /// What happens to the show at the end.
    #[arg(long, value_enum, default_value = "save")]
    outcome: OutcomeArg,
    /// 720p30, 480p30 or 360p30.
    #[arg(long, default_value = "720p30")]
    profile: String,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a show, goes live with it, and ends it (after --duration or on Ctrl-C).
    GoLive(Box<GoLiveArgs>),
    /// Lists the cameras and microphones present.
    Devices,
    /// Finishes recordings an interrupted show left behind (go-live does it first too).
    Recover {
        #[arg(long, env = "FEZA_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, env = "FEZA_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long, default_value = "./recordings")]
        record_dir: PathBuf,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration like 30s, 5m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::GoLive(args) => {
            let GoLiveArgs {
                server,
                token,
                title,
                source,
                microphone,
                extra_ingest,
                tls_allow_unknown_ca,
                encoder,
                duration,
                record_dir,
                outcome,
                profile,
            } = *args;
            let source = match source.as_str() {
                "test" => live_media::Source::Test,
                camera => live_media::Source::Devices {
                    camera: camera.to_owned(),
                    microphone,
                },
            };
            let video = VideoProfile::by_name(&profile).with_context(|| {
                format!("unknown profile {profile:?}: use 720p30, 480p30 or 360p30")
            })?;
            let extra_ingests = extra_ingest
                .iter()
                .map(|u| IngestUrl::parse(u))
                .collect::<Result<Vec<_>, _>>()?;
            let client = ApiClient::new(&server, &token)?;
            report_recovered(&live_studio::session::recover(&client, &record_dir).await);
            let go = GoLive {
                title,
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
            };
            let stop = async {
                shutdown_signal().await;
                eprintln!("ending the show…");
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
                        Err(e) => eprintln!("{e}"),
                    }
                }
            });
            let report =
                live_studio::session::go_live(&client, go, stop, controls, |stats, show| {
                    println!("{}", live_studio::session::stats_line(stats, show));
                })
                .await?;
            println!(
                "show {} ended ({}) after {:.1} s",
                report.stream.id,
                report.stream.status,
                report.duration.as_secs_f64()
            );
            if let Some(mp4) = &report.mp4 {
                println!("recording: {}", mp4.display());
            }
            if let Some(e) = &report.recording_error {
                println!("the recording stopped early: {e}");
            }
            Ok(())
        }
        Command::Recover {
            server,
            token,
            record_dir,
        } => {
            let client = ApiClient::new(&server, &token)?;
            let found = live_studio::session::recover(&client, &record_dir).await;
            if found.is_empty() {
                println!("no interrupted recording in {}", record_dir.display());
            }
            report_recovered(&found);
            Ok(())
        }
        Command::Devices => {
            let devices = live_media::list_devices()?;
            if devices.is_empty() {
                println!("no camera or microphone found; `--source test` works without one");
            }
            for d in devices {
                let kind = match d.kind {
                    live_media::DeviceKind::Camera => "camera",
                    live_media::DeviceKind::Microphone => "microphone",
                };
                println!("{kind:<10} {:<28} {}", d.id, d.name);
            }
            Ok(())
        }
    }
}

/// Ctrl-C, or a polite TERM from a supervisor.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

fn report_recovered(found: &[live_studio::session::Recovered]) {
    for r in found {
        let server = match &r.saved {
            Ok(s) => format!("show {} is {}", r.stream_id, s.status),
            Err(e) => format!("show {} could not be saved: {e}", r.stream_id),
        };
        println!(
            "recovered an interrupted recording: {} ({server})",
            r.mp4.display()
        );
    }
}
