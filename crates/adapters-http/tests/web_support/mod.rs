//! Support of the web UI's tests: the real core on the in-memory store with the testkit fakes,
//! and a small browser over `oneshot` that keeps cookies, sends what a browser sends with a form
//! (`Origin`, `Sec-Fetch-Site`, the page's hidden `csrf_token`) and reads pages as text.
//! States the flows need are set up through the core; what is under test goes through HTTP.

use adapters_http::{AlwaysReady, AppState, HttpConfig, router};
use adapters_memory::{InMemoryLegacyDirectory, MemoryStore, RecordingSmsSender};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use portal_core::config::PortalConfig;
use portal_core::customer::ServiceChannel;
use portal_core::ids::UserId;
use portal_core::mail::OutboxMail;
use portal_core::permission::PermissionCatalog;
use portal_core::service::{Invite, NewCustomer, Register};
use portal_core::session::ClientInfo;
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher, next_totp_code};
use portal_core::totp::TotpSecret;
use portal_core::values::{CompanyName, Language};
use portal_core::{Actor, Deps, Portal};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub use crate::support::{NEW_PASSWORD, ORIGIN, http_config};
pub use portal_core::testing::{PASSWORD, affiliation, email, keys, name, number};

pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'; object-src 'none'";

pub struct WebApp {
    pub app: Router,
    pub portal: Arc<Portal>,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub sms: Arc<RecordingSmsSender>,
    pub config: HttpConfig,
    /// The authenticator apps of the operators [`Self::operator`] set up (R22), by address.
    operator_totp: Mutex<BTreeMap<String, Arc<TotpSecret>>>,
    /// The remembered-device cookie of each operator's first login, so later logins need no
    /// second TOTP code in the same 30-second step (replay protection).
    operator_devices: Mutex<BTreeMap<String, (String, String)>>,
}

impl WebApp {
    pub fn new() -> Self {
        Self::with(http_config())
    }

