//! Housekeeping: removing rows nothing can use any more, so tables of sessions, codes, links,
//! counters and delivered mail do not grow without bound.
//!
//! The cut-offs are documented on [`Portal::housekeeping`].

use super::{Planned, Portal};
use crate::audit::{ActorRef, AuditCategory};
use crate::ports::{Commit, Expired, OutboxStore, StaleUsers, StoreError, Write};
use crate::user::AccountState;
use chrono::{DateTime, TimeDelta, Utc};
use std::future::Future;

/// `now - by`, or the earliest time there is.
fn ago(now: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    now.checked_sub_signed(by)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Repeats a batch purge until a batch comes back short; returns the rows removed in all.
async fn drain<F, Fut>(batch: u32, mut purge: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let n = purge().await?;
        total += n;
        if n < u64::from(batch) {
            return Ok(total);
        }
    }
}

/// How many rows one [`Portal::housekeeping`] run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    /// Expired sessions (logged in, MFA half-way, remembered devices).
    pub sessions: u64,
    /// Mailed-code attempts past their lifetime.
    pub challenges: u64,
    /// Invitation and reset links past their expiry.
    pub action_tokens: u64,
    /// Rate counters past their reset.
    pub counters: u64,
    /// Delivered mails past their retention.
    pub sent_mail: u64,
    /// OIDC codes and tokens past their expiry.
    pub oidc_tokens: u64,
    /// Passkey ceremonies' challenges past their expiry.
    pub passkey_challenges: u64,
    /// Change-log entries past `audit_retention` (none unless it is set).
    pub audit_entries: u64,
    /// Registrations never confirmed, past `pending_registration_retention` (audited).
    pub pending_registrations: u64,
    /// Invited users who never accepted, past `invitation_retention` (audited).
    pub invitations: u64,
}

impl HousekeepingReport {
    /// Rows removed in all.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.sessions
            + self.challenges
            + self.action_tokens
            + self.counters
            + self.sent_mail
            + self.oidc_tokens
            + self.passkey_challenges
            + self.audit_entries
            + self.pending_registrations
            + self.invitations
    }

    fn add(&mut self, kind: Expired, n: u64) {
        let slot = match kind {
            Expired::Sessions => &mut self.sessions,
            Expired::Challenges => &mut self.challenges,
            Expired::ActionTokens => &mut self.action_tokens,
            Expired::Counters => &mut self.counters,
            Expired::OidcTokens => &mut self.oidc_tokens,
            Expired::PasskeyChallenges => &mut self.passkey_challenges,
            Expired::AuditEntries => &mut self.audit_entries,
        };
        *slot += n;
    }
}

impl std::fmt::Display for HousekeepingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sessions={} challenges={} action_tokens={} counters={} sent_mail={} oidc_tokens={} \
             audit_entries={} pending_registrations={} invitations={} passkey_challenges={}",
            self.sessions,
            self.challenges,
            self.action_tokens,
            self.counters,
            self.sent_mail,
            self.oidc_tokens,
            self.audit_entries,
            self.pending_registrations,
            self.invitations,
            self.passkey_challenges
        )
    }
}

impl Portal {
    /// The cut-off for `kind` at `now`: rows of that kind dead at it are safe to delete.
    #[must_use]
    pub fn housekeeping_cutoff(&self, kind: Expired, now: DateTime<Utc>) -> DateTime<Utc> {
        let c = &self.config;
        let grace = c.housekeeping.grace;
        // Challenges and the hourly caps count back one hour; an accepted invitation keeps its
        // (expired) link alive while the code mailed on acceptance lives.
        let attempts = c.pending_registration_ttl.max(TimeDelta::hours(1));
        let keep = match kind {
            Expired::Sessions => grace,
            Expired::Challenges => attempts + grace,
            // A link answers "expired" or "used" (not "unknown") for as long as delivered mails
            // are kept, 30 days by default; once purged it answers like a link never issued.
            Expired::ActionTokens => (attempts + grace).max(c.housekeeping.sent_mail_retention),
            Expired::Counters => c.longest_counter_lifetime() + grace,
            // Expired codes and tokens answer like unknown ones.
            Expired::OidcTokens => grace,
            // An expired challenge answers like an unknown one.
            Expired::PasskeyChallenges => grace,
            // Kept forever unless a retention is set.
            Expired::AuditEntries => match c.housekeeping.audit_retention {
                Some(keep) => keep,
                None => return DateTime::<Utc>::MIN_UTC,
            },
        };
        ago(now, keep)
    }

