//! Portal as an OpenID Connect provider, proven with relying parties no one here wrote: Python's
//! Authlib (`support/oidc_rp.py`) and the Rust `openidconnect` crate, against the real `portal`
//! binary on SQLite and on Postgres.
//!
//! Each application is registered with `portal clients create --json`, builds its authorization
//! URL (PKCE S256, state, nonce), and a person's browser ([`WebUser`]) follows it through the
//! portal's web login form (CSRF field and all) back to the application's redirect URI. The
//! application exchanges the code, validates the ID token with its library (JWKS signature, iss,
//! aud, nonce), reads Portal's claims, calls userinfo, introspects and refreshes. Then the
//! customer's administrator locks the person through the API: the very next introspection says
//! inactive, userinfo answers 401, the refresh fails with `invalid_grant`, and the back-channel
//! logout token reaches the endpoint the test serves, verified against the JWKS — also when that
//! endpoint was down at the moment of the lock (the outbox delivers it once it is up).
//!
//! Two `portal serve` on one Postgres: a code issued by one is redeemed at the other, and
//! `portal keys rotate` run once makes both publish the new key.

use crate::support::db::{Backend, Db};
use crate::support::fixture::{self, Company};
use crate::support::load::Server;
use crate::support::oidc::{
    AuthlibRp, Receiver, Registered, RustRp, Signed, WebUser, backchannel_uri, create_client,
    reserve_port,
};
use crate::support::portal::{Launch, Portal, run};
use crate::support::smtp::SmtpSink;
use crate::support::world::{Person, accept_invitation};
use crate::support::{DEADLINE, TempDir, secret_key};
use openidconnect::{JsonWebKey as _, OAuth2TokenResponse as _, TokenUrl, UserInfoUrl};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The permission every test application requires ("Meine Belege").
const PERMISSION: &str = "documents";

/// One test's portal: a database, an SMTP server, `portal serve`, a customer with an
/// administrator.
struct World {
    db: Db,
    smtp: SmtpSink,
    env: Vec<(String, String)>,
    server: Arc<Server>,
    company: Company,
}

impl World {
    async fn start(backend: Backend, number: &str) -> Self {
        let (db, mut smtp) = tokio::join!(Db::start(backend), SmtpSink::start());
        let env = fixture::env(&db, &smtp, &secret_key());
        let server = Server::start("oidc", env.clone(), Launch::default()).await;
        let op = fixture::operator(&server, &mut smtp).await;
        let company = fixture::company(&server, &op, &mut smtp, number, "oidc.example").await;
        Self {
            db,
            smtp,
            env,
            server,
            company,
        }
    }

    /// The issuer: the server's public URL.
    fn issuer(&self) -> String {
        self.server.origin().to_owned()
    }

    /// An employee invited by the administrator with `permissions`, registered through the
    /// invitation; the person and the user id.
    async fn employee(&mut self, first: &str, permissions: &[&str]) -> (Person, String) {
        let p = Person::new(first, "Mitarbeiter", "oidc.example");
        let invited = self
            .company
            .admin
            .post(
                &format!("/customers/{}/users", self.company.number),
                Some(json!({
                    "email": p.email, "first_name": p.first, "last_name": p.last,
                    "permissions": permissions,
                })),
            )
            .await;
        let id = invited.expect(201)["id"].as_str().expect("id").to_owned();
        let mail = self.smtp.expect(&p.email, "Einladung zum Portal").await;
        let token = mail.token(&format!("{}/invitations/", self.server.origin()));
        accept_invitation(&self.server.browser(), &mut self.smtp, &token, &p).await;
        (p, id)
    }

    /// The administrator locks user `id` ("Sperren").
    async fn lock(&self, id: &str) {
        self.company
            .admin
            .post(
                &format!("/customers/{}/users/{id}/lock", self.company.number),
                None,
            )
            .await
            .expect(200);
    }

