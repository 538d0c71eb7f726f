//! Argon2id password hashing (R13): m = 19 MiB, t = 2, p = 1 (OWASP's second option), a 16-byte
//! salt from the [`SecretGenerator`], and the PHC string as the stored form.
//!
//! The work is CPU-bound and synchronous: it runs on the calling thread. Servers wrap the hasher
//! so it runs on a few dedicated threads behind a semaphore (see `adapters-http`), which bounds
//! both memory (19 MiB per hash in flight) and the damage of a login flood.
//!
//! The 19 MiB of working memory are reused: the hasher keeps up to one buffer per core and hands
//! them to the computations (`argon2`'s `hash_password_into_with_memory`) instead of allocating
//! a fresh zeroed block per hash. A fresh block costs page faults and zeroing on every login
//! (about a sixth of the CPU of a verification), and the allocator kept freed blocks around per
//! thread (a bare verification loop on two threads peaked at 430 MiB). Argon2 writes every block
//! before it reads it, so a reused buffer's old contents never influence a result; buffers stay
//! in the process and are dropped with the hasher.

use crate::password::{Password, PasswordHash};
use crate::ports::{HashError, PasswordHasher, SecretGenerator};
use crate::secret::SecretString;
use argon2::password_hash::phc;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, OnceLock};

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
    /// Working memory for reuse, at most `keep` buffers.
    buffers: Mutex<Vec<Vec<Block>>>,
    keep: usize,
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
            buffers: Mutex::new(Vec::new()),
            keep: std::thread::available_parallelism().map_or(2, usize::from),
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

    /// Runs `f` on `count` blocks of working memory: a kept buffer when there is one, kept
    /// again afterwards while fewer than `keep` are.
    fn with_blocks<R>(&self, count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let taken = self
            .buffers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut blocks = taken.unwrap_or_default();
        blocks.resize(count, Block::default());
        let result = f(&mut blocks);
        let mut kept = self
            .buffers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < self.keep {
            kept.push(blocks);
        }
        result
    }

    /// Hashes synchronously.
    ///
    /// # Errors
    /// Argon2 failed.
    pub fn hash_blocking(&self, password: &str) -> Result<PasswordHash, HashError> {
        let err = |e: &dyn std::fmt::Display| HashError(e.to_string());
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let argon2 = self.argon2();
        self.with_blocks(self.params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        })
        .map_err(|e| err(&e))?;
        let phc = phc::PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: phc::ParamsString::try_from(&self.params).map_err(|e| err(&e))?,
            salt: Some(phc::Salt::new(&salt).map_err(|e| err(&e))?),
            hash: Some(phc::Output::new(&out).map_err(|e| err(&e))?),
        };
        PasswordHash::from_phc(phc.to_string()).map_err(|e| err(&e))
    }

    /// Verifies synchronously, with the algorithm, version and cost the hash names (so hashes
    /// made with older parameters still verify). A hash that cannot be parsed never matches;
    /// the outputs are compared in constant time.
    #[must_use]
    pub fn verify_blocking(&self, candidate: &str, hash: &PasswordHash) -> bool {
        let Ok(parsed) = phc::PasswordHash::new(hash.as_phc()) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let count = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = self.with_blocks(count, |blocks| {
            argon2.hash_password_into_with_memory(
                candidate.as_bytes(),
                salt.as_ref(),
                &mut out,
                blocks,
            )
        });
        computed.is_ok() && phc::Output::new(&out).is_ok_and(|o| &o == expected)
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

    /// The library's own (allocating) implementation, as the reference.
    fn library_hash(pw: &str, salt: &[u8], cost: Argon2Cost) -> String {
        use argon2::PasswordHasher as _;
        let params = Params::new(cost.m_kib, cost.t, cost.p, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(pw.as_bytes(), salt)
            .unwrap()
            .to_string()
    }

    fn library_verifies(pw: &str, phc_string: &str) -> bool {
        use argon2::PasswordVerifier as _;
        let parsed = phc::PasswordHash::new(phc_string).unwrap();
        Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok()
    }

    #[test]
    fn reused_memory_gives_the_librarys_hashes_both_ways() {
        let cost = Argon2Cost {
            m_kib: 64,
            t: 2,
            p: 1,
        };
        let h = Argon2idHasher::with_cost(cost, Arc::new(SeededRandom::new(9))).unwrap();
        for pw in [
            "",
            "a",
            "korrekt pferd batterie",
            "äöü ß € 😀",
            &"x".repeat(128),
        ] {
            // Ours → theirs.
            let ours = h.hash_blocking(pw).unwrap();
            assert!(library_verifies(pw, ours.as_phc()), "{pw:?}");
            assert!(!library_verifies(&format!("{pw}!"), ours.as_phc()));
            // Theirs → ours, with the same salt: the very same string.
            let salt = phc::PasswordHash::new(ours.as_phc()).unwrap().salt.unwrap();
            let theirs = library_hash(pw, salt.as_ref(), cost);
            assert_eq!(ours.as_phc(), theirs);
            let theirs = PasswordHash::from_phc(theirs).unwrap();
            assert!(h.verify_blocking(pw, &theirs));
            assert!(!h.verify_blocking(&format!("{pw}!"), &theirs));
        }
    }

    #[test]
    fn hashes_of_other_costs_verify_on_the_same_buffers() {
        let r: Arc<dyn SecretGenerator> = Arc::new(SeededRandom::new(10));
        let small = Argon2idHasher::insecure_fast(r.clone())
            .hash_blocking("pw one")
            .unwrap();
        let big = Argon2idHasher::with_cost(
            Argon2Cost {
                m_kib: 256,
                t: 1,
                p: 2,
            },
            r.clone(),
        )
        .unwrap()
        .hash_blocking("pw two")
        .unwrap();
        let h = Argon2idHasher::with_cost(
            Argon2Cost {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            r,
        )
        .unwrap();
        // Alternating sizes: a kept buffer grows and shrinks, stale contents never matter.
        for _ in 0..3 {
            assert!(h.verify_blocking("pw one", &small));
            assert!(h.verify_blocking("pw two", &big));
            assert!(!h.verify_blocking("pw two", &small));
            assert!(!h.verify_blocking("pw one", &big));
        }
    }

    #[test]
    fn malformed_hashes_never_match() {
        let h = Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(11)));
        let good = h.hash_blocking("pw").unwrap();
        let phc_string = good.as_phc();
        let without_hash = phc_string.rsplit_once('$').unwrap().0.to_owned();
        for bad in [
            "$2b$12$bcrypt".to_owned(),
            without_hash,
            phc_string.replace("argon2id", "argon2x"),
            phc_string.replace("v=19", "v=7"),
            phc_string.replace("m=8", "m=1"),
        ] {
            if let Ok(bad) = PasswordHash::from_phc(bad) {
                assert!(!h.verify_blocking("pw", &bad), "{}", bad.as_phc());
            }
        }
    }

    #[test]
    fn at_most_one_buffer_per_core_is_kept() {
        let h = Arc::new(Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(
            12,
        ))));
        let hash = h.hash_blocking("pw").unwrap();
        std::thread::scope(|s| {
            for _ in 0..(h.keep * 3) {
                let (h, hash) = (h.clone(), hash.clone());
                s.spawn(move || {
                    for _ in 0..20 {
                        assert!(h.verify_blocking("pw", &hash));
                    }
                });
            }
        });
        let kept = h.buffers.lock().unwrap().len();
        assert!((1..=h.keep).contains(&kept), "{kept} kept, keep {}", h.keep);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn verification_agrees_with_the_library(pw in ".{0,40}", other in ".{0,40}") {
            let h = Argon2idHasher::insecure_fast(Arc::new(SeededRandom::new(13)));
            let hash = h.hash_blocking(&pw).unwrap();
            proptest::prop_assert!(h.verify_blocking(&pw, &hash));
            proptest::prop_assert_eq!(
                h.verify_blocking(&other, &hash),
                library_verifies(&other, hash.as_phc())
            );
        }
    }
}
