//! The lifecycle of a show, as the server keeps it. Every transition is decided here,
//! in [`Lifecycle::apply`]; the server only loads, applies and stores.
//!
//! ```text
//! create ──► scheduled ──(go live; ingest confirms media)──► live
//!               │                                            │ end
//!               └── cancel ──► cancelled          ┌─ save ───┴─── discard ─┐
//!                                                 ▼                        ▼
//!                                            archived (replay)      ended (hidden)
//! ```
//!
//! Time-based rules (a go-live that waits too long, an ingest that never comes back)
//! are applied by [`Lifecycle::settle`], which every transition runs first, so a
//! lapsed state can never be acted upon even before a sweeper has stored it.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

pub type Timestamp = DateTime<Utc>;

/// The public status of a show (the marketplace's existing values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    Scheduled,
    Live,
    Ended,
    Archived,
    Cancelled,
}

impl StreamStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Live => "live",
            Self::Ended => "ended",
            Self::Archived => "archived",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => Self::Scheduled,
            "live" => Self::Live,
            "ended" => Self::Ended,
            "archived" => Self::Archived,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether anyone may read a show in this status (the rest only its owner).
    pub const fn is_public(self) -> bool {
        matches!(self, Self::Scheduled | Self::Live | Self::Archived)
    }
}

impl fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the ingest knows of a show that is going live or live (shown to its owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestState {
    /// A stream key was issued; no media has reached the ingest yet.
    Waiting,
    /// Media is flowing.
    Connected,
    /// Media stopped without an end; the same key may resume within the grace period.
    Reconnecting,
}

impl IngestState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => Self::Waiting,
            "connected" => Self::Connected,
            "reconnecting" => Self::Reconnecting,
            _ => return None,
        })
    }
}

/// Why a show ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The seller pressed end.
    SellerEnded,
    /// The seller threw the show away; it never comes back.
    Discarded,
    /// The ingest dropped and did not come back within the grace period.
    IngestLost,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SellerEnded => "seller_ended",
            Self::Discarded => "discarded",
            Self::IngestLost => "ingest_lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "seller_ended" => Self::SellerEnded,
            "discarded" => Self::Discarded,
            "ingest_lost" => Self::IngestLost,
            _ => return None,
        })
    }
}

/// What the seller does with a show when ending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Keep it as a replay (`archived`).
    Save,
    /// Throw it away (`ended`, hidden).
    Discard,
}

/// The media side of a live show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveIngest {
    /// Media flows. `last_heard` is when the ingest last said the publisher was there:
    /// its publish, then each periodic "still publishing" call. A silence from then
    /// on (the ingest died, even before its first call) takes the publisher as dropped.
    Connected { last_heard: Timestamp },
    /// Media stopped at `since`.
    Reconnecting { since: Timestamp },
}

/// A show's lifecycle; each variant carries exactly the data that status has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Scheduled {
        /// Set by `start`: waiting for media since then.
        waiting_since: Option<Timestamp>,
    },
    Live {
        started_at: Timestamp,
        ingest: LiveIngest,
    },
    Ended {
        started_at: Option<Timestamp>,
        ended_at: Timestamp,
        reason: EndReason,
    },
    Archived {
        started_at: Option<Timestamp>,
        ended_at: Timestamp,
        reason: EndReason,
    },
    Cancelled {
        at: Timestamp,
    },
}

/// The time limits of the lifecycle (from the server's configuration).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// How long a `start` waits for media before its key lapses.
    pub wait_timeout: TimeDelta,
    /// How long a dropped ingest may come back.
    pub reconnect_grace: TimeDelta,
    /// Silence after which a connected ingest is taken as dropped.
    pub stale_after: TimeDelta,
    /// How long a show ended by a lost ingest can still be saved.
    pub save_window: TimeDelta,
    /// Since when the server has been there to hear the ingest (its start). A silence
    /// before that is the server's, not the publisher's: silences and grace periods
    /// count from here at the earliest.
    pub listening_since: Option<Timestamp>,
}

