//! The OpenID Connect provider's rules on the in-memory store: the code flow with PKCE, single
//! use codes and refresh tokens (a second use revokes what the first gave), tokens bound to
//! live state (a lock ends them at once and queues back-channel logouts in the same commit),
//! the client's permission, and RS256 only.

use crate::support::*;
use chrono::TimeDelta;
use portal_core::Actor;
use portal_core::audit::AuditCategory;
use portal_core::oidc::jose;
use portal_core::outbox::Payload;
use portal_core::permission::PermissionSet;
use portal_core::secret::SecretString;
use portal_core::service::{
    AuthorizeOutcome, AuthorizeRefusal, AuthorizeRequest, ClientAuth, ClientWithSecret,
    IssuedSession, NewClient, OidcAdminError, TokenError, TokenRequest, TokenResponse, pkce_s256,
};
use serde_json::Value;

const N: &str = "100000001";
const CB: &str = "https://app.example/cb";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";

async fn client(w: &World, op: &Actor, change: impl FnOnce(&mut NewClient)) -> ClientWithSecret {
    let mut new = NewClient {
        name: "Support-App".into(),
        redirect_uris: vec![CB.into()],
        backchannel_logout_uri: Some("https://app.example/bcl".into()),
        first_party: true,
        ..NewClient::default()
    };
    change(&mut new);
    w.portal.create_client(op, new).await.unwrap()
}

fn request(c: &ClientWithSecret, scope: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        client_id: Some(c.client.id.clone()),
        redirect_uri: Some(CB.into()),
        response_type: Some("code".into()),
        scope: Some(scope.into()),
        state: Some("st-1".into()),
        nonce: Some("n-1".into()),
        code_challenge: Some(pkce_s256(VERIFIER)),
        code_challenge_method: Some("S256".into()),
        ..AuthorizeRequest::default()
    }
}

fn auth(c: &ClientWithSecret) -> ClientAuth {
    ClientAuth {
        client_id: Some(c.client.id.clone()),
        secret: c.secret.clone(),
    }
}

async fn code_for(w: &World, c: &ClientWithSecret, session: &IssuedSession, scope: &str) -> String {
    let checked = w.portal.check_authorize(&request(c, scope)).await.unwrap();
    let p = w.principal(session).await;
    match w
        .portal
        .authorize(Some(&p), &checked, None, false)
        .await
        .unwrap()
    {
        AuthorizeOutcome::Code { code, state, .. } => {
            assert_eq!(state.as_deref(), Some("st-1"));
            code.expose().to_owned()
        }
        other => panic!("no code: {other:?}"),
    }
}

fn redeem(code: &str) -> TokenRequest {
    TokenRequest {
        grant_type: Some("authorization_code".into()),
        code: Some(code.into()),
        redirect_uri: Some(CB.into()),
        code_verifier: Some(VERIFIER.into()),
        ..TokenRequest::default()
    }
}

fn refresh(token: &SecretString) -> TokenRequest {
    TokenRequest {
        grant_type: Some("refresh_token".into()),
        refresh_token: Some(token.expose().into()),
        ..TokenRequest::default()
    }
}

struct Setup {
    customer: portal_core::ids::CustomerId,
    w: World,
    op: Actor,
    app: ClientWithSecret,
    session: IssuedSession,
}

async fn setup() -> Setup {
    let w = World::new();
    let customer = w.customer(N).await.id();
    let op = w.operator("op@vendor.example").await;
    w.member("anna@example.com", N).await;
    let session = w.login("anna@example.com").await;
    let app = client(&w, &op, |_| {}).await;
    Setup {
        customer,
        w,
        op,
        app,
        session,
    }
}

async fn signed_in(s: &Setup) -> TokenResponse {
    let code = code_for(
        &s.w,
        &s.app,
        &s.session,
        "openid profile email portal offline_access",
    )
    .await;
    s.w.portal
        .token(&auth(&s.app), &redeem(&code))
        .await
        .unwrap()
}

fn categories(s: &Setup, user: portal_core::ids::UserId) -> Vec<AuditCategory> {
    let mut all = s.w.categories_about(None, user);
    all.extend(s.w.categories_about(Some(s.customer), user));
    all
}

async fn active(s: &Setup, token: &str) -> bool {
    s.w.portal.introspect(&auth(&s.app), token).await.unwrap()["active"] == Value::Bool(true)
}

