//! Builders for valid entities, and small helpers the checks share. Times carry microseconds
//! (what every backend stores) so that round trips prove the precision is kept.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use portal_core::admin_request::AdminRequest;
use portal_core::audit::{ActorRef, AuditCategory, AuditRecord};
use portal_core::challenge::{ChallengePurpose, CodePolicy, EmailChallenge};
use portal_core::customer::{
    AffiliationKey, Customer, CustomerRecord, SecondFactorPolicy, ServiceChannel,
};
use portal_core::ids::{
    ActionTokenId, AdminRequestId, AuditEntryId, ChallengeId, CustomerId, OutboxId, SessionId,
    UserId,
};
use portal_core::mail::{MailIntent, OutboxMail};
use portal_core::password::PasswordHash;
use portal_core::permission::PermissionSet;
use portal_core::ports::{Commit, StoreError, Write};
use portal_core::secret::{SecretString, TokenHash, VerificationCode};
use portal_core::session::{ClientInfo, Session, SessionPolicy};
use portal_core::testing::SeededRandom;
use portal_core::token::{ActionToken, TokenPurpose};
use portal_core::user::User;
use portal_core::values::{CompanyName, CustomerNumber, Language};
use std::collections::BTreeSet;
use uuid::Uuid;

pub use portal_core::testing::{email, key, keys, name};

/// A fixed instant with microseconds: 2026-03-02 08:15:30.123456 UTC.
#[must_use]
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 8, 15, 30).unwrap() + TimeDelta::microseconds(123_456)
}

/// `t0` plus some seconds.
#[must_use]
pub fn at(seconds: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(seconds)
}

/// A random UUID (each check runs on an empty store, so randomness only matters for ordering).
#[must_use]
pub fn new_uuid() -> Uuid {
    Uuid::new_v4()
}

/// A random token hash (the stored form of a session, link or ticket token).
#[must_use]
pub fn token_hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(new_uuid().as_bytes());
    bytes[16..].copy_from_slice(new_uuid().as_bytes());
    TokenHash::from_bytes(bytes)
}

/// A password hash (a syntactically valid PHC string; never verified here).
///
/// # Panics
/// Never.
#[must_use]
pub fn password_hash() -> PasswordHash {
    PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA").expect("phc")
}

/// A customer with a number, entitled to `documents`, `support_requests` and `shop`, giving
/// `support_requests` to joining users.
///
/// # Panics
/// `number` is not nine digits.
#[must_use]
pub fn customer(number: &str, company: &str) -> Customer {
    Customer::new(CustomerRecord {
        id: CustomerId::from_uuid(new_uuid()),
        number: CustomerNumber::parse(number).expect("customer number"),
        name: CompanyName::parse(company).expect("company name"),
        affiliations: [AffiliationKey::parse("de-business").expect("key")]
            .into_iter()
            .collect::<BTreeSet<_>>(),
        channel: ServiceChannel::Partner {
            name: CompanyName::parse("Fachhandel Süd GmbH").expect("company name"),
        },
        entitlements: keys(&["documents", "support_requests", "shop"]),
        default_permissions: keys(&["support_requests"]),
        second_factor_policy: SecondFactorPolicy::None,
        created_at: t0(),
        updated_at: at(1),
        version: 0,
    })
}

/// A registration that waits for its code (not an account yet).
#[must_use]
pub fn pending_user(address: &str, first: &str, last: &str) -> User {
    User::new_pending(
        UserId::from_uuid(new_uuid()),
        email(address),
        name(first),
        name(last),
        Language::De,
        t0(),
    )
}

/// An active employee of `customer` with `support_requests`.
///
/// # Panics
/// Never (the transitions are valid by construction).
#[must_use]
pub fn employee(customer: CustomerId, address: &str, first: &str, last: &str) -> User {
    let mut u = pending_user(address, first, last);
    u.complete_registration(password_hash(), at(2))
        .expect("complete registration");
    u.link_to_customer(customer, keys(&["support_requests"]), false, at(3))
        .expect("link");
    u
}

/// An active administrator of `customer`.
///
/// # Panics
/// Never.
#[must_use]
pub fn admin(customer: CustomerId, address: &str, first: &str, last: &str) -> User {
    let mut u = employee(customer, address, first, last);
    u.promote(at(4)).expect("promote");
    u
}

