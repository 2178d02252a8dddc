//! The parts of the OpenAPI document that operations share: the path parameters they
//! are called with (also what their handlers extract, so the document and the routes
//! cannot name them differently) and the error responses they name by status.
//!
//! An operation lists each error status it can really answer, and only those: the
//! extractors it takes decide most of them (a seller or viewer token: 401; a JSON body:
//! 400, 413, 415; a show's id: 404), its own rules the rest (403, 409, 429).

use live_core::api::ErrorBody;
use serde::Deserialize;
use utoipa::{IntoParams, ToResponse};

/// `/api/streams/{id}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ShowPath {
    /// The show's id.
    pub id: String,
}

/// `/api/streams/{id}/viewers/{session_id}…`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The show's id.
    pub id: String,
    /// The viewing session's id, from joining.
    pub session_id: String,
}

/// `/api/streams/{id}/comments/{comment_id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommentPath {
    /// The show's id.
    pub id: String,
    /// The comment's id.
    pub comment_id: String,
}

/// A field, a query parameter or the JSON body is not valid; the message says which.
#[derive(ToResponse)]
#[response(description = "The request is not valid; the message says what to change")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct BadRequest(ErrorBody);

/// No token, or one that is not valid.
#[derive(ToResponse)]
#[response(description = "No valid `Authorization: Bearer <token>` for this operation")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct Unauthorized(ErrorBody);

/// Another seller's show, or a viewer the seller blocked.
#[derive(ToResponse)]
#[response(description = "Not allowed: another seller's show (`not_owner`), or a blocked viewer")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct Forbidden(ErrorBody);

#[derive(ToResponse)]
#[response(description = "No such show (or not public and not yours), or no such item of it")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct NotFound(ErrorBody);

#[derive(ToResponse)]
#[response(description = "Not in the show's current status; the message names it")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct Conflict(ErrorBody);

#[derive(ToResponse)]
#[response(description = "The body is larger than the server reads (64 KiB)")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct TooLarge(ErrorBody);

#[derive(ToResponse)]
#[response(description = "The body is not sent as `Content-Type: application/json`")]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct UnsupportedMediaType(ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "Too many requests from this viewer or address; wait `Retry-After` seconds",
    headers(("Retry-After" = u64, description = "Seconds to wait before trying again")),
)]
#[expect(
    dead_code,
    reason = "a response of the OpenAPI document; the body is an ErrorBody"
)]
pub struct RateLimited(ErrorBody);

/// The bytes of a file: a replay's video or picture, a recording's next part.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("application/octet-stream")
            .description(Some("Bytes"))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}
