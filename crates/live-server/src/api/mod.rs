//! The HTTP API of API.md, and its OpenAPI description generated from these handlers.

pub mod engagement;
pub mod streams;
pub mod viewers;

use crate::state::AppState;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Feza Live API", description = "Live shopping: catalog, lifecycle, engagement."),
    modifiers(&BearerAuth),
    tags((name = "streams"), (name = "viewers"), (name = "engagement")),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for scheme in ["seller", "viewer"] {
            components.add_security_scheme(
                scheme,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The API routes and the OpenAPI document describing exactly them.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use streams::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_stream, list_streams))
        .routes(routes!(get_stream, patch_stream))
        .routes(routes!(start_stream))
        .routes(routes!(end_stream))
        .routes(routes!(cancel_stream))
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
        .split_for_parts()
}
