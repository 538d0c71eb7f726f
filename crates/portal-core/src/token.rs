//! Single-use links: password reset (R15) and invitations (R10). The mailed link carries a
//! 256-bit [`Token`](crate::secret::Token); storage keeps its hash, the purpose, the user, an
//! expiry and when it was used.

use crate::customer::CorruptRecord;
use crate::ids::{ActionTokenId, UserId};
use crate::secret::TokenHash;
use chrono::{DateTime, Utc};

/// What a link is for. A token of one purpose is useless for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// "Ihr Passwort zurücksetzen".
    PasswordReset,
    /// "Einladung zum Portal".
    Invitation,
}

impl TokenPurpose {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::Invitation => "invitation",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "password_reset" => Some(Self::PasswordReset),
            "invitation" => Some(Self::Invitation),
            _ => None,
        }
    }
}

/// Everything stored about a link token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionTokenRecord {
    /// Id.
    pub id: ActionTokenId,
    /// Hash of the token in the link.
    pub hash: TokenHash,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// For whom.
    pub user_id: UserId,
    /// Issued.
    pub created_at: DateTime<Utc>,
    /// Dead from then on.
    pub expires_at: DateTime<Utc>,
    /// Used then (single use).
    pub used_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version: two concurrent uses conflict, one wins.
    pub version: u64,
}

/// A single-use link token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionToken {
    rec: ActionTokenRecord,
}

/// Why a link no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenUnusable {
    /// Past its expiry.
    #[error("link expired")]
    Expired,
    /// Already used.
    #[error("link already used")]
    Used,
}

impl ActionToken {
    /// Issues a token.
    #[must_use]
    pub fn issue(
        id: ActionTokenId,
        hash: TokenHash,
        purpose: TokenPurpose,
        user_id: UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            rec: ActionTokenRecord {
                id,
                hash,
                purpose,
                user_id,
                created_at: now,
                expires_at,
                used_at: None,
                version: 0,
            },
        }
    }

    /// Rebuilds a token read back from storage.
    ///
    /// # Errors
    /// Expiry before issue.
    pub fn from_record(rec: ActionTokenRecord) -> Result<Self, CorruptRecord> {
        if rec.expires_at < rec.created_at {
            return Err(CorruptRecord::new("action token", "expires before issued"));
        }
        Ok(Self { rec })
    }

    /// The stored fields.
    #[must_use]
    pub fn record(&self) -> &ActionTokenRecord {
        &self.rec
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> ActionTokenId {
        self.rec.id
    }

    /// For whom.
    #[must_use]
    pub fn user_id(&self) -> UserId {
        self.rec.user_id
    }

    /// Purpose.
    #[must_use]
    pub fn purpose(&self) -> TokenPurpose {
        self.rec.purpose
    }

    /// Version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.rec.version
    }

    /// Whether the link still works at `now`.
    ///
    /// # Errors
    /// Used or expired.
    pub fn usable_at(&self, now: DateTime<Utc>) -> Result<(), TokenUnusable> {
        if self.rec.used_at.is_some() {
            return Err(TokenUnusable::Used);
        }
        if now >= self.rec.expires_at {
            return Err(TokenUnusable::Expired);
        }
        Ok(())
    }

    /// Marks the token used without looking at its expiry: for an invitation that was accepted in
    /// time and is completed with a (separately expiring) mailed code.
    ///
    /// # Errors
    /// Already used.
    pub fn complete(&mut self, now: DateTime<Utc>) -> Result<(), TokenUnusable> {
        if self.rec.used_at.is_some() {
            return Err(TokenUnusable::Used);
        }
        self.rec.used_at = Some(now);
        Ok(())
    }

    /// Uses the token up.
    ///
    /// # Errors
    /// Used or expired.
    pub fn consume(&mut self, now: DateTime<Utc>) -> Result<(), TokenUnusable> {
        self.usable_at(now)?;
        self.rec.used_at = Some(now);
        Ok(())
    }
}
