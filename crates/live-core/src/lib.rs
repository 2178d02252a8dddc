//! Feza Live's domain: the lifecycle of a show, input validation and the types of the
//! HTTP API shared by the server and its clients. No I/O lives here.

pub mod api;
pub mod lifecycle;
pub mod validate;

pub use lifecycle::{
    EndReason, IngestState, Lifecycle, Outcome, Policy, StreamStatus, Transition, TransitionError,
};
