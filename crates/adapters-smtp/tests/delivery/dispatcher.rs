//! The dispatcher against a real SMTP server: retries with backoff, dead letters and re-queueing,
//! SMTP down during registration, and two dispatchers sharing one outbox.

use crate::support::{
    Event, ServerOptions, SmtpServer, code_in, mail_dispatcher, outbox_mail, parse, portal_on,
    register_cmd, renderer, start_time,
};
use adapters_memory::MemoryStore;
use adapters_smtp::{MailSender, SmtpSender, message_id};
use chrono::TimeDelta;
use portal_core::ids::OutboxId;
use portal_core::mail::{MailIntent, OutboxEntry, OutboxStatus, RetryPolicy};
use portal_core::ports::{Clock, Commit, Committer, OutboxStore, Write};
use portal_core::secret::SecretString;
use portal_core::session::ClientInfo;
use portal_core::testing::ManualClock;
use portal_core::values::Language;
use portal_dispatch::{Dispatcher, DispatcherConfig};
use std::collections::HashSet;
use std::sync::Arc;

fn script(lines: &[&str]) -> ServerOptions {
    ServerOptions {
        script: lines.iter().map(|s| (*s).to_owned()).collect(),
        ..ServerOptions::default()
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    dispatcher: Dispatcher,
}

fn setup(server: &SmtpServer, config: DispatcherConfig) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));
    let dispatcher = mail_dispatcher(
        store.clone(),
        Arc::new(SmtpSender::from_url(&server.url()).unwrap()),
        renderer(),
        clock.clone(),
        config,
    )
    .unwrap();
    Setup {
        store,
        clock,
        dispatcher,
    }
}

async fn queue_code_mail<S: Committer + ?Sized>(store: &S, n: u128) -> OutboxId {
    let mail = outbox_mail(
        n,
        &format!("user{n}@example.com"),
        Language::De,
        MailIntent::VerificationCode {
            first_name: "Anna".into(),
            code: SecretString::new(format!("{:06}", n % 1_000_000)),
            valid_minutes: 15,
        },
    );
    let id = mail.id;
    let mut commit = Commit::new();
    commit.mail(mail);
    store.commit(commit).await.unwrap();
    id
}

async fn entry(store: &dyn OutboxStore, id: OutboxId) -> OutboxEntry {
    store.outbox_entry(id).await.unwrap().expect("outbox entry")
}

#[tokio::test]
async fn a_server_answering_4xx_is_retried_with_backoff_until_it_accepts() {
    let mut server = SmtpServer::start_with(script(&["451", "451", "451", "accept"])).await;
    let s = setup(&server, DispatcherConfig::default());
    let id = queue_code_mail(&*s.store, 1).await;

    for (attempt, backoff) in [(1, 30), (2, 60), (3, 120)] {
        let r = s.dispatcher.drain().await.unwrap();
        assert_eq!(
            (r.claimed, r.retried, r.sent),
            (1, 1, 0),
            "attempt {attempt}: {r:?}"
        );
        assert!(matches!(
            server.next_event().await,
            Event::Rejected { code: 451 }
        ));
        let e = entry(&*s.store, id).await;
        assert_eq!(e.status, OutboxStatus::Pending);
        assert_eq!(e.attempts, attempt);
        assert_eq!(
            e.next_attempt_at,
            s.clock.now() + TimeDelta::seconds(backoff),
            "exponential backoff"
        );
        assert!(
            e.last_error.as_deref().is_some_and(|m| m.contains("451")),
            "{e:?}"
        );
        assert_eq!(
            s.dispatcher.run_once().await.unwrap().claimed,
            0,
            "not due before its backoff has passed"
        );
        s.clock.advance(TimeDelta::seconds(backoff));
    }

    let r = s.dispatcher.drain().await.unwrap();
    assert_eq!(r.sent, 1, "{r:?}");
    let got = server.next_message().await;
    assert_eq!(
        format!("<{}>", parse(&got.data).message_id().unwrap()),
        message_id(id, "portal.example.com")
    );
    let e = entry(&*s.store, id).await;
    assert_eq!(e.status, OutboxStatus::Sent);
    assert_eq!(e.attempts, 4, "three refusals and the delivery");
    assert_eq!(e.sent_at, Some(s.clock.now()));
    assert!(
        e.mail()
            .unwrap()
            .intent
            .secret()
            .is_some_and(|c| c.expose().is_empty()),
        "code purged"
    );
}

