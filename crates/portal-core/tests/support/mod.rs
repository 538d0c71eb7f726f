//! A test world: the real core on the in-memory adapter with deterministic fakes (manual clock,
//! sequential ids, seeded randomness, a cheap but real Argon2id hasher), plus builders that walk
//! the manual's flows to reach a given state, reading codes and links out of the outbox.

use adapters_memory::{InMemoryLegacyDirectory, MemoryStore, RecordingSmsSender};
use chrono::TimeDelta;
use portal_core::config::PortalConfig;
use portal_core::customer::{Customer, ServiceChannel};
use portal_core::ids::{CustomerId, UserId};
use portal_core::mail::OutboxMail;
use portal_core::permission::{PermissionCatalog, PermissionSet};
use portal_core::secret::SecretString;
use portal_core::service::{
    Invite, IssuedSession, Login, LoginOutcome, NewCustomer, Principal, Register,
};
use portal_core::session::ClientInfo;
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};
use portal_core::throttle::{LoginProtection, keys};
use portal_core::values::{CompanyName, Language};
use portal_core::{Actor, Deps, Portal};
use std::collections::BTreeSet;
use std::sync::Arc;

pub use portal_core::testing::{PASSWORD, affiliation, email, key, keys, mfa_key, name, number};

pub struct World {
    pub portal: Portal,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub legacy: Arc<InMemoryLegacyDirectory>,
    pub sms: Arc<RecordingSmsSender>,
}

pub fn client() -> ClientInfo {
    ClientInfo::new(Some("127.0.0.1"), Some("test"))
}

impl World {
    pub fn new() -> Self {
        Self::with_config(PortalConfig::default())
    }

    pub fn with_config(config: PortalConfig) -> Self {
        Self::with(config, PermissionCatalog::default())
    }

    pub fn with(config: PortalConfig, catalog: PermissionCatalog) -> Self {
        Self::build(config, catalog, Arc::new(fast_hasher(7)))
    }

    fn build(
        mut config: PortalConfig,
        catalog: PermissionCatalog,
        hasher: Arc<dyn portal_core::ports::PasswordHasher>,
    ) -> Self {
        if config.mfa_key.is_none() {
            config.mfa_key = Some(mfa_key());
        }
        Self::build_raw(config, catalog, hasher, true)
    }

    /// A world whose server has no MFA key (authenticator apps unavailable).
    pub fn without_mfa_key() -> Self {
        let config = PortalConfig {
            mfa_key: None,
            ..PortalConfig::default()
        };
        Self::build_raw(
            config,
            PermissionCatalog::default(),
            Arc::new(fast_hasher(7)),
            true,
        )
    }

    /// A world whose server has no phone gateway (SMS and voice unavailable).
    pub fn without_phone_gateway() -> Self {
        let config = PortalConfig {
            mfa_key: Some(mfa_key()),
            ..PortalConfig::default()
        };
        Self::build_raw(
            config,
            PermissionCatalog::default(),
            Arc::new(fast_hasher(7)),
            false,
        )
    }

    /// Another server over the same store and clock, with other settings or without the phone
    /// gateway (e.g. one that lost its MFA key or gateway).
    pub fn sibling(&self, config: PortalConfig, phone_gateway: bool) -> Portal {
        let portal = Portal::new(
            self.portal.deps().clone(),
            config,
            self.portal.catalog().clone(),
        )
        .unwrap();
        if phone_gateway {
            portal.with_sms_sender(self.sms.clone())
        } else {
            portal
        }
    }

    /// A world whose server queues phone codes in the outbox (`Portal::with_sms_outbox`) instead
    /// of handing them to `sms` directly: read them with [`Self::queued_sms`].
    pub fn with_sms_outbox() -> Self {
        let mut w = Self::new();
        w.portal = Portal::new(
            w.portal.deps().clone(),
            w.portal.config().clone(),
            w.portal.catalog().clone(),
        )
        .unwrap()
        .with_sms_outbox();
        w
    }

    /// The phone codes waiting in the outbox (kind `sms`), oldest first.
    pub fn queued_sms(&self) -> Vec<portal_core::ports::PhoneMessage> {
        self.store
            .messages()
            .into_iter()
            .filter_map(|m| match m.payload {
                portal_core::outbox::Payload::Sms(text) => Some(text),
                _ => None,
            })
            .collect()
    }

