//! Argon2id password hashing (R13): m = 19 MiB, t = 2, p = 1 (OWASP's second option), a 16-byte
//! salt from the [`SecretGenerator`], and the PHC string as the stored form.
//!
//! The work is CPU-bound and synchronous: it runs on the calling thread. Servers wrap the hasher
//! so it runs on a blocking pool behind a semaphore (see `adapters-http`), which bounds both
//! memory (19 MiB per hash in flight) and the damage of a login flood.

use crate::password::{Password, PasswordHash};
use crate::ports::{HashError, PasswordHasher, SecretGenerator};
use crate::secret::SecretString;
use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Params, Version};
use argon2::{PasswordHasher as _, PasswordVerifier as _};
use async_trait::async_trait;
use std::sync::{Arc, OnceLock};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Cost {
    /// OWASP's recommended minimum, the production default: 19 MiB, 2 iterations, 1 lane.
    pub const OWASP: Self = Self {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };

    /// The cheapest parameters argon2 accepts. For tests only: real Argon2id, microseconds.
    pub const INSECURE_FAST: Self = Self {
        m_kib: 8,
        t: 1,
        p: 1,
    };
}

/// The Argon2id hasher.
pub struct Argon2idHasher {
    params: Params,
    cost: Argon2Cost,
    random: Arc<dyn SecretGenerator>,
    dummy: OnceLock<PasswordHash>,
}

impl std::fmt::Debug for Argon2idHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2idHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl Argon2idHasher {
    /// The production hasher (m = 19 MiB, t = 2, p = 1).
    #[must_use]
    pub fn new(random: Arc<dyn SecretGenerator>) -> Self {
        Self::with_cost(Argon2Cost::OWASP, random).expect("OWASP parameters are valid")
    }

    /// A hasher with other parameters (benchmarks, tests, stronger installations).
    ///
    /// # Errors
    /// Parameters argon2 refuses.
    pub fn with_cost(
        cost: Argon2Cost,
        random: Arc<dyn SecretGenerator>,
    ) -> Result<Self, HashError> {
        let params =
            Params::new(cost.m_kib, cost.t, cost.p, None).map_err(|e| HashError(e.to_string()))?;
        Ok(Self {
            params,
            cost,
            random,
            dummy: OnceLock::new(),
        })
    }

    /// A cheap hasher for tests: real Argon2id at the minimum cost.
    #[must_use]
    pub fn insecure_fast(random: Arc<dyn SecretGenerator>) -> Self {
        Self::with_cost(Argon2Cost::INSECURE_FAST, random).expect("minimum parameters are valid")
    }

    /// The cost parameters new hashes get.
    #[must_use]
    pub fn cost(&self) -> Argon2Cost {
        self.cost
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes synchronously.
    ///
    /// # Errors
    /// Argon2 failed.
    pub fn hash_blocking(&self, password: &str) -> Result<PasswordHash, HashError> {
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let phc = self
            .argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|e| HashError(e.to_string()))?;
        PasswordHash::from_phc(phc.to_string()).map_err(|e| HashError(e.to_string()))
    }

    /// Verifies synchronously. A hash that cannot be parsed never matches.
    #[must_use]
    pub fn verify_blocking(&self, candidate: &str, hash: &PasswordHash) -> bool {
        match phc::PasswordHash::new(hash.as_phc()) {
            Ok(parsed) => self
                .argon2()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    fn dummy_hash(&self) -> &PasswordHash {
        self.dummy.get_or_init(|| {
            let mut pw = [0u8; 24];
            self.random.fill(&mut pw);
            let text: String = pw.iter().map(|b| char::from(b'a' + b % 26)).collect();
            self.hash_blocking(&text)
                .expect("hashing a dummy password with valid parameters")
        })
    }

    /// Whether `hash` was made with weaker (or other) parameters than this hasher's.
    #[must_use]
    pub fn is_outdated(&self, hash: &PasswordHash) -> bool {
        let Ok(parsed) = phc::PasswordHash::new(hash.as_phc()) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        let get = |k: &str| parsed.params.get_decimal(k).unwrap_or(0);
        get("m") < self.cost.m_kib || get("t") < self.cost.t || get("p") < self.cost.p
    }
}

#[async_trait]
impl PasswordHasher for Argon2idHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.hash_blocking(password.expose())
    }

    async fn verify(
        &self,
        candidate: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        Ok(self.verify_blocking(candidate.expose(), hash))
    }

    async fn verify_dummy(&self, candidate: &SecretString) -> Result<bool, HashError> {
        let dummy = self.dummy_hash().clone();
        let _ = self.verify_blocking(candidate.expose(), &dummy);
        Ok(false)
    }

    fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        self.is_outdated(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::PasswordPolicy;
    use crate::testing::SeededRandom;

    fn pw(s: &str) -> Password {
        PasswordPolicy::default()
            .check_single(&s.into(), &[])
            .unwrap()
    }

    #[test]
    fn production_default_is_owasp_argon2id() {
        let h = Argon2idHasher::new(Arc::new(SeededRandom::new(1)));
        let hash = h.hash_blocking("korrekt pferd batterie").unwrap();
        assert!(
            hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_phc()
        );
        assert!(h.verify_blocking("korrekt pferd batterie", &hash));
        assert!(!h.verify_blocking("korrekt pferd batteriE", &hash));
    }

    #[test]
    fn salts_differ_per_hash() {
        let h = Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(1)));
        let a = h.hash_blocking("same password here").unwrap();
        let b = h.hash_blocking("same password here").unwrap();
        assert_ne!(a, b);
        let salt = |p: &PasswordHash| p.as_phc().split('$').nth(4).unwrap().to_owned();
        assert_ne!(salt(&a), salt(&b));
    }

    #[test]
    fn long_passwords_are_not_truncated() {
        let h = Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(2)));
        let long = format!("{}X", "a".repeat(127));
        let hash = h.hash_blocking(&long).unwrap();
        assert!(!h.verify_blocking(&"a".repeat(127), &hash));
        assert!(h.verify_blocking(&long, &hash));
    }

    #[test]
    fn weaker_hashes_need_a_rehash() {
        let r: Arc<dyn SecretGenerator> = Arc::new(SeededRandom::new(3));
        let weak = Argon2idHasher::insecure_fast(r.clone());
        let strong = Argon2idHasher::new(r);
        let old = weak.hash_blocking("x").unwrap();
        assert!(strong.is_outdated(&old));
        assert!(!weak.is_outdated(&old));
        let current = strong.hash_blocking("x").unwrap();
        assert!(!strong.is_outdated(&current));
        assert!(strong.is_outdated(&PasswordHash::from_phc("$2b$12$bcrypt").unwrap()));
    }

    #[tokio::test]
    async fn the_async_port_hashes_and_verifies() {
        let h = Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(4)));
        let hash = h.hash(&pw("ein sicheres passwort")).await.unwrap();
        assert!(
            h.verify(&"ein sicheres passwort".into(), &hash)
                .await
                .unwrap()
        );
        assert!(
            !h.verify_dummy(&"ein sicheres passwort".into())
                .await
                .unwrap()
        );
    }
}
