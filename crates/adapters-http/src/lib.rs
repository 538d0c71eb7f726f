//! # adapters-http
//!
//! Portal's HTTP adapter on axum 0.8: the JSON API under `/api/v1` with its OpenAPI 3.1 document
//! (`/api/v1/openapi.json`, derived from the handlers by utoipa) and a Swagger UI served from the
//! binary (`/api/docs`), plus `/healthz` and `/readyz`. The server-rendered web UI ([`web`], the
//! pages at `/`) lives in this crate too and shares its infrastructure: [`AppState`], the
//! session and CSRF cookies ([`cookies`], [`csrf`]), the error codes ([`ApiError`]), the rate
//! limits and the hashing semaphore ([`BlockingHasher`]). Its texts live in Project Fluent files,
//! one per language (`locales/de.ftl`, `locales/en.ftl`, compiled in and read with
//! `fluent-bundle`); its forms and paths are typed with `axum-extra` (`Form`, `TypedPath`).
//!
//! It is an adapter: handlers parse the request into the core's values, call one use case of
//! [`portal_core::Portal`] and map the result. Authorization, tenancy and every rule live in the
//! core; the tenant always comes from the session (a customer number in a path is checked by the
//! core, and a foreign one answers 404 like an unknown one).
//!
//! What it adds around the core:
//! - **Cookie sessions**: opaque tokens in `HttpOnly`, `SameSite`, `Path=/` cookies without
//!   `Domain`, `Secure` with the `__Host-` prefix unless the development switch is on
//!   ([`HttpConfig::insecure_development_cookies`]); separate cookies for the session, the pending
//!   second step and the remembered device ([`cookies`]).
//! - **CSRF** on every unsafe request: a token bound to the session (or, before login, to a
//!   double-submit cookie), plus `Origin` and `Sec-Fetch-Site` checks ([`csrf`]).
//! - **Limits**: body size (413), JSON content type (415), per-address token buckets (429 with
//!   `Retry-After`), and password hashing on a fixed set of hashing threads ([`BlockingHasher`]).
//! - **One error shape** with stable codes ([`ErrorCode`]: status, name and description in one
//!   table) for every variant of every core error ([`error`]).
//! - The cross-cutting concerns as tower layers ([`middleware`]): request ids
//!   (`SetRequestIdLayer`/`PropagateRequestIdLayer`), a tracing span per request with its id and
//!   route template (`TraceLayer`) and one completion line without secrets, default security
//!   headers (`SetResponseHeaderLayer::if_not_present`), and the error layer that logs server
//!   errors inside the request's span.
//!
//! See `docs/api.md` for authentication, CSRF, rate limits, paging and the error codes, and
//! `docs/embedding.md` for mounting the router in your own app and guarding your own routes
//! ([`guard`]).
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig, router};
//! use adapters_memory::MemoryStore;
//! use portal_core::{Deps, Portal, config::PortalConfig, permission::PermissionCatalog};
//!
//! let store = Arc::new(MemoryStore::new());
//! let portal = Portal::new(Deps::production(store), PortalConfig::default(), PermissionCatalog::default())
//!     .unwrap();
//! let config = HttpConfig::new("http://127.0.0.1:8080", CookieKey::generate())
//!     .unwrap()
//!     .insecure_development_cookies();
//! let app: axum::Router = router(AppState::new(Arc::new(portal), config, Arc::new(AlwaysReady)));
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//! # let _ = app;
//! ```
//!
//! Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that rate limits and
//! sessions see the client's address; without it every client shares one rate-limit bucket,
//! and the first request logs a warning saying so (once per [`AppState`]).

pub mod api;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod guard;
mod hashing;
pub mod import;
pub mod known_browser;
pub mod metrics;
pub mod middleware;
pub mod oidc;
pub mod path;
pub mod ratelimit;
mod state;
pub mod web;

pub use config::{
    ClientAddressSource, CookieKey, HttpConfig, HttpConfigError, RateLimit, RateLimits,
};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use hashing::BlockingHasher;
pub use state::{AlwaysReady, AppState, Readiness};

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;