    fn build_raw(
        config: PortalConfig,
        catalog: PermissionCatalog,
        hasher: Arc<dyn portal_core::ports::PasswordHasher>,
        phone_gateway: bool,
    ) -> Self {
        let sms = Arc::new(RecordingSmsSender::new());
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let legacy = Arc::new(InMemoryLegacyDirectory::new());
        let deps = Deps {
            queries: store.clone(),
            committer: store.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(42)),
            hasher,
            legacy: legacy.clone(),
        };
        let portal = Portal::new(deps, config, catalog).unwrap();
        let portal = if phone_gateway {
            portal.with_sms_sender(sms.clone())
        } else {
            portal
        };
        Self {
            portal,
            store,
            clock,
            legacy,
            sms,
        }
    }

    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    // --- mail ---

    /// "Passwort vergessen?" as the server runs it: the request, then its processing behind the
    /// answer (the outbox's password-reset requests through the real sender), so the link or
    /// notice it causes is in the outbox afterwards.
    pub async fn forgot_password(
        &self,
        address: &str,
    ) -> Result<(), portal_core::service::ResetError> {
        self.portal.forgot_password(address).await?;
        portal_core::testing::process_reset_requests(&self.portal, &*self.store).await;
        Ok(())
    }

    pub fn mails_to(&self, to: &str) -> Vec<OutboxMail> {
        self.store
            .outbox()
            .into_iter()
            .filter(|m| m.to.as_str() == to)
            .collect()
    }

    pub fn last_mail_to(&self, to: &str) -> OutboxMail {
        self.mails_to(to)
            .pop()
            .unwrap_or_else(|| panic!("no mail to {to}"))
    }

    /// The code or link token of the last mail to `to` that carries one.
    pub fn secret_for(&self, to: &str) -> String {
        self.mails_to(to)
            .iter()
            .rev()
            .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
            .unwrap_or_else(|| panic!("no mail with a code or link to {to}"))
    }

    pub fn mail_kinds_to(&self, to: &str) -> Vec<&'static str> {
        self.mails_to(to).iter().map(|m| m.intent.key()).collect()
    }

    // --- builders walking the manual's flows ---

    pub fn register_cmd(&self, address: &str) -> Register {
        Register {
            email: email(address),
            first_name: name("Anna"),
            last_name: name("Schmidt"),
            password: PASSWORD.into(),
            password_confirmation: PASSWORD.into(),
            language: Language::De,
        }
    }

    /// Registers and confirms the code: an active account without a customer, logged in.
    pub async fn registered(&self, address: &str) -> (Actor, IssuedSession) {
        let ticket = self
            .portal
            .register(self.register_cmd(address))
            .await
            .unwrap();
        let code = self.secret_for(address);
        let session = self
            .portal
            .verify_registration(ticket.ticket.expose(), &code, client())
            .await
            .unwrap();
        (Actor::user(session.user_id), session)
    }

    pub async fn customer(&self, n: &str) -> Customer {
        self.customer_with(n, None).await
    }

    pub async fn customer_with(&self, n: &str, entitlements: Option<PermissionSet>) -> Customer {
        self.portal
            .create_customer(
                &Actor::System,
                &NewCustomer {
                    number: number(n),
                    name: CompanyName::parse(&format!("Firma {n}")).unwrap(),
                    affiliations: BTreeSet::from([affiliation()]),
                    channel: ServiceChannel::Direct,
                    entitlements,
                    default_permissions: None,
                },
            )
            .await
            .unwrap()
    }

    /// Registers and links to the customer by number.
    pub async fn member(&self, address: &str, n: &str) -> Actor {
        let (actor, _) = self.registered(address).await;
        self.portal
            .choose_affiliation(&actor, &affiliation())
            .await
            .unwrap();
        self.portal.link_customer(&actor, &number(n)).await.unwrap();
        actor
    }

    /// An active operator.
    pub async fn operator(&self, address: &str) -> Actor {
        let setup = self
            .portal
            .create_operator(
                &Actor::System,
                &email(address),
                &name("Otto"),
                &name("Operator"),
                Language::De,
            )
            .await
            .unwrap();
        self.accept_invitation(setup.token.expose(), address).await
    }

    /// Opens an invitation link and sets the password: the ticket whose mailed code confirms it.
    pub async fn accept_invitation_ticket(
        &self,
        token: &str,
    ) -> portal_core::service::RegistrationTicket {
        self.portal
            .accept_invitation(
                token,
                portal_core::service::AcceptInvitation {
                    password: PASSWORD.into(),
                    password_confirmation: PASSWORD.into(),
                },
            )
            .await
            .unwrap()
    }

    /// Accepts an invitation link and confirms the code.
    pub async fn accept_invitation(&self, token: &str, address: &str) -> Actor {
        let ticket = self.accept_invitation_ticket(token).await;
        let code = self.secret_for(address);
        let s = self
            .portal
            .verify_registration(ticket.ticket.expose(), &code, client())
            .await
            .unwrap();
        Actor::user(s.user_id)
    }

    /// A member who asked for admin rights and was approved by an operator (with an existing
    /// admin's consent when there is one).
    pub async fn admin(&self, address: &str, n: &str, operator: &Actor) -> Actor {
        let existing_admin = self.active_admin_actor(n).await;
        let actor = match self
            .portal
            .deps()
            .queries
            .user_by_email(&email(address))
            .await
            .unwrap()
        {
            Some(u) => Actor::user(u.id()),
            None => self.member(address, n).await,
        };
        // A customer with an admin puts joiners on hold: activate first.
        if let Some(admin) = &existing_admin {
            let u = self.user_id(address).await;
            let _ = self.portal.activate_user(admin, &number(n), u).await;
        }
        let req = self.portal.request_admin_rights(&actor).await.unwrap();
        if let Some(admin) = &existing_admin {
            self.portal
                .consent_admin_request(admin, &number(n), req.id())
                .await
                .unwrap();
        }
        self.portal
            .approve_admin_request(operator, req.id())
            .await
            .unwrap();
        actor
    }

    async fn active_admin_actor(&self, n: &str) -> Option<Actor> {
        let c = self
            .portal
            .deps()
            .queries
            .customer_by_number(&number(n))
            .await
            .unwrap()?;
        self.portal
            .deps()
            .queries
            .admins_of_customer(c.id())
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.is_active_admin_of(c.id()))
            .map(|a| Actor::user(a.id()))
    }

    /// Invites a user as `admin`, accepts, confirms: an active employee.
    pub async fn invited(&self, admin: &Actor, n: &str, address: &str, perms: &[&str]) -> Actor {
        let token = self.invite(admin, n, address, perms).await;
        self.accept_invitation(&token, address).await
    }

    /// Invites a user as `admin`: the token of the invitation link.
    pub async fn invite(&self, admin: &Actor, n: &str, address: &str, perms: &[&str]) -> String {
        self.portal
            .invite_user(
                admin,
                &number(n),
                Invite {
                    email: email(address),
                    first_name: name("Ida"),
                    last_name: name("Eingeladen"),
                    language: Language::De,
                    permissions: keys(perms),
                },
            )
            .await
            .unwrap();
        self.secret_for(address)
    }

    pub async fn login(&self, address: &str) -> IssuedSession {
        match self
            .portal
            .login(Login {
                email: address.into(),
                password: SecretString::new(PASSWORD),
                client: client(),
            })
            .await
            .unwrap()
        {
            LoginOutcome::Authenticated(s) => s,
            LoginOutcome::MfaRequired(_) => panic!("{address} needs a second factor"),
        }
    }

    pub async fn principal(&self, session: &IssuedSession) -> Principal {
        self.portal
            .authenticate(session.token.expose())
            .await
            .unwrap()
    }

    pub async fn user_id(&self, address: &str) -> UserId {
        self.portal
            .deps()
            .queries
            .user_by_email(&email(address))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no account {address}"))
            .id()
    }

    pub async fn user(&self, id: UserId) -> portal_core::user::User {
        self.portal.deps().queries.user(id).await.unwrap().unwrap()
    }

    pub fn audit_of(&self, customer: Option<CustomerId>) -> Vec<portal_core::audit::AuditEntry> {
        self.store.audit_entries(customer)
    }
}

