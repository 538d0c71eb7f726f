//! # adapters-smtp
//!
//! Portal's mail side (rule R21: mail is never lost). Use cases in `portal-core` never send mail;
//! they queue an [`OutboxMail`](portal_core::mail::OutboxMail) in the same commit as their state
//! change. This crate delivers those mails:
//!
//! Choosing adapters and wiring them into your own service: `docs/embedding.md`.
//!
//! * [`MailSettings`] and [`MailRenderer`]: the templates, German (default) and English, for
//!   every [`MailIntent`](portal_core::mail::MailIntent), as `multipart/alternative` (plain text
//!   and HTML) with a footer from configuration. Templates are askama, checked at compile time;
//!   HTML escapes every value. Links are built from the configured public base URL only. The
//!   `Message-ID` is derived from the outbox id, so a retried mail is recognisable.
//! * [`MailSender`]: the port a dispatcher hands rendered mails to, with two adapters:
//!   [`SmtpSender`] (lettre, rustls; plain, STARTTLS or implicit TLS, authentication, pooling,
//!   timeouts; configured from one URL, see [`SmtpConfig`]) and [`MailDirectory`] (development:
//!   one `.eml` file per mail and a log line with the code or link).
//! * [`MailDelivery`]: the outbox's [`Sender`](portal_core::outbox::Sender) for the kind `mail`
//!   (renderer, then a [`MailSender`]). The dispatcher that drives it with leases, retries,
//!   backoff, dead letters and a clean shutdown is the `portal-dispatch` crate's, the same for
//!   every kind of outgoing message; this crate does not depend on it.
//!
//! It is not a general mail library: it renders Portal's mails and nothing else, and it never
//! reads request data.
//!
//! ## Example
//!
//! A mail queued by a commit, delivered by a dispatcher into a development mailbox:
//!
//! ```
//! use adapters_memory::MemoryStore;
//! use adapters_smtp::{MailDelivery, MailDirectory, MailRenderer, MailSettings};
//! use portal_dispatch::{Dispatcher, DispatcherConfig};
//! use portal_core::ids::OutboxId;
//! use portal_core::mail::{MailIntent, OutboxMail};
//! use portal_core::ports::{Commit, Committer};
//! use portal_core::values::{EmailAddress, Language};
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let clock = Arc::new(portal_core::testing::ManualClock::new());
//! let mut commit = Commit::new();
//! commit.mail(OutboxMail {
//!     id: OutboxId::from_uuid(uuid::Uuid::from_u128(1)),
//!     created_at: portal_core::ports::Clock::now(&*clock),
//!     to: EmailAddress::parse("anna@example.com")?,
//!     language: Language::De,
//!     intent: MailIntent::Welcome { first_name: "Anna".into() },
//! });
//! store.commit(commit).await?;
//!
//! let settings = MailSettings::new(
//!     "https://portal.example.com",
//!     EmailAddress::parse("do-not-reply@portal.example.com")?,
//! )?
//! .with_support_phone("069 123 456")?;
//! let dir = std::env::temp_dir().join(format!("portal-doc-mail-{}", std::process::id()));
//! let mailbox = Arc::new(MailDirectory::new(&dir)?);
//! let dispatcher = Dispatcher::new(
//!     store.clone(),
//!     Arc::new(MailDelivery::new(MailRenderer::new(settings)?, mailbox.clone())),
//!     clock,
//!     DispatcherConfig::default(),
//! )?;
//!
//! let report = dispatcher.drain().await?;
//! assert_eq!(report.sent, 1);
//! let eml = std::fs::read_to_string(&mailbox.files()?[0])?;
//! assert!(eml.contains("Message-ID: <00000000-0000-0000-0000-000000000001@portal.example.com>"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! In a server, read the configuration with [`MailConfig::from_env`] (variable names in
//! [`config`]), and run a `portal_dispatch::Dispatcher` over a [`MailDelivery`] (`spawn`, then
//! `shutdown`). `docs/operations.md` describes configuration, retries and the dead-letter queue.

pub mod config;
mod delivery;
mod dev;
mod render;
mod sender;
mod settings;
mod smtp;
mod templates;

pub use config::{MailConfig, MailConfigError, MailTransport};
pub use delivery::MailDelivery;
pub use dev::MailDirectory;
pub use render::{MailAction, MailRenderer, RenderError, RenderedMail, message_id, subject};
pub use sender::{MailSender, SendError};
pub use settings::{DEFAULT_PRODUCT_NAME, MAX_TEXT_CHARS, MailSettings, SettingsError};
pub use smtp::{
    DEFAULT_POOL_IDLE, DEFAULT_POOL_MAX, DEFAULT_TIMEOUT, SmtpConfig, SmtpSender, SmtpSetupError,
    SmtpUrlError, TlsMode,
};
