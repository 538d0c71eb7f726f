//! Another application of the vendor — a licence manager — that signs its users in through
//! Portal with OpenID Connect (the `openidconnect` crate) and shows its area "Lizenzen" only to
//! users holding the permission `licenses` ("Meine Lizenzen").
//!
//! Register it once (the secret is shown only then), then start it:
//!
//! ```sh
//! portal clients create --name Lizenzen --redirect-uri http://127.0.0.1:4000/callback \
//!     --backchannel-logout-uri http://127.0.0.1:4000/backchannel-logout --first-party --json
//! PORTAL_ISSUER=http://127.0.0.1:8080 OIDC_CLIENT_ID=… OIDC_CLIENT_SECRET=… \
//!     cargo run --example oidc_app
//! ```
//!
//! Open <http://127.0.0.1:4000/licenses>: without a session it sends you to Portal's login; back
//! with a validated ID token it shows your customer's licences if your permissions (the
//! `permissions` claim) hold `licenses`, and 403 otherwise. When Portal ends your session — a
//! lock, a logout, "end all sessions" — its back-channel logout token ends the session here too.
//! `tests/e2e/oidc.rs` runs this application against the real `portal` binary.
//! `cargo run --example oidc_app -- --check` starts Portal in memory and this application, each on
//! a free port, and starts one sign-in (what `.ci/run` does).
#![allow(dead_code)]

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    JsonWebKey as _, JsonWebKeySetUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

/// The permission this application requires.
pub const PERMISSION: &str = "licenses";
/// The event of a back-channel logout token.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const SESSION_COOKIE: &str = "licenses_session";
const STATE_COOKIE: &str = "licenses_state";

/// Portal's claims beyond the standard ones (scope `portal`, and the session id `sid`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortalClaims {
    /// The customer number of the user's company.
    pub customer_number: Option<String>,
    /// The company's name.
    pub customer_name: Option<String>,
    /// `employee` or `administrator`.
    pub role: Option<String>,
    /// The permission keys the user holds.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// The Portal session this sign-in belongs to (named again by back-channel logout tokens).
    pub sid: Option<String>,
}

impl AdditionalClaims for PortalClaims {}

/// The token response with Portal's claims in the ID token.
pub type PortalTokenResponse = StandardTokenResponse<
    IdTokenFields<
        PortalClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// The crate's client with Portal's claims; its endpoints from discovery (introspection and
/// revocation set on demand: `set_introspection_url`, `set_revocation_url`).
pub type PortalClient<HasIntrospectionUrl = EndpointNotSet, HasRevocationUrl = EndpointNotSet> =
    Client<
        PortalClaims,
        CoreAuthDisplay,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJsonWebKey,
        CoreAuthPrompt,
        StandardErrorResponse<CoreErrorResponseType>,
        PortalTokenResponse,
        CoreTokenIntrospectionResponse,
        CoreRevocableToken,
        CoreRevocationErrorResponse,
        EndpointSet,
        EndpointNotSet,
        HasIntrospectionUrl,
        HasRevocationUrl,
        EndpointMaybeSet,
        EndpointMaybeSet,
    >;

/// How the application reaches Portal.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Portal's public URL (the issuer).
    pub issuer: String,
    /// From `portal clients create`.
    pub client_id: String,
    /// From `portal clients create` (shown once).
    pub client_secret: String,
    /// This application's own URL, e.g. `http://127.0.0.1:4000` (its redirect URI is
    /// `{base_url}/callback`).
    pub base_url: String,
}

/// A signed-in user of this application.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Full name.
    pub name: String,
    /// The company's customer number.
    pub customer_number: String,
    /// Permission keys.
    pub permissions: Vec<String>,
    /// Portal's session id.
    pub sid: Option<String>,
}