// --- additions for the service tests of every flow ---

/// What a rejected command must leave untouched, counted over the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub audit: usize,
    pub mails: usize,
    pub sessions: usize,
    pub users: usize,
}

impl World {
    /// A world like [`World::new`] but with another password hasher (e.g. stronger parameters,
    /// to see outdated hashes upgraded at login).
    pub fn with_hasher(hasher: Arc<dyn portal_core::ports::PasswordHasher>) -> Self {
        Self::build(
            PortalConfig::default(),
            PermissionCatalog::default(),
            hasher,
        )
    }

    pub fn counts(&self) -> Counts {
        Counts {
            audit: self.store.audit_len(),
            mails: self.store.outbox().len(),
            sessions: self.store.session_count(),
            users: self.store.user_count(),
        }
    }

    /// Writes straight to the store, bypassing the use cases: only to set up states the flows
    /// cannot reach (or reach only slowly).
    pub async fn force(&self, writes: Vec<portal_core::ports::Write>) {
        use portal_core::ports::Committer as _;
        let mut commit = portal_core::ports::Commit::new();
        for w in writes {
            commit.write(w);
        }
        self.store.commit(commit).await.unwrap();
    }

    /// A login attempt with any address and password.
    pub async fn try_login(
        &self,
        address: &str,
        password: &str,
    ) -> Result<IssuedSession, portal_core::service::LoginError> {
        self.portal
            .login(Login {
                email: address.into(),
                password: SecretString::new(password),
                client: client(),
            })
            .await
            .map(|outcome| match outcome {
                LoginOutcome::Authenticated(s) => s,
                LoginOutcome::MfaRequired(_) => panic!("{address} needs a second factor"),
            })
    }

