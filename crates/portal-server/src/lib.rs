//! # portal-server
//!
//! The `portal` binary: configuration and composition root of the Portal server. It wires
//! `portal-core` to its adapters — storage (`adapters-postgres`: SQLite or Postgres), mail
//! (`adapters-smtp`: SMTP or the development mailbox) and HTTP (`adapters-http`) — and adds
//! nothing to the rules: every command goes through the same use cases the HTTP API calls.
//!
//! For a host application that embeds Portal it offers the same composition in one call:
//! [`embed::Embedded::builder`] gives the portal, the router's state and the outbox on memory,
//! SQLite or Postgres, with Argon2id on hashing threads, and [`prelude`] imports what a host
//! app uses (`docs/embedding.md`). The other modules are public for the binary's tests and for
//! reading.
//!
//! ## Commands
//!
//! | command | what it does |
//! | --- | --- |
//! | `portal serve` | migrate, deliver mail, serve HTTP until SIGINT/SIGTERM; creates the first operator |
//! | `portal migrate` | apply pending migrations and report them; `--dry-run` lists them and changes nothing |
//! | `portal operator create --email …` | create an operator and print the one-time setup link |
//! | `portal customers import FILE.csv` | create or update customers (the format: [`adapters_http::import`]) |
//! | `portal demo` | seed a demo customer with an admin and employees ([`demo`]) |
//! | `portal housekeeping` | remove expired rows once and report the counts ([`housekeeping`]) |
//! | `portal backup FILE` | consistent copy of the SQLite database while servers run ([`ops`]; Postgres: `pg_dump`) |
//! | `portal restore FILE [--force]` | restore an SQLite backup, checking the server secret ([`ops`]) |
//! | `portal secret rotate` | re-seal everything under the current secret, retire the old ones ([`ops`]) |
//!
//! ## Configuration
//!
//! Environment variables, over an optional TOML file (`--config portal.toml` or
//! `PORTAL_CONFIG`) whose keys are the variable names in lower case without `PORTAL_`
//! (`bind = "0.0.0.0:8080"`, `database_url = "postgres://…"`). A blank variable counts as unset.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `PORTAL_CONFIG` | TOML file with any of these settings | none |
//! | `DATABASE_URL` | `postgres://…`, `sqlite://path`, or a file path (SQLite) | `portal.db` (SQLite, created) |
//! | `PORTAL_BIND` | listening address (port 0: any free port) | `127.0.0.1:8080` |
//! | `PORTAL_METRICS_BIND` | separate listener for `GET /metrics` (Prometheus) | off |
//! | `PORTAL_PUBLIC_URL` | public base URL: links in mails, cookie origin | `http://` + the listening address |
//! | `PORTAL_DEV_MODE` | development mode: cookies without `Secure`, phone codes logged, demo allowed | on when `PORTAL_PUBLIC_URL` is unset, else off |
//! | `PORTAL_SECRET_KEY` | 32-byte server secret, base64 (`openssl rand -base64 32`); required on Postgres | generated into the key file |
//! | `PORTAL_SECRET_KEY_FILE` | file holding the secret (mode 0600) | next to the SQLite file: `portal.secret` |
//! | `PORTAL_OLD_SECRET_KEYS` | earlier secrets (base64, comma-separated): open what they sealed until `portal secret rotate` | none |
//! | `PORTAL_OPERATOR_EMAIL` | address of the first operator, created by `serve` when none exists | `operator@portal.localhost` in development mode with the mailbox; else none is created |
//! | `PORTAL_TRUSTED_PROXIES` | comma-separated proxy addresses whose `X-Forwarded-For` is believed | none (the peer address counts) |
//! | `PORTAL_RATE_LIMITS` | per-address rate limits of login, registration, code and reset endpoints (`on`/`off`); the core's per-account throttles stay on | `on` |
//! | `PORTAL_LOG` (or `RUST_LOG`) | log filter, `tracing` `EnvFilter` syntax | `info` (libraries quieter) |
//! | `PORTAL_LOG_FORMAT` | `text` or `json` (one object per line), on standard error | `text` |
//! | `PORTAL_SHUTDOWN_TIMEOUT` | seconds in-flight requests get after SIGINT/SIGTERM | `30` |
//! | `PORTAL_HOUSEKEEPING_INTERVAL` | seconds between housekeeping runs of `serve`; `0` = off | `600` |
//! | `PORTAL_AUDIT_RETENTION_DAYS` | days change-log entries are kept; `0` = forever | `0` (forever) |
//! | `PORTAL_PENDING_REGISTRATION_RETENTION_DAYS` | days after which registrations never confirmed are removed (audited) | `7` |
//! | `PORTAL_INVITATION_RETENTION_DAYS` | days after the last invitation link expired that invited users who never accepted are removed (audited), at most 30 | `30` |
//! | `PORTAL_DB_POOL_SIZE` | most database connections per process | `16` (Postgres), `8` (SQLite file) |
//! | `PORTAL_DB_ACQUIRE_TIMEOUT` | seconds a request waits for a database connection (incl. connecting) before it answers 503 | `5` |
//! | `PORTAL_DB_STATEMENT_TIMEOUT` | seconds a Postgres statement may run before it is cancelled (503); `0` = no limit | `30` |
//! | `PORTAL_MAIL_SEND_TIMEOUT` | seconds one mail delivery may take | `60` |
//! | `PORTAL_MAIL_LEASE` | seconds a dispatcher holds the mails it claimed (longer than the send timeout); a crashed process's unsent mails go out after it | `300` |
//! | `SMTP_URL` | SMTP server (`smtp://`, `smtps://`, `?tls=starttls`; see `docs/operations.md`) | unset: the development mailbox |
//! | `PORTAL_MAIL_DIR` | development mailbox directory (`.eml` files; codes and links also logged) | `mail-outbox` |
//! | `PORTAL_MAIL_FROM` | sender address | `no-reply@portal.localhost` |
//! | `PORTAL_PRODUCT_NAME` | product name in mails and authenticator apps | `Portal` |
//! | `PORTAL_VENDOR_NAME` | who signs mails | the product name |
//! | `PORTAL_SUPPORT_PHONE` | support phone in the mail footer | none |
//! | `PORTAL_SUPPORT_EMAIL` | support address in the mail footer | none |
//! | `PORTAL_SMS_URL` | phone gateway: endpoint each SMS code is posted to (`https://`), through the outbox; see `docs/operations.md`, "Phone codes" | unset: codes logged in development mode, no phone factor in production |
//! | `PORTAL_SMS_AUTH_HEADER` | secret: one header `Name: value` sent with every request (`Authorization: Basic …`, `X-Api-Key: …`) | none |
//! | `PORTAL_SMS_CONTENT_TYPE` | `json` or `form`: the body's type; every value is escaped for it | required with a URL |
//! | `PORTAL_SMS_BODY_TEMPLATE` | the request body, a minijinja template over `to`, `text`, `code`, `sender`, … | required with a URL |
//! | `PORTAL_SMS_SENDER` | sender name or number, `sender` in the template | empty |
//! | `PORTAL_SMS_SUCCESS_STATUS` | statuses that mean accepted (`2xx`, `200,201`) | `2xx` |
//! | `PORTAL_SMS_SUCCESS_JSON` | `/json/pointer=value` an accepted answer must also hold | none |
//! | `PORTAL_SMS_SUCCESS_BODY` | text an accepted answer must also contain | none |
//! | `PORTAL_SMS_TIMEOUT` | seconds one gateway request may take (1–60) | `10` |
//! | `PORTAL_SMS_CONNECT_TIMEOUT` | seconds to connect to the gateway (1–60) | `5` |
//!
//! Refused at start (exit code 2, the message names the variable, never a secret):
//! a plain-`http://` public URL on a host other than loopback outside development mode; a
//! non-loopback listening address without a public URL outside development mode; the development
//! mailbox (no `SMTP_URL`) outside development mode; `serve` on Postgres without `PORTAL_SECRET_KEY`
//! (several processes must share one secret); unknown keys in the file.
//!
//! ## Secrets
//!
//! One server secret ([`secrets`]) from which the MFA sealing key and the cookie/CSRF key are
//! derived (HMAC-SHA256 with a label per purpose). On SQLite it is generated once into the key
//! file and reused; back it up with the database.
//!
//! ## Example
//!
//! ```
//! use portal_server::config::{ServerConfig, Source};
//!
//! let source = Source::from_parts(|_| None, "bind = \"127.0.0.1:9000\"").unwrap();
//! let config = ServerConfig::resolve(&source).unwrap();
//! assert_eq!(config.public_url(), "http://127.0.0.1:9000");
//! assert!(config.development);
//! ```

