//! The broadcaster's application logic, shared by the desktop app and `live-cast`:
//! the API client, the show session (server lifecycle + media), and replay uploads
//! (tus client, persisted queue).

pub mod client;
pub mod credentials;
pub mod live_events;
pub mod queue;
pub mod session;
pub mod studio;
pub mod upload;

pub use client::{ApiClient, ClientError};
pub use session::{
    Alert, AlertKind, Control, GoLive, SessionError, SessionEvent, SessionReport, Show, Tick,
};
