//! The change log ("Änderungsprotokoll", R20).
//!
//! Every state change of a use case writes one [`AuditRecord`] in the same commit. The storage
//! adapter appends it to the chain of its customer (or the global chain for events outside any
//! customer), giving it a sequence number and a SHA-256 hash over the previous hash and its own
//! canonical form, so any later edit, deletion or reordering is detectable with [`verify_chain`].
//!
//! Entries hold ids, categories and catalog keys only: no names, addresses, passwords, codes or
//! tokens. Deleting a user therefore leaves a trail that refers to a pseudonymous id.

use crate::ids::{AuditEntryId, CustomerId, UserId};
use crate::values::Language;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Who did something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A user acting for themselves or as an administrator of their customer.
    User,
    /// Vendor staff ("Sage Mitarbeiter" in the manual's log).
    Operator,
    /// The system itself (command line, maintenance jobs).
    System,
    /// Someone not logged in (a registration form, a reset request).
    Anonymous,
}

impl ActorKind {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Operator => "operator",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "user" => Some(Self::User),
            "operator" => Some(Self::Operator),
            "system" => Some(Self::System),
            "anonymous" => Some(Self::Anonymous),
            _ => None,
        }
    }
}

/// A reference to the actor of a change: a kind and, except for the system, a user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActorRef {
    /// Kind.
    pub kind: ActorKind,
    /// The acting user.
    pub user: Option<UserId>,
}

impl ActorRef {
    /// The system.
    #[must_use]
    pub const fn system() -> Self {
        Self {
            kind: ActorKind::System,
            user: None,
        }
    }

    /// A user.
    #[must_use]
    pub const fn user(id: UserId) -> Self {
        Self {
            kind: ActorKind::User,
            user: Some(id),
        }
    }

    /// Someone not logged in.
    #[must_use]
    pub const fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            user: None,
        }
    }

    /// An operator.
    #[must_use]
    pub const fn operator(id: UserId) -> Self {
        Self {
            kind: ActorKind::Operator,
            user: Some(id),
        }
    }
}