    pub fn with(config: HttpConfig) -> Self {
        let pc = PortalConfig {
            mfa_key: Some(portal_core::testing::mfa_key()),
            ..PortalConfig::default()
        };
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let legacy = Arc::new(InMemoryLegacyDirectory::new());
        let sms = Arc::new(RecordingSmsSender::new());
        let deps = Deps {
            queries: store.clone(),
            committer: store.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(42)),
            hasher: Arc::new(fast_hasher(7)),
            legacy,
        };
        let portal = Arc::new(
            Portal::new(deps, pc, PermissionCatalog::default())
                .unwrap()
                .with_sms_sender(sms.clone())
                .with_passkey_verifier(Arc::new(
                    adapters_webauthn::WebauthnVerifier::new(ORIGIN, "Portal").unwrap(),
                )),
        );
        let state = AppState::new(portal.clone(), config.clone(), Arc::new(AlwaysReady))
            .with_outbox(store.clone());
        Self {
            app: router(state),
            portal,
            store,
            clock,
            sms,
            config,
            operator_totp: Mutex::new(BTreeMap::new()),
            operator_devices: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn browser(&self) -> Browser {
        self.browser_on(self.app.clone())
    }

    /// A browser talking to `app` (e.g. a host application that nests the portal).
    pub fn browser_on(&self, app: Router) -> Browser {
        Browser {
            app,
            jar: Arc::new(Mutex::new(BTreeMap::new())),
            csrf: Arc::new(Mutex::new(None)),
            secure: self.config.secure_cookies(),
        }
    }

    // --- mail ---

    /// Processes the password-reset requests queued so far, as the server's dispatcher does
    /// behind the answer: call it after asking for a reset and before reading the mail.
    pub async fn process_reset_requests(&self) -> usize {
        portal_core::testing::process_reset_requests(&self.portal, &*self.store).await
    }

    pub fn mails_to(&self, to: &str) -> Vec<OutboxMail> {
        crate::support::mails_in(&self.store, to)
    }

    /// The code or link token of the last mail to `to` that carries one.
    pub fn secret_for(&self, to: &str) -> String {
        crate::support::secret_in(&self.store, to)
    }

    // --- states, set up through the core ---

    pub async fn customer(&self, n: &str) {
        self.portal
            .create_customer(
                &Actor::System,
                &NewCustomer {
                    number: number(n),
                    name: CompanyName::parse(&format!("Firma {n}")).unwrap(),
                    affiliations: BTreeSet::from([affiliation()]),
                    channel: ServiceChannel::Direct,
                    entitlements: None,
                    default_permissions: None,
                },
            )
            .await
            .unwrap();
    }

    /// Registered and confirmed: an active account without a customer.
    pub async fn registered_as(&self, address: &str, first: &str, last: &str) -> Actor {
        let ticket = self
            .portal
            .register(Register {
                email: email(address),
                first_name: name(first),
                last_name: name(last),
                password: PASSWORD.into(),
                password_confirmation: PASSWORD.into(),
                language: Language::De,
            })
            .await
            .unwrap();
        let code = self.secret_for(address);
        let s = self
            .portal
            .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
            .await
            .unwrap();
        Actor::user(s.user_id)
    }

    pub async fn registered(&self, address: &str) -> Actor {
        self.registered_as(address, "Anna", "Schmidt").await
    }

    /// Registered and linked to the customer by number.
    pub async fn member_as(&self, address: &str, n: &str, first: &str, last: &str) -> Actor {
        let actor = self.registered_as(address, first, last).await;
        self.portal
            .choose_affiliation(&actor, &affiliation())
            .await
            .unwrap();
        self.portal.link_customer(&actor, &number(n)).await.unwrap();
        actor
    }

    pub async fn member(&self, address: &str, n: &str) -> Actor {
        self.member_as(address, n, "Anna", "Schmidt").await
    }

    pub async fn accept_invitation(&self, token: &str, address: &str) -> Actor {
        crate::support::accept_invitation_in(&self.portal, &self.store, token, address)
            .await
            .0
    }

    /// An active operator with an authenticator app (operators need a second factor, R22);
    /// [`Self::login`] finishes their logins with a real TOTP code.
    pub async fn operator(&self, address: &str) -> Actor {
        let (actor, secret) = crate::support::operator_in(&self.portal, &self.store, address).await;
        self.operator_totp
            .lock()
            .unwrap()
            .insert(address.to_owned(), Arc::new(secret));
        actor
    }

    /// The first administrator of a customer: member, request, an operator approves.
    pub async fn admin(&self, address: &str, n: &str, operator: &Actor) -> Actor {
        let actor = self.member(address, n).await;
        let req = self.portal.request_admin_rights(&actor).await.unwrap();
        self.portal
            .approve_admin_request(operator, req.id())
            .await
            .unwrap();
        actor
    }

    /// An active employee invited by `admin`.
    pub async fn invited(&self, admin: &Actor, n: &str, address: &str, perms: &[&str]) -> Actor {
        self.portal
            .invite_user(
                admin,
                &number(n),
                Invite {
                    email: email(address),
                    first_name: name("Ida"),
                    last_name: name("Eingeladen"),
                    language: Language::De,
                    permissions: keys(perms),
                },
            )
            .await
            .unwrap();
        let token = self.secret_for(address);
        self.accept_invitation(&token, address).await
    }

    pub async fn user_id(&self, address: &str) -> UserId {
        self.portal
            .deps()
            .queries
            .user_by_email(&email(address))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no account {address}"))
            .id()
    }

    pub async fn permissions_of(&self, address: &str) -> Vec<String> {
        self.portal
            .deps()
            .queries
            .user_by_email(&email(address))
            .await
            .unwrap()
            .unwrap()
            .permissions()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Customers 100000001 (admin a@, employee e@) and 100000002 (admin b@, employee f@), an
    /// operator op@.
    pub async fn two_customers(&self) -> World {
        let op = self.operator("op@example.com").await;
        self.customer("100000001").await;
        self.customer("100000002").await;
        let a = self.admin("a@example.com", "100000001", &op).await;
        let b = self.admin("b@example.com", "100000002", &op).await;
        self.invited(&a, "100000001", "e@example.com", &["support_requests"])
            .await;
        self.invited(&b, "100000002", "f@example.com", &[]).await;
        World {
            admin_a: a,
            admin_b: b,
            employee_a: self.user_id("e@example.com").await,
            employee_b: self.user_id("f@example.com").await,
        }
    }

    /// A browser logged in through the login form.
    pub async fn login(&self, address: &str) -> Browser {
        let b = self.browser();
        self.log_in(&b, address).await;
        b
    }

    /// Logs `b` in as `address` through the login form; an operator of [`Self::operator`]
    /// finishes with a TOTP code on the second step the first time and is a remembered device
    /// afterwards.
    pub async fn log_in(&self, b: &Browser, address: &str) {
        let secret = self.operator_totp.lock().unwrap().get(address).cloned();
        let Some(secret) = secret else {
            return b.login(address, PASSWORD).await;
        };
        let device = self.operator_devices.lock().unwrap().get(address).cloned();
        if let Some((k, v)) = device {
            b.jar.lock().unwrap().insert(k, v);
        }
        let r = b.login_form(address, PASSWORD).await;
        if r.location() == "/home" {
            return;
        }
        let step = r.location().to_owned();
        assert!(step.starts_with("/login/mfa"), "login {address}: {step}");
        b.get(&step).await;
        use portal_core::ports::Clock as _;
        let code = next_totp_code(&secret, self.clock.now());
        let done = b
            .post(
                &step,
                &[
                    ("factor", "totp"),
                    ("code", &code),
                    ("remember_device", "1"),
                ],
            )
            .await;
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "TOTP {address}: {}",
            done.text
        );
        assert_eq!(done.location(), "/home", "TOTP {address}");
        crate::support::keep_device_cookie(&b.jar, &self.operator_devices, address);
    }
}

pub struct World {
    pub admin_a: Actor,
    pub admin_b: Actor,
    pub employee_a: UserId,
    pub employee_b: UserId,
}

/// A page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        self
    }

    #[track_caller]
    pub fn redirects_to(&self, to: &str) -> &Self {
        assert_eq!(
            (self.status, self.location()),
            (StatusCode::SEE_OTHER, to),
            "{}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn has(&self, needle: &str) -> &Self {
        assert!(
            self.text.contains(needle),
            "{needle:?} not in the page:\n{}",
            self.text
        );
        self
    }

    #[track_caller]
    pub fn lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.text.contains(needle),
            "{needle:?} in the page:\n{}",
            self.text
        );
        self
    }

    /// The value of the first `name="…" value="…"` hidden field.
    pub fn field(&self, field: &str) -> Option<String> {
        let marker = format!("name=\"{field}\" value=\"");
        let start = self.text.find(&marker)? + marker.len();
        let end = self.text[start..].find('"')? + start;
        Some(unescape(&self.text[start..end]))
    }

    /// Every `href` of the page that starts with `prefix`.
    pub fn links(&self, prefix: &str) -> Vec<String> {
        let marker = format!("href=\"{prefix}");
        self.text
            .match_indices(&marker)
            .map(|(i, _)| {
                let start = i + "href=\"".len();
                let end = self.text[start..].find('"').unwrap() + start;
                unescape(&self.text[start..end])
            })
            .collect()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// URL-encodes form fields.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Clone)]
pub struct Browser {
    app: Router,
    pub jar: Arc<Mutex<BTreeMap<String, String>>>,
    /// The CSRF token of the last page that had a form.
    csrf: Arc<Mutex<Option<String>>>,
    secure: bool,
}

/// A request with every knob.
pub struct Send<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<(&'a str, String)>,
    pub headers: Vec<(&'a str, &'a str)>,
    pub browser_headers: bool,
}

impl Browser {
    pub fn cookie_name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    pub fn cookie(&self, base: &str) -> Option<String> {
        self.jar
            .lock()
            .unwrap()
            .get(&self.cookie_name(base))
            .cloned()
    }

    /// Another browser with a copy of this one's cookies.
    pub fn fork(&self) -> Browser {
        Browser {
            app: self.app.clone(),
            jar: Arc::new(Mutex::new(self.jar.lock().unwrap().clone())),
            csrf: Arc::new(Mutex::new(self.csrf.lock().unwrap().clone())),
            secure: self.secure,
        }
    }

    pub fn csrf(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
    }

    pub async fn send(&self, s: Send<'_>) -> Page {
        let mut b = Request::builder().method(s.method.clone()).uri(s.path);
        let jar = self.jar.lock().unwrap().clone();
        if !jar.is_empty() {
            let c: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            b = b.header(header::COOKIE, c.join("; "));
        }
        b = b.header(header::ACCEPT, "text/html,application/xhtml+xml");
        if s.browser_headers && s.method != Method::GET {
            b = b
                .header(header::ORIGIN, ORIGIN)
                .header("sec-fetch-site", "same-origin");
        }
        for (k, v) in &s.headers {
            b = b.header(*k, *v);
        }
        let body = match s.body {
            Some((ct, body)) => {
                b = b.header(header::CONTENT_TYPE, ct);
                Body::from(body)
            }
            None => Body::empty(),
        };
        let mut request = b.body(body).unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(
            "198.51.100.7".parse().unwrap(),
            40_000,
        )));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.lock().unwrap().remove(k);
            } else {
                self.jar.lock().unwrap().insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = Page {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Some(t) = page.field("csrf_token") {
            *self.csrf.lock().unwrap() = Some(t);
        }
        page
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(Send {
            method: Method::GET,
            path,
            body: None,
            headers: Vec::new(),
            browser_headers: true,
        })
        .await
    }

    /// Submits a form like a browser: the last page's CSRF token, `Origin`, `Sec-Fetch-Site`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().unwrap_or_default();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Submits exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(Send {
            method: Method::POST,
            path,
            body: Some(("application/x-www-form-urlencoded", form_body(fields))),
            headers: Vec::new(),
            browser_headers: true,
        })
        .await
    }

    /// A failed form's answer followed like a browser: `303` back to the form's page with the
    /// signed form cookie, and that page (`200`, the errors and input shown once).
    #[track_caller]
    pub fn back<'a>(&'a self, r: &'a Page) -> impl std::future::Future<Output = Page> + 'a {
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let name = self.cookie_name("portal-form");
        assert!(
            r.headers
                .get_all(header::SET_COOKIE)
                .iter()
                .any(|c| c.to_str().unwrap().starts_with(&format!("{name}="))),
            "no form cookie on the answer to a failed form"
        );
        async move {
            let page = self.get(r.location()).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            assert!(
                self.cookie("portal-form").is_none(),
                "the page that shows a failed form deletes its cookie"
            );
            page
        }
    }

    /// [`Self::post`] of a form that fails, followed back to its page ([`Self::back`]).
    pub async fn post_back(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r = self.post(path, fields).await;
        self.back(&r).await
    }

    /// Opens `path` first (for its form's token), then submits.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        self.get(page).await;
        self.post(action, fields).await
    }

    /// The login form with `address` and `password`, answered with a redirect (home, or the
    /// second step).
    pub async fn login_form(&self, address: &str, password: &str) -> Page {
        let r = self
            .submit(
                "/login",
                "/login",
                &[("email", address), ("password", password)],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "login {address}: {}",
            r.text
        );
        r
    }

    pub async fn login(&self, address: &str, password: &str) {
        let r = self.login_form(address, password).await;
        assert_eq!(r.location(), "/home", "login {address}");
    }
}
