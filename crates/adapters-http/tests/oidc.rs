//! The OpenID Connect provider at the HTTP level: every refusal the issue lists, answered with
//! the spec's error and changing nothing (the code or token refused stays good for its rightful
//! use), the authorization request's options (`prompt`, `max_age`, `login_hint`, RFC 9207 `iss`),
//! a client that requires a second factor, RFC 9068 access tokens, tokens bound to live state
//! (lock, permission change, RP-initiated logout), the signing keys' schedule — and the sign-in
//! through the portal's login form in a real Chromium, which holds the redirect chain back to the
//! application to the login page's `form-action`.

use crate::support::oidc::*;
use crate::support::{NEW_PASSWORD, PASSWORD, TestApp, keys, number};
use crate::web_browser::{TempDir, browser, chromedriver, click, fill, wait};
use adapters_http::{CookieKey, HttpConfig, RateLimits};
use axum::http::header;
use chrono::TimeDelta;
use portal_core::Actor;
use portal_core::ids::UserId;
use portal_core::oidc::AccessTokenFormat;
use portal_core::outbox::Payload;
use portal_core::service::{ClientWithSecret, NewClient};
use serde_json::{Value, json};
use std::net::SocketAddr;

const N: &str = "100000001";

/// A customer with an administrator and the employee Anna (permission `documents`), signed in
/// in her browser; an operator; one registered application.
struct World {
    t: TestApp,
    op: Actor,
    admin: Actor,
    app: ClientWithSecret,
    anna: crate::support::Client,
    anna_id: UserId,
}

async fn world_with(t: TestApp, change: impl FnOnce(&mut NewClient)) -> World {
    let op = t.operator("op@example.com").await;
    t.customer(N).await;
    let admin = t.admin("a@example.com", N, &op).await;
    t.invited(&admin, N, "anna@example.com", &["documents"])
        .await;
    let app = t.oidc_client(&op, change).await;
    let anna = t.login("anna@example.com").await;
    let anna_id = t.user_id("anna@example.com").await;
    World {
        t,
        op,
        admin,
        app,
        anna,
        anna_id,
    }
}

async fn world(change: impl FnOnce(&mut NewClient)) -> World {
    world_with(TestApp::new(), change).await
}

/// The issuer the provider names.
fn issuer(w: &World) -> String {
    w.t.portal
        .config()
        .oidc_issuer
        .trim_end_matches('/')
        .to_owned()
}

#[track_caller]
fn assert_invalid_grant(r: &crate::support::Reply) {
    assert_eq!(oauth_error(r), (400, "invalid_grant"), "{}", r.text);
}

#[tokio::test]
async fn an_unknown_client_and_an_unregistered_redirect_uri_get_a_page_never_a_redirect() {
    let w = world(|_| {}).await;
    for changes in [
        vec![("client_id", "no-such-client")],
        vec![("client_id", "")],
        vec![("redirect_uri", "https://evil.example/cb")],
        vec![("redirect_uri", "https://app.example/cb/more")],
        vec![("redirect_uri", "https://app.example/cb?x=1")],
        vec![("redirect_uri", "")],
    ] {
        let r = authorize(&w.anna, &w.app, &changes).await;
        assert_eq!(r.status.as_u16(), 400, "{changes:?}: {}", r.text);
        assert!(r.headers.get(header::LOCATION).is_none(), "{changes:?}");
        assert!(
            r.text.contains("nicht registriert") || r.text.contains("nicht (mehr) registriert"),
            "{changes:?}: {}",
            r.text
        );
    }
    // The token endpoint: an unknown client is `invalid_client` (401 with a challenge).
    let r =
        w.t.oidc_post(
            "/oidc/token",
            Auth::Header(&format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "no-such-client:whatever-secret-123456"
                )
            )),
            &redeem_fields("x"),
        )
        .await;
    assert_eq!(oauth_error(&r), (401, "invalid_client"), "{}", r.text);
    assert!(r.headers.get(header::WWW_AUTHENTICATE).is_some());
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_invalid_client_and_the_code_stays_good() {
    let w = world(|_| {}).await;
    let code = code(&w.anna, &w.app, &[]).await;
    let mut wrong = w.app.clone();
    wrong.secret = Some(portal_core::secret::SecretString::new(
        "a-wrong-secret-of-the-right-length-000000",
    ));
    let r = w.t.token(&wrong, &redeem_fields(&code)).await;
    assert_eq!(oauth_error(&r), (401, "invalid_client"), "{}", r.text);
    // No secret at all (client_id in the form only).
    let mut fields = redeem_fields(&code);
    fields.push(("client_id", &w.app.client.id));
    let r = w.t.oidc_post("/oidc/token", Auth::None, &fields).await;
    assert_eq!(oauth_error(&r), (401, "invalid_client"), "{}", r.text);
    // Two methods at once.
    let secret = w.app.secret.as_ref().unwrap().expose().to_owned();
    let mut fields = redeem_fields(&code);
    fields.push(("client_secret", &secret));
    let r =
        w.t.oidc_post("/oidc/token", Auth::Basic(&w.app), &fields)
            .await;
    assert_eq!(oauth_error(&r), (400, "invalid_request"), "{}", r.text);
    // Introspection and revocation refuse a wrong secret too.
    let r =
        w.t.oidc_post("/oidc/introspect", Auth::Basic(&wrong), &[("token", &code)])
            .await;
    assert_eq!(oauth_error(&r), (401, "invalid_client"));
    let r =
        w.t.oidc_post("/oidc/revoke", Auth::Basic(&wrong), &[("token", &code)])
            .await;
    assert_eq!(oauth_error(&r), (401, "invalid_client"));
    // Nothing changed: the code is still good.
    w.t.redeem(&w.app, &code).await.ok(200);
}

