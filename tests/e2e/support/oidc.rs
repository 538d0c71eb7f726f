//! The relying-party side of the OpenID Connect tests: applications no one here wrote, pointed at
//! the real `portal` binary.
//!
//! - [`AuthlibRp`]: `oidc_rp.py`, a relying party on Python's Authlib (installed by
//!   `scripts/test-deps`), driven step by step.
//! - [`RustRp`]: the Rust `openidconnect` crate's client, with Portal's extra claims as its
//!   `AdditionalClaims`.
//! - [`WebUser`]: a person's browser between the two: it follows the authorization URL through
//!   the portal's redirects (and a page's `Refresh` header, as browsers do), fills in the web
//!   login form (with its hidden CSRF field) and stops at
//!   the redirect back to the application.
//! - [`Receiver`]: the application's back-channel logout endpoint, an axum route on 127.0.0.1
//!   that hands every `logout_token` to the test.
//! - [`create_client`]: `portal clients create --json`.

pub use super::oidc_app::{PortalClaims, PortalClient, PortalTokenResponse};
use super::portal::run;
use super::{DEADLINE, TempDir, python_path, repo_root};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreGenderClaim, CoreJsonWebKeySet, CoreProviderMetadata,
    CoreTokenIntrospectionResponse,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointSet,
    IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl,
    RefreshToken, RequestTokenError, RevocationUrl, Scope, TokenIntrospectionResponse as _,
    TokenResponse as _, UserInfoClaims,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::sync::mpsc;

/// The scopes every test client asks for.
pub const SCOPES: [&str; 4] = ["profile", "email", "portal", "offline_access"];

/// The event a back-channel logout token carries.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A registered client, as `portal clients create --json` printed it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Everything it printed.
    pub json: Value,
}

/// `portal clients create --json` with `args` in the server's environment.
pub async fn create_client(env: &[(String, String)], args: &[&str]) -> Registered {
    let dir = TempDir::new("clients");
    let mut all = vec!["clients", "create", "--json"];
    all.extend_from_slice(args);
    let out = run(dir.path(), &all, env).await.ok();
    let json: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("portal clients create --json printed no JSON ({e}): {out}"));
    Registered {
        client_id: json["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: json["client_secret"].as_str().map(str::to_owned),
        json,
    }
}

/// A person's browser for the authorization step: a cookie jar, no automatic redirects.
pub struct WebUser {
    client: reqwest::Client,
    origin: String,
}

