//! The layers every request passes, as tower layers (`layered` applies them in order): request
//! ids (`tower_http::request_id`), a tracing span per request (`tower_http::trace`), default
//! security headers (`tower_http::set_header`), the client's address, the error layer
//! ([`crate::error::complete_error_responses`]) and panic recovery; plus the API guard (CSRF, body
//! size, content type) on the API's routes.

use crate::config::{ClientAddressSource, HttpConfig};
use crate::csrf;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The request-id header (read when a proxy set a sane one, generated otherwise, always echoed).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Applies the layers of every request to `app`, outermost first:
///
/// 1. a request id from outside that is not short and plain is dropped ([`sane_request_id`]),
/// 2. `SetRequestIdLayer` gives every request an id (a UUID unless a sane one came along) and
///    `PropagateRequestIdLayer` echoes it in `X-Request-Id`,
/// 3. `TraceLayer` opens a span per request holding the request id, the method and the matched
///    route template (never the raw path, which may hold a token), so every log line inside the
///    request carries them, and logs one completion line with status and duration,
/// 4. the default security headers, each only if the route did not set its own,
/// 5. the client's address and user agent ([`ClientContext`]); the first request without the peer's
///    address (`ConnectInfo`, set by `into_make_service_with_connect_info::<SocketAddr>()`) logs a
///    warning, once per [`AppState`],
/// 6. the error layer: logs server errors, completes error bodies with the request id,
/// 7. a panic in a handler answers 500 `internal`.
///
/// No headers, cookies, query strings or bodies are logged.
pub(crate) fn layered(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let hsts = state.config().secure_cookies().then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    let default = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    app.layer(
        ServiceBuilder::new()
            .map_request(drop_foreign_request_id)
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(RequestSpan)
                    .on_request(())
                    .on_response(CompletionLine)
                    .on_failure(()),
            )
            .layer(default(header::CONTENT_SECURITY_POLICY, API_CSP))
            .layer(default(header::X_FRAME_OPTIONS, "DENY"))
            .layer(default(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .layer(default(header::REFERRER_POLICY, "no-referrer"))
            .layer(default(header::CACHE_CONTROL, "no-store"))
            .layer(default(
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ))
            .layer(default(
                HeaderName::from_static("cross-origin-resource-policy"),
                "same-origin",
            ))
            .option_layer(hsts)
            .layer(axum::middleware::map_request_with_state(
                state.clone(),
                add_client_context,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::error::complete_error_responses,
            ))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                |_: Box<dyn std::any::Any + Send>| {
                    ApiError::internal("handler panicked").into_response()
                },
            )),
    )
}

/// Drops an `X-Request-Id` from outside that is not short and plain, so that a fresh one replaces
/// it (the id reaches logs and answers).
fn drop_foreign_request_id(mut req: Request) -> Request {
    let insane = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|v| sane_request_id(v).is_none());
    if insane {
        req.headers_mut().remove(REQUEST_ID_HEADER);
    }
    req
}

/// The span of a request: `request` with its id, method and route template.
#[derive(Debug, Clone, Copy)]
struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> Span {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .unwrap_or("-");
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::info_span!(
            target: "portal_http",
            "request",
            request_id,
            method = %req.method(),
            route,
        )
    }
}

/// One line per request when its answer is ready: status and duration (the span adds id,
/// method and route).
#[derive(Debug, Clone, Copy)]
struct CompletionLine;

impl<B> OnResponse<B> for CompletionLine {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _: &Span) {
        let elapsed_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "portal_http",
            status = response.status().as_u16(),
            elapsed_ms,
            "request"
        );
    }
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

