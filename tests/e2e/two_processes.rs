//! Two `portal serve` processes on one Postgres database (same `PORTAL_SECRET_KEY`, different
//! ports) behave as one system: one first operator, sessions and CSRF tokens valid on both, a lock
//! on one ends the session on the other at once, login throttling counts failures from both, and
//! with both mail dispatchers running every mail is delivered exactly once.

use crate::support::browser::Browser;
use crate::support::portal::Portal;
use crate::support::world::*;
use portal_core::ports::{OutboxStore as _, Queries as _};
use serde_json::json;
use std::collections::BTreeMap;

const NUMBER: &str = "200000001";

/// The token of the first operator's setup link, from whichever server created the account.
async fn setup_token(a: &Portal, b: &Portal) -> String {
    tokio::select! {
        t = a.first_operator_token() => t,
        t = b.first_operator_token() => t,
    }
}

/// Both processes migrated the same empty database at once: the migration lock let exactly one
/// apply the migrations (its log lists all of them) while the other waited and found the schema
/// up to date; the migration table holds each migration exactly once; neither logged an error.
async fn migrations_applied_once(store: &adapters_postgres::SqlStore, out_a: &str, out_b: &str) {
    use adapters_postgres::Migrator;
    use sea_orm::{ConnectionTrait as _, Statement};
    use sea_orm_migration::MigratorTrait as _;

    let total = Migrator::migrations().len();
    let applied_all = format!("applied {total} of {total} migrations");
    let up_to_date = format!("schema up to date ({total} migrations)");
    let appliers = [out_a, out_b]
        .iter()
        .filter(|o| o.contains(&applied_all))
        .count();
    let waiters = [out_a, out_b]
        .iter()
        .filter(|o| o.contains(&up_to_date))
        .count();
    assert_eq!(
        (appliers, waiters),
        (1, 1),
        "one process applies every migration, the other finds the schema up to date\n\
         A:\n{out_a}\nB:\n{out_b}"
    );
    for (name, out) in [("A", out_a), ("B", out_b)] {
        assert!(
            !out.contains("ERROR") && !out.contains("migration failed"),
            "{name} logged an error while starting:\n{out}"
        );
    }
    let db = store.connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version, count(*) AS n FROM seaql_migrations GROUP BY version ORDER BY version",
        ))
        .await
        .expect("read the migration table");
    let recorded: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<String>("", "version").expect("version"),
                r.try_get::<i64>("", "n").expect("count"),
            )
        })
        .collect();
    let mut expected: Vec<(String, i64)> = Migrator::migrations()
        .iter()
        .map(|m| (m.name().to_owned(), 1))
        .collect();
    expected.sort();
    assert_eq!(recorded, expected, "every migration recorded exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_on_one_database_share_sessions_locks_throttles_and_send_each_mail_once() {
    let mut s = Stack::start_unmigrated().await;
    let op_email = "ops@vendor.example";
    // Both start at once on the empty database (no migration has run); only one creates the first operator.
    let operator_env = [("PORTAL_OPERATOR_EMAIL", op_email)];
    let (a, b) = tokio::join!(s.serve("A", &operator_env), s.serve("B", &operator_env));
    assert_ne!(a.port, b.port);
    let token = setup_token(&a, &b).await;
    let store = s.pg.store();
    migrations_applied_once(&store, &a.output(), &b.output()).await;
    assert_eq!(
        store.operators().await.expect("operators").len(),
        1,
        "two processes starting at once create one operator"
    );

    // The operator sets the password on B with the link (whoever printed it) and works on A.
    let op_p = Person {
        first: "Portal".into(),
        last: "Operator".into(),
        email: op_email.into(),
        password: "vendor staff kennwort 2026".into(),
    };
    let op_b = Browser::new(&b);
    accept_invitation(&op_b, &mut s.smtp, &token, &op_p).await;
    let op_a = op_b.at(&a);
    create_customer(&op_a, NUMBER, "Zwei Prozesse AG").await;

    // A session made on one process works on the other, and so does its CSRF token (both derive
    // it from the shared secret).
    let anna_p = Person::new("Anna", "Zwei", "zwei.example");
    let anna_a = Browser::new(&a);
    register(&anna_a, &mut s.smtp, &anna_p).await;
    let anna_b = anna_a.at(&b);
    assert_eq!(anna_a.csrf().await, anna_b.csrf().await);
    assert_eq!(
        anna_b.get("/me").await.expect(200)["email"],
        anna_p.email.as_str()
    );
    assert_eq!(link(&anna_b, NUMBER).await, "active");
    let request = anna_b.post("/me/admin-request", None).await;
    let request_id = request.expect(201)["id"].as_str().unwrap().to_owned();
    op_a.post(
        &format!("/operator/admin-requests/{request_id}/approve"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(
        anna_b.get("/me").await.expect(200)["role"],
        "administrator",
        "a role change on A applies to the next request on B"
    );

    // Ben, invited on B, finishes his registration on A.
    let ben_p = Person::new("Ben", "Zwei", "zwei.example");
    let invited = anna_b
        .post(
            &format!("/customers/{NUMBER}/users"),
            Some(json!({"email": ben_p.email, "first_name": ben_p.first, "last_name": ben_p.last})),
        )
        .await;
    let ben_id = invited.expect(201)["id"].as_str().unwrap().to_owned();
    let invitation = s.smtp.expect(&ben_p.email, "Einladung zum Portal").await;
    let token = invitation.token(&format!("{}/invitations/", b.origin));
    let ben_a = Browser::new(&a);
    accept_invitation(&ben_a, &mut s.smtp, &token, &ben_p).await;
    let ben_b = ben_a.at(&b);
    assert_eq!(ben_b.get("/me").await.status, 200);

    // A lock made on A ends Ben's session on B at once; the unlock on B lets him log in on A.
    anna_a
        .post(&format!("/customers/{NUMBER}/users/{ben_id}/lock"), None)
        .await
        .expect(200);
    ben_b.get("/me").await.expect_error(401, "unauthenticated");
    ben_a.get("/me").await.expect_error(401, "unauthenticated");
    anna_b
        .delete(&format!("/customers/{NUMBER}/users/{ben_id}/lock"))
        .await
        .expect(200);
    login_ok(&ben_a, &ben_p).await;
    assert_eq!(ben_b.get("/me").await.status, 200);

    // Login throttling is shared: four failures on A (three are free, the fourth blocks the
    // account for this client address for a while, doubling with each further failure). B has
    // seen none of them itself, yet refuses the account from that address with 429 `throttled`
    // — after at most three failures of its own, which alone would never block (should the first
    // block have run out before B's first check, B's own failure doubles the shared block and
    // the next try meets it). Other addresses are not blocked by these (docs/security.md).
    let mallory_a = Browser::from_address(&a, [127, 0, 0, 3].into());
    for _ in 0..4 {
        login(&mallory_a, &ben_p.email, "rate mal das passwort")
            .await
            .expect_error(401, "invalid_credentials");
    }
    let mallory_b = Browser::from_address(&b, [127, 0, 0, 3].into());
    let mut own_failures = 0;
    loop {
        let answer = login(&mallory_b, &ben_p.email, "rate mal das passwort").await;
        if answer.status == 429 {
            answer.expect_error(429, "throttled");
            assert!(answer.body["error"]["details"]["retry_at"].is_string());
            assert!(answer.headers.contains_key("retry-after"));
            eprintln!("B refused the account after {own_failures} failure(s) of its own");
            break;
        }
        answer.expect_error(401, "invalid_credentials");
        own_failures += 1;
        assert!(
            own_failures < 4,
            "B let {own_failures} failures through after 4 on A: throttling is not shared"
        );
    }

    // Mail: a burst of invitations, half committed through each process, while both dispatchers
    // run and claim from the one outbox.
    let mut burst = Vec::new();
    let mut requests = Vec::new();
    for i in 0..20 {
        let email = format!("kollege{i:02}@zwei.example");
        let admin = if i % 2 == 0 {
            anna_a.clone()
        } else {
            anna_b.clone()
        };
        let body =
            json!({"email": email, "first_name": "Kollege", "last_name": format!("Nummer{i}")});
        burst.push(email);
        requests.push(tokio::spawn(async move {
            admin
                .post(&format!("/customers/{NUMBER}/users"), Some(body))
                .await
        }));
    }
    for r in requests {
        r.await.expect("request task").expect(201);
    }
    for email in &burst {
        s.smtp.expect(email, "Einladung zum Portal").await;
    }

    // Sessions end everywhere at logout too.
    anna_b.post("/auth/logout", None).await.expect(204);
    anna_a.get("/me").await.expect_error(401, "unauthenticated");

    // A final sentinel mail, then both processes stop cleanly (SIGTERM: requests in flight
    // finish, each dispatcher finishes its send in flight). After that no mail can arrive.
    ben_a
        .post(
            "/me/contact-admin",
            Some(json!({"message": "Sentinel: letzte Nachricht."})),
        )
        .await
        .expect(202);
    let sentinel = s
        .smtp
        .expect(
            &anna_p.email,
            "Nachricht eines Benutzers an den Administrator",
        )
        .await;
    assert!(sentinel.text.contains("Sentinel: letzte Nachricht."));
    let (out_a, out_b) = tokio::join!(a.stop(), b.stop());

    // Every mail exactly once: each Message-ID (derived from its outbox entry) arrived once, and
    // the SMTP server got exactly as many messages as the outbox marked sent, with nothing left.
    let stats = store.outbox_stats().await.expect("outbox stats");
    let all = s.smtp.all().to_vec();
    let mut per_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &all {
        per_id
            .entry(m.message_id.as_str())
            .or_default()
            .push(m.subject.as_str());
    }
    let duplicates: Vec<_> = per_id.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        duplicates.is_empty(),
        "mails delivered more than once: {duplicates:?}"
    );
    assert_eq!(
        (stats.sent, stats.pending, stats.claimed, stats.dead),
        (all.len() as u64, 0, 0, 0),
        "the outbox sent exactly what the SMTP server received: {stats:?}"
    );
    assert!(all.len() >= 30, "{}", s.smtp.summary());
    // Both dispatchers delivered (each process logs its own sends).
    let sent_by = |out: &str| out.matches("outbox message sent").count();
    eprintln!(
        "{} mails, {} sent by A and {} by B",
        all.len(),
        sent_by(&out_a),
        sent_by(&out_b)
    );
    assert_eq!(
        sent_by(&out_a) + sent_by(&out_b),
        all.len(),
        "A:\n{out_a}\nB:\n{out_b}"
    );
    s.finish().await;
}
