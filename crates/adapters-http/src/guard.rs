//! Protecting a host application's own routes with Portal's sessions and permissions.
//!
//! A host app (say an invoice service) mounts Portal's [`router`](crate::router) under a prefix
//! and guards its own routes with [`RequirePermission`] or [`RequireAdmin`]. The guards apply the
//! same rules as Portal's own endpoints and give the same answers:
//!
//! - no valid full session (none, expired, ended, or its user locked or deleted: R11) → 401
//!   `unauthenticated`;
//! - an unsafe method without a valid CSRF token or from another origin → 403 `csrf_failed`;
//! - a user who may not enter the area (R1: active ∧ ¬locked ∧ customer entitled ∧ (admin ∨
//!   holds the permission)) → 403 `forbidden`;
//! - data of another customer → 404 `not_found`, exactly like unknown data (R2), through
//!   [`PortalUser::ensure_customer`].
//!
//! The user, role, permissions and customer are loaded for every request, so a permission
//! revoked or a user locked a moment ago is refused at the next request (R6, R11).
//!
//! ```
//! use adapters_http::guard::{PortalUser, RequirePermission};
//! use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig};
//! use axum::{Router, routing::get};
//! use std::sync::Arc;
//!
//! async fn invoices(user: PortalUser) -> String {
//!     format!("invoices of customer {}", user.customer_number().unwrap_or_default())
//! }
//!
//! let store = Arc::new(adapters_memory::MemoryStore::new());
//! let portal = portal_core::Portal::new(
//!     portal_core::Deps::production(store),
//!     Default::default(),
//!     Default::default(),
//! )
//! .unwrap();
//! let config = HttpConfig::new("http://127.0.0.1:3000", CookieKey::generate()).unwrap();
//! let state = AppState::new(Arc::new(portal), config, Arc::new(AlwaysReady));
//! let app: Router = Router::new()
//!     .route("/invoices", get(invoices))
//!     .route_layer(RequirePermission::new(&state, "documents").unwrap())
//!     .nest("/portal", adapters_http::router(state));
//! # let _ = app;
//! ```

use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use portal_core::permission::{PermissionKey, UnknownPermission};
use portal_core::service::Principal;
use portal_core::user::Role;
use portal_core::values::CustomerNumber;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The authenticated Portal user of a request to a host route. As an extractor it reuses what a
/// guard put into the request, or authenticates itself (401 without a valid session).
#[derive(Debug, Clone)]
pub struct PortalUser(pub Principal);

impl PortalUser {
    /// The principal (session, user, customer as loaded for this request).
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    /// The actor to pass to Portal's use cases.
    #[must_use]
    pub fn actor(&self) -> portal_core::Actor {
        self.0.actor()
    }

    /// The user's customer number, if linked.
    #[must_use]
    pub fn customer_number(&self) -> Option<String> {
        self.0.customer().map(|c| c.number().to_string())
    }

    /// Passes when `number` is the user's own customer; answers 404 `not_found` otherwise,
    /// exactly like an unknown customer (R2).
    ///
    /// # Errors
    /// Another customer's (or no) number.
    pub fn ensure_customer(&self, number: &CustomerNumber) -> Result<(), ApiError> {
        match self.0.customer() {
            Some(c) if c.number() == number => Ok(()),
            _ => Err(ApiError::new(ErrorCode::NotFound)),
        }
    }
}

async fn authenticate(state: &AppState, parts: &Parts) -> Result<Principal, ApiError> {
    if csrf::is_unsafe(&parts.method) && csrf::check(state.config(), &parts.headers).is_err() {
        return Err(ApiError::new(ErrorCode::CsrfFailed));
    }
    let token = cookies::read(&parts.headers, state.config(), CookieName::Session)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
    Ok(state.portal().authenticate(&token).await?)
}

/// Behind a guard ([`RequirePermission`], [`RequireAdmin`], [`RequireSession`]) the principal is
/// in the request already; without one the extractor answers 401, so a route cannot forget the
/// check by accident. Works with any router state.
impl<S: Send + Sync> FromRequestParts<S> for PortalUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))
    }
}

#[derive(Debug, Clone)]
enum Rule {
    Area(PermissionKey),
    Admin,
    Session,
}

/// A tower layer that lets a request through only for a user who may enter one protected area
/// (R1). Put it on the host's routes with `route_layer`.
#[derive(Clone)]
pub struct RequirePermission {
    state: AppState,
    rule: Rule,
}

impl std::fmt::Debug for RequirePermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequirePermission")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl RequirePermission {
    /// A guard for the area with this catalog key (e.g. `"documents"` for "Meine Belege").
    ///
    /// # Errors
    /// The key is not in the portal's catalog (a typo would otherwise deny everybody silently).
    pub fn new(state: &AppState, area: &str) -> Result<Self, UnknownPermission> {
        let key = state.portal().catalog().resolve(area)?;
        Ok(Self {
            state: state.clone(),
            rule: Rule::Area(key),
        })
    }
}

/// A tower layer that lets a request through only for an active, unlocked administrator of a
/// customer (the user's own customer; scope data with [`PortalUser::ensure_customer`]).
#[derive(Clone)]
pub struct RequireAdmin(RequirePermission);

impl std::fmt::Debug for RequireAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequireAdmin")
    }
}

impl RequireAdmin {
    /// The guard.
    #[must_use]
    pub fn new(state: &AppState) -> Self {
        Self(RequirePermission {
            state: state.clone(),
            rule: Rule::Admin,
        })
    }
}

/// A tower layer that lets a request through for any logged-in user with a full session (for host
/// routes that decide themselves, with [`PortalUser`]).
#[derive(Clone)]
pub struct RequireSession(RequirePermission);

impl std::fmt::Debug for RequireSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequireSession")
    }
}

impl RequireSession {
    /// The guard.
    #[must_use]
    pub fn new(state: &AppState) -> Self {
        Self(RequirePermission {
            state: state.clone(),
            rule: Rule::Session,
        })
    }
}

impl<S> Layer<S> for RequireSession {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.0.layer(inner)
    }
}

fn allowed(state: &AppState, rule: &Rule, p: &Principal) -> bool {
    match rule {
        Rule::Area(key) => state.portal().may_access_area(p, key),
        Rule::Admin => {
            p.user().role() == Role::Administrator
                && p.customer()
                    .is_some_and(|c| p.user().is_active_admin_of(c.id()))
        }
        Rule::Session => true,
    }
}

impl<S> Layer<S> for RequirePermission {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            guard: self.clone(),
        }
    }
}

impl<S> Layer<S> for RequireAdmin {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.0.layer(inner)
    }
}

/// The service a guard wraps around a host route.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: RequirePermission,
}

impl<S> std::fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("guard", &self.guard)
            .finish()
    }
}

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let principal = match authenticate(&guard.state, &parts).await {
                Ok(p) => p,
                Err(e) => return Ok(e.into_response()),
            };
            if !allowed(&guard.state, &guard.rule, &principal) {
                return Ok(ApiError::new(ErrorCode::Forbidden).into_response());
            }
            parts.extensions.insert(principal);
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}
