//! Test support: a real SMTP server (aiosmtpd, `scripted_smtp.py` beside this file) started per
//! test on a free loopback port, plus fixtures (settings, sample intents, stores).
//!
//! The server reports every transaction as a JSON line on its stdout; tests await those lines
//! (bounded by a generous timeout that only turns a hang into a failure) instead of sleeping.

pub mod proxy;

use adapters_smtp::{MailDelivery, MailRenderer, MailSender, MailSettings};
use base64::Engine as _;
use portal_core::ids::{AdminRequestId, OutboxId};
use portal_core::mail::{MailIntent, OutboxMail};
use portal_core::ports::{Clock, OutboxStore};
use portal_core::secret::SecretString;
use portal_core::values::{EmailAddress, Language};
use portal_dispatch::{Dispatcher, DispatcherConfig, DispatcherConfigError};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Longest wait for a server event before the test fails (a guard against hangs, not a timing
/// assertion).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("adapters-smtp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where aiosmtpd is installed: `$PORTAL_TEST_PYTHONPATH` (set by `scripts/test`), else what
/// `scripts/test-deps` installs (run once, under a file lock so parallel test processes do not
/// install over each other).
pub fn python_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(p) = std::env::var("PORTAL_TEST_PYTHONPATH")
            && !p.trim().is_empty()
        {
            return PathBuf::from(p.trim());
        }
        let root = repo_root();
        let tools = root.join("target/test-tools");
        std::fs::create_dir_all(&tools).expect("create target/test-tools");
        let lock = std::fs::File::create(tools.join(".adapters-smtp-deps.lock"))
            .expect("create lock file");
        lock.lock().expect("lock test-deps");
        let out = std::process::Command::new(root.join("scripts/test-deps"))
            .current_dir(&root)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/test-deps");
        assert!(out.status.success(), "scripts/test-deps failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .expect("scripts/test-deps printed no path")
            .trim()
            .to_owned();
        PathBuf::from(path)
    })
    .clone()
}

/// How a test server protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    None,
    StartTls,
    Implicit,
}

/// How to start a test server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// A fixed port (to restart a stopped server where it was); a free one when `None`.
    pub port: Option<u16>,
    /// The first lines of the behaviour script (see `scripted_smtp.py`).
    pub script: Vec<String>,
    /// `user:password` the server requires.
    pub auth: Option<(String, String)>,
    pub tls: ServerTls,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            port: None,
            script: vec!["accept".into()],
            auth: None,
            tls: ServerTls::None,
        }
    }
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Captured {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub data: Vec<u8>,
    pub defects: Vec<String>,
    pub auth: Option<String>,
    pub tls: bool,
}

/// What the server reported.
#[derive(Debug, Clone)]
pub enum Event {
    Message(Box<Captured>),
    Rejected { code: u16 },
}

/// A running aiosmtpd process.
pub struct SmtpServer {
    child: Child,
    port: u16,
    events: mpsc::UnboundedReceiver<Event>,
    dir: TempDir,
    cert: Option<PathBuf>,
}

impl SmtpServer {
    /// A server that accepts everything.
    pub async fn start() -> Self {
        Self::start_with(ServerOptions::default()).await
    }

