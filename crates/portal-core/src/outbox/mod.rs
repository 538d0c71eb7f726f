//! The outbox (R21): outgoing messages of several kinds — mail, back-channel logout tokens,
//! password-reset requests the core processes itself behind the answer, and signed event
//! webhooks ([`crate::webhook`]) — written in the same commit as the state change that
//! causes them, and delivered later, at least once, by a dispatcher per kind.
//!
//! * [`Payload`] says what a message carries. Its variants are declared once, by the
//!   `outbox_kinds!` list in `kinds.rs`, which also yields [`OutboxKind`]. A stored message of a
//!   kind this build does not know reads as [`Payload::Unknown`] (a newer process wrote it): it is
//!   never claimed here, never rewritten, and still listed and re-queued like any other.
//! * [`DeliveryRules`] are the delivery rules every kind shares, as pure functions: whether a
//!   claimed message may be started with the lease left, and what a send's outcome makes of it
//!   (sent, retried after exponential back-off, or dead-lettered).
//! * [`Sender`] is the port one kind is delivered through (the mail adapter's renderer and SMTP
//!   transport for [`OutboxKind::Mail`]).
//! * [`OutboxStore`](crate::ports::OutboxStore) is the storage side: claims with leases per kind,
//!   acknowledgements, dead letters; messages enter only through
//!   [`Commit`](crate::ports::Commit), and dead letters are re-queued through one too
//!   ([`Write::RequeueOutbox`](crate::ports::Write::RequeueOutbox), audited as `outbox.requeued`).
//!
//! Adding a kind is: a payload type implementing [`PayloadKind`], one line in `outbox_kinds!`,
//! and a [`Sender`] for it; storage, leases, retries, dead letters and the operator's pages need
//! no change.

mod kinds;
mod rules;

pub use kinds::{
    MailMessage, OutboxKind, PasswordResetRequest, Payload, PayloadError, PayloadKind,
};
pub use rules::{DeliveryRules, Disposition, RetryPolicy, SendError, Start};

use crate::ids::OutboxId;
use crate::mail::OutboxMail;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Id; for mail also the basis of the stable `Message-ID`, so a re-sent mail is recognisable.
    pub id: OutboxId,
    /// Written at.
    pub created_at: DateTime<Utc>,
    /// What it carries, and so its kind.
    pub payload: Payload,
}

impl OutboxMessage {
    /// The mail this message is, if it is one.
    #[must_use]
    pub fn as_mail(&self) -> Option<OutboxMail> {
        match &self.payload {
            Payload::Mail(m) => Some(OutboxMail {
                id: self.id,
                created_at: self.created_at,
                to: m.to.clone(),
                language: m.language,
                intent: m.intent.clone(),
            }),
            _ => None,
        }
    }
}

impl From<OutboxMail> for OutboxMessage {
    fn from(m: OutboxMail) -> Self {
        Self {
            id: m.id,
            created_at: m.created_at,
            payload: Payload::Mail(MailMessage {
                to: m.to,
                language: m.language,
                intent: m.intent,
            }),
        }
    }
}

/// Where a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by a dispatcher until its lease ends.
    Claimed,
    /// Delivered (accepted by the mail server, the receiving endpoint).
    Sent,
    /// Given up after permanent failures or too many attempts; operators can re-queue it.
    Dead,
}

impl OutboxStatus {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "pending" => Some(Self::Pending),
            "claimed" => Some(Self::Claimed),
            "sent" => Some(Self::Sent),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A queued message with its delivery state, as a dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message. After delivery, adapters purge its secret (code or link token).
    pub message: OutboxMessage,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Delivery attempts started so far (a claim starts one).
    pub attempts: u32,
    /// Not to be tried before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// The current claim: only its holder may acknowledge the attempt.
    pub claim: Option<uuid::Uuid>,
    /// The claim's lease: after it, another dispatcher may claim the message again.
    pub claimed_until: Option<DateTime<Utc>>,
    /// The last error, without personal data.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub sent_at: Option<DateTime<Utc>>,
}

impl OutboxEntry {
    /// The message's id.
    #[must_use]
    pub fn id(&self) -> OutboxId {
        self.message.id
    }

    /// The mail, if this entry is one.
    #[must_use]
    pub fn mail(&self) -> Option<OutboxMail> {
        self.message.as_mail()
    }
}

/// How many messages (of every kind) are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Waiting.
    pub pending: u64,
    /// Being sent.
    pub claimed: u64,
    /// Delivered.
    pub sent: u64,
    /// Given up.
    pub dead: u64,
}

/// Delivers the messages of one [`OutboxKind`]: the mail adapter for mail, an HTTP client for
/// back-channel logout tokens, and so on. A dispatcher hands it only messages of its kind.
///
/// Implementations MUST return `Ok` only once the message is handed over for good (the SMTP
/// server accepted the `DATA`, the endpoint answered 2xx), MUST classify failures honestly (a
/// [`SendError::Permanent`] dead-letters the message), and SHOULD bound the time one call can
/// take. They MAY be called again with the same message (at-least-once delivery): its id stays
/// the same, so receivers can recognise a repeat.
#[async_trait]
pub trait Sender: Send + Sync {
    /// The kind this sender delivers.
    fn kind(&self) -> OutboxKind;

    /// Delivers one message of [`Self::kind`].
    ///
    /// # Errors
    /// [`SendError::Transient`] or [`SendError::Permanent`]; a message of another kind is a
    /// permanent error.
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError>;
}

#[async_trait]
impl<T: Sender + ?Sized> Sender for std::sync::Arc<T> {
    fn kind(&self) -> OutboxKind {
        (**self).kind()
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        (**self).send(message).await
    }
}
