//! The broadcaster's application logic, shared by the desktop app and `live-cast`:
//! the API client and the show session (server lifecycle + media).

pub mod client;
pub mod session;

pub use client::{ApiClient, ClientError};
pub use session::{Control, GoLive, SessionError, SessionReport};
