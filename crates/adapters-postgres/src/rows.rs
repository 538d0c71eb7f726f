//! Rows ⇄ portal-core entities. Reading is strict: a value that the domain would not accept (an
//! e-mail that does not parse or is not in its normal form, an unknown role or status key, a
//! malformed permission key, a negative version) makes the whole row [`CorruptRecord`]. Nothing
//! is "fixed" on the way in.

use crate::entity::{
    action_tokens, admin_requests, audit_entries, challenges, customers, legacy_claims, outbox,
    sessions, users,
};
use chrono::{DateTime, Utc};
use portal_core::admin_request::{AdminRequest, AdminRequestRecord, AdminRequestStatus};
use portal_core::audit::{ActorKind, ActorRef, AuditCategory, AuditEntry, AuditRecord, ChainHash};
use portal_core::challenge::{ChallengePurpose, ChallengeRecord, EmailChallenge};
use portal_core::customer::{
    AffiliationKey, CorruptRecord, Customer, CustomerRecord, SecondFactorPolicy,
};
use portal_core::ids::{
    ActionTokenId, AdminRequestId, AuditEntryId, ChallengeId, CustomerId, OutboxId, SessionId,
    UserId,
};
use portal_core::outbox::{OutboxEntry, OutboxMessage, OutboxStatus, Payload};
use portal_core::password::PasswordHash;
use portal_core::ports::LegacyClaim;
use portal_core::secret::TokenHash;
use portal_core::session::{ClientInfo, Session, SessionRecord};
use portal_core::token::{ActionToken, ActionTokenRecord, TokenPurpose};
use portal_core::user::{AccountState, Role, User, UserRecord};
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use sea_orm::ActiveValue::Set;
use uuid::Uuid;

/// The chain key of the global audit chain (customer chains use the customer id).
pub(crate) const GLOBAL_CHAIN: Uuid = Uuid::nil();

pub(crate) fn chain_key(customer: Option<CustomerId>) -> Uuid {
    customer.map_or(GLOBAL_CHAIN, |c| c.as_uuid())
}

fn bad(entity: &'static str, reason: impl Into<String>) -> CorruptRecord {
    CorruptRecord::new(entity, reason)
}

/// Parses with a domain constructor and insists the stored text was already in normal form.
fn strict<T, E>(
    entity: &'static str,
    field: &str,
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    as_str: impl FnOnce(&T) -> &str,
) -> Result<T, CorruptRecord> {
    let v = parse(raw).map_err(|_| bad(entity, format!("invalid {field}")))?;
    if as_str(&v) != raw {
        return Err(bad(entity, format!("{field} not in normal form")));
    }
    Ok(v)
}

fn email(entity: &'static str, raw: &str) -> Result<EmailAddress, CorruptRecord> {
    strict(
        entity,
        "email",
        raw,
        EmailAddress::parse,
        EmailAddress::as_str,
    )
}

fn person(entity: &'static str, field: &str, raw: &str) -> Result<PersonName, CorruptRecord> {
    strict(
        entity,
        field,
        raw,
        PersonName::from_stored,
        PersonName::as_str,
    )
}

fn language(entity: &'static str, raw: &str) -> Result<Language, CorruptRecord> {
    match raw {
        "de" => Ok(Language::De),
        "en" => Ok(Language::En),
        _ => Err(bad(entity, "unknown language")),
    }
}

