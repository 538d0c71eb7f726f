//! The SMTP timeout and connection pooling on real sockets: a proxy in front of aiosmtpd
//! (`support/proxy.rs`) counts the connections a sender opens, holds connections without a
//! greeting, or stalls a transaction half-way. Each wait is bounded by [`EVENT_TIMEOUT`], a
//! guard against hangs, never a timing assertion.

use crate::support::proxy::{Behaviour, Proxy};
use crate::support::{
    EVENT_TIMEOUT, SmtpServer, code_in, mail_dispatcher, outbox_mail, parse, renderer, start_time,
};
use adapters_memory::MemoryStore;
use adapters_smtp::{MailSender, RenderedMail, SendError, SmtpSender, message_id};
use chrono::TimeDelta;
use portal_core::ids::OutboxId;
use portal_core::mail::{MailIntent, OutboxStatus};
use portal_core::ports::{Commit, Committer, OutboxStore};
use portal_core::secret::SecretString;
use portal_core::testing::ManualClock;
use portal_core::values::Language;
use portal_dispatch::{DispatchReport, DispatcherConfig};
use std::sync::Arc;
use std::time::Duration;

fn code_mail(n: u128) -> portal_core::mail::OutboxMail {
    outbox_mail(
        n,
        &format!("user{n}@example.com"),
        Language::De,
        MailIntent::VerificationCode {
            first_name: "Anna".into(),
            code: SecretString::new(format!("{:06}", 700_000 + n)),
            valid_minutes: 15,
        },
    )
}

fn rendered(n: u128) -> RenderedMail {
    renderer().render(&code_mail(n)).unwrap()
}

