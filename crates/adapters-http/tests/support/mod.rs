//! Router tests: the real core on the in-memory store with the testkit fakes (manual clock,
//! sequential ids, seeded randomness, cheap Argon2id), driven through `tower::ServiceExt::oneshot`
//! by a small cookie-keeping client. States the flows need are set up through the core (like the
//! core's own tests); what is under test goes through HTTP.

use adapters_http::{AlwaysReady, AppState, CookieKey, HttpConfig, RateLimits, router};
use adapters_memory::{InMemoryLegacyDirectory, MemoryStore, RecordingSmsSender};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{DateTime, TimeDelta, Utc};
use portal_core::config::PortalConfig;
use portal_core::customer::ServiceChannel;
use portal_core::ids::{SessionId, UserId};
use portal_core::mail::OutboxMail;
use portal_core::permission::PermissionCatalog;
use portal_core::ports::{
    Commit, Committer, Counter, PhoneMessage, SmsError, SmsSender, StoreError,
};
use portal_core::service::{AcceptInvitation, Invite, NewCustomer, Register};
use portal_core::session::ClientInfo;
use portal_core::testing::{
    ManualClock, SeededRandom, SequentialIds, enrol_totp, fast_hasher, next_totp_code,
};
use portal_core::totp::TotpSecret;
use portal_core::values::{CompanyName, Language};
use portal_core::{Actor, Deps, Portal};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub mod oidc;
pub mod passkey;

pub use portal_core::testing::{PASSWORD, affiliation, email, keys, name, number};

// --- set-ups both test apps (API and web) share, through the core ---

/// The mails to `to` in `store`'s outbox, oldest first.
pub fn mails_in(store: &MemoryStore, to: &str) -> Vec<OutboxMail> {
    store
        .outbox()
        .into_iter()
        .filter(|m| m.to.as_str() == to)
        .collect()
}

/// The code or link token of the last mail to `to` that carries one.
pub fn secret_in(store: &MemoryStore, to: &str) -> String {
    mails_in(store, to)
        .iter()
        .rev()
        .find_map(|m| m.intent.secret().map(|s| s.expose().to_owned()))
        .unwrap_or_else(|| panic!("no mail with a code or link to {to}"))
}

