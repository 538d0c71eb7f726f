//! A person's own data, as one machine-readable file (GDPR Art. 15 access and Art. 20
//! portability): what [`Portal::export_my_data`](crate::service::Portal::export_my_data) and
//! [`Portal::export_user_data`](crate::service::Portal::export_user_data) return.
//!
//! The file holds everything Portal keeps about the person — profile, customer and role,
//! permissions (with when and by whom each was granted, as far as the change log records it),
//! sessions and remembered devices, second factors (kinds and dates), admin requests, the
//! applications they signed in to, and the change-log entries about them — and never a secret:
//! no password hash, no authenticator seed, no recovery-code hash, no passkey credential, no
//! session token or its hash.
//!
//! An administrator's export of a user of their customer ([`ExportScope::Administrator`]) holds
//! only what the administrator may already see in the portal: no session addresses or user
//! agents, no phone numbers or recovery channels, no applications, and only the customer's own
//! change log.
//!
//! Actors in the file are names, resolved while exporting: a user of the person's own customer
//! (or the person) by name while they exist, vendor staff as "Portal staff", anyone else only by
//! kind — so no name from another customer ever appears.

use crate::audit::{AuditCategory, AuditEntry};
use crate::permission::PermissionKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The value of [`DataExport::format`]: the version of this file's shape.
pub const FORMAT: &str = "portal-data-export-v1";

/// Who asked for the export, and so how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportScope {
    /// The person themselves: everything.
    #[serde(rename = "self")]
    Own,
    /// An administrator (or operator) of the person's customer: what the portal shows them.
    Administrator,
}

impl ExportScope {
    /// Stable key (`self`, `administrator`), as in the file and the change-log entry.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Own => "self",
            Self::Administrator => "administrator",
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataExport {
    /// Always [`FORMAT`].
    pub format: String,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// For whom it was made.
    pub scope: ExportScope,
    /// The account.
    pub profile: ExportProfile,
    /// The customer the account is linked to.
    pub customer: Option<ExportCustomer>,
    /// Permissions held, with when and by whom each was granted as far as the change log says.
    pub permissions: Vec<ExportPermission>,
    /// Live and expired-but-kept sessions and remembered devices, newest first.
    pub sessions: Vec<ExportSession>,
    /// Second factors: kinds and dates.
    pub second_factors: Vec<ExportFactor>,
    /// Requests for admin rights, newest first.
    pub admin_requests: Vec<ExportAdminRequest>,
    /// Applications signed in to through Portal (OpenID Connect grants), newest first. Empty in
    /// an administrator's export.
    pub applications: Vec<ExportApplication>,
    /// Change-log entries about the person, newest first.
    pub change_log: Vec<ExportLogEntry>,
}

/// The account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportProfile {
    /// User id.
    pub id: String,
    /// Login and contact address.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Language (`de`, `en`).
    pub language: String,
    /// `employee`, `administrator` or `operator`.
    pub role: String,
    /// `invited`, `pending_activation`, `active` or `locked`.
    pub status: String,
    /// Product affiliation chosen.
    pub affiliation: Option<String>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// The administrator's lock, if any.
    pub lock: Option<ExportLock>,
}

/// An administrator's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLock {
    /// Locked at.
    pub at: DateTime<Utc>,
    /// Locked by (resolved name).
    pub by: String,
    /// The reason given.
    pub reason: Option<String>,
}

/// The customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCustomer {
    /// Printed customer number (`D` + nine digits).
    pub number: String,
    /// Company name.
    pub name: String,
}

/// A permission held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPermission {
    /// Catalog key.
    pub key: String,
    /// Its name in the person's language (the key when the catalog no longer has it).
    pub label: String,
    /// When it was last granted, if the change log records it.
    pub granted_at: Option<DateTime<Utc>>,
    /// By whom (resolved name), if the change log records it.
    pub granted_by: Option<String>,
}

/// A session or remembered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSession {
    /// Session id (not the token).
    pub id: String,
    /// `full`, `mfa_pending` or `remembered_device`.
    pub kind: String,
    /// Started at.
    pub created_at: DateTime<Utc>,
    /// Last request seen.
    pub last_seen_at: DateTime<Utc>,
    /// Ends then at the latest.
    pub expires_at: DateTime<Utc>,
    /// How the person authenticated (`pwd`, `otp`, …).
    pub methods: Vec<String>,
    /// Client address (absent in an administrator's export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// User agent (absent in an administrator's export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A second factor or recovery setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFactor {
    /// `totp`, `sms`, `voice`, `passkey`, `recovery_code`, `recovery_phone` or `recovery_email`.
    pub kind: String,
    /// Set up at, where stored.
    pub created_at: Option<DateTime<Utc>>,
    /// Last used at, where stored (passkeys).
    pub last_used_at: Option<DateTime<Utc>>,
    /// The person's label: a passkey's name, a phone number or recovery address (absent in an
    /// administrator's export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A request for admin rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportAdminRequest {
    /// Request id.
    pub id: String,
    /// `awaiting_consent`, `awaiting_approval`, `approved` or `rejected`.
    pub status: String,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// Last step at.
    pub updated_at: DateTime<Utc>,
    /// The administrator who consented (resolved name).
    pub consented_by: Option<String>,
    /// Who decided (resolved name).
    pub decided_by: Option<String>,
}

