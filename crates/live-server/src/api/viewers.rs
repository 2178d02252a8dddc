//! Anonymous viewer identities (API.md, "Identities").

use crate::auth::{VIEWER_TOKEN_PREFIX, hash_secret, random_token};
use crate::db::{new_id, to_ms};
use crate::error::{ApiError, Json};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use live_core::api::{CreateViewer, ErrorBody, ViewerCreated};
use live_core::validate;

#[utoipa::path(
    post, path = "/api/viewers", tag = "viewers",
    request_body = CreateViewer,
    responses((status = 201, body = ViewerCreated), (status = 400, body = ErrorBody)),
)]
pub async fn create_viewer(
    State(state): State<AppState>,
    Json(body): Json<CreateViewer>,
) -> Result<(StatusCode, Json<ViewerCreated>), ApiError> {
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
