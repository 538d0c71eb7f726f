//! Profile self-service ("Account geändert"): name and language, password change, e-mail change,
//! own sessions.

mod support;

use chrono::TimeDelta;
use portal_core::secret::SecretString;
use portal_core::service::{Login, LoginError, ProfileError};
use portal_core::values::Language;
use support::*;

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
    w.portal.forgot_password("anna@example.com").await.unwrap();
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
    assert!(matches!(err, ProfileError::WrongCode), "got {err:?}");
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
async fn an_address_change_needs_a_fresh_login_and_a_free_address() {
    let w = World::new();
    let (_, s) = w.registered("anna@example.com").await;
    w.registered("ben@example.com").await;
    let p = w.principal(&s).await;
    let err = w
        .portal
        .start_email_change(&p, &email("ben@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::EmailUnavailable), "got {err:?}");
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