#[tokio::test]
async fn the_code_flow_gives_a_verifiable_id_token_with_the_portal_claims() {
    let s = setup().await;
    let t = signed_in(&s).await;
    let keys = s.w.portal.jwks().await.unwrap();
    let claims: Value = jose::verify(
        t.id_token.as_deref().unwrap(),
        &keys,
        &s.w.portal.config().oidc_issuer,
        Some(s.w.now().timestamp()),
    )
    .unwrap();
    let anna = s.w.user_id("anna@example.com").await;
    assert_eq!(claims["sub"], anna.to_string());
    assert_eq!(claims["aud"], s.app.client.id);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["email"], "anna@example.com");
    assert_eq!(claims["customer_number"], number(N).printed());
    assert_eq!(claims["role"], "employee");
    assert_eq!(
        claims["permissions"],
        serde_json::json!(["support_requests"])
    );
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["sid"], s.session.session_id.to_string());
    assert!(
        t.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    let info =
        s.w.portal
            .userinfo(t.access_token.expose())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(info["sub"], anna.to_string());
    assert!(active(&s, t.access_token.expose()).await);
    let cats = categories(&s, anna);
    assert!(cats.contains(&AuditCategory::OidcTokensIssued), "{cats:?}");
}

#[tokio::test]
async fn a_code_used_twice_is_refused_and_revokes_what_the_first_use_gave() {
    let s = setup().await;
    let code = code_for(&s.w, &s.app, &s.session, "openid offline_access").await;
    let first =
        s.w.portal
            .token(&auth(&s.app), &redeem(&code))
            .await
            .unwrap();
    assert!(active(&s, first.access_token.expose()).await);
    let second = s.w.portal.token(&auth(&s.app), &redeem(&code)).await;
    assert!(
        matches!(second, Err(TokenError::InvalidGrant(_))),
        "{second:?}"
    );
    assert!(!active(&s, first.access_token.expose()).await, "revoked");
    let again =
        s.w.portal
            .token(
                &auth(&s.app),
                &refresh(first.refresh_token.as_ref().unwrap()),
            )
            .await;
    assert!(matches!(again, Err(TokenError::InvalidGrant(_))));
}

#[tokio::test]
async fn a_wrong_verifier_an_expired_code_and_another_clients_code_change_nothing() {
    let s = setup().await;
    let other = client(&s.w, &s.op, |c| c.name = "Other".into()).await;
    let code = code_for(&s.w, &s.app, &s.session, "openid").await;
    let mut wrong = redeem(&code);
    wrong.code_verifier = Some(format!("{VERIFIER}x"));
    assert!(matches!(
        s.w.portal.token(&auth(&s.app), &wrong).await,
        Err(TokenError::InvalidGrant(_))
    ));
    let mut missing = redeem(&code);
    missing.code_verifier = None;
    assert!(matches!(
        s.w.portal.token(&auth(&s.app), &missing).await,
        Err(TokenError::InvalidGrant(_))
    ));
    assert!(matches!(
        s.w.portal.token(&auth(&other), &redeem(&code)).await,
        Err(TokenError::InvalidGrant(_))
    ));
    let mut bad_secret = auth(&s.app);
    bad_secret.secret = other.secret.clone();
    assert!(matches!(
        s.w.portal.token(&bad_secret, &redeem(&code)).await,
        Err(TokenError::InvalidClient)
    ));
    // None of that used the code up.
    s.w.portal
        .token(&auth(&s.app), &redeem(&code))
        .await
        .unwrap();

    let late = code_for(&s.w, &s.app, &s.session, "openid").await;
    s.w.advance(TimeDelta::seconds(60));
    assert!(matches!(
        s.w.portal.token(&auth(&s.app), &redeem(&late)).await,
        Err(TokenError::InvalidGrant(_))
    ));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let s = setup().await;
    let t = signed_in(&s).await;
    let r1 = t.refresh_token.unwrap();
    let t2 =
        s.w.portal
            .token(&auth(&s.app), &refresh(&r1))
            .await
            .unwrap();
    let r2 = t2.refresh_token.clone().unwrap();
    assert_ne!(r1.expose(), r2.expose());
    let reuse = s.w.portal.token(&auth(&s.app), &refresh(&r1)).await;
    assert!(matches!(reuse, Err(TokenError::InvalidGrant(_))));
    assert!(
        matches!(
            s.w.portal.token(&auth(&s.app), &refresh(&r2)).await,
            Err(TokenError::InvalidGrant(_))
        ),
        "the whole family is revoked"
    );
    assert!(!active(&s, t2.access_token.expose()).await);
    let anna = s.w.user_id("anna@example.com").await;
    assert!(categories(&s, anna).contains(&AuditCategory::OidcReuseDetected));
}

