//! The change log as a file that leaves Portal and is checked elsewhere (issue 14, section 3).
//!
//! An export is JSON Lines: a header line (format, issuer, customer, the published signing keys),
//! one line per entry of the customer's chain in sequence order with its hashes, and a last line
//! with the chain's head (sequence number and hash) signed as an RS256 JWT with the server's
//! current OpenID Connect signing key — the key its JWKS publishes. The signature covers the head,
//! the head covers every entry through the hash chain, so an edited field, a deleted, added or
//! reordered line and a cut-off tail are all detected by [`verify_export`], which names the first
//! entry that does not fit.
//!
//! Signing and verification go through [`crate::oidc::jose`] (the `jsonwebtoken` crate); the
//! hashes are the chain's own ([`crate::audit`]). Nothing here is hand-written cryptography.

use crate::audit::{ActorKind, ActorRef, AuditCategory, AuditEntry, AuditRecord, ChainHash, chain};
use crate::ids::{AuditEntryId, CustomerId, UserId};
use crate::oidc::jose;
use chrono::{DateTime, SecondsFormat, Utc};
/// The JWK set type the verifier takes (`jsonwebtoken`'s).
pub use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The `format` of the header line.
pub const FORMAT: &str = "portal-audit-export";
/// The version of the format.
pub const VERSION: u32 = 1;
/// The `typ` of the signed head.
pub const HEAD_TYPE: &str = "portal-audit-head+jwt";

/// The first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportHeader {
    /// Always `header`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The server's OpenID Connect issuer (`iss` of the signed head).
    pub issuer: String,
    /// The customer number.
    pub customer: String,
    /// The customer's id (every entry's `customer_id`, the signed head's `sub`).
    pub customer_id: CustomerId,
    /// When the file was written (UTC).
    pub exported_at: String,
    /// The keys the server published when it wrote the file (its JWKS). A verifier that must not
    /// trust the file itself compares them with the server's `/.well-known/jwks.json` or passes
    /// that set instead.
    pub jwks: Value,
    /// Set when change-log retention removed the chain's oldest entries: the last removed
    /// entry, where the exported entries continue (the first one's `prev_hash` is its hash).
    /// Also in the signed head (`pruned_through`), so it cannot be moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<ExportCheckpoint>,
}

/// The last entry retention removed from an exported chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCheckpoint {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (hex).
    pub hash: String,
}

/// One entry line: every field the chain hash covers, and the hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportEntry {
    /// Always `entry`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// Position in the customer's chain, from 1.
    pub seq: u64,
    /// Entry id.
    pub id: AuditEntryId,
    /// When (RFC 3339, UTC, microseconds).
    pub at: String,
    /// The customer whose chain it is.
    pub customer_id: Option<CustomerId>,
    /// `user`, `operator`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The acting user's id.
    pub actor_user: Option<UserId>,
    /// Whom it concerns.
    pub subject: Option<UserId>,
    /// Category key, e.g. `user.locked`.
    pub category: String,
    /// Details (ids and catalog keys only).
    pub details: String,
    /// Hash of the previous entry (hex; 64 zeros before the first).
    pub prev_hash: String,
    /// Hash of this entry (hex).
    pub hash: String,
}

impl ExportEntry {
    /// The line of a stored entry.
    #[must_use]
    pub fn of(e: &AuditEntry) -> Self {
        Self {
            line_type: "entry".into(),
            seq: e.seq,
            id: e.record.id,
            at: e.record.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            customer_id: e.record.customer,
            actor_kind: e.record.actor.kind.key().into(),
            actor_user: e.record.actor.user,
            subject: e.record.subject,
            category: e.record.category.key().into(),
            details: e.record.details.clone(),
            prev_hash: e.prev_hash.to_hex(),
            hash: e.hash.to_hex(),
        }
    }

    /// The record back, or why it is not one.
    fn record(&self) -> Result<(AuditRecord, ChainHash, ChainHash), &'static str> {
        let at = DateTime::parse_from_rfc3339(&self.at)
            .map_err(|_| "at is not an RFC 3339 time")?
            .with_timezone(&Utc);
        let kind = ActorKind::from_key(&self.actor_kind).ok_or("unknown actor_kind")?;
        let category = AuditCategory::from_key(&self.category).ok_or("unknown category")?;
        let prev = ChainHash::from_hex(&self.prev_hash).ok_or("prev_hash is not 64 hex digits")?;
        let hash = ChainHash::from_hex(&self.hash).ok_or("hash is not 64 hex digits")?;
        Ok((
            AuditRecord {
                id: self.id,
                at,
                customer: self.customer_id,
                actor: ActorRef {
                    kind,
                    user: self.actor_user,
                },
                subject: self.subject,
                category,
                details: self.details.clone(),
            },
            prev,
            hash,
        ))
    }
}