macro_rules! categories {
    ($( $(#[$doc:meta])* $variant:ident => $key:literal, $de:literal, $en:literal; )*) => {
        /// What kind of change an entry records. Labels follow the manual's log ("Benutzer
        /// angelegt", "Account geändert", "Benutzer aktiviert").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum AuditCategory {
            $( $(#[$doc])* $variant, )*
        }

        impl AuditCategory {
            /// Every category.
            pub const ALL: &'static [AuditCategory] = &[$(Self::$variant),*];

            /// Stable key, as stored.
            #[must_use]
            pub const fn key(self) -> &'static str {
                match self { $(Self::$variant => $key,)* }
            }

            /// Parses a stable key.
            #[must_use]
            pub fn from_key(key: &str) -> Option<Self> {
                match key { $($key => Some(Self::$variant),)* _ => None }
            }

            /// Label shown in the log.
            #[must_use]
            pub const fn label(self, language: Language) -> &'static str {
                match (self, language) {
                    $((Self::$variant, Language::De) => $de, (Self::$variant, Language::En) => $en,)*
                }
            }
        }
    };
}

categories! {
    /// Someone registered; the code was mailed (not an account yet).
    RegistrationStarted => "registration.started", "Registrierung begonnen", "Registration started";
    /// Someone tried to register an address that already has an account; its owner was told.
    RegistrationAttempted => "registration.existing_address", "Registrierungsversuch mit bestehender Adresse", "Registration attempt with existing address";
    /// A new code was mailed.
    CodeResent => "registration.code_resent", "Code erneut gesendet", "Code re-sent";
    /// A user account was created (registration confirmed, or an invitation issued).
    UserCreated => "user.created", "Benutzer angelegt", "User created";
    /// Profile, affiliation, customer link or credentials changed.
    AccountChanged => "account.changed", "Account geändert", "Account changed";
    /// The user linked their account to a customer (by number or legacy account).
    CustomerLinked => "account.customer_linked", "Kundennummer verknüpft", "Customer number linked";
    /// An invitation mail was sent (again).
    InvitationSent => "user.invitation_sent", "Einladung versendet", "Invitation sent";
    /// A waiting user was activated, or an invited user finished registration.
    UserActivated => "user.activated", "Benutzer aktiviert", "User activated";
    /// Permissions changed.
    PermissionsChanged => "user.permissions_changed", "Berechtigungen geändert", "Permissions changed";
    /// Locked.
    UserLocked => "user.locked", "Benutzer gesperrt", "User locked";
    /// Unlocked.
    UserUnlocked => "user.unlocked", "Benutzer entsperrt", "User unlocked";
    /// Deleted.
    UserDeleted => "user.deleted", "Benutzer gelöscht", "User deleted";
    /// Successful login.
    LoginSucceeded => "login.succeeded", "Anmeldung", "Login";
    /// Failed login of an existing account.
    LoginFailed => "login.failed", "Anmeldung fehlgeschlagen", "Login failed";
    /// Logout.
    LoggedOut => "login.logout", "Abmeldung", "Logout";
    /// A password reset link was requested.
    PasswordResetRequested => "password.reset_requested", "Passwort-Zurücksetzung angefordert", "Password reset requested";
    /// The password was changed or reset.
    PasswordChanged => "password.changed", "Passwort geändert", "Password changed";
    /// A user asked for admin rights.
    AdminRightsRequested => "admin_request.created", "Admin-Rechte beantragt", "Admin rights requested";
    /// An existing admin consented to a request.
    AdminRequestConsented => "admin_request.consented", "Zustimmung zum Admin-Antrag", "Admin request consented";
    /// An operator approved a request; the user is an administrator now.
    AdminRightsGranted => "admin_request.approved", "Admin-Rechte erteilt", "Admin rights granted";
    /// An operator rejected a request, or an admin declined consent.
    AdminRequestRejected => "admin_request.rejected", "Admin-Antrag abgelehnt", "Admin request rejected";
    /// Admin rights were taken away.
    AdminRightsRevoked => "user.admin_revoked", "Admin-Rechte entzogen", "Admin rights revoked";
    /// A user wrote to the customer's admins.
    MessageToAdmins => "message.to_admins", "Nachricht an Administratoren", "Message to administrators";
    /// A customer was created.
    CustomerCreated => "customer.created", "Kunde angelegt", "Customer created";
    /// A customer's master data changed.
    CustomerUpdated => "customer.updated", "Kunde geändert", "Customer updated";
    /// A second factor was set up.
    MfaEnabled => "mfa.enabled", "Multi-Faktor-Authentifizierung eingerichtet", "Multi-factor authentication set up";
    /// The second factors were removed.
    MfaDisabled => "mfa.disabled", "Multi-Faktor-Authentifizierung entfernt", "Multi-factor authentication removed";
    /// A passkey was removed.
    PasskeyRemoved => "mfa.passkey_removed", "Passkey entfernt", "Passkey removed";
    /// A new recovery code was generated.
    RecoveryCodeRenewed => "mfa.recovery_code_renewed", "Wiederherstellungscode erneuert", "Recovery code renewed";
    /// The recovery code was used to log in.
    RecoveryCodeUsed => "mfa.recovery_code_used", "Wiederherstellungscode verwendet", "Recovery code used";
    /// A fresh recovery code was sent to the recovery channel.
    RecoveryCodeSent => "mfa.recovery_code_sent", "Wiederherstellungscode gesendet", "Recovery code sent";
    /// A device was remembered for 30 days.
    DeviceRemembered => "mfa.device_remembered", "Gerät gemerkt", "Device remembered";
    /// Sessions were ended by someone other than their holder.
    SessionsEnded => "session.ended", "Sitzungen beendet", "Sessions ended";
    /// An operator put a dead-lettered outgoing message (a mail, …) back in the queue.
    OutboxRequeued => "outbox.requeued", "Nachricht erneut eingereiht", "Message re-queued";
    /// An application (OpenID Connect client) was registered.
    OidcClientCreated => "oidc.client_created", "Anwendung registriert", "Application registered";
    /// An application's secret was renewed, or it was disabled.
    OidcClientChanged => "oidc.client_changed", "Anwendung geändert", "Application changed";
    /// A user signed in at an application: an authorization code was issued.
    OidcCodeIssued => "oidc.code_issued", "Anmeldung bei Anwendung", "Signed in to application";
    /// A sign-in at an application was refused (no permission, locked, not active).
    OidcCodeRefused => "oidc.code_refused", "Anmeldung bei Anwendung abgelehnt", "Sign-in to application refused";
    /// Tokens were issued or refreshed for an application.
    OidcTokensIssued => "oidc.tokens_issued", "Token ausgestellt", "Tokens issued";
    /// A code or refresh token was used twice: everything it gave was revoked.
    OidcReuseDetected => "oidc.reuse_detected", "Token-Wiederverwendung erkannt", "Token reuse detected";
    /// Tokens of an application were revoked (RFC 7009).
    OidcGrantRevoked => "oidc.grant_revoked", "Token widerrufen", "Tokens revoked";
    /// A user agreed that an application may read their data.
    OidcConsentGiven => "oidc.consent_given", "Zustimmung für Anwendung", "Consent given to application";
    /// A new signing key became current.
    OidcKeyRotated => "oidc.key_rotated", "Signaturschlüssel gewechselt", "Signing key rotated";
    /// Old "Servicewelt" accounts were imported (created or changed by `portal legacy import`).
    LegacyAccountsImported => "legacy.imported", "Servicewelt-Zugänge importiert", "Servicewelt accounts imported";
    /// A person's data were exported (GDPR Art. 15 and 20), by themselves or their administrator.
    DataExported => "account.data_exported", "Daten exportiert", "Data exported";
    /// A sealed secret (an authenticator app's seed, a signing key) was re-sealed under the
    /// current server secret.
    SecretResealed => "secret.resealed", "Geheimnis neu verschlüsselt", "Secret re-sealed";
    /// A server secret was taken into use, or an old one retired after re-sealing.
    ServerSecretChanged => "secret.server_secret_changed", "Server-Schlüssel gewechselt", "Server secret changed";
    /// A registration never confirmed, or an invitation never accepted, was removed after its
    /// retention period.
    UserPurged => "user.purged", "Benutzer nach Aufbewahrungsfrist entfernt", "User removed after retention period";
    /// A webhook endpoint was registered.
    WebhookCreated => "webhook.created", "Webhook registriert", "Webhook registered";
    /// A webhook endpoint's secret was rotated, or it was disabled or enabled.
    WebhookChanged => "webhook.changed", "Webhook geändert", "Webhook changed";
    /// A webhook endpoint was removed.
    WebhookRemoved => "webhook.removed", "Webhook entfernt", "Webhook removed";
}

/// One change, as a use case hands it to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Id.
    pub id: AuditEntryId,
    /// When (UTC, microsecond precision).
    pub at: DateTime<Utc>,
    /// The customer whose log it belongs to (its chain); none for the global chain.
    pub customer: Option<CustomerId>,
    /// Who did it.
    pub actor: ActorRef,
    /// Whom it concerns.
    pub subject: Option<UserId>,
    /// What kind of change.
    pub category: AuditCategory,
    /// Details without personal data or secrets, e.g. `permissions=+documents,-shop`.
    pub details: String,
}

