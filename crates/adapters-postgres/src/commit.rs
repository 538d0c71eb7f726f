//! The one atomic write: every [`Write`], audit record and outbox message of a [`Commit`] in one database
//! transaction.

use crate::entity::{
    action_tokens, admin_requests, audit_chains, audit_entries, challenges, counters, customers,
    outbox, sessions, users,
};
use crate::rows::{self, one_row};
use crate::store::{SqlStore, corrupt, db_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_core::audit::{self, AuditRecord, ChainHash};
use portal_core::ids::SessionId;
use portal_core::outbox::OutboxStatus;
use portal_core::ports::{Commit, Committer, Counter, Expired, StoreError, Write};
use sea_orm::sea_query::{Expr, LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement,
};
use std::collections::BTreeMap;
use uuid::Uuid;

macro_rules! versioned_update {
    ($tx:expr, $module:ident, $row:expr, $id:expr, $version:expr) => {{
        let res = $module::Entity::update_many()
            .set($row)
            .filter($module::Column::Id.eq($id))
            .filter($module::Column::Version.eq(rows::db_version($version)))
            .exec($tx)
            .await
            .map_err(db_err)?;
        one_row(res.rows_affected)
    }};
}

macro_rules! insert {
    ($tx:expr, $module:ident, $row:expr) => {{
        $module::Entity::insert($row)
            .exec_without_returning($tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }};
}

/// Locks a user row if it still has `version`: an `UPDATE` that changes nothing but takes the
/// row lock (Postgres) until the transaction ends, so the checked fact cannot change under the
/// commit. On SQLite the transaction holds the database write lock anyway.
async fn lock_user(tx: &DatabaseTransaction, id: Uuid, version: u64) -> Result<(), StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::Version, Expr::col(users::Column::Version))
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::Version.eq(rows::db_version(version)))
        .exec(tx)
        .await
        .map_err(db_err)?;
    one_row(res.rows_affected)
}

async fn delete_sessions(
    tx: &DatabaseTransaction,
    user: Uuid,
    except: Option<SessionId>,
) -> Result<(), StoreError> {
    let mut q = sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(user));
    if let Some(keep) = except {
        q = q.filter(sessions::Column::Id.ne(keep.as_uuid()));
    }
    q.exec(tx).await.map_err(db_err)?;
    Ok(())
}

/// The later of the stored `last_login_at` and `at` (the time of the last sign-in never moves
/// back; a NULL `at` keeps the stored one).
fn later_login(backend: DbBackend, at: Option<DateTime<Utc>>) -> sea_orm::sea_query::SimpleExpr {
    let at = at.map(rows::micros);
    match backend {
        // GREATEST ignores NULLs.
        DbBackend::Postgres => Expr::cust_with_values("GREATEST(last_login_at, $1)", [at]),
        // The stored text is RFC 3339 in UTC (`+00:00`) with 0, 3 or 6 fraction digits: it sorts
        // as the times do, because `+` sorts before every digit.
        _ => Expr::cust_with_values(
            "CASE WHEN last_login_at IS NULL OR last_login_at < ? THEN ? ELSE last_login_at END",
            [at, at],
        ),
    }
}

