//! The SMTP URL forms against a real server, and how failures are classified.

use crate::support::{Event, ServerOptions, ServerTls, SmtpServer, outbox_mail, parse, renderer};
use adapters_smtp::{MailSender, RenderedMail, SendError, SmtpSender};
use portal_core::mail::MailIntent;
use portal_core::secret::SecretString;
use portal_core::values::Language;

fn code_mail(n: u128, to: &str) -> RenderedMail {
    renderer()
        .render(&outbox_mail(
            n,
            to,
            Language::De,
            MailIntent::VerificationCode {
                first_name: "Anna".into(),
                code: SecretString::new("424242"),
                valid_minutes: 15,
            },
        ))
        .unwrap()
}

fn with_auth(tls: ServerTls) -> ServerOptions {
    ServerOptions {
        auth: Some(("portal@example.com".into(), "s3cr:t p@ss".into())),
        tls,
        ..ServerOptions::default()
    }
}

#[tokio::test]
async fn credentials_from_the_url_are_presented_to_the_server() {
    let mut server = SmtpServer::start_with(with_auth(ServerTls::None)).await;
    let url = format!(
        "smtp://portal%40example.com:s3cr%3At%20p%40ss@127.0.0.1:{}",
        server.port()
    );
    let sender = SmtpSender::from_url(&url).unwrap();
    sender.check().await.expect("server reachable");
    sender
        .send(&code_mail(1, "anna@example.com"))
        .await
        .unwrap();
    let got = server.next_message().await;
    assert_eq!(got.auth.as_deref(), Some("portal@example.com"));
    assert!(!got.tls);
    assert_eq!(got.rcpt_tos, vec!["anna@example.com".to_owned()]);
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_failure() {
    let server = SmtpServer::start_with(with_auth(ServerTls::None)).await;
    let url = format!(
        "smtp://portal%40example.com:wrong@127.0.0.1:{}",
        server.port()
    );
    let sender = SmtpSender::from_url(&url).unwrap();
    let err = sender
        .send(&code_mail(2, "anna@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Permanent(_)), "got {err:?}");
    assert!(!err.to_string().contains("wrong"), "no password in {err}");
}

#[tokio::test]
async fn starttls_with_a_trusted_ca_encrypts_before_authenticating() {
    let mut server = SmtpServer::start_with(with_auth(ServerTls::StartTls)).await;
    let url = format!(
        "smtp://portal%40example.com:s3cr%3At%20p%40ss@127.0.0.1:{}?tls=starttls&ca_file={}",
        server.port(),
        server.cert().unwrap().display()
    );
    let sender = SmtpSender::from_url(&url).unwrap();
    sender
        .send(&code_mail(3, "anna@example.com"))
        .await
        .unwrap();
    let got = server.next_message().await;
    assert!(got.tls, "the mail travelled over TLS");
    assert_eq!(got.auth.as_deref(), Some("portal@example.com"));
    assert!(parse(&got.data).subject().is_some());
}

#[tokio::test]
async fn implicit_tls_from_an_smtps_url() {
    let mut server = SmtpServer::start_with(ServerOptions {
        tls: ServerTls::Implicit,
        ..ServerOptions::default()
    })
    .await;
    let url = format!(
        "smtps://127.0.0.1:{}?ca_file={}",
        server.port(),
        server.cert().unwrap().display()
    );
    let sender = SmtpSender::from_url(&url).unwrap();
    sender
        .send(&code_mail(4, "anna@example.com"))
        .await
        .unwrap();
    assert!(server.next_message().await.tls);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_and_retried_later() {
    let mut server = SmtpServer::start_with(ServerOptions {
        tls: ServerTls::StartTls,
        ..ServerOptions::default()
    })
    .await;
    let url = format!("smtp://127.0.0.1:{}?tls=starttls", server.port());
    let err = SmtpSender::from_url(&url)
        .unwrap()
        .send(&code_mail(5, "anna@example.com"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "got {err:?}");
    assert!(server.pending_events().is_empty(), "nothing was delivered");
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure() {
    let server = SmtpServer::start().await;
    let url = server.url();
    server.stop().await;
    let sender = SmtpSender::from_url(&url).unwrap();
    let err = sender
        .send(&code_mail(6, "anna@example.com"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "got {err:?}");
    assert!(sender.check().await.is_err());
}

#[tokio::test]
async fn replies_4xx_are_transient_and_5xx_permanent_without_the_recipient_in_the_error() {
    let mut server = SmtpServer::start_with(ServerOptions {
        script: vec!["451".into(), "550".into(), "accept".into()],
        ..ServerOptions::default()
    })
    .await;
    let sender = SmtpSender::from_url(&server.url()).unwrap();

    let err = sender
        .send(&code_mail(7, "Anna@Example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Transient(ref m) if m.contains("451")),
        "got {err:?}"
    );
    assert!(matches!(
        server.next_event().await,
        Event::Rejected { code: 451 }
    ));

    let err = sender
        .send(&code_mail(8, "anna@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Permanent(ref m) if m.contains("550")),
        "got {err:?}"
    );
    assert!(
        !err.to_string().to_lowercase().contains("anna@example.com"),
        "the recipient is cut out: {err}"
    );
    assert!(matches!(
        server.next_event().await,
        Event::Rejected { code: 550 }
    ));

    // The pooled connection survives the refusals.
    sender
        .send(&code_mail(9, "anna@example.com"))
        .await
        .unwrap();
    let got = server.next_message().await;
    assert!(String::from_utf8_lossy(&got.data).contains("424242"));
}
