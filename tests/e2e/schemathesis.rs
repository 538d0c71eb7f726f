//! Schemathesis (from PyPI, pinned in `scripts/test-deps`) against `/api/v1/openapi.json` of a
//! running server on SQLite: no 5xx, and every answer's status, content type and body as the
//! document says. As an anonymous browser, as a seeded customer administrator and as the operator.
//!
//! How it is set up, and why:
//! - Every unsafe request must carry a CSRF token (`docs/api.md`), so a request without one
//!   answers 403 `csrf_failed` before its body is even read — fuzzing bodies would test nothing
//!   else. Every run therefore sends what a browser sends: the cookies (the session cookie and/or
//!   the pre-session nonce cookie), the matching `X-CSRF-Token`, `Origin` and `Sec-Fetch-Site`.
//!   The anonymous run holds only the pre-session nonce, so login, registration and password
//!   reset are fuzzed for real; the authenticated runs hold a session.
//! - `--generation-with-security-parameters false`: the credentials are the real ones above;
//!   random values for the cookie schemes would replace them.
//! - The authenticated runs leave out `POST /auth/logout` and `DELETE /me/sessions/{id}`: either
//!   ends the seeded session (schemathesis reuses the session id it reads from
//!   `GET /me/sessions`) and would turn the rest of the run into an anonymous one. The anonymous
//!   run covers both. The path filter drops `GET /me/sessions/{id}` too; router tests cover it.
//! - `PORTAL_RATE_LIMITS=off`: the per-address limits would answer most requests to the login,
//!   registration, code and reset endpoints with 429 and leave their input handling unfuzzed.
//! - Bounded: `--max-examples`, a fixed `--seed`, and the phases that need no state between
//!   requests (`examples`, `coverage`, `fuzzing`).

use crate::support::browser::Browser;
use crate::support::portal::Portal;
use crate::support::smtp::SmtpSink;
use crate::support::world::*;
use crate::support::{TempDir, python_path, secret_key};

/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "25";

/// A server on SQLite with an SMTP server and a first operator.
struct Target {
    smtp: SmtpSink,
    server: Portal,
    _dir: TempDir,
}

const OPERATOR: &str = "ops@vendor.example";

