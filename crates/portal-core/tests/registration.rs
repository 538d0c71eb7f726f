//! Registration (manual 2.1, R7): code, resend, tries, expiry, existing addresses.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::service::{CodeError, RegisterError, ResendError, VerifyError};
use portal_core::user::UserStatus;

#[tokio::test]
async fn registration_creates_no_account_and_no_session_until_the_code_is_confirmed() {
    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap();
    assert!(
        w.portal
            .deps()
            .queries
            .user_by_email(&email("anna@example.com"))
            .await
            .unwrap()
            .is_none(),
        "a pending registration is not an account"
    );
    assert_eq!(w.store.session_count(), 0);
    assert_eq!(w.mail_kinds_to("anna@example.com"), ["verification_code"]);
    let code = w.secret_for("anna@example.com");
    assert_eq!(code.len(), 6);
    let session = w
        .portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .unwrap();
    let user = w.user(session.user_id).await;
    assert_eq!(user.status(), UserStatus::Active);
    assert!(user.customer_id().is_none(), "linking comes next");
    let p = w.principal(&session).await;
    assert_eq!(p.user().id(), session.user_id);
}

#[tokio::test]
async fn an_existing_address_gets_the_same_answer_and_its_owner_a_notice() {
    let w = World::new();
    w.registered("anna@example.com").await;
    let before = w.store.user_count();
    let ticket = w
        .portal
        .register(w.register_cmd("anna@example.com"))
        .await
        .unwrap();
    assert_eq!(
        w.store.user_count(),
        before,
        "no second account, not even pending"
    );
    assert_eq!(
        w.mail_kinds_to("anna@example.com"),
        ["verification_code", "existing_account_notice"]
    );
    // The ticket behaves like a real one: wrong codes count, tries run out.
    for _ in 0..5 {
        let err = w
            .portal
            .verify_registration(ticket.ticket.expose(), "000000", client())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Code(CodeError::Wrong)),
            "got {err:?}"
        );
    }
    let err = w
        .portal
        .verify_registration(ticket.ticket.expose(), "000000", client())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Code(CodeError::TooManyAttempts)),
        "got {err:?}"
    );
}

#[tokio::test]
async fn five_wrong_codes_void_the_code_and_a_resend_brings_a_new_one() {
    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("b@example.com"))
        .await
        .unwrap();
    let right = w.secret_for("b@example.com");
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    for _ in 0..5 {
        let err = w
            .portal
            .verify_registration(ticket.ticket.expose(), wrong, client())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Code(CodeError::Wrong)),
            "got {err:?}"
        );
    }
    let err = w
        .portal
        .verify_registration(ticket.ticket.expose(), &right, client())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Code(CodeError::TooManyAttempts)),
        "got {err:?}"
    );
    let err = w
        .portal
        .resend_code(ticket.ticket.expose())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ResendError::TooSoon { .. }),
        "cooldown first: {err:?}"
    );
    w.advance(TimeDelta::seconds(60));
    w.portal.resend_code(ticket.ticket.expose()).await.unwrap();
    let fresh = w.secret_for("b@example.com");
    if fresh != right {
        let err = w
            .portal
            .verify_registration(ticket.ticket.expose(), &right, client())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Code(CodeError::Wrong)),
            "old code is dead: {err:?}"
        );
    }
    w.portal
        .verify_registration(ticket.ticket.expose(), &fresh, client())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_code_expires_after_fifteen_minutes_to_the_second() {
    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("c@example.com"))
        .await
        .unwrap();
    let code = w.secret_for("c@example.com");
    w.advance(TimeDelta::minutes(15));
    let err = w
        .portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Code(CodeError::Expired)),
        "got {err:?}"
    );

    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("c@example.com"))
        .await
        .unwrap();
    let code = w.secret_for("c@example.com");
    w.advance(TimeDelta::minutes(15) - TimeDelta::seconds(1));
    w.portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_input_changes_nothing() {
    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("d@example.com"))
        .await
        .unwrap();
    let audit_before = w.store.audit_len();
    for bad in ["12345", "abcdef", "", "1234567"] {
        let err = w
            .portal
            .verify_registration(ticket.ticket.expose(), bad, client())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Code(CodeError::Malformed)),
            "{bad}: {err:?}"
        );
    }
    let err = w
        .portal
        .verify_registration("not-a-ticket", "123456", client())
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::InvalidTicket), "got {err:?}");
    assert_eq!(w.store.audit_len(), audit_before);
    // The right code still works: malformed tries did not count.
    let code = w.secret_for("d@example.com");
    w.portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_weak_password_is_refused_before_anything_happens() {
    let w = World::new();
    let mut cmd = w.register_cmd("e@example.com");
    cmd.password = "password1".into();
    cmd.password_confirmation = "password1".into();
    let err = w.portal.register(cmd).await.unwrap_err();
    assert!(matches!(err, RegisterError::Password(_)), "got {err:?}");
    assert_eq!(w.store.user_count(), 0);
    assert!(w.store.outbox().is_empty());
    assert_eq!(w.store.audit_len(), 0);
}

