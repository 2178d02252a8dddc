//! Replay uploads over tus 1.0.0 (core, creation, creation-defer-length, termination,
//! checksum, expiration) at `/api/uploads`. An upload belongs to one of the seller's own
//! shows while it is live (progressive upload during the show), archived, or ended with
//! its ingest lost (still savable). The bytes go to `<data dir>/uploads/<id>`; the
//! database holds the state. The file's length is the offset: bytes written are bytes
//! received, so a server killed mid-request resumes from what reached the disk.
//!
//! tus answers with its own statuses and headers (`Tus-Resumable` on every response);
//! errors carry a plain-text reason.

use crate::auth::Seller;
use crate::db::{from_ms, new_id, to_ms};
use crate::state::AppState;
use crate::store;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use live_core::{EndReason, StreamStatus};
use serde::Deserialize;
use sha1::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-defer-length,termination,checksum,expiration";
const CHECKSUMS: &str = "sha1,sha256";

/// The states of an upload row.
pub mod upload_state {
    pub const RECEIVING: &str = "receiving";
    pub const COMPLETE: &str = "complete";
    pub const PROCESSING: &str = "processing";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
    pub const TERMINATED: &str = "terminated";
}
use upload_state::*;

/// A tus error: a status, a reason in plain text, tus's headers.
#[derive(Debug)]
pub struct TusError {
    status: StatusCode,
    message: String,
    offset: Option<u64>,
}

impl TusError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            offset: None,
        }
    }

    fn checksum_mismatch() -> Self {
        Self::new(
            StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            "checksum mismatch: the bytes were not stored; send them again",
        )
    }
}

impl From<crate::error::ApiError> for TusError {
    fn from(e: crate::error::ApiError) -> Self {
        let status = e.status_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("upload failed: {e:?}");
        }
        Self::new(status, e.to_string())
    }
}

impl From<sqlx::Error> for TusError {
    fn from(e: sqlx::Error) -> Self {
        crate::error::ApiError::from(e).into()
    }
}

impl From<std::io::Error> for TusError {
    fn from(e: std::io::Error) -> Self {
        tracing::error!("upload storage failed: {e}");
        let status = if e.kind() == std::io::ErrorKind::StorageFull {
            StatusCode::INSUFFICIENT_STORAGE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self::new(
            status,
            "the server could not store the upload; try again later",
        )
    }
}

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.message).into_response();
        let h = r.headers_mut();
        h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
        // A refused request's body may be unread: the connection cannot be reused.
        h.insert("connection", HeaderValue::from_static("close"));
        h.insert("cache-control", HeaderValue::from_static("no-store"));
        if let Some(o) = self.offset {
            h.insert("upload-offset", HeaderValue::from(o));
        }
        r
    }
}

type TusResult = Result<Response, TusError>;

/// Serializes requests per upload: two PATCHes to one upload never interleave.
#[derive(Clone, Default)]
pub struct UploadLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl UploadLocks {
    fn get(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget locks nobody holds, so the map does not grow forever.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(id.to_owned()).or_default().clone()
    }
}

/// The tus routes and their part of the OpenAPI document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, options))
        .routes(routes!(status, append, terminate, options_upload))
}

/// A tus refusal: its reason in plain text, with `Tus-Resumable`.
#[derive(ToResponse)]
#[response(
    description = "Refused; the reason in plain text says what to do",
    headers(("Tus-Resumable" = String, description = "1.0.0")),
)]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is the reason"
)]
pub struct TusRefused(String);

/// What this tus server supports (`OPTIONS`), in headers.
#[derive(ToResponse)]
#[response(
    description = "What this tus server supports",
    headers(
        ("Tus-Resumable" = String, description = "1.0.0"),
        ("Tus-Version" = String, description = "1.0.0"),
        ("Tus-Extension" = String, description = "creation,creation-defer-length,termination,checksum,expiration"),
        ("Tus-Checksum-Algorithm" = String, description = "sha1,sha256"),
        ("Tus-Max-Size" = u64, description = "The largest upload accepted, in bytes"),
    ),
)]
pub struct TusCapabilities;

/// The upload named in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UploadPath {
    /// The upload's id, the last part of its `Location`.
    pub id: String,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Every request but OPTIONS names the protocol version it speaks.
