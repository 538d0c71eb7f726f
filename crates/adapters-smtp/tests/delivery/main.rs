//! Delivery tests against a real SMTP server: aiosmtpd, started by each test on a free loopback
//! port (`support/scripted_smtp.py`), never lettre's stub transport.
//!
//! * `templates`: every template, both languages, delivered and parsed as MIME.
//! * `transport`: the SMTP URL forms (plain, auth, STARTTLS, implicit TLS) and how failures are
//!   classified.
//! * `dispatcher`: 4xx retried with backoff, 5xx dead-lettered and re-queued, SMTP down during
//!   registration, two dispatchers on one outbox.
//! * `dev_mailbox`: a newcomer registers with the development mailbox, no SMTP server at all;
//!   the code and link log lines; a retried mail overwrites its own file.
//! * `connections`: real sockets that misbehave (a server that never greets, one that stalls
//!   mid-transaction) against the SMTP timeout, and pooling (connections counted by a proxy).
//! * `postgres`: two dispatchers on one Postgres outbox deliver 200 mails exactly once.

mod connections;
mod dev_mailbox;
mod dispatcher;
mod postgres;
mod support;
mod templates;
mod transport;