#[tokio::test]
async fn the_first_confirmed_registration_of_an_address_wins() {
    let w = World::new();
    let t1 = w
        .portal
        .register(w.register_cmd("f@example.com"))
        .await
        .unwrap();
    let c1 = w.secret_for("f@example.com");
    let t2 = w
        .portal
        .register(w.register_cmd("f@example.com"))
        .await
        .unwrap();
    let c2 = w.secret_for("f@example.com");
    w.portal
        .verify_registration(t2.ticket.expose(), &c2, client())
        .await
        .unwrap();
    let err = w
        .portal
        .verify_registration(t1.ticket.expose(), &c1, client())
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::AlreadyRegistered), "got {err:?}");
}

#[tokio::test]
async fn a_new_code_can_be_sent_sixty_seconds_after_the_last_not_fifty_nine() {
    let w = World::new();
    let ticket = w
        .portal
        .register(w.register_cmd("g@example.com"))
        .await
        .unwrap();
    let first = w.secret_for("g@example.com");
    let sent_at = portal_core::ports::Clock::now(&*w.clock);
    w.advance(TimeDelta::seconds(59));
    let before = w.counts();
    let err = w
        .portal
        .resend_code(ticket.ticket.expose())
        .await
        .unwrap_err();
    let ResendError::TooSoon { retry_at } = err else {
        panic!("got {err:?}");
    };
    assert_eq!(retry_at, sent_at + TimeDelta::seconds(60));
    assert_eq!(w.counts(), before, "no mail, no audit entry");
    w.advance(TimeDelta::seconds(1));
    let answer = w.portal.resend_code(ticket.ticket.expose()).await.unwrap();
    assert_eq!(w.mails_to("g@example.com").len(), 2);
    assert_eq!(
        answer.resend_available_at,
        sent_at + TimeDelta::seconds(120),
        "the cooldown starts again"
    );
    let fresh = w.secret_for("g@example.com");
    if fresh != first {
        let err = w
            .portal
            .verify_registration(ticket.ticket.expose(), &first, client())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Code(CodeError::Wrong)),
            "got {err:?}"
        );
    }
    w.portal
        .verify_registration(ticket.ticket.expose(), &fresh, client())
        .await
        .unwrap();
}

/// A registration `offset` seconds around 24 hours old, whose code was re-sent one minute
/// before the 24 hours (so the code itself is still valid): the new code's result, and the
/// counts just before using it.
async fn verify_a_day_later(
    address: &str,
    existing: bool,
    offset: i64,
) -> (
    World,
    Counts,
    Result<(), VerifyError>,
    Result<(), ResendError>,
) {
    let w = World::new();
    if existing {
        w.registered(address).await;
    }
    let ticket = w.portal.register(w.register_cmd(address)).await.unwrap();
    w.advance(TimeDelta::hours(24) - TimeDelta::minutes(1));
    w.portal.resend_code(ticket.ticket.expose()).await.unwrap();
    let code = w.secret_for(address);
    w.advance(TimeDelta::minutes(1) + TimeDelta::seconds(offset));
    let before = w.counts();
    let verified = w
        .portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .map(|_| ());
    let resent = w
        .portal
        .resend_code(ticket.ticket.expose())
        .await
        .map(|_| ());
    (w, before, verified, resent)
}

#[tokio::test]
async fn a_pending_registration_lives_twenty_four_hours_however_often_the_code_is_resent() {
    let (w, _, verified, _) = verify_a_day_later("h@example.com", false, -1).await;
    verified.unwrap();
    let id = w.user_id("h@example.com").await;
    assert_eq!(w.user(id).await.status(), UserStatus::Active);

    for offset in [0, 1] {
        let (w, before, verified, resent) =
            verify_a_day_later("h@example.com", false, offset).await;
        let err = verified.unwrap_err();
        assert!(
            matches!(err, VerifyError::InvalidTicket),
            "offset {offset}: {err:?}"
        );
        let err = resent.unwrap_err();
        assert!(
            matches!(err, ResendError::InvalidTicket),
            "offset {offset}: {err:?}"
        );
        assert_eq!(w.counts(), before, "offset {offset}: nothing changed");
        assert!(
            w.portal
                .deps()
                .queries
                .user_by_email(&email("h@example.com"))
                .await
                .unwrap()
                .is_none(),
            "no account"
        );
    }
}

#[tokio::test]
async fn a_registration_of_an_existing_address_dies_at_the_same_time() {
    for (offset, alive) in [(-1, true), (0, false)] {
        let (_, _, verified, resent) = verify_a_day_later("i@example.com", true, offset).await;
        let verify_err = verified.unwrap_err();
        // Alive it behaves like a registration whose code is wrong; dead, like any dead one.
        if alive {
            assert!(
                matches!(verify_err, VerifyError::Code(CodeError::Wrong)),
                "{verify_err:?}"
            );
            assert!(
                matches!(resent, Err(ResendError::TooSoon { .. })),
                "{resent:?}"
            );
        } else {
            assert!(
                matches!(verify_err, VerifyError::InvalidTicket),
                "{verify_err:?}"
            );
            assert!(
                matches!(resent, Err(ResendError::InvalidTicket)),
                "{resent:?}"
            );
        }
    }
}
