//! The one-call wiring for host applications (`portal_server::embed`).

use portal_server::embed::Embedded;
use portal_server::prelude::CookieKey;

const URL: &str = "https://desk.example.com/portal";

#[tokio::test]
async fn outside_development_a_cookie_key_is_required() {
    let refused = Embedded::builder(URL).build().await.unwrap_err();
    assert!(refused.0.contains("cookie key"), "{refused}");
    let key = CookieKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    let embedded = Embedded::builder(URL)
        .cookie_key(key)
        .build()
        .await
        .unwrap();
    assert_eq!(embedded.session_cookie(), "__Host-portal-session");
    assert!(embedded.state.config().secure_cookies());
}

#[tokio::test]
async fn login_counters_are_keyed_from_the_cookie_key_unless_configured() {
    let built = |text: &'static str| async move {
        let key = CookieKey::from_base64(text).unwrap();
        let embedded = Embedded::builder(URL)
            .cookie_key(key)
            .build()
            .await
            .unwrap();
        embedded.portal.config().counter_key.clone()
    };
    let a = built("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").await;
    let b = built("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").await;
    assert!(a.is_some(), "never the public default key");
    assert_eq!(
        a,
        built("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").await
    );
    assert_ne!(a, b);
    let own = portal_core::throttle::CounterKey::from_bytes([7; 32]);
    let config = portal_core::config::PortalConfig {
        counter_key: Some(own.clone()),
        ..Default::default()
    };
    let embedded = Embedded::builder(URL)
        .development()
        .config(config)
        .build()
        .await
        .unwrap();
    assert_eq!(embedded.portal.config().counter_key, Some(own));
}

#[tokio::test]
async fn development_uses_plain_cookies() {
    let embedded = Embedded::builder("http://127.0.0.1:3000/portal")
        .development()
        .build()
        .await
        .unwrap();
    assert_eq!(embedded.session_cookie(), "portal-session");
    assert!(!embedded.state.config().secure_cookies());
}

#[tokio::test]
async fn an_unknown_database_is_refused_naming_it() {
    let refused = Embedded::builder(URL)
        .development()
        .database("mysql://db/portal")
        .build()
        .await
        .unwrap_err();
    assert!(refused.0.contains("database URL"), "{refused}");
}

#[tokio::test]
async fn an_sqlite_database_is_migrated_and_ready() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("desk.db").display());
    let embedded = Embedded::builder(URL)
        .development()
        .database(&url)
        .build()
        .await
        .unwrap();
    assert_eq!(embedded.state.readiness().check().await, Ok(()));
    let stats = embedded.outbox.outbox_stats().await.unwrap();
    assert_eq!(stats.pending, 0);
}
