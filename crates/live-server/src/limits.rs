//! Rate limits on what viewers do (identities, joins, heartbeats, comments, reactions),
//! per viewer and per source address, with a clear 429 and `Retry-After`. GCRA
//! limiters from `governor`, configurable.

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

pub struct Limit {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Limit {
    /// `per_minute` on average, with bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
        }
    }

    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::TooManyRequests {
                    retry_after_s: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            })
    }

    /// Forgets keys that are back to full allowance (memory stays bounded).
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Per minute, each (`Config`'s `rate_*`).
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub comments: u32,
    pub reactions: u32,
    pub joins: u32,
    pub heartbeats: u32,
    /// Viewer identities made per source address.
    pub viewers: u32,
    pub per_ip: u32,
}

pub struct Limits {
    pub comments: Limit,
    pub reactions: Limit,
    pub joins: Limit,
    pub heartbeats: Limit,
    /// Viewer identities, per source address (a script minting viewers to look
    /// watched is held here).
    pub viewers: Limit,
    /// Everything viewers send, per source address (many viewers behind one address
    /// share it; scripts minting viewers do not get around the per-viewer limits).
    pub per_ip: Limit,
}

impl Limits {
    pub fn new(r: Rates) -> Self {
        Self {
            comments: Limit::new(r.comments, r.comments.div_ceil(4).max(3)),
            reactions: Limit::new(r.reactions, r.reactions.div_ceil(4).max(5)),
            joins: Limit::new(r.joins, r.joins.div_ceil(4).max(3)),
            heartbeats: Limit::new(r.heartbeats, r.heartbeats.div_ceil(4).max(3)),
            viewers: Limit::new(r.viewers, r.viewers.div_ceil(4).max(3)),
            per_ip: Limit::new(r.per_ip, r.per_ip.div_ceil(4).max(10)),
        }
    }

    /// A new viewer identity from `ip`.
    pub fn check_new_viewer(&self, ip: Option<std::net::IpAddr>) -> Result<(), ApiError> {
        match ip {
            Some(ip) => self.viewers.check(&ip.to_string()),
            None => Ok(()),
        }
    }

    /// The per-viewer `limit`, then the source address's.
    pub fn check(
        &self,
        limit: &Limit,
        viewer: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        limit.check(viewer)?;
        match ip {
            Some(ip) => self.per_ip.check(&ip.to_string()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_waits() {
        let l = Limit::new(60, 3);
        for _ in 0..3 {
            l.check("v").unwrap();
        }
        match l.check("v") {
            Err(ApiError::TooManyRequests { retry_after_s }) => assert_eq!(retry_after_s, 1),
            other => panic!("{other:?}"),
        }
        // Another viewer is not affected.
        l.check("w").unwrap();
    }

    #[test]
    fn many_viewers_behind_one_address_share_its_limit() {
        let limits = Limits::new(Rates {
            comments: 600,
            reactions: 600,
            joins: 600,
            heartbeats: 600,
            viewers: 600,
            per_ip: 1,
        });
        let ip = Some("127.0.0.9".parse().unwrap());
        let passed = (0..20)
            .filter(|i| {
                limits
                    .check(&limits.reactions, &format!("viewer-{i}"), ip)
                    .is_ok()
            })
            .count();
        assert_eq!(passed, 10, "the address's burst, then 429");
        let other = Some("127.0.0.10".parse().unwrap());
        assert!(limits.check(&limits.reactions, "viewer-x", other).is_ok());
    }
}
