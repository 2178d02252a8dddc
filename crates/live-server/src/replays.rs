//! Replays: a complete upload of a saved show becomes a web-playable, seekable MP4
//! (a remux, no re-encode) with a thumbnail and a duration; then it is served with
//! range requests and its views are counted. Processing is driven by the uploads'
//! state in the database, so a restart picks up where it stopped, and a replay that
//! cannot be made ends as `failed` with a reason, never stuck in `processing`.

use crate::db::to_ms;
use crate::error::{ApiError, Path};
use crate::state::AppState;
use crate::store;
use crate::uploads::upload_state::*;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::RANGE;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use live_core::StreamStatus;
use live_core::api::Replay;
use std::sync::Arc;
use tokio::sync::Notify;

/// Wakes the processing worker (an upload just completed, or a show was saved).
pub fn kick(state: &AppState) {
    state.replay_work.notify_one();
}

/// Processes complete uploads of saved shows, one at a time, until the task is dropped.
pub async fn run(state: AppState, work: Arc<Notify>) {
    // Work a previous run left half done goes again from the start.
    if let Err(e) = sqlx::query("update uploads set state = $1 where state = $2")
        .bind(COMPLETE)
        .bind(PROCESSING)
        .execute(&state.db.pool)
        .await
    {
        tracing::error!("could not reset interrupted replay processing: {e}");
    }
    loop {
        match next(&state).await {
            Ok(Some((upload, stream))) => process(&state, &upload, &stream).await,
            Ok(None) => {
                // Also wake now and then: a show may have been saved elsewhere.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), work.notified()).await;
            }
            Err(e) => {
                tracing::error!("replay processing could not read its queue: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}

/// Claims the oldest complete upload whose show is saved.
async fn next(state: &AppState) -> anyhow::Result<Option<(String, String)>> {
    let candidate: Option<(String, String)> = sqlx::query_as(
        "select u.id, u.stream_id from uploads u join live_streams s on s.id = u.stream_id \
         where u.state = $1 and s.status = $2 order by u.updated_at limit 1",
    )
    .bind(COMPLETE)
    .bind(StreamStatus::Archived.as_str())
    .fetch_optional(&state.db.pool)
    .await?;
    let Some((upload, stream)) = candidate else {
        return Ok(None);
    };
    let claimed =
        sqlx::query("update uploads set state = $1, updated_at = $2 where id = $3 and state = $4")
            .bind(PROCESSING)
            .bind(to_ms(Utc::now()))
            .bind(&upload)
            .bind(COMPLETE)
            .execute(&state.db.pool)
            .await?
            .rows_affected();
    if claimed == 1 {
        set_replay_state(state, &stream, "processing", None).await?;
        Ok(Some((upload, stream)))
    } else {
        Ok(None)
    }
}

async fn set_replay_state(
    state: &AppState,
    stream: &str,
    replay: &str,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(
        "update live_streams set replay_state = $1, replay_reason = $2, updated_at = $3 where id = $4",
    )
    .bind(replay)
    .bind(reason)
    .bind(to_ms(Utc::now()))
    .bind(stream)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// Puts the made files where replays are kept.
async fn store(state: &AppState, files: &[(&str, &std::path::Path)]) -> anyhow::Result<()> {
    for (name, path) in files {
        state.settings.storage.put(name, path).await?;
    }
    Ok(())
}

struct Made {
    duration_s: f64,
}

async fn process(state: &AppState, upload: &str, stream: &str) {
    let source = crate::uploads::upload_path(state, upload);
    let dir = state.settings.replays_work_dir();
    let (mp4_name, jpg_name) = (format!("{stream}.mp4"), format!("{stream}.jpg"));
    let (mp4, jpg) = (dir.join(&mp4_name), dir.join(&jpg_name));
    let started = std::time::Instant::now();
    let made = {
        let (source, mp4, jpg) = (source.clone(), mp4.clone(), jpg.clone());
        tokio::task::spawn_blocking(move || make(&source, &mp4, &jpg)).await
    };
    let made = match made {
        Ok(r) => r,
        Err(e) => Err(format!("processing stopped unexpectedly ({e})")),
    };
    let outcome = match made {
        Ok(made) => store(state, &[(&mp4_name, &mp4), (&jpg_name, &jpg)])
            .await
            .map_err(|e| {
                tracing::error!(stream, storage = %state.settings.storage.describe(), "could not store the replay: {e:#}");
                "the replay was made but could not be stored; upload it again".to_owned()
            })
            .and(Ok(made)),
        Err(reason) => Err(reason),
    };
    let outcome = match outcome {
        Ok(made) => finish(state, upload, stream, &made).await.map_err(|e| {
            tracing::error!(stream, "could not record the replay: {e:#}");
            "the replay was made but could not be recorded; upload it again".to_owned()
        }),
        Err(reason) => Err(reason),
    };
    match outcome {
        Ok(()) => {
            tracing::info!(
                stream,
                upload,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replay ready"
            );
            let _ = tokio::fs::remove_file(&source).await;
        }
        Err(reason) => {
            tracing::warn!(stream, upload, "replay failed: {reason}");
            // The reason is public (the show's page): it names no file of the server.
            let reason = without_paths(
                &reason,
                &[
                    (&source, "the upload"),
                    (&mp4.with_extension("mp4.part"), "the replay"),
                    (&mp4, "the replay"),
                    (&jpg, "the thumbnail"),
                ],
            );
            let _ = tokio::fs::remove_file(&source).await;
            let _ = tokio::fs::remove_file(&mp4).await;
            let _ = tokio::fs::remove_file(&jpg).await;
            state.settings.storage.delete(&mp4_name).await;
            state.settings.storage.delete(&jpg_name).await;
            let _ = sqlx::query("update uploads set state = $1, updated_at = $2 where id = $3")
                .bind(FAILED)
                .bind(to_ms(Utc::now()))
                .bind(upload)
                .execute(&state.db.pool)
                .await;
            if let Err(e) = set_replay_state(state, stream, "failed", Some(&reason)).await {
                tracing::error!(stream, "could not record a failed replay: {e:#}");
            }
        }
    }
}

/// `reason` with each of `paths` said in words (the first of two that overlap first).
fn without_paths(reason: &str, paths: &[(&std::path::Path, &str)]) -> String {
    paths
        .iter()
        .fold(reason.to_owned(), |reason, (path, words)| {
            reason.replace(&path.display().to_string(), words)
        })
}

/// Checks, remuxes and thumbnails an upload; the error is the reason a seller sees.
fn make(
    source: &std::path::Path,
    mp4: &std::path::Path,
    jpg: &std::path::Path,
) -> Result<Made, String> {
    let info = live_media::inspect(source).map_err(|e| format!("the upload is {e}"))?;
    if let Some(dir) = mp4.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("no room for replays: {e}"))?;
    }
    let partial = mp4.with_extension("mp4.part");
    live_media::remux(source, info.container, info.has_audio, &partial)
        .map_err(|e| e.to_string())?;
    std::fs::rename(&partial, mp4).map_err(|e| e.to_string())?;
    live_media::thumbnail(mp4, jpg).map_err(|e| e.to_string())?;
    // A recording written while live carries no duration of its own; the MP4 does.
    let made = live_media::inspect(mp4).map_err(|e| format!("the remuxed replay is {e}"))?;
    Ok(Made {
        duration_s: made.duration.as_secs_f64(),
    })
}

async fn finish(state: &AppState, upload: &str, stream: &str, made: &Made) -> anyhow::Result<()> {
    let base = &state.settings.public_base;
    let mut tx = state.db.pool.begin().await?;
    sqlx::query(
        "update saved_streams set video_url = $1, thumbnail_url = $2, duration = $3 \
         where stream_id = $4",
    )
    .bind(format!("{base}/media/replays/{stream}.mp4"))
    .bind(format!("{base}/media/replays/{stream}.jpg"))
    .bind(made.duration_s)
    .bind(stream)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update live_streams set replay_state = 'ready', replay_reason = null, updated_at = $1 \
         where id = $2",
    )
    .bind(to_ms(Utc::now()))
    .bind(stream)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update uploads set state = $1, updated_at = $2 where id = $3")
        .bind(DONE)
        .bind(to_ms(Utc::now()))
        .bind(upload)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    // Pages listing recent replays update their card.
    if let Some(row) = store::load(state, stream).await? {
        crate::events::stream_changed(state, &row).await;
    }
    Ok(())
}

/// Reads a saved show's replay: its files once ready, or where its processing stands.
#[utoipa::path(
    get, path = "/api/streams/{id}/replay", tag = "streams", params(crate::api::doc::ShowPath),
    responses(
        (status = 200, description = "The replay", body = Replay),
        (status = 401, description = "A seller token that is not valid (none is needed)", body = live_core::api::ErrorBody),
        (status = 404, description = "No such show, or it has no replay", body = live_core::api::ErrorBody),
    ),
)]
pub async fn get_replay(
    State(state): State<AppState>,
    seller: crate::auth::MaybeSeller,
    Path(crate::api::doc::ShowPath { id }): Path<crate::api::doc::ShowPath>,
) -> Result<Json<Replay>, ApiError> {
    let row = store::load_visible(&state, &id, seller.0.as_ref()).await?;
    let view = row.view(&state.settings, seller.0.as_ref(), Utc::now())?;
    view.replay
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("this show has no replay".into()))
}