impl Policy {
    /// `t`, or when the server began listening if that is later.
    fn heard_from(&self, t: Timestamp) -> Timestamp {
        self.listening_since.map_or(t, |since| since.max(t))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            wait_timeout: TimeDelta::minutes(10),
            reconnect_grace: TimeDelta::seconds(60),
            stale_after: TimeDelta::seconds(20),
            save_window: TimeDelta::days(7),
            listening_since: None,
        }
    }
}

/// Something that happens to a show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The owner edits title, description or schedule.
    Edit,
    /// The owner asks to go live (a fresh stream key is issued).
    Start,
    /// The ingest confirms media with the current key.
    MediaArrived,
    /// The ingest says the publisher is still there.
    MediaUpdate,
    /// The ingest says the publisher left.
    MediaDropped,
    /// The owner ends the show.
    End(Outcome),
    /// The owner cancels a show that has not started.
    Cancel,
}

impl Transition {
    fn verb(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Start => "go live with",
            Self::MediaArrived => "accept media for",
            Self::MediaUpdate => "keep publishing",
            Self::MediaDropped => "drop the ingest of",
            Self::End(Outcome::Save) => "end and save",
            Self::End(Outcome::Discard) => "end and discard",
            Self::Cancel => "cancel",
        }
    }
}

/// A transition the lifecycle refuses; the message names the current status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {verb} this show: it is {status}{why}")]
pub struct TransitionError {
    pub status: StreamStatus,
    verb: &'static str,
    why: String,
}

impl Lifecycle {
    pub const fn new() -> Self {
        Self::Scheduled {
            waiting_since: None,
        }
    }

    pub const fn status(&self) -> StreamStatus {
        match self {
            Self::Scheduled { .. } => StreamStatus::Scheduled,
            Self::Live { .. } => StreamStatus::Live,
            Self::Ended { .. } => StreamStatus::Ended,
            Self::Archived { .. } => StreamStatus::Archived,
            Self::Cancelled { .. } => StreamStatus::Cancelled,
        }
    }

    pub const fn ingest_state(&self) -> Option<IngestState> {
        match self {
            Self::Scheduled {
                waiting_since: Some(_),
            } => Some(IngestState::Waiting),
            Self::Live {
                ingest: LiveIngest::Connected { .. },
                ..
            } => Some(IngestState::Connected),
            Self::Live {
                ingest: LiveIngest::Reconnecting { .. },
                ..
            } => Some(IngestState::Reconnecting),
            _ => None,
        }
    }

    pub const fn started_at(&self) -> Option<Timestamp> {
        match *self {
            Self::Live { started_at, .. } => Some(started_at),
            Self::Ended { started_at, .. } | Self::Archived { started_at, .. } => started_at,
            _ => None,
        }
    }

    pub const fn ended_at(&self) -> Option<Timestamp> {
        match *self {
            Self::Ended { ended_at, .. } | Self::Archived { ended_at, .. } => Some(ended_at),
            Self::Cancelled { at } => Some(at),
            _ => None,
        }
    }