/// A 32-byte SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The hash before the first entry of every chain.
    pub const GENESIS: Self = Self([0u8; 32]);

    /// Lower-case hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        crate::secret::TokenHash::from_bytes(self.0).to_hex()
    }

    /// Parses 64 hex digits.
    #[must_use]
    pub fn from_hex(hex: &str) -> Option<Self> {
        crate::secret::TokenHash::from_hex(hex).map(|h| Self(*h.as_bytes()))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", &self.to_hex()[..12])
    }
}

/// A stored entry: the record plus its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The record.
    pub record: AuditRecord,
    /// Position in its chain, from 1.
    pub seq: u64,
    /// Hash of the previous entry ([`ChainHash::GENESIS`] for the first).
    pub prev_hash: ChainHash,
    /// Hash of this entry.
    pub hash: ChainHash,
}

fn opt_id<T: fmt::Display>(id: Option<T>) -> String {
    id.map_or_else(String::new, |i| i.to_string())
}

/// The canonical bytes an entry's hash covers.
#[must_use]
pub fn canonical_form(record: &AuditRecord, seq: u64) -> String {
    // Length-prefixed fields: no separator inside a field can shift another field's boundary.
    let fields = [
        record.id.to_string(),
        seq.to_string(),
        record.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        opt_id(record.customer),
        record.actor.kind.key().to_owned(),
        opt_id(record.actor.user),
        opt_id(record.subject),
        record.category.key().to_owned(),
        record.details.clone(),
    ];
    let mut out = String::from("portal-audit-v1");
    for f in fields {
        out.push('|');
        out.push_str(&f.len().to_string());
        out.push(':');
        out.push_str(&f);
    }
    out
}

