//! In-process token buckets per client address and endpoint group.

use crate::config::{RateLimit, RateLimits};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The endpoint groups that have their own budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Logins and re-authentication.
    Login,
    /// Second factors.
    Mfa,
    /// Registrations and invitation acceptances.
    Registration,
    /// Code entry and code mails.
    Codes,
    /// Password reset and change.
    Password,
}

#[derive(Debug, Clone, Copy)]
struct State {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by endpoint group and client address (requests without a known address
/// share one bucket per group).
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(Bucket, Option<IpAddr>), State>>,
}

impl RateLimiter {
    /// A limiter with these limits.
    #[must_use]
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, bucket: Bucket) -> RateLimit {
        match bucket {
            Bucket::Login => self.limits.login,
            Bucket::Mfa => self.limits.mfa,
            Bucket::Registration => self.limits.registration,
            Bucket::Codes => self.limits.codes,
            Bucket::Password => self.limits.password,
        }
    }

    /// Takes one token for `client` in `bucket`.
    ///
    /// # Errors
    /// The bucket is empty: how long until the next token.
    pub fn take(&self, bucket: Bucket, client: Option<IpAddr>) -> Result<(), Duration> {
        self.take_at(bucket, client, Instant::now())
    }

    fn take_at(
        &self,
        bucket: Bucket,
        client: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        let limit = self.limit(bucket);
        if !limit.is_on() {
            return Ok(());
        }
        let burst = f64::from(limit.burst);
        let per_sec = f64::from(limit.per_minute.max(1)) / 60.0;
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.limits.max_tracked_addresses {
            // Forget the buckets that have refilled; if none has, forget all (an attacker with
            // that many addresses is not stopped by per-address limits anyway).
            map.retain(|(b, _), s| {
                let l = self.limit(*b);
                let rate = f64::from(l.per_minute.max(1)) / 60.0;
                s.tokens + now.duration_since(s.at).as_secs_f64() * rate < f64::from(l.burst)
            });
            if map.len() >= self.limits.max_tracked_addresses {
                map.clear();
            }
        }
        let state = map.entry((bucket, client)).or_insert(State {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * per_sec).min(burst);
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - state.tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimits {
            login: RateLimit::new(2, 60),
            ..RateLimits::off()
        })
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let l = limiter();
        let t = Instant::now();
        let ip: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        assert!(l.take_at(Bucket::Login, ip, t).is_ok());
        assert!(l.take_at(Bucket::Login, ip, t).is_ok());
        let wait = l.take_at(Bucket::Login, ip, t).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another address has its own bucket; other groups are off.
        assert!(
            l.take_at(Bucket::Login, Some("10.0.0.2".parse().unwrap()), t)
                .is_ok()
        );
        assert!(l.take_at(Bucket::Mfa, ip, t).is_ok());
        // One second later one token is back.
        let later = t + Duration::from_secs(1);
        assert!(l.take_at(Bucket::Login, ip, later).is_ok());
        assert!(l.take_at(Bucket::Login, ip, later).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = RateLimiter::new(RateLimits {
            login: RateLimit::new(1, 1),
            max_tracked_addresses: 10,
            ..RateLimits::off()
        });
        let t = Instant::now();
        for i in 0..100u8 {
            let _ = l.take_at(Bucket::Login, Some(IpAddr::from([10, 0, 0, i])), t);
        }
        assert!(l.buckets.lock().unwrap().len() <= 10);
    }
}
