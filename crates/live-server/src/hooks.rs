//! Ingest hooks called by nginx-rtmp (`on_publish`, `on_publish_done`, `on_update`).
//! nginx-rtmp accepts a publisher on 2xx, renames its stream on 3xx (to `Location`)
//! and drops it on 4xx. The rename reaches the relay that pushes the stream to the
//! public application, not the HLS of the application published to: so sellers
//! publish to `live` (no HLS) with their key, and viewers play `show/<public name>`.

use crate::auth::{hash_secret, same_secret};
use crate::error::{ApiError, Form, Query};
use crate::state::AppState;
use crate::store::{self, IngestChange, StreamRow};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use live_core::Transition;
use live_core::api::ErrorBody;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The hook routes and their part of the OpenAPI document (tagged `internal`: only the
/// ingest calls them, with the hook secret).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(publish_done))
        .routes(routes!(update))
        .routes(routes!(relay))
}

/// The hook secret, in the query (`?secret=`) or the `X-Feza-Hook-Secret` header.
#[derive(Deserialize)]
pub struct Secret {
    secret: Option<String>,
}

/// The form nginx-rtmp posts (it sends more fields; these are the ones used).
#[derive(Deserialize, ToSchema)]
pub struct HookForm {
    /// `publish`, `publish_done`, `update_publish`, …
    #[serde(default)]
    call: String,
    /// The stream's name: the stream key on publish, the public name after it.
    #[serde(default)]
    name: String,
    /// The publisher's address.
    #[serde(default)]
    addr: String,
    /// The ingest's id of the publisher's connection.
    #[serde(default)]
    clientid: String,
}

/// The header that may carry the hook secret instead of the query string (the ingest's
/// heartbeat relay sends it so, and a header stays out of nginx's logs).
const SECRET_HEADER: &str = "x-feza-hook-secret";

fn check_secret(state: &AppState, q: &Secret, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = q
        .secret
        .as_deref()
        .or_else(|| headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()));
    match given {
        Some(s) if same_secret(s, &state.settings.hook_secret) => Ok(()),
        _ => {
            tracing::warn!("ingest hook called without the hook secret; refused");
            Err(ApiError::Forbidden(
                "the hook secret is missing or wrong".into(),
            ))
        }
    }
}

fn refuse(message: &str) -> ApiError {
    ApiError::Forbidden(message.to_owned())
}

/// The ingest relaying a stream to its public name: only for a show whose ingest is
/// connected right now.
#[utoipa::path(
    post, path = "/hooks/ingest/relay", tag = "internal",
    request_body(content = HookForm, content_type = "application/x-www-form-urlencoded"),
    security(("hook_secret" = []), ("hook_secret_header" = [])),
    responses(
        (status = 200, description = "Relay it: the show's ingest is connected"),
        (status = 400, response = crate::api::doc::BadRequest),
        (status = 413, response = crate::api::doc::TooLarge),
        (status = 415, description = "Not sent as a form (`application/x-www-form-urlencoded`)", body = ErrorBody),
        (status = 403, description = "A wrong or missing hook secret, or no show with a connected ingest has that name", body = ErrorBody),
    ),
)]
async fn relay(
    State(state): State<AppState>,
    Query(q): Query<Secret>,
    headers: HeaderMap,
    Form(form): Form<HookForm>,
) -> Result<StatusCode, ApiError> {
    check_secret(&state, &q, &headers)?;
    let connected = match store::load(&state, &form.name).await? {
        Some(row) => {
            let lc = row
                .lifecycle()?
                .settle(chrono::Utc::now(), &state.settings.policy);
            lc.ingest_state() == Some(live_core::IngestState::Connected)
        }
        None => false,
    };
    if connected {
        Ok(StatusCode::OK)
    } else {
        tracing::warn!(addr = %form.addr, "relay refused: no show with a connected ingest has that name");
        Err(refuse("no show with a connected ingest has that name"))
    }
}

