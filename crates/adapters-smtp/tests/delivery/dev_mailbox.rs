//! The development mailbox: a newcomer registers without any SMTP server.

use crate::support::{TempDir, code_in, parse, portal_on, register_cmd, renderer, start_time};
use adapters_memory::MemoryStore;
use adapters_smtp::{Dispatcher, DispatcherConfig, MailDirectory};
use portal_core::session::ClientInfo;
use portal_core::testing::ManualClock;
use portal_core::values::Language;
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
    let dispatcher = Dispatcher::new(
        store.clone(),
        mailbox.clone(),
        renderer(),
        clock,
        DispatcherConfig::default(),
    )
    .unwrap();
    assert_eq!(dispatcher.drain().await.unwrap().sent, 1);
    // A retried mail overwrites its own file rather than adding one.
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
