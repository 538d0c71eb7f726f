//! The development mailbox: a newcomer registers without any SMTP server; link mails log their
//! link; a mail delivered twice (at least once) is one file.

use crate::support::{
    TempDir, code_in, mail_dispatcher, outbox_mail, parse, portal_on, register_cmd, renderer,
    start_time,
};
use adapters_memory::MemoryStore;
use adapters_smtp::{MailDirectory, MailSender};
use chrono::TimeDelta;
use portal_core::mail::{MailIntent, OutboxStatus};
use portal_core::ports::{Clock, Commit, Committer, OutboxStore};
use portal_core::secret::SecretString;
use portal_core::session::ClientInfo;
use portal_core::testing::ManualClock;
use portal_core::values::Language;
use portal_dispatch::DispatcherConfig;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects log output.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_newcomer_registers_with_the_code_from_the_development_mailbox() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = TempDir::new("devmail");
    let mailbox = Arc::new(MailDirectory::new(dir.path().join("mail")).unwrap());
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));
    let portal = portal_on(store.clone(), clock.clone());
    let ticket = portal
        .register(register_cmd("newcomer@example.com", Language::En))
        .await
        .unwrap();
    let dispatcher = mail_dispatcher(
        store.clone(),
        mailbox.clone(),
        renderer(),
        clock,
        DispatcherConfig::default(),
    )
    .unwrap();
    assert_eq!(dispatcher.drain().await.unwrap().sent, 1);
    // One mail, one file (a retried one overwrites it: `a_retried_mail_overwrites_its_own_file`).
    let files = mailbox.files().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = std::fs::read(&files[0]).unwrap();
    let msg = parse(&eml);
    assert_eq!(msg.subject(), Some("Verify your email address"));
    let code = code_in(&eml);

    let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("portal::dev_mail"))
        .unwrap_or_else(|| panic!("no dev mail log line in {log}"));
    assert!(line.contains("newcomer@example.com"), "{line}");
    assert!(line.contains("\"Verify your email address\""), "{line}");
    assert!(line.contains(&format!("code {code}")), "{line}");
    assert!(line.contains(&files[0].display().to_string()), "{line}");
    assert_eq!(
        log.matches(code.as_str()).count(),
        1,
        "only the dev mailbox line shows the code: {log}"
    );

    portal
        .verify_registration(ticket.ticket.expose(), &code, ClientInfo::default())
        .await
        .expect("the code from the mailbox completes the registration");
}

fn capture_logs() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

fn dev_mail_lines(logs: &LogBuffer) -> Vec<String> {
    String::from_utf8(logs.0.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter(|l| l.contains("portal::dev_mail"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn invitation_and_reset_mails_log_their_link() {
    let (logs, _guard) = capture_logs();
    let dir = TempDir::new("devmail-links");
    let mailbox = Arc::new(MailDirectory::new(dir.path()).unwrap());
    let store = Arc::new(MemoryStore::new());
    let invitation = outbox_mail(
        31,
        "invited@example.com",
        Language::De,
        MailIntent::Invitation {
            first_name: "Ina".into(),
            customer_name: "Müller GmbH".into(),
            token: SecretString::new("inv_Tok-en31"),
            valid_days: 7,
        },
    );
    let reset = outbox_mail(
        32,
        "forgot@example.com",
        Language::En,
        MailIntent::PasswordReset {
            first_name: "Fred".into(),
            token: SecretString::new("res_Tok-en32"),
            valid_minutes: 60,
        },
    );
    let mut commit = Commit::new();
    commit.mail(invitation.clone()).mail(reset.clone());
    store.commit(commit).await.unwrap();
    let dispatcher = mail_dispatcher(
        store.clone(),
        mailbox.clone(),
        renderer(),
        Arc::new(ManualClock::at(start_time())),
        DispatcherConfig::default(),
    )
    .unwrap();
    assert_eq!(dispatcher.drain().await.unwrap().sent, 2);

    let lines = dev_mail_lines(&logs);
    assert_eq!(lines.len(), 2, "one line per mail: {lines:?}");
    for (mail, link, subject) in [
        (
            &invitation,
            "https://portal.example.com/invitations/inv_Tok-en31",
            "Einladung zum Portal",
        ),
        (
            &reset,
            "https://portal.example.com/password/reset/res_Tok-en32",
            "Reset your password",
        ),
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(mail.to.as_str()))
            .unwrap_or_else(|| panic!("no line for {}: {lines:?}", mail.to));
        assert!(line.contains(&format!(" link {link} ")), "{line}");
        assert!(!line.contains(" code "), "a link mail has no code: {line}");
        let file = mailbox
            .files()
            .unwrap()
            .into_iter()
            .find(|f| f.display().to_string().contains(&mail.id.to_string()))
            .expect("its file");
        assert!(line.contains(&file.display().to_string()), "{line}");
        let eml = std::fs::read(&file).unwrap();
        let msg = parse(&eml);
        assert!(
            msg.subject().is_some_and(|s| s.contains(subject)),
            "{:?}",
            msg.subject()
        );
        assert!(
            msg.body_text(0).unwrap().contains(link),
            "the logged link is the mail's link"
        );
    }
}

#[tokio::test]
async fn a_retried_mail_overwrites_its_own_file() {
    let (logs, _guard) = capture_logs();
    let dir = TempDir::new("devmail-retry");
    let mailbox = Arc::new(MailDirectory::new(dir.path()).unwrap());
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(start_time()));
    let mail = outbox_mail(
        33,
        "twice@example.com",
        Language::En,
        MailIntent::VerificationCode {
            first_name: "Tom".into(),
            code: SecretString::new("246810"),
            valid_minutes: 15,
        },
    );
    let mut commit = Commit::new();
    commit.mail(mail.clone());
    store.commit(commit).await.unwrap();

    // A first dispatcher claims the mail and delivers it, then dies before recording that.
    let lease = TimeDelta::minutes(5);
    let claimed = store
        .claim_outbox(
            "mail",
            uuid::Uuid::from_u128(1),
            clock.now(),
            clock.now() + lease,
            10,
        )
        .await
        .unwrap();
    let first = renderer().render(&claimed[0].mail().unwrap()).unwrap();
    mailbox.send(&first).await.unwrap();
    let path = mailbox.path_of(&first);
    assert_eq!(mailbox.files().unwrap(), std::slice::from_ref(&path));
    // Mark the file, to see that the retry writes it anew.
    std::fs::write(&path, b"left from the first delivery").unwrap();

    // Its lease runs out; another dispatcher sends the mail again (at least once).
    clock.advance(lease + TimeDelta::seconds(1));
    let dispatcher = mail_dispatcher(
        store.clone(),
        mailbox.clone(),
        renderer(),
        clock.clone(),
        DispatcherConfig::default(),
    )
    .unwrap();
    let r = dispatcher.drain().await.unwrap();
    assert_eq!((r.claimed, r.sent), (1, 1), "{r:?}");
    assert_eq!(
        mailbox.files().unwrap(),
        std::slice::from_ref(&path),
        "one file per outbox entry, however often it is delivered"
    );
    let eml = std::fs::read(&path).unwrap();
    let msg = parse(&eml);
    assert_eq!(
        format!("<{}>", msg.message_id().unwrap()),
        first.message_id(),
        "the same mail, rewritten"
    );
    assert_eq!(code_in(&eml), "246810");
    let e = store.outbox_entry(mail.id).await.unwrap().expect("entry");
    assert_eq!((e.status, e.attempts), (OutboxStatus::Sent, 2));
    assert_eq!(
        dev_mail_lines(&logs).len(),
        2,
        "each delivery is logged, the file is one"
    );
}
