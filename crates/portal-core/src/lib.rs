//! # portal-core
//!
//! The heart of Portal, a library and server for B2B customer portals: the place where a software
//! vendor's customers register, link their account to their company's customer number, get an
//! administrator who manages their colleagues' access, and secure their login.
//!
//! This crate is pure: value objects that are valid by construction, entities with
//! intention-revealing transitions, the domain rules R1–R22 (`docs/rules.md`), the ports (traits) the
//! rules need, and the use cases on one [`Portal`] service. It has no tokio, database, HTTP or
//! SMTP dependency; adapters live in their own crates (`adapters-memory`, `adapters-postgres`,
//! `adapters-smtp`, `adapters-http`). See `docs/architecture.md` for the map of rules to code and
//! tests, and `docs/embedding.md` for wiring it into your own service.
//!
//! ## Shape of a change
//!
//! A use case loads what it needs (with versions), checks authorization on that fresh data,
//! decides, and hands the [`Committer`](ports::Committer) one [`Commit`](ports::Commit): expected
//! versions, entity writes, exactly one audit record and the outbox mails. The adapter applies it
//! atomically or fails with `Conflict`, and the use case decides again.
//!
//! ## Example
//!
//! ```
//! use portal_core::values::CustomerNumber;
//!
//! let n = CustomerNumber::parse(" D123456789 ").unwrap();
//! assert_eq!(n.as_str(), "123456789");
//! assert_eq!(n.printed(), "D123456789");
//! ```
//!
//! A whole flow on the in-memory adapter is in `examples/quickstart.rs`
//! (`cargo run --example quickstart`).

pub mod admin_request;
pub mod audit;
pub mod audit_export;
pub mod authz;
pub mod challenge;
pub mod config;
pub mod customer;
pub mod data_export;
pub mod defaults;
pub mod error;
pub mod hashing;
pub mod ids;
pub mod legacy_hash;
pub mod mail;
pub mod mfa;
pub mod oidc;
pub mod outbox;
pub mod passkey;
pub mod password;
pub mod permission;
pub mod ports;
#[cfg(feature = "proptest")]
pub mod property;
pub mod secret;
pub mod secretbox;
pub mod service;
pub mod session;
#[cfg(any(test, feature = "testkit"))]
pub mod testing;
pub mod throttle;
pub mod token;
pub mod totp;
pub mod user;
pub mod values;

pub use service::{Actor, Deps, Portal};
