//! The atomic commit: the one write port (R5, R20, R21), plus session touches, rate counters and
//! housekeeping purges.

use super::{LegacyClaim, LegacyRecord, StoreError};
use crate::admin_request::AdminRequest;
use crate::audit::AuditRecord;
use crate::challenge::EmailChallenge;
use crate::customer::Customer;
use crate::ids::{OutboxId, SessionId, UserId};
use crate::mail::OutboxMail;
use crate::outbox::OutboxMessage;
use crate::session::Session;
use crate::token::{ActionToken, TokenPurpose};
use crate::user::User;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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
    /// Inserts a customer (version 1). [`UniqueKey::CustomerNumber`](super::UniqueKey::CustomerNumber) on a taken number.
    InsertCustomer(Customer),
    /// Updates a customer.
    UpdateCustomer(Customer),
    /// Inserts a user (version 1). [`UniqueKey::UserEmail`](super::UniqueKey::UserEmail) when an account (any state but
    /// pending verification) already has the address.
    InsertUser(User),
    /// Updates a user (same uniqueness rule). The time of the last sign-in never moves back:
    /// implementations MUST store the later of the stored `last_login_at` and the entity's (a
    /// change planned before a concurrent [`Write::RecordLogin`] keeps that login's time).
    UpdateUser(User),
    /// Records a sign-in: fails the commit unless the user still has this version (holding the
    /// row, like [`Write::ExpectUser`]), and sets `last_login_at` to the later of the stored one
    /// and `at` **without** storing a new version. A sign-in is not a change of the account:
    /// concurrent sign-ins of one account do not conflict with each other, and a change an
    /// administrator planned before one still applies.
    RecordLogin {
        /// User.
        id: UserId,
        /// Version it must have.
        version: u64,
        /// When.
        at: DateTime<Utc>,
    },
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
    /// Records a linked legacy account and deletes the old account's password hash (its
    /// [`LegacyRecord::hash`](super::LegacyRecord::hash) becomes `None`, when the directory holds
    /// the account). [`UniqueKey::LegacyAccount`](super::UniqueKey::LegacyAccount) when already
    /// linked.
    InsertLegacyClaim(LegacyClaim),
    /// Inserts or replaces an old account (by its id) from an import.
    PutLegacyAccount(LegacyRecord),
    /// Stores a new OIDC client ([`StoreError::Duplicate`] when the id is taken).
    InsertOidcClient(crate::oidc::Client),
    /// Updates an OIDC client (versioned).
    UpdateOidcClient(crate::oidc::Client),
    /// Stores a new grant.
    InsertOidcGrant(crate::oidc::Grant),
    /// Updates a grant (revocation; versioned).
    UpdateOidcGrant(crate::oidc::Grant),
    /// Stores a code or token (by hash).
    InsertOidcToken(crate::oidc::OidcToken),
    /// Marks a code or token used at `at`. Fails the commit with [`StoreError::Conflict`]
    /// unless it exists and was not used yet (implementations MUST decide this atomically, so
    /// of two concurrent uses exactly one succeeds).
    UseOidcToken {
        /// Its hash.
        hash: crate::secret::TokenHash,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stores a new signing key.
    InsertSigningKey(crate::oidc::SigningKey),
    /// Updates a signing key (retirement; versioned).
    UpdateSigningKey(crate::oidc::SigningKey),
    /// Records that a user agreed to a client's scopes (replaces an earlier consent).
    UpsertOidcConsent {
        /// Who.
        user: UserId,
        /// Which client.
        client_id: String,
        /// Which scopes.
        scopes: Vec<String>,
    },
    /// Stores a passkey ceremony's challenge.
    InsertPasskeyChallenge(crate::passkey::PasskeyChallenge),
    /// Marks a passkey challenge answered at `at`. Fails the commit with
    /// [`StoreError::Conflict`] unless it exists and was not used yet (implementations MUST
    /// decide this atomically, so of two concurrent answers exactly one succeeds).
    UsePasskeyChallenge {
        /// Its id.
        id: uuid::Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Records that values in this database are (or will be) sealed under the key with this id
    /// ([`MfaKey::id`](crate::secretbox::MfaKey::id), a keyed hash: never the key). No error if
    /// it is recorded already.
    InsertSealingKey {
        /// The key id.
        id: String,
        /// When it was first seen.
        at: DateTime<Utc>,
    },
    /// Forgets a sealing key id (after everything it sealed was re-sealed). No error if it is
    /// not recorded.
    DeleteSealingKey(String),
    /// Removes rate counters (no error for one that does not exist): a successful login
    /// forgives its failures in the commit that records it (one statement for all of them).
    /// Not audited, like [`Committer::reset_counter`].
    DeleteCounters(Vec<String>),
    /// Puts a dead-lettered outbox message (of any kind, also one this build does not know)
    /// back in the queue: `Pending`, due at `at`, attempts reset, its last error kept. Fails the
    /// commit with [`StoreError::Conflict`] unless the message exists and is `Dead`.
    RequeueOutbox {
        /// The message.
        id: OutboxId,
        /// Due again at.
        at: DateTime<Utc>,
    },
    /// Stores a new webhook endpoint (version 1; [`StoreError::Conflict`] when the id is taken).
    InsertWebhook(crate::webhook::WebhookEndpoint),
    /// Updates a webhook endpoint (versioned).
    UpdateWebhook(crate::webhook::WebhookEndpoint),
    /// Removes a webhook endpoint (versioned) with its sequence cursors. Its queued deliveries
    /// stay in the outbox (the sender dead-letters them).
    DeleteWebhook(crate::webhook::WebhookEndpoint),
}

/// Everything one use case changes, applied atomically: all writes, audit records and outbox
/// messages, or none of them.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Expected versions and entity writes, in order.
    pub writes: Vec<Write>,
    /// Audit records to append to their chains.
    pub audit: Vec<AuditRecord>,
    /// Outgoing messages to queue (mail and every other [kind](crate::outbox::OutboxKind)).
    pub outbox: Vec<OutboxMessage>,
    /// The [generation of the webhook endpoints](crate::webhook::WebhookSnapshot) the commit's
    /// webhook deliveries were computed from; the service sets it on every commit with audit
    /// records. See [`Committer::commit`] for what storage checks.
    pub webhooks_generation: Option<u64>,
}

