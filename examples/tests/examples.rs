//! Every example runs here, so none can rot.

mod guide;

#[path = "../quickstart.rs"]
mod quickstart;

#[path = "../in_memory.rs"]
mod in_memory;

#[path = "../custom_catalog.rs"]
mod custom_catalog;

#[path = "../postgres.rs"]
mod postgres;

#[tokio::test]
async fn quickstart_walks_the_manuals_flow() {
    let s = quickstart::run().await.unwrap();
    assert!(s.may_open_documents, "Ben holds \"Meine Belege\"");
    assert!(
        !s.session_alive_after_lock,
        "the lock ends Ben's session at once"
    );
    assert!(!s.login_after_lock, "a locked user cannot log in");
    assert!(s.chain_entries > 0);
    assert!(s.mails.contains(&"invitation"), "{:?}", s.mails);
    assert!(s.mails.contains(&"account_locked"), "{:?}", s.mails);
}

#[tokio::test]
async fn in_memory_walks_the_flow_and_the_lock_ends_the_session() {
    let (open, alive) = in_memory::run().await.unwrap();
    assert!(open, "the linked user may open the default area");
    assert!(!alive, "the lock ends the session at once");
}

#[tokio::test]
async fn custom_catalog_entitles_only_the_finance_areas() {
    let entitled = custom_catalog::run().await.unwrap();
    assert_eq!(entitled.joined(), "dunning,invoices");
}

#[test]
fn custom_catalog_is_property_tested_with_the_kit() {
    assert_eq!(custom_catalog::property_test(16).unwrap(), 16);
}

#[tokio::test]
async fn postgres_example_migrates_and_lists_on_postgres() {
    let pg = adapters_postgres::testing::TestPostgres::start().await;
    assert_eq!(postgres::run(pg.url()).await.unwrap(), 1);
    assert_eq!(postgres::run(pg.url()).await.unwrap(), 1, "idempotent");
    pg.finish().await;
}

#[tokio::test]
async fn postgres_example_also_runs_on_a_sqlite_file() {
    let db = adapters_postgres::testing::TestSqlite::file().await;
    let url = format!("sqlite://{}?mode=rwc", db.path().display());
    assert_eq!(postgres::run(&url).await.unwrap(), 1);
    db.finish().await;
}

#[path = "../host_app.rs"]
mod host_app;

mod host {
    use super::host_app;
    use adapters_memory::MemoryStore;
    use axum::body::Body;
    use axum::http::{Request, header};
    use portal_core::customer::ServiceChannel;
    use portal_core::service::{NewCustomer, Register};
    use portal_core::session::ClientInfo;
    use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
    use portal_core::{Actor, Deps, Portal};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;
    use tower::ServiceExt;

    /// A browser-ish client: keeps cookies, sends the CSRF token.
    struct Browser {
        app: axum::Router,
        cookies: BTreeMap<String, String>,
    }

