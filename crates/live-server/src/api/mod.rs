//! The HTTP API of API.md, and its OpenAPI description generated from these handlers.

pub mod doc;
pub mod engagement;
pub mod streams;
pub mod viewers;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Feza Live API", description = "Live shopping: catalog, lifecycle, engagement."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "streams", description = "The catalog and the seller's lifecycle calls"),
        (name = "viewers", description = "Anonymous viewer identities"),
        (name = "engagement", description = "Watching, reactions, chat, shares, reminders; real-time events"),
        (name = "uploads", description = "Replay uploads over tus 1.0.0 (resumable)"),
        (name = "replays", description = "Saved replays' files"),
        (name = "service", description = "Health and this document"),
        (name = "internal", description = "Called by the ingest (nginx-rtmp) only, with the hook secret"),
    ),
    components(
        schemas(
            live_core::api::ErrorBody, live_core::api::ErrorDetail, crate::store::Section, doc::Binary,
        ),
        responses(
            doc::BadRequest, doc::Unauthorized, doc::Forbidden, doc::NotFound, doc::Conflict,
            doc::TooLarge, doc::UnsupportedMediaType, doc::RateLimited,
            crate::uploads::TusRefused, crate::uploads::TusCapabilities,
        ),
    ),
)]
struct ApiDoc;

/// Sellers and viewers send bearer tokens; the ingest sends the hook secret.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // The workspace names no license; an empty one is not a license.
        openapi.info.license = None;
        let components = openapi.components.get_or_insert_with(Default::default);
        for (scheme, who) in [
            (
                "seller",
                "A seller's token (`live-server admin create-seller`)",
            ),
            ("viewer", "A viewer's token (`POST /api/viewers`)"),
        ] {
            components.add_security_scheme(
                scheme,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(who))
                        .build(),
                ),
            );
        }
        components.add_security_scheme(
            "hook_secret",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "secret",
                "FEZA_HOOK_SECRET, in the hook URLs of the ingest's configuration",
            ))),
        );
        components.add_security_scheme(
            "hook_secret_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Feza-Hook-Secret",
                "FEZA_HOOK_SECRET, as a header (kept out of the ingest's logs)",
            ))),
        );
    }
}

/// The server is up.
#[utoipa::path(
    get, path = "/api/health", tag = "service",
    responses((status = 200, description = "Up", body = Health)),
)]
async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`.
    status: String,
}

/// This document (OpenAPI 3.1); `/api/docs` renders it.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)),
)]
async fn openapi_document() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::OPENAPI.as_str(),
    )
        .into_response()
}

/// The routes of everything the server answers but its pages, and the OpenAPI document
/// describing exactly them.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use streams::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_stream, list_streams))
        .routes(routes!(get_stream, patch_stream))
        .routes(routes!(start_stream))
        .routes(routes!(end_stream))
        .routes(routes!(cancel_stream))
        .routes(routes!(me))
        .routes(routes!(my_streams))
        .routes(routes!(crate::replays::get_replay))
        .routes(routes!(viewers::create_viewer))
        .routes(routes!(engagement::join))
        .routes(routes!(engagement::heartbeat))
        .routes(routes!(engagement::leave))
        .routes(routes!(engagement::react))
        .routes(routes!(engagement::comment, engagement::comments))
        .routes(routes!(engagement::delete_comment))
        .routes(routes!(engagement::block))
        .routes(routes!(engagement::share))
        .routes(routes!(engagement::remind, engagement::unremind))
        .routes(routes!(crate::events::stream_events))
        .routes(routes!(crate::events::catalog_events))
        .routes(routes!(health))
        .routes(routes!(openapi_document))
        // Uploads stream their bodies to storage: no in-memory body limit there.
        .merge(crate::uploads::router().layer(DefaultBodyLimit::disable()))
        .merge(crate::replays::media_router())
        .merge(crate::hooks::router())
        .split_for_parts()
}