struct Pending {
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

struct Inner {
    client: PortalClient,
    http: reqwest::Client,
    issuer: String,
    jwks_uri: JsonWebKeySetUrl,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, SignedIn>>,
}

/// The application's state.
#[derive(Clone)]
pub struct App(Arc<Inner>);

impl App {
    /// Discovers Portal (`/.well-known/openid-configuration`) and sets up the client.
    ///
    /// # Errors
    /// Portal not reachable, or a malformed URL.
    pub async fn discover(settings: &Settings) -> Result<Self, Box<dyn Error>> {
        let http = reqwest::Client::builder()
            // Never follow redirects from the provider's endpoints (the crate's advice).
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let metadata =
            CoreProviderMetadata::discover_async(IssuerUrl::new(settings.issuer.clone())?, &http)
                .await?;
        let jwks_uri = metadata.jwks_uri().clone();
        let client = PortalClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(settings.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(format!("{}/callback", settings.base_url))?);
        Ok(Self(Arc::new(Inner {
            client,
            http,
            issuer: settings.issuer.clone(),
            jwks_uri,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })))
    }

    /// The signed-in users (session cookie → user).
    pub fn sessions(&self) -> usize {
        self.0.sessions.lock().expect("sessions").len()
    }

    /// The routes: `/`, `/login`, `/callback`, `/licenses`, `POST /backchannel-logout`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/login", get(login))
            .route("/callback", get(callback))
            .route("/licenses", get(licenses))
            .route("/backchannel-logout", post(backchannel_logout))
            .with_state(self.clone())
    }

    fn session(&self, headers: &HeaderMap) -> Option<SignedIn> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.0.sessions.lock().expect("sessions").get(&id).cloned()
    }
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
}

fn set_cookie(name: &str, value: &str) -> (header::HeaderName, String) {
    (
        header::SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax"),
    )
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Html<String> {
    Html(match app.session(&headers) {
        Some(u) => format!("<p>Angemeldet als {} ({})</p>", u.name, u.customer_number),
        None => "<p><a href=\"/login\">Anmelden mit dem Portal</a></p>".to_owned(),
    })
}

/// Sends the browser to Portal's authorization endpoint (code flow, PKCE S256, state, nonce).
async fn login(State(app): State<App>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = app.0.client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in ["profile", "email", "portal"] {
        request = request.add_scope(Scope::new(scope.to_owned()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    app.0
        .pending
        .lock()
        .expect("pending")
        .insert(state.secret().clone(), Pending { nonce, verifier });
    (
        [set_cookie(STATE_COOKIE, state.secret())],
        Redirect::to(url.as_str()),
    )
        .into_response()
}

/// The authorization response.
#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Checks state (bound to this browser by a cookie) and `iss` (RFC 9207), redeems the code with
/// the PKCE verifier, validates the ID token (signature against Portal's JWKS, iss, aud, exp,
/// nonce) and starts a session.
async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(error) = q.error {
        return (
            StatusCode::FORBIDDEN,
            format!("Anmeldung abgelehnt: {error}"),
        )
            .into_response();
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return (StatusCode::BAD_REQUEST, "code und state fehlen").into_response();
    };
    if cookie(&headers, STATE_COOKIE).as_deref() != Some(state.as_str())
        || q.iss.as_deref() != Some(app.0.issuer.as_str())
    {
        return (StatusCode::BAD_REQUEST, "fremde Antwort").into_response();
    }
    let Some(pending) = app.0.pending.lock().expect("pending").remove(&state) else {
        return (StatusCode::BAD_REQUEST, "unbekannte Anmeldung").into_response();
    };
    let Ok(request) = app.0.client.exchange_code(AuthorizationCode::new(code)) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "kein Token-Endpunkt").into_response();
    };
    let tokens = match request
        .set_pkce_verifier(pending.verifier)
        .request_async(&app.0.http)
        .await
    {
        Ok(t) => t,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("Token: {e}")).into_response(),
    };
    let Some(id_token) = tokens.id_token() else {
        return (StatusCode::BAD_GATEWAY, "kein ID-Token").into_response();
    };
    let claims = match id_token.claims(&app.0.client.id_token_verifier(), &pending.nonce) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("ID-Token: {e}")).into_response(),
    };
    let extra = claims.additional_claims();
    let user = SignedIn {
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        customer_number: extra.customer_number.clone().unwrap_or_default(),
        permissions: extra.permissions.clone(),
        sid: extra.sid.clone(),
    };
    let id = CsrfToken::new_random().secret().clone();
    app.0
        .sessions
        .lock()
        .expect("sessions")
        .insert(id.clone(), user);
    ([set_cookie(SESSION_COOKIE, &id)], Redirect::to("/licenses")).into_response()
}

