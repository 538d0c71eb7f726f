//! # adapters-memory
//!
//! Every storage port of [`portal_core`] in memory: for fast tests, demos and embedding where
//! nothing needs to survive a restart. It keeps the semantics a database gives: a commit is
//! atomic (all writes, audit entries and mails, or nothing — an undo log rolls back a commit whose
//! later write fails), versions are checked (`Conflict` on a stale one), e-mail addresses of
//! accounts and customer numbers are unique, and audit entries are hash-chained per customer.
//!
//! Like the SQL backends it refuses a commit whose audit entry or mail id is taken (stored
//! before or repeated in the commit) as a `Conflict`, and it stores every time truncated to
//! whole microseconds (what Postgres keeps), so a round trip reads back the same on every backend.
//!
//! It is thread-safe (one mutex; commits are serialised) and not persistent.
//!
//! ```
//! use adapters_memory::MemoryStore;
//! use portal_core::{Deps, Portal};
//! use std::sync::Arc;
//!
//! let store = Arc::new(MemoryStore::new());
//! let portal = Portal::new(
//!     Deps::production(store.clone()),
//!     Default::default(),
//!     Default::default(),
//! )
//! .unwrap();
//! # let _ = portal;
//! ```
//!
//! See `docs/embedding.md` for choosing between this adapter and `adapters-postgres`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_core::admin_request::AdminRequest;
use portal_core::audit::{self, AuditEntry, ChainHash};
use portal_core::challenge::EmailChallenge;
use portal_core::customer::Customer;
use portal_core::ids::{ActionTokenId, AdminRequestId, ChallengeId, CustomerId, SessionId, UserId};
use portal_core::ids::{AuditEntryId, OutboxId};
use portal_core::mail::OutboxMail;
use portal_core::outbox::{OutboxEntry, OutboxMessage, OutboxStats, OutboxStatus};
use portal_core::ports::{
    AdminRequestFilter, AuditQuery, Commit, Committer, Counter, CustomerQuery, Expired,
    LegacyAccount, LegacyClaim, LegacyDirectory, LegacyError, LegacyRecord, OutboxStore, PageStart,
    PhoneMessage, Queries, SessionContext, SmsError, SmsSender, StoreError, UniqueKey, UserQuery,
    Write,
};
use portal_core::secret::TokenHash;
use portal_core::session::Session;
use portal_core::token::{ActionToken, TokenPurpose};
use portal_core::user::{AccountState, Role, User};
use portal_core::values::{CustomerNumber, EmailAddress};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Each count of [`OutboxStore::outbox_stats`] stops here, as in the SQL store.
pub const OUTBOX_STATS_CAP: u64 = 10_000;

/// The in-memory store: implements [`Queries`] and [`Committer`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    customers: HashMap<CustomerId, Customer>,
    customer_numbers: HashMap<CustomerNumber, CustomerId>,
    users: HashMap<UserId, User>,
    account_emails: HashMap<EmailAddress, UserId>,
    sessions: HashMap<SessionId, Session>,
    session_hashes: HashMap<TokenHash, SessionId>,
    challenges: HashMap<ChallengeId, EmailChallenge>,
    tokens: HashMap<ActionTokenId, ActionToken>,
    requests: HashMap<AdminRequestId, AdminRequest>,
    legacy: HashMap<String, LegacyClaim>,
    /// Imported old accounts by id ([`LegacyRecord::id_for`]).
    legacy_accounts: HashMap<String, LegacyRecord>,
    chains: HashMap<Option<CustomerId>, Vec<AuditEntry>>,
    /// Ids of every stored audit entry (the SQL stores' primary key).
    audit_ids: HashSet<AuditEntryId>,
    counters: HashMap<String, Counter>,
    outbox: Vec<OutboxEntry>,
    /// Ids of every stored mail (the SQL stores' unique `outbox.id`).
    outbox_ids: HashSet<OutboxId>,
    oidc: OidcState,
    passkey_challenges: HashMap<uuid::Uuid, portal_core::passkey::PasskeyChallenge>,
    /// Ids of the sealing keys recorded (the SQL stores' `sealing_keys` table).
    sealing_keys: std::collections::BTreeSet<String>,
    /// Per chain, the last entry retention removed.
    audit_checkpoints: HashMap<Option<CustomerId>, portal_core::ports::AuditCheckpoint>,
    /// Webhook endpoints, oldest first.
    webhooks: Vec<portal_core::webhook::WebhookEndpoint>,
    /// Per endpoint and chain, the `seq` of the last delivery queued (the SQL stores'
    /// `webhook_cursors`).
    webhook_cursors: HashMap<(uuid::Uuid, Option<CustomerId>), u64>,
    /// The generation of the webhook endpoints: one more with every write of one.
    webhook_generation: u64,
}

/// The OpenID Connect provider's rows.
#[derive(Debug, Default, Clone)]
struct OidcState {
    clients: Vec<portal_core::oidc::Client>,
    grants: HashMap<uuid::Uuid, portal_core::oidc::Grant>,
    tokens: HashMap<TokenHash, portal_core::oidc::OidcToken>,
    consents: HashMap<(UserId, String), Vec<String>>,
    keys: Vec<portal_core::oidc::SigningKey>,
}

/// How to take back one applied step of a commit.
#[allow(clippy::large_enum_variant)] // short-lived, one per applied write
enum Undo {
    Customer(CustomerId, Option<Customer>),
    User(UserId, Option<User>),
    Session(SessionId, Option<Session>),
    Challenge(ChallengeId, Option<EmailChallenge>),
    Token(ActionTokenId, Option<ActionToken>),
    Request(AdminRequestId, Option<AdminRequest>),
    Legacy(String),
    LegacyAccount(String, Option<LegacyRecord>),
    Outbox(Box<OutboxEntry>),
    Oidc(Box<OidcState>),
    PasskeyChallenge(uuid::Uuid, Option<portal_core::passkey::PasskeyChallenge>),
    SealingKey(String, bool),
    Webhooks(Box<WebhookState>),
    Counter(String, Option<Counter>),
}

type WebhookState = (
    Vec<portal_core::webhook::WebhookEndpoint>,
    HashMap<(uuid::Uuid, Option<CustomerId>), u64>,
    u64,
);

fn is_account(u: &User) -> bool {
    u.state() != AccountState::PendingVerification
}

fn bump<T, R>(
    record: &R,
    rebuild: impl FnOnce(R) -> Result<T, portal_core::customer::CorruptRecord>,
) -> Result<T, StoreError>
where
    R: Clone + Versioned + StoredTimes,
{
    let mut rec = record.clone();
    rec.set_version(rec.version() + 1);
    rec.truncate_times();
    rebuild(rec).map_err(StoreError::from)
}

trait Versioned {
    fn version(&self) -> u64;
    fn set_version(&mut self, v: u64);
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn version(&self) -> u64 { self.version }
            fn set_version(&mut self, v: u64) { self.version = v; }
        }
    )*};
}
versioned!(
    portal_core::customer::CustomerRecord,
    portal_core::user::UserRecord,
    portal_core::challenge::ChallengeRecord,
    portal_core::token::ActionTokenRecord,
    portal_core::admin_request::AdminRequestRecord
);

