//! The physical limit on logins: how many Argon2id verifications per second this machine does
//! with Portal's production cost (m = 19 MiB, t = 2, p = 1), on 1 thread and on every core.
//! `scripts/bench-http` runs it next to the login benchmark, so logins per second can be
//! reported as a ratio to this bound (see `docs/performance.md`).
//!
//! ```sh
//! cargo run --release -p portal-core --example argon2_bound            # 5 s per run
//! cargo run --release -p portal-core --example argon2_bound -- 10      # 10 s per run
//! ```
//!
//! Prints one line per thread count: `threads=N verifies_per_s=… ms_per_verify=…`.

use portal_core::defaults::OsSecretGenerator;
use portal_core::hashing::Argon2idHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "korrekt pferd batterie";

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let hasher = Arc::new(Argon2idHasher::new(Arc::new(OsSecretGenerator)));
    let hash = hasher.hash_blocking(PASSWORD).expect("hash");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut counts = vec![1];
    if cores > 1 {
        counts.push(cores);
    }
    for threads in counts {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let hasher = hasher.clone();
                let hash = hash.clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        assert!(hasher.verify_blocking(PASSWORD, &hash));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
        let elapsed = started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let per_s = total as f64 / elapsed;
        println!(
            "threads={threads} verifies_per_s={per_s:.1} ms_per_verify={:.1}",
            1000.0 * threads as f64 / per_s
        );
    }
}
