//! The `portal` binary's commands, run as a real process in a fresh directory with a clean
//! environment (so a `DATABASE_URL` of the test runner cannot leak in).

use portal_core::config::PortalConfig;
use portal_core::service::{AcceptInvitation, Login, LoginOutcome, PageRequest};
use portal_core::session::ClientInfo;
use portal_core::{Actor, secret::SecretString};
use portal_server::app::{self, MailCapture};
use portal_server::config::Database;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn portal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal"));
    cmd.current_dir(dir).env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run portal")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

async fn open(dir: &Path) -> Arc<adapters_postgres::SqlStore> {
    let db = Database::parse(dir.join("portal.db").to_str().unwrap()).unwrap();
    Arc::new(app::open_store(&db).await.unwrap().0)
}

fn client() -> ClientInfo {
    ClientInfo::new(Some("127.0.0.1"), Some("cli test"))
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["operator", "--help"],
        &["operator", "create", "--help"],
        &["customers", "--help"],
        &["customers", "import", "--help"],
        &["demo", "--help"],
        &["housekeeping", "--help"],
        &["clients", "--help"],
        &["clients", "list", "--help"],
        &["clients", "rotate-secret", "--help"],
        &["clients", "disable", "--help"],
        &["webhooks", "--help"],
        &["webhooks", "add", "--help"],
        &["webhooks", "rotate-secret", "--help"],
        &["audit", "export", "--help"],
        &["audit", "verify", "--help"],
        &["backup", "--help"],
        &["restore", "--help"],
        &["secret", "rotate", "--help"],
    ] {
        let out = ok(portal(dir.path(), args, &[]));
        assert!(out.contains("Usage: portal"), "{args:?}: {out}");
    }
    let out = ok(portal(dir.path(), &["--help"], &[]));
    for cmd in [
        "serve",
        "migrate",
        "operator",
        "customers",
        "demo",
        "housekeeping",
    ] {
        assert!(out.contains(cmd), "{cmd} missing in:\n{out}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "--help touches nothing"
    );
}

#[test]
fn migrate_creates_the_sqlite_file_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(portal(dir.path(), &["migrate"], &[]));
    let n = <adapters_postgres::Migrator as sea_orm_migration::MigratorTrait>::migrations().len();
    assert!(
        out.starts_with(&format!(
            "SQLite file portal.db: applied {n} of {n} migrations: m20261126_000001_initial_schema"
        )),
        "{out}"
    );
    assert!(dir.path().join("portal.db").exists());
    assert!(
        !dir.path().join("portal.secret").exists(),
        "only serve needs the secret"
    );
    let out = ok(portal(dir.path(), &["migrate"], &[]));
    assert_eq!(
        out.trim(),
        format!("SQLite file portal.db: schema up to date ({n} migrations)")
    );
}

/// The names of every migration, in order.
fn migration_names() -> Vec<String> {
    use sea_orm_migration::MigratorTrait as _;
    adapters_postgres::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// `portal migrate --dry-run` lists what would run by name and changes nothing: a missing file
/// is not created, an up-to-date file has nothing pending.
#[test]
fn migrate_dry_run_lists_pending_migrations_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let names = migration_names();
    let out = ok(portal(dir.path(), &["migrate", "--dry-run"], &[]));
    let listed: Vec<&str> = out.lines().skip(1).map(str::trim).collect();
    assert_eq!(listed, names, "{out}");
    assert!(
        out.starts_with(&format!(
            "SQLite file portal.db (does not exist yet): {} pending migration(s) would run \
             (dry run, nothing changed):",
            names.len()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the dry run created no file"
    );

    ok(portal(dir.path(), &["migrate"], &[]));
    let before = std::fs::read(dir.path().join("portal.db")).unwrap();
    let out = ok(portal(dir.path(), &["migrate", "--dry-run"], &[]));
    assert_eq!(
        out.trim(),
        "SQLite file portal.db: schema up to date, nothing would run"
    );
    assert_eq!(
        std::fs::read(dir.path().join("portal.db")).unwrap(),
        before,
        "the dry run wrote nothing"
    );
}

/// Two `portal migrate` processes started together on one fresh file: both succeed, one applies
/// every migration, the other waits for the lock and finds the schema up to date.
#[test]
fn two_migrate_processes_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_portal"))
            .current_dir(dir.path())
            .env_clear()
            .arg("migrate")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run portal")
    };
    let (a, b) = (spawn(), spawn());
    let mut outs = [
        ok(a.wait_with_output().unwrap()),
        ok(b.wait_with_output().unwrap()),
    ];
    outs.sort();
    let total = migration_names().len();
    assert!(
        outs[0].starts_with(&format!(
            "SQLite file portal.db: applied {total} of {total} migrations: \
             m20261126_000001_initial_schema"
        )),
        "{outs:?}"
    );
    assert_eq!(
        outs[1].trim(),
        format!("SQLite file portal.db: schema up to date ({total} migrations)"),
        "{outs:?}"
    );
}

