//! Reads. Every list is bounded (`limit + 1` rows) and follows an index: users by
//! `(customer_id, sort_key, id)`, audit entries by `(chain_key, seq)`, customers by `number`.

use crate::entity::{
    action_tokens, admin_requests, audit_entries, challenges, customers, legacy_claims, sessions,
    users,
};
use crate::rows::{self, micros};
use crate::store::{SqlStore, corrupt, db_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portal_core::admin_request::AdminRequest;
use portal_core::audit::AuditEntry;
use portal_core::challenge::EmailChallenge;
use portal_core::customer::Customer;
use portal_core::ids::{AdminRequestId, CustomerId, UserId};
use portal_core::ports::{
    AdminRequestFilter, AuditQuery, Counter, CustomerQuery, LegacyClaim, PageStart, Queries,
    SessionContext, StoreError, UserQuery,
};
use portal_core::secret::TokenHash;
use portal_core::session::Session;
use portal_core::token::{ActionToken, TokenPurpose};
use portal_core::user::{AccountState, Role, User};
use portal_core::values::{CustomerNumber, EmailAddress};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, FromQueryResult, IdenStatic, IntoSimpleExpr,
    Iterable, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement,
};
use std::collections::HashMap;
use std::sync::OnceLock;
use uuid::Uuid;

const PENDING: &str = AccountState::PendingVerification.key();

/// Column prefixes of the joined session lookup.
const SESSION_PREFIX: &str = "s_";
const USER_PREFIX: &str = "u_";
const CUSTOMER_PREFIX: &str = "c_";

/// The joined session lookup of [`Queries::session_context`]: the live session with this token
/// hash, its user and (left-joined) customer, every column under its table's prefix. Its values
/// are, in order, the token hash and `now` twice (no `LIMIT`: the hash is unique).
fn session_context_query(token_hash: &TokenHash, now: DateTime<Utc>) -> SelectStatement {
    let mut q = Query::select();
    for c in sessions::Column::iter() {
        q.expr_as(
            Expr::col((sessions::Entity, c)),
            Alias::new(format!("{SESSION_PREFIX}{}", c.as_str())),
        );
    }
    for c in users::Column::iter() {
        q.expr_as(
            Expr::col((users::Entity, c)),
            Alias::new(format!("{USER_PREFIX}{}", c.as_str())),
        );
    }
    for c in customers::Column::iter() {
        q.expr_as(
            Expr::col((customers::Entity, c)),
            Alias::new(format!("{CUSTOMER_PREFIX}{}", c.as_str())),
        );
    }
    q.from(sessions::Entity)
        .inner_join(
            users::Entity,
            Expr::col((users::Entity, users::Column::Id))
                .equals((sessions::Entity, sessions::Column::UserId)),
        )
        .left_join(
            customers::Entity,
            Expr::col((customers::Entity, customers::Column::Id))
                .equals((users::Entity, users::Column::CustomerId)),
        )
        .and_where(
            Expr::col((sessions::Entity, sessions::Column::TokenHash)).eq(token_hash.to_hex()),
        )
        .and_where(Expr::col((sessions::Entity, sessions::Column::IdleExpiresAt)).gt(now))
        .and_where(Expr::col((sessions::Entity, sessions::Column::ExpiresAt)).gt(now));
    q
}

/// The SQL of [`session_context_query`] for `backend`, rendered once: building and rendering the
/// statement took 28 µs per request (release build), a sizeable share of an authenticated
/// request's CPU; every request binds its own values to this text.
fn session_context_sql(backend: DbBackend) -> &'static str {
    static POSTGRES: OnceLock<String> = OnceLock::new();
    static SQLITE: OnceLock<String> = OnceLock::new();
    let cell = match backend {
        DbBackend::Postgres => &POSTGRES,
        _ => &SQLITE,
    };
    cell.get_or_init(|| {
        backend
            .build(&session_context_query(
                &TokenHash::from_bytes([0; 32]),
                DateTime::<Utc>::UNIX_EPOCH,
            ))
            .sql
    })
}