#[tokio::test]
async fn another_clients_refresh_token_is_refused_and_stays_good() {
    let s = setup().await;
    let other = client(&s.w, &s.op, |c| c.name = "Other".into()).await;
    let t = signed_in(&s).await;
    let r = t.refresh_token.unwrap();
    assert!(matches!(
        s.w.portal.token(&auth(&other), &refresh(&r)).await,
        Err(TokenError::InvalidGrant(_))
    ));
    s.w.portal.token(&auth(&s.app), &refresh(&r)).await.unwrap();
}

#[tokio::test]
async fn a_lock_ends_every_token_at_once_and_queues_the_back_channel_logout_in_its_commit() {
    let s = setup().await;
    let t = signed_in(&s).await;
    let anna = s.w.user_id("anna@example.com").await;
    s.w.portal
        .lock_user(&s.op, &number(N), anna, None)
        .await
        .unwrap();
    assert!(!active(&s, t.access_token.expose()).await);
    assert!(
        s.w.portal
            .userinfo(t.access_token.expose())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        s.w.portal
            .token(&auth(&s.app), &refresh(t.refresh_token.as_ref().unwrap()))
            .await,
        Err(TokenError::InvalidGrant(_))
    ));
    let logouts: Vec<_> =
        s.w.store
            .messages()
            .into_iter()
            .filter_map(|m| match m.payload {
                Payload::BackchannelLogout(l) => Some(l),
                _ => None,
            })
            .collect();
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].uri, "https://app.example/bcl");
    let keys = s.w.portal.jwks().await.unwrap();
    let claims: Value = jose::verify(
        &logouts[0].logout_token,
        &keys,
        &s.w.portal.config().oidc_issuer,
        Some(s.w.now().timestamp()),
    )
    .unwrap();
    assert_eq!(claims["sub"], anna.to_string());
    assert_eq!(claims["sid"], s.session.session_id.to_string());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
}