async fn apply(tx: &DatabaseTransaction, backend: DbBackend, w: Write) -> Result<(), StoreError> {
    match w {
        Write::ExpectUser { id, version } => lock_user(tx, id.as_uuid(), version).await,
        Write::InsertCustomer(c) => insert!(tx, customers, rows::customer_row(&c, 1)),
        Write::UpdateCustomer(c) => versioned_update!(
            tx,
            customers,
            rows::customer_row(&c, c.version() + 1),
            c.id().as_uuid(),
            c.version()
        ),
        Write::InsertUser(u) => insert!(tx, users, rows::user_row(&u, 1)),
        Write::UpdateUser(u) => {
            let mut row = rows::user_row(&u, u.version() + 1);
            row.last_login_at = sea_orm::ActiveValue::NotSet;
            let res = users::Entity::update_many()
                .set(row)
                .col_expr(
                    users::Column::LastLoginAt,
                    later_login(backend, u.last_login_at()),
                )
                .filter(users::Column::Id.eq(u.id().as_uuid()))
                .filter(users::Column::Version.eq(rows::db_version(u.version())))
                .exec(tx)
                .await
                .map_err(db_err)?;
            one_row(res.rows_affected)
        }
        Write::RecordLogin { id, version, at } => {
            let res = users::Entity::update_many()
                .col_expr(users::Column::LastLoginAt, later_login(backend, Some(at)))
                .filter(users::Column::Id.eq(id.as_uuid()))
                .filter(users::Column::Version.eq(rows::db_version(version)))
                .exec(tx)
                .await
                .map_err(db_err)?;
            one_row(res.rows_affected)
        }
        Write::DeleteUser(u) => {
            let id = u.id().as_uuid();
            lock_user(tx, id, u.version()).await?;
            delete_sessions(tx, id, None).await?;
            challenges::Entity::delete_many()
                .filter(challenges::Column::UserId.eq(id))
                .exec(tx)
                .await
                .map_err(db_err)?;
            action_tokens::Entity::delete_many()
                .filter(action_tokens::Column::UserId.eq(id))
                .exec(tx)
                .await
                .map_err(db_err)?;
            admin_requests::Entity::delete_many()
                .filter(admin_requests::Column::Requester.eq(id))
                .exec(tx)
                .await
                .map_err(db_err)?;
            let res = users::Entity::delete_many()
                .filter(users::Column::Id.eq(id))
                .exec(tx)
                .await
                .map_err(db_err)?;
            one_row(res.rows_affected)
        }
        Write::InsertSession(s) => insert!(tx, sessions, rows::session_row(&s)),
        Write::UpdateSession(s) => {
            sessions::Entity::update_many()
                .set(rows::session_row(&s))
                .filter(sessions::Column::Id.eq(s.id().as_uuid()))
                .exec(tx)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        Write::DeleteSession(id) => {
            sessions::Entity::delete_many()
                .filter(sessions::Column::Id.eq(id.as_uuid()))
                .exec(tx)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        Write::DeleteSessionsOfUser { user, except } => {
            delete_sessions(tx, user.as_uuid(), except).await
        }
        Write::InsertChallenge(c) => insert!(tx, challenges, rows::challenge_row(&c, 1)),
        Write::UpdateChallenge(c) => versioned_update!(
            tx,
            challenges,
            rows::challenge_row(&c, c.version() + 1),
            c.id().as_uuid(),
            c.version()
        ),
        Write::DeleteChallengesOfUser(user) => {
            challenges::Entity::delete_many()
                .filter(challenges::Column::UserId.eq(user.as_uuid()))
                .exec(tx)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        Write::InsertActionToken(t) => insert!(tx, action_tokens, rows::action_token_row(&t, 1)),
        Write::UpdateActionToken(t) => versioned_update!(
            tx,
            action_tokens,
            rows::action_token_row(&t, t.version() + 1),
            t.id().as_uuid(),
            t.version()
        ),
        Write::DeleteActionTokensOfUser { user, purpose } => {
            let mut q = action_tokens::Entity::delete_many()
                .filter(action_tokens::Column::UserId.eq(user.as_uuid()));
            if let Some(p) = purpose {
                q = q.filter(action_tokens::Column::Purpose.eq(p.key()));
            }
            q.exec(tx).await.map_err(db_err)?;
            Ok(())
        }
        Write::InsertAdminRequest(r) => {
            insert!(tx, admin_requests, rows::admin_request_row(&r, 1))
        }
        Write::UpdateAdminRequest(r) => versioned_update!(
            tx,
            admin_requests,
            rows::admin_request_row(&r, r.version() + 1),
            r.id().as_uuid(),
            r.version()
        ),
        Write::InsertLegacyClaim(c) => {
            crate::entity::legacy_claims::Entity::insert(rows::legacy_claim_row(&c))
                .exec_without_returning(tx)
                .await
                .map_err(db_err)?;
            // The old hash goes in the same transaction (R8).
            crate::legacy::forget_hash(tx, &c.legacy_id).await
        }
        Write::PutLegacyAccount(r) => crate::legacy::put(tx, &r).await,
        w @ (Write::InsertOidcClient(_)
        | Write::UpdateOidcClient(_)
        | Write::InsertOidcGrant(_)
        | Write::UpdateOidcGrant(_)
        | Write::InsertOidcToken(_)
        | Write::UseOidcToken { .. }
        | Write::InsertSigningKey(_)
        | Write::UpdateSigningKey(_)
        | Write::UpsertOidcConsent { .. }) => crate::oidc::apply(tx, w).await,
        w @ (Write::InsertPasskeyChallenge(_) | Write::UsePasskeyChallenge { .. }) => {
            crate::passkeys::apply(tx, w).await
        }
        w @ (Write::InsertWebhook(_) | Write::UpdateWebhook(_) | Write::DeleteWebhook(_)) => {
            crate::webhooks::apply(tx, w).await
        }
        w @ (Write::InsertSealingKey { .. } | Write::DeleteSealingKey(_)) => {
            crate::ops::apply(tx, w).await
        }
        Write::DeleteCounters(keys) => {
            if !keys.is_empty() {
                counters::Entity::delete_many()
                    .filter(counters::Column::Key.is_in(keys))
                    .exec(tx)
                    .await
                    .map_err(db_err)?;
            }
            Ok(())
        }
        Write::RequeueOutbox { id, at } => {
            let res = outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::Status,
                    Expr::value(OutboxStatus::Pending.key()),
                )
                .col_expr(outbox::Column::Attempts, Expr::value(0_i64))
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(rows::micros(at)))
                .filter(outbox::Column::Id.eq(id.as_uuid()))
                .filter(outbox::Column::Status.eq(OutboxStatus::Dead.key()))
                .exec(tx)
                .await
                .map_err(db_err)?;
            if res.rows_affected == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        }
    }
}

/// Appends records to their chains. Each chain's head row is locked (`SELECT … FOR UPDATE`;
/// created first if missing), so concurrent commits to one chain take turns and every entry gets
/// the next sequence number and the previous entry's hash. Chains are locked in key order, so
/// two commits that touch the same chains cannot deadlock on them.
///
/// Per chain, in the usual case of an existing chain: the locking read, then on Postgres one
/// statement that inserts all of the chain's new entries and moves the head (a data-modifying
/// `WITH`), on SQLite (no such `WITH`) the insert of all entries and the head update.
///
/// The locking read also returns the webhook endpoints' generation: when the commit's
/// deliveries were computed from another one (`expected_generation`), the commit is refused
/// with [`StoreError::WebhooksChanged`] at no extra statement.
async fn append_audit(
    tx: &DatabaseTransaction,
    backend: DbBackend,
    records: Vec<AuditRecord>,
    expected_generation: Option<u64>,
) -> Result<Vec<audit::AuditEntry>, StoreError> {
    let check = |head: &LockedHead| match expected_generation {
        Some(g) if head.webhooks_generation != rows::db_version(g) => {
            Err(StoreError::WebhooksChanged)
        }
        _ => Ok(()),
    };
    if records.is_empty() {
        if let Some(g) = expected_generation
            && crate::webhooks::generation(tx).await? != g
        {
            return Err(StoreError::WebhooksChanged);
        }
        return Ok(Vec::new());
    }
    let mut appended = Vec::new();
    let mut chains: BTreeMap<Uuid, Vec<AuditRecord>> = BTreeMap::new();
    for r in records {
        chains
            .entry(rows::chain_key(r.customer))
            .or_default()
            .push(r);
    }
    for (key, records) in chains {
        let head = match locked_head(tx, key).await? {
            Some(head) => head,
            None => {
                audit_chains::Entity::insert(audit_chains::ActiveModel {
                    chain_key: Set(key),
                    seq: Set(0),
                    hash: Set(ChainHash::GENESIS.to_hex()),
                })
                .on_conflict(
                    OnConflict::column(audit_chains::Column::ChainKey)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(tx)
                .await
                .map_err(db_err)?;
                locked_head(tx, key).await?.ok_or(StoreError::Conflict)?
            }
        };
        check(&head)?;
        let mut seq = u64::try_from(head.seq).map_err(|_| {
            corrupt(portal_core::customer::CorruptRecord::new(
                "audit chain",
                "negative sequence",
            ))
        })?;
        let mut prev = ChainHash::from_hex(&head.hash).ok_or_else(|| {
            corrupt(portal_core::customer::CorruptRecord::new(
                "audit chain",
                "invalid head hash",
            ))
        })?;
        let mut entries = Vec::with_capacity(records.len());
        for mut record in records {
            seq += 1;
            // The hash covers the time: truncate it to what is stored before chaining, or the
            // entry read back would no longer verify.
            record.at = rows::micros(record.at);
            let entry = audit::chain(record, seq, prev);
            prev = entry.hash;
            entries.push(rows::audit_row(&entry));
            appended.push(entry);
        }
        let insert = audit_entries::Entity::insert_many(entries);
        let move_head = audit_chains::Entity::update_many()
            .col_expr(
                audit_chains::Column::Seq,
                Expr::value(rows::db_version(seq)),
            )
            .col_expr(audit_chains::Column::Hash, Expr::value(prev.to_hex()))
            .filter(audit_chains::Column::ChainKey.eq(key));
        if backend == DbBackend::Postgres {
            let insert = insert.build(backend);
            let update = move_head.build(backend);
            tx.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "WITH entries AS ({}) {}",
                    insert.sql,
                    renumber(&update.sql, insert.values.as_ref().map_or(0, |v| v.0.len()))
                ),
                insert
                    .values
                    .into_iter()
                    .chain(update.values)
                    .flat_map(|v| v.0),
            ))
            .await
            .map_err(db_err)?;
        } else {
            insert.exec_without_returning(tx).await.map_err(db_err)?;
            move_head.exec(tx).await.map_err(db_err)?;
        }
    }
    Ok(appended)
}