#[tokio::test]
async fn a_missing_or_wrong_pkce_verifier_is_invalid_grant_and_the_code_stays_good() {
    let w = world(|_| {}).await;
    let code = code(&w.anna, &w.app, &[]).await;
    let without: Vec<_> = redeem_fields(&code)
        .into_iter()
        .filter(|(k, _)| *k != "code_verifier")
        .collect();
    assert_invalid_grant(&w.t.token(&w.app, &without).await);
    let mut wrong = without.clone();
    wrong.push((
        "code_verifier",
        "another-verifier-of-at-least-forty-three-characters-xyz",
    ));
    assert_invalid_grant(&w.t.token(&w.app, &wrong).await);
    // A different redirect URI at the token endpoint is refused as well.
    let mut other_uri: Vec<_> = redeem_fields(&code)
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    other_uri.push(("redirect_uri", "https://app.example/other"));
    assert_invalid_grant(&w.t.token(&w.app, &other_uri).await);
    w.t.redeem(&w.app, &code).await.ok(200);

    // A public client must send a challenge, and only S256.
    let public =
        w.t.oidc_client(&w.op, |c| {
            c.public = true;
            c.name = "Mobil".into();
        })
        .await;
    for changes in [
        vec![("code_challenge", "")],
        vec![("code_challenge_method", "plain")],
    ] {
        let r = authorize(&w.anna, &public, &changes).await;
        let q = to_app(&r);
        assert_eq!(q["error"], "invalid_request", "{changes:?}");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], issuer(&w));
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn a_code_used_twice_is_refused_and_revokes_what_the_first_use_gave() {
    let w = world(|_| {}).await;
    let code = code(&w.anna, &w.app, &[]).await;
    let first = Tokens::of(w.t.redeem(&w.app, &code).await.ok(200));
    assert!(w.t.active(&w.app, &first.access).await);
    assert_invalid_grant(&w.t.redeem(&w.app, &code).await);
    assert!(!w.t.active(&w.app, &first.access).await);
    assert_eq!(w.t.userinfo(&first.access).await.status.as_u16(), 401);
    assert_invalid_grant(&w.t.refresh(&w.app, first.refresh()).await);
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let w = world(|_| {}).await;
    let code = code(&w.anna, &w.app, &[]).await;
    w.t.advance(TimeDelta::seconds(61));
    assert_invalid_grant(&w.t.redeem(&w.app, &code).await);
}

#[tokio::test]
async fn another_clients_code_and_refresh_token_are_refused_and_stay_good() {
    let w = world(|_| {}).await;
    let other = w.t.oidc_client(&w.op, |c| c.name = "Andere".into()).await;
    let code = code(&w.anna, &w.app, &[]).await;
    assert_invalid_grant(&w.t.redeem(&other, &code).await);
    let tokens = Tokens::of(w.t.redeem(&w.app, &code).await.ok(200));
    assert_invalid_grant(&w.t.refresh(&other, tokens.refresh()).await);
    // Another client learns nothing from introspecting it, and cannot revoke it.
    assert_eq!(
        w.t.introspect(&other, &tokens.access).await,
        json!({"active": false})
    );
    w.t.oidc_post(
        "/oidc/revoke",
        Auth::Basic(&other),
        &[("token", tokens.refresh())],
    )
    .await
    .ok(200);
    assert!(w.t.active(&w.app, &tokens.access).await);
    w.t.refresh(&w.app, tokens.refresh()).await.ok(200);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let w = world(|_| {}).await;
    let first = w.t.sign_in(&w.anna, &w.app).await;
    let second = Tokens::of(w.t.refresh(&w.app, first.refresh()).await.ok(200));
    assert_ne!(second.refresh(), first.refresh(), "rotated");
    assert!(w.t.active(&w.app, &second.access).await);
    assert_invalid_grant(&w.t.refresh(&w.app, first.refresh()).await);
    assert!(!w.t.active(&w.app, &second.access).await);
    assert!(!w.t.active(&w.app, &first.access).await);
    assert_invalid_grant(&w.t.refresh(&w.app, second.refresh()).await);
}

