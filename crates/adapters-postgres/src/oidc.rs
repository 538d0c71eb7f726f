//! The OpenID Connect provider's tables (migration 000006): clients, grants, codes and tokens
//! (by hash), consents and signing keys. The columns that queries filter on are columns; the
//! rest of each entity is one JSON `data` column, version-checked with its row.

#![allow(missing_docs, clippy::struct_field_names)]

use crate::rows::{self, micros, one_row};
use crate::store::db_err;
use portal_core::customer::CorruptRecord;
use portal_core::ids::{SessionId, UserId};
use portal_core::oidc::{Client, Grant, OidcToken, OidcTokenKind, SigningKey};
use portal_core::ports::{StoreError, UniqueKey, Write};
use portal_core::secret::TokenHash;
use sea_orm::sea_query::{Expr, OnConflict, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

pub(crate) mod oidc_clients {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oidc_clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub data: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod oidc_grants {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oidc_grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub session_id: Uuid,
        pub client_id: String,
        pub data: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod oidc_tokens {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oidc_tokens")]
    pub struct Model {
        /// The token's hash (hex).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub grant_id: Uuid,
        pub kind: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod oidc_consents {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oidc_consents")]
    pub struct Model {
        /// `user_id:client_id`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Uuid,
        pub scopes: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod oidc_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oidc_keys")]
    pub struct Model {
        /// The `kid`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub data: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn bad(entity: &'static str, why: &'static str) -> StoreError {
    StoreError::Corrupt(CorruptRecord::new(entity, why))
}

pub(crate) fn client(m: oidc_clients::Model) -> Result<Client, StoreError> {
    let mut c: Client =
        serde_json::from_str(&m.data).map_err(|_| bad("oidc_client", "invalid data"))?;
    c.version = rows::version("oidc_client", m.version)?;
    Ok(c)
}

pub(crate) fn grant(m: oidc_grants::Model) -> Result<Grant, StoreError> {
    let mut g: Grant =
        serde_json::from_str(&m.data).map_err(|_| bad("oidc_grant", "invalid data"))?;
    g.version = rows::version("oidc_grant", m.version)?;
    Ok(g)
}

pub(crate) fn token(m: oidc_tokens::Model) -> Result<OidcToken, StoreError> {
    Ok(OidcToken {
        hash: TokenHash::from_hex(&m.id).ok_or(bad("oidc_token", "invalid hash"))?,
        kind: OidcTokenKind::from_key(&m.kind).ok_or(bad("oidc_token", "unknown kind"))?,
        grant_id: m.grant_id,
        created_at: m.created_at,
        expires_at: m.expires_at,
        used_at: m.used_at,
    })
}

pub(crate) fn key(m: oidc_keys::Model) -> Result<SigningKey, StoreError> {
    let mut k: SigningKey =
        serde_json::from_str(&m.data).map_err(|_| bad("oidc_key", "invalid data"))?;
    k.version = rows::version("oidc_key", m.version)?;
    Ok(k)
}

fn client_row(c: &Client, v: u64) -> oidc_clients::ActiveModel {
    oidc_clients::ActiveModel {
        id: Set(c.id.clone()),
        data: Set(rows::to_json(c)),
        version: Set(rows::db_version(v)),
        created_at: Set(micros(c.created_at)),
    }
}

fn grant_row(g: &Grant, v: u64) -> oidc_grants::ActiveModel {
    oidc_grants::ActiveModel {
        id: Set(g.id),
        user_id: Set(g.user_id.as_uuid()),
        session_id: Set(g.session_id.as_uuid()),
        client_id: Set(g.client_id.clone()),
        data: Set(rows::to_json(g)),
        version: Set(rows::db_version(v)),
        created_at: Set(micros(g.created_at)),
    }
}

fn key_row(k: &SigningKey, v: u64) -> oidc_keys::ActiveModel {
    oidc_keys::ActiveModel {
        id: Set(k.kid.clone()),
        data: Set(rows::to_json(k)),
        version: Set(rows::db_version(v)),
        created_at: Set(micros(k.created_at)),
    }
}

/// `INSERT` of one row.
async fn insert<A>(tx: &DatabaseTransaction, row: A) -> Result<(), StoreError>
where
    A: ActiveModelTrait + Send,
{
    <A::Entity as EntityTrait>::insert(row)
        .exec_without_returning(tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// `UPDATE … SET row WHERE id AND version`: the optimistic lock of the entities kept as JSON —
/// exactly one row changes, or the commit conflicts.
async fn update_versioned<A>(
    tx: &DatabaseTransaction,
    row: A,
    id: SimpleExpr,
    version: SimpleExpr,
) -> Result<(), StoreError>
where
    A: ActiveModelTrait + Send,
{
    let res = <A::Entity as EntityTrait>::update_many()
        .set(row)
        .filter(id)
        .filter(version)
        .exec(tx)
        .await
        .map_err(db_err)?;
    one_row(res.rows_affected)
}

/// Applies one of the OIDC writes inside the commit's transaction.
pub(crate) async fn apply(tx: &DatabaseTransaction, w: Write) -> Result<(), StoreError> {
    match w {
        Write::InsertOidcClient(c) => {
            let res = oidc_clients::Entity::insert(client_row(&c, 1))
                .exec_without_returning(tx)
                .await;
            match res.map_err(db_err) {
                Ok(_) => Ok(()),
                Err(StoreError::Duplicate(_)) => {
                    Err(StoreError::Duplicate(UniqueKey::Other("oidc_client")))
                }
                Err(e) => Err(e),
            }
        }
        Write::UpdateOidcClient(c) => {
            update_versioned(
                tx,
                client_row(&c, c.version + 1),
                oidc_clients::Column::Id.eq(c.id.clone()),
                oidc_clients::Column::Version.eq(rows::db_version(c.version)),
            )
            .await
        }
        Write::InsertOidcGrant(g) => insert(tx, grant_row(&g, 1)).await,
        Write::UpdateOidcGrant(g) => {
            update_versioned(
                tx,
                grant_row(&g, g.version + 1),
                oidc_grants::Column::Id.eq(g.id),
                oidc_grants::Column::Version.eq(rows::db_version(g.version)),
            )
            .await
        }
        Write::InsertOidcToken(t) => {
            let row = oidc_tokens::ActiveModel {
                id: Set(t.hash.to_hex()),
                grant_id: Set(t.grant_id),
                kind: Set(t.kind.key().to_owned()),
                created_at: Set(micros(t.created_at)),
                expires_at: Set(micros(t.expires_at)),
                used_at: Set(t.used_at.map(micros)),
            };
            insert(tx, row).await
        }
        Write::UseOidcToken { hash, at } => {
            // One statement decides: of two concurrent uses exactly one changes the row.
            let res = oidc_tokens::Entity::update_many()
                .col_expr(oidc_tokens::Column::UsedAt, Expr::value(Some(micros(at))))
                .filter(oidc_tokens::Column::Id.eq(hash.to_hex()))
                .filter(oidc_tokens::Column::UsedAt.is_null())
                .exec(tx)
                .await
                .map_err(db_err)?;
            one_row(res.rows_affected)
        }
        Write::InsertSigningKey(k) => insert(tx, key_row(&k, 1)).await,
        Write::UpdateSigningKey(k) => {
            update_versioned(
                tx,
                key_row(&k, k.version + 1),
                oidc_keys::Column::Id.eq(k.kid.clone()),
                oidc_keys::Column::Version.eq(rows::db_version(k.version)),
            )
            .await
        }
        Write::UpsertOidcConsent {
            user,
            client_id,
            scopes,
        } => {
            oidc_consents::Entity::insert(oidc_consents::ActiveModel {
                id: Set(format!("{user}:{client_id}")),
                user_id: Set(user.as_uuid()),
                scopes: Set(rows::to_json(&scopes)),
            })
            .on_conflict(
                OnConflict::column(oidc_consents::Column::Id)
                    .update_column(oidc_consents::Column::Scopes)
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await
            .map_err(db_err)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Reads.
pub(crate) async fn client_by_id(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<Client>, StoreError> {
    oidc_clients::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
        .map_err(db_err)?
        .map(client)
        .transpose()
}

pub(crate) async fn clients(db: &impl ConnectionTrait) -> Result<Vec<Client>, StoreError> {
    oidc_clients::Entity::find()
        .order_by_asc(oidc_clients::Column::CreatedAt)
        .order_by_asc(oidc_clients::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(client)
        .collect()
}

pub(crate) async fn grant_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<Grant>, StoreError> {
    oidc_grants::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
        .map(grant)
        .transpose()
}

pub(crate) async fn grants(
    db: &impl ConnectionTrait,
    user: Option<UserId>,
    session: Option<SessionId>,
) -> Result<Vec<Grant>, StoreError> {
    let mut q = oidc_grants::Entity::find();
    if let Some(u) = user {
        q = q.filter(oidc_grants::Column::UserId.eq(u.as_uuid()));
    }
    if let Some(s) = session {
        q = q.filter(oidc_grants::Column::SessionId.eq(s.as_uuid()));
    }
    q.order_by_asc(oidc_grants::Column::CreatedAt)
        .order_by_asc(oidc_grants::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(grant)
        .collect()
}

pub(crate) async fn token_by_hash(
    db: &impl ConnectionTrait,
    hash: &TokenHash,
) -> Result<Option<OidcToken>, StoreError> {
    oidc_tokens::Entity::find_by_id(hash.to_hex())
        .one(db)
        .await
        .map_err(db_err)?
        .map(token)
        .transpose()
}

pub(crate) async fn consent(
    db: &impl ConnectionTrait,
    user: UserId,
    client_id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    oidc_consents::Entity::find_by_id(format!("{user}:{client_id}"))
        .one(db)
        .await
        .map_err(db_err)?
        .map(|m| serde_json::from_str(&m.scopes).map_err(|_| bad("oidc_consent", "invalid scopes")))
        .transpose()
}

pub(crate) async fn keys(db: &impl ConnectionTrait) -> Result<Vec<SigningKey>, StoreError> {
    oidc_keys::Entity::find()
        .order_by_asc(oidc_keys::Column::CreatedAt)
        .order_by_asc(oidc_keys::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(key)
        .collect()
}