    /// A confidential, first-party client that requires [`PERMISSION`].
    async fn client(&self, name: &str, redirect_uri: &str, backchannel: &str) -> Registered {
        let client = create_client(
            &self.env,
            &[
                "--name",
                name,
                "--redirect-uri",
                redirect_uri,
                "--backchannel-logout-uri",
                backchannel,
                "--first-party",
                "--permission",
                PERMISSION,
            ],
        )
        .await;
        assert!(
            client
                .client_secret
                .as_deref()
                .is_some_and(|s| s.len() >= 20),
            "a confidential client gets its secret once: {}",
            client.json
        );
        client
    }

    async fn finish(self) {
        let Self {
            db, smtp, server, ..
        } = self;
        server.stop().await;
        smtp.stop().await;
        db.finish().await;
    }
}

/// What every ID token / userinfo answer of `person` (user `id`, customer `number`) says.
fn assert_person_claims(claims: &Value, person: &Person, id: &str, number: &str, what: &str) {
    assert_eq!(claims["sub"], id, "{what}: sub is the user's id: {claims}");
    assert_eq!(claims["email"], person.email.as_str(), "{what}: {claims}");
    assert_eq!(claims["email_verified"], true, "{what}: {claims}");
    assert_eq!(
        claims["name"],
        format!("{} {}", person.first, person.last).as_str(),
        "{what}: {claims}"
    );
    // The customer number as printed on letters: `D` and the nine digits.
    assert_eq!(
        claims["customer_number"],
        format!("D{number}").as_str(),
        "{what}: {claims}"
    );
    assert_eq!(
        claims["given_name"],
        person.first.as_str(),
        "{what}: {claims}"
    );
    assert_eq!(
        claims["family_name"],
        person.last.as_str(),
        "{what}: {claims}"
    );
    assert_eq!(
        claims["customer_name"],
        format!("Firma {number}").as_str(),
        "{what}: {claims}"
    );
    assert_eq!(claims["role"], "employee", "{what}: {claims}");
    let permissions: BTreeSet<&str> = claims["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: permissions is a list: {claims}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        permissions.contains(PERMISSION),
        "{what}: the permissions: {claims}"
    );
}

/// The Rust application `name` (registered with `backchannel`) signs `person` in: its
/// authorization URL, the browser through the login form, the code exchange, the ID token.
async fn rust_sign_in(
    w: &World,
    name: &str,
    person: &Person,
    backchannel: &str,
) -> (RustRp, Registered, Signed) {
    let issuer = w.issuer();
    let redirect = "http://127.0.0.1:9/rust/callback";
    let client = w.client(name, redirect, backchannel).await;
    let rust = RustRp::discover(&issuer, &client, redirect).await;
    let signed = rust.sign_in(person).await;
    (rust, client, signed)
}

