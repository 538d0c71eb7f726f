//! `portal legacy import` as a real process on SQLite, and linking with an imported account
//! through the portal the server wires (the store is its legacy directory).

use portal_core::Actor;
use portal_core::config::PortalConfig;
use portal_core::ports::LegacyDirectory as _;
use portal_core::secret::SecretString;
use portal_core::service::{LinkOutcome, Register};
use portal_core::session::ClientInfo;
use portal_core::values::{EmailAddress, Language, PersonName};
use portal_server::app::{self, MailCapture};
use portal_server::config::Database;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn portal(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portal"))
        .current_dir(dir)
        .env_clear()
        .args(args)
        .output()
        .expect("run portal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// PHP manual's bcrypt of "rasmuslerdorf"; passlib's documented PBKDF2-SHA256 of "password".
const BCRYPT: &str = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";
const PBKDF2: &str =
    "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M";

#[tokio::test]
async fn legacy_import_checks_everything_first_is_idempotent_and_the_account_links_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "number,name,products,channel\nD123456789,Musterbau GmbH,de-business,direct\n",
    )
    .unwrap();
    let out = portal(dir.path(), &["customers", "import", "customers.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // One bad row (unknown customer) and one bad hash: nothing is written.
    let bad = format!(
        "username,customer_number,password_hash\n\
         Mueller,D123456789,{BCRYPT}\n\
         schmidt,999999999,{PBKDF2}\n\
         weber,123456789,5f4dcc3b5aa765d61d8327deb882cf99\n"
    );
    std::fs::write(dir.path().join("bad.csv"), bad).unwrap();
    let out = portal(dir.path(), &["legacy", "import", "bad.csv"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 4: password_hash: not a supported"),
        "{err}"
    );
    assert!(!err.contains("5f4dcc3b"), "no hash is echoed: {err}");
    // The hash is checked before the database is opened; the customer after.
    let fixed = format!(
        "username,customer_number,password_hash\n\
         Mueller,D123456789,{BCRYPT}\n\
         schmidt,999999999,{PBKDF2}\n"
    );
    std::fs::write(dir.path().join("bad.csv"), fixed).unwrap();
    let out = portal(dir.path(), &["legacy", "import", "bad.csv"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 3: customer_number: no customer with this number"),
        "{err}"
    );
    let db = Database::parse(dir.path().join("portal.db").to_str().unwrap()).unwrap();
    let store = Arc::new(app::open_store(&db).await.unwrap().0);
    assert!(
        store.find("mueller").await.unwrap().is_none(),
        "nothing written"
    );

    let good = format!(
        "password_hash,username,customer_number\n\
         {BCRYPT},Mueller,D123456789\n\
         \"{PBKDF2}\",schmidt,123456789\n"
    );
    std::fs::write(dir.path().join("accounts.csv"), &good).unwrap();
    let out = portal(dir.path(), &["legacy", "import", "accounts.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "accounts.csv: 2 accounts: 2 created, 0 updated, 0 unchanged, 0 linked already (left alone)\n\
         password hashes:\n  bcrypt cost=10: 1\n  pbkdf2-sha256 (modular crypt) rounds=6400: 1\n"
    );
    assert!(
        text(&out.stderr).is_empty(),
        "no progress bar without a terminal: {}",
        text(&out.stderr)
    );
    let out = portal(dir.path(), &["legacy", "import", "accounts.csv"]);
    assert!(text(&out.stdout).contains("0 created, 0 updated, 2 unchanged, 0 linked already"));

    // A user links with the old account through the portal as the server wires it.
    let capture = MailCapture::default();
    let committer = Arc::new(capture.committer(store.clone()));
    let core = app::portal(store.clone(), Some(committer), PortalConfig::default()).unwrap();
    let password = SecretString::new("ein sehr langes passwort");
    let ticket = core
        .register(Register {
            email: EmailAddress::parse("neu@example.com").unwrap(),
            first_name: PersonName::parse("Neu").unwrap(),
            last_name: PersonName::parse("Nutzer").unwrap(),
            password: password.clone(),
            password_confirmation: password,
            language: Language::De,
        })
        .await
        .unwrap();
    let code = capture.secret_for("neu@example.com").unwrap();
    let client = ClientInfo::new(Some("127.0.0.1"), Some("cli test"));
    let session = core
        .verify_registration(ticket.ticket.expose(), &code, client.clone())
        .await
        .unwrap();
    let actor = Actor::user(session.user_id);
    core.choose_affiliation(
        &actor,
        &portal_core::customer::AffiliationKey::parse("de-business").unwrap(),
    )
    .await
    .unwrap();
    let outcome = core
        .link_legacy_from(
            &actor,
            " MUELLER ",
            &SecretString::new("rasmuslerdorf"),
            &client,
        )
        .await
        .unwrap();
    assert_eq!(outcome, LinkOutcome::Active);
    let linked = store.find("mueller").await.unwrap().unwrap();
    assert!(linked.hash.is_none(), "the old hash is deleted on linking");

    let out = portal(dir.path(), &["legacy", "import", "accounts.csv"]);
    assert!(
        text(&out.stdout).contains("0 created, 0 updated, 1 unchanged, 1 linked already"),
        "{}",
        text(&out.stdout)
    );
    assert!(store.find("mueller").await.unwrap().unwrap().hash.is_none());
}
