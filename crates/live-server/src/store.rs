//! Streams in the database: rows, the lifecycle they hold, and the one place that
//! writes a lifecycle change (load → [`Lifecycle::apply`] → store if unchanged since).

use crate::auth::Seller;
use crate::db::{from_ms, new_id, opt_from_ms, to_ms};
use crate::error::ApiError;
use crate::state::{AppState, Settings};
use anyhow::{Context, anyhow};
use chrono::{DateTime, TimeDelta, Utc};
use live_core::api::{Counts, Replay, ReplayState, SellerRef, Stream};
use live_core::lifecycle::LiveIngest;
use live_core::{EndReason, IngestState, Lifecycle, StreamStatus, Transition};
use sqlx::Acquire;

/// How long past its time an unstarted show stays in Upcoming.
pub const UPCOMING_OVERDUE: TimeDelta = TimeDelta::hours(1);

pub const SELECT_STREAM: &str = "select s.id, s.vendor_id, sel.name as seller_name, s.title, \
    s.description, s.thumbnail_url, s.status, s.viewer_count, s.like_count, s.dislike_count, \
    s.comment_count, s.share_count, s.peak_viewers, s.unique_viewers, s.reminder_count, \
    s.scheduled_at, s.started_at, s.ended_at, s.end_reason, s.created_at, s.version, \
    s.ingest_state, s.ingest_since, s.ingest_last_update, s.ingest_key_hash, s.ingest_client, \
    s.replay_state, s.replay_reason, ss.video_url, ss.thumbnail_url as replay_thumbnail_url, \
    ss.duration as replay_duration \
    from live_streams s join sellers sel on sel.id = s.vendor_id \
    left join saved_streams ss on ss.stream_id = s.id";

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StreamRow {
    pub id: String,
    pub vendor_id: String,
    pub seller_name: String,
    pub title: String,
    pub description: String,
    pub thumbnail_url: Option<String>,
    pub status: String,
    pub viewer_count: i64,
    pub like_count: i64,
    pub dislike_count: i64,
    pub comment_count: i64,
    pub share_count: i64,
    pub peak_viewers: i64,
    pub unique_viewers: i64,
    pub reminder_count: i64,
    pub scheduled_at: Option<i64>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub created_at: i64,
    pub version: i64,
    pub ingest_state: Option<String>,
    pub ingest_since: Option<i64>,
    pub ingest_last_update: Option<i64>,
    pub ingest_key_hash: Option<String>,
    pub ingest_client: Option<String>,
    pub replay_state: Option<String>,
    pub replay_reason: Option<String>,
    pub video_url: Option<String>,
    pub replay_thumbnail_url: Option<String>,
    pub replay_duration: Option<f64>,
}

fn corrupt(row: &StreamRow, what: &str) -> anyhow::Error {
    anyhow!("stream {} has an inconsistent lifecycle: {what}", row.id)
}

/// Rows already said to be inconsistent (each is logged once, not on every read).
static SAID_INCONSISTENT: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

fn say_once(row: &StreamRow, e: &anyhow::Error, so: &str) {
    let mut said = SAID_INCONSISTENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if said.len() > 10_000 {
        said.clear();
    }
    if said.insert(row.id.clone()) {
        tracing::warn!(stream = %row.id, "{e:#}; {so}");
    }
}

impl StreamRow {
    /// The lifecycle this row holds (not settled). A row written elsewhere (the
    /// marketplace's own rows, with the seed's columns only) may lack what its status
    /// needs: it is read as what it safely is, said once in the log (and the sweeper
    /// stores it so). A live show without its ingest's record is one whose ingest was
    /// lost when last heard of: nothing says media reaches the ingest, and a show is
    /// Live Now only then. An ended one missing its time or reason ended when last
    /// heard of, by its seller. Only a status that is none of the five is refused.
    pub fn lifecycle(&self) -> anyhow::Result<Lifecycle> {
        match self.stored_lifecycle() {
            Ok(lc) => Ok(lc),
            Err(e) => match self.safe_lifecycle() {
                Some(safe) => {
                    say_once(self, &e, "read as what it safely is");
                    Ok(safe)
                }
                None => {
                    say_once(self, &e, "left out");
                    Err(e)
                }
            },
        }
    }