/// `LIKE` pattern for a literal substring: `%`, `_` and the escape character itself lose their
/// wildcard meaning.
pub(crate) fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// SQLite's FTS5 trigram tables (with their map tables from FTS rowid to the row's id).
#[derive(Debug, Clone, Copy)]
pub(crate) enum SearchIndex {
    /// `users.search_text`.
    Users,
    /// `audit_entries.details_lower`.
    Audit,
}

impl SearchIndex {
    fn candidates_sql(self) -> &'static str {
        match self {
            Self::Users => {
                "SELECT m.user_id FROM users_search \
                 JOIN users_search_map m ON m.id = users_search.rowid \
                 WHERE users_search MATCH ?1 LIMIT ?2"
            }
            Self::Audit => {
                "SELECT m.entry_id FROM audit_search \
                 JOIN audit_search_map m ON m.id = audit_search.rowid \
                 WHERE audit_search MATCH ?1 LIMIT ?2"
            }
        }
    }
}

impl SqlStore {
    /// `col` contains `needle`, case-sensitively (the searched columns are stored lower-case).
    ///
    /// Postgres: `LIKE '%…%'`, which the trigram GIN index answers. SQLite: `instr()`, because
    /// SQLite's `LIKE` ignores ASCII case and so would find more than the other backends.
    pub(crate) fn contains(&self, col: impl IntoSimpleExpr, needle: &str) -> Expr {
        match self.backend {
            DbBackend::Postgres => col
                .into_simple_expr()
                .like(LikeExpr::new(like_pattern(needle)).escape('\\')),
            _ => Expr::expr(
                Func::cust(Alias::new("instr"))
                    .arg(col.into_simple_expr())
                    .arg(needle.to_owned()),
            )
            .gt(0),
        }
    }

    async fn all_users(&self, select: Select<users::Entity>) -> Result<Vec<User>, StoreError> {
        select
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| self.read_user(m))
            .collect()
    }

    /// [`all_users`](Self::all_users) for a search (custom plans on Postgres).
    async fn searched_users(&self, select: Select<users::Entity>) -> Result<Vec<User>, StoreError> {
        self.all_searched(select)
            .await?
            .into_iter()
            .map(|m| self.read_user(m))
            .collect()
    }

    /// A customer's accounts, optionally those whose search text contains `search`.
    async fn customer_users(
        &self,
        customer: CustomerId,
        search: Option<&str>,
    ) -> Result<Select<users::Entity>, StoreError> {
        let mut q = users::Entity::find()
            .filter(users::Column::CustomerId.eq(customer.as_uuid()))
            .filter(users::Column::State.ne(PENDING));
        if let Some(s) = search {
            if let Some(ids) = self.sqlite_rare_matches(SearchIndex::Users, s).await? {
                q = q.filter(users::Column::Id.is_in(ids));
            }
            q = q.filter(self.contains(users::Column::SearchText, s));
        }
        Ok(q)
    }

    /// SQLite only: the ids of the rows whose indexed text contains `needle`, from an FTS5
    /// trigram `index` (`users_search`, `audit_search`) and its map table, when there are few
    /// of them. Then the page is built from those rows by primary key. `None` (a common term, a
    /// needle shorter than a trigram, or Postgres) means: walk the customer's index in page
    /// order and test each row, which fills a page at once exactly when there are many matches.
    /// The trigram index finds candidates across all customers; the customer filter and the
    /// exact `instr` test stay in the main query.
    async fn sqlite_rare_matches(
        &self,
        index: SearchIndex,
        needle: &str,
    ) -> Result<Option<Vec<Uuid>>, StoreError> {
        const RARE: usize = 500;
        if self.backend != DbBackend::Sqlite || needle.chars().count() < 3 {
            return Ok(None);
        }
        let phrase = format!("\"{}\"", needle.replace('"', "\"\""));
        let rows = sea_orm::ConnectionTrait::query_all_raw(
            &self.db,
            Statement::from_sql_and_values(
                DbBackend::Sqlite,
                index.candidates_sql(),
                [
                    phrase.into(),
                    i64::try_from(RARE + 1).unwrap_or(i64::MAX).into(),
                ],
            ),
        )
        .await
        .map_err(db_err)?;
        if rows.len() > RARE {
            return Ok(None);
        }
        rows.iter()
            .map(|r| r.try_get_by_index::<Uuid>(0).map_err(db_err))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The capped count as a statement: `SELECT count(*) FROM (SELECT 1 … LIMIT cap) t`.
    fn capped_count(inner: SelectStatement) -> SelectStatement {
        Query::select()
            .expr(Expr::cust("count(*)"))
            .from_subquery(inner, Alias::new("capped"))
            .to_owned()
    }
}

