//! Login protection (R14). Failed logins are counted per account *and* client address, per
//! account across all addresses, per client address, and per known browser; second-factor codes
//! per user. After a few free failures each further one doubles the wait, and past a threshold a
//! key is blocked for a while — never for good: counters forget after a quiet period, the longest
//! block is bounded, and a password reset clears the account's counters.
//!
//! **Nobody who lacks the password can lock the real user out** (the denial of service of an
//! account-wide lockout, Keycloak GHSA-cq42-vhv7-xr7p). The hard blocks are per account and
//! client address ([`LoginProtection::pair`]): an attacker blocks only their own address. Across
//! addresses an account has a daily budget of failures ([`LoginProtection::account_daily`]):
//! past it, tries from any address without a known-browser cookie are *slowed* to one per
//! interval for the rest of the UTC day, which bounds online guessing of one account by any
//! number of addresses ([`LoginProtection::daily_guess_bound`]). A browser that signed in to the
//! account before (the adapter's signed "device cookie", OWASP) is exempt from the per-address,
//! pair and daily limits and has its own counter ([`LoginProtection::known_browser`]).
//!
//! Counter keys never hold an e-mail address in clear: the address typed is keyed-hashed
//! ([`AccountKey`]), for unknown addresses exactly as for known ones.
//!
//! Send budgets (R19, R17) are different: they cap how many SMS/voice codes and fresh recovery
//! codes are *sent*, in fixed windows aligned to the Unix epoch ([`SendBudget`]: clock hours and
//! UTC days). A window's counter lives under a key that names the window ([`keys`]), so the
//! budget is full again at the next boundary however many requests came before, and a refused
//! request counts nothing. Whoever spends a budget blocks it until the end of that window only —
//! not for good by asking once in a while, as a sliding quiet period allowed.
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

    /// Per account and client address (the hard limit of login guessing): 3 free failures, then
    /// 1 s, 2 s, 4 s … up to 5 min; 10 failures block this address's logins to this account for
    /// an hour, each further failure again (at most 10 + 24 failures a day from one address,
    /// fewer than [`Self::ACCOUNT_DAILY`] lets pass before it slows: one address alone never
    /// slows the others). Counters forget after 24 h without failures. Other addresses are not
    /// affected.
    pub const PAIR: Self = Self {
        lockout: TimeDelta::hours(1),
        ..Self::ACCOUNT
    };

    /// Per account across all addresses without a known-browser cookie, counted per UTC day: 50
    /// failures cost nothing here (the pair limit applies to each address), then every further
    /// failure makes the next try of this account, from any such address, wait 30 min — a slow
    /// pace, never a block longer than that. Used with a key per UTC day
    /// ([`keys::login_account_day`]).
    pub const ACCOUNT_DAILY: Self = Self {
        free_failures: 50,
        base_delay: TimeDelta::minutes(30),
        max_delay: TimeDelta::minutes(30),
        lockout_after: u32::MAX,
        lockout: TimeDelta::minutes(30),
        reset_after: TimeDelta::days(1),
    };

    /// Per known-browser cookie (a browser that signed in to the account before): the same as
    /// the old account policy (3 free, doubling to 5 min, 10 block for 15 min), on its own counter.
    pub const KNOWN_BROWSER: Self = Self::ACCOUNT;

    /// Per user for linking to a customer (customer numbers guessed, old accounts' passwords):
    /// 5 free failures, then doubling from 2 s up to 5 min; 20 failures block for 1 h; forget
    /// after 24 h. A customer number has nine digits, so a user who guesses gets about 30 tries
    /// an hour and fewer than 500 a day.
    pub const LINK_USER: Self = Self {
        free_failures: 5,
        base_delay: TimeDelta::seconds(2),
        max_delay: TimeDelta::minutes(5),
        lockout_after: 20,
        lockout: TimeDelta::hours(1),
        reset_after: TimeDelta::hours(24),
    };

    /// Per old username for linking with an old account (one account's password guessed from
    /// many new accounts and addresses): like [`Self::LINK_USER`], 5 free failures, then doubling
    /// from 2 s up to 5 min; 20 failures block for 1 h; forget after 24 h.
    pub const LINK_LEGACY_NAME: Self = Self {
        free_failures: 5,
        base_delay: TimeDelta::seconds(2),
        max_delay: TimeDelta::minutes(5),
        lockout_after: 20,
        lockout: TimeDelta::hours(1),
        reset_after: TimeDelta::hours(24),
    };

    /// Per client address for linking (many accounts registered by one guesser): 20 free
    /// failures, then doubling from 1 s up to 5 min; 100 failures block for 1 h; forget after 1 h.
    pub const LINK_ADDRESS: Self = Self {
        free_failures: 20,
        base_delay: TimeDelta::seconds(1),
        max_delay: TimeDelta::minutes(5),
        lockout_after: 100,
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
    /// Per account, for password checks inside a session (changing the password, step-up
    /// re-authentication): only the session's holder can spend it.
    pub account: ThrottlePolicy,
    /// Per account and client address, for logins ([`ThrottlePolicy::PAIR`]).
    pub pair: ThrottlePolicy,
    /// Per account and UTC day across addresses without a known-browser cookie
    /// ([`ThrottlePolicy::ACCOUNT_DAILY`]).
    pub account_daily: ThrottlePolicy,
    /// Per known-browser cookie ([`ThrottlePolicy::KNOWN_BROWSER`]).
    pub known_browser: ThrottlePolicy,
    /// Per client address.
    pub address: ThrottlePolicy,
    /// Per user, for second-factor codes.
    pub second_factor: ThrottlePolicy,
    /// SMS/voice codes (login, setup and presence codes, and recovery codes sent to a phone) per
    /// user and clock hour (UTC), and per number and clock hour. See [`Self::phone_codes`].
    pub phone_codes_per_hour: u32,
    /// Fresh recovery codes sent per user and UTC day, by any channel. See
    /// [`Self::recovery_sends`].
    pub recovery_sends_per_day: u32,
}

