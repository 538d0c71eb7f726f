//! The database goes away under load, and the server neither hangs nor answers 500 nor needs a
//! restart:
//!
//! - [`postgres_outage_answers_503_at_once_and_the_server_recovers_by_itself`]: a Postgres
//!   cluster of the test's own (TCP on a free port, never the shared server) is stopped with
//!   `pg_ctl stop -m fast` while clients drive requests, kept down while they go on, and started
//!   again. Every request the outage catches answers `503` with the error shape and the code
//!   `unavailable` — while the database is still down, so it did not wait for the outage to end
//!   (`PORTAL_DB_ACQUIRE_TIMEOUT` bounds it); a web page is the 503 page; `/readyz` says not
//!   ready; once the cluster is back
//!   the same process serves again, and its mail dispatcher delivers again.
//! - [`postgres_pool_exhausted_by_a_held_lock_answers_503_and_recovers`]: a test connection
//!   holds an exclusive lock on `users`, so every request's statements wait and the small pool
//!   (`PORTAL_DB_POOL_SIZE=3`) runs dry: requests answer 503 within the statement and acquire
//!   timeouts while the lock is still held, and serve again once it is released.
//! - [`sqlite_full_disk_answers_503_commits_nothing_half_and_recovers`]: the SQLite file cannot
//!   grow (a full tmpfs, or a file-size limit), see its docs.
//!
//! After each: nothing is half there (the audit log explains every invited user's state; each
//! invitation has its user, entry and mail, or none of them), every chain verifies, every queued
//! mail is delivered. Loads are a fixed number of requests; the latencies are printed.

use crate::support::browser::Answer;
use crate::support::db::{Backend, Db, Snapshot};
use crate::support::fixture::{self, Company, PERMISSIONS};
use crate::support::load::{Outcome, Server};
use crate::support::portal::Launch;
use crate::support::smtp::SmtpSink;
use crate::support::{DEADLINE, TempDir, free_port, secret_key};
use adapters_postgres::testing::{TempCluster, TestPostgres};
use reqwest::Method;
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The domain of every invited address.
const DOMAIN: &str = "@ausfall.example";

/// Checks an answer of a request the outage caught: `503`, the error shape, `unavailable`.
#[track_caller]
fn unavailable(a: &Answer) {
    assert_eq!(
        a.status, 503,
        "{} answered {}: {}",
        a.request, a.status, a.text
    );
    assert_eq!(
        a.body["error"]["code"], "unavailable",
        "{}: {}",
        a.request, a.text
    );
    assert!(
        a.body["error"]["message"].is_string(),
        "{}: the error shape: {}",
        a.request,
        a.text
    );
}

/// An answer that is either a success or [`unavailable`]: never a 500, never anything else.
#[track_caller]
fn ok_or_unavailable(a: &Answer) {
    if !(200..300).contains(&a.status) {
        unavailable(a);
    }
}

