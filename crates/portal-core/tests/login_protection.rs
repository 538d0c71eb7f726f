//! Login throttling (R14): per account and client address, per account and day across
//! addresses, per client address, per known browser; exponential waits, temporary blocks, never
//! a permanent one; identical for known and unknown addresses. Nobody without the password keeps
//! the real user out.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::ids::UserId;
use portal_core::secret::SecretString;
use portal_core::service::{KnownBrowser, Login, LoginError, LoginOutcome, Presented};
use portal_core::session::ClientInfo;
use portal_core::throttle::LoginProtection;
use std::sync::Arc;

async fn attempt(w: &World, address: &str, password: &str, ip: &str) -> Result<(), LoginError> {
    w.portal
        .login(Login {
            email: address.into(),
            password: SecretString::new(password),
            client: ClientInfo::new(Some(ip), None),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn known_and_unknown_addresses_are_throttled_alike() {
    let w = World::new();
    w.registered("anna@example.com").await;
    let mut answers = Vec::new();
    for address in ["anna@example.com", "nobody@example.com"] {
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(format!(
                "{:?}",
                attempt(&w, address, "falsch falsch", "10.0.0.1")
                    .await
                    .unwrap_err()
            ));
        }
        answers.push(seen);
        w.advance(TimeDelta::seconds(0));
    }
    assert_eq!(
        answers[0], answers[1],
        "same answers for known and unknown addresses"
    );
    assert!(answers[0][4].contains("Throttled"), "{:?}", answers[0]);
}

#[tokio::test]
async fn the_right_password_waits_out_the_delay_and_then_works() {
    let w = World::new();
    w.registered("anna@example.com").await;
    for _ in 0..4 {
        attempt(&w, "anna@example.com", "falsch falsch", "10.0.0.1")
            .await
            .unwrap_err();
    }
    let err = attempt(&w, "anna@example.com", PASSWORD, "10.0.0.1")
        .await
        .unwrap_err();
    let LoginError::Throttled { retry_at } = err else {
        panic!("got {err:?}");
    };
    w.clock.set(retry_at);
    attempt(&w, "anna@example.com", PASSWORD, "10.0.0.1")
        .await
        .unwrap();
    // Success forgives: the next failure is free again.
    attempt(&w, "anna@example.com", "falsch falsch", "10.0.0.1")
        .await
        .unwrap_err();
    attempt(&w, "anna@example.com", PASSWORD, "10.0.0.1")
        .await
        .unwrap();
}

#[tokio::test]
async fn ten_failures_block_the_address_for_an_hour_and_never_longer() {
    let w = World::new();
    w.registered("anna@example.com").await;
    for i in 0..10 {
        // Wait out each delay so every failure is counted.
        w.advance(TimeDelta::minutes(5));
        let err = attempt(&w, "anna@example.com", "falsch falsch", "10.0.0.1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoginError::InvalidCredentials),
            "try {i}: {err:?}"
        );
    }
    w.advance(TimeDelta::hours(1) - TimeDelta::seconds(1));
    let err = attempt(&w, "anna@example.com", PASSWORD, "10.0.0.1")
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Throttled { .. }), "got {err:?}");
    // Only this address: the right password from another one works meanwhile.
    attempt(&w, "anna@example.com", PASSWORD, "10.0.0.2")
        .await
        .unwrap();
    w.advance(TimeDelta::seconds(1));
    attempt(&w, "anna@example.com", PASSWORD, "10.0.0.1")
        .await
        .unwrap();
}

