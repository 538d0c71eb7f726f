//! The `portal` binary as a real process, every file a module of this one test binary: its
//! commands in a fresh directory ([`cli`]) and `portal serve` from start to graceful shutdown
//! ([`serve`]); and the one-call wiring for host applications ([`embed`]).
//!
//! Run one test with `cargo nextest run -p portal-server serve::…` (or `cargo test -p
//! portal-server --test integration serve::…`).

mod cli;
mod embed;
mod legacy;
mod ops;
mod serve;
