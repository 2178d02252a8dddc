//! The public page (DESIGN.md "Pages"): `/live` (Live Now, Upcoming, Recent) and
//! `/live/{id}` (one show, its `share_url`). Static files built into the binary, hls.js
//! included; the page talks to the API and its Server-Sent Events.

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = include_str!("../../../web/src/live.html");
const SCRIPT: &str = include_str!("../../../web/src/live.js");
const STYLE: &str = include_str!("../../../web/src/live.css");
const HLS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));

fn asset(body: impl IntoResponse, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn page() -> Response {
    let mut r = asset(PAGE, "text/html; charset=utf-8");
    // Scripts and styles only from here; media also from the ingest and object storage.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' http: https: data:; \
             media-src 'self' http: https: blob:; connect-src 'self' http: https:; worker-src 'self' blob:",
        ),
    );
    r
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/live", get(page))
        .route("/live/{id}", get(page))
        .route(
            "/live/assets/live.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/live/assets/live.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/live/assets/hls.min.js",
            get(|| async { asset(HLS, "text/javascript; charset=utf-8") }),
        )
}