#[tokio::test]
async fn jwt_access_tokens_follow_rfc_9068_live_five_minutes_and_forgeries_are_refused() {
    let w = world(|c| c.access_tokens = AccessTokenFormat::Jwt).await;
    let tokens = w.t.sign_in(&w.anna, &w.app).await;
    let (header, claims) = jwt_parts(&tokens.access);
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(claims["iss"], issuer(&w));
    assert_eq!(claims["sub"], w.anna_id.to_string());
    assert_eq!(claims["aud"], w.app.client.id.as_str());
    assert_eq!(claims["client_id"], w.app.client.id.as_str());
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300,
        "five minutes: {claims}"
    );
    assert_eq!(tokens.body["expires_in"], 300);
    // The signature verifies with the published key (what an application does locally).
    let jwks = w.t.jwks().await;
    let kid = header["kid"].as_str().unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&w.app.client.id]);
    validation.set_issuer(&[issuer(&w)]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        &tokens.access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("verifies with the JWKS");
    w.t.userinfo(&tokens.access).await.ok(200);

    // alg=none, and HS256 keyed with the public key's modulus: refused at userinfo and
    // introspection.
    let none = unsigned(
        &tokens.access,
        &json!({"alg": "none", "kid": kid, "typ": "at+jwt"}),
    );
    let n = jwk_n(&jwks, kid);
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.to_owned());
    hs_header.typ = Some("at+jwt".into());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    for forged in [&none, &hs] {
        let r = w.t.userinfo(forged).await;
        assert_eq!(r.status.as_u16(), 401, "{}", r.text);
        assert!(
            r.headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        assert!(!w.t.active(&w.app, forged).await);
    }
    // An alg=none ID token as the logout hint ends nothing.
    let none_hint = unsigned(&tokens.id_token, &json!({"alg": "none", "kid": kid}));
    let r = w
        .anna
        .get(&format!(
            "/oidc/logout?id_token_hint={none_hint}&post_logout_redirect_uri={AFTER_LOGOUT}"
        ))
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    w.anna.get("/api/v1/me").await.ok(200);
    assert!(w.t.active(&w.app, &tokens.access).await);

    // The provider checks live state on every call; the token itself ends after five minutes.
    w.t.advance(TimeDelta::seconds(301));
    assert_eq!(w.t.userinfo(&tokens.access).await.status.as_u16(), 401);
    assert!(!w.t.active(&w.app, &tokens.access).await);
}

/// The `n` of the published key `kid`.
fn jwk_n(jwks: &Value, kid: &str) -> String {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap()["n"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_user_without_the_clients_permission_gets_a_page_with_the_contact_link_not_a_code() {
    let w = world(|c| c.required_permission = Some("licenses".into())).await;
    let r = authorize(&w.anna, &w.app, &[]).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    assert!(r.headers.get(header::LOCATION).is_none());
    assert!(
        r.text.contains(
            "Sie haben keine Berechtigung für Belege, wenden Sie sich an Ihren Administrator"
        ),
        "{}",
        r.text
    );
    assert!(r.text.contains("href=\"/contact-admin"), "{}", r.text);
    let r = authorize(&w.anna, &w.app, &[("lang", "en")]).await;
    assert_eq!(r.status.as_u16(), 403);
    assert!(
        r.text
            .contains("You have no permission for Belege; please contact your administrator."),
        "{}",
        r.text
    );
    // prompt=none: access_denied back at the application, still no code.
    let q = to_app(&authorize(&w.anna, &w.app, &[("prompt", "none")]).await);
    assert_eq!(q["error"], "access_denied");
    assert!(!q.contains_key("code"));
    // Granted the permission, the same request gives a code.
    w.t.portal
        .set_permissions(
            &w.admin,
            &number(N),
            w.anna_id,
            &keys(&["documents", "licenses"]),
        )
        .await
        .unwrap();
    code(&w.anna, &w.app, &[]).await;
}

#[tokio::test]
async fn a_locked_user_loses_every_token_at_once_and_gets_no_new_code() {
    let w = world(|_| {}).await;
    let tokens = w.t.sign_in(&w.anna, &w.app).await;
    w.t.portal
        .lock_user(&w.admin, &number(N), w.anna_id, None)
        .await
        .unwrap();
    assert!(!w.t.active(&w.app, &tokens.access).await);
    assert_eq!(w.t.userinfo(&tokens.access).await.status.as_u16(), 401);
    assert_invalid_grant(&w.t.refresh(&w.app, tokens.refresh()).await);
    // The back-channel logout is queued in the lock's commit.
    let logouts: Vec<_> =
        w.t.store
            .messages()
            .into_iter()
            .filter_map(|m| match m.payload {
                Payload::BackchannelLogout(b) => Some(b),
                _ => None,
            })
            .collect();
    assert_eq!(logouts.len(), 1, "{logouts:?}");
    assert_eq!(logouts[0].uri, BCL);
    let (_, claims) = jwt_parts(&logouts[0].logout_token);
    assert_eq!(claims["sub"], w.anna_id.to_string());
    // Her browser is sent to the login (no code), and she cannot log in.
    let r = authorize(&w.anna, &w.app, &[]).await;
    assert_eq!(r.status.as_u16(), 303);
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));
    let r =
        w.t.client()
            .post(
                "/api/v1/auth/login",
                json!({"email": "anna@example.com", "password": PASSWORD}),
            )
            .await;
    assert_ne!(r.status.as_u16(), 200, "{}", r.text);
    let q = to_app(&authorize(&w.anna, &w.app, &[("prompt", "none")]).await);
    assert_eq!(q["error"], "login_required");
}

