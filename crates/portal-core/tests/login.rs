//! Login, logout and the per-request session check (manual 2.2, R1, R6, R11, R14).

use crate::support::*;
use chrono::TimeDelta;
use portal_core::Actor;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::customer::ServiceChannel;
use portal_core::hashing::{Argon2Cost, Argon2idHasher};
use portal_core::ports::{Clock as _, Write};
use portal_core::secret::SecretString;
use portal_core::secret::Token;
use portal_core::service::{
    AuthError, Invite, IssuedSession, Login, LoginError, LoginOutcome, NewCustomer, Presented,
};
use portal_core::testing::{SeededRandom, fast_hasher};
use portal_core::user::UserStatus;
use portal_core::values::{CompanyName, Language};
use std::collections::BTreeSet;
use std::sync::Arc;

const N: &str = "100000001";

fn area(k: &str) -> portal_core::permission::PermissionKey {
    key(k)
}

#[tokio::test]
async fn a_correct_login_starts_a_session_records_the_time_and_audits_it() {
    let w = World::new();
    let c = w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    w.advance(TimeDelta::hours(3));
    let sessions = w.store.session_count();
    let session = w.login("anna@example.com").await;
    assert_eq!(session.user_id, id_of(&anna));
    assert_eq!(w.store.session_count(), sessions + 1);
    let user = w.user(id_of(&anna)).await;
    assert_eq!(user.last_login_at(), Some(w.clock.now()));
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::LoginSucceeded);
    assert_eq!(last.record.subject, Some(id_of(&anna)));
    assert_eq!(last.record.actor.kind, ActorKind::User);
    assert_eq!(last.record.details, "method=password");
    let p = w.principal(&session).await;
    assert_eq!(p.user().id(), id_of(&anna));
    assert_eq!(p.customer().map(|c| c.id()), Some(c.id()));
    // The address is matched without regard to case.
    w.try_login("ANNA@Example.com", PASSWORD).await.unwrap();
}

/// Accounts in every state a login must refuse, plus the operator that made them.
async fn refusal_world() -> World {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    w.member("lena@example.com", N).await;
    let lena = w.user_id("lena@example.com").await;
    w.portal
        .lock_user(&op, &number(N), lena, None)
        .await
        .unwrap();
    w.portal
        .invite_user(
            &op,
            &number(N),
            Invite {
                email: email("ida@example.com"),
                first_name: name("Ida"),
                last_name: name("Eingeladen"),
                language: Language::De,
                permissions: keys(&[]),
            },
        )
        .await
        .unwrap();
    // Registered, code never confirmed.
    w.portal
        .register(w.register_cmd("paul@example.com"))
        .await
        .unwrap();
    w
}

#[tokio::test]
async fn every_login_failure_gets_the_same_answer() {
    let w = refusal_world().await;
    let long = "x".repeat(1025);
    let cases = [
        ("unknown address", "nobody@example.com", PASSWORD),
        (
            "wrong password",
            "anna@example.com",
            "falsches pferd batterie",
        ),
        ("locked user", "lena@example.com", PASSWORD),
        ("invited user", "ida@example.com", PASSWORD),
        ("unconfirmed registration", "paul@example.com", PASSWORD),
        ("malformed address", "not an address", PASSWORD),
        ("empty address", "", PASSWORD),
        ("over-long password", "anna@example.com", long.as_str()),
    ];
    let sessions = w.store.session_count();
    let mut messages = BTreeSet::new();
    for (case, address, password) in cases {
        let err = w.try_login(address, password).await.unwrap_err();
        assert!(
            matches!(err, LoginError::InvalidCredentials),
            "{case}: got {err:?}"
        );
        messages.insert(err.to_string());
    }
    assert_eq!(messages.len(), 1, "one message for all: {messages:?}");
    assert_eq!(w.store.session_count(), sessions, "no session for anyone");
}

