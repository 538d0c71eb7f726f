//! Signed event webhooks: operators register endpoints that receive the change-log events they
//! choose, signed following the [Standard Webhooks](https://www.standardwebhooks.com/)
//! specification.
//!
//! * A [`WebhookEndpoint`] is a URL, the [`AuditCategory`]s it subscribes to, and its secret,
//!   sealed at rest like every other secret the server must read back
//!   ([`secretbox`](crate::secretbox), associated data `webhook:<id>`). The secret
//!   ([`WebhookSecret`], `whsec_` + base64 of 32 random bytes) is shown once, when the endpoint is
//!   registered or its secret rotated.
//! * Every commit that appends a change-log entry of a subscribed category queues, in the same
//!   commit, one [`WebhookDelivery`] per subscribed endpoint: an outbox message of kind
//!   [`OutboxKind::Webhook`](crate::outbox::OutboxKind::Webhook), delivered at least once with
//!   the outbox's retries, back-off and dead letters. Each delivery is its own message, so a
//!   dead-lettered one never holds up later ones.
//! * The event ([`WebhookEvent`]) carries the entry's sequence number in its customer's chain
//!   and the sequence number of the previous event of that chain queued for the same endpoint
//!   ([`WebhookEventData::previous_seq`]). The storage adapter fills both in while it appends the
//!   entry ([`WebhookDelivery::place`]), so they are exactly the chain's numbers. A receiver
//!   that keeps the last `seq` it processed per customer sees a gap (an event still being retried,
//!   or dead-lettered) when `previous_seq` is not that number, and the order when they arrive out
//!   of order.
//!
//! The signature itself (`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`)
//! is made at each attempt by the sender in `portal-dispatch`, over [`WebhookEvent::body`].

use crate::audit::{ActorRef, AuditCategory, AuditEntry};
use crate::ids::{AuditEntryId, CustomerId, UserId};
use crate::outbox::PayloadKind;
use crate::ports::SecretGenerator;
use crate::secret::SecretString;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The prefix of a secret in the Standard Webhooks form.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a secret (the specification asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// Longest accepted endpoint URL.
pub const MAX_URL_LEN: usize = 2_000;

/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// The registered endpoints as of one generation of the set: what a commit's webhook events are
/// computed from. Storage increases the generation with every write of an endpoint (insert,
/// update, delete), so a service that keeps a snapshot in memory learns at its next commit that
/// another process changed the set ([`StoreError::WebhooksChanged`](crate::ports::StoreError)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSnapshot {
    /// The generation of the set (0 before the first endpoint was ever written).
    pub generation: u64,
    /// Every endpoint, oldest first.
    pub endpoints: Vec<WebhookEndpoint>,
}

/// A registered receiver of change-log events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Id.
    pub id: Uuid,
    /// Where events are posted (absolute `http(s)` URL).
    pub url: String,
    /// What it is for, shown to operators.
    pub description: String,
    /// The categories of change-log entries it receives, by their stable keys.
    #[serde(with = "category_keys")]
    pub events: Vec<AuditCategory>,
    /// The secret, sealed ([`crate::secretbox`], associated data [`secret_aad`]).
    pub sealed_secret: String,
    /// Disabled: no new event is queued for it, and queued ones are dead-lettered.
    pub disabled: bool,
    /// When registered.
    pub created_at: DateTime<Utc>,
    /// When its secret was last rotated.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// Optimistic-locking version (1 when stored first).
    #[serde(skip)]
    pub version: u64,
}

impl WebhookEndpoint {
    /// Whether an entry of `category` is queued for this endpoint.
    #[must_use]
    pub fn wants(&self, category: AuditCategory) -> bool {
        !self.disabled && self.events.contains(&category)
    }

    /// The scheme and host of its URL, what the change log records (a URL's path or query may
    /// hold a receiver's token).
    #[must_use]
    pub fn origin(&self) -> String {
        origin(&self.url)
    }
}

/// The scheme and host (with port) of a URL; the whole text when it has no `://`.
#[must_use]
pub fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default()
                .rsplit('@')
                .next()
                .unwrap_or_default();
            format!("{scheme}://{host}")
        }
        None => String::new(),
    }
}

/// The associated data an endpoint's secret is sealed with: a sealed secret copied to another
/// endpoint's row does not open.
#[must_use]
pub fn secret_aad(id: Uuid) -> String {
    format!("webhook:{id}")
}