/// The peer, when the request carries `X-Forwarded-For` but the peer is not a trusted proxy (or
/// no proxy is trusted): the header is ignored, which behind an unconfigured proxy is a mistake.
fn untrusted_forwarding(config: &HttpConfig, req: &Request) -> Option<IpAddr> {
    if !req.headers().contains_key("x-forwarded-for") {
        return None;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    match &config.client_address {
        ClientAddressSource::XForwardedFor { proxies } if proxies.contains(&peer) => None,
        _ => Some(peer),
    }
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

/// An id from outside is used when it is 1–128 characters of letters, digits and `-_.:`.
fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
    .then(|| s.to_owned())
}

/// Records where the request comes from ([`ClientContext`] in the request's extensions).
async fn add_client_context(State(state): State<AppState>, mut req: Request) -> Request {
    let client = client_context(state.config(), &req);
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none()
        && state.first_without_connect_info()
    {
        // Once, on the first request: the serving code is the same for every request.
        tracing::warn!(
            target: "portal_http",
            "a request came without the client's address: the router is not served with \
             into_make_service_with_connect_info::<SocketAddr>(), so every client shares one \
             rate-limit bucket and login throttle and sessions record no address; serve it \
             with axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()). \
             Logged once."
        );
    }
    if !state.untrusted_forwarding_warned()
        && let Some(peer) = untrusted_forwarding(state.config(), &req)
        && state.first_untrusted_forwarding()
    {
        // Once: behind a proxy every request would say it again.
        tracing::warn!(
            target: "portal_http",
            peer = %peer,
            "a request carries X-Forwarded-For from {peer}, which is not a trusted proxy: its \
             header is ignored, so if a reverse proxy stands in front, every client shares the \
             proxy's address and its rate limits and login throttles; set \
             PORTAL_TRUSTED_PROXIES to the proxy's address (HttpConfig::client_address when \
             embedding). Logged once."
        );
    }
    req.extensions_mut().insert(client);
    req
}

const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The Swagger UI's policy (its own scripts and styles), set by its routes before the default.
pub(crate) const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

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
        return ApiError::new(ErrorCode::CsrfFailed).into_response();
    }
    let limit = BodyLimit::of(&req, config).bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::new(ErrorCode::PayloadTooLarge).into_response();
    }
    if csrf::is_unsafe(req.method()) {
        let has_body = declared.is_some_and(|n| n > 0)
            || headers.contains_key(header::TRANSFER_ENCODING)
            || axum::body::HttpBody::size_hint(req.body()).exact() != Some(0);
        match headers.get(header::CONTENT_TYPE) {
            Some(ct) if !is_json(ct) && !is_csv(ct) => {
                return ApiError::new(ErrorCode::UnsupportedMediaType).into_response();
            }
            None if has_body => {
                return ApiError::new(ErrorCode::UnsupportedMediaType).into_response();
            }
            _ => {}
        }
    }
    next.run(req).await
}

/// What a route's request body may be, attached to the route as an [`axum::Extension`] layer
/// outside its guard ([`api_guard`], the web's form guard), which reads it from the request
/// (`route_layer(guard)` and then `route_layer(Extension(limit))` on the routes that take more:
/// the customer import). A route without one takes [`BodyLimit::standard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimit {
    /// The most bytes.
    pub(crate) bytes: usize,
    /// Whether a web form may send a file (`multipart/form-data`).
    pub(crate) multipart: bool,
}

impl BodyLimit {
    /// Every route's: [`HttpConfig::body_limit`], URL-encoded forms only.
    pub(crate) fn standard(config: &HttpConfig) -> Self {
        Self {
            bytes: config.body_limit,
            multipart: false,
        }
    }

    /// The customer import's: [`HttpConfig::import_body_limit`], a file allowed.
    pub(crate) fn upload(config: &HttpConfig) -> Self {
        Self {
            bytes: config.import_body_limit,
            multipart: true,
        }
    }

    /// The limit attached to a request's route, else the standard one.
    pub(crate) fn of(req: &Request, config: &HttpConfig) -> Self {
        req.extensions()
            .get::<Self>()
            .copied()
            .unwrap_or_else(|| Self::standard(config))
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