    /// What an inconsistent row safely is (None for an unknown status).
    fn safe_lifecycle(&self) -> Option<Lifecycle> {
        let status = StreamStatus::parse(&self.status)?;
        let started = opt_from_ms(self.started_at)
            .or(opt_from_ms(self.scheduled_at))
            .unwrap_or_else(|| from_ms(self.created_at));
        let last_heard = opt_from_ms(self.ended_at)
            .or(opt_from_ms(self.started_at))
            .or(opt_from_ms(self.scheduled_at))
            .unwrap_or_else(|| from_ms(self.created_at));
        let reason = self
            .end_reason
            .as_deref()
            .and_then(EndReason::parse)
            .unwrap_or(EndReason::SellerEnded);
        Some(match status {
            StreamStatus::Scheduled => Lifecycle::Scheduled {
                waiting_since: None,
            },
            // Nothing says media reaches the ingest: not Live Now, but a show whose
            // ingest was lost when last heard of (its owner may still save it).
            StreamStatus::Live => Lifecycle::Ended {
                started_at: Some(started),
                ended_at: opt_from_ms(self.ingest_last_update)
                    .or(opt_from_ms(self.ingest_since))
                    .unwrap_or(started),
                reason: EndReason::IngestLost,
            },
            StreamStatus::Ended => Lifecycle::Ended {
                started_at: opt_from_ms(self.started_at),
                ended_at: last_heard,
                reason,
            },
            StreamStatus::Archived => Lifecycle::Archived {
                started_at: opt_from_ms(self.started_at),
                ended_at: last_heard,
                reason,
            },
            StreamStatus::Cancelled => Lifecycle::Cancelled { at: last_heard },
        })
    }

    /// The lifecycle this row holds, exactly as stored.
    fn stored_lifecycle(&self) -> anyhow::Result<Lifecycle> {
        let status = StreamStatus::parse(&self.status).ok_or_else(|| corrupt(self, "status"))?;
        let ingest = self.ingest_state.as_deref().map(IngestState::parse);
        let reason = || {
            self.end_reason
                .as_deref()
                .and_then(EndReason::parse)
                .ok_or_else(|| corrupt(self, "end_reason"))
        };
        let ended_at = || {
            self.ended_at
                .map(from_ms)
                .ok_or_else(|| corrupt(self, "ended_at"))
        };
        Ok(match status {
            StreamStatus::Scheduled => Lifecycle::Scheduled {
                waiting_since: match ingest {
                    Some(Some(IngestState::Waiting)) => Some(
                        opt_from_ms(self.ingest_since)
                            .ok_or_else(|| corrupt(self, "ingest_since"))?,
                    ),
                    _ => None,
                },
            },
            StreamStatus::Live => Lifecycle::Live {
                started_at: opt_from_ms(self.started_at)
                    .ok_or_else(|| corrupt(self, "started_at"))?,
                ingest: match ingest {
                    Some(Some(IngestState::Reconnecting)) => LiveIngest::Reconnecting {
                        since: opt_from_ms(self.ingest_since)
                            .ok_or_else(|| corrupt(self, "ingest_since"))?,
                    },
                    Some(Some(IngestState::Connected)) => LiveIngest::Connected {
                        last_heard: opt_from_ms(self.ingest_last_update)
                            .ok_or_else(|| corrupt(self, "ingest_last_update"))?,
                    },
                    _ => return Err(corrupt(self, "ingest_state")),
                },
            },
            StreamStatus::Ended => Lifecycle::Ended {
                started_at: opt_from_ms(self.started_at),
                ended_at: ended_at()?,
                reason: reason()?,
            },
            StreamStatus::Archived => Lifecycle::Archived {
                started_at: opt_from_ms(self.started_at),
                ended_at: ended_at()?,
                reason: reason()?,
            },
            StreamStatus::Cancelled => Lifecycle::Cancelled { at: ended_at()? },
        })
    }

    pub fn is_owned_by(&self, seller: Option<&Seller>) -> bool {
        seller.is_some_and(|s| s.id == self.vendor_id)
    }

