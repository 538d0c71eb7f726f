//! Operations tables (migration `m20261207_000009_secret_keys_retention`): the ids of the
//! sealing keys a database's sealed values need, and the change-log checkpoints retention
//! leaves.

use crate::entity::{audit_chains, audit_entries};
use crate::store::{SqlStore, corrupt, db_err};
use chrono::{DateTime, Utc};
use portal_core::audit::ChainHash;
use portal_core::customer::CorruptRecord;
use portal_core::ids::CustomerId;
use portal_core::ports::{AuditCheckpoint, StoreError, Write};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

pub(crate) mod sealing_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sealing_keys")]
    pub struct Model {
        /// The key id (a keyed hash of the key, never the key).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod audit_checkpoints {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_checkpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_key: Uuid,
        /// The last entry removed.
        pub seq: i64,
        /// Its hash (hex).
        pub hash: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Applies the writes of this module.
pub(crate) async fn apply(tx: &DatabaseTransaction, w: Write) -> Result<(), StoreError> {
    match w {
        Write::InsertSealingKey { id, at } => {
            sealing_keys::Entity::insert(sealing_keys::ActiveModel {
                id: Set(id),
                created_at: Set(crate::rows::micros(at)),
            })
            .on_conflict(
                OnConflict::column(sealing_keys::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await
            .map_err(db_err)?;
            Ok(())
        }
        Write::DeleteSealingKey(id) => {
            sealing_keys::Entity::delete_by_id(id)
                .exec(tx)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The recorded sealing key ids, sorted.
pub(crate) async fn sealing_key_ids(db: &impl ConnectionTrait) -> Result<Vec<String>, StoreError> {
    Ok(sealing_keys::Entity::find()
        .order_by_asc(sealing_keys::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|m| m.id)
        .collect())
}

fn bad_checkpoint(why: &'static str) -> StoreError {
    corrupt(CorruptRecord::new("audit checkpoint", why))
}

/// The checkpoint of a chain, if retention removed any of it.
pub(crate) async fn checkpoint(
    db: &impl ConnectionTrait,
    customer: Option<CustomerId>,
) -> Result<Option<AuditCheckpoint>, StoreError> {
    let Some(m) = audit_checkpoints::Entity::find_by_id(crate::rows::chain_key(customer))
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    Ok(Some(AuditCheckpoint {
        seq: u64::try_from(m.seq).map_err(|_| bad_checkpoint("negative sequence"))?,
        hash: ChainHash::from_hex(&m.hash).ok_or_else(|| bad_checkpoint("invalid hash"))?,
    }))
}

impl SqlStore {
    /// Retention of the change log ([`Expired::AuditEntries`](portal_core::ports::Expired)):
    /// removes up to `limit` entries from the start of the chains, up to the first entry after
    /// `cutoff` and never a chain's newest one, each chain in its own transaction under its
    /// head row's lock, recording the last removed entry as the chain's checkpoint.
    pub(crate) async fn prune_audit(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = crate::rows::micros(cutoff);
        let chains: Vec<Uuid> = audit_entries::Entity::find()
            .select_only()
            .column(audit_entries::Column::ChainKey)
            .distinct()
            .filter(audit_entries::Column::At.lte(cutoff))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut removed = 0u64;
        for key in chains {
            let room = u64::from(limit) - removed;
            if room == 0 {
                break;
            }
            let _turn = self.write_turn().await;
            let tx = self.begin_write().await?;
            match prune_chain(&tx, key, cutoff, room).await {
                Ok(n) => {
                    tx.commit().await.map_err(db_err)?;
                    removed += n;
                }
                Err(e) => {
                    let _ = tx.rollback().await;
                    return Err(e);
                }
            }
        }
        Ok(removed)
    }
}

/// Removes the old start of one chain (at most `room` entries); how many went.
async fn prune_chain(
    tx: &DatabaseTransaction,
    key: Uuid,
    cutoff: DateTime<Utc>,
    room: u64,
) -> Result<u64, StoreError> {
    // The head row's lock: appends to this chain wait, and so does another pruner.
    let Some(head) = audit_chains::Entity::find_by_id(key)
        .lock_exclusive()
        .one(tx)
        .await
        .map_err(db_err)?
    else {
        return Ok(0);
    };
    let first_newer: Option<i64> = audit_entries::Entity::find()
        .select_only()
        .column_as(audit_entries::Column::Seq.min(), "min_seq")
        .filter(audit_entries::Column::ChainKey.eq(key))
        .filter(audit_entries::Column::At.gt(cutoff))
        .into_tuple::<Option<i64>>()
        .one(tx)
        .await
        .map_err(db_err)?
        .flatten();
    let previous = audit_checkpoints::Entity::find_by_id(key)
        .one(tx)
        .await
        .map_err(db_err)?
        .map_or(0, |c| c.seq);
    // Never the newest entry; never past the first one after the cut-off.
    let mut through = head.seq - 1;
    if let Some(f) = first_newer {
        through = through.min(f - 1);
    }
    through = through.min(previous.saturating_add(i64::try_from(room).unwrap_or(i64::MAX)));
    if through <= previous {
        return Ok(0);
    }
    let Some(last) = audit_entries::Entity::find()
        .filter(audit_entries::Column::ChainKey.eq(key))
        .filter(audit_entries::Column::Seq.eq(through))
        .one(tx)
        .await
        .map_err(db_err)?
    else {
        return Err(bad_checkpoint("entry missing inside the chain"));
    };
    let res = audit_entries::Entity::delete_many()
        .filter(audit_entries::Column::ChainKey.eq(key))
        .filter(audit_entries::Column::Seq.lte(through))
        .exec(tx)
        .await
        .map_err(db_err)?;
    audit_checkpoints::Entity::insert(audit_checkpoints::ActiveModel {
        chain_key: Set(key),
        seq: Set(through),
        hash: Set(last.hash),
        created_at: Set(crate::rows::micros(Utc::now())),
    })
    .on_conflict(
        OnConflict::column(audit_checkpoints::Column::ChainKey)
            .update_columns([
                audit_checkpoints::Column::Seq,
                audit_checkpoints::Column::Hash,
                audit_checkpoints::Column::CreatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(tx)
    .await
    .map_err(db_err)?;
    Ok(res.rows_affected)
}
