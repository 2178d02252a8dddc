//! The upload queue: every saved recording waiting to become a replay, persisted in a
//! local SQLite database beside the recordings, so uploads survive a network error, a
//! server restart and a restart of the broadcaster itself. A local file is removed
//! only once the server confirms a complete, verified replay (unless kept).

use crate::client::ApiClient;
use crate::upload::{Progress, SendOptions, TusClient, UploadError, send_file};
use live_core::api::ReplayState;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the upload queue {path} cannot be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("the upload queue failed: {0}")]
    Db(#[from] sqlx::Error),
}

/// Where an entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting for its turn (or for the network).
    Queued,
    /// Sent; the server is making the replay.
    Processing,
    /// The replay is ready on the server.
    Done,
    /// It cannot be finished (the reason says why); the local file is kept.
    Failed,
}

impl EntryState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "processing" => Self::Processing,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub stream_id: String,
    pub path: PathBuf,
    pub upload_url: Option<String>,
    pub size: Option<u64>,
    pub sent: u64,
    pub state: EntryState,
    pub error: Option<String>,
    pub keep_local: bool,
}

#[derive(Clone, Debug)]
pub struct Queue {
    pool: SqlitePool,
}

type Row = (
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
    String,
    Option<String>,
    bool,
);

fn entry(r: Row) -> Entry {
    Entry {
        stream_id: r.0,
        path: PathBuf::from(r.1),
        upload_url: r.2,
        size: r.3.map(|s| s as u64),
        sent: r.4 as u64,
        state: EntryState::parse(&r.5),
        error: r.6,
        keep_local: r.7,
    }
}

