//! Login throttling (R14): per address typed and per client address, exponential waits, a
//! temporary block, never a permanent one; identical for known and unknown addresses.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::secret::SecretString;
use portal_core::service::{Login, LoginError};
use portal_core::session::ClientInfo;

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
async fn ten_failures_block_for_fifteen_minutes_and_never_longer() {
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
    w.advance(TimeDelta::minutes(15) - TimeDelta::seconds(1));
    let err = attempt(&w, "anna@example.com", PASSWORD, "10.0.0.1")
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Throttled { .. }), "got {err:?}");
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
    for _ in 0..10 {
        w.advance(TimeDelta::minutes(5));
        attempt(&w, "anna@example.com", "falsch falsch", "10.0.0.1")
            .await
            .unwrap_err();
    }
    w.portal.forgot_password("anna@example.com").await.unwrap();
    let link = w.secret_for("anna@example.com");
    w.portal
        .reset_password(
            &link,
            &"neues passwort hier".into(),
            &"neues passwort hier".into(),
        )
        .await
        .unwrap();
    attempt(&w, "anna@example.com", "neues passwort hier", "10.0.0.2")
        .await
        .unwrap();
}