    /// The customer with this number, as stored now.
    pub async fn customer_now(&self, n: &str) -> Customer {
        self.portal
            .deps()
            .queries
            .customer_by_number(&number(n))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no customer {n}"))
    }

    /// Every audit entry of every chain the test touched: the global one and these customers'.
    pub fn all_audit(&self, customers: &[CustomerId]) -> Vec<portal_core::audit::AuditEntry> {
        let mut all = self.audit_of(None);
        for c in customers {
            all.extend(self.audit_of(Some(*c)));
        }
        all
    }

    /// The categories of a chain's entries about one user, oldest first.
    pub fn categories_about(
        &self,
        customer: Option<CustomerId>,
        user: UserId,
    ) -> Vec<portal_core::audit::AuditCategory> {
        self.audit_of(customer)
            .into_iter()
            .filter(|e| e.record.subject == Some(user))
            .map(|e| e.record.category)
            .collect()
    }

    /// A registered user who chose the affiliation and linked to the customer by number but
    /// waits for activation (the customer must have an admin already).
    pub async fn pending_member(&self, address: &str, n: &str) -> Actor {
        let actor = self.member(address, n).await;
        let id = self.user_id(address).await;
        assert_eq!(
            self.user(id).await.status(),
            portal_core::user::UserStatus::PendingActivation,
            "{n} has no admin, so {address} is not pending"
        );
        actor
    }
}

/// The user behind an actor.
pub fn id_of(actor: &Actor) -> UserId {
    match actor {
        Actor::User { id, .. } => *id,
        Actor::System => panic!("the system is no user"),
    }
}

// --- second factors (shared by the MFA suites) ---

/// Everything a rejected command must leave untouched for one user: the store-wide counts, the
/// user record (MFA state included), the user's sessions (pending logins with their tries and
/// phone codes, devices), the phone messages sent, and the user's second-factor failure counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub counts: Counts,
    pub user: Option<portal_core::user::User>,
    pub sessions: Vec<portal_core::session::Session>,
    pub sms: usize,
    pub second_factor_failures: Option<portal_core::ports::Counter>,
}

impl World {
    /// See [`Snapshot`].
    pub async fn snapshot(&self, user: UserId) -> Snapshot {
        let q = &self.portal.deps().queries;
        let mut sessions = q.sessions_of_user(user).await.unwrap();
        sessions.sort_by_key(portal_core::session::Session::id);
        Snapshot {
            counts: self.counts(),
            user: q.user(user).await.unwrap(),
            sessions,
            sms: self.sms.messages().len(),
            second_factor_failures: q
                .counter(&portal_core::throttle::keys::second_factor(user))
                .await
                .unwrap(),
        }
    }

