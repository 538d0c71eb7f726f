//! Middleware of every request: request ids and logs, the client's address, security headers,
//! and the API guard (CSRF, body size, content type).

use crate::config::{ClientAddressSource, HttpConfig};
use crate::csrf;
use crate::error::{ApiError, codes};
use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use portal_core::ports::Clock;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// The request-id header (read when a proxy set a sane one, generated otherwise, always echoed).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
    static CLOCK: Arc<dyn Clock>;
}

/// The id of the request being served, if inside one.
#[must_use]
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Now, by the portal's clock when inside a request.
#[must_use]
pub fn request_now() -> DateTime<Utc> {
    CLOCK.try_with(|c| c.now()).unwrap_or_else(|_| Utc::now())
}

/// Where a request comes from, as far as the settings let us know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientContext {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The `User-Agent`, cut to 256 characters.
    pub user_agent: Option<String>,
}

impl ClientContext {
    /// As the core wants it.
    #[must_use]
    pub fn info(&self) -> portal_core::session::ClientInfo {
        portal_core::session::ClientInfo::new(
            self.ip.map(|ip| ip.to_string()).as_deref(),
            self.user_agent.as_deref(),
        )
    }
}

fn client_context(config: &HttpConfig, req: &Request) -> ClientContext {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = match (&config.client_address, peer) {
        (ClientAddressSource::XForwardedFor { proxies }, Some(peer)) if proxies.contains(&peer) => {
            forwarded_client(req.headers(), proxies).or(Some(peer))
        }
        _ => peer,
    };
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    ClientContext { ip, user_agent }
}

/// The right-most `X-Forwarded-For` address that is not a trusted proxy.
fn forwarded_client(headers: &HeaderMap, proxies: &[IpAddr]) -> Option<IpAddr> {
    let all: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .ok()?;
    all.into_iter().rev().find(|ip| !proxies.contains(ip))
}

fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
    .then(|| s.to_owned())
}

/// Gives every request an id (echoed in `X-Request-Id`), records the client's address, runs the
/// request with the request id and the portal's clock at hand, and logs one line per request:
/// method, route template (never the raw path, which may hold a token), status, duration and id.
/// No headers, cookies, query strings or bodies are logged.
pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let client = client_context(state.config(), &req);
    req.extensions_mut().insert(client);
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let clock = state.portal().deps().clock.clone();
    let mut response = REQUEST_ID
        .scope(id.clone(), CLOCK.scope(clock, next.run(req)))
        .await;
    let status = response.status().as_u16();
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        target: "portal_http",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        elapsed_ms,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

fn set_if_absent(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Security headers on every response (a route may set its own CSP or caching first, e.g. the
/// web UI): CSP (`default-src 'none'` for the API), frame denial, `nosniff`, no referrer,
/// `Cache-Control: no-store`, HSTS when cookies are secure, and no `Server` header. Also turns
/// axum's bare 405 into the error shape.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let docs = req.uri().path().contains("/api/docs");
    let mut response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::new(codes::METHOD_NOT_ALLOWED).into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    let h = response.headers_mut();
    set_if_absent(
        h,
        header::CONTENT_SECURITY_POLICY,
        if docs { DOCS_CSP } else { API_CSP },
    );
    set_if_absent(h, header::X_FRAME_OPTIONS, "DENY");
    set_if_absent(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_if_absent(h, header::REFERRER_POLICY, "no-referrer");
    set_if_absent(h, header::CACHE_CONTROL, "no-store");
    set_if_absent(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_if_absent(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if state.config().secure_cookies() {
        set_if_absent(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    h.remove(header::SERVER);
    response
}

/// The guard of every API request: unsafe methods pass the CSRF checks ([`csrf`]); a declared
/// body larger than the limit answers 413 before it is read; a body must be JSON (or CSV for the
/// customer import) or answers 415.
pub async fn api_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let config = state.config();
    let headers = req.headers();
    if csrf::is_unsafe(req.method())
        && let Err(why) = csrf::check(config, headers)
    {
        tracing::warn!(target: "portal_http", rejection = ?why, "csrf check failed");
        return ApiError::new(codes::CSRF_FAILED).into_response();
    }
    let limit = body_limit(config, req.uri().path());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::new(codes::PAYLOAD_TOO_LARGE).into_response();
    }
    if csrf::is_unsafe(req.method()) {
        let has_body = declared.is_some_and(|n| n > 0)
            || headers.contains_key(header::TRANSFER_ENCODING)
            || axum::body::HttpBody::size_hint(req.body()).exact() != Some(0);
        match headers.get(header::CONTENT_TYPE) {
            Some(ct) if !is_json(ct) && !is_csv(ct) => {
                return ApiError::new(codes::UNSUPPORTED_MEDIA_TYPE).into_response();
            }
            None if has_body => {
                return ApiError::new(codes::UNSUPPORTED_MEDIA_TYPE).into_response();
            }
            _ => {}
        }
    }
    next.run(req).await
}

/// The body limit of a path.
pub(crate) fn body_limit(config: &HttpConfig, path: &str) -> usize {
    if path.ends_with("/operator/customers/import") {
        config.import_body_limit
    } else {
        config.body_limit
    }
}

fn media_type(v: &HeaderValue) -> String {
    v.to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a `Content-Type` is JSON (`application/json`, optionally with parameters).
pub(crate) fn is_json(v: &HeaderValue) -> bool {
    media_type(v) == "application/json"
}

/// Whether a `Content-Type` is CSV.
pub(crate) fn is_csv(v: &HeaderValue) -> bool {
    media_type(v) == "text/csv"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_proxies_may_name_the_client() {
        let proxies: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.1"),
        );
        assert_eq!(
            forwarded_client(&h, &proxies),
            Some("203.0.113.9".parse().unwrap())
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(forwarded_client(&h, &proxies), None);
    }

    #[test]
    fn request_ids_from_outside_must_be_short_and_plain() {
        assert!(sane_request_id(&HeaderValue::from_static("abc-123")).is_some());
        assert!(sane_request_id(&HeaderValue::from_static("a b")).is_none());
        assert!(sane_request_id(&HeaderValue::from_str(&"x".repeat(200)).unwrap()).is_none());
    }

    #[test]
    fn content_types_are_matched_without_parameters() {
        assert!(is_json(&HeaderValue::from_static(
            "application/json; charset=utf-8"
        )));
        assert!(!is_json(&HeaderValue::from_static("text/plain")));
        assert!(is_csv(&HeaderValue::from_static("text/csv")));
    }
}