fn check_version(h: &HeaderMap) -> Result<(), TusError> {
    match header(h, "tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => {
            let mut e = TusError::new(
                StatusCode::PRECONDITION_FAILED,
                "send `Tus-Resumable: 1.0.0`: this server speaks tus 1.0.0",
            );
            e.offset = None;
            Err(e)
        }
    }
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn tus_headers(mut r: Response, pairs: &[(&'static str, String)]) -> Response {
    let h = r.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
    r
}

/// What this tus server supports.
#[utoipa::path(
    options, path = "/api/uploads", tag = "uploads",
    responses((status = 204, response = TusCapabilities)),
)]
async fn options(state: State<AppState>) -> Response {
    capabilities(state).await
}

/// What this tus server supports (as `OPTIONS /api/uploads`).
#[utoipa::path(
    options, path = "/api/uploads/{id}", tag = "uploads", params(UploadPath),
    responses((status = 204, response = TusCapabilities)),
)]
async fn options_upload(state: State<AppState>) -> Response {
    capabilities(state).await
}

async fn capabilities(State(state): State<AppState>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(EXTENSIONS));
    h.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(CHECKSUMS),
    );
    h.insert(
        "tus-max-size",
        HeaderValue::from(state.settings.upload_max_bytes),
    );
    r
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn parse_metadata(raw: &str) -> Result<HashMap<String, String>, TusError> {
    let bad = || {
        TusError::new(
            StatusCode::BAD_REQUEST,
            "Upload-Metadata must be comma-separated `key base64(value)` pairs",
        )
    };
    let mut out = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, B64.decode(v.trim()).map_err(|_| bad())?),
            None => (pair, Vec::new()),
        };
        let value = String::from_utf8(value).map_err(|_| bad())?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

fn parse_u64(h: &HeaderMap, name: &str) -> Result<Option<u64>, TusError> {
    header(h, name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                TusError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be a non-negative integer"),
                )
            })
        })
        .transpose()
}

/// Whether a show of this status may receive its replay's bytes.
fn accepts_upload(status: StreamStatus, end_reason: Option<EndReason>) -> bool {
    match status {
        StreamStatus::Live | StreamStatus::Archived => true,
        StreamStatus::Ended => end_reason == Some(EndReason::IngestLost),
        _ => false,
    }
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    id: String,
    stream_id: String,
    vendor_id: String,
    upload_length: Option<i64>,
    metadata: String,
    state: String,
    expires_at: i64,
}

