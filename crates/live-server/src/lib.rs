//! Feza Live's marketplace live service: the catalog of shows and their lifecycle,
//! ingest hooks for nginx-rtmp, over SQLite or PostgreSQL.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod hooks;
pub mod limits;
pub mod replays;
pub mod state;
pub mod storage;
pub mod store;
pub mod sweeper;
pub mod uploads;
pub mod web;

use crate::error::ApiError;
use crate::state::{AppState, Settings};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tower_http::trace::TraceLayer;

/// Largest JSON body the API reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The OpenAPI document of everything the server answers, as `/api/openapi.json`
/// serves it (pretty-printed, so its committed copy reads well in review).
pub fn openapi_json() -> String {
    let (_, doc) = api::router();
    let mut json = doc
        .to_pretty_json()
        .expect("the generated OpenAPI document serializes");
    json.push('\n');
    json
}

/// The document never changes: serialized once, not per request.
pub(crate) static OPENAPI: LazyLock<String> = LazyLock::new(openapi_json);

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (api, _) = api::router();
    Router::new()
        .merge(api)
        .merge(web::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Paths only: hook URLs carry the hook secret in their query.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

/// Opens the database and resolves the configuration into the shared state.
pub async fn prepare(cfg: &config::Config) -> anyhow::Result<AppState> {
    let settings = Settings::from_config(cfg)?;
    let db = db::Db::connect(&cfg.database_url).await?;
    Ok(AppState {
        db,
        settings: Arc::new(settings),
        uploads: Default::default(),
        replay_work: Default::default(),
        events: Default::default(),
        dirty: Default::default(),
        counts_wake: Default::default(),
        limits: Arc::new(limits::Limits::new(limits::Rates {
            comments: cfg.rate_comments_per_min,
            reactions: cfg.rate_reactions_per_min,
            joins: cfg.rate_joins_per_min,
            heartbeats: cfg.rate_heartbeats_per_min,
            viewers: cfg.rate_viewers_per_min,
            per_ip: cfg.rate_ip_per_min,
        })),
        database_url: cfg.database_url.as_str().into(),
        reactions: Default::default(),
    })
}

/// Serves on `listener` until `shutdown` resolves, sweeping time-based changes meanwhile.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sweeper = tokio::spawn(sweeper::run(state.clone(), Duration::from_secs(1)));
    let pruner = tokio::spawn(events::prune_every(state.clone(), Duration::from_secs(60)));
    let replays = tokio::spawn(replays::run(state.clone(), state.replay_work.clone()));
    let pump = tokio::spawn(events::pump(
        state.clone(),
        Some(state.database_url.to_string()),
    ));
    let counts = tokio::spawn(api::engagement::counts_ticker(state.clone()));
    let reactions = tokio::spawn(api::engagement::ReactionWriter::run(state.clone()));
    // Handlers see the client's address (per-IP rate limits).
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    for task in [sweeper, pruner, replays, pump, counts, reactions] {
        task.abort();
    }
    Ok(result?)
}