#[tokio::test]
async fn a_user_waiting_for_activation_gets_access_denied() {
    let w = world(|_| {}).await;
    // Linked by customer number while the customer has an administrator: pending activation.
    w.t.member("paul@example.com", N).await;
    let paul = w.t.login("paul@example.com").await;
    let q = to_app(&authorize(&paul, &w.app, &[]).await);
    assert_eq!(q["error"], "access_denied", "{q:?}");
    assert_eq!(q["iss"], issuer(&w));
    assert_eq!(q["state"], "st-1");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn a_client_requiring_a_second_factor_leads_to_its_setup_or_asks_for_it() {
    let w = world(|c| c.require_second_factor = true).await;
    // Without a second factor: to its setup, and back to this request afterwards.
    let r = authorize(&w.anna, &w.app, &[]).await;
    assert_eq!(r.status.as_u16(), 303, "{}", r.text);
    let to = location(&r);
    assert!(to.starts_with("/mfa?"), "{to}");
    assert!(query(&to)["next"].starts_with("/oidc/authorize?"), "{to}");
    let q = to_app(&authorize(&w.anna, &w.app, &[("prompt", "none")]).await);
    assert_eq!(q["error"], "interaction_required");
    // Set up in this session, signed in with the password only: asked to sign in with it.
    let token = w.anna.cookie("portal-session").expect("a session");
    portal_core::testing::enrol_totp(&w.t.portal, &token).await;
    let r = authorize(&w.anna, &w.app, &[]).await;
    assert_eq!(r.status.as_u16(), 303, "{}", r.text);
    let to = location(&r);
    assert!(to.starts_with("/login?"), "{to}");
    assert_eq!(query(&to)["reauth"], "1", "{to}");
    let q = to_app(&authorize(&w.anna, &w.app, &[("prompt", "none")]).await);
    assert_eq!(q["error"], "login_required");
}

#[tokio::test]
async fn prompt_login_max_age_and_login_hint_send_the_browser_to_the_login_form() {
    let w = world(|_| {}).await;
    // prompt=login with a session: the form again (reauth), then back here with a code.
    w.t.advance(TimeDelta::milliseconds(10));
    let r = authorize(&w.anna, &w.app, &[("prompt", "login")]).await;
    let to = location(&r);
    assert!(to.starts_with("/login?"), "{to}");
    let back = query(&to)["next"].clone();
    assert!(back.contains("login_since="), "{back}");
    let form = w.anna.get(&to).await;
    assert_eq!(form.status.as_u16(), 200, "the form despite the session");
    assert!(form.text.contains("name=\"password\""));
    // Coming back without a fresh login: the form again, no code.
    let again = w.anna.get(&back).await;
    assert_eq!(again.status.as_u16(), 303);
    assert!(location(&again).starts_with("/login?"));
    // After a fresh login the code comes — on a page that moves on by itself (the chain began
    // with the login form's submission).
    let fresh = w.t.login("anna@example.com").await;
    let r = fresh.get(&back).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let refresh = r.headers[header::REFRESH].to_str().unwrap().to_owned();
    let target = refresh.strip_prefix("0; url=").expect("Refresh: 0; url=…");
    assert!(target.starts_with(&format!("{CB}?")), "{refresh}");
    let q = query(target);
    assert!(q.contains_key("code"));
    assert_eq!(q["iss"], issuer(&w));
    assert!(
        r.text
            .contains(&format!("href=\"{}", target.replace('&', "&amp;"))),
        "{}",
        r.text
    );
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
    w.t.redeem(&w.app, &q["code"]).await.ok(200);

    // max_age: a sign-in older than it needs a fresh one; prompt=none then says so.
    w.t.advance(TimeDelta::seconds(120));
    let r = authorize(&fresh, &w.app, &[("max_age", "60")]).await;
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));
    let q = to_app(&authorize(&fresh, &w.app, &[("max_age", "60"), ("prompt", "none")]).await);
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["iss"], issuer(&w));
    assert_eq!(q["state"], "st-1");
    code(&fresh, &w.app, &[("max_age", "3600")]).await;

    // No session: prompt=none is login_required; login_hint fills in the form's address.
    let stranger = w.t.client();
    let q = to_app(&authorize(&stranger, &w.app, &[("prompt", "none")]).await);
    assert_eq!(q["error"], "login_required");
    let r = authorize(&stranger, &w.app, &[("login_hint", "anna@example.com")]).await;
    let to = location(&r);
    assert_eq!(query(&to)["login_hint"], "anna@example.com", "{to}");
    let form = stranger.get(&to).await;
    assert!(
        form.text.contains("value=\"anna@example.com\""),
        "{}",
        form.text
    );
}

