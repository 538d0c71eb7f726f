//! What the tests share: the services a test needs (a Postgres database, an SMTP server, a server
//! secret) and the manual's building blocks as HTTP calls (register with the mailed code, accept
//! an invitation, log in, set up an operator, create a customer).

use super::browser::Browser;
use super::portal::Portal;
use super::secret_key;
use super::smtp::SmtpSink;
use adapters_postgres::testing::TestPostgres;
use portal_core::totp::{TotpSecret, code_at};
use serde_json::{Value, json};

/// The sender address of every mail.
pub const MAIL_FROM: &str = "portal@vendor.example";
/// The product affiliation every test customer has ("Deutschland: Sage 50 Connected, …").
pub const AFFILIATION: &str = "de-business";

/// One test's services: its own database, its own SMTP server, one server secret.
pub struct Stack {
    pub pg: TestPostgres,
    pub smtp: SmtpSink,
    pub secret: String,
}

impl Stack {
    /// Starts a fresh Postgres database and an SMTP server (at the same time).
    pub async fn start() -> Self {
        let (pg, smtp) = tokio::join!(TestPostgres::start(), SmtpSink::start());
        Self {
            pg,
            smtp,
            secret: secret_key(),
        }
    }

    /// Like [`Self::start`], but no migration has run on the database: the servers started on it
    /// apply them (the test of two processes started at once).
    pub async fn start_unmigrated() -> Self {
        let (pg, smtp) = tokio::join!(TestPostgres::start_empty(), SmtpSink::start());
        Self {
            pg,
            smtp,
            secret: secret_key(),
        }
    }

    /// The environment of `portal serve` on this stack: Postgres, SMTP, the shared secret, and
    /// development mode (plain-HTTP cookies on 127.0.0.1; mail still goes to SMTP).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.pg.url().to_owned()),
            ("SMTP_URL".into(), self.smtp.url()),
            ("PORTAL_SECRET_KEY".into(), self.secret.clone()),
            ("PORTAL_DEV_MODE".into(), "true".into()),
            ("PORTAL_MAIL_FROM".into(), MAIL_FROM.into()),
        ]
    }

    /// Starts `portal serve` on this stack, with `extra` variables on top.
    pub async fn serve(&self, name: &str, extra: &[(&str, &str)]) -> Portal {
        let mut env = self.env();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Portal::serve(name, &env).await
    }

    /// Drops the database.
    pub async fn finish(self) {
        self.smtp.stop().await;
        self.pg.finish().await;
    }
}

/// A person: name, address, password.
#[derive(Debug, Clone)]
pub struct Person {
    pub first: String,
    pub last: String,
    pub email: String,
    pub password: String,
}

impl Person {
    pub fn new(first: &str, last: &str, domain: &str) -> Self {
        Self {
            first: first.to_owned(),
            last: last.to_owned(),
            email: format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
            password: "korrekt pferd batterie heftklammer".to_owned(),
        }
    }
}

/// "Konto erstellen": registers, reads the code from the delivered mail, confirms it. Returns the
/// user of the new session.
pub async fn register(b: &Browser, smtp: &mut SmtpSink, p: &Person) -> Value {
    let ticket = b
        .post(
            "/auth/register",
            Some(json!({
                "email": p.email, "first_name": p.first, "last_name": p.last,
                "password": p.password, "password_confirmation": p.password,
            })),
        )
        .await
        .expect(202)["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let mail = smtp
        .expect(&p.email, "Verifizieren Sie Ihre E-Mail-Adresse")
        .await;
    verify(b, &ticket, &mail.code()).await
}

/// Confirms a mailed code; returns the user of the new session.
pub async fn verify(b: &Browser, ticket: &str, code: &str) -> Value {
    let a = b
        .post(
            "/auth/register/verify",
            Some(json!({"ticket": ticket, "code": code})),
        )
        .await;
    a.expect(201);
    assert!(
        a.body["csrf_token"].is_string(),
        "a new CSRF token: {}",
        a.text
    );
    a.body["user"].clone()
}

/// Accepts an invitation (or an operator's setup link) with a password and confirms the mailed
/// code; returns the user of the new session. An operator then sets up an authenticator app at
/// once ([`enrol_totp`]), as the server leads them to: operators need a second factor (R22).
pub async fn accept_invitation(b: &Browser, smtp: &mut SmtpSink, token: &str, p: &Person) -> Value {
    let shown = b.get(&format!("/invitations/{token}")).await;
    let shown = shown.expect(200);
    assert_eq!(shown["email"], p.email.as_str(), "{shown}");
    assert_eq!(shown["first_name"], p.first.as_str(), "{shown}");
    let ticket = b
        .post(
            &format!("/invitations/{token}/accept"),
            Some(json!({"password": p.password, "password_confirmation": p.password})),
        )
        .await
        .expect(202)["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let mail = smtp
        .expect(&p.email, "Verifizieren Sie Ihre E-Mail-Adresse")
        .await;
    let me = verify(b, &ticket, &mail.code()).await;
    if me["role"] == "operator" {
        // Until the factor is set up, everything else answers `second_factor_required`.
        let blocked = b.get("/operator/customers").await;
        assert_eq!(
            blocked.expect(403)["error"]["code"],
            "second_factor_required"
        );
        enrol_totp(b).await;
    }
    me
}

/// Sets up an authenticator app in `b`'s session (a session just started counts as the
/// step-up) and confirms it with the app's current code, computed with `totp-rs` from the secret
/// the server handed out; returns that secret.
pub async fn enrol_totp(b: &Browser) -> TotpSecret {
    let setup = b.post("/me/mfa/totp", None).await;
    let secret = TotpSecret::from_base32(setup.expect(201)["secret"].as_str().expect("secret"))
        .expect("a base32 secret");
    let code = code_at(&secret, chrono::Utc::now());
    b.post("/me/mfa/totp/confirm", Some(json!({"code": code.expose()})))
        .await
        .expect(200);
    secret
}

/// "Anmelden" with e-mail and password: the answer (authenticated or second step).
pub async fn login(b: &Browser, email: &str, password: &str) -> super::browser::Answer {
    b.post(
        "/auth/login",
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// Logs in and expects a session.
pub async fn login_ok(b: &Browser, p: &Person) -> Value {
    let a = login(b, &p.email, &p.password).await;
    let body = a.expect(200);
    assert_eq!(body["status"], "authenticated", "{}", a.text);
    body["user"].clone()
}

/// The vendor's operator, set up from a one-time link.
pub fn operator() -> Person {
    Person::new("Olga", "Operator", "vendor.example")
}

/// Creates a customer as the operator.
pub async fn create_customer(op: &Browser, number: &str, name: &str) -> Value {
    op.post(
        "/operator/customers",
        Some(json!({"customer_number": number, "name": name, "affiliations": [AFFILIATION]})),
    )
    .await
    .expect(201)
    .clone()
}

/// Chooses the affiliation and links to a customer by number; returns the link status.
pub async fn link(b: &Browser, number: &str) -> String {
    b.put("/me/affiliation", json!({"affiliation": AFFILIATION}))
        .await
        .expect(204);
    b.post(
        "/me/link/customer",
        Some(json!({"customer_number": number})),
    )
    .await
    .expect(200)["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

/// The keys of a permission list.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().expect("a key").to_owned())
        .collect();
    k.sort();
    k
}