/// Keeps the remembered-device cookie that `jar` got for `address` (an operator's login with
/// "remember this device"), so the next login of `address` brings it along.
pub fn keep_device_cookie(
    jar: &Mutex<BTreeMap<String, String>>,
    devices: &Mutex<BTreeMap<String, (String, String)>>,
    address: &str,
) {
    let device = jar
        .lock()
        .unwrap()
        .iter()
        .find(|(k, _)| k.ends_with("portal-device"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("the remembered-device cookie");
    devices.lock().unwrap().insert(address.to_owned(), device);
}

/// Accepts the invitation `token` to `address` with [`PASSWORD`] and confirms the mailed code:
/// the user and the session token the registration started.
pub async fn accept_invitation_in(
    portal: &Portal,
    store: &MemoryStore,
    token: &str,
    address: &str,
) -> (Actor, String) {
    let ticket = portal
        .accept_invitation(
            token,
            AcceptInvitation {
                password: PASSWORD.into(),
                password_confirmation: PASSWORD.into(),
            },
        )
        .await
        .unwrap();
    let code = secret_in(store, address);
    let s = portal
        .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
        .await
        .unwrap();
    (Actor::user(s.user_id), s.token.expose().to_owned())
}

/// An active operator "Otto Operator" with an authenticator app (operators need a second
/// factor, R22): the operator and the app's secret, for the logins' TOTP codes.
pub async fn operator_in(
    portal: &Portal,
    store: &MemoryStore,
    address: &str,
) -> (Actor, TotpSecret) {
    let setup = portal
        .create_operator(
            &Actor::System,
            &email(address),
            &name("Otto"),
            &name("Operator"),
            Language::De,
        )
        .await
        .unwrap();
    let (actor, session) = accept_invitation_in(portal, store, setup.token.expose(), address).await;
    (actor, enrol_totp(portal, &session).await)
}

pub const NEW_PASSWORD: &str = "noch ein langes passwort";
pub const ORIGIN: &str = "https://portal.example.com";

pub struct TestApp {
    pub app: Router,
    /// Switches for injected faults (conflicting commits, a failing phone gateway).
    pub faults: Arc<Faults>,
    pub state: AppState,
    pub portal: Arc<Portal>,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub sms: Arc<RecordingSmsSender>,
    pub legacy: Arc<InMemoryLegacyDirectory>,
    pub config: HttpConfig,
    pub spec: Arc<Value>,
    /// The authenticator apps of the operators [`Self::operator`] set up (R22), by address.
    pub operator_totp: Mutex<BTreeMap<String, Arc<TotpSecret>>>,
    /// The remembered-device cookie of each operator's first login, so later logins need no
    /// second TOTP code in the same 30-second step (replay protection).
    operator_devices: Mutex<BTreeMap<String, (String, String)>>,
}

pub fn http_config() -> HttpConfig {
    let mut c = HttpConfig::new(ORIGIN, CookieKey::from_bytes([5; 32])).unwrap();
    c.rate_limits = RateLimits::off();
    c
}

impl TestApp {
    pub fn new() -> Self {
        Self::with(http_config(), |_| {})
    }

    pub fn with(config: HttpConfig, tweak: impl FnOnce(&mut PortalConfig)) -> Self {
        let mut pc = PortalConfig {
            mfa_key: Some(portal_core::testing::mfa_key()),
            ..PortalConfig::default()
        };
        tweak(&mut pc);
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new());
        let legacy = Arc::new(InMemoryLegacyDirectory::new());
        let sms = Arc::new(RecordingSmsSender::new());
        let faults = Arc::new(Faults::default());
        let deps = Deps {
            queries: store.clone(),
            committer: Arc::new(FaultyCommitter {
                store: store.clone(),
                faults: faults.clone(),
            }),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(42)),
            hasher: Arc::new(fast_hasher(7)),
            legacy: legacy.clone(),
        };
        let portal = Arc::new(
            Portal::new(deps, pc, PermissionCatalog::default())
                .unwrap()
                .with_sms_sender(Arc::new(FaultySms {
                    inner: sms.clone(),
                    faults: faults.clone(),
                }))
                .with_passkey_verifier(Arc::new(
                    adapters_webauthn::WebauthnVerifier::new(ORIGIN, "Portal").unwrap(),
                )),
        );
        let state = AppState::new(portal.clone(), config.clone(), Arc::new(AlwaysReady))
            .with_outbox(store.clone());
        let spec = Arc::new(serde_json::to_value(adapters_http::openapi(&config)).unwrap());
        Self {
            app: router(state.clone()),
            faults,
            state,
            portal,
            store,
            clock,
            sms,
            legacy,
            config,
            spec,
            operator_totp: Mutex::new(BTreeMap::new()),
            operator_devices: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn client(&self) -> Client {
        Client {
            app: self.app.clone(),
            config: self.config.clone(),
            jar: Arc::new(Mutex::new(BTreeMap::new())),
            csrf: Arc::new(Mutex::new(None)),
            ip: "198.51.100.7".parse().unwrap(),
            spec: self.spec.clone(),
        }
    }

    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
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

    /// Registered, confirmed: an active account without a customer.
    pub async fn registered(&self, address: &str) -> Actor {
        let ticket = self
            .portal
            .register(Register {
                email: email(address),
                first_name: name("Anna"),
                last_name: name("Schmidt"),
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

    /// Registered and linked to the customer by number.
    pub async fn member(&self, address: &str, n: &str) -> Actor {
        let actor = self.registered(address).await;
        self.portal
            .choose_affiliation(&actor, &affiliation())
            .await
            .unwrap();
        self.portal.link_customer(&actor, &number(n)).await.unwrap();
        actor
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

    /// The first administrator of a customer without one: member, request, operator approves.
    pub async fn admin(&self, address: &str, n: &str, operator: &Actor) -> Actor {
        let actor = self.member(address, n).await;
        let req = self.portal.request_admin_rights(&actor).await.unwrap();
        self.portal
            .approve_admin_request(operator, req.id())
            .await
            .unwrap();
        actor
    }

    /// `admin` invites `address` to customer `n`; returns the link's token.
    pub async fn invite(&self, admin: &Actor, n: &str, address: &str, perms: &[&str]) -> String {
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
        self.secret_for(address)
    }

    /// An active employee invited by `admin`.
    pub async fn invited(&self, admin: &Actor, n: &str, address: &str, perms: &[&str]) -> Actor {
        let token = self.invite(admin, n, address, perms).await;
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

    /// A world with customers 100000001 (admin a@, employee e@) and 100000002 (admin b@,
    /// employee f@), and an operator op@; returns logged-in clients for a@, e@, b@ and op@.
    pub async fn two_customers(&self) -> Tenants {
        let op = self.operator("op@example.com").await;
        self.customer("100000001").await;
        self.customer("100000002").await;
        let a = self.admin("a@example.com", "100000001", &op).await;
        let b = self.admin("b@example.com", "100000002", &op).await;
        self.invited(&a, "100000001", "e@example.com", &["support_requests"])
            .await;
        self.invited(&b, "100000002", "f@example.com", &[]).await;
        Tenants {
            admin_a: self.login("a@example.com").await,
            employee_a: self.login("e@example.com").await,
            admin_b: self.login("b@example.com").await,
            operator: self.login("op@example.com").await,
            employee_a_id: self.user_id("e@example.com").await,
            employee_b_id: self.user_id("f@example.com").await,
        }
    }

    /// A client logged in through `POST /api/v1/auth/login`; an operator of [`Self::operator`]
    /// finishes with a TOTP code at `POST /api/v1/auth/login/mfa` the first time and is a
    /// remembered device afterwards.
    pub async fn login(&self, address: &str) -> Client {
        let c = self.client();
        let device = self.operator_devices.lock().unwrap().get(address).cloned();
        if let Some((k, v)) = device {
            c.jar.lock().unwrap().insert(k, v);
        }
        let r = c
            .post(
                "/api/v1/auth/login",
                json!({"email": address, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {address}: {}", r.body);
        let secret = self.operator_totp.lock().unwrap().get(address).cloned();
        if let (Some(secret), "mfa_required") = (secret, r.body["status"].as_str().unwrap_or("")) {
            use portal_core::ports::Clock as _;
            let code = next_totp_code(&secret, self.clock.now());
            let r = c
                .post(
                    "/api/v1/auth/login/mfa",
                    json!({"method": "totp", "code": code, "remember_device": true}),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "operator's TOTP {address}: {}",
                r.body
            );
            keep_device_cookie(&c.jar, &self.operator_devices, address);
            return c;
        }
        assert_eq!(r.body["status"], "authenticated", "{}", r.body);
        c
    }
}

/// Faults the tests switch on: every commit conflicts (as if another request changed the same
/// rows each time, so the core's retries run out), or the phone gateway refuses every message.
#[derive(Default)]
pub struct Faults {
    pub conflicting_commits: AtomicBool,
    pub sms_down: AtomicBool,
}

/// The memory store's committer, but answering [`StoreError::Conflict`] while
/// [`Faults::conflicting_commits`] is on (nothing is written then).
struct FaultyCommitter {
    store: Arc<MemoryStore>,
    faults: Arc<Faults>,
}

#[async_trait::async_trait]
impl Committer for FaultyCommitter {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        if self.faults.conflicting_commits.load(Ordering::SeqCst) {
            return Err(StoreError::Conflict);
        }
        self.store.commit(commit).await
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .touch_session(id, last_seen_at, idle_expires_at)
            .await
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        reset_after: TimeDelta,
    ) -> Result<Counter, StoreError> {
        self.store.bump_counter(key, now, reset_after).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.store.reset_counter(key).await
    }

    async fn purge_expired(
        &self,
        kind: portal_core::ports::Expired,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.store.purge_expired(kind, cutoff, limit).await
    }
}

/// The recording phone gateway, but failing while [`Faults::sms_down`] is on.
struct FaultySms {
    inner: Arc<RecordingSmsSender>,
    faults: Arc<Faults>,
}

#[async_trait::async_trait]
impl SmsSender for FaultySms {
    async fn send(&self, message: &PhoneMessage) -> Result<(), SmsError> {
        if self.faults.sms_down.load(Ordering::SeqCst) {
            return Err(SmsError("gateway timeout at sms.example.net".into()));
        }
        self.inner.send(message).await
    }
}

pub struct Tenants {
    pub admin_a: Client,
    pub employee_a: Client,
    pub admin_b: Client,
    pub operator: Client,
    pub employee_a_id: UserId,
    pub employee_b_id: UserId,
}

/// A browser: keeps cookies, fetches and sends the CSRF token for unsafe requests.
#[derive(Clone)]
pub struct Client {
    app: Router,
    config: HttpConfig,
    pub jar: Arc<Mutex<BTreeMap<String, String>>>,
    csrf: Arc<Mutex<Option<String>>>,
    pub ip: std::net::IpAddr,
    spec: Arc<Value>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    #[track_caller]
    pub fn assert(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "body: {}",
            self.text
        );
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }
}

pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Option<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub csrf: bool,
    pub cookies: bool,
}

impl Client {
    pub fn cookie_name(&self, base: &str) -> String {
        if self.config.secure_cookies() {
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

    pub fn set_cookie(&self, base: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(self.cookie_name(base), value.to_owned());
    }

    /// The same browser (cookies, CSRF token) talking to another app, e.g. a host app that
    /// mounts Portal's router.
    pub fn on(&self, app: Router) -> Client {
        Client {
            app,
            config: self.config.clone(),
            jar: self.jar.clone(),
            csrf: self.csrf.clone(),
            ip: self.ip,
            spec: self.spec.clone(),
        }
    }

    /// A copy with its own jar (another browser with the same cookies).
    pub fn fork(&self) -> Client {
        Client {
            app: self.app.clone(),
            config: self.config.clone(),
            jar: Arc::new(Mutex::new(self.jar.lock().unwrap().clone())),
            csrf: Arc::new(Mutex::new(self.csrf.lock().unwrap().clone())),
            ip: self.ip,
            spec: self.spec.clone(),
        }
    }

    pub fn req(method: Method, path: &str) -> Req {
        Req {
            method,
            path: path.to_owned(),
            body: None,
            headers: Vec::new(),
            csrf: true,
            cookies: true,
        }
    }

    pub async fn csrf_token(&self) -> String {
        let r = self
            .send(Req {
                csrf: false,
                ..Self::req(Method::GET, "/api/v1/auth/csrf")
            })
            .await;
        let t = r.ok(200)["csrf_token"].as_str().unwrap().to_owned();
        *self.csrf.lock().unwrap() = Some(t.clone());
        t
    }

    pub async fn send(&self, req: Req) -> Reply {
        let token = if req.csrf && req.method != Method::GET {
            // Always fresh: cheap, and follows cookie changes.
            Some(Box::pin(self.csrf_token()).await)
        } else {
            None
        };
        let mut b = Request::builder().method(req.method.clone()).uri(&req.path);
        if req.cookies {
            let jar = self.jar.lock().unwrap().clone();
            if !jar.is_empty() {
                let c: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
                b = b.header(header::COOKIE, c.join("; "));
            }
        }
        if let Some(t) = token {
            b = b.header("x-csrf-token", t);
        }
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let body = match req.body {
            Some((ct, body)) => {
                b = b.header(header::CONTENT_TYPE, ct);
                Body::from(body)
            }
            None => Body::empty(),
        };
        let mut request = b.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(self.ip, 40_000)));
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
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        conforms(&self.spec, &req.method, &req.path, status, &body);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Self::req(Method::GET, path)).await
    }

    pub async fn json(&self, method: Method, path: &str, body: Value) -> Reply {
        self.send(Req {
            body: Some(("application/json".into(), body.to_string())),
            ..Self::req(method, path)
        })
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.json(Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.json(Method::PUT, path, body).await
    }

    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(Self::req(Method::POST, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Self::req(Method::DELETE, path)).await
    }

    pub async fn delete_json(&self, path: &str, body: Value) -> Reply {
        self.json(Method::DELETE, path, body).await
    }

    pub async fn raw(&self, method: Method, path: &str, content_type: &str, body: &str) -> Reply {
        self.send(Req {
            body: Some((content_type.into(), body.into())),
            ..Self::req(method, path)
        })
        .await
    }
}

/// The current TOTP code of a base32 secret at the app's clock.
pub fn totp_code(app: &TestApp, secret: &str) -> String {
    use portal_core::ports::Clock as _;
    let s = portal_core::totp::TotpSecret::from_base32(secret).unwrap();
    portal_core::totp::code_at(&s, app.clock.now())
        .expose()
        .to_owned()
}

/// Every answer of every test is one the OpenAPI document lists for its operation: the status,
/// and for errors the code in that status's description.
#[track_caller]
fn conforms(spec: &Value, method: &Method, path: &str, status: StatusCode, body: &Value) {
    let path = path.split('?').next().unwrap();
    if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
        return;
    }
    let m = method.as_str().to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').collect();
    let best = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| item.get(&m).is_some())
        .filter_map(|(template, item)| {
            let t: Vec<&str> = template.split('/').collect();
            if t.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (a, b) in t.iter().zip(&segs) {
                if a.starts_with('{') {
                    continue;
                }
                if a != b {
                    return None;
                }
                literal += 1;
            }
            Some((literal, template, &item[&m]))
        })
        .max_by_key(|(literal, _, _)| *literal);
    let Some((_, template, op)) = best else {
        return;
    };
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return;
    }
    let response = op["responses"].get(status.as_str());
    assert!(
        response.is_some(),
        "{method} {template}: status {status} is not documented ({body})"
    );
    if let Some(code) = body["error"]["code"].as_str() {
        let description = response.unwrap()["description"].as_str().unwrap_or("");
        assert!(
            description.contains(&format!("`{code}`")),
            "{method} {template}: code {code} is not documented for {status}"
        );
    }
}
