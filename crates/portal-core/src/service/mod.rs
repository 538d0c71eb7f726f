//! The use cases: one [`Portal`] service whose methods are the verbs of the manual.
//!
//! Every state-changing use case follows the same shape: load what it needs (with versions),
//! check authorization on that fresh data, decide, and hand the committer one [`Commit`] with the
//! writes, exactly one audit record and the mails. On a version conflict it reloads and decides
//! again (up to [`MAX_COMMIT_ATTEMPTS`] times) and then reports `Conflict`.

mod admin_requests;
mod audit_log;
mod auth;
mod contact;
mod customers;
mod data_export;
mod housekeeping;
mod legacy;
mod mfa;
mod oidc;
mod onboarding;
mod outbox;
mod paging;
mod password_reset;
mod profile;
mod registration;
mod secrets;
mod sessions;
mod user_admin;
mod webhooks;

pub use crate::challenge::CodeError;
pub use admin_requests::{AdminRequestError, AdminRequestView};
pub use audit_log::{
    AUDIT_COUNT_CAP, AuditError, AuditListQuery, AuditPage, AuditView, ChainReport,
};
pub use auth::{
    AuthError, IssuedSession, KnownBrowser, Login, LoginError, LoginOutcome, PendingMfaLogin,
    Presented, Principal,
};
pub use contact::ContactError;
pub use customers::{CustomerError, CustomerPage, ImportReport, NewCustomer, OperatorSetup};
pub use data_export::ExportError;
pub use housekeeping::HousekeepingReport;
pub use legacy::{
    LEGACY_IMPORT_BATCH, LegacyImportError, LegacyImportReport, LegacyRowProblem,
    MAX_LEGACY_USERNAME, NewLegacyAccount,
};
pub use mfa::{
    CompleteMfa, FactorEnabled, MfaError, MfaLogin, PasskeyCeremony, PasskeySignIn, SecondFactor,
};
pub use oidc::{
    AuthorizeOutcome, AuthorizeRefusal, AuthorizeRequest, CheckedAuthorize, ClientAuth,
    ClientChanges, ClientWithSecret, ErrorRedirect, LiveGrant, LogoutOutcome, NewClient,
    OidcAdminError, TokenError, TokenRequest, TokenResponse, pkce_s256,
};
pub use onboarding::{LinkError, LinkOutcome};
pub use outbox::{MAX_DEAD_LETTERS, OutboxError};
pub use paging::{PageRequest, PagingError};
pub use password_reset::{PasswordResetRequests, ResetError};
pub use profile::ProfileError;
pub use registration::{
    AcceptInvitation, InvitationError, InvitationView, Register, RegisterError, RegistrationTicket,
    ResendError, VerifyError,
};
pub use secrets::{ResealReport, SealingKeyError};
pub use sessions::SessionError;
pub use user_admin::{AdminError, Invite, USER_COUNT_CAP, UserPage};
pub use webhooks::{
    NewWebhook, WebhookError, WebhookTarget, WebhookTargetError, WebhookWithSecret,
};

use crate::audit::{ActorKind, ActorRef, AuditCategory, AuditRecord};
use crate::authz::Acting;
use crate::config::{ConfigError, PortalConfig};
use crate::ids::{CustomerId, SessionId, UserId};
use crate::mail::{MailIntent, OutboxMail};
use crate::permission::PermissionCatalog;
use crate::ports::{
    Clock, Commit, Committer, IdGenerator, LegacyDirectory, NoSmsSender, PasswordHasher, Queries,
    SecretGenerator, SmsSender, StoreError,
};
use crate::user::{Role, User};
use crate::values::{EmailAddress, Language};
use chrono::{DateTime, SubsecRound, Utc};
use std::future::Future;
use std::sync::Arc;

/// How often a use case reloads and retries after a version conflict before giving up.
pub const MAX_COMMIT_ATTEMPTS: u32 = 5;