fn json<T: serde::de::DeserializeOwned>(
    entity: &'static str,
    field: &str,
    raw: &str,
) -> Result<T, CorruptRecord> {
    serde_json::from_str(raw).map_err(|_| bad(entity, format!("invalid {field}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serialising plain data structs (sets of keys, tagged enums) to a String cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| String::from("null"))
}

/// Zero rows matched a version-checked statement: the row changed or is gone (`Conflict`).
pub(crate) fn one_row(rows: u64) -> Result<(), portal_core::ports::StoreError> {
    if rows == 0 {
        Err(portal_core::ports::StoreError::Conflict)
    } else {
        Ok(())
    }
}

/// A stored version; a negative one makes the row corrupt.
pub(crate) fn version(entity: &'static str, v: i64) -> Result<u64, CorruptRecord> {
    u64::try_from(v).map_err(|_| bad(entity, "negative version"))
}

fn count(entity: &'static str, field: &str, v: i64) -> Result<u32, CorruptRecord> {
    u32::try_from(v).map_err(|_| bad(entity, format!("{field} out of range")))
}

pub(crate) fn db_version(v: u64) -> i64 {
    // Versions count commits; 2^63 of them will not happen.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn hash(entity: &'static str, field: &str, raw: &str) -> Result<TokenHash, CorruptRecord> {
    TokenHash::from_hex(raw).ok_or_else(|| bad(entity, format!("invalid {field}")))
}

fn password(
    entity: &'static str,
    raw: Option<String>,
) -> Result<Option<PasswordHash>, CorruptRecord> {
    raw.map(|p| PasswordHash::from_phc(p).map_err(|_| bad(entity, "invalid password hash")))
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------------

pub(crate) fn customer(m: customers::Model) -> Result<Customer, CorruptRecord> {
    const E: &str = "customer";
    let rec = CustomerRecord {
        id: CustomerId::from_uuid(m.id),
        number: strict(
            E,
            "number",
            &m.number,
            CustomerNumber::parse,
            CustomerNumber::as_str,
        )?,
        name: strict(
            E,
            "name",
            &m.name,
            CompanyName::from_stored,
            CompanyName::as_str,
        )?,
        affiliations: json(E, "affiliations", &m.affiliations)?,
        channel: json(E, "channel", &m.channel)?,
        entitlements: json(E, "entitlements", &m.entitlements)?,
        default_permissions: json(E, "default permissions", &m.default_permissions)?,
        second_factor_policy: SecondFactorPolicy::from_key(&m.second_factor_policy)
            .ok_or_else(|| bad(E, "unknown second factor policy"))?,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: version(E, m.version)?,
    };
    Customer::from_record(rec)
}

pub(crate) fn customer_row(c: &Customer, version: u64) -> customers::ActiveModel {
    let r = c.record();
    customers::ActiveModel {
        id: Set(r.id.as_uuid()),
        number: Set(r.number.as_str().to_owned()),
        name: Set(r.name.as_str().to_owned()),
        name_lower: Set(r.name.as_str().to_lowercase()),
        affiliations: Set(to_json(&r.affiliations)),
        channel: Set(to_json(&r.channel)),
        entitlements: Set(to_json(&r.entitlements)),
        default_permissions: Set(to_json(&r.default_permissions)),
        second_factor_policy: Set(r.second_factor_policy.key().to_owned()),
        created_at: Set(micros(r.created_at)),
        updated_at: Set(micros(r.updated_at)),
        version: Set(db_version(version)),
    }
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

pub(crate) fn user(m: users::Model) -> Result<User, CorruptRecord> {
    const E: &str = "user";
    let rec = UserRecord {
        id: UserId::from_uuid(m.id),
        email: email(E, &m.email)?,
        first_name: person(E, "first name", &m.first_name)?,
        last_name: person(E, "last name", &m.last_name)?,
        language: language(E, &m.language)?,
        role: Role::from_key(&m.role).ok_or_else(|| bad(E, "unknown role"))?,
        state: AccountState::from_key(&m.state).ok_or_else(|| bad(E, "unknown state"))?,
        lock: m.lock.as_deref().map(|l| json(E, "lock", l)).transpose()?,
        customer_id: m.customer_id.map(CustomerId::from_uuid),
        affiliation: m
            .affiliation
            .as_deref()
            .map(|a| {
                strict(
                    E,
                    "affiliation",
                    a,
                    AffiliationKey::parse,
                    AffiliationKey::as_str,
                )
            })
            .transpose()?,
        permissions: json(E, "permissions", &m.permissions)?,
        password_hash: password(E, m.password_hash)?,
        mfa: json(E, "mfa", &m.mfa)?,
        last_login_at: m.last_login_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: version(E, m.version)?,
    };
    User::from_record(rec)
}

pub(crate) fn user_row(u: &User, version: u64) -> users::ActiveModel {
    let r = u.record();
    users::ActiveModel {
        id: Set(r.id.as_uuid()),
        email: Set(r.email.as_str().to_owned()),
        first_name: Set(r.first_name.as_str().to_owned()),
        last_name: Set(r.last_name.as_str().to_owned()),
        language: Set(r.language.code().to_owned()),
        role: Set(r.role.key().to_owned()),
        state: Set(r.state.key().to_owned()),
        lock: Set(r.lock.as_ref().map(to_json)),
        customer_id: Set(r.customer_id.map(|c| c.as_uuid())),
        affiliation: Set(r.affiliation.as_ref().map(|a| a.as_str().to_owned())),
        permissions: Set(to_json(&r.permissions)),
        password_hash: Set(r.password_hash.as_ref().map(|p| p.as_phc().to_owned())),
        last_login_at: Set(r.last_login_at.map(micros)),
        created_at: Set(micros(r.created_at)),
        updated_at: Set(micros(r.updated_at)),
        version: Set(db_version(version)),
        sort_key: Set(u.sort_key()),
        search_text: Set(u.search_text()),
        mfa: Set(to_json(&r.mfa)),
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions, challenges, tokens
// ---------------------------------------------------------------------------------------------

pub(crate) fn session(m: sessions::Model) -> Result<Session, CorruptRecord> {
    const E: &str = "session";
    Session::from_record(SessionRecord {
        id: SessionId::from_uuid(m.id),
        token_hash: hash(E, "token hash", &m.token_hash)?,
        user_id: UserId::from_uuid(m.user_id),
        created_at: m.created_at,
        last_seen_at: m.last_seen_at,
        idle_expires_at: m.idle_expires_at,
        expires_at: m.expires_at,
        authenticated_at: m.authenticated_at,
        client: ClientInfo {
            ip: m.client_ip,
            user_agent: m.user_agent,
        },
        kind: json(E, "kind", &m.kind)?,
        methods: json(E, "methods", &m.methods)?,
    })
}

pub(crate) fn session_row(s: &Session) -> sessions::ActiveModel {
    let r = s.record();
    sessions::ActiveModel {
        id: Set(r.id.as_uuid()),
        token_hash: Set(r.token_hash.to_hex()),
        user_id: Set(r.user_id.as_uuid()),
        created_at: Set(micros(r.created_at)),
        last_seen_at: Set(micros(r.last_seen_at)),
        idle_expires_at: Set(micros(r.idle_expires_at)),
        expires_at: Set(micros(r.expires_at)),
        authenticated_at: Set(micros(r.authenticated_at)),
        client_ip: Set(r.client.ip.clone()),
        user_agent: Set(r.client.user_agent.clone()),
        kind: Set(to_json(&r.kind)),
        methods: Set(to_json(&r.methods)),
    }
}

pub(crate) fn challenge(m: challenges::Model) -> Result<EmailChallenge, CorruptRecord> {
    const E: &str = "challenge";
    let purpose = match (m.purpose.as_str(), m.invitation_token) {
        ("registration", None) => ChallengePurpose::Registration,
        ("existing_account", None) => ChallengePurpose::ExistingAccount,
        ("email_change", None) => ChallengePurpose::EmailChange,
        ("invitation", Some(t)) => ChallengePurpose::Invitation {
            token: ActionTokenId::from_uuid(t),
        },
        _ => return Err(bad(E, "unknown purpose")),
    };
    EmailChallenge::from_record(ChallengeRecord {
        id: ChallengeId::from_uuid(m.id),
        ticket_hash: hash(E, "ticket hash", &m.ticket_hash)?,
        user_id: UserId::from_uuid(m.user_id),
        purpose,
        email: email(E, &m.email)?,
        code_hash: hash(E, "code hash", &m.code_hash)?,
        password_hash: password(E, m.password_hash)?,
        expires_at: m.expires_at,
        attempts_left: count(E, "attempts left", m.attempts_left)?,
        sends: count(E, "sends", m.sends)?,
        last_sent_at: m.last_sent_at,
        created_at: m.created_at,
        version: version(E, m.version)?,
    })
}

pub(crate) fn challenge_row(c: &EmailChallenge, version: u64) -> challenges::ActiveModel {
    let r = c.record();
    let invitation_token = match r.purpose {
        ChallengePurpose::Invitation { token } => Some(token.as_uuid()),
        ChallengePurpose::Registration
        | ChallengePurpose::ExistingAccount
        | ChallengePurpose::EmailChange => None,
    };
    challenges::ActiveModel {
        id: Set(r.id.as_uuid()),
        ticket_hash: Set(r.ticket_hash.to_hex()),
        user_id: Set(r.user_id.as_uuid()),
        purpose: Set(r.purpose.key().to_owned()),
        invitation_token: Set(invitation_token),
        email: Set(r.email.as_str().to_owned()),
        code_hash: Set(r.code_hash.to_hex()),
        password_hash: Set(r.password_hash.as_ref().map(|p| p.as_phc().to_owned())),
        expires_at: Set(micros(r.expires_at)),
        attempts_left: Set(i64::from(r.attempts_left)),
        sends: Set(i64::from(r.sends)),
        last_sent_at: Set(micros(r.last_sent_at)),
        created_at: Set(micros(r.created_at)),
        version: Set(db_version(version)),
    }
}

pub(crate) fn action_token(m: action_tokens::Model) -> Result<ActionToken, CorruptRecord> {
    const E: &str = "action token";
    ActionToken::from_record(ActionTokenRecord {
        id: ActionTokenId::from_uuid(m.id),
        hash: hash(E, "hash", &m.token_hash)?,
        purpose: TokenPurpose::from_key(&m.purpose).ok_or_else(|| bad(E, "unknown purpose"))?,
        user_id: UserId::from_uuid(m.user_id),
        created_at: m.created_at,
        expires_at: m.expires_at,
        used_at: m.used_at,
        version: version(E, m.version)?,
    })
}

pub(crate) fn action_token_row(t: &ActionToken, version: u64) -> action_tokens::ActiveModel {
    let r = t.record();
    action_tokens::ActiveModel {
        id: Set(r.id.as_uuid()),
        token_hash: Set(r.hash.to_hex()),
        purpose: Set(r.purpose.key().to_owned()),
        user_id: Set(r.user_id.as_uuid()),
        created_at: Set(micros(r.created_at)),
        expires_at: Set(micros(r.expires_at)),
        used_at: Set(r.used_at.map(micros)),
        version: Set(db_version(version)),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin requests, legacy claims
// ---------------------------------------------------------------------------------------------

pub(crate) fn admin_request(m: admin_requests::Model) -> Result<AdminRequest, CorruptRecord> {
    const E: &str = "admin request";
    AdminRequest::from_record(AdminRequestRecord {
        id: AdminRequestId::from_uuid(m.id),
        customer_id: CustomerId::from_uuid(m.customer_id),
        requester: UserId::from_uuid(m.requester),
        status: AdminRequestStatus::from_key(&m.status).ok_or_else(|| bad(E, "unknown status"))?,
        consented_by: m.consented_by.map(UserId::from_uuid),
        decided_by: m.decided_by.map(UserId::from_uuid),
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: version(E, m.version)?,
    })
}

pub(crate) fn admin_request_row(r: &AdminRequest, version: u64) -> admin_requests::ActiveModel {
    let r = r.record();
    admin_requests::ActiveModel {
        id: Set(r.id.as_uuid()),
        customer_id: Set(r.customer_id.as_uuid()),
        requester: Set(r.requester.as_uuid()),
        status: Set(r.status.key().to_owned()),
        consented_by: Set(r.consented_by.map(|u| u.as_uuid())),
        decided_by: Set(r.decided_by.map(|u| u.as_uuid())),
        created_at: Set(micros(r.created_at)),
        updated_at: Set(micros(r.updated_at)),
        version: Set(db_version(version)),
    }
}

pub(crate) fn legacy_claim(m: legacy_claims::Model) -> LegacyClaim {
    LegacyClaim {
        legacy_id: m.legacy_id,
        user_id: UserId::from_uuid(m.user_id),
        customer_id: CustomerId::from_uuid(m.customer_id),
        claimed_at: m.claimed_at,
    }
}

pub(crate) fn legacy_claim_row(c: &LegacyClaim) -> legacy_claims::ActiveModel {
    legacy_claims::ActiveModel {
        legacy_id: Set(c.legacy_id.clone()),
        user_id: Set(c.user_id.as_uuid()),
        customer_id: Set(c.customer_id.as_uuid()),
        claimed_at: Set(micros(c.claimed_at)),
    }
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

pub(crate) fn audit_entry(m: audit_entries::Model) -> Result<AuditEntry, CorruptRecord> {
    const E: &str = "audit entry";
    let chain = |raw: &str, field: &str| {
        ChainHash::from_hex(raw).ok_or_else(|| bad(E, format!("invalid {field}")))
    };
    let seq = version(E, m.seq)?;
    if m.chain_key != chain_key(m.customer_id.map(CustomerId::from_uuid)) {
        return Err(bad(E, "entry outside its customer's chain"));
    }
    Ok(AuditEntry {
        record: AuditRecord {
            id: AuditEntryId::from_uuid(m.id),
            at: m.at,
            customer: m.customer_id.map(CustomerId::from_uuid),
            actor: ActorRef {
                kind: ActorKind::from_key(&m.actor_kind)
                    .ok_or_else(|| bad(E, "unknown actor kind"))?,
                user: m.actor_user.map(UserId::from_uuid),
            },
            subject: m.subject.map(UserId::from_uuid),
            category: AuditCategory::from_key(&m.category)
                .ok_or_else(|| bad(E, "unknown category"))?,
            details: m.details,
        },
        seq,
        prev_hash: chain(&m.prev_hash, "previous hash")?,
        hash: chain(&m.hash, "hash")?,
    })
}

pub(crate) fn audit_row(e: &AuditEntry) -> audit_entries::ActiveModel {
    let r = &e.record;
    audit_entries::ActiveModel {
        id: Set(r.id.as_uuid()),
        chain_key: Set(chain_key(r.customer)),
        seq: Set(db_version(e.seq)),
        at: Set(micros(r.at)),
        customer_id: Set(r.customer.map(|c| c.as_uuid())),
        actor_kind: Set(r.actor.kind.key().to_owned()),
        actor_user: Set(r.actor.user.map(|u| u.as_uuid())),
        subject: Set(r.subject.map(|u| u.as_uuid())),
        category: Set(r.category.key().to_owned()),
        details: Set(r.details.clone()),
        details_lower: Set(r.details.to_lowercase()),
        prev_hash: Set(e.prev_hash.to_hex()),
        hash: Set(e.hash.to_hex()),
    }
}

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

pub(crate) fn outbox_entry(m: outbox::Model) -> Result<OutboxEntry, CorruptRecord> {
    const E: &str = "outbox message";
    let payload = Payload::from_stored(&m.kind, &m.recipient, &m.payload)
        .map_err(|_| bad(E, "payload does not fit its kind"))?;
    Ok(OutboxEntry {
        message: OutboxMessage {
            id: OutboxId::from_uuid(m.id),
            created_at: m.created_at,
            payload,
        },
        status: OutboxStatus::from_key(&m.status).ok_or_else(|| bad(E, "unknown status"))?,
        attempts: count(E, "attempts", m.attempts)?,
        next_attempt_at: m.next_attempt_at,
        claim: m.claim,
        claimed_until: m.claimed_until,
        last_error: m.last_error,
        sent_at: m.sent_at,
    })
}

pub(crate) fn outbox_row(message: &OutboxMessage) -> outbox::ActiveModel {
    outbox::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        id: Set(message.id.as_uuid()),
        created_at: Set(micros(message.created_at)),
        kind: Set(message.payload.kind_key().to_owned()),
        recipient: Set(message.payload.recipient()),
        payload: Set(message.payload.to_json()),
        status: Set(OutboxStatus::Pending.key().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(micros(message.created_at)),
        claim: Set(None),
        claimed_until: Set(None),
        last_error: Set(None),
        sent_at: Set(None),
    }
}

/// Every stored time is truncated to whole microseconds on write (and every time a query
/// compares with), on both backends: Postgres's `timestamptz` has no finer precision, SQLite's
/// text would keep nanoseconds, and the in-memory adapter truncates the same way. A value
/// written with nanoseconds therefore reads back identically everywhere.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}