    /// The public view of this row, as of `now`; owner-only fields for its owner.
    pub fn view(
        &self,
        settings: &Settings,
        seller: Option<&Seller>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Stream> {
        let lc = self.lifecycle()?.settle(now, &settings.policy);
        let status = lc.status();
        let owner = self.is_owned_by(seller);
        let scheduled_at = opt_from_ms(self.scheduled_at);
        let replay = (status == StreamStatus::Archived).then(|| Replay {
            video_url: self.video_url.clone(),
            thumbnail_url: self.replay_thumbnail_url.clone(),
            duration_s: self.replay_duration,
            state: self
                .replay_state
                .as_deref()
                .and_then(ReplayState::parse)
                .unwrap_or(ReplayState::Uploading),
            reason: self.replay_reason.clone(),
        });
        Ok(Stream {
            id: self.id.clone(),
            seller: SellerRef {
                id: self.vendor_id.clone(),
                name: self.seller_name.clone(),
            },
            title: self.title.clone(),
            description: self.description.clone(),
            status,
            scheduled_at,
            started_at: lc.started_at(),
            ended_at: lc.ended_at(),
            end_reason: lc.end_reason(),
            share_url: settings.share_url(&self.id),
            playback_url: (status == StreamStatus::Live).then(|| settings.playback_url(&self.id)),
            replay,
            counts: Counts {
                viewers: if status == StreamStatus::Live {
                    self.viewer_count
                } else {
                    0
                },
                peak_viewers: self.peak_viewers,
                unique_viewers: self.unique_viewers,
                likes: self.like_count,
                dislikes: self.dislike_count,
                comments: self.comment_count,
                shares: self.share_count,
                reminders: self.reminder_count,
            },
            ingest_state: if owner { lc.ingest_state() } else { None },
            overdue: owner.then(|| {
                status == StreamStatus::Scheduled
                    && scheduled_at.is_some_and(|at| at < now - UPCOMING_OVERDUE)
            }),
        })
    }
}

pub async fn load(state: &AppState, id: &str) -> Result<Option<StreamRow>, ApiError> {
    let sql = format!("{SELECT_STREAM} where s.id = $1");
    Ok(sqlx::query_as::<_, StreamRow>(&sql)
        .bind(id)
        .fetch_optional(&state.db.pool)
        .await?)
}

pub async fn load_by_key_hash(state: &AppState, hash: &str) -> Result<Option<StreamRow>, ApiError> {
    let sql = format!("{SELECT_STREAM} where s.ingest_key_hash = $1");
    Ok(sqlx::query_as::<_, StreamRow>(&sql)
        .bind(hash)
        .fetch_optional(&state.db.pool)
        .await?)
}

/// A stream the caller may read: public ones to anyone, the rest to their owner.
pub async fn load_visible(
    state: &AppState,
    id: &str,
    seller: Option<&Seller>,
) -> Result<StreamRow, ApiError> {
    let row = load(state, id)
        .await?
        .ok_or_else(ApiError::stream_not_found)?;
    let status = row
        .lifecycle()?
        .settle(Utc::now(), &state.settings.policy)
        .status();
    if status.is_public() || row.is_owned_by(seller) {
        Ok(row)
    } else {
        Err(ApiError::stream_not_found())
    }
}

/// A stream the seller may write: 404 when the seller may not even see it, 403 when
/// it is public but another seller's.
pub async fn load_owned(
    state: &AppState,
    id: &str,
    seller: &Seller,
) -> Result<StreamRow, ApiError> {
    let row = load_visible(state, id, Some(seller)).await?;
    if row.is_owned_by(Some(seller)) {
        Ok(row)
    } else {
        Err(ApiError::NotOwner)
    }
}

pub struct NewStream {
    pub title: String,
    pub description: String,
    pub scheduled_at: DateTime<Utc>,
}

pub async fn insert(
    state: &AppState,
    seller: &Seller,
    new: NewStream,
) -> Result<StreamRow, ApiError> {
    let id = new_id();
    let now = to_ms(Utc::now());
    sqlx::query(
        "insert into live_streams (id, vendor_id, title, description, status, stream_url, \
         scheduled_at, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&id)
    .bind(&seller.id)
    .bind(&new.title)
    .bind(&new.description)
    .bind(StreamStatus::Scheduled.as_str())
    .bind(state.settings.playback_url(&id))
    .bind(to_ms(new.scheduled_at))
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    load(state, &id)
        .await?
        .ok_or_else(|| anyhow!("stream {id} vanished after insert").into())
}

/// Ingest details that change with the lifecycle.
#[derive(Clone, Debug, Default)]
pub struct IngestChange {
    /// A freshly issued key (its hash).
    pub new_key_hash: Option<String>,
    /// The ingest's id for the connection now publishing.
    pub client: Option<String>,
}

/// The outcome of a lifecycle write.
pub struct Applied {
    pub before: Lifecycle,
    pub after: Lifecycle,
    pub row: StreamRow,
}

/// Applies `transition` to the stream `id` (or only the rules of time, when `None`),
/// storing the result only if nobody changed the stream meanwhile; retried then.
pub async fn apply(
    state: &AppState,
    id: &str,
    transition: Option<Transition>,
    change: IngestChange,
) -> Result<Applied, ApiError> {
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        let row = load(state, id)
            .await?
            .ok_or_else(ApiError::stream_not_found)?;
        let before = row.lifecycle()?;
        let now = Utc::now();
        let after = match transition {
            Some(t) => before.apply(t, now, &state.settings.policy)?,
            None => before.settle(now, &state.settings.policy),
        };
        // Unchanged, and stored as it is (not an inconsistent row read safely).
        if after == before && transition.is_none() && row.stored_lifecycle().is_ok() {
            return Ok(Applied { before, after, row });
        }
        if store(state, &row, &after, &change, now).await? {
            let row = load(state, id)
                .await?
                .ok_or_else(ApiError::stream_not_found)?;
            let discarded = Some(EndReason::Discarded);
            if after.end_reason() == discarded && before.end_reason() != discarded {
                // Gone for good: nothing of it is replayed from the log any more.
                crate::events::forget_show(state, id).await;
            }
            if before.status() != after.status() {
                crate::events::stream_changed(state, &row).await;
            }
            return Ok(Applied { before, after, row });
        }
        tracing::debug!(stream = id, "lifecycle changed concurrently; retrying");
    }
    Err(ApiError::Conflict(
        "this show is changing right now; try again".into(),
    ))
}

/// The columns of `live_streams` a lifecycle is stored in: the one mapping, for the
/// server's writes and for anything else that writes shows (the benchmark's seeder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleColumns {
    pub status: &'static str,
    pub ingest_state: Option<&'static str>,
    pub ingest_since: Option<i64>,
    pub ingest_last_update: Option<i64>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<&'static str>,
}

