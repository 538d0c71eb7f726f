//! The set-up the crash and outage tests share: a server environment on either backend, the
//! first operator, and customers with an administrator each.

use super::browser::Browser;
use super::db::Db;
use super::load::Server;
use super::smtp::Inbox;
use super::smtp::SmtpSink;
use super::world::{MAIL_FROM, Person, accept_invitation, create_customer, link, register};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The first operator's address.
pub const OPERATOR_EMAIL: &str = "ops@vendor.example";

/// Permission keys every test customer may grant (its default entitlements).
pub const PERMISSIONS: [&str; 6] = [
    "documents",
    "licenses",
    "master_data",
    "payment_methods",
    "shop",
    "support_requests",
];

/// The environment of `portal serve` for a load test: the database, the SMTP server (a short
/// SMTP timeout), a server secret, development mode, the first operator's address, no
/// per-address rate limits (every client comes from 127.0.0.1), and a short mail lease
/// (`PORTAL_MAIL_LEASE=10`, `PORTAL_MAIL_SEND_TIMEOUT=5`) so mails a killed process had
/// claimed go out within seconds of the restart instead of the default five minutes.
pub fn env(db: &Db, smtp: &SmtpSink, secret: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", db.url().to_owned()),
        ("SMTP_URL", smtp.url_with_timeout(3)),
        ("PORTAL_SECRET_KEY", secret.to_owned()),
        ("PORTAL_DEV_MODE", "true".to_owned()),
        ("PORTAL_MAIL_FROM", MAIL_FROM.to_owned()),
        ("PORTAL_OPERATOR_EMAIL", OPERATOR_EMAIL.to_owned()),
        ("PORTAL_RATE_LIMITS", "off".to_owned()),
        ("PORTAL_MAIL_LEASE", "10".to_owned()),
        ("PORTAL_MAIL_SEND_TIMEOUT", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Sets the first operator's password from the banner's link; returns the operator's browser.
pub async fn operator(server: &Server, smtp: &mut SmtpSink) -> Browser {
    let token = server.first_operator_token().await;
    let op = server.browser();
    let person = Person {
        first: "Portal".into(),
        last: "Operator".into(),
        email: OPERATOR_EMAIL.into(),
        password: "vendor staff kennwort 2026".into(),
    };
    accept_invitation(&op, smtp, &token, &person).await;
    op
}

/// A customer with an administrator.
pub struct Company {
    /// The customer number.
    pub number: String,
    /// The administrator's browser (logged in).
    pub admin: Browser,
}

/// Creates customer `number` and makes a newly registered person its administrator (linked
/// first, so active at once; admin rights requested and approved by the operator).
pub async fn company(
    server: &Server,
    op: &Browser,
    smtp: &mut SmtpSink,
    number: &str,
    domain: &str,
) -> Company {
    create_customer(op, number, &format!("Firma {number}")).await;
    let person = Person::new("Ada", "Admin", domain);
    let admin = server.browser();
    register(&admin, smtp, &person).await;
    assert_eq!(link(&admin, number).await, "active");
    let request = admin.post("/me/admin-request", None).await;
    let id = request.expect(201)["id"].as_str().expect("id").to_owned();
    op.post(&format!("/operator/admin-requests/{id}/approve"), None)
        .await
        .expect(200);
    assert_eq!(admin.get("/me").await.expect(200)["role"], "administrator");
    Company {
        number: number.to_owned(),
        admin,
    }
}

/// Registers `person` (no customer) and returns its browser.
pub async fn registered(server: &Server, smtp: &mut SmtpSink, person: &Person) -> Browser {
    let b = server.browser();
    register(&b, smtp, person).await;
    b
}

/// Verifies every audit chain through the operator's endpoint (`GET
/// /api/v1/operator/audit/verify`): the global one and each customer's. Returns the number of
/// entries checked.
pub async fn verify_chains(op: &Browser, numbers: &[String]) -> u64 {
    let mut entries = 0;
    let mut paths = vec!["/operator/audit/verify".to_owned()];
    paths.extend(
        numbers
            .iter()
            .map(|n| format!("/operator/audit/verify?customer_number={n}")),
    );
    for path in paths {
        let answer = op.get(&path).await;
        let body = answer.expect(200);
        assert_eq!(body["valid"], true, "{path}: {}", answer.text);
        entries += body["entries"].as_u64().expect("entries");
    }
    entries
}

/// The body of an invitation.
pub fn invitation(email: &str, i: usize, permissions: &[String]) -> serde_json::Value {
    json!({
        "email": email,
        "first_name": "Lasttest",
        "last_name": format!("Nummer{i}"),
        "permissions": permissions,
        "language": "de",
    })
}

/// Waits until every mail of the outbox is marked sent and the SMTP server received it; returns
/// the number of mails and of repeated deliveries. Every received mail is an outbox mail.
pub async fn settle_mail(db: &Db, inbox: &Inbox) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let snap = db.snapshot().await;
        let received = inbox.all();
        let mut per_id: BTreeMap<Uuid, usize> = BTreeMap::new();
        for m in &received {
            let id = m
                .message_id
                .trim_start_matches('<')
                .split('@')
                .next()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("a Message-ID without an outbox id: {}", m.message_id));
            *per_id.entry(id).or_default() += 1;
        }
        let unsent: Vec<_> = snap.mails.iter().filter(|m| m.status != "sent").collect();
        let missing: Vec<_> = snap
            .mails
            .iter()
            .filter(|m| !per_id.contains_key(&m.id))
            .collect();
        if unsent.is_empty() && missing.is_empty() {
            let known: BTreeSet<Uuid> = snap.mails.iter().map(|m| m.id).collect();
            let strange: Vec<_> = per_id.keys().filter(|id| !known.contains(id)).collect();
            assert!(
                strange.is_empty(),
                "mails delivered that no outbox row holds: {strange:?}"
            );
            assert!(
                !snap.mails.iter().any(|m| m.status == "dead"),
                "dead letters after a crash"
            );
            let duplicates = per_id.values().map(|n| n - 1).sum();
            return (snap.mails.len(), duplicates);
        }
        assert!(
            Instant::now() < deadline,
            "mails not delivered within 90 s of the last restart: unsent {unsent:?}, never received {missing:?}"
        );
        // Poll: a delivery is a new message at the SMTP server, a lease running out is not.
        inbox
            .wait_until(Duration::from_millis(500), |all| all.len() > received.len())
            .await;
    }
}
