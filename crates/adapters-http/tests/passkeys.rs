//! Passkeys through the JSON API (issue 16), with a software authenticator (real keys and
//! signatures, `support::passkey`) against the real WebAuthn relying party
//! (`adapters-webauthn`): registering, signing in with a passkey alone, the passkey as the
//! second factor, removing; and every refusal — another user's credential, a replayed answer, a
//! wrong origin or relying party, a challenge answered twice or after it expired — changes
//! nothing.

use crate::support::passkey::Authenticator;
use crate::support::{Client, ORIGIN, PASSWORD, TestApp, number};
use chrono::TimeDelta;
use portal_core::Actor;
use portal_core::customer::SecondFactorPolicy;
use portal_core::ids::UserId;
use portal_core::passkey::Passkey;
use serde_json::{Value, json};

/// Adds a passkey named `name` made by `auth` for the client's user; returns the answer.
async fn add_passkey(c: &Client, auth: &mut Authenticator, name: &str) -> Value {
    let start = c.post_empty("/api/v1/me/passkeys/options").await;
    let start = start.ok(200).clone();
    let credential = auth.register(&start["public_key"], ORIGIN);
    c.post(
        "/api/v1/me/passkeys",
        json!({"challenge_id": start["challenge_id"], "name": name, "credential": credential}),
    )
    .await
    .ok(201)
    .clone()
}

/// Starts a passkey sign-in and has `auth` answer it from `origin`.
async fn sign_in_answer(c: &Client, auth: &mut Authenticator, origin: &str) -> Value {
    let start = c.post_empty("/api/v1/auth/passkey/options").await;
    let start = start.ok(200).clone();
    json!({
        "challenge_id": start["challenge_id"],
        "credential": auth.sign(&start["public_key"], origin),
    })
}

async fn passkeys_of(app: &TestApp, user: UserId) -> Vec<Passkey> {
    app.portal
        .deps()
        .queries
        .user(user)
        .await
        .unwrap()
        .unwrap()
        .mfa()
        .passkeys
        .clone()
}

fn actor_id(a: &Actor) -> UserId {
    match a {
        Actor::User { id, .. } => *id,
        Actor::System => unreachable!(),
    }
}

