//! Passkeys (issue 16) through the JSON API of the real binary, on SQLite and on Postgres, with a
//! software authenticator written by others (`webauthn-authenticator-rs`'s `SoftPasskey`: real
//! P-256 keys, real signatures, a sign counter; [`crate::support::passkey`]).
//!
//! One person's whole life with passkeys: registered after a password login and a step-up,
//! signing in with the passkey alone (no address, no password), the passkey as the second step
//! after the password, listed in `GET /api/v1/me`, renamed, proven again for a step-up, and
//! removed — and every refusal changing nothing: the same answer sent again, an old answer to a
//! new challenge (a replay), an answer made for another origin, a challenge answered twice, a
//! removed passkey. Along the way an application (Python's Authlib) that requires a second factor
//! is signed in to with the passkey and reads `amr` from its ID token, and that application keeps
//! the last passkey from being removed. `/metrics` counts the passkey sign-ins.
//!
//! The server's public URL is `http://127.0.0.1:{port}`; the relying party is `localhost` (an IP
//! address cannot be one), so the authenticator signs for the origin `http://localhost:{port}`.

use crate::support::browser::Browser;
use crate::support::db::{Backend, Db};
use crate::support::fixture;
use crate::support::oidc::{AuthlibRp, WebUser, create_client};
use crate::support::passkey::Authenticator;
use crate::support::portal::Portal;
use crate::support::secret_key;
use crate::support::smtp::SmtpSink;
use crate::support::world::{Person, login, register};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn passkeys_through_the_api_on_sqlite() {
    passkey_life(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn passkeys_through_the_api_on_postgres() {
    passkey_life(Backend::Postgres).await;
}

/// One value of `/metrics`: the sample `series` (name and labels as printed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// `GET /metrics` on the metrics listener the server printed.
async fn scrape(server: &Portal) -> String {
    let line = server
        .wait_for(|l| l.contains("metrics on http://127.0.0.1:"))
        .await;
    let url = line
        .split("metrics on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|u| u.trim_matches(|c| c == '"' || c == ','))
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
        .to_owned();
    let answer = reqwest::get(&url).await.expect("GET /metrics");
    assert_eq!(answer.status(), 200, "{url}");
    answer.text().await.expect("metrics text")
}

/// The passkeys of the signed-in user, as `GET /api/v1/me` lists them.
async fn passkeys(b: &Browser) -> Vec<Value> {
    let me = b.get("/me").await;
    me.expect(200)["mfa"]["passkeys"]
        .as_array()
        .unwrap_or_else(|| panic!("no passkeys in {}", me.text))
        .clone()
}

/// How many sessions `GET /api/v1/me/sessions` lists.
async fn session_count(b: &Browser) -> usize {
    let a = b.get("/me/sessions").await;
    a.expect(200)["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {}", a.text))
        .len()
}

/// `POST /api/v1/auth/passkey/options`: the challenge id and the `publicKey` options.
async fn sign_in_options(b: &Browser) -> (Value, Value) {
    let start = b.post("/auth/passkey/options", None).await;
    let start = start.expect(200);
    (start["challenge_id"].clone(), start["public_key"].clone())
}

/// Adds a passkey made by `auth` (the session must be fresh); the answer.
async fn add_passkey(b: &Browser, auth: &mut Authenticator, origin: &str, name: &str) -> Value {
    let start = b.post("/me/passkeys/options", None).await;
    let start = start.expect(200).clone();
    let credential = auth.register(&start["public_key"], origin);
    b.post(
        "/me/passkeys",
        Some(
            json!({"challenge_id": start["challenge_id"], "name": name, "credential": credential}),
        ),
    )
    .await
    .expect(201)
    .clone()
}

async fn passkey_life(backend: Backend) {
    let (db, mut smtp) = tokio::join!(Db::start(backend), SmtpSink::start());
    let mut env = fixture::env(&db, &smtp, &secret_key());
    env.push(("PORTAL_METRICS_BIND".into(), "127.0.0.1:0".into()));
    let server = Portal::serve("passkeys", &env).await;
    // What a browser at the server reports as the origin of its WebAuthn calls.
    let origin = format!("http://localhost:{}", server.port);
    let lena_p = Person::new("Lena", "Passkey", "kunde.example");
    let lena = Browser::new(&server);
    register(&lena, &mut smtp, &lena_p).await;

    // Registering a passkey: after a password login and the step-up (password again).
    lena.post("/auth/logout", None).await.expect(204);
    let step1 = login(&lena, &lena_p.email, &lena_p.password).await;
    assert_eq!(
        step1.expect(200)["status"],
        "authenticated",
        "{}",
        step1.text
    );
    lena.post(
        "/auth/reauthenticate",
        Some(json!({"password": lena_p.password})),
    )
    .await
    .expect(200);
    let mut laptop = Authenticator::new();
    let added = add_passkey(&lena, &mut laptop, &origin, "Laptop").await;
    assert_eq!(added["passkeys"][0]["name"], "Laptop", "{added}");
    assert!(
        added["recovery_code"].is_string(),
        "the first factor brings a recovery code: {added}"
    );
    smtp.expect(&lena_p.email, "Multi-Faktor-Authentifizierung eingerichtet")
        .await;
    let me = lena.get("/me").await.expect(200).clone();
    assert_eq!(me["mfa"]["enabled"], true, "{me}");
    assert!(
        me["mfa"]["methods"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("passkey"))),
        "{me}"
    );
    let listed = passkeys(&lena).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0]["created_at"].is_string(), "{listed:?}");
    assert!(listed[0]["last_used_at"].is_null(), "{listed:?}");
    let id = listed[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        lena.get("/me/passkeys")
            .await
            .expect(200)
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Signed out, then in with the passkey alone: no address, no password.
    lena.post("/auth/logout", None).await.expect(204);
    lena.get("/me").await.expect_error(401, "unauthenticated");
    let (challenge, options) = sign_in_options(&lena).await;
    let first = json!({"challenge_id": challenge, "credential": laptop.sign(&options, &origin)});
    let signed_in = lena.post("/auth/passkey", Some(first.clone())).await;
    assert_eq!(
        signed_in.expect(200)["status"],
        "authenticated",
        "{}",
        signed_in.text
    );
    assert_eq!(signed_in.body["user"]["email"], lena_p.email.as_str());
    let after_sign_in = passkeys(&lena).await;
    assert!(
        after_sign_in[0]["last_used_at"].is_string(),
        "{after_sign_in:?}"
    );
    let sessions = session_count(&lena).await;

    // Refusals, from another browser; each changes nothing (the passkey as it was, no new
    // session) and none signs that browser in.
    let mallory = Browser::new(&server);
    // The same answer again: its challenge is used.
    mallory
        .post("/auth/passkey", Some(first.clone()))
        .await
        .expect_error(400, "passkey_challenge_invalid");
    // The old answer to a new challenge: a replay.
    let (fresh, _) = sign_in_options(&mallory).await;
    let replay = json!({"challenge_id": fresh, "credential": first["credential"]});
    let r = mallory.post("/auth/passkey", Some(replay)).await;
    r.expect_error(400, "passkey_refused");
    assert_eq!(
        r.body["error"]["details"]["reason"], "wrong_challenge",
        "{}",
        r.text
    );
    // An answer made for another origin (a phishing site relaying the challenge).
    let (challenge, options) = sign_in_options(&mallory).await;
    let phished = json!({
        "challenge_id": challenge,
        "credential": laptop.sign(&options, "https://login-portal.evil.example"),
    });
    let r = mallory.post("/auth/passkey", Some(phished)).await;
    r.expect_error(400, "passkey_refused");
    assert_eq!(
        r.body["error"]["details"]["reason"], "wrong_origin",
        "{}",
        r.text
    );
    mallory
        .get("/me")
        .await
        .expect_error(401, "unauthenticated");
    assert_eq!(passkeys(&lena).await, after_sign_in, "nothing changed");
    assert_eq!(session_count(&lena).await, sessions, "no session started");

    // A right answer signs in (and clears the counted failures); a second right answer to the
    // same challenge is refused.
    let (challenge, options) = sign_in_options(&mallory).await;
    let right = json!({"challenge_id": challenge, "credential": laptop.sign(&options, &origin)});
    mallory.post("/auth/passkey", Some(right)).await.expect(200);
    let again = json!({"challenge_id": challenge, "credential": laptop.sign(&options, &origin)});
    let other = Browser::new(&server);
    other
        .post("/auth/passkey", Some(again))
        .await
        .expect_error(400, "passkey_challenge_invalid");
    other.get("/me").await.expect_error(401, "unauthenticated");
    mallory.post("/auth/logout", None).await.expect(204);

    // An application that requires a second factor, signed in to with the passkey: its ID token
    // (validated by Authlib) says how — a key, user verified (RFC 8176 `hwk`/`swk`, `user`).
    let redirect = "http://127.0.0.1:9/strict/callback";
    let strict = create_client(
        &env,
        &[
            "--name",
            "Lohnabrechnung",
            "--redirect-uri",
            redirect,
            "--first-party",
            "--require-second-factor",
        ],
    )
    .await;
    let rp = AuthlibRp::new();
    let url = rp.begin(server.origin.as_str(), &strict, redirect).await;
    let callback = WebUser::sharing(&lena)
        .authorize(&url, &lena_p.email, "not needed: signed in", redirect)
        .await;
    let out = rp.finish(&callback).await;
    let claims = &out["id_claims"];
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr: {out}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        amr.iter().any(|m| ["hwk", "swk"].contains(m)) && amr.contains(&"user"),
        "{out}"
    );
    assert!(!amr.contains(&"pwd"), "no password was used: {out}");
    assert_eq!(claims["acr"], "urn:portal:acr:mfa", "{out}");
    assert_eq!(claims["email"], lena_p.email.as_str(), "{out}");

    // The passkey as the second step after the password.
    lena.post("/auth/logout", None).await.expect(204);
    let step1 = login(&lena, &lena_p.email, &lena_p.password).await;
    assert_eq!(
        step1.expect(200)["status"],
        "mfa_required",
        "{}",
        step1.text
    );
    assert!(
        step1.body["methods"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("passkey"))),
        "{}",
        step1.text
    );
    let start = lena.post("/auth/login/mfa/passkey/options", None).await;
    let start = start.expect(200).clone();
    let done = lena
        .post(
            "/auth/login/mfa/passkey",
            Some(json!({
                "challenge_id": start["challenge_id"],
                "credential": laptop.sign(&start["public_key"], &origin),
            })),
        )
        .await;
    let body = done.expect(200).clone();
    assert_eq!(body["user"]["email"], lena_p.email.as_str(), "{body}");
    assert_eq!(body["device_remembered"], false, "{body}");
    assert!(body["csrf_token"].is_string(), "{body}");

    // Renamed.
    lena.put(
        &format!("/me/passkeys/{id}"),
        json!({"name": "Arbeitslaptop"}),
    )
    .await
    .expect(204);
    assert_eq!(passkeys(&lena).await[0]["name"], "Arbeitslaptop");

    // Removing needs the step-up: password and the passkey again. The application Lena signs
    // in to requires a second factor, so her last one stays.
    let presence = lena.post("/me/passkeys/presence-options", None).await;
    let presence = presence.expect(200).clone();
    lena.post(
        "/auth/reauthenticate",
        Some(json!({
            "password": lena_p.password,
            "factor": {
                "method": "passkey",
                "challenge_id": presence["challenge_id"],
                "credential": laptop.sign(&presence["public_key"], &origin),
            },
        })),
    )
    .await
    .expect(200);
    let before = passkeys(&lena).await;
    lena.delete(&format!("/me/passkeys/{id}"))
        .await
        .expect_error(409, "last_factor");
    assert_eq!(passkeys(&lena).await, before, "nothing changed");
    // With a second passkey (the phone), the laptop's can go; it is mailed.
    let mut phone = Authenticator::new();
    add_passkey(&lena, &mut phone, &origin, "Telefon").await;
    lena.delete(&format!("/me/passkeys/{id}")).await.expect(204);
    smtp.expect(&lena_p.email, "Passkey entfernt").await;
    let left = passkeys(&lena).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["name"], "Telefon");
    // The removed passkey signs no one in; the phone does.
    let (challenge, options) = sign_in_options(&other).await;
    let r = other
        .post(
            "/auth/passkey",
            Some(json!({"challenge_id": challenge, "credential": laptop.sign(&options, &origin)})),
        )
        .await;
    r.expect_error(400, "passkey_refused");
    assert_eq!(
        r.body["error"]["details"]["reason"], "unknown_credential",
        "{}",
        r.text
    );
    let (challenge, options) = sign_in_options(&other).await;
    other
        .post(
            "/auth/passkey",
            Some(json!({"challenge_id": challenge, "credential": phone.sign(&options, &origin)})),
        )
        .await
        .expect(200);

    // Counted: three passkey sign-ins; five refused (the same answer again, the replay, the
    // other origin, the challenge answered twice, the removed passkey). The second step with
    // a passkey is a `success` of the password login.
    let metrics = scrape(&server).await;
    let logins = |outcome: &str| {
        sample(
            &metrics,
            &format!("portal_logins_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(logins("passkey_success"), Some(3.0), "{metrics}");
    assert_eq!(logins("passkey_refused"), Some(5.0), "{metrics}");
    assert_eq!(logins("second_factor_required"), Some(1.0), "{metrics}");
    assert_eq!(logins("second_factor_failed"), Some(0.0), "{metrics}");
    assert_eq!(logins("throttled"), Some(0.0), "{metrics}");

    server.stop().await;
    smtp.stop().await;
    db.finish().await;
}
