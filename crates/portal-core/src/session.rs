//! Server-side sessions. The client holds an opaque [`Token`](crate::secret::Token); storage holds
//! its hash, the user, and two expiry times: an absolute one (24 h by default) and an idle one that
//! moves with activity (1 h by default). Both are checked on every request, so a cookie that
//! outlives them is refused whatever its own expiry says.

use crate::customer::CorruptRecord;
use crate::ids::{SessionId, UserId};
use crate::mfa::PendingCode;
use crate::secret::TokenHash;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// What a stored session token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionKind {
    /// A logged-in session: the only kind that authenticates requests.
    Full,
    /// The password was right, the second factor is still missing. Can do nothing but finish the
    /// login with a second factor, for a few minutes (R16, ASVS 6.3.4).
    MfaPending {
        /// Wrong codes left before the attempt is void.
        attempts_left: u32,
        /// A code sent by SMS or voice call for this attempt.
        phone_code: Option<PendingCode>,
    },
    /// "Mich auf diesem Gerät für 30 Tage merken": skips only the second factor at login, never the
    /// password, and never satisfies a step-up (R18).
    RememberedDevice,
}

impl SessionKind {
    /// Stable key.
    #[must_use]
    pub const fn key(&self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::MfaPending { .. } => "mfa_pending",
            Self::RememberedDevice => "remembered_device",
        }
    }
}

/// Session lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle_timeout: TimeDelta,
    /// A session ends this long after login, however active.
    pub absolute_timeout: TimeDelta,
    /// "Last seen" is written at most this often per session.
    pub touch_interval: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: TimeDelta::hours(1),
            absolute_timeout: TimeDelta::hours(24),
            touch_interval: TimeDelta::minutes(1),
        }
    }
}

/// Where a session was started from, kept coarse and bounded (shown in the session list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientInfo {
    /// Client address as seen by the server.
    pub ip: Option<String>,
    /// User agent, cut to 200 characters.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// Builds client info, cutting over-long values.
    #[must_use]
    pub fn new(ip: Option<&str>, user_agent: Option<&str>) -> Self {
        let cut = |s: &str, n: usize| -> String {
            s.chars().filter(|c| !c.is_control()).take(n).collect()
        };
        Self {
            ip: ip.map(|s| cut(s, 64)),
            user_agent: user_agent.map(|s| cut(s, 200)),
        }
    }
}

/// Everything stored about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Id (safe to show; not the token).
    pub id: SessionId,
    /// Hash of the bearer token.
    pub token_hash: TokenHash,
    /// Whose session.
    pub user_id: UserId,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last request seen (written at most once per touch interval).
    pub last_seen_at: DateTime<Utc>,
    /// Ends when unused until then.
    pub idle_expires_at: DateTime<Utc>,
    /// Ends then at the latest.
    pub expires_at: DateTime<Utc>,
    /// When the user last proved a credential in this session (for step-up).
    pub authenticated_at: DateTime<Utc>,
    /// Where from.
    pub client: ClientInfo,
    /// What the token stands for.
    pub kind: SessionKind,
    /// How the user authenticated for this session, as OIDC `amr` values (`pwd`, `otp`, `sms`,
    /// `rc` for a recovery code, `device` for a remembered device standing in for the second
    /// factor). Empty on sessions stored before migration 000006 read as `["pwd"]`.
    pub methods: Vec<String>,
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    rec: SessionRecord,
}

impl Session {
    /// A session starting now.
    #[must_use]
    pub fn start(
        id: SessionId,
        token_hash: TokenHash,
        user_id: UserId,
        client: ClientInfo,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Self {
        let expires_at = now + policy.absolute_timeout;
        Self {
            rec: SessionRecord {
                id,
                token_hash,
                user_id,
                created_at: now,
                last_seen_at: now,
                idle_expires_at: (now + policy.idle_timeout).min(expires_at),
                expires_at,
                authenticated_at: now,
                client,
                kind: SessionKind::Full,
                methods: vec!["pwd".to_owned()],
            },
        }
    }

    /// The short-lived state between a correct password and the second factor.
    #[must_use]
    pub fn start_mfa_pending(
        id: SessionId,
        token_hash: TokenHash,
        user_id: UserId,
        client: ClientInfo,
        ttl: TimeDelta,
        attempts: u32,
        now: DateTime<Utc>,
    ) -> Self {
        Self::fixed(
            id,
            token_hash,
            user_id,
            client,
            ttl,
            SessionKind::MfaPending {
                attempts_left: attempts,
                phone_code: None,
            },
            now,
        )
    }

    /// A remembered device: lives `ttl` from now, absolutely (activity does not extend it).
    #[must_use]
    pub fn start_remembered_device(
        id: SessionId,
        token_hash: TokenHash,
        user_id: UserId,
        client: ClientInfo,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Self {
        Self::fixed(
            id,
            token_hash,
            user_id,
            client,
            ttl,
            SessionKind::RememberedDevice,
            now,
        )
    }

    fn fixed(
        id: SessionId,
        token_hash: TokenHash,
        user_id: UserId,
        client: ClientInfo,
        ttl: TimeDelta,
        kind: SessionKind,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            rec: SessionRecord {
                id,
                token_hash,
                user_id,
                created_at: now,
                last_seen_at: now,
                idle_expires_at: now + ttl,
                expires_at: now + ttl,
                authenticated_at: now,
                client,
                kind,
                methods: vec!["pwd".to_owned()],
            },
        }
    }

    /// What the token stands for.
    #[must_use]
    pub fn kind(&self) -> &SessionKind {
        &self.rec.kind
    }

    /// Whether this is a logged-in session (the only kind that authenticates requests).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.rec.kind == SessionKind::Full
    }