    /// Sets up an authenticator app in a session that is still within the step-up window.
    /// Returns the secret and the recovery code (when one was issued). The clock then moves one
    /// step on, so the next code is fresh.
    pub async fn enable_totp(
        &self,
        session: &IssuedSession,
    ) -> (portal_core::totp::TotpSecret, Option<String>) {
        let p = self.principal(session).await;
        let enrolment = self.portal.start_totp_enrolment(&p).await.unwrap();
        let secret = portal_core::totp::TotpSecret::from_base32(enrolment.secret_base32()).unwrap();
        let code =
            portal_core::totp::code_at(&secret, portal_core::ports::Clock::now(&*self.clock));
        let enabled = self.portal.confirm_totp(&p, &code).await.unwrap();
        self.advance(TimeDelta::seconds(30));
        (secret, enabled.recovery_code.map(|c| c.expose().to_owned()))
    }

    /// A registered user with an authenticator app: the secret, the recovery code and the
    /// session that set it up.
    pub async fn with_totp(
        &self,
        address: &str,
    ) -> (portal_core::totp::TotpSecret, String, IssuedSession) {
        let (_, session) = self.registered(address).await;
        let (secret, recovery) = self.enable_totp(&session).await;
        (
            secret,
            recovery.expect("a first factor issues a recovery code"),
            session,
        )
    }

    /// Sets up a phone for codes (SMS) in a session within the step-up window; returns the
    /// recovery code when one was issued.
    pub async fn enable_phone(&self, session: &IssuedSession, number: &str) -> Option<String> {
        let p = self.principal(session).await;
        let phone = portal_core::mfa::PhoneNumber::parse(number).unwrap();
        self.portal
            .start_phone_enrolment(&p, &phone, portal_core::mfa::PhoneChannel::Sms)
            .await
            .unwrap();
        let code = self.sms.last_code_to(phone.as_str()).expect("an SMS");
        self.portal
            .confirm_phone(&p, &code.as_str().into())
            .await
            .unwrap()
            .recovery_code
            .map(|c| c.expose().to_owned())
    }

    /// [`Self::enable_phone`] on a world whose texts go through the outbox
    /// ([`World::with_sms_outbox`]).
    pub async fn enable_phone_from_outbox(&self, session: &IssuedSession, number: &str) {
        let p = self.principal(session).await;
        let phone = portal_core::mfa::PhoneNumber::parse(number).unwrap();
        self.portal
            .start_phone_enrolment(&p, &phone, portal_core::mfa::PhoneChannel::Sms)
            .await
            .unwrap();
        let code = self.queued_sms().pop().expect("a queued text").code;
        self.portal.confirm_phone(&p, &code).await.unwrap();
    }

    /// Confirms the recovery channel waiting for its code with the code it received (the last
    /// SMS to the phone, or the last mail to the address).
    pub async fn confirm_recovery_channel(
        &self,
        p: &portal_core::service::Principal,
        channel: &portal_core::mfa::RecoveryChannel,
    ) {
        let code = match channel {
            portal_core::mfa::RecoveryChannel::Phone(n) => {
                self.sms.last_code_to(n.as_str()).expect("an SMS")
            }
            portal_core::mfa::RecoveryChannel::Email(e) => self.secret_for(e.as_str()),
        };
        self.portal
            .confirm_recovery_channel(p, &code.as_str().into())
            .await
            .unwrap();
    }

