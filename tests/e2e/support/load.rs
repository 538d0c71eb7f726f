//! Driving load at a server that dies: a [`Server`] that can be killed with `SIGKILL` and
//! restarted on the same port at any moment, and [`Server::call`], which tells an answer from
//! no answer and waits for the restart after a request the kill cut off.
//!
//! Clients keep one origin (`http://127.0.0.1:{port}`) across restarts, so their cookie jars —
//! their sessions — carry over as a browser's would. Nothing here sleeps: a client that lost its
//! answer waits on the server's life-cycle channel until the next generation is up.

use super::DEADLINE;
use super::browser::{Answer, Browser};
use super::portal::{Launch, Portal};
use rand::SeedableRng as _;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, watch};

/// A seeded random number generator.
pub type Rng = rand::rngs::StdRng;

/// The seed of a test run: `PORTAL_E2E_SEED` when set (to replay a failure), else a fresh one.
/// Printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("PORTAL_E2E_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("[{test}] seed {seed} (replay with PORTAL_E2E_SEED={seed})");
    seed
}

/// The generator of one client: the run's seed and the client's number.
pub fn rng(seed: u64, client: u64) -> Rng {
    Rng::seed_from_u64(seed ^ client.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    /// How many times it was started (1 for the first process).
    pub generation: u64,
    /// Whether the current process is up (ready) or about to die / not started yet.
    pub up: bool,
}

/// A `portal serve` on a fixed port that a test may kill and restart.
pub struct Server {
    name: String,
    env: Vec<(String, String)>,
    launch: Launch,
    port: u16,
    origin: String,
    current: Mutex<Option<Portal>>,
    life: watch::Sender<Life>,
    /// Output of the processes killed so far.
    killed_output: Mutex<Vec<String>>,
    /// Requests whose answer was cut off by a kill.
    pub cut_off: AtomicUsize,
}

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The server answered.
    Answered(Answer),
    /// No answer: the server was killed while the request was under way (or before it
    /// connected). The change it asked for may or may not have been made.
    NoAnswer(String),
}

impl Outcome {
    /// The answer's status, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered(a) => Some(a.status),
            Self::NoAnswer(_) => None,
        }
    }

    /// Whether the server answered 2xx.
    pub fn ok(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }

    /// The body of an answer (`Null` without one).
    pub fn body(&self) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Self::Answered(a) => &a.body,
            Self::NoAnswer(_) => &NULL,
        }
    }
}

impl Server {
    /// Starts the first process.
    pub async fn start(name: &str, env: Vec<(String, String)>, launch: Launch) -> Arc<Self> {
        let portal = Portal::launch(name, &env, launch).await;
        let port = portal.port;
        let origin = portal.origin.clone();
        Arc::new(Self {
            name: name.to_owned(),
            env,
            launch: Launch {
                port: Some(port),
                ..launch
            },
            port,
            origin,
            current: Mutex::new(Some(portal)),
            life: watch::channel(Life {
                generation: 1,
                up: true,
            })
            .0,
            killed_output: Mutex::new(Vec::new()),
            cut_off: AtomicUsize::new(0),
        })
    }

    /// The origin every client talks to (the same for every process).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new browser pointed at this server, whichever process runs.
    pub fn browser(&self) -> Browser {
        Browser::for_origin(&self.origin)
    }

    /// The first operator's one-time setup link token, from the first process's banner.
    pub async fn first_operator_token(&self) -> String {
        self.current
            .lock()
            .await
            .as_ref()
            .expect("a running server")
            .first_operator_token()
            .await
    }

    /// The process id of the running process.
    pub async fn pid(&self) -> u32 {
        self.current
            .lock()
            .await
            .as_ref()
            .expect("a running server")
            .pid()
    }

    /// The current generation.
    pub fn life(&self) -> Life {
        *self.life.borrow()
    }

    /// Kills the running process with `SIGKILL` and starts a new one on the same port, on the
    /// same database, without any repair in between; returns once it is ready (`/readyz` 200).
    pub async fn kill_and_restart(&self) {
        let mut current = self.current.lock().await;
        let generation = self.life().generation;
        // Down first: a client that loses its answer from here on waits for the next process.
        self.life.send_replace(Life {
            generation,
            up: false,
        });
        let portal = current.take().expect("a running server");
        let output = portal.kill9().await;
        self.killed_output.lock().await.push(output);
        let next = format!("{}#{}", self.name, generation + 1);
        *current = Some(Portal::launch(&next, &self.env, self.launch).await);
        self.life.send_replace(Life {
            generation: generation + 1,
            up: true,
        });
    }

    /// Waits until a process of a later generation than `generation` is up.
    async fn wait_past(&self, generation: u64) {
        let mut life = self.life.subscribe();
        tokio::time::timeout(
            DEADLINE,
            life.wait_for(|l| l.up && l.generation > generation),
        )
        .await
        .unwrap_or_else(|_| panic!("[{}] no restart within {DEADLINE:?}", self.name))
        .expect("life-cycle channel");
    }

    /// Sends `method /api/v1{path}` (with CSRF token unless `GET`). When no answer comes, checks
    /// that the server was being killed (anything else fails the test) and waits until the next
    /// process is up before returning [`Outcome::NoAnswer`].
    pub async fn call(
        &self,
        b: &Browser,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Outcome {
        let before = self.life();
        match b.try_api(method, path, body).await {
            Ok(a) => Outcome::Answered(a),
            Err(e) => {
                let now = self.life();
                assert!(
                    !(now.up && now.generation == before.generation),
                    "[{}] no answer while the server was up: {e}",
                    self.name
                );
                self.cut_off.fetch_add(1, Ordering::SeqCst);
                self.wait_past(before.generation).await;
                Outcome::NoAnswer(e)
            }
        }
    }

    /// Like [`Self::call`], but a read: repeated after a kill until it gets an answer.
    pub async fn read(&self, b: &Browser, path: &str) -> Answer {
        loop {
            if let Outcome::Answered(a) = self.call(b, reqwest::Method::GET, path, None).await {
                return a;
            }
        }
    }

    /// Everything the current process printed so far.
    pub async fn output(&self) -> String {
        self.current
            .lock()
            .await
            .as_ref()
            .map(Portal::output)
            .unwrap_or_default()
    }

    /// Stops the current process cleanly (SIGTERM, exit 0) and returns its output.
    pub async fn stop(&self) -> String {
        let portal = self.current.lock().await.take().expect("a running server");
        self.life.send_replace(Life {
            generation: self.life().generation,
            up: false,
        });
        portal.stop().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The current process prints its own output when a test fails; the killed ones are
        // only here.
        if std::thread::panicking()
            && let Ok(killed) = self.killed_output.try_lock()
        {
            for (n, out) in killed.iter().enumerate() {
                eprintln!(
                    "----- output of killed process {} of [{}] -----\n{out}\n-----",
                    n + 1,
                    self.name
                );
            }
        }
    }
}