/// Counts a view when a player starts a replay from the top (a GET without a range,
/// or from byte 0, answered with the file or a redirect to it); seeks, resumed
/// buffering and HEAD requests are not views.
async fn count_view(state: &AppState, name: &str, starts: bool, status: axum::http::StatusCode) {
    let served = status.is_success() || status == axum::http::StatusCode::TEMPORARY_REDIRECT;
    let Some(stream) = name.strip_suffix(".mp4") else {
        return;
    };
    if !(starts && served) {
        return;
    }
    let counted =
        sqlx::query("update saved_streams set views_count = views_count + 1 where stream_id = $1")
            .bind(stream)
            .execute(&state.db.pool)
            .await;
    if let Err(e) = counted {
        tracing::warn!(stream, "could not count a replay view: {e}");
    }
}

/// A replay's file: `<show id>.mp4` or `<show id>.jpg`, nothing else of the folder.
fn replay_file_name(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    let ours = !stem.is_empty()
        && stem.len() <= 64
        && stem.bytes().all(|b| b.is_ascii_alphanumeric())
        && matches!(ext, "mp4" | "jpg");
    ours.then_some(name)
}

/// A saved replay's video (`<show id>.mp4`) or picture (`<show id>.jpg`), from
/// `replay.video_url` and `replay.thumbnail_url`. Range requests are answered (206):
/// players seek without fetching the whole file. Only a request from the start (no
/// `Range`, or `bytes=0-`) counts as a view. With object storage the answer is a
/// redirect to a signed URL of the object store.
#[utoipa::path(
    get, path = "/media/replays/{name}", tag = "replays",
    params(
        ("name" = String, Path, description = "`<show id>.mp4` (the replay) or `<show id>.jpg` (its picture)"),
        ("Range" = Option<String>, Header, description = "`bytes=START-END`: part of the file"),
    ),
    responses(
        (status = 200, description = "The whole file", content(
            (crate::api::doc::Binary = "video/mp4"), (crate::api::doc::Binary = "image/jpeg"),
        ), headers(
            ("Accept-Ranges" = String, description = "`bytes`"),
            ("Content-Length" = u64),
            ("Last-Modified" = String),
        )),
        (status = 206, description = "The part asked for with `Range`", content(
            (crate::api::doc::Binary = "video/mp4"), (crate::api::doc::Binary = "image/jpeg"),
        ), headers(
            ("Content-Range" = String, description = "`bytes START-END/SIZE`"),
            ("Content-Length" = u64),
        )),
        (status = 304, description = "Not modified since `If-Modified-Since`"),
        (status = 307, description = "Kept in object storage: fetch it from `Location`, a signed URL valid for a while", headers(
            ("Location" = String, description = "The signed URL"),
        )),
        (status = 404, description = "No such replay file"),
        (status = 416, description = "The range is outside the file", headers(
            ("Content-Range" = String, description = "`bytes */SIZE`"),
        )),
        (status = 503, description = "The object store cannot be reached to sign a URL; try again later"),
    ),
)]
async fn replay_file(
    State(state): State<AppState>,
    Path(ReplayFile { name }): Path<ReplayFile>,
    req: Request,
) -> Response {
    let Some(name) = replay_file_name(&name) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let starts = req.method() == axum::http::Method::GET
        && req
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|r| r.trim() == "bytes=0-");
    let response = match &state.settings.storage {
        crate::storage::Storage::Local(dir) => {
            use tower::ServiceExt;
            match tower_http::services::ServeFile::new(dir.join(name))
                .oneshot(req)
                .await
            {
                Ok(r) => r.into_response(),
                Err(never) => match never {},
            }
        }
        crate::storage::Storage::S3 { .. } => match state.settings.storage.redirect(name).await {
            Some(r) => r,
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        },
    };
    count_view(&state, name, starts, response.status()).await;
    response
}