impl LoginProtection {
    /// The most wrong passwords one account can be tried with in one UTC day from browsers
    /// without its known-browser cookie, from any number of client addresses: the free failures
    /// of [`Self::account_daily`], then one per its wait (50 + 48 = 98 by default). Browsers that
    /// signed in to the account before add at most what [`Self::known_browser`] allows each.
    #[must_use]
    pub fn daily_guess_bound(&self) -> i64 {
        let p = &self.account_daily;
        let pace = p
            .base_delay
            .min(p.max_delay)
            .min(p.lockout)
            .num_seconds()
            .max(1);
        i64::from(p.free_failures).saturating_add(86_400 / pace)
    }

    /// The longest any login throttle blocks after its last failure.
    #[must_use]
    pub fn longest_login_block(&self) -> TimeDelta {
        [
            self.pair,
            self.address,
            self.account_daily,
            self.known_browser,
        ]
        .iter()
        .map(ThrottlePolicy::longest_block)
        .max()
        .unwrap_or(TimeDelta::zero())
    }

    /// The budget of phone codes: [`Self::phone_codes_per_hour`] per clock hour.
    #[must_use]
    pub const fn phone_codes(&self) -> SendBudget {
        SendBudget {
            limit: self.phone_codes_per_hour,
            window: TimeDelta::hours(1),
        }
    }

    /// The budget of fresh recovery codes: [`Self::recovery_sends_per_day`] per UTC day.
    #[must_use]
    pub const fn recovery_sends(&self) -> SendBudget {
        SendBudget {
            limit: self.recovery_sends_per_day,
            window: TimeDelta::days(1),
        }
    }
}

impl Default for LoginProtection {
    fn default() -> Self {
        Self {
            account: ThrottlePolicy::ACCOUNT,
            pair: ThrottlePolicy::PAIR,
            account_daily: ThrottlePolicy::ACCOUNT_DAILY,
            known_browser: ThrottlePolicy::KNOWN_BROWSER,
            address: ThrottlePolicy::ADDRESS,
            second_factor: ThrottlePolicy::SECOND_FACTOR,
            phone_codes_per_hour: 5,
            recovery_sends_per_day: 3,
        }
    }
}

/// A send budget: at most `limit` sends per fixed window of length `window`, windows aligned to
/// the Unix epoch (hourly windows are clock hours, daily windows UTC days; there are no leap
/// seconds in Unix time). Window `n` is `[n·window, (n+1)·window)`: a send at exactly a boundary
/// belongs to the new window.
///
/// Only sends count: a request is checked against the window's counter first and refused
/// *without* counting when the budget is spent; the atomic
/// [`bump_counter`](crate::ports::Committer::bump_counter) then has the last word, so concurrent
/// requests never send more than `limit` (a request that loses that race is refused and has
/// counted — only then does a refusal count, and only in its own window).
///
/// Each window has its own counter ([`keys`] take the [`window_index`](Self::window_index)), so a
/// window's count never carries over; the counters are bumped with
/// [`reset_after`](Self::reset_after) = the window length, under which a key can never restart
/// within its own window and an old key never matters again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendBudget {
    /// Sends allowed per window.
    pub limit: u32,
    /// Length of a window, in whole seconds (fractions are dropped; at least one second).
    pub window: TimeDelta,
}

