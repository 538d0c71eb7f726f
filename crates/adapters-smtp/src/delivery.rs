//! The mail kind's [`Sender`]: renders an outbox message of kind `mail` and hands it to a
//! [`MailSender`] (SMTP or the development mailbox). A dispatcher of the `portal-dispatch` crate
//! drives it with the outbox's leases, retries and dead letters.

use crate::render::MailRenderer;
use crate::sender::MailSender;
use async_trait::async_trait;
use portal_core::outbox::{OutboxKind, OutboxMessage, SendError, Sender};
use std::sync::Arc;

/// Delivers the outbox's mails: [`MailRenderer`] then [`MailSender`].
#[derive(Clone)]
pub struct MailDelivery {
    renderer: Arc<MailRenderer>,
    sender: Arc<dyn MailSender>,
}

impl std::fmt::Debug for MailDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailDelivery").finish_non_exhaustive()
    }
}

impl MailDelivery {
    /// Renders with `renderer`, sends through `sender`.
    #[must_use]
    pub fn new(renderer: MailRenderer, sender: Arc<dyn MailSender>) -> Self {
        Self {
            renderer: Arc::new(renderer),
            sender,
        }
    }
}

#[async_trait]
impl Sender for MailDelivery {
    fn kind(&self) -> OutboxKind {
        OutboxKind::Mail
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let Some(mail) = message.as_mail() else {
            return Err(SendError::Permanent(format!(
                "not a mail: kind {}",
                message.payload.kind_key()
            )));
        };
        let rendered = self
            .renderer
            .render(&mail)
            .map_err(|e| SendError::Permanent(format!("render: {e}")))?;
        self.sender.send(&rendered).await
    }
}