impl WebUser {
    /// A new browser (empty cookie jar) for the portal at `origin`.
    pub fn new(origin: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(DEADLINE)
                .user_agent("portal-e2e-oidc")
                .build()
                .expect("HTTP client"),
            origin: origin.to_owned(),
        }
    }

    /// A browser with the cookies of `browser` (signed in through the API, e.g. with a passkey).
    pub fn sharing(browser: &super::browser::Browser) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_provider(browser.jar())
                .redirect(reqwest::redirect::Policy::none())
                .timeout(DEADLINE)
                .user_agent("portal-e2e-oidc")
                .build()
                .expect("HTTP client"),
            origin: browser.origin().to_owned(),
        }
    }

    /// Opens `url` (an application's authorization URL) and goes where the portal sends it: its
    /// redirects, the login form (filled in with `email` and `password` when it appears), until a
    /// redirect leads to `redirect_uri`. Returns that URL (the authorization response).
    pub async fn authorize(
        &self,
        url: &str,
        email: &str,
        password: &str,
        redirect_uri: &str,
    ) -> String {
        match self.walk(url, email, password, Some(redirect_uri)).await {
            Walked::Redirect(to) => to,
            Walked::Page(status, page) => {
                panic!("{url} ended on a page ({status}), not at {redirect_uri}:\n{page}")
            }
        }
    }

    /// Opens `url` and follows every redirect (across the application and the portal), logging
    /// in when the portal's login form appears; the status and text of the page it ends on.
    pub async fn open(&self, url: &str, email: &str, password: &str) -> (u16, String) {
        match self.walk(url, email, password, None).await {
            Walked::Page(status, page) => (status, page),
            Walked::Redirect(to) => unreachable!("no stop address, yet stopped at {to}"),
        }
    }

    async fn walk(&self, url: &str, email: &str, password: &str, stop: Option<&str>) -> Walked {
        let stops = |u: &str| stop.is_some_and(|s| u.starts_with(s));
        let mut current = url.to_owned();
        let mut logged_in = false;
        for _ in 0..16 {
            let response = self
                .client
                .get(&current)
                .header("Sec-Fetch-Site", "none")
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {current}: {e}"));
            let status = response.status();
            if status.is_redirection() {
                let next = location(&current, &response);
                if stops(&next) {
                    return Walked::Redirect(next);
                }
                current = next;
                continue;
            }
            // A page that moves on by itself (`Refresh: 0; url=…`), as the portal's way back to
            // the application right after its login form: a browser follows it.
            if let Some(next) = refresh_target(&current, &response) {
                if stops(&next) {
                    return Walked::Redirect(next);
                }
                current = next;
                continue;
            }
            let page = response.text().await.expect("page");
            let login_form = current.starts_with(&self.origin)
                && page.contains("name=\"password\"")
                && form_action(&page, "password").is_some();
            if !login_form || logged_in {
                assert!(
                    !(login_form && logged_in),
                    "the login form again after logging in ({current}):\n{page}"
                );
                return Walked::Page(status.as_u16(), page);
            }
            let action = form_action(&page, "password").expect("form");
            // Only the login form's own fields, as a browser sends them: the page holds other
            // forms too (the passkey sign-in), each with its own CSRF field.
            let mut fields = hidden_fields(form_holding(&page, "password").expect("form"));
            fields.push(("email".into(), email.into()));
            fields.push(("password".into(), password.into()));
            let target = resolve(&current, &action);
            let posted = self
                .client
                .post(&target)
                .header("Origin", &self.origin)
                .header("Sec-Fetch-Site", "same-origin")
                .form(&fields)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {target}: {e}"));
            let status = posted.status();
            assert!(
                status.is_redirection(),
                "the login at {target} answered {status}:\n{}",
                posted.text().await.unwrap_or_default()
            );
            logged_in = true;
            let next = location(&target, &posted);
            if stops(&next) {
                return Walked::Redirect(next);
            }
            current = next;
        }
        panic!("still redirected after 16 steps from {url}");
    }

    /// `GET url` with this browser's cookies; status and body.
    pub async fn get(&self, url: &str) -> (u16, String) {
        let r = self.client.get(url).send().await.expect("GET");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }
}

/// Where [`WebUser::walk`] ended.
enum Walked {
    /// At a redirect to the stop address.
    Redirect(String),
    /// On a page that is neither a redirect nor the login form.
    Page(u16, String),
}

/// The absolute target of a redirect.
fn location(base: &str, response: &reqwest::Response) -> String {
    let loc = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a redirect from {base} without Location"));
    resolve(base, loc)
}

/// The target of a `Refresh: 0; url=…` header, absolute.
fn refresh_target(base: &str, response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get("refresh")?.to_str().ok()?;
    let (_, url) = value.split_once(';')?;
    let url = url.trim();
    let url = url
        .strip_prefix("url=")
        .or_else(|| url.strip_prefix("URL="))?;
    Some(resolve(base, url))
}

fn resolve(base: &str, target: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(target))
        .unwrap_or_else(|e| panic!("{target} relative to {base}: {e}"))
        .to_string()
}

/// The value of attribute `name` inside one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `<input type="hidden">` of the page: name and value.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            (attribute(tag, "type")? == "hidden")
                .then(|| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
                .flatten()
        })
        .collect()
}

/// The markup of the first form that holds a field named `field` (from after `<form` to before
/// `</form>`).
fn form_holding<'a>(page: &'a str, field: &str) -> Option<&'a str> {
    page.split("<form").skip(1).find_map(|rest| {
        let body = &rest[..rest.find("</form>")?];
        body.contains(&format!("name=\"{field}\"")).then_some(body)
    })
}

