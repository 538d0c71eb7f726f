//! The HTTP adapter's tests, every file a module of this one test binary (so the two support
//! modules are compiled once): the router driven with `oneshot` by a cookie-keeping client on the
//! real core and the in-memory store.
//!
//! - JSON API: [`auth`], [`me`], [`customers`], [`operator`], [`security`] (headers, cookies, CSRF,
//!   limits, the OpenAPI document), [`faults`] (503/500/panics), [`codes`] (every error code is
//!   answered by some test), [`guard`] (the layer that protects a host app's routes), [`hashing`]
//!   (`BlockingHasher`); helpers in [`support`].
//! - OpenID Connect provider: [`oidc`] (every refusal with the spec's error, the authorization
//!   request's options, tokens bound to live state, key rotation, and the sign-in in Chromium);
//!   helpers in `support::oidc`.
//! - Web UI: [`web_pages`] through the router, [`web_browser`] in a real Chromium; helpers in
//!   [`web_support`].
//!
//! `tests/logs.rs` is a binary of its own: it installs a tracing subscriber, which needs a process
//! without other tests (see there). Run one test with
//! `cargo nextest run -p adapters-http auth::registration_mails_a_code_and_verifying_it_logs_in`
//! (or `cargo test -p adapters-http --test integration auth::…`).

mod auth;
mod codes;
mod customers;
mod export;
mod faults;
mod guard;
mod hashing;
mod me;
mod oidc;
mod operator;
mod operator_clients;
mod passkeys;
mod security;
mod support;
mod web_browser;
mod web_operator_clients;
mod web_pages;
mod web_passkeys;
mod web_support;
