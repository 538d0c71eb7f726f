//! `portal serve` as a real process: starts on a fresh directory with no configuration, answers
//! `/healthz` and `/readyz`, prints the first operator's setup link, delivers mail through the
//! development mailbox, and shuts down cleanly on SIGTERM without losing a queued mail: a request
//! in flight gets its whole answer, a new connection is refused.
//!
//! No sleeps: the test waits on the process's own output lines, with a deadline.

use portal_core::config::PortalConfig;
use portal_core::ports::OutboxStore as _;
use portal_core::secret::SecretString;
use portal_core::service::Register;
use portal_core::values::{EmailAddress, Language, PersonName};
use portal_server::app;
use portal_server::config::Database;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// A running `portal serve` and every line it printed so far (stdout and stderr).
struct Server {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    port: u16,
}

impl Server {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portal"));
        cmd.current_dir(dir)
            .env_clear()
            .env("PORTAL_BIND", "127.0.0.1:0")
            .env("PORTAL_LOG", "info")
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start portal serve");
        let (tx, lines) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut server = Self {
            child,
            lines,
            seen: Vec::new(),
            port: 0,
        };
        let banner = server.wait_for(|l| l.trim_start().starts_with("listening 127.0.0.1:"));
        server.port = banner
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {banner:?}"));
        server.wait_for(|l| l.contains("listening"));
        server
    }

    /// Waits for a line matching `pred` (also among the lines seen before) and returns it.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no such line within {DEADLINE:?}; output:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the server ended; output:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, &[], "")
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and the rest of the output.
    fn terminate(self) -> (Option<i32>, Vec<String>) {
        self.sigterm();
        self.wait_exit()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit (after a signal); returns the exit code and all the output.
    fn wait_exit(mut self) -> (Option<i32>, Vec<String>) {
        let end = Instant::now() + DEADLINE;
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            // Reading the output is the wait: it blocks until a line comes or the pipes close.
            match self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => {
                    break self.child.wait().unwrap().code();
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "no exit within {DEADLINE:?} after SIGTERM:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        };
        self.seen.extend(self.lines.try_iter());
        (code, std::mem::take(&mut self.seen))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    (status, response)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_answers_health_prints_the_operator_link_and_stops_without_losing_mail() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);

    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");

    // The first operator and the development banner.
    let link_line = server.wait_for(|l| l.contains("/invitations/"));
    let prefix = format!("http://127.0.0.1:{}/invitations/", server.port);
    assert!(link_line.trim().starts_with(&prefix), "{link_line}");
    // The link opens the web UI's invitation page; the development mailbox page is served.
    let origin = format!("http://127.0.0.1:{}", server.port);
    let path = link_line.trim().trim_start_matches(&origin).to_owned();
    let (status, body) = http(server.port, "GET", &path, &[("Accept", "text/html")], "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        server.port,
        "GET",
        "/dev/mailbox",
        &[("Accept", "text/html")],
        "",
    );
    assert_eq!(status, 200, "{body}");
    server.wait_for(|l| l.contains("First operator account operator@portal.localhost created"));
    server.wait_for(|l| l.contains("DEVELOPMENT MODE"));

    // The secret was generated next to the database, for the owner only.
    let key = dir.path().join("portal.secret");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // Another process on the same database queues a mail; the server's dispatcher finds it at
    // its next poll. SIGTERM right away: the mail is delivered or stays queued, never lost.
    let db = Database::parse(dir.path().join("portal.db").to_str().unwrap()).unwrap();
    let (store, _) = app::open_store(&db).await.unwrap();
    let store = Arc::new(store);
    let core = app::portal(store.clone(), None, PortalConfig::default()).unwrap();
    core.register(Register {
        email: EmailAddress::parse("late@example.com").unwrap(),
        first_name: PersonName::parse("Lena").unwrap(),
        last_name: PersonName::parse("Late").unwrap(),
        password: SecretString::new("ein sehr langes passwort"),
        password_confirmation: SecretString::new("ein sehr langes passwort"),
        language: Language::De,
    })
    .await
    .unwrap();

    let (code, output) = server.terminate();
    let output = output.join("\n");
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("shutting down"), "{output}");
    assert!(output.contains("stopped"), "{output}");

    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(stats.claimed, 0, "nothing left claimed: {stats:?}");
    assert_eq!(stats.dead, 0, "{stats:?}");
    let delivered = std::fs::read_dir(dir.path().join("mail-outbox"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0) as u64;
    assert_eq!(
        stats.sent, delivered,
        "sent mails are in the mailbox: {stats:?}"
    );
    assert_eq!(
        stats.sent + stats.pending,
        1,
        "the mail is delivered or still queued: {stats:?}"
    );

    // A second start reuses the key, finds the operator, and delivers what was left.
    let delivered_before = stats.sent == 1;
    let before = std::fs::read(&key).unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_for(|l| l.contains("server secret read from the key file"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    if !delivered_before {
        server.wait_for(|l| l.contains("mail to late@example.com") && l.contains(" code "));
    }
    let (code, output) = server.terminate();
    let output = output.join("\n");
    assert_eq!(code, Some(0), "{output}");
    assert!(
        !output.contains("/invitations/"),
        "no second operator link: {output}"
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.sent, stats.pending, stats.claimed),
        (1, 0, 0),
        "{stats:?}"
    );
}

/// The `Set-Cookie` headers of a response, and its JSON body's `csrf_token`.
fn csrf(port: u16) -> (Vec<String>, String) {
    let (status, response) = http(port, "GET", "/api/v1/auth/csrf", &[], "");
    assert_eq!(status, 200, "{response}");
    let cookies: Vec<String> = response
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .map(str::to_owned)
        .collect();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let token = body
        .split("\"csrf_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no csrf_token in {body}"))
        .to_owned();
    (cookies, token)
}

#[test]
fn development_mode_serves_plain_http_cookies_and_delivers_a_registration_code_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (cookies, token) = csrf(server.port);
    let nonce = cookies
        .iter()
        .find(|c| c.starts_with("portal-csrf="))
        .unwrap_or_else(|| panic!("no development csrf cookie in {cookies:?}"));
    assert!(!nonce.contains("Secure"), "{nonce}");
    let cookie = nonce.split(';').next().unwrap().to_owned();
    let body = r#"{"email":"anna@example.com","first_name":"Anna","last_name":"Schmidt","password":"korrekt pferd batterie","password_confirmation":"korrekt pferd batterie"}"#;
    let (status, response) = http(
        server.port,
        "POST",
        "/api/v1/auth/register",
        &[
            ("Cookie", &cookie),
            ("X-CSRF-Token", &token),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert!((200..300).contains(&status), "{response}");
    // The commit wakes the dispatcher: the code is in the mailbox and the log.
    let line = server.wait_for(|l| l.contains("mail to anna@example.com") && l.contains(" code "));
    assert!(line.contains("mail-outbox/"), "{line}");
    let (code, output) = server.terminate();
    assert_eq!(code, Some(0), "{}", output.join("\n"));
}

/// Reads from `s` up to and including the blank line that ends a response head.
fn read_head(s: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert_eq!(
            n,
            1,
            "the connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn shutdown_finishes_a_request_in_flight_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (cookies, token) = csrf(server.port);
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("portal-csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body = r#"{"email":"nobody@example.com","password":"korrekt pferd batterie"}"#;
    let (first, rest) = body.split_at(body.len() / 2);

    // A login whose body is half sent. `Expect: 100-continue` makes the server say when the
    // handler starts reading the body: from then on the request is in flight.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nCookie: {cookie}\r\nX-CSRF-Token: {token}\r\nExpect: 100-continue\r\n\r\n",
        server.port,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let interim = read_head(&mut s);
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(first.as_bytes()).unwrap();
    s.flush().unwrap();

    server.sigterm();
    server.wait_for(|l| l.contains("shutting down"));
    // The listening socket is closed: a new connection is refused at once.
    let refused = std::net::TcpStream::connect(("127.0.0.1", server.port))
        .expect_err("a new connection after shutdown began");
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );

    // The request in flight still gets its whole answer.
    s.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, answer) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 401 "), "{response}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(answer.len(), length, "the whole body: {response}");
    assert!(answer.contains("\"invalid_credentials\""), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "the connection ends with this answer: {head}"
    );

    let (code, output) = server.wait_exit();
    let output = output.join("\n");
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("stopped"), "{output}");
}

#[test]
fn outside_development_mode_cookies_are_secure_and_no_operator_is_made_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        dir.path(),
        &[
            ("PORTAL_PUBLIC_URL", "http://localhost:8080"),
            // Nothing listens there: mail waits in the outbox, which is all this test needs.
            ("SMTP_URL", "smtp://127.0.0.1:9"),
        ],
    );
    server.wait_for(|l| l.contains("no operator account exists: set PORTAL_OPERATOR_EMAIL"));
    let (status, _) = http(
        server.port,
        "GET",
        "/dev/mailbox",
        &[("Accept", "text/html")],
        "",
    );
    assert_eq!(status, 404, "no mailbox page outside development mode");
    let (cookies, _) = csrf(server.port);
    let nonce = cookies
        .iter()
        .find(|c| c.starts_with("__Host-portal-csrf="))
        .unwrap_or_else(|| panic!("no secure csrf cookie in {cookies:?}"));
    assert!(nonce.contains("Secure"), "{nonce}");
    let (code, output) = server.terminate();
    let output = output.join("\n");
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains("DEVELOPMENT MODE"), "{output}");
    assert!(!output.contains("/invitations/"), "{output}");
    assert!(
        output.contains("phone     none: SMS and voice codes are not offered (set PORTAL_SMS_URL"),
        "without a gateway production says so: {output}"
    );
}