/// The last line: the chain's head and its signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportHead {
    /// Always `head`.
    #[serde(rename = "type")]
    pub line_type: String,
    /// Sequence number of the last entry (0 for an empty chain).
    pub seq: u64,
    /// Its hash (hex; 64 zeros for an empty chain).
    pub hash: String,
    /// RS256 JWT (`typ` [`HEAD_TYPE`]) over [`HeadClaims`].
    pub signature: String,
}

/// The claims of the signed head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadClaims {
    /// The issuer.
    pub iss: String,
    /// The customer id.
    pub sub: String,
    /// The customer number.
    pub customer: String,
    /// Sequence number of the last entry.
    pub seq: u64,
    /// Its hash (hex).
    pub head: String,
    /// When it was signed (Unix seconds).
    pub iat: i64,
    /// The last entry change-log retention removed, if any (the header's `pruned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_through: Option<u64>,
}

/// The header line of an export.
///
/// # Errors
/// Never in practice (serialising plain data).
pub fn header_line(
    issuer: &str,
    customer: &str,
    customer_id: CustomerId,
    at: DateTime<Utc>,
    jwks: &JwkSet,
) -> Result<String, serde_json::Error> {
    header_line_after(issuer, customer, customer_id, at, jwks, None)
}

/// The header line of an export of a chain whose entries up to `pruned` (seq and hash) were
/// removed by retention.
///
/// # Errors
/// Never in practice (serialising plain data).
pub fn header_line_after(
    issuer: &str,
    customer: &str,
    customer_id: CustomerId,
    at: DateTime<Utc>,
    jwks: &JwkSet,
    pruned: Option<(u64, ChainHash)>,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&ExportHeader {
        line_type: "header".into(),
        format: FORMAT.into(),
        version: VERSION,
        issuer: issuer.into(),
        customer: customer.into(),
        customer_id,
        exported_at: at.to_rfc3339_opts(SecondsFormat::Secs, true),
        jwks: serde_json::to_value(jwks)?,
        pruned: pruned.map(|(seq, hash)| ExportCheckpoint {
            seq,
            hash: hash.to_hex(),
        }),
    })
}

/// The line of one entry.
///
/// # Errors
/// Never in practice.
pub fn entry_line(e: &AuditEntry) -> Result<String, serde_json::Error> {
    serde_json::to_string(&ExportEntry::of(e))
}

/// The last line.
///
/// # Errors
/// Never in practice.
pub fn head_line(
    seq: u64,
    hash: ChainHash,
    signature: String,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&ExportHead {
        line_type: "head".into(),
        seq,
        hash: hash.to_hex(),
        signature,
    })
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedExport {
    /// The customer number.
    pub customer: String,
    /// Entries checked.
    pub entries: u64,
    /// The signed head (hex).
    pub head: String,
    /// The key that signed it.
    pub kid: String,
    /// The issuer.
    pub issuer: String,
}

/// The first thing in an export that does not fit. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportProblem {
    /// A line is not what the format says (JSON, fields, values).
    Unreadable {
        /// Line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An entry belongs to another customer than the header names.
    WrongCustomer {
        /// Line.
        line: usize,
        /// The entry's sequence number.
        seq: u64,
        /// Its id.
        id: AuditEntryId,
    },
    /// An entry is not the one that belongs here: one before it is missing, or it was added or
    /// moved.
    OutOfPlace {
        /// Line.
        line: usize,
        /// The entry's sequence number.
        seq: u64,
        /// Its id.
        id: AuditEntryId,
        /// The sequence number that belongs here.
        expected: u64,
    },
    /// An entry's fields do not give its hash: it was edited.
    Altered {
        /// Line.
        line: usize,
        /// The entry's sequence number.
        seq: u64,
        /// Its id.
        id: AuditEntryId,
    },
    /// The file ends without the signed head: cut off after the last entry read.
    NoSignedHead {
        /// The last entry read (0: none).
        last_seq: u64,
    },
    /// The signed head names another last entry than the file's: entries were cut off at the
    /// end (or rewritten).
    HeadMismatch {
        /// Line of the head.
        line: usize,
        /// The file's last entry.
        last_seq: u64,
        /// The entry the signed head names.
        head_seq: u64,
    },
    /// The head's signature does not verify with the keys (or its claims do not match the file).
    BadSignature {
        /// Line of the head.
        line: usize,
    },
}

impl ExportProblem {
    /// The sequence number of the entry that does not fit (for a cut-off tail: the first missing
    /// one), if the problem is about one.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::WrongCustomer { seq, .. }
            | Self::OutOfPlace { seq, .. }
            | Self::Altered { seq, .. } => Some(*seq),
            Self::NoSignedHead { last_seq } => Some(*last_seq + 1),
            Self::HeadMismatch {
                last_seq, head_seq, ..
            } => Some(if *head_seq > *last_seq {
                *last_seq + 1
            } else {
                *last_seq
            }),
            Self::Unreadable { .. } | Self::BadSignature { .. } => None,
        }
    }
}

