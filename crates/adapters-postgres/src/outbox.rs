//! The outbox for dispatchers, one kind per claim. Claims run in a write transaction: on Postgres
//! the due rows are selected `FOR UPDATE SKIP LOCKED`, so several dispatchers claim disjoint
//! messages without waiting for each other; on SQLite the transaction is the only writer
//! (`BEGIN IMMEDIATE`). Re-queueing a dead letter is a [`Write`](portal_core::ports::Write) of a
//! commit (`commit.rs`), audited with it.

use crate::entity::outbox;
use crate::rows::{self, micros};
use crate::store::{SqlStore, corrupt, db_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_core::ids::OutboxId;
use portal_core::outbox::{OutboxEntry, OutboxStats, OutboxStatus};
use portal_core::ports::{OutboxStore, StoreError};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// How much of a delivery error is kept (it is shown to operators, not parsed).
const ERROR_CHARS: usize = 500;

/// Each count of [`OutboxStore::outbox_stats`] stops here: a status with more mails reads as
/// exactly this many. The outbox keeps delivered mails for weeks (until housekeeping removes
/// them), so an exact count would read a large table; a capped one reads at most this many rows per status. Health
/// checks and dashboards want "is anything stuck", which the capped counts answer.
pub const OUTBOX_STATS_CAP: u64 = 10_000;

/// The predicate of the partial index `outbox_open_idx`, verbatim: SQLite's planner uses a
/// partial index only for a query that contains its `WHERE` term as written.
fn open_states_sql() -> String {
    format!(
        "status IN ('{}', '{}')",
        OutboxStatus::Pending.key(),
        OutboxStatus::Claimed.key()
    )
}

fn claimed_by(id: OutboxId, claim: Uuid) -> Condition {
    Condition::all()
        .add(outbox::Column::Id.eq(id.as_uuid()))
        .add(outbox::Column::Claim.eq(claim))
        .add(outbox::Column::Status.eq(OutboxStatus::Claimed.key()))
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn claim_outbox(
        &self,
        kind: &str,
        claim: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = micros(now);
        let lease_until = micros(lease_until);
        let _turn = self.write_turn().await;
        let tx = self.begin_write().await?;
        let result = async {
            // The open-states term lets SQLite walk `outbox_open_idx` instead of every
            // delivered mail (Postgres infers it from the branches anyway).
            let due = Condition::all()
                .add(Expr::cust(open_states_sql()))
                .add(outbox::Column::Kind.eq(kind))
                .add(
                    Condition::any()
                        .add(
                            Condition::all()
                                .add(outbox::Column::Status.eq(OutboxStatus::Pending.key()))
                                .add(outbox::Column::NextAttemptAt.lte(now)),
                        )
                        .add(
                            Condition::all()
                                .add(outbox::Column::Status.eq(OutboxStatus::Claimed.key()))
                                .add(outbox::Column::ClaimedUntil.lte(now)),
                        ),
                );
            // SQLite has no row locks; sea-query leaves the clause out there, and the
            // IMMEDIATE transaction already excludes every other writer.
            let rows = outbox::Entity::find()
                .filter(due)
                .order_by_asc(outbox::Column::Seq)
                .limit(u64::from(limit))
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .all(&tx)
                .await
                .map_err(db_err)?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::Status,
                    Expr::value(OutboxStatus::Claimed.key()),
                )
                .col_expr(outbox::Column::Claim, Expr::value(Some(claim)))
                .col_expr(outbox::Column::ClaimedUntil, Expr::value(Some(lease_until)))
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .filter(outbox::Column::Seq.is_in(rows.iter().map(|r| r.seq)))
                .exec(&tx)
                .await
                .map_err(db_err)?;
            rows.into_iter()
                .map(|mut m| {
                    m.status = OutboxStatus::Claimed.key().to_owned();
                    m.claim = Some(claim);
                    m.claimed_until = Some(lease_until);
                    m.attempts += 1;
                    rows::outbox_entry(m).map_err(corrupt)
                })
                .collect::<Result<Vec<_>, StoreError>>()
        }
        .await;
        match result {
            Ok(v) => {
                tx.commit().await.map_err(db_err)?;
                Ok(v)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn mark_sent(
        &self,
        id: OutboxId,
        claim: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = micros(now);
        let _turn = self.write_turn().await;
        let tx = self.begin_write().await?;
        let result = async {
            let Some(row) = outbox::Entity::find()
                .filter(claimed_by(id, claim))
                .lock_exclusive()
                .one(&tx)
                .await
                .map_err(db_err)?
            else {
                return Ok(false);
            };
            // The code or link token in the message is worthless once delivered: purge it, so a
            // database dump holds none. (A kind this build cannot read is never claimed, so its
            // stored payload is never rewritten here.)
            let mut entry = rows::outbox_entry(row).map_err(corrupt)?;
            entry.message.payload.purge_secret();
            outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::Status,
                    Expr::value(OutboxStatus::Sent.key()),
                )
                .col_expr(outbox::Column::Claim, Expr::value(None::<Uuid>))
                .col_expr(
                    outbox::Column::ClaimedUntil,
                    Expr::value(None::<DateTime<Utc>>),
                )
                .col_expr(outbox::Column::SentAt, Expr::value(Some(now)))
                .col_expr(
                    outbox::Column::Payload,
                    Expr::value(entry.message.payload.to_json()),
                )
                .filter(claimed_by(id, claim))
                .exec(&tx)
                .await
                .map_err(db_err)
                .map(|r| r.rows_affected == 1)
        }
        .await;
        match result {
            Ok(done) => {
                tx.commit().await.map_err(db_err)?;
                Ok(done)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn mark_failed(
        &self,
        id: OutboxId,
        claim: Uuid,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let error: String = error.chars().take(ERROR_CHARS).collect();
        let retry_at = retry_at.map(micros);
        let _turn = self.write_turn().await;
        let mut q = outbox::Entity::update_many()
            .col_expr(outbox::Column::Claim, Expr::value(None::<Uuid>))
            .col_expr(
                outbox::Column::ClaimedUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(outbox::Column::LastError, Expr::value(Some(error)));
        q = match retry_at {
            Some(at) => q
                .col_expr(
                    outbox::Column::Status,
                    Expr::value(OutboxStatus::Pending.key()),
                )
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(at)),
            None => q.col_expr(
                outbox::Column::Status,
                Expr::value(OutboxStatus::Dead.key()),
            ),
        };
        let res = q
            .filter(claimed_by(id, claim))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn release(&self, id: OutboxId, claim: Uuid) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let res = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(OutboxStatus::Pending.key()),
            )
            .col_expr(outbox::Column::Claim, Expr::value(None::<Uuid>))
            .col_expr(
                outbox::Column::ClaimedUntil,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(
                outbox::Column::Attempts,
                Expr::cust("CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"),
            )
            .filter(claimed_by(id, claim))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn dead_letters<'a>(
        &self,
        kind: Option<&'a str>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut q =
            outbox::Entity::find().filter(outbox::Column::Status.eq(OutboxStatus::Dead.key()));
        if let Some(kind) = kind {
            q = q.filter(outbox::Column::Kind.eq(kind));
        }
        q.order_by_desc(outbox::Column::Seq)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| rows::outbox_entry(m).map_err(corrupt))
            .collect()
    }

    async fn outbox_entry(&self, id: OutboxId) -> Result<Option<OutboxEntry>, StoreError> {
        outbox::Entity::find()
            .filter(outbox::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| rows::outbox_entry(m).map_err(corrupt))
            .transpose()
    }

    async fn purge_sent(&self, sent_before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        // The status term is `outbox_sent_idx`'s predicate verbatim (see `open_states_sql`).
        let condition = format!("status = '{}' AND sent_at <= $1", OutboxStatus::Sent.key());
        self.delete_batch("outbox", "seq", &condition, sent_before, limit)
            .await
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        // One capped count per status, each `count(*)` over a `LIMIT`ed subquery: the table
        // keeps delivered mails for weeks, so an exact count would read all of them on every
        // call. Every status is counted through its partial index.
        // SQLite uses a partial index only when the query repeats its predicate literally, so
        // the open states say `status IN ('pending', 'claimed')` as `outbox_open_idx` does.
        let open = open_states_sql();
        let count = |status: OutboxStatus| {
            let also = match status {
                OutboxStatus::Pending | OutboxStatus::Claimed => format!("{open} AND "),
                OutboxStatus::Sent | OutboxStatus::Dead => String::new(),
            };
            format!(
                "(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE {also}status = '{}' \
                 LIMIT {OUTBOX_STATS_CAP}) t)",
                status.key()
            )
        };
        let sql = format!(
            "SELECT {}, {}, {}, {}",
            count(OutboxStatus::Pending),
            count(OutboxStatus::Claimed),
            count(OutboxStatus::Sent),
            count(OutboxStatus::Dead),
        );
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &self.db,
            sea_orm::Statement::from_string(self.backend, sql),
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::backend("outbox counts returned no row"))?;
        let n = |i: usize| -> Result<u64, StoreError> {
            let v: i64 = row.try_get_by_index(i).map_err(db_err)?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(OutboxStats {
            pending: n(0)?,
            claimed: n(1)?,
            sent: n(2)?,
            dead: n(3)?,
        })
    }
}

/// What the open part of the outbox looks like, for metrics ([`SqlStore::outbox_backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    /// Open messages (pending or claimed) that failed at least once and wait for a retry
    /// (capped at [`OUTBOX_STATS_CAP`]).
    pub retrying: u64,
    /// When the oldest open message was queued, if any is open.
    pub oldest_open_at: Option<DateTime<Utc>>,
}

impl SqlStore {
    /// The outbox's retries and the age of its oldest open message (every kind), read through
    /// the partial index of the open states, so it costs the open messages only.
    ///
    /// # Errors
    /// The database failed.
    pub async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        let open = open_states_sql();
        let sql = format!(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE {open} AND attempts > 0 \
             LIMIT {OUTBOX_STATS_CAP}) t), (SELECT min(seq) FROM outbox WHERE {open})"
        );
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &self.db,
            sea_orm::Statement::from_string(self.backend, sql),
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::backend("outbox backlog returned no row"))?;
        let retrying: i64 = row.try_get_by_index(0).map_err(db_err)?;
        let oldest_seq: Option<i64> = row.try_get_by_index(1).map_err(db_err)?;
        let oldest_open_at = match oldest_seq {
            Some(seq) => outbox::Entity::find_by_id(seq)
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|m| m.created_at),
            None => None,
        };
        Ok(OutboxBacklog {
            retrying: u64::try_from(retrying).unwrap_or(0),
            oldest_open_at,
        })
    }
}
