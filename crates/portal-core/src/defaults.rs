//! Production implementations of the small ports: the system clock, UUIDv7 ids and the operating
//! system's CSPRNG. The only place in the core allowed to read the wall clock or the OS RNG.
#![allow(clippy::disallowed_methods)]

use crate::ports::{Clock, IdGenerator, SecretGenerator};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The wall clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Time-ordered UUIDv7 ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsSecretGenerator;

impl SecretGenerator for OsSecretGenerator {
    fn fill(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random number generator failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_randomness_is_not_constant() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsSecretGenerator.fill(&mut a);
        OsSecretGenerator.fill(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn ids_are_v7_and_ordered() {
        let a = UuidV7Ids.new_id();
        let b = UuidV7Ids.new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b);
    }
}
