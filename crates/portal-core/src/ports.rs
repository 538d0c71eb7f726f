//! Ports: what the core needs from the outside world, as traits. Adapters implement them
//! (`adapters-memory`, `adapters-postgres`, …); the core never does I/O itself.
//!
//! Storage is split in two: [`Queries`] (reads) and [`Committer`] (the one atomic write). A use
//! case reads what it needs, decides, and hands the committer one [`Commit`]: expected versions,
//! entity writes, audit records and outbox mails, applied all together or not at all.

use crate::admin_request::{AdminRequest, AdminRequestStatus};
use crate::audit::{AuditCategory, AuditEntry, AuditRecord};
use crate::challenge::EmailChallenge;
use crate::customer::{CorruptRecord, Customer};
use crate::ids::OutboxId;
use crate::ids::{AdminRequestId, CustomerId, SessionId, UserId};
use crate::mail::{OutboxEntry, OutboxMail, OutboxStats};
use crate::password::{Password, PasswordHash};
use crate::secret::{SecretString, TokenHash};
use crate::session::Session;
use crate::token::{ActionToken, TokenPurpose};
use crate::user::User;
use crate::values::{CustomerNumber, EmailAddress};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Time, ids, randomness
// ---------------------------------------------------------------------------------------------

/// The source of the current time. Every time the core uses comes from here.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// Mints entity ids.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new, unique id. Implementations SHOULD return time-ordered ids (UUIDv7) so inserts stay
    /// local in indexes.
    fn new_id(&self) -> Uuid;
}

/// Cryptographically secure randomness for tokens, codes and salts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SecretGenerator: Send + Sync {
    /// Fills `buf` with random bytes. Production implementations MUST draw from the operating
    /// system's CSPRNG.
    fn fill(&self, buf: &mut [u8]);
}

// ---------------------------------------------------------------------------------------------
// Password hashing
// ---------------------------------------------------------------------------------------------

/// Hashing failed (bad parameters, out of memory). Never carries the password.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Hashes and verifies passwords (R13). The production implementation is
/// [`Argon2idHasher`](crate::hashing::Argon2idHasher); servers wrap it to run on dedicated threads
/// behind a semaphore.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with a fresh salt.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `candidate` matches `hash`. MUST take the same time whether it matches or not.
    async fn verify(
        &self,
        candidate: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError>;

    /// Spends the time of one verification against a dummy hash and returns `false`, so an
    /// unknown user costs what a known one does (R14).
    async fn verify_dummy(&self, candidate: &SecretString) -> Result<bool, HashError>;

    /// Whether a hash was made with weaker parameters than the current ones and should be
    /// replaced at the next successful login.
    fn needs_rehash(&self, hash: &PasswordHash) -> bool;
}

// ---------------------------------------------------------------------------------------------
// Legacy directory ("Servicewelt")
// ---------------------------------------------------------------------------------------------

/// An account of the old system, found by its username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAccount {
    /// Stable id of the old account (each can be linked once).
    pub id: String,
    /// The customer it belonged to.
    pub customer_number: CustomerNumber,
}

/// The legacy directory could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("legacy directory unavailable: {0}")]
pub struct LegacyError(pub String);

/// The directory of old accounts ("Servicewelt-Zugangsdaten").
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LegacyDirectory: Send + Sync {
    /// Looks up an old account by username and password. Returns `None` for an unknown username
    /// or a wrong password alike.
    async fn verify(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<LegacyAccount>, LegacyError>;
}

/// A legacy directory with no accounts, for installations without an old system.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLegacyDirectory;

#[async_trait]
impl LegacyDirectory for NoLegacyDirectory {
    async fn verify(
        &self,
        _username: &str,
        _password: &SecretString,
    ) -> Result<Option<LegacyAccount>, LegacyError> {
        Ok(None)
    }
}

/// Records that an old account was linked, so it cannot be linked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyClaim {
    /// The old account's id.
    pub legacy_id: String,
    /// Who linked it.
    pub user_id: UserId,
    /// To which customer.
    pub customer_id: CustomerId,
    /// When.
    pub claimed_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Phone codes (SMS / voice)
// ---------------------------------------------------------------------------------------------

/// Why a phone code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneCodePurpose {
    /// The second step of a login.
    Login,
    /// Confirming a new MFA phone.
    Enrolment,
    /// A fresh recovery code for the recovery phone.
    Recovery,
}

