//! Real engagement (API.md, "Engagement"; DESIGN.md, "Engagement is real"): viewer
//! sessions, reactions, comments, shares, reminders and the seller's moderation. Every
//! count on `live_streams` changes in the same transaction as the rows it counts, under
//! the show's row lock, so counts equal rows under any concurrency. Watchers are
//! counted by the counts ticker: distinct viewers with a session heard from in the last
//! 45 s (by default); one viewer watching on many sessions counts once.

use crate::api::doc::{
    BadRequest, CommentPath, Forbidden, NotFound, RateLimited, SessionPath, ShowPath, TooLarge,
    Unauthorized, UnsupportedMediaType,
};
use crate::auth::{Seller, Viewer};
use crate::db::{from_ms, new_id, to_ms};
use crate::error::{ApiError, Json, Path, Query};
use crate::events::{self, STREAM_SCOPE};
use crate::state::AppState;
use crate::store;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use live_core::StreamStatus;
use live_core::api::{
    Comment, CommentPage, Counts, ErrorBody, Joined, NewBlock, NewComment, Reacted, Reaction,
    Reminded, SetReaction,
};
use live_core::validate;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use utoipa::IntoParams;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Starts a transaction holding the show's row lock (the first write takes it, on both
/// databases), so engagement writes to one show are serialized.
async fn lock_stream<'a>(state: &'a AppState, id: &str) -> Result<Tx<'a>, ApiError> {
    let mut tx = state.db.pool.begin().await?;
    let n = sqlx::query("update live_streams set updated_at = updated_at where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::stream_not_found());
    }
    Ok(tx)
}

fn status_of(state: &AppState, row: &store::StreamRow) -> Result<StreamStatus, ApiError> {
    Ok(row
        .lifecycle()?
        .settle(Utc::now(), &state.settings.policy)
        .status())
}

fn refuse(status: StreamStatus, what: &str) -> ApiError {
    ApiError::Conflict(format!("this show is {status}: {what}"))
}

async fn blocked(state: &AppState, seller_id: &str, viewer_id: &str) -> Result<bool, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("select viewer_id from blocks where seller_id = $1 and viewer_id = $2")
            .bind(seller_id)
            .bind(viewer_id)
            .fetch_optional(&state.db.pool)
            .await?;
    Ok(row.is_some())
}

/// The client's address, when the server knows it.
pub struct ClientIp(Option<std::net::IpAddr>);

impl ClientIp {
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.0
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Which shows' counts changed since the ticker last looked.
#[derive(Default)]
pub struct Dirty(Mutex<HashSet<String>>);

impl Dirty {
    pub fn mark(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned());
    }