    /// Removes expired sessions, challenges, link tokens and counters, and delivered mail past
    /// its retention, in batches of
    /// [`HousekeepingPolicy::batch_size`](crate::config::HousekeepingPolicy::batch_size) (each
    /// its own short transaction) until none is left. Safe to run from several processes at
    /// once and at any time: every cut-off lies past the last moment a rule reads the row. The
    /// server runs it periodically; embedders call it from a timer of their own.
    ///
    /// Each kind gets a cut-off past every rule that still reads its rows, plus
    /// [`HousekeepingPolicy::grace`](crate::config::HousekeepingPolicy::grace):
    ///
    /// | Kind | Dead when | Read by |
    /// |---|---|---|
    /// | sessions | idle or absolute expiry ≤ now − grace | the per-request check (refuses it at expiry), the session list |
    /// | challenges | started ≤ now − `pending_registration_ttl` − grace | tickets (dead after `pending_registration_ttl`), the hourly cap of code mails per address |
    /// | link tokens | expiry ≤ now − max(`pending_registration_ttl` + grace, `sent_mail_retention`) | links (dead at expiry, but answering "expired" / "used" rather than "unknown"), an invitation accepted just in time until its code is confirmed, the hourly cap of reset mails |
    /// | counters | last event ≤ now − the longest `reset_after` or send window − grace | throttles and send budgets (a counter older than its `reset_after` starts again at 1) |
    /// | delivered mail | sent ≤ now − `sent_mail_retention` | operators looking up a delivery |
    ///
    /// No rule changes its decision, so purges are not audited (see docs/security.md); the
    /// report says how many rows went. The one visible difference: a link purged 30 days after
    /// its expiry answers like an unknown link instead of "expired" or "used".
    ///
    /// # Errors
    /// Storage failures; what was deleted before stays deleted (there is nothing to undo).
    pub async fn housekeeping(
        &self,
        outbox: &dyn OutboxStore,
    ) -> Result<HousekeepingReport, StoreError> {
        let now = self.now();
        let batch = self.config.housekeeping.batch_size;
        let mut report = HousekeepingReport::default();
        for kind in Expired::ALL {
            let cutoff = self.housekeeping_cutoff(kind, now);
            let committer = &self.deps.committer;
            let n = drain(batch, || committer.purge_expired(kind, cutoff, batch)).await?;
            report.add(kind, n);
        }
        let sent_before = ago(now, self.config.housekeeping.sent_mail_retention);
        report.sent_mail = drain(batch, || outbox.purge_sent(sent_before, batch)).await?;
        if self.config.housekeeping.audit_retention.is_some() {
            let cutoff = self.housekeeping_cutoff(Expired::AuditEntries, now);
            let committer = &self.deps.committer;
            report.audit_entries = drain(batch, || {
                committer.purge_expired(Expired::AuditEntries, cutoff, batch)
            })
            .await?;
        }
        report.pending_registrations = self
            .purge_stale_users(
                StaleUsers::PendingRegistrations,
                ago(now, self.config.housekeeping.pending_registration_retention),
            )
            .await?;
        report.invitations = self
            .purge_stale_users(
                StaleUsers::Invitations,
                ago(now, self.config.housekeeping.invitation_retention),
            )
            .await?;
        // Signing keys rotate by schedule once the provider has one (the first is made when
        // the first token is signed); a server without a sealing key has no provider.
        if !self.deps.queries.signing_keys().await?.is_empty() {
            match self
                .rotate_signing_key_if_due(crate::oidc::KEY_ROTATION_AGE)
                .await
            {
                Ok(_) | Err(super::OidcAdminError::NoSealingKey) => {}
                Err(super::OidcAdminError::Infra(crate::error::InfraError::Store(e))) => {
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        Ok(report)
    }

    /// Removes the users of `kind` dead at `cutoff`, each in its own commit with a
    /// [`AuditCategory::UserPurged`] entry (in the customer's log for an invitation, the global
    /// one for a registration); a user whose state changed meanwhile is left alone. Returns how
    /// many went.
    async fn purge_stale_users(
        &self,
        kind: StaleUsers,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let batch = self.config.housekeeping.batch_size;
        let mut removed = 0;
        loop {
            let found = self.deps.queries.stale_users(kind, cutoff, batch).await?;
            let mut gone = 0;
            for user in &found {
                let id = user.id();
                let done = self
                    .transact(|| async {
                        // Decided again on the stored row: the user may have confirmed or
                        // accepted, or been invited again, since the list was read.
                        let Some(user) = self.deps.queries.user(id).await? else {
                            return Ok::<_, StoreError>(Planned::new(Commit::new(), false));
                        };
                        if !self.is_stale(&user, kind, cutoff).await? {
                            return Ok(Planned::new(Commit::new(), false));
                        }
                        let what = match kind {
                            StaleUsers::PendingRegistrations => "pending_registration",
                            StaleUsers::Invitations => "invitation",
                        };
                        let now = self.now();
                        let mut commit = Commit::new();
                        commit.audit(self.audit_record(
                            now,
                            user.customer_id(),
                            ActorRef::system(),
                            Some(id),
                            AuditCategory::UserPurged,
                            format!("retention={what}"),
                        ));
                        commit.write(Write::DeleteUser(user));
                        Ok(Planned::new(commit, true))
                    })
                    .await?;
                if done {
                    gone += 1;
                }
            }
            removed += gone;
            // A short page, or a page of which nothing could go (changed meanwhile): done.
            if found.len() < batch as usize || gone == 0 {
                return Ok(removed);
            }
        }
    }

    /// Whether `user` is of `kind` and dead at `cutoff` (the rule of [`StaleUsers`]).
    async fn is_stale(
        &self,
        user: &crate::user::User,
        kind: StaleUsers,
        cutoff: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let rec = user.record();
        if rec.created_at > cutoff {
            return Ok(false);
        }
        Ok(match kind {
            StaleUsers::PendingRegistrations => rec.state == AccountState::PendingVerification,
            StaleUsers::Invitations => {
                rec.state == AccountState::Invited
                    && self
                        .deps
                        .queries
                        .action_tokens_of_user(user.id(), crate::token::TokenPurpose::Invitation)
                        .await?
                        .iter()
                        .all(|t| t.record().expires_at <= cutoff)
            }
        })
    }
}