fn limit(n: u32) -> u64 {
    u64::from(n) + 1
}

#[async_trait]
impl Queries for SqlStore {
    async fn customer(&self, id: CustomerId) -> Result<Option<Customer>, StoreError> {
        customers::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| self.read_customer(m))
            .transpose()
    }

    async fn customer_by_number(
        &self,
        number: &CustomerNumber,
    ) -> Result<Option<Customer>, StoreError> {
        customers::Entity::find()
            .filter(customers::Column::Number.eq(number.as_str()))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| self.read_customer(m))
            .transpose()
    }

    async fn customers(&self, query: &CustomerQuery) -> Result<Vec<Customer>, StoreError> {
        let mut q = customers::Entity::find();
        if let Some(after) = &query.after {
            q = q.filter(customers::Column::Number.gt(after.as_str()));
        }
        if let Some(s) = &query.search {
            q = q.filter(
                Condition::any()
                    .add(self.contains(customers::Column::Number, s))
                    .add(self.contains(customers::Column::NameLower, s)),
            );
        }
        let q = q
            .order_by_asc(customers::Column::Number)
            .limit(limit(query.limit));
        let found = if query.search.is_some() {
            self.all_searched(q).await?
        } else {
            q.all(&self.db).await.map_err(db_err)?
        };
        found.into_iter().map(|m| self.read_customer(m)).collect()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        users::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| self.read_user(m))
            .transpose()
    }

    async fn users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(ids.len());
        // Bounded IN lists keep statements small whatever the caller asks for.
        for chunk in ids.chunks(500) {
            let q = users::Entity::find()
                .filter(users::Column::Id.is_in(chunk.iter().map(UserId::as_uuid)));
            out.extend(self.all_users(q).await?);
        }
        Ok(out)
    }

    async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .filter(users::Column::State.ne(PENDING))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| self.read_user(m))
            .transpose()
    }

    async fn users_of_customer(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        let mut q = self
            .customer_users(query.customer, query.search.as_deref())
            .await?
            .order_by_asc(users::Column::SortKey)
            .order_by_asc(users::Column::Id)
            .limit(limit(query.limit));
        match &query.start {
            PageStart::First => {}
            PageStart::Offset(n) => q = q.offset(u64::from(*n)),
            PageStart::After(c) => {
                q = q.filter(
                    Expr::tuple([
                        Expr::col(users::Column::SortKey),
                        Expr::col(users::Column::Id),
                    ])
                    .gt(Expr::tuple([
                        Expr::val(c.sort_key.clone()),
                        Expr::val(c.id.as_uuid()),
                    ])),
                );
            }
        }
        if query.search.is_some() {
            self.searched_users(q).await
        } else {
            self.all_users(q).await
        }
    }

    async fn count_users_of_customer(
        &self,
        customer: CustomerId,
        search: Option<String>,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let inner = self
            .customer_users(customer, search.as_deref())
            .await?
            .select_only()
            .expr(Expr::val(1))
            .limit(cap)
            .into_query();
        let stmt = Self::capped_count(inner);
        let row = if search.is_some() {
            self.one_searched(&stmt).await?
        } else {
            sea_orm::ConnectionTrait::query_one(&self.db, &stmt)
                .await
                .map_err(db_err)?
        };
        let n: i64 = match row {
            Some(r) => r.try_get_by_index(0).map_err(db_err)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn admins_of_customer(&self, customer: CustomerId) -> Result<Vec<User>, StoreError> {
        self.all_users(
            users::Entity::find()
                .filter(users::Column::Role.eq(Role::Administrator.key()))
                .filter(users::Column::CustomerId.eq(customer.as_uuid())),
        )
        .await
    }

    async fn operators(&self) -> Result<Vec<User>, StoreError> {
        self.all_users(users::Entity::find().filter(users::Column::Role.eq(Role::Operator.key())))
            .await
    }

    async fn session_context(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionContext>, StoreError> {
        let now = micros(now);
        // One round trip per request: the session with its user and (left-joined) customer,
        // each column under a prefix so the three rows decode as their own models. Expiry is
        // part of the query: an expired session is never even loaded.
        let stmt = Statement::from_sql_and_values(
            self.backend,
            session_context_sql(self.backend),
            [token_hash.to_hex().into(), now.into(), now.into()],
        );
        let Some(row) = sea_orm::ConnectionTrait::query_one_raw(&self.db, stmt)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let session = sessions::Model::from_query_result(&row, SESSION_PREFIX).map_err(db_err)?;
        let user = users::Model::from_query_result(&row, USER_PREFIX).map_err(db_err)?;
        let customer =
            customers::Model::from_query_result_optional(&row, CUSTOMER_PREFIX).map_err(db_err)?;
        let session = rows::session(session).map_err(corrupt)?;
        let user = self.read_user(user)?;
        let customer = match (user.customer_id(), customer) {
            (Some(_), Some(c)) => Some(self.read_customer(c)?),
            _ => None,
        };
        Ok(Some(SessionContext {
            session,
            user,
            customer,
        }))
    }

    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(sessions::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| rows::session(m).map_err(corrupt))
            .collect()
    }

    async fn count_challenges_sent_to(
        &self,
        email: &EmailAddress,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let inner = challenges::Entity::find()
            .select_only()
            .expr(Expr::val(1))
            .filter(challenges::Column::Email.eq(email.as_str()))
            .filter(challenges::Column::CreatedAt.gte(micros(since)))
            .limit(u64::from(u32::MAX))
            .into_query();
        let row = sea_orm::ConnectionTrait::query_one(&self.db, &Self::capped_count(inner))
            .await
            .map_err(db_err)?;
        let n: i64 = match row {
            Some(r) => r.try_get_by_index(0).map_err(db_err)?,
            None => 0,
        };
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn challenge_by_ticket(
        &self,
        ticket_hash: &TokenHash,
    ) -> Result<Option<EmailChallenge>, StoreError> {
        challenges::Entity::find()
            .filter(challenges::Column::TicketHash.eq(ticket_hash.to_hex()))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| rows::challenge(m).map_err(corrupt))
            .transpose()
    }

    async fn action_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<ActionToken>, StoreError> {
        action_tokens::Entity::find()
            .filter(action_tokens::Column::TokenHash.eq(hash.to_hex()))
            .filter(action_tokens::Column::Purpose.eq(purpose.key()))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| rows::action_token(m).map_err(corrupt))
            .transpose()
    }

    async fn action_tokens_of_user(
        &self,
        user: UserId,
        purpose: TokenPurpose,
    ) -> Result<Vec<ActionToken>, StoreError> {
        action_tokens::Entity::find()
            .filter(action_tokens::Column::UserId.eq(user.as_uuid()))
            .filter(action_tokens::Column::Purpose.eq(purpose.key()))
            .order_by_asc(action_tokens::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| rows::action_token(m).map_err(corrupt))
            .collect()
    }

    async fn admin_request(&self, id: AdminRequestId) -> Result<Option<AdminRequest>, StoreError> {
        admin_requests::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| rows::admin_request(m).map_err(corrupt))
            .transpose()
    }

    async fn admin_requests(
        &self,
        filter: &AdminRequestFilter,
    ) -> Result<Vec<AdminRequest>, StoreError> {
        let mut q = admin_requests::Entity::find();
        if let Some(c) = filter.customer {
            q = q.filter(admin_requests::Column::CustomerId.eq(c.as_uuid()));
        }
        if let Some(u) = filter.requester {
            q = q.filter(admin_requests::Column::Requester.eq(u.as_uuid()));
        }
        if !filter.statuses.is_empty() {
            q = q.filter(
                admin_requests::Column::Status.is_in(filter.statuses.iter().map(|s| s.key())),
            );
        }
        q.order_by_desc(admin_requests::Column::CreatedAt)
            .order_by_desc(admin_requests::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| rows::admin_request(m).map_err(corrupt))
            .collect()
    }

    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
        Ok(crate::entity::counters::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|m| Counter {
                count: u32::try_from(m.count).unwrap_or(u32::MAX),
                last_at: m.last_at,
            }))
    }

    async fn counters(&self, keys: &[String]) -> Result<Vec<Option<Counter>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for all of a login's counters.
        let found: HashMap<String, Counter> = crate::entity::counters::Entity::find()
            .filter(crate::entity::counters::Column::Key.is_in(keys.iter().cloned()))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| {
                let counter = Counter {
                    count: u32::try_from(m.count).unwrap_or(u32::MAX),
                    last_at: m.last_at,
                };
                (m.key, counter)
            })
            .collect();
        Ok(keys.iter().map(|k| found.get(k).copied()).collect())
    }

    async fn oidc_client(&self, id: &str) -> Result<Option<portal_core::oidc::Client>, StoreError> {
        crate::oidc::client_by_id(&self.db, id).await
    }

    async fn oidc_clients(&self) -> Result<Vec<portal_core::oidc::Client>, StoreError> {
        crate::oidc::clients(&self.db).await
    }

    async fn oidc_grant(&self, id: Uuid) -> Result<Option<portal_core::oidc::Grant>, StoreError> {
        crate::oidc::grant_by_id(&self.db, id).await
    }

    async fn oidc_grants_of_user(
        &self,
        user: UserId,
    ) -> Result<Vec<portal_core::oidc::Grant>, StoreError> {
        crate::oidc::grants(&self.db, Some(user), None).await
    }

    async fn oidc_grants_of_session(
        &self,
        session: portal_core::ids::SessionId,
    ) -> Result<Vec<portal_core::oidc::Grant>, StoreError> {
        crate::oidc::grants(&self.db, None, Some(session)).await
    }

    async fn oidc_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<portal_core::oidc::OidcToken>, StoreError> {
        crate::oidc::token_by_hash(&self.db, hash).await
    }

    async fn passkey_challenge(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<portal_core::passkey::PasskeyChallenge>, StoreError> {
        crate::passkeys::by_id(&self.db, id).await
    }

    async fn oidc_consent(
        &self,
        user: UserId,
        client_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        crate::oidc::consent(&self.db, user, client_id).await
    }

    async fn signing_keys(&self) -> Result<Vec<portal_core::oidc::SigningKey>, StoreError> {
        crate::oidc::keys(&self.db).await
    }

    async fn webhook(
        &self,
        id: Uuid,
    ) -> Result<Option<portal_core::webhook::WebhookEndpoint>, StoreError> {
        crate::webhooks::by_id(&self.db, id).await
    }

    async fn webhooks(&self) -> Result<Vec<portal_core::webhook::WebhookEndpoint>, StoreError> {
        crate::webhooks::all(&self.db).await
    }

    async fn webhook_snapshot(&self) -> Result<portal_core::webhook::WebhookSnapshot, StoreError> {
        crate::webhooks::snapshot(&self.db).await
    }

    async fn users_with_sealed_secrets(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        // `mfa` is JSON text; a sealed secret appears as its `sealed_secret` field (confirmed or
        // pending app). Rare enough (a rotation) to scan.
        let mut q = users::Entity::find()
            .filter(users::Column::Mfa.like("%\"sealed_secret\"%"))
            .order_by_asc(users::Column::Id)
            .limit(u64::from(limit));
        if let Some(a) = after {
            q = q.filter(users::Column::Id.gt(a.as_uuid()));
        }
        self.all_users(q).await
    }

    async fn stale_users(
        &self,
        kind: portal_core::ports::StaleUsers,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        use portal_core::ports::StaleUsers;
        let cutoff = micros(cutoff);
        let mut q = users::Entity::find()
            .filter(users::Column::CreatedAt.lte(cutoff))
            .limit(u64::from(limit));
        match kind {
            StaleUsers::PendingRegistrations => {
                q = q.filter(users::Column::State.eq(PENDING));
            }
            StaleUsers::Invitations => {
                let live_link = Query::select()
                    .expr(Expr::val(1))
                    .from(action_tokens::Entity)
                    .and_where(
                        Expr::col((action_tokens::Entity, action_tokens::Column::UserId))
                            .equals((users::Entity, users::Column::Id)),
                    )
                    .and_where(
                        Expr::col((action_tokens::Entity, action_tokens::Column::Purpose))
                            .eq(TokenPurpose::Invitation.key()),
                    )
                    .and_where(
                        Expr::col((action_tokens::Entity, action_tokens::Column::ExpiresAt))
                            .gt(cutoff),
                    )
                    .to_owned();
                q = q
                    .filter(users::Column::State.eq(AccountState::Invited.key()))
                    .filter(Expr::exists(live_link).not());
            }
        }
        self.all_users(q).await
    }

    async fn audit_checkpoint(
        &self,
        customer: Option<CustomerId>,
    ) -> Result<Option<portal_core::ports::AuditCheckpoint>, StoreError> {
        crate::ops::checkpoint(&self.db, customer).await
    }

    async fn sealing_keys(&self) -> Result<Vec<String>, StoreError> {
        crate::ops::sealing_key_ids(&self.db).await
    }

    async fn legacy_claim(&self, legacy_id: &str) -> Result<Option<LegacyClaim>, StoreError> {
        Ok(legacy_claims::Entity::find_by_id(legacy_id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(rows::legacy_claim))
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut q = audit_entries::Entity::find()
            .filter(audit_entries::Column::ChainKey.eq(rows::chain_key(query.customer)));
        if let Some(b) = query.before_seq {
            q = q.filter(audit_entries::Column::Seq.lt(rows::db_version(b)));
        }
        if let Some(s) = query.subject {
            q = q.filter(audit_entries::Column::Subject.eq(s.as_uuid()));
        }
        if !query.categories.is_empty() {
            q = q.filter(
                audit_entries::Column::Category.is_in(query.categories.iter().map(|c| c.key())),
            );
        }
        if let Some(f) = query.from {
            q = q.filter(audit_entries::Column::At.gte(micros(f)));
        }
        if let Some(u) = query.until {
            q = q.filter(audit_entries::Column::At.lt(micros(u)));
        }
        if let Some(s) = &query.search {
            let mut text =
                Condition::all().add(self.contains(audit_entries::Column::DetailsLower, s));
            if let Some(ids) = self.sqlite_rare_matches(SearchIndex::Audit, s).await? {
                text = text.add(audit_entries::Column::Id.is_in(ids));
            }
            let mut any = Condition::any().add(text);
            if !query.search_categories.is_empty() {
                any = any.add(
                    audit_entries::Column::Category
                        .is_in(query.search_categories.iter().map(|c| c.key())),
                );
            }
            q = q.filter(any);
        }
        let q = q
            .order_by_desc(audit_entries::Column::Seq)
            .limit(limit(query.limit));
        let found = if query.search.is_some() {
            self.all_searched(q).await?
        } else {
            q.all(&self.db).await.map_err(db_err)?
        };
        found
            .into_iter()
            .map(|m| rows::audit_entry(m).map_err(corrupt))
            .collect()
    }

    async fn audit_chain(
        &self,
        customer: Option<CustomerId>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        audit_entries::Entity::find()
            .filter(audit_entries::Column::ChainKey.eq(rows::chain_key(customer)))
            .filter(audit_entries::Column::Seq.gt(rows::db_version(after_seq)))
            .order_by_asc(audit_entries::Column::Seq)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| rows::audit_entry(m).map_err(corrupt))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached session lookup binds exactly the token hash and `now` twice, in that order,
    /// on both backends.
    #[test]
    fn the_cached_session_lookup_binds_hash_and_now_twice() {
        let hash = TokenHash::from_bytes([7; 32]);
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 123_000).unwrap();
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let built = backend.build(&session_context_query(&hash, now));
            assert_eq!(built.sql, session_context_sql(backend), "{backend:?}");
            let values: Vec<sea_orm::Value> = built.values.unwrap().0;
            assert_eq!(
                values,
                vec![hash.to_hex().into(), now.into(), now.into()],
                "{backend:?}"
            );
        }
    }
}
