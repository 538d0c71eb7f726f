//! The transport port of mail delivery: hand over one rendered mail, learn whether it was
//! accepted, and if not, whether trying again can help.

use crate::render::RenderedMail;
use async_trait::async_trait;
use std::sync::Arc;

/// A failed hand-over: the outbox's [`SendError`](portal_core::outbox::SendError), shared by
/// every kind. Its message never holds the recipient's address or the mail's code or link, so it
/// can be logged and stored as the outbox entry's `last_error`.
pub use portal_core::outbox::SendError;

/// Delivers rendered mails: SMTP ([`SmtpSender`](crate::SmtpSender)), a development mailbox
/// directory ([`MailDirectory`](crate::MailDirectory)), or a test double. [`MailDelivery`](crate::MailDelivery)
/// renders the outbox's mails and hands them to one.
///
/// Implementations MUST return `Ok` only once the mail is handed over for good (the SMTP server
/// accepted the `DATA`, the file is in place), MUST classify failures honestly (a
/// [`SendError::Permanent`] dead-letters the mail), and SHOULD bound the time one call can take.
/// They MAY be called again with the same mail (at-least-once delivery): the mail's
/// `Message-ID` stays the same.
#[async_trait]
pub trait MailSender: Send + Sync {
    /// Delivers one mail.
    ///
    /// # Errors
    /// [`SendError::Transient`] or [`SendError::Permanent`].
    async fn send(&self, mail: &RenderedMail) -> Result<(), SendError>;
}

#[async_trait]
impl<T: MailSender + ?Sized> MailSender for Arc<T> {
    async fn send(&self, mail: &RenderedMail) -> Result<(), SendError> {
        (**self).send(mail).await
    }
}
