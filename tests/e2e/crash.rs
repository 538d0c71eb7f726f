//! `kill -9` under write load, on SQLite and on Postgres: several clients register (with the
//! mailed code), invite, change permissions, lock, unlock and log in, while the server is killed
//! with `SIGKILL` at random moments (a seeded generator; the seed is printed and
//! `PORTAL_E2E_SEED` replays it) and restarted on the same database without any repair.
//!
//! Afterwards, read straight from the tables:
//! - every change answered 2xx is there — with its audit entry and its mail;
//! - every request answered with an error left nothing;
//! - every request whose answer the kill cut off is either wholly there or wholly absent. The
//!   clients find out which right after the restart (the administrator reads the user back) and
//!   the check then holds the database to that: the audit entries about each user are exactly
//!   the changes made to it, in order, and its stored permissions and lock are what they add up
//!   to; each queued mail belongs to exactly one change;
//! - each account past registration has exactly one `user.created` entry;
//! - every audit chain verifies (the operator's endpoint);
//! - every queued mail is delivered after the last restart, each at least once; duplicates are at
//!   most one per kill (the dispatcher sends one mail at a time, and only a mail sent but not yet
//!   marked sent when the process died goes out again), as `docs/operations.md` says;
//! - the sessions of answered logins still work.
//!
//! The load is a fixed number of requests (no durations), and the figures are printed.

use crate::support::browser::Browser;
use crate::support::db::{Backend, Db, Snapshot};
use crate::support::fixture::{self, Company, PERMISSIONS};
use crate::support::load::{Outcome, Rng, Server, rng, seed};
use crate::support::portal::Launch;
use crate::support::secret_key;
use crate::support::smtp::{Inbox, SmtpSink};
use crate::support::world::Person;
use rand::RngExt as _;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use uuid::Uuid;

/// Kills per run.
const KILLS: usize = 5;
/// Customers, each with its own administrator.
const CUSTOMERS: usize = 2;
/// Administrator clients per customer (sharing the administrator's session).
const ADMIN_CLIENTS: usize = 2;
/// Requests of each administrator client.
const ADMIN_OPS: usize = 40;
/// Registering clients, and registrations of each.
const REGISTRANTS: usize = 2;
const REGISTRATIONS: usize = 6;
/// Logging-in clients, and logins of each.
const LOGIN_CLIENTS: usize = 2;
const LOGINS: usize = 15;
/// Accounts the logging-in clients use.
const LOGIN_USERS: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_kill_9_under_write_load_loses_no_answered_change_and_leaves_nothing_half_done() {
    kill_under_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_kill_9_under_write_load_loses_no_answered_change_and_leaves_nothing_half_done() {
    kill_under_load(Backend::Postgres).await;
}

/// How one request ended, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Answered 2xx.
    Ok,
    /// Answered with an error status.
    Refused(u16),
    /// Cut off by a kill, and found made afterwards.
    CutOffMade,
    /// Cut off by a kill, and found not made afterwards.
    CutOffNotMade,
    /// Cut off by a kill; whether it was made is left to the counting checks.
    CutOff,
}

impl Fate {
    fn made(self) -> Option<bool> {
        match self {
            Self::Ok | Self::CutOffMade => Some(true),
            Self::Refused(_) | Self::CutOffNotMade => Some(false),
            Self::CutOff => None,
        }
    }
}

/// A change made to a user, as its audit entry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Created,
    Permissions {
        added: BTreeSet<String>,
        removed: BTreeSet<String>,
    },
    Locked,
    Unlocked,
}

/// A user an administrator client invited, with what the client knows was done to it.
#[derive(Debug, Clone)]
struct Subject {
    id: Uuid,
    email: String,
    permissions: BTreeSet<String>,
    locked: bool,
    changes: Vec<Change>,
}

/// What the clients did and learned.
#[derive(Default)]
struct Journal {
    /// Invitations by address.
    invitations: Vec<(String, Fate)>,
    subjects: Vec<Subject>,
    /// Registrations: address, how the registration ended, how the code's confirmation ended.
    registrations: Vec<(String, Fate, Option<Fate>)>,
    /// Logins by address, with the browser of each answered one.
    logins: Vec<(String, Fate)>,
    sessions: Vec<(String, Browser)>,
    /// Requests sent (CSRF token fetches not counted), by outcome.
    requests: usize,
    answered_ok: usize,
    answered_error: BTreeMap<u16, usize>,
    cut_off: usize,
}