/// Sends a request to a server that never dies: an answer is required.
async fn send(
    server: &Server,
    company: &Company,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (Answer, Duration) {
    let began = Instant::now();
    match server.call(&company.admin, method, path, body).await {
        Outcome::Answered(a) => (a, began.elapsed()),
        Outcome::NoAnswer(e) => panic!("no answer from a server that was never stopped: {e}"),
    }
}

/// The `n`-th request of a client: invite a new address, read oneself, change the permissions
/// of the last user it invited, list users. Returns the method, path, body and the invited
/// address.
fn request(
    number: &str,
    client: usize,
    n: usize,
    subject: Option<&str>,
) -> (Method, String, Option<serde_json::Value>, Option<String>) {
    match (n % 4, subject) {
        (1, _) => (Method::GET, "/me".to_owned(), None, None),
        (2, Some(id)) => (
            Method::PUT,
            format!("/customers/{number}/users/{id}/permissions"),
            Some(json!({"permissions": [PERMISSIONS[n % PERMISSIONS.len()]]})),
            None,
        ),
        (3, _) => (
            Method::GET,
            format!("/customers/{number}/users?per_page=5"),
            None,
            None,
        ),
        _ => {
            let email = format!("c{client}-{n}{DOMAIN}");
            (
                Method::POST,
                format!("/customers/{number}/users"),
                Some(fixture::invitation(&email, n, &[])),
                Some(email),
            )
        }
    }
}

/// The invitations a test sent, by how their answer says they must have ended.
#[derive(Debug, Default)]
struct Invitations {
    /// Answered 2xx: user, entry and mail must be there.
    made: Vec<String>,
    /// Answered 503 while the database was certainly unable to commit: nothing may be there.
    refused: Vec<String>,
    /// Answered 503 around a transition (the commit may have landed before the connection
    /// broke): all or nothing.
    either: Vec<String>,
}

impl Invitations {
    /// Checks them, and the rules for everything else (the audit log explains each invited
    /// user; one `user.created` per account). Returns the number of invitations checked.
    fn check(&self, snap: &Snapshot) -> usize {
        let mut problems = snap.account_problems();
        problems.extend(snap.replay_problems(DOMAIN));
        for email in &self.made {
            if snap.user(email).is_none() || snap.mails_to(email, "invitation") != 1 {
                problems.push(format!("invitation {email} answered 2xx is not there"));
            }
        }
        for email in &self.refused {
            if snap.user(email).is_some() || snap.mails.iter().any(|m| &m.to == email) {
                problems.push(format!("invitation {email} answered 503 left something"));
            }
        }
        for email in &self.either {
            let user = snap.user(email).is_some();
            let mails = snap.mails_to(email, "invitation");
            if usize::from(user) != mails {
                problems.push(format!(
                    "invitation {email}: user {user}, {mails} mails: half there"
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
        self.made.len() + self.refused.len() + self.either.len()
    }
}

/// Where the database is, as the test moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Up,
    Stopping,
    Down,
    Starting,
    Back,
}

/// One request of a client during the outage test.
#[derive(Debug)]
struct Sent {
    start: Phase,
    end: Phase,
    answer: Answer,
    took: Duration,
    invited: Option<String>,
}

/// Requests each client completes inside each phase before the controller moves on.
const QUOTA: usize = 3;

/// A client of the outage test. It reports every request it completed within one phase, and
/// stops once the database is back and it got three successes in a row (at most `limit`
/// requests).
async fn outage_client(
    server: Arc<Server>,
    company: Company,
    client: usize,
    phase: watch::Receiver<Phase>,
    done_in: Arc<watch::Sender<Vec<BTreeMap<Phase, usize>>>>,
    limit: usize,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut subject: Option<String> = None;
    let mut in_a_row = 0;
    for n in 0..limit {
        let start = *phase.borrow();
        if start == Phase::Back && in_a_row >= QUOTA {
            return sent;
        }
        let (method, path, body, invited) = request(&company.number, client, n, subject.as_deref());
        let (answer, took) = send(&server, &company, method, &path, body).await;
        let end = *phase.borrow();
        ok_or_unavailable(&answer);
        if answer.status == 201 && invited.is_some() {
            subject = Some(answer.body["id"].as_str().expect("id").to_owned());
        }
        let ok = (200..300).contains(&answer.status);
        in_a_row = if start == Phase::Back && ok {
            in_a_row + 1
        } else {
            0
        };
        if start == end {
            done_in.send_modify(|all| *all[client].entry(start).or_default() += 1);
        }
        sent.push(Sent {
            start,
            end,
            answer,
            took,
            invited,
        });
    }
    panic!("client {client} did not see the database back within {limit} requests");
}

/// Waits until every client completed `QUOTA` requests within `phase`.
async fn completed_in(done_in: &watch::Receiver<Vec<BTreeMap<Phase, usize>>>, phase: Phase) {
    let mut done_in = done_in.clone();
    tokio::time::timeout(
        DEADLINE,
        done_in.wait_for(|all| {
            all.iter()
                .all(|c| c.get(&phase).copied().unwrap_or(0) >= QUOTA)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("the clients did not complete {QUOTA} requests each in {phase:?}"))
    .expect("the clients' reports");
}

/// `GET /readyz` and its answer's status and body.
async fn readyz(server: &Server) -> (u16, serde_json::Value) {
    let a = server
        .browser()
        .try_get_raw("/readyz")
        .await
        .expect("an answer from /readyz");
    (a.status, a.body)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_outage_answers_503_at_once_and_the_server_recovers_by_itself() {
    let test = "postgres outage";
    let started = Instant::now();
    // A cluster of the test's own on TCP: stopping it must never touch the shared server.
    let mut cluster = None;
    for _ in 0..3 {
        let port = free_port();
        match tokio::task::spawn_blocking(move || TempCluster::start_tcp(port))
            .await
            .expect("start the cluster")
        {
            Ok(c) => {
                cluster = Some(Arc::new(c));
                break;
            }
            Err(e) => eprintln!("[{test}] cluster on port {port}: {e}; another port"),
        }
    }
    let cluster = cluster.expect("a Postgres cluster of the test's own");
    let db = Db::postgres(TestPostgres::start_on_server(cluster.url()).await);
    let mut smtp = SmtpSink::start().await;
    let mut env = fixture::env(&db, &smtp, &secret_key());
    env.push(("PORTAL_DB_ACQUIRE_TIMEOUT".into(), "2".into()));
    let server = Server::start(test, env, Launch::default()).await;
    let op = fixture::operator(&server, &mut smtp).await;
    let company = fixture::company(&server, &op, &mut smtp, "400000001", "firma.example").await;
    let inbox = smtp.into_inbox();

    const CLIENTS: usize = 4;
    let (phase_tx, phase_rx) = watch::channel(Phase::Up);
    let (done_tx, done_rx) = watch::channel(vec![BTreeMap::new(); CLIENTS]);
    let done_tx = Arc::new(done_tx);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(outage_client(
                server.clone(),
                Company {
                    number: company.number.clone(),
                    admin: company.admin.clone(),
                },
                n,
                phase_rx.clone(),
                done_tx.clone(),
                60,
            ))
        })
        .collect();

    // Load on a healthy database, then the cluster stops under it.
    completed_in(&done_rx, Phase::Up).await;
    phase_tx.send_replace(Phase::Stopping);
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .expect("stop the cluster")
        .expect("pg_ctl stop");
    phase_tx.send_replace(Phase::Down);
    let outage = Instant::now();

    // While it is down: not ready, alive, and every request answered 503 at once.
    let (status, body) = readyz(&server).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unavailable")),
        "/readyz during the outage"
    );
    let alive = server
        .browser()
        .try_get_raw("/healthz")
        .await
        .expect("healthz");
    assert_eq!(alive.status, 200, "/healthz during the outage");
    let stranger = server.browser();
    let login = stranger
        .try_api(
            Method::POST,
            "/auth/login",
            Some(json!({"email": "niemand@ausfall.example", "password": "irgendein kennwort"})),
        )
        .await
        .expect("an answer");
    unavailable(&login);
    // A page of the web UI: the 503 page, not a 500 and not JSON.
    let page = company
        .admin
        .try_get_raw("/home")
        .await
        .expect("an answer from /home");
    assert_eq!(page.status, 503, "/home during the outage: {}", page.text);
    assert!(
        page.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html")),
        "/home answers a page: {:?}",
        page.headers
    );
    completed_in(&done_rx, Phase::Down).await;
    let (status, _) = readyz(&server).await;
    assert_eq!(status, 503, "/readyz still not ready");
    let outage_length = outage.elapsed();

    // Back: the same process serves again by itself.
    phase_tx.send_replace(Phase::Starting);
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_again())
        .await
        .expect("start the cluster")
        .expect("pg_ctl start");
    phase_tx.send_replace(Phase::Back);
    let back = Instant::now();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, _) = readyz(&server).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never ready again");
        // A poll interval while the pool reconnects, bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = back.elapsed();
    let mut sent = Vec::new();
    for c in clients {
        sent.extend(c.await.expect("a client failed"));
    }

    // The answers, by phase.
    let mut invitations = Invitations::default();
    let mut during = Vec::new();
    for s in &sent {
        let certain_down = s.start == Phase::Down && s.end == Phase::Down;
        if s.start == Phase::Up && s.end == Phase::Up {
            assert!(
                (200..300).contains(&s.answer.status),
                "{} before the outage: {}",
                s.answer.request,
                s.answer.text
            );
        }
        if certain_down {
            unavailable(&s.answer);
            during.push(s.took);
        }
        if let Some(email) = &s.invited {
            if (200..300).contains(&s.answer.status) {
                invitations.made.push(email.clone());
            } else if certain_down {
                invitations.refused.push(email.clone());
            } else {
                invitations.either.push(email.clone());
            }
        }
    }
    let slowest = during.iter().max().copied().unwrap_or_default();

    // The dispatcher survived the outage: a new invitation's mail arrives.
    let (a, _) = send(
        &server,
        &company,
        Method::POST,
        &format!("/customers/{}/users", company.number),
        Some(fixture::invitation(&format!("danach{DOMAIN}"), 0, &[])),
    )
    .await;
    a.expect(201);
    invitations.made.push(format!("danach{DOMAIN}"));
    inbox
        .wait_for("with the invitation sent after the outage", |m| {
            m.is_to(&format!("danach{DOMAIN}"))
        })
        .await;
    let (delivered, _) = fixture::settle_mail(&db, &inbox).await;
    let checked = invitations.check(&db.snapshot().await);
    let entries = fixture::verify_chains(&op, std::slice::from_ref(&company.number)).await;
    assert_eq!(
        server.life().generation,
        1,
        "the server was never restarted"
    );
    let output = server.stop().await;
    assert!(!output.contains("panicked"), "{output}");
    eprintln!(
        "[{test}] {} requests: {} during the outage, all 503 within {:.2} s (PORTAL_DB_ACQUIRE_TIMEOUT=2; outage {:.1} s); \
         ready again {:.2} s after the restart; {checked} invitations checked ({} made, {} refused, {} either), \
         {entries} audit entries verified, {delivered} mails delivered; whole test {:.1} s",
        sent.len(),
        during.len(),
        slowest.as_secs_f64(),
        outage_length.as_secs_f64(),
        ready_after.as_secs_f64(),
        invitations.made.len(),
        invitations.refused.len(),
        invitations.either.len(),
        started.elapsed().as_secs_f64()
    );
    inbox.stop().await;
    db.finish().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("remove the cluster");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_pool_exhausted_by_a_held_lock_answers_503_and_recovers() {
    let test = "postgres pool exhausted";
    let started = Instant::now();
    let db = Db::start(Backend::Postgres).await;
    let mut smtp = SmtpSink::start().await;
    let mut env = fixture::env(&db, &smtp, &secret_key());
    for (k, v) in [
        ("PORTAL_DB_POOL_SIZE", "3"),
        ("PORTAL_DB_ACQUIRE_TIMEOUT", "1"),
        ("PORTAL_DB_STATEMENT_TIMEOUT", "2"),
    ] {
        env.push((k.into(), v.into()));
    }
    let server = Server::start(test, env, Launch::default()).await;
    let op = fixture::operator(&server, &mut smtp).await;
    let company = fixture::company(&server, &op, &mut smtp, "400000002", "firma.example").await;
    let inbox = smtp.into_inbox();

    // A connection of the test's own holds the users table: every request of the server waits
    // on it with a pooled connection, and the three are gone at once.
    let holder = db
        .store()
        .connection()
        .begin()
        .await
        .expect("begin the holder's transaction");
    holder
        .execute_unprepared("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock users");
    const CLIENTS: usize = 8;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (server, company) = (
            server.clone(),
            Company {
                number: company.number.clone(),
                admin: company.admin.clone(),
            },
        );
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for n in 0..2 {
                let (method, path, body, invited) = request(&company.number, client, n, None);
                let (a, took) = send(&server, &company, method, &path, body).await;
                answers.push((a, took, invited));
            }
            answers
        }));
    }
    let mut invitations = Invitations::default();
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    for t in tasks {
        for (a, took, invited) in t.await.expect("a client failed") {
            unavailable(&a);
            slowest = slowest.max(took);
            answered += 1;
            if let Some(email) = invited {
                invitations.refused.push(email);
            }
        }
    }
    // Every request was answered while the lock was still held.
    holder
        .execute_unprepared("SELECT 1")
        .await
        .expect("the holder's transaction is still open");
    holder.rollback().await.expect("release the lock");

    // Serving again, without a restart.
    let mut recovered_after = 0;
    loop {
        let (a, _) = send(&server, &company, Method::GET, "/me", None).await;
        if a.status == 200 {
            break;
        }
        unavailable(&a);
        recovered_after += 1;
        assert!(
            recovered_after < 10,
            "still unavailable after the lock was released"
        );
    }
    for n in 0..4 {
        let (method, path, body, invited) = request(&company.number, CLIENTS, n, None);
        let (a, _) = send(&server, &company, method, &path, body).await;
        assert!((200..300).contains(&a.status), "{}: {}", a.request, a.text);
        if let Some(email) = invited {
            invitations.made.push(email);
        }
    }
    let (delivered, _) = fixture::settle_mail(&db, &inbox).await;
    let checked = invitations.check(&db.snapshot().await);
    fixture::verify_chains(&op, std::slice::from_ref(&company.number)).await;
    let output = server.stop().await;
    assert!(!output.contains("panicked"), "{output}");
    eprintln!(
        "[{test}] {answered} requests against a held lock, all 503 within {:.2} s \
         (PORTAL_DB_STATEMENT_TIMEOUT=2, PORTAL_DB_ACQUIRE_TIMEOUT=1, PORTAL_DB_POOL_SIZE=3); \
         {recovered_after} more 503 after the release; {checked} invitations checked, {delivered} mails delivered; \
         whole test {:.1} s",
        slowest.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    inbox.stop().await;
    db.finish().await;
}