    fn take(&self) -> HashSet<String> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The counts of show `id` changed: the ticker announces them within a second.
fn counts_changed(state: &AppState, id: &str) {
    state.dirty.mark(id);
    state.counts_wake.notify_one();
}

/// Records a real-time event for show `id`'s page; a failure is logged, not fatal.
async fn announce(
    state: &AppState,
    id: &str,
    kind: &str,
    subject: Option<&str>,
    data: serde_json::Value,
) {
    if let Err(e) = events::publish(state, id, STREAM_SCOPE, kind, subject, &data).await {
        tracing::warn!(stream = %id, "could not record a {kind} event: {e:#}");
    }
}

async fn counts_of(state: &AppState, id: &str) -> Result<Counts, ApiError> {
    let row = store::load(state, id)
        .await?
        .ok_or_else(ApiError::stream_not_found)?;
    Ok(row.view(&state.settings, None, Utc::now())?.counts)
}

/// A public show's counts (live, or a replay): what a `counts` event may carry.
async fn public_counts_of(state: &AppState, id: &str) -> Option<Counts> {
    let row = store::load(state, id).await.ok()??;
    let view = row.view(&state.settings, None, Utc::now()).ok()?;
    matches!(view.status, StreamStatus::Live | StreamStatus::Archived).then_some(view.counts)
}

/// Starts watching a live show (counts as watching while heartbeats come).
#[utoipa::path(
    post, path = "/api/streams/{id}/viewers", tag = "engagement", params(ShowPath),
    responses(
        (status = 201, description = "Watching; send a heartbeat at least every 45 s", body = Joined),
        (status = 401, response = Unauthorized), (status = 404, response = NotFound),
        (status = 409, description = "The show is not live", body = ErrorBody),
        (status = 429, response = RateLimited),
    ),
    security(("viewer" = [])),
)]
pub async fn join(
    State(state): State<AppState>,
    viewer: Viewer,
    ip: ClientIp,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<(StatusCode, Json<Joined>), ApiError> {
    state
        .limits
        .check(&state.limits.joins, &viewer.id, ip.ip())?;
    let row = store::load_visible(&state, &id, None).await?;
    let status = status_of(&state, &row)?;
    if status != StreamStatus::Live {
        return Err(refuse(status, "only a live show can be joined"));
    }
    let now = to_ms(Utc::now());
    let session = new_id();
    let mut tx = lock_stream(&state, &row.id).await?;
    let seen: Option<(String,)> = sqlx::query_as(
        "select id from stream_viewers where stream_id = $1 and user_id = $2 limit 1",
    )
    .bind(&row.id)
    .bind(&viewer.id)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "insert into stream_viewers (id, stream_id, user_id, session_id, joined_at, last_heartbeat_at) \
         values ($1, $2, $3, $4, $5, $5)",
    )
    .bind(new_id())
    .bind(&row.id)
    .bind(&viewer.id)
    .bind(&session)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if seen.is_none() {
        sqlx::query("update live_streams set unique_viewers = unique_viewers + 1 where id = $1")
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    counts_changed(&state, &row.id);
    Ok((
        StatusCode::CREATED,
        Json(Joined {
            session_id: session,
        }),
    ))
}

async fn touch_session(
    state: &AppState,
    id: &str,
    session: &str,
    viewer: &Viewer,
    leave: bool,
) -> Result<StatusCode, ApiError> {
    let now = to_ms(Utc::now());
    let sql = if leave {
        "update stream_viewers set left_at = $1, last_heartbeat_at = $1, \
         watch_duration = $1 - joined_at \
         where session_id = $2 and stream_id = $3 and user_id = $4 and left_at is null"
    } else {
        "update stream_viewers set last_heartbeat_at = $1, watch_duration = $1 - joined_at \
         where session_id = $2 and stream_id = $3 and user_id = $4 and left_at is null \
         and last_heartbeat_at > $1 - $5"
    };
    let mut query = sqlx::query(sql)
        .bind(now)
        .bind(session)
        .bind(id)
        .bind(&viewer.id);
    if !leave {
        query = query.bind(state.settings.viewer_timeout_ms);
    }
    let n = query.execute(&state.db.pool).await?.rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound(
            "no such viewing session (it ended or timed out): join again".into(),
        ));
    }
    if leave {
        counts_changed(state, id);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Still watching.
#[utoipa::path(
    post, path = "/api/streams/{id}/viewers/{session_id}/heartbeat", tag = "engagement",
    params(SessionPath),
    responses(
        (status = 204, description = "Still watching"), (status = 401, response = Unauthorized),
        (status = 404, description = "No such session (it ended or timed out): join again", body = ErrorBody),
        (status = 429, response = RateLimited),
    ),
    security(("viewer" = [])),
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    viewer: Viewer,
    ip: ClientIp,
    Path(SessionPath {
        id,
        session_id: session,
    }): Path<SessionPath>,
) -> Result<StatusCode, ApiError> {
    state
        .limits
        .check(&state.limits.heartbeats, &viewer.id, ip.ip())?;
    touch_session(&state, &id, &session, &viewer, false).await
}