/// A code to deliver by SMS or voice call.
#[derive(Debug, Clone)]
pub struct PhoneMessage {
    /// Recipient.
    pub to: crate::mfa::PhoneNumber,
    /// SMS or voice.
    pub channel: crate::mfa::PhoneChannel,
    /// The code (redacted in `Debug`).
    pub code: SecretString,
    /// Why.
    pub purpose: PhoneCodePurpose,
    /// Language of the text.
    pub language: crate::values::Language,
}

/// The phone gateway could not take the message.
#[derive(Debug, thiserror::Error)]
#[error("phone gateway: {0}")]
pub struct SmsError(pub String);

/// Sends codes by SMS or voice call (R19). Called after the commit that stored the code's hash;
/// a failure is reported to the user, who can ask again.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Delivers one message.
    async fn send(&self, message: &PhoneMessage) -> Result<(), SmsError>;
}

/// No phone gateway: SMS and voice factors cannot be set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSmsSender;

#[async_trait]
impl SmsSender for NoSmsSender {
    async fn send(&self, _message: &PhoneMessage) -> Result<(), SmsError> {
        Err(SmsError("no phone gateway configured".into()))
    }
}

// ---------------------------------------------------------------------------------------------
// Storage errors
// ---------------------------------------------------------------------------------------------

/// A uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueKey {
    /// Two accounts (not pending registrations) with one e-mail address.
    UserEmail,
    /// Two customers with one number.
    CustomerNumber,
    /// An old account linked twice.
    LegacyAccount,
    /// Another unique key (adapter-specific).
    Other(&'static str),
}

/// What storage can answer besides data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An expected version did not match, or an entity to update is gone: someone else changed
    /// it first. Nothing was written. The use case may reload and retry.
    #[error("concurrent modification")]
    Conflict,
    /// A write broke a uniqueness rule. Nothing was written.
    #[error("duplicate {0:?}")]
    Duplicate(UniqueKey),
    /// A stored row breaks a domain rule when read back.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The backend cannot be reached (connection refused, pool exhausted, timeout).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("storage failure: {message}")]
    Backend {
        /// What failed, without personal data.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend failure with a message.
    #[must_use]
    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend {
            message: message.into(),
            source: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The atomic commit
// ---------------------------------------------------------------------------------------------

/// One write inside a [`Commit`].
///
/// `Update*` and `DeleteUser` carry the entity as it was loaded: implementations MUST apply them
/// only if the stored version equals the entity's `version()` and MUST store `version() + 1`;
/// otherwise (or if the row is gone) the whole commit fails with [`StoreError::Conflict`].
/// `Expect*` check a version without writing; implementations MUST hold the checked row (e.g.
/// a row lock) until the commit ends.
#[derive(Debug, Clone)]
pub enum Write {
    /// Fails the commit unless the user still has this version.
    ExpectUser {
        /// User.
        id: UserId,
        /// Version it must have.
        version: u64,
    },
    /// Inserts a customer (version 1). [`UniqueKey::CustomerNumber`] on a taken number.
    InsertCustomer(Customer),
    /// Updates a customer.
    UpdateCustomer(Customer),
    /// Inserts a user (version 1). [`UniqueKey::UserEmail`] when an account (any state but
    /// pending verification) already has the address.
    InsertUser(User),
    /// Updates a user (same uniqueness rule).
    UpdateUser(User),
    /// Deletes a user with their sessions, challenges, link tokens and admin requests.
    DeleteUser(User),
    /// Stores a new session.
    InsertSession(Session),
    /// Replaces a stored session (second-step attempts, a code sent to the phone). No error if
    /// the session is gone.
    UpdateSession(Session),
    /// Ends a session (no error if already gone).
    DeleteSession(SessionId),
    /// Ends all sessions of a user, optionally but one.
    DeleteSessionsOfUser {
        /// Whose.
        user: UserId,
        /// The one to keep.
        except: Option<SessionId>,
    },
    /// Stores a new code challenge.
    InsertChallenge(EmailChallenge),
    /// Updates a challenge (tries left, re-sent code).
    UpdateChallenge(EmailChallenge),
    /// Removes all challenges of a user.
    DeleteChallengesOfUser(UserId),
    /// Stores a new link token.
    InsertActionToken(ActionToken),
    /// Updates a link token (used).
    UpdateActionToken(ActionToken),
    /// Removes a user's link tokens of one purpose (or all).
    DeleteActionTokensOfUser {
        /// Whose.
        user: UserId,
        /// Which; all when `None`.
        purpose: Option<TokenPurpose>,
    },
    /// Stores a new admin request.
    InsertAdminRequest(AdminRequest),
    /// Updates an admin request.
    UpdateAdminRequest(AdminRequest),
    /// Records a linked legacy account. [`UniqueKey::LegacyAccount`] when already linked.
    InsertLegacyClaim(LegacyClaim),
}

/// Everything one use case changes, applied atomically: all writes, audit records and outbox
/// mails, or none of them.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Expected versions and entity writes, in order.
    pub writes: Vec<Write>,
    /// Audit records to append to their chains.
    pub audit: Vec<AuditRecord>,
    /// Mails to queue.
    pub outbox: Vec<OutboxMail>,
}

impl Commit {
    /// An empty commit.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write.
    pub fn write(&mut self, w: Write) -> &mut Self {
        self.writes.push(w);
        self
    }

    /// Adds an audit record.
    pub fn audit(&mut self, r: AuditRecord) -> &mut Self {
        self.audit.push(r);
        self
    }

    /// Adds a mail.
    pub fn mail(&mut self, m: OutboxMail) -> &mut Self {
        self.outbox.push(m);
        self
    }

    /// Whether there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.audit.is_empty() && self.outbox.is_empty()
    }
}