    pub const fn end_reason(&self) -> Option<EndReason> {
        match *self {
            Self::Ended { reason, .. } | Self::Archived { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether the stream key issued by the latest `start` is still usable.
    pub const fn key_is_usable(&self) -> bool {
        matches!(
            self,
            Self::Scheduled {
                waiting_since: Some(_)
            } | Self::Live { .. }
        )
    }

    /// Applies the rules of time: a lapsed wait, a silent ingest, an expired grace period.
    pub fn settle(self, now: Timestamp, policy: &Policy) -> Self {
        let mut state = self;
        loop {
            let next = match state {
                Self::Scheduled {
                    waiting_since: Some(since),
                } if now - since > policy.wait_timeout => Self::Scheduled {
                    waiting_since: None,
                },
                Self::Live {
                    started_at,
                    ingest: LiveIngest::Connected { last_heard: seen },
                } if now - policy.heard_from(seen) > policy.stale_after => Self::Live {
                    started_at,
                    ingest: LiveIngest::Reconnecting { since: seen },
                },
                Self::Live {
                    started_at,
                    ingest: LiveIngest::Reconnecting { since },
                } if now - policy.heard_from(since) > policy.reconnect_grace => Self::Ended {
                    started_at: Some(started_at),
                    ended_at: since,
                    reason: EndReason::IngestLost,
                },
                settled => return settled,
            };
            state = next;
        }
    }

    /// Decides a transition at `now`; the lifecycle after it, or why it is refused.
    pub fn apply(
        self,
        transition: Transition,
        now: Timestamp,
        policy: &Policy,
    ) -> Result<Self, TransitionError> {
        use LiveIngest::{Connected, Reconnecting};
        let state = self.settle(now, policy);
        let refuse = |why: &str| TransitionError {
            status: state.status(),
            verb: transition.verb(),
            why: if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            },
        };
        match (state, transition) {
            (Self::Scheduled { .. }, Transition::Edit) => Ok(state),
            (Self::Live { .. }, Transition::Edit) => {
                Err(refuse("only a scheduled show can be edited"))
            }

            (Self::Scheduled { .. }, Transition::Start) => Ok(Self::Scheduled {
                waiting_since: Some(now),
            }),
            // The broadcaster lost its key (a crash, a new machine): a fresh key resumes.
            (
                Self::Live {
                    ingest: Reconnecting { .. },
                    ..
                },
                Transition::Start,
            ) => Ok(state),
            (Self::Live { .. }, Transition::Start) => Err(refuse(
                "its ingest is connected; stop the current broadcast first",
            )),

            (
                Self::Scheduled {
                    waiting_since: Some(_),
                },
                Transition::MediaArrived,
            ) => Ok(Self::Live {
                started_at: now,
                ingest: Connected { last_heard: now },
            }),
            (
                Self::Live {
                    started_at,
                    ingest: Reconnecting { .. },
                },
                Transition::MediaArrived,
            ) => Ok(Self::Live {
                started_at,
                ingest: Connected { last_heard: now },
            }),
            (
                Self::Live {
                    ingest: Connected { .. },
                    ..
                },
                Transition::MediaArrived,
            ) => Err(refuse("another publisher is already connected")),
            (Self::Scheduled { .. }, Transition::MediaArrived) => {
                Err(refuse("its stream key lapsed; go live again for a new one"))
            }

            // A heartbeat for a publisher taken as gone because the server heard
            // nothing (it was down or slow, not the publisher) puts it back.
            (Self::Live { started_at, .. }, Transition::MediaUpdate) => Ok(Self::Live {
                started_at,
                ingest: Connected { last_heard: now },
            }),

            (
                Self::Live {
                    started_at,
                    ingest: Connected { .. },
                },
                Transition::MediaDropped,
            ) => Ok(Self::Live {
                started_at,
                ingest: Reconnecting { since: now },
            }),

            (Self::Live { started_at, .. }, Transition::End(outcome)) => {
                let (ended_at, started_at) = (now, Some(started_at));
                Ok(match outcome {
                    Outcome::Save => Self::Archived {
                        started_at,
                        ended_at,
                        reason: EndReason::SellerEnded,
                    },
                    Outcome::Discard => Self::Ended {
                        started_at,
                        ended_at,
                        reason: EndReason::Discarded,
                    },
                })
            }
            (
                Self::Ended {
                    started_at,
                    ended_at,
                    reason: EndReason::IngestLost,
                },
                Transition::End(outcome),
            ) => match outcome {
                Outcome::Save if now - ended_at > policy.save_window => Err(refuse(
                    "a show whose ingest was lost can be saved for 7 days only",
                )),
                Outcome::Save => Ok(Self::Archived {
                    started_at,
                    ended_at,
                    reason: EndReason::IngestLost,
                }),
                Outcome::Discard => Ok(Self::Ended {
                    started_at,
                    ended_at,
                    reason: EndReason::Discarded,
                }),
            },
            (Self::Scheduled { .. }, Transition::End(_)) => {
                Err(refuse("it has not gone live; cancel it instead"))
            }

            (Self::Scheduled { .. }, Transition::Cancel) => Ok(Self::Cancelled { at: now }),
            (Self::Live { .. }, Transition::Cancel) => {
                Err(refuse("a live show is ended, not cancelled"))
            }

            _ => Err(refuse("")),
        }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn policy() -> Policy {
        Policy::default()
    }

    fn live_at(s: i64) -> Lifecycle {
        Lifecycle::new()
            .apply(Transition::Start, t(s), &policy())
            .and_then(|l| l.apply(Transition::MediaArrived, t(s), &policy()))
            .unwrap()
    }

    #[test]
    fn goes_live_only_when_media_arrives() {
        let p = policy();
        let waiting = Lifecycle::new().apply(Transition::Start, t(0), &p).unwrap();
        assert_eq!(waiting.status(), StreamStatus::Scheduled);
        assert_eq!(waiting.ingest_state(), Some(IngestState::Waiting));
        let live = waiting.apply(Transition::MediaArrived, t(3), &p).unwrap();
        assert_eq!(live.status(), StreamStatus::Live);
        assert_eq!(live.started_at(), Some(t(3)));
        assert_eq!(live.ingest_state(), Some(IngestState::Connected));
    }

    #[test]
    fn media_without_start_is_refused() {
        let err = Lifecycle::new()
            .apply(Transition::MediaArrived, t(0), &policy())
            .unwrap_err();
        assert_eq!(err.status, StreamStatus::Scheduled);
        assert!(err.to_string().contains("it is scheduled"), "{err}");
    }

    #[test]
    fn waiting_lapses_after_the_wait_timeout() {
        let p = policy();
        let waiting = Lifecycle::new().apply(Transition::Start, t(0), &p).unwrap();
        assert_eq!(
            waiting.settle(t(599), &p).ingest_state(),
            Some(IngestState::Waiting)
        );
        let lapsed = waiting.settle(t(601), &p);
        assert_eq!(lapsed.ingest_state(), None);
        assert!(!lapsed.key_is_usable());
        assert!(waiting.apply(Transition::MediaArrived, t(601), &p).is_err());
    }

    #[test]
    fn a_second_publisher_is_refused() {
        let err = live_at(0)
            .apply(Transition::MediaArrived, t(1), &policy())
            .unwrap_err();
        assert!(err.to_string().contains("already connected"), "{err}");
    }

    #[test]
    fn a_dropped_ingest_resumes_within_grace() {
        let p = policy();
        let dropped = live_at(0)
            .apply(Transition::MediaDropped, t(10), &p)
            .unwrap();
        assert_eq!(dropped.ingest_state(), Some(IngestState::Reconnecting));
        let back = dropped.apply(Transition::MediaArrived, t(60), &p).unwrap();
        assert_eq!(back.ingest_state(), Some(IngestState::Connected));
        assert_eq!(back.started_at(), Some(t(0)), "the same show goes on");
    }

    #[test]
    fn a_dropped_ingest_ends_the_show_after_grace_and_can_be_saved_for_a_week() {
        let p = policy();
        let dropped = live_at(0)
            .apply(Transition::MediaDropped, t(10), &p)
            .unwrap();
        let lost = dropped.settle(t(71), &p);
        assert_eq!(lost.status(), StreamStatus::Ended);
        assert_eq!(lost.end_reason(), Some(EndReason::IngestLost));
        assert_eq!(lost.ended_at(), Some(t(10)));
        assert!(dropped.apply(Transition::MediaArrived, t(71), &p).is_err());
        let saved = lost
            .apply(Transition::End(Outcome::Save), t(3600), &p)
            .unwrap();
        assert_eq!(saved.status(), StreamStatus::Archived);
        let too_late = t(10) + TimeDelta::days(7) + TimeDelta::seconds(1);
        let err = lost
            .apply(Transition::End(Outcome::Save), too_late, &p)
            .unwrap_err();
        assert!(err.to_string().contains("7 days"), "{err}");
    }

    #[test]
    fn a_silent_ingest_counts_as_dropped() {
        let p = policy();
        let updated = live_at(0).apply(Transition::MediaUpdate, t(5), &p).unwrap();
        assert_eq!(
            updated.settle(t(20), &p).ingest_state(),
            Some(IngestState::Connected)
        );
        let silent = updated.settle(t(26), &p);
        assert_eq!(
            silent,
            Lifecycle::Live {
                started_at: t(0),
                ingest: LiveIngest::Reconnecting { since: t(5) }
            }
        );
    }

    #[test]
    fn an_ingest_silent_from_its_publish_counts_as_dropped() {
        let p = policy();
        let live = live_at(0);
        assert_eq!(
            live.settle(t(20), &p).ingest_state(),
            Some(IngestState::Connected)
        );
        let silent = live.settle(t(21), &p);
        assert_eq!(
            silent,
            Lifecycle::Live {
                started_at: t(0),
                ingest: LiveIngest::Reconnecting { since: t(0) }
            }
        );
        // The seller's broadcaster comes back through the ingest with the same key.
        let back = silent.apply(Transition::MediaArrived, t(30), &p).unwrap();
        assert_eq!(
            back,
            Lifecycle::Live {
                started_at: t(0),
                ingest: LiveIngest::Connected { last_heard: t(30) }
            }
        );
    }

    #[test]
    fn a_heartbeat_after_a_silence_means_the_publisher_never_left() {
        let p = policy();
        let updated = live_at(0).apply(Transition::MediaUpdate, t(5), &p).unwrap();
        // The server heard nothing for 30 s (it was down), then the ingest's heartbeat.
        let back = updated.apply(Transition::MediaUpdate, t(35), &p).unwrap();
        assert_eq!(
            back,
            Lifecycle::Live {
                started_at: t(0),
                ingest: LiveIngest::Connected { last_heard: t(35) }
            }
        );
        // Past the grace period the show has ended: too late for a heartbeat.
        assert!(updated.apply(Transition::MediaUpdate, t(90), &p).is_err());
    }

    #[test]
    fn a_server_that_was_down_counts_silence_from_its_start() {
        let updated = live_at(0)
            .apply(Transition::MediaUpdate, t(5), &policy())
            .unwrap();
        // Down from t(6) to t(300): it heard nothing, and neither could anyone else.
        let p = Policy {
            listening_since: Some(t(300)),
            ..policy()
        };
        assert_eq!(
            updated.settle(t(310), &p).ingest_state(),
            Some(IngestState::Connected)
        );
        let back = updated.apply(Transition::MediaUpdate, t(302), &p).unwrap();
        assert_eq!(back.ingest_state(), Some(IngestState::Connected));
        // Still silent once it has listened long enough: dropped, then lost, as ever,
        // and the show ended when it was last heard.
        assert_eq!(
            updated.settle(t(321), &p).ingest_state(),
            Some(IngestState::Reconnecting)
        );
        let lost = updated.settle(t(361), &p);
        assert_eq!(lost.end_reason(), Some(EndReason::IngestLost));
        assert_eq!(lost.ended_at(), Some(t(5)));
    }

    #[test]
    fn discarded_shows_never_come_back() {
        let p = policy();
        let gone = live_at(0)
            .apply(Transition::End(Outcome::Discard), t(5), &p)
            .unwrap();
        assert_eq!(gone.end_reason(), Some(EndReason::Discarded));
        for tr in [
            Transition::End(Outcome::Save),
            Transition::End(Outcome::Discard),
            Transition::Start,
            Transition::MediaArrived,
            Transition::Cancel,
            Transition::Edit,
        ] {
            let err = gone.apply(tr, t(6), &p).unwrap_err();
            assert!(err.to_string().contains("it is ended"), "{err}");
        }
    }

    #[test]
    fn refusals_name_the_current_status() {
        let p = policy();
        let cancelled = Lifecycle::new()
            .apply(Transition::Cancel, t(0), &p)
            .unwrap();
        assert_eq!(cancelled.status(), StreamStatus::Cancelled);
        let err = cancelled.apply(Transition::Start, t(1), &p).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot go live with this show: it is cancelled"
        );
        let err = Lifecycle::new()
            .apply(Transition::End(Outcome::Save), t(0), &p)
            .unwrap_err();
        assert!(err.to_string().contains("cancel it instead"), "{err}");
        let archived = live_at(0)
            .apply(Transition::End(Outcome::Save), t(9), &p)
            .unwrap();
        let err = archived.apply(Transition::Cancel, t(10), &p).unwrap_err();
        assert_eq!(err.status, StreamStatus::Archived);
    }
}