#[tokio::test]
async fn a_permission_change_shows_in_introspection_and_userinfo_at_once() {
    let w = world(|c| c.required_permission = Some("documents".into())).await;
    let tokens = w.t.sign_in(&w.anna, &w.app).await;
    let perms = |v: &Value| -> Vec<String> {
        v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        perms(&w.t.introspect(&w.app, &tokens.access).await),
        ["documents"]
    );
    let set = |p: &'static [&'static str]| {
        let w = &w;
        async move {
            w.t.portal
                .set_permissions(&w.admin, &number(N), w.anna_id, &keys(p))
                .await
                .unwrap();
        }
    };
    set(&["documents", "licenses"]).await;
    let now = w.t.introspect(&w.app, &tokens.access).await;
    assert!(perms(&now).contains(&"licenses".to_owned()), "{now}");
    let info = w.t.userinfo(&tokens.access).await;
    assert!(
        perms(info.ok(200)).contains(&"licenses".to_owned()),
        "{}",
        info.text
    );
    // Without the client's permission the tokens are no longer good.
    set(&["licenses"]).await;
    assert!(!w.t.active(&w.app, &tokens.access).await);
    assert_eq!(w.t.userinfo(&tokens.access).await.status.as_u16(), 401);
    assert_invalid_grant(&w.t.refresh(&w.app, tokens.refresh()).await);
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_portal_session_and_returns_only_to_a_registered_uri() {
    let w = world(|_| {}).await;
    let tokens = w.t.sign_in(&w.anna, &w.app).await;
    // An unregistered return address: the session ends, the browser stays in the portal.
    let other = w.anna.fork();
    let r = other
        .get(&format!(
            "/oidc/logout?id_token_hint={}&post_logout_redirect_uri=https://evil.example/bye",
            tokens.id_token
        ))
        .await;
    assert_eq!(r.status.as_u16(), 303);
    assert!(!location(&r).contains("evil.example"), "{}", location(&r));
    assert_eq!(w.anna.get("/api/v1/me").await.status.as_u16(), 401);
    assert!(!w.t.active(&w.app, &tokens.access).await);

    // Signed in again: the registered return address, with state.
    let anna = w.t.login("anna@example.com").await;
    let tokens = w.t.sign_in(&anna, &w.app).await;
    let r = anna
        .get(&format!(
            "/oidc/logout?id_token_hint={}&post_logout_redirect_uri={AFTER_LOGOUT}&state=s-9",
            tokens.id_token
        ))
        .await;
    assert_eq!(r.status.as_u16(), 303);
    assert_eq!(location(&r), format!("{AFTER_LOGOUT}?state=s-9"));
    assert_eq!(anna.get("/api/v1/me").await.status.as_u16(), 401);
    assert!(!w.t.active(&w.app, &tokens.access).await);
    assert_eq!(w.t.userinfo(&tokens.access).await.status.as_u16(), 401);
}