#[derive(serde::Deserialize)]
struct ReplayFile {
    name: String,
}

/// `/media/replays/<id>.mp4` and `.jpg`, and their part of the OpenAPI document.
pub fn media_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(replay_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_replays_video_and_picture_are_served_from_the_folder() {
        assert_eq!(replay_file_name("01abc.mp4"), Some("01abc.mp4"));
        assert_eq!(replay_file_name("01abc.jpg"), Some("01abc.jpg"));
        for name in [
            "01abc.mp4.part",
            "../feza.db",
            ".mp4",
            "01abc",
            "a/b.mp4",
            "01abc.MP4",
            "x.db",
        ] {
            assert_eq!(replay_file_name(name), None, "{name}");
        }
    }
    use std::path::Path;

    #[test]
    fn a_failed_replays_reason_names_no_file_of_the_server() {
        let (upload, mp4) = (
            Path::new("/srv/feza/uploads/u1"),
            Path::new("/srv/feza/replays/s1.mp4"),
        );
        let reason = "the recording could not be finished: remuxing /srv/feza/uploads/u1 failed: \
                      Could not open file \"/srv/feza/replays/s1.mp4.part\" for writing.";
        let said = without_paths(
            reason,
            &[
                (upload, "the upload"),
                (&mp4.with_extension("mp4.part"), "the replay"),
                (mp4, "the replay"),
            ],
        );
        assert_eq!(
            said,
            "the recording could not be finished: remuxing the upload failed: \
             Could not open file \"the replay\" for writing."
        );
    }
}
