//! Delivery, retries, dead letters and timeouts through `SmsGateway` and the real
//! `portal_dispatch::Dispatcher`, against an axum server on a loopback port that records every
//! request and answers as each test scripts it; the two provider examples of
//! `docs/operations.md`, read from that file, byte for byte; and no code in logs or errors.

use adapters_memory::MemoryStore;
use adapters_sms::{GatewayConfig, SmsGateway};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::TimeDelta;
use portal_core::ids::OutboxId;
use portal_core::mail::OutboxStatus;
use portal_core::mfa::{PhoneChannel, PhoneNumber};
use portal_core::outbox::{OutboxMessage, Payload, RetryPolicy};
use portal_core::ports::{Clock, Commit, Committer, OutboxStore, PhoneCodePurpose, PhoneMessage};
use portal_core::secret::SecretString;
use portal_core::testing::ManualClock;
use portal_core::values::Language;
use portal_dispatch::{Dispatcher, DispatcherConfig};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

const CODE: &str = "402913";

/// How the server answers one request.
#[derive(Clone)]
enum Answer {
    Status(u16, &'static str),
    /// Never answers (the gateway's timeout must end the request).
    Hang,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record(
    State(script): State<Script>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, &'static str) {
    script.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let answer = script.answers.lock().unwrap().pop_front();
    match answer.unwrap_or(Answer::Status(200, "{}")) {
        Answer::Status(code, body) => (StatusCode::from_u16(code).unwrap(), body),
        Answer::Hang => std::future::pending().await,
    }
}

/// A server on a free loopback port answering `answers` in turn (then `200 {}`); its base URL.
async fn server(answers: Vec<Answer>) -> (String, Script) {
    let script = Script::default();
    script.answers.lock().unwrap().extend(answers);
    let app = axum::Router::new()
        .fallback(post(record))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, script)
}

/// The settings from `pairs`, as `portal serve` reads them.
fn config(pairs: &BTreeMap<String, String>) -> GatewayConfig {
    GatewayConfig::from_lookup(|k| pairs.get(k).cloned())
        .unwrap()
        .expect("a gateway")
}

/// A JSON gateway posting to `base` + `/send`, accepted on 2xx.
fn json_settings(base: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("PORTAL_SMS_URL".into(), format!("{base}/send")),
        ("PORTAL_SMS_CONTENT_TYPE".into(), "json".into()),
        (
            "PORTAL_SMS_BODY_TEMPLATE".into(),
            r#"{"to": {{ to }}, "text": {{ text }}, "ref": {{ id }}}"#.into(),
        ),
        (
            "PORTAL_SMS_AUTH_HEADER".into(),
            "Authorization: Bearer t0ken".into(),
        ),
        ("PORTAL_SMS_TIMEOUT".into(), "1".into()),
    ])
}

struct Rig {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    dispatcher: Dispatcher,
}

fn rig_for(config: GatewayConfig) -> Rig {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new());
    let gateway = SmsGateway::new(config, "Kundenportal").unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(gateway),
        clock.clone(),
        DispatcherConfig {
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            ..DispatcherConfig::default()
        },
    )
    .unwrap();
    Rig {
        store,
        clock,
        dispatcher,
    }
}

fn phone_message(language: Language, purpose: PhoneCodePurpose) -> PhoneMessage {
    PhoneMessage {
        to: PhoneNumber::parse("+49 176 12345678").unwrap(),
        channel: PhoneChannel::Sms,
        code: SecretString::new(CODE),
        purpose,
        language,
    }
}

/// Queues one text as a use case would: a message of kind `sms` in a commit.
async fn queue(rig: &Rig, message: PhoneMessage) -> OutboxId {
    let id = OutboxId::from_uuid(uuid::Uuid::from_u128(7));
    let mut commit = Commit::new();
    commit.message(OutboxMessage {
        id,
        created_at: rig.clock.now(),
        payload: Payload::Sms(message),
    });
    rig.store.commit(commit).await.unwrap();
    id
}

