//! "Passwort vergessen?" (manual 2.3, R15): one answer for every address, a single-use link that
//! lives one hour, a new password per R13, every session ended, a confirmation mail.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::secret::{SecretString, Token};
use portal_core::service::{
    AcceptInvitation, AuthError, InvitationError, Invite, LoginError, ResetError,
};
use portal_core::testing::SeededRandom;
use portal_core::values::Language;

const N: &str = "100000001";
const NEW: &str = "neues pferd im stall";

fn s(x: &str) -> SecretString {
    SecretString::new(x)
}

async fn reset(w: &World, token: &str, password: &str) -> Result<(), ResetError> {
    w.portal
        .reset_password(token, &s(password), &s(password))
        .await
        .map(|_| ())
}

/// The link token of the last reset mail to `to`.
fn reset_token(w: &World, to: &str) -> String {
    let mails = w.mails_to(to);
    let last = mails.last().unwrap_or_else(|| panic!("no mail to {to}"));
    assert_eq!(last.intent.key(), "password_reset", "{to}");
    last.intent.secret().unwrap().expose().to_owned()
}

#[tokio::test]
async fn forgot_answers_the_same_for_every_address_and_mails_only_who_may_reset() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
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
    let before = |a: &str| w.mail_kinds_to(a).len();
    let counts: Vec<usize> = [
        "anna@example.com",
        "lena@example.com",
        "ida@example.com",
        "paul@example.com",
    ]
    .iter()
    .map(|a| before(a))
    .collect();
    let total = w.store.outbox().len();
    for address in [
        "nobody@example.com",
        "not an address",
        "",
        "lena@example.com",
        "ida@example.com",
        "paul@example.com",
        "ANNA@example.com",
    ] {
        let r = w.portal.forgot_password(address).await;
        assert!(r.is_ok(), "{address:?}: {r:?}");
    }
    assert_eq!(w.store.outbox().len(), total + 2, "two mails in all");
    let anna_mails = w.mails_to("anna@example.com");
    assert_eq!(anna_mails.len(), counts[0] + 1);
    let link = anna_mails.last().unwrap();
    assert_eq!(link.intent.key(), "password_reset");
    assert!(
        link.intent.secret().is_some_and(|t| t.expose().len() >= 22),
        "a link token"
    );
    let lena_mails = w.mails_to("lena@example.com");
    assert_eq!(lena_mails.len(), counts[1] + 1);
    let notice = lena_mails.last().unwrap();
    assert_eq!(notice.intent.key(), "password_reset_locked");
    assert!(
        notice.intent.secret().is_none(),
        "no link for a locked account"
    );
    assert_eq!(w.mail_kinds_to("ida@example.com").len(), counts[2]);
    assert_eq!(w.mail_kinds_to("paul@example.com").len(), counts[3]);
    assert!(w.mails_to("nobody@example.com").is_empty());

    let requested: Vec<_> = w
        .audit_of(Some(c.id()))
        .into_iter()
        .filter(|e| e.record.category == AuditCategory::PasswordResetRequested)
        .map(|e| (e.record.subject, e.record.details, e.record.actor.kind))
        .collect();
    assert_eq!(
        requested,
        [
            (
                Some(lena),
                "link=withheld_locked".to_owned(),
                ActorKind::Anonymous
            ),
            (
                Some(id_of(&anna)),
                "link=sent".to_owned(),
                ActorKind::Anonymous
            ),
        ]
    );
}

#[tokio::test]
async fn a_reset_link_sets_the_password_ends_every_session_and_confirms_by_mail() {
    let w = World::new();
    let c = w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    let s1 = w.login("anna@example.com").await;
    let s2 = w.login("anna@example.com").await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();

    for s in [&s1, &s2] {
        let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
        assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    }
    assert_eq!(w.store.session_count(), 0, "no session, not even a new one");
    assert_eq!(
        w.mail_kinds_to("anna@example.com").last(),
        Some(&"password_changed")
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::PasswordChanged);
    assert_eq!(last.record.subject, Some(id_of(&anna)));
    assert_eq!(last.record.details, "via=reset_link");

    let err = w.try_login("anna@example.com", PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, LoginError::InvalidCredentials),
        "old password: {err:?}"
    );
    w.try_login("anna@example.com", NEW).await.unwrap();
}

#[tokio::test]
async fn a_reset_link_works_once() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = reset(&w, &token, "noch ein neues pferd").await.unwrap_err();
    assert!(
        matches!(err, ResetError::Used | ResetError::InvalidLink),
        "got {err:?}"
    );
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    w.try_login("anna@example.com", NEW).await.unwrap();
}

#[tokio::test]

async fn a_used_reset_link_answers_used() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    reset(&w, &token, NEW).await.unwrap();
    let err = reset(&w, &token, "noch ein neues pferd").await.unwrap_err();
    assert!(matches!(err, ResetError::Used), "got {err:?}");
}

#[tokio::test]
async fn a_reset_link_expires_after_exactly_one_hour() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let bert = w.member("bert@example.com", N).await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    w.portal.forgot_password("bert@example.com").await.unwrap();
    let anna_token = reset_token(&w, "anna@example.com");
    let bert_token = reset_token(&w, "bert@example.com");
    w.advance(TimeDelta::hours(1) - TimeDelta::seconds(1));
    reset(&w, &anna_token, NEW).await.unwrap();
    w.advance(TimeDelta::seconds(1));
    let before = w.user(id_of(&bert)).await;
    let counts = w.counts();
    let err = reset(&w, &bert_token, NEW).await.unwrap_err();
    assert!(matches!(err, ResetError::Expired), "got {err:?}");
    assert_eq!(w.user(id_of(&bert)).await, before);
    assert_eq!(w.counts(), counts);
    w.try_login("bert@example.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn a_new_request_voids_the_older_link() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let older = reset_token(&w, "anna@example.com");
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let newer = reset_token(&w, "anna@example.com");
    assert_ne!(older, newer);
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = reset(&w, &older, NEW).await.unwrap_err();
    assert!(matches!(err, ResetError::Used), "got {err:?}");
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    reset(&w, &newer, NEW).await.unwrap();
    w.try_login("anna@example.com", NEW).await.unwrap();
}