fn first_version<R: Clone + Versioned + StoredTimes, T>(
    record: &R,
    rebuild: impl FnOnce(R) -> Result<T, portal_core::customer::CorruptRecord>,
) -> Result<T, StoreError> {
    let mut rec = record.clone();
    rec.set_version(1);
    rec.truncate_times();
    rebuild(rec).map_err(StoreError::from)
}

/// A time as every backend stores it: truncated to whole microseconds (Postgres keeps no more;
/// the SQL store truncates on SQLite too, and so does this store).
fn us(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// Truncates the stored times of a record to microseconds (see [`us`]).
trait StoredTimes {
    fn truncate_times(&mut self);
}

impl StoredTimes for portal_core::customer::CustomerRecord {
    fn truncate_times(&mut self) {
        self.created_at = us(self.created_at);
        self.updated_at = us(self.updated_at);
    }
}

impl StoredTimes for portal_core::user::UserRecord {
    fn truncate_times(&mut self) {
        self.last_login_at = self.last_login_at.map(us);
        self.created_at = us(self.created_at);
        self.updated_at = us(self.updated_at);
    }
}

impl StoredTimes for portal_core::challenge::ChallengeRecord {
    fn truncate_times(&mut self) {
        self.expires_at = us(self.expires_at);
        self.last_sent_at = us(self.last_sent_at);
        self.created_at = us(self.created_at);
    }
}

impl StoredTimes for portal_core::token::ActionTokenRecord {
    fn truncate_times(&mut self) {
        self.created_at = us(self.created_at);
        self.expires_at = us(self.expires_at);
        self.used_at = self.used_at.map(us);
    }
}

impl StoredTimes for portal_core::admin_request::AdminRequestRecord {
    fn truncate_times(&mut self) {
        self.created_at = us(self.created_at);
        self.updated_at = us(self.updated_at);
    }
}

impl StoredTimes for portal_core::session::SessionRecord {
    fn truncate_times(&mut self) {
        self.created_at = us(self.created_at);
        self.last_seen_at = us(self.last_seen_at);
        self.idle_expires_at = us(self.idle_expires_at);
        self.expires_at = us(self.expires_at);
        self.authenticated_at = us(self.authenticated_at);
    }
}

/// A session as stored: its times truncated to microseconds.
fn stored_session(s: &Session) -> Result<Session, StoreError> {
    let mut rec = s.record().clone();
    rec.truncate_times();
    Session::from_record(rec).map_err(StoreError::from)
}

impl State {
    // --- primitive puts that keep the indexes; each returns the previous value ---

    fn put_customer(&mut self, c: Customer) -> Result<Option<Customer>, StoreError> {
        if let Some(other) = self.customer_numbers.get(c.number())
            && *other != c.id()
        {
            return Err(StoreError::Duplicate(UniqueKey::CustomerNumber));
        }
        let old = self.customers.insert(c.id(), c.clone());
        if let Some(o) = &old {
            self.customer_numbers.remove(o.number());
        }
        self.customer_numbers.insert(c.number().clone(), c.id());
        Ok(old)
    }

    fn restore_customer(&mut self, id: CustomerId, old: Option<Customer>) {
        if let Some(cur) = self.customers.remove(&id) {
            self.customer_numbers.remove(cur.number());
        }
        if let Some(o) = old {
            self.customer_numbers.insert(o.number().clone(), id);
            self.customers.insert(id, o);
        }
    }

    fn put_user(&mut self, u: User) -> Result<Option<User>, StoreError> {
        if is_account(&u)
            && let Some(other) = self.account_emails.get(u.email())
            && *other != u.id()
        {
            return Err(StoreError::Duplicate(UniqueKey::UserEmail));
        }
        let old = self.remove_user_row(u.id());
        if is_account(&u) {
            self.account_emails.insert(u.email().clone(), u.id());
        }
        self.users.insert(u.id(), u);
        Ok(old)
    }

    fn remove_user_row(&mut self, id: UserId) -> Option<User> {
        let old = self.users.remove(&id);
        if let Some(o) = &old
            && self.account_emails.get(o.email()) == Some(&id)
        {
            self.account_emails.remove(o.email());
        }
        old
    }

    fn restore_user(&mut self, id: UserId, old: Option<User>) {
        self.remove_user_row(id);
        if let Some(o) = old {
            if is_account(&o) {
                self.account_emails.insert(o.email().clone(), id);
            }
            self.users.insert(id, o);
        }
    }

    fn put_session(&mut self, s: Session) -> Option<Session> {
        let old = self.remove_session_row(s.id());
        self.session_hashes.insert(s.record().token_hash, s.id());
        self.sessions.insert(s.id(), s);
        old
    }

    fn remove_session_row(&mut self, id: SessionId) -> Option<Session> {
        let old = self.sessions.remove(&id);
        if let Some(o) = &old {
            self.session_hashes.remove(&o.record().token_hash);
        }
        old
    }

    fn restore_session(&mut self, id: SessionId, old: Option<Session>) {
        self.remove_session_row(id);
        if let Some(o) = old {
            self.put_session(o);
        }
    }

    fn undo(&mut self, steps: Vec<Undo>) {
        for step in steps.into_iter().rev() {
            match step {
                Undo::Customer(id, old) => self.restore_customer(id, old),
                Undo::User(id, old) => self.restore_user(id, old),
                Undo::Session(id, old) => self.restore_session(id, old),
                Undo::Challenge(id, old) => restore(&mut self.challenges, id, old),
                Undo::Token(id, old) => restore(&mut self.tokens, id, old),
                Undo::Request(id, old) => restore(&mut self.requests, id, old),
                Undo::Legacy(key) => {
                    self.legacy.remove(&key);
                }
                Undo::LegacyAccount(key, old) => restore(&mut self.legacy_accounts, key, old),
                Undo::Oidc(old) => self.oidc = *old,
                Undo::Webhooks(old) => {
                    (self.webhooks, self.webhook_cursors, self.webhook_generation) = *old;
                }
                Undo::PasskeyChallenge(id, old) => restore(&mut self.passkey_challenges, id, old),
                Undo::Counter(key, old) => restore(&mut self.counters, key, old),
                Undo::SealingKey(id, present) => {
                    if present {
                        self.sealing_keys.insert(id);
                    } else {
                        self.sealing_keys.remove(&id);
                    }
                }
                Undo::Outbox(old) => {
                    if let Some(e) = self.outbox.iter_mut().find(|e| e.id() == old.id()) {
                        *e = *old;
                    }
                }
            }
        }
    }

    /// Like the SQL stores' foreign keys: rows that refer to a user need the user (a concurrent
    /// delete makes the insert a conflict).
    fn user_exists(&self, id: UserId) -> Result<(), StoreError> {
        if self.users.contains_key(&id) {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    fn expect_version(stored: Option<u64>, expected: u64) -> Result<(), StoreError> {
        match stored {
            Some(v) if v == expected => Ok(()),
            _ => Err(StoreError::Conflict),
        }
    }

    fn apply(&mut self, w: Write, undo: &mut Vec<Undo>) -> Result<(), StoreError> {
        match w {
            Write::ExpectUser { id, version } => {
                Self::expect_version(self.users.get(&id).map(User::version), version)
            }
            Write::InsertCustomer(c) => {
                if self.customers.contains_key(&c.id()) {
                    return Err(StoreError::Conflict);
                }
                let c = first_version(c.record(), Customer::from_record)?;
                let id = c.id();
                let old = self.put_customer(c)?;
                undo.push(Undo::Customer(id, old));
                Ok(())
            }
            Write::UpdateCustomer(c) => {
                Self::expect_version(
                    self.customers.get(&c.id()).map(Customer::version),
                    c.version(),
                )?;
                let c = bump(c.record(), Customer::from_record)?;
                let id = c.id();
                let old = self.put_customer(c)?;
                undo.push(Undo::Customer(id, old));
                Ok(())
            }
            Write::InsertUser(u) => {
                if self.users.contains_key(&u.id()) {
                    return Err(StoreError::Conflict);
                }
                let u = first_version(u.record(), User::from_record)?;
                let id = u.id();
                let old = self.put_user(u)?;
                undo.push(Undo::User(id, old));
                Ok(())
            }
            Write::UpdateUser(u) => {
                let stored = self.users.get(&u.id());
                Self::expect_version(stored.map(User::version), u.version())?;
                let mut rec = u.record().clone();
                // The time of the last sign-in never moves back.
                rec.last_login_at = rec.last_login_at.max(stored.and_then(User::last_login_at));
                let u = bump(&rec, User::from_record)?;
                let id = u.id();
                let old = self.put_user(u)?;
                undo.push(Undo::User(id, old));
                Ok(())
            }
            Write::RecordLogin { id, version, at } => {
                let stored = self.users.get(&id);
                Self::expect_version(stored.map(User::version), version)?;
                let mut rec = stored.ok_or(StoreError::Conflict)?.record().clone();
                rec.last_login_at = rec.last_login_at.max(Some(us(at)));
                let u = User::from_record(rec)?;
                let old = self.put_user(u)?;
                undo.push(Undo::User(id, old));
                Ok(())
            }
            Write::DeleteUser(u) => {
                Self::expect_version(self.users.get(&u.id()).map(User::version), u.version())?;
                let id = u.id();
                self.delete_dependents(id, undo);
                let old = self.remove_user_row(id);
                undo.push(Undo::User(id, old));
                Ok(())
            }
            Write::InsertSession(s) => {
                let id = s.id();
                if self.sessions.contains_key(&id) {
                    return Err(StoreError::Conflict);
                }
                self.user_exists(s.user_id())?;
                let old = self.put_session(stored_session(&s)?);
                undo.push(Undo::Session(id, old));
                Ok(())
            }
            Write::UpdateSession(session) => {
                let id = session.id();
                if self.sessions.contains_key(&id) {
                    let old = self.put_session(stored_session(&session)?);
                    undo.push(Undo::Session(id, old));
                }
                Ok(())
            }
            Write::DeleteSession(id) => {
                let old = self.remove_session_row(id);
                undo.push(Undo::Session(id, old));
                Ok(())
            }
            Write::DeleteSessionsOfUser { user, except } => {
                let ids: Vec<SessionId> = self
                    .sessions
                    .values()
                    .filter(|s| s.user_id() == user && Some(s.id()) != except)
                    .map(Session::id)
                    .collect();
                for id in ids {
                    let old = self.remove_session_row(id);
                    undo.push(Undo::Session(id, old));
                }
                Ok(())
            }
            Write::InsertChallenge(c) => {
                if self.challenges.contains_key(&c.id()) {
                    return Err(StoreError::Conflict);
                }
                self.user_exists(c.user_id())?;
                let c = first_version(c.record(), EmailChallenge::from_record)?;
                let id = c.id();
                let old = self.challenges.insert(id, c);
                undo.push(Undo::Challenge(id, old));
                Ok(())
            }
            Write::UpdateChallenge(c) => {
                Self::expect_version(
                    self.challenges.get(&c.id()).map(EmailChallenge::version),
                    c.version(),
                )?;
                let c = bump(c.record(), EmailChallenge::from_record)?;
                let id = c.id();
                let old = self.challenges.insert(id, c);
                undo.push(Undo::Challenge(id, old));
                Ok(())
            }
            Write::DeleteChallengesOfUser(user) => {
                let ids: Vec<ChallengeId> = self
                    .challenges
                    .values()
                    .filter(|c| c.user_id() == user)
                    .map(EmailChallenge::id)
                    .collect();
                for id in ids {
                    let old = self.challenges.remove(&id);
                    undo.push(Undo::Challenge(id, old));
                }
                Ok(())
            }
            Write::InsertActionToken(t) => {
                if self.tokens.contains_key(&t.id()) {
                    return Err(StoreError::Conflict);
                }
                self.user_exists(t.user_id())?;
                let t = first_version(t.record(), ActionToken::from_record)?;
                let id = t.id();
                let old = self.tokens.insert(id, t);
                undo.push(Undo::Token(id, old));
                Ok(())
            }
            Write::UpdateActionToken(t) => {
                Self::expect_version(
                    self.tokens.get(&t.id()).map(ActionToken::version),
                    t.version(),
                )?;
                let t = bump(t.record(), ActionToken::from_record)?;
                let id = t.id();
                let old = self.tokens.insert(id, t);
                undo.push(Undo::Token(id, old));
                Ok(())
            }
            Write::DeleteActionTokensOfUser { user, purpose } => {
                let ids: Vec<ActionTokenId> = self
                    .tokens
                    .values()
                    .filter(|t| t.user_id() == user && purpose.is_none_or(|p| p == t.purpose()))
                    .map(ActionToken::id)
                    .collect();
                for id in ids {
                    let old = self.tokens.remove(&id);
                    undo.push(Undo::Token(id, old));
                }
                Ok(())
            }
            Write::InsertAdminRequest(r) => {
                if self.requests.contains_key(&r.id()) {
                    return Err(StoreError::Conflict);
                }
                self.user_exists(r.requester())?;
                if !self.customers.contains_key(&r.customer_id()) {
                    return Err(StoreError::Conflict);
                }
                let r = first_version(r.record(), AdminRequest::from_record)?;
                let id = r.id();
                let old = self.requests.insert(id, r);
                undo.push(Undo::Request(id, old));
                Ok(())
            }
            Write::UpdateAdminRequest(r) => {
                Self::expect_version(
                    self.requests.get(&r.id()).map(AdminRequest::version),
                    r.version(),
                )?;
                let r = bump(r.record(), AdminRequest::from_record)?;
                let id = r.id();
                let old = self.requests.insert(id, r);
                undo.push(Undo::Request(id, old));
                Ok(())
            }
            Write::InsertLegacyClaim(mut claim) => {
                claim.claimed_at = us(claim.claimed_at);
                if self.legacy.contains_key(&claim.legacy_id) {
                    return Err(StoreError::Duplicate(UniqueKey::LegacyAccount));
                }
                let key = claim.legacy_id.clone();
                self.legacy.insert(key.clone(), claim);
                undo.push(Undo::Legacy(key.clone()));
                // The old hash goes in the same commit (R8).
                if let Some(account) = self.legacy_accounts.get_mut(&key) {
                    let old = account.clone();
                    account.hash = None;
                    undo.push(Undo::LegacyAccount(key, Some(old)));
                }
                Ok(())
            }
            Write::PutLegacyAccount(mut record) => {
                record.imported_at = us(record.imported_at);
                let key = record.account.id.clone();
                let old = self.legacy_accounts.insert(key.clone(), record);
                undo.push(Undo::LegacyAccount(key, old));
                Ok(())
            }
            Write::InsertOidcClient(_)
            | Write::UpdateOidcClient(_)
            | Write::InsertOidcGrant(_)
            | Write::UpdateOidcGrant(_)
            | Write::InsertOidcToken(_)
            | Write::UseOidcToken { .. }
            | Write::InsertSigningKey(_)
            | Write::UpdateSigningKey(_)
            | Write::UpsertOidcConsent { .. } => {
                undo.push(Undo::Oidc(Box::new(self.oidc.clone())));
                self.apply_oidc(w)
            }
            Write::InsertPasskeyChallenge(mut c) => {
                if self.passkey_challenges.contains_key(&c.id) {
                    return Err(StoreError::Conflict);
                }
                c.created_at = us(c.created_at);
                c.expires_at = us(c.expires_at);
                c.used_at = c.used_at.map(us);
                undo.push(Undo::PasskeyChallenge(c.id, None));
                self.passkey_challenges.insert(c.id, c);
                Ok(())
            }
            Write::UsePasskeyChallenge { id, at } => {
                let c = self
                    .passkey_challenges
                    .get_mut(&id)
                    .filter(|c| c.used_at.is_none())
                    .ok_or(StoreError::Conflict)?;
                undo.push(Undo::PasskeyChallenge(id, Some(c.clone())));
                c.used_at = Some(us(at));
                Ok(())
            }
            Write::InsertSealingKey { id, .. } => {
                let present = !self.sealing_keys.insert(id.clone());
                undo.push(Undo::SealingKey(id, present));
                Ok(())
            }
            Write::DeleteSealingKey(id) => {
                let present = self.sealing_keys.remove(&id);
                undo.push(Undo::SealingKey(id, present));
                Ok(())
            }
            Write::InsertWebhook(_) | Write::UpdateWebhook(_) | Write::DeleteWebhook(_) => {
                undo.push(Undo::Webhooks(Box::new((
                    self.webhooks.clone(),
                    self.webhook_cursors.clone(),
                    self.webhook_generation,
                ))));
                self.webhook_generation += 1;
                self.apply_webhook(w)
            }
            Write::DeleteCounters(keys) => {
                for key in keys {
                    let old = self.counters.remove(&key);
                    undo.push(Undo::Counter(key, old));
                }
                Ok(())
            }
            Write::RequeueOutbox { id, at } => {
                let Some(e) = self
                    .outbox
                    .iter_mut()
                    .find(|e| e.id() == id && e.status == OutboxStatus::Dead)
                else {
                    return Err(StoreError::Conflict);
                };
                undo.push(Undo::Outbox(Box::new(e.clone())));
                e.status = OutboxStatus::Pending;
                e.attempts = 0;
                e.next_attempt_at = us(at);
                Ok(())
            }
        }
    }

    fn apply_webhook(&mut self, w: Write) -> Result<(), StoreError> {
        match w {
            Write::InsertWebhook(mut e) => {
                if self.webhooks.iter().any(|x| x.id == e.id) {
                    return Err(StoreError::Conflict);
                }
                e.version = 1;
                e.created_at = us(e.created_at);
                e.secret_rotated_at = e.secret_rotated_at.map(us);
                self.webhooks.push(e);
                // Oldest first, as the SQL stores order them.
                self.webhooks.sort_by_key(|x| (x.created_at, x.id));
            }
            Write::UpdateWebhook(mut e) => {
                let slot = self
                    .webhooks
                    .iter_mut()
                    .find(|x| x.id == e.id && x.version == e.version)
                    .ok_or(StoreError::Conflict)?;
                e.version += 1;
                e.created_at = us(e.created_at);
                e.secret_rotated_at = e.secret_rotated_at.map(us);
                *slot = e;
            }
            Write::DeleteWebhook(e) => {
                let before = self.webhooks.len();
                self.webhooks
                    .retain(|x| !(x.id == e.id && x.version == e.version));
                if self.webhooks.len() == before {
                    return Err(StoreError::Conflict);
                }
                self.webhook_cursors.retain(|(id, _), _| *id != e.id);
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_oidc(&mut self, w: Write) -> Result<(), StoreError> {
        let o = &mut self.oidc;
        match w {
            Write::InsertOidcClient(mut c) => {
                if o.clients.iter().any(|x| x.id == c.id) {
                    return Err(StoreError::Duplicate(UniqueKey::Other("oidc_client")));
                }
                c.version = 1;
                c.created_at = us(c.created_at);
                o.clients.push(c);
            }
            Write::UpdateOidcClient(mut c) => {
                let slot = o
                    .clients
                    .iter_mut()
                    .find(|x| x.id == c.id && x.version == c.version)
                    .ok_or(StoreError::Conflict)?;
                c.version += 1;
                *slot = c;
            }
            Write::InsertOidcGrant(mut g) => {
                if o.grants.contains_key(&g.id) || !self.users.contains_key(&g.user_id) {
                    return Err(StoreError::Conflict);
                }
                g.version = 1;
                o.grants.insert(g.id, g);
            }
            Write::UpdateOidcGrant(mut g) => {
                if o.grants.get(&g.id).map(|x| x.version) != Some(g.version) {
                    return Err(StoreError::Conflict);
                }
                g.version += 1;
                o.grants.insert(g.id, g);
            }
            Write::InsertOidcToken(mut t) => {
                if o.tokens.contains_key(&t.hash) || !o.grants.contains_key(&t.grant_id) {
                    return Err(StoreError::Conflict);
                }
                t.created_at = us(t.created_at);
                t.expires_at = us(t.expires_at);
                o.tokens.insert(t.hash, t);
            }
            Write::UseOidcToken { hash, at } => {
                let t = o
                    .tokens
                    .get_mut(&hash)
                    .filter(|t| t.used_at.is_none())
                    .ok_or(StoreError::Conflict)?;
                t.used_at = Some(us(at));
            }
            Write::InsertSigningKey(mut k) => {
                if o.keys.iter().any(|x| x.kid == k.kid) {
                    return Err(StoreError::Conflict);
                }
                k.version = 1;
                o.keys.push(k);
            }
            Write::UpdateSigningKey(mut k) => {
                let slot = o
                    .keys
                    .iter_mut()
                    .find(|x| x.kid == k.kid && x.version == k.version)
                    .ok_or(StoreError::Conflict)?;
                k.version += 1;
                *slot = k;
            }
            Write::UpsertOidcConsent {
                user,
                client_id,
                scopes,
            } => {
                o.consents.insert((user, client_id), scopes);
            }
            _ => {}
        }
        Ok(())
    }

    fn delete_dependents(&mut self, user: UserId, undo: &mut Vec<Undo>) {
        let sessions: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| s.user_id() == user)
            .map(Session::id)
            .collect();
        for id in sessions {
            let old = self.remove_session_row(id);
            undo.push(Undo::Session(id, old));
        }
        let challenges: Vec<ChallengeId> = self
            .challenges
            .values()
            .filter(|c| c.user_id() == user)
            .map(EmailChallenge::id)
            .collect();
        for id in challenges {
            let old = self.challenges.remove(&id);
            undo.push(Undo::Challenge(id, old));
        }
        let tokens: Vec<ActionTokenId> = self
            .tokens
            .values()
            .filter(|t| t.user_id() == user)
            .map(ActionToken::id)
            .collect();
        for id in tokens {
            let old = self.tokens.remove(&id);
            undo.push(Undo::Token(id, old));
        }
        let requests: Vec<AdminRequestId> = self
            .requests
            .values()
            .filter(|r| r.requester() == user)
            .map(AdminRequest::id)
            .collect();
        for id in requests {
            let old = self.requests.remove(&id);
            undo.push(Undo::Request(id, old));
        }
    }

    /// `Conflict` when an audit entry or mail id of a commit exists already or repeats.
    fn check_new_ids(
        &self,
        audit: &[audit::AuditRecord],
        outbox: &[OutboxMessage],
    ) -> Result<(), StoreError> {
        let mut audit_ids = HashSet::with_capacity(audit.len());
        for r in audit {
            if self.audit_ids.contains(&r.id) || !audit_ids.insert(r.id) {
                return Err(StoreError::Conflict);
            }
        }
        let mut mail_ids = HashSet::with_capacity(outbox.len());
        for m in outbox {
            if self.outbox_ids.contains(&m.id) || !mail_ids.insert(m.id) {
                return Err(StoreError::Conflict);
            }
        }
        Ok(())
    }

    fn append_audit(&mut self, mut record: audit::AuditRecord) -> AuditEntry {
        self.audit_ids.insert(record.id);
        // Truncated before chaining: the hash covers the stored time.
        record.at = us(record.at);
        let chain = self.chains.entry(record.customer).or_default();
        let (seq, prev) = chain
            .last()
            .map_or((1, ChainHash::GENESIS), |e| (e.seq + 1, e.hash));
        let entry = audit::chain(record, seq, prev);
        chain.push(entry.clone());
        entry
    }

    /// Numbers a webhook delivery by the entry it reports (see `Committer::commit`).
    fn place_webhook(&mut self, message: &mut OutboxMessage, entries: &[AuditEntry]) {
        if let portal_core::outbox::Payload::Webhook(d) = &mut message.payload
            && let Some((chain, seq)) = d.place(entries)
        {
            d.event.data.previous_seq = self.webhook_cursors.insert((d.endpoint, chain), seq);
        }
    }
}

/// Removes up to `limit` entries matching `dead`; returns how many.
fn take_dead<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    limit: usize,
    dead: impl Fn(&V) -> bool,
) -> usize {
    let keys: Vec<K> = map
        .iter()
        .filter(|(_, v)| dead(v))
        .map(|(k, _)| k.clone())
        .take(limit)
        .collect();
    for k in &keys {
        map.remove(k);
    }
    keys.len()
}

fn restore<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, old: Option<V>) {
    match old {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied commit (the undo log runs
        // before any error is returned), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The OIDC grants that `keep` picks, oldest first (the order the SQL stores give).
    fn oidc_grants_where(
        &self,
        keep: impl Fn(&portal_core::oidc::Grant) -> bool,
    ) -> Vec<portal_core::oidc::Grant> {
        let mut g: Vec<_> = self
            .lock()
            .oidc
            .grants
            .values()
            .filter(|g| keep(g))
            .cloned()
            .collect();
        g.sort_by_key(|g| (g.created_at, g.id));
        g
    }

    /// Every mail queued so far (in any delivery state), oldest first; other kinds are left out
    /// (see [`Self::messages`]).
    #[must_use]
    pub fn outbox(&self) -> Vec<OutboxMail> {
        self.lock()
            .outbox
            .iter()
            .filter_map(OutboxEntry::mail)
            .collect()
    }

    /// Every outgoing message of every kind queued so far, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<OutboxMessage> {
        self.lock()
            .outbox
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }

    /// Removes and returns every queued mail (for tests that read mails without a dispatcher);
    /// messages of other kinds stay queued.
    #[must_use]
    pub fn take_outbox(&self) -> Vec<OutboxMail> {
        let mut state = self.lock();
        let state = &mut *state;
        let mut mails = Vec::new();
        let ids = &mut state.outbox_ids;
        state.outbox.retain(|e| match e.mail() {
            Some(m) => {
                ids.remove(&m.id);
                mails.push(m);
                false
            }
            None => true,
        });
        mails
    }

    /// Every audit entry of a chain (a customer's, or the global one), oldest first.
    #[must_use]
    pub fn audit_entries(&self, customer: Option<CustomerId>) -> Vec<AuditEntry> {
        self.lock()
            .chains
            .get(&customer)
            .cloned()
            .unwrap_or_default()
    }

    /// Number of audit entries over all chains.
    #[must_use]
    pub fn audit_len(&self) -> usize {
        self.lock().chains.values().map(Vec::len).sum()
    }

    /// Number of stored users (pending registrations included).
    #[must_use]
    pub fn user_count(&self) -> usize {
        self.lock().users.len()
    }

    /// Number of stored sessions.
    #[must_use]
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Test hook: edits a stored audit entry in place, to prove that verification notices.
    pub fn tamper_with_audit(&self, customer: Option<CustomerId>, seq: u64, details: &str) {
        if let Some(e) = self
            .lock()
            .chains
            .get_mut(&customer)
            .and_then(|c| c.iter_mut().find(|e| e.seq == seq))
        {
            e.record.details = details.to_owned();
        }
    }
}

#[async_trait]
impl Committer for MemoryStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let mut state = self.lock();
        // The deliveries were computed from the endpoints of this generation (before the
        // commit's own writes).
        if commit
            .webhooks_generation
            .is_some_and(|g| g != state.webhook_generation)
        {
            return Err(StoreError::WebhooksChanged);
        }
        let mut undo = Vec::new();
        for w in commit.writes {
            if let Err(e) = state.apply(w, &mut undo) {
                state.undo(undo);
                return Err(e);
            }
        }
        // Like the SQL stores' keys: an audit entry or mail whose id is taken (stored before, or
        // twice in this commit) fails the whole commit. Checked before anything is appended.
        if let Err(e) = state.check_new_ids(&commit.audit, &commit.outbox) {
            state.undo(undo);
            return Err(e);
        }
        // Nothing below can fail: the commit is decided.
        let entries: Vec<AuditEntry> = commit
            .audit
            .into_iter()
            .map(|record| state.append_audit(record))
            .collect();
        for mut message in commit.outbox {
            state.place_webhook(&mut message, &entries);
            state.outbox_ids.insert(message.id);
            message.created_at = us(message.created_at);
            state.outbox.push(OutboxEntry {
                next_attempt_at: message.created_at,
                message,
                status: OutboxStatus::Pending,
                attempts: 0,
                claim: None,
                claimed_until: None,
                last_error: None,
                sent_at: None,
            });
        }
        Ok(())
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        reset_after: chrono::TimeDelta,
    ) -> Result<Counter, StoreError> {
        let now = us(now);
        let mut state = self.lock();
        let c = state.counters.entry(key.to_owned()).or_insert(Counter {
            count: 0,
            last_at: now,
        });
        if now - c.last_at >= reset_after {
            c.count = 0;
        }
        c.count = c.count.saturating_add(1);
        c.last_at = now;
        Ok(*c)
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.lock().counters.remove(key);
        Ok(())
    }

    async fn purge_expired(
        &self,
        kind: Expired,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let limit = limit as usize;
        let n = match kind {
            Expired::Sessions => {
                let dead: Vec<SessionId> = state
                    .sessions
                    .values()
                    .filter(|s| {
                        let r = s.record();
                        r.idle_expires_at.min(r.expires_at) <= cutoff
                    })
                    .map(Session::id)
                    .take(limit)
                    .collect();
                for id in &dead {
                    if let Some(s) = state.sessions.remove(id) {
                        state.session_hashes.remove(&s.record().token_hash);
                    }
                }
                dead.len()
            }
            Expired::Challenges => take_dead(&mut state.challenges, limit, |c| {
                c.record().created_at <= cutoff
            }),
            Expired::ActionTokens => take_dead(&mut state.tokens, limit, |t| {
                t.record().expires_at <= cutoff
            }),
            Expired::Counters => take_dead(&mut state.counters, limit, |c| c.last_at <= cutoff),
            Expired::OidcTokens => {
                take_dead(&mut state.oidc.tokens, limit, |t| t.expires_at <= cutoff)
            }
            Expired::PasskeyChallenges => take_dead(&mut state.passkey_challenges, limit, |c| {
                c.expires_at <= cutoff
            }),
            Expired::AuditEntries => {
                let mut removed = 0;
                for (key, chain) in &mut state.chains {
                    // The start of the chain up to the first entry after the cut-off, never the
                    // newest entry.
                    let n = chain
                        .iter()
                        .take(chain.len().saturating_sub(1))
                        .take_while(|e| e.record.at <= cutoff)
                        .count()
                        .min(limit - removed);
                    if n == 0 {
                        continue;
                    }
                    let last = &chain[n - 1];
                    state.audit_checkpoints.insert(
                        *key,
                        portal_core::ports::AuditCheckpoint {
                            seq: last.seq,
                            hash: last.hash,
                        },
                    );
                    for e in chain.drain(..n) {
                        state.audit_ids.remove(&e.record.id);
                    }
                    removed += n;
                    if removed == limit {
                        break;
                    }
                }
                removed
            }
        };
        Ok(n as u64)
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(s) = state.sessions.get(&id) {
            let mut rec = s.record().clone();
            rec.last_seen_at = us(last_seen_at);
            rec.idle_expires_at = us(idle_expires_at);
            let s = Session::from_record(rec)?;
            state.put_session(s);
        }
        Ok(())
    }
}

fn by_sort_key(a: &User, b: &User) -> std::cmp::Ordering {
    (a.sort_key(), a.id()).cmp(&(b.sort_key(), b.id()))
}

fn take_limit<T>(items: impl Iterator<Item = T>, limit: u32) -> Vec<T> {
    items.take(limit as usize + 1).collect()
}

#[async_trait]
impl Queries for MemoryStore {
    async fn customer(&self, id: CustomerId) -> Result<Option<Customer>, StoreError> {
        Ok(self.lock().customers.get(&id).cloned())
    }

    async fn customer_by_number(
        &self,
        number: &CustomerNumber,
    ) -> Result<Option<Customer>, StoreError> {
        let s = self.lock();
        Ok(s.customer_numbers
            .get(number)
            .and_then(|id| s.customers.get(id))
            .cloned())
    }

    async fn customers(&self, query: &CustomerQuery) -> Result<Vec<Customer>, StoreError> {
        let s = self.lock();
        let mut all: Vec<&Customer> = s
            .customers
            .values()
            .filter(|c| query.after.as_ref().is_none_or(|a| c.number() > a))
            .filter(|c| {
                query.search.as_deref().is_none_or(|q| {
                    c.number().as_str().contains(q) || c.name().as_str().to_lowercase().contains(q)
                })
            })
            .collect();
        all.sort_by(|a, b| a.number().cmp(b.number()));
        Ok(take_limit(all.into_iter().cloned(), query.limit))
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.users.get(id))
            .cloned()
            .collect())
    }

    async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        let s = self.lock();
        Ok(s.account_emails
            .get(email)
            .and_then(|id| s.users.get(id))
            .cloned())
    }

    async fn users_of_customer(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        let s = self.lock();
        let mut rows: Vec<&User> = s
            .users
            .values()
            .filter(|u| u.customer_id() == Some(query.customer) && is_account(u))
            .filter(|u| {
                query
                    .search
                    .as_deref()
                    .is_none_or(|q| u.search_text().contains(q))
            })
            .collect();
        rows.sort_by(|a, b| by_sort_key(a, b));
        let rows = rows.into_iter().cloned();
        Ok(match &query.start {
            PageStart::First => take_limit(rows, query.limit),
            PageStart::Offset(n) => take_limit(rows.skip(*n as usize), query.limit),
            PageStart::After(c) => take_limit(
                rows.filter(|u| (u.sort_key(), u.id()) > (c.sort_key.clone(), c.id)),
                query.limit,
            ),
        })
    }

    async fn count_users_of_customer(
        &self,
        customer: CustomerId,
        search: Option<String>,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let s = self.lock();
        let n = s
            .users
            .values()
            .filter(|u| u.customer_id() == Some(customer) && is_account(u))
            .filter(|u| {
                search
                    .as_deref()
                    .is_none_or(|q| u.search_text().contains(q))
            })
            .take(usize::try_from(cap).unwrap_or(usize::MAX))
            .count();
        Ok(n as u64)
    }

    async fn admins_of_customer(&self, customer: CustomerId) -> Result<Vec<User>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .filter(|u| u.customer_id() == Some(customer) && u.role() == Role::Administrator)
            .cloned()
            .collect())
    }

    async fn operators(&self) -> Result<Vec<User>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .filter(|u| u.role() == Role::Operator)
            .cloned()
            .collect())
    }

    async fn session_context(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionContext>, StoreError> {
        let now = us(now);
        let s = self.lock();
        let Some(session) = s
            .session_hashes
            .get(token_hash)
            .and_then(|id| s.sessions.get(id))
            .filter(|sess| sess.is_alive_at(now))
        else {
            return Ok(None);
        };
        let Some(user) = s.users.get(&session.user_id()) else {
            return Ok(None);
        };
        let customer = user
            .customer_id()
            .and_then(|c| s.customers.get(&c))
            .cloned();
        Ok(Some(SessionContext {
            session: session.clone(),
            user: user.clone(),
            customer,
        }))
    }

    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        Ok(self
            .lock()
            .sessions
            .values()
            .filter(|s| s.user_id() == user)
            .cloned()
            .collect())
    }

    async fn count_challenges_sent_to(
        &self,
        email: &EmailAddress,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let since = us(since);
        let n = self
            .lock()
            .challenges
            .values()
            .filter(|c| c.email() == email && c.record().created_at >= since)
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn challenge_by_ticket(
        &self,
        ticket_hash: &TokenHash,
    ) -> Result<Option<EmailChallenge>, StoreError> {
        Ok(self
            .lock()
            .challenges
            .values()
            .find(|c| c.record().ticket_hash == *ticket_hash)
            .cloned())
    }

    async fn action_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<ActionToken>, StoreError> {
        Ok(self
            .lock()
            .tokens
            .values()
            .find(|t| t.record().hash == *hash && t.purpose() == purpose)
            .cloned())
    }

    async fn action_tokens_of_user(
        &self,
        user: UserId,
        purpose: TokenPurpose,
    ) -> Result<Vec<ActionToken>, StoreError> {
        Ok(self
            .lock()
            .tokens
            .values()
            .filter(|t| t.user_id() == user && t.purpose() == purpose)
            .cloned()
            .collect())
    }

    async fn admin_request(&self, id: AdminRequestId) -> Result<Option<AdminRequest>, StoreError> {
        Ok(self.lock().requests.get(&id).cloned())
    }

    async fn admin_requests(
        &self,
        filter: &AdminRequestFilter,
    ) -> Result<Vec<AdminRequest>, StoreError> {
        let s = self.lock();
        let mut out: Vec<AdminRequest> = s
            .requests
            .values()
            .filter(|r| filter.customer.is_none_or(|c| r.customer_id() == c))
            .filter(|r| filter.requester.is_none_or(|u| r.requester() == u))
            .filter(|r| filter.statuses.is_empty() || filter.statuses.contains(&r.status()))
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse((r.record().created_at, r.id())));
        Ok(out)
    }

    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
        Ok(self.lock().counters.get(key).copied())
    }

    async fn oidc_client(&self, id: &str) -> Result<Option<portal_core::oidc::Client>, StoreError> {
        Ok(self
            .lock()
            .oidc
            .clients
            .iter()
            .find(|c| c.id == id)
            .cloned())
    }

    async fn oidc_clients(&self) -> Result<Vec<portal_core::oidc::Client>, StoreError> {
        Ok(self.lock().oidc.clients.clone())
    }

    async fn oidc_grant(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<portal_core::oidc::Grant>, StoreError> {
        Ok(self.lock().oidc.grants.get(&id).cloned())
    }

    async fn oidc_grants_of_user(
        &self,
        user: UserId,
    ) -> Result<Vec<portal_core::oidc::Grant>, StoreError> {
        Ok(self.oidc_grants_where(|g| g.user_id == user))
    }

    async fn oidc_grants_of_session(
        &self,
        session: SessionId,
    ) -> Result<Vec<portal_core::oidc::Grant>, StoreError> {
        Ok(self.oidc_grants_where(|g| g.session_id == session))
    }

    async fn oidc_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<portal_core::oidc::OidcToken>, StoreError> {
        Ok(self.lock().oidc.tokens.get(hash).cloned())
    }

    async fn passkey_challenge(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<portal_core::passkey::PasskeyChallenge>, StoreError> {
        Ok(self.lock().passkey_challenges.get(&id).cloned())
    }

    async fn oidc_consent(
        &self,
        user: UserId,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self
            .lock()
            .oidc
            .consents
            .get(&(user, client_id.to_owned()))
            .cloned())
    }

    async fn signing_keys(&self) -> Result<Vec<portal_core::oidc::SigningKey>, StoreError> {
        Ok(self.lock().oidc.keys.clone())
    }

    async fn webhook(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<portal_core::webhook::WebhookEndpoint>, StoreError> {
        Ok(self.lock().webhooks.iter().find(|e| e.id == id).cloned())
    }

    async fn webhooks(&self) -> Result<Vec<portal_core::webhook::WebhookEndpoint>, StoreError> {
        Ok(self.lock().webhooks.clone())
    }

    async fn webhook_snapshot(&self) -> Result<portal_core::webhook::WebhookSnapshot, StoreError> {
        let state = self.lock();
        Ok(portal_core::webhook::WebhookSnapshot {
            generation: state.webhook_generation,
            endpoints: state.webhooks.clone(),
        })
    }

    async fn users_with_sealed_secrets(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let s = self.lock();
        let mut found: Vec<User> = s
            .users
            .values()
            .filter(|u| after.is_none_or(|a| u.id() > a))
            .filter(|u| u.mfa().totp.is_some() || u.mfa().pending_totp.is_some())
            .cloned()
            .collect();
        found.sort_by_key(User::id);
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn stale_users(
        &self,
        kind: portal_core::ports::StaleUsers,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        use portal_core::ports::StaleUsers;
        let s = self.lock();
        Ok(s.users
            .values()
            .filter(|u| u.record().created_at <= cutoff)
            .filter(|u| match kind {
                StaleUsers::PendingRegistrations => u.state() == AccountState::PendingVerification,
                StaleUsers::Invitations => {
                    u.state() == AccountState::Invited
                        && !s.tokens.values().any(|t| {
                            let r = t.record();
                            r.user_id == u.id()
                                && r.purpose == TokenPurpose::Invitation
                                && r.expires_at > cutoff
                        })
                }
            })
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn audit_checkpoint(
        &self,
        customer: Option<CustomerId>,
    ) -> Result<Option<portal_core::ports::AuditCheckpoint>, StoreError> {
        Ok(self.lock().audit_checkpoints.get(&customer).copied())
    }

    async fn sealing_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().sealing_keys.iter().cloned().collect())
    }

    async fn legacy_claim(&self, legacy_id: &str) -> Result<Option<LegacyClaim>, StoreError> {
        Ok(self.lock().legacy.get(legacy_id).cloned())
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let s = self.lock();
        let Some(chain) = s.chains.get(&query.customer) else {
            return Ok(Vec::new());
        };
        let rows = chain
            .iter()
            .rev()
            .filter(|e| query.before_seq.is_none_or(|b| e.seq < b))
            .filter(|e| query.subject.is_none_or(|u| e.record.subject == Some(u)))
            .filter(|e| {
                query.categories.is_empty() || query.categories.contains(&e.record.category)
            })
            .filter(|e| query.from.is_none_or(|f| e.record.at >= us(f)))
            .filter(|e| query.until.is_none_or(|u| e.record.at < us(u)))
            .filter(|e| {
                query.search.as_deref().is_none_or(|q| {
                    e.record.details.to_lowercase().contains(q)
                        || query.search_categories.contains(&e.record.category)
                })
            })
            .cloned();
        Ok(take_limit(rows, query.limit))
    }

    async fn audit_chain(
        &self,
        customer: Option<CustomerId>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let s = self.lock();
        Ok(s.chains
            .get(&customer)
            .map(|c| {
                c.iter()
                    .filter(|e| e.seq > after_seq)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The imported old accounts of the store (`portal legacy import` writes them through
/// [`Write::PutLegacyAccount`]).
#[async_trait]
impl LegacyDirectory for MemoryStore {
    async fn find(&self, username: &str) -> Result<Option<LegacyRecord>, LegacyError> {
        Ok(self
            .lock()
            .legacy_accounts
            .get(&LegacyRecord::id_for(username))
            .cloned())
    }
}

/// A legacy ("Servicewelt") directory in memory, for demos and tests: old accounts added with
/// a password are stored as PBKDF2-SHA256 hashes (1 000 rounds, the cheapest the crate takes) in
/// passlib's form, like an old system's export.
#[derive(Debug, Default)]
pub struct InMemoryLegacyDirectory {
    accounts: Mutex<HashMap<String, LegacyRecord>>,
}

impl InMemoryLegacyDirectory {
    /// An empty directory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an old account (usernames are case-insensitive).
    ///
    /// # Panics
    /// Never for a password (hashing with fixed, valid parameters).
    pub fn add(&self, username: &str, password: &str, customer_number: CustomerNumber) {
        let id = LegacyRecord::id_for(username);
        let hash =
            portal_core::legacy_hash::LegacyHash::pbkdf2_sha256(password, id.as_bytes(), 1_000)
                .expect("hashing with valid parameters");
        self.accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id.clone(),
                LegacyRecord {
                    account: LegacyAccount {
                        id,
                        customer_number,
                    },
                    username: username.trim().to_owned(),
                    hash: Some(hash),
                    imported_at: DateTime::<Utc>::UNIX_EPOCH,
                },
            );
    }
}

#[async_trait]
impl LegacyDirectory for InMemoryLegacyDirectory {
    async fn find(&self, username: &str) -> Result<Option<LegacyRecord>, LegacyError> {
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(accounts.get(&LegacyRecord::id_for(username)).cloned())
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn claim_outbox(
        &self,
        kind: &str,
        claim: uuid::Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let (now, lease_until) = (us(now), us(lease_until));
        let mut s = self.lock();
        let mut out = Vec::new();
        for e in &mut s.outbox {
            if out.len() >= limit as usize {
                break;
            }
            let due = e.message.payload.kind_key() == kind
                && match e.status {
                    OutboxStatus::Pending => e.next_attempt_at <= now,
                    OutboxStatus::Claimed => e.claimed_until.is_some_and(|l| l <= now),
                    OutboxStatus::Sent | OutboxStatus::Dead => false,
                };
            if due {
                e.status = OutboxStatus::Claimed;
                e.claim = Some(claim);
                e.claimed_until = Some(lease_until);
                e.attempts += 1;
                out.push(e.clone());
            }
        }
        Ok(out)
    }

    async fn mark_sent(
        &self,
        id: OutboxId,
        claim: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(e) = s
            .outbox
            .iter_mut()
            .find(|e| e.id() == id && e.claim == Some(claim) && e.status == OutboxStatus::Claimed)
        else {
            return Ok(false);
        };
        e.status = OutboxStatus::Sent;
        e.claim = None;
        e.claimed_until = None;
        e.sent_at = Some(us(now));
        e.message.payload.purge_secret();
        Ok(true)
    }

    async fn mark_failed(
        &self,
        id: OutboxId,
        claim: uuid::Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(e) = s
            .outbox
            .iter_mut()
            .find(|e| e.id() == id && e.claim == Some(claim) && e.status == OutboxStatus::Claimed)
        else {
            return Ok(false);
        };
        e.claim = None;
        e.claimed_until = None;
        e.last_error = Some(error.chars().take(500).collect());
        match retry_at {
            Some(at) => {
                e.status = OutboxStatus::Pending;
                e.next_attempt_at = us(at);
            }
            None => e.status = OutboxStatus::Dead,
        }
        Ok(true)
    }

    async fn release(&self, id: OutboxId, claim: uuid::Uuid) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let Some(e) = s
            .outbox
            .iter_mut()
            .find(|e| e.id() == id && e.claim == Some(claim) && e.status == OutboxStatus::Claimed)
        else {
            return Ok(false);
        };
        e.status = OutboxStatus::Pending;
        e.claim = None;
        e.claimed_until = None;
        e.attempts = e.attempts.saturating_sub(1);
        Ok(true)
    }

    async fn dead_letters<'a>(
        &self,
        kind: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let s = self.lock();
        Ok(s.outbox
            .iter()
            .rev()
            .filter(|e| e.status == OutboxStatus::Dead)
            .filter(|e| kind.is_none_or(|k| e.message.payload.kind_key() == k))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.lock().outbox.iter().find(|e| e.id() == id).cloned())
    }

    async fn purge_sent(&self, sent_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut left = limit as usize;
        let mut gone = Vec::new();
        state.outbox.retain(|e| {
            let purge = left > 0
                && e.status == OutboxStatus::Sent
                && e.sent_at.is_some_and(|at| at <= sent_before);
            if purge {
                left -= 1;
                gone.push(e.id());
            }
            !purge
        });
        // Like the SQL stores' unique key, a purged mail's id is free again.
        for id in &gone {
            state.outbox_ids.remove(id);
        }
        Ok(gone.len() as u64)
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let s = self.lock();
        let mut stats = OutboxStats::default();
        for e in &s.outbox {
            match e.status {
                OutboxStatus::Pending => stats.pending += 1,
                OutboxStatus::Claimed => stats.claimed += 1,
                OutboxStatus::Sent => stats.sent += 1,
                OutboxStatus::Dead => stats.dead += 1,
            }
        }
        // Capped like the SQL store's counts (`adapters_postgres::OUTBOX_STATS_CAP`).
        for n in [
            &mut stats.pending,
            &mut stats.claimed,
            &mut stats.sent,
            &mut stats.dead,
        ] {
            *n = (*n).min(OUTBOX_STATS_CAP);
        }
        Ok(stats)
    }
}

/// A phone gateway for development and tests: delivers nothing, records every SMS or voice
/// message so a developer (or a test) can read the code. The server's development mode logs them.
#[derive(Debug, Default)]
pub struct RecordingSmsSender {
    messages: Mutex<Vec<PhoneMessage>>,
}

impl RecordingSmsSender {
    /// An empty recorder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, oldest first.
    #[must_use]
    pub fn messages(&self) -> Vec<PhoneMessage> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The code of the newest message to a number.
    #[must_use]
    pub fn last_code_to(&self, number: &str) -> Option<String> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|m| m.to.as_str() == number)
            .map(|m| m.code.expose().to_owned())
    }
}

#[async_trait]
impl SmsSender for RecordingSmsSender {
    async fn send(&self, message: &PhoneMessage) -> Result<(), SmsError> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        Ok(())
    }
}