#[tokio::test]
async fn failed_logins_change_nothing_and_only_a_refused_right_password_is_audited() {
    let w = refusal_world().await;
    let c = w.customer_now(N).await;
    // A wrong password (also for an invited account without one) is counted, not audited: the
    // unknown address has nothing to attach an entry to, and must cost the same.
    for (address, password) in [
        ("anna@example.com", "falsches pferd batterie"),
        ("ida@example.com", PASSWORD),
    ] {
        let id = w.user_id(address).await;
        let before = w.user(id).await;
        let counts = w.counts();
        w.try_login(address, password).await.unwrap_err();
        assert_eq!(w.user(id).await, before, "{address}: user record untouched");
        assert_eq!(w.counts(), counts, "{address}: no entry, mail or session");
    }
    for address in ["nobody@example.com", "not an address"] {
        let counts = w.counts();
        w.try_login(address, PASSWORD).await.unwrap_err();
        assert_eq!(w.counts(), counts, "{address}");
    }
    // The right password of a locked account: refused alike, and the owner's log says so.
    let id = w.user_id("lena@example.com").await;
    let before = w.user(id).await;
    let counts = w.counts();
    w.try_login("lena@example.com", PASSWORD).await.unwrap_err();
    assert_eq!(w.user(id).await, before, "user record untouched");
    let after = w.counts();
    assert_eq!(after.audit, counts.audit + 1, "one audit entry");
    assert_eq!(after.mails, counts.mails, "no mail");
    assert_eq!(after.sessions, counts.sessions, "no session");
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::LoginFailed);
    assert_eq!(last.record.subject, Some(id));
    assert_eq!(last.record.actor.kind, ActorKind::Anonymous);
    assert_eq!(last.record.details, "reason=locked");
}

#[tokio::test]
async fn an_over_long_password_changes_nothing() {
    let w = refusal_world().await;
    let id = w.user_id("anna@example.com").await;
    let before = w.user(id).await;
    let counts = w.counts();
    let err = w
        .try_login(
            "anna@example.com",
            &format!("{PASSWORD}{}", "x".repeat(1024)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "got {err:?}");
    assert_eq!(w.user(id).await, before);
    assert_eq!(w.counts().sessions, counts.sessions);
    assert_eq!(w.counts().mails, counts.mails);
}

#[tokio::test]
async fn an_over_long_password_for_an_existing_account_is_counted_like_any_wrong_one() {
    let w = refusal_world().await;
    let audit = w.store.audit_len();
    for _ in 0..4 {
        w.try_login("anna@example.com", &"x".repeat(1025))
            .await
            .unwrap_err();
    }
    assert_eq!(w.store.audit_len(), audit, "counted, not audited");
    let err = w.try_login("anna@example.com", PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, LoginError::Throttled { .. }),
        "the fourth failure costs a wait: {err:?}"
    );
}

#[tokio::test]
async fn a_user_waiting_for_activation_may_log_in_but_enters_no_area() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.admin("chef@example.com", N, &op).await;
    let bert = w.pending_member("bert@example.com", N).await;
    assert!(
        w.user(id_of(&bert)).await.holds(&area("support_requests")),
        "the default permission is set while waiting"
    );
    let s = w.login("bert@example.com").await;
    let p = w.principal(&s).await;
    assert_eq!(p.user().status(), UserStatus::PendingActivation);
    assert!(!w.portal.may_access_area(&p, &area("support_requests")));
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let w = World::new();
    let c = w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    let first = w.login("anna@example.com").await;
    let second = w.login("anna@example.com").await;
    w.portal.logout(first.token.expose()).await.unwrap();
    let err = w
        .portal
        .authenticate(first.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    w.principal(&second).await; // the other session lives on
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::LoggedOut);
    assert_eq!(last.record.subject, Some(id_of(&anna)));

    let counts = w.counts();
    let stranger = Token::generate(&SeededRandom::new(999));
    for garbage in ["", "garbage", first.token.expose(), stranger.expose()] {
        w.portal.logout(garbage).await.unwrap();
    }
    assert_eq!(w.counts(), counts, "nothing to end, nothing written");
}