/// The protected area: 303 to the login without a session, 403 without the permission.
async fn licenses(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(user) = app.session(&headers) else {
        return Redirect::to("/login").into_response();
    };
    if !user.permissions.iter().any(|p| p == PERMISSION) {
        return (
            StatusCode::FORBIDDEN,
            Html(format!(
                "<p>{}: Sie haben keine Berechtigung für „Meine Lizenzen“. Wenden Sie sich an Ihren Administrator.</p>",
                user.name
            )),
        )
            .into_response();
    }
    Html(format!(
        "<h1>Lizenzen von {}</h1><p>{}</p>",
        user.customer_number, user.name
    ))
    .into_response()
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

/// OpenID Connect Back-Channel Logout: ends every session of the Portal session (`sid`) or user
/// the verified token names.
async fn backchannel_logout(State(app): State<App>, Form(form): Form<LogoutForm>) -> StatusCode {
    let client_id = app.0.client.client_id().as_str().to_owned();
    match verify_logout_token(
        &app.0.http,
        &app.0.jwks_uri,
        &app.0.issuer,
        &client_id,
        &form.logout_token,
    )
    .await
    {
        Ok(claims) => {
            let sid = claims["sid"].as_str();
            app.0
                .sessions
                .lock()
                .expect("sessions")
                .retain(|_, u| sid.is_none() || u.sid.as_deref() != sid);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section 2.6):
/// the RS256 signature with the provider's key its `kid` names (fetched from the JWKS, checked
/// by the `openidconnect` crate's `JsonWebKey`), then `iss`, `aud`, `iat`, `jti`, the logout
/// event, `sub` or `sid`, and no `nonce`. Returns the claims.
///
/// # Errors
/// What is wrong with the token, in words.
pub async fn verify_logout_token(
    http: &reqwest::Client,
    jwks_uri: &JsonWebKeySetUrl,
    issuer: &str,
    client_id: &str,
    token: &str,
) -> Result<serde_json::Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("not a compact JWS".into());
    };
    let decode = |p: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|e| format!("base64url: {e}"))
    };
    let header: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|e| format!("header: {e}"))?;
    if header["alg"] != "RS256" {
        return Err(format!("algorithm {} refused", header["alg"]));
    }
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let keys = CoreJsonWebKeySet::fetch_async(jwks_uri, http)
        .await
        .map_err(|e| format!("JWKS: {e}"))?;
    let key = keys
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == Some(kid))
        .ok_or_else(|| format!("no published key {kid}"))?;
    key.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        format!("{}.{payload}", parts[0]).as_bytes(),
        &decode(signature)?,
    )
    .map_err(|e| format!("signature: {e}"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&decode(payload)?).map_err(|e| format!("claims: {e}"))?;
    let audience_ok = claims["aud"] == client_id
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == client_id));
    let checks = [
        (claims["iss"] == issuer, "iss"),
        (audience_ok, "aud"),
        (claims["iat"].is_number(), "iat"),
        (claims["jti"].is_string(), "jti"),
        (claims["events"][BACKCHANNEL_EVENT].is_object(), "events"),
        (claims.get("nonce").is_none(), "nonce"),
        (
            claims["sub"].is_string() || claims["sid"].is_string(),
            "sub/sid",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, claim)) => Err(format!("claim {claim} is wrong: {claims}")),
        None => Ok(claims),
    }
}

