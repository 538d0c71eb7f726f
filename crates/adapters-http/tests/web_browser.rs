//! The web UI in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! `/usr/bin/chromedriver` (both installed by `scripts/test-deps`), against the router served on
//! 127.0.0.1 by a real axum server with the in-memory store. No sleeps: every step waits for an
//! element of the page it expects.
//!
//! The walk: a newcomer registers, reads the code in the development mailbox page, confirms it,
//! chooses the affiliation, links by customer number and sees "Meine Supportanfragen"; an
//! administrator logs in, searches the user table, opens the permissions, ticks all of "Meine
//! Daten", saves (the core then holds the four keys), locks the user, and the user's browser is
//! logged out on its next page load.

use crate::web_support::{PASSWORD, affiliation, email, name, number};
use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig, RateLimits, router};
use adapters_smtp::{MailDelivery, MailDirectory, MailRenderer, MailSettings};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use portal_core::config::PortalConfig;
use portal_core::permission::PermissionCatalog;
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};
use portal_core::{Actor, Deps, Portal};
use portal_dispatch::{Dispatcher, DispatcherConfig};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest wait for one page's element (a cold headless Chromium on two cores is slow).
const WAIT: Duration = Duration::from_secs(60);

/// A directory removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("portal-web-browser-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// chromedriver in its own process group: dropping it ends the group, so no Chromium outlives
/// the test even when it fails half-way (before the sessions are closed).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Starts chromedriver on a free port and returns it once it says it listens.
async fn chromedriver() -> (Driver, u16) {
    for (what, path) in [("Chromium", CHROMIUM), ("ChromeDriver", CHROMEDRIVER)] {
        assert!(
            Path::new(path).exists(),
            "{what} is not installed at {path}: the web UI's browser test needs Debian's \
             chromium and chromium-driver packages. Run scripts/test-deps as root (it installs \
             them with apt-get), or `apt-get install -y chromium chromium-driver`."
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("started successfully") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(started, Ok(true)),
        "chromedriver did not start: {started:?}"
    );
    // Keep reading its output so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Driver(child), port)
}

/// A headless Chromium session with its own profile (own cookies).
async fn browser(driver: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver}"))
        .await
        .expect("a WebDriver session in headless Chromium")
}

async fn wait(c: &Client, css: &str) -> Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let url = c.current_url().await.ok();
            let source = c.source().await.unwrap_or_default();
            panic!("no {css:?} on {url:?}: {e}\n{source}")
        }
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = wait(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    wait(c, css).await.click().await.unwrap();
}