async fn load(state: &AppState, id: &str) -> Result<UploadRow, TusError> {
    let row: Option<UploadRow> = sqlx::query_as(
        "select id, stream_id, vendor_id, upload_length, metadata, state, expires_at \
         from uploads where id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?;
    match row {
        Some(r) if r.state != TERMINATED => Ok(r),
        _ => Err(TusError::new(StatusCode::NOT_FOUND, "no such upload")),
    }
}

/// The seller's own upload, not expired.
async fn load_owned(state: &AppState, id: &str, seller: &Seller) -> Result<UploadRow, TusError> {
    let row = load(state, id).await?;
    if row.vendor_id != seller.id {
        return Err(TusError::new(
            StatusCode::FORBIDDEN,
            "this upload belongs to another seller",
        ));
    }
    if row.state == RECEIVING && row.expires_at < to_ms(Utc::now()) {
        return Err(TusError::new(
            StatusCode::GONE,
            "this upload expired unfinished; start a new one",
        ));
    }
    Ok(row)
}

fn path_of(state: &AppState, id: &str) -> std::path::PathBuf {
    state.settings.uploads_dir().join(id)
}

/// Bytes received so far: what is on disk.
async fn offset_of(state: &AppState, id: &str) -> Result<u64, TusError> {
    match tokio::fs::metadata(path_of(state, id)).await {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Starts a replay upload (tus creation) for one of the seller's own shows.
///
/// Refusals: 400 a header missing or not valid; 403 another seller's show; 404 no such
/// show; 409 the show takes no replay now (neither live nor saved); 412 no
/// `Tus-Resumable: 1.0.0`; 413 larger than `Tus-Max-Size`; 507 the server's disk is full.
#[utoipa::path(
    post, path = "/api/uploads", tag = "uploads",
    params(
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Length" = Option<u64>, Header, description = "The recording's size in bytes; or send `Upload-Defer-Length: 1`"),
        ("Upload-Defer-Length" = Option<String>, Header, description = "`1`: the size is given later (a recording still growing)"),
        ("Upload-Metadata" = String, Header, description = "`stream_id <base64 of the show's id>`, from the end call's `upload.metadata`"),
    ),
    responses(
        (status = 201, description = "Created: send the bytes to `Location` with PATCH", headers(
            ("Location" = String, description = "The upload's URL"),
            ("Upload-Expires" = String, description = "When an unfinished upload is dropped (HTTP date)"),
            ("Tus-Resumable" = String, description = "1.0.0"),
        )),
        (status = 400, response = TusRefused),
        (status = 401, response = crate::api::doc::Unauthorized),
        (status = 403, response = TusRefused),
        (status = 404, response = TusRefused),
        (status = 409, response = TusRefused),
        (status = 412, response = TusRefused),
        (status = 413, response = TusRefused),
        (status = 507, response = TusRefused),
    ),
    security(("seller" = [])),
)]
async fn create(State(state): State<AppState>, seller: Seller, headers: HeaderMap) -> TusResult {
    check_version(&headers)?;
    let length = parse_u64(&headers, "upload-length")?;
    let deferred = header(&headers, "upload-defer-length") == Some("1");
    if length.is_none() && !deferred {
        return Err(TusError::new(
            StatusCode::BAD_REQUEST,
            "send Upload-Length, or Upload-Defer-Length: 1 to give it later",
        ));
    }
    let max = state.settings.upload_max_bytes;
    if length.is_some_and(|l| l > max) {
        return Err(TusError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is larger than this server accepts ({max} bytes)"),
        ));
    }
    let raw_meta = header(&headers, "upload-metadata").unwrap_or("");
    let meta = parse_metadata(raw_meta)?;
    let stream_id = meta.get("stream_id").ok_or_else(|| {
        TusError::new(
            StatusCode::BAD_REQUEST,
            "name the show in Upload-Metadata: `stream_id <base64 id>`",
        )
    })?;
    let row = store::load_owned(&state, stream_id, &seller).await?;
    let lc = row
        .lifecycle()
        .map_err(crate::error::ApiError::from)?
        .settle(Utc::now(), &state.settings.policy);
    if !accepts_upload(lc.status(), lc.end_reason()) {
        return Err(TusError::new(
            StatusCode::CONFLICT,
            format!(
                "this show is {}: a replay can be uploaded while it is live or once it is saved",
                lc.status()
            ),
        ));
    }
    let now = Utc::now();
    let id = new_id();
    let expires = now + state.settings.upload_expiry;
    tokio::fs::create_dir_all(state.settings.uploads_dir()).await?;
    tokio::fs::File::create(path_of(&state, &id)).await?;
    let mut tx = state.db.pool.begin().await?;
    // One upload per show: a new one replaces any unfinished one (a client that lost
    // its upload URL starts over rather than being stuck).
    let replaced: Vec<(String,)> = sqlx::query_as(
        "update uploads set state = $1, updated_at = $2 where stream_id = $3 and state = $4 \
         returning id",
    )
    .bind(TERMINATED)
    .bind(to_ms(now))
    .bind(&row.id)
    .bind(RECEIVING)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "insert into uploads (id, stream_id, vendor_id, upload_length, upload_offset, metadata, \
         state, created_at, updated_at, expires_at) values ($1, $2, $3, $4, 0, $5, $6, $7, $7, $8)",
    )
    .bind(&id)
    .bind(&row.id)
    .bind(&seller.id)
    .bind(length.map(|l| l as i64))
    .bind(raw_meta)
    .bind(RECEIVING)
    .bind(to_ms(now))
    .bind(to_ms(expires))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for (old,) in replaced {
        let _ = tokio::fs::remove_file(path_of(&state, &old)).await;
    }
    tracing::info!(upload = %id, stream = %row.id, length = ?length, "upload created");
    let location = format!("/api/uploads/{id}");
    let r = StatusCode::CREATED.into_response();
    Ok(tus_headers(
        r,
        &[
            ("location", location),
            ("upload-expires", http_date(expires)),
        ],
    ))
}

