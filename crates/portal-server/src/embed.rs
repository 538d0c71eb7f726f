//! Portal wired for a host application in one call: [`Embedded::builder`] → `build()` gives the
//! [`Portal`], the router's [`AppState`] and the store's outbox, on memory or a database URL,
//! with what production needs already in place:
//!
//! - password hashing (Argon2id) on dedicated threads ([`adapters_http::BlockingHasher`]), not
//!   on the async workers;
//! - the cookie/CSRF key from outside ([`EmbedBuilder::cookie_key`], e.g.
//!   `CookieKey::from_base64` of a secret): a generated key changes on every restart and
//!   breaks the CSRF tokens of open pages, so outside development mode one is required;
//! - the key that names accounts in login counters derived from the cookie key (unless
//!   [`PortalConfig::counter_key`] is set), so counter rows cannot be matched to addresses;
//! - `Secure` cookies with the `__Host-` prefix, or plain ones in development
//!   ([`EmbedBuilder::development`]); [`Embedded::session_cookie`] names the session cookie
//!   either way (for in-process tests);
//! - migrations applied, the readiness probe on the database, the outbox for the dead-letter
//!   endpoints.
//!
//! Serve the router with `into_make_service_with_connect_info::<SocketAddr>()` (the first
//! request without it logs a warning: every client would share one rate-limit bucket).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use portal_server::embed::Embedded;
//!
//! let embedded = Embedded::builder("http://127.0.0.1:3000/portal")
//!     .database("memory") // or "sqlite://portal.db?mode=rwc", "postgres://…"
//!     .development()
//!     .build()
//!     .await
//!     .unwrap();
//! assert_eq!(embedded.session_cookie(), "portal-session");
//! let app: axum::Router = adapters_http::router(embedded.state.clone());
//! # let _ = app;
//! # });
//! ```

use crate::app::{Failure, open_store};
use crate::config::Database;
use crate::serve::DatabaseReadiness;
use adapters_http::cookies::CookieName;
use adapters_http::{AlwaysReady, AppState, BlockingHasher, CookieKey, HttpConfig, Readiness};
use portal_core::config::PortalConfig;
use portal_core::permission::PermissionCatalog;
use portal_core::ports::OutboxStore;
use portal_core::throttle::CounterKey;
use portal_core::{Deps, Portal};
use std::sync::Arc;

/// What the login counters' key is derived from the cookie key with (see [`CookieKey::derive`]).
const COUNTER_KEY_LABEL: &[u8] = b"portal embedded login counter key v1";

/// A portal ready to mount: see the [module](self).
#[derive(Clone)]
pub struct Embedded {
    /// The portal service: every use case.
    pub portal: Arc<Portal>,
    /// The state of [`adapters_http::router`] and of the guards
    /// ([`adapters_http::guard::RequirePermission::new`]).
    pub state: AppState,
    /// The store's outbox: what the dispatchers deliver (`portal_dispatch::Dispatcher`, one per
    /// kind: mail with `adapters_smtp::MailDelivery`, password-reset requests with
    /// `portal_core::service::PasswordResetRequests(portal.clone())`, which the portal processes
    /// itself behind the answer, signed webhook events with `portal_dispatch::WebhookSender` — the
    /// router serves the operator's webhook API, and without that dispatcher their events stay
    /// queued), and where tests read mailed codes
    /// (`portal_testkit::seed::mailed_secret`; a reset link only after
    /// `portal_core::testing::process_reset_requests`).
    pub outbox: Arc<dyn OutboxStore>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// Starts a builder for a portal whose public URL (links in mails, cookie origin; its path
    /// is where you nest the router) is `public_url`.
    #[must_use]
    pub fn builder(public_url: &str) -> EmbedBuilder {
        EmbedBuilder {
            public_url: public_url.to_owned(),
            database: "memory".to_owned(),
            cookie_key: None,
            development: false,
            catalog: PermissionCatalog::default(),
            config: PortalConfig::default(),
        }
    }

    /// The name of the session cookie under these settings: `portal-session` in development,
    /// `__Host-portal-session` otherwise. Its value is a session token
    /// (`Portal::login`, `portal_testkit::seed::session`).
    #[must_use]
    pub fn session_cookie(&self) -> String {
        CookieName::Session.name(self.state.config())
    }
}