#[tokio::test]
async fn a_permission_change_shows_in_the_next_introspection() {
    let s = setup().await;
    let t = signed_in(&s).await;
    let anna = s.w.user_id("anna@example.com").await;
    let perms: PermissionSet = [key("support_requests"), key("documents")]
        .into_iter()
        .collect();
    s.w.portal
        .set_permissions(&s.op, &number(N), anna, &perms)
        .await
        .unwrap();
    let v =
        s.w.portal
            .introspect(&auth(&s.app), t.access_token.expose())
            .await
            .unwrap();
    let got: Vec<&str> = v["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(got.contains(&"documents"), "{got:?}");
}

#[tokio::test]
async fn a_user_without_the_clients_permission_gets_no_code_and_the_refusal_is_audited() {
    let s = setup().await;
    let app = client(&s.w, &s.op, |c| {
        c.required_permission = Some("documents".into())
    })
    .await;
    let checked =
        s.w.portal
            .check_authorize(&request(&app, "openid"))
            .await
            .unwrap();
    let p = s.w.principal(&s.session).await;
    let out =
        s.w.portal
            .authorize(Some(&p), &checked, None, false)
            .await
            .unwrap();
    assert!(
        matches!(out, AuthorizeOutcome::NoPermission { .. }),
        "{out:?}"
    );
    let anna = s.w.user_id("anna@example.com").await;
    let cats = categories(&s, anna);
    assert!(cats.contains(&AuditCategory::OidcCodeRefused));
    assert!(!cats.contains(&AuditCategory::OidcCodeIssued));
}

#[tokio::test]
async fn unknown_clients_and_unregistered_redirect_uris_are_pages_not_redirects() {
    let s = setup().await;
    let mut r = request(&s.app, "openid");
    r.client_id = Some("nope".into());
    assert!(matches!(
        s.w.portal.check_authorize(&r).await,
        Err(AuthorizeRefusal::Page(_))
    ));
    let mut r = request(&s.app, "openid");
    r.redirect_uri = Some("https://evil.example/cb".into());
    assert!(matches!(
        s.w.portal.check_authorize(&r).await,
        Err(AuthorizeRefusal::Page(_))
    ));
    let mut r = request(&s.app, "openid");
    r.code_challenge_method = Some("plain".into());
    assert!(matches!(
        s.w.portal.check_authorize(&r).await,
        Err(AuthorizeRefusal::Redirect(_))
    ));
    let public = client(&s.w, &s.op, |c| c.public = true).await;
    assert!(public.secret.is_none());
    let mut r = request(&public, "openid");
    r.code_challenge = None;
    assert!(matches!(
        s.w.portal.check_authorize(&r).await,
        Err(AuthorizeRefusal::Redirect(e)) if e.error == "invalid_request"
    ));
}

#[tokio::test]
async fn only_operators_register_clients() {
    let s = setup().await;
    let anna = s.w.login("anna@example.com").await;
    let actor = s.w.principal(&anna).await.actor();
    let r =
        s.w.portal
            .create_client(
                &actor,
                NewClient {
                    name: "x".into(),
                    redirect_uris: vec![CB.into()],
                    ..NewClient::default()
                },
            )
            .await;
    assert!(matches!(r, Err(OidcAdminError::Forbidden)));
}

#[tokio::test]
async fn logout_refuses_an_unsigned_id_token_hint_and_ends_nothing() {
    use base64::Engine;
    let s = setup().await;
    let t = signed_in(&s).await;
    let id = t.id_token.unwrap();
    let body = id.split('.').nth(1).unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let forged = format!("{header}.{body}.");
    let r =
        s.w.portal
            .end_session(
                Some(s.session.token.expose()),
                Some(&forged),
                None,
                Some(CB),
                None,
            )
            .await;
    assert!(matches!(r, Err(TokenError::InvalidRequest(_))));
    assert!(
        active(&s, t.access_token.expose()).await,
        "session still alive"
    );
    // With the real hint the session ends and its tokens with it.
    s.w.portal
        .end_session(Some(s.session.token.expose()), Some(&id), None, None, None)
        .await
        .unwrap();
    assert!(!active(&s, t.access_token.expose()).await);
}

#[tokio::test]
async fn key_rotation_keeps_the_old_key_published() {
    let s = setup().await;
    let t = signed_in(&s).await;
    s.w.portal.rotate_signing_key(&s.op).await.unwrap();
    let keys = s.w.portal.jwks().await.unwrap();
    assert_eq!(keys.keys.len(), 2);
    let _: Value = jose::verify(
        t.id_token.as_deref().unwrap(),
        &keys,
        &s.w.portal.config().oidc_issuer,
        Some(s.w.now().timestamp()),
    )
    .unwrap();
}

#[tokio::test]
async fn a_client_name_with_direction_controls_or_invisible_characters_is_refused() {
    let s = setup().await;
    let before = s.w.portal.clients(&s.op).await.unwrap();
    for name in [
        "Belege\u{202E}gnulhaZ",
        "\u{2066}Belege\u{2069}",
        "\u{200B}",
        "Be\u{200B}lege",
        "Belege\u{2060}",
        "\u{FEFF}Belege",
        "Belege\u{0007}",
        "Bel\u{001B}[31mege",
    ] {
        let r =
            s.w.portal
                .create_client(
                    &s.op,
                    NewClient {
                        name: name.into(),
                        redirect_uris: vec![CB.into()],
                        ..NewClient::default()
                    },
                )
                .await;
        assert!(
            matches!(r, Err(OidcAdminError::Invalid { field: "name", .. })),
            "{name:?}: {r:?}"
        );
        // A change to such a name is refused and changes nothing either.
        let mut changes = portal_core::service::ClientChanges::of(&s.app.client);
        changes.name = name.into();
        let r =
            s.w.portal
                .update_client(&s.op, &s.app.client.id, &changes)
                .await;
        assert!(
            matches!(r, Err(OidcAdminError::Invalid { field: "name", .. })),
            "{name:?}: {r:?}"
        );
    }
    assert_eq!(s.w.portal.clients(&s.op).await.unwrap(), before);
    // The zero-width non-joiner and joiner stay allowed, as in person names.
    let ok = client(&s.w, &s.op, |c| c.name = "می\u{200C}خواهم".into()).await;
    assert_eq!(ok.client.name, "می\u{200C}خواهم");
}