/// A directory whose files cannot grow once [`Space::fill`] was called, until
/// [`Space::free`]: a small tmpfs filled up (as root, where `mount` works), else a file-size
/// limit set on the server process with `prlimit` (its `SIGXFSZ` ignored, so a write beyond it
/// fails with `EFBIG` instead of killing it). `PORTAL_TEST_FSIZE_LIMIT=1` forces the second.
enum Space {
    Tmpfs { dir: TempDir, ballast: PathBuf },
    FileSizeLimit { dir: TempDir },
}

impl Space {
    fn new() -> Self {
        let dir = TempDir::new("full");
        let forced = std::env::var("PORTAL_TEST_FSIZE_LIMIT").is_ok_and(|v| v == "1");
        if !forced {
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
                .arg(dir.path())
                .output()
                .is_ok_and(|o| o.status.success());
            if mounted {
                let ballast = dir.path().join("ballast");
                return Self::Tmpfs { dir, ballast };
            }
            eprintln!("cannot mount a tmpfs here (not root?): using a file-size limit instead");
        }
        Self::FileSizeLimit { dir }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Tmpfs { dir, .. } | Self::FileSizeLimit { dir } => dir.path(),
        }
    }

    fn launch(&self) -> Launch {
        Launch {
            ignore_sigxfsz: matches!(self, Self::FileSizeLimit { .. }),
            ..Launch::default()
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Tmpfs { .. } => "a 16 MiB tmpfs filled to the last block",
            Self::FileSizeLimit { .. } => "a file-size limit (RLIMIT_FSIZE) at the current size",
        }
    }

    /// No more room: the tmpfs is filled with a ballast file, or the server's file-size limit
    /// is set to the size of its largest file now.
    fn fill(&self, pid: u32) {
        match self {
            Self::Tmpfs { ballast, .. } => {
                use std::io::Write as _;
                let mut f = std::fs::File::create(ballast).expect("create the ballast");
                let chunk = vec![0u8; 4096];
                while f.write_all(&chunk).is_ok() {}
                let _ = f.sync_all();
            }
            Self::FileSizeLimit { dir } => {
                let largest = std::fs::read_dir(dir.path())
                    .expect("list the database directory")
                    .flatten()
                    .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                    .max()
                    .unwrap_or(0);
                prlimit(pid, &format!("--fsize={largest}:"));
            }
        }
    }

    /// Room again.
    fn free(&self, pid: u32) {
        match self {
            Self::Tmpfs { ballast, .. } => {
                std::fs::remove_file(ballast).expect("remove the ballast")
            }
            Self::FileSizeLimit { .. } => prlimit(pid, "--fsize=unlimited:"),
        }
    }
}