    pub async fn start_with(opts: ServerOptions) -> Self {
        let dir = TempDir::new("smtp");
        let script = dir.path().join("script");
        std::fs::write(&script, opts.script.join("\n") + "\n").expect("write script");
        let handler =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delivery/support/scripted_smtp.py");
        let mut cmd = Command::new("python3");
        cmd.arg("-u")
            .arg(&handler)
            .arg("--port")
            .arg(opts.port.unwrap_or(0).to_string())
            .arg("--script")
            .arg(&script)
            .env("PYTHONPATH", python_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some((user, password)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        let mut cert = None;
        if opts.tls != ServerTls::None {
            let (c, k) = self_signed_cert(dir.path());
            cmd.arg("--cert")
                .arg(&c)
                .arg("--key")
                .arg(&k)
                .arg("--tls")
                .arg(if opts.tls == ServerTls::StartTls {
                    "starttls"
                } else {
                    "implicit"
                });
            cert = Some(c);
        }
        let mut child = cmd.spawn().expect("start python3 scripted_smtp.py");
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v: serde_json::Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                match v["event"].as_str() {
                    Some("ready") => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(v["port"].as_u64().expect("port") as u16);
                        }
                    }
                    Some("message") => {
                        let captured = Captured {
                            mail_from: v["mail_from"].as_str().unwrap_or_default().to_owned(),
                            rcpt_tos: v["rcpt_tos"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default(),
                            data: base64::engine::general_purpose::STANDARD
                                .decode(v["data_b64"].as_str().unwrap_or_default())
                                .expect("base64 from the server"),
                            defects: v["defects"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|x| x.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default(),
                            auth: v["auth"].as_str().map(str::to_owned),
                            tls: v["tls"].as_bool().unwrap_or(false),
                        };
                        let _ = tx.send(Event::Message(Box::new(captured)));
                    }
                    Some("rejected") => {
                        let _ = tx.send(Event::Rejected {
                            code: v["code"].as_u64().unwrap_or(0) as u16,
                        });
                    }
                    _ => {}
                }
            }
        });
        let port = tokio::time::timeout(EVENT_TIMEOUT, ready_rx)
            .await
            .expect("SMTP server did not start in time")
            .expect("SMTP server exited before it was ready (is aiosmtpd installed?)");
        Self {
            child,
            port,
            events,
            dir,
            cert,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:{port}` with a short command timeout.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?timeout=10", self.port)
    }

    /// The self-signed certificate of a TLS server (to trust with `ca_file`).
    pub fn cert(&self) -> Option<&Path> {
        self.cert.as_deref()
    }

    /// Replaces the behaviour script of the running server.
    pub fn script(&self, lines: &[&str]) {
        std::fs::write(self.dir.path().join("script"), lines.join("\n") + "\n")
            .expect("write script");
    }

    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(EVENT_TIMEOUT, self.events.recv())
            .await
            .expect("no SMTP event in time")
            .expect("SMTP server output ended")
    }

    /// The next accepted message (failing on a rejection in between).
    pub async fn next_message(&mut self) -> Captured {
        match self.next_event().await {
            Event::Message(m) => *m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// `n` accepted messages.
    pub async fn messages(&mut self, n: usize) -> Vec<Captured> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next_message().await);
        }
        out
    }

    /// Events already reported and not yet read (no waiting).
    pub fn pending_events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    /// Kills the server and returns its port (to start another one there later).
    pub async fn stop(mut self) -> u16 {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.port
    }
}

/// A self-signed certificate for 127.0.0.1 / localhost (openssl), as (cert, key) paths.
fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

pub const FROM: &str = "do-not-reply@portal.example.com";
pub const BASE_URL: &str = "https://portal.example.com";

pub fn settings() -> MailSettings {
    MailSettings::new(BASE_URL, EmailAddress::parse(FROM).unwrap())
        .unwrap()
        .with_vendor_name("Example")
        .unwrap()
        .with_support_phone("069 - 50 007 6035")
        .unwrap()
        .with_support_email(EmailAddress::parse("support@example.com").unwrap())
}

pub fn renderer() -> MailRenderer {
    MailRenderer::new(settings()).unwrap()
}

/// One sample of every intent; names with markup to prove escaping, secrets unique per `n`.
pub fn every_intent(n: u32) -> Vec<MailIntent> {
    let name = "Jürgen <Admin> & Co".to_owned();
    let request_id = AdminRequestId::from_uuid(uuid::Uuid::from_u128(u128::from(n) + 900));
    let all = vec![
        MailIntent::VerificationCode {
            first_name: name.clone(),
            code: SecretString::new(format!("{:06}", 100_000 + n)),
            valid_minutes: 15,
        },
        MailIntent::ExistingAccountNotice {
            first_name: name.clone(),
        },
        MailIntent::AddressInUseNotice {
            first_name: name.clone(),
        },
        MailIntent::InvitationToExistingAccount {
            first_name: name.clone(),
            customer_name: "Müller & Söhne <GmbH>".into(),
        },
        MailIntent::Invitation {
            first_name: name.clone(),
            customer_name: "Müller & Söhne <GmbH>".into(),
            token: SecretString::new(format!("invitationtoken{n:028}")),
            valid_days: 7,
        },
        MailIntent::PasswordReset {
            first_name: name.clone(),
            token: SecretString::new(format!("resettoken{n:033}")),
            valid_minutes: 60,
        },
        MailIntent::PasswordResetLocked {
            first_name: name.clone(),
        },
        MailIntent::PasswordChanged {
            first_name: name.clone(),
        },
        MailIntent::ActivationNeeded {
            admin_first_name: name.clone(),
            user_name: "Eve <script>".into(),
            user_email: "eve@example.com".into(),
            customer_number: "D123456789".into(),
        },
        MailIntent::Welcome {
            first_name: name.clone(),
        },
        MailIntent::MessageToAdmins {
            admin_first_name: name.clone(),
            from_name: "Eve <b>Evil</b>".into(),
            from_email: "eve@example.com".into(),
            message: "Bitte schalten Sie mich frei.\n<a href=\"https://evil.example\">hier</a>"
                .into(),
        },
        MailIntent::AdminConsentNeeded {
            admin_first_name: name.clone(),
            requester_name: "Eve <i>".into(),
            request_id,
        },
        MailIntent::AdminApprovalNeeded {
            requester_name: "Eve <i>".into(),
            customer_number: "D123456789".into(),
            customer_name: "Müller & Söhne <GmbH>".into(),
            request_id,
        },
        MailIntent::AdminRequestReceived {
            first_name: name.clone(),
            needs_consent: n.is_multiple_of(2),
        },
        MailIntent::AdminRequestConsented {
            first_name: name.clone(),
        },
        MailIntent::AdminRequestApproved {
            first_name: name.clone(),
        },
        MailIntent::AdminRequestRejected {
            first_name: name.clone(),
        },
        MailIntent::AccountLocked {
            first_name: name.clone(),
        },
        MailIntent::AccountUnlocked {
            first_name: name.clone(),
        },
        MailIntent::MfaEnabled {
            first_name: name.clone(),
            method: "totp".into(),
        },
        MailIntent::MfaDisabled {
            first_name: name.clone(),
        },
        MailIntent::PasskeyRemoved {
            first_name: name.clone(),
            name: "Laptop".into(),
        },
        MailIntent::RecoveryCodeRenewed {
            first_name: name.clone(),
        },
        MailIntent::RecoveryCodeUsed {
            first_name: name.clone(),
        },
        MailIntent::RecoveryCode {
            first_name: name.clone(),
            code: SecretString::new(format!("RC{n:02}-ABCD-EFGH-JKMN")),
        },
        MailIntent::RecoveryChannelCode {
            first_name: name.clone(),
            code: SecretString::new(format!("7{n:05}")),
        },
        MailIntent::EmailChangeRequested {
            first_name: name.clone(),
            new_email: "neu+<x>@example.com".into(),
        },
        MailIntent::EmailChanged {
            first_name: name.clone(),
            new_email: "neu@example.com".into(),
        },
        MailIntent::DataExported {
            first_name: name,
            by_administrator: n % 2 == 1,
        },
    ];
    for i in &all {
        assert_listed(i);
    }
    all
}

/// Does not compile when the core gains an intent: add a sample of it to [`every_intent`].
fn assert_listed(i: &MailIntent) {
    match i {
        MailIntent::VerificationCode { .. }
        | MailIntent::ExistingAccountNotice { .. }
        | MailIntent::AddressInUseNotice { .. }
        | MailIntent::InvitationToExistingAccount { .. }
        | MailIntent::Invitation { .. }
        | MailIntent::PasswordReset { .. }
        | MailIntent::PasswordResetLocked { .. }
        | MailIntent::PasswordChanged { .. }
        | MailIntent::ActivationNeeded { .. }
        | MailIntent::Welcome { .. }
        | MailIntent::MessageToAdmins { .. }
        | MailIntent::AdminConsentNeeded { .. }
        | MailIntent::AdminApprovalNeeded { .. }
        | MailIntent::AdminRequestReceived { .. }
        | MailIntent::AdminRequestConsented { .. }
        | MailIntent::AdminRequestApproved { .. }
        | MailIntent::AdminRequestRejected { .. }
        | MailIntent::AccountLocked { .. }
        | MailIntent::AccountUnlocked { .. }
        | MailIntent::MfaEnabled { .. }
        | MailIntent::MfaDisabled { .. }
        | MailIntent::PasskeyRemoved { .. }
        | MailIntent::RecoveryCodeRenewed { .. }
        | MailIntent::RecoveryCodeUsed { .. }
        | MailIntent::RecoveryCode { .. }
        | MailIntent::RecoveryChannelCode { .. }
        | MailIntent::EmailChangeRequested { .. }
        | MailIntent::EmailChanged { .. }
        | MailIntent::DataExported { .. } => {}
    }
}

pub fn start_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_603_600, 0).unwrap()
}

/// An outbox mail with id `n`.
pub fn outbox_mail(n: u128, to: &str, language: Language, intent: MailIntent) -> OutboxMail {
    OutboxMail {
        id: OutboxId::from_uuid(uuid::Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 | n,
        )),
        created_at: start_time(),
        to: EmailAddress::parse(to).unwrap(),
        language,
        intent,
    }
}

/// Parses a captured message, failing the test if it is not MIME.
pub fn parse(data: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(data)
        .expect("the delivered message parses as MIME")
}

pub const PASSWORD: &str = "korrekt pferd batterie";

/// The real core on `store`, with deterministic fakes (seeded randomness: two portals built with
/// the same seed answer the same).
pub fn portal_on<S>(
    store: std::sync::Arc<S>,
    clock: std::sync::Arc<portal_core::testing::ManualClock>,
) -> portal_core::Portal
where
    S: portal_core::ports::Queries + portal_core::ports::Committer + 'static,
{
    use portal_core::testing::{SeededRandom, SequentialIds, fast_hasher};
    let deps = portal_core::Deps {
        queries: store.clone(),
        committer: store,
        clock,
        ids: std::sync::Arc::new(SequentialIds::new()),
        random: std::sync::Arc::new(SeededRandom::new(42)),
        hasher: std::sync::Arc::new(fast_hasher(7)),
        legacy: std::sync::Arc::new(portal_core::ports::NoLegacyDirectory),
    };
    portal_core::Portal::new(deps, Default::default(), Default::default()).unwrap()
}

/// "Erstellen Sie Ihr Konto" for `email`.
pub fn register_cmd(email: &str, language: Language) -> portal_core::service::Register {
    use portal_core::values::PersonName;
    portal_core::service::Register {
        email: EmailAddress::parse(email).unwrap(),
        first_name: PersonName::parse("Anna").unwrap(),
        last_name: PersonName::parse("Muster").unwrap(),
        password: SecretString::new(PASSWORD),
        password_confirmation: SecretString::new(PASSWORD),
        language,
    }
}

/// The six-digit code in a delivered mail's plain-text part.
pub fn code_in(data: &[u8]) -> String {
    let msg = parse(data);
    let text = msg.body_text(0).expect("text body");
    text.lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
        .expect("a six-digit code line")
        .to_owned()
}

/// A dispatcher of the outbox's mails: `renderer`, then `sender` (the mail kind's
/// [`MailDelivery`] under the shared `portal-dispatch` loop).
pub fn mail_dispatcher(
    store: Arc<dyn OutboxStore>,
    sender: Arc<dyn MailSender>,
    renderer: MailRenderer,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
) -> Result<Dispatcher, DispatcherConfigError> {
    Dispatcher::new(
        store,
        Arc::new(MailDelivery::new(renderer, sender)),
        clock,
        config,
    )
}
