//! The web UI in a real browser: Debian's Chromium, headless, driven over WebDriver by
//! `/usr/bin/chromedriver` (both installed by `scripts/test-deps`), against the router served on
//! 127.0.0.1 by a real axum server with the in-memory store. No sleeps: every step waits for an
//! element of the page it expects.
//!
//! `passkeys_in_a_real_browser` serves its own portal as `http://localhost:<port>` (a WebAuthn
//! relying party cannot be an IP address) and adds a WebDriver virtual authenticator.
//!
//! The walk visits every screen as a newcomer, an employee, a customer administrator, an operator
//! and a user with a second factor; each page it reaches by GET in both languages, and every page
//! at 1280 px and at 375 px. On each it fails when the page is not HTML (a JSON answer), when the
//! page is wider than the window, when axe-core (npm's `axe-core`, pinned and installed by
//! `scripts/test-deps`, injected through WebDriver) finds a violation, when a table's action
//! links sit lower than their row, when the header wraps at 1280 px, when a stacked table's cell
//! lost its column name at 375 px, when a change-log detail shows a raw `key=value`, when the TOTP
//! key wraps its last character, or when sessions show a raw user-agent string. Screenshots of
//! every screen at both widths go to `target/screenshots/` (named `NN-screen-lang-width.png`).
//!
//! Along the way: a newcomer registers, reads the code in the development mailbox page, confirms
//! it, chooses the affiliation, links by customer number and sees "Meine Supportanfragen", and is
//! not offered "Administrator kontaktieren" while the customer has no administrator; the sole
//! administrator is offered neither lock nor delete on their own row, and no permissions for a
//! user waiting for activation; the administrator ticks all of "Meine Daten", saves (the core
//! then holds the four keys), locks the user, whose browser is logged out on its next page load
//! and whose login attempt the change log names "Anmeldeversuch"; the change log shows a pager
//! with its first and last page; an operator sets up an authenticator app and logs in with it.
//! A failed form (an invitation to a member's address, a wrong current password) comes back by
//! GET to its page with the message and the input but no password, a reload shows the plain
//! form, and a GET on a form's address shows the page it belongs to. The operator's application
//! pages (list, new, one application) and the provider's consent and "no permission" pages are
//! screens of the walk too (the page after the login form that moves on to the application by
//! itself is not: it leaves at once; `tests/oidc.rs` and `examples/oidc_app` cover it).

use crate::web_support::{PASSWORD, affiliation, email, name, number};
use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig, RateLimits, router};
use adapters_smtp::{MailDelivery, MailDirectory, MailRenderer, MailSettings};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use portal_core::config::PortalConfig;
use portal_core::permission::PermissionCatalog;
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher, mfa_key};
use portal_core::{Actor, Deps, Portal};
use portal_dispatch::{Dispatcher, DispatcherConfig};
use serde_json::{Value, json};
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
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("portal-web-browser-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub(crate) fn path(&self) -> &Path {
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
pub(crate) struct Driver(Child);

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
pub(crate) async fn chromedriver() -> (Driver, u16) {
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
pub(crate) async fn browser(driver: u16, profile: &Path) -> Client {
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

pub(crate) async fn wait(c: &Client, css: &str) -> Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let url = c.current_url().await.ok();
            let source = c.source().await.unwrap_or_default();
            panic!("no {css:?} on {url:?}: {e}\n{source}")
        }
    }
}

pub(crate) async fn fill(c: &Client, css: &str, text: &str) {
    let e = wait(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

pub(crate) async fn click(c: &Client, css: &str) {
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

/// Where the screenshots go (named in the README).
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

/// `axe.min.js` of the pinned axe-core that `scripts/test-deps` installs beside the Python tools
/// (`target/test-tools/node`); the script runs here when `PORTAL_TEST_PYTHONPATH` is unset.
fn axe_source() -> String {
    let python = PathBuf::from(portal_core::testing::test_tools_python_path());
    let axe = python.join("../node/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&axe).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed at {} ({e}): scripts/test-deps installs it with npm",
            axe.display()
        )
    })
}

/// What the walk checks on every page, in the page (returns the problems found).
const PAGE_CHECKS: &str = r#"
const problems = [];
const w = window.innerWidth;
const root = document.documentElement;
if (root.scrollWidth > w) {
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > w + 1)
    .slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
  problems.push(`horizontal overflow: ${root.scrollWidth} px in ${w} px (${wide.join(', ')})`);
}
if (w >= 1000) {
  const items = [...document.querySelectorAll('header.top .brand, header.top nav.main li, header.top .who, header.top nav.lang')];
  const tops = items.map(e => e.getBoundingClientRect().top);
  if (tops.length && Math.max(...tops) - Math.min(...tops) > 12) problems.push('the header wraps');
  for (const td of document.querySelectorAll('table td.actions')) {
    const first = td.parentElement.querySelector('td, th');
    const range = document.createRange();
    range.selectNodeContents(first);
    const top = range.getBoundingClientRect().top;
    const link = td.querySelector('a, button, select');
    if (link && Math.abs(link.getBoundingClientRect().top - top) > 6) {
      problems.push(`action "${link.textContent.trim()}" sits ${Math.round(link.getBoundingClientRect().top - top)} px below its row`);
    }
  }
} else {
  for (const td of document.querySelectorAll('table.stack tbody td:not([colspan])')) {
    if (td.closest('table.permissions')) continue;
    const label = getComputedStyle(td, '::before').content;
    if (!td.dataset.label || !label || label === 'none') {
      problems.push(`a stacked cell without its column name: "${td.textContent.trim().slice(0, 40)}"`);
    }
  }
}
for (const td of document.querySelectorAll('table.audit td')) {
  if (/\b[a-z_]+=/.test(td.textContent)) problems.push(`raw change-log details: ${td.textContent.trim()}`);
}
const secret = document.querySelector('#totp-secret');
if (secret && secret.firstChild && secret.firstChild.length > 2) {
  const t = secret.firstChild, n = t.length;
  const top = (from) => { const r = document.createRange(); r.setStart(t, from); r.setEnd(t, from + 1); return r.getBoundingClientRect().top; };
  if (Math.abs(top(n - 2) - top(n - 1)) > 2) problems.push('the TOTP key wraps its last character');
}
for (const td of document.querySelectorAll('td.ua')) {
  if (/Mozilla\/|AppleWebKit/.test(td.textContent)) problems.push(`a raw user agent: ${td.textContent.trim()}`);
}
return problems;
"#;