    /// Whether the user proved a credential in this session since `since` (step-up).
    #[must_use]
    pub fn authenticated_since(&self, since: DateTime<Utc>) -> bool {
        self.rec.authenticated_at >= since
    }

    /// Uses up one second-factor try of a pending login; returns the tries left.
    pub fn spend_attempt(&mut self) -> u32 {
        if let SessionKind::MfaPending { attempts_left, .. } = &mut self.rec.kind {
            *attempts_left = attempts_left.saturating_sub(1);
            *attempts_left
        } else {
            0
        }
    }

    /// Records how the user authenticated (OIDC `amr` values).
    pub fn set_methods(&mut self, methods: Vec<String>) {
        self.rec.methods = methods;
    }

    /// How the user authenticated (OIDC `amr` values).
    #[must_use]
    pub fn methods(&self) -> &[String] {
        &self.rec.methods
    }

    /// When the user authenticated.
    #[must_use]
    pub fn authenticated_at(&self) -> DateTime<Utc> {
        self.rec.authenticated_at
    }

    /// Stores the code sent to the phone for this pending login (replacing an older one).
    pub fn set_phone_code(&mut self, code: PendingCode) {
        if let SessionKind::MfaPending { phone_code, .. } = &mut self.rec.kind {
            *phone_code = Some(code);
        }
    }

    /// Rebuilds a session read back from storage.
    ///
    /// # Errors
    /// Times out of order.
    pub fn from_record(rec: SessionRecord) -> Result<Self, CorruptRecord> {
        if rec.expires_at < rec.created_at || rec.idle_expires_at > rec.expires_at {
            return Err(CorruptRecord::new("session", "expiry times out of order"));
        }
        Ok(Self { rec })
    }

    /// The stored fields.
    #[must_use]
    pub fn record(&self) -> &SessionRecord {
        &self.rec
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.rec.id
    }

    /// Whose session.
    #[must_use]
    pub fn user_id(&self) -> UserId {
        self.rec.user_id
    }

    /// Whether the session is still alive at `now`: before both the idle and the absolute expiry.
    #[must_use]
    pub fn is_alive_at(&self, now: DateTime<Utc>) -> bool {
        now < self.rec.idle_expires_at && now < self.rec.expires_at
    }

    /// Whether "last seen" is old enough to be written again.
    #[must_use]
    pub fn needs_touch(&self, policy: &SessionPolicy, now: DateTime<Utc>) -> bool {
        now - self.rec.last_seen_at >= policy.touch_interval
    }

    /// Records activity: moves the idle expiry, never past the absolute one. Ignores a clock that
    /// went backwards, so a session never gains life from it.
    pub fn touch(&mut self, policy: &SessionPolicy, now: DateTime<Utc>) {
        if now <= self.rec.last_seen_at {
            return;
        }
        self.rec.last_seen_at = now;
        self.rec.idle_expires_at = (now + policy.idle_timeout).min(self.rec.expires_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap()
    }

    fn session() -> Session {
        Session::start(
            SessionId::from_uuid(Uuid::from_u128(1)),
            TokenHash::from_bytes([1; 32]),
            UserId::from_uuid(Uuid::from_u128(2)),
            ClientInfo::default(),
            &SessionPolicy::default(),
            t0(),
        )
    }

    #[test]
    fn idle_timeout_ends_a_session_at_exactly_one_hour() {
        let s = session();
        assert!(s.is_alive_at(t0() + TimeDelta::seconds(3599)));
        assert!(!s.is_alive_at(t0() + TimeDelta::seconds(3600)));
    }

    #[test]
    fn activity_keeps_a_session_alive_until_the_absolute_limit() {
        let p = SessionPolicy::default();
        let mut s = session();
        let mut now = t0();
        for _ in 0..28 {
            now += TimeDelta::minutes(50);
            assert!(s.is_alive_at(now), "alive at {now}");
            s.touch(&p, now);
        }
        // 28 × 50 min = 23 h 20 min; the next 50 minutes cross 24 h.
        assert!(s.is_alive_at(t0() + TimeDelta::hours(24) - TimeDelta::seconds(1)));
        assert!(!s.is_alive_at(t0() + TimeDelta::hours(24)));
    }

    #[test]
    fn a_clock_going_backwards_gives_no_extra_life() {
        let p = SessionPolicy::default();
        let mut s = session();
        let before = s.record().idle_expires_at;
        s.touch(&p, t0() - TimeDelta::minutes(10));
        assert_eq!(s.record().idle_expires_at, before);
    }

    #[test]
    fn touch_is_rate_limited() {
        let p = SessionPolicy::default();
        let s = session();
        assert!(!s.needs_touch(&p, t0() + TimeDelta::seconds(59)));
        assert!(s.needs_touch(&p, t0() + TimeDelta::seconds(60)));
    }

    #[test]
    fn client_info_is_bounded_and_clean() {
        let c = ClientInfo::new(Some("127.0.0.1"), Some(&format!("a\nb{}", "x".repeat(500))));
        assert_eq!(c.user_agent.as_deref().map(str::len), Some(200));
        assert!(!c.user_agent.unwrap().contains('\n'));
    }
}