impl Write {
    /// Whether it writes a webhook endpoint (and so moves the endpoints' generation by one).
    #[must_use]
    pub fn is_webhook_endpoint(&self) -> bool {
        matches!(
            self,
            Self::InsertWebhook(_) | Self::UpdateWebhook(_) | Self::DeleteWebhook(_)
        )
    }
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
        self.outbox.push(m.into());
        self
    }

    /// Adds an outgoing message of any kind.
    pub fn message(&mut self, m: OutboxMessage) -> &mut Self {
        self.outbox.push(m);
        self
    }

    /// The mails among the outgoing messages, in order.
    #[must_use]
    pub fn mails(&self) -> Vec<OutboxMail> {
        self.outbox
            .iter()
            .filter_map(OutboxMessage::as_mail)
            .collect()
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
    /// [`audit::chain`](crate::audit::chain)) and queues every outgoing message, in one
    /// transaction.
    ///
    /// Implementations MUST leave no trace of a failed commit: no entity, no audit entry, no
    /// message.
    ///
    /// Webhook deliveries ([`Payload::Webhook`](crate::outbox::Payload::Webhook)) report an
    /// audit record of the same commit. Before queuing one, implementations MUST call its
    /// [`place`](crate::webhook::WebhookDelivery::place) with the entries the commit appended,
    /// and set its event's [`previous_seq`](crate::webhook::WebhookEventData::previous_seq) to
    /// the `seq` of the last delivery queued for the same endpoint and chain (`None` for the
    /// first), remembering this one's `seq` for the next, in message order and atomically with
    /// the append (the chain's lock serializes it).
    /// They MUST return [`StoreError::Conflict`] when a version check fails and
    /// [`StoreError::Duplicate`] when a uniqueness rule is broken.
    ///
    /// Every write of a webhook endpoint ([`Write::InsertWebhook`], [`Write::UpdateWebhook`],
    /// [`Write::DeleteWebhook`]) MUST increase the stored generation of the endpoints by one.
    /// When [`Commit::webhooks_generation`] is set, implementations MUST compare it, inside the
    /// transaction, with the stored generation as it was before the commit's own writes, and
    /// refuse the commit with [`StoreError::WebhooksChanged`] (leaving no trace) when they
    /// differ: the deliveries were computed from an outdated set of endpoints. The check should
    /// ride on a statement the commit sends anyway (the change log's chain lock), so that
    /// keeping the endpoints in memory costs no statement.
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
    /// OIDC codes and tokens whose expiry is at or before the cut-off.
    OidcTokens,
    /// Passkey ceremonies' challenges whose expiry is at or before the cut-off, used or not.
    PasskeyChallenges,
    /// Change-log entries (retention, off by default so not in [`Expired::ALL`]): in each
    /// chain, the entries from its start up to the first one after the cut-off, never the
    /// chain's newest entry (it anchors the next append). Implementations MUST record per chain
    /// the `seq` and hash of the last entry removed, atomically with the removal
    /// ([`Queries::audit_checkpoint`](super::Queries::audit_checkpoint)), so the rest still
    /// verifies.
    AuditEntries,
}

impl Expired {
    /// Every kind, in the order housekeeping purges them.
    pub const ALL: [Self; 6] = [
        Self::Sessions,
        Self::Challenges,
        Self::ActionTokens,
        Self::Counters,
        Self::OidcTokens,
        Self::PasskeyChallenges,
    ];

    /// Stable key (logs, reports).
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Challenges => "challenges",
            Self::ActionTokens => "action_tokens",
            Self::Counters => "counters",
            Self::OidcTokens => "oidc_tokens",
            Self::PasskeyChallenges => "passkey_challenges",
            Self::AuditEntries => "audit_entries",
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