const COLUMNS: &str = "stream_id, path, upload_url, size, sent, state, error, keep_local";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Queue {
    /// The queue of `dir` (`<dir>/uploads.db`), created if missing.
    pub async fn open(dir: &Path) -> Result<Self, QueueError> {
        let path = dir.join("uploads.db");
        let fail = |reason: String| QueueError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| {
            fail(if dir.exists() && !dir.is_dir() {
                format!("{} is a file; recordings need a folder", dir.display())
            } else {
                e.to_string()
            })
        })?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| fail(e.to_string()))?;
        MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self { pool })
    }

    /// Adds (or re-queues) the recording of `stream_id`.
    pub async fn enqueue(
        &self,
        stream_id: &str,
        path: &Path,
        keep_local: bool,
    ) -> Result<(), QueueError> {
        sqlx::query(
            "insert into uploads (stream_id, path, state, keep_local, created_at, updated_at) \
             values ($1, $2, 'queued', $3, $4, $4) \
             on conflict (stream_id) do update set path = excluded.path, state = 'queued', \
             error = null, keep_local = excluded.keep_local, updated_at = excluded.updated_at",
        )
        .bind(stream_id)
        .bind(path.to_string_lossy().as_ref())
        .bind(keep_local)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remembers an upload already created for `stream_id` (progressive upload).
    pub async fn set_url(&self, stream_id: &str, url: &str) -> Result<(), QueueError> {
        sqlx::query("update uploads set upload_url = $1, updated_at = $2 where stream_id = $3")
            .bind(url)
            .bind(now_ms())
            .bind(stream_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn progress(&self, stream_id: &str, p: &Progress) -> Result<(), QueueError> {
        sqlx::query(
            "update uploads set sent = $1, size = $2, updated_at = $3 where stream_id = $4",
        )
        .bind(p.sent as i64)
        .bind(p.total.map(|t| t as i64))
        .bind(now_ms())
        .bind(stream_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_state(
        &self,
        stream_id: &str,
        state: EntryState,
        error: Option<&str>,
    ) -> Result<(), QueueError> {
        sqlx::query(
            "update uploads set state = $1, error = $2, updated_at = $3 where stream_id = $4",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now_ms())
        .bind(stream_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get(&self, stream_id: &str) -> Result<Option<Entry>, QueueError> {
        let sql = format!("select {COLUMNS} from uploads where stream_id = $1");
        Ok(sqlx::query_as::<_, Row>(&sql)
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await?
            .map(entry))
    }

    /// Every entry, oldest first.
    pub async fn list(&self) -> Result<Vec<Entry>, QueueError> {
        let sql = format!("select {COLUMNS} from uploads order by created_at");
        Ok(sqlx::query_as::<_, Row>(&sql)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(entry)
            .collect())
    }

    /// Forgets a stream's entry (its recording was discarded).
    pub async fn remove(&self, stream_id: &str) -> Result<(), QueueError> {
        sqlx::query("delete from uploads where stream_id = $1")
            .bind(stream_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// What became of one entry in a run of the queue.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stream_id: String,
    pub state: EntryState,
    pub error: Option<String>,
}

/// Uploads every unfinished entry in turn, resuming each from the server's offset, and
/// waits (up to `wait_ready`) for the server to confirm each replay. `on_progress` hears
/// (stream id, progress) after every chunk and every second while one is sent. An
/// entry whose replay the server already has is done at once, whatever the queue had
/// noted. Notes the queue cannot write (a full disk) are logged and the run goes on:
/// the server's offset and replay are what count.
///
/// Stops as soon as `stop` completes (the seller's Ctrl-C): the entry under way stays
/// queued with the bytes the server confirmed (or processing, when only the server's
/// verdict was awaited), and the next run resumes it; its outcome says so.
pub async fn run(
    api: &ApiClient,
    queue: &Queue,
    opts: SendOptions,
    wait_ready: Duration,
    stop: impl std::future::Future<Output = ()>,
    mut on_progress: impl FnMut(&str, &Progress),
) -> Result<Vec<Outcome>, QueueError> {
    let tus = TusClient::new(api);
    let mut stop = std::pin::pin!(stop);
    let mut outcomes = Vec::new();
    for e in queue.list().await? {
        if matches!(e.state, EntryState::Done | EntryState::Failed) {
            continue;
        }
        let id = e.stream_id.clone();
        let outcome = |state, error| Outcome {
            stream_id: id.clone(),
            state,
            error,
        };
        if api
            .replay(&id)
            .await
            .is_ok_and(|r| r.state == ReplayState::Ready)
        {
            done(queue, &e).await;
            outcomes.push(outcome(EntryState::Done, None));
            continue;
        }
        let mut last: Option<Progress> = None;
        let mut heard = |id: &str, p: &Progress| {
            last = Some(*p);
            on_progress(id, p);
        };
        let result = tokio::select! {
            r = upload_one(&tus, queue, &e, opts, &mut heard) => Some(r),
            () = &mut stop => None,
        };
        let Some(result) = result else {
            let confirmed = last.map_or(e.sent, |p| p.sent);
            let total = last.and_then(|p| p.total).or(e.size);
            if let Some(p) = last
                && let Err(err) = queue.progress(&id, &Progress { in_flight: 0, ..p }).await
            {
                tracing::warn!(stream = %id, "could not note how far the upload got ({err}); the next run asks the server");
            }
            let why = paused_at(confirmed, total);
            note(queue, &id, EntryState::Queued, Some(&why)).await;
            outcomes.push(outcome(EntryState::Queued, Some(why)));
            break;
        };
        let (state, error) = match result {
            Ok(()) => {
                note(queue, &id, EntryState::Processing, None).await;
                let verdict = tokio::select! {
                    v = confirm(api, queue, &e, wait_ready) => Some(v),
                    () = &mut stop => None,
                };
                match verdict {
                    Some(v) => v,
                    None => {
                        outcomes.push(outcome(EntryState::Processing, None));
                        break;
                    }
                }
            }
            Err(err) if err.is_transient() => {
                // Stays queued: the next run (or the next start) resumes it.
                note(queue, &id, EntryState::Queued, Some(&err.to_string())).await;
                (EntryState::Queued, Some(err.to_string()))
            }
            Err(err) => {
                note(queue, &id, EntryState::Failed, Some(&err.to_string())).await;
                (EntryState::Failed, Some(err.to_string()))
            }
        };
        outcomes.push(outcome(state, error));
    }
    Ok(outcomes)
}

/// Notes an entry's state; a queue that cannot be written (a full disk) is logged, not
/// fatal: the next run learns the truth from the server.
async fn note(queue: &Queue, stream_id: &str, state: EntryState, error: Option<&str>) {
    if let Err(e) = queue.set_state(stream_id, state, error).await {
        tracing::warn!(stream = %stream_id, "could not note the upload as {} ({e})", state.as_str());
    }
}

/// The replay is ready on the server: the entry is done and its local file goes
/// (unless kept, or a show's recording whose MP4 copy could not be made yet: the next
/// `live-cast` run makes the copy from it).
async fn done(queue: &Queue, e: &Entry) {
    note(queue, &e.stream_id, EntryState::Done, None).await;
    if e.keep_local {
        return;
    }
    let mp4 = e.path.with_extension("mp4");
    if e.path.extension().is_some_and(|x| x == "mkv") && !mp4.exists() {
        tracing::info!(recording = %e.path.display(), "replay ready; the recording is kept until its MP4 copy is made");
        return;
    }
    match std::fs::remove_file(&e.path) {
        Ok(()) => {
            tracing::info!(recording = %e.path.display(), "replay ready; local recording removed")
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            tracing::warn!(recording = %e.path.display(), "replay ready; could not remove the local recording: {err}")
        }
    }
}

/// `stopped with 0.4 MB of 1.1 MB on the server (36 %)`.
fn paused_at(confirmed: u64, total: Option<u64>) -> String {
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    match total {
        Some(t) if t > 0 => format!(
            "stopped with {} of {} on the server ({:.0} %)",
            mb(confirmed),
            mb(t),
            confirmed as f64 * 100.0 / t as f64
        ),
        _ => format!("stopped with {} on the server", mb(confirmed)),
    }
}

async fn upload_one(
    tus: &TusClient,
    queue: &Queue,
    e: &Entry,
    opts: SendOptions,
    on_progress: &mut impl FnMut(&str, &Progress),
) -> Result<(), UploadError> {
    let size = tokio::fs::metadata(&e.path)
        .await
        .map_err(|err| UploadError::File {
            path: e.path.display().to_string(),
            reason: err.to_string(),
        })?
        .len();
    // An upload created earlier (this run, a previous run, or live) is resumed; one the
    // server no longer has is started again.
    let url = match &e.upload_url {
        Some(url) => match tus.offset(url).await {
            Ok(_) => url.clone(),
            Err(UploadError::Refused {
                status: 404 | 410, ..
            }) => create(tus, queue, e, size).await?,
            Err(err) => return Err(err),
        },
        None => create(tus, queue, e, size).await?,
    };
    let mut last_saved = std::time::Instant::now();
    send_file(tus, &url, &e.path, true, opts, |p| {
        on_progress(&e.stream_id, &p);
        if last_saved.elapsed() > Duration::from_secs(1) {
            last_saved = std::time::Instant::now();
            // Best effort, for `live-cast uploads`: a resume trusts the server's offset.
            let (queue, id) = (queue.clone(), e.stream_id.clone());
            tokio::spawn(async move { queue.progress(&id, &p).await });
        }
    })
    .await?;
    let _ = queue
        .progress(
            &e.stream_id,
            &Progress {
                sent: size,
                in_flight: 0,
                total: Some(size),
                rate: 0.0,
            },
        )
        .await;
    Ok(())
}

async fn create(
    tus: &TusClient,
    queue: &Queue,
    e: &Entry,
    size: u64,
) -> Result<String, UploadError> {
    let filename = e
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let url = tus.create(&e.stream_id, Some(size), &filename).await?;
    if let Err(err) = queue.set_url(&e.stream_id, &url).await {
        tracing::warn!("could not remember the upload URL: {err}");
    }
    Ok(url)
}

/// Waits for the server's verdict on a sent recording; removes the local file once the
/// replay is ready (unless it is kept).
async fn confirm(
    api: &ApiClient,
    queue: &Queue,
    e: &Entry,
    wait: Duration,
) -> (EntryState, Option<String>) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    loop {
        let answer = api.replay(&e.stream_id).await;
        // A server that went away (shut down right after the show) will not answer for
        // a while: the upload is complete, the next run confirms the replay.
        match &answer {
            Err(
                crate::client::ClientError::Unreachable { .. }
                | crate::client::ClientError::Unavailable { .. },
            ) => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > Duration::from_secs(5) {
                    return (EntryState::Processing, None);
                }
            }
            _ => unreachable_since = None,
        }
        match answer {
            Ok(r) if r.state == ReplayState::Ready => {
                done(queue, e).await;
                return (EntryState::Done, None);
            }
            Ok(r) if r.state == ReplayState::Failed => {
                let reason = r
                    .reason
                    .unwrap_or_else(|| "the server could not make the replay".into());
                note(queue, &e.stream_id, EntryState::Failed, Some(&reason)).await;
                return (EntryState::Failed, Some(reason));
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return (EntryState::Processing, None);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