/// The adapters a [`Portal`] runs on.
#[derive(Clone)]
pub struct Deps {
    /// Reads.
    pub queries: Arc<dyn Queries>,
    /// The atomic write.
    pub committer: Arc<dyn Committer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
    /// Secure randomness.
    pub random: Arc<dyn SecretGenerator>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Old accounts to link.
    pub legacy: Arc<dyn LegacyDirectory>,
}

impl Deps {
    /// Production defaults around a store: system clock, UUIDv7 ids, OS randomness, Argon2id
    /// (19 MiB, t = 2) and no legacy directory.
    pub fn production<S>(store: Arc<S>) -> Self
    where
        S: Queries + Committer + 'static,
    {
        let random: Arc<dyn SecretGenerator> = Arc::new(crate::defaults::OsSecretGenerator);
        Self {
            queries: store.clone(),
            committer: store,
            clock: Arc::new(crate::defaults::SystemClock),
            ids: Arc::new(crate::defaults::UuidV7Ids),
            hasher: Arc::new(crate::hashing::Argon2idHasher::new(random.clone())),
            random,
            legacy: Arc::new(crate::ports::NoLegacyDirectory),
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// Who calls a use case: a user (from a validated session) or the system itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A user. Their current role and status are reloaded by every use case.
    User {
        /// The user.
        id: UserId,
        /// The session the request came with, if any.
        session: Option<SessionId>,
    },
    /// The system (command line, maintenance): trusted, acts as an operator.
    System,
}

impl Actor {
    /// A user acting without a session (embedders' background jobs, tests).
    #[must_use]
    pub const fn user(id: UserId) -> Self {
        Self::User { id, session: None }
    }
}

/// A use case's decision: what to commit, and what to answer once it is committed.
pub(crate) struct Planned<T> {
    pub(crate) commit: Commit,
    pub(crate) value: T,
}

impl<T> Planned<T> {
    pub(crate) fn new(commit: Commit, value: T) -> Self {
        Self { commit, value }
    }
}

/// The portal: every use case of the manual.
pub struct Portal {
    deps: Deps,
    config: PortalConfig,
    catalog: PermissionCatalog,
    sms: Arc<dyn SmsSender>,
    /// Whether a phone gateway was given ([`Portal::with_sms_sender`]); without one, phone
    /// factors answer `Unavailable` before anything is stored or counted.
    phone_gateway: bool,
    /// Whether phone codes are queued in the outbox ([`Portal::with_sms_outbox`]) instead of
    /// being handed to `sms` after the commit.
    sms_outbox: bool,
    /// Where login outcomes are reported ([`Portal::with_observer`]).
    observer: Arc<dyn crate::ports::Observer>,
    /// The WebAuthn relying party ([`Portal::with_passkey_verifier`]); without one, passkeys
    /// answer `Unavailable`.
    passkeys: Option<Arc<dyn crate::ports::PasskeyVerifier>>,
    /// The webhook endpoints as last read ([`Queries::webhook_snapshot`]), so a commit does not
    /// read them again; storage refuses a commit computed from an outdated generation.
    webhooks: std::sync::RwLock<Option<Arc<crate::webhook::WebhookSnapshot>>>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// Builds the service.
    ///
    /// # Errors
    /// A setting outside its safe range.
    pub fn new(
        deps: Deps,
        config: PortalConfig,
        catalog: PermissionCatalog,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            deps,
            config,
            catalog,
            sms: Arc::new(NoSmsSender),
            phone_gateway: false,
            sms_outbox: false,
            observer: Arc::new(crate::ports::NoObserver),
            passkeys: None,
            webhooks: std::sync::RwLock::new(None),
        })
    }