#[tokio::test]
async fn signing_keys_rotate_by_schedule_and_the_old_key_stays_published_while_its_tokens_live() {
    let w = world(|_| {}).await;
    let tokens = w.t.sign_in(&w.anna, &w.app).await;
    let old = jwt_parts(&tokens.id_token).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.t.kids().await, [old.as_str()]);
    w.t.advance(TimeDelta::days(29));
    w.t.portal.housekeeping(&*w.t.store).await.unwrap();
    assert_eq!(w.t.kids().await, [old.as_str()], "not due before 30 days");
    w.t.advance(TimeDelta::days(1));
    w.t.portal.housekeeping(&*w.t.store).await.unwrap();
    let kids = w.t.kids().await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&old), "the old key stays published");
    let new = kids.iter().find(|k| **k != old).unwrap().clone();
    let anna = w.t.login("anna@example.com").await;
    let tokens = w.t.sign_in(&anna, &w.app).await;
    assert_eq!(
        jwt_parts(&tokens.id_token).0["kid"],
        new.as_str(),
        "the new key signs"
    );
    // Still published a day later (a refresh token lives 24 hours); gone after that.
    w.t.advance(TimeDelta::hours(24));
    w.t.portal.housekeeping(&*w.t.store).await.unwrap();
    assert!(w.t.kids().await.contains(&old));
    w.t.advance(TimeDelta::hours(1));
    w.t.portal.housekeeping(&*w.t.store).await.unwrap();
    assert_eq!(w.t.kids().await, [new]);
}

/// The portal served on 127.0.0.1 for a real browser, with an application on another origin
/// whose callback page says where the browser arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_login_form_leads_back_to_the_application_with_a_code() {
    let (_driver, driver_port) = chromedriver().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_base = format!(
        "http://127.0.0.1:{}",
        app_listener.local_addr().unwrap().port()
    );
    let mut config: HttpConfig = HttpConfig::new(&base, CookieKey::generate())
        .unwrap()
        .insecure_development_cookies();
    config.rate_limits = RateLimits::off();
    let t = TestApp::with(config, |pc| pc.oidc_issuer = base.clone());
    let redirect = format!("{app_base}/callback");
    let w = world_with(t, |c| c.redirect_uris = vec![redirect.clone()]).await;
    let router = w.t.app.clone();
    let portal = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let application = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/callback",
            axum::routing::get(|| async {
                axum::response::Html("<p id=\"arrived\">Angekommen</p>")
            }),
        );
        axum::serve(app_listener, app).await.unwrap();
    });

    let profile = TempDir::new("oidc");
    let c = browser(driver_port, profile.path()).await;
    let url = format!(
        "{base}{}",
        authorize_path(&w.app, &[("redirect_uri", &redirect)])
    );
    c.goto(&url).await.unwrap();
    fill(&c, "input[name=email]", "anna@example.com").await;
    fill(&c, "input[name=password]", PASSWORD).await;
    click(&c, "form button[type=submit]").await;
    // Without the page that moves on by itself, Chromium stays on the login page here: the
    // login form's `form-action 'self'` covers every redirect after its submission.
    wait(&c, "#arrived").await;
    let arrived = c.current_url().await.unwrap().to_string();
    assert!(arrived.starts_with(&format!("{redirect}?")), "{arrived}");
    let q = query(&arrived);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], base);
    let r =
        w.t.token(
            &w.app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", &redirect),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    r.ok(200);
    c.close().await.unwrap();
    portal.abort();
    application.abort();
}

