//! OpenID Connect provider: registered applications ([`Client`]), what a user's sign-in at one
//! of them gave ([`Grant`]: one per authorization code, the refresh-token family), the codes and
//! tokens of a grant ([`OidcToken`], stored as hashes only) and the server's signing keys
//! ([`SigningKey`], the private half sealed with the server secret).
//!
//! Every token of a grant is bound to the portal session the user signed in with: a token is
//! good only while that session lives, so everything that ends portal sessions (lock, delete,
//! logout, password reset, "end all sessions") ends the tokens at once, and the use case that
//! ends the sessions queues a back-channel logout for every client of them
//! ([`BackchannelLogout`]) in the same commit.

pub mod jose;

use crate::ids::{SessionId, UserId};
use crate::outbox::PayloadKind;
use crate::secret::TokenHash;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long an authorization code can be redeemed.
pub const CODE_TTL: TimeDelta = TimeDelta::seconds(60);
/// How long an access token (opaque or JWT) is good at most; for JWT access tokens this is the
/// bound on revocation (an application that validates them locally sees a lock this late).
pub const ACCESS_TOKEN_TTL: TimeDelta = TimeDelta::minutes(5);
/// How long a refresh token is good at most (it also ends with its portal session).
pub const REFRESH_TOKEN_TTL: TimeDelta = TimeDelta::hours(24);
/// How long an ID token says it is good.
pub const ID_TOKEN_TTL: TimeDelta = TimeDelta::minutes(5);
/// How long a retired signing key stays published: past every token it signed.
pub const KEY_PUBLISHED_AFTER_RETIREMENT: TimeDelta = TimeDelta::hours(25);
/// How old the current signing key may grow before the schedule (housekeeping) rotates it.
pub const KEY_ROTATION_AGE: TimeDelta = TimeDelta::days(30);

/// The `acr` of a sign-in with password only.
pub const ACR_PASSWORD: &str = "urn:portal:acr:pwd";
/// The `acr` of a sign-in with a second factor (or a remembered device that stands for one).
pub const ACR_SECOND_FACTOR: &str = "urn:portal:acr:mfa";

/// The scopes this provider knows.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "portal", "offline_access"];

/// How a client's access tokens look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenFormat {
    /// Random strings, checked by introspection (revocation at once).
    #[default]
    Opaque,
    /// RFC 9068 JWTs, valid [`ACCESS_TOKEN_TTL`] (the bound on revocation).
    Jwt,
}

impl AccessTokenFormat {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Opaque => "opaque",
            Self::Jwt => "jwt",
        }
    }

    /// Parses a key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "opaque" => Some(Self::Opaque),
            "jwt" => Some(Self::Jwt),
            _ => None,
        }
    }
}

/// A registered application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The public `client_id`.
    pub id: String,
    /// Shown to users (consent page, no-permission page) and operators.
    pub name: String,
    /// SHA-256 of the secret (confidential clients); the secret itself is shown once.
    pub secret_hash: Option<TokenHash>,
    /// Exactly these redirect URIs are accepted.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted.
    pub backchannel_logout_uri: Option<String>,
    /// A public client (no secret, PKCE required).
    pub public: bool,
    /// First-party: no consent page.
    pub first_party: bool,
    /// The permission a user needs to sign in here (a catalog key).
    pub required_permission: Option<String>,
    /// Users must sign in with a second factor.
    pub require_second_factor: bool,
    /// Opaque or JWT access tokens.
    pub access_tokens: AccessTokenFormat,
    /// Disabled: no new sign-ins, no token of it is good.
    pub disabled: bool,
    /// When registered.
    pub created_at: DateTime<Utc>,
    /// Optimistic-locking version (1 when stored first).
    #[serde(skip)]
    pub version: u64,
}

/// What a user's sign-in at a client gave: one per authorization code; the codes, access and
/// refresh tokens issued from it belong to it, and revoking it ends them all (a code used twice,
/// a refresh token used twice, RFC 7009 revocation of a refresh token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Id (also the refresh-token family).
    pub id: Uuid,
    /// Which client.
    pub client_id: String,
    /// Whose.
    pub user_id: UserId,
    /// The portal session it came from: tokens are good only while it lives.
    pub session_id: SessionId,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The `nonce` of the authorization request.
    pub nonce: Option<String>,
    /// When the user authenticated (the session's).
    pub auth_time: DateTime<Utc>,
    /// How (`amr`).
    pub amr: Vec<String>,
    /// The redirect URI the code was sent to (the token request must repeat it).
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// When revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Optimistic-locking version.
    #[serde(skip)]
    pub version: u64,
}

impl Grant {
    /// The `acr` of its sign-in.
    #[must_use]
    pub fn acr(&self) -> &'static str {
        acr_of(&self.amr)
    }

    /// Whether a scope was granted.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The `acr` for a list of `amr` values.
#[must_use]
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m != "pwd") {
        ACR_SECOND_FACTOR
    } else {
        ACR_PASSWORD
    }
}

/// What an [`OidcToken`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OidcTokenKind {
    /// An authorization code (single use).
    Code,
    /// An opaque access token (a JWT access token is not stored).
    Access,
    /// A refresh token (single use: each refresh gives a new one).
    Refresh,
}

impl OidcTokenKind {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }

    /// Parses a key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "code" => Some(Self::Code),
            "access" => Some(Self::Access),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// A code or token of a grant, stored by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it is.
    pub kind: OidcTokenKind,
    /// Whose grant.
    pub grant_id: Uuid,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// When it stops being good.
    pub expires_at: DateTime<Utc>,
    /// When used (codes and refresh tokens are single use; an access token is marked used when
    /// revoked).
    pub used_at: Option<DateTime<Utc>>,
}

/// A signing key: RSA 2048, RS256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// Key id (`kid`).
    pub kid: String,
    /// When generated.
    pub created_at: DateTime<Utc>,
    /// When a newer key became current; published until
    /// [`KEY_PUBLISHED_AFTER_RETIREMENT`] later.
    pub retired_at: Option<DateTime<Utc>>,
    /// The private key (PKCS#8 PEM), sealed with the server secret (see
    /// [`secretbox`](crate::secretbox)).
    pub sealed_private_key: String,
    /// The public key as a JWK (JSON).
    pub public_jwk: String,
    /// Optimistic-locking version.
    #[serde(skip)]
    pub version: u64,
}

impl SigningKey {
    /// Whether it is still listed in the JWKS at `now`.
    #[must_use]
    pub fn is_published_at(&self, now: DateTime<Utc>) -> bool {
        self.retired_at
            .is_none_or(|r| now < r + KEY_PUBLISHED_AFTER_RETIREMENT)
    }
}

/// An OIDC back-channel logout: the signed logout token posted to a client's registered URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelLogout {
    /// The client's back-channel logout URI.
    pub uri: String,
    /// The client.
    pub client_id: String,
    /// The signed logout token (not a secret: it only tells the client to end a session).
    pub logout_token: String,
}

impl PayloadKind for BackchannelLogout {
    fn recipient(&self) -> String {
        self.uri.clone()
    }

    fn summary(&self) -> String {
        format!("backchannel_logout client={}", self.client_id)
    }
}