/// Applies commits.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Committer: Send + Sync {
    /// Applies every write, appends every audit record to its chain (see
    /// [`audit::chain`](crate::audit::chain)) and queues every mail, in one transaction.
    ///
    /// Implementations MUST leave no trace of a failed commit: no entity, no audit entry, no mail.
    /// They MUST return [`StoreError::Conflict`] when a version check fails and
    /// [`StoreError::Duplicate`] when a uniqueness rule is broken.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// Records activity on a session: writes `last_seen_at` and `idle_expires_at`. Not audited
    /// (housekeeping); a missing session is not an error.
    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Counts one event (a failed login, a sent code) for `key` and returns the counter after it.
    /// If the last event is `reset_after` or longer ago, the count starts again at 1 (a sliding
    /// quiet period, what login throttles want; send budgets get fixed windows by naming the
    /// window in the key instead, see [`SendBudget`](crate::throttle::SendBudget)).
    /// Implementations MUST increment atomically: concurrent calls never lose an event
    /// (`INSERT … ON CONFLICT DO UPDATE SET count = count + 1 … RETURNING`). Not audited.
    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        reset_after: chrono::TimeDelta,
    ) -> Result<Counter, StoreError>;

    /// Removes a counter (after a successful login, or a password reset). Not audited.
    async fn reset_counter(&self, key: &str) -> Result<(), StoreError>;

    /// Housekeeping: deletes up to `limit` rows of `kind` that are dead at `cutoff` (see
    /// [`Expired`] for what that means per kind) and returns how many it deleted. Each call is
    /// its own short transaction, so a purge never holds locks for long; callers repeat it while
    /// it returns `limit`. Not audited: only rows nothing can use any more are removed (the core
    /// picks cut-offs past every rule that reads them, see
    /// [`Portal::housekeeping`](crate::service::Portal::housekeeping)).
    async fn purge_expired(
        &self,
        kind: Expired,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// Rows that housekeeping removes once they are dead, and when each kind counts as dead at a
/// cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expired {
    /// Sessions of every kind (logged in, half-way through MFA, remembered devices) whose idle
    /// or absolute expiry is at or before the cut-off.
    Sessions,
    /// Mailed-code attempts (registrations, invitations accepted, e-mail changes) started at or
    /// before the cut-off.
    Challenges,
    /// Link tokens (invitations, reset links) whose expiry is at or before the cut-off, used or
    /// not.
    ActionTokens,
    /// Rate counters whose last event is at or before the cut-off.
    Counters,
}