async fn relying_parties(backend: Backend, number: &str) {
    let mut w = World::start(backend, number).await;
    let issuer = w.issuer();
    let (emma, emma_id) = w.employee("Emma", &[PERMISSION]).await;
    let (rudi, rudi_id) = w.employee("Rudi", &[PERMISSION, "licenses"]).await;

    // Discovery tells both libraries what they need.
    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON");
    assert_eq!(discovery["issuer"], issuer.as_str(), "{discovery}");
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert!(
        discovery["code_challenge_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == "S256")),
        "{discovery}"
    );

    // (a) Authlib.
    let mut python_inbox = Receiver::start().await;
    let python_redirect = "http://127.0.0.1:9/python/callback";
    let python_client = w
        .client("Belege (Python)", python_redirect, &python_inbox.uri())
        .await;
    let python = AuthlibRp::new();
    let url = python.begin(&issuer, &python_client, python_redirect).await;
    let callback = WebUser::new(&issuer)
        .authorize(&url, &emma.email, &emma.password, python_redirect)
        .await;
    let out = python.finish(&callback).await;
    assert_eq!(out["id_token_header"]["alg"], "RS256", "{out}");
    assert!(out["id_token_header"]["kid"].is_string(), "{out}");
    let id_claims = &out["id_claims"];
    assert_eq!(id_claims["iss"], issuer.as_str(), "{out}");
    assert_eq!(id_claims["aud"], python_client.client_id.as_str(), "{out}");
    assert!(id_claims["sid"].is_string(), "{out}");
    assert!(id_claims["auth_time"].is_i64(), "{out}");
    assert_person_claims(id_claims, &emma, &emma_id, number, "Authlib ID token");
    assert_person_claims(&out["userinfo"], &emma, &emma_id, number, "userinfo");
    assert!(
        out["refresh_token_present"] == true,
        "offline_access: {out}"
    );
    let introspection = &out["introspection"]["body"];
    assert_eq!(introspection["active"], true, "{out}");
    assert_eq!(introspection["sub"], emma_id.as_str(), "{out}");
    assert_eq!(
        introspection["client_id"],
        python_client.client_id.as_str(),
        "{out}"
    );
    assert_eq!(
        out["refreshed"]["rotated"], true,
        "a new refresh token: {out}"
    );
    assert_eq!(out["refreshed"]["new_access_token"], true, "{out}");
    assert_eq!(
        out["refreshed"]["introspection"]["body"]["active"], true,
        "{out}"
    );
    assert!(
        python_inbox.try_next().is_none(),
        "no logout before the lock"
    );

    // (b) The Rust openidconnect client.
    let mut rust_inbox = Receiver::start().await;
    let (rust, _, signed) = rust_sign_in(&w, "Belege (Rust)", &rudi, &rust_inbox.uri()).await;
    let claims = serde_json::to_value(&signed.claims).expect("claims as JSON");
    assert_person_claims(&claims, &rudi, &rudi_id, number, "openidconnect ID token");
    assert_eq!(
        signed.claims.additional_claims().permissions.len(),
        2,
        "{claims}"
    );
    assert!(signed.claims.auth_time().is_some(), "{claims}");
    let sid = signed
        .claims
        .additional_claims()
        .sid
        .clone()
        .expect("a sid");
    let userinfo = rust
        .userinfo(&signed.access, signed.claims.subject())
        .await
        .expect("userinfo");
    assert_person_claims(
        &serde_json::to_value(&userinfo).expect("JSON"),
        &rudi,
        &rudi_id,
        number,
        "openidconnect userinfo",
    );
    let introspected = rust.introspect(&signed.access).await;
    assert!(
        openidconnect::TokenIntrospectionResponse::active(&introspected),
        "{introspected:?}"
    );
    assert_eq!(
        openidconnect::TokenIntrospectionResponse::sub(&introspected),
        Some(rudi_id.as_str())
    );
    let refreshed = rust
        .refresh(signed.refresh.as_ref().expect("a refresh token"))
        .await
        .expect("refresh");
    let new_refresh = refreshed
        .refresh_token()
        .cloned()
        .expect("a rotated refresh token");
    assert_ne!(
        new_refresh.secret(),
        signed.refresh.as_ref().expect("refresh").secret(),
        "the refresh token rotates"
    );
    let new_access = refreshed.access_token().clone();
    assert!(rust.active(&new_access).await);

    // The administrator locks both: each application learns it at once.
    w.lock(&emma_id).await;
    let after = python.check().await;
    assert_eq!(
        after["introspection"]["body"]["active"], false,
        "inactive at once: {after}"
    );
    assert_eq!(after["userinfo_status"], 401, "{after}");
    assert_eq!(after["refresh"]["error"], "invalid_grant", "{after}");
    let token = python_inbox.next().await;
    let logout = python.logout_token(&token).await;
    assert_eq!(logout["sub"], emma_id.as_str(), "{logout}");
    assert_eq!(logout["sid"], id_claims["sid"], "{logout}");
    assert_eq!(logout["aud"], python_client.client_id.as_str(), "{logout}");

    w.lock(&rudi_id).await;
    assert!(!rust.active(&new_access).await, "inactive at once");
    assert!(
        rust.userinfo(&new_access, signed.claims.subject())
            .await
            .is_err(),
        "userinfo refuses a locked user's token"
    );
    assert_eq!(
        rust.refresh(&new_refresh).await.err().as_deref(),
        Some("invalid_grant")
    );
    let token = rust_inbox.next().await;
    let logout = rust.verify_logout_token(&token).await;
    assert_eq!(logout["sub"], rudi_id.as_str(), "{logout}");
    assert_eq!(logout["sid"], sid.as_str(), "{logout}");
    // One lock, one session, one logout token for each application.
    assert!(python_inbox.try_next().is_none());
    assert!(rust_inbox.try_next().is_none());
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_and_openidconnect_sign_in_refresh_introspect_and_get_logged_out_on_sqlite() {
    relying_parties(Backend::Sqlite, "300000001").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_and_openidconnect_sign_in_refresh_introspect_and_get_logged_out_on_postgres() {
    relying_parties(Backend::Postgres, "300000002").await;
}

/// Waits until the outbox holds a message of a kind other than mail with at least one failed
/// delivery attempt; returns its kind. Polls the table (the server under test writes it) within
/// [`DEADLINE`].
async fn failed_attempt(db: &Db) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        for kind in db.outbox_kinds().await {
            if kind == "mail" {
                continue;
            }
            let rows = db.outbox_of_kind(&kind).await;
            if rows
                .iter()
                .any(|(status, attempts)| status != "sent" && *attempts >= 1)
            {
                return kind;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed back-channel delivery within {DEADLINE:?}"
        );
        // A poll interval, not a synchronisation: the loop ends on the first failed attempt.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backchannel_logout_reaches_an_application_that_was_down_at_the_lock() {
    let mut w = World::start(Backend::Sqlite, "300000003").await;
    let (dora, dora_id) = w.employee("Dora", &[PERMISSION]).await;
    // Nothing listens on this port yet: the application is down.
    let port = reserve_port();
    let (rust, _, signed) =
        rust_sign_in(&w, "Belege (zeitweise aus)", &dora, &backchannel_uri(port)).await;
    assert!(rust.active(&signed.access).await);

    w.lock(&dora_id).await;
    assert!(!rust.active(&signed.access).await);
    // The first delivery failed (connection refused) and is waiting for its retry.
    let kind = failed_attempt(&w.db).await;
    // The application comes up on its address: the retry brings the token.
    let mut inbox = Receiver::on(port).await;
    let token = inbox.next().await;
    let logout = rust.verify_logout_token(&token).await;
    assert_eq!(logout["sub"], dora_id.as_str(), "{logout}");
    assert_eq!(
        logout["sid"],
        signed
            .claims
            .additional_claims()
            .sid
            .as_deref()
            .expect("sid"),
    );
    // Marked sent once the receiver answered 200 (the dispatcher records it right after).
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let rows = w.db.outbox_of_kind(&kind).await;
        if rows.iter().all(|(status, _)| status == "sent") {
            assert!(rows.iter().any(|(_, attempts)| *attempts >= 2), "{rows:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not marked sent: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    w.finish().await;
}

/// The key ids a server publishes.
async fn kids(origin: &str) -> BTreeSet<String> {
    let jwks: Value = reqwest::get(format!("{origin}/oidc/jwks"))
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON");
    jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("keys: {jwks}"))
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_redeem_each_others_codes_and_publish_rotated_keys() {
    let mut w = World::start(Backend::Postgres, "300000004").await;
    let issuer = w.issuer();
    // B serves the same portal under the same public URL (behind one load balancer).
    let mut env_b = w.env.clone();
    env_b.push(("PORTAL_PUBLIC_URL".into(), issuer.clone()));
    let b = Portal::serve("B", &env_b).await;
    let (pia, pia_id) = w.employee("Pia", &[PERMISSION]).await;
    let redirect = "http://127.0.0.1:9/two/callback";
    let client = w
        .client("Belege (zwei Prozesse)", redirect, &backchannel_uri(9))
        .await;
    // Discovered at A; the token and userinfo requests go to B.
    let mut rust = RustRp::discover(&issuer, &client, redirect).await;
    rust.metadata = rust
        .metadata
        .clone()
        .set_token_endpoint(Some(
            TokenUrl::new(format!("{}/oidc/token", b.origin)).expect("URL"),
        ))
        .set_userinfo_endpoint(Some(
            UserInfoUrl::new(format!("{}/oidc/userinfo", b.origin)).expect("URL"),
        ));
    let rust = RustRp::with_metadata(rust, &client, redirect);
    // A issues the code; B redeems it and signs the ID token with the shared key.
    let signed = rust.sign_in(&pia).await;
    assert_eq!(signed.claims.subject().as_str(), pia_id);
    let userinfo = rust
        .userinfo(&signed.access, signed.claims.subject())
        .await
        .expect("userinfo at B");
    assert_eq!(userinfo.subject().as_str(), pia_id);

    // One rotation, run once against the database: both publish the new key, and the old one
    // stays published while tokens it signed may live.
    let (before_a, before_b) = (kids(&issuer).await, kids(&b.origin).await);
    assert_eq!(before_a, before_b, "one key set");
    let dir = TempDir::new("keys");
    run(dir.path(), &["keys", "rotate"], &w.env).await.ok();
    let (after_a, after_b) = (kids(&issuer).await, kids(&b.origin).await);
    let new_a: Vec<_> = after_a.difference(&before_a).collect();
    let new_b: Vec<_> = after_b.difference(&before_b).collect();
    assert_eq!(
        new_a.len(),
        1,
        "A publishes the new key: {before_a:?} → {after_a:?}"
    );
    assert_eq!(new_a, new_b, "B publishes the same new key");
    assert!(before_a.is_subset(&after_a), "old keys stay published");
    // The crate keeps the key set of its discovery; an application that meets an unknown `kid`
    // fetches the set again, as this one does here.
    let jwks = rust.jwks().await;
    assert!(
        jwks.keys()
            .iter()
            .any(|k| k.key_id().map(|i| i.as_str()) == new_a.first().map(|s| s.as_str())),
        "the crate reads the new key"
    );
    let mut rust = rust;
    rust.metadata = rust.metadata.clone().set_jwks(jwks);
    let rust = RustRp::with_metadata(rust, &client, redirect);
    // Signed (at B) with the new key, verified by the crate against the key set both publish.
    let signed = rust.sign_in(&pia).await;
    assert_eq!(signed.claims.subject().as_str(), pia_id);
    let header = signed.id_token.split('.').next().expect("a JWS header");
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
            .expect("base64url"),
    )
    .expect("header JSON");
    assert_eq!(
        header["kid"].as_str(),
        new_a.first().map(|s| s.as_str()),
        "the new key signs"
    );
    b.stop().await;
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_application_shows_its_area_only_with_its_permission() {
    use crate::support::oidc_app::{App, Settings};
    let mut w = World::start(Backend::Sqlite, "300000005").await;
    let issuer = w.issuer();
    let (lena, lena_id) = w.employee("Lena", &[PERMISSION, "licenses"]).await;
    let (otto, _) = w.employee("Otto", &[PERMISSION]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    // Registered without a required permission: the application itself guards its area.
    let client = create_client(
        &w.env,
        &[
            "--name",
            "Lizenzen",
            "--redirect-uri",
            &format!("{base}/callback"),
            "--backchannel-logout-uri",
            &format!("{base}/backchannel-logout"),
            "--first-party",
        ],
    )
    .await;
    let app = App::discover(&Settings {
        issuer: issuer.clone(),
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone().expect("a secret"),
        base_url: base.clone(),
    })
    .await
    .expect("discovery");
    let router = app.router();
    let served = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let lena_browser = WebUser::new(&issuer);
    let (status, page) = lena_browser
        .open(&format!("{base}/licenses"), &lena.email, &lena.password)
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Lizenzen von D300000005"), "{page}");
    let (status, page) = WebUser::new(&issuer)
        .open(&format!("{base}/licenses"), &otto.email, &otto.password)
        .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("keine Berechtigung"), "{page}");
    assert_eq!(app.sessions(), 2);

    // Lena is locked: Portal's back-channel logout ends her session in the application.
    w.lock(&lena_id).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app.sessions() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the application still holds Lena's session"
        );
        // A poll interval: the loop ends as soon as the logout token was handled.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _) = lena_browser.get(&format!("{base}/licenses")).await;
    assert_eq!(status, 303, "back to the login");
    served.abort();
    w.finish().await;
}
