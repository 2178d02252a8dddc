use anyhow::Context;
use clap::{Parser, Subcommand};
use live_server::config::Config;
use live_server::db::Db;
use tracing_subscriber::EnvFilter;

/// Feza Live's marketplace live service.
#[derive(Parser)]
#[command(name = "live-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, the ingest hooks and the public pages.
    Serve(Box<Config>),
    /// Prints the OpenAPI document of the HTTP API (what `/api/openapi.json` serves).
    Openapi,
    /// Administrative tasks on the database.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Subcommand)]
enum Admin {
    /// Creates a seller and prints its token (once) as the last line.
    CreateSeller {
        /// The seller's name as viewers see it.
        #[arg(long)]
        name: String,
        /// Database: sqlite://PATH or postgres://…
        #[arg(long, env = "DATABASE_URL", default_value = "sqlite://./data/feza.db")]
        database_url: String,
    },
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
        Command::Serve(cfg) => serve(*cfg).await,
        Command::Openapi => {
            print!("{}", live_server::openapi_json());
            Ok(())
        }
        Command::Admin(Admin::CreateSeller { name, database_url }) => {
            let db = Db::connect(&database_url).await?;
            let (id, token) = live_server::auth::create_seller(&db, &name)
                .await
                .context("Failed to create the seller")?;
            println!("seller {id} created: {name}");
            println!("token (shown once; keep it secret):");
            println!("{token}");
            Ok(())
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let state = live_server::prepare(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("Failed to listen on {}", cfg.listen))?;
    tracing::info!(
        listen = %cfg.listen,
        database = %live_server::db::redact(&cfg.database_url),
        ingest = %cfg.ingest_url,
        "live-server ready"
    );
    live_server::serve(state, listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
