//! Real-time events (API.md, "Real time"): every event is a row of the `events` table
//! first, so its id orders it across server instances and `Last-Event-ID` resumes on
//! any of them. One pump per instance reads new rows and fans them out in memory to
//! the Server-Sent Events streams; it wakes at once for this instance's own events, on
//! PostgreSQL's NOTIFY for the other instances' (polling as a fallback, and on SQLite).

use crate::db::{Backend, to_ms};
use crate::error::{ApiError, Path};
use crate::state::AppState;
use crate::store::{self, StreamRow};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::Utc;
use futures_util::Stream as FutStream;
use live_core::StreamStatus;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

pub const STREAM_SCOPE: &str = "stream";
pub const CATALOG_SCOPE: &str = "catalog";
const CHANNEL: &str = "feza_events";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub stream_id: String,
    pub scope: String,
    pub kind: String,
    pub data: String,
}

/// This instance's fan-out of new events.
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    wake: Notify,
    /// The newest event id fanned out.
    last: AtomicI64,
}

impl Default for Bus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(4096).0,
            wake: Notify::new(),
            last: AtomicI64::new(0),
        }
    }
}

/// Records an event (then the pump delivers it). `subject` names what of the show it
/// is about (a comment's id), so the event goes when that thing is removed.
pub async fn publish(
    state: &AppState,
    stream_id: &str,
    scope: &str,
    kind: &str,
    subject: Option<&str>,
    data: &impl Serialize,
) -> anyhow::Result<()> {
    sqlx::query(
        "insert into events (stream_id, scope, kind, data, created_at, subject_id) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(stream_id)
    .bind(scope)
    .bind(kind)
    .bind(serde_json::to_string(data)?)
    .bind(to_ms(Utc::now()))
    .bind(subject)
    .execute(&state.db.pool)
    .await?;
    if state.db.backend == Backend::Postgres {
        sqlx::query("select pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&state.db.pool)
            .await?;
    }
    state.events.wake.notify_one();
    Ok(())
}

#[derive(Serialize)]
struct StreamPayload {
    stream: live_core::api::Stream,
}

/// A show's lifecycle changed: its page hears `status`, the catalog `stream_<what>`.
pub async fn stream_changed(state: &AppState, row: &StreamRow) {
    let Ok(view) = row.view(&state.settings, None, Utc::now()) else {
        return;
    };
    let kind = match view.status {
        StreamStatus::Scheduled => "stream_scheduled",
        StreamStatus::Live => "stream_live",
        StreamStatus::Ended => "stream_ended",
        StreamStatus::Archived => "stream_archived",
        StreamStatus::Cancelled => "stream_cancelled",
    };
    let payload = StreamPayload { stream: view };
    for (scope, kind) in [(STREAM_SCOPE, "status"), (CATALOG_SCOPE, kind)] {
        if let Err(e) = publish(state, &row.id, scope, kind, None, &payload).await {
            tracing::warn!(stream = %row.id, "could not record a {kind} event: {e:#}");
        }
    }
}

/// A catalog-only change (a show scheduled or rescheduled).
pub async fn catalog(state: &AppState, row: &StreamRow, kind: &str) {
    let Ok(view) = row.view(&state.settings, None, Utc::now()) else {
        return;
    };
    if let Err(e) = publish(
        state,
        &row.id,
        CATALOG_SCOPE,
        kind,
        None,
        &StreamPayload { stream: view },
    )
    .await
    {
        tracing::warn!(stream = %row.id, "could not record a {kind} event: {e:#}");
    }
}

async fn read_after(state: &AppState, after: i64) -> anyhow::Result<Vec<Event>> {
    Ok(sqlx::query_as::<_, Event>(
        "select id, stream_id, scope, kind, data from events where id > $1 order by id limit 1000",
    )
    .bind(after)
    .fetch_all(&state.db.pool)
    .await?)
}

/// Delivers new events to this instance's subscribers until the task is dropped.
pub async fn pump(state: AppState, database_url: Option<String>) {
    let start: Option<(i64,)> = sqlx::query_as("select coalesce(max(id), 0) from events")
        .fetch_optional(&state.db.pool)
        .await
        .unwrap_or(None);
    let bus = &state.events;
    bus.last.store(start.map_or(0, |s| s.0), Ordering::SeqCst);
    let mut listener = match (&database_url, state.db.backend) {
        (Some(url), Backend::Postgres) => match sqlx::postgres::PgListener::connect(url).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!("cannot LISTEN for other instances' events ({e}); polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!("cannot LISTEN for other instances' events ({e}); polling");
                None
            }
        },
        _ => None,
    };
    loop {
        let poll = Duration::from_millis(if listener.is_some() { 2000 } else { 500 });
        match &mut listener {
            Some(l) => {
                tokio::select! {
                    () = bus.wake.notified() => {}
                    _ = l.recv() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
            None => {
                tokio::select! {
                    () = bus.wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
        loop {
            let last = bus.last.load(Ordering::SeqCst);
            let batch = match read_after(&state, last).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("cannot read new events: {e:#}");
                    break;
                }
            };
            let full = batch.len() == 1000;
            for e in batch {
                bus.last.store(e.id, Ordering::SeqCst);
                let _ = bus.tx.send(Arc::new(e));
            }
            if !full {
                break;
            }
        }
    }
}

/// The event id a client resumes after (`Last-Event-ID`); 0 without one (or with one
/// that is no event id at all): events from now on.
fn last_event_id(headers: &HeaderMap) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .filter(|id: &i64| *id > 0)
        .unwrap_or(0)
}

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(&e.kind)
        .data(&e.data)
}

/// At most this many missed events are replayed to a resuming client; one that missed
/// more is told to reload (`reset`) instead of being flooded.
pub const MAX_REPLAY: i64 = 500;

/// The events one stream of events follows.
#[derive(Clone, Debug)]
pub enum Follow {
    /// `/api/events`.
    Catalog,
    /// `/api/streams/{id}/events`.
    Stream(String),
}

impl Follow {
    fn wants(&self, e: &Event) -> bool {
        match self {
            Self::Catalog => e.scope == CATALOG_SCOPE,
            Self::Stream(id) => e.scope == STREAM_SCOPE && e.stream_id == *id,
        }
    }

    /// Up to `limit` of the events followed after `after`, oldest first: chosen in the
    /// query, on its index, never by reading other shows' events.
    async fn read_after(
        &self,
        state: &AppState,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<Event>> {
        let rows = match self {
            Self::Catalog => {
                sqlx::query_as::<_, Event>(
                    "select id, stream_id, scope, kind, data from events \
                     where scope = $1 and id > $2 order by id limit $3",
                )
                .bind(CATALOG_SCOPE)
                .bind(after)
                .bind(limit)
                .fetch_all(&state.db.pool)
                .await?
            }
            Self::Stream(id) => {
                sqlx::query_as::<_, Event>(
                    "select id, stream_id, scope, kind, data from events \
                     where stream_id = $1 and scope = $2 and id > $3 order by id limit $4",
                )
                .bind(id)
                .bind(STREAM_SCOPE)
                .bind(after)
                .bind(limit)
                .fetch_all(&state.db.pool)
                .await?
            }
        };
        Ok(rows)
    }
}

/// What a client that missed events after `last` gets: those events, or a `reset`
/// (when more than [`MAX_REPLAY`] were missed, or some were pruned as too old).
enum CatchUp {
    Events(Vec<Event>),
    Reset { newest: i64 },
}

async fn catch_up(state: &AppState, follow: &Follow, last: i64) -> anyhow::Result<CatchUp> {
    let (pruned_through, newest): (i64, Option<i64>) = sqlx::query_as(
        "select pruned_through, (select max(id) from events) from event_log where id = 1",
    )
    .fetch_one(&state.db.pool)
    .await?;
    let newest = newest
        .unwrap_or(0)
        .max(state.events.last.load(Ordering::SeqCst));
    // Events after `last` were pruned (it is older than what is kept), or `last` is
    // no event this server ever sent: the client cannot be caught up.
    if last < pruned_through || last > newest {
        return Ok(CatchUp::Reset { newest });
    }
    let events = follow.read_after(state, last, MAX_REPLAY + 1).await?;
    if events.len() as i64 > MAX_REPLAY {
        return Ok(CatchUp::Reset { newest });
    }
    Ok(CatchUp::Events(events))
}

/// Tells a client it missed too much to be caught up: reload, then follow on from here.
fn reset(newest: i64) -> SseEvent {
    SseEvent::default()
        .id(newest.to_string())
        .event("reset")
        .data(r#"{"reason":"missed too many events: load the current state again"}"#)
}

/// The SSE stream of the events `follow` names, after `last` (caught up from the table,
/// then live). A subscriber that falls behind the fan-out catches up from the table.
fn subscribe(
    state: AppState,
    last: i64,
    follow: Follow,
) -> impl FutStream<Item = Result<SseEvent, Infallible>> {
    let rx = state.events.tx.subscribe();
    // Without Last-Event-ID: from now on.
    let (last, catch_up_first) = if last > 0 {
        (last, true)
    } else {
        (state.events.last.load(Ordering::SeqCst), false)
    };
    futures_util::stream::unfold(
        (
            state,
            rx,
            last,
            std::collections::VecDeque::<Arc<Event>>::new(),
            catch_up_first,
        ),
        move |(state, mut rx, mut last, mut pending, mut behind)| {
            let follow = follow.clone();
            async move {
                loop {
                    if let Some(e) = pending.pop_front() {
                        if e.id > last && follow.wants(&e) {
                            last = e.id;
                            return Some((Ok(to_sse(&e)), (state, rx, last, pending, behind)));
                        }
                        continue;
                    }
                    if behind {
                        behind = false;
                        match catch_up(&state, &follow, last).await {
                            Ok(CatchUp::Events(events)) => {
                                pending.extend(events.into_iter().map(Arc::new));
                            }
                            Ok(CatchUp::Reset { newest }) => {
                                last = newest;
                                return Some((
                                    Ok(reset(newest)),
                                    (state, rx, last, pending, behind),
                                ));
                            }
                            Err(e) => tracing::warn!("cannot catch a client up: {e:#}"),
                        }
                        continue;
                    }
                    match rx.recv().await {
                        Ok(e) => pending.push_back(e),
                        Err(broadcast::error::RecvError::Lagged(_)) => behind = true,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        },
    )
}

/// A discarded show leaves the log: what it was (its scheduling, its chat) is never
/// replayed; only its end, recorded after this, tells clients it is gone.
pub async fn forget_show(state: &AppState, stream_id: &str) {
    let forgot = sqlx::query("delete from events where stream_id = $1")
        .bind(stream_id)
        .execute(&state.db.pool)
        .await;
    if let Err(e) = forgot {
        tracing::warn!(stream = %stream_id, "could not forget a discarded show's events: {e}");
    }
}

/// Prunes old events every `every` until the task is dropped.
pub async fn prune_every(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = prune(&state).await {
            tracing::warn!("cannot prune old events: {e:#}");
        }
    }
}

/// Forgets events older than the retention (`FEZA_EVENT_RETENTION`): the log stays
/// bounded, and a client resuming from before that is told to reload.
pub async fn prune(state: &AppState) -> anyhow::Result<u64> {
    let before = to_ms(Utc::now() - state.settings.event_retention);
    let mut tx = state.db.pool.begin().await?;
    // Everything up to the newest event that is too old (ids grow with time).
    let through: Option<i64> =
        sqlx::query_scalar("select max(id) from events where created_at < $1")
            .bind(before)
            .fetch_one(&mut *tx)
            .await?;
    let Some(through) = through else {
        return Ok(0);
    };
    let gone = sqlx::query("delete from events where id <= $1")
        .bind(through)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("update event_log set pruned_through = $1 where id = 1 and pruned_through < $1")
        .bind(through)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if gone > 0 {
        tracing::debug!(events = gone, "old events pruned");
    }
    Ok(gone)
}

fn keep_alive() -> KeepAlive {
    KeepAlive::new()
        .interval(Duration::from_secs(15))
        .text("keep-alive")
}

/// Follows one show as it happens (Server-Sent Events): counts, chat, status.
#[utoipa::path(
    get, path = "/api/streams/{id}/events", tag = "engagement",
    params(crate::api::doc::ShowPath, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (a reconnecting browser sends it): at most 500 missed events are replayed, from the last 24 h (FEZA_EVENT_RETENTION), else `reset`; without it, events from now on")),
    responses(
        (status = 200, description = "Server-Sent Events, each with an id, a kind (counts, comment, comment_deleted, status) and a JSON object as its data; `reset` when the client missed more than is replayed (load the show again)", content_type = "text/event-stream", body = Object),
        (status = 404, response = crate::api::doc::NotFound),
    ),
)]
pub async fn stream_events(
    State(state): State<AppState>,
    Path(crate::api::doc::ShowPath { id }): Path<crate::api::doc::ShowPath>,
    headers: HeaderMap,
) -> Result<Sse<impl FutStream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let row = store::load_visible(&state, &id, None).await?;
    let last = last_event_id(&headers);
    let stream_id = row.id.clone();
    let events = subscribe(state, last, Follow::Stream(stream_id));
    Ok(Sse::new(events).keep_alive(keep_alive()))
}

/// Follows the catalog as it changes (Server-Sent Events): shows scheduled, going live, ending, saved, cancelled, moved.
#[utoipa::path(
    get, path = "/api/events", tag = "engagement", params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (a reconnecting browser sends it): at most 500 missed events are replayed, from the last 24 h (FEZA_EVENT_RETENTION), else `reset`; without it, events from now on")),
    responses((status = 200, description = "Server-Sent Events, each with an id, a kind (stream_scheduled, stream_live, stream_ended, stream_archived, stream_cancelled, stream_rescheduled) and a JSON object as its data; `reset` when the client missed more than is replayed (load the catalog again)", content_type = "text/event-stream", body = Object)),
)]
pub async fn catalog_events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl FutStream<Item = Result<SseEvent, Infallible>>> {
    let last = last_event_id(&headers);
    let events = subscribe(state, last, Follow::Catalog);
    Sse::new(events).keep_alive(keep_alive())
}
