//! Queries: every read of the storage, scoped by customer where a customer is involved (R2).

use super::{Counter, LegacyClaim, StoreError};
use crate::admin_request::{AdminRequest, AdminRequestStatus};
use crate::audit::{AuditCategory, AuditEntry};
use crate::challenge::EmailChallenge;
use crate::customer::Customer;
use crate::ids::{AdminRequestId, CustomerId, UserId};
use crate::secret::TokenHash;
use crate::session::Session;
use crate::token::{ActionToken, TokenPurpose};
use crate::user::User;
use crate::values::{CustomerNumber, EmailAddress};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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

/// Accounts that retention removes ([`Queries::stale_users`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaleUsers {
    /// Registrations never confirmed (pending verification), started at or before the cut-off.
    PendingRegistrations,
    /// Invited users who never accepted: created at or before the cut-off, with no invitation
    /// link that expires after it.
    Invitations,
}

/// Where the verifiable part of a change-log chain starts after retention removed its oldest
/// entries: the last removed entry's sequence number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// Sequence number of the last entry removed.
    pub seq: u64,
    /// Its hash (the `prev_hash` of the first entry kept).
    pub hash: crate::audit::ChainHash,
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

    /// The rate counters of `keys`, in the order of `keys` (`None` for one that does not
    /// exist). A login reads its three or four counters with this; SQL implementations answer
    /// in one statement. The default asks [`Self::counter`] for each key.
    async fn counters(&self, keys: &[String]) -> Result<Vec<Option<Counter>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.counter(key).await?);
        }
        Ok(out)
    }

    /// Whether an old account was linked already.
    async fn legacy_claim(&self, legacy_id: &str) -> Result<Option<LegacyClaim>, StoreError>;

    /// An OIDC client by id.
    async fn oidc_client(&self, id: &str) -> Result<Option<crate::oidc::Client>, StoreError>;
    /// All OIDC clients, ordered by creation.
    async fn oidc_clients(&self) -> Result<Vec<crate::oidc::Client>, StoreError>;
    /// A grant by id.
    async fn oidc_grant(&self, id: uuid::Uuid) -> Result<Option<crate::oidc::Grant>, StoreError>;
    /// A user's grants (any state).
    async fn oidc_grants_of_user(
        &self,
        user: UserId,
    ) -> Result<Vec<crate::oidc::Grant>, StoreError>;
    /// The grants of one session (any state).
    async fn oidc_grants_of_session(
        &self,
        session: crate::ids::SessionId,
    ) -> Result<Vec<crate::oidc::Grant>, StoreError>;
    /// A code or token by its hash (used or not, expired or not).
    async fn oidc_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<crate::oidc::OidcToken>, StoreError>;
    /// A passkey ceremony's challenge by id (used or not, expired or not).
    async fn passkey_challenge(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::passkey::PasskeyChallenge>, StoreError>;
    /// The scopes a user agreed to for a client.
    async fn oidc_consent(
        &self,
        user: UserId,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// Every signing key, oldest first.
    async fn signing_keys(&self) -> Result<Vec<crate::oidc::SigningKey>, StoreError>;

    /// A webhook endpoint by id.
    async fn webhook(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::webhook::WebhookEndpoint>, StoreError>;
    /// Every webhook endpoint, oldest first.
    async fn webhooks(&self) -> Result<Vec<crate::webhook::WebhookEndpoint>, StoreError>;
    /// Every webhook endpoint with the generation of the set, read together (one consistent
    /// view): what the service computes a commit's webhook events from and keeps in memory
    /// until [`Commit::webhooks_generation`](crate::ports::Commit::webhooks_generation) is
    /// refused.
    async fn webhook_snapshot(&self) -> Result<crate::webhook::WebhookSnapshot, StoreError>;

    /// Users (any state, any customer or none) holding a sealed secret (a confirmed or pending
    /// authenticator app), ordered by id, with an id greater than `after`, at most `limit`: for
    /// re-sealing under a new server secret.
    async fn users_with_sealed_secrets(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError>;
    /// Up to `limit` users of a kind retention removes, dead at `cutoff` (see [`StaleUsers`]),
    /// in any order.
    async fn stale_users(
        &self,
        kind: StaleUsers,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError>;
    /// Where verification of a chain starts: `None` while retention has removed nothing of it.
    async fn audit_checkpoint(
        &self,
        customer: Option<CustomerId>,
    ) -> Result<Option<AuditCheckpoint>, StoreError>;
    /// The ids of the sealing keys recorded for this database
    /// ([`Write::InsertSealingKey`](super::Write::InsertSealingKey)), sorted.
    async fn sealing_keys(&self) -> Result<Vec<String>, StoreError>;

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