impl fmt::Display for ExportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { line, reason } => write!(f, "line {line}: unreadable: {reason}"),
            Self::WrongCustomer { line, seq, id } => write!(
                f,
                "line {line}: entry {seq} (id {id}) does not fit: it belongs to another customer"
            ),
            Self::OutOfPlace {
                line,
                seq,
                id,
                expected,
            } => write!(
                f,
                "line {line}: entry {seq} (id {id}) does not fit: entry {expected} belongs here \
                 (an entry is missing, was added or was moved)"
            ),
            Self::Altered { line, seq, id } => write!(
                f,
                "line {line}: entry {seq} (id {id}) does not fit: its fields do not give its hash \
                 (altered)"
            ),
            Self::NoSignedHead { last_seq } => write!(
                f,
                "the file ends after entry {last_seq} without the signed head: it was cut off \
                 (entry {} onwards may be missing)",
                last_seq + 1
            ),
            Self::HeadMismatch {
                line,
                last_seq,
                head_seq,
            } if head_seq > last_seq => write!(
                f,
                "line {line}: the signed head names entry {head_seq} but the file ends with entry \
                 {last_seq}: entry {} onwards was cut off",
                last_seq + 1
            ),
            Self::HeadMismatch {
                line,
                last_seq,
                head_seq,
            } => write!(
                f,
                "line {line}: the signed head names entry {head_seq}, not the file's last entry \
                 {last_seq}: entry {last_seq} does not fit"
            ),
            Self::BadSignature { line } => write!(
                f,
                "line {line}: the signed head does not verify with the given keys"
            ),
        }
    }
}

impl std::error::Error for ExportProblem {}

/// Where the verifier takes the public keys from.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    /// The JWKS in the file's header (proves the file is consistent, not who wrote it).
    FromHeader,
    /// A JWKS obtained from the server (`/.well-known/jwks.json`).
    Given(&'a JwkSet),
}

fn unreadable(line: usize, reason: impl Into<String>) -> ExportProblem {
    ExportProblem::Unreadable {
        line,
        reason: reason.into(),
    }
}