/// Settings of [`Embedded`]; `build()` wires them.
#[derive(Debug, Clone)]
pub struct EmbedBuilder {
    public_url: String,
    database: String,
    cookie_key: Option<CookieKey>,
    development: bool,
    catalog: PermissionCatalog,
    config: PortalConfig,
}

impl EmbedBuilder {
    /// Where the data lives: `memory` (the default; nothing survives a restart),
    /// `sqlite://file.db?mode=rwc`, `sqlite::memory:`, or `postgres://…`. Migrations are applied
    /// when the portal is built.
    #[must_use]
    pub fn database(mut self, url: &str) -> Self {
        url.trim().clone_into(&mut self.database);
        self
    }

    /// The key that signs CSRF tokens (32 bytes; `CookieKey::from_base64` of a secret, e.g.
    /// `openssl rand -base64 32`). The same on every restart and every process. Required
    /// outside development mode.
    #[must_use]
    pub fn cookie_key(mut self, key: CookieKey) -> Self {
        self.cookie_key = Some(key);
        self
    }

    /// Development mode: cookies without `Secure` and without the `__Host-` prefix (for
    /// `http://localhost` and in-process tests), and a generated cookie key when none is given.
    #[must_use]
    pub fn development(mut self) -> Self {
        self.development = true;
        self
    }

    /// Your own permission catalog instead of the manual's ten permissions.
    #[must_use]
    pub fn catalog(mut self, catalog: PermissionCatalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// The core's settings (defaults: [`PortalConfig::default`]; set `mfa_key` for
    /// authenticator apps).
    #[must_use]
    pub fn config(mut self, config: PortalConfig) -> Self {
        self.config = config;
        self
    }

    /// Opens the store (applying migrations), wires the portal with production adapters and
    /// Argon2id behind [`BlockingHasher`], and the HTTP state.
    ///
    /// # Errors
    /// The database URL is not one of the forms above or cannot be opened; the public URL is
    /// malformed; no cookie key outside development mode; the configuration is out of range.
    pub async fn build(self) -> Result<Embedded, Failure> {
        let key = match (self.cookie_key, self.development) {
            (Some(key), _) => key,
            (None, true) => CookieKey::generate(),
            (None, false) => {
                return Err(Failure(
                    "a cookie key is required outside development mode \
                     (EmbedBuilder::cookie_key with CookieKey::from_base64 of a secret): a \
                     generated one changes on every restart and breaks the CSRF tokens of open \
                     pages"
                        .to_owned(),
                ));
            }
        };
        let mut config = self.config;
        if config.counter_key.is_none() {
            // Login counters name accounts by a keyed hash: under a public default key anyone
            // could compute which counter row is whose.
            config.counter_key = Some(CounterKey::from_bytes(key.derive(COUNTER_KEY_LABEL)));
        }
        let mut http =
            HttpConfig::new(&self.public_url, key).map_err(|e| Failure::of("public URL", e))?;
        if self.development {
            http = http.insecure_development_cookies();
        }
        let (mut deps, outbox, readiness): (Deps, Arc<dyn OutboxStore>, Arc<dyn Readiness>) =
            if self.database == "memory" {
                let store = Arc::new(adapters_memory::MemoryStore::new());
                (
                    Deps::production(store.clone()),
                    store,
                    Arc::new(AlwaysReady),
                )
            } else {
                let database =
                    Database::parse(&self.database).map_err(|e| Failure::of("database URL", e))?;
                let (store, _) = open_store(&database).await?;
                let store = Arc::new(store.with_catalog(&self.catalog));
                (
                    Deps::production(store.clone()),
                    store.clone(),
                    Arc::new(DatabaseReadiness(store)),
                )
            };
        deps.hasher = Arc::new(BlockingHasher::from_config(deps.hasher.clone(), &http));
        let mut portal =
            Portal::new(deps, config, self.catalog).map_err(|e| Failure::of("portal", e))?;
        // Passkeys for a public URL with a host name (an IP address cannot be a relying party).
        if let Ok(v) = crate::serve::passkey_verifier(&self.public_url, "Portal") {
            portal = portal.with_passkey_verifier(Arc::new(v));
        }
        let portal = Arc::new(portal);
        let state = AppState::new(portal.clone(), http, readiness).with_outbox(outbox.clone());
        Ok(Embedded {
            portal,
            state,
            outbox,
        })
    }
}