impl Expired {
    /// Every kind, in the order housekeeping purges them.
    pub const ALL: [Self; 4] = [
        Self::Sessions,
        Self::Challenges,
        Self::ActionTokens,
        Self::Counters,
    ];

    /// Stable key (logs, reports).
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Challenges => "challenges",
            Self::ActionTokens => "action_tokens",
            Self::Counters => "counters",
        }
    }
}

/// A rate counter: how many events, and when the last one happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Events counted since the counter (re)started.
    pub count: u32,
    /// When the last event happened.
    pub last_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// Where a list page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart<C> {
    /// The first page.
    First,
    /// Skip this many rows (page numbers; only for the first pages, bounded by the core).
    Offset(u32),
    /// After this row (keyset paging; any depth).
    After(C),
}

/// Position in a user list: users are ordered by (`sort_key`, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    /// [`User::sort_key`] of the last row seen.
    pub sort_key: String,
    /// Id of the last row seen.
    pub id: UserId,
}

/// A page of a customer's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Whose users (never crosses customers).
    pub customer: CustomerId,
    /// Lower-case substring to find in [`User::search_text`].
    pub search: Option<String>,
    /// Where to start.
    pub start: PageStart<UserCursor>,
    /// Rows to return; implementations return up to `limit + 1` so the core can tell whether
    /// there is a next page.
    pub limit: u32,
}

/// A page of the change log, newest first, within one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// The chain: a customer's, or the global one (`None`).
    pub customer: Option<CustomerId>,
    /// Only entries about this user.
    pub subject: Option<UserId>,
    /// Only these categories (all when empty).
    pub categories: Vec<AuditCategory>,
    /// Search: entries whose details contain this lower-case text, or whose category is one of
    /// `search_categories` (categories whose label matched the search text).
    pub search: Option<String>,
    /// See `search`.
    pub search_categories: Vec<AuditCategory>,
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// Entries with a sequence number below this one (keyset paging).
    pub before_seq: Option<u64>,
    /// Rows to return (implementations return up to `limit + 1`).
    pub limit: u32,
}

/// A page of customers, ordered by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Substring of the number or lower-case company name.
    pub search: Option<String>,
    /// Customers with a number greater than this one.
    pub after: Option<CustomerNumber>,
    /// Rows to return (implementations return up to `limit + 1`).
    pub limit: u32,
}

/// Which admin requests to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminRequestFilter {
    /// Of this customer only.
    pub customer: Option<CustomerId>,
    /// Of this requester only.
    pub requester: Option<UserId>,
    /// In these states only (all when empty).
    pub statuses: Vec<AdminRequestStatus>,
}

/// A session with the user it belongs to and that user's customer, loaded in one go for the
/// per-request check.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
    /// The user's customer.
    pub customer: Option<Customer>,
}