/// The browser of the walk: checks and screenshots the page it is on.
struct Walk {
    c: Client,
    base: String,
    axe: String,
    shots: PathBuf,
    n: usize,
}

impl Walk {
    async fn resize(&self, width: u32) {
        self.c.set_window_size(width, 900).await.unwrap();
        // Headless windows have no frame, but make sure: the viewport is what is asked for.
        let inner = self
            .c
            .execute("return window.innerWidth", vec![])
            .await
            .unwrap();
        let inner = u32::try_from(inner.as_u64().unwrap()).unwrap();
        if inner != width {
            self.c
                .set_window_size(2 * width - inner, 900)
                .await
                .unwrap();
        }
    }

    async fn axe(&self) -> Vec<String> {
        let loaded = self
            .c
            .execute("return typeof window.axe !== 'undefined'", vec![])
            .await
            .unwrap();
        if loaded != Value::Bool(true) {
            self.c.execute(&self.axe, vec![]).await.unwrap();
        }
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => `${v.id}: ${v.help} — ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }

    /// Checks the page the browser is on at both widths; `name` names its screenshots.
    async fn check(&mut self, name: &str) {
        self.check_page(name, false).await;
    }

    /// [`Walk::check`]; `both`: the page is seen in both languages.
    async fn check_page(&mut self, name: &str, both: bool) {
        let url = self.c.current_url().await.unwrap();
        let kind = self
            .c
            .execute(
                "return [document.contentType, document.body ? document.body.innerText.trim().slice(0, 1) : '']",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(kind[0], "text/html", "{name}: {url} is not a page: {kind}");
        assert_ne!(kind[1], "{", "{name}: {url} shows JSON");
        let lang = self
            .c
            .execute("return document.documentElement.lang", vec![])
            .await
            .unwrap();
        let lang = lang.as_str().unwrap_or("xx").to_owned();
        self.n += 1;
        for width in [1280, 375] {
            self.resize(width).await;
            let problems: Vec<String> =
                serde_json::from_value(self.c.execute(PAGE_CHECKS, vec![]).await.unwrap()).unwrap();
            // Screenshots of the German pages (and of pages seen once, whatever their language).
            let file = self
                .shots
                .join(format!("{:02}-{name}-{lang}-{width}.png", self.n));
            if lang == "de" || !both {
                let png = self.c.screenshot().await.unwrap();
                std::fs::write(&file, png).unwrap();
            }
            assert!(
                problems.is_empty(),
                "{name} ({url}, {lang}, {width} px; screenshot {}): {problems:#?}",
                file.display()
            );
            // axe-core once per visit: the English page at 1280 px, the German one at 375 px
            // (both widths for a page seen once).
            if !both || (lang == "de") == (width == 375) {
                let violations = self.axe().await;
                assert!(
                    violations.is_empty(),
                    "axe-core on {name} ({url}, {lang}, {width} px): {violations:#?}"
                );
            }
        }
        self.resize(1280).await;
    }

    /// Visits `path` in English and then in German (the language stays German) and checks it.
    async fn screen(&mut self, name: &str, path: &str, ready: &str) {
        for lang in ["en", "de"] {
            let sep = if path.contains('?') { '&' } else { '?' };
            self.c
                .goto(&format!("{}{path}{sep}lang={lang}", self.base))
                .await
                .unwrap();
            wait(&self.c, ready).await;
            self.check_page(name, true).await;
        }
    }

    async fn login(&self, address: &str) {
        self.c.delete_all_cookies().await.unwrap();
        self.c.goto(&format!("{}/login", self.base)).await.unwrap();
        fill(&self.c, "#f-email", address).await;
        fill(&self.c, "#f-password", PASSWORD).await;
        click(&self.c, "form[action='/login'] button[type=submit]").await;
    }

    /// The texts of the links in the user table's row of `address`.
    async fn row_actions(&self, address: &str) -> Vec<String> {
        let row = format!(
            "//table[contains(@class,'users')]//tr[td[contains(., '{address}')]]//td[contains(@class,'actions')]//*[self::a or self::button]"
        );
        let mut out = Vec::new();
        for e in self.c.find_all(Locator::XPath(&row)).await.unwrap() {
            out.push(e.text().await.unwrap().trim().to_owned());
        }
        assert!(!out.is_empty(), "no row of {address} in the user table");
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_in_a_real_browser() {
    let (driver, driver_port) = chromedriver().await;
    let axe = axe_source();
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

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
        // The store is also the directory of imported old accounts ("Servicewelt").
        legacy: store.clone(),
    };
    let portal_config = PortalConfig {
        mfa_key: Some(mfa_key()),
        ..PortalConfig::default()
    };
    let portal = Arc::new(Portal::new(deps, portal_config, PermissionCatalog::default()).unwrap());
    // With the outbox, as `serve` has it: the operator's dead-letter page needs it.
    let app = router(
        AppState::new(portal.clone(), config, Arc::new(AlwaysReady)).with_outbox(store.clone()),
    );
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
    // A registered and confirmed account, through the core.
    let account = |address: &'static str, first: &'static str, last: &'static str| {
        let portal = portal.clone();
        let store = store.clone();
        async move {
            let ticket = portal
                .register(portal_core::service::Register {
                    email: email(address),
                    first_name: name(first),
                    last_name: name(last),
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
                .find(|m| m.to.as_str() == address)
                .and_then(|m| m.intent.secret().map(|s| s.expose().to_owned()))
                .unwrap();
            let s = portal
                .verify_registration(ticket.ticket.expose(), &code, Default::default())
                .await
                .unwrap();
            Actor::user(s.user_id)
        }
    };
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
    let mut walk = Walk {
        c: user,
        base: base.clone(),
        axe,
        shots,
        n: 0,
    };

    // Not logged in: the login, registration and forgotten-password pages, and a missing page.
    walk.screen("login", "/login", "form[action='/login']")
        .await;
    walk.screen("forgot-password", "/password/forgot", "main form")
        .await;
    walk.screen("not-found", "/no-such-page", "main h1").await;
    walk.screen("register", "/register", "form[action='/register']")
        .await;

    // A newcomer: "Erstellen Sie Ihr Konto".
    let user = &walk.c;
    fill(user, "#f-email", "nora@example.com").await;
    fill(user, "#f-first_name", "Nora").await;
    fill(user, "#f-last_name", "Neu").await;
    fill(user, "#f-password", PASSWORD).await;
    fill(user, "#f-password_confirmation", PASSWORD).await;
    click(user, "form[action='/register'] button[type=submit]").await;
    wait(user, "form[action='/register/code']").await;
    walk.screen(
        "register-code",
        "/register/code",
        "form[action='/register/code']",
    )
    .await;

    // The code from the development mailbox page, then "Weiter".
    dispatcher.drain().await.unwrap();
    walk.screen("dev-mailbox", "/dev/mailbox", "article.mail")
        .await;
    let code = code_from_mailbox(&walk.c, &base, "nora@example.com").await;
    let user = &walk.c;
    user.goto(&format!("{base}/register/code")).await.unwrap();
    fill(user, "#f-code", &code).await;
    click(user, "form[action='/register/code'] button[type=submit]").await;

    // Bitte wählen Sie Ihre Zugehörigkeit aus (with the vendor's product names); Kundennummer.
    wait(user, "button[name=affiliation][value='de-business']").await;
    walk.screen(
        "affiliation",
        "/onboarding/affiliation",
        "button[name=affiliation]",
    )
    .await;
    let page = walk.c.source().await.unwrap();
    assert!(
        page.contains("Sage 50 Connected"),
        "product names keep their vendor"
    );
    let user = &walk.c;
    click(user, "button[name=affiliation][value='de-business']").await;
    wait(user, "#f-customer_number").await;
    walk.screen("link", "/onboarding/link", "#f-customer_number")
        .await;
    let user = &walk.c;
    fill(user, "#f-customer_number", "D100000001").await;
    click(
        user,
        "form[action='/onboarding/link/customer'] button[type=submit]",
    )
    .await;
    let area = wait(user, "a[href='/areas/support_requests']").await;
    assert_eq!(area.text().await.unwrap(), "Meine Supportanfragen");
    // The customer has no administrator yet: nobody to contact.
    assert!(
        user.find(Locator::Css("a[href='/contact-admin']"))
            .await
            .is_err(),
        "'Administrator kontaktieren' offered while the customer has no administrator"
    );
    walk.screen("home-employee", "/home", "main h1").await;
    walk.screen("area", "/areas/support_requests", "main h1")
        .await;
    walk.screen("profile", "/profile", "main form").await;
    walk.screen("security", "/mfa", "main h1").await;
    walk.screen("sessions", "/sessions", "main table").await;
    walk.screen("admin-request", "/admin-request", "main h1")
        .await;

    // The customer's first administrator (through the core), and a colleague who registers after
    // that and so waits for activation.
    let admin_actor = account("chefin@example.com", "Clara", "Chefin").await;
    portal
        .choose_affiliation(&admin_actor, &affiliation())
        .await
        .unwrap();
    portal
        .link_customer(&admin_actor, &number("100000001"))
        .await
        .unwrap();
    let req = portal.request_admin_rights(&admin_actor).await.unwrap();
    portal.approve_admin_request(&op, req.id()).await.unwrap();
    let waiting = account("paul@example.com", "Paul", "Pending").await;
    portal
        .choose_affiliation(&waiting, &affiliation())
        .await
        .unwrap();
    portal
        .link_customer(&waiting, &number("100000001"))
        .await
        .unwrap();
    // Now the employee may write to the administrator.
    walk.screen("contact-admin", "/contact-admin", "#f-message")
        .await;

    // The administrator, in a browser of their own.
    let admin = browser(driver_port, admin_profile.path()).await;
    let user = std::mem::replace(&mut walk.c, admin);
    walk.login("chefin@example.com").await;
    wait(&walk.c, "nav.main a[href='/admin/users']").await;
    walk.screen("home-admin", "/home", "main h1").await;
    walk.screen("users", "/admin/users", "table.users").await;
    // The sole administrator's own row offers neither lock nor delete; a waiting user's row
    // offers activation but no permissions.
    let own = walk.row_actions("chefin@example.com").await;
    for refused in ["Benutzer sperren", "Benutzer löschen"] {
        assert!(
            !own.iter().any(|a| a == refused),
            "{refused} on the sole administrator's row: {own:?}"
        );
    }
    let pending = walk.row_actions("paul@example.com").await;
    assert!(pending.iter().any(|a| a == "Freischalten"), "{pending:?}");
    assert!(
        !pending.iter().any(|a| a == "Berechtigungen"),
        "{pending:?}"
    );
    let nora_row = walk.row_actions("nora@example.com").await;
    for offered in ["Berechtigungen", "Benutzer sperren", "Benutzer löschen"] {
        assert!(
            nora_row.iter().any(|a| a == offered),
            "{offered} missing: {nora_row:?}"
        );
    }

    // Search, then the permissions: "Alle anhaken" for "Meine Daten", then "Speichern".
    let admin = &walk.c;
    fill(admin, "#f-q", "Nora").await;
    click(admin, "form.search button[type=submit]").await;
    // The answer to the search (the old page has the typed text only as a property).
    wait(admin, "#f-q[value='Nora']").await;
    let row = "//table[contains(@class,'users')]//tr[td[contains(., 'nora@example.com')]]";
    let link = |what: &'static str| {
        let c = walk.c.clone();
        async move {
            c.wait()
                .at_most(WAIT)
                .for_element(Locator::XPath(&format!(
                    "{row}//a[contains(@href, '{what}')]"
                )))
                .await
                .unwrap()
                .attr("href")
                .await
                .unwrap()
                .unwrap()
        }
    };
    let permissions = link("/permissions").await;
    let lock = link("/lock").await;
    let delete = link("/delete").await;
    let log = link("/audit").await;
    for (name, path, ready) in [
        ("lock", lock.as_str(), "form[action$='/lock']"),
        ("delete", &delete, "form[action$='/delete']"),
        ("user-log", &log, "table.audit"),
        (
            "invite",
            "/admin/customers/100000001/users/new",
            "main form",
        ),
        ("admin-requests", "/admin/admin-requests", "main h1"),
        (
            "permissions",
            &permissions,
            "button[name=action][value='save']",
        ),
    ] {
        walk.screen(name, path, ready).await;
    }
    let admin = &walk.c;
    click(admin, "button[name=action][value='check:my_data']").await;
    wait(admin, "div.alert.info").await;
    for key in ["licenses", "master_data", "shop", "payment_methods"] {
        let boxed = wait(admin, &format!("#p-{key}")).await;
        assert!(boxed.is_selected().await.unwrap(), "{key} is ticked");
    }
    click(admin, "button[name=action][value='save']").await;
    // The flash names what happened to whom, not "Gespeichert.".
    let saved = wait(admin, "div.alert.ok").await.text().await.unwrap();
    assert_eq!(
        saved.trim(),
        "Die Berechtigungen von Nora Neu wurden gespeichert."
    );
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
    admin.goto(&format!("{base}{lock}")).await.unwrap();
    wait(admin, "p.subtitle").await;
    click(admin, "form[action$='/lock'] button[type=submit]").await;
    admin
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(&format!(
            "{row}/td[contains(., 'Gesperrt')]"
        )))
        .await
        .unwrap();
    let locked = wait(admin, "div.alert.ok").await.text().await.unwrap();
    assert_eq!(locked.trim(), "Nora Neu wurde gesperrt.");

    // The user's very next page load: the login page; a login attempt is refused.
    user.refresh().await.unwrap();
    wait(&user, "form[action='/login']").await;
    assert_eq!(user.current_url().await.unwrap().path(), "/login");
    fill(&user, "#f-email", "nora@example.com").await;
    fill(&user, "#f-password", PASSWORD).await;
    click(&user, "form[action='/login'] button[type=submit]").await;
    wait(&user, "main [role=alert], main .alert").await;
    user.close().await.unwrap();

    failed_forms_come_back_by_get(&mut walk).await;

    // The customer's log: readable details, the attempt named as such, a count and a pager
    // with the first and the last page.
    walk.screen(
        "customer-log",
        "/admin/customers/100000001/audit?per_page=2",
        "table.audit",
    )
    .await;
    let log = walk.c.source().await.unwrap();
    assert!(log.contains("Anmeldeversuch"), "the failed login's actor");
    assert!(!log.contains("Unbekannt"), "no 'Unbekannt' actor");
    let pages: Vec<String> = {
        let mut v = Vec::new();
        for e in walk
            .c
            .find_all(Locator::Css("nav.pager a, nav.pager strong"))
            .await
            .unwrap()
        {
            v.push(e.text().await.unwrap());
        }
        v
    };
    let numbers: Vec<u32> = pages.iter().filter_map(|t| t.parse().ok()).collect();
    assert!(
        numbers.first() == Some(&1) && numbers.last().is_some_and(|l| *l > 3),
        "the pager shows the first and the last page: {pages:?}"
    );
    let last = numbers.last().unwrap().to_string();
    walk.c
        .find(Locator::XPath(&format!(
            "//nav[contains(@class,'pager')]//a[normalize-space()='{last}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait(&walk.c, "nav.pager strong[aria-current=page]").await;
    let current = walk
        .c
        .find(Locator::Css("nav.pager strong[aria-current=page]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        current, last,
        "the last page is the current one after following its link"
    );
    walk.check("customer-log-last-page").await;

    // An operator with an authenticator app (set up here), in the same browser.
    walk.login("op@example.com").await;
    wait(&walk.c, "nav.main").await;
    walk.screen("operator-security", "/mfa", "form[action='/mfa/totp']")
        .await;
    click(&walk.c, "form[action='/mfa/totp'] button[type=submit]").await;
    let secret = wait(&walk.c, "#totp-secret").await.text().await.unwrap();
    walk.check("totp-setup").await;
    // A wrong code: the error, and the same QR code and key again (the app that scanned them
    // keeps matching).
    fill(&walk.c, "#f-code", "000000").await;
    click(
        &walk.c,
        "form[action='/mfa/totp/confirm'] button[type=submit]",
    )
    .await;
    wait(&walk.c, "#f-code-error").await;
    walk.c
        .find(Locator::Css("figure.qr svg"))
        .await
        .expect("the QR code after a wrong code");
    let again = wait(&walk.c, "#totp-secret").await.text().await.unwrap();
    assert_eq!(again, secret, "the same key after a wrong code");
    walk.check("totp-setup-wrong-code").await;
    // Abandoned ("Abbrechen") and started again: the same key, not a new one.
    click(&walk.c, "main a.button.secondary[href='/mfa']").await;
    wait(&walk.c, "form[action='/mfa/totp']").await;
    click(&walk.c, "form[action='/mfa/totp'] button[type=submit]").await;
    let restarted = wait(&walk.c, "#totp-secret").await.text().await.unwrap();
    assert_eq!(restarted, secret, "the same key after abandoning the setup");
    let secret = portal_core::totp::TotpSecret::from_base32(secret.trim()).unwrap();
    let now = portal_core::ports::Clock::now(clock.as_ref());
    let code = portal_core::totp::code_at(&secret, now);
    fill(&walk.c, "#f-code", code.expose()).await;
    click(
        &walk.c,
        "form[action='/mfa/totp/confirm'] button[type=submit]",
    )
    .await;
    wait(&walk.c, "#recovery-code").await;
    walk.check("recovery-code").await;
    walk.screen("operator-customers", "/operator/customers", "table")
        .await;
    let customers = walk.c.source().await.unwrap();
    assert!(
        customers.contains("Sage 50 Connected"),
        "affiliation names, not codes"
    );
    // A webhook endpoint with a long address, so its page shows a row at both widths.
    portal
        .create_webhook(
            &op,
            portal_core::service::NewWebhook {
                url: "https://hooks.vendor-crm.example.com/portal/events/incoming-webhook-receiver"
                    .into(),
                description: "CRM".into(),
                events: vec![portal_core::audit::AuditCategory::UserLocked],
            },
        )
        .await
        .unwrap();
    for (name, path, ready) in [
        (
            "operator-new-customer",
            "/operator/customers/new",
            "main form",
        ),
        ("operator-import", "/operator/customers/import", "#f-csv"),
        (
            "operator-admin-requests",
            "/operator/admin-requests",
            "main h1",
        ),
        ("operator-outbox", "/operator/outbox", "main nav.toolbar"),
        ("operator-webhooks", "/operator/webhooks", "main table"),
        (
            "operator-users",
            "/admin/customers/100000001/users",
            "table.users",
        ),
        ("operator-sessions", "/sessions", "main table"),
    ] {
        walk.screen(name, path, ready).await;
    }

    operator_client_and_oidc_pages(&mut walk, &portal, &op).await;

    // The customer import with a chosen file: "Prüfen" shows its rows, nothing imported yet.
    let file = screenshot_dir().join("kunden-import.csv");
    std::fs::create_dir_all(screenshot_dir()).unwrap();
    std::fs::write(
        &file,
        "number,name,products,channel\nD300000003,Datei GmbH,,direct\n",
    )
    .unwrap();
    walk.c
        .goto(&format!("{base}/operator/customers/import"))
        .await
        .unwrap();
    wait(&walk.c, "#f-csv-file")
        .await
        .send_keys(&file.canonicalize().unwrap().display().to_string())
        .await
        .unwrap();
    click(&walk.c, "button[name=action][value='check']").await;
    let preview = wait(&walk.c, "table.import-preview")
        .await
        .text()
        .await
        .unwrap();
    assert!(preview.contains("Datei GmbH"), "{preview}");
    walk.check("operator-import-preview").await;
    std::fs::remove_file(&file).unwrap();

    // Logging in again asks for the app's code.
    clock.advance(chrono::TimeDelta::seconds(31));
    walk.login("op@example.com").await;
    wait(&walk.c, "#f-code").await;
    walk.check("login-second-factor").await;
    let now = portal_core::ports::Clock::now(clock.as_ref());
    let code = portal_core::totp::code_at(&secret, now);
    fill(&walk.c, "#f-code", code.expose()).await;
    click(&walk.c, "main form button[type=submit]").await;
    wait(&walk.c, "nav.main a[href='/operator/customers']").await;

    // Issue 14: an old "Servicewelt" account, imported by the operator, links a new user through
    // "Jetzt verknüpfen": a wrong old password is refused next to the field, the right one links
    // the user to the old account's customer.
    portal
        .import_legacy_accounts(
            &op,
            &[portal_core::service::NewLegacyAccount {
                line: 2,
                username: "lea.alt".into(),
                customer_number: number("100000001"),
                hash: portal_core::legacy_hash::LegacyHash::pbkdf2_sha256(
                    "Alt-Passwort-2019",
                    b"servicewelt-salz",
                    1_000,
                )
                .unwrap(),
            }],
            &|_| {},
        )
        .await
        .unwrap();
    let lea = account("lea@example.com", "Lea", "Alt").await;
    portal
        .choose_affiliation(&lea, &affiliation())
        .await
        .unwrap();
    walk.login("lea@example.com").await;
    wait(&walk.c, "form[action='/onboarding/link/legacy']").await;
    fill(&walk.c, "#f-username", "Lea.Alt").await;
    fill(&walk.c, "#f-legacy_password", "Alt-Passwort-2018").await;
    click(
        &walk.c,
        "form[action='/onboarding/link/legacy'] button[type=submit]",
    )
    .await;
    wait(&walk.c, "#f-username-error").await;
    assert_eq!(
        walk.c.current_url().await.unwrap().path(),
        "/onboarding/link"
    );
    walk.check("link-legacy-refused").await;
    fill(&walk.c, "#f-legacy_password", "Alt-Passwort-2019").await;
    click(
        &walk.c,
        "form[action='/onboarding/link/legacy'] button[type=submit]",
    )
    .await;
    wait(&walk.c, "nav.main").await;
    assert_eq!(walk.c.current_url().await.unwrap().path(), "/home");
    walk.check("link-legacy-linked").await;
    let linked =
        portal_core::ports::Queries::user_by_email(store.as_ref(), &email("lea@example.com"))
            .await
            .unwrap()
            .unwrap();
    assert!(
        linked.customer_id().is_some(),
        "Lea is linked to the customer"
    );

    walk.c.close().await.unwrap();
    server.abort();
    drop(driver);
}

/// Issue 13 item 10: a failed form leads back to its page by GET, with the errors and the input
/// (never a password), shown once: a reload shows the form without them and never asks to send
/// the form again; a GET on a form's address shows the page it belongs to, never JSON. As the
/// customer administrator (the walk's browser is theirs).
async fn failed_forms_come_back_by_get(walk: &mut Walk) {
    let base = walk.base.clone();
    // "Benutzer hinzufügen" with the address of a member: refused next to the field.
    let page = "/admin/customers/100000001/users/new";
    walk.c.goto(&format!("{base}{page}")).await.unwrap();
    fill(&walk.c, "#f-first_name", "Ina").await;
    fill(&walk.c, "#f-last_name", "Neu").await;
    fill(&walk.c, "#f-email", "nora@example.com").await;
    click(&walk.c, "div.actions button[name=action][value='invite']").await;
    wait(&walk.c, "#f-email-error").await;
    let url = walk.c.current_url().await.unwrap();
    assert_eq!(url.path(), page, "the form's own page, by GET");
    let kept = wait(&walk.c, "#f-first_name").await;
    assert_eq!(kept.prop("value").await.unwrap().as_deref(), Some("Ina"));
    walk.check("invite-refused").await;
    walk.c.refresh().await.unwrap();
    wait(&walk.c, "#f-email").await;
    assert!(
        walk.c.find(Locator::Css("#f-email-error")).await.is_err(),
        "the errors are shown once"
    );
    walk.check("invite-reloaded").await;
    // "Passwort ändern" with a wrong current password: the message, no password kept.
    walk.c.goto(&format!("{base}/profile")).await.unwrap();
    fill(&walk.c, "#f-current_password", "falsch-falsch").await;
    fill(&walk.c, "#f-password", "Neu-Passwort-2026!").await;
    fill(&walk.c, "#f-password_confirmation", "Neu-Passwort-2026!").await;
    click(
        &walk.c,
        "form[action='/profile/password'] button[type=submit]",
    )
    .await;
    wait(&walk.c, "#f-current_password-error").await;
    assert_eq!(walk.c.current_url().await.unwrap().path(), "/profile");
    for field in [
        "#f-current_password",
        "#f-password",
        "#f-password_confirmation",
    ] {
        let value = wait(&walk.c, field).await.prop("value").await.unwrap();
        assert_eq!(value.as_deref(), Some(""), "{field} is empty again");
    }
    assert!(
        !walk
            .c
            .source()
            .await
            .unwrap()
            .contains("Neu-Passwort-2026!"),
        "a password is never sent back"
    );
    walk.check("profile-password-refused").await;
    // The addresses forms are sent to, opened by GET: the page they belong to.
    for (path, page) in [
        ("/profile/password", "/profile"),
        ("/mfa/totp", "/mfa"),
        ("/mfa/totp/confirm", "/mfa"),
        ("/mfa/phone", "/mfa"),
        ("/mfa/recovery-code", "/mfa"),
        // A linked user's link and registration pages lead home.
        ("/onboarding/link/customer", "/home"),
        ("/register/code/resend", "/home"),
    ] {
        walk.c.goto(&format!("{base}{path}")).await.unwrap();
        wait(&walk.c, "main").await;
        let at = walk.c.current_url().await.unwrap();
        assert_eq!(at.path(), page, "{path} leads to its page");
        walk.check(&format!(
            "get-{}",
            path.trim_start_matches('/').replace('/', "-")
        ))
        .await;
    }
}

/// The operator's application (OpenID Connect client) pages, and the provider's own pages a user
/// meets at a sign-in: the consent of a third-party application and "no permission" for one that
/// needs a permission the user lacks. In both languages at both widths, with axe-core, like every
/// other screen. As the operator (the walk's browser is theirs).
async fn operator_client_and_oidc_pages(walk: &mut Walk, portal: &Portal, op: &Actor) {
    use crate::support::oidc::authorize_path;
    use portal_core::service::NewClient;
    let client = |name: &str, first_party: bool, permission: Option<&str>| NewClient {
        name: name.into(),
        redirect_uris: vec![crate::support::oidc::CB.into()],
        first_party,
        required_permission: permission.map(Into::into),
        ..NewClient::default()
    };
    let third = portal
        .create_client(op, client("Fremd-App", false, None))
        .await
        .unwrap();
    let guarded = portal
        .create_client(op, client("Belege", true, Some("documents")))
        .await
        .unwrap();
    walk.screen("operator-clients", "/operator/clients", "main table")
        .await;
    walk.screen(
        "operator-new-client",
        "/operator/clients/new",
        "form[action='/operator/clients/new']",
    )
    .await;
    let page = format!("/operator/clients/{}", third.client.id);
    walk.screen("operator-client", &page, &format!("form[action='{page}']"))
        .await;
    walk.screen(
        "oidc-consent",
        &authorize_path(&third, &[]),
        "form[action='/oidc/authorize/consent']",
    )
    .await;
    let consent = walk.c.source().await.unwrap();
    assert!(
        consent.contains("Fremd-App"),
        "the consent names the application"
    );
    walk.screen(
        "oidc-no-permission",
        &authorize_path(&guarded, &[]),
        "main a[href='/contact-admin']",
    )
    .await;
    let refused = walk.c.source().await.unwrap();
    assert!(refused.contains("Belege"), "the page names the application");
}

/// A command of WebDriver's WebAuthn extension: `method` on
/// `/session/{id}/webauthn/authenticator{path}` with a JSON body.
#[derive(Debug)]
struct WebAuthnCommand {
    method: axum::http::Method,
    path: String,
    body: Option<Value>,
}

impl WebAuthnCommand {
    /// A virtual CTAP2 platform authenticator with resident keys and user verification.
    fn add_authenticator() -> Self {
        Self {
            method: axum::http::Method::POST,
            path: String::new(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            })),
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Makes the passkeys of the virtual authenticator `id` non-discoverable (the same keys and
/// counters, as a security key without resident keys holds them): a conditional request then
/// finds nothing to offer and stays pending, while requests that name the credential (the
/// second step, step-up) still get answers.
async fn make_non_discoverable(c: &Client, id: &str) {
    let creds = c
        .issue_cmd(WebAuthnCommand {
            method: axum::http::Method::GET,
            path: format!("/{id}/credentials"),
            body: None,
        })
        .await
        .expect("the authenticator's credentials");
    let creds = creds.as_array().expect("a list of credentials").clone();
    assert_eq!(creds.len(), 1, "{creds:?}");
    c.issue_cmd(WebAuthnCommand {
        method: axum::http::Method::DELETE,
        path: format!("/{id}/credentials"),
        body: None,
    })
    .await
    .expect("credentials removed");
    for mut cred in creds {
        cred["isResidentCredential"] = json!(false);
        c.issue_cmd(WebAuthnCommand {
            method: axum::http::Method::POST,
            path: format!("/{id}/credential"),
            body: Some(cred),
        })
        .await
        .expect("the credential added back");
    }
}

/// Passkeys in Chromium with a virtual authenticator (issue 16): added on the security page,
/// signing in alone from the login page, as the second step after the password, and removed.
/// The server is addressed as `localhost`: a relying-party id cannot be an IP address.
#[tokio::test]
async fn passkeys_in_a_real_browser() {
    let (driver, driver_port) = chromedriver().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let mut config = HttpConfig::new(&base, CookieKey::generate())
        .unwrap()
        .insecure_development_cookies();
    config.rate_limits = RateLimits::off();
    let store = Arc::new(adapters_memory::MemoryStore::new());
    let clock = Arc::new(ManualClock::new());
    let deps = Deps {
        queries: store.clone(),
        committer: store.clone(),
        clock: clock.clone(),
        ids: Arc::new(SequentialIds::new()),
        random: Arc::new(SeededRandom::new(12)),
        hasher: Arc::new(fast_hasher(3)),
        legacy: Arc::new(adapters_memory::InMemoryLegacyDirectory::new()),
    };
    let portal_config = PortalConfig {
        mfa_key: Some(mfa_key()),
        ..PortalConfig::default()
    };
    let portal = Arc::new(
        Portal::new(deps, portal_config, PermissionCatalog::default())
            .unwrap()
            .with_passkey_verifier(Arc::new(
                adapters_webauthn::WebauthnVerifier::new(&base, "Portal").unwrap(),
            )),
    );
    let app = router(AppState::new(portal.clone(), config, Arc::new(AlwaysReady)));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let ticket = portal
        .register(portal_core::service::Register {
            email: email("pia@example.com"),
            first_name: name("Pia"),
            last_name: name("Passkey"),
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
        .find(|m| m.to.as_str() == "pia@example.com")
        .and_then(|m| m.intent.secret().map(|s| s.expose().to_owned()))
        .unwrap();
    portal
        .verify_registration(ticket.ticket.expose(), &code, Default::default())
        .await
        .unwrap();

    let profile = TempDir::new("passkey-profile");
    let c = browser(driver_port, profile.path()).await;
    let authenticator = c
        .issue_cmd(WebAuthnCommand::add_authenticator())
        .await
        .expect("a virtual authenticator");
    let authenticator = authenticator.as_str().expect("its id").to_owned();
    let password_login = |c: Client| {
        let base = base.clone();
        async move {
            c.goto(&format!("{base}/login")).await.unwrap();
            fill(&c, "input[name=email]", "pia@example.com").await;
            fill(&c, "input[name=password]", PASSWORD).await;
            click(&c, "form[action=\"/login\"] button.primary").await;
            c
        }
    };
    let c = password_login(c).await;
    wait(&c, "div.who").await;

    // Add a passkey on the security page: the script shows its form, the recovery code once.
    c.goto(&format!("{base}/mfa")).await.unwrap();
    fill(&c, "#passkey-name", "Virtueller Schlüssel").await;
    click(&c, "form[data-passkey=\"register\"] button.primary").await;
    wait(&c, "[data-passkey-recovery]:not([hidden]) code").await;
    click(&c, "[data-passkey-recovery] a").await;
    wait(&c, "#passkeys table").await;
    let source = c.source().await.unwrap();
    assert!(source.contains("Virtueller Schlüssel"), "{source}");
    assert!(source.contains("noch nie"), "{source}");

    // Rename it on the security page (no script needed).
    click(&c, "#passkeys details.rename summary").await;
    fill(
        &c,
        "#passkeys details.rename input[name=name]",
        "Schlüssel im Büro",
    )
    .await;
    click(&c, "#passkeys details.rename button").await;
    wait(&c, "div.alert.ok").await;
    let source = c.source().await.unwrap();
    assert!(source.contains("Schlüssel im Büro"), "{source}");

    // Sign out: the login page starts a conditional request at once, which Chromium's virtual
    // authenticator answers with the passkey as a user choosing it among the e-mail field's
    // suggestions would: signed in without touching the form or the button.
    let logins = store
        .audit_entries(None)
        .iter()
        .filter(|e| e.record.details.starts_with("method=passkey"))
        .count();
    click(&c, "form[action=\"/logout\"] button").await;
    wait(&c, "form[action=\"/onboarding/affiliation\"]").await;
    assert_eq!(
        store
            .audit_entries(None)
            .iter()
            .filter(|e| e.record.details.starts_with("method=passkey"))
            .count(),
        logins + 1,
        "signed in with the passkey"
    );
    c.goto(&format!("{base}/mfa")).await.unwrap();
    wait(&c, "#passkeys table").await;
    let source = c.source().await.unwrap();
    assert!(!source.contains("noch nie"), "{source}");

    // With the key no longer discoverable the conditional request finds nothing to offer (a
    // browser's own autofill keeps it pending; the virtual authenticator ends it): the login
    // page stays as it is, with the button and the password form.
    make_non_discoverable(&c, &authenticator).await;
    click(&c, "form[action=\"/logout\"] button").await;
    let form = wait(&c, "form[data-passkey=\"sign-in\"][data-conditional]").await;
    let state = form
        .attr("data-conditional")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(["pending", "ended"].contains(&state.as_str()), "{state}");
    wait(&c, "form[data-passkey=\"sign-in\"] button").await;
    let message = wait(&c, "form[data-passkey=\"sign-in\"] [data-passkey-message]").await;
    assert_eq!(
        message.attr("hidden").await.unwrap().as_deref(),
        Some("true")
    );
    let field = wait(&c, "input[name=email]").await;
    assert_eq!(
        field.attr("autocomplete").await.unwrap().as_deref(),
        Some("username webauthn")
    );

    // The password, then the passkey as the second step.
    let c = password_login(c).await;
    click(&c, "form[data-passkey=\"second-factor\"] button.primary").await;
    wait(&c, "div.who").await;

    // Half an hour later removing it needs a step-up: "Passwort bestätigen" takes the passkey
    // instead of the password, then the removal goes through.
    clock.advance(chrono::TimeDelta::minutes(30));
    c.goto(&format!("{base}/mfa")).await.unwrap();
    click(
        &c,
        "form[action$=\"/remove\"][action^=\"/mfa/passkeys/\"] button",
    )
    .await;
    click(&c, "form[data-passkey=\"reauth\"] button").await;
    wait(&c, "#passkeys table").await;
    assert!(
        c.current_url().await.unwrap().path().ends_with("/mfa"),
        "back on the security page"
    );
    click(
        &c,
        "form[action$=\"/remove\"][action^=\"/mfa/passkeys/\"] button",
    )
    .await;
    wait(&c, "div.alert.ok").await;
    let source = c.source().await.unwrap();
    assert!(
        source.contains("Sie haben noch keinen Passkey eingerichtet."),
        "{source}"
    );
    c.close().await.unwrap();
    server.abort();
    drop(driver);
}