/// A publish: accepted (redirected to the public name) only for the current key of a
/// show going live or reconnecting, with nobody else publishing it.
#[utoipa::path(
    post, path = "/hooks/ingest/publish", tag = "internal",
    request_body(content = HookForm, content_type = "application/x-www-form-urlencoded"),
    security(("hook_secret" = []), ("hook_secret_header" = [])),
    responses(
        (status = 302, description = "Accepted: the show is live (or back); publish under the public name in `Location`", headers(("Location" = String, description = "The show's public name"))),
        (status = 400, response = crate::api::doc::BadRequest),
        (status = 413, response = crate::api::doc::TooLarge),
        (status = 415, description = "Not sent as a form (`application/x-www-form-urlencoded`)", body = ErrorBody),
        (status = 403, description = "A wrong or missing hook secret; an unknown or expired stream key; another publisher connected", body = ErrorBody),
    ),
)]
async fn publish(
    State(state): State<AppState>,
    Query(q): Query<Secret>,
    headers: HeaderMap,
    Form(form): Form<HookForm>,
) -> Result<Response, ApiError> {
    check_secret(&state, &q, &headers)?;
    let Some(row) = store::load_by_key_hash(&state, &hash_secret(&form.name)).await? else {
        tracing::warn!(addr = %form.addr, "publish refused: unknown or expired stream key");
        return Err(refuse("unknown or expired stream key"));
    };
    let change = IngestChange {
        new_key_hash: None,
        client: Some(form.clientid.clone()),
    };
    match store::apply(&state, &row.id, Some(Transition::MediaArrived), change).await {
        Ok(applied) => {
            tracing::info!(stream = %row.id, addr = %form.addr, client = %form.clientid, status = %applied.after.status(), "ingest connected");
            Ok((StatusCode::FOUND, [(header::LOCATION, row.id)]).into_response())
        }
        Err(ApiError::Transition(e)) => {
            tracing::warn!(stream = %row.id, addr = %form.addr, "publish refused: {e}");
            Err(refuse(&e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// The stream an ingest connection publishes: by its public name (after the
/// redirect) or its key, and only if that very connection is the current publisher.
async fn publishing(state: &AppState, form: &HookForm) -> Result<Option<StreamRow>, ApiError> {
    let row = match store::load(state, &form.name).await? {
        Some(row) => Some(row),
        None => store::load_by_key_hash(state, &hash_secret(&form.name)).await?,
    };
    Ok(row.filter(|r| r.ingest_client.as_deref() == Some(form.clientid.as_str())))
}

/// The publisher went away: the show waits for it (reconnecting) for the grace period.
#[utoipa::path(
    post, path = "/hooks/ingest/publish_done", tag = "internal",
    request_body(content = HookForm, content_type = "application/x-www-form-urlencoded"),
    security(("hook_secret" = []), ("hook_secret_header" = [])),
    responses(
        (status = 200, description = "Taken (also for a connection that no longer publishes a show)"),
        (status = 400, response = crate::api::doc::BadRequest),
        (status = 413, response = crate::api::doc::TooLarge),
        (status = 415, description = "Not sent as a form (`application/x-www-form-urlencoded`)", body = ErrorBody),
        (status = 403, description = "A wrong or missing hook secret", body = ErrorBody),
    ),
)]
async fn publish_done(
    State(state): State<AppState>,
    Query(q): Query<Secret>,
    headers: HeaderMap,
    Form(form): Form<HookForm>,
) -> Result<StatusCode, ApiError> {
    check_secret(&state, &q, &headers)?;
    if let Some(row) = publishing(&state, &form).await? {
        match store::apply(
            &state,
            &row.id,
            Some(Transition::MediaDropped),
            IngestChange::default(),
        )
        .await
        {
            Ok(_) => tracing::warn!(stream = %row.id, "ingest dropped; grace period started"),
            Err(ApiError::Transition(e)) => {
                tracing::debug!(stream = %row.id, "publish_done ignored: {e}")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(StatusCode::OK)
}

/// nginx-rtmp's periodic call while a client is connected; a refusal drops it.
#[utoipa::path(
    post, path = "/hooks/ingest/update", tag = "internal",
    request_body(content = HookForm, content_type = "application/x-www-form-urlencoded"),
    security(("hook_secret" = []), ("hook_secret_header" = [])),
    responses(
        (status = 200, description = "Go on"),
        (status = 400, response = crate::api::doc::BadRequest),
        (status = 413, response = crate::api::doc::TooLarge),
        (status = 415, description = "Not sent as a form (`application/x-www-form-urlencoded`)", body = ErrorBody),
        (status = 403, description = "A wrong or missing hook secret, or this connection no longer publishes a live show: drop it", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    Query(q): Query<Secret>,
    headers: HeaderMap,
    Form(form): Form<HookForm>,
) -> Result<StatusCode, ApiError> {
    check_secret(&state, &q, &headers)?;
    tracing::debug!(call = %form.call, client = %form.clientid, "ingest update");
    if form.call != "update_publish" {
        return Ok(StatusCode::OK);
    }
    let Some(row) = publishing(&state, &form).await? else {
        return Err(refuse("this connection no longer publishes a live show"));
    };
    match store::apply(
        &state,
        &row.id,
        Some(Transition::MediaUpdate),
        IngestChange::default(),
    )
    .await
    {
        Ok(_) => Ok(StatusCode::OK),
        Err(ApiError::Transition(e)) => {
            tracing::info!(stream = %row.id, "publisher dropped: {e}");
            Err(refuse(&e.to_string()))
        }
        Err(e) => Err(e),
    }
}