pub mod app;
pub mod audit_cli;
pub mod cli;
pub mod config;
pub mod demo;
pub mod embed;
pub mod housekeeping;
pub mod legacy_cli;
pub mod metrics;
pub mod oidc_cli;
pub mod ops;
pub mod secrets;
pub mod serve;
pub mod webhooks_cli;

/// What a host application embedding Portal uses: `use portal_server::prelude::*;`.
///
/// The one-call wiring ([`Embedded`](crate::embed::Embedded)), the router and its state, the
/// guards for your own routes and the user they give a handler, the error type of handlers,
/// and the core's service, actors and the values handlers parse.
pub mod prelude {
    pub use crate::embed::{EmbedBuilder, Embedded};
    pub use adapters_http::cookies::CookieName;
    pub use adapters_http::guard::{PortalUser, RequireAdmin, RequirePermission, RequireSession};
    pub use adapters_http::{ApiError, AppState, CookieKey, ErrorCode, HttpConfig, router};
    pub use portal_core::permission::{PermissionCatalog, PermissionKey, PermissionSet};
    pub use portal_core::values::{CustomerNumber, EmailAddress};
    pub use portal_core::{Actor, Portal};
}

/// The crates Portal is built from, for host applications that depend on `portal-server` only.
pub use {adapters_http, adapters_memory, portal_core};