/// The `action` of the form that holds a field named `field`.
fn form_action(page: &str, field: &str) -> Option<String> {
    let body = form_holding(page, field)?;
    attribute(&body[..body.find('>')?], "action")
}

/// An application's back-channel logout endpoint: `POST /backchannel` with the form field
/// `logout_token`, answered 200; every token goes to [`Self::next`].
pub struct Receiver {
    pub port: u16,
    tokens: mpsc::UnboundedReceiver<String>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Serves on a free port.
    pub async fn start() -> Self {
        Self::on(0).await
    }

    /// Serves on `port` (one reserved earlier with [`reserve_port`]).
    pub async fn on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().expect("address").port();
        let (tx, tokens) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/backchannel",
            axum::routing::post(
                move |axum::extract::Form(form): axum::extract::Form<
                    std::collections::BTreeMap<String, String>,
                >| {
                    let tx = tx.clone();
                    async move {
                        match form.get("logout_token") {
                            Some(t) => {
                                let _ = tx.send(t.clone());
                                axum::http::StatusCode::OK
                            }
                            None => axum::http::StatusCode::BAD_REQUEST,
                        }
                    }
                },
            ),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            tokens,
            server,
        }
    }

    /// The URI to register.
    pub fn uri(&self) -> String {
        backchannel_uri(self.port)
    }

    /// Waits for the next logout token (within [`DEADLINE`]).
    pub async fn next(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.tokens.recv())
            .await
            .unwrap_or_else(|_| panic!("no back-channel logout within {DEADLINE:?}"))
            .expect("receiver open")
    }

    /// A token that arrived already, if any (never waits).
    pub fn try_next(&mut self) -> Option<String> {
        self.tokens.try_recv().ok()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The back-channel URI of a receiver on `port`.
pub fn backchannel_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}/backchannel")
}

/// A free loopback port with nothing listening on it (an application that is down).
pub fn reserve_port() -> u16 {
    super::free_port()
}

/// The Python relying party (`oidc_rp.py`, Authlib): one state file across its steps.
pub struct AuthlibRp {
    dir: TempDir,
}