/// An endpoint's signing secret in the Standard Webhooks form, `whsec_` + base64 of
/// [`SECRET_BYTES`] random bytes. Shown once; `Debug` is redacted.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Draws a fresh secret; also returns its raw bytes, what is sealed.
    #[must_use]
    pub fn generate(random: &dyn SecretGenerator) -> (Self, Zeroizing<Vec<u8>>) {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        random.fill(&mut bytes);
        let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes.as_slice()));
        (Self(SecretString::new(text)), bytes)
    }

    /// The secret as a receiver configures it (`whsec_…`).
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// An outbox message of kind [`OutboxKind::Webhook`](crate::outbox::OutboxKind::Webhook): one
/// event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// The endpoint; the sender reads its URL, state and secret when it sends.
    pub endpoint: Uuid,
    /// The endpoint's URL when the event was queued (shown to operators).
    pub url: String,
    /// What is posted.
    pub event: WebhookEvent,
}

impl WebhookDelivery {
    /// Storage: finds, among the entries a commit appended, the one this delivery reports, and
    /// sets the event's `seq` to the entry's. Returns the entry's chain (its customer, `None`
    /// for the global chain) and `seq`, so the adapter can set
    /// [`previous_seq`](WebhookEventData::previous_seq) from its per-endpoint, per-chain cursor
    /// (see [`Committer::commit`](crate::ports::Committer::commit)); `None` when the entry is
    /// not among them.
    pub fn place(&mut self, entries: &[AuditEntry]) -> Option<(Option<CustomerId>, u64)> {
        let entry = entries
            .iter()
            .find(|e| e.record.id == self.event.data.entry_id)?;
        self.event.data.seq = entry.seq;
        Some((entry.record.customer, entry.seq))
    }
}

impl PayloadKind for WebhookDelivery {
    fn recipient(&self) -> String {
        origin(&self.url)
    }

    fn summary(&self) -> String {
        self.event.event_type.clone()
    }
}

/// What a webhook posts: the Standard Webhooks payload shape (`type`, `timestamp`, `data`).
/// Documented in the OpenAPI document under `webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The change-log category's stable key, e.g. `user.locked`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change happened (the entry's time, UTC).
    pub timestamp: DateTime<Utc>,
    /// The change-log entry.
    pub data: WebhookEventData,
}

impl WebhookEvent {
    /// The event for a change-log entry (`seq` and `previous_seq` are filled in by storage).
    #[must_use]
    pub fn for_entry(record: &crate::audit::AuditRecord, customer_number: Option<String>) -> Self {
        Self {
            event_type: record.category.key().to_owned(),
            timestamp: record.at,
            data: WebhookEventData {
                entry_id: record.id,
                customer_number,
                seq: 0,
                previous_seq: None,
                actor: record.actor,
                subject: record.subject,
                details: record.details.clone(),
            },
        }
    }

    /// The exact bytes posted and signed: compact JSON, the same at every attempt.
    #[must_use]
    pub fn body(&self) -> String {
        // A plain struct of strings, numbers and ids: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The change-log entry an event reports. No secrets and no personal data: entries hold ids,
/// categories and catalog keys only (R20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEventData {
    /// The entry's id.
    pub entry_id: AuditEntryId,
    /// The customer whose change log holds it (nine digits); `null` for the global log
    /// (operators' and the system's changes outside any customer).
    pub customer_number: Option<String>,
    /// The entry's sequence number in that log, from 1.
    pub seq: u64,
    /// The sequence number of the previous event of the same log queued for this endpoint;
    /// `null` for the first.
    pub previous_seq: Option<u64>,
    /// Who made the change.
    pub actor: ActorRef,
    /// Whom it concerns.
    pub subject: Option<UserId>,
    /// The entry's details, e.g. `permissions=+documents,-shop`.
    pub details: String,
}

/// Why a list of event types is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// None given.
    #[error("at least one event type")]
    Empty,
    /// Not a change-log category key.
    #[error("unknown event type")]
    Unknown,
}

/// Parses event types: change-log category keys (`user.locked`), separated by commas or
/// whitespace, or `all` for every category. Duplicates are dropped; the order is the
/// categories' own.
///
/// # Errors
/// [`EventsError`]; the input is not echoed back.
pub fn parse_events<'a>(
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<AuditCategory>, EventsError> {
    let mut wanted = Vec::new();
    for key in keys
        .into_iter()
        .flat_map(|k| k.split([',', ' ', '\n', '\t', '\r']))
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        if key == "all" {
            return Ok(AuditCategory::ALL.to_vec());
        }
        wanted.push(AuditCategory::from_key(key).ok_or(EventsError::Unknown)?);
    }
    let events: Vec<AuditCategory> = AuditCategory::ALL
        .iter()
        .copied()
        .filter(|c| wanted.contains(c))
        .collect();
    if events.is_empty() {
        return Err(EventsError::Empty);
    }
    Ok(events)
}

