//! The webhook tables (migrations 000010 and 000012): the endpoints' generation, endpoints (the entity as JSON in `data`,
//! version-checked with its row) and the per-endpoint, per-chain sequence cursors that give each
//! event its `previous_seq`.

#![allow(missing_docs)]

use crate::rows::{self, micros, one_row};
use crate::store::db_err;
use portal_core::audit::AuditEntry;
use portal_core::customer::CorruptRecord;
use portal_core::outbox::{OutboxMessage, Payload};
use portal_core::ports::{StoreError, Write};
use portal_core::webhook::{WebhookDelivery, WebhookEndpoint, WebhookSnapshot};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Statement,
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
    e.version = rows::version("webhook", m.version)?;
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

/// The webhook endpoints' generation as an SQL expression (`webhook_generation`, migration
/// 000012: at most one row, none reads as 0); also read by the commit's chain lock.
pub(crate) const GENERATION_SQL: &str =
    "COALESCE((SELECT generation FROM webhook_generation WHERE id = 1), 0)";

/// A stored generation (never negative).
pub(crate) fn stored_generation(g: i64) -> Result<u64, StoreError> {
    u64::try_from(g)
        .map_err(|_| StoreError::Corrupt(CorruptRecord::new("webhook", "negative generation")))
}

/// The webhook endpoints' generation.
pub(crate) async fn generation(db: &impl ConnectionTrait) -> Result<u64, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT {GENERATION_SQL}"),
        ))
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::backend("the generation query returned no row"))?;
    stored_generation(row.try_get_by_index(0).map_err(db_err)?)
}

/// Every endpoint with the generation of the set, from one statement (one snapshot on
/// Postgres; SQLite reads inside one statement anyway).
pub(crate) async fn snapshot(db: &impl ConnectionTrait) -> Result<WebhookSnapshot, StoreError> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT {GENERATION_SQL}, e.id, e.data, e.version, e.created_at \
                 FROM (SELECT 1 AS one) o LEFT JOIN webhook_endpoints e ON 1 = 1 \
                 ORDER BY e.created_at, e.id"
            ),
        ))
        .await
        .map_err(db_err)?;
    let mut snapshot = WebhookSnapshot::default();
    for (i, row) in rows.iter().enumerate() {
        if i == 0 {
            snapshot.generation = stored_generation(row.try_get_by_index(0).map_err(db_err)?)?;
        }
        let Some(id) = row.try_get_by_index::<Option<Uuid>>(1).map_err(db_err)? else {
            continue; // no endpoint: the one row of the generation alone
        };
        let model = webhook_endpoints::Model {
            id,
            data: row.try_get_by_index(2).map_err(db_err)?,
            version: row.try_get_by_index(3).map_err(db_err)?,
            created_at: row.try_get_by_index(4).map_err(db_err)?,
        };
        snapshot.endpoints.push(endpoint(model)?);
    }
    Ok(snapshot)
}

/// Applies one of the webhook writes inside the commit's transaction; each moves the
/// endpoints' generation on by one.
pub(crate) async fn apply(tx: &DatabaseTransaction, w: Write) -> Result<(), StoreError> {
    tx.execute_unprepared(
        "INSERT INTO webhook_generation (id, generation) VALUES (1, 1) \
         ON CONFLICT (id) DO UPDATE SET generation = webhook_generation.generation + 1",
    )
    .await
    .map_err(db_err)?;
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
    // Number the deliveries first, then read every cursor they need in one statement, walk them
    // in message order, and write each cursor's last value in one statement: two statements per
    // commit, however many deliveries it queues.
    let mut placed: Vec<(&mut WebhookDelivery, (Uuid, Uuid), u64)> = Vec::new();
    for message in messages {
        let Payload::Webhook(d) = &mut message.payload else {
            continue;
        };
        if let Some((chain, seq)) = d.place(entries) {
            let key = (d.endpoint, rows::chain_key(chain));
            placed.push((d, key, seq));
        }
    }
    if placed.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(Uuid, Uuid)> = placed.iter().map(|(_, key, _)| *key).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut cursors: std::collections::BTreeMap<(Uuid, Uuid), Option<u64>> =
        keys.iter().map(|key| (*key, None)).collect();
    let mut any = sea_orm::Condition::any();
    for (endpoint, chain) in &keys {
        any = any.add(
            sea_orm::Condition::all()
                .add(webhook_cursors::Column::EndpointId.eq(*endpoint))
                .add(webhook_cursors::Column::ChainKey.eq(*chain)),
        );
    }
    for c in webhook_cursors::Entity::find()
        .filter(any)
        .all(tx)
        .await
        .map_err(db_err)?
    {
        cursors.insert((c.endpoint_id, c.chain_key), u64::try_from(c.last_seq).ok());
    }
    for (d, key, seq) in placed {
        let last = cursors.entry(key).or_default();
        d.event.data.previous_seq = *last;
        *last = Some(seq);
    }
    webhook_cursors::Entity::insert_many(cursors.into_iter().filter_map(
        |((endpoint, chain), last)| {
            last.map(|seq| webhook_cursors::ActiveModel {
                endpoint_id: Set(endpoint),
                chain_key: Set(chain),
                last_seq: Set(rows::db_version(seq)),
            })
        },
    ))
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