#[tokio::test]
async fn one_client_spraying_many_addresses_is_throttled_by_its_address() {
    let w = World::new();
    w.registered("anna@example.com").await;
    for i in 0..31 {
        let err = attempt(
            &w,
            &format!("u{i}@example.com"),
            "falsch falsch",
            "10.0.0.9",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, LoginError::InvalidCredentials),
            "{i}: {err:?}"
        );
    }
    let err = attempt(&w, "anna@example.com", PASSWORD, "10.0.0.9")
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Throttled { .. }), "got {err:?}");
    attempt(&w, "anna@example.com", PASSWORD, "10.0.0.10")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_password_reset_lifts_the_accounts_throttle() {
    let w = World::new();
    w.registered("anna@example.com").await;
    // Stay inside one UTC day, so all failures land in one daily window.
    let now = w.now();
    let midnight = now - TimeDelta::seconds(now.timestamp().rem_euclid(86_400));
    w.clock
        .set(midnight + TimeDelta::days(1) + TimeDelta::hours(1));
    // Ten failures from one address hit the pair's limit only.
    for _ in 0..10 {
        w.advance(TimeDelta::minutes(5));
        attempt(&w, "anna@example.com", "falsch falsch", "10.0.0.1")
            .await
            .unwrap_err();
    }
    // One failure each from fresh addresses, one past the account's free daily budget (the
    // ten above count towards it too).
    let daily = LoginProtection::default().account_daily.free_failures;
    for i in 0..=daily - 10 {
        let ip = format!("10.1.{}.{}", i / 256, i % 256);
        let err = attempt(&w, "anna@example.com", "falsch falsch", &ip)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoginError::InvalidCredentials),
            "try {i}: {err:?}"
        );
    }
    // The account is now throttled from any address without a known browser, even with the
    // right password.
    let err = attempt(&w, "anna@example.com", PASSWORD, "10.2.0.1")
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Throttled { .. }), "got {err:?}");
    w.forgot_password("anna@example.com").await.unwrap();
    let link = w.secret_for("anna@example.com");
    w.portal
        .reset_password(
            &link,
            &"neues passwort hier".into(),
            &"neues passwort hier".into(),
        )
        .await
        .unwrap();
    attempt(&w, "anna@example.com", "neues passwort hier", "10.2.0.2")
        .await
        .unwrap();
}

/// A known-browser cookie as an adapter would check it: it names one account.
#[derive(Debug)]
struct Browser {
    user: UserId,
    handle: String,
}

impl KnownBrowser for Browser {
    fn names(&self, user: UserId) -> bool {
        user == self.user
    }
    fn handle(&self) -> &str {
        &self.handle
    }
}

/// A login from `ip`, in a browser that signed in to `browser`'s account before when given.
async fn login_from(
    w: &World,
    address: &str,
    password: &str,
    ip: &str,
    browser: Option<&Arc<Browser>>,
) -> Result<LoginOutcome, LoginError> {
    let presented = Presented {
        known_browser: browser.map(|b| b.clone() as Arc<dyn KnownBrowser>),
        ..Presented::default()
    };
    let cmd = Login {
        email: address.into(),
        password: SecretString::new(password),
        client: ClientInfo::new(Some(ip), None),
    };
    w.portal.login_presenting(cmd, presented).await
}

/// The attack of issue 12: wrong passwords for Anna's account from address A, one a minute for
/// 24 hours. Meanwhile Anna signs in at her first try every hour, alternately from another
/// address B and from A in her browser that signed in before. Before, the account-wide lockout
/// answered her `throttled` for the whole day.
#[tokio::test]
async fn an_attacker_failing_from_one_address_all_day_never_keeps_the_user_out() {
    let w = World::new();
    let (anna, _) = w.registered("anna@example.com").await;
    let browser = Arc::new(Browser {
        user: id_of(&anna),
        handle: "browser-of-anna".into(),
    });
    let (mut guesses, mut refused) = (0, 0);
    for minute in 0..24 * 60 {
        match login_from(&w, "anna@example.com", "rate mal", "192.0.2.66", None).await {
            Err(LoginError::InvalidCredentials) => guesses += 1,
            Err(LoginError::Throttled { .. }) => refused += 1,
            other => panic!("minute {minute}: {other:?}"),
        }
        if minute % 60 == 30 {
            let (ip, known) = if minute % 120 == 30 {
                ("198.51.100.20", None)
            } else {
                ("192.0.2.66", Some(&browser))
            };
            let r = login_from(&w, "anna@example.com", PASSWORD, ip, known).await;
            assert!(
                matches!(r, Ok(LoginOutcome::Authenticated(_))),
                "minute {minute}, from {ip}, known browser {}: {r:?}",
                known.is_some()
            );
        }
        w.advance(TimeDelta::minutes(1));
    }
    // One address: 10 failures, then one an hour (the pair's block).
    println!("one address, a try a minute for 24 h: {guesses} checked, {refused} throttled");
    assert!(
        guesses <= 10 + 24,
        "{guesses} guesses from one address in a day"
    );
    assert!(guesses >= 30, "the attacker did get to guess: {guesses}");
    assert_eq!(guesses + refused, 24 * 60);
    // Without the known browser, address A stays blocked for the account.
    let r = login_from(&w, "anna@example.com", PASSWORD, "192.0.2.66", None).await;
    assert!(matches!(r, Err(LoginError::Throttled { .. })), "{r:?}");
}