/// Chains a record after `prev`: what storage adapters call when they append.
#[must_use]
pub fn chain(record: AuditRecord, seq: u64, prev_hash: ChainHash) -> AuditEntry {
    let hash = entry_hash(&record, seq, &prev_hash);
    AuditEntry {
        record,
        seq,
        prev_hash,
        hash,
    }
}

fn entry_hash(record: &AuditRecord, seq: u64, prev: &ChainHash) -> ChainHash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(canonical_form(record, seq).as_bytes());
    let out = h.finalize();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&out);
    ChainHash(bytes)
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// An entry's hash does not match its contents (edited).
    #[error("entry {seq} was altered")]
    Altered {
        /// Sequence number.
        seq: u64,
    },
    /// An entry does not point at its predecessor (removed, inserted or reordered).
    #[error("chain broken before entry {seq}")]
    Discontinuous {
        /// Sequence number.
        seq: u64,
    },
}

/// Verifies a whole chain, given in sequence order from its first entry.
///
/// # Errors
/// The first place the chain is broken.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), ChainBreak> {
    verify_chain_from(entries, 0, ChainHash::GENESIS)
}

/// Verifies a stretch of a chain that starts after entry `prev_seq` with hash `prev_hash`.
///
/// # Errors
/// The first place the chain is broken.
pub fn verify_chain_from(
    entries: &[AuditEntry],
    prev_seq: u64,
    prev_hash: ChainHash,
) -> Result<(), ChainBreak> {
    let mut expected_prev = prev_hash;
    for (expected_seq, e) in (prev_seq + 1..).zip(entries) {
        if e.seq != expected_seq || e.prev_hash != expected_prev {
            return Err(ChainBreak::Discontinuous { seq: e.seq });
        }
        if entry_hash(&e.record, e.seq, &e.prev_hash) != e.hash {
            return Err(ChainBreak::Altered { seq: e.seq });
        }
        expected_prev = e.hash;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn rec(n: u128, details: &str) -> AuditRecord {
        AuditRecord {
            id: AuditEntryId::from_uuid(Uuid::from_u128(n)),
            at: Utc.with_ymd_and_hms(2023, 8, 29, 9, 10, 0).unwrap(),
            customer: Some(CustomerId::from_uuid(Uuid::from_u128(7))),
            actor: ActorRef::system(),
            subject: None,
            category: AuditCategory::UserCreated,
            details: details.to_owned(),
        }
    }

    fn build(n: u128) -> Vec<AuditEntry> {
        let mut prev = ChainHash::GENESIS;
        (1..=n)
            .map(|i| {
                let e = chain(rec(i, "x"), u64::try_from(i).unwrap(), prev);
                prev = e.hash;
                e
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies() {
        assert_eq!(verify_chain(&build(5)), Ok(()));
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn editing_an_entry_is_detected() {
        let mut c = build(5);
        c[2].record.details = "y".into();
        assert_eq!(verify_chain(&c), Err(ChainBreak::Altered { seq: 3 }));
    }

    #[test]
    fn removing_or_reordering_is_detected() {
        let mut c = build(5);
        c.remove(1);
        assert_eq!(verify_chain(&c), Err(ChainBreak::Discontinuous { seq: 3 }));
        let mut c = build(5);
        c.swap(1, 2);
        assert!(verify_chain(&c).is_err());
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let a = rec(1, "a|b");
        let mut b = rec(1, "a");
        b.details = "a|b".into();
        assert_eq!(canonical_form(&a, 1), canonical_form(&b, 1));
        let c = rec(1, "a|1:b");
        assert_ne!(canonical_form(&a, 1), canonical_form(&c, 1));
    }

    #[test]
    fn categories_round_trip_and_have_labels() {
        for c in AuditCategory::ALL {
            assert_eq!(AuditCategory::from_key(c.key()), Some(*c));
            assert!(!c.label(Language::De).is_empty());
        }
        assert_eq!(
            AuditCategory::UserCreated.label(Language::De),
            "Benutzer angelegt"
        );
        assert_eq!(
            AuditCategory::AccountChanged.label(Language::De),
            "Account geändert"
        );
        assert_eq!(
            AuditCategory::UserActivated.label(Language::De),
            "Benutzer aktiviert"
        );
    }

    #[test]
    fn timestamps_are_utc_with_z() {
        assert!(canonical_form(&rec(1, ""), 1).contains("2023-08-29T09:10:00.000000Z"));
    }
}