mod category_keys {
    use crate::audit::AuditCategory;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[AuditCategory], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|c| c.key()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AuditCategory>, D::Error> {
        let keys = Vec::<String>::deserialize(d)?;
        // A key a newer build wrote is skipped, not an error: the endpoint still reads.
        Ok(keys
            .iter()
            .filter_map(|k| AuditCategory::from_key(k))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, AuditRecord, ChainHash};
    use chrono::TimeZone;

    fn record() -> AuditRecord {
        AuditRecord {
            id: AuditEntryId::from_uuid(Uuid::from_u128(5)),
            at: Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap(),
            customer: Some(CustomerId::from_uuid(Uuid::from_u128(7))),
            actor: ActorRef::system(),
            subject: Some(UserId::from_uuid(Uuid::from_u128(9))),
            category: AuditCategory::UserLocked,
            details: "reason=admin".into(),
        }
    }

    #[test]
    fn events_parse_from_keys_in_category_order_without_duplicates() {
        assert_eq!(
            parse_events(["user.unlocked, user.locked", "user.locked"]),
            Ok(vec![AuditCategory::UserLocked, AuditCategory::UserUnlocked])
        );
        assert_eq!(
            parse_events(["all"]).unwrap().len(),
            AuditCategory::ALL.len()
        );
        assert_eq!(parse_events([" , "]), Err(EventsError::Empty));
        assert_eq!(
            parse_events(["user.locked", "user.exploded"]),
            Err(EventsError::Unknown)
        );
    }

    #[test]
    fn the_body_is_the_standard_webhooks_shape_with_the_chain_numbers() {
        let rec = record();
        let mut d = WebhookDelivery {
            endpoint: Uuid::from_u128(1),
            url: "https://hooks.example.com/in?token=abc".into(),
            event: WebhookEvent::for_entry(&rec, Some("123456789".into())),
        };
        let entry = audit::chain(rec.clone(), 42, ChainHash::GENESIS);
        assert_eq!(d.place(&[entry]), Some((rec.customer, 42)));
        d.event.data.previous_seq = Some(40);
        let v: serde_json::Value = serde_json::from_str(&d.event.body()).unwrap();
        assert_eq!(v["type"], "user.locked");
        assert_eq!(v["timestamp"], "2026-12-07T10:00:00Z");
        assert_eq!(v["data"]["customer_number"], "123456789");
        assert_eq!(v["data"]["seq"], 42);
        assert_eq!(v["data"]["previous_seq"], 40);
        assert_eq!(v["data"]["actor"]["kind"], "system");
        assert_eq!(v["data"]["details"], "reason=admin");
        assert_eq!(
            d.recipient(),
            "https://hooks.example.com",
            "operators see the origin, never a token in the query"
        );
        assert_eq!(d.summary(), "user.locked");
    }

    #[test]
    fn an_entry_not_in_the_commit_is_not_placed() {
        let mut d = WebhookDelivery {
            endpoint: Uuid::from_u128(1),
            url: "https://x.example".into(),
            event: WebhookEvent::for_entry(&record(), None),
        };
        let mut other = record();
        other.id = AuditEntryId::from_uuid(Uuid::from_u128(6));
        assert_eq!(d.place(&[audit::chain(other, 1, ChainHash::GENESIS)]), None);
        assert_eq!(d.event.data.seq, 0);
    }

    #[test]
    fn secrets_have_the_standard_form_and_a_redacted_debug() {
        let (s, bytes) = WebhookSecret::generate(&crate::defaults::OsSecretGenerator);
        assert!(s.expose().starts_with("whsec_"));
        let decoded = STANDARD.decode(&s.expose()[SECRET_PREFIX.len()..]).unwrap();
        assert_eq!(decoded.as_slice(), bytes.as_slice());
        assert_eq!(decoded.len(), SECRET_BYTES);
        assert!(!format!("{s:?}").contains("whsec_"));
    }

    #[test]
    fn origins_drop_path_query_and_user_info() {
        assert_eq!(
            origin("https://u:p@hooks.example.com:8443/a?b#c"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(origin("nonsense"), "");
    }

    #[test]
    fn an_endpoint_stores_its_events_as_keys_and_skips_unknown_ones() {
        let e = WebhookEndpoint {
            id: Uuid::from_u128(1),
            url: "https://x.example".into(),
            description: String::new(),
            events: vec![AuditCategory::UserLocked],
            sealed_secret: "v2.x.y".into(),
            disabled: false,
            created_at: Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap(),
            secret_rotated_at: None,
            version: 1,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""events":["user.locked"]"#), "{json}");
        let newer = json.replace(r#"["user.locked"]"#, r#"["user.locked","user.teleported"]"#);
        let back: WebhookEndpoint = serde_json::from_str(&newer).unwrap();
        assert_eq!(back.events, vec![AuditCategory::UserLocked]);
        assert!(back.wants(AuditCategory::UserLocked));
        assert!(!back.wants(AuditCategory::UserUnlocked));
    }
}