/// The six-digit code of the newest mail to `to` on the development mailbox page.
async fn code_from_mailbox(c: &Client, base: &str, to: &str) -> String {
    c.goto(&format!("{base}/dev/mailbox")).await.unwrap();
    wait(c, "article.mail").await;
    for article in c.find_all(Locator::Css("article.mail")).await.unwrap() {
        let recipient = article.find(Locator::Css("dd.to")).await.unwrap();
        if recipient.text().await.unwrap().trim() != to {
            continue;
        }
        let text = article
            .find(Locator::Css("pre.mail-text"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let code = text
            .split(|ch: char| !ch.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap_or_else(|| panic!("no code in the mail: {text}"));
        return code.to_owned();
    }
    panic!("no mail to {to} in the development mailbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_and_an_administrator_in_a_real_browser() {
    let (driver, driver_port) = chromedriver().await;

    // The portal, served on a free port of 127.0.0.1.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mail_dir = TempDir::new("mail");
    let mut config = HttpConfig::new(&base, CookieKey::generate())
        .unwrap()
        .insecure_development_cookies()
        .with_dev_mailbox(mail_dir.path());
    config.rate_limits = RateLimits::off();
    let store = Arc::new(adapters_memory::MemoryStore::new());
    let clock = Arc::new(ManualClock::new());
    let deps = Deps {
        queries: store.clone(),
        committer: store.clone(),
        clock: clock.clone(),
        ids: Arc::new(SequentialIds::new()),
        random: Arc::new(SeededRandom::new(11)),
        hasher: Arc::new(fast_hasher(3)),
        legacy: Arc::new(adapters_memory::InMemoryLegacyDirectory::new()),
    };
    let portal =
        Arc::new(Portal::new(deps, PortalConfig::default(), PermissionCatalog::default()).unwrap());
    let app = router(AppState::new(portal.clone(), config, Arc::new(AlwaysReady)));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(MailDelivery::new(
            MailRenderer::new(
                MailSettings::new(&base, email("do-not-reply@portal.example.com")).unwrap(),
            )
            .unwrap(),
            Arc::new(MailDirectory::new(mail_dir.path()).unwrap()),
        )),
        clock.clone(),
        DispatcherConfig::default(),
    )
    .unwrap();
    let op = {
        let setup = portal
            .create_operator(
                &Actor::System,
                &email("op@example.com"),
                &name("Otto"),
                &name("Operator"),
                portal_core::values::Language::De,
            )
            .await
            .unwrap();
        let ticket = portal
            .accept_invitation(
                setup.token.expose(),
                portal_core::service::AcceptInvitation {
                    password: PASSWORD.into(),
                    password_confirmation: PASSWORD.into(),
                },
            )
            .await
            .unwrap();
        let code = store
            .outbox()
            .iter()
            .rev()
            .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
            .unwrap();
        let s = portal
            .verify_registration(ticket.ticket.expose(), &code, Default::default())
            .await
            .unwrap();
        Actor::user(s.user_id)
    };
    portal
        .create_customer(
            &Actor::System,
            &portal_core::service::NewCustomer {
                number: number("100000001"),
                name: portal_core::values::CompanyName::parse("Muster GmbH").unwrap(),
                affiliations: [affiliation()].into(),
                channel: portal_core::customer::ServiceChannel::Direct,
                entitlements: None,
                default_permissions: None,
            },
        )
        .await
        .unwrap();

    let user_profile = TempDir::new("user");
    let admin_profile = TempDir::new("admin");
    let user = browser(driver_port, user_profile.path()).await;

    // Erstellen Sie Ihr Konto.
    user.goto(&format!("{base}/register")).await.unwrap();
    fill(&user, "#f-email", "nora@example.com").await;
    fill(&user, "#f-first_name", "Nora").await;
    fill(&user, "#f-last_name", "Neu").await;
    fill(&user, "#f-password", PASSWORD).await;
    fill(&user, "#f-password_confirmation", PASSWORD).await;
    click(&user, "form[action='/register'] button[type=submit]").await;
    wait(&user, "form[action='/register/code']").await;

    // The code from the development mailbox page, then "Weiter".
    dispatcher.drain().await.unwrap();
    let code = code_from_mailbox(&user, &base, "nora@example.com").await;
    user.goto(&format!("{base}/register/code")).await.unwrap();
    fill(&user, "#f-code", &code).await;
    click(&user, "form[action='/register/code'] button[type=submit]").await;

    // Bitte wählen Sie Ihre Zugehörigkeit aus; Kundennummer; "Jetzt registrieren".
    click(&user, "button[name=affiliation][value='de-business']").await;
    fill(&user, "#f-customer_number", "D100000001").await;
    click(
        &user,
        "form[action='/onboarding/link/customer'] button[type=submit]",
    )
    .await;
    let area = wait(&user, "a[href='/areas/support_requests']").await;
    assert_eq!(area.text().await.unwrap(), "Meine Supportanfragen");

    // The customer's first administrator (seeded through the core).
    let admin_actor = {
        let ticket = portal
            .register(portal_core::service::Register {
                email: email("chefin@example.com"),
                first_name: name("Clara"),
                last_name: name("Chefin"),
                password: PASSWORD.into(),
                password_confirmation: PASSWORD.into(),
                language: portal_core::values::Language::De,
            })
            .await
            .unwrap();
        let code = store
            .outbox()
            .iter()
            .rev()
            .find(|m| m.to.as_str() == "chefin@example.com")
            .and_then(|m| m.intent.secret().map(|s| s.expose().to_owned()))
            .unwrap();
        let s = portal
            .verify_registration(ticket.ticket.expose(), &code, Default::default())
            .await
            .unwrap();
        let a = Actor::user(s.user_id);
        portal.choose_affiliation(&a, &affiliation()).await.unwrap();
        portal
            .link_customer(&a, &number("100000001"))
            .await
            .unwrap();
        let req = portal.request_admin_rights(&a).await.unwrap();
        portal.approve_admin_request(&op, req.id()).await.unwrap();
        a
    };
    let _ = admin_actor;

    // The administrator logs in, opens the user table and searches.
    let admin = browser(driver_port, admin_profile.path()).await;
    admin.goto(&format!("{base}/login")).await.unwrap();
    fill(&admin, "#f-email", "chefin@example.com").await;
    fill(&admin, "#f-password", PASSWORD).await;
    click(&admin, "form[action='/login'] button[type=submit]").await;
    click(&admin, "nav.main a[href='/admin/users']").await;
    fill(&admin, "#f-q", "Nora").await;
    click(&admin, "form.search button[type=submit]").await;
    // The answer to the search (the old page has the typed text only as a property).
    wait(&admin, "#f-q[value='Nora']").await;
    let row = "//table[contains(@class,'users')]//tr[td[contains(., 'nora@example.com')]]";
    admin
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "{row}//a[contains(@href, '/permissions')]"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // "Alle anhaken" for "Meine Daten", then "Speichern".
    click(&admin, "button[name=action][value='check:my_data']").await;
    wait(&admin, "div.alert.info").await;
    for key in ["licenses", "master_data", "shop", "payment_methods"] {
        let boxed = wait(&admin, &format!("#p-{key}")).await;
        assert!(boxed.is_selected().await.unwrap(), "{key} is ticked");
    }
    click(&admin, "button[name=action][value='save']").await;
    wait(&admin, "div.alert.ok").await;
    let nora = portal
        .deps()
        .queries
        .user_by_email(&email("nora@example.com"))
        .await
        .unwrap()
        .unwrap();
    let granted: Vec<String> = nora.permissions().iter().map(ToString::to_string).collect();
    for key in ["licenses", "master_data", "shop", "payment_methods"] {
        assert!(granted.contains(&key.to_owned()), "{key} in {granted:?}");
    }

    // "Benutzer sperren": the lock page, its button, the table says "Gesperrt".
    click(&admin, "a.button.secondary[href$='/users']").await;
    admin
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "{row}//a[contains(@href, '/lock')]"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait(&admin, "p.subtitle").await;
    click(&admin, "form[action$='/lock'] button[type=submit]").await;
    admin
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "{row}/td[contains(., 'Gesperrt')]"
        )))
        .await
        .unwrap();

    // The user's very next page load: the login page.
    user.refresh().await.unwrap();
    wait(&user, "form[action='/login']").await;
    assert_eq!(user.current_url().await.unwrap().path(), "/login");

    user.close().await.unwrap();
    admin.close().await.unwrap();
    server.abort();
    drop(driver);
}
