//! The real `portal` binary as a child process.
//!
//! [`Portal::serve`] starts `portal serve` with a clean environment (only what the test passes,
//! so a `DATABASE_URL` of the test runner cannot leak in) on a free loopback port, collects every
//! line it prints, waits for the banner's `listening` line and then polls `/readyz` until it
//! answers 200. [`Portal::stop`] sends SIGTERM and waits for a clean exit (code 0, "stopped").
//! [`run`] runs the other commands (`migrate`, `operator create`, `customers import`, `demo`).

use super::{DEADLINE, TempDir, free_port};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The binary under test: `crates/portal-server/src/main.rs`, built by Cargo as this package's
/// `portal-under-test` binary (see `tests/Cargo.toml`).
pub const BINARY: &str = env!("CARGO_BIN_EXE_portal-under-test");

/// Everything a process printed (stdout and stderr interleaved as they arrive).
#[derive(Clone)]
struct Output {
    lines: Arc<Mutex<Vec<String>>>,
    count: watch::Sender<usize>,
}

impl Output {
    fn new() -> Self {
        Self {
            lines: Arc::new(Mutex::new(Vec::new())),
            count: watch::channel(0).0,
        }
    }

    fn follow(&self, stream: impl AsyncRead + Unpin + Send + 'static, closed: watch::Sender<bool>) {
        let out = self.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let n = {
                    let mut all = out.lines.lock().unwrap();
                    all.push(line);
                    all.len()
                };
                out.count.send_replace(n);
            }
            closed.send_replace(true);
        });
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn find(&self, pred: &impl Fn(&str) -> bool) -> Option<String> {
        self.lines.lock().unwrap().iter().find(|l| pred(l)).cloned()
    }
}

/// A running `portal serve`.
pub struct Portal {
    child: Option<Child>,
    output: Output,
    stdout_closed: watch::Receiver<bool>,
    /// The port it listens on.
    pub port: u16,
    /// Its public origin, `http://127.0.0.1:{port}` (also `PORTAL_PUBLIC_URL`).
    pub origin: String,
    name: String,
    /// Its working directory (empty: with Postgres and SMTP it writes nothing there).
    dir: TempDir,
}

/// How a server start ended.
enum Started {
    Up(Box<Portal>),
    PortTaken(String),
}

/// How to start `portal serve` beyond its environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Launch {
    /// Listen on this port (a restart on the port of a killed server); `None`: a free one.
    pub port: Option<u16>,
    /// Start it with `SIGXFSZ` ignored (through `sh -c 'trap "" XFSZ; exec …'`: an ignored
    /// signal stays ignored across `exec`), so a write beyond a file-size limit set later with
    /// `prlimit` fails with `EFBIG` instead of killing the process.
    pub ignore_sigxfsz: bool,
}

impl Portal {
    /// Starts `portal serve` with `env` (plus `PORTAL_BIND` and `PORTAL_PUBLIC_URL` on a free
    /// port) and waits until it is ready. `name` tells servers apart in failure messages.
    pub async fn serve(name: &str, env: &[(String, String)]) -> Self {
        Self::launch(name, env, Launch::default()).await
    }

    /// [`Self::serve`] with [`Launch`] options.
    pub async fn launch(name: &str, env: &[(String, String)], launch: Launch) -> Self {
        for _ in 0..5 {
            match Self::try_serve(name, env, launch).await {
                Started::Up(p) => return *p,
                Started::PortTaken(out) if launch.port.is_some() => {
                    panic!("[{name}] port {:?} is taken:\n{out}", launch.port)
                }
                // Another process took the free port between asking and binding: take another.
                Started::PortTaken(out) => eprintln!("[{name}] port taken, retrying:\n{out}"),
            }
        }
        panic!("[{name}] no free port after 5 tries");
    }