fn prlimit(pid: u32, limit: &str) {
    let out = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(limit)
        .output()
        .expect("run prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit {limit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Space {
    fn drop(&mut self) {
        if let Self::Tmpfs { dir, .. } = self {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(dir.path())
                .output();
        }
    }
}

/// The SQLite file cannot grow: every request answers 2xx or 503 `unavailable` (never 500),
/// the writes that fail leave nothing (the audit log still explains every user, every chain
/// verifies), the server keeps answering reads, and once there is room again it commits again
/// — the same process, without a restart. Mails whose delivery could not be recorded while the
/// disk was full are delivered again after their lease (at least once).
///
/// 503 rather than 507 (Insufficient Storage, a WebDAV status): the client can do nothing about
/// it but retry later, exactly as with a database outage, and it keeps the error codes one
/// (`unavailable`); the operator learns the cause from the log line
/// (`storage unavailable: database or disk is full`).
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_full_disk_answers_503_commits_nothing_half_and_recovers() {
    let test = "sqlite full disk";
    let started = Instant::now();
    let space = Space::new();
    let db = Db::sqlite_file(&space.path().join("portal.db")).await;
    let mut smtp = SmtpSink::start().await;
    let env = fixture::env(&db, &smtp, &secret_key());
    let server = Server::start(test, env, space.launch()).await;
    let op = fixture::operator(&server, &mut smtp).await;
    let company = fixture::company(&server, &op, &mut smtp, "400000003", "firma.example").await;
    let inbox = smtp.into_inbox();
    let pid = server.pid().await;

    space.fill(pid);
    let mut invitations = Invitations::default();
    let (mut ok, mut refused, mut reads) = (0, 0, 0);
    let mut n = 0;
    // Writes until the first refusal (the write-ahead log may still have room for a few), then
    // a few more; bounded either way.
    while refused < 5 {
        assert!(
            n < 400,
            "{} never refused a write ({ok} accepted)",
            space.describe()
        );
        let (method, path, body, invited) = request(&company.number, 0, n, None);
        let (a, _) = send(&server, &company, method, &path, body).await;
        ok_or_unavailable(&a);
        match (&invited, a.status) {
            (Some(email), 201) => {
                ok += 1;
                invitations.made.push(email.clone());
            }
            (Some(email), _) => {
                refused += 1;
                invitations.refused.push(email.clone());
            }
            (None, _) => reads += 1,
        }
        n += 1;
    }
    let (status, _) = readyz(&server).await;
    eprintln!("[{test}] /readyz while full: {status}");

    space.free(pid);
    let mut retries = 0;
    loop {
        let (method, path, body, invited) = request(&company.number, 1, retries * 4, None);
        let (a, _) = send(&server, &company, method, &path, body).await;
        ok_or_unavailable(&a);
        let email = invited.expect("an invitation");
        if a.status == 201 {
            invitations.made.push(email);
            break;
        }
        invitations.refused.push(email);
        retries += 1;
        assert!(retries < 10, "still refused with room again");
    }
    for n in 1..8 {
        let (method, path, body, invited) = request(&company.number, 2, n, None);
        let (a, _) = send(&server, &company, method, &path, body).await;
        assert!((200..300).contains(&a.status), "{}: {}", a.request, a.text);
        if let Some(email) = invited {
            invitations.made.push(email);
        }
    }
    let (delivered, duplicates) = fixture::settle_mail(&db, &inbox).await;
    let checked = invitations.check(&db.snapshot().await);
    let entries = fixture::verify_chains(&op, std::slice::from_ref(&company.number)).await;
    assert_eq!(
        server.life().generation,
        1,
        "the server was never restarted"
    );
    let output = server.stop().await;
    assert!(!output.contains("panicked"), "{output}");
    eprintln!(
        "[{test}] {}: {ok} invitations accepted before the first refusal, {refused} refused with 503, \
         {reads} reads answered; {retries} refusals after the room returned; {checked} invitations checked, \
         {entries} audit entries verified, {delivered} mails delivered ({duplicates} twice); whole test {:.1} s",
        space.describe(),
        started.elapsed().as_secs_f64()
    );
    inbox.stop().await;
    db.finish().await;
}
