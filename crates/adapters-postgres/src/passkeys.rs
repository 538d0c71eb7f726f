//! The passkey ceremonies' challenges (migration 000007): single use (`used_at`, set by one
//! conditional `UPDATE`), expiring.

#![allow(missing_docs)]

use crate::rows::micros;
use crate::store::db_err;
use portal_core::customer::CorruptRecord;
use portal_core::ids::UserId;
use portal_core::passkey::{ChallengePurpose, PasskeyChallenge};
use portal_core::ports::{StoreError, Write};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
};
use uuid::Uuid;

pub(crate) mod passkey_challenges {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkey_challenges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Option<Uuid>,
        pub purpose: String,
        pub state: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn challenge(m: passkey_challenges::Model) -> Result<PasskeyChallenge, StoreError> {
    Ok(PasskeyChallenge {
        id: m.id,
        user: m.user_id.map(UserId::from_uuid),
        purpose: ChallengePurpose::from_key(&m.purpose).ok_or(StoreError::Corrupt(
            CorruptRecord::new("passkey_challenge", "unknown purpose"),
        ))?,
        state: m.state,
        created_at: m.created_at,
        expires_at: m.expires_at,
        used_at: m.used_at,
    })
}

pub(crate) async fn apply(tx: &DatabaseTransaction, w: Write) -> Result<(), StoreError> {
    match w {
        Write::InsertPasskeyChallenge(c) => {
            let row = passkey_challenges::ActiveModel {
                id: Set(c.id),
                user_id: Set(c.user.map(|u| u.as_uuid())),
                purpose: Set(c.purpose.key().to_owned()),
                state: Set(c.state),
                created_at: Set(micros(c.created_at)),
                expires_at: Set(micros(c.expires_at)),
                used_at: Set(c.used_at.map(micros)),
            };
            match passkey_challenges::Entity::insert(row)
                .exec_without_returning(tx)
                .await
                .map_err(db_err)
            {
                Ok(_) => Ok(()),
                Err(StoreError::Duplicate(_)) => Err(StoreError::Conflict),
                Err(e) => Err(e),
            }
        }
        Write::UsePasskeyChallenge { id, at } => {
            // One statement decides: of two concurrent answers exactly one changes the row.
            let res = passkey_challenges::Entity::update_many()
                .col_expr(
                    passkey_challenges::Column::UsedAt,
                    Expr::value(Some(micros(at))),
                )
                .filter(passkey_challenges::Column::Id.eq(id))
                .filter(passkey_challenges::Column::UsedAt.is_null())
                .exec(tx)
                .await
                .map_err(db_err)?;
            if res.rows_affected == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        }
        _ => Err(StoreError::backend("not a passkey write")),
    }
}

pub(crate) async fn by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<PasskeyChallenge>, StoreError> {
    passkey_challenges::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
        .map(challenge)
        .transpose()
}
