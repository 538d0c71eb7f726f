//! The operator's view of the outbox (R21): dead letters of every kind, and re-queueing one,
//! audited as `outbox.requeued` in the same commit that puts it back.

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::AuditCategory;
use crate::authz::Acting;
use crate::error::InfraError;
use crate::ids::OutboxId;
use crate::outbox::{OutboxEntry, OutboxStatus};
use crate::ports::{Commit, OutboxStore, Write};

/// Most dead letters one listing returns.
pub const MAX_DEAD_LETTERS: u32 = 1000;

/// Longest kind key a filter may name.
const MAX_KIND_CHARS: usize = 40;

/// Why an outbox action failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Operators (and the system) only.
    #[error("operators only")]
    Forbidden,
    /// No such message, or it is not a dead letter (any more).
    #[error("not found")]
    NotFound,
    /// The kind filter is not a kind key (lower-case letters, digits and `_`, at most 40).
    #[error("a kind is lower-case letters, digits and '_', at most 40 characters")]
    InvalidKind,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(OutboxError);

/// Whether `kind` can be a kind key: of this build's kinds, or of a newer process's.
fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_KIND_CHARS
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Portal {
    async fn outbox_operator(&self, actor: &Actor) -> Result<Acting, OutboxError> {
        self.acting_operator(actor)
            .await?
            .ok_or(OutboxError::Forbidden)
    }

    /// Dead letters, newest first: of every kind, or of one kind key (also one this build does
    /// not know, written by a newer process). Active operators and the system only.
    ///
    /// # Errors
    /// Not an operator; a malformed kind; infrastructure failures.
    pub async fn dead_letters(
        &self,
        actor: &Actor,
        outbox: &dyn OutboxStore,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, OutboxError> {
        self.outbox_operator(actor).await?;
        if kind.is_some_and(|k| !valid_kind(k)) {
            return Err(OutboxError::InvalidKind);
        }
        Ok(outbox
            .dead_letters(kind, limit.clamp(1, MAX_DEAD_LETTERS))
            .await?)
    }

    /// Puts a dead letter back in the queue, due now with its attempts reset, and records
    /// `outbox.requeued` (its id, kind and summary; never its recipient or content) in the same
    /// commit. Returns the entry as it was before.
    ///
    /// # Errors
    /// Not an operator; no such message or it is not dead; infrastructure failures.
    pub async fn requeue_outbox(
        &self,
        actor: &Actor,
        outbox: &dyn OutboxStore,
        id: OutboxId,
    ) -> Result<OutboxEntry, OutboxError> {
        self.transact(|| self.plan_requeue(actor, outbox, id)).await
    }

    async fn plan_requeue(
        &self,
        actor: &Actor,
        outbox: &dyn OutboxStore,
        id: OutboxId,
    ) -> Result<Planned<OutboxEntry>, OutboxError> {
        let now = self.now();
        let acting = self.outbox_operator(actor).await?;
        let entry = outbox
            .outbox_entry(id)
            .await?
            .filter(|e| e.status == OutboxStatus::Dead)
            .ok_or(OutboxError::NotFound)?;
        let mut commit = Commit::new();
        if let Acting::User(op) = &acting {
            commit.write(Write::ExpectUser {
                id: op.id(),
                version: op.version(),
            });
        }
        commit.write(Write::RequeueOutbox { id, at: now });
        let payload = &entry.message.payload;
        let mut details = format!("outbox={} kind={}", id, payload.kind_key());
        let summary = payload.summary();
        if !summary.is_empty() {
            details.push_str(&format!(" summary={summary}"));
        }
        commit.audit(self.audit_record(
            now,
            None,
            actor_ref(&acting),
            None,
            AuditCategory::OutboxRequeued,
            details,
        ));
        Ok(Planned::new(commit, entry))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_kind;

    #[test]
    fn kind_keys_are_short_lower_case_words() {
        for ok in ["mail", "backchannel_logout", "webhook2"] {
            assert!(valid_kind(ok), "{ok}");
        }
        for bad in ["", "Mail", "mail'", "a b", "mail;drop", &"x".repeat(41)] {
            assert!(!valid_kind(bad), "{bad}");
        }
    }
}