/// Where an upload stands (tus HEAD): resume from `Upload-Offset`.
///
/// Refusals: 403 another seller's upload; 404 no such upload; 410 it expired
/// unfinished; 412 no `Tus-Resumable: 1.0.0`.
#[utoipa::path(
    head, path = "/api/uploads/{id}", tag = "uploads",
    params(UploadPath, ("Tus-Resumable" = String, Header, description = "`1.0.0`")),
    responses(
        (status = 200, description = "The upload's state, in headers", headers(
            ("Upload-Offset" = u64, description = "Bytes received: send the rest from here"),
            ("Upload-Length" = u64, description = "The whole size, once known"),
            ("Upload-Defer-Length" = String, description = "`1` while the size is not known yet"),
            ("Upload-Metadata" = String, description = "As sent on creation"),
            ("Upload-Expires" = String, description = "When it is dropped if left unfinished (HTTP date)"),
            ("Tus-Resumable" = String, description = "1.0.0"),
        )),
        (status = 400, response = TusRefused),
        (status = 401, response = crate::api::doc::Unauthorized),
        (status = 403, response = TusRefused), (status = 404, response = TusRefused),
        (status = 410, response = TusRefused), (status = 412, response = TusRefused),
    ),
    security(("seller" = [])),
)]
async fn status(
    State(state): State<AppState>,
    seller: Seller,
    Path(UploadPath { id }): Path<UploadPath>,
    headers: HeaderMap,
) -> TusResult {
    check_version(&headers)?;
    let row = load_owned(&state, &id, &seller).await?;
    let offset = offset_of(&state, &id).await?;
    let mut pairs = vec![
        ("upload-offset", offset.to_string()),
        ("upload-expires", http_date(from_ms(row.expires_at))),
    ];
    match row.upload_length {
        Some(l) => pairs.push(("upload-length", l.to_string())),
        None => pairs.push(("upload-defer-length", "1".into())),
    }
    if !row.metadata.is_empty() {
        pairs.push(("upload-metadata", row.metadata.clone()));
    }
    Ok(tus_headers(StatusCode::OK.into_response(), &pairs))
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
enum Checksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

fn parse_checksum(h: &HeaderMap) -> Result<Option<Checksum>, TusError> {
    let Some(raw) = header(h, "upload-checksum") else {
        return Ok(None);
    };
    let bad = |m: &str| TusError::new(StatusCode::BAD_REQUEST, m.to_owned());
    let (algo, digest) = raw
        .split_once(' ')
        .ok_or_else(|| bad("Upload-Checksum must be `<algorithm> <base64 digest>`"))?;
    let digest = B64
        .decode(digest.trim())
        .map_err(|_| bad("the Upload-Checksum digest is not base64"))?;
    match algo {
        "sha1" => Ok(Some(Checksum::Sha1(digest))),
        "sha256" => Ok(Some(Checksum::Sha256(digest))),
        _ => Err(bad("Upload-Checksum algorithm must be sha1 or sha256")),
    }
}

/// Appends bytes at `Upload-Offset` (tus PATCH). What reached the server before a
/// broken connection is kept: ask HEAD and resume from there.
///
/// Refusals: 400 a header missing or not valid, or the body broke off before its
/// checksum could be verified; 403 another seller's upload, or one already complete;
/// 404 no such upload; 409 `Upload-Offset` is not where the upload is (the answer's
/// `Upload-Offset` says where); 410 it expired unfinished; 412 no `Tus-Resumable:
/// 1.0.0`; 413 more bytes than the upload has room for; 415 not sent as
/// `application/offset+octet-stream`; 460 the bytes do not match `Upload-Checksum` (none
/// of them were kept); 507 the server's disk is full.
#[utoipa::path(
    patch, path = "/api/uploads/{id}", tag = "uploads",
    params(
        UploadPath,
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start: the upload's current offset"),
        ("Upload-Length" = Option<u64>, Header, description = "The whole size, if it was deferred and is known now"),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 <base64 digest>` or `sha256 <base64 digest>` of this request's bytes"),
    ),
    request_body(content = crate::api::doc::Binary, content_type = "application/offset+octet-stream", description = "The next bytes of the recording"),
    responses(
        (status = 204, description = "Stored", headers(
            ("Upload-Offset" = u64, description = "Bytes received now"),
            ("Upload-Expires" = String, description = "When it is dropped if left unfinished (HTTP date)"),
            ("Tus-Resumable" = String, description = "1.0.0"),
        )),
        (status = 400, response = TusRefused),
        (status = 401, response = crate::api::doc::Unauthorized),
        (status = 403, response = TusRefused), (status = 404, response = TusRefused),
        (status = 409, response = TusRefused), (status = 410, response = TusRefused),
        (status = 412, response = TusRefused), (status = 413, response = TusRefused),
        (status = 415, response = TusRefused), (status = 460, response = TusRefused),
        (status = 507, response = TusRefused),
    ),
    security(("seller" = [])),
)]
async fn append(
    State(state): State<AppState>,
    seller: Seller,
    Path(UploadPath { id }): Path<UploadPath>,
    headers: HeaderMap,
    body: Body,
) -> TusResult {
    check_version(&headers)?;
    if header(&headers, "content-type") != Some("application/offset+octet-stream") {
        return Err(TusError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the bytes as Content-Type: application/offset+octet-stream",
        ));
    }
    let claimed = parse_u64(&headers, "upload-offset")?.ok_or_else(|| {
        TusError::new(
            StatusCode::BAD_REQUEST,
            "send Upload-Offset: where these bytes start",
        )
    })?;
    let checksum = parse_checksum(&headers)?;
    let new_length = parse_u64(&headers, "upload-length")?;
    let content_length = parse_u64(&headers, "content-length")?;

    let lock = state.uploads.get(&id);
    let _guard = lock.lock().await;
    let row = load_owned(&state, &id, &seller).await?;
    if row.state != RECEIVING {
        return Err(TusError::new(
            StatusCode::FORBIDDEN,
            "this upload is complete; it takes no more bytes",
        ));
    }
    let offset = offset_of(&state, &id).await?;
    if claimed != offset {
        let mut e = TusError::new(
            StatusCode::CONFLICT,
            format!("the upload is at offset {offset}, not {claimed}: resume from {offset}"),
        );
        e.offset = Some(offset);
        return Err(e);
    }
    let max = state.settings.upload_max_bytes;
    let length = match (row.upload_length, new_length) {
        (Some(l), Some(n)) if n as i64 != l => {
            return Err(TusError::new(
                StatusCode::BAD_REQUEST,
                format!("Upload-Length was already set to {l}"),
            ));
        }
        (Some(l), _) => Some(l as u64),
        (None, Some(n)) => {
            if n > max {
                return Err(TusError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the upload is larger than this server accepts ({max} bytes)"),
                ));
            }
            if n < offset {
                return Err(TusError::new(
                    StatusCode::BAD_REQUEST,
                    format!("Upload-Length {n} is below the {offset} bytes already received"),
                ));
            }
            sqlx::query("update uploads set upload_length = $1 where id = $2")
                .bind(n as i64)
                .bind(&id)
                .execute(&state.db.pool)
                .await?;
            Some(n)
        }
        (None, None) => None,
    };
    let limit = length.unwrap_or(max);
    // Refused before a byte is stored when the request says it is too long.
    if content_length.is_some_and(|c| offset + c > limit) {
        return Err(TusError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            match length {
                Some(l) => format!("these bytes would go past the upload's length ({l})"),
                None => format!("the upload would be larger than this server accepts ({max})"),
            },
        ));
    }
    let room = limit - offset;
    let written = match checksum {
        Some(sum) => write_checked(&state, &id, body, offset, room, sum).await?,
        None => write_streaming(&state, &id, body, room).await?,
    };
    let offset = offset + written;
    let now = Utc::now();
    let expires = now + state.settings.upload_expiry;
    let complete = length == Some(offset);
    if complete {
        tokio::fs::File::open(path_of(&state, &id))
            .await?
            .sync_all()
            .await?;
    }
    sqlx::query(
        "update uploads set upload_offset = $1, updated_at = $2, expires_at = $3, \
         state = case when $4 then $5 else state end where id = $6",
    )
    .bind(offset as i64)
    .bind(to_ms(now))
    .bind(to_ms(expires))
    .bind(complete)
    .bind(COMPLETE)
    .bind(&id)
    .execute(&state.db.pool)
    .await?;
    if complete {
        tracing::info!(upload = %id, stream = %row.stream_id, bytes = offset, "upload complete");
        crate::replays::kick(&state);
    }
    Ok(tus_headers(
        StatusCode::NO_CONTENT.into_response(),
        &[
            ("upload-offset", offset.to_string()),
            ("upload-expires", http_date(expires)),
        ],
    ))
}

fn too_large(room: u64) -> TusError {
    TusError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("more bytes than the upload has room for ({room} left)"),
    )
}

/// Appends the body as it arrives; what arrived before a broken connection is kept.
async fn write_streaming(
    state: &AppState,
    id: &str,
    body: Body,
    room: u64,
) -> Result<u64, TusError> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path_of(state, id))
        .await?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let mut failure = None;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            // The client went away: keep what arrived, it resumes from there.
            Err(e) => {
                tracing::info!(upload = %id, "upload request broken off after {written} bytes: {e}");
                break;
            }
        };
        if written + chunk.len() as u64 > room {
            let fits = (room - written) as usize;
            file.write_all(&chunk[..fits]).await?;
            written += fits as u64;
            failure = Some(too_large(room));
            break;
        }
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    // No fsync per request: after a crash the file's length is what survived, and
    // that is the offset a client resumes from. The complete upload is synced once.
    file.flush().await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// Appends the body while hashing it; a digest that does not match (or a body that
/// breaks off) takes the file back to where it was, so nothing unverified is kept.
async fn write_checked(
    state: &AppState,
    id: &str,
    body: Body,
    start: u64,
    room: u64,
    sum: Checksum,
) -> Result<u64, TusError> {
    enum Hasher {
        Sha1(sha1::Sha1),
        Sha256(sha2::Sha256),
    }
    let (mut hasher, expected) = match sum {
        Checksum::Sha1(d) => (Hasher::Sha1(sha1::Sha1::new()), d),
        Checksum::Sha256(d) => (Hasher::Sha256(sha2::Sha256::new()), d),
    };
    let path = path_of(state, id);
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await?;
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let failure = loop {
        let Some(chunk) = stream.next().await else {
            break None;
        };
        let Ok(chunk) = chunk else {
            break Some(TusError::new(
                StatusCode::BAD_REQUEST,
                "the request broke off before its bytes could be verified; send them again",
            ));
        };
        if written + chunk.len() as u64 > room {
            break Some(too_large(room));
        }
        match &mut hasher {
            Hasher::Sha1(h) => h.update(&chunk),
            Hasher::Sha256(h) => h.update(&chunk),
        }
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    };
    file.flush().await?;
    let failure = failure.or_else(|| {
        let digest = match hasher {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        };
        (digest != expected).then(TusError::checksum_mismatch)
    });
    match failure {
        Some(e) => {
            file.set_len(start).await?;
            Err(e)
        }
        None => Ok(written),
    }
}

/// Drops an upload and its bytes (tus termination).
///
/// Refusals: 403 another seller's upload; 404 no such upload; 410 it expired
/// unfinished; 412 no `Tus-Resumable: 1.0.0`.
#[utoipa::path(
    delete, path = "/api/uploads/{id}", tag = "uploads",
    params(UploadPath, ("Tus-Resumable" = String, Header, description = "`1.0.0`")),
    responses(
        (status = 204, description = "Dropped", headers(("Tus-Resumable" = String, description = "1.0.0"))),
        (status = 400, response = TusRefused),
        (status = 401, response = crate::api::doc::Unauthorized),
        (status = 403, response = TusRefused), (status = 404, response = TusRefused),
        (status = 410, response = TusRefused), (status = 412, response = TusRefused),
    ),
    security(("seller" = [])),
)]
async fn terminate(
    State(state): State<AppState>,
    seller: Seller,
    Path(UploadPath { id }): Path<UploadPath>,
    headers: HeaderMap,
) -> TusResult {
    check_version(&headers)?;
    let lock = state.uploads.get(&id);
    let _guard = lock.lock().await;
    let row = load_owned(&state, &id, &seller).await?;
    terminate_row(&state, &row.id).await?;
    tracing::info!(upload = %id, stream = %row.stream_id, "upload terminated");
    Ok(tus_headers(StatusCode::NO_CONTENT.into_response(), &[]))
}

async fn terminate_row(state: &AppState, id: &str) -> Result<(), TusError> {
    sqlx::query("update uploads set state = $1, updated_at = $2 where id = $3")
        .bind(TERMINATED)
        .bind(to_ms(Utc::now()))
        .bind(id)
        .execute(&state.db.pool)
        .await?;
    match tokio::fs::remove_file(path_of(state, id)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// A discarded show: its uploads (and their bytes) are gone too.
pub async fn terminate_for_stream(state: &AppState, stream_id: &str) -> anyhow::Result<()> {
    let ids: Vec<(String,)> =
        sqlx::query_as("select id from uploads where stream_id = $1 and state <> $2")
            .bind(stream_id)
            .bind(TERMINATED)
            .fetch_all(&state.db.pool)
            .await?;
    for (id,) in ids {
        terminate_row(state, &id)
            .await
            .map_err(|e| anyhow::anyhow!("could not terminate upload {id}: {}", e.message))?;
    }
    Ok(())
}

/// The URL of a show's unfinished upload, if one runs (progressive upload).
pub async fn running_for_stream(
    state: &AppState,
    stream_id: &str,
) -> anyhow::Result<Option<String>> {
    let id: Option<(String,)> = sqlx::query_as(
        "select id from uploads where stream_id = $1 and state = $2 order by created_at desc limit 1",
    )
    .bind(stream_id)
    .bind(RECEIVING)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(id.map(|(id,)| format!("/api/uploads/{id}")))
}

/// Unfinished uploads whose expiry passed: terminated, bytes deleted.
pub async fn expire(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let ids: Vec<(String,)> =
        sqlx::query_as("select id from uploads where state = $1 and expires_at < $2")
            .bind(RECEIVING)
            .bind(to_ms(now))
            .fetch_all(&state.db.pool)
            .await?;
    for (id,) in &ids {
        tracing::info!(upload = %id, "upload expired unfinished");
        terminate_row(state, id)
            .await
            .map_err(|e| anyhow::anyhow!("could not expire upload {id}: {}", e.message))?;
    }
    // A saved show whose recording never came: its replay fails, it does not wait forever.
    let expiry = state.settings.upload_expiry;
    let given_up = sqlx::query(
        "update live_streams set replay_state = 'failed', replay_reason = $1, updated_at = $2          where status = 'archived' and replay_state = 'uploading' and ended_at < $3          and not exists (select 1 from uploads u where u.stream_id = live_streams.id          and u.state in ($4, $5, $6))",
    )
    .bind(format!(
        "the recording did not reach the server within {} hours of the end",
        expiry.num_hours()
    ))
    .bind(to_ms(now))
    .bind(to_ms(now - expiry))
    .bind(RECEIVING)
    .bind(COMPLETE)
    .bind(PROCESSING)
    .execute(&state.db.pool)
    .await?
    .rows_affected();
    if given_up > 0 {
        tracing::warn!(
            shows = given_up,
            "replays given up: their recordings never arrived"
        );
    }
    Ok(ids.len())
}

pub(crate) fn upload_path(state: &AppState, id: &str) -> std::path::PathBuf {
    path_of(state, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode() {
        let m = parse_metadata("stream_id YWJj, filename c2hvdy5ta3Y=,empty").unwrap();
        assert_eq!(m["stream_id"], "abc");
        assert_eq!(m["filename"], "show.mkv");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata("stream_id !!!").is_err());
    }

    #[test]
    fn only_live_saved_or_lost_shows_take_uploads() {
        assert!(accepts_upload(StreamStatus::Live, None));
        assert!(accepts_upload(StreamStatus::Archived, None));
        assert!(accepts_upload(
            StreamStatus::Ended,
            Some(EndReason::IngestLost)
        ));
        assert!(!accepts_upload(StreamStatus::Ended, None));
        assert!(!accepts_upload(StreamStatus::Scheduled, None));
        assert!(!accepts_upload(StreamStatus::Cancelled, None));
    }
}