impl AuthlibRp {
    pub fn new() -> Self {
        Self {
            dir: TempDir::new("authlib"),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    async fn call(&self, args: &[&str]) -> Value {
        let script = repo_root().join("tests/e2e/support/oidc_rp.py");
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(&script)
            .args(args)
            .env("PYTHONPATH", python_path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(DEADLINE, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("oidc_rp.py {args:?} took longer than {DEADLINE:?}"))
            .expect("run python3 oidc_rp.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "oidc_rp.py {} failed:\n{stdout}\n{}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("oidc_rp.py {} printed no JSON ({e}): {stdout}", args[0]))
    }

    /// Discovery and the authorization URL (PKCE S256, state, nonce).
    pub async fn begin(&self, issuer: &str, client: &Registered, redirect_uri: &str) -> String {
        let state = self.state();
        let secret = client.client_secret.clone().unwrap_or_default();
        let v = self
            .call(&[
                "begin",
                state.to_str().expect("path"),
                issuer,
                &client.client_id,
                &secret,
                redirect_uri,
            ])
            .await;
        v["url"].as_str().expect("url").to_owned()
    }

    /// The code exchange and everything after it: validated ID token claims, userinfo,
    /// introspection, one refresh.
    pub async fn finish(&self, callback: &str) -> Value {
        let state = self.state();
        self.call(&["finish", state.to_str().expect("path"), callback])
            .await
    }

    /// Introspection, userinfo and a refresh with the tokens it holds.
    pub async fn check(&self) -> Value {
        let state = self.state();
        self.call(&["check", state.to_str().expect("path")]).await
    }

    /// Verifies a back-channel logout token; its claims.
    pub async fn logout_token(&self, token: &str) -> Value {
        let state = self.state();
        self.call(&["logout-token", state.to_str().expect("path"), token])
            .await["claims"]
            .clone()
    }
}

/// The Rust relying party: the `openidconnect` crate's client.
pub struct RustRp {
    pub client: PortalClient<EndpointSet, EndpointSet>,
    pub http: reqwest::Client,
    pub issuer: String,
    pub metadata: CoreProviderMetadata,
    /// The discovery document as JSON (for the endpoints the core metadata type leaves out).
    pub discovery: Value,
}

/// What one authorization request left with the application.
pub struct Pending {
    pub url: String,
    pub csrf: CsrfToken,
    pub nonce: Nonce,
    pub verifier: openidconnect::PkceCodeVerifier,
}

/// The tokens of a finished code flow, with the validated ID token claims.
pub struct Signed {
    pub access: AccessToken,
    pub refresh: Option<RefreshToken>,
    pub claims: openidconnect::IdTokenClaims<PortalClaims, CoreGenderClaim>,
    pub id_token: String,
}

impl RustRp {
    /// Discovers the provider at `issuer` (`/.well-known/openid-configuration`).
    pub async fn discover(issuer: &str, client: &Registered, redirect_uri: &str) -> Self {
        let http = reqwest::Client::builder()
            // The crate's advice: never follow redirects from the provider's endpoints.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DEADLINE)
            .build()
            .expect("HTTP client");
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(issuer.to_owned()).expect("issuer URL"),
            &http,
        )
        .await
        .unwrap_or_else(|e| panic!("discovery at {issuer}: {e:?}"));
        let discovery: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        Self::build(http, issuer, metadata, discovery, client, redirect_uri)
    }

    /// The same application with changed provider metadata (another process's endpoints).
    pub fn with_metadata(self, client: &Registered, redirect_uri: &str) -> Self {
        let Self {
            http,
            issuer,
            metadata,
            discovery,
            ..
        } = self;
        Self::build(http, &issuer, metadata, discovery, client, redirect_uri)
    }

    fn build(
        http: reqwest::Client,
        issuer: &str,
        metadata: CoreProviderMetadata,
        discovery: Value,
        client: &Registered,
        redirect_uri: &str,
    ) -> Self {
        let url = |key: &str| {
            discovery[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in discovery: {discovery}"))
                .to_owned()
        };
        let client = PortalClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client.client_id.clone()),
            client.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).expect("redirect URI"))
        .set_introspection_url(
            IntrospectionUrl::new(url("introspection_endpoint")).expect("introspection URL"),
        )
        .set_revocation_url(RevocationUrl::new(url("revocation_endpoint")).expect("URL"));
        Self {
            client,
            http,
            issuer: issuer.to_owned(),
            metadata,
            discovery,
        }
    }