#[tokio::test]
async fn a_5xx_refusal_is_dead_lettered_at_once_by_default() {
    let mut server = SmtpServer::start_with(script(&["550"])).await;
    let s = setup(&server, DispatcherConfig::default());
    let id = queue_code_mail(&*s.store, 2).await;

    let r = s.dispatcher.drain().await.unwrap();
    assert_eq!((r.claimed, r.dead, r.retried), (1, 1, 0), "{r:?}");
    assert!(matches!(
        server.next_event().await,
        Event::Rejected { code: 550 }
    ));
    let e = entry(&*s.store, id).await;
    assert_eq!(e.status, OutboxStatus::Dead);
    assert_eq!(e.attempts, 1, "no retry storm");
    let err = e.last_error.unwrap();
    assert!(err.contains("550"), "{err}");
    assert!(!err.contains("user2@example.com"), "no address in {err}");
    s.clock.advance(TimeDelta::days(1));
    assert_eq!(s.dispatcher.drain().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn a_5xx_server_dead_letters_after_the_configured_attempts_and_requeue_brings_it_back() {
    let mut server = SmtpServer::start_with(script(&["550"])).await;
    let s = setup(
        &server,
        DispatcherConfig {
            permanent_failure_attempts: 2,
            ..DispatcherConfig::default()
        },
    );
    let id = queue_code_mail(&*s.store, 3).await;

    let r = s.dispatcher.drain().await.unwrap();
    assert_eq!((r.retried, r.dead), (1, 0), "{r:?}");
    s.clock.advance(TimeDelta::seconds(30));
    let r = s.dispatcher.drain().await.unwrap();
    assert_eq!((r.retried, r.dead), (0, 1), "{r:?}");
    for _ in 0..2 {
        assert!(matches!(
            server.next_event().await,
            Event::Rejected { code: 550 }
        ));
    }
    let e = entry(&*s.store, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Dead, 2));
    let dead = s.store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id(), id);
    assert_eq!(s.store.outbox_stats().await.unwrap().dead, 1);

    // The operator fixes the cause and re-queues the mail.
    server.script(&["accept"]);
    // (A commit write, as `Portal::requeue_outbox` makes it with its audit record.)
    let mut requeue = Commit::new();
    requeue.write(Write::RequeueOutbox {
        id,
        at: s.clock.now(),
    });
    s.store.commit(requeue).await.unwrap();
    let e = entry(&*s.store, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 0));
    let r = s.dispatcher.drain().await.unwrap();
    assert_eq!(r.sent, 1, "{r:?}");
    let got = server.next_message().await;
    assert_eq!(
        code_in(&got.data),
        "000003",
        "the code survived the dead-letter queue"
    );
    assert_eq!(entry(&*s.store, id).await.status, OutboxStatus::Sent);
    assert!(s.store.dead_letters(None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn transient_failures_end_in_dead_letter_after_the_maximum_attempts() {
    let mut server = SmtpServer::start_with(script(&["451"])).await;
    let s = setup(
        &server,
        DispatcherConfig {
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            ..DispatcherConfig::default()
        },
    );
    let id = queue_code_mail(&*s.store, 4).await;
    let mut dead = 0;
    for _ in 0..3 {
        let r = s.dispatcher.drain().await.unwrap();
        assert_eq!(r.claimed, 1, "{r:?}");
        dead += r.dead;
        assert!(matches!(
            server.next_event().await,
            Event::Rejected { code: 451 }
        ));
        s.clock.advance(TimeDelta::hours(1));
    }
    assert_eq!(dead, 1);
    let e = entry(&*s.store, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Dead, 3));
    assert_eq!(s.dispatcher.drain().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn smtp_down_changes_nothing_for_the_user_and_the_code_arrives_once_it_is_back() {
    let server = SmtpServer::start().await;
    let url = server.url();
    let port = server.stop().await;

    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));
    let portal = portal_on(store.clone(), clock.clone());
    let ticket = portal
        .register(register_cmd("anna@example.com", Language::De))
        .await
        .expect("registration succeeds while SMTP is down");
    portal
        .forgot_password("nobody@example.com")
        .await
        .expect("forgot-password answers as always");
    // Processed behind the answer: an unknown address gets no mail, SMTP or not.
    assert_eq!(
        portal_core::testing::process_reset_requests(&portal, &*store).await,
        1
    );

    // The same use case on an identical portal gives the same answer: SMTP is no input of it.
    let twin = portal_on(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::at(start_time())),
    );
    let twin_ticket = twin
        .register(register_cmd("anna@example.com", Language::De))
        .await
        .unwrap();
    assert_eq!(ticket.ticket.expose(), twin_ticket.ticket.expose());
    assert_eq!(ticket.code_expires_at, twin_ticket.code_expires_at);
    assert_eq!(ticket.resend_available_at, twin_ticket.resend_available_at);

    let dispatcher = mail_dispatcher(
        store.clone(),
        Arc::new(SmtpSender::from_url(&url).unwrap()),
        renderer(),
        clock.clone(),
        DispatcherConfig::default(),
    )
    .unwrap();
    let r = dispatcher.drain().await.unwrap();
    assert_eq!((r.claimed, r.retried, r.sent), (1, 1, 0), "{r:?}");
    let queued = store.outbox();
    assert_eq!(queued.len(), 1);
    let id = queued[0].id;
    let e = entry(&*store, id).await;
    assert_eq!(
        (e.status, e.attempts),
        (OutboxStatus::Pending, 1),
        "kept, not lost"
    );
    assert_eq!(e.next_attempt_at, clock.now() + TimeDelta::seconds(30));
    assert!(e.last_error.is_some());
    assert_eq!(
        dispatcher.run_once().await.unwrap().claimed,
        0,
        "waits for its backoff"
    );

    // The server comes back where it was; the retry delivers the code.
    let mut server = SmtpServer::start_with(ServerOptions {
        port: Some(port),
        ..ServerOptions::default()
    })
    .await;
    clock.advance(TimeDelta::seconds(30));
    let r = dispatcher.drain().await.unwrap();
    assert_eq!(r.sent, 1, "{r:?}");
    let got = server.next_message().await;
    assert_eq!(got.rcpt_tos, vec!["anna@example.com".to_owned()]);
    assert_eq!(
        parse(&got.data).subject(),
        Some("Verifizieren Sie Ihre E-Mail-Adresse")
    );
    assert!(
        !String::from_utf8_lossy(&got.data).contains(crate::support::PASSWORD),
        "the password never reaches a mail"
    );
    let code = code_in(&got.data);
    portal
        .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
        .await
        .expect("the mailed code completes the registration");
    let e = entry(&*store, id).await;
    assert_eq!((e.status, e.attempts), (OutboxStatus::Sent, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_memory_outbox_deliver_every_mail_exactly_once() {
    let store = Arc::new(MemoryStore::new());
    two_dispatchers_deliver_every_mail_exactly_once(store.clone(), store, 200).await;
}

/// Queues `count` mails through `store`, drains them with two dispatchers running at once, one
/// on `store` and one on `other` (the same outbox through a second handle, e.g. a second
/// connection pool, as a second server process would have; each dispatcher also has its own SMTP
/// connection pool), and checks that the SMTP server received every mail exactly once. Shared by
/// the memory, Postgres and SQLite variants.
pub async fn two_dispatchers_deliver_every_mail_exactly_once<S>(
    store: Arc<S>,
    other: Arc<S>,
    count: usize,
) where
    S: OutboxStore + Committer + 'static,
{
    let mut server = SmtpServer::start().await;
    let clock = Arc::new(ManualClock::at(start_time()));
    let mut expected = HashSet::new();
    let ids: Vec<u128> = (1..=count as u128).collect();
    for chunk in ids.chunks(50) {
        let mut commit = Commit::new();
        for &n in chunk {
            let language = if n.is_multiple_of(2) {
                Language::En
            } else {
                Language::De
            };
            let mail = outbox_mail(
                n,
                &format!("user{n}@example.com"),
                language,
                MailIntent::VerificationCode {
                    first_name: format!("User {n}"),
                    code: SecretString::new(format!("{n:06}")),
                    valid_minutes: 15,
                },
            );
            expected.insert(message_id(mail.id, "portal.example.com"));
            commit.mail(mail);
        }
        store.commit(commit).await.unwrap();
    }

    let config = DispatcherConfig {
        batch_size: 7,
        ..DispatcherConfig::default()
    };
    let dispatcher = |on: Arc<S>| {
        mail_dispatcher(
            on,
            Arc::new(SmtpSender::from_url(&server.url()).unwrap()),
            renderer(),
            clock.clone(),
            config,
        )
        .unwrap()
    };
    let (a, b) = (dispatcher(store.clone()), dispatcher(other));
    let a = tokio::spawn(async move { a.drain().await });
    let b = tokio::spawn(async move { b.drain().await });
    let ra = a.await.unwrap().unwrap();
    let rb = b.await.unwrap().unwrap();
    assert_eq!(ra.sent + rb.sent, count, "{ra:?} {rb:?}");
    assert_eq!(
        ra.claimed + rb.claimed,
        count,
        "no mail claimed twice: {ra:?} {rb:?}"
    );
    assert!(ra.sent > 0 && rb.sent > 0, "both took part: {ra:?} {rb:?}");
    assert_eq!(ra.unacknowledged + rb.unacknowledged, 0);

    // A sentinel sent after both finished: the server handles transactions in order, so every
    // message either dispatcher sent (duplicates included) is reported before it.
    let sentinel = renderer()
        .render(&outbox_mail(
            u128::from(u32::MAX),
            "sentinel@example.com",
            Language::De,
            MailIntent::Welcome {
                first_name: "Sentinel".into(),
            },
        ))
        .unwrap();
    SmtpSender::from_url(&server.url())
        .unwrap()
        .send(&sentinel)
        .await
        .unwrap();
    let mut seen = HashSet::new();
    loop {
        let got = server.next_message().await;
        let id = format!("<{}>", parse(&got.data).message_id().unwrap());
        if id == sentinel.message_id() {
            break;
        }
        assert!(seen.insert(id.clone()), "{id} delivered twice");
    }
    assert_eq!(seen.len(), count);
    assert_eq!(seen, expected);
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.sent, stats.pending, stats.claimed),
        (count as u64, 0, 0)
    );
}
