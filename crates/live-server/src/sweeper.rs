//! Stores what time alone changes: a go-live whose key lapsed, a publisher gone silent,
//! a grace period over (the show then ends with `ingest_lost`). Reads settle these on
//! their own; the sweeper makes them durable and visible to every list query.
//! Also expires abandoned uploads. Idempotent, so several server instances may sweep
//! the same database.

use crate::state::AppState;
use crate::store::{self, IngestChange};
use std::time::Duration;

pub async fn run(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "sweep failed; will retry");
        }
    }
}

pub async fn sweep(state: &AppState) -> Result<(), crate::error::ApiError> {
    for id in store::ids_due(state, chrono::Utc::now()).await? {
        // One show that cannot be settled must not hold up the others.
        match store::apply(state, &id, None, IngestChange::default()).await {
            Ok(applied) if applied.after != applied.before => tracing::info!(
                stream = %id,
                status = %applied.after.status(),
                ingest = ?applied.after.ingest_state(),
                end_reason = ?applied.after.end_reason(),
                "show changed with time"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(stream = %id, error = %e, "could not settle a show"),
        }
    }
    // Uploads abandoned unfinished past their expiry: terminated, bytes deleted.
    crate::uploads::expire(state, chrono::Utc::now()).await?;
    Ok(())
}