impl LifecycleColumns {
    pub fn of(lc: &Lifecycle) -> Self {
        let (ingest_since, ingest_last_update) = match *lc {
            Lifecycle::Scheduled { waiting_since } => (waiting_since.map(to_ms), None),
            Lifecycle::Live {
                ingest: LiveIngest::Reconnecting { since },
                ..
            } => (Some(to_ms(since)), None),
            Lifecycle::Live {
                ingest: LiveIngest::Connected { last_heard },
                ..
            } => (None, Some(to_ms(last_heard))),
            _ => (None, None),
        };
        Self {
            status: lc.status().as_str(),
            ingest_state: lc.ingest_state().map(IngestState::as_str),
            ingest_since,
            ingest_last_update,
            started_at: lc.started_at().map(to_ms),
            ended_at: lc.ended_at().map(to_ms),
            end_reason: lc.end_reason().map(EndReason::as_str),
        }
    }
}

/// Writes `after` over `row` if its version is unchanged; false when it was.
async fn store(
    state: &AppState,
    row: &StreamRow,
    after: &Lifecycle,
    change: &IngestChange,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let columns = LifecycleColumns::of(after);
    // A key lives only while the show may still receive media with it.
    let key_hash = after
        .key_is_usable()
        .then(|| {
            change
                .new_key_hash
                .clone()
                .or_else(|| row.ingest_key_hash.clone())
        })
        .flatten();
    let client = match after.ingest_state() {
        Some(IngestState::Connected) => change.client.clone().or_else(|| row.ingest_client.clone()),
        // Kept while reconnecting: a heartbeat from that connection (the silence was
        // the server's) puts it back.
        Some(IngestState::Reconnecting) => row.ingest_client.clone(),
        _ => None,
    };
    let archiving =
        after.status() == StreamStatus::Archived && row.status != StreamStatus::Archived.as_str();

    let mut conn = state.db.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    // The write comes first in the transaction, so SQLite takes its write lock at once.
    let updated = sqlx::query(
        "update live_streams set status = $1, ingest_state = $2, ingest_since = $3, \
         ingest_last_update = $4, started_at = $5, ended_at = $6, end_reason = $7, \
         ingest_key_hash = $8, ingest_client = $9, updated_at = $10, version = version + 1, \
         viewer_count = case when $1 = 'live' then viewer_count else 0 end, \
         replay_state = case when $11 then 'uploading' else replay_state end \
         where id = $12 and version = $13",
    )
    .bind(columns.status)
    .bind(columns.ingest_state)
    .bind(columns.ingest_since)
    .bind(columns.ingest_last_update)
    .bind(columns.started_at)
    .bind(columns.ended_at)
    .bind(columns.end_reason)
    .bind(key_hash)
    .bind(client)
    .bind(to_ms(now))
    .bind(archiving)
    .bind(&row.id)
    .bind(row.version)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    if archiving {
        // The replay's record exists from the moment the show is saved, with every
        // final count; its video fields are filled when the replay is ready.
        sqlx::query(
            "insert into saved_streams (id, stream_id, vendor_id, title, description, \
             thumbnail_url, viewer_count, peak_viewers, like_count, dislike_count, \
             comment_count, share_count, total_revenue, streamed_at, saved_at, views_count) \
             select $1, id, vendor_id, title, description, thumbnail_url, unique_viewers, \
             peak_viewers, like_count, dislike_count, comment_count, share_count, 0, \
             started_at, $2, 0 from live_streams where id = $3",
        )
        .bind(new_id())
        .bind(to_ms(now))
        .bind(&row.id)
        .execute(&mut *tx)
        .await
        .context("Failed to record the saved show")?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A page of a list: rows plus the cursor of the next page.
pub struct Page {
    pub rows: Vec<StreamRow>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Live,
    Upcoming,
    Recent,
}

/// Where a page starts: after the row with this sort key and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}.{}", self.key, self.id))
    }

    pub fn decode(s: &str) -> Result<Self, ApiError> {
        use base64::Engine;
        let bad =
            || ApiError::bad_request("invalid_cursor", "cursor is not one this server gave out");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (key, id) = raw.split_once('.').ok_or_else(bad)?;
        let key = key.parse().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(Self {
            key,
            id: id.to_owned(),
        })
    }
}

