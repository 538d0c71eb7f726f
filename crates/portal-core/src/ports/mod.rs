//! Ports: what the core needs from the outside world, as traits. Adapters implement them
//! (`adapters-memory`, `adapters-postgres`, …); the core never does I/O itself.
//!
//! Storage is split in two: [`Queries`] (reads) and [`Committer`] (the one atomic write). A use
//! case reads what it needs, decides, and hands the committer one [`Commit`]: expected versions,
//! entity writes, audit records and outbox messages, applied all together or not at all.
//!
//! One file per port family, everything re-exported here (`portal_core::ports::Commit`, whatever
//! file it lives in):
//!
//! | file | holds |
//! | --- | --- |
//! | `system.rs` | [`Clock`], [`IdGenerator`], [`SecretGenerator`] |
//! | `hashing.rs` | [`PasswordHasher`] |
//! | `legacy.rs` | [`LegacyDirectory`] ("Servicewelt") and its claims |
//! | `phone.rs` | [`SmsSender`] (SMS and voice codes) |
//! | `passkey.rs` | [`PasskeyVerifier`] (WebAuthn ceremonies) |
//! | `error.rs` | [`StoreError`], [`UniqueKey`] |
//! | `commit.rs` | [`Committer`], [`Commit`], [`Write`], [`Counter`], [`Expired`] |
//! | `queries.rs` | [`Queries`] and its query types |
//! | `outbox.rs` | [`OutboxStore`], for the outbox's dispatchers and dead-letter pages |

mod commit;
mod error;
mod hashing;
mod legacy;
mod observer;
mod outbox;
mod passkey;
mod phone;
mod queries;
mod system;

pub use commit::*;
pub use error::*;
pub use hashing::*;
pub use legacy::*;
pub use observer::*;
pub use outbox::*;
pub use passkey::*;
pub use phone::*;
pub use queries::*;
pub use system::*;
