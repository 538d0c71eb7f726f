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
