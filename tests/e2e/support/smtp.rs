//! A real SMTP server per test: aiosmtpd (`smtp_sink.py` beside this file) on a free loopback
//! port, accepting every message and reporting it as a JSON line that the harness parses into a
//! [`Mail`].
//!
//! Tests take mails by recipient and subject ([`SmtpSink::expect`]); a taken mail is never handed
//! out again, so a test cannot read a stale code twice. [`SmtpSink::all`] keeps every message ever
//! received, for counting.

use super::mail::Mail;
use super::{DEADLINE, python_path};
use base64::Engine as _;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A running aiosmtpd.
pub struct SmtpSink {
    child: Child,
    port: u16,
    incoming: mpsc::UnboundedReceiver<Mail>,
    received: Vec<Mail>,
    taken: Vec<bool>,
}

impl SmtpSink {
    /// Starts the server and waits until it listens.
    pub async fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&script)
            .env("PYTHONPATH", python_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3 smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                match v["event"].as_str() {
                    Some("ready") => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(v["port"].as_u64().expect("port") as u16);
                        }
                    }
                    Some("message") => {
                        let data = base64::engine::general_purpose::STANDARD
                            .decode(v["data_b64"].as_str().unwrap_or_default())
                            .expect("base64 from the SMTP server");
                        let rcpt_tos = v["rcpt_tos"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect();
                        let defects = v["defects"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect();
                        let mail = Mail::parse(
                            v["mail_from"].as_str().unwrap_or_default(),
                            rcpt_tos,
                            data,
                            defects,
                        );
                        if tx.send(mail).is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        });
        let port = tokio::time::timeout(DEADLINE, ready_rx)
            .await
            .expect("the SMTP server did not start in time")
            .expect("the SMTP server exited before it was ready (is aiosmtpd installed? run scripts/test-deps)");
        Self {
            child,
            port,
            incoming,
            received: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// `SMTP_URL` for the server.
    pub fn url(&self) -> String {
        self.url_with_timeout(10)
    }

    /// `SMTP_URL` for the server with another delivery timeout (seconds).
    pub fn url_with_timeout(&self, seconds: u32) -> String {
        format!("smtp://127.0.0.1:{}?timeout={seconds}", self.port)
    }

    fn pull_ready(&mut self) {
        while let Ok(m) = self.incoming.try_recv() {
            self.push(m);
        }
    }

    fn push(&mut self, m: Mail) {
        assert!(
            m.defects.is_empty(),
            "Python's parser found defects {:?} in the mail to {:?} \"{}\"",
            m.defects,
            m.to,
            m.subject
        );
        self.received.push(m);
        self.taken.push(false);
    }

    /// Waits for the first mail not taken yet that matches `pred`, takes it and returns it.
    pub async fn take(&mut self, what: &str, pred: impl Fn(&Mail) -> bool) -> Mail {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut checked = 0;
        loop {
            self.pull_ready();
            for i in checked..self.received.len() {
                if !self.taken[i] && pred(&self.received[i]) {
                    self.taken[i] = true;
                    return self.received[i].clone();
                }
            }
            // Taken flags only ever go from false to true, so earlier mails need no second look.
            checked = self.received.len();
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(m)) => self.push(m),
                Ok(None) => panic!("the SMTP server stopped while waiting for {what}"),
                Err(_) => panic!(
                    "no mail {what} within {DEADLINE:?}; received so far:\n{}",
                    self.summary()
                ),
            }
        }
    }

    /// Waits for the next mail to `to` whose subject contains `subject`, and takes it.
    pub async fn expect(&mut self, to: &str, subject: &str) -> Mail {
        let to_lower = to.to_lowercase();
        self.take(
            &format!("to {to} with subject containing {subject:?}"),
            |m| m.is_to(&to_lower) && m.subject.contains(subject),
        )
        .await
    }

    /// Every mail received so far, taken or not (also those still in the pipe).
    pub fn all(&mut self) -> &[Mail] {
        self.pull_ready();
        &self.received
    }

    /// Mails received but never taken.
    pub fn untaken(&mut self) -> Vec<&Mail> {
        self.pull_ready();
        self.received
            .iter()
            .zip(&self.taken)
            .filter(|(_, t)| !**t)
            .map(|(m, _)| m)
            .collect()
    }

    /// One line per received mail, for failure messages.
    pub fn summary(&self) -> String {
        self.received
            .iter()
            .zip(&self.taken)
            .map(|(m, t)| {
                format!(
                    "  {} {:?} \"{}\" {}",
                    if *t { "taken" } else { "     " },
                    m.to,
                    m.subject,
                    m.message_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A received-mail list many tasks can wait on at once (the load tests' clients each wait for
/// their own codes): [`SmtpSink::into_inbox`] hands the server and every mail it received over
/// to a task that keeps appending.
#[derive(Clone)]
pub struct Inbox {
    mails: std::sync::Arc<std::sync::Mutex<Vec<Mail>>>,
    count: tokio::sync::watch::Receiver<usize>,
    server: std::sync::Arc<tokio::sync::Mutex<Option<Child>>>,
}

impl SmtpSink {
    /// Turns the sink into a shared [`Inbox`] holding every mail received so far (taken or not).
    pub fn into_inbox(mut self) -> Inbox {
        self.pull_ready();
        let mails = std::sync::Arc::new(std::sync::Mutex::new(std::mem::take(&mut self.received)));
        let (count_tx, count) = tokio::sync::watch::channel(mails.lock().unwrap().len());
        let Self {
            child,
            mut incoming,
            ..
        } = self;
        let sink = mails.clone();
        tokio::spawn(async move {
            while let Some(m) = incoming.recv().await {
                assert!(
                    m.defects.is_empty(),
                    "Python's parser found defects {:?} in the mail to {:?} \"{}\"",
                    m.defects,
                    m.to,
                    m.subject
                );
                let n = {
                    let mut all = sink.lock().unwrap();
                    all.push(m);
                    all.len()
                };
                count_tx.send_replace(n);
            }
        });
        Inbox {
            mails,
            count,
            server: std::sync::Arc::new(tokio::sync::Mutex::new(Some(child))),
        }
    }
}

impl Inbox {
    /// Waits (up to [`DEADLINE`]) for a mail matching `pred` among all received, and returns the
    /// newest such mail.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Mail) -> bool) -> Mail {
        let mut count = self.count.clone();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            count.borrow_and_update();
            if let Some(m) = self.mails.lock().unwrap().iter().rev().find(|m| pred(m)) {
                return m.clone();
            }
            match tokio::time::timeout_at(deadline, count.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("the SMTP server stopped while waiting for {what}"),
                Err(_) => panic!("no mail {what} within {DEADLINE:?}"),
            }
        }
    }

    /// Waits (up to `within`) until `done` holds for the list of all mails; `false` if it never
    /// did.
    pub async fn wait_until(
        &self,
        within: std::time::Duration,
        done: impl Fn(&[Mail]) -> bool,
    ) -> bool {
        let mut count = self.count.clone();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            count.borrow_and_update();
            if done(&self.mails.lock().unwrap()) {
                return true;
            }
            if !matches!(
                tokio::time::timeout_at(deadline, count.changed()).await,
                Ok(Ok(()))
            ) {
                return false;
            }
        }
    }

    /// Every mail received so far.
    pub fn all(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Stops the server.
    pub async fn stop(&self) {
        if let Some(mut child) = self.server.lock().await.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}
