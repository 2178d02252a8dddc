//! The catalog and the seller's lifecycle calls (API.md, "Streams").

use crate::api::doc::{
    BadRequest, Conflict, Forbidden, NotFound, ShowPath, TooLarge, Unauthorized,
    UnsupportedMediaType,
};
use crate::auth::{self, MaybeSeller, Seller};
use crate::error::{ApiError, Json, Path, Query};
use crate::state::AppState;
use crate::store::{self, Cursor, IngestChange, NewStream, Section};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use live_core::api::{
    CreateStream, EndResponse, EndStream, ErrorBody, IngestTarget, SellerRef, StartResponse,
    Stream, StreamPage, UpdateStream, UploadTarget,
};
use live_core::{Outcome, StreamStatus, Transition, validate};
use serde::Deserialize;
use utoipa::IntoParams;

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// Ids are ours; anything else cannot name a show.
fn stream_id(id: String) -> Result<String, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::stream_not_found());
    }
    Ok(id)
}

fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        n => Err(ApiError::bad_request(
            "invalid_input",
            format!("limit must be 1 to {MAX_LIMIT} (got {n})"),
        )),
    }
}

/// Schedules a show (a seller's own).
#[utoipa::path(
    post, path = "/api/streams", tag = "streams",
    request_body = CreateStream,
    responses(
        (status = 201, description = "Created, scheduled", body = Stream),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
    ),
    security(("seller" = [])),
)]
pub async fn create_stream(
    State(state): State<AppState>,
    seller: Seller,
    Json(body): Json<CreateStream>,
) -> Result<(StatusCode, Json<Stream>), ApiError> {
    let now = Utc::now();
    let new = NewStream {
        title: validate::title(&body.title)?,
        description: validate::description(body.description.as_deref().unwrap_or(""))?,
        scheduled_at: validate::scheduled_at(body.scheduled_at.unwrap_or(now), now)?,
    };
    let row = store::insert(&state, &seller, new).await?;
    tracing::info!(stream = %row.id, seller = %seller.id, "show scheduled");
    crate::events::catalog(&state, &row, "stream_scheduled").await;
    let view = row.view(&state.settings, Some(&seller), now)?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `live`, `upcoming` or `recent`.
    section: Section,
    /// 1 to 100; 20 when absent.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists a catalog section: Live Now (live), Upcoming (soonest first) or Recent (replays), a page at a time.
#[utoipa::path(
    get, path = "/api/streams", tag = "streams", params(ListParams),
    responses(
        (status = 200, description = "A page of shows; `next_cursor` for the next", body = StreamPage), (status = 400, response = BadRequest),
        (status = 401, description = "A seller token that is not valid (none is needed)", body = ErrorBody),
    ),
)]
pub async fn list_streams(
    State(state): State<AppState>,
    MaybeSeller(seller): MaybeSeller,
    Query(params): Query<ListParams>,
) -> Result<Json<StreamPage>, ApiError> {
    let limit = limit(params.limit)?;
    let cursor = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = store::list_section(&state, params.section, cursor, limit).await?;
    let now = Utc::now();
    let wanted = match params.section {
        Section::Live => StreamStatus::Live,
        Section::Upcoming => StreamStatus::Scheduled,
        Section::Recent => StreamStatus::Archived,
    };
    let mut streams = Vec::with_capacity(page.rows.len());
    for row in &page.rows {
        // A row that is no show at all (an unknown status) is left out, not the page.
        let Ok(view) = row.view(&state.settings, seller.as_ref(), now) else {
            continue;
        };
        // A row the sweeper has not settled yet (an ingest just lost) is left out.
        if view.status == wanted {
            streams.push(view);
        }
    }
    Ok(Json(StreamPage {
        streams,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The seller the token belongs to: what an app signing in checks its token with.
#[utoipa::path(
    get, path = "/api/me", tag = "streams",
    responses(
        (status = 200, description = "The signed-in seller", body = SellerRef),
        (status = 401, response = Unauthorized),
    ),
    security(("seller" = [])),
)]
pub async fn me(seller: Seller) -> Json<SellerRef> {
    Json(SellerRef {
        id: seller.id,
        name: seller.name,
    })
}

/// Lists the seller's own shows, every status, overdue ones included.
#[utoipa::path(
    get, path = "/api/me/streams", tag = "streams", params(OwnParams),
    responses(
        (status = 200, description = "A page of shows; `next_cursor` for the next", body = StreamPage), (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
    ),
    security(("seller" = [])),
)]
pub async fn my_streams(
    State(state): State<AppState>,
    seller: Seller,
    Query(params): Query<OwnParams>,
) -> Result<Json<StreamPage>, ApiError> {
    let limit = limit(params.limit)?;
    let cursor = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = store::list_own(&state, &seller, cursor, limit).await?;
    let now = Utc::now();
    // A row that is no show at all (an unknown status) is left out, not the page.
    let streams = page
        .rows
        .iter()
        .filter_map(|r| r.view(&state.settings, Some(&seller), now).ok())
        .collect();
    Ok(Json(StreamPage {
        streams,
        next_cursor: page.next_cursor,
    }))
}

/// Reads one show: public, or the seller's own.
#[utoipa::path(
    get, path = "/api/streams/{id}", tag = "streams", params(ShowPath),
    responses(
        (status = 200, description = "The show", body = Stream), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ),
)]
pub async fn get_stream(
    State(state): State<AppState>,
    MaybeSeller(seller): MaybeSeller,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<Json<Stream>, ApiError> {
    let row = store::load_visible(&state, &stream_id(id)?, seller.as_ref()).await?;
    Ok(Json(row.view(
        &state.settings,
        seller.as_ref(),
        Utc::now(),
    )?))
}

/// Edits a scheduled show: title, description, time (the catalog hears `stream_rescheduled`).
#[utoipa::path(
    patch, path = "/api/streams/{id}", tag = "streams", params(ShowPath),
    request_body = UpdateStream,
    responses(
        (status = 200, description = "The show", body = Stream), (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
    ),
    security(("seller" = [])),
)]
pub async fn patch_stream(
    State(state): State<AppState>,
    seller: Seller,
    Path(ShowPath { id }): Path<ShowPath>,
    Json(body): Json<UpdateStream>,
) -> Result<Json<Stream>, ApiError> {
    let row = store::load_owned(&state, &stream_id(id)?, &seller).await?;
    let now = Utc::now();
    row.lifecycle()?
        .apply(Transition::Edit, now, &state.settings.policy)?;
    let title = body.title.as_deref().map(validate::title).transpose()?;
    let description = body
        .description
        .as_deref()
        .map(validate::description)
        .transpose()?;
    let scheduled_at = body
        .scheduled_at
        .map(|at| validate::scheduled_at(at, now))
        .transpose()?;
    let edited = store::edit(&state, &row, title, description, scheduled_at).await?;
    if !edited {
        // It left `scheduled` meanwhile: refuse with its status as it is now.
        let row = store::load_owned(&state, &row.id, &seller).await?;
        row.lifecycle()?
            .apply(Transition::Edit, Utc::now(), &state.settings.policy)?;
    }
    let row = store::load_owned(&state, &row.id, &seller).await?;
    crate::events::catalog(&state, &row, "stream_rescheduled").await;
    Ok(Json(row.view(
        &state.settings,
        Some(&seller),
        Utc::now(),
    )?))
}

