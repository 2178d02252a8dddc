//! The public pages. `/live` (Live Now, Upcoming, Recent) and `/live/{id}` (one show,
//! its `share_url`): the page talks to the API and its Server-Sent Events. `/api/docs`:
//! the API reference, rendering `/api/openapi.json`. Static files built into the
//! binary, their npm packages (hls.js, Swagger UI) included.

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = include_str!("../../../web/src/live.html");
const SCRIPT: &str = include_str!("../../../web/src/live.js");
const STYLE: &str = include_str!("../../../web/src/live.css");
const HLS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
const DOCS_PAGE: &str = include_str!("../../../web/src/api-docs.html");
const DOCS_SCRIPT: &str = include_str!("../../../web/src/api-docs.js");
const DOCS_STYLE: &str = include_str!("../../../web/src/api-docs.css");
const SWAGGER_UI: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js"));
const SWAGGER_UI_STYLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css"));

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

async fn docs_page() -> Response {
    let mut r = asset(DOCS_PAGE, "text/html; charset=utf-8");
    // Swagger UI sets style attributes and draws its icons from data: URLs.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'",
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
        .route("/api/docs", get(docs_page))
        .route(
            "/api/docs/assets/api-docs.js",
            get(|| async { asset(DOCS_SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/api/docs/assets/api-docs.css",
            get(|| async { asset(DOCS_STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/api/docs/assets/swagger-ui-bundle.js",
            get(|| async { asset(SWAGGER_UI, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/api/docs/assets/swagger-ui.css",
            get(|| async { asset(SWAGGER_UI_STYLE, "text/css; charset=utf-8") }),
        )
}
