//! The OpenID Connect provider's side of the router tests: a registered application, its
//! authorization requests, and its calls to the token, introspection, userinfo and revocation
//! endpoints, each a real HTTP request through the router (form bodies, Basic authentication).

use super::{Client, Reply, Req, TestApp};
use axum::http::{Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portal_core::Actor;
use portal_core::service::{ClientWithSecret, NewClient, pkce_s256};
use serde_json::Value;
use std::collections::BTreeMap;

/// The application's registered redirect URI.
pub const CB: &str = "https://app.example/cb";
/// Its back-channel logout URI.
pub const BCL: &str = "https://app.example/backchannel";
/// Where RP-initiated logout may send the browser back to.
pub const AFTER_LOGOUT: &str = "https://app.example/bye";
/// The PKCE verifier every request uses (43 characters and more).
pub const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";
/// Every scope the provider knows.
pub const ALL_SCOPES: &str = "openid profile email portal offline_access";

impl TestApp {
    /// A confidential, first-party application registered by operator `op`; `change` adjusts it.
    pub async fn oidc_client(
        &self,
        op: &Actor,
        change: impl FnOnce(&mut NewClient),
    ) -> ClientWithSecret {
        let mut new = NewClient {
            name: "Belege".into(),
            redirect_uris: vec![CB.into()],
            post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
            backchannel_logout_uri: Some(BCL.into()),
            first_party: true,
            ..NewClient::default()
        };
        change(&mut new);
        self.portal.create_client(op, new).await.unwrap()
    }

    /// `POST path` with a form body, `Authorization: Basic` of `client` unless `auth` says
    /// otherwise; no cookies, no CSRF token (an application's back end calls these).
    pub async fn oidc_post(&self, path: &str, auth: Auth<'_>, fields: &[(&str, &str)]) -> Reply {
        let mut headers = Vec::new();
        match auth {
            Auth::Basic(c) => headers.push((header::AUTHORIZATION.to_string(), basic(c))),
            Auth::Header(h) => headers.push((header::AUTHORIZATION.to_string(), h.to_owned())),
            Auth::None => {}
        }
        self.client()
            .send(Req {
                body: Some((
                    "application/x-www-form-urlencoded".into(),
                    form_body(fields),
                )),
                headers,
                csrf: false,
                cookies: false,
                ..Client::req(Method::POST, path)
            })
            .await
    }

    /// The token endpoint, as `client` (Basic).
    pub async fn token(&self, client: &ClientWithSecret, fields: &[(&str, &str)]) -> Reply {
        self.oidc_post("/oidc/token", Auth::Basic(client), fields)
            .await
    }

    /// Redeems `code` with the right redirect URI and verifier.
    pub async fn redeem(&self, client: &ClientWithSecret, code: &str) -> Reply {
        self.token(client, &redeem_fields(code)).await
    }

    /// A refresh grant.
    pub async fn refresh(&self, client: &ClientWithSecret, refresh_token: &str) -> Reply {
        self.token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Introspection (RFC 7662) as `client`: the answer's JSON.
    pub async fn introspect(&self, client: &ClientWithSecret, token: &str) -> Value {
        let r = self
            .oidc_post("/oidc/introspect", Auth::Basic(client), &[("token", token)])
            .await;
        r.ok(200).clone()
    }

    /// Whether introspection by `client` calls `token` active.
    pub async fn active(&self, client: &ClientWithSecret, token: &str) -> bool {
        self.introspect(client, token).await["active"] == Value::Bool(true)
    }

    /// `GET /oidc/userinfo` with the bearer token.
    pub async fn userinfo(&self, access_token: &str) -> Reply {
        self.client()
            .send(Req {
                headers: vec![(
                    header::AUTHORIZATION.to_string(),
                    format!("Bearer {access_token}"),
                )],
                csrf: false,
                cookies: false,
                ..Client::req(Method::GET, "/oidc/userinfo")
            })
            .await
    }

    /// The published key set.
    pub async fn jwks(&self) -> Value {
        self.client().get("/oidc/jwks").await.ok(200).clone()
    }

    /// The key ids the JWKS lists.
    pub async fn kids(&self) -> Vec<String> {
        self.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The whole code flow for the signed-in `browser`: the code, redeemed.
    pub async fn sign_in(&self, browser: &Client, client: &ClientWithSecret) -> Tokens {
        let code = code(browser, client, &[]).await;
        Tokens::of(self.redeem(client, &code).await.ok(200))
    }
}

/// How a request authenticates its client.
pub enum Auth<'a> {
    /// `client_secret_basic` with the client's id and secret.
    Basic(&'a ClientWithSecret),
    /// This `Authorization` header as it is.
    Header(&'a str),
    /// None.
    None,
}

/// `Basic base64(id:secret)`.
pub fn basic(c: &ClientWithSecret) -> String {
    let secret = c.secret.as_ref().map_or("", |s| s.expose());
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{secret}", c.client.id))
    )
}

/// The fields of an authorization-code grant for `code` (right redirect URI and verifier).
pub fn redeem_fields(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ]
}

/// `/oidc/authorize?…` for `client`: code flow, all scopes, `state=st-1`, `nonce=n-1`, PKCE S256
/// of [`VERIFIER`]; `changes` replace a parameter (an empty value drops it) or add one.
pub fn authorize_path(client: &ClientWithSecret, changes: &[(&str, &str)]) -> String {
    let challenge = pkce_s256(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", client.client.id.as_str()),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", ALL_SCOPES),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for &(k, v) in changes {
        params.retain(|&(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    format!("/oidc/authorize?{}", form_body(&params))
}

/// `GET` [`authorize_path`] in `browser`.
pub async fn authorize(
    browser: &Client,
    client: &ClientWithSecret,
    changes: &[(&str, &str)],
) -> Reply {
    browser.get(&authorize_path(client, changes)).await
}

/// Where a redirect goes.
#[track_caller]
pub fn location(r: &Reply) -> String {
    r.headers
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location ({}): {}", r.status, r.text))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `fields` as an `application/x-www-form-urlencoded` body (or query).
pub fn form_body(fields: &[(&str, &str)]) -> String {
    serde_html_form::to_string(fields).unwrap()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    serde_html_form::from_str(q).unwrap()
}

/// The authorization response (a 303 to [`CB`]): its parameters.
#[track_caller]
pub fn to_app(r: &Reply) -> BTreeMap<String, String> {
    assert_eq!(r.status.as_u16(), 303, "{}", r.text);
    let to = location(r);
    assert!(to.starts_with(&format!("{CB}?")), "{to}");
    query(&to)
}

/// A code for the signed-in `browser`.
pub async fn code(browser: &Client, client: &ClientWithSecret, changes: &[(&str, &str)]) -> String {
    let r = authorize(browser, client, changes).await;
    to_app(&r)
        .remove("code")
        .unwrap_or_else(|| panic!("no code: {}", location(&r)))
}

/// What a token response gave.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub id_token: String,
    pub body: Value,
}

impl Tokens {
    pub fn of(body: &Value) -> Self {
        Self {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().map(str::to_owned),
            id_token: body["id_token"].as_str().unwrap().to_owned(),
            body: body.clone(),
        }
    }

    pub fn refresh(&self) -> &str {
        self.refresh.as_deref().expect("a refresh token")
    }
}

/// The header and claims of a compact JWS, unverified (the tests verify through the endpoints or
/// with the JWKS).
pub fn jwt_parts(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let mut next = || {
        let p = parts.next().expect("a JWS part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    (next(), next())
}

/// `jwt` with its header replaced by `header` and no signature (an `alg=none` forgery).
pub fn unsigned(jwt: &str, header: &Value) -> String {
    let body = jwt.split('.').nth(1).unwrap();
    format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(header.to_string().as_bytes())
    )
}

/// The OAuth error of a JSON error answer.
pub fn oauth_error(r: &Reply) -> (u16, &str) {
    (r.status.as_u16(), r.body["error"].as_str().unwrap_or(""))
}

/// The consent form's answer for the authorization request `changes` (as [`authorize_path`]
/// builds it; the form carries that query back in its hidden `request` field): `decision` is
/// `allow` or `deny`.
pub async fn consent(
    browser: &Client,
    client: &ClientWithSecret,
    changes: &[(&str, &str)],
    decision: &str,
) -> Reply {
    let path = authorize_path(client, changes);
    let request = path.split_once('?').map_or("", |(_, q)| q);
    // The web form's CSRF token travels in its hidden field.
    let token = browser.csrf_token().await;
    browser
        .send(Req {
            body: Some((
                "application/x-www-form-urlencoded".into(),
                form_body(&[
                    ("csrf_token", token.as_str()),
                    ("request", request),
                    ("decision", decision),
                ]),
            )),
            csrf: false,
            ..Client::req(Method::POST, "/oidc/authorize/consent")
        })
        .await
}

/// Whether `r` is the consent page (200, its form and both buttons).
pub fn is_consent_page(r: &Reply) -> bool {
    r.status.as_u16() == 200
        && r.text.contains("/oidc/authorize/consent")
        && r.text.contains("value=\"allow\"")
        && r.text.contains("value=\"deny\"")
}

/// The client ids of the back-channel logouts queued in `store`'s outbox so far, sorted.
pub fn backchannel_logouts(store: &adapters_memory::MemoryStore) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = store
        .messages()
        .into_iter()
        .filter_map(|m| match m.payload {
            portal_core::outbox::Payload::BackchannelLogout(b) => Some((b.client_id, b.uri)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}