#[tokio::test]
async fn a_third_party_client_asks_for_consent_once_and_a_denial_issues_nothing() {
    let w = world(|c| {
        c.first_party = false;
        c.name = "Fremd-App".into();
    })
    .await;
    // The page in German (the default) and English, naming the client and what it reads.
    let de = authorize(&w.anna, &w.app, &[]).await;
    assert!(is_consent_page(&de), "{}", de.text);
    assert!(de.headers.get(header::LOCATION).is_none());
    for needle in [
        "Zugriff erlauben",
        "„Fremd-App“",
        "Ihre E-Mail-Adresse",
        "Ihre Kundennummer",
        "Erlauben",
        "Ablehnen",
    ] {
        assert!(de.text.contains(needle), "{needle}: {}", de.text);
    }
    let en = authorize(&w.anna, &w.app, &[("lang", "en")]).await;
    assert!(is_consent_page(&en), "{}", en.text);
    for needle in [
        "Allow access",
        "“Fremd-App”",
        "Your e-mail address",
        "Access for as long as you stay signed in",
        ">Deny<",
    ] {
        assert!(en.text.contains(needle), "{needle}: {}", en.text);
    }
    // prompt=none without consent: consent_required, no page.
    let q = to_app(&authorize(&w.anna, &w.app, &[("prompt", "none")]).await);
    assert_eq!(q["error"], "consent_required");
    assert!(!q.contains_key("code"));

    // Deny: access_denied to the redirect URI with state and iss; nothing issued or remembered.
    let audit = w.t.store.audit_len();
    let q = to_app(&consent(&w.anna, &w.app, &[], "deny").await);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], issuer(&w));
    assert!(!q.contains_key("code"), "{q:?}");
    assert_eq!(w.t.store.audit_len(), audit);
    assert!(is_consent_page(&authorize(&w.anna, &w.app, &[]).await));

    // Allow: a code that redeems; the consent is recorded.
    let q = to_app(&consent(&w.anna, &w.app, &[], "allow").await);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], issuer(&w));
    let tokens = Tokens::of(w.t.redeem(&w.app, &q["code"]).await.ok(200));
    assert!(w.t.active(&w.app, &tokens.access).await);
    assert!(w.t.store.audit_len() > audit);

    // Remembered: the next request gets its code without the page …
    code(&w.anna, &w.app, &[]).await;
    let q = to_app(&authorize(&w.anna, &w.app, &[("prompt", "none")]).await);
    assert!(q.contains_key("code"), "{q:?}");
    // … unless prompt=consent asks again.
    assert!(is_consent_page(
        &authorize(&w.anna, &w.app, &[("prompt", "consent")]).await
    ));
    // A scope beyond what she agreed to asks again as well.
    let narrower = w.t.oidc_client(&w.op, |c| c.first_party = false).await;
    let r = authorize(&w.anna, &narrower, &[("scope", "openid")]).await;
    assert!(is_consent_page(&r));
    to_app(&consent(&w.anna, &narrower, &[("scope", "openid")], "allow").await);
    code(&w.anna, &narrower, &[("scope", "openid")]).await;
    assert!(is_consent_page(&authorize(&w.anna, &narrower, &[]).await));

    // A signed-out browser that allows is sent to the login, with no code.
    let r = consent(&w.t.client(), &w.app, &[], "allow").await;
    assert_eq!(r.status.as_u16(), 303);
    assert!(location(&r).starts_with("/login"), "{}", location(&r));
}

/// What ends Anna's portal session in [`every_way_of_ending_the_session_ends_the_tokens_and_tells_each_client`].
#[derive(Debug, Clone, Copy)]
enum Ending {
    Delete,
    Logout,
    PasswordReset,
    EndAllSessions,
    EndOtherSessions,
    RpInitiatedLogout,
}

