//! Imported old accounts ("Servicewelt", R8; migration 000008): the SQL [`LegacyDirectory`].
//! One row per old username (its id, [`LegacyRecord::id_for`]) with the customer number and the
//! old password hash, which is set to NULL in the commit that links the account (the claim in
//! `legacy_claims` stays).

#![allow(missing_docs)]

use crate::rows::micros;
use crate::store::{SqlStore, db_err};
use async_trait::async_trait;
use portal_core::legacy_hash::LegacyHash;
use portal_core::ports::{LegacyAccount, LegacyDirectory, LegacyError, LegacyRecord, StoreError};
use portal_core::values::CustomerNumber;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

pub(crate) mod legacy_accounts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "legacy_accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        pub customer_number: String,
        pub password_hash: Option<String>,
        pub imported_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn record(m: legacy_accounts::Model) -> Result<LegacyRecord, String> {
    let customer_number =
        CustomerNumber::parse(&m.customer_number).map_err(|e| format!("customer_number: {e}"))?;
    let hash = m
        .password_hash
        .as_deref()
        .map(LegacyHash::parse)
        .transpose()
        .map_err(|e| format!("password_hash: {e}"))?;
    Ok(LegacyRecord {
        account: LegacyAccount {
            id: m.id,
            customer_number,
        },
        username: m.username,
        hash,
        imported_at: m.imported_at,
    })
}

/// Inserts or replaces an imported old account.
pub(crate) async fn put(tx: &DatabaseTransaction, r: &LegacyRecord) -> Result<(), StoreError> {
    use legacy_accounts::Column as C;
    legacy_accounts::Entity::insert(legacy_accounts::ActiveModel {
        id: Set(r.account.id.clone()),
        username: Set(r.username.clone()),
        customer_number: Set(r.account.customer_number.as_str().to_owned()),
        password_hash: Set(r.hash.as_ref().map(|h| h.as_str().to_owned())),
        imported_at: Set(micros(r.imported_at)),
    })
    .on_conflict(
        OnConflict::column(C::Id)
            .update_columns([
                C::Username,
                C::CustomerNumber,
                C::PasswordHash,
                C::ImportedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Deletes the old hash of a linked account (no row: nothing to delete).
pub(crate) async fn forget_hash(tx: &DatabaseTransaction, id: &str) -> Result<(), StoreError> {
    legacy_accounts::Entity::update_many()
        .col_expr(
            legacy_accounts::Column::PasswordHash,
            Expr::value(Option::<String>::None),
        )
        .filter(legacy_accounts::Column::Id.eq(id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl LegacyDirectory for SqlStore {
    async fn find(&self, username: &str) -> Result<Option<LegacyRecord>, LegacyError> {
        let row = legacy_accounts::Entity::find_by_id(LegacyRecord::id_for(username))
            .one(&self.db)
            .await
            .map_err(|e| LegacyError(db_err(e).to_string()))?;
        row.map(record)
            .transpose()
            .map_err(|e| LegacyError(format!("corrupt legacy account: {e}")))
    }
}
