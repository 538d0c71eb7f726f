//! The webhook tables (migration 000010): endpoints (the entity as JSON in `data`,
//! version-checked with its row) and the per-endpoint, per-chain sequence cursors that give each
//! event its `previous_seq`.

#![allow(missing_docs)]

use crate::rows::{self, micros};
use crate::store::db_err;
use portal_core::audit::AuditEntry;
use portal_core::customer::CorruptRecord;
use portal_core::outbox::{OutboxMessage, Payload};
use portal_core::ports::{StoreError, Write};
use portal_core::webhook::WebhookEndpoint;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

pub(crate) mod webhook_endpoints {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_endpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub data: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod webhook_cursors {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub endpoint_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_key: Uuid,
        pub last_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn endpoint(m: webhook_endpoints::Model) -> Result<WebhookEndpoint, StoreError> {
    let mut e: WebhookEndpoint = serde_json::from_str(&m.data)
        .map_err(|_| StoreError::Corrupt(CorruptRecord::new("webhook", "invalid data")))?;
    if e.id != m.id {
        return Err(StoreError::Corrupt(CorruptRecord::new(
            "webhook",
            "id does not match its row",
        )));
    }
    e.version = u64::try_from(m.version).unwrap_or(0);
    Ok(e)
}

fn endpoint_row(e: &WebhookEndpoint, version: u64) -> webhook_endpoints::ActiveModel {
    let mut stored = e.clone();
    stored.created_at = micros(e.created_at);
    stored.secret_rotated_at = e.secret_rotated_at.map(micros);
    webhook_endpoints::ActiveModel {
        id: Set(e.id),
        data: Set(rows::to_json(&stored)),
        version: Set(rows::db_version(version)),
        created_at: Set(micros(e.created_at)),
    }
}

fn one_row(rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::Conflict)
    } else {
        Ok(())
    }
}

/// Applies one of the webhook writes inside the commit's transaction.
pub(crate) async fn apply(tx: &DatabaseTransaction, w: Write) -> Result<(), StoreError> {
    match w {
        Write::InsertWebhook(e) => {
            match webhook_endpoints::Entity::insert(endpoint_row(&e, 1))
                .exec_without_returning(tx)
                .await
                .map_err(db_err)
            {
                Ok(_) => Ok(()),
                Err(StoreError::Duplicate(_)) => Err(StoreError::Conflict),
                Err(e) => Err(e),
            }
        }
        Write::UpdateWebhook(e) => {
            let res = webhook_endpoints::Entity::update_many()
                .set(endpoint_row(&e, e.version + 1))
                .filter(webhook_endpoints::Column::Id.eq(e.id))
                .filter(webhook_endpoints::Column::Version.eq(rows::db_version(e.version)))
                .exec(tx)
                .await
                .map_err(db_err)?;
            one_row(res.rows_affected)
        }
        Write::DeleteWebhook(e) => {
            let res = webhook_endpoints::Entity::delete_many()
                .filter(webhook_endpoints::Column::Id.eq(e.id))
                .filter(webhook_endpoints::Column::Version.eq(rows::db_version(e.version)))
                .exec(tx)
                .await
                .map_err(db_err)?;
            one_row(res.rows_affected)?;
            webhook_cursors::Entity::delete_many()
                .filter(webhook_cursors::Column::EndpointId.eq(e.id))
                .exec(tx)
                .await
                .map_err(db_err)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Numbers the webhook deliveries among `messages` by the entries the commit appended, and sets
/// each one's `previous_seq` from its endpoint's cursor for the chain, advancing the cursor.
/// Runs after the append, inside the same transaction, while the chains' head rows are locked:
/// concurrent commits to one chain take turns here too.
pub(crate) async fn place(
    tx: &DatabaseTransaction,
    messages: &mut [OutboxMessage],
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    for message in messages {
        let Payload::Webhook(d) = &mut message.payload else {
            continue;
        };
        let Some((chain, seq)) = d.place(entries) else {
            continue;
        };
        let chain_key = rows::chain_key(chain);
        let previous = webhook_cursors::Entity::find_by_id((d.endpoint, chain_key))
            .one(tx)
            .await
            .map_err(db_err)?
            .and_then(|c| u64::try_from(c.last_seq).ok());
        d.event.data.previous_seq = previous;
        webhook_cursors::Entity::insert(webhook_cursors::ActiveModel {
            endpoint_id: Set(d.endpoint),
            chain_key: Set(chain_key),
            last_seq: Set(rows::db_version(seq)),
        })
        .on_conflict(
            OnConflict::columns([
                webhook_cursors::Column::EndpointId,
                webhook_cursors::Column::ChainKey,
            ])
            .update_column(webhook_cursors::Column::LastSeq)
            .to_owned(),
        )
        .exec_without_returning(tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// One endpoint.
pub(crate) async fn by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<WebhookEndpoint>, StoreError> {
    webhook_endpoints::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
        .map(endpoint)
        .transpose()
}

/// Every endpoint, oldest first.
pub(crate) async fn all(db: &impl ConnectionTrait) -> Result<Vec<WebhookEndpoint>, StoreError> {
    webhook_endpoints::Entity::find()
        .order_by_asc(webhook_endpoints::Column::CreatedAt)
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(endpoint)
        .collect()
}