/// The settings from the environment (`PORTAL_ISSUER`, `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`,
/// `APP_BASE_URL`).
fn settings() -> Result<Settings, Box<dyn Error>> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    Ok(Settings {
        issuer: var("PORTAL_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
        client_id: var("OIDC_CLIENT_ID")?,
        client_secret: var("OIDC_CLIENT_SECRET")?,
        base_url: var("APP_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:4000".into()),
    })
}

/// `--check`: Portal (in memory, with its OpenID Connect provider) and this application, each on
/// a free port of 127.0.0.1, the application registered as a client through the core; then one
/// sign-in is started as a browser would: the application's `/licenses` sends it to `/login`,
/// that to Portal's authorization endpoint, and Portal — client and redirect URI accepted — to
/// its login page. Left out where `tests/e2e` compiles this file as a module (it runs the
/// application against the real binary instead, and has no in-memory adapters).
#[cfg(not(test))]
async fn check() -> Result<(), Box<dyn Error>> {
    use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig};
    use portal_core::service::NewClient;
    use portal_core::{Actor, Deps, Portal, config::PortalConfig, secretbox::MfaKey};

    let portal_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", portal_listener.local_addr()?);
    let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", app_listener.local_addr()?);
    let store = Arc::new(adapters_memory::MemoryStore::new());
    let config = PortalConfig {
        oidc_issuer: issuer.clone(),
        // Seals the provider's signing keys.
        mfa_key: Some(MfaKey::generate(&portal_core::defaults::OsSecretGenerator)),
        ..PortalConfig::default()
    };
    let portal = Arc::new(Portal::new(
        Deps::production(store),
        config,
        Default::default(),
    )?);
    let registered = portal
        .create_client(
            &Actor::System,
            NewClient {
                name: "Lizenzen".into(),
                redirect_uris: vec![format!("{base_url}/callback")],
                backchannel_logout_uri: Some(format!("{base_url}/backchannel-logout")),
                first_party: true,
                ..NewClient::default()
            },
        )
        .await?;
    let http = HttpConfig::new(&issuer, CookieKey::generate())?.insecure_development_cookies();
    let router = adapters_http::router(AppState::new(portal, http, Arc::new(AlwaysReady)));
    tokio::spawn(async move {
        axum::serve(
            portal_listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let app = App::discover(&Settings {
        issuer: issuer.clone(),
        client_id: registered.client.id.clone(),
        client_secret: registered
            .secret
            .as_ref()
            .ok_or("a confidential client has a secret")?
            .expose()
            .to_owned(),
        base_url: base_url.clone(),
    })
    .await?;
    let router = app.router();
    tokio::spawn(async move { axum::serve(app_listener, router).await });

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut url = format!("{base_url}/licenses");
    for (expected, what) in [
        (format!("{base_url}/login"), "the application's login"),
        (
            format!("{issuer}/oidc/authorize?"),
            "Portal's authorization endpoint",
        ),
        (format!("{issuer}/login?"), "Portal's login page"),
    ] {
        let answer = browser.get(&url).send().await?;
        let to = answer
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let to = if to.starts_with('/') {
            let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}{to}")
        } else {
            to.to_owned()
        };
        println!("check: GET {url}: {} → {to}", answer.status().as_u16());
        if !answer.status().is_redirection() || !to.starts_with(&expected) {
            return Err(format!("expected a redirect to {what} ({expected}…)").into());
        }
        url = to;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    #[cfg(not(test))]
    if std::env::args().any(|a| a == "--check") {
        return check().await;
    }
    let settings = settings()?;
    let app = App::discover(&settings).await?;
    let address = settings
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "Lizenzen — {}/licenses (sign-in through {})",
        settings.base_url, settings.issuer
    );
    axum::serve(listener, app.router()).await?;
    Ok(())
}
