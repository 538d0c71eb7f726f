//! Profile self-service ("Account geändert"): name and language, password change, e-mail change,
//! own sessions.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::secret::SecretString;
use portal_core::service::{CodeError, IssuedSession, Login, LoginError, ProfileError};
use portal_core::values::Language;

#[tokio::test]
async fn name_and_language_changes_are_audited_once_and_no_ops_not_at_all() {
    let w = World::new();
    let (_, s) = w.registered("anna@example.com").await;
    let p = w.principal(&s).await;
    let before = w.store.audit_len();
    let u = w
        .portal
        .update_profile(&p, &name("Anna-Lena"), &name("Schmidt"), Language::En)
        .await
        .unwrap();
    assert_eq!(u.first_name().as_str(), "Anna-Lena");
    assert_eq!(u.language(), Language::En);
    assert_eq!(w.store.audit_len(), before + 1);
    let last = w.audit_of(None).pop().unwrap();
    assert_eq!(last.record.category.key(), "account.changed");
    w.portal
        .update_profile(&p, &name("Anna-Lena"), &name("Schmidt"), Language::En)
        .await
        .unwrap();
    assert_eq!(
        w.store.audit_len(),
        before + 1,
        "nothing changed, nothing written"
    );
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_ends_other_sessions_and_rotates_this_one() {
    let w = World::new();
    let (_, s1) = w.registered("anna@example.com").await;
    let s2 = w.login("anna@example.com").await;
    let p = w.principal(&s1).await;
    let err = w
        .portal
        .change_password(
            &p,
            &"falsch falsch".into(),
            &"neu neu neu neu".into(),
            &"neu neu neu neu".into(),
            client(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::WrongPassword), "got {err:?}");
    w.forgot_password("anna@example.com").await.unwrap();
    let link = w.secret_for("anna@example.com");
    let fresh = w
        .portal
        .change_password(
            &p,
            &PASSWORD.into(),
            &"neu neu neu neu".into(),
            &"neu neu neu neu".into(),
            client(),
        )
        .await
        .unwrap();
    assert!(
        w.portal.authenticate(s1.token.expose()).await.is_err(),
        "old token of this session"
    );
    assert!(
        w.portal.authenticate(s2.token.expose()).await.is_err(),
        "other session"
    );
    w.principal(&fresh).await;
    assert!(
        w.mail_kinds_to("anna@example.com")
            .contains(&"password_changed")
    );
    let old = w
        .portal
        .login(Login {
            email: "anna@example.com".into(),
            password: SecretString::new(PASSWORD),
            client: client(),
        })
        .await
        .unwrap_err();
    assert!(matches!(old, LoginError::InvalidCredentials), "got {old:?}");
    let err = w
        .portal
        .reset_password(
            &link,
            &"noch ein passwort".into(),
            &"noch ein passwort".into(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, portal_core::service::ResetError::InvalidLink),
        "a change voids pending reset links: {err:?}"
    );
}

#[tokio::test]
async fn the_new_address_is_confirmed_by_code_and_the_old_one_is_told() {
    let w = World::new();
    let (_, s) = w.registered("anna@example.com").await;
    let p = w.principal(&s).await;
    let ticket = w
        .portal
        .start_email_change(&p, &email("anna@neu.example"))
        .await
        .unwrap();
    assert!(
        w.mail_kinds_to("anna@example.com")
            .contains(&"email_change_requested")
    );
    let code = w.secret_for("anna@neu.example");
    // Not switched before the code.
    w.login("anna@example.com").await;
    let err = w
        .portal
        .confirm_email_change(
            &p,
            ticket.ticket.expose(),
            if code == "000000" { "111111" } else { "000000" },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProfileError::Code(CodeError::Wrong)),
        "got {err:?}"
    );
    let u = w
        .portal
        .confirm_email_change(&p, ticket.ticket.expose(), &code)
        .await
        .unwrap();
    assert_eq!(u.email().as_str(), "anna@neu.example");
    assert!(
        w.mail_kinds_to("anna@example.com")
            .contains(&"email_changed")
    );
    w.login("anna@neu.example").await;
    let gone = w
        .portal
        .login(Login {
            email: "anna@example.com".into(),
            password: SecretString::new(PASSWORD),
            client: client(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(gone, LoginError::InvalidCredentials),
        "got {gone:?}"
    );
}

#[tokio::test]
async fn an_address_change_needs_a_fresh_login_and_another_address() {
    let w = World::new();
    let (_, s) = w.registered("anna@example.com").await;
    let p = w.principal(&s).await;
    let err = w
        .portal
        .start_email_change(&p, &email("anna@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::SameEmail), "got {err:?}");
    w.advance(TimeDelta::minutes(16));
    let p = w.principal(&s).await;
    let err = w
        .portal
        .start_email_change(&p, &email("anna@neu.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::ReauthRequired), "got {err:?}");
}

#[tokio::test]
async fn an_address_with_an_account_answers_like_a_free_one_and_its_owner_gets_a_notice() {
    let w = World::new();
    let (_, anna) = w.registered("anna@example.com").await;
    let (_, carl) = w.registered("carl@example.com").await;
    let (_, ben_session) = w.registered("ben@example.com").await;
    let ben = w.principal(&ben_session).await.user().clone();
    // The same request by two users: to a free address and to Ben's.
    let (anna, carl) = (w.principal(&anna).await, w.principal(&carl).await);
    let mail_before = w.store.outbox().len();
    let free = w
        .portal
        .start_email_change(&anna, &email("frei@example.com"))
        .await
        .unwrap();
    let free_mails = mails_since(&w, mail_before);
    let free_entry = w.audit_of(None).pop().unwrap();
    let mail_before = w.store.outbox().len();
    let taken = w
        .portal
        .start_email_change(&carl, &email("ben@example.com"))
        .await
        .unwrap();
    let taken_mails = mails_since(&w, mail_before);
    let taken_entry = w.audit_of(None).pop().unwrap();
    assert_eq!(
        (free.code_expires_at, free.resend_available_at),
        (taken.code_expires_at, taken.resend_available_at),
        "the same answer"
    );
    assert_eq!(
        free_mails,
        [
            ("anna@example.com".to_owned(), "email_change_requested"),
            ("frei@example.com".to_owned(), "verification_code"),
        ]
    );
    assert_eq!(
        taken_mails,
        [
            ("ben@example.com".to_owned(), "address_in_use_notice"),
            ("carl@example.com".to_owned(), "email_change_requested"),
        ],
        "the owner gets a notice instead of a code"
    );
    assert_eq!(
        (free_entry.record.category, &free_entry.record.details),
        (taken_entry.record.category, &taken_entry.record.details),
        "the same entry"
    );
    assert_eq!(
        w.user(ben.id()).await.email().as_str(),
        "ben@example.com",
        "the owner is unchanged"
    );
    // The code went nowhere: the ticket never changes the address.
    for code in ["000000", "123456", "999999", "424242", "111111"] {
        let err = w
            .portal
            .confirm_email_change(&carl, taken.ticket.expose(), code)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::Code(CodeError::Wrong | CodeError::TooManyAttempts)
            ),
            "got {err:?}"
        );
    }
    let carl_now = w.user(carl.user().id()).await;
    assert_eq!(carl_now.email().as_str(), "carl@example.com");
}

#[tokio::test]
async fn users_list_and_end_their_own_sessions() {
    let w = World::new();
    let (_, s1) = w.registered("anna@example.com").await;
    let s2 = w.login("anna@example.com").await;
    let s3 = w.login("anna@example.com").await;
    let p = w.principal(&s1).await;
    assert_eq!(w.portal.my_sessions(&p).await.unwrap().len(), 3);
    w.portal.end_my_session(&p, s2.session_id).await.unwrap();
    assert!(w.portal.authenticate(s2.token.expose()).await.is_err());
    w.principal(&s3).await;
    w.portal.end_my_other_sessions(&p).await.unwrap();
    assert!(w.portal.authenticate(s3.token.expose()).await.is_err());
    assert_eq!(w.portal.my_sessions(&p).await.unwrap().len(), 1);
    let (_, other) = w.registered("ben@example.com").await;
    let err = w
        .portal
        .end_my_session(&p, other.session_id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, portal_core::service::SessionError::NotFound),
        "got {err:?}"
    );
}

const NEW_PASSWORD: &str = "ein neues langes passwort";

/// A password change `offset` seconds around 15 minutes after the login.
async fn change_password_after(
    offset: i64,
) -> (
    World,
    IssuedSession,
    Snapshot,
    Result<IssuedSession, ProfileError>,
) {
    let w = World::new();
    let (_, session) = w.registered("anna@example.com").await;
    w.advance(TimeDelta::minutes(15) + seconds(offset));
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    let r = w
        .portal
        .change_password(
            &p,
            &PASSWORD.into(),
            &NEW_PASSWORD.into(),
            &NEW_PASSWORD.into(),
            client(),
        )
        .await;
    (w, session, before, r)
}

#[tokio::test]
async fn changing_the_password_needs_a_login_within_fifteen_minutes() {
    for offset in [-1, 0] {
        let (w, session, _, r) = change_password_after(offset).await;
        let fresh = r.unwrap_or_else(|e| panic!("offset {offset}: {e:?}"));
        assert!(w.portal.authenticate(session.token.expose()).await.is_err());
        w.principal(&fresh).await;
        w.try_login("anna@example.com", NEW_PASSWORD).await.unwrap();
    }

    let (w, session, before, r) = change_password_after(1).await;
    let err = r.unwrap_err();
    assert!(matches!(err, ProfileError::ReauthRequired), "got {err:?}");
    assert_eq!(
        w.snapshot(session.user_id).await,
        before,
        "nothing changed: same password, same sessions, no mail, no audit entry"
    );
    assert!(
        w.portal
            .deps()
            .queries
            .counter(&portal_core::throttle::keys::account(&email(
                "anna@example.com"
            )))
            .await
            .unwrap()
            .is_none(),
        "the refusal is no failed login"
    );
    w.principal(&session).await;
    // After re-authenticating the change goes through.
    let p = w.principal(&session).await;
    let fresh = w
        .portal
        .reauthenticate(&p, &PASSWORD.into(), None, client())
        .await
        .unwrap();
    let p = w.principal(&fresh).await;
    w.portal
        .change_password(
            &p,
            &PASSWORD.into(),
            &NEW_PASSWORD.into(),
            &NEW_PASSWORD.into(),
            client(),
        )
        .await
        .unwrap();
    w.try_login("anna@example.com", NEW_PASSWORD).await.unwrap();
}

#[tokio::test]
async fn the_step_up_window_for_an_address_change_is_fifteen_minutes_inclusive() {
    for (offset, allowed) in [(-1, true), (0, true), (1, false)] {
        let w = World::new();
        let (_, session) = w.registered("anna@example.com").await;
        w.advance(TimeDelta::minutes(15) + seconds(offset));
        let p = w.principal(&session).await;
        let before = w.snapshot(session.user_id).await;
        let r = w
            .portal
            .start_email_change(&p, &email("anna@neu.example"))
            .await;
        if allowed {
            r.unwrap_or_else(|e| panic!("offset {offset}: {e:?}"));
            assert_eq!(w.mail_kinds_to("anna@neu.example"), ["verification_code"]);
            continue;
        }
        let err = r.unwrap_err();
        assert!(matches!(err, ProfileError::ReauthRequired), "got {err:?}");
        assert_eq!(w.snapshot(session.user_id).await, before);
        assert!(w.mails_to("anna@neu.example").is_empty());
    }
}

/// Anna started changing her address to anna@neu.example: her session, the ticket and the code.
async fn address_change(w: &World) -> (IssuedSession, String, String) {
    let (_, session) = w.registered("anna@example.com").await;
    let p = w.principal(&session).await;
    let ticket = w
        .portal
        .start_email_change(&p, &email("anna@neu.example"))
        .await
        .unwrap();
    let code = w.secret_for("anna@neu.example");
    (session, ticket.ticket.expose().to_owned(), code)
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

#[tokio::test]
async fn an_address_change_code_expires_at_exactly_fifteen_minutes() {
    for (offset, accepted) in [(-1, true), (0, false), (1, false)] {
        let w = World::new();
        let (session, ticket, code) = address_change(&w).await;
        w.advance(TimeDelta::minutes(15) + seconds(offset));
        let p = w.principal(&session).await;
        let before = w.snapshot(session.user_id).await;
        let r = w.portal.confirm_email_change(&p, &ticket, &code).await;
        if accepted {
            assert_eq!(r.unwrap().email().as_str(), "anna@neu.example");
            continue;
        }
        let err = r.unwrap_err();
        assert!(
            matches!(err, ProfileError::Code(CodeError::Expired)),
            "offset {offset}: {err:?}"
        );
        assert_eq!(w.snapshot(session.user_id).await, before);
        assert_eq!(
            w.user(session.user_id).await.email().as_str(),
            "anna@example.com"
        );
    }
}

#[tokio::test]
async fn five_wrong_address_change_codes_void_the_code() {
    let w = World::new();
    let (session, ticket, code) = address_change(&w).await;
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    for i in 0..5 {
        let err = w
            .portal
            .confirm_email_change(&p, &ticket, &wrong(&code))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProfileError::Code(CodeError::Wrong)),
            "try {i}: {err:?}"
        );
    }
    let err = w
        .portal
        .confirm_email_change(&p, &ticket, &code)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProfileError::Code(CodeError::TooManyAttempts)),
        "got {err:?}"
    );
    assert_eq!(
        w.snapshot(session.user_id).await,
        before,
        "wrong codes change only the challenge's tries: no audit entry, no mail, same address"
    );
}