/// Checks an export offline: the header, every entry against the chain, the signed head against
/// the last entry and the keys.
///
/// # Errors
/// The first thing that does not fit.
pub fn verify_export(text: &str, keys: Keys<'_>) -> Result<VerifiedExport, ExportProblem> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let (hline, header) = lines.next().ok_or_else(|| unreadable(1, "empty file"))?;
    let header: ExportHeader = serde_json::from_str(header)
        .map_err(|e| unreadable(hline, format!("not a header line: {e}")))?;
    if header.line_type != "header" || header.format != FORMAT || header.version != VERSION {
        return Err(unreadable(
            hline,
            format!("not a {FORMAT} version {VERSION} header"),
        ));
    }
    let header_keys;
    let keys = match keys {
        Keys::Given(k) => k,
        Keys::FromHeader => {
            header_keys = serde_json::from_value::<JwkSet>(header.jwks.clone())
                .map_err(|_| unreadable(hline, "jwks is not a JWK set"))?;
            &header_keys
        }
    };
    let (mut last_seq, mut last_hash) = match &header.pruned {
        None => (0u64, ChainHash::GENESIS),
        Some(p) => (
            p.seq,
            ChainHash::from_hex(&p.hash)
                .ok_or_else(|| unreadable(hline, "pruned.hash is not a chain hash"))?,
        ),
    };
    while let Some((line, text)) = lines.next() {
        let value: Value =
            serde_json::from_str(text).map_err(|e| unreadable(line, format!("not JSON: {e}")))?;
        match value.get("type").and_then(Value::as_str) {
            Some("entry") => {
                let entry: ExportEntry = serde_json::from_value(value)
                    .map_err(|e| unreadable(line, format!("not an entry: {e}")))?;
                let (record, prev, hash) =
                    entry.record().map_err(|r| unreadable(line, r.to_owned()))?;
                if record.customer != Some(header.customer_id) {
                    return Err(ExportProblem::WrongCustomer {
                        line,
                        seq: entry.seq,
                        id: entry.id,
                    });
                }
                if entry.seq != last_seq + 1 || prev != last_hash {
                    return Err(ExportProblem::OutOfPlace {
                        line,
                        seq: entry.seq,
                        id: entry.id,
                        expected: last_seq + 1,
                    });
                }
                if chain(record, entry.seq, prev).hash != hash {
                    return Err(ExportProblem::Altered {
                        line,
                        seq: entry.seq,
                        id: entry.id,
                    });
                }
                last_seq = entry.seq;
                last_hash = hash;
            }
            Some("head") => {
                let head: ExportHead = serde_json::from_value(value)
                    .map_err(|e| unreadable(line, format!("not a head: {e}")))?;
                let kid = jsonwebtoken::decode_header(&head.signature)
                    .ok()
                    .and_then(|h| h.kid)
                    .ok_or(ExportProblem::BadSignature { line })?;
                let claims: HeadClaims = jose::verify(&head.signature, keys, &header.issuer, None)
                    .map_err(|_| ExportProblem::BadSignature { line })?;
                if claims.sub != header.customer_id.to_string()
                    || claims.customer != header.customer
                    || claims.seq != head.seq
                    || claims.head != head.hash
                    || claims.pruned_through != header.pruned.as_ref().map(|p| p.seq)
                {
                    return Err(ExportProblem::BadSignature { line });
                }
                if head.seq != last_seq || head.hash != last_hash.to_hex() {
                    return Err(ExportProblem::HeadMismatch {
                        line,
                        last_seq,
                        head_seq: head.seq,
                    });
                }
                if let Some((extra, _)) = lines.next() {
                    return Err(unreadable(extra, "a line after the signed head"));
                }
                return Ok(VerifiedExport {
                    customer: header.customer,
                    entries: last_seq,
                    head: head.hash,
                    kid,
                    issuer: header.issuer,
                });
            }
            _ => return Err(unreadable(line, "neither an entry nor the head")),
        }
    }
    Err(ExportProblem::NoSignedHead { last_seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SecretGenerator;
    use chrono::TimeZone;
    use uuid::Uuid;

    struct Os;
    impl SecretGenerator for Os {
        fn fill(&self, buf: &mut [u8]) {
            crate::defaults::OsSecretGenerator.fill(buf);
        }
    }

    const ISS: &str = "https://portal.example";

    fn customer() -> CustomerId {
        CustomerId::from_uuid(Uuid::from_u128(7))
    }

    fn export(n: u64) -> (String, JwkSet) {
        let key = jose::generate_key(&Os, "k1").unwrap();
        let set = jose::jwks([key.public_jwk.as_str()]).unwrap();
        let mut prev = ChainHash::GENESIS;
        let mut lines = vec![
            header_line(
                ISS,
                "100000001",
                customer(),
                Utc.with_ymd_and_hms(2026, 12, 7, 6, 0, 0).unwrap(),
                &set,
            )
            .unwrap(),
        ];
        for i in 1..=n {
            let e = chain(
                AuditRecord {
                    id: AuditEntryId::from_uuid(Uuid::from_u128(u128::from(i))),
                    at: Utc.with_ymd_and_hms(2026, 12, 7, 6, 0, 0).unwrap(),
                    customer: Some(customer()),
                    actor: ActorRef::system(),
                    subject: None,
                    category: AuditCategory::UserLocked,
                    details: format!("n={i}"),
                },
                i,
                prev,
            );
            prev = e.hash;
            lines.push(entry_line(&e).unwrap());
        }
        let claims = HeadClaims {
            iss: ISS.into(),
            sub: customer().to_string(),
            customer: "100000001".into(),
            seq: n,
            head: prev.to_hex(),
            iat: 0,
            pruned_through: None,
        };
        let jwt = jose::sign(&claims, "k1", HEAD_TYPE, &key.private_der).unwrap();
        lines.push(head_line(n, prev, jwt).unwrap());
        (lines.join("\n") + "\n", set)
    }

    #[test]
    fn an_export_verifies_with_its_own_and_the_given_keys_but_not_with_others() {
        let (text, set) = export(3);
        let ok = verify_export(&text, Keys::FromHeader).unwrap();
        assert_eq!((ok.entries, ok.kid.as_str()), (3, "k1"));
        assert_eq!(verify_export(&text, Keys::Given(&set)).unwrap(), ok);
        let (_, other) = export(0);
        assert_eq!(
            verify_export(&text, Keys::Given(&other)),
            Err(ExportProblem::BadSignature { line: 5 })
        );
        // A header claiming another issuer: the head's `iss` no longer fits.
        let forged = text.replacen(ISS, "https://evil.example", 1);
        assert_eq!(
            verify_export(&forged, Keys::Given(&set)),
            Err(ExportProblem::BadSignature { line: 5 })
        );
    }

    #[test]
    fn an_empty_chain_exports_a_signed_empty_head() {
        let (text, _) = export(0);
        assert_eq!(verify_export(&text, Keys::FromHeader).unwrap().entries, 0);
        let cut: String = text.lines().take(1).collect();
        assert_eq!(
            verify_export(&cut, Keys::FromHeader),
            Err(ExportProblem::NoSignedHead { last_seq: 0 })
        );
    }
}