/// Reads. Every method answers from committed state only.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Queries: Send + Sync {
    /// A customer by id.
    async fn customer(&self, id: CustomerId) -> Result<Option<Customer>, StoreError>;
    /// A customer by number.
    async fn customer_by_number(
        &self,
        number: &CustomerNumber,
    ) -> Result<Option<Customer>, StoreError>;
    /// Customers ordered by number (up to `limit + 1`).
    async fn customers(&self, query: &CustomerQuery) -> Result<Vec<Customer>, StoreError>;

    /// A user by id (any state).
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Users by id (any state, any order; unknown ids are skipped).
    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError>;
    /// The account with this address: any state except pending verification.
    async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError>;
    /// A customer's users in any state but pending verification, ordered by (sort key, id), up
    /// to `limit + 1`.
    async fn users_of_customer(&self, query: &UserQuery) -> Result<Vec<User>, StoreError>;
    /// How many users [`Self::users_of_customer`] would list, counting at most `cap`.
    async fn count_users_of_customer(
        &self,
        customer: CustomerId,
        search: Option<String>,
        cap: u64,
    ) -> Result<u64, StoreError>;
    /// A customer's administrators (any state).
    async fn admins_of_customer(&self, customer: CustomerId) -> Result<Vec<User>, StoreError>;
    /// All operators (any state).
    async fn operators(&self) -> Result<Vec<User>, StoreError>;

    /// The live session with this token hash, its user and customer. Implementations MUST NOT
    /// return a session whose idle or absolute expiry is at or before `now`.
    async fn session_context(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionContext>, StoreError>;
    /// A user's sessions (including expired ones not yet purged).
    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<Session>, StoreError>;

    /// How many challenges were started for this address at or after `since` (a cap on code
    /// mails per address).
    async fn count_challenges_sent_to(
        &self,
        email: &EmailAddress,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError>;
    /// The challenge whose ticket has this hash.
    async fn challenge_by_ticket(
        &self,
        ticket_hash: &TokenHash,
    ) -> Result<Option<EmailChallenge>, StoreError>;

    /// The link token with this hash and purpose.
    async fn action_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<ActionToken>, StoreError>;
    /// A user's link tokens of one purpose.
    async fn action_tokens_of_user(
        &self,
        user: UserId,
        purpose: TokenPurpose,
    ) -> Result<Vec<ActionToken>, StoreError>;

    /// An admin request by id.
    async fn admin_request(&self, id: AdminRequestId) -> Result<Option<AdminRequest>, StoreError>;
    /// Admin requests, newest first.
    async fn admin_requests(
        &self,
        filter: &AdminRequestFilter,
    ) -> Result<Vec<AdminRequest>, StoreError>;

    /// A rate counter (failed logins, sent codes), if it exists.
    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError>;

    /// Whether an old account was linked already.
    async fn legacy_claim(&self, legacy_id: &str) -> Result<Option<LegacyClaim>, StoreError>;

    /// A page of the change log, newest first (up to `limit + 1`).
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// A stretch of a chain in sequence order, for verification: entries with `seq > after_seq`,
    /// at most `limit`.
    async fn audit_chain(
        &self,
        customer: Option<CustomerId>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

impl fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UserEmail => f.write_str("user email"),
            Self::CustomerNumber => f.write_str("customer number"),
            Self::LegacyAccount => f.write_str("legacy account"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outbox (for dispatchers)
// ---------------------------------------------------------------------------------------------

/// The mail queue, as dispatchers use it (R21). Mails enter it only through [`Committer::commit`].
///
/// Delivery is at least once: a dispatcher claims mails with a lease, sends them, and acknowledges
/// each with its claim id. Implementations MUST never hand the same mail to two claims whose
/// leases overlap (Postgres: `FOR UPDATE SKIP LOCKED`; SQLite: a single-writer transaction), and
/// MUST ignore an acknowledgement whose claim id is no longer the mail's current claim.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` mails that are due at `now` — pending with `next_attempt_at <= now`,
    /// or claimed with a lease that ended — oldest first. Each claimed mail gets status
    /// `Claimed`, the given `claim` id, `claimed_until = lease_until`, and one more attempt.
    async fn claim_outbox(
        &self,
        claim: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// The mail was delivered: status `Sent`, its secret purged. Returns `false` (and changes
    /// nothing) if `claim` is not the mail's current claim.
    async fn mark_sent(
        &self,
        id: OutboxId,
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The attempt failed: back to `Pending` until `retry_at`, or `Dead` when `retry_at` is
    /// `None`. Returns `false` (and changes nothing) if `claim` is not the current claim.
    async fn mark_failed(
        &self,
        id: OutboxId,
        claim: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Gives a claim back unsent (shutdown): `Pending` again, due at once, the attempt not
    /// counted. Returns `false` if `claim` is not the current claim.
    async fn release(&self, id: OutboxId, claim: Uuid) -> Result<bool, StoreError>;

    /// Dead-lettered mails, newest first.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Puts a dead mail back in the queue, due at `now`, with its attempts reset. Returns
    /// whether the mail was dead.
    async fn requeue(&self, id: OutboxId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// One mail with its delivery state.
    async fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>, StoreError>;

    /// How many mails are in each state.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// Housekeeping: deletes up to `limit` delivered mails sent at or before `sent_before` and
    /// returns how many. Pending, claimed and dead mails are never touched. Not audited (the
    /// audit log records what was sent; a delivered mail holds no secret any more).
    async fn purge_sent(&self, sent_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
}