    /// The clock's time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        portal_core::ports::Clock::now(&*self.clock)
    }

    /// Phone codes counted for a user in the current clock hour (the hourly phone budget).
    pub async fn phone_codes_of(&self, user: UserId) -> u32 {
        let window = LoginProtection::default()
            .phone_codes()
            .window_index(self.now());
        self.count(&keys::phone_codes_user(user, window)).await
    }

    /// Phone codes counted for a number in the current clock hour (the hourly phone budget).
    pub async fn phone_codes_to(&self, number: &str) -> u32 {
        let window = LoginProtection::default()
            .phone_codes()
            .window_index(self.now());
        self.count(&keys::phone_codes_number(number, window)).await
    }

    /// Fresh recovery codes counted for a user in the current UTC day.
    pub async fn recovery_sends_of(&self, user: UserId) -> u32 {
        let window = LoginProtection::default()
            .recovery_sends()
            .window_index(self.now());
        self.count(&keys::recovery_sends(user, window)).await
    }

    async fn count(&self, key: &str) -> u32 {
        self.portal
            .deps()
            .queries
            .counter(key)
            .await
            .unwrap()
            .map_or(0, |c| c.count)
    }

    /// The password step of a user with a second factor.
    pub async fn password_step(&self, address: &str) -> portal_core::service::PendingMfaLogin {
        match self.login_outcome(address, PASSWORD, None).await.unwrap() {
            LoginOutcome::MfaRequired(p) => p,
            LoginOutcome::Authenticated(_) => panic!("{address} logged in without a second factor"),
        }
    }

    /// A login with or without a remembered device's token.
    pub async fn login_outcome(
        &self,
        address: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<LoginOutcome, portal_core::service::LoginError> {
        let cmd = Login {
            email: address.into(),
            password: SecretString::new(password),
            client: client(),
        };
        match device {
            Some(d) => self.portal.login_with_device(cmd, d).await,
            None => self.portal.login(cmd).await,
        }
    }

    /// Whether the device token still skips the second factor for this address and password
    /// (`false` when the login asks for the second factor; panics when the password is refused).
    pub async fn device_skips_second_factor(
        &self,
        address: &str,
        password: &str,
        device: &str,
    ) -> bool {
        match self
            .login_outcome(address, password, Some(device))
            .await
            .unwrap()
        {
            LoginOutcome::Authenticated(_) => true,
            LoginOutcome::MfaRequired(_) => false,
        }
    }

    /// The second step of a login.
    pub async fn finish(
        &self,
        pending: &portal_core::service::PendingMfaLogin,
        factor: portal_core::service::SecondFactor,
        remember_device: bool,
    ) -> Result<portal_core::service::MfaLogin, portal_core::service::MfaError> {
        self.portal
            .complete_mfa(portal_core::service::CompleteMfa {
                token: pending.token.expose().to_owned(),
                factor,
                remember_device,
                client: client(),
            })
            .await
    }

    /// The authenticator code of this moment.
    pub fn totp_now(
        &self,
        secret: &portal_core::totp::TotpSecret,
    ) -> portal_core::service::SecondFactor {
        portal_core::service::SecondFactor::Totp(portal_core::totp::code_at(
            secret,
            portal_core::ports::Clock::now(&*self.clock),
        ))
    }

    /// A well-formed authenticator code that is wrong for every step in the ±1 window.
    pub fn wrong_totp(
        &self,
        secret: &portal_core::totp::TotpSecret,
    ) -> portal_core::service::SecondFactor {
        let now = portal_core::ports::Clock::now(&*self.clock);
        let window: Vec<String> = [-30, 0, 30]
            .iter()
            .map(|s| {
                portal_core::totp::code_at(secret, now + TimeDelta::seconds(*s))
                    .expose()
                    .to_owned()
            })
            .collect();
        let wrong = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !window.contains(c))
            .unwrap();
        portal_core::service::SecondFactor::Totp(SecretString::new(wrong))
    }

    /// A password login plus the authenticator code, asking to remember the device: the full
    /// session and the device token.
    pub async fn login_remembering_device(
        &self,
        address: &str,
        secret: &portal_core::totp::TotpSecret,
    ) -> (IssuedSession, IssuedSession) {
        let pending = self.password_step(address).await;
        let login = self
            .finish(&pending, self.totp_now(secret), true)
            .await
            .unwrap();
        // The next code must come from a later step.
        self.advance(TimeDelta::seconds(30));
        (
            login.session,
            login.remembered_device.expect("a device token"),
        )
    }
}

/// Mails queued since `from` (an outbox length), as (recipient, kind), sorted.
pub fn mails_since(w: &World, from: usize) -> Vec<(String, &'static str)> {
    let mut m: Vec<_> = w.store.outbox()[from..]
        .iter()
        .map(|m| (m.to.as_str().to_owned(), m.intent.key()))
        .collect();
    m.sort();
    m
}

/// A single-threaded runtime for the property tests, which drive async code from `proptest!`.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn seconds(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}