impl Journal {
    fn absorb(&mut self, other: Self) {
        self.invitations.extend(other.invitations);
        self.subjects.extend(other.subjects);
        self.registrations.extend(other.registrations);
        self.logins.extend(other.logins);
        self.sessions.extend(other.sessions);
        self.requests += other.requests;
        self.answered_ok += other.answered_ok;
        for (k, v) in other.answered_error {
            *self.answered_error.entry(k).or_default() += v;
        }
        self.cut_off += other.cut_off;
    }

    /// Records an outcome; `Fate::CutOff` for no answer.
    fn record(&mut self, out: &Outcome) -> Fate {
        self.requests += 1;
        match out {
            Outcome::Answered(a) if (200..300).contains(&a.status) => {
                self.answered_ok += 1;
                Fate::Ok
            }
            Outcome::Answered(a) => {
                assert!(
                    a.status < 500,
                    "{} answered {} without any outage: {}",
                    a.request,
                    a.status,
                    a.text
                );
                *self.answered_error.entry(a.status).or_default() += 1;
                Fate::Refused(a.status)
            }
            Outcome::NoAnswer(_) => {
                self.cut_off += 1;
                Fate::CutOff
            }
        }
    }
}

/// Counts requests for the killer.
#[derive(Clone)]
struct Progress(Arc<watch::Sender<usize>>);

impl Progress {
    fn tick(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}

fn random_permissions(rng: &mut Rng, not: &[&BTreeSet<String>]) -> BTreeSet<String> {
    loop {
        let set: BTreeSet<String> = PERMISSIONS
            .iter()
            .filter(|_| rng.random_bool(0.5))
            .map(|p| (*p).to_owned())
            .collect();
        if !not.contains(&&set) {
            return set;
        }
    }
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|k| k.as_str().expect("a key").to_owned())
        .collect()
}

/// One administrator client: invites users and changes their permissions and locks, each user
/// only from this client (so the order of its changes is known).
async fn administrator(
    server: Arc<Server>,
    company: Company,
    tag: String,
    mut rng: Rng,
    progress: Progress,
) -> Journal {
    let mut j = Journal::default();
    let number = &company.number;
    let admin = &company.admin;
    for i in 0..ADMIN_OPS {
        let invite = j.subjects.len() < 2 || rng.random_bool(0.25);
        if invite {
            let email = format!("{tag}-{i}@eingeladen.example");
            let permissions = random_permissions(&mut rng, &[]);
            let list: Vec<String> = permissions.iter().cloned().collect();
            let out = server
                .call(
                    admin,
                    Method::POST,
                    &format!("/customers/{number}/users"),
                    Some(fixture::invitation(&email, i, &list)),
                )
                .await;
            let mut fate = j.record(&out);
            let id = match fate {
                Fate::Ok => Some(out.body()["id"].as_str().expect("id").parse().unwrap()),
                Fate::CutOff => {
                    // Made or not? The administrator looks for the address.
                    let page = server
                        .read(
                            admin,
                            &format!("/customers/{number}/users?q={email}&per_page=10"),
                        )
                        .await;
                    let found = page.expect(200)["items"]
                        .as_array()
                        .expect("items")
                        .iter()
                        .find(|u| u["email"] == email.as_str())
                        .map(|u| u["id"].as_str().expect("id").parse::<Uuid>().unwrap());
                    fate = if found.is_some() {
                        Fate::CutOffMade
                    } else {
                        Fate::CutOffNotMade
                    };
                    found
                }
                _ => None,
            };
            if let Some(id) = id {
                j.subjects.push(Subject {
                    id,
                    email: email.clone(),
                    permissions,
                    locked: false,
                    changes: vec![Change::Created],
                });
            }
            j.invitations.push((email, fate));
        } else {
            let k = rng.random_range(0..j.subjects.len());
            let s = j.subjects[k].clone();
            let path = format!("/customers/{number}/users/{}", s.id);
            if rng.random_bool(0.6) {
                let wanted = random_permissions(&mut rng, &[&s.permissions]);
                let list: Vec<String> = wanted.iter().cloned().collect();
                let out = server
                    .call(
                        admin,
                        Method::PUT,
                        &format!("{path}/permissions"),
                        Some(json!({ "permissions": list })),
                    )
                    .await;
                let made = match j.record(&out) {
                    Fate::Ok => {
                        assert_eq!(keys(&out.body()["permissions"]), wanted);
                        true
                    }
                    Fate::CutOff => {
                        let now = keys(&server.read(admin, &path).await.expect(200)["permissions"]);
                        assert!(
                            now == wanted || now == s.permissions,
                            "{}: permissions {now:?} are neither the old {:?} nor the new {wanted:?}",
                            s.email,
                            s.permissions
                        );
                        now == wanted
                    }
                    _ => false,
                };
                if made {
                    let subject = &mut j.subjects[k];
                    subject.changes.push(Change::Permissions {
                        added: wanted.difference(&s.permissions).cloned().collect(),
                        removed: s.permissions.difference(&wanted).cloned().collect(),
                    });
                    subject.permissions = wanted;
                }
            } else {
                let method = if s.locked {
                    Method::DELETE
                } else {
                    Method::POST
                };
                let out = server
                    .call(admin, method, &format!("{path}/lock"), None)
                    .await;
                let made = match j.record(&out) {
                    Fate::Ok => true,
                    Fate::CutOff => {
                        let status = server.read(admin, &path).await.expect(200)["status"].clone();
                        (status == "locked") != s.locked
                    }
                    _ => false,
                };
                if made {
                    let subject = &mut j.subjects[k];
                    subject.locked = !s.locked;
                    subject.changes.push(if s.locked {
                        Change::Unlocked
                    } else {
                        Change::Locked
                    });
                }
            }
        }
        progress.tick();
    }
    j
}