#[tokio::test]
async fn a_session_dies_after_exactly_one_idle_hour() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let used = w.login("anna@example.com").await;
    let idle = w.login("anna@example.com").await;
    w.advance(TimeDelta::hours(1) - TimeDelta::seconds(1));
    w.principal(&used).await;
    w.advance(TimeDelta::seconds(1));
    let err = w
        .portal
        .authenticate(idle.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    w.principal(&used).await; // its last request moved its idle limit
}

#[tokio::test]
async fn activity_every_fifty_minutes_keeps_a_session_until_the_absolute_limit() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let s = w.login("anna@example.com").await;
    for i in 1..=28 {
        w.advance(TimeDelta::minutes(50));
        let r = w.portal.authenticate(s.token.expose()).await;
        assert!(r.is_ok(), "alive after {} minutes: {r:?}", i * 50);
    }
    // 23 h 20 min now.
    w.advance(TimeDelta::minutes(40) - TimeDelta::seconds(1));
    w.principal(&s).await;
    w.advance(TimeDelta::seconds(1));
    let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Unauthenticated),
        "24 h after login: {err:?}"
    );
    assert_eq!(s.expires_at, w.clock.now());
}

/// Re-authenticating at 23 h (checklist ★9) starts both timeouts again: the new session lives
/// an idle hour and a full day from then, past the old one's absolute end, and the old token dies.
#[tokio::test]
async fn reauthenticating_at_23_hours_resets_both_timeouts() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let s = w.login("anna@example.com").await;
    for _ in 0..27 {
        w.advance(TimeDelta::minutes(50));
        w.principal(&s).await;
    }
    w.advance(TimeDelta::minutes(50)); // 23 h 20 min
    let p = w.principal(&s).await;
    let fresh = w
        .portal
        .reauthenticate(&p, &PASSWORD.into(), None, client())
        .await
        .unwrap();
    let reauth_at = w.clock.now();
    assert_eq!(
        fresh.expires_at,
        reauth_at + w.portal.config().session_policy.absolute_timeout,
        "a new absolute limit"
    );
    assert!(w.portal.authenticate(s.token.expose()).await.is_err());
    // Past the old session's 24 h, and nearly an idle hour after the re-authentication.
    w.advance(TimeDelta::minutes(59) + TimeDelta::seconds(59));
    assert!(w.clock.now() > s.expires_at);
    w.principal(&fresh).await;
    // The idle timeout runs from the last activity, as for any session.
    w.advance(TimeDelta::hours(1));
    assert!(w.portal.authenticate(fresh.token.expose()).await.is_err());
}

#[tokio::test]
async fn authenticate_records_activity_at_most_once_a_minute() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    let s = w.login("anna@example.com").await;
    let t0 = w.clock.now();
    let last_seen = || async {
        w.portal
            .deps()
            .queries
            .sessions_of_user(id_of(&anna))
            .await
            .unwrap()
            .into_iter()
            .find(|x| x.id() == s.session_id)
            .unwrap()
            .record()
            .last_seen_at
    };
    w.advance(TimeDelta::seconds(30));
    w.principal(&s).await;
    assert_eq!(last_seen().await, t0, "30 s: not written");
    w.advance(TimeDelta::seconds(30));
    w.principal(&s).await;
    let t60 = w.clock.now();
    assert_eq!(last_seen().await, t60, "60 s: written");
    w.advance(TimeDelta::seconds(59));
    w.principal(&s).await;
    assert_eq!(last_seen().await, t60, "59 s later: not written again");
    w.advance(TimeDelta::seconds(1));
    w.principal(&s).await;
    assert_eq!(last_seen().await, w.clock.now());
}