impl Target {
    async fn start() -> Self {
        let smtp = SmtpSink::start().await;
        let dir = TempDir::new("schemathesis");
        let env: Vec<(String, String)> = [
            (
                "DATABASE_URL",
                format!("sqlite://{}/portal.db", dir.path().display()),
            ),
            ("SMTP_URL", smtp.url()),
            ("PORTAL_SECRET_KEY", secret_key()),
            ("PORTAL_DEV_MODE", "true".into()),
            ("PORTAL_MAIL_FROM", MAIL_FROM.into()),
            ("PORTAL_OPERATOR_EMAIL", OPERATOR.into()),
            // The per-address rate limits would answer most requests to the login, registration,
            // code and reset endpoints with 429 and leave their input handling unfuzzed; the
            // core's per-account throttles stay on.
            ("PORTAL_RATE_LIMITS", "off".into()),
            // Quiet (schemathesis sends thousands of requests), but with the lines `stop` checks.
            ("PORTAL_LOG", "warn,portal_server=info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let server = Portal::serve("portal", &env).await;
        Self {
            smtp,
            server,
            _dir: dir,
        }
    }

    /// The first operator, signed in.
    async fn seeded_operator(&mut self) -> Browser {
        let token = self.server.first_operator_token().await;
        let op = Browser::new(&self.server);
        let op_p = Person {
            first: "Portal".into(),
            last: "Operator".into(),
            email: OPERATOR.into(),
            password: "vendor staff kennwort 2026".into(),
        };
        accept_invitation(&op, &mut self.smtp, &token, &op_p).await;
        create_customer(&op, "123456789", "Fuzz GmbH").await;
        op
    }

    /// A customer administrator with a live session: the operator sets up the customer, Anna
    /// registers, links and is approved as administrator.
    async fn seeded_admin(&mut self) -> Browser {
        let op = self.seeded_operator().await;
        let anna_p = Person::new("Anna", "Fuzz", "fuzz.example");
        let anna = Browser::new(&self.server);
        register(&anna, &mut self.smtp, &anna_p).await;
        link(&anna, "123456789").await;
        let request = anna.post("/me/admin-request", None).await;
        let id = request.expect(201)["id"].as_str().unwrap().to_owned();
        op.post(&format!("/operator/admin-requests/{id}/approve"), None)
            .await
            .expect(200);
        assert_eq!(anna.get("/me").await.expect(200)["role"], "administrator");
        anna
    }

    async fn stop(self) {
        self.server.stop().await;
        self.smtp.stop().await;
    }
}

/// The authenticated runs: everything but what would end the seeded session (see the module
/// docs). Panics with the report when schemathesis fails.
async fn fuzz_keeping_the_session(server: &Portal, browser: &Browser) {
    let (ok, report) = schemathesis(
        server,
        browser,
        &[
            "--exclude-path",
            "/api/v1/auth/logout",
            "--exclude-path",
            "/api/v1/me/sessions/{id}",
        ],
    )
    .await;
    println!("{report}");
    assert!(ok, "schemathesis failed:\n{report}");
}

/// Runs schemathesis against the server with a browser's cookies and CSRF token; returns whether
/// it passed and its report.
async fn schemathesis(server: &Portal, browser: &Browser, extra: &[&str]) -> (bool, String) {
    let csrf = browser.csrf().await;
    let cookies = browser.cookie_header();
    assert!(!cookies.is_empty(), "the browser holds cookies");
    let work = TempDir::new("schemathesis-run");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.current_dir(work.path())
        .env("PYTHONPATH", python_path())
        .env("NO_COLOR", "1")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/api/v1/openapi.json", server.origin))
        .args(["--url", &server.origin])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "20260105"])
        // One worker: with several threads, hypothesis's lambda descriptions (`ast.parse`) race on
        // CPython 3.11 ("AST constructor recursion depth mismatch") and error a random operation.
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--generation-with-security-parameters", "false"])
        .args(["--generation-database", "none"])
        .args(["--no-color", "--continue-on-failure"])
        .args(["-H", &format!("Cookie: {cookies}")])
        .args(["-H", &format!("X-CSRF-Token: {csrf}")])
        .args(["-H", &format!("Origin: {}", server.origin)])
        .args(["-H", "Sec-Fetch-Site: same-origin"])
        .args(extra)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), cmd.output())
        .await
        .expect("schemathesis finished within 10 minutes")
        .expect("run python3 -m schemathesis.cli (installed by scripts/test-deps)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_anonymous_browser_finds_no_server_error_and_no_schema_mismatch() {
    let target = Target::start().await;
    let browser = Browser::new(&target.server);
    let (ok, report) = schemathesis(&target.server, &browser, &[]).await;
    println!("{report}");
    assert!(ok, "schemathesis failed:\n{report}");
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_as_customer_administrator_finds_no_server_error_and_no_schema_mismatch() {
    let mut target = Target::start().await;
    let admin = target.seeded_admin().await;
    fuzz_keeping_the_session(&target.server, &admin).await;
    // The seeded session survived the run (the report is about that user, not an anonymous one).
    assert_eq!(admin.get("/me").await.status, 200);
    target.stop().await;
}

/// The operator endpoints (customers, their users and logs, admin requests, operators, dead
/// letters) only answer past 401/403 with an operator's session.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_as_operator_finds_no_server_error_and_no_schema_mismatch() {
    let mut target = Target::start().await;
    let op = target.seeded_operator().await;
    fuzz_keeping_the_session(&target.server, &op).await;
    assert_eq!(op.get("/me").await.expect(200)["role"], "operator");
    target.stop().await;
}