    async fn try_serve(name: &str, env: &[(String, String)], launch: Launch) -> Started {
        let port = launch.port.unwrap_or_else(free_port);
        let origin = format!("http://127.0.0.1:{port}");
        let dir = TempDir::new("serve");
        let mut cmd = if launch.ignore_sigxfsz {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(r#"trap "" XFSZ; exec "$0" "$@""#)
                .arg(BINARY);
            c
        } else {
            Command::new(BINARY)
        };
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PORTAL_BIND", format!("127.0.0.1:{port}"))
            .env("PORTAL_PUBLIC_URL", &origin)
            .env("PORTAL_LOG", "info")
            .env("RUST_BACKTRACE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start portal serve");
        let output = Output::new();
        let (out_closed_tx, stdout_closed) = watch::channel(false);
        let (err_closed_tx, _) = watch::channel(false);
        output.follow(child.stdout.take().expect("stdout"), out_closed_tx);
        output.follow(child.stderr.take().expect("stderr"), err_closed_tx);
        let mut portal = Self {
            child: Some(child),
            output,
            stdout_closed,
            port,
            origin,
            name: name.to_owned(),
            dir,
        };
        let listening = format!("listening 127.0.0.1:{port}");
        let line = portal
            .wait_for_or_exit(|l| l.trim() == listening || l.contains("cannot listen"))
            .await;
        match line {
            Some(l) if l.trim() == listening => {}
            Some(_) => {
                let out = portal.output.text();
                let _ = portal.kill().await;
                return Started::PortTaken(out);
            }
            None => {
                let status = portal.kill().await;
                panic!(
                    "[{name}] portal serve exited ({status:?}) before listening:\n{}",
                    portal.output.text()
                );
            }
        }
        portal.wait_ready().await;
        Started::Up(Box::new(portal))
    }

    /// Polls `GET /readyz` until it answers 200 (the database answers), within [`DEADLINE`].
    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.origin);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            // A poll interval between attempts, not a synchronisation: the loop ends on the
            // first 200 and is bounded by the deadline.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "[{}] /readyz not ready within {DEADLINE:?} ({last}):\n{}",
            self.name,
            self.output.text()
        );
    }

    /// Waits for a printed line matching `pred` (also among the lines printed before); `None`
    /// when the process closed its standard output first.
    async fn wait_for_or_exit(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let mut count = self.output.count.subscribe();
        let mut closed = self.stdout_closed.clone();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            count.borrow_and_update();
            if let Some(l) = self.output.find(&pred) {
                return Some(l);
            }
            if *closed.borrow_and_update() {
                return None;
            }
            tokio::select! {
                r = tokio::time::timeout_at(deadline, count.changed()) => {
                    if r.is_err() {
                        panic!("[{}] no such line within {DEADLINE:?}:\n{}", self.name, self.output.text());
                    }
                }
                _ = closed.changed() => {}
            }
        }
    }

    /// Waits for a printed line matching `pred` and returns it.
    pub async fn wait_for(&self, pred: impl Fn(&str) -> bool) -> String {
        match self.wait_for_or_exit(pred).await {
            Some(l) => l,
            None => panic!(
                "[{}] the server ended while waiting for a line:\n{}",
                self.name,
                self.output.text()
            ),
        }
    }

    /// The first operator's one-time setup link from the banner (`PORTAL_OPERATOR_EMAIL`).
    pub async fn first_operator_token(&self) -> String {
        let line = self
            .wait_for(|l| {
                l.trim()
                    .starts_with(&format!("{}/invitations/", self.origin))
            })
            .await;
        line.trim()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.text()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("a running server")
    }

    /// Kills the process with `SIGKILL` (no shutdown of any kind: what a crash, the OOM killer
    /// or a pulled plug leaves behind), waits for it to be gone and returns its output.
    pub async fn kill9(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("a pid") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("send SIGKILL");
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap_or_else(|_| panic!("[{}] still alive after SIGKILL", self.name))
            .expect("wait for portal serve");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "[{}] ended by SIGKILL: {status:?}",
            self.name
        );
        let mut closed = self.stdout_closed.clone();
        let _ = tokio::time::timeout(DEADLINE, closed.wait_for(|c| *c)).await;
        self.output.text()
    }

    async fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.start_kill();
        child.wait().await.ok()
    }

    /// Sends SIGTERM, waits for the exit and checks it was clean: exit code 0 and the "stopped"
    /// line (requests in flight finished, the mail dispatcher stopped). Returns the output.
    pub async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("a pid") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("send SIGTERM");
        let status = tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "[{}] no exit within {DEADLINE:?} after SIGTERM:\n{}",
                    self.name,
                    self.output.text()
                )
            })
            .expect("wait for portal serve");
        // The output ends when the pipes close, right after the exit.
        let mut closed = self.stdout_closed.clone();
        let _ = tokio::time::timeout(DEADLINE, closed.wait_for(|c| *c)).await;
        let out = self.output.text();
        assert_eq!(
            status.code(),
            Some(0),
            "[{}] exit after SIGTERM: {status:?}\n{out}",
            self.name
        );
        assert!(
            out.contains("shutting down") && out.contains("stopped"),
            "[{}] no clean shutdown in the log:\n{out}",
            self.name
        );
        out
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
            if std::thread::panicking() {
                eprintln!(
                    "----- output of portal serve [{}] -----\n{}\n-----",
                    self.name,
                    self.output.text()
                );
            }
        }
    }
}

/// The result of a command run to its end.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics unless the command succeeded; returns standard output.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

/// Runs `portal <args>` in `dir` with exactly `env`, to its end.
pub async fn run(dir: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(BINARY);
    cmd.current_dir(dir)
        .env_clear()
        .env("RUST_BACKTRACE", "1")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("portal {args:?} did not finish within {DEADLINE:?}"))
        .expect("run portal");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