/// Many addresses (a fresh one for every try, one try a minute for a UTC day): the account's
/// daily budget bounds the guesses, whatever the number of addresses; the user's known browser
/// signs in at the first try all along.
#[tokio::test]
async fn guesses_from_any_number_of_addresses_are_bounded_per_day() {
    let w = World::new();
    let (anna, _) = w.registered("anna@example.com").await;
    let browser = Arc::new(Browser {
        user: id_of(&anna),
        handle: "browser-of-anna".into(),
    });
    // Start at a UTC midnight, so the day is one budget window.
    let now = w.now();
    let midnight = now - TimeDelta::seconds(now.timestamp().rem_euclid(86_400));
    w.clock.set(midnight + TimeDelta::days(1));
    let mut guesses = 0;
    for minute in 0..24 * 60 {
        let ip = format!(
            "10.{}.{}.{}",
            minute / 65_536,
            (minute / 256) % 256,
            minute % 256
        );
        match login_from(&w, "anna@example.com", "rate mal", &ip, None).await {
            Err(LoginError::InvalidCredentials) => guesses += 1,
            Err(LoginError::Throttled { .. }) => {}
            other => panic!("minute {minute}: {other:?}"),
        }
        if minute == 1_000 {
            // The price of the bound: past the day's budget, a browser without Anna's cookie
            // waits with the attacker, from a fresh address too; a cookie of another account is
            // no cookie.
            let stranger = Arc::new(Browser {
                user: UserId::from_uuid(uuid::Uuid::from_u128(7)),
                handle: "browser-of-someone-else".into(),
            });
            for known in [None, Some(&stranger)] {
                let r = login_from(&w, "anna@example.com", PASSWORD, "192.0.2.99", known).await;
                assert!(matches!(r, Err(LoginError::Throttled { .. })), "{r:?}");
            }
        }
        if minute % 60 == 59 {
            let r = login_from(
                &w,
                "anna@example.com",
                PASSWORD,
                "192.0.2.1",
                Some(&browser),
            )
            .await;
            assert!(
                matches!(r, Ok(LoginOutcome::Authenticated(_))),
                "minute {minute}: {r:?}"
            );
        }
        w.advance(TimeDelta::minutes(1));
    }
    println!("a fresh address every minute for a UTC day: {guesses} checked");
    let bound = LoginProtection::default().daily_guess_bound();
    assert_eq!(bound, 98);
    assert!(i64::from(guesses) <= bound, "{guesses} guesses in a day");
    assert!(
        guesses > 50,
        "past the free budget, slowed but not blocked: {guesses}"
    );
    // The known browser has its own bound: ten wrong passwords block it, not the account.
    for _ in 0..10 {
        w.advance(TimeDelta::minutes(5));
        let r = login_from(
            &w,
            "anna@example.com",
            "vertippt",
            "192.0.2.1",
            Some(&browser),
        )
        .await;
        assert!(matches!(r, Err(LoginError::InvalidCredentials)), "{r:?}");
    }
    let r = login_from(
        &w,
        "anna@example.com",
        PASSWORD,
        "192.0.2.1",
        Some(&browser),
    )
    .await;
    assert!(matches!(r, Err(LoginError::Throttled { .. })), "{r:?}");
}