/// Stops watching.
#[utoipa::path(
    delete, path = "/api/streams/{id}/viewers/{session_id}", tag = "engagement",
    params(SessionPath),
    responses(
        (status = 204, description = "Left"), (status = 401, response = Unauthorized),
        (status = 404, description = "No such session, or it ended already", body = ErrorBody),
    ),
    security(("viewer" = [])),
)]
pub async fn leave(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(SessionPath {
        id,
        session_id: session,
    }): Path<SessionPath>,
) -> Result<StatusCode, ApiError> {
    touch_session(&state, &id, &session, &viewer, true).await
}

/// Reactions come in bursts (thousands a second on a big show). They are written by
/// one task in batches: everything waiting is applied in one transaction per show,
/// under the show's row lock, each count moved once by the batch's total. Idle, a
/// batch is a single reaction; nothing waits on a timer.
pub struct ReactionWriter {
    tx: tokio::sync::mpsc::Sender<ReactionJob>,
    rx: Mutex<Option<tokio::sync::mpsc::Receiver<ReactionJob>>>,
}

struct ReactionJob {
    stream: String,
    viewer: String,
    reaction: Reaction,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

impl Default for ReactionWriter {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(16_384);
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl ReactionWriter {
    /// Sets `viewer`'s reaction to `stream`, once it is stored.
    async fn apply(&self, stream: &str, viewer: &str, reaction: Reaction) -> Result<(), ApiError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job = ReactionJob {
            stream: stream.to_owned(),
            viewer: viewer.to_owned(),
            reaction,
            done,
        };
        let lost = || ApiError::Internal(anyhow::anyhow!("the reaction writer stopped"));
        self.tx.send(job).await.map_err(|_| lost())?;
        result
            .await
            .map_err(|_| lost())?
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
    }

    /// The writer's loop (started once by `serve`).
    pub async fn run(state: AppState) {
        let Some(mut rx) = state
            .reactions
            .rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 2000).await > 0 {
            let mut by_stream: HashMap<String, Vec<ReactionJob>> = HashMap::new();
            for job in batch.drain(..) {
                by_stream.entry(job.stream.clone()).or_default().push(job);
            }
            for (stream, jobs) in by_stream {
                let wanted: Vec<(&str, Reaction)> = jobs
                    .iter()
                    .map(|j| (j.viewer.as_str(), j.reaction))
                    .collect();
                let result = write_reactions(&state, &stream, &wanted)
                    .await
                    .map_err(|e| format!("{e:#}"));
                if result.is_ok() {
                    counts_changed(&state, &stream);
                }
                for job in jobs {
                    let _ = job.done.send(result.clone());
                }
            }
        }
    }
}

fn parse_reaction(s: Option<&str>) -> Reaction {
    match s {
        Some("like") => Reaction::Like,
        Some("dislike") => Reaction::Dislike,
        _ => Reaction::None,
    }
}

