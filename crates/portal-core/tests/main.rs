//! The tests of the `Portal` service, every file a module of this one test binary (so the shared
//! `support` world is compiled once): the real core on the in-memory store with deterministic
//! fakes, one module per flow of the manual, plus fault injection (`faults`), the property tests
//! of the management rules (`properties`) and of login protection (`mfa_properties`), and TOTP
//! interoperability with pyotp (`totp_interop`).
//!
//! Test names are `module::test`, e.g. `login::every_login_failure_gets_the_same_answer`; run one
//! with `cargo nextest run -p portal-core login::every_login_failure_gets_the_same_answer`
//! (or `cargo test -p portal-core --test integration login::…`).

mod admin_requests;
mod audit_log;
mod contact;
mod customers;
mod data_export;
mod faults;
mod housekeeping;
mod legacy_import;
mod login;
mod login_protection;
mod mfa;
mod mfa_errors;
mod mfa_expiry;
mod mfa_properties;
mod mfa_recovery_channel;
mod oidc;
mod onboarding;
mod outbox;
mod password_reset;
mod profile;
mod properties;
mod registration;
mod second_factor_policy;
mod support;
mod totp_interop;
mod user_admin;