#[tokio::test]
async fn a_lock_ends_the_live_session_at_the_next_request_and_unlock_does_not_revive_it() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let admin = w.admin("chef@example.com", N, &op).await;
    let emma = w
        .invited(&admin, N, "emma@example.com", &["documents"])
        .await;
    let s = w.login("emma@example.com").await;
    w.principal(&s).await;
    w.portal
        .lock_user(&admin, &number(N), id_of(&emma), None)
        .await
        .unwrap();
    let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    w.portal
        .unlock_user(&admin, &number(N), id_of(&emma))
        .await
        .unwrap();
    let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Unauthenticated),
        "unlock restores login, not sessions: {err:?}"
    );
    let fresh = w.login("emma@example.com").await;
    w.principal(&fresh).await;
}

#[tokio::test]
async fn permission_and_role_changes_apply_at_the_next_request() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let admin = w.admin("chef@example.com", N, &op).await;
    let emma = w.invited(&admin, N, "emma@example.com", &[]).await;
    let s = w.login("emma@example.com").await;
    let p = w.principal(&s).await;
    assert!(!w.portal.may_access_area(&p, &area("documents")));
    w.portal
        .set_permissions(&admin, &number(N), id_of(&emma), &keys(&["documents"]))
        .await
        .unwrap();
    let p = w.principal(&s).await;
    assert!(w.portal.may_access_area(&p, &area("documents")), "granted");
    w.portal
        .set_permissions(&admin, &number(N), id_of(&emma), &keys(&[]))
        .await
        .unwrap();
    let p = w.principal(&s).await;
    assert!(!w.portal.may_access_area(&p, &area("documents")), "revoked");

    // Role: the admin, demoted by an operator, loses the areas he held only as admin.
    let chef = w.login("chef@example.com").await;
    let p = w.principal(&chef).await;
    assert!(w.portal.may_access_area(&p, &area("shop")));
    w.portal
        .revoke_admin_rights(&op, &number(N), id_of(&admin))
        .await
        .unwrap();
    let p = w.principal(&chef).await;
    assert!(!w.portal.may_access_area(&p, &area("shop")), "demoted");
}

#[tokio::test]
async fn area_access_follows_rule_r1() {
    let w = World::new();
    w.customer(N).await;
    let narrow = "100000002";
    w.customer_with(narrow, Some(keys(&["support_requests", "documents"])))
        .await;
    let op = w.operator("op@vendor.example").await;
    let admin = w.admin("chef@example.com", N, &op).await;
    w.invited(&admin, N, "emma@example.com", &["documents"])
        .await;
    w.member("lena@example.com", N).await; // pending: N has an admin
    w.admin("chef2@example.com", narrow, &op).await;
    w.member("nora@example.com", narrow).await; // pending, activated below
    let chef2 = Actor::user(w.user_id("chef2@example.com").await);
    let nora = w.user_id("nora@example.com").await;
    w.portal
        .activate_user(&chef2, &number(narrow), nora)
        .await
        .unwrap();
    w.registered("solo@example.com").await;
    // The operator narrows the second customer's contract: support requests are gone.
    w.portal
        .import_customers(
            &Actor::System,
            &[NewCustomer {
                number: number(narrow),
                name: CompanyName::parse(&format!("Firma {narrow}")).unwrap(),
                affiliations: BTreeSet::from([affiliation()]),
                channel: ServiceChannel::Direct,
                entitlements: Some(keys(&["documents"])),
                default_permissions: None,
            }],
        )
        .await
        .unwrap();
    assert!(
        w.user(nora).await.holds(&area("support_requests")),
        "she still holds the permission"
    );

    let rows = [
        (
            "employee with the permission",
            "emma@example.com",
            "documents",
            true,
        ),
        (
            "employee without the permission",
            "emma@example.com",
            "shop",
            false,
        ),
        (
            "admin without individual permission",
            "chef@example.com",
            "shop",
            true,
        ),
        (
            "admin, unknown area",
            "chef@example.com",
            "time_travel",
            false,
        ),
        (
            "employee, unknown area",
            "emma@example.com",
            "time_travel",
            false,
        ),
        (
            "pending activation, holding the default",
            "lena@example.com",
            "support_requests",
            false,
        ),
        (
            "customer not entitled, user holds it",
            "nora@example.com",
            "support_requests",
            false,
        ),
        (
            "customer not entitled, admin",
            "chef2@example.com",
            "shop",
            false,
        ),
        (
            "customer entitled, admin",
            "chef2@example.com",
            "documents",
            true,
        ),
        (
            "user without customer",
            "solo@example.com",
            "support_requests",
            false,
        ),
    ];
    for (case, address, key, expected) in rows {
        let session = w.login(address).await;
        let principal = w.principal(&session).await;
        assert_eq!(
            w.portal.may_access_area(&principal, &area(key)),
            expected,
            "{case}"
        );
    }
    // Locked: no principal at all.
    let s = w.login("emma@example.com").await;
    let emma = w.user_id("emma@example.com").await;
    w.portal
        .lock_user(&op, &number(N), emma, None)
        .await
        .unwrap();
    let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated), "locked: {err:?}");
    let err = w.try_login("emma@example.com", PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidCredentials),
        "locked: {err:?}"
    );
}