/// One registering client: registers new addresses and confirms each with the mailed code.
async fn registrant(server: Arc<Server>, inbox: Inbox, tag: String, progress: Progress) -> Journal {
    let mut j = Journal::default();
    for i in 0..REGISTRATIONS {
        let p = Person::new(&format!("Reg{tag}"), &format!("Nummer{i}"), "neu.example");
        let b = server.browser();
        let out = server
            .call(
                &b,
                Method::POST,
                "/auth/register",
                Some(json!({
                    "email": p.email, "first_name": p.first, "last_name": p.last,
                    "password": p.password, "password_confirmation": p.password,
                })),
            )
            .await;
        let fate = j.record(&out);
        progress.tick();
        let mut confirmed = None;
        if fate == Fate::Ok {
            let ticket = out.body()["ticket"].as_str().expect("ticket").to_owned();
            let mail = inbox
                .wait_for(&format!("with the code for {}", p.email), |m| {
                    m.is_to(&p.email) && m.subject.contains("Verifizieren")
                })
                .await;
            let out = server
                .call(
                    &b,
                    Method::POST,
                    "/auth/register/verify",
                    Some(json!({"ticket": ticket, "code": mail.code()})),
                )
                .await;
            confirmed = Some(j.record(&out));
            progress.tick();
        }
        j.registrations.push((p.email, fate, confirmed));
    }
    j
}

/// One client that logs in, each time in a fresh browser.
async fn logins(
    server: Arc<Server>,
    users: Vec<Person>,
    mut rng: Rng,
    progress: Progress,
) -> Journal {
    let mut j = Journal::default();
    for _ in 0..LOGINS {
        let p = &users[rng.random_range(0..users.len())];
        let b = server.browser();
        let out = server
            .call(
                &b,
                Method::POST,
                "/auth/login",
                Some(json!({"email": p.email, "password": p.password})),
            )
            .await;
        let fate = j.record(&out);
        if fate == Fate::Ok {
            assert_eq!(out.body()["status"], "authenticated");
            j.sessions.push((p.email.clone(), b));
        }
        j.logins.push((p.email.clone(), fate));
        progress.tick();
    }
    j
}

/// Kills the server `KILLS` times, at request counts drawn from the seed: one in each of
/// `KILLS` equal stretches of the load (from its first twelfth to nine tenths), so the kills are
/// spread and always `KILLS` of them.
async fn killer(server: Arc<Server>, mut rng: Rng, progress: watch::Receiver<usize>, total: usize) {
    let (first, last) = (total / 12, total * 9 / 10);
    let stretch = (last - first) / KILLS;
    let at: Vec<usize> = (0..KILLS)
        .map(|k| first + k * stretch + rng.random_range(0..stretch))
        .collect();
    let mut progress = progress;
    for threshold in at {
        if progress.wait_for(|n| *n >= threshold).await.is_err() {
            return;
        }
        server.kill_and_restart().await;
    }
}

