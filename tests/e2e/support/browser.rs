//! An HTTP client that behaves like a person's browser towards the JSON API: one cookie jar per
//! person, the CSRF token of `GET /api/v1/auth/csrf` in `X-CSRF-Token` on every unsafe request,
//! and the `Origin` and `Sec-Fetch-Site` headers a browser sends on a same-origin `fetch`.
//!
//! Cookies are keyed by host, not port (RFC 6265), exactly as in a browser: [`Browser::at`] points
//! the same jar at another server on 127.0.0.1, which is how the two-process tests carry one
//! session from one `portal serve` to the other.

use super::DEADLINE;
use super::portal::Portal;
use reqwest::cookie::CookieStore as _;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

/// One person's browser, pointed at one server.
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    origin: String,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
    /// `METHOD path`, for failure messages.
    pub request: String,
}

impl Answer {
    /// The body, after checking the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{} answered {} (expected {status}): {}",
            self.request, self.status, self.text
        );
        &self.body
    }

    /// Checks the status and the stable error code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        self.expect(status);
        assert_eq!(
            self.body["error"]["code"], code,
            "{} answered {}: {}",
            self.request, self.status, self.text
        );
        &self.body
    }

    /// The error code, if the body is an error.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

impl Browser {
    /// A new browser (empty cookie jar) pointed at `server`.
    pub fn new(server: &Portal) -> Self {
        Self::build(&server.origin, None)
    }

    /// A new browser (empty cookie jar) pointed at `origin` (`http://127.0.0.1:{port}`): a
    /// server that is restarted on the same port keeps its browsers.
    pub fn for_origin(origin: &str) -> Self {
        Self::build(origin, None)
    }

    /// A new browser whose connections come from `ip` (any 127.0.0.0/8 address works on
    /// Linux): another client address, as another office would be.
    pub fn from_address(server: &Portal, ip: IpAddr) -> Self {
        Self::build(&server.origin, Some(ip))
    }

    fn build(origin: &str, ip: Option<IpAddr>) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DEADLINE)
            .user_agent("portal-e2e");
        if let Some(ip) = ip {
            builder = builder.local_address(ip);
        }
        Self {
            client: builder.build().expect("HTTP client"),
            jar,
            origin: origin.to_owned(),
        }
    }

    /// The same browser (same cookies) pointed at another server.
    pub fn at(&self, server: &Portal) -> Self {
        Self {
            client: self.client.clone(),
            jar: self.jar.clone(),
            origin: server.origin.clone(),
        }
    }

    /// Its cookie jar (an OpenID Connect walk in the same browser: [`super::oidc::WebUser::sharing`]).
    pub fn jar(&self) -> Arc<reqwest::cookie::Jar> {
        self.jar.clone()
    }

    /// The origin it talks to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Cookie` header this browser would send to its server.
    pub fn cookie_header(&self) -> String {
        let url = reqwest::Url::parse(&self.origin).expect("origin URL");
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    /// The value of one cookie, if the jar holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookie_header().split("; ").find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }

    /// Puts a cookie into the jar, as if the server had set it (to replay an old cookie).
    pub fn set_cookie(&self, name: &str, value: &str) {
        let url = reqwest::Url::parse(&self.origin).expect("origin URL");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/; HttpOnly"), &url);
    }

    /// `GET /api/v1/auth/csrf`: the token for the cookies this browser holds.
    pub async fn csrf(&self) -> String {
        let a = self.get("/auth/csrf").await;
        a.expect(200)["csrf_token"]
            .as_str()
            .expect("csrf_token")
            .to_owned()
    }

    /// `GET /api/v1{path}`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, &format!("/api/v1{path}"), None, false)
            .await
    }

    /// `GET {path}` outside the API (health, web pages).
    pub async fn get_raw(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, false).await
    }

    /// `POST /api/v1{path}` with a JSON body (or none), CSRF token and browser headers.
    pub async fn post(&self, path: &str, body: Option<Value>) -> Answer {
        self.send(reqwest::Method::POST, &format!("/api/v1{path}"), body, true)
            .await
    }

    /// `PUT /api/v1{path}`, like [`Self::post`].
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(
            reqwest::Method::PUT,
            &format!("/api/v1{path}"),
            Some(body),
            true,
        )
        .await
    }

    /// `DELETE /api/v1{path}`, like [`Self::post`].
    pub async fn delete(&self, path: &str) -> Answer {
        self.send(
            reqwest::Method::DELETE,
            &format!("/api/v1{path}"),
            None,
            true,
        )
        .await
    }

    /// An unsafe request without the CSRF token (what a forged cross-site request looks like).
    pub async fn post_without_csrf(&self, path: &str, body: Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1{path}"),
            Some(body),
            false,
        )
        .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> Answer {
        self.try_send(method, path, body, csrf)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a request to `/api/v1{path}` like [`Self::post`] (with the CSRF token for anything
    /// but `GET`), and returns `Err` instead of panicking when no answer came: the connection
    /// was refused, reset or closed before a complete answer (a server killed mid-request).
    pub async fn try_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let csrf = method != reqwest::Method::GET;
        self.try_send(method, &format!("/api/v1{path}"), body, csrf)
            .await
    }

    /// `GET {path}` outside the API, `Err` when no answer came.
    pub async fn try_get_raw(&self, path: &str) -> Result<Answer, String> {
        self.try_send(reqwest::Method::GET, path, None, false).await
    }

    async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> Result<Answer, String> {
        let request = format!("{method} {path} @{}", self.origin);
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.origin))
            .header("Sec-Fetch-Site", "same-origin")
            .header("Accept", "application/json");
        if method != reqwest::Method::GET {
            rb = rb.header("Origin", &self.origin);
        }
        if csrf {
            // The token first; a refusal of it (a 503 while the database is down) is the answer
            // the client gets.
            let token =
                Box::pin(self.try_send(reqwest::Method::GET, "/api/v1/auth/csrf", None, false))
                    .await?;
            if token.status != 200 {
                return Ok(token);
            }
            rb = rb.header(
                "X-CSRF-Token",
                token.body["csrf_token"].as_str().expect("csrf_token"),
            );
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let response = rb.send().await.map_err(|e| format!("{request}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{request}: the answer broke off: {e}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
            text,
            request,
        })
    }
}