#[tokio::test]
async fn reset_and_invitation_tokens_do_not_open_each_others_doors() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    let counts = w.counts();
    let err = w.portal.invitation(&token).await.unwrap_err();
    assert!(matches!(err, InvitationError::NotFound), "got {err:?}");
    let err = w
        .portal
        .accept_invitation(
            &token,
            AcceptInvitation {
                password: s(NEW),
                password_confirmation: s(NEW),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, InvitationError::NotFound), "got {err:?}");
    assert_eq!(w.counts(), counts);

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
    let invitation = w.secret_for("ida@example.com");
    let counts = w.counts();
    let err = reset(&w, &invitation, NEW).await.unwrap_err();
    assert!(matches!(err, ResetError::InvalidLink), "got {err:?}");
    assert_eq!(w.counts(), counts);
    // Both still work for what they are.
    reset(&w, &token, NEW).await.unwrap();
    w.portal.invitation(&invitation).await.unwrap();
}

#[tokio::test]
async fn malformed_and_unknown_links_are_invalid() {
    let w = World::new();
    w.customer(N).await;
    w.member("anna@example.com", N).await;
    let counts = w.counts();
    let stranger = Token::generate(&SeededRandom::new(1234));
    for token in ["", "garbage", "a b c", stranger.expose()] {
        let err = reset(&w, token, NEW).await.unwrap_err();
        assert!(
            matches!(err, ResetError::InvalidLink),
            "{token:?}: got {err:?}"
        );
    }
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn at_most_five_reset_mails_an_hour() {
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
    for address in ["anna@example.com", "lena@example.com"] {
        let mails = w.mails_to(address).len();
        for _ in 0..5 {
            w.advance(TimeDelta::minutes(1));
            w.portal.forgot_password(address).await.unwrap();
        }
        assert_eq!(w.mails_to(address).len(), mails + 5, "{address}");
        let counts = w.counts();
        w.advance(TimeDelta::minutes(1));
        w.portal.forgot_password(address).await.unwrap();
        assert_eq!(
            w.counts(),
            counts,
            "{address}: the sixth sends and writes nothing"
        );
    }
    // An hour after the first request, one more is allowed.
    w.advance(TimeDelta::minutes(49));
    let mails = w.mails_to("anna@example.com").len();
    w.portal.forgot_password("anna@example.com").await.unwrap();
    assert_eq!(w.mails_to("anna@example.com").len(), mails + 1);
    assert_eq!(
        w.mail_kinds_to("anna@example.com").last(),
        Some(&"password_reset")
    );
}

#[tokio::test]
async fn a_weak_new_password_is_refused_and_nothing_changes() {
    let w = World::new();
    w.customer(N).await;
    let anna = w.member("anna@example.com", N).await;
    let session = w.login("anna@example.com").await;
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let token = reset_token(&w, "anna@example.com");
    let before = w.user(id_of(&anna)).await;
    let counts = w.counts();
    for (password, confirmation) in [
        ("password1", "password1"),
        ("kurz", "kurz"),
        ("Anna Schmidt", "Anna Schmidt"),
        (NEW, "ein anderes pferd"),
    ] {
        let err = w
            .portal
            .reset_password(&token, &s(password), &s(confirmation))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ResetError::Password(_)),
            "{password:?}: got {err:?}"
        );
    }
    assert_eq!(w.user(id_of(&anna)).await, before);
    assert_eq!(w.counts(), counts);
    w.principal(&session).await; // still logged in
    reset(&w, &token, NEW).await.unwrap(); // the link still works
}

/// Timing (R14, R15): a request that mails a link commits once; one that mails nothing (an
/// unknown address) writes its address's counter a second time instead. Both make two writes,
/// and the counter names the address only by its keyed hash.
#[tokio::test]
async fn forgot_makes_two_writes_for_known_and_unknown_addresses_alike() {
    use portal_core::ports::Queries as _;
    use portal_core::throttle::{AccountKey, keys};
    let w = World::new();
    w.registered("anna@example.com").await;
    let hour = w.now().timestamp().div_euclid(3_600);
    let count = |address: &str| {
        let key = keys::reset_requests(&AccountKey::of(None, &email(address)), hour);
        let store = w.store.clone();
        async move { store.counter(&key).await.unwrap().map(|c| c.count) }
    };
    let audit = w.store.audit_len();
    w.portal.forgot_password("anna@example.com").await.unwrap();
    assert_eq!(w.store.audit_len(), audit + 1, "the link's commit");
    assert_eq!(count("anna@example.com").await, Some(1));
    w.portal
        .forgot_password("nobody@example.com")
        .await
        .unwrap();
    assert_eq!(w.store.audit_len(), audit + 1, "nothing to commit");
    assert_eq!(
        count("nobody@example.com").await,
        Some(2),
        "in place of the commit"
    );
    assert!(
        keys::reset_requests(&AccountKey::of(None, &email("nobody@example.com")), hour)
            .find("nobody")
            .is_none()
    );
}