async fn kill_under_load(backend: Backend) {
    let test = format!("kill -9 {backend:?}");
    let started = Instant::now();
    let seed = seed(&test);
    let db = Db::start(backend).await;
    let mut smtp = SmtpSink::start().await;
    let secret = secret_key();
    let server = Server::start(&test, fixture::env(&db, &smtp, &secret), Launch::default()).await;

    // The world: an operator, customers with an administrator each, accounts that log in.
    let op = fixture::operator(&server, &mut smtp).await;
    let mut companies = Vec::new();
    for c in 0..CUSTOMERS {
        let number = format!("30000000{}", c + 1);
        companies.push(
            fixture::company(
                &server,
                &op,
                &mut smtp,
                &number,
                &format!("firma{c}.example"),
            )
            .await,
        );
    }
    let numbers: Vec<String> = companies.iter().map(|c| c.number.clone()).collect();
    let mut login_users = Vec::new();
    for u in 0..LOGIN_USERS {
        let p = Person::new("Login", &format!("Nutzer{u}"), "anmelden.example");
        fixture::registered(&server, &mut smtp, &p).await;
        login_users.push(p);
    }
    let before = db.snapshot().await;
    let inbox = smtp.into_inbox();

    // The load, and the killer.
    let total = CUSTOMERS * ADMIN_CLIENTS * ADMIN_OPS
        + REGISTRANTS * REGISTRATIONS * 2
        + LOGIN_CLIENTS * LOGINS;
    let (progress_tx, progress_rx) = watch::channel(0usize);
    let progress = Progress(Arc::new(progress_tx));
    let mut clients = Vec::new();
    let mut client_no = 0u64;
    for company in &companies {
        for w in 0..ADMIN_CLIENTS {
            client_no += 1;
            clients.push(tokio::spawn(administrator(
                server.clone(),
                Company {
                    number: company.number.clone(),
                    admin: company.admin.clone(),
                },
                format!("k{}a{w}", company.number),
                rng(seed, client_no),
                progress.clone(),
            )));
        }
    }
    for r in 0..REGISTRANTS {
        clients.push(tokio::spawn(registrant(
            server.clone(),
            inbox.clone(),
            r.to_string(),
            progress.clone(),
        )));
    }
    for _ in 0..LOGIN_CLIENTS {
        client_no += 1;
        clients.push(tokio::spawn(logins(
            server.clone(),
            login_users.clone(),
            rng(seed, client_no),
            progress.clone(),
        )));
    }
    let kills = tokio::spawn(killer(server.clone(), rng(seed, 0), progress_rx, total));
    let mut j = Journal::default();
    for c in clients {
        j.absorb(c.await.expect("a client failed"));
    }
    drop(progress);
    kills.await.expect("the killer failed");
    let generations = server.life().generation;
    let kills = usize::try_from(generations - 1).unwrap();
    assert_eq!(kills, KILLS, "every planned kill happened");
    let load_done = started.elapsed();

    // Mail: everything queued goes out from the last process, each mail at least once.
    let (delivered, duplicates) = fixture::settle_mail(&db, &inbox).await;
    assert!(
        duplicates <= kills,
        "{duplicates} mails were delivered twice, more than one per kill ({kills})"
    );

    // The database, read directly.
    let after = db.snapshot().await;
    let checked = check(&before, &after, &j);
    let entries = fixture::verify_chains(&op, &numbers).await;
    for (email, b) in &j.sessions {
        let me = b.get("/me").await;
        assert_eq!(
            me.expect(200)["email"],
            email.as_str(),
            "a login answered 200 lost its session"
        );
    }

    let output = server.stop().await;
    assert!(!output.contains("panicked"), "{output}");
    eprintln!(
        "[{test}] seed {seed}: {} requests ({} answered 2xx, errors {:?}, {} cut off by {kills} kills), \
         {checked} changes checked against the tables, {entries} audit entries verified, \
         {delivered} mails delivered ({duplicates} twice), {} sessions still valid; \
         load {:.1} s, whole test {:.1} s",
        j.requests,
        j.answered_ok,
        j.answered_error,
        j.cut_off,
        j.sessions.len(),
        load_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    inbox.stop().await;
    db.finish().await;
}

/// Holds the tables to the journal (see the module docs); returns the number of changes
/// checked.
fn check(before: &Snapshot, after: &Snapshot, j: &Journal) -> usize {
    let mut problems = after.account_problems();
    problems.extend(after.replay_problems("@eingeladen.example"));
    let mut checked = 0;

    // Invitations: made ones with their user, entry and mail, refused ones without any.
    for (email, fate) in &j.invitations {
        checked += 1;
        let user = after.user(email);
        let mails = after.mails_to(email, "invitation");
        match fate.made() {
            Some(true) => {
                if user.is_none() || mails != 1 {
                    problems.push(format!(
                        "invitation {email} ({fate:?}): user {user:?}, {mails} invitation mails"
                    ));
                }
            }
            Some(false) => {
                if user.is_some() || after.mails.iter().any(|m| &m.to == email) {
                    problems.push(format!(
                        "invitation {email} ({fate:?}) left a user or a mail"
                    ));
                }
            }
            None => unreachable!("every cut-off invitation was looked up"),
        }
    }

    // Each invited user: its entries are exactly its changes, its row what they add up to, and
    // a lock or unlock mail for each lock or unlock.
    for s in &j.subjects {
        checked += s.changes.len() - 1;
        let entries: Vec<Change> = after
            .entries_of(s.id)
            .into_iter()
            .map(|e| match e.category.as_str() {
                "user.created" => Change::Created,
                "user.locked" => Change::Locked,
                "user.unlocked" => Change::Unlocked,
                "user.permissions_changed" => {
                    let part = |name: &str| -> BTreeSet<String> {
                        e.details
                            .split("; ")
                            .find_map(|p| p.strip_prefix(&format!("{name}=")))
                            .unwrap_or_default()
                            .split(',')
                            .filter(|k| !k.is_empty())
                            .map(str::to_owned)
                            .collect()
                    };
                    Change::Permissions {
                        added: part("added"),
                        removed: part("removed"),
                    }
                }
                other => panic!("unexpected entry {other} about {}", s.email),
            })
            .collect();
        if entries != s.changes {
            problems.push(format!(
                "{}: entries {entries:?}, changes made {:?}",
                s.email, s.changes
            ));
        }
        match after.user_by_id(s.id) {
            Some(u) if u.permissions == s.permissions && u.locked == s.locked => {}
            other => problems.push(format!(
                "{}: stored {other:?}, expected permissions {:?} locked {}",
                s.email, s.permissions, s.locked
            )),
        }
        let count = |c: &Change| s.changes.iter().filter(|x| *x == c).count();
        let (locks, unlocks) = (
            after.mails_to(&s.email, "account_locked"),
            after.mails_to(&s.email, "account_unlocked"),
        );
        if locks != count(&Change::Locked) || unlocks != count(&Change::Unlocked) {
            problems.push(format!(
                "{}: {locks} lock and {unlocks} unlock mails for {:?}",
                s.email, s.changes
            ));
        }
    }

    // Registrations: a started one has its pending user, entry and code mail (one each); a
    // confirmed one is an account (its `user.created` is checked for every account).
    for (email, started, confirmed) in &j.registrations {
        checked += 1 + usize::from(confirmed.is_some());
        let user = after.user(email);
        let mails = after.mails_to(email, "verification_code");
        match user {
            Some(u) => {
                let entries = after.count(u.id, "registration.started");
                if entries != 1 || mails != 1 {
                    problems.push(format!(
                        "registration {email}: {entries} registration.started entries, {mails} code mails"
                    ));
                }
                if started.made() == Some(false) {
                    problems.push(format!("registration {email} ({started:?}) made a user"));
                }
                let active = u.state != "pending_verification";
                match confirmed.and_then(Fate::made) {
                    Some(made) if made != active => problems.push(format!(
                        "registration {email}: confirmation {confirmed:?}, state {}",
                        u.state
                    )),
                    _ => {}
                }
            }
            None => {
                if started.made() == Some(true) || mails != 0 {
                    problems.push(format!(
                        "registration {email} ({started:?}): no user, {mails} code mails"
                    ));
                }
            }
        }
    }

    // Logins: each made login is one session and one `login.succeeded` entry, never one
    // without the other; at least the answered ones, at most those plus the cut-off ones.
    let mut per_user: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (email, fate) in &j.logins {
        checked += 1;
        let e = per_user.entry(email).or_default();
        match fate {
            Fate::Ok => e.0 += 1,
            Fate::CutOff => e.1 += 1,
            other => problems.push(format!("login {email}: {other:?}")),
        }
    }
    for (email, (ok, cut)) in per_user {
        let id = after.user(email).expect("a login user").id;
        let entries = after.count(id, "login.succeeded") - before.count(id, "login.succeeded");
        let sessions = after.sessions_of(id) - before.sessions_of(id);
        if entries != sessions || entries < ok || entries > ok + cut {
            problems.push(format!(
                "{email}: {entries} new login entries, {sessions} new sessions, {ok} answered and {cut} cut-off logins"
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    checked
}