#[tokio::test]
async fn every_way_of_ending_the_session_ends_the_tokens_and_tells_each_client() {
    const BCL2: &str = "https://other.example/backchannel";
    for ending in [
        Ending::Delete,
        Ending::Logout,
        Ending::PasswordReset,
        Ending::EndAllSessions,
        Ending::EndOtherSessions,
        Ending::RpInitiatedLogout,
    ] {
        let w = world(|_| {}).await;
        let other =
            w.t.oidc_client(&w.op, |c| {
                c.name = "Zweite".into();
                c.backchannel_logout_uri = Some(BCL2.into());
            })
            .await;
        // Anna holds tokens of both applications, from the one portal session.
        let first = w.t.sign_in(&w.anna, &w.app).await;
        let second = w.t.sign_in(&w.anna, &other).await;
        assert!(w.t.active(&w.app, &first.access).await);
        assert!(w.t.active(&other, &second.access).await);
        assert!(backchannel_logouts(&w.t.store).is_empty());

        match ending {
            Ending::Delete => {
                w.t.portal
                    .delete_user(&w.admin, &number(N), w.anna_id)
                    .await
                    .unwrap()
            }
            Ending::Logout => {
                w.anna.post_empty("/api/v1/auth/logout").await.ok(204);
            }
            Ending::PasswordReset => {
                let c = w.t.client();
                c.post(
                    "/api/v1/auth/password/forgot",
                    json!({"email": "anna@example.com"}),
                )
                .await
                .ok(202);
                w.t.process_reset_requests().await;
                let token = w.t.secret_for("anna@example.com");
                c.post(
                    "/api/v1/auth/password/reset",
                    json!({"token": token, "password": NEW_PASSWORD,
                           "password_confirmation": NEW_PASSWORD}),
                )
                .await
                .ok(204);
            }
            Ending::EndAllSessions => {
                w.t.portal
                    .end_user_sessions(&w.admin, &number(N), w.anna_id)
                    .await
                    .unwrap()
            }
            Ending::EndOtherSessions => {
                // "Sign out everywhere else" from her second device.
                let laptop = w.t.login("anna@example.com").await;
                laptop.delete("/api/v1/me/sessions").await.ok(204);
                assert_eq!(laptop.get("/api/v1/me").await.status.as_u16(), 200);
            }
            Ending::RpInitiatedLogout => {
                let r = w
                    .anna
                    .get(&format!(
                        "/oidc/logout?id_token_hint={}&post_logout_redirect_uri={AFTER_LOGOUT}",
                        first.id_token
                    ))
                    .await;
                assert_eq!(r.status.as_u16(), 303, "{ending:?}");
            }
        }

        assert_eq!(
            w.anna.get("/api/v1/me").await.status.as_u16(),
            401,
            "{ending:?}"
        );
        for (client, tokens) in [(&w.app, &first), (&other, &second)] {
            let name = &client.client.name;
            assert!(
                !w.t.active(client, &tokens.access).await,
                "{ending:?} {name}"
            );
            assert!(
                !w.t.active(client, tokens.refresh()).await,
                "{ending:?} {name}"
            );
            assert_eq!(
                w.t.userinfo(&tokens.access).await.status.as_u16(),
                401,
                "{ending:?} {name}"
            );
            let r = w.t.refresh(client, tokens.refresh()).await;
            assert_eq!(oauth_error(&r), (400, "invalid_grant"), "{ending:?} {name}");
        }
        // A back-channel logout for each client of the ended session, in the same commit.
        let queued = backchannel_logouts(&w.t.store);
        let other_one = (other.client.id.clone(), BCL2.to_owned());
        assert!(queued.contains(&other_one), "{ending:?}: {queued:?}");
        if !matches!(ending, Ending::RpInitiatedLogout) {
            let mut expected = vec![(w.app.client.id.clone(), BCL.to_owned()), other_one];
            expected.sort();
            assert_eq!(queued, expected, "{ending:?}");
        }
        for m in w.t.store.messages() {
            if let Payload::BackchannelLogout(b) = m.payload {
                let (header, claims) = jwt_parts(&b.logout_token);
                assert_eq!(header["typ"], "logout+jwt", "{ending:?}");
                assert_eq!(claims["sub"], w.anna_id.to_string(), "{ending:?}");
                assert_eq!(claims["aud"], b.client_id, "{ending:?}");
                assert!(
                    claims["events"]
                        .get("http://schemas.openid.net/event/backchannel-logout")
                        .is_some(),
                    "{ending:?}"
                );
                assert!(claims.get("nonce").is_none(), "{ending:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_sign_in_with_totp_gives_acr_mfa_and_amr_pwd_otp_and_the_users_locale() {
    let w = world(|_| {}).await;
    // With the password only: acr pwd, amr [pwd], her language (German).
    let tokens = w.t.sign_in(&w.anna, &w.app).await;
    let (_, claims) = jwt_parts(&tokens.id_token);
    assert_eq!(claims["acr"], "urn:portal:acr:pwd", "{claims}");
    assert_eq!(claims["amr"], json!(["pwd"]), "{claims}");
    assert_eq!(claims["locale"], "de", "{claims}");

    // She sets up TOTP, switches to English and signs in again in a new browser, with it.
    let token = w.anna.cookie("portal-session").expect("a session");
    let secret = portal_core::testing::enrol_totp(&w.t.portal, &token).await;
    w.anna
        .put(
            "/api/v1/me",
            json!({"first_name": "Anna", "last_name": "Muster", "language": "en"}),
        )
        .await
        .ok(200);
    let browser = w.t.client();
    let r = browser
        .post(
            "/api/v1/auth/login",
            json!({"email": "anna@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "mfa_required", "{}", r.text);
    let code = {
        use portal_core::ports::Clock as _;
        portal_core::testing::next_totp_code(&secret, w.t.clock.now())
    };
    let r = browser
        .post(
            "/api/v1/auth/login/mfa",
            json!({"method": "totp", "code": code, "remember_device": false}),
        )
        .await;
    assert_eq!(r.ok(200)["user"]["email"], "anna@example.com", "{}", r.text);

    let tokens = w.t.sign_in(&browser, &w.app).await;
    let (_, claims) = jwt_parts(&tokens.id_token);
    assert_eq!(claims["acr"], "urn:portal:acr:mfa", "{claims}");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(amr.contains(&"pwd") && amr.contains(&"otp"), "{claims}");
    assert_eq!(claims["locale"], "en", "{claims}");
    // Introspection says the same acr; userinfo the same locale.
    assert_eq!(
        w.t.introspect(&w.app, &tokens.access).await["acr"],
        "urn:portal:acr:mfa"
    );
    assert_eq!(w.t.userinfo(&tokens.access).await.ok(200)["locale"], "en");
    // A refresh keeps them.
    let refreshed = Tokens::of(w.t.refresh(&w.app, tokens.refresh()).await.ok(200));
    let (_, claims) = jwt_parts(&refreshed.id_token);
    assert_eq!(claims["acr"], "urn:portal:acr:mfa", "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{claims}");
}