impl SendBudget {
    fn window_seconds(&self) -> i64 {
        self.window.num_seconds().max(1)
    }

    /// The `reset_after` to bump this budget's counters with: the window length.
    #[must_use]
    pub fn reset_after(&self) -> TimeDelta {
        TimeDelta::seconds(self.window_seconds())
    }

    /// The number of the window `at` falls in (whole windows since the Unix epoch).
    #[must_use]
    pub fn window_index(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.window_seconds())
    }

    /// When the window `at` falls in ends: the budget is full again from then on.
    #[must_use]
    pub fn refills_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let end = (self.window_index(at) + 1).saturating_mul(self.window_seconds());
        DateTime::from_timestamp(end, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether a window whose counter stands at `count` has room for another send.
    #[must_use]
    pub const fn allows(&self, count: u32) -> bool {
        count < self.limit
    }
}

/// The key of the keyed hash that names accounts in login counters ([`AccountKey`]), so that
/// the counter rows of addresses typed at login (known or not) hold no address in clear. Servers
/// derive it from their secret; several processes sharing counters need the same key.
#[derive(Clone, PartialEq, Eq)]
pub struct CounterKey([u8; 32]);

impl CounterKey {
    /// A key from 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for CounterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CounterKey([redacted])")
    }
}

/// An account as login counters name it: `HMAC-SHA-256(key, normalised address)`, cut to 128
/// bits, in hex. Without a configured [`CounterKey`] a fixed public key is used: the address is
/// then not in clear but can be found by trying candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey(String);