/// The OpenAPI document of the API (the same one `/api/v1/openapi.json` serves).
#[must_use]
pub fn openapi(config: &HttpConfig) -> utoipa::openapi::OpenApi {
    api::routes(config).into_openapi()
}

/// The one-time setup link of an invitation `token` (a new operator's, an invited user's): its
/// page under the public URL, joined where the web UI joins every address, so the API's answer
/// and the `portal` command print the same link.
pub fn setup_url(public_url: &str, token: &str) -> String {
    web::urls::under(
        public_url.trim_end_matches('/'),
        web::urls::Invitation {
            token: token.to_owned(),
        },
    )
}

/// The router: the API under `/api/v1`, its document at `/api/v1/openapi.json`, the Swagger UI
/// at `/api/docs` (both when enabled), `/healthz` and `/readyz`, with every middleware applied.
/// Host applications may nest it under a prefix: the path of the configured public URL
/// ([`HttpConfig::public_path`]), which the web UI's links, the Swagger UI and the document's
/// `servers` use.
pub fn router(state: AppState) -> Router {
    let config = state.config().clone();
    // The guard on every route; the import's larger body limit attached to its route, outside
    // the guard, which reads it.
    let guard = from_fn_with_state(state.clone(), middleware::api_guard);
    let uploads = api::upload_routes(&config)
        .route_layer(guard.clone())
        .route_layer(axum::Extension(middleware::BodyLimit::upload(&config)));
    let (api, spec) = api::routes(&config)
        .route_layer(guard)
        .merge(uploads)
        .split_for_parts();
    let api = api.layer(axum::extract::DefaultBodyLimit::max(config.body_limit));
    let mut app: Router<AppState> = Router::new()
        .merge(api)
        .merge(web::routes(&state))
        .merge(oidc::routes(&state))
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz));
    if config.serve_openapi {
        let spec = std::sync::Arc::new(spec);
        app = app.route(
            "/api/v1/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        );
        if config.serve_swagger_ui {
            app = app.merge(swagger_ui(&config));
        }
    }
    let app = app
        .fallback(web::fallback)
        .method_not_allowed_fallback(web::method_not_allowed);
    // Inside the other layers, so the matched route is known (the layer wraps every route).
    let app = app.layer(axum::middleware::from_fn(metrics::track_requests));
    middleware::layered(app, &state).with_state(state)
}

/// The Swagger UI at `/api/docs/`. It loads the document from under the public URL's path
/// ([`HttpConfig::public_path`]), like the web UI's links, so it works where a host application
/// nests the router (`/portal/api/docs/` reads `/portal/api/v1/openapi.json`); `/api/docs`
/// redirects to the page under that path too.
fn swagger_ui(config: &HttpConfig) -> Router<AppState> {
    let base = config.public_path();
    let ui = std::sync::Arc::new(utoipa_swagger_ui::Config::new([web::urls::under(
        base,
        "/api/v1/openapi.json",
    )]));
    let page = web::urls::under(base, "/api/docs/");
    let file = move |tail: Option<axum::extract::Path<String>>| {
        let ui = ui.clone();
        async move { swagger_file(tail.as_deref().map_or("", String::as_str), ui) }
    };
    Router::new()
        .route(
            "/api/docs",
            get(move || {
                let page = page.clone();
                async move { axum::response::Redirect::to(&page) }
            }),
        )
        .route("/api/docs/", get(file.clone()))
        .route("/api/docs/{*rest}", get(file))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            axum::http::header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(middleware::DOCS_CSP),
        ))
}

fn swagger_file(
    tail: &str,
    ui: std::sync::Arc<utoipa_swagger_ui::Config<'static>>,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    match utoipa_swagger_ui::serve(tail, ui) {
        Ok(Some(file)) => {
            let mut response = (StatusCode::OK, file.bytes).into_response();
            if let Ok(v) = HeaderValue::from_str(&file.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            if file.gzpipped {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        Ok(None) => ApiError::with_message(ErrorCode::NotFound, "no such file of the API docs")
            .into_response(),
        Err(e) => ApiError::internal(format!("swagger ui: {e}")).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::with_message(ErrorCode::NotFound, "no such endpoint")
}