#[test]
fn serve_refuses_postgres_without_a_shared_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portal"))
        .current_dir(dir.path())
        .env_clear()
        .env("DATABASE_URL", "postgres://portal@127.0.0.1:1/portal")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PORTAL_SECRET_KEY: must be set on Postgres"),
        "{err}"
    );
}

/// The value of the sample `name{labels}` in a Prometheus text exposition (labels in any
/// order), or `None` when there is no such sample.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    exposition.lines().find_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (n, mut have) = match series.split_once('{') {
            Some((n, rest)) => (
                n,
                rest.trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            None => (series, Vec::new()),
        };
        have.sort();
        (n == name && have == wanted).then(|| value.parse().ok())?
    })
}

/// A response's body and its `Set-Cookie` name=value pairs.
fn body_and_cookies(response: &str) -> (String, Vec<String>) {
    let cookies = response
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .filter_map(|c| c.split(';').next())
        .map(str::to_owned)
        .collect();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (body, cookies)
}

fn json_field(body: &str, field: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .to_owned()
}

#[test]
fn metrics_are_served_on_their_own_listener_and_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[("PORTAL_METRICS_BIND", "127.0.0.1:0")]);
    let line = server.wait_for(|l| l.contains("metrics on http://127.0.0.1:"));
    let metrics_port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no metrics port in {line:?}"));
    let scrape = || {
        let (status, response) = http(metrics_port, "GET", "/metrics", &[], "");
        assert_eq!(status, 200, "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{response}"
        );
        body_and_cookies(&response).0
    };
    let before = scrape();
    assert_eq!(
        sample(
            &before,
            "portal_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("rustc_edition", "2024")
            ]
        ),
        Some(1.0),
        "{before}"
    );
    for outcome in [
        "success",
        "wrong_password",
        "throttled",
        "second_factor_required",
        "second_factor_failed",
        "passkey_success",
        "passkey_refused",
    ] {
        assert_eq!(
            sample(&before, "portal_logins_total", &[("outcome", outcome)]),
            Some(0.0),
            "{outcome}: {before}"
        );
    }
    assert_eq!(
        sample(&before, "portal_sessions_started_total", &[]),
        Some(0.0)
    );
    assert!(
        sample(&before, "portal_db_pool_max_connections", &[]).is_some_and(|n| n >= 1.0),
        "{before}"
    );
    // Not on the public listener.
    let (status, public) = server.get("/metrics");
    assert_ne!(status, 200);
    assert!(!public.contains("portal_build_info"));

    // Two wrong logins, a registration (a session), a logout, a login.
    let port = server.port;
    let login = |password: &str| {
        let (cookies, token) = csrf(port);
        let cookie = cookies
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect::<Vec<_>>()
            .join("; ");
        http(
            port,
            "POST",
            "/api/v1/auth/login",
            &[
                ("Cookie", &cookie),
                ("X-CSRF-Token", &token),
                ("Content-Type", "application/json"),
            ],
            &format!(r#"{{"email":"anna@example.com","password":"{password}"}}"#),
        )
    };
    assert_eq!(login("falsch falsch falsch").0, 401);
    assert_eq!(login("auch falsch falsch").0, 401);
    let (cookies, token) = csrf(server.port);
    let cookie = cookies
        .iter()
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    let json = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", token.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, response) = http(
        server.port,
        "POST",
        "/api/v1/auth/register",
        &json,
        r#"{"email":"anna@example.com","first_name":"Anna","last_name":"Schmidt","password":"korrekt pferd batterie","password_confirmation":"korrekt pferd batterie"}"#,
    );
    assert_eq!(status, 202, "{response}");
    let ticket = json_field(&body_and_cookies(&response).0, "ticket");
    let mail = server.wait_for(|l| l.contains("mail to anna@example.com") && l.contains(" code "));
    let code = mail
        .split(" code ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let (status, response) = http(
        server.port,
        "POST",
        "/api/v1/auth/register/verify",
        &json,
        &format!(r#"{{"ticket":"{ticket}","code":"{code}"}}"#),
    );
    assert!((200..300).contains(&status), "{response}");
    let (body, session_cookies) = body_and_cookies(&response);
    let session_token = json_field(&body, "csrf_token");
    let session_cookie = session_cookies.join("; ");
    let (status, response) = http(
        server.port,
        "POST",
        "/api/v1/auth/logout",
        &[
            ("Cookie", &session_cookie),
            ("X-CSRF-Token", &session_token),
        ],
        "",
    );
    assert!((200..300).contains(&status), "{response}");
    let (status, response) = login("korrekt pferd batterie");
    assert_eq!(status, 200, "{response}");

    let after = scrape();
    let logins = |outcome| sample(&after, "portal_logins_total", &[("outcome", outcome)]);
    assert_eq!(logins("wrong_password"), Some(2.0), "{after}");
    assert_eq!(logins("success"), Some(1.0), "{after}");
    assert_eq!(logins("throttled"), Some(0.0));
    assert_eq!(
        sample(&after, "portal_sessions_started_total", &[]),
        Some(2.0),
        "registration and login: {after}"
    );
    assert_eq!(
        sample(&after, "portal_sessions_ended_total", &[("how", "logout")]),
        Some(1.0),
        "{after}"
    );
    let requests = |route, method, status| {
        sample(
            &after,
            "portal_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(
        requests("/api/v1/auth/login", "POST", "401"),
        Some(2.0),
        "{after}"
    );
    assert_eq!(requests("/api/v1/auth/login", "POST", "200"), Some(1.0));
    assert_eq!(
        requests("/api/v1/auth/register/verify", "POST", "201"),
        Some(1.0),
        "{after}"
    );
    assert!(requests("/api/v1/auth/csrf", "GET", "200").is_some_and(|n| n >= 4.0));
    assert!(
        requests("unmatched", "GET", "404").is_some_and(|n| n >= 1.0),
        "the public /metrics: {after}"
    );
    assert_eq!(
        sample(
            &after,
            "portal_http_request_duration_seconds_count",
            &[
                ("route", "/api/v1/auth/login"),
                ("method", "POST"),
                ("status", "401")
            ]
        ),
        Some(2.0),
        "{after}"
    );
    // Four password checks and one hashing went through the hashing queue.
    assert!(
        sample(&after, "portal_hashing_queue_wait_seconds_count", &[]).is_some_and(|n| n >= 4.0),
        "{after}"
    );
    assert_eq!(sample(&after, "portal_hashing_queue_depth", &[]), Some(0.0));
    assert_eq!(
        sample(&after, "portal_outbox_messages", &[("state", "dead")]),
        Some(0.0),
        "{after}"
    );
    assert!(sample(&after, "portal_outbox_oldest_open_age_seconds", &[]).is_some());
    assert!(sample(&after, "portal_db_pool_connections", &[("state", "in_use")]).is_some());
    let (code, output) = server.terminate();
    assert_eq!(code, Some(0), "{}", output.join("\n"));
}

/// A phone gateway on a free loopback port, in a thread: every request's head and body go to the
/// returned channel, and each is answered `201` with an empty JSON object.
fn sms_gateway() -> (u16, Receiver<(String, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let head = read_head(&mut stream);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            stream.read_exact(&mut body).unwrap();
            let _ = stream.write_all(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
            if tx.send((head, String::from_utf8(body).unwrap())).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// Outside development mode, with `PORTAL_SMS_*` set, phone codes are offered and reach the
/// provider through the outbox: another process on the same database sets up a phone, which
/// queues the text in its commit; the server's phone-code dispatcher posts it to the gateway
/// as the template says, and the code it carries confirms the phone. The credential and the code
/// stay out of the server's output.
#[tokio::test(flavor = "multi_thread")]
async fn with_a_phone_gateway_codes_go_through_the_outbox_to_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway_port, requests) = sms_gateway();
    let url = format!("http://127.0.0.1:{gateway_port}/2010-04-01/Messages.json");
    let mut server = Server::start(
        dir.path(),
        &[
            ("PORTAL_PUBLIC_URL", "http://localhost:8080"),
            ("SMTP_URL", "smtp://127.0.0.1:9"),
            ("PORTAL_PRODUCT_NAME", "Kundenportal"),
            ("PORTAL_SMS_URL", &url),
            (
                "PORTAL_SMS_AUTH_HEADER",
                "Authorization: Bearer s3cret-t0ken",
            ),
            ("PORTAL_SMS_CONTENT_TYPE", "form"),
            ("PORTAL_SMS_BODY_TEMPLATE", "To={{ to }}&Body={{ text }}"),
            ("PORTAL_SMS_SUCCESS_STATUS", "201"),
        ],
    );
    server.wait_for(|l| l.contains("phone     SMS gateway 127.0.0.1 (PORTAL_SMS_URL)"));

    let db = Database::parse(dir.path().join("portal.db").to_str().unwrap()).unwrap();
    let (store, _) = app::open_store(&db).await.unwrap();
    let store = Arc::new(store);
    let core = app::portal(store.clone(), None, PortalConfig::default())
        .unwrap()
        .with_sms_outbox();
    portal_testkit::seed::customer_with_admin(&core, &*store, "424242001", "anna@example.com", &[])
        .await
        .unwrap();
    let token = portal_testkit::seed::session(&core, "anna@example.com")
        .await
        .unwrap();
    let principal = core.authenticate(&token).await.unwrap();
    let phone = portal_core::mfa::PhoneNumber::parse("+49 176 12345678").unwrap();
    core.start_phone_enrolment(&principal, &phone, portal_core::mfa::PhoneChannel::Sms)
        .await
        .unwrap();

    // The server finds the text at its next poll.
    let (head, body) = requests
        .recv_timeout(DEADLINE)
        .expect("a request to the gateway");
    assert!(
        head.starts_with("POST /2010-04-01/Messages.json HTTP/1.1"),
        "{head}"
    );
    assert!(
        head.contains("authorization: Bearer s3cret-t0ken"),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    let prefix = "To=%2B4917612345678&Body=Ihr+Best%C3%A4tigungscode+f%C3%BCr+Kundenportal%3A+";
    let code = body
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert_eq!(code.len(), 6, "{body}");
    let enabled = core
        .confirm_phone(&principal, &SecretString::new(code.clone()))
        .await
        .unwrap();
    assert!(enabled.recovery_code.is_some());

    let (exit, output) = server.terminate();
    let output = output.join("\n");
    assert_eq!(exit, Some(0), "{output}");
    assert!(!output.contains(&code), "the code is not logged: {output}");
    assert!(!output.contains("s3cret-t0ken"), "{output}");
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(stats.dead, 0, "{stats:?}");
}

#[test]
fn a_phone_gateway_setting_without_its_url_or_with_plain_http_is_refused_at_start() {
    for (env, expected) in [
        (
            vec![("PORTAL_SMS_AUTH_HEADER", "X-Api-Key: s3cret")],
            "PORTAL_SMS_AUTH_HEADER: is set but PORTAL_SMS_URL is not",
        ),
        (
            vec![
                ("PORTAL_SMS_URL", "http://sms.example.com/send"),
                ("PORTAL_SMS_AUTH_HEADER", "X-Api-Key: s3cret"),
            ],
            "PORTAL_SMS_URL: must be https://",
        ),
        (
            vec![
                ("PORTAL_SMS_URL", "https://sms.example.com/send"),
                ("PORTAL_SMS_CONTENT_TYPE", "json"),
                ("PORTAL_SMS_BODY_TEMPLATE", "{\"to\": {{ number }}}"),
            ],
            "PORTAL_SMS_BODY_TEMPLATE:",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_portal"))
            .current_dir(dir.path())
            .env_clear()
            .envs(env)
            .arg("serve")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