#[tokio::test]
async fn an_outdated_password_hash_is_upgraded_at_login() {
    let stronger = Argon2idHasher::with_cost(
        Argon2Cost {
            m_kib: 16,
            t: 1,
            p: 1,
        },
        Arc::new(SeededRandom::new(9)),
    )
    .unwrap();
    let w = World::with_hasher(Arc::new(stronger));
    let (anna, _) = w.registered("anna@example.com").await;
    let id = id_of(&anna);
    let current = "$argon2id$v=19$m=16,t=1,p=1$";
    assert!(
        w.user(id)
            .await
            .password_hash()
            .unwrap()
            .as_phc()
            .starts_with(current),
        "new hashes use the configured cost"
    );
    // An account from before the cost was raised.
    let weak = fast_hasher(3).hash_blocking(PASSWORD).unwrap();
    let mut u = w.user(id).await;
    u.set_password(weak.clone(), w.clock.now());
    w.force(vec![Write::UpdateUser(u)]).await;

    // A wrong password upgrades nothing.
    w.try_login("anna@example.com", "falsches pferd batterie")
        .await
        .unwrap_err();
    assert_eq!(w.user(id).await.password_hash(), Some(&weak));

    w.login("anna@example.com").await;
    let upgraded = w.user(id).await.password_hash().unwrap().clone();
    assert!(
        upgraded.as_phc().starts_with(current),
        "{}",
        upgraded.as_phc()
    );
    w.login("anna@example.com").await;
    assert_eq!(
        w.user(id).await.password_hash(),
        Some(&upgraded),
        "a current hash is left alone"
    );
}

/// A real (fast) hasher that counts what it is asked to do.
#[derive(Debug)]
struct CountingHasher {
    inner: Argon2idHasher,
    verify: std::sync::atomic::AtomicUsize,
    dummy: std::sync::atomic::AtomicUsize,
}

impl CountingHasher {
    fn calls(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.verify.load(SeqCst), self.dummy.load(SeqCst))
    }
}

#[async_trait::async_trait]
impl portal_core::ports::PasswordHasher for CountingHasher {
    async fn hash(
        &self,
        password: &portal_core::password::Password,
    ) -> Result<portal_core::password::PasswordHash, portal_core::ports::HashError> {
        self.inner.hash(password).await
    }

    async fn verify(
        &self,
        candidate: &portal_core::secret::SecretString,
        hash: &portal_core::password::PasswordHash,
    ) -> Result<bool, portal_core::ports::HashError> {
        self.verify
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.verify(candidate, hash).await
    }

    async fn verify_dummy(
        &self,
        candidate: &portal_core::secret::SecretString,
    ) -> Result<bool, portal_core::ports::HashError> {
        self.dummy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.verify_dummy(candidate).await
    }