    /// The authorization URL with PKCE S256, state and nonce, asking for [`SCOPES`].
    pub fn begin(&self) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in SCOPES {
            request = request.add_scope(Scope::new(s.to_owned()));
        }
        let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
        Pending {
            url: url.to_string(),
            csrf,
            nonce,
            verifier,
        }
    }

    /// The whole sign-in of `person`: [`Self::begin`], a new browser through the portal's login
    /// form, [`Self::finish`].
    pub async fn sign_in(&self, person: &super::world::Person) -> Signed {
        let pending = self.begin();
        let redirect = self.client.redirect_uri().expect("a redirect URI").as_str();
        let callback = WebUser::new(&self.issuer)
            .authorize(&pending.url, &person.email, &person.password, redirect)
            .await;
        self.finish(pending, &callback).await
    }

    /// Checks the authorization response (state, RFC 9207 `iss`), exchanges the code with the
    /// PKCE verifier and validates the ID token (signature against the JWKS, iss, aud, exp, nonce,
    /// at_hash).
    pub async fn finish(&self, pending: Pending, callback: &str) -> Signed {
        let url = reqwest::Url::parse(callback).expect("callback URL");
        let param = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(
            param("state").as_deref(),
            Some(pending.csrf.secret().as_str()),
            "state of {callback}"
        );
        assert_eq!(
            param("iss").as_deref(),
            Some(self.issuer.as_str()),
            "RFC 9207 iss of {callback}"
        );
        let code = param("code").unwrap_or_else(|| panic!("no code in {callback}"));
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .expect("a token endpoint")
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .unwrap_or_else(|e| panic!("code exchange: {}", describe(&e)));
        self.signed(&response, &pending.nonce)
    }

    /// The validated ID token of a token response.
    pub fn signed(&self, response: &PortalTokenResponse, nonce: &Nonce) -> Signed {
        let id_token = response.id_token().expect("an ID token");
        let verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, nonce)
            .unwrap_or_else(|e| panic!("ID token refused by openidconnect: {e:?}"))
            .clone();
        if let Some(expected) = claims.access_token_hash() {
            let actual = openidconnect::AccessTokenHash::from_token(
                response.access_token(),
                id_token.signing_alg().expect("alg"),
                id_token.signing_key(&verifier).expect("key"),
            )
            .expect("at_hash");
            assert_eq!(&actual, expected, "at_hash");
        }
        Signed {
            access: response.access_token().clone(),
            refresh: response.refresh_token().cloned(),
            claims,
            id_token: id_token.to_string(),
        }
    }

    /// `GET /oidc/userinfo` through the crate (checks `sub` against `expected_sub`).
    pub async fn userinfo(
        &self,
        access: &AccessToken,
        expected_sub: &openidconnect::SubjectIdentifier,
    ) -> Result<UserInfoClaims<PortalClaims, CoreGenderClaim>, String> {
        self.client
            .user_info(access.clone(), Some(expected_sub.clone()))
            .expect("a userinfo endpoint")
            .request_async(&self.http)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// RFC 7662 introspection through the crate: whether the token is active, with the answer.
    pub async fn introspect(&self, access: &AccessToken) -> CoreTokenIntrospectionResponse {
        self.client
            .introspect(access)
            .request_async(&self.http)
            .await
            .unwrap_or_else(|e| panic!("introspection: {}", describe(&e)))
    }

    /// Whether introspection calls the token active.
    pub async fn active(&self, access: &AccessToken) -> bool {
        self.introspect(access).await.active()
    }

    /// A refresh grant: the new tokens, or the OAuth error code.
    pub async fn refresh(&self, token: &RefreshToken) -> Result<PortalTokenResponse, String> {
        self.client
            .exchange_refresh_token(token)
            .expect("a token endpoint")
            .request_async(&self.http)
            .await
            .map_err(|e| match &e {
                RequestTokenError::ServerResponse(r) => r.error().as_ref().to_owned(),
                other => describe(other),
            })
    }

    /// The provider's current key set.
    pub async fn jwks(&self) -> CoreJsonWebKeySet {
        CoreJsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &self.http)
            .await
            .expect("JWKS")
    }

    /// Verifies a back-channel logout token with the example application's check
    /// (`examples/oidc_app.rs`: the signature through the crate's `JsonWebKey` and the JWKS, then
    /// the claims of OpenID Connect Back-Channel Logout 1.0, section 2.6); its claims.
    pub async fn verify_logout_token(&self, token: &str) -> Value {
        super::oidc_app::verify_logout_token(
            &self.http,
            self.metadata.jwks_uri(),
            &self.issuer,
            self.client.client_id().as_str(),
            token,
        )
        .await
        .unwrap_or_else(|e| panic!("logout token refused: {e}"))
    }
}

/// A readable form of the crate's request errors (the provider's answer when there is one).
pub fn describe<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: &RequestTokenError<RE, T>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("server response {r:?}"),
        RequestTokenError::Parse(err, body) => {
            format!(
                "unparsable answer ({err}): {}",
                String::from_utf8_lossy(body)
            )
        }
        other => format!("{other:?}"),
    }
}