/// `portal housekeeping` removes what is dead (a session that ended days ago), keeps what lives,
/// and reports the counts; a second run finds nothing.
#[tokio::test]
async fn housekeeping_removes_expired_rows_and_reports() {
    use portal_core::ports::{Commit, Committer as _, Write};
    use portal_testkit::fixtures::{operator, session, token_hash};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let op = operator("op@example.com");
    let now = chrono::Utc::now();
    let dead = session(op.id(), token_hash(), now - chrono::TimeDelta::days(3));
    let live = session(op.id(), token_hash(), now);
    let mut commit = Commit::new();
    commit.write(Write::InsertUser(op.clone()));
    commit.write(Write::InsertSession(dead));
    commit.write(Write::InsertSession(live.clone()));
    store.commit(commit).await.unwrap();
    store.connection().clone().close().await.unwrap();

    let out = ok(portal(dir.path(), &["housekeeping"], &[]));
    assert_eq!(
        out.trim(),
        "SQLite file portal.db: removed sessions=1 challenges=0 action_tokens=0 counters=0 sent_mail=0 oidc_tokens=0 \
         audit_entries=0 pending_registrations=0 invitations=0 passkey_challenges=0"
    );
    let out = ok(portal(dir.path(), &["housekeeping"], &[]));
    assert!(out.contains("removed sessions=0 "), "{out}");
    let store = open(dir.path()).await;
    let left = portal_testkit::fixtures::session_ids(&*store, op.id()).await;
    assert_eq!(left, [live.id()]);
}

#[test]
fn settings_from_a_file_apply_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portal.toml"),
        "database_url = \"from-file.db\"\n",
    )
    .unwrap();
    ok(portal(
        dir.path(),
        &["--config", "portal.toml", "migrate"],
        &[],
    ));
    assert!(dir.path().join("from-file.db").exists());
    ok(portal(
        dir.path(),
        &["migrate"],
        &[
            ("PORTAL_CONFIG", "portal.toml"),
            ("DATABASE_URL", "from-env.db"),
        ],
    ));
    assert!(dir.path().join("from-env.db").exists());
}