    fn needs_rehash(&self, hash: &portal_core::password::PasswordHash) -> bool {
        self.inner.needs_rehash(hash)
    }
}

/// R14 "in similar time": every login that reaches the password check costs exactly one Argon2id
/// verification — against the account's hash, or against the dummy hash when there is no
/// account or it has no password yet. Only an over-long password is refused without hashing, for
/// every address alike.
#[tokio::test]
async fn every_login_costs_exactly_one_verification_and_unknown_addresses_use_the_dummy_hash() {
    let hasher = Arc::new(CountingHasher {
        inner: fast_hasher(7),
        verify: 0.into(),
        dummy: 0.into(),
    });
    let w = World::with_hasher(hasher.clone());
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    w.member("lena@example.com", N).await;
    let lena = w.user_id("lena@example.com").await;
    w.portal
        .lock_user(&op, &number(N), lena, None)
        .await
        .unwrap();
    w.portal
        .invite_user(
            &op,
            &number(N),
            Invite {
                email: email("ida@example.com"),
                first_name: name("Ida"),
                last_name: name("Eingeladen"),
                language: Language::De,
                permissions: keys(&[]),
            },
        )
        .await
        .unwrap();
    w.portal
        .register(w.register_cmd("paul@example.com"))
        .await
        .unwrap();
    let long = "x".repeat(1025);
    // (case, address, password, account verifications, dummy verifications)
    let cases = [
        ("unknown address", "nobody@example.com", PASSWORD, 0, 1),
        ("malformed address", "not an address", PASSWORD, 0, 1),
        (
            "invited user without password",
            "ida@example.com",
            PASSWORD,
            0,
            1,
        ),
        (
            "unconfirmed registration",
            "paul@example.com",
            PASSWORD,
            0,
            1,
        ),
        (
            "wrong password",
            "anna@example.com",
            "falsches pferd batterie",
            1,
            0,
        ),
        ("locked user", "lena@example.com", PASSWORD, 1, 0),
        ("right password", "anna@example.com", PASSWORD, 1, 0),
        (
            "over-long, unknown",
            "nobody@example.com",
            long.as_str(),
            0,
            0,
        ),
        ("over-long, known", "anna@example.com", long.as_str(), 0, 0),
    ];
    for (case, address, password, verify, dummy) in cases {
        let (v0, d0) = hasher.calls();
        let _ = w
            .portal
            .login(portal_core::service::Login {
                email: address.into(),
                password: password.into(),
                // A fresh client address per case keeps the address throttle out of the way.
                client: portal_core::session::ClientInfo::new(Some(case), None),
            })
            .await;
        let (v1, d1) = hasher.calls();
        assert_eq!((v1 - v0, d1 - d0), (verify, dummy), "{case}");
    }
}

/// A login by `address` with `password` from a browser that still carries `carried`.
async fn login_carrying(
    w: &World,
    address: &str,
    password: &str,
    carried: &IssuedSession,
) -> Result<LoginOutcome, LoginError> {
    let cmd = Login {
        email: address.into(),
        password: SecretString::new(password),
        client: client(),
    };
    let presented = Presented {
        session: Some(carried.token.expose().to_owned()),
        ..Presented::default()
    };
    w.portal.login_presenting(cmd, presented).await
}