/// Applies reactions to one show in order, in one transaction; counts move by the net.
async fn write_reactions(
    state: &AppState,
    stream: &str,
    wanted: &[(&str, Reaction)],
) -> anyhow::Result<()> {
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("update live_streams set updated_at = updated_at where id = $1")
        .bind(stream)
        .execute(&mut *tx)
        .await?;
    let now = to_ms(Utc::now());
    // The latest state of each viewer in this batch (a viewer may appear twice).
    let mut current: HashMap<&str, Reaction> = HashMap::new();
    let (mut likes, mut dislikes) = (0i64, 0i64);
    for &(viewer, reaction) in wanted {
        let old = match current.get(viewer) {
            Some(r) => *r,
            None => {
                let row: Option<(String,)> = sqlx::query_as(
                    "select reaction from reactions where stream_id = $1 and viewer_id = $2",
                )
                .bind(stream)
                .bind(viewer)
                .fetch_optional(&mut *tx)
                .await?;
                parse_reaction(row.as_ref().map(|r| r.0.as_str()))
            }
        };
        current.insert(viewer, reaction);
        if old == reaction {
            continue;
        }
        match reaction {
            Reaction::None => {
                sqlx::query("delete from reactions where stream_id = $1 and viewer_id = $2")
                    .bind(stream)
                    .bind(viewer)
                    .execute(&mut *tx)
                    .await?;
            }
            r => {
                sqlx::query(
                    "insert into reactions (stream_id, viewer_id, reaction, updated_at) \
                     values ($1, $2, $3, $4) on conflict (stream_id, viewer_id) \
                     do update set reaction = excluded.reaction, updated_at = excluded.updated_at",
                )
                .bind(stream)
                .bind(viewer)
                .bind(if r == Reaction::Like {
                    "like"
                } else {
                    "dislike"
                })
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (r, delta) in [(old, -1), (reaction, 1)] {
            match r {
                Reaction::Like => likes += delta,
                Reaction::Dislike => dislikes += delta,
                Reaction::None => {}
            }
        }
    }
    if likes != 0 || dislikes != 0 {
        sqlx::query(
            "update live_streams set like_count = like_count + $1, \
             dislike_count = dislike_count + $2 where id = $3",
        )
        .bind(likes)
        .bind(dislikes)
        .bind(stream)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sets the viewer's reaction to a live show or a replay: like, dislike or none (one per viewer).
#[utoipa::path(
    put, path = "/api/streams/{id}/reaction", tag = "engagement", params(ShowPath),
    request_body = SetReaction,
    responses(
        (status = 200, description = "The viewer's reaction and the show's counts", body = Reacted), (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "The show is neither live nor a replay", body = ErrorBody),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
    ),
    security(("viewer" = [])),
)]
pub async fn react(
    State(state): State<AppState>,
    viewer: Viewer,
    ip: ClientIp,
    Path(ShowPath { id }): Path<ShowPath>,
    Json(body): Json<SetReaction>,
) -> Result<Json<Reacted>, ApiError> {
    state
        .limits
        .check(&state.limits.reactions, &viewer.id, ip.ip())?;
    let row = store::load_visible(&state, &id, None).await?;
    let status = status_of(&state, &row)?;
    if !matches!(status, StreamStatus::Live | StreamStatus::Archived) {
        return Err(refuse(status, "reactions are for live shows and replays"));
    }
    if blocked(&state, &row.vendor_id, &viewer.id).await? {
        return Err(ApiError::Forbidden(
            "the seller has blocked you from reacting to their shows".into(),
        ));
    }
    state
        .reactions
        .apply(&row.id, &viewer.id, body.reaction)
        .await?;
    counts_changed(&state, &row.id);
    Ok(Json(Reacted {
        reaction: body.reaction,
        counts: counts_of(&state, &row.id).await?,
    }))
}

#[derive(sqlx::FromRow)]
struct CommentRow {
    id: String,
    viewer_id: String,
    display_name: String,
    body: String,
    created_at: i64,
}

impl CommentRow {
    fn view(self) -> Comment {
        Comment {
            id: self.id,
            viewer_id: self.viewer_id,
            viewer_name: self.display_name,
            text: self.body,
            created_at: from_ms(self.created_at),
        }
    }
}

/// Says something in a live show's chat.
#[utoipa::path(
    post, path = "/api/streams/{id}/comments", tag = "engagement", params(ShowPath),
    request_body = NewComment,
    responses(
        (status = 201, description = "Said", body = Comment), (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "The show is not live", body = ErrorBody),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 429, response = RateLimited),
    ),
    security(("viewer" = [])),
)]
pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    ip: ClientIp,
    Path(ShowPath { id }): Path<ShowPath>,
    Json(body): Json<NewComment>,
) -> Result<(StatusCode, Json<Comment>), ApiError> {
    let text = validate::comment(&body.text)?;
    state
        .limits
        .check(&state.limits.comments, &viewer.id, ip.ip())?;
    let row = store::load_visible(&state, &id, None).await?;
    let status = status_of(&state, &row)?;
    if status != StreamStatus::Live {
        return Err(refuse(status, "the chat is open while the show is live"));
    }
    if blocked(&state, &row.vendor_id, &viewer.id).await? {
        return Err(ApiError::Forbidden(
            "the seller has blocked you from commenting on their shows".into(),
        ));
    }
    let now = to_ms(Utc::now());
    let comment_id = new_id();
    let mut tx = lock_stream(&state, &row.id).await?;
    sqlx::query(
        "insert into comments (id, stream_id, viewer_id, body, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(&comment_id)
    .bind(&row.id)
    .bind(&viewer.id)
    .bind(&text)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update live_streams set comment_count = comment_count + 1 where id = $1")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let comment = Comment {
        id: comment_id,
        viewer_id: viewer.id.clone(),
        viewer_name: viewer.display_name,
        text,
        created_at: from_ms(now),
    };
    announce(
        &state,
        &row.id,
        "comment",
        Some(&comment.id),
        serde_json::json!({ "comment": comment }),
    )
    .await;
    counts_changed(&state, &row.id);
    Ok((StatusCode::CREATED, Json(comment)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommentQuery {
    /// A comment id: only comments after it.
    after: Option<String>,
    /// At most this many (1–200, default 50).
    limit: Option<u32>,
}

/// Reads a show's chat, oldest first, after a comment.
#[utoipa::path(
    get, path = "/api/streams/{id}/comments", tag = "engagement",
    params(ShowPath, CommentQuery),
    responses(
        (status = 200, description = "Comments, oldest first", body = CommentPage), (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    ),
)]
pub async fn comments(
    State(state): State<AppState>,
    Path(ShowPath { id }): Path<ShowPath>,
    Query(q): Query<CommentQuery>,
) -> Result<Json<CommentPage>, ApiError> {
    let row = store::load_visible(&state, &id, None).await?;
    let limit = i64::from(q.limit.unwrap_or(50).clamp(1, 200));
    let base = "select c.id, c.viewer_id, v.display_name, c.body, c.created_at from comments c \
                join viewers v on v.id = c.viewer_id \
                where c.stream_id = $1 and c.deleted_at is null";
    let rows: Vec<CommentRow> = match q.after {
        Some(after) => {
            let sql = format!(
                "{base} and (c.created_at, c.id) > \
                 (select created_at, id from comments where id = $2) \
                 order by c.created_at, c.id limit $3"
            );
            sqlx::query_as(&sql)
                .bind(&row.id)
                .bind(after)
                .bind(limit)
                .fetch_all(&state.db.pool)
                .await?
        }
        None => {
            // The latest ones, oldest first.
            let sql = format!(
                "select * from ({base} order by c.created_at desc, c.id desc limit $2) t \
                 order by created_at, id"
            );
            sqlx::query_as(&sql)
                .bind(&row.id)
                .bind(limit)
                .fetch_all(&state.db.pool)
                .await?
        }
    };
    Ok(Json(CommentPage {
        comments: rows.into_iter().map(CommentRow::view).collect(),
    }))
}

/// Removes a comment from the seller's show.
#[utoipa::path(
    delete, path = "/api/streams/{id}/comments/{comment_id}", tag = "engagement",
    params(CommentPath),
    responses(
        (status = 204, description = "Removed"), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
    ),
    security(("seller" = [])),
)]
pub async fn delete_comment(
    State(state): State<AppState>,
    seller: Seller,
    Path(CommentPath { id, comment_id }): Path<CommentPath>,
) -> Result<StatusCode, ApiError> {
    let row = store::load_owned(&state, &id, &seller).await?;
    let mut tx = lock_stream(&state, &row.id).await?;
    let n = sqlx::query(
        "update comments set deleted_at = $1 where id = $2 and stream_id = $3 and deleted_at is null",
    )
    .bind(to_ms(Utc::now()))
    .bind(&comment_id)
    .bind(&row.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(ApiError::NotFound("no such comment on this show".into()));
    }
    sqlx::query("update live_streams set comment_count = comment_count - 1 where id = $1")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    // Its text leaves the event log too: a resuming client never gets it again.
    sqlx::query(
        "delete from events where stream_id = $1 and scope = $2 and kind = 'comment' \
         and subject_id = $3",
    )
    .bind(&row.id)
    .bind(STREAM_SCOPE)
    .bind(&comment_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    announce(
        &state,
        &row.id,
        "comment_deleted",
        None,
        serde_json::json!({ "id": comment_id }),
    )
    .await;
    counts_changed(&state, &row.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Blocks a viewer from the seller's shows (no more comments or reactions).
#[utoipa::path(
    post, path = "/api/streams/{id}/blocks", tag = "engagement", params(ShowPath),
    request_body = NewBlock,
    responses(
        (status = 204, description = "Blocked from this seller's shows"),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such show of yours, or no such viewer", body = ErrorBody),
        (status = 413, response = TooLarge), (status = 415, response = UnsupportedMediaType),
    ),
    security(("seller" = [])),
)]
pub async fn block(
    State(state): State<AppState>,
    seller: Seller,
    Path(ShowPath { id }): Path<ShowPath>,
    Json(body): Json<NewBlock>,
) -> Result<StatusCode, ApiError> {
    store::load_owned(&state, &id, &seller).await?;
    let known: Option<(String,)> = sqlx::query_as("select id from viewers where id = $1")
        .bind(&body.viewer_id)
        .fetch_optional(&state.db.pool)
        .await?;
    if known.is_none() {
        return Err(ApiError::NotFound("no such viewer".into()));
    }
    sqlx::query(
        "insert into blocks (seller_id, viewer_id, created_at) values ($1, $2, $3) \
         on conflict (seller_id, viewer_id) do nothing",
    )
    .bind(&seller.id)
    .bind(&body.viewer_id)
    .bind(to_ms(Utc::now()))
    .execute(&state.db.pool)
    .await?;
    tracing::info!(seller = %seller.id, viewer = %body.viewer_id, "viewer blocked");
    Ok(StatusCode::NO_CONTENT)
}

/// Counts a share of a show.
#[utoipa::path(
    post, path = "/api/streams/{id}/shares", tag = "engagement", params(ShowPath),
    responses(
        (status = 200, description = "The show's counts", body = Counts), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound), (status = 429, response = RateLimited),
    ),
    security(("viewer" = [])),
)]
pub async fn share(
    State(state): State<AppState>,
    viewer: Viewer,
    ip: ClientIp,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<Json<Counts>, ApiError> {
    state
        .limits
        .check(&state.limits.reactions, &viewer.id, ip.ip())?;
    let row = store::load_visible(&state, &id, None).await?;
    let mut tx = lock_stream(&state, &row.id).await?;
    sqlx::query(
        "insert into stream_interactions (id, stream_id, user_id, interaction_type, created_at) \
         values ($1, $2, $3, 'share', $4)",
    )
    .bind(new_id())
    .bind(&row.id)
    .bind(&viewer.id)
    .bind(to_ms(Utc::now()))
    .execute(&mut *tx)
    .await?;
    sqlx::query("update live_streams set share_count = share_count + 1 where id = $1")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    counts_changed(&state, &row.id);
    Ok(Json(counts_of(&state, &row.id).await?))
}

async fn set_reminder(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    on: bool,
) -> Result<Json<Reminded>, ApiError> {
    let row = store::load_visible(state, id, None).await?;
    let status = status_of(state, &row)?;
    if status != StreamStatus::Scheduled {
        return Err(refuse(status, "reminders are for shows still to come"));
    }
    let mut tx = lock_stream(state, &row.id).await?;
    let changed = if on {
        sqlx::query(
            "insert into reminders (stream_id, viewer_id, created_at) values ($1, $2, $3) \
             on conflict (stream_id, viewer_id) do nothing",
        )
        .bind(&row.id)
        .bind(&viewer.id)
        .bind(to_ms(Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        sqlx::query("delete from reminders where stream_id = $1 and viewer_id = $2")
            .bind(&row.id)
            .bind(&viewer.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    if changed > 0 {
        sqlx::query("update live_streams set reminder_count = reminder_count + $1 where id = $2")
            .bind(if on { 1i64 } else { -1 })
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    counts_changed(state, &row.id);
    Ok(Json(Reminded {
        reminded: on,
        reminders: counts_of(state, &row.id).await?.reminders,
    }))
}

/// Asks to be reminded of a show still to come.
#[utoipa::path(
    put, path = "/api/streams/{id}/reminder", tag = "engagement", params(ShowPath),
    responses(
        (status = 200, description = "Whether the viewer is reminded, and how many are", body = Reminded), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, description = "The show is no longer to come", body = ErrorBody),
    ),
    security(("viewer" = [])),
)]
pub async fn remind(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<Json<Reminded>, ApiError> {
    set_reminder(&state, &viewer, &id, true).await
}

/// Takes the reminder back.
#[utoipa::path(
    delete, path = "/api/streams/{id}/reminder", tag = "engagement", params(ShowPath),
    responses(
        (status = 200, description = "Whether the viewer is reminded, and how many are", body = Reminded), (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, description = "The show is no longer to come", body = ErrorBody),
    ),
    security(("viewer" = [])),
)]
pub async fn unremind(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ShowPath { id }): Path<ShowPath>,
) -> Result<Json<Reminded>, ApiError> {
    set_reminder(&state, &viewer, &id, false).await
}

/// Every second (or sooner when woken): recounts who watches each live show (distinct
/// viewers with a session heard from in the last 45 s), keeps the peak, and sends a `counts` event for
/// every show whose counts changed.
pub async fn counts_ticker(state: AppState) {
    let mut sent: HashMap<String, Counts> = HashMap::new();
    loop {
        tokio::select! {
            () = state.counts_wake.notified() => {}
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        // At most one round a second, however often it is woken.
        if let Err(e) = tick(&state, &mut sent).await {
            tracing::warn!("counting viewers failed: {e:#}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    }
}

async fn tick(state: &AppState, sent: &mut HashMap<String, Counts>) -> anyhow::Result<()> {
    let cutoff = to_ms(Utc::now()) - state.settings.viewer_timeout_ms;
    let watching: Vec<(String, i64, i64)> = sqlx::query_as(
        "select s.id, s.viewer_count, (select count(distinct v.user_id) from stream_viewers v \
         where v.stream_id = s.id and v.left_at is null and v.last_heartbeat_at > $1) \
         from live_streams s where s.status = 'live'",
    )
    .bind(cutoff)
    .fetch_all(&state.db.pool)
    .await?;
    let mut dirty = state.dirty.take();
    for (id, stored, now) in watching {
        if stored != now {
            sqlx::query(
                "update live_streams set viewer_count = $1, \
                 peak_viewers = case when peak_viewers < $1 then $1 else peak_viewers end \
                 where id = $2 and status = 'live'",
            )
            .bind(now)
            .bind(&id)
            .execute(&state.db.pool)
            .await?;
            dirty.insert(id);
        }
    }
    for id in dirty {
        // A show no longer public (discarded, say) has no counts to announce.
        let Some(counts) = public_counts_of(state, &id).await else {
            continue;
        };
        if sent.get(&id) != Some(&counts) {
            events::publish(
                state,
                &id,
                STREAM_SCOPE,
                "counts",
                None,
                &serde_json::json!({ "counts": counts }),
            )
            .await?;
            sent.insert(id, counts);
        }
    }
    Ok(())
}