#[test]
fn refused_configuration_exits_with_2_and_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = portal(
        dir.path(),
        &["migrate"],
        &[
            ("PORTAL_PUBLIC_URL", "http://portal.example.com"),
            ("SMTP_URL", "smtp://localhost"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("PORTAL_PUBLIC_URL is plain http://"),
        "{}",
        stderr(&out)
    );
    let out = portal(
        dir.path(),
        &["serve"],
        &[(
            "DATABASE_URL",
            "postgres://portal:hunter2@127.0.0.1:1/portal",
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: PORTAL_SECRET_KEY"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"));
    let out = portal(dir.path(), &["--config", "missing.toml", "migrate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn operator_create_prints_a_setup_link_whose_token_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(portal(
        dir.path(),
        &[
            "operator",
            "create",
            "--email",
            "olga@vendor.example",
            "--first-name",
            "Olga",
            "--language",
            "en",
        ],
        &[("PORTAL_BIND", "127.0.0.1:9123")],
    ));
    let link = out
        .split_whitespace()
        .find(|w| w.contains("/invitations/"))
        .unwrap_or_else(|| panic!("no link in:\n{out}"));
    let token = link
        .strip_prefix("http://127.0.0.1:9123/invitations/")
        .unwrap_or_else(|| panic!("link {link} does not start at the public URL"));
    assert!(out.contains("olga@vendor.example created"), "{out}");

    // The token opens the invitation page and sets the password; the mailed code confirms it.
    let store = open(dir.path()).await;
    let capture = MailCapture::default();
    let committer = Arc::new(capture.committer(store.clone()));
    let core = app::portal(store, Some(committer), PortalConfig::default()).unwrap();
    let view = core.invitation(token).await.unwrap();
    assert_eq!(view.email.as_str(), "olga@vendor.example");
    assert_eq!(view.first_name.as_str(), "Olga");
    let password = SecretString::new("ein sehr langes passwort");
    let ticket = core
        .accept_invitation(
            token,
            AcceptInvitation {
                password: password.clone(),
                password_confirmation: password.clone(),
            },
        )
        .await
        .unwrap();
    let code = capture.secret_for("olga@vendor.example").unwrap();
    let session = core
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await
        .unwrap();
    let operator = Actor::user(session.user_id);
    core.list_customers(&operator, None, &PageRequest::default())
        .await
        .expect("the new account is an operator");
    let login = core
        .login(Login {
            email: "olga@vendor.example".into(),
            password,
            client: client(),
        })
        .await
        .unwrap();
    assert!(matches!(login, LoginOutcome::Authenticated(_)));

    // The address is taken now.
    let out = portal(
        dir.path(),
        &["operator", "create", "--email", "olga@vendor.example"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has an account already"),
        "{}",
        stderr(&out)
    );
    let out = portal(
        dir.path(),
        &["operator", "create", "--email", "not-an-address"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: --email"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn customers_import_creates_updates_and_refuses_bad_files_whole() {
    let dir = tempfile::tempdir().unwrap();
    let good = "number,name,products,channel\n\
                D123456789,Musterbau GmbH,de-business,direct\n\
                987654321,Huber KG,de-business;at,partner:Systemhaus Nord\n";
    std::fs::write(dir.path().join("good.csv"), good).unwrap();
    let out = ok(portal(
        dir.path(),
        &["customers", "import", "good.csv"],
        &[],
    ));
    assert_eq!(
        out.trim(),
        "good.csv: 2 rows: 2 created, 0 updated, 0 unchanged"
    );
    let out = ok(portal(
        dir.path(),
        &["customers", "import", "good.csv"],
        &[],
    ));
    assert_eq!(
        out.trim(),
        "good.csv: 2 rows: 0 created, 0 updated, 2 unchanged"
    );

    let bad = "number,name,products,channel\n\
               111111111,Neu GmbH,at,direct\n\
               123456789,Musterbau GmbH & Co. KG,de-business,direct\n\
               22,Kaputt,at,direct\n\
               333333333,Mars AG,mars,direct\n";
    std::fs::write(dir.path().join("bad.csv"), bad).unwrap();
    let out = portal(dir.path(), &["customers", "import", "bad.csv"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("2 problem(s) in the file, nothing imported"),
        "{err}"
    );
    assert!(err.contains("line 4: number:"), "{err}");
    assert!(
        err.contains("line 5: products: unknown product affiliation `mars`"),
        "{err}"
    );

    let store = open(dir.path()).await;
    let core = app::portal(store, None, PortalConfig::default()).unwrap();
    let page = core
        .list_customers(&Actor::System, None, &PageRequest::default())
        .await
        .unwrap();
    let names: Vec<&str> = page.items.iter().map(|c| c.name().as_str()).collect();
    assert_eq!(
        names,
        ["Musterbau GmbH", "Huber KG"],
        "nothing of the bad file was written"
    );

    let out = portal(dir.path(), &["customers", "import", "missing.csv"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.csv"), "{}", stderr(&out));
}

#[tokio::test]
async fn demo_seeds_once_with_working_logins_and_no_mail_left_to_send() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(portal(dir.path(), &["demo"], &[]));
    assert!(out.starts_with("Demo data created."), "{out}");
    assert!(out.contains(portal_server::demo::DEMO_PASSWORD), "{out}");
    assert!(out.contains("anna.albrecht@demo.example"), "{out}");
    let again = ok(portal(dir.path(), &["demo"], &[]));
    assert!(
        again.starts_with("Demo data exists already; nothing changed."),
        "{again}"
    );

    let store = open(dir.path()).await;
    let stats = portal_core::ports::OutboxStore::outbox_stats(&*store)
        .await
        .unwrap();
    assert_eq!((stats.pending, stats.claimed), (0, 0), "{stats:?}");
    assert!(stats.sent > 0);
    let core = app::portal(store, None, PortalConfig::default()).unwrap();
    let number =
        portal_core::values::CustomerNumber::parse(portal_server::demo::DEMO_CUSTOMER).unwrap();
    let users = core
        .list_users(&Actor::System, &number, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(users.items.len(), 4, "{:?}", users.items);
    for account in portal_server::demo::ACCOUNTS {
        let login = core
            .login(Login {
                email: account.email.into(),
                password: SecretString::new(portal_server::demo::DEMO_PASSWORD),
                client: client(),
            })
            .await;
        assert!(
            matches!(login, Ok(LoginOutcome::Authenticated(_))),
            "{}: {login:?}",
            account.email
        );
    }
}

#[test]
fn demo_is_refused_outside_development_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = portal(
        dir.path(),
        &["demo"],
        &[
            ("PORTAL_DEV_MODE", "false"),
            ("SMTP_URL", "smtp://localhost"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("development mode only"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("portal.db").exists());
}

/// An administrator invites a colleague on the server's default database (SQLite file).
#[tokio::test]
async fn an_administrator_can_invite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    ok(portal(dir.path(), &["demo"], &[]));
    let store = open(dir.path()).await;
    let core = app::portal(store, None, PortalConfig::default()).unwrap();
    let anna = core
        .login(Login {
            email: portal_server::demo::ADMIN.email.into(),
            password: SecretString::new(portal_server::demo::DEMO_PASSWORD),
            client: client(),
        })
        .await
        .unwrap();
    let LoginOutcome::Authenticated(session) = anna else {
        panic!("no session: {anna:?}");
    };
    let number =
        portal_core::values::CustomerNumber::parse(portal_server::demo::DEMO_CUSTOMER).unwrap();
    let invited = core
        .invite_user(
            &Actor::user(session.user_id),
            &number,
            portal_core::service::Invite {
                email: portal_core::values::EmailAddress::parse("erik@demo.example").unwrap(),
                first_name: portal_core::values::PersonName::parse("Erik").unwrap(),
                last_name: portal_core::values::PersonName::parse("Engel").unwrap(),
                language: portal_core::values::Language::De,
                permissions: portal_core::permission::PermissionSet::new(),
            },
        )
        .await;
    assert!(invited.is_ok(), "{invited:?}");
}

/// Whether `secret` authenticates `client_id` (introspection of a token nobody issued: a good
/// secret is answered `active:false`, a bad one is `invalid_client`).
async fn secret_works(core: &portal_core::Portal, client_id: &str, secret: &str) -> bool {
    let auth = portal_core::service::ClientAuth {
        client_id: Some(client_id.to_owned()),
        secret: Some(SecretString::new(secret)),
    };
    match core.introspect(&auth, "no-such-token").await {
        Ok(v) => {
            assert_eq!(v["active"], false, "{v}");
            true
        }
        Err(e) => {
            assert_eq!(e.code(), "invalid_client", "{e}");
            false
        }
    }
}

fn json_out(o: Output) -> serde_json::Value {
    let out = ok(o);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `portal clients list|rotate-secret|disable`: the list never shows a secret, a rotation prints
/// the new secret once and the old one stops working, disable marks the client; an unknown id is
/// a clear error with exit code 1 and changes nothing.
#[tokio::test]
async fn clients_list_rotate_secret_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let created = json_out(portal(
        d,
        &[
            "clients",
            "create",
            "--name",
            "Belege",
            "--redirect-uri",
            "https://app.example/cb",
            "--first-party",
            "--json",
        ],
        &[],
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let first_secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(first_secret.len() >= 32, "{created}");

    // list: the client, never its secret.
    let text = ok(portal(d, &["clients", "list"], &[]));
    assert!(text.contains(&id) && text.contains("Belege"), "{text}");
    assert!(!text.contains("(disabled)"), "{text}");
    assert!(!text.contains(&first_secret), "{text}");
    let list = json_out(portal(d, &["clients", "list", "--json"], &[]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["client_id"], id.as_str());
    assert_eq!(list[0]["name"], "Belege");
    assert_eq!(list[0]["disabled"], false);
    assert!(list[0].get("client_secret").is_none(), "{list:?}");
    assert!(!list[0].to_string().contains(&first_secret));

    // rotate-secret: a new secret, printed once; the old one stops working.
    let rotated = ok(portal(d, &["clients", "rotate-secret", &id], &[]));
    let second_secret = rotated
        .lines()
        .find_map(|l| l.strip_prefix("client_secret:"))
        .unwrap_or_else(|| panic!("no secret in:\n{rotated}"))
        .trim()
        .to_owned();
    assert_eq!(rotated.matches(&second_secret).count(), 1, "{rotated}");
    assert_ne!(second_secret, first_secret);
    let rotated = json_out(portal(d, &["clients", "rotate-secret", &id, "--json"], &[]));
    assert_eq!(rotated["client_id"], id.as_str());
    let third_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(third_secret, second_secret);
    {
        let store = open(d).await;
        let core = app::portal(store.clone(), None, PortalConfig::default()).unwrap();
        assert!(!secret_works(&core, &id, &first_secret).await);
        assert!(!secret_works(&core, &id, &second_secret).await);
        assert!(secret_works(&core, &id, &third_secret).await);
        app::close_store(&store).await.unwrap();
    }

    // An unknown id: a clear error, exit code 1, nothing changed.
    let before = ok(portal(d, &["clients", "list", "--json"], &[]));
    for args in [
        &["clients", "rotate-secret", "no-such-client"][..],
        &["clients", "rotate-secret", "no-such-client", "--json"],
        &["clients", "disable", "no-such-client"],
    ] {
        let o = portal(d, args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("error:") && err.contains("no-such-client"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(portal(d, &["clients", "list", "--json"], &[])), before);

    // disable: marked in the list; the secret no longer authenticates.
    let out = ok(portal(d, &["clients", "disable", &id], &[]));
    assert_eq!(out.trim(), format!("client {id} disabled"));
    let text = ok(portal(d, &["clients", "list"], &[]));
    assert!(text.contains("(disabled)"), "{text}");
    let list = json_out(portal(d, &["clients", "list", "--json"], &[]));
    assert_eq!(list[0]["disabled"], true, "{list}");
    let store = open(d).await;
    let core = app::portal(store.clone(), None, PortalConfig::default()).unwrap();
    assert!(!secret_works(&core, &id, &third_secret).await);
    app::close_store(&store).await.unwrap();
}

/// `portal audit export|verify`: a customer's log exported with the signed head verifies offline
/// (with the file's keys and with the server's JWKS); an edited field and a cut-off tail are
/// reported with the entry named (exit code 1); another customer's entries never appear.
#[tokio::test]
async fn audit_export_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("c.csv"),
        "number,name,products,channel\n\
         123456789,Musterbau GmbH,de-business,direct\n\
         987654321,Huber KG,de-business,direct\n",
    )
    .unwrap();
    ok(portal(d, &["customers", "import", "c.csv"], &[]));
    std::fs::write(
        d.join("c.csv"),
        "number,name,products,channel\n123456789,Musterbau AG,de-business,direct\n",
    )
    .unwrap();
    ok(portal(d, &["customers", "import", "c.csv"], &[]));

    let o = portal(
        d,
        &[
            "audit",
            "export",
            "--customer",
            "123456789",
            "-o",
            "log.jsonl",
        ],
        &[],
    );
    ok(o);
    let text = std::fs::read_to_string(d.join("log.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header, created, updated, head:\n{text}");
    // To standard output too, the same entries.
    let stdout_text = ok(portal(
        d,
        &["audit", "export", "--customer", "123456789"],
        &[],
    ));
    assert_eq!(stdout_text.lines().nth(1), lines.get(1).copied());

    let out = ok(portal(d, &["audit", "verify", "log.jsonl"], &[]));
    assert!(
        out.contains("valid: 2 entries of customer 123456789"),
        "{out}"
    );
    // With the server's published keys.
    let (store, other_id) = {
        let store = open(d).await;
        let core = app::portal(store.clone(), None, PortalConfig::default()).unwrap();
        let jwks = core.jwks().await.unwrap();
        std::fs::write(d.join("jwks.json"), serde_json::to_string(&jwks).unwrap()).unwrap();
        let other = core
            .list_customers(&Actor::System, None, &PageRequest::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|c| c.number().as_str() == "987654321")
            .unwrap();
        (store, other.id())
    };
    app::close_store(&store).await.unwrap();
    let out = ok(portal(
        d,
        &["audit", "verify", "log.jsonl", "--jwks", "jwks.json"],
        &[],
    ));
    assert!(out.contains("valid: 2 entries"), "{out}");
    assert!(!text.contains(&other_id.to_string()));

    // An edited field: the entry is named.
    let mut entry: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    let id = entry["id"].as_str().unwrap().to_owned();
    entry["details"] = serde_json::Value::from("name=Anders");
    let edited = [lines[0], lines[1], &entry.to_string(), lines[3]].join("\n");
    std::fs::write(d.join("edited.jsonl"), edited).unwrap();
    let o = portal(d, &["audit", "verify", "edited.jsonl"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("line 3: entry 2") && err.contains(&id) && err.contains("altered"),
        "{err}"
    );
    // A cut-off tail.
    std::fs::write(d.join("cut.jsonl"), lines[..2].join("\n")).unwrap();
    let o = portal(d, &["audit", "verify", "cut.jsonl"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cut off"), "{}", stderr(&o));
    // An unknown customer: a clear error.
    let o = portal(d, &["audit", "export", "--customer", "111111111"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("111111111"), "{}", stderr(&o));
}

/// `portal backup`, `portal restore` and `portal secret rotate` as an operator runs them: a
/// backup of a live SQLite database, a restore into a new directory that needs the key file,
/// refusals (data present, another secret, Postgres), and a rotation to a new secret after
/// which the old one alone is refused.
#[test]
fn backup_restore_and_secret_rotation_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (live, fresh, other) = (
        dir.path().join("live"),
        dir.path().join("fresh"),
        dir.path().join("other"),
    );
    for d in [&live, &fresh, &other] {
        std::fs::create_dir_all(d).unwrap();
    }
    ok(portal(&live, &["demo"], &[]));
    // A signing key sealed with the secret; the key id is recorded.
    ok(portal(&live, &["keys", "rotate"], &[]));
    let out = ok(portal(&live, &["backup", "../backup.db"], &[]));
    assert!(out.contains("keep the server secret with it"), "{out}");
    let again = portal(&live, &["backup", "../backup.db"], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );

    // Without the key file the restore says what it needs and writes nothing.
    let no_key = portal(&fresh, &["restore", "../backup.db"], &[]);
    assert_eq!(no_key.status.code(), Some(1));
    assert!(
        stderr(&no_key).contains("key file not found"),
        "{}",
        stderr(&no_key)
    );
    assert!(!fresh.join("portal.db").exists());
    assert!(
        !fresh.join("portal.secret").exists(),
        "never generated by a restore"
    );
    let secret = std::fs::read_to_string(live.join("portal.secret")).unwrap();
    std::fs::copy(live.join("portal.secret"), fresh.join("portal.secret")).unwrap();
    let out = ok(portal(&fresh, &["restore", "../backup.db"], &[]));
    assert!(out.contains("restored"), "{out}");
    let refused = portal(&fresh, &["restore", "../backup.db"], &[]);
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    ok(portal(&fresh, &["restore", "--force", "../backup.db"], &[]));

    // Another secret is refused, naming the way out.
    let new_secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let wrong = portal(
        &other,
        &["restore", "../backup.db"],
        &[("PORTAL_SECRET_KEY", new_secret)],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("another server secret"),
        "{}",
        stderr(&wrong)
    );
    assert!(!other.join("portal.db").exists());

    // Rotation: new + old, then the new one alone works and the old one alone is refused.
    let both = [
        ("PORTAL_SECRET_KEY", new_secret),
        ("PORTAL_OLD_SECRET_KEYS", secret.trim()),
    ];
    let out = ok(portal(&fresh, &["secret", "rotate"], &both));
    assert!(out.contains("1 signing keys"), "{out}");
    assert!(out.contains("no longer needed"), "{out}");
    ok(portal(
        &fresh,
        &["keys", "rotate"],
        &[("PORTAL_SECRET_KEY", new_secret)],
    ));
    let old_only = portal(&fresh, &["keys", "rotate"], &[]);
    assert_eq!(old_only.status.code(), Some(1));
    assert!(
        stderr(&old_only).contains("another server secret"),
        "{}",
        stderr(&old_only)
    );

    // Postgres: pointed to pg_dump, nothing connected.
    let pg = [("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")];
    for args in [&["backup", "x.dump"][..], &["restore", "x.dump"]] {
        let out = portal(dir.path(), args, &pg);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
    }
}

/// `portal webhooks add|list|rotate-secret|disable|enable|remove`: the secret is printed once
/// (sealed with the key file's secret, which `add` creates on SQLite like `serve`), never listed;
/// bad input and an unknown id are clear errors with exit code 1 that change nothing; every
/// change is in the global change log.
#[tokio::test]
async fn webhooks_add_list_rotate_disable_enable_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let created = json_out(portal(
        d,
        &[
            "webhooks",
            "add",
            "--url",
            "https://crm.example.com/in",
            "--events",
            "user.locked,user.unlocked",
            "--events",
            "admin_request.approved",
            "--description",
            "CRM",
            "--json",
        ],
        &[],
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["secret"].as_str().unwrap().to_owned();
    assert!(first.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["events"],
        serde_json::json!(["user.locked", "user.unlocked", "admin_request.approved"])
    );

    let text = ok(portal(d, &["webhooks", "list"], &[]));
    assert!(
        text.contains(&id) && text.contains("https://crm.example.com/in"),
        "{text}"
    );
    assert!(!text.contains(&first), "{text}");
    let list = json_out(portal(d, &["webhooks", "list", "--json"], &[]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("secret").is_none(), "{list}");

    let rotated = ok(portal(d, &["webhooks", "rotate-secret", &id], &[]));
    let second = rotated
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .unwrap_or_else(|| panic!("no secret in:\n{rotated}"))
        .trim()
        .to_owned();
    assert!(second.starts_with("whsec_") && second != first);

    let before = ok(portal(d, &["webhooks", "list", "--json"], &[]));
    for args in [
        &[
            "webhooks",
            "add",
            "--url",
            "ftp://x.example/",
            "--events",
            "all",
        ][..],
        &[
            "webhooks",
            "add",
            "--url",
            "https://x.example/",
            "--events",
            "user.exploded",
        ],
        &[
            "webhooks",
            "disable",
            "00000000-0000-0000-0000-000000000000",
        ],
        &["webhooks", "remove", "not-a-uuid"],
    ] {
        let o = portal(d, args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(ok(portal(d, &["webhooks", "list", "--json"], &[])), before);

    let out = ok(portal(d, &["webhooks", "disable", &id], &[]));
    assert_eq!(out.trim(), format!("webhook {id} disabled"));
    assert!(ok(portal(d, &["webhooks", "list"], &[])).contains("(disabled)"));
    let out = ok(portal(d, &["webhooks", "enable", &id], &[]));
    assert_eq!(out.trim(), format!("webhook {id} enabled"));
    let out = ok(portal(d, &["webhooks", "remove", &id], &[]));
    assert_eq!(out.trim(), format!("webhook {id} removed"));
    assert_eq!(
        ok(portal(d, &["webhooks", "list", "--json"], &[])).trim(),
        "[]"
    );

    let store = open(d).await;
    let log: Vec<String> = portal_core::ports::Queries::audit_chain(&*store, None, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.record.category.key().starts_with("webhook."))
        .map(|e| e.record.category.key().to_owned())
        .collect();
    app::close_store(&store).await.unwrap();
    assert_eq!(log.len(), 5, "{log:?}");
}