impl AccountKey {
    /// The name of the account typed as `email`.
    #[must_use]
    pub fn of(key: Option<&CounterKey>, email: &crate::values::EmailAddress) -> Self {
        use hmac::{KeyInit, Mac};
        const PUBLIC: [u8; 32] = *b"portal login counters, no secret";
        let key = key.map_or(&PUBLIC, |k| &k.0);
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
            .expect("HMAC takes any key length");
        mac.update(email.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        Self(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The hex form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Send budgets of mails one user causes to others (R10, R12), per UTC day: messages to the
/// administrators ("Administrator kontaktieren") and invitations (first sends, re-sends, and
/// attempts to invite an address that has an account, whose owner gets a notice). Each is
/// counted per sender and per recipient; a request over either budget is refused as throttled
/// until the next midnight (UTC) and queues nothing. Like [`SendBudget`]s, refused requests
/// count nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailBudgets {
    /// Messages a user sends to their administrators per day.
    pub contact_per_sender: u32,
    /// Messages one administrator receives per day (from all users of the customer).
    pub contact_per_recipient: u32,
    /// Invitations one user (administrator or operator) sends per day.
    pub invitations_per_sender: u32,
    /// Invitations to one address per day (from all senders).
    pub invitations_per_recipient: u32,
    /// Exports of one person's data per day (by themselves and their administrators together;
    /// each mails the person).
    pub data_exports_per_person: u32,
    /// Exports of other people's data one administrator or operator makes per day.
    pub data_exports_per_sender: u32,
}

impl MailBudgets {
    /// The daily window of these budgets, with `limit` sends.
    #[must_use]
    pub const fn daily(limit: u32) -> SendBudget {
        SendBudget {
            limit,
            window: TimeDelta::days(1),
        }
    }
}

impl Default for MailBudgets {
    /// 15 messages per sender and 50 per administrator; 200 invitations per sender (a company's
    /// onboarding) and 12 per address; 5 data exports per person and 100 per administrator.
    fn default() -> Self {
        Self {
            contact_per_sender: 15,
            contact_per_recipient: 50,
            invitations_per_sender: 200,
            invitations_per_recipient: 12,
            data_exports_per_person: 5,
            data_exports_per_sender: 100,
        }
    }
}

/// Storage keys of the counters. They never leave the server; e-mail addresses typed at login
/// appear only as [`AccountKey`]s (other keys hold normalised addresses or ids).
pub mod keys {
    use super::AccountKey;
    use crate::ids::UserId;
    use crate::values::EmailAddress;

    /// Wrong current passwords inside a session of this account (password change, step-up).
    #[must_use]
    pub fn account(email: &EmailAddress) -> String {
        format!("login:account:{email}")
    }

    /// Failed logins for an account (address typed) from one client address.
    #[must_use]
    pub fn login_pair(account: &AccountKey, ip: &str) -> String {
        format!("login:pair:{}:{ip}", account.as_str())
    }

    /// Failed logins for an account from browsers without its known-browser cookie, in one UTC
    /// day (`day` from [`SendBudget::window_index`](super::SendBudget::window_index) with a
    /// one-day window).
    #[must_use]
    pub fn login_account_day(account: &AccountKey, day: i64) -> String {
        format!("login:day:{}:{day}", account.as_str())
    }

    /// "Forgot password" requests for an address typed (known or not) in one clock hour (hours
    /// since the Unix epoch).
    #[must_use]
    pub fn reset_requests(account: &AccountKey, hour: i64) -> String {
        format!("reset:{}:{hour}", account.as_str())
    }

    /// Failed logins from one known browser (the cookie's non-secret handle).
    #[must_use]
    pub fn login_known_browser(handle: &str) -> String {
        format!("login:browser:{handle}")
    }

    /// Failed logins from a client address.
    #[must_use]
    pub fn address(ip: &str) -> String {
        format!("login:ip:{ip}")
    }

    /// Failed passkey sign-ins with one credential (base64url id).
    #[must_use]
    pub fn passkey(credential_id: &str) -> String {
        format!("login:passkey:{credential_id}")
    }

    /// Failed second-factor codes of a user.
    #[must_use]
    pub fn second_factor(user: UserId) -> String {
        format!("mfa:{user}")
    }

    /// Phone codes sent for a user in one window of
    /// [`LoginProtection::phone_codes`](super::LoginProtection::phone_codes) (`window` from
    /// [`SendBudget::window_index`](super::SendBudget::window_index)).
    #[must_use]
    pub fn phone_codes_user(user: UserId, window: i64) -> String {
        format!("phone:user:{user}:{window}")
    }

    /// Phone codes sent to a number (E.164) in one window of
    /// [`LoginProtection::phone_codes`](super::LoginProtection::phone_codes).
    #[must_use]
    pub fn phone_codes_number(number: &str, window: i64) -> String {
        format!("phone:number:{number}:{window}")
    }

    /// Messages to administrators sent by a user in one day ([`super::MailBudgets`]).
    #[must_use]
    pub fn contact_sender(user: UserId, window: i64) -> String {
        format!("contact:sender:{user}:{window}")
    }

    /// Messages an administrator received in one day ([`super::MailBudgets`]).
    #[must_use]
    pub fn contact_recipient(admin: UserId, window: i64) -> String {
        format!("contact:recipient:{admin}:{window}")
    }

    /// Invitations sent by a user in one day ([`super::MailBudgets`]).
    #[must_use]
    pub fn invitation_sender(user: UserId, window: i64) -> String {
        format!("invite:sender:{user}:{window}")
    }

    /// Exports of a person's data in one day ([`super::MailBudgets`]).
    #[must_use]
    pub fn data_export_subject(user: UserId, window: i64) -> String {
        format!("export:subject:{user}:{window}")
    }

    /// Exports of other people's data made by one administrator in one day
    /// ([`super::MailBudgets`]).
    #[must_use]
    pub fn data_export_sender(user: UserId, window: i64) -> String {
        format!("export:sender:{user}:{window}")
    }

    /// Invitations to an address in one day ([`super::MailBudgets`]).
    #[must_use]
    pub fn invitation_recipient(email: &EmailAddress, window: i64) -> String {
        format!("invite:recipient:{email}:{window}")
    }

    /// Failed attempts of a user to link an account to a customer (a customer number that is
    /// unknown or of another product line, an old account's wrong credentials).
    #[must_use]
    pub fn link_user(user: UserId) -> String {
        format!("link:user:{user}")
    }

    /// Failed attempts to link with an old account's username (trimmed, lower case), by anyone.
    #[must_use]
    pub fn link_legacy_name(username: &str) -> String {
        format!("link:legacy:{}", username.trim().to_lowercase())
    }

    /// Failed attempts to link an account to a customer from a client address.
    #[must_use]
    pub fn link_address(ip: &str) -> String {
        format!("link:ip:{ip}")
    }

    /// Fresh recovery codes sent for a user in one window of
    /// [`LoginProtection::recovery_sends`](super::LoginProtection::recovery_sends).
    #[must_use]
    pub fn recovery_sends(user: UserId, window: i64) -> String {
        format!("recovery:{user}:{window}")
    }

    /// Codes sent to verify a new recovery e-mail address for a user in one window of
    /// [`LoginProtection::phone_codes`](super::LoginProtection::phone_codes) (a recovery phone
    /// takes from the phone budgets instead).
    #[must_use]
    pub fn recovery_channel_codes(user: UserId, window: i64) -> String {
        format!("recovery-channel:{user}:{window}")
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

    #[test]
    fn the_daily_bound_is_the_free_failures_plus_one_per_wait() {
        let lp = LoginProtection::default();
        assert_eq!(lp.daily_guess_bound(), 98);
        let p = lp.account_daily;
        assert_eq!(p.blocked_until(50, t0(), t0()), None, "the budget is free");
        assert_eq!(
            p.blocked_until(51, t0(), t0()),
            Some(t0() + TimeDelta::minutes(30))
        );
        assert_eq!(
            p.blocked_until(5_000, t0(), t0()),
            Some(t0() + TimeDelta::minutes(30)),
            "slowed, never blocked longer"
        );
        assert_eq!(lp.longest_login_block(), TimeDelta::hours(1));
    }

    #[test]
    fn account_keys_hide_the_address_and_depend_on_the_key() {
        let a = crate::values::EmailAddress::parse("Anna@Example.com").unwrap();
        let k1 = CounterKey::from_bytes([1; 32]);
        let k2 = CounterKey::from_bytes([2; 32]);
        let one = AccountKey::of(Some(&k1), &a);
        assert_eq!(one.as_str().len(), 32);
        assert!(!one.as_str().contains("anna"), "{one:?}");
        assert_eq!(one, AccountKey::of(Some(&k1), &a), "stable");
        assert_ne!(one, AccountKey::of(Some(&k2), &a));
        assert_ne!(one, AccountKey::of(None, &a));
        let b = crate::values::EmailAddress::parse("anna@example.com").unwrap();
        assert_eq!(one, AccountKey::of(Some(&k1), &b), "normalised first");
        assert!(!format!("{k1:?}").contains('1'), "redacted");
    }

    #[test]
    fn send_budget_windows_are_clock_hours_and_utc_days() {
        let lp = LoginProtection::default();
        let (hour, day) = (lp.phone_codes(), lp.recovery_sends());
        let s = TimeDelta::seconds(1);
        let ten = t0() + TimeDelta::hours(10);
        assert_eq!(hour.window_index(ten - s) + 1, hour.window_index(ten));
        assert_eq!(
            hour.window_index(ten),
            hour.window_index(ten + TimeDelta::minutes(59))
        );
        assert_eq!(
            hour.refills_at(ten - s),
            ten,
            "the boundary is the next window"
        );
        assert_eq!(hour.refills_at(ten), ten + TimeDelta::hours(1));
        let midnight = t0() + TimeDelta::days(1);
        assert_eq!(
            day.window_index(midnight - s) + 1,
            day.window_index(midnight)
        );
        assert_eq!(day.refills_at(t0() + TimeDelta::hours(23)), midnight);
        assert_eq!(day.window_index(t0()), 20_454, "days since 1970-01-01");
        let before_epoch = DateTime::<Utc>::UNIX_EPOCH - s;
        assert_eq!(hour.window_index(before_epoch), -1);
        assert_eq!(hour.refills_at(before_epoch), DateTime::<Utc>::UNIX_EPOCH);
    }

    #[test]
    fn a_budget_allows_exactly_its_limit() {
        let b = LoginProtection::default().phone_codes();
        assert!(b.allows(4));
        assert!(!b.allows(5));
        let nothing = SendBudget {
            limit: 0,
            window: TimeDelta::zero(),
        };
        assert!(!nothing.allows(0));
        assert_eq!(
            nothing.window_index(t0()),
            t0().timestamp(),
            "one-second windows"
        );
        assert_eq!(nothing.reset_after(), TimeDelta::seconds(1));
        assert_eq!(b.reset_after(), TimeDelta::hours(1));
    }
}