async fn entry(rig: &Rig, id: OutboxId) -> portal_core::outbox::OutboxEntry {
    rig.store.outbox_entry(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn an_accepted_text_is_delivered_once_with_its_header_and_its_code_is_erased() {
    let (base, script) = server(vec![Answer::Status(201, r#"{"id":"m1"}"#)]).await;
    let rig = rig_for(config(&json_settings(&base)));
    let id = queue(&rig, phone_message(Language::De, PhoneCodePurpose::Login)).await;
    let report = rig.dispatcher.run_once().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let seen = script.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/send");
    assert_eq!(seen[0].headers["authorization"], "Bearer t0ken");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "to": "+4917612345678",
            "text": format!("Ihr Anmeldecode für Kundenportal: {CODE}"),
            "ref": id.to_string(),
        })
    );
    let e = entry(&rig, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Sent, 1));
    let Payload::Sms(stored) = &e.message.payload else {
        panic!("{e:?}")
    };
    assert_eq!(stored.code.expose(), "", "the delivered row holds no code");
    assert_eq!(rig.dispatcher.run_once().await.unwrap().claimed, 0);
    assert_eq!(script.seen().len(), 1, "sent once");
}

#[tokio::test]
async fn a_5xx_is_retried_after_the_back_off_and_the_retry_delivers_the_same_message() {
    let (base, script) = server(vec![
        Answer::Status(503, "maintenance"),
        Answer::Status(200, "{}"),
    ])
    .await;
    let rig = rig_for(config(&json_settings(&base)));
    let id = queue(
        &rig,
        phone_message(Language::En, PhoneCodePurpose::Enrolment),
    )
    .await;
    let report = rig.dispatcher.run_once().await.unwrap();
    assert_eq!(report.retried, 1, "{report:?}");
    let e = entry(&rig, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 1));
    assert_eq!(
        e.last_error.as_deref(),
        Some("transient: gateway answered 503 Service Unavailable")
    );
    assert_eq!(e.next_attempt_at, rig.clock.now() + TimeDelta::seconds(30));
    assert_eq!(
        rig.dispatcher.run_once().await.unwrap().claimed,
        0,
        "not before the back-off"
    );
    rig.clock.advance(TimeDelta::seconds(30));
    assert_eq!(rig.dispatcher.run_once().await.unwrap().sent, 1);
    assert_eq!(entry(&rig, id).await.status, OutboxStatus::Sent);
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].body, seen[1].body,
        "the same text, with the same id"
    );
}

#[tokio::test]
async fn a_refusal_is_dead_lettered_at_once_without_retries() {
    let (base, script) = server(vec![Answer::Status(
        400,
        r#"{"error":"invalid number","text":"402913"}"#,
    )])
    .await;
    let rig = rig_for(config(&json_settings(&base)));
    let id = queue(&rig, phone_message(Language::De, PhoneCodePurpose::Login)).await;
    let report = rig.dispatcher.run_once().await.unwrap();
    assert_eq!(report.dead, 1, "{report:?}");
    let e = entry(&rig, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Dead, 1));
    assert_eq!(
        e.last_error.as_deref(),
        Some("permanent: gateway answered 400 Bad Request"),
        "the status only, not the answer that echoes the code"
    );
    let dead = rig.store.dead_letters(Some("sms"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.payload.recipient(), "+4917612345678");
    rig.clock.advance(TimeDelta::hours(2));
    assert_eq!(rig.dispatcher.run_once().await.unwrap().claimed, 0);
    assert_eq!(script.seen().len(), 1, "never retried");
}

#[tokio::test]
async fn a_gateway_that_does_not_answer_is_cut_off_by_the_timeout_and_retried() {
    let (base, script) = server(vec![Answer::Hang, Answer::Status(200, "{}")]).await;
    let rig = rig_for(config(&json_settings(&base)));
    let id = queue(
        &rig,
        phone_message(Language::De, PhoneCodePurpose::Recovery),
    )
    .await;
    let report = rig.dispatcher.run_once().await.unwrap();
    assert_eq!(report.retried, 1, "{report:?}");
    assert_eq!(
        entry(&rig, id).await.last_error.as_deref(),
        Some("transient: gateway timed out")
    );
    rig.clock.advance(TimeDelta::seconds(30));
    assert_eq!(rig.dispatcher.run_once().await.unwrap().sent, 1);
    assert_eq!(script.seen().len(), 2);
}

#[tokio::test]
async fn an_unreachable_gateway_is_retried_until_the_attempts_run_out() {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let rig = rig_for(config(&json_settings(&base)));
    let id = queue(&rig, phone_message(Language::De, PhoneCodePurpose::Login)).await;
    for attempt in 1..=3 {
        rig.dispatcher.run_once().await.unwrap();
        let e = entry(&rig, id).await;
        assert_eq!(e.attempts, attempt);
        assert_eq!(
            e.last_error.as_deref(),
            Some("transient: gateway could not connect")
        );
        rig.clock.advance(TimeDelta::hours(1));
    }
    assert_eq!(
        entry(&rig, id).await.status,
        OutboxStatus::Dead,
        "after max_attempts"
    );
}

