//! Races on real databases: optimistic concurrency, the last-admin rule (R5) under concurrent
//! admin actions, one account per address under concurrent verification, concurrent appends to
//! one change-log chain, and two outbox dispatchers sharing a queue. Synchronised with barriers, never with sleeps; the assertions
//! are about outcomes, never about timing.

use adapters_postgres::SqlStore;
use adapters_postgres::testing::{TestPostgres, TestSqlite};
use chrono::TimeDelta;
use portal_core::defaults::UuidV7Ids;
use portal_core::ports::{
    Committer, NoLegacyDirectory, OutboxStore, Queries, SecretGenerator, StoreError, Write,
};
use portal_core::secret::{SecretString, VerificationCode};
use portal_core::service::Register;
use portal_core::session::ClientInfo;
use portal_core::testing::{ManualClock, SeededRandom, fast_hasher};
use portal_core::user::{AccountState, User};
use portal_core::values::Language;
use portal_core::{Actor, Deps, Portal};
use portal_testkit::fixtures::{
    admin, at, code_mail, commit_ok, customer, email, employee, name, writes,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Barrier;

/// Randomness that remembers every 4-byte draw, so the test can recover the six-digit codes the
/// portal generated (the stand-in for a person reading the mail, also for codes whose mail the
/// per-address cap suppressed).
struct RecordingRandom {
    inner: SeededRandom,
    draws: Mutex<Vec<[u8; 4]>>,
}

impl SecretGenerator for RecordingRandom {
    fn fill(&self, buf: &mut [u8]) {
        self.inner.fill(buf);
        if let Ok(b) = <[u8; 4]>::try_from(&*buf) {
            self.draws.lock().unwrap().push(b);
        }
    }
}

fn portal(store: &Arc<SqlStore>, random: Arc<dyn SecretGenerator>) -> Arc<Portal> {
    let deps = Deps {
        queries: store.clone(),
        committer: store.clone(),
        clock: Arc::new(ManualClock::new()),
        ids: Arc::new(UuidV7Ids),
        random,
        hasher: Arc::new(fast_hasher(3)),
        legacy: Arc::new(NoLegacyDirectory),
    };
    Arc::new(Portal::new(deps, Default::default(), Default::default()).unwrap())
}

// ---------------------------------------------------------------------------------------------

async fn two_commits_on_one_user(store: Arc<SqlStore>) {
    let c = customer("200000001", "Wettlauf GmbH");
    let u = employee(c.id(), "race@example.com", "Rita", "Race");
    commit_ok(
        &*store,
        writes([Write::InsertCustomer(c), Write::InsertUser(u.clone())]),
    )
    .await;
    for round in 0..20_i64 {
        let loaded = store.user(u.id()).await.unwrap().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2_i64)
            .map(|i| {
                let (store, barrier, mut mine) = (store.clone(), barrier.clone(), loaded.clone());
                tokio::spawn(async move {
                    mine.record_login(at(round * 10 + i));
                    barrier.wait().await;
                    store.commit(writes([Write::UpdateUser(mine)])).await
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(
            ok, 1,
            "round {round}: exactly one of two concurrent commits wins"
        );
        let after = store.user(u.id()).await.unwrap().unwrap();
        assert_eq!(
            after.version(),
            loaded.version() + 1,
            "round {round}: one bump"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_concurrent_commits_on_one_user_one_wins() {
    let db = TestPostgres::start().await;
    two_commits_on_one_user(Arc::new(db.store())).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum AdminAction {
    Lock,
    Demote,
}

async fn admins_act_on_each_other(store: Arc<SqlStore>) {
    let portal = portal(&store, Arc::new(SeededRandom::new(5)));
    let plans = [
        (AdminAction::Lock, AdminAction::Lock),
        (AdminAction::Demote, AdminAction::Demote),
        (AdminAction::Lock, AdminAction::Demote),
        (AdminAction::Demote, AdminAction::Lock),
    ];
    for (round, (first, second)) in plans.iter().cycle().take(12).enumerate() {
        let c = customer(&format!("3000000{round:02}"), "Zwei Admins GmbH");
        let a = admin(c.id(), &format!("a{round}@example.com"), "Ada", "Admin");
        let b = admin(c.id(), &format!("b{round}@example.com"), "Bob", "Admin");
        commit_ok(
            &*store,
            writes([
                Write::InsertCustomer(c.clone()),
                Write::InsertUser(a.clone()),
                Write::InsertUser(b.clone()),
            ]),
        )
        .await;
        let barrier = Arc::new(Barrier::new(2));
        let act = |actor: &User, target: &User, action: AdminAction| {
            let (portal, barrier, number) = (portal.clone(), barrier.clone(), c.number().clone());
            let (actor, target) = (Actor::user(actor.id()), target.id());
            tokio::spawn(async move {
                barrier.wait().await;
                match action {
                    AdminAction::Lock => portal
                        .lock_user(&actor, &number, target, None)
                        .await
                        .is_ok(),
                    AdminAction::Demote => portal
                        .revoke_admin_rights(&actor, &number, target)
                        .await
                        .is_ok(),
                }
            })
        };
        let t1 = act(&a, &b, *first);
        let t2 = act(&b, &a, *second);
        let done = [t1.await.unwrap(), t2.await.unwrap()];
        let active = store
            .admins_of_customer(c.id())
            .await
            .unwrap()
            .iter()
            .filter(|u| u.is_active_admin_of(c.id()))
            .count();
        assert!(
            active >= 1,
            "round {round} ({first:?}, {second:?}): no admin left"
        );
        assert!(
            !(done[0] && done[1]),
            "round {round}: both admins cannot remove each other"
        );
        assert_eq!(
            active,
            2 - usize::from(done[0]) - usize::from(done[1]),
            "round {round}: every successful action removed exactly one admin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_admins_removing_each_other_leave_one_admin() {
    let db = TestPostgres::start().await;
    admins_act_on_each_other(Arc::new(db.store())).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_admins_removing_each_other_leave_one_admin() {
    let db = TestSqlite::file().await;
    admins_act_on_each_other(Arc::new(db.store())).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------

/// Twenty commits append to one chain at once, first while the chain has no head row yet (they
/// race to create it), then again: every entry gets its own sequence number, without gaps, and
/// the chain verifies.
async fn twenty_commits_append_to_one_chain(store: Arc<SqlStore>) {
    use portal_core::audit::{AuditCategory, verify_chain};
    let c = customer("200000003", "Kette GmbH");
    let chain = Some(c.id());
    commit_ok(&*store, writes([Write::InsertCustomer(c)])).await;
    for round in 0..2_i64 {
        let barrier = Arc::new(Barrier::new(20));
        let tasks: Vec<_> = (0..20_i64)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    let mut commit = portal_core::ports::Commit::new();
                    commit.audit(portal_testkit::fixtures::audit(
                        chain,
                        None,
                        AuditCategory::LoginSucceeded,
                        &format!("round={round} i={i}"),
                        at(round * 100 + i),
                    ));
                    barrier.wait().await;
                    store.commit(commit).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().expect("every append commits");
        }
    }
    let entries = store.audit_chain(chain, 0, 100).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<u64>>()
    );
    assert_eq!(verify_chain(&entries), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_twenty_concurrent_appends_to_one_chain_stay_one_chain() {
    let db = TestPostgres::start().await;
    twenty_commits_append_to_one_chain(Arc::new(db.store())).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_twenty_concurrent_appends_to_one_chain_stay_one_chain() {
    let db = TestSqlite::file().await;
    twenty_commits_append_to_one_chain(Arc::new(db.store())).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------

async fn fifty_registrations_one_account(store: Arc<SqlStore>) {
    let random = Arc::new(RecordingRandom {
        inner: SeededRandom::new(42),
        draws: Mutex::new(Vec::new()),
    });
    let portal = portal(&store, random.clone());
    let address = email("contested@example.com");
    let barrier = Arc::new(Barrier::new(50));
    let registrations: Vec<_> = (0..50)
        .map(|i| {
            let (portal, barrier, address) = (portal.clone(), barrier.clone(), address.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                portal
                    .register(Register {
                        email: address,
                        first_name: name("Konrad"),
                        last_name: name(&format!("Konkurrent{i}")),
                        password: SecretString::new("correct horse battery staple 42"),
                        password_confirmation: SecretString::new("correct horse battery staple 42"),
                        language: Language::De,
                    })
                    .await
                    .expect("registration is accepted")
            })
        })
        .collect();
    let mut tickets = Vec::new();
    for r in registrations {
        tickets.push(r.await.unwrap().ticket);
    }

    // Recover each ticket's code: the drawn codes that match the stored (salted) code hash.
    let candidates: Vec<VerificationCode> = random
        .draws
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            VerificationCode::parse(&format!("{:06}", u32::from_be_bytes(*b) % 1_000_000)).unwrap()
        })
        .collect();
    let mut pairs = Vec::new();
    let mut pending_ids = Vec::new();
    for t in &tickets {
        let ch = store
            .challenge_by_ticket(&t.hash())
            .await
            .unwrap()
            .expect("each registration stored its challenge");
        pending_ids.push(ch.user_id());
        let code = candidates
            .iter()
            .find(|c| {
                c.hash_for(ch.id().as_uuid().as_bytes())
                    .matches(&ch.record().code_hash)
            })
            .expect("the code was drawn from the generator")
            .clone();
        pairs.push((t.expose().to_owned(), code.expose().to_owned()));
    }

    let barrier = Arc::new(Barrier::new(pairs.len()));
    let verifications: Vec<_> = pairs
        .into_iter()
        .map(|(ticket, code)| {
            let (portal, barrier) = (portal.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                portal
                    .verify_registration(&ticket, &code, ClientInfo::default())
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut ok = 0;
    for v in verifications {
        ok += usize::from(v.await.unwrap());
    }
    assert_eq!(ok, 1, "exactly one verification creates the account");
    let account = store
        .user_by_email(&address)
        .await
        .unwrap()
        .expect("one account");
    let mut accounts = 0;
    for id in pending_ids {
        let u = store.user(id).await.unwrap().expect("registration kept");
        if u.state() != AccountState::PendingVerification {
            accounts += 1;
            assert_eq!(u.id(), account.id());
        }
    }
    assert_eq!(accounts, 1, "all other registrations stay pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fifty_concurrent_registrations_of_one_address_make_one_account() {
    let db = TestPostgres::start().await;
    fifty_registrations_one_account(Arc::new(db.store())).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------

async fn two_dispatchers(store: Arc<SqlStore>) {
    const MAILS: usize = 1_000;
    for batch in 0..10 {
        let mut commit = portal_core::ports::Commit::new();
        for i in 0..MAILS / 10 {
            commit.mail(code_mail(
                &format!("m{batch}x{i}@example.com"),
                "123456",
                at(i64::try_from(batch * 100 + i).unwrap()),
            ));
        }
        commit_ok(&*store, commit).await;
    }
    let now = at(100_000);
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let claim = uuid::Uuid::new_v4();
                    let batch = store
                        .claim_outbox("mail", claim, now, now + TimeDelta::hours(1), 25)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    for e in batch {
                        assert!(
                            store.mark_sent(e.id(), claim, now).await.unwrap(),
                            "acknowledged by its claimer"
                        );
                        mine.push(e.id());
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for w in workers {
        let got = w.await.unwrap();
        per_worker.push(got.len());
        all.extend(got);
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(
        all.len(),
        MAILS,
        "every mail claimed once (per worker: {per_worker:?})"
    );
    assert_eq!(distinct.len(), MAILS, "no mail claimed twice");
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.sent, stats.pending, stats.claimed),
        (MAILS as u64, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_dispatchers_send_each_of_1000_mails_once() {
    let db = TestPostgres::start().await;
    two_dispatchers(Arc::new(db.store())).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_dispatchers_send_each_of_1000_mails_once() {
    let db = TestSqlite::file().await;
    two_dispatchers(Arc::new(db.store())).await;
    db.finish().await;
}

/// Two housekeepers purge 1,000 dead sessions at once, next to one live session: together they delete each dead row exactly once (on Postgres they skip the rows the
/// other holds instead of waiting), and the live session stays.
async fn two_housekeepers(store: Arc<SqlStore>) {
    use portal_core::ports::Expired;
    use portal_testkit::fixtures::{session, t0, token_hash};
    let c = customer("900000003", "Kehr GmbH");
    let u = employee(c.id(), "kehr@example.com", "Karl", "Kehr");
    commit_ok(
        &*store,
        writes([Write::InsertCustomer(c), Write::InsertUser(u.clone())]),
    )
    .await;
    for chunk in 0..10 {
        let ws = (0..100)
            .map(|i| Write::InsertSession(session(u.id(), token_hash(), at(chunk * 100 + i))));
        commit_ok(&*store, writes(ws)).await;
    }
    let live = session(u.id(), token_hash(), at(86_400 * 10));
    commit_ok(&*store, writes([Write::InsertSession(live.clone())])).await;
    let cutoff = t0() + TimeDelta::days(5);
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut total = 0;
            loop {
                let n = store
                    .purge_expired(Expired::Sessions, cutoff, 50)
                    .await
                    .unwrap();
                total += n;
                if n == 0 {
                    return total;
                }
            }
        }));
    }
    let mut totals = Vec::new();
    for t in tasks {
        totals.push(t.await.unwrap());
    }
    assert_eq!(totals.iter().sum::<u64>(), 1_000, "{totals:?}");
    let left = portal_testkit::fixtures::session_ids(&*store, u.id()).await;
    assert_eq!(left, [live.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_housekeepers_delete_each_dead_row_once() {
    let db = TestPostgres::start().await;
    two_housekeepers(Arc::new(db.store())).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_housekeepers_delete_each_dead_row_once() {
    let db = TestSqlite::file().await;
    two_housekeepers(Arc::new(db.store())).await;
    db.finish().await;
}

// ---------------------------------------------------------------------------------------------

/// Eight sign-ins of one account at once (one person's script, several browsers): every one
/// gets its session. A sign-in records its time without a new version of the user, so they do
/// not conflict with each other (they used to: each bumped the version, and after five lost
/// races a sign-in answered "conflict").
async fn eight_logins_of_one_account(store: Arc<SqlStore>) {
    use portal_core::ports::PasswordHasher as _;
    use portal_core::service::{Login, LoginOutcome};
    let portal = portal(&store, Arc::new(SeededRandom::new(8)));
    let c = customer("200000008", "Anmeldung GmbH");
    let mut u = employee(c.id(), "many@example.com", "Marta", "Many");
    let password = portal_core::password::PasswordPolicy::default()
        .check_single(
            &SecretString::new(portal_core::testing::PASSWORD.to_owned()),
            &[],
        )
        .unwrap();
    u.set_password(fast_hasher(8).hash(&password).await.unwrap(), at(3));
    commit_ok(
        &*store,
        writes([Write::InsertCustomer(c), Write::InsertUser(u.clone())]),
    )
    .await;
    let before = store.user(u.id()).await.unwrap().unwrap();
    for round in 0..3 {
        let barrier = Arc::new(Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (portal, barrier) = (portal.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    portal
                        .login(Login {
                            email: "many@example.com".into(),
                            password: SecretString::new(portal_core::testing::PASSWORD.to_owned()),
                            client: ClientInfo::new(Some(&format!("192.0.2.{i}")), Some("race")),
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(LoginOutcome::Authenticated(s)) => {
                    portal.authenticate(s.token.expose()).await.unwrap();
                }
                other => panic!("round {round}: every sign-in succeeds: {other:?}"),
            }
        }
    }
    let after = store.user(u.id()).await.unwrap().unwrap();
    assert_eq!(
        after.version(),
        before.version(),
        "sign-ins make no version"
    );
    assert!(after.last_login_at().is_some(), "the time is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_eight_concurrent_logins_of_one_account_all_succeed() {
    let db = TestPostgres::start().await;
    eight_logins_of_one_account(Arc::new(db.store())).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_eight_concurrent_logins_of_one_account_all_succeed() {
    let db = TestSqlite::file().await;
    eight_logins_of_one_account(Arc::new(db.store())).await;
    db.finish().await;
}