/// A list query: which rows, in which order, from which cursor.
struct ListQuery {
    sql: String,
    args: Vec<Arg>,
}

enum Arg {
    Int(i64),
    Text(String),
}

impl ListQuery {
    fn new(filter: &str) -> Self {
        Self {
            sql: format!("{SELECT_STREAM} where {filter}"),
            args: Vec::new(),
        }
    }

    /// Adds `clause` with `$?` standing for a new parameter bound to `arg`.
    fn and(mut self, clause: &str, arg: Arg) -> Self {
        self.args.push(arg);
        let n = self.args.len();
        self.sql = format!(
            "{} and {}",
            self.sql,
            clause.replace("$?", &format!("${n}"))
        );
        self
    }

    async fn page(
        mut self,
        state: &AppState,
        key: &str,
        descending: bool,
        cursor: Option<Cursor>,
        limit: i64,
        key_of: impl Fn(&StreamRow) -> Option<i64>,
    ) -> Result<Page, ApiError> {
        let (order, after) = if descending {
            ("desc", "<")
        } else {
            ("asc", ">")
        };
        if let Some(c) = cursor {
            let n = self.args.len();
            self.sql = format!(
                "{} and ({key}, s.id) {after} (${}, ${})",
                self.sql,
                n + 1,
                n + 2
            );
            self.args.push(Arg::Int(c.key));
            self.args.push(Arg::Text(c.id));
        }
        self.args.push(Arg::Int(limit + 1));
        let sql = format!(
            "{} order by {key} {order}, s.id {order} limit ${}",
            self.sql,
            self.args.len()
        );
        let mut q = sqlx::query_as::<_, StreamRow>(&sql);
        for arg in self.args {
            q = match arg {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
            };
        }
        let mut rows = q.fetch_all(&state.db.pool).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| {
                Cursor {
                    key: key_of(r).unwrap_or_default(),
                    id: r.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Page { rows, next_cursor })
    }
}

/// One page of a public catalog section.
pub async fn list_section(
    state: &AppState,
    section: Section,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Page, ApiError> {
    match section {
        Section::Live => {
            ListQuery::new("s.status = 'live'")
                .page(state, "s.started_at", true, cursor, limit, |r| r.started_at)
                .await
        }
        Section::Upcoming => {
            let since = to_ms(Utc::now() - UPCOMING_OVERDUE);
            let query = ListQuery::new("s.status = 'scheduled'");
            // A cursor at or past `since` implies it; stating both would let SQLite pick
            // the weaker range and scan every show between now and the cursor.
            let query = match &cursor {
                Some(c) if c.key >= since => query,
                _ => query.and("s.scheduled_at >= $?", Arg::Int(since)),
            };
            query
                .page(state, "s.scheduled_at", false, cursor, limit, |r| {
                    r.scheduled_at
                })
                .await
        }
        Section::Recent => {
            ListQuery::new(
                "s.status = 'archived' and (s.replay_state is null or s.replay_state <> 'failed')",
            )
            .page(state, "s.ended_at", true, cursor, limit, |r| r.ended_at)
            .await
        }
    }
}

/// One page of a seller's own shows, every status, newest first.
pub async fn list_own(
    state: &AppState,
    seller: &Seller,
    cursor: Option<Cursor>,
    limit: i64,
) -> Result<Page, ApiError> {
    ListQuery::new("1 = 1")
        .and("s.vendor_id = $?", Arg::Text(seller.id.clone()))
        .page(state, "s.created_at", true, cursor, limit, |r| {
            Some(r.created_at)
        })
        .await
}

/// Ids of shows whose ingest state is due to change with time alone (for the sweeper):
/// a lapsed wait, a silent publisher, an expired grace period; and live rows written
/// without the ingest's columns (stored as what they safely are).
pub async fn ids_due(state: &AppState, now: DateTime<Utc>) -> Result<Vec<String>, ApiError> {
    let policy = &state.settings.policy;
    Ok(sqlx::query_scalar(
        "select id from live_streams \
         where (ingest_state = 'waiting' and ingest_since < $1) \
         or (ingest_state = 'connected' and ingest_last_update < $2) \
         or (ingest_state = 'reconnecting' and ingest_since < $3) \
         or (status = 'live' and (ingest_state is null or started_at is null \
             or (ingest_state = 'connected' and ingest_last_update is null) \
             or (ingest_state = 'reconnecting' and ingest_since is null)))",
    )
    .bind(to_ms(now - policy.wait_timeout))
    .bind(to_ms(now - policy.stale_after))
    .bind(to_ms(now - policy.reconnect_grace))
    .fetch_all(&state.db.pool)
    .await?)
}

/// Edits a show's details while it is still scheduled; false if it no longer is.
pub async fn edit(
    state: &AppState,
    row: &StreamRow,
    title: Option<String>,
    description: Option<String>,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "update live_streams set title = coalesce($1, title), \
         description = coalesce($2, description), scheduled_at = coalesce($3, scheduled_at), \
         updated_at = $4, version = version + 1 where id = $5 and status = 'scheduled'",
    )
    .bind(title)
    .bind(description)
    .bind(scheduled_at.map(to_ms))
    .bind(to_ms(Utc::now()))
    .bind(&row.id)
    .execute(&state.db.pool)
    .await?
    .rows_affected();
    Ok(done == 1)
}