    /// Reports login outcomes to `observer` (metrics); without one, nothing is reported.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn crate::ports::Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Sends SMS and voice codes through `sender` (without one, phone factors are unavailable).
    ///
    /// The sender is called directly, after the commit that stored the code's hash: a failing
    /// gateway is reported to the user (`MfaError::SendFailed`) and nothing is retried. For a
    /// production gateway prefer [`Self::with_sms_outbox`].
    #[must_use]
    pub fn with_sms_sender(mut self, sender: Arc<dyn SmsSender>) -> Self {
        self.sms = sender;
        self.phone_gateway = true;
        self.sms_outbox = false;
        self
    }

    /// Offers SMS and voice codes and queues each one in the outbox, as a message of kind
    /// [`sms`](crate::outbox::OutboxKind::Sms) in the same commit that stores the code's hash
    /// (R21): an outbox dispatcher with the gateway's [`Sender`](crate::outbox::Sender)
    /// delivers it, at least once, with retries, back-off and dead letters like mail. The answer
    /// no longer waits for the gateway, and a gateway that is down fails no request. Replaces
    /// [`Self::with_sms_sender`].
    #[must_use]
    pub fn with_sms_outbox(mut self) -> Self {
        self.sms = Arc::new(NoSmsSender);
        self.phone_gateway = true;
        self.sms_outbox = true;
        self
    }

