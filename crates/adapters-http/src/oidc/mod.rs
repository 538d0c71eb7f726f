//! The OpenID Connect provider's HTTP side: discovery, JWKS, the authorization endpoint (with
//! the portal's own login pages, consent and "no permission" pages), token, userinfo,
//! introspection (RFC 7662), revocation (RFC 7009) and RP-initiated logout. The rules live in
//! the core ([`portal_core::service::Portal::authorize`] and its neighbours); this module parses
//! requests, authenticates clients from headers, and shapes answers as the specs say.
//!
//! | What | Method + path |
//! |---|---|
//! | Discovery | `GET /.well-known/openid-configuration` |
//! | JWKS | `GET /oidc/jwks` |
//! | Authorization | `GET /oidc/authorize`, consent `POST /oidc/authorize/consent` |
//! | Token | `POST /oidc/token` |
//! | UserInfo | `GET`/`POST /oidc/userinfo` |
//! | Introspection | `POST /oidc/introspect` |
//! | Revocation | `POST /oidc/revoke` |
//! | Logout | `GET /oidc/logout` |

mod pages;

use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portal_core::secret::SecretString;
use portal_core::service::{ClientAuth, TokenError, TokenRequest};
use serde::Deserialize;
use serde_json::json;

/// The provider's routes.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/oidc/authorize", get(pages::authorize))
        // The consent form's address opened by GET (a reload, back, a new tab): the request it
        // answered is gone, so the start page, as for every form address of the web UI.
        .route(
            "/oidc/authorize/consent",
            get(crate::web::back(crate::web::urls::Root)).post(pages::consent),
        )
        .route("/oidc/logout", get(pages::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::form::form_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::error::render_errors,
        ));
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oidc/jwks", get(jwks))
        .route("/oidc/token", post(token))
        .route("/oidc/userinfo", get(userinfo).post(userinfo_post))
        .route("/oidc/introspect", post(introspect))
        .route("/oidc/revoke", post(revoke))
        .merge(pages)
}

/// The issuer: the public URL without a trailing slash.
pub(crate) fn issuer(state: &AppState) -> String {
    state
        .portal()
        .config()
        .oidc_issuer
        .trim_end_matches('/')
        .to_owned()
}

async fn discovery(State(state): State<AppState>) -> Response {
    let iss = issuer(&state);
    let doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oidc/authorize"),
        "token_endpoint": format!("{iss}/oidc/token"),
        "userinfo_endpoint": format!("{iss}/oidc/userinfo"),
        "jwks_uri": format!("{iss}/oidc/jwks"),
        "introspection_endpoint": format!("{iss}/oidc/introspect"),
        "revocation_endpoint": format!("{iss}/oidc/revoke"),
        "end_session_endpoint": format!("{iss}/oidc/logout"),
        "scopes_supported": portal_core::oidc::SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
            "name", "given_name", "family_name", "locale", "email", "email_verified",
            "customer_number", "customer_name", "role", "permissions"
        ],
        "acr_values_supported": [portal_core::oidc::ACR_PASSWORD, portal_core::oidc::ACR_SECOND_FACTOR],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    });
    axum::Json(doc).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    match state.portal().jwks().await {
        Ok(set) => {
            let mut r = axum::Json(set).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        Err(e) => oauth_error(&e),
    }
}

