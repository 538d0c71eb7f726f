//! Time, ids and randomness: the only way they reach the core (the crate's `clippy.toml` bans
//! `Utc::now`, `Uuid::new_v4`/`now_v7` and `getrandom::fill` outside `defaults.rs`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The source of the current time. Every time the core uses comes from here.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// Mints entity ids.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new, unique id. Implementations SHOULD return time-ordered ids (UUIDv7) so inserts stay
    /// local in indexes.
    fn new_id(&self) -> Uuid;
}

/// Cryptographically secure randomness for tokens, codes and salts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SecretGenerator: Send + Sync {
    /// Fills `buf` with random bytes. Production implementations MUST draw from the operating
    /// system's CSPRNG.
    fn fill(&self, buf: &mut [u8]);
}