/// Reads the `# example: {name}` block of `docs/operations.md`: `NAME='value'` lines.
fn documented_example(name: &str) -> BTreeMap<String, String> {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operations.md"
    ))
    .unwrap();
    let marker = format!("# example: {name}\n");
    let start = docs.find(&marker).unwrap_or_else(|| panic!("no {marker}")) + marker.len();
    let block = &docs[start..start + docs[start..].find("```").unwrap()];
    block
        .lines()
        .map(|line| {
            let (k, v) = line.split_once('=').unwrap();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The documented settings with the URL's scheme and host replaced by the local server's.
fn pointed_at(
    mut settings: BTreeMap<String, String>,
    base: &str,
) -> (BTreeMap<String, String>, String) {
    let url = reqwest::Url::parse(&settings["PORTAL_SMS_URL"]).unwrap();
    let path = url.path().to_owned();
    settings.insert("PORTAL_SMS_URL".into(), format!("{base}{path}"));
    (settings, path)
}

#[tokio::test]
async fn examples_twilio_posts_the_documented_form_body_with_basic_authentication() {
    let (base, script) = server(vec![Answer::Status(
        201,
        r#"{"sid":"SM1","status":"queued"}"#,
    )])
    .await;
    let (settings, path) = pointed_at(documented_example("twilio"), &base);
    let rig = rig_for(config(&settings));
    let id = queue(&rig, phone_message(Language::De, PhoneCodePurpose::Login)).await;
    assert_eq!(rig.dispatcher.run_once().await.unwrap().sent, 1);
    assert_eq!(entry(&rig, id).await.status, OutboxStatus::Sent);
    let seen = script.seen();
    assert_eq!(seen[0].path, path);
    assert_eq!(
        seen[0].path,
        "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
    );
    assert_eq!(
        seen[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    // "AC0123456789abcdef0123456789abcdef:your_auth_token", as the docs say to build it.
    assert_eq!(
        seen[0].headers["authorization"],
        "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp5b3VyX2F1dGhfdG9rZW4="
    );
    assert_eq!(
        seen[0].body,
        "To=%2B4917612345678&From=%2B15005550006&Body=Ihr+Anmeldecode+f%C3%BCr+Kundenportal%3A+402913"
    );

    // A 200 is not Twilio's "created": with PORTAL_SMS_SUCCESS_STATUS=201 it is a refusal.
    let (base, _) = server(vec![Answer::Status(200, "{}")]).await;
    let (settings, _) = pointed_at(documented_example("twilio"), &base);
    let rig = rig_for(config(&settings));
    let id = queue(&rig, phone_message(Language::De, PhoneCodePurpose::Login)).await;
    rig.dispatcher.run_once().await.unwrap();
    assert_eq!(entry(&rig, id).await.status, OutboxStatus::Dead);
}

#[tokio::test]
async fn examples_seven_posts_the_documented_json_and_reads_the_success_field() {
    let (base, script) = server(vec![
        Answer::Status(
            200,
            r#"{"success":"100","total_price":0.075,"messages":[]}"#,
        ),
        Answer::Status(200, r#"{"success":"202","messages":[]}"#),
    ])
    .await;
    let (settings, path) = pointed_at(documented_example("seven"), &base);
    let rig = rig_for(config(&settings));
    let id = queue(
        &rig,
        phone_message(Language::En, PhoneCodePurpose::RecoveryChannel),
    )
    .await;
    assert_eq!(rig.dispatcher.run_once().await.unwrap().sent, 1);
    assert_eq!(entry(&rig, id).await.status, OutboxStatus::Sent);
    let seen = script.seen();
    assert_eq!(seen[0].path, path);
    assert_eq!(seen[0].path, "/api/sms");
    assert_eq!(seen[0].headers["x-api-key"], "your-seven-api-key");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(
        seen[0].body,
        r#"{"to": "+4917612345678", "from": "Portal", "text": "Code for your Kundenportal recovery number: 402913"}"#
    );

    // The same 200, but seven.io's code 202 ("invalid recipient"): a refusal, not a delivery.
    let mut commit = Commit::new();
    let second = OutboxId::from_uuid(uuid::Uuid::from_u128(8));
    commit.message(OutboxMessage {
        id: second,
        created_at: rig.clock.now(),
        payload: Payload::Sms(phone_message(Language::En, PhoneCodePurpose::Login)),
    });
    rig.store.commit(commit).await.unwrap();
    assert_eq!(rig.dispatcher.run_once().await.unwrap().dead, 1);
    assert_eq!(
        entry(&rig, second).await.last_error.as_deref(),
        Some("permanent: gateway answered 200 OK: the answer's /success is not 100")
    );
}

/// A writer into a shared buffer, for a subscriber capturing every log line.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_code_is_never_in_the_logs_nor_in_a_recorded_error() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Echoing the code back in every answer, as some providers echo the text.
    let (base, script) = server(vec![
        Answer::Status(503, "text 402913 not sent"),
        Answer::Status(200, r#"{"success":"900","text":"402913"}"#),
    ])
    .await;
    let mut settings = json_settings(&base);
    settings.insert("PORTAL_SMS_SUCCESS_JSON".into(), "/success=100".into());
    let rig = rig_for(config(&settings));
    let id = queue(&rig, phone_message(Language::De, PhoneCodePurpose::Login)).await;
    rig.dispatcher.run_once().await.unwrap();
    let retried = entry(&rig, id).await.last_error;
    rig.clock.advance(TimeDelta::seconds(30));
    rig.dispatcher.run_once().await.unwrap();
    let e = entry(&rig, id).await;
    assert_eq!(e.status, OutboxStatus::Dead);
    assert_eq!(script.seen().len(), 2, "the code went out twice");
    assert!(script.seen()[0].body.contains(CODE));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("dead"), "the dead letter is logged: {logs}");
    assert!(!logs.contains(CODE), "{logs}");
    assert!(!logs.contains("t0ken"), "{logs}");
    for error in [retried, e.last_error] {
        let error = error.expect("an error recorded");
        assert!(!error.contains(CODE), "{error}");
    }
}