#[tokio::test]
async fn a_login_ends_the_session_its_request_carried() {
    let w = World::new();
    let c = w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    w.member("ben@example.com", N).await;
    let first = w.login("anna@example.com").await;
    let elsewhere = w.login("anna@example.com").await;

    // A wrong password changes nothing: the carried session lives on.
    let err = login_carrying(&w, "anna@example.com", "wrong password", &first)
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "{err:?}");
    w.principal(&first).await;

    let Ok(LoginOutcome::Authenticated(second)) =
        login_carrying(&w, "anna@example.com", PASSWORD, &first).await
    else {
        panic!("the second login failed");
    };
    let refused = w.portal.authenticate(first.token.expose()).await;
    assert!(
        matches!(refused, Err(AuthError::Unauthenticated)),
        "the first session still works: {refused:?}"
    );
    w.principal(&second).await;
    w.principal(&elsewhere).await;
    let entries = w.audit_of(Some(c.id()));
    let tail: Vec<_> = entries[entries.len() - 2..]
        .iter()
        .map(|e| {
            (
                e.record.category,
                e.record.details.as_str(),
                e.record.subject,
            )
        })
        .collect();
    assert_eq!(
        tail,
        [
            (
                AuditCategory::LoggedOut,
                "reason=new_login",
                Some(id_of(&anna))
            ),
            (
                AuditCategory::LoginSucceeded,
                "method=password",
                Some(id_of(&anna))
            ),
        ]
    );

    // Another user's session in the same browser ends too.
    let Ok(LoginOutcome::Authenticated(ben)) =
        login_carrying(&w, "ben@example.com", PASSWORD, &second).await
    else {
        panic!("ben's login failed");
    };
    assert!(w.portal.authenticate(second.token.expose()).await.is_err());
    assert_eq!(
        w.principal(&ben).await.user().id(),
        w.user_id("ben@example.com").await
    );
}

#[tokio::test]
async fn a_login_that_needs_the_second_factor_ends_the_carried_session_already() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let anna = w.login("anna@example.com").await;
    w.with_totp("ben@example.com").await;
    let outcome = login_carrying(&w, "ben@example.com", PASSWORD, &anna)
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::MfaRequired(_)),
        "{outcome:?}"
    );
    assert!(w.portal.authenticate(anna.token.expose()).await.is_err());
}

/// Records what the core reports.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<portal_core::ports::LoginObservation>>);

impl portal_core::ports::Observer for Recorder {
    fn login(&self, outcome: portal_core::ports::LoginObservation) {
        self.0.lock().unwrap().push(outcome);
    }
}

#[tokio::test]
async fn the_core_reports_every_login_outcome_to_its_observer() {
    use portal_core::ports::LoginObservation as O;
    use portal_core::service::{CompleteMfa, SecondFactor};
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let recorder = Arc::new(Recorder::default());
    let portal = w
        .sibling(w.portal.config().clone(), false)
        .with_observer(recorder.clone());
    let login = |address: &str, password: &str| Login {
        email: address.into(),
        password: SecretString::new(password),
        client: client(),
    };
    let seen = || recorder.0.lock().unwrap().clone();

    assert!(matches!(
        portal.login(login("anna@example.com", PASSWORD)).await,
        Ok(LoginOutcome::Authenticated(_))
    ));
    assert_eq!(seen(), [O::Success]);
    // A wrong password and an unknown address read alike, also here.
    portal
        .login(login("anna@example.com", "wrong password"))
        .await
        .unwrap_err();
    portal
        .login(login("nobody@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(seen(), [O::Success, O::WrongPassword, O::WrongPassword]);
    // A second step that fails (no such pending login) is a failed second factor.
    portal
        .complete_mfa(CompleteMfa {
            token: "not-a-pending-login".into(),
            factor: SecondFactor::Totp(SecretString::new("123456")),
            remember_device: false,
            client: client(),
        })
        .await
        .unwrap_err();
    assert_eq!(seen().last(), Some(&O::SecondFactorFailed));
    // The world's own portal has the default observer, which reports nowhere.
    w.login("anna@example.com").await;
    assert_eq!(seen().len(), 4, "another portal reports elsewhere");
    // Failures until a throttle answers: it is reported as such.
    let mut throttled = false;
    for _ in 0..50 {
        if let Err(LoginError::Throttled { .. }) =
            portal.login(login("anna@example.com", "wrong again")).await
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "a throttle answered within 50 failures");
    assert_eq!(seen().last(), Some(&O::Throttled));
    let counted = seen();
    assert_eq!(
        counted.iter().filter(|o| **o == O::Throttled).count(),
        1,
        "{counted:?}"
    );
}
