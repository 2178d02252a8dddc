//! Anonymous viewer identities (API.md, "Identities").

use crate::api::doc::{BadRequest, RateLimited, TooLarge, UnsupportedMediaType};
use crate::api::engagement::ClientIp;
use crate::auth::{VIEWER_TOKEN_PREFIX, hash_secret, random_token};
use crate::db::{new_id, to_ms};
use crate::error::{ApiError, Json, JsonOrEmpty};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use live_core::api::{CreateViewer, ViewerCreated};
use live_core::validate;

/// Makes an anonymous viewer identity and its token.
#[utoipa::path(
    post, path = "/api/viewers", tag = "viewers",
    request_body(
        content = Option<CreateViewer>,
        description = "Optional: an empty body gives the name `Viewer`",
    ),
    responses(
        (status = 201, description = "The identity; keep the token", body = ViewerCreated), (status = 400, response = BadRequest),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
    ),
)]
pub async fn create_viewer(
    State(state): State<AppState>,
    ip: ClientIp,
    JsonOrEmpty(body): JsonOrEmpty<CreateViewer>,
) -> Result<(StatusCode, Json<ViewerCreated>), ApiError> {
    state.limits.check_new_viewer(ip.ip())?;
    let name = match body.display_name.as_deref() {
        Some(raw) => validate::display_name(raw)?,
        None => "Viewer".to_owned(),
    };
    let id = new_id();
    let token = random_token(VIEWER_TOKEN_PREFIX);
    sqlx::query(
        "insert into viewers (id, display_name, token_hash, created_at) values ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(&name)
    .bind(hash_secret(&token))
    .bind(to_ms(Utc::now()))
    .execute(&state.db.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ViewerCreated {
            viewer_id: id,
            token,
        }),
    ))
}
