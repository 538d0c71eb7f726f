//! The outbox, as mail dispatchers use it (R21).

use super::StoreError;
use crate::ids::OutboxId;
use crate::mail::{OutboxEntry, OutboxStats};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The mail queue, as dispatchers use it (R21). Mails enter it only through [`Committer::commit`](super::Committer::commit).
///
/// Delivery is at least once: a dispatcher claims mails with a lease, sends them, and acknowledges
/// each with its claim id. Implementations MUST never hand the same mail to two claims whose
/// leases overlap (Postgres: `FOR UPDATE SKIP LOCKED`; SQLite: a single-writer transaction), and
/// MUST ignore an acknowledgement whose claim id is no longer the mail's current claim.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` mails that are due at `now` — pending with `next_attempt_at <= now`,
    /// or claimed with a lease that ended — oldest first. Each claimed mail gets status
    /// `Claimed`, the given `claim` id, `claimed_until = lease_until`, and one more attempt.
    async fn claim_outbox(
        &self,
        claim: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// The mail was delivered: status `Sent`, its secret purged. Returns `false` (and changes
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

    /// Dead-lettered mails, newest first.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Puts a dead mail back in the queue, due at `now`, with its attempts reset. Returns
    /// whether the mail was dead.
    async fn requeue(&self, id: OutboxId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// One mail with its delivery state.
    async fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>, StoreError>;

    /// How many mails are in each state.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// Housekeeping: deletes up to `limit` delivered mails sent at or before `sent_before` and
    /// returns how many. Pending, claimed and dead mails are never touched. Not audited (the
    /// audit log records what was sent; a delivered mail holds no secret any more).
    async fn purge_sent(&self, sent_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;
}