/// A sender through the proxy, with the SMTP URL's shortest timeout (1 s).
fn sender_via(proxy: &Proxy) -> SmtpSender {
    SmtpSender::from_url(&format!("smtp://127.0.0.1:{}?timeout=1", proxy.port())).unwrap()
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(EVENT_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

async fn queue(store: &MemoryStore, ns: impl IntoIterator<Item = u128>) -> Vec<OutboxId> {
    let mut commit = Commit::new();
    let mut ids = Vec::new();
    for n in ns {
        let mail = code_mail(n);
        ids.push(mail.id);
        commit.mail(mail);
    }
    store.commit(commit).await.unwrap();
    ids
}

/// The dispatcher's own cut-off is far above the SMTP timeout, so an error from it would say
/// "timed out after 120 s"; the SMTP sender's says "smtp timeout".
fn patient() -> DispatcherConfig {
    DispatcherConfig {
        send_timeout: Duration::from_secs(120),
        lease: Duration::from_secs(600),
        ..DispatcherConfig::default()
    }
}

#[tokio::test]
async fn a_server_that_accepts_but_never_greets_fails_the_send_at_the_smtp_timeout() {
    let proxy = Proxy::start(Behaviour::Silent).await;
    let sender = sender_via(&proxy);
    let err = bounded("send", sender.send(&rendered(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Transient(ref m) if m.contains("smtp timeout")),
        "got {err:?}"
    );
    assert_eq!(
        proxy.accepted(),
        1,
        "the connection was accepted, then nothing"
    );
    let err = bounded("check", sender.check()).await.unwrap_err();
    assert!(err.to_string().contains("smtp timeout"), "got {err:?}");
    assert_eq!(
        proxy.accepted(),
        2,
        "the check tried a connection of its own"
    );
}

#[tokio::test]
async fn a_silent_server_leaves_the_mail_in_the_outbox_until_a_real_server_answers() {
    let proxy = Proxy::start(Behaviour::Silent).await;
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));
    let dispatcher = mail_dispatcher(
        store.clone(),
        Arc::new(sender_via(&proxy)),
        renderer(),
        clock.clone(),
        patient(),
    )
    .unwrap();
    let id = queue(&store, [2]).await[0];

    let r = bounded("drain", dispatcher.drain()).await.unwrap();
    assert_eq!(
        r,
        DispatchReport {
            claimed: 1,
            retried: 1,
            ..DispatchReport::default()
        }
    );
    let e = store.outbox_entry(id).await.unwrap().expect("kept");
    assert_eq!((e.status, e.attempts), (OutboxStatus::Pending, 1));
    let error = e.last_error.unwrap_or_default();
    assert!(
        error.contains("smtp timeout"),
        "the SMTP timeout ended it, not the dispatcher's cut-off: {error}"
    );
    assert_eq!(proxy.accepted(), 1);

    // A real server answers behind the same address; after the backoff the mail goes out.
    let mut server = SmtpServer::start().await;
    proxy.set(Behaviour::Forward {
        port: server.port(),
    });
    clock.advance(TimeDelta::seconds(30));
    let r = bounded("drain", dispatcher.drain()).await.unwrap();
    assert_eq!((r.claimed, r.sent), (1, 1), "{r:?}");
    let got = server.next_message().await;
    assert_eq!(code_in(&got.data), "700002");
    let e = store.outbox_entry(id).await.unwrap().expect("kept");
    assert_eq!((e.status, e.attempts), (OutboxStatus::Sent, 2));
}

#[tokio::test]
async fn a_transaction_stalled_half_way_times_out_and_the_next_mail_gets_a_fresh_connection() {
    let mut server = SmtpServer::start().await;
    let proxy = Proxy::start(Behaviour::StallAfter {
        port: server.port(),
        after: b"MAIL FROM",
    })
    .await;
    let sender = sender_via(&proxy);
    // Greeting and EHLO pass; MAIL FROM never reaches the server.
    let err = bounded("send", sender.send(&rendered(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Transient(ref m) if m.contains("smtp timeout")),
        "got {err:?}"
    );

    // lettre hands the cut-off connection back to its pool from a task it spawned; on this
    // current-thread runtime that task runs before this one resumes from a yield. Then the
    // connection — out of step, a command without its answer — would be the pool's next one.
    tokio::task::yield_now().await;
    // The next mail must not go over it, but over a new connection.
    proxy.set(Behaviour::Forward {
        port: server.port(),
    });
    bounded("send", sender.send(&rendered(4)))
        .await
        .expect("the next mail is delivered");
    assert_eq!(proxy.accepted(), 2, "a fresh connection");
    let got = server.next_message().await;
    assert_eq!(
        format!("<{}>", parse(&got.data).message_id().unwrap()),
        message_id(code_mail(4).id, "portal.example.com"),
        "the stalled mail was never delivered; the next one was"
    );
    assert!(server.pending_events().is_empty());
}

/// Queues 6 and then 2 mails and drains each batch with one dispatcher (on a task, as the server
/// runs it); returns how many connections the proxy saw.
async fn connections_for_eight_mails() -> usize {
    let mut server = SmtpServer::start().await;
    let proxy = Proxy::start(Behaviour::Forward {
        port: server.port(),
    })
    .await;
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));
    let dispatcher = mail_dispatcher(
        store.clone(),
        Arc::new(sender_via(&proxy)),
        renderer(),
        clock.clone(),
        DispatcherConfig::default(),
    )
    .unwrap();
    for (range, n) in [(10..16, 6), (16..18, 2)] {
        queue(&store, range).await;
        let d = dispatcher.clone();
        let r = bounded("drain", tokio::spawn(async move { d.drain().await }))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.sent, n, "{r:?}");
        assert_eq!(server.messages(n).await.len(), n);
    }
    assert_eq!(store.outbox_stats().await.unwrap().sent, 8);
    proxy.accepted()
}

#[tokio::test]
async fn mails_through_one_transport_share_one_pooled_connection() {
    assert_eq!(
        connections_for_eight_mails().await,
        1,
        "eight mails in two rounds over one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mails_share_pooled_connections_on_a_multi_threaded_runtime() {
    // lettre parks a used connection from a task of its own; on several threads that task may
    // still be running when the next mail starts, which then opens a second connection. A
    // sequential sender never needs more: one connection in use, one on its way back.
    let n = connections_for_eight_mails().await;
    assert!((1..=2).contains(&n), "{n} connections for eight mails");
}