/// An application signed in to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportApplication {
    /// Client id.
    pub client_id: String,
    /// Its name, while it is registered.
    pub name: Option<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Granted at.
    pub created_at: DateTime<Utc>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A change-log entry about the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLogEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Stable category key (`user.permissions_changed`, …).
    pub category: String,
    /// Its label in the person's language.
    pub label: String,
    /// Details (never personal data or secrets).
    pub details: String,
    /// Who did it (resolved name).
    pub actor: String,
    /// `customer` (the customer's log) or `global`.
    pub chain: String,
    /// Position in that chain.
    pub seq: u64,
}

/// When and by whom each key of `held` was last granted, from change-log entries about the
/// person (any order): the newest entry that granted it — a permission change that added it
/// (`added=a,b`), an invitation that included it (`permissions=a,b`), or a link that activated
/// the account with the customer's defaults (when `defaults` holds the key). Keys no entry
/// grants answer `None`.
#[must_use]
pub fn granted_by_entry<'a>(
    held: &[PermissionKey],
    defaults: &[PermissionKey],
    entries: &'a [AuditEntry],
) -> Vec<(PermissionKey, Option<&'a AuditEntry>)> {
    let mut newest_first: Vec<&AuditEntry> = entries.iter().collect();
    newest_first.sort_by(|a, b| b.record.at.cmp(&a.record.at).then(b.seq.cmp(&a.seq)));
    held.iter()
        .map(|key| {
            let found = newest_first
                .iter()
                .copied()
                .find(|e| grants(e, key, defaults));
            (key.clone(), found)
        })
        .collect()
}

fn listed(details: &str, field: &str, key: &PermissionKey) -> bool {
    details
        .split(';')
        .filter_map(|part| part.trim().strip_prefix(field))
        .flat_map(|list| list.split(','))
        .any(|k| k.trim() == key.as_str())
}

fn grants(entry: &AuditEntry, key: &PermissionKey, defaults: &[PermissionKey]) -> bool {
    let details = entry.record.details.as_str();
    match entry.record.category {
        AuditCategory::PermissionsChanged => listed(details, "added=", key),
        AuditCategory::UserCreated => listed(details, "permissions=", key),
        AuditCategory::CustomerLinked => {
            details.contains("status=active") && defaults.contains(key)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ActorRef, AuditRecord, ChainHash};
    use crate::ids::{AuditEntryId, UserId};
    use chrono::TimeZone;

    fn key(s: &str) -> PermissionKey {
        PermissionKey::parse(s).unwrap()
    }

    fn entry(seq: u64, minute: u32, category: AuditCategory, details: &str) -> AuditEntry {
        AuditEntry {
            record: AuditRecord {
                id: AuditEntryId::from_uuid(uuid::Uuid::from_u128(u128::from(seq))),
                at: Utc.with_ymd_and_hms(2026, 1, 1, 10, minute, 0).unwrap(),
                customer: None,
                actor: ActorRef::user(UserId::from_uuid(uuid::Uuid::from_u128(9))),
                subject: None,
                category,
                details: details.to_owned(),
            },
            seq,
            prev_hash: ChainHash::GENESIS,
            hash: ChainHash::GENESIS,
        }
    }

    #[test]
    fn the_newest_grant_of_a_key_wins_and_removals_do_not_count() {
        let entries = vec![
            entry(
                1,
                1,
                AuditCategory::UserCreated,
                "via=invitation; permissions=docs,shop",
            ),
            entry(
                2,
                2,
                AuditCategory::PermissionsChanged,
                "added=; removed=shop",
            ),
            entry(
                3,
                3,
                AuditCategory::PermissionsChanged,
                "added=shop; removed=",
            ),
            entry(
                4,
                4,
                AuditCategory::PermissionsChanged,
                "added=; removed=docs,shop",
            ),
        ];
        let found = granted_by_entry(&[key("docs"), key("shop")], &[], &entries);
        assert_eq!(
            found[0].1.map(|e| e.seq),
            Some(1),
            "docs came with the invitation"
        );
        assert_eq!(
            found[1].1.map(|e| e.seq),
            Some(3),
            "shop was granted again later"
        );
    }

    #[test]
    fn a_key_is_matched_whole_not_as_a_prefix() {
        let entries = vec![entry(
            1,
            1,
            AuditCategory::PermissionsChanged,
            "added=documents; removed=",
        )];
        let found = granted_by_entry(&[key("docs")], &[], &entries);
        assert!(found[0].1.is_none(), "docs is not documents");
    }

    #[test]
    fn an_active_link_grants_the_defaults_only() {
        let entries = vec![
            entry(
                1,
                1,
                AuditCategory::CustomerLinked,
                "via=number; status=active",
            ),
            entry(
                2,
                2,
                AuditCategory::CustomerLinked,
                "via=number; status=pending_activation",
            ),
        ];
        let found = granted_by_entry(&[key("support"), key("shop")], &[key("support")], &entries);
        assert_eq!(found[0].1.map(|e| e.seq), Some(1));
        assert!(found[1].1.is_none(), "shop is no default");
    }

    #[test]
    fn scopes_have_stable_keys_matching_their_serde_names() {
        for scope in [ExportScope::Own, ExportScope::Administrator] {
            assert_eq!(
                serde_json::to_value(scope).unwrap(),
                serde_json::Value::String(scope.key().to_owned())
            );
        }
    }
}