#[tokio::test]
async fn an_address_change_code_works_once() {
    let w = World::new();
    let (session, ticket, code) = address_change(&w).await;
    let p = w.principal(&session).await;
    w.portal
        .confirm_email_change(&p, &ticket, &code)
        .await
        .unwrap();
    let before = w.snapshot(session.user_id).await;
    let err = w
        .portal
        .confirm_email_change(&p, &ticket, &code)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::InvalidTicket), "got {err:?}");
    assert_eq!(w.snapshot(session.user_id).await, before);
    assert_eq!(
        w.user(session.user_id).await.email().as_str(),
        "anna@neu.example"
    );
}

#[tokio::test]
async fn malformed_codes_and_foreign_tickets_change_nothing() {
    let w = World::new();
    let (session, ticket, code) = address_change(&w).await;
    // Ben's own address change, and a registration in progress.
    let (_, ben) = w.registered("ben@example.com").await;
    let ben_ticket = w
        .portal
        .start_email_change(&w.principal(&ben).await, &email("ben@neu.example"))
        .await
        .unwrap();
    let ben_code = w.secret_for("ben@neu.example");
    let registration = w
        .portal
        .register(w.register_cmd("paul@example.com"))
        .await
        .unwrap();
    let paul_code = w.secret_for("paul@example.com");
    let p = w.principal(&session).await;
    let before = w.snapshot(session.user_id).await;
    for bad in ["12ab56", "12345", "1234567", ""] {
        let err = w
            .portal
            .confirm_email_change(&p, &ticket, bad)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProfileError::Code(CodeError::Malformed)),
            "{bad}: {err:?}"
        );
    }
    for (t, c) in [
        ("not-a-ticket", code.as_str()),
        (ben_ticket.ticket.expose(), ben_code.as_str()),
        (registration.ticket.expose(), paul_code.as_str()),
    ] {
        let err = w.portal.confirm_email_change(&p, t, c).await.unwrap_err();
        assert!(matches!(err, ProfileError::InvalidTicket), "{t}: {err:?}");
    }
    assert_eq!(w.snapshot(session.user_id).await, before);
    // No try was spent: the right code still works, and Ben's change is untouched.
    w.portal
        .confirm_email_change(&p, &ticket, &code)
        .await
        .unwrap();
    w.portal
        .confirm_email_change(
            &w.principal(&ben).await,
            ben_ticket.ticket.expose(),
            &ben_code,
        )
        .await
        .unwrap();
}
