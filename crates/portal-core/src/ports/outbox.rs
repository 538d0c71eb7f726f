//! The outbox, as dispatchers and the operator's dead-letter pages use it (R21).

use super::StoreError;
use crate::ids::OutboxId;
use crate::outbox::{OutboxEntry, OutboxStats};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The queue of outgoing messages of every [kind](crate::outbox::OutboxKind), as dispatchers use
/// it (R21). Messages enter it only through [`Committer::commit`](super::Committer::commit), and
/// dead letters go back into it only through one
/// ([`Write::RequeueOutbox`](super::Write::RequeueOutbox)), audited.
///
/// Delivery is at least once: a dispatcher claims messages of its kind with a lease, sends them,
/// and acknowledges each with its claim id. Implementations MUST never hand the same message to
/// two claims whose leases overlap (Postgres: `FOR UPDATE SKIP LOCKED`; SQLite: a single-writer
/// transaction), MUST ignore an acknowledgement whose claim id is no longer the message's current
/// claim, and MUST keep a message of a kind they cannot read as it was stored
/// ([`Payload::Unknown`](crate::outbox::Payload::Unknown)).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` messages of `kind` (a stable [kind key](crate::outbox::OutboxKind::key))
    /// that are due at `now` — pending with `next_attempt_at <= now`, or claimed with a lease
    /// that ended — oldest first. Messages of other kinds are not touched. Each claimed message
    /// gets status `Claimed`, the given `claim` id, `claimed_until = lease_until`, and one more
    /// attempt.
    async fn claim_outbox(
        &self,
        kind: &str,
        claim: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// The message was delivered: status `Sent`, its secret purged
    /// ([`Payload::purge_secret`](crate::outbox::Payload::purge_secret)). Returns `false` (and changes
    /// nothing) if `claim` is not the mail's current claim.
    async fn mark_sent(
        &self,
        id: OutboxId,
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The attempt failed: back to `Pending` until `retry_at`, or `Dead` when `retry_at` is
    /// `None`. Returns `false` (and changes nothing) if `claim` is not the current claim.
    async fn mark_failed(
        &self,
        id: OutboxId,
        claim: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Gives a claim back unsent (shutdown): `Pending` again, due at once, the attempt not
    /// counted. Returns `false` if `claim` is not the current claim.
    async fn release(&self, id: OutboxId, claim: Uuid) -> Result<bool, StoreError>;

    /// Dead-lettered messages, newest first: of every kind, or of the one with this kind key
    /// (also a kind this build does not know).
    async fn dead_letters<'a>(
        &self,
        kind: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// One message with its delivery state.
    async fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>, StoreError>;

    /// How many messages (of every kind) are in each state.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// Housekeeping: deletes up to `limit` delivered messages sent at or before `sent_before` and
    /// returns how many. Pending, claimed and dead messages are never touched. Not audited (the
    /// audit log records what was sent; a delivered message holds no secret any more).
    async fn purge_sent(&self, sent_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
}