/// An OAuth error answer (RFC 6749 section 5.2): 400, or 401 for `invalid_client`.
fn oauth_error(e: &TokenError) -> Response {
    let status = match e {
        TokenError::InvalidClient => StatusCode::UNAUTHORIZED,
        TokenError::Infra(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    if let TokenError::Infra(inner) = e {
        tracing::error!(target: "portal_http", error = %inner, "oidc endpoint failed");
    }
    let description = match e {
        TokenError::InvalidRequest(d) | TokenError::InvalidGrant(d) => *d,
        TokenError::InvalidClient => "client authentication failed",
        TokenError::UnsupportedGrantType => {
            "grant_type must be authorization_code or refresh_token"
        }
        TokenError::Infra(_) => "internal error",
    };
    let mut r = (
        status,
        axum::Json(json!({"error": e.code(), "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portal\""),
        );
    }
    r
}

/// The form fields the token, introspection and revocation endpoints read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
    access_token: Option<String>,
}

fn parse_form(body: &[u8]) -> Result<TokenForm, TokenError> {
    serde_html_form::from_bytes(body)
        .map_err(|_| TokenError::InvalidRequest("the body must be a URL-encoded form"))
}

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Client authentication: `client_secret_basic` (the Authorization header) or
/// `client_secret_post` (form fields); both at once is refused.
fn client_auth(headers: &HeaderMap, form: &TokenForm) -> Result<ClientAuth, TokenError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if let Some(b) = basic {
        if form.client_secret.is_some() {
            return Err(TokenError::InvalidRequest(
                "use one client authentication method",
            ));
        }
        let raw = STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or(TokenError::InvalidClient)?;
        let (id, secret) = raw.split_once(':').ok_or(TokenError::InvalidClient)?;
        let id = form_decode(id);
        if form.client_id.as_ref().is_some_and(|f| *f != id) {
            return Err(TokenError::InvalidClient);
        }
        return Ok(ClientAuth {
            client_id: Some(id),
            secret: Some(SecretString::new(form_decode(secret))),
        });
    }
    Ok(ClientAuth {
        client_id: form.client_id.clone(),
        secret: form.client_secret.clone().map(SecretString::new),
    })
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let form = parse_form(&body)?;
        let auth = client_auth(&headers, &form)?;
        let req = TokenRequest {
            grant_type: form.grant_type,
            code: form.code,
            redirect_uri: form.redirect_uri,
            code_verifier: form.code_verifier,
            refresh_token: form.refresh_token,
        };
        state.portal().token(&auth, &req).await
    }
    .await;
    match result {
        Ok(t) => {
            let mut body = json!({
                "access_token": t.access_token.expose(),
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            if let Some(r) = &t.refresh_token {
                body["refresh_token"] = json!(r.expose());
            }
            if let Some(id) = &t.id_token {
                body["id_token"] = json!(id);
            }
            let mut r = axum::Json(body).into_response();
            r.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => oauth_error(&e),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
}

async fn userinfo_answer(state: &AppState, token: Option<String>) -> Response {
    let unauthorized = |error: &'static str| {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": error})),
        )
            .into_response();
        let value = if error == "invalid_request" {
            "Bearer realm=\"portal\"".to_owned()
        } else {
            format!("Bearer realm=\"portal\", error=\"{error}\"")
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return unauthorized("invalid_request");
    };
    match state.portal().userinfo(&token).await {
        Ok(Some(claims)) => axum::Json(claims).into_response(),
        Ok(None) => unauthorized("invalid_token"),
        Err(e) => oauth_error(&TokenError::from(e)),
    }
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo_answer(&state, bearer(&headers)).await
}

async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_form = parse_form(&body).ok().and_then(|f| f.access_token);
    userinfo_answer(&state, bearer(&headers).or(from_form)).await
}

/// The form of an introspection or revocation request: its client authentication and `token`.
fn token_call(headers: &HeaderMap, body: &[u8]) -> Result<(ClientAuth, String), TokenError> {
    let form = parse_form(body)?;
    let auth = client_auth(headers, &form)?;
    let token = form
        .token
        .ok_or(TokenError::InvalidRequest("token is missing"))?;
    Ok((auth, token))
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = match token_call(&headers, &body) {
        Ok((auth, token)) => state.portal().introspect(&auth, &token).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => oauth_error(&e),
    }
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = match token_call(&headers, &body) {
        Ok((auth, token)) => state.portal().revoke(&auth, &token).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(&e),
    }
}