/// Goes live: a fresh stream key for the ingest; the show is live once media reaches it.
#[utoipa::path(
    post, path = "/api/streams/{id}/start", tag = "streams", params(ShowPath),
    responses(
        (status = 200, description = "A fresh stream key; the show goes live when media reaches the ingest", body = StartResponse),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 404, response = NotFound), (status = 409, response = Conflict),
    ),
    security(("seller" = [])),
)]
pub async fn start_stream(
    State(state): State<AppState>,
    seller: Seller,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<Json<StartResponse>, ApiError> {
    let row = store::load_owned(&state, &stream_id(id)?, &seller).await?;
    let key = auth::random_token(auth::STREAM_KEY_PREFIX);
    let change = IngestChange {
        new_key_hash: Some(auth::hash_secret(&key)),
        client: None,
    };
    let applied = store::apply(&state, &row.id, Some(Transition::Start), change).await?;
    tracing::info!(stream = %row.id, "stream key issued; waiting for media");
    Ok(Json(StartResponse {
        ingest: IngestTarget {
            url: state.settings.ingest_url.clone(),
            stream_key: key,
        },
        stream: applied
            .row
            .view(&state.settings, Some(&seller), Utc::now())?,
    }))
}

/// Ends a live show, saving it as a replay (the answer says where to upload the recording) or discarding it.
#[utoipa::path(
    post, path = "/api/streams/{id}/end", tag = "streams", params(ShowPath),
    request_body = EndStream,
    responses(
        (status = 200, description = "Ended; on save, where to upload the recording", body = EndResponse), (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
    ),
    security(("seller" = [])),
)]
pub async fn end_stream(
    State(state): State<AppState>,
    seller: Seller,
    Path(ShowPath { id }): Path<ShowPath>,
    Json(body): Json<EndStream>,
) -> Result<Json<EndResponse>, ApiError> {
    let row = store::load_owned(&state, &stream_id(id)?, &seller).await?;
    let applied = store::apply(
        &state,
        &row.id,
        Some(Transition::End(body.outcome)),
        IngestChange::default(),
    )
    .await?;
    tracing::info!(stream = %row.id, outcome = ?body.outcome, "show ended");
    let upload = match body.outcome {
        Outcome::Save => {
            // A progressive upload may already hold most of it; its processing can start
            // as soon as it is complete.
            crate::replays::kick(&state);
            Some(UploadTarget {
                endpoint: "/api/uploads".into(),
                metadata: [("stream_id".to_owned(), row.id.clone())].into(),
                upload_url: crate::uploads::running_for_stream(&state, &row.id).await?,
            })
        }
        Outcome::Discard => {
            // Gone for good, on the server too.
            crate::uploads::terminate_for_stream(&state, &row.id).await?;
            None
        }
    };
    Ok(Json(EndResponse {
        stream: applied
            .row
            .view(&state.settings, Some(&seller), Utc::now())?,
        upload,
    }))
}

/// Cancels a scheduled show.
#[utoipa::path(
    post, path = "/api/streams/{id}/cancel", tag = "streams", params(ShowPath),
    responses(
        (status = 200, description = "The show", body = Stream), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    ),
    security(("seller" = [])),
)]
pub async fn cancel_stream(
    State(state): State<AppState>,
    seller: Seller,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<Json<Stream>, ApiError> {
    let row = store::load_owned(&state, &stream_id(id)?, &seller).await?;
    let applied = store::apply(
        &state,
        &row.id,
        Some(Transition::Cancel),
        IngestChange::default(),
    )
    .await?;
    tracing::info!(stream = %row.id, "show cancelled");
    Ok(Json(applied.row.view(
        &state.settings,
        Some(&seller),
        Utc::now(),
    )?))
}