#[tokio::test]
async fn a_passkey_is_added_signs_in_alone_serves_as_second_factor_and_is_removed() {
    let app = TestApp::new();
    let user = app.registered("pia@example.com").await;
    let c = app.login("pia@example.com").await;
    let mut auth = Authenticator::new();

    let added = add_passkey(&c, &mut auth, "Laptop").await;
    assert_eq!(added["passkeys"][0]["name"], "Laptop");
    assert!(added["recovery_code"].is_string(), "{added}");
    let me = c.get("/api/v1/me").await;
    let me = me.ok(200);
    assert_eq!(me["mfa"]["enabled"], true);
    assert!(
        me["mfa"]["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("passkey")),
        "{me}"
    );
    assert_eq!(me["mfa"]["passkeys"][0]["name"], "Laptop");
    assert!(me["mfa"]["passkeys"][0]["last_used_at"].is_null());
    let mails: Vec<_> = app
        .mails_to("pia@example.com")
        .iter()
        .map(|m| m.intent.key())
        .collect();
    assert_eq!(mails.last(), Some(&"mfa_enabled"));
    let listed = c.get("/api/v1/me/passkeys").await;
    assert_eq!(listed.ok(200).as_array().unwrap().len(), 1);

    // Sign in with the passkey alone: no e-mail address, no password.
    let fresh = app.client();
    let answer = sign_in_answer(&fresh, &mut auth, ORIGIN).await;
    let r = fresh.post("/api/v1/auth/passkey", answer).await;
    assert_eq!(r.ok(200)["status"], "authenticated");
    assert_eq!(r.body["user"]["email"], "pia@example.com");
    let me = fresh.get("/api/v1/me").await;
    assert!(me.ok(200)["mfa"]["passkeys"][0]["last_used_at"].is_string());
    let sessions = app
        .portal
        .deps()
        .queries
        .sessions_of_user(actor_id(&user))
        .await
        .unwrap();
    assert!(
        sessions
            .iter()
            .any(|s| s.methods() == ["hwk".to_owned(), "user".to_owned()]),
        "a passkey sign-in is two factors: {:?}",
        sessions
            .iter()
            .map(|s| s.methods().to_vec())
            .collect::<Vec<_>>()
    );

    // The password now asks for the second factor; the passkey answers it.
    let second = app.client();
    let r = second
        .post(
            "/api/v1/auth/login",
            json!({"email": "pia@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required");
    assert!(
        r.body["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("passkey")),
        "{}",
        r.body
    );
    let start = second
        .post_empty("/api/v1/auth/login/mfa/passkey/options")
        .await;
    let start = start.ok(200).clone();
    assert_eq!(
        start["public_key"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = second
        .post(
            "/api/v1/auth/login/mfa/passkey",
            json!({
                "challenge_id": start["challenge_id"],
                "credential": auth.sign(&start["public_key"], ORIGIN),
            }),
        )
        .await;
    assert_eq!(r.ok(200)["user"]["email"], "pia@example.com");
    assert_eq!(second.get("/api/v1/me").await.status, 200);

    // Renamed, then removed (the login above is fresh: step-up holds).
    let id = passkeys_of(&app, actor_id(&user)).await[0].id;
    second
        .put(
            &format!("/api/v1/me/passkeys/{id}"),
            json!({"name": "Alter Laptop"}),
        )
        .await
        .ok(204);
    assert_eq!(
        passkeys_of(&app, actor_id(&user)).await[0].name.as_str(),
        "Alter Laptop"
    );
    second
        .delete(&format!("/api/v1/me/passkeys/{id}"))
        .await
        .ok(204);
    assert!(passkeys_of(&app, actor_id(&user)).await.is_empty());
    let mails: Vec<_> = app
        .mails_to("pia@example.com")
        .iter()
        .map(|m| m.intent.key())
        .collect();
    assert_eq!(mails.last(), Some(&"passkey_removed"));
    let me = second.get("/api/v1/me").await;
    assert!(
        !me.ok(200)["mfa"]["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("passkey"))
    );
    // Removed means removed: it signs in no more.
    let answer = sign_in_answer(&fresh, &mut auth, ORIGIN).await;
    let r = fresh.post("/api/v1/auth/passkey", answer).await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "unknown_credential");
}

#[tokio::test]
async fn refused_passkey_answers_change_nothing() {
    let app = TestApp::new();
    let pia = actor_id(&app.registered("pia@example.com").await);
    let ole = actor_id(&app.registered("ole@example.com").await);
    let mut pia_key = Authenticator::new();
    let mut ole_key = Authenticator::new();
    add_passkey(&app.login("pia@example.com").await, &mut pia_key, "Pia").await;
    add_passkey(&app.login("ole@example.com").await, &mut ole_key, "Ole").await;
    let before = (passkeys_of(&app, pia).await, passkeys_of(&app, ole).await);
    let c = app.client();

    // A wrong origin, a wrong relying party, no user verification.
    let answer = sign_in_answer(&c, &mut pia_key, "https://evil.example.net").await;
    let r = c.post("/api/v1/auth/passkey", answer).await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "wrong_origin");
    let start = c
        .post_empty("/api/v1/auth/passkey/options")
        .await
        .ok(200)
        .clone();
    // Signed for another relying party: the first 32 bytes of the authenticator data are the
    // hash of the relying-party id.
    let mut credential = pia_key.sign(&start["public_key"], ORIGIN);
    let mut data = base64_decode(
        credential["response"]["authenticatorData"]
            .as_str()
            .unwrap(),
    );
    data[..32].copy_from_slice(&sha256(b"evil.example.net"));
    credential["response"]["authenticatorData"] = json!(base64_url(&data));
    let r = c
        .post(
            "/api/v1/auth/passkey",
            json!({"challenge_id": start["challenge_id"], "credential": credential}),
        )
        .await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "wrong_relying_party");
    let start = c
        .post_empty("/api/v1/auth/passkey/options")
        .await
        .ok(200)
        .clone();
    let credential = pia_key.sign_with(
        &start["public_key"],
        ORIGIN,
        Authenticator::without_user_verification,
    );
    let r = c
        .post(
            "/api/v1/auth/passkey",
            json!({"challenge_id": start["challenge_id"], "credential": credential}),
        )
        .await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "user_not_verified");

    // Ole's credential claiming to be Pia's account (the user handle is not signed).
    let mut answer = sign_in_answer(&c, &mut ole_key, ORIGIN).await;
    answer["credential"]["response"]["userHandle"] = json!(base64_url(pia.as_uuid().as_bytes()));
    let r = c.post("/api/v1/auth/passkey", answer).await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "unknown_credential");

    // A good answer works once; replayed, its challenge is spent.
    let answer = sign_in_answer(&c, &mut pia_key, ORIGIN).await;
    c.post("/api/v1/auth/passkey", answer.clone()).await.ok(200);
    let after_first = passkeys_of(&app, pia).await;
    let other = app.client();
    other
        .post("/api/v1/auth/passkey", answer.clone())
        .await
        .assert(400, "passkey_challenge_invalid");
    assert_eq!(passkeys_of(&app, pia).await, after_first);
    // The same signed answer with a fresh challenge id: the signature is over the old challenge.
    let start = other
        .post_empty("/api/v1/auth/passkey/options")
        .await
        .ok(200)
        .clone();
    let mut replay = answer.clone();
    replay["challenge_id"] = start["challenge_id"].clone();
    let r = other.post("/api/v1/auth/passkey", replay).await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "wrong_challenge");

    // An expired challenge.
    let answer = sign_in_answer(&other, &mut pia_key, ORIGIN).await;
    app.advance(TimeDelta::minutes(5));
    other
        .post("/api/v1/auth/passkey", answer)
        .await
        .assert(400, "passkey_challenge_invalid");
    assert_eq!(passkeys_of(&app, pia).await, after_first);
    assert_eq!(passkeys_of(&app, ole).await, before.1);
    assert_eq!(other.get("/api/v1/me").await.status, 401);

    // As the second factor: Ole's passkey cannot finish Pia's login.
    let second = app.client();
    second
        .post(
            "/api/v1/auth/login",
            json!({"email": "pia@example.com", "password": PASSWORD}),
        )
        .await
        .ok(200);
    let start = second
        .post_empty("/api/v1/auth/login/mfa/passkey/options")
        .await
        .ok(200)
        .clone();
    let credential = ole_key.sign_with(&start["public_key"], ORIGIN, |o| {
        o.allow_credentials.clear()
    });
    let r = second
        .post(
            "/api/v1/auth/login/mfa/passkey",
            json!({"challenge_id": start["challenge_id"], "credential": credential}),
        )
        .await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "unknown_credential");
    assert_eq!(second.get("/api/v1/me").await.status, 401);
    assert_eq!(passkeys_of(&app, pia).await, after_first);
    assert_eq!(passkeys_of(&app, ole).await, before.1);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn registration_answers_are_checked_once_and_names_and_numbers_are_bounded() {
    let app = TestApp::new();
    let pia = actor_id(&app.registered("pia@example.com").await);
    let c = app.login("pia@example.com").await;
    let mut auth = Authenticator::new();

    // A bad name: nothing is registered, the challenge stays for a good one.
    let start = c
        .post_empty("/api/v1/me/passkeys/options")
        .await
        .ok(200)
        .clone();
    let credential = auth.register(&start["public_key"], ORIGIN);
    c.post(
        "/api/v1/me/passkeys",
        json!({"challenge_id": start["challenge_id"], "name": "a\u{202E}b", "credential": credential}),
    )
    .await
    .assert(422, "invalid_passkey_name");
    assert!(passkeys_of(&app, pia).await.is_empty());
    // Made for another origin.
    let start2 = c
        .post_empty("/api/v1/me/passkeys/options")
        .await
        .ok(200)
        .clone();
    let evil = auth.register(&start2["public_key"], "https://evil.example.net");
    let r = c
        .post(
            "/api/v1/me/passkeys",
            json!({"challenge_id": start2["challenge_id"], "name": "X", "credential": evil}),
        )
        .await;
    r.assert(400, "passkey_refused");
    assert_eq!(r.body["error"]["details"]["reason"], "wrong_origin");
    assert!(passkeys_of(&app, pia).await.is_empty());
    // The good answer, then the same answer again.
    let body =
        json!({"challenge_id": start["challenge_id"], "name": "Laptop", "credential": credential});
    c.post("/api/v1/me/passkeys", body.clone()).await.ok(201);
    c.post("/api/v1/me/passkeys", body)
        .await
        .assert(400, "passkey_challenge_invalid");
    assert_eq!(passkeys_of(&app, pia).await.len(), 1);
    // Another user's registration challenge is not this user's.
    let ole = app.registered("ole@example.com").await;
    let _ = ole;
    let oc = app.login("ole@example.com").await;
    let start = c
        .post_empty("/api/v1/me/passkeys/options")
        .await
        .ok(200)
        .clone();
    let credential = Authenticator::new().register(&start["public_key"], ORIGIN);
    oc.post(
        "/api/v1/me/passkeys",
        json!({"challenge_id": start["challenge_id"], "name": "Fremd", "credential": credential}),
    )
    .await
    .assert(400, "passkey_challenge_invalid");

    // At most 20.
    for i in 2..=20 {
        add_passkey(&c, &mut auth, &format!("Schlüssel {i}")).await;
    }
    assert_eq!(passkeys_of(&app, pia).await.len(), 20);
    c.post_empty("/api/v1/me/passkeys/options")
        .await
        .assert(409, "passkey_limit");

    // Removing needs a fresh login.
    app.advance(TimeDelta::minutes(16));
    let id = passkeys_of(&app, pia).await[0].id;
    c.delete(&format!("/api/v1/me/passkeys/{id}"))
        .await
        .assert(403, "reauth_required");
    assert_eq!(passkeys_of(&app, pia).await.len(), 20);
}

#[tokio::test]
async fn the_last_required_factor_stays() {
    let app = TestApp::new();
    app.customer("100000001").await;
    let pia = actor_id(&app.member("pia@example.com", "100000001").await);
    app.portal
        .set_second_factor_policy(
            &Actor::System,
            &number("100000001"),
            SecondFactorPolicy::AllUsers,
        )
        .await
        .unwrap();
    let c = app.login("pia@example.com").await;
    // R22: a user who must have a second factor can set up a passkey as that factor.
    let mut auth = Authenticator::new();
    add_passkey(&c, &mut auth, "Laptop").await;
    let id = passkeys_of(&app, pia).await[0].id;
    c.delete(&format!("/api/v1/me/passkeys/{id}"))
        .await
        .assert(409, "last_factor");
    assert_eq!(passkeys_of(&app, pia).await.len(), 1);
    // With a second one, the first can go.
    add_passkey(&c, &mut auth, "Telefon").await;
    c.delete(&format!("/api/v1/me/passkeys/{id}")).await.ok(204);
    assert_eq!(passkeys_of(&app, pia).await.len(), 1);
}

#[tokio::test]
async fn a_passkey_sign_in_reaches_an_application_as_hwk_and_its_requirement_keeps_the_last_passkey()
 {
    use crate::support::oidc::jwt_parts;
    let app = TestApp::new();
    let op = app.operator("op@example.com").await;
    let strict = app
        .oidc_client(&op, |c| c.require_second_factor = true)
        .await;
    let pia = actor_id(&app.registered("pia@example.com").await);
    let mut auth = Authenticator::new();
    add_passkey(&app.login("pia@example.com").await, &mut auth, "Laptop").await;

    // Signed in with the passkey alone: the application that requires a second factor gets a
    // code at once, and its ID token says how (RFC 8176: a hardware-bound key, user verified).
    let c = app.client();
    let answer = sign_in_answer(&c, &mut auth, ORIGIN).await;
    c.post("/api/v1/auth/passkey", answer).await.ok(200);
    let tokens = app.sign_in(&c, &strict).await;
    let (_, claims) = jwt_parts(&tokens.id_token);
    assert_eq!(claims["amr"], json!(["hwk", "user"]), "{claims}");
    assert_eq!(claims["acr"], "urn:portal:acr:mfa", "{claims}");

    // Pia signs in to that application: her last second factor stays (a session just started
    // counts as the step-up), and nothing changes.
    let id = passkeys_of(&app, pia).await[0].id;
    let before = app.mails_to("pia@example.com").len();
    c.delete(&format!("/api/v1/me/passkeys/{id}"))
        .await
        .assert(409, "last_factor");
    assert_eq!(passkeys_of(&app, pia).await.len(), 1);
    assert_eq!(app.mails_to("pia@example.com").len(), before, "no mail");
    // Once the application is disabled it requires nothing of anyone: the passkey can go.
    app.portal
        .disable_client(&op, &strict.client.id)
        .await
        .unwrap();
    c.delete(&format!("/api/v1/me/passkeys/{id}")).await.ok(204);
    assert!(passkeys_of(&app, pia).await.is_empty());
}

#[tokio::test]
async fn passkey_sign_in_is_throttled_per_credential() {
    let app = TestApp::new();
    let pia = actor_id(&app.registered("pia@example.com").await);
    let mut auth = Authenticator::new();
    add_passkey(&app.login("pia@example.com").await, &mut auth, "Laptop").await;
    let c = app.client();
    let mut throttled = false;
    for _ in 0..20 {
        let answer = sign_in_answer(&c, &mut auth, "https://evil.example.net").await;
        let r = c.post("/api/v1/auth/passkey", answer).await;
        if r.code() == "throttled" {
            r.assert(429, "throttled");
            throttled = true;
            break;
        }
        r.assert(400, "passkey_refused");
    }
    assert!(throttled, "failed answers are throttled");
    // The right answer waits too.
    let before = passkeys_of(&app, pia).await;
    let answer = sign_in_answer(&c, &mut auth, ORIGIN).await;
    c.post("/api/v1/auth/passkey", answer)
        .await
        .assert(429, "throttled");
    assert_eq!(passkeys_of(&app, pia).await, before);
}

#[tokio::test]
async fn passkeys_are_in_the_openapi_document() {
    let app = TestApp::new();
    let paths = &app.spec["paths"];
    for p in [
        "/api/v1/auth/passkey/options",
        "/api/v1/auth/passkey",
        "/api/v1/auth/login/mfa/passkey/options",
        "/api/v1/auth/login/mfa/passkey",
        "/api/v1/me/passkeys",
        "/api/v1/me/passkeys/options",
        "/api/v1/me/passkeys/{id}",
    ] {
        assert!(paths.get(p).is_some(), "{p} is documented");
    }
}
