//! The delivery rules every kind shares (R21), as pure functions: a dispatcher asks them before
//! and after each send and does what they say.

use super::OutboxEntry;
use chrono::{DateTime, TimeDelta, Utc};

/// When to retry a failed delivery: exponential backoff from `base`, capped at `max_delay`, with
/// up to `max_attempts` attempts in all (R21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: TimeDelta,
    /// Longest delay.
    pub max_delay: TimeDelta,
    /// Attempts before a message is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: TimeDelta::seconds(30),
            max_delay: TimeDelta::hours(1),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` attempts failed transiently; `None` means give up
    /// (dead-letter).
    #[must_use]
    pub fn next_attempt(&self, attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(20);
        let delay = self
            .base
            .checked_mul(1_i32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        Some(now + delay)
    }
}

/// A failed hand-over, as a [`Sender`](super::Sender) reports it.
///
/// The message never holds the recipient, code, link or token, so it can be logged and stored
/// as the entry's `last_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: the server answered 4xx, could not be reached, timed out, or
    /// the local mailbox could not be written.
    #[error("transient: {0}")]
    Transient(String),
    /// Trying again will not help: the server refused it for good (5xx on SMTP), or the
    /// message cannot be built.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// Whether trying again later can help.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Whether a dispatcher may start sending a claimed message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Enough of the lease is left for a whole send.
    Send,
    /// Too little lease is left: give the claim back unsent, so no other dispatcher can claim
    /// the message while this one still sends it.
    Release,
}

/// What becomes of a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Delivered.
    Sent,
    /// Failed; due again at this time.
    Retry(DateTime<Utc>),
    /// Given up: a dead letter until an operator re-queues it.
    Dead,
}

/// The rules of delivery, the same for every kind: leases, retries, back-off, dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRules {
    /// Backoff and maximum attempts for transient failures.
    pub retry: RetryPolicy,
    /// Attempts a message gets when it is refused permanently. 1 dead-letters it at the first
    /// refusal; more give a misconfigured receiver time to be fixed.
    pub permanent_failure_attempts: u32,
    /// The longest one send may take (a dispatcher cuts it off there).
    pub send_timeout: TimeDelta,
}

impl Default for DeliveryRules {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            permanent_failure_attempts: 1,
            send_timeout: TimeDelta::seconds(60),
        }
    }
}

impl DeliveryRules {
    /// Before a send: start it only if the entry's lease outlasts a whole send, so a lease never
    /// runs out (and another dispatcher never claims the message) while it is being sent.
    #[must_use]
    pub fn start(&self, entry: &OutboxEntry, now: DateTime<Utc>) -> Start {
        let lease_left = entry
            .claimed_until
            .map_or(TimeDelta::zero(), |until| until - now);
        if lease_left < self.send_timeout {
            Start::Release
        } else {
            Start::Send
        }
    }

    /// After a send: sent; a transient failure retried by the back-off until `max_attempts`;
    /// a permanent one dead-lettered once it has had `permanent_failure_attempts`.
    #[must_use]
    pub fn after(
        &self,
        entry: &OutboxEntry,
        outcome: Result<(), &SendError>,
        now: DateTime<Utc>,
    ) -> Disposition {
        let retry = || {
            self.retry
                .next_attempt(entry.attempts, now)
                .map_or(Disposition::Dead, Disposition::Retry)
        };
        match outcome {
            Ok(()) => Disposition::Sent,
            Err(SendError::Transient(_)) => retry(),
            Err(SendError::Permanent(_)) if entry.attempts < self.permanent_failure_attempts => {
                retry()
            }
            Err(SendError::Permanent(_)) => Disposition::Dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OutboxId;
    use crate::outbox::{OutboxMessage, OutboxStatus, Payload};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn entry(attempts: u32, claimed_until: Option<DateTime<Utc>>) -> OutboxEntry {
        OutboxEntry {
            message: OutboxMessage {
                id: OutboxId::from_uuid(uuid::Uuid::from_u128(1)),
                created_at: t0(),
                payload: Payload::Unknown {
                    kind: "x".into(),
                    recipient: String::new(),
                    json: "{}".into(),
                },
            },
            status: OutboxStatus::Claimed,
            attempts,
            next_attempt_at: t0(),
            claim: None,
            claimed_until,
            last_error: None,
            sent_at: None,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy::default();
        let t = t0();
        assert_eq!(p.next_attempt(1, t), Some(t + TimeDelta::seconds(30)));
        assert_eq!(p.next_attempt(2, t), Some(t + TimeDelta::seconds(60)));
        assert_eq!(p.next_attempt(3, t), Some(t + TimeDelta::seconds(120)));
        assert_eq!(p.next_attempt(7, t), Some(t + TimeDelta::seconds(1920)));
        assert_eq!(p.next_attempt(8, t), None);
        let long = RetryPolicy {
            max_attempts: 100,
            ..p
        };
        assert_eq!(long.next_attempt(50, t), Some(t + TimeDelta::hours(1)));
    }

    #[test]
    fn a_send_starts_only_with_a_whole_send_timeout_of_lease_left() {
        let r = DeliveryRules::default();
        let now = t0();
        let at = |s| Some(now + TimeDelta::seconds(s));
        assert_eq!(r.start(&entry(1, at(60)), now), Start::Send);
        assert_eq!(r.start(&entry(1, at(59)), now), Start::Release);
        assert_eq!(r.start(&entry(1, None), now), Start::Release);
    }

    #[test]
    fn outcomes_become_sent_retry_or_dead() {
        let now = t0();
        let r = DeliveryRules {
            permanent_failure_attempts: 2,
            ..DeliveryRules::default()
        };
        let transient = SendError::Transient("421".into());
        let permanent = SendError::Permanent("550".into());
        assert_eq!(r.after(&entry(1, None), Ok(()), now), Disposition::Sent);
        assert_eq!(
            r.after(&entry(1, None), Err(&transient), now),
            Disposition::Retry(now + TimeDelta::seconds(30))
        );
        assert_eq!(
            r.after(&entry(8, None), Err(&transient), now),
            Disposition::Dead,
            "out of attempts"
        );
        assert_eq!(
            r.after(&entry(1, None), Err(&permanent), now),
            Disposition::Retry(now + TimeDelta::seconds(30)),
            "a second chance for a permanent refusal"
        );
        assert_eq!(
            r.after(&entry(2, None), Err(&permanent), now),
            Disposition::Dead
        );
    }
}