/// An active operator (belongs to no customer).
///
/// # Panics
/// Never.
#[must_use]
pub fn operator(address: &str) -> User {
    let mut u = User::new_invited(
        UserId::from_uuid(new_uuid()),
        email(address),
        name("Olga"),
        name("Operator"),
        Language::En,
        portal_core::user::Role::Operator,
        None,
        PermissionSet::new(),
        t0(),
    );
    u.complete_registration(password_hash(), at(1))
        .expect("complete registration");
    u
}

/// A session of `user` started at `start`, with the default policy (idle 1 h, absolute 24 h).
#[must_use]
pub fn session(user: UserId, hash: TokenHash, start: DateTime<Utc>) -> Session {
    Session::start(
        SessionId::from_uuid(new_uuid()),
        hash,
        user,
        ClientInfo::new(Some("203.0.113.7"), Some("Mozilla/5.0 (Test)")),
        &SessionPolicy::default(),
        start,
    )
}

/// A registration challenge for `user` at `address`, created at `created`.
#[must_use]
pub fn challenge(user: UserId, address: &str, created: DateTime<Utc>) -> EmailChallenge {
    let code = VerificationCode::generate(&SeededRandom::new(7));
    EmailChallenge::issue(
        ChallengeId::from_uuid(new_uuid()),
        token_hash(),
        user,
        ChallengePurpose::Registration,
        email(address),
        &code,
        Some(password_hash()),
        &CodePolicy::default(),
        created,
    )
}

/// A link token.
#[must_use]
pub fn action_token(user: UserId, purpose: TokenPurpose, hash: TokenHash) -> ActionToken {
    ActionToken::issue(
        ActionTokenId::from_uuid(new_uuid()),
        hash,
        purpose,
        user,
        t0(),
        at(3600),
    )
}

/// An open admin request created at `created`.
#[must_use]
pub fn admin_request(
    customer: CustomerId,
    requester: UserId,
    created: DateTime<Utc>,
) -> AdminRequest {
    AdminRequest::open(
        AdminRequestId::from_uuid(new_uuid()),
        customer,
        requester,
        true,
        created,
    )
}

/// An audit record in a customer's chain (or the global one).
#[must_use]
pub fn audit(
    customer: Option<CustomerId>,
    subject: Option<UserId>,
    category: AuditCategory,
    details: &str,
    when: DateTime<Utc>,
) -> AuditRecord {
    AuditRecord {
        id: AuditEntryId::from_uuid(new_uuid()),
        at: when,
        customer,
        actor: ActorRef::system(),
        subject,
        category,
        details: details.to_owned(),
    }
}

/// A mail carrying a verification code (a secret that must be purged after delivery).
#[must_use]
pub fn code_mail(to: &str, code: &str, created: DateTime<Utc>) -> OutboxMail {
    OutboxMail {
        id: OutboxId::from_uuid(new_uuid()),
        created_at: created,
        to: email(to),
        language: Language::En,
        intent: MailIntent::VerificationCode {
            first_name: "Anna".into(),
            code: SecretString::new(code),
            valid_minutes: 15,
        },
    }
}

/// A commit of writes only.
#[must_use]
pub fn writes(ws: impl IntoIterator<Item = Write>) -> Commit {
    let mut c = Commit::new();
    for w in ws {
        c.write(w);
    }
    c
}

/// Commits and panics with the store's error if it fails.
///
/// # Panics
/// The commit failed.
pub async fn commit_ok<S: crate::Store + ?Sized>(store: &S, commit: Commit) {
    if let Err(e) = store.commit(commit).await {
        panic!("commit failed: {e:?}");
    }
}

/// Stores a user with one session of theirs.
///
/// # Panics
/// The commit failed.
pub async fn user_with_session<S: crate::Store + ?Sized>(store: &S, user: &User, s: &Session) {
    commit_ok(
        store,
        writes([
            Write::InsertUser(user.clone()),
            Write::InsertSession(s.clone()),
        ]),
    )
    .await;
}

/// Commits and returns the error, panicking if the commit succeeded.
///
/// # Panics
/// The commit succeeded.
pub async fn commit_err<S: crate::Store + ?Sized>(store: &S, commit: Commit) -> StoreError {
    match store.commit(commit).await {
        Ok(()) => panic!("commit succeeded but should have failed"),
        Err(e) => e,
    }
}

/// The ids of a user's stored sessions (expired ones included), in the store's order.
///
/// # Panics
/// The store failed.
pub async fn session_ids<S: portal_core::ports::Queries + ?Sized>(
    store: &S,
    user: UserId,
) -> Vec<SessionId> {
    store
        .sessions_of_user(user)
        .await
        .expect("sessions of a user")
        .iter()
        .map(Session::id)
        .collect()
}
