//! The `portal` commands besides `serve`, run against the same Postgres database as a running
//! server, and their effect checked through that server's API: `migrate`, `operator create` (its
//! printed setup link, accepted over HTTP with the mailed code), `customers import` (the
//! customers appear for the operator and users can link to them) and `demo` (its printed
//! accounts log in).

use crate::support::TempDir;
use crate::support::browser::Browser;
use crate::support::portal::run;
use crate::support::world::*;

const CSV: &str = "number,name,products,channel\n\
                   D300000001,\"Import, Schmidt & Söhne KG\",de-business;at,direct\n\
                   300000002,Handel Nord GmbH,de-enterprise,partner:Fachhandel Nord\n\
                   \" 300000003 \",Dritte AG,de-business,direct\n";

#[tokio::test(flavor = "multi_thread")]
async fn operator_create_customers_import_and_demo_on_postgres() {
    let mut s = Stack::start().await;
    let dir = TempDir::new("cli");
    let mut env = s.env();

    let out = run(dir.path(), &["migrate"], &env).await.ok();
    assert!(out.contains("Postgres"), "{out}");
    let server = s.serve("portal", &[]).await;
    env.push(("PORTAL_PUBLIC_URL".into(), server.origin.clone()));

    // `portal operator create`: the one-time setup link it prints opens on the server.
    let olga = operator();
    let out = run(
        dir.path(),
        &[
            "operator",
            "create",
            "--email",
            &olga.email,
            "--first-name",
            &olga.first,
            "--last-name",
            &olga.last,
        ],
        &env,
    )
    .await
    .ok();
    let prefix = format!("{}/invitations/", server.origin);
    let setup_link = out
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no setup link in:\n{out}"));
    let token = setup_link.rsplit('/').next().unwrap();
    let op = Browser::new(&server);
    let me = accept_invitation(&op, &mut s.smtp, token, &olga).await;
    assert_eq!(me["role"], "operator");

    // `portal customers import`: every row checked first; an invalid file writes nothing.
    let csv = dir.path().join("customers.csv");
    std::fs::write(&csv, CSV).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "number,name,products,channel\n300000009,Gut GmbH,de-business,direct\n12345,Kaputt,de-business,direct\n",
    )
    .unwrap();
    let failed = run(
        dir.path(),
        &["customers", "import", bad.to_str().unwrap()],
        &env,
    )
    .await;
    assert_eq!(failed.code, Some(1), "{failed:?}");
    op.get("/operator/customers/300000009")
        .await
        .expect_error(404, "not_found");

    let out = run(
        dir.path(),
        &["customers", "import", csv.to_str().unwrap()],
        &env,
    )
    .await
    .ok();
    assert!(out.contains("3 created, 0 updated, 0 unchanged"), "{out}");
    let out = run(
        dir.path(),
        &["customers", "import", csv.to_str().unwrap()],
        &env,
    )
    .await
    .ok();
    assert!(out.contains("0 created, 0 updated, 3 unchanged"), "{out}");

    let first = op.get("/operator/customers/D300000001").await;
    let first = first.expect(200);
    assert_eq!(first["name"], "Import, Schmidt & Söhne KG");
    assert_eq!(keys(&first["affiliations"]), ["at", "de-business"]);
    assert_eq!(first["channel"]["kind"], "direct");
    let partner = op.get("/operator/customers/300000002").await;
    let partner = partner.expect(200);
    assert_eq!(partner["channel"]["kind"], "partner");
    assert_eq!(partner["channel"]["partner"], "Fachhandel Nord");
    assert_eq!(
        op.get("/operator/customers/300000003").await.expect(200)["name"],
        "Dritte AG"
    );
    // A user links to an imported customer by its number.
    let kai_p = Person::new("Kai", "Import", "import.example");
    let kai = Browser::new(&server);
    register(&kai, &mut s.smtp, &kai_p).await;
    assert_eq!(link(&kai, "D300000001").await, "active");

    // `portal demo`: the printed accounts log in over HTTP; a second run changes nothing.
    let out = run(dir.path(), &["demo"], &env).await.ok();
    assert!(out.contains("Demo data created."), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.split("Every account's password: ").nth(1))
        .unwrap_or_else(|| panic!("no password in:\n{out}"))
        .trim()
        .to_owned();
    let accounts: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (email, what) = l.split_once(char::is_whitespace)?;
            email.contains('@').then(|| (email, what.trim()))
        })
        .collect();
    let admin = accounts
        .iter()
        .find(|(_, what)| *what == "administrator")
        .unwrap_or_else(|| panic!("no administrator in:\n{out}"))
        .0;
    let demo = Browser::new(&server);
    let answer = login(&demo, admin, &password).await;
    let me = answer.expect(200)["user"].clone();
    assert_eq!(me["role"], "administrator", "{me}");
    let number = me["customer"]["number"].as_str().expect("a customer");
    let users = demo.get(&format!("/customers/{number}/users")).await;
    let listed: Vec<String> = users.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    for (email, what) in &accounts {
        // Every printed account logs in with the printed password, in the role it is listed as.
        let b = Browser::new(&server);
        let a = login(&b, email, &password).await;
        let role = a.expect(200)["user"]["role"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            what.starts_with(&role),
            "{email} ({what}) logged in as {role}"
        );
        if role != "operator" {
            assert!(
                listed.contains(&(*email).to_owned()),
                "{email} in {listed:?}"
            );
        }
    }
    let out = run(dir.path(), &["demo"], &env).await.ok();
    assert!(out.contains("exists already; nothing changed"), "{out}");

    server.stop().await;
    s.finish().await;
}