/// A chain's head, with the webhook endpoints' generation read in the same statement.
#[derive(Debug, sea_orm::FromQueryResult)]
struct LockedHead {
    seq: i64,
    hash: String,
    webhooks_generation: i64,
}

/// A chain's head row, locked until the transaction ends; `None` when the chain has no row yet.
async fn locked_head(
    tx: &DatabaseTransaction,
    key: Uuid,
) -> Result<Option<LockedHead>, StoreError> {
    audit_chains::Entity::find_by_id(key)
        .select_only()
        .column(audit_chains::Column::Seq)
        .column(audit_chains::Column::Hash)
        .column_as(
            Expr::cust(crate::webhooks::GENERATION_SQL),
            "webhooks_generation",
        )
        .lock_exclusive()
        .into_model::<LockedHead>()
        .one(tx)
        .await
        .map_err(db_err)
}

/// `sql` with every Postgres placeholder `$n` moved up by `by` (to follow another statement's
/// values in one statement). The statements this is used on are rendered by sea-query, which
/// binds every value, so a `$` appears only in placeholders.
fn renumber(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            n.push(*d);
            chars.next();
        }
        match n.parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&n),
        }
    }
    out
}

/// Postgres: locks every user row and then every customer row the commit will write, each in id
/// order, before the first write. Two commits that touch the same rows then queue in one order
/// instead of deadlocking (two admins locking each other would otherwise hold one user each and
/// wait for the other until Postgres's deadlock timeout). Versions are still checked by the
/// writes themselves; a missing row is simply not locked.
async fn lock_in_order(tx: &DatabaseTransaction, writes: &[Write]) -> Result<(), StoreError> {
    let mut user_ids = Vec::new();
    let mut customer_ids = Vec::new();
    for w in writes {
        match w {
            Write::ExpectUser { id, .. } | Write::RecordLogin { id, .. } => {
                user_ids.push(id.as_uuid());
            }
            Write::UpdateUser(u) | Write::DeleteUser(u) => user_ids.push(u.id().as_uuid()),
            Write::UpdateCustomer(c) => customer_ids.push(c.id().as_uuid()),
            _ => {}
        }
    }
    user_ids.sort_unstable();
    user_ids.dedup();
    customer_ids.sort_unstable();
    customer_ids.dedup();
    if user_ids.len() + customer_ids.len() < 2 {
        return Ok(());
    }
    if !user_ids.is_empty() {
        users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Id.is_in(user_ids))
            .order_by_asc(users::Column::Id)
            .lock(LockType::NoKeyUpdate)
            .into_tuple::<Uuid>()
            .all(tx)
            .await
            .map_err(db_err)?;
    }
    if !customer_ids.is_empty() {
        customers::Entity::find()
            .select_only()
            .column(customers::Column::Id)
            .filter(customers::Column::Id.is_in(customer_ids))
            .order_by_asc(customers::Column::Id)
            .lock(LockType::NoKeyUpdate)
            .into_tuple::<Uuid>()
            .all(tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

async fn apply_all(
    tx: &DatabaseTransaction,
    backend: DbBackend,
    commit: Commit,
) -> Result<(), StoreError> {
    if backend == DbBackend::Postgres {
        lock_in_order(tx, &commit.writes).await?;
    }
    // The generation the deliveries were computed from, plus the commit's own webhook writes
    // (each adds one, and the check below reads after them).
    let expected_generation = commit.webhooks_generation.map(|g| {
        g + commit
            .writes
            .iter()
            .filter(|w| w.is_webhook_endpoint())
            .count() as u64
    });
    for w in commit.writes {
        apply(tx, backend, w).await?;
    }
    let entries = append_audit(tx, backend, commit.audit, expected_generation).await?;
    let mut messages = commit.outbox;
    crate::webhooks::place(tx, &mut messages, &entries).await?;
    if !messages.is_empty() {
        outbox::Entity::insert_many(messages.iter().map(rows::outbox_row))
            .exec_without_returning(tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl Committer for SqlStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let tx = self.begin_write().await?;
        match apply_all(&tx, self.backend, commit).await {
            Ok(()) => tx.commit().await.map_err(db_err),
            Err(e) => {
                // Dropping the transaction would roll back too; doing it explicitly returns the
                // connection to the pool in a known state. The first error is the one to report.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        reset_after: chrono::TimeDelta,
    ) -> Result<Counter, StoreError> {
        let now = rows::micros(now);
        let _turn = self.write_turn().await;
        // One statement, atomic on both backends: concurrent failures never lose a count.
        let sql = match self.backend {
            DbBackend::Postgres => {
                "INSERT INTO counters (key, count, last_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN counters.last_at <= $3 THEN 1 ELSE counters.count + 1 END, \
                 last_at = $2 RETURNING count, last_at"
            }
            _ => {
                "INSERT INTO counters (key, count, last_at) VALUES (?1, 1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET \
                 count = CASE WHEN counters.last_at <= ?3 THEN 1 ELSE counters.count + 1 END, \
                 last_at = ?2 RETURNING count, last_at"
            }
        };
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &self.db,
            sea_orm::Statement::from_sql_and_values(
                self.backend,
                sql,
                [key.into(), now.into(), (now - reset_after).into()],
            ),
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::backend("counter upsert returned no row"))?;
        let count: i64 = row.try_get_by_index(0).map_err(db_err)?;
        let last_at: DateTime<Utc> = row.try_get_by_index(1).map_err(db_err)?;
        Ok(Counter {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            last_at,
        })
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        crate::entity::counters::Entity::delete_by_id(key.to_owned())
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired(
        &self,
        kind: Expired,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Sessions: the idle expiry is never after the absolute one (`Session::from_record`
        // refuses such a row), so "idle or absolute expiry passed" is the idle one alone, and one
        // index serves.
        let (table, key, column) = match kind {
            Expired::Sessions => ("sessions", "id", "idle_expires_at"),
            Expired::Challenges => ("challenges", "id", "created_at"),
            Expired::ActionTokens => ("action_tokens", "id", "expires_at"),
            Expired::Counters => ("counters", "key", "last_at"),
            Expired::OidcTokens => ("oidc_tokens", "id", "expires_at"),
            Expired::PasskeyChallenges => ("passkey_challenges", "id", "expires_at"),
            Expired::AuditEntries => return self.prune_audit(cutoff, limit).await,
        };
        let n = self
            .delete_batch(table, key, &format!("{column} <= $1"), cutoff, limit)
            .await?;
        Ok(n)
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (last_seen_at, idle_expires_at) =
            (rows::micros(last_seen_at), rows::micros(idle_expires_at));
        let _turn = self.write_turn().await;
        let res = sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenAt, Expr::value(last_seen_at))
            .col_expr(
                sessions::Column::IdleExpiresAt,
                Expr::value(idle_expires_at),
            )
            .filter(sessions::Column::Id.eq(id.as_uuid()))
            .filter(sessions::Column::ExpiresAt.gte(idle_expires_at))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0
            && sessions::Entity::find_by_id(id.as_uuid())
                .one(&self.db)
                .await
                .map_err(db_err)?
                .is_some()
        {
            // As the memory adapter: a session whose idle expiry would pass its absolute one is
            // not stored.
            return Err(corrupt(portal_core::customer::CorruptRecord::new(
                "session",
                "expiry times out of order",
            )));
        }
        Ok(())
    }
}

impl SqlStore {
    /// Deletes up to `limit` rows of `table` matching `condition` (which uses `$1`, bound to
    /// `at`), found by index and keyed by `key`; returns how many. One statement, so one short
    /// transaction. On Postgres the rows are picked `FOR UPDATE SKIP LOCKED`: a row a commit is
    /// changing right now is left for the next run, and two housekeepers never wait for each
    /// other; on SQLite the statement is the only writer.
    pub(crate) async fn delete_batch(
        &self,
        table: &str,
        key: &str,
        condition: &str,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let (condition, lock) = match self.backend {
            DbBackend::Postgres => (condition.to_owned(), " FOR UPDATE SKIP LOCKED"),
            _ => (condition.replace('$', "?"), ""),
        };
        let limit_param = if self.backend == DbBackend::Postgres {
            "$2"
        } else {
            "?2"
        };
        let sql = format!(
            "DELETE FROM {table} WHERE {key} IN \
             (SELECT {key} FROM {table} WHERE {condition} LIMIT {limit_param}{lock})"
        );
        let _turn = self.write_turn().await;
        let res = sea_orm::ConnectionTrait::execute_raw(
            &self.db,
            sea_orm::Statement::from_sql_and_values(
                self.backend,
                sql,
                [rows::micros(at).into(), i64::from(limit).into()],
            ),
        )
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected())
    }
}
