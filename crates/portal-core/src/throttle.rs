//! Login protection (R14): failures are counted per account (keyed by the address typed, so an
//! unknown address is throttled exactly like a known one) and per client address, and per user for
//! second-factor codes. After a few free failures each further one doubles the wait, and past a
//! threshold the key is blocked for a while — never for good: counters forget after a quiet period,
//! the longest block is bounded, and a password reset clears the account's counter.
//!
//! The counters live in storage ([`Committer::bump_counter`](crate::ports::Committer::bump_counter)),
//! so several server processes share them; the decisions are pure functions here.

use chrono::{DateTime, TimeDelta, Utc};

/// How one kind of key is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures that cost nothing.
    pub free_failures: u32,
    /// Wait after the first failure beyond the free ones; doubles with each further failure.
    pub base_delay: TimeDelta,
    /// Longest wait of the doubling phase.
    pub max_delay: TimeDelta,
    /// From this many failures on, the key is blocked for `lockout`.
    pub lockout_after: u32,
    /// How long a block lasts (temporary; renewed only by further failures).
    pub lockout: TimeDelta,
    /// Counters older than this (since the last failure) start again from zero.
    pub reset_after: TimeDelta,
}

impl ThrottlePolicy {
    /// Per account: 3 free failures, then 1 s, 2 s, 4 s … up to 5 min; 10 failures block the
    /// account's logins for 15 min. Counters forget after 24 h without failures.
    pub const ACCOUNT: Self = Self {
        free_failures: 3,
        base_delay: TimeDelta::seconds(1),
        max_delay: TimeDelta::minutes(5),
        lockout_after: 10,
        lockout: TimeDelta::minutes(15),
        reset_after: TimeDelta::hours(24),
    };

    /// Per client address: generous (offices share addresses), but bounds password spraying:
    /// 30 free failures, then doubling from 1 s to 5 min; 200 failures block for 1 h; forget
    /// after 1 h.
    pub const ADDRESS: Self = Self {
        free_failures: 30,
        base_delay: TimeDelta::seconds(1),
        max_delay: TimeDelta::minutes(5),
        lockout_after: 200,
        lockout: TimeDelta::hours(1),
        reset_after: TimeDelta::hours(1),
    };

    /// Per user for second-factor and recovery codes: 3 free failures, then doubling from 5 s;
    /// 10 failures block the second step for 15 min.
    pub const SECOND_FACTOR: Self = Self {
        free_failures: 3,
        base_delay: TimeDelta::seconds(5),
        max_delay: TimeDelta::minutes(5),
        lockout_after: 10,
        lockout: TimeDelta::minutes(15),
        reset_after: TimeDelta::hours(24),
    };

    /// Until when a key with `failures` failures, the last at `last_failure_at`, is blocked;
    /// `None` when it may try now.
    #[must_use]
    pub fn blocked_until(
        &self,
        failures: u32,
        last_failure_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if now - last_failure_at >= self.reset_after || failures <= self.free_failures {
            return None;
        }
        let delay = if failures >= self.lockout_after {
            self.lockout
        } else {
            let exp = (failures - self.free_failures - 1).min(30);
            self.base_delay
                .checked_mul(1_i32 << exp.min(20))
                .unwrap_or(self.max_delay)
                .min(self.max_delay)
        };
        let until = last_failure_at + delay;
        (until > now).then_some(until)
    }

    /// The longest any key of this policy can be blocked after its last failure.
    #[must_use]
    pub fn longest_block(&self) -> TimeDelta {
        self.lockout.max(self.max_delay)
    }
}

/// The login-protection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginProtection {
    /// Per account (address typed).
    pub account: ThrottlePolicy,
    /// Per client address.
    pub address: ThrottlePolicy,
    /// Per user, for second-factor codes.
    pub second_factor: ThrottlePolicy,
    /// SMS/voice codes per user and hour (and per number and hour).
    pub phone_codes_per_hour: u32,
    /// Fresh recovery codes sent per user and day.
    pub recovery_sends_per_day: u32,
}

impl Default for LoginProtection {
    fn default() -> Self {
        Self {
            account: ThrottlePolicy::ACCOUNT,
            address: ThrottlePolicy::ADDRESS,
            second_factor: ThrottlePolicy::SECOND_FACTOR,
            phone_codes_per_hour: 5,
            recovery_sends_per_day: 3,
        }
    }
}

/// Storage keys of the counters. Hashing is not needed: keys never leave the server, and e-mail
/// addresses in them are already normalised.
pub mod keys {
    use crate::ids::UserId;
    use crate::values::EmailAddress;

    /// Failed logins for an address typed at login.
    #[must_use]
    pub fn account(email: &EmailAddress) -> String {
        format!("login:account:{email}")
    }

    /// Failed logins from a client address.
    #[must_use]
    pub fn address(ip: &str) -> String {
        format!("login:ip:{ip}")
    }

    /// Failed second-factor codes of a user.
    #[must_use]
    pub fn second_factor(user: UserId) -> String {
        format!("mfa:{user}")
    }

    /// Phone codes sent for a user.
    #[must_use]
    pub fn phone_codes_user(user: UserId) -> String {
        format!("phone:user:{user}")
    }

    /// Phone codes sent to a number.
    #[must_use]
    pub fn phone_codes_number(number: &str) -> String {
        format!("phone:number:{number}")
    }

    /// Fresh recovery codes sent for a user.
    #[must_use]
    pub fn recovery_sends(user: UserId) -> String {
        format!("recovery:{user}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn free_failures_cost_nothing() {
        let p = ThrottlePolicy::ACCOUNT;
        for n in 0..=3 {
            assert_eq!(p.blocked_until(n, t0(), t0()), None);
        }
    }

    #[test]
    fn each_further_failure_doubles_the_wait() {
        let p = ThrottlePolicy::ACCOUNT;
        assert_eq!(
            p.blocked_until(4, t0(), t0()),
            Some(t0() + TimeDelta::seconds(1))
        );
        assert_eq!(
            p.blocked_until(5, t0(), t0()),
            Some(t0() + TimeDelta::seconds(2))
        );
        assert_eq!(
            p.blocked_until(6, t0(), t0()),
            Some(t0() + TimeDelta::seconds(4))
        );
        assert_eq!(
            p.blocked_until(5, t0(), t0() + TimeDelta::seconds(2)),
            None,
            "the wait is over at exactly its end"
        );
    }

    #[test]
    fn the_threshold_blocks_temporarily_never_for_good() {
        let p = ThrottlePolicy::ACCOUNT;
        assert_eq!(
            p.blocked_until(10, t0(), t0()),
            Some(t0() + TimeDelta::minutes(15))
        );
        assert_eq!(
            p.blocked_until(1_000_000, t0(), t0() + TimeDelta::minutes(15)),
            None
        );
        assert!(p.longest_block() <= TimeDelta::minutes(15));
    }

    #[test]
    fn counters_forget_after_a_quiet_period() {
        let p = ThrottlePolicy::ACCOUNT;
        assert_eq!(p.blocked_until(50, t0(), t0() + TimeDelta::hours(24)), None);
    }
}