    /// Takes one send from each of `budgets`: every budget is read first and a spent one refuses
    /// without counting anything; then each is bumped, and the atomic bump has the last word
    /// (a request that loses a race past the read is refused, having counted in its own window
    /// only). `Some(t)`: refused, the refused budget is full again at `t`.
    pub(crate) async fn take_budgets(
        &self,
        budgets: &[(String, crate::throttle::SendBudget)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::ports::StoreError> {
        for (key, budget) in budgets {
            let count = self.deps.queries.counter(key).await?.map_or(0, |c| c.count);
            if !budget.allows(count) {
                return Ok(Some(budget.refills_at(now)));
            }
        }
        for (key, budget) in budgets {
            let after = self
                .deps
                .committer
                .bump_counter(key, now, budget.reset_after())
                .await?;
            if after.count > budget.limit {
                return Ok(Some(budget.refills_at(now)));
            }
        }
        Ok(None)
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &PortalConfig {
        &self.config
    }

    /// The permission catalog.
    #[must_use]
    pub fn catalog(&self) -> &PermissionCatalog {
        &self.catalog
    }

    /// The adapters.
    #[must_use]
    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Now, at microsecond precision (what every backend stores).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.deps.clock.now().trunc_subsecs(6)
    }

    pub(crate) fn new_uuid(&self) -> uuid::Uuid {
        self.deps.ids.new_id()
    }

    /// Runs `plan` and commits its decision, reloading and deciding again on a version conflict.
    pub(crate) async fn transact<T, E, F, Fut>(&self, mut plan: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Planned<T>, E>>,
        E: From<StoreError>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Planned { mut commit, value } = plan().await?;
            if commit.is_empty() {
                return Ok(value);
            }
            self.add_backchannel_logouts(&mut commit).await?;
            match self.commit_with_events(commit).await {
                Ok(()) => return Ok(value),
                Err(StoreError::Conflict) if attempt < MAX_COMMIT_ATTEMPTS => {}
                Err(e) => return Err(E::from(e)),
            }
        }
    }

    /// Loads the actor as stored now.
    pub(crate) async fn acting(&self, actor: &Actor) -> Result<Option<Acting>, StoreError> {
        match actor {
            Actor::System => Ok(Some(Acting::System)),
            Actor::User { id, .. } => Ok(self.deps.queries.user(*id).await?.map(Acting::User)),
        }
    }

    /// The actor as stored now if it is an active operator or the system
    /// ([`crate::authz::is_operator`]); `None` for anyone else, and for a user who is gone: what
    /// every operator-only use case checks first.
    pub(crate) async fn acting_operator(
        &self,
        actor: &Actor,
    ) -> Result<Option<Acting>, StoreError> {
        Ok(self.acting(actor).await?.filter(crate::authz::is_operator))
    }

    /// The change-log entry of what `user` did to their own account (actor and subject both the
    /// user, under their customer).
    pub(crate) fn own_audit_record(
        &self,
        now: DateTime<Utc>,
        user: &User,
        category: AuditCategory,
        details: impl Into<String>,
    ) -> AuditRecord {
        self.audit_record(
            now,
            user.customer_id(),
            ActorRef::user(user.id()),
            Some(user.id()),
            category,
            details,
        )
    }

    /// An audit record at `now`.
    pub(crate) fn audit_record(
        &self,
        now: DateTime<Utc>,
        customer: Option<CustomerId>,
        actor: ActorRef,
        subject: Option<UserId>,
        category: AuditCategory,
        details: impl Into<String>,
    ) -> AuditRecord {
        AuditRecord {
            id: crate::ids::AuditEntryId::from_uuid(self.new_uuid()),
            at: now,
            customer,
            actor,
            subject,
            category,
            details: details.into(),
        }
    }

    /// A mail to a user in their language.
    pub(crate) fn mail_to(
        &self,
        now: DateTime<Utc>,
        user: &User,
        intent: MailIntent,
    ) -> OutboxMail {
        self.mail(now, user.email().clone(), user.language(), intent)
    }

    /// A mail to an address.
    pub(crate) fn mail(
        &self,
        now: DateTime<Utc>,
        to: EmailAddress,
        language: Language,
        intent: MailIntent,
    ) -> OutboxMail {
        OutboxMail {
            id: crate::ids::OutboxId::from_uuid(self.new_uuid()),
            created_at: now,
            to,
            language,
            intent,
        }
    }
}

/// How an acting party appears in the audit log.
pub(crate) fn actor_ref(acting: &Acting) -> ActorRef {
    match acting {
        Acting::System => ActorRef::system(),
        Acting::User(u) if u.role() == Role::Operator => ActorRef::operator(u.id()),
        Acting::User(u) => ActorRef::user(u.id()),
    }
}

pub(crate) fn actor_kind_label(kind: ActorKind, language: Language) -> &'static str {
    match (kind, language) {
        (ActorKind::Operator, Language::De) => "Portal-Mitarbeiter",
        (ActorKind::Operator, Language::En) => "Portal staff",
        (ActorKind::System, Language::De) => "System",
        (ActorKind::System, Language::En) => "System",
        (ActorKind::User, Language::De) => "Benutzer",
        (ActorKind::User, Language::En) => "User",
        (ActorKind::Anonymous, Language::De) => "Unbekannt",
        (ActorKind::Anonymous, Language::En) => "Anonymous",
    }
}

/// Implements `From<StoreError>`, `From<HashError>` and `From<LegacyError>` for an error enum with
/// `Conflict` and `Infra(InfraError)` variants; optional `UniqueKey => variant` arms map
/// uniqueness violations to meaningful variants.
macro_rules! infra_errors {
    ($ty:ty $(, $key:pat => $variant:expr)* $(,)?) => {
        impl From<$crate::ports::StoreError> for $ty {
            fn from(e: $crate::ports::StoreError) -> Self {
                match e {
                    $crate::ports::StoreError::Conflict => Self::Conflict,
                    $( $crate::ports::StoreError::Duplicate($key) => $variant, )*
                    other => Self::Infra($crate::error::InfraError::Store(other)),
                }
            }
        }
        impl From<$crate::ports::HashError> for $ty {
            fn from(e: $crate::ports::HashError) -> Self {
                Self::Infra($crate::error::InfraError::Hash(e))
            }
        }
        impl From<$crate::ports::LegacyError> for $ty {
            fn from(e: $crate::ports::LegacyError) -> Self {
                Self::Infra($crate::error::InfraError::Legacy(e))
            }
        }
    };
}
pub(crate) use infra_errors;