    impl Browser {
        async fn send(
            &mut self,
            method: &str,
            path: &str,
            body: Option<serde_json::Value>,
            csrf: Option<&str>,
        ) -> (u16, String) {
            let mut b = Request::builder().method(method).uri(path);
            if !self.cookies.is_empty() {
                let c: Vec<String> = self
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                b = b.header(header::COOKIE, c.join("; "));
            }
            if let Some(t) = csrf {
                b = b
                    .header("x-csrf-token", t)
                    .header(header::ORIGIN, "http://127.0.0.1:3000");
            }
            let req = match body {
                Some(v) => b
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(v.to_string())),
                None => b.body(Body::empty()),
            }
            .unwrap();
            let mut req = req;
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    40_000,
                ))));
            let res = self.app.clone().oneshot(req).await.unwrap();
            for c in res.headers().get_all(header::SET_COOKIE) {
                let (pair, _) = c.to_str().unwrap().split_once(';').unwrap();
                let (k, v) = pair.split_once('=').unwrap();
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
            let status = res.status().as_u16();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }

        async fn csrf(&mut self) -> String {
            let (s, body) = self
                .send("GET", "/portal/api/v1/auth/csrf", None, None)
                .await;
            assert_eq!(s, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["csrf_token"].as_str().unwrap().to_owned()
        }
    }

    #[tokio::test]
    async fn host_app_guards_its_invoices_with_portal_sessions_and_permissions() {
        let store = Arc::new(MemoryStore::new());
        let portal = Arc::new(
            Portal::new(
                Deps::production(store.clone()),
                Default::default(),
                Default::default(),
            )
            .unwrap(),
        );
        let number = CustomerNumber::parse("123456789").unwrap();
        portal
            .create_customer(
                &Actor::System,
                &NewCustomer {
                    number: number.clone(),
                    name: CompanyName::parse("Musterbau GmbH").unwrap(),
                    affiliations: BTreeSet::new(),
                    channel: ServiceChannel::Direct,
                    entitlements: None,
                    default_permissions: None,
                },
            )
            .await
            .unwrap();
        let ticket = portal
            .register(Register {
                email: EmailAddress::parse("anna@musterbau.de").unwrap(),
                first_name: PersonName::parse("Anna").unwrap(),
                last_name: PersonName::parse("Schmidt").unwrap(),
                password: "korrekt pferd batterie".into(),
                password_confirmation: "korrekt pferd batterie".into(),
                language: Language::De,
            })
            .await
            .unwrap();
        let code = store
            .outbox()
            .iter()
            .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
            .unwrap();
        let s = portal
            .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
            .await
            .unwrap();
        let anna = Actor::user(s.user_id);
        portal
            .choose_affiliation(
                &anna,
                &portal_core::customer::AffiliationKey::parse("de-business").unwrap(),
            )
            .await
            .unwrap();
        portal.link_customer(&anna, &number).await.unwrap();

        let invoices = host_app::Invoices(Arc::new(BTreeMap::from([
            ("123456789".to_owned(), vec!["RE-1".to_owned()]),
            ("987654321".to_owned(), vec!["FREMD-1".to_owned()]),
        ])));
        let mut b = Browser {
            app: host_app::app(portal.clone(), invoices).unwrap(),
            cookies: BTreeMap::new(),
        };
        assert_eq!(
            b.send("GET", "/invoices", None, None).await.0,
            401,
            "no session"
        );
        let t = b.csrf().await;
        let (s, body) = b
            .send("POST", "/portal/api/v1/auth/login", Some(serde_json::json!({"email": "anna@musterbau.de", "password": "korrekt pferd batterie"})), Some(&t))
            .await;
        assert_eq!(s, 200, "login through the nested portal: {body}");
        let (s, body) = b.send("GET", "/invoices", None, None).await;
        assert_eq!(s, 403, "joined with the default permission only: {body}");
        let docs = portal.catalog().resolve("documents").unwrap();
        portal
            .set_permissions(
                &Actor::System,
                &number,
                s_user(&portal, "anna@musterbau.de").await,
                &[docs].into_iter().collect(),
            )
            .await
            .unwrap();
        let (s, body) = b.send("GET", "/invoices", None, None).await;
        assert_eq!(s, 200, "{body}");
        assert!(
            body.contains("RE-1") && !body.contains("FREMD"),
            "only her customer's invoices: {body}"
        );
    }

    /// What `cargo run --example host_app` prints works: the seeded administrator sees the
    /// invoices, the seeded employee is refused until granted "Meine Belege".
    #[tokio::test]
    async fn host_app_seeds_the_logins_it_prints() {
        let store = Arc::new(MemoryStore::new());
        let portal = Arc::new(
            Portal::new(
                Deps::production(store.clone()),
                Default::default(),
                Default::default(),
            )
            .unwrap(),
        );
        host_app::seed(&portal, &store).await.unwrap();
        let invoices = host_app::Invoices(Arc::new(BTreeMap::from([(
            host_app::CUSTOMER.to_owned(),
            vec!["RE-1".to_owned()],
        )])));
        let app = host_app::app(portal.clone(), invoices).unwrap();
        for (who, role, expected) in [
            ("anna@musterbau.de", "administrator", 200),
            ("ben@musterbau.de", "employee", 403),
        ] {
            let mut b = Browser {
                app: app.clone(),
                cookies: BTreeMap::new(),
            };
            let t = b.csrf().await;
            let login = serde_json::json!({"email": who, "password": host_app::PASSWORD});
            let (s, body) = b
                .send("POST", "/portal/api/v1/auth/login", Some(login), Some(&t))
                .await;
            assert_eq!(s, 200, "{who}: {body}");
            let (_, me) = b.send("GET", "/portal/api/v1/me", None, None).await;
            let me: serde_json::Value = serde_json::from_str(&me).unwrap();
            assert_eq!(me["role"], role, "{who}");
            assert_eq!(me["status"], "active", "{who}");
            let (s, body) = b.send("GET", "/invoices", None, None).await;
            assert_eq!(s, expected, "{who}: {body}");
        }
    }

    async fn s_user(portal: &Portal, address: &str) -> portal_core::ids::UserId {
        portal
            .deps()
            .queries
            .user_by_email(&EmailAddress::parse(address).unwrap())
            .await
            .unwrap()
            .unwrap()
            .id()
    }
}
