//! End-to-end tests of Portal: the real `portal` binary (`crates/portal-server/src/main.rs`, built
//! as this package's `portal-under-test`) against real Postgres (`TestPostgres`: a fresh database
//! per test on 127.0.0.1:5432 or a throwaway cluster) and a real SMTP server (aiosmtpd on a free
//! loopback port), driven over HTTP like a browser (cookie jar, CSRF token, `Origin`), with every
//! code and link read out of the delivered mails.
//!
//! - [`flows`]: every flow of the manual, from registration to the change log; password reset;
//!   contact the administrator.
//! - [`mfa`]: TOTP enrolment and login with it, the remembered device, the recovery code.
//! - [`oidc`]: the OpenID Connect provider with relying parties no one here wrote (Python's
//!   Authlib, Rust's `openidconnect`): code flow with PKCE, claims, userinfo, introspection,
//!   refresh, a lock that revokes at once and reaches them by back-channel logout (also when they
//!   were down), two processes sharing codes and keys.
//! - [`passkeys`]: passkeys through the API with a software authenticator on SQLite and
//!   Postgres: registration, sign-in alone, second step, rename, removal, every refusal, `amr`
//!   at an application, `/metrics`.
//! - [`two_processes`]: two `portal serve` on one database behave as one system.
//! - [`cli`]: `portal operator create`, `portal customers import` and `portal demo` on Postgres.
//! - [`crash`]: `kill -9` under write load on SQLite and Postgres: no answered change lost,
//!   nothing committed half, every audit chain intact, every queued mail delivered.
//! - [`outage`]: a Postgres restart under load, a pool exhausted by a held lock, an SQLite file
//!   that cannot grow: 503 `unavailable` at once, never 500, recovery without a restart.
//! - [`schemathesis`]: the OpenAPI document against the running server (schemathesis from PyPI,
//!   installed by `scripts/test-deps`).

mod cli;
mod crash;
mod flows;
mod mfa;
mod oidc;
mod outage;
mod passkeys;
mod schemathesis;
mod support;
mod two_processes;
