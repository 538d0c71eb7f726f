//! The OpenID Connect provider's use cases: clients (operators), signing keys, the
//! authorization request, the token endpoint (code and refresh grants), userinfo, introspection
//! (RFC 7662), revocation (RFC 7009), RP-initiated logout, and the back-channel logouts that
//! every use case ending portal sessions queues in its own commit.
//!
//! Every token is checked against live state on every use ([`Portal::live_grant`]): the grant
//! not revoked, its client enabled, its portal session alive, its user active and — when the
//! client requires one — still holding the client's permission.

use super::{Actor, Planned, Portal, Principal, actor_ref, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::authz;
use crate::customer::Customer;
use crate::error::InfraError;
use crate::ids::{SessionId, UserId};
use crate::oidc::jose::{self, JoseError};
use crate::oidc::{
    ACCESS_TOKEN_TTL, AccessTokenFormat, BackchannelLogout, CODE_TTL, Client, Grant, ID_TOKEN_TTL,
    OidcToken, OidcTokenKind, REFRESH_TOKEN_TTL, SCOPES, SigningKey, acr_of,
};
use crate::outbox::{OutboxMessage, Payload};
use crate::permission::PermissionKey;
use crate::ports::{Commit, StoreError, Write};
use crate::secret::{SecretString, Token, constant_time_eq};
use crate::user::User;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

mod clients;
pub use clients::ClientChanges;

/// What went wrong in an operator's client or key command.
#[derive(Debug, thiserror::Error)]
pub enum OidcAdminError {
    /// Only operators and the system manage clients and keys.
    #[error("forbidden")]
    Forbidden,
    /// No such client.
    #[error("not found")]
    NotFound,
    /// A field is invalid (its name and why).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The server has no key to seal signing keys with.
    #[error("no server key to seal signing keys")]
    NoSealingKey,
    /// Concurrent change.
    #[error("conflict")]
    Conflict,
    /// Infrastructure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(OidcAdminError);

/// A new client, as an operator registers it.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Shown to users.
    pub name: String,
    /// Accepted redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// Public (no secret, PKCE required).
    pub public: bool,
    /// No consent page.
    pub first_party: bool,
    /// The permission users need.
    pub required_permission: Option<String>,
    /// Users must sign in with a second factor.
    pub require_second_factor: bool,
    /// Opaque or JWT access tokens.
    pub access_tokens: AccessTokenFormat,
}

/// A client with its secret, shown once (at creation and secret rotation).
#[derive(Debug, Clone)]
pub struct ClientWithSecret {
    /// The client.
    pub client: Client,
    /// The secret (confidential clients).
    pub secret: Option<SecretString>,
}

/// An authorization request as received (all parameters optional text; [`Portal::check_authorize`]
/// decides what each may be).
#[derive(Debug, Clone, Default)]
pub struct AuthorizeRequest {
    /// Which registered application asks.
    pub client_id: Option<String>,
    /// Where the answer goes: one of the client's registered URIs, character for character.
    pub redirect_uri: Option<String>,
    /// Must be `code` (the only flow offered).
    pub response_type: Option<String>,
    /// Space-separated; must hold `openid`, unknown scopes are dropped.
    pub scope: Option<String>,
    /// Echoed back to the client unchanged (at most 2,000 characters).
    pub state: Option<String>,
    /// Copied into the ID token (at most 512 characters).
    pub nonce: Option<String>,
    /// The PKCE challenge: 43 to 128 characters of the URL-safe alphabet.
    pub code_challenge: Option<String>,
    /// Must be `S256` when a challenge is given.
    pub code_challenge_method: Option<String>,
    /// `none`, `login`, `consent` (space-separated; `none` alone).
    pub prompt: Option<String>,
    /// Seconds since the last sign-in beyond which the user must sign in again.
    pub max_age: Option<String>,
    /// An e-mail address to fill into the login form.
    pub login_hint: Option<String>,
}

/// An authorization request whose client and redirect URI are known good.
#[derive(Debug, Clone)]
pub struct CheckedAuthorize {
    /// The client.
    pub client: Client,
    /// The (registered) redirect URI.
    pub redirect_uri: String,
    /// Requested scopes this provider knows (always with `openid`).
    pub scopes: Vec<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// The S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt=none`.
    pub prompt_none: bool,
    /// `prompt=login`.
    pub prompt_login: bool,
    /// `prompt=consent`.
    pub prompt_consent: bool,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
}

/// A refused authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    /// Shown as a page, never redirected: the client is unknown or disabled, or the redirect URI
    /// is missing or not registered.
    Page(&'static str),
    /// Redirected back to the client with `error`.
    Redirect(ErrorRedirect),
}

/// An error sent back to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// Where.
    pub redirect_uri: String,
    /// OAuth error code.
    pub error: &'static str,
    /// Description.
    pub description: &'static str,
    /// `state`, echoed.
    pub state: Option<String>,
}

/// What the authorization endpoint does next.
#[derive(Debug, Clone)]
pub enum AuthorizeOutcome {
    /// Redirect to the client with the code.
    Code {
        /// Where.
        redirect_uri: String,
        /// The code.
        code: SecretString,
        /// `state`, echoed.
        state: Option<String>,
    },
    /// The user must (re-)authenticate first (no session, `prompt=login`, `max_age`).
    Login,
    /// The user must sign in again with their second factor.
    SecondFactorLogin,
    /// The user must set up a second factor first.
    SecondFactorSetup,
    /// The user must agree that the client may read these scopes.
    Consent {
        /// The client's name.
        client_name: String,
        /// The scopes.
        scopes: Vec<String>,
    },
    /// The user lacks the client's permission (a page, no code).
    NoPermission {
        /// The client's name.
        client_name: String,
    },
    /// An error to redirect with (`login_required`, `access_denied`, …).
    Error(ErrorRedirect),
}

/// Client authentication at the token, introspection and revocation endpoints, as sent
/// (`client_secret_basic` or `client_secret_post`).
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    /// `client_id`.
    pub client_id: Option<String>,
    /// `client_secret`.
    pub secret: Option<SecretString>,
}

/// A token request (its client authenticated apart, [`ClientAuth`]).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: Option<String>,
    /// The code of the authorization response (code grant).
    pub code: Option<String>,
    /// Must repeat the authorization request's (code grant).
    pub redirect_uri: Option<String>,
    /// The PKCE verifier whose S256 hash the challenge was (code grant).
    pub code_verifier: Option<String>,
    /// The refresh token to redeem, once (refresh grant).
    pub refresh_token: Option<String>,
}

/// A token response.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: SecretString,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The new refresh token (with `offline_access`).
    pub refresh_token: Option<SecretString>,
    /// The ID token.
    pub id_token: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// A token-endpoint error (RFC 6749 section 5.2).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `invalid_request`.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// `invalid_client` (answered with 401).
    #[error("invalid_client")]
    InvalidClient,
    /// `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// `unsupported_grant_type`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// Infrastructure (the signing key too).
    #[error(transparent)]
    Infra(InfraError),
}

impl TokenError {
    /// The OAuth error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Infra(_) => "server_error",
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        Self::Infra(InfraError::Store(e))
    }
}

impl From<JoseError> for TokenError {
    fn from(_: JoseError) -> Self {
        Self::Infra(InfraError::Store(StoreError::Unavailable(
            "signing key unusable".into(),
        )))
    }
}

/// Where RP-initiated logout sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// The registered post-logout URI (with `state`), if one was asked for and is allowed.
    pub redirect: Option<String>,
}

/// A grant with everything that makes it good now.
#[derive(Debug, Clone)]
pub struct LiveGrant {
    /// The grant.
    pub grant: Grant,
    /// Its client.
    pub client: Client,
    /// Its user.
    pub user: User,
    /// The user's customer.
    pub customer: Option<Customer>,
}

const NO_CLIENT: &str = "unknown_client";
const BAD_REDIRECT: &str = "invalid_redirect_uri";

fn err_redirect(
    redirect_uri: &str,
    error: &'static str,
    description: &'static str,
    state: Option<&String>,
) -> ErrorRedirect {
    ErrorRedirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        description,
        state: state.cloned(),
    }
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636's S256.
#[must_use]
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn valid_uri(uri: &str) -> bool {
    (uri.starts_with("https://") || uri.starts_with("http://"))
        && uri.len() <= 2_000
        && !uri.contains('#')
        && !uri.chars().any(char::is_whitespace)
}

impl Portal {
    fn oidc_issuer(&self) -> &str {
        self.config.oidc_issuer.trim_end_matches('/')
    }

    async fn operator_acting(&self, actor: &Actor) -> Result<ActorRef, OidcAdminError> {
        let acting = self
            .acting_operator(actor)
            .await?
            .ok_or(OidcAdminError::Forbidden)?;
        Ok(actor_ref(&acting))
    }

    fn validate_new_client(&self, new: &NewClient) -> Result<(), OidcAdminError> {
        let invalid = |field, reason| Err(OidcAdminError::Invalid { field, reason });
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return invalid("name", "1 to 100 characters");
        }
        // Shown on the consent and "no permission" pages and in the operator's lists: the same
        // rules as every other displayed name (no control characters, no text-direction
        // controls or invisible characters).
        if name
            .chars()
            .any(|c| c.is_control() || crate::values::is_hidden_formatting(c))
        {
            return invalid("name", "no control, text-direction or invisible characters");
        }
        if new.redirect_uris.is_empty() {
            return invalid("redirect_uris", "at least one");
        }
        if !new.redirect_uris.iter().all(|u| valid_uri(u)) {
            return invalid("redirect_uris", "absolute http(s) URIs without fragment");
        }
        if !new.post_logout_redirect_uris.iter().all(|u| valid_uri(u)) {
            return invalid(
                "post_logout_redirect_uris",
                "absolute http(s) URIs without fragment",
            );
        }
        if new
            .backchannel_logout_uri
            .as_deref()
            .is_some_and(|u| !valid_uri(u))
        {
            return invalid("backchannel_logout_uri", "absolute http(s) URI");
        }
        if let Some(p) = &new.required_permission {
            let known = PermissionKey::parse(p)
                .ok()
                .is_some_and(|k| self.catalog.contains(&k));
            if !known {
                return invalid("required_permission", "not a permission of the catalog");
            }
        }
        Ok(())
    }

    /// Registers a client (operators and the system). The secret is returned only here.
    ///
    /// # Errors
    /// Not an operator, invalid fields, infrastructure.
    pub async fn create_client(
        &self,
        actor: &Actor,
        new: NewClient,
    ) -> Result<ClientWithSecret, OidcAdminError> {
        let by = self.operator_acting(actor).await?;
        self.validate_new_client(&new)?;
        let now = self.now();
        let secret = (!new.public).then(|| Token::generate(&*self.deps.random));
        let client = Client {
            id: self.new_uuid().simple().to_string(),
            name: new.name.trim().to_owned(),
            secret_hash: secret.as_ref().map(Token::hash),
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            backchannel_logout_uri: new.backchannel_logout_uri,
            public: new.public,
            first_party: new.first_party,
            required_permission: new.required_permission,
            require_second_factor: new.require_second_factor,
            access_tokens: new.access_tokens,
            disabled: false,
            created_at: now,
            version: 1,
        };
        let mut commit = Commit::new();
        commit
            .write(Write::InsertOidcClient(client.clone()))
            .audit(self.audit_record(
                now,
                None,
                by,
                None,
                AuditCategory::OidcClientCreated,
                format!(
                    "client={} name={} public={} first_party={}",
                    client.id, client.name, client.public, client.first_party
                ),
            ));
        self.commit_with_events(commit).await?;
        Ok(ClientWithSecret {
            client,
            secret: secret.map(|t| SecretString::new(t.expose())),
        })
    }

    /// Every client (operators and the system).
    ///
    /// # Errors
    /// Not an operator, infrastructure.
    pub async fn clients(&self, actor: &Actor) -> Result<Vec<Client>, OidcAdminError> {
        self.operator_acting(actor).await?;
        Ok(self.deps.queries.oidc_clients().await?)
    }

    /// One client (operators and the system).
    ///
    /// # Errors
    /// Not an operator, unknown, infrastructure.
    pub async fn client(&self, actor: &Actor, id: &str) -> Result<Client, OidcAdminError> {
        self.operator_acting(actor).await?;
        self.deps
            .queries
            .oidc_client(id)
            .await?
            .ok_or(OidcAdminError::NotFound)
    }

    async fn change_client(
        &self,
        actor: &Actor,
        id: &str,
        change: impl Fn(&mut Client, DateTime<Utc>) -> Result<String, OidcAdminError>,
    ) -> Result<Client, OidcAdminError> {
        let by = self.operator_acting(actor).await?;
        self.transact(|| async {
            let now = self.now();
            let mut client = self
                .deps
                .queries
                .oidc_client(id)
                .await?
                .ok_or(OidcAdminError::NotFound)?;
            let details = change(&mut client, now)?;
            let mut commit = Commit::new();
            commit
                .write(Write::UpdateOidcClient(client.clone()))
                .audit(self.audit_record(
                    now,
                    None,
                    by,
                    None,
                    AuditCategory::OidcClientChanged,
                    format!("client={} {details}", client.id),
                ));
            client.version += 1;
            Ok(Planned::new(commit, client))
        })
        .await
    }

    /// Gives a confidential client a new secret (the old one stops working at once).
    ///
    /// # Errors
    /// Not an operator, unknown or public client, infrastructure.
    pub async fn rotate_client_secret(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<ClientWithSecret, OidcAdminError> {
        let secret = Token::generate(&*self.deps.random);
        let hash = secret.hash();
        let client = self
            .change_client(actor, id, |c, _| {
                if c.public {
                    return Err(OidcAdminError::Invalid {
                        field: "client",
                        reason: "a public client has no secret",
                    });
                }
                c.secret_hash = Some(hash);
                Ok("secret=rotated".to_owned())
            })
            .await?;
        Ok(ClientWithSecret {
            client,
            secret: Some(SecretString::new(secret.expose())),
        })
    }

    /// Disables a client: no new sign-ins, none of its tokens is good any more.
    ///
    /// # Errors
    /// Not an operator, unknown client, infrastructure.
    pub async fn disable_client(&self, actor: &Actor, id: &str) -> Result<Client, OidcAdminError> {
        self.change_client(actor, id, |c, _| {
            c.disabled = true;
            Ok("disabled=true".to_owned())
        })
        .await
    }

    // ----- signing keys -----

    fn open_key(&self, key: &SigningKey) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let ring = self.mfa_keyring().ok_or(JoseError::BadKey)?;
        ring.open(&key.sealed_private_key, key_aad(&key.kid).as_bytes())
            .map_err(|_| JoseError::BadKey)
    }

    fn new_signing_key(&self, now: DateTime<Utc>) -> Result<SigningKey, OidcAdminError> {
        let sealing = self
            .config
            .mfa_key
            .as_ref()
            .ok_or(OidcAdminError::NoSealingKey)?;
        let kid = self.new_uuid().simple().to_string();
        let generated = jose::generate_key(&*self.deps.random, &kid)
            .map_err(|_| OidcAdminError::NoSealingKey)?;
        let sealed = crate::secretbox::seal(
            sealing,
            &*self.deps.random,
            &generated.private_der,
            key_aad(&kid).as_bytes(),
        );
        Ok(SigningKey {
            kid,
            created_at: now,
            retired_at: None,
            sealed_private_key: sealed,
            public_jwk: generated.public_jwk,
            version: 1,
        })
    }

    /// Makes a new signing key current (`portal keys rotate`, the schedule); older keys stay
    /// published until every token they signed has expired. Returns the new `kid`.
    ///
    /// # Errors
    /// Not an operator, no sealing key, infrastructure.
    pub async fn rotate_signing_key(&self, actor: &Actor) -> Result<String, OidcAdminError> {
        let by = self.operator_acting(actor).await?;
        let now = self.now();
        let key = self.new_signing_key(now)?;
        let kid = key.kid.clone();
        self.transact(|| async {
            let mut commit = Commit::new();
            for mut old in self.deps.queries.signing_keys().await? {
                if old.retired_at.is_none() {
                    old.retired_at = Some(now);
                    commit.write(Write::UpdateSigningKey(old));
                }
            }
            commit
                .write(Write::InsertSigningKey(key.clone()))
                .audit(self.audit_record(
                    now,
                    None,
                    by,
                    None,
                    AuditCategory::OidcKeyRotated,
                    format!("kid={}", key.kid),
                ));
            Ok::<_, OidcAdminError>(Planned::new(commit, ()))
        })
        .await?;
        Ok(kid)
    }

    /// Rotates the signing key when there is none or the current one is older than `max_age`
    /// (serve's start and housekeeping). Returns the new `kid` if it rotated.
    ///
    /// # Errors
    /// No sealing key, infrastructure.
    pub async fn rotate_signing_key_if_due(
        &self,
        max_age: TimeDelta,
    ) -> Result<Option<String>, OidcAdminError> {
        let now = self.now();
        let keys = self.deps.queries.signing_keys().await?;
        let due = keys
            .iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.created_at)
            .max()
            .is_none_or(|created| now - created >= max_age);
        if !due {
            return Ok(None);
        }
        self.rotate_signing_key(&Actor::System).await.map(Some)
    }

    /// The current key, without making one.
    async fn existing_key(&self) -> Result<Option<(SigningKey, Zeroizing<Vec<u8>>)>, StoreError> {
        let current = self
            .deps
            .queries
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| k.created_at);
        Ok(current.and_then(|k| self.open_key(&k).ok().map(|der| (k, der))))
    }

    async fn current_key(&self) -> Result<(SigningKey, Zeroizing<Vec<u8>>), TokenError> {
        let current = self
            .deps
            .queries
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| k.created_at);
        let key = match current {
            Some(k) => k,
            None => {
                self.rotate_signing_key(&Actor::System)
                    .await
                    .map_err(|_| TokenError::from(JoseError::BadKey))?;
                self.deps
                    .queries
                    .signing_keys()
                    .await?
                    .into_iter()
                    .filter(|k| k.retired_at.is_none())
                    .max_by_key(|k| k.created_at)
                    .ok_or(TokenError::from(JoseError::BadKey))?
            }
        };
        let der = self.open_key(&key)?;
        Ok((key, der))
    }

    /// The published keys (current and retired ones still within their publication time).
    ///
    /// # Errors
    /// Infrastructure, or a stored key that does not parse.
    pub async fn jwks(&self) -> Result<JwkSet, TokenError> {
        let now = self.now();
        let keys = self.deps.queries.signing_keys().await?;
        if keys.iter().all(|k| k.retired_at.is_some()) {
            // No current key yet: make one, so the set is never empty.
            self.current_key().await?;
            return Box::pin(self.jwks()).await;
        }
        Ok(jose::jwks(
            keys.iter()
                .filter(|k| k.is_published_at(now))
                .map(|k| k.public_jwk.as_str()),
        )?)
    }

    pub(super) async fn sign(&self, claims: &Value, typ: &str) -> Result<String, TokenError> {
        let (key, der) = self.current_key().await?;
        Ok(jose::sign(claims, &key.kid, typ, &der)?)
    }

    // ----- authorization -----

    /// Checks an authorization request: the client and redirect URI first (a page if either is
    /// wrong, never a redirect), then the rest (redirected errors).
    ///
    /// # Errors
    /// The refusal.
    pub async fn check_authorize(
        &self,
        req: &AuthorizeRequest,
    ) -> Result<CheckedAuthorize, AuthorizeRefusal> {
        let page = AuthorizeRefusal::Page;
        let client_id = req.client_id.as_deref().ok_or(page(NO_CLIENT))?;
        let client = self
            .deps
            .queries
            .oidc_client(client_id)
            .await
            .ok()
            .flatten()
            .filter(|c| !c.disabled)
            .ok_or(page(NO_CLIENT))?;
        let redirect_uri = req
            .redirect_uri
            .as_deref()
            .filter(|u| client.redirect_uris.iter().any(|r| r == u))
            .ok_or(page(BAD_REDIRECT))?
            .to_owned();
        let state = req.state.as_ref();
        let fail = |error, description| {
            Err(AuthorizeRefusal::Redirect(err_redirect(
                &redirect_uri,
                error,
                description,
                state,
            )))
        };
        if req.response_type.as_deref() != Some("code") {
            return fail(
                "unsupported_response_type",
                "only the code response type is supported",
            );
        }
        let requested: Vec<&str> = req
            .scope
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .collect();
        if !requested.contains(&"openid") {
            return fail("invalid_scope", "the openid scope is required");
        }
        let scopes: Vec<String> = SCOPES
            .iter()
            .filter(|s| requested.contains(s))
            .map(|s| (*s).to_owned())
            .collect();
        let method = req.code_challenge_method.as_deref();
        let challenge = req.code_challenge.clone().filter(|c| !c.is_empty());
        match (&challenge, method) {
            (None, _) if client.public => {
                return fail(
                    "invalid_request",
                    "PKCE (S256) is required for public clients",
                );
            }
            (Some(c), Some("S256"))
                if (43..=128).contains(&c.len())
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) => {}
            (Some(_), _) => {
                return fail(
                    "invalid_request",
                    "code_challenge_method must be S256 with a valid challenge",
                );
            }
            (None, _) => {}
        }
        let prompts: Vec<&str> = req
            .prompt
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .collect();
        if prompts.contains(&"none") && prompts.len() > 1 {
            return fail(
                "invalid_request",
                "prompt none cannot be combined with other values",
            );
        }
        let max_age = match req.max_age.as_deref() {
            None | Some("") => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return fail("invalid_request", "max_age must be a number of seconds"),
            },
        };
        if req.nonce.as_ref().is_some_and(|n| n.len() > 512)
            || req.state.as_ref().is_some_and(|n| n.len() > 2_000)
        {
            return fail("invalid_request", "nonce or state too long");
        }
        Ok(CheckedAuthorize {
            redirect_uri: redirect_uri.clone(),
            scopes,
            state: req.state.clone(),
            nonce: req.nonce.clone(),
            code_challenge: challenge,
            prompt_none: prompts.contains(&"none"),
            prompt_login: prompts.contains(&"login"),
            prompt_consent: prompts.contains(&"consent"),
            max_age,
            login_hint: req.login_hint.clone(),
            client,
        })
    }

    /// Decides a checked authorization request for the signed-in user (if any):
    /// `fresh_login_since` is set when the browser comes back from a login that `prompt=login`
    /// asked for (the session must have authenticated at or after it); `consent` when the user
    /// just agreed on the consent page.
    ///
    /// # Errors
    /// Infrastructure.
    pub async fn authorize(
        &self,
        principal: Option<&Principal>,
        req: &CheckedAuthorize,
        fresh_login_since: Option<DateTime<Utc>>,
        consent: bool,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let now = self.now();
        let error = |e, d| {
            Ok(AuthorizeOutcome::Error(err_redirect(
                &req.redirect_uri,
                e,
                d,
                req.state.as_ref(),
            )))
        };
        let Some(p) = principal else {
            if req.prompt_none {
                return error("login_required", "the user is not signed in");
            }
            return Ok(AuthorizeOutcome::Login);
        };
        let session = p.session();
        let stale = req
            .max_age
            .is_some_and(|m| now - session.authenticated_at() > TimeDelta::seconds(m));
        let must_login =
            req.prompt_login && fresh_login_since.is_none_or(|t| session.authenticated_at() < t);
        if stale || must_login {
            if req.prompt_none {
                return error("login_required", "a fresh sign-in is required");
            }
            return Ok(AuthorizeOutcome::Login);
        }
        let user = p.user();
        let client = &req.client;
        if !user.is_active() {
            self.refuse_code(user, client, "not_active").await?;
            return error("access_denied", "the account is not active");
        }
        let needs_second = client.require_second_factor || p.second_factor_missing();
        if needs_second && !user.mfa().is_enabled() {
            if req.prompt_none {
                return error("interaction_required", "a second factor must be set up");
            }
            return Ok(AuthorizeOutcome::SecondFactorSetup);
        }
        if client.require_second_factor && acr_of(session.methods()) == crate::oidc::ACR_PASSWORD {
            if req.prompt_none {
                return error(
                    "login_required",
                    "a sign-in with a second factor is required",
                );
            }
            return Ok(AuthorizeOutcome::SecondFactorLogin);
        }
        if let Some(required) = &client.required_permission {
            let allowed = PermissionKey::parse(required)
                .is_ok_and(|k| authz::may_access_area(user, p.customer(), &k));
            if !allowed {
                self.refuse_code(user, client, "no_permission").await?;
                if req.prompt_none {
                    return error(
                        "access_denied",
                        "the user lacks the application's permission",
                    );
                }
                return Ok(AuthorizeOutcome::NoPermission {
                    client_name: client.name.clone(),
                });
            }
        }
        let mut commit = Commit::new();
        if !client.first_party {
            let agreed = self
                .deps
                .queries
                .oidc_consent(user.id(), &client.id)
                .await?
                .is_some_and(|s| req.scopes.iter().all(|x| s.contains(x)));
            if consent {
                commit
                    .write(Write::UpsertOidcConsent {
                        user: user.id(),
                        client_id: client.id.clone(),
                        scopes: req.scopes.clone(),
                    })
                    .audit(self.own_audit_record(
                        now,
                        user,
                        AuditCategory::OidcConsentGiven,
                        format!("client={} scope={}", client.id, req.scopes.join(" ")),
                    ));
            } else if !agreed || req.prompt_consent {
                if req.prompt_none {
                    return error("consent_required", "the user has not agreed yet");
                }
                return Ok(AuthorizeOutcome::Consent {
                    client_name: client.name.clone(),
                    scopes: req.scopes.clone(),
                });
            }
        }
        let code = Token::generate(&*self.deps.random);
        let grant = Grant {
            id: self.new_uuid(),
            client_id: client.id.clone(),
            user_id: user.id(),
            session_id: session.id(),
            scopes: req.scopes.clone(),
            nonce: req.nonce.clone(),
            auth_time: session.authenticated_at(),
            amr: session.methods().to_vec(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            created_at: now,
            revoked_at: None,
            version: 1,
        };
        let code_row = OidcToken {
            hash: code.hash(),
            kind: OidcTokenKind::Code,
            grant_id: grant.id,
            created_at: now,
            expires_at: now + CODE_TTL,
            used_at: None,
        };
        commit
            .audit(self.own_audit_record(
                now,
                user,
                AuditCategory::OidcCodeIssued,
                format!("client={} scope={}", client.id, grant.scopes.join(" ")),
            ))
            .write(Write::InsertOidcGrant(grant))
            .write(Write::InsertOidcToken(code_row));
        self.commit_with_events(commit).await?;
        Ok(AuthorizeOutcome::Code {
            redirect_uri: req.redirect_uri.clone(),
            code: SecretString::new(code.expose()),
            state: req.state.clone(),
        })
    }

    async fn refuse_code(&self, user: &User, client: &Client, why: &str) -> Result<(), StoreError> {
        let now = self.now();
        let mut commit = Commit::new();
        commit.audit(self.own_audit_record(
            now,
            user,
            AuditCategory::OidcCodeRefused,
            format!("client={} reason={why}", client.id),
        ));
        self.commit_with_events(commit).await
    }

    // ----- live state -----

    /// The grant with its client, user and customer if every token of it is good now: not
    /// revoked, client enabled, portal session alive, user active, the client's permission held.
    ///
    /// # Errors
    /// Infrastructure.
    pub async fn live_grant(&self, grant_id: Uuid) -> Result<Option<LiveGrant>, StoreError> {
        let now = self.now();
        let q = &self.deps.queries;
        let Some(grant) = q.oidc_grant(grant_id).await? else {
            return Ok(None);
        };
        if grant.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(client) = q
            .oidc_client(&grant.client_id)
            .await?
            .filter(|c| !c.disabled)
        else {
            return Ok(None);
        };
        let session_alive = q
            .sessions_of_user(grant.user_id)
            .await?
            .iter()
            .any(|s| s.id() == grant.session_id && s.is_full() && s.is_alive_at(now));
        if !session_alive {
            return Ok(None);
        }
        let Some(user) = q.user(grant.user_id).await?.filter(User::is_active) else {
            return Ok(None);
        };
        let customer = match user.customer_id() {
            Some(c) => q.customer(c).await?,
            None => None,
        };
        if let Some(required) = &client.required_permission {
            let allowed = PermissionKey::parse(required)
                .is_ok_and(|k| authz::may_access_area(&user, customer.as_ref(), &k));
            if !allowed {
                return Ok(None);
            }
        }
        Ok(Some(LiveGrant {
            grant,
            client,
            user,
            customer,
        }))
    }

    /// The claims the grant's scopes allow, read from the user as stored now.
    fn user_claims(&self, live: &LiveGrant) -> Map<String, Value> {
        let g = &live.grant;
        let u = &live.user;
        let mut c = Map::new();
        c.insert("sub".into(), json!(u.id().to_string()));
        if g.has_scope("profile") {
            c.insert("name".into(), json!(u.display_name()));
            c.insert("given_name".into(), json!(u.first_name().as_str()));
            c.insert("family_name".into(), json!(u.last_name().as_str()));
            c.insert("locale".into(), json!(u.language().code()));
        }
        if g.has_scope("email") {
            c.insert("email".into(), json!(u.email().as_str()));
            c.insert("email_verified".into(), json!(true));
        }
        if g.has_scope("portal") {
            let customer = live.customer.as_ref();
            c.insert(
                "customer_number".into(),
                json!(customer.map(|c| c.number().printed())),
            );
            c.insert(
                "customer_name".into(),
                json!(customer.map(|c| c.name().as_str().to_owned())),
            );
            c.insert("role".into(), json!(u.role().key()));
            let permissions: Vec<&str> = self
                .catalog
                .permissions()
                .iter()
                .filter(|p| authz::may_access_area(u, customer, &p.key))
                .map(|p| p.key.as_str())
                .collect();
            c.insert("permissions".into(), json!(permissions));
        }
        c
    }

    // ----- token endpoint -----

    async fn authenticate_client(&self, auth: &ClientAuth) -> Result<Client, TokenError> {
        let id = auth.client_id.as_deref().ok_or(TokenError::InvalidClient)?;
        let client = self
            .deps
            .queries
            .oidc_client(id)
            .await?
            .filter(|c| !c.disabled)
            .ok_or(TokenError::InvalidClient)?;
        match (&client.secret_hash, &auth.secret) {
            (None, None) if client.public => Ok(client),
            (Some(hash), Some(secret)) => {
                let given = Token::parse(secret.expose()).map_err(|_| TokenError::InvalidClient)?;
                if constant_time_eq(hash.to_hex().as_bytes(), given.hash().to_hex().as_bytes()) {
                    Ok(client)
                } else {
                    Err(TokenError::InvalidClient)
                }
            }
            _ => Err(TokenError::InvalidClient),
        }
    }

    /// The token endpoint: `authorization_code` and `refresh_token` grants.
    ///
    /// # Errors
    /// The OAuth error.
    pub async fn token(
        &self,
        auth: &ClientAuth,
        req: &TokenRequest,
    ) -> Result<TokenResponse, TokenError> {
        let grant_type = req
            .grant_type
            .as_deref()
            .ok_or(TokenError::InvalidRequest("grant_type is missing"))?;
        if !matches!(grant_type, "authorization_code" | "refresh_token") {
            return Err(TokenError::UnsupportedGrantType);
        }
        let client = self.authenticate_client(auth).await?;
        match grant_type {
            "authorization_code" => self.redeem_code(&client, req).await,
            _ => self.refresh(&client, req).await,
        }
    }

    /// Loads a code or refresh token of `kind` issued to `client`, or `invalid_grant`.
    async fn presented(
        &self,
        client: &Client,
        raw: Option<&str>,
        kind: OidcTokenKind,
    ) -> Result<(OidcToken, Grant), TokenError> {
        let invalid = TokenError::InvalidGrant("unknown, expired or used");
        let raw = raw.ok_or(TokenError::InvalidRequest(
            "the code or refresh token is missing",
        ))?;
        let Ok(token) = Token::parse(raw) else {
            return Err(invalid);
        };
        let stored = self
            .deps
            .queries
            .oidc_token(&token.hash())
            .await?
            .filter(|t| t.kind == kind)
            .ok_or(TokenError::InvalidGrant("unknown, expired or used"))?;
        let grant = self
            .deps
            .queries
            .oidc_grant(stored.grant_id)
            .await?
            .ok_or(TokenError::InvalidGrant("unknown, expired or used"))?;
        if grant.client_id != client.id {
            // Another client's code or token: refused, nothing changes.
            return Err(invalid);
        }
        Ok((stored, grant))
    }

    /// Revokes a grant after a reused code or refresh token, audited.
    async fn revoke_on_reuse(&self, grant: &Grant, what: &str) -> Result<(), StoreError> {
        let now = self.now();
        let Some(mut g) = self.deps.queries.oidc_grant(grant.id).await? else {
            return Ok(());
        };
        if g.revoked_at.is_some() {
            return Ok(());
        }
        g.revoked_at = Some(now);
        let mut commit = Commit::new();
        commit
            .audit(self.audit_record(
                now,
                None,
                ActorRef::system(),
                Some(g.user_id),
                AuditCategory::OidcReuseDetected,
                format!("client={} reused={what}", g.client_id),
            ))
            .write(Write::UpdateOidcGrant(g));
        match self.commit_with_events(commit).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn redeem_code(
        &self,
        client: &Client,
        req: &TokenRequest,
    ) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let (code, grant) = self
            .presented(client, req.code.as_deref(), OidcTokenKind::Code)
            .await?;
        if code.used_at.is_some() {
            self.revoke_on_reuse(&grant, "authorization_code").await?;
            return Err(TokenError::InvalidGrant("unknown, expired or used"));
        }
        if now >= code.expires_at {
            return Err(TokenError::InvalidGrant("unknown, expired or used"));
        }
        if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(TokenError::InvalidGrant("redirect_uri does not match"));
        }
        match (&grant.code_challenge, req.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier))
                if (43..=128).contains(&verifier.len())
                    && constant_time_eq(pkce_s256(verifier).as_bytes(), challenge.as_bytes()) => {}
            (None, None) => {}
            _ => return Err(TokenError::InvalidGrant("PKCE verification failed")),
        }
        let live = self
            .live_grant(grant.id)
            .await?
            .ok_or(TokenError::InvalidGrant("the sign-in is no longer valid"))?;
        let mut commit = Commit::new();
        commit.write(Write::UseOidcToken {
            hash: code.hash,
            at: now,
        });
        let issued = self.issue_tokens(&mut commit, &live, now, true).await?;
        commit.audit(self.own_audit_record(
            now,
            &live.user,
            AuditCategory::OidcTokensIssued,
            format!("client={} grant_type=authorization_code", client.id),
        ));
        match self.commit_with_events(commit).await {
            Ok(()) => Ok(issued),
            Err(StoreError::Conflict) => {
                // Used concurrently: the other use won; this one counts as the reuse.
                self.revoke_on_reuse(&grant, "authorization_code").await?;
                Err(TokenError::InvalidGrant("unknown, expired or used"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn refresh(
        &self,
        client: &Client,
        req: &TokenRequest,
    ) -> Result<TokenResponse, TokenError> {
        let now = self.now();
        let (token, grant) = self
            .presented(client, req.refresh_token.as_deref(), OidcTokenKind::Refresh)
            .await?;
        if token.used_at.is_some() {
            self.revoke_on_reuse(&grant, "refresh_token").await?;
            return Err(TokenError::InvalidGrant("unknown, expired or used"));
        }
        if now >= token.expires_at {
            return Err(TokenError::InvalidGrant("unknown, expired or used"));
        }
        let live = self
            .live_grant(grant.id)
            .await?
            .ok_or(TokenError::InvalidGrant("the sign-in is no longer valid"))?;
        let mut commit = Commit::new();
        commit.write(Write::UseOidcToken {
            hash: token.hash,
            at: now,
        });
        let issued = self.issue_tokens(&mut commit, &live, now, false).await?;
        commit.audit(self.own_audit_record(
            now,
            &live.user,
            AuditCategory::OidcTokensIssued,
            format!("client={} grant_type=refresh_token", client.id),
        ));
        match self.commit_with_events(commit).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                self.revoke_on_reuse(&grant, "refresh_token").await?;
                return Err(TokenError::InvalidGrant("unknown, expired or used"));
            }
            Err(e) => return Err(e.into()),
        }
        // A refresh is activity on the portal session the tokens live with.
        let policy = &self.config.session_policy;
        self.deps
            .committer
            .touch_session(live.grant.session_id, now, now + policy.idle_timeout)
            .await?;
        Ok(issued)
    }

    async fn issue_tokens(
        &self,
        commit: &mut Commit,
        live: &LiveGrant,
        now: DateTime<Utc>,
        with_nonce: bool,
    ) -> Result<TokenResponse, TokenError> {
        let g = &live.grant;
        let client = &live.client;
        let issuer = self.oidc_issuer().to_owned();
        let access_token = match client.access_tokens {
            AccessTokenFormat::Opaque => {
                let t = Token::generate(&*self.deps.random);
                commit.write(Write::InsertOidcToken(OidcToken {
                    hash: t.hash(),
                    kind: OidcTokenKind::Access,
                    grant_id: g.id,
                    created_at: now,
                    expires_at: now + ACCESS_TOKEN_TTL,
                    used_at: None,
                }));
                SecretString::new(t.expose())
            }
            AccessTokenFormat::Jwt => {
                let claims = json!({
                    "iss": issuer,
                    "sub": live.user.id().to_string(),
                    "aud": client.id,
                    "client_id": client.id,
                    "iat": now.timestamp(),
                    "exp": (now + ACCESS_TOKEN_TTL).timestamp(),
                    "jti": self.new_uuid().to_string(),
                    "scope": g.scopes.join(" "),
                    "sid": g.session_id.to_string(),
                    "auth_time": g.auth_time.timestamp(),
                    "acr": g.acr(),
                    "gid": g.id.to_string(),
                });
                SecretString::new(self.sign(&claims, "at+jwt").await?)
            }
        };
        let refresh_token = if g.has_scope("offline_access") {
            let t = Token::generate(&*self.deps.random);
            commit.write(Write::InsertOidcToken(OidcToken {
                hash: t.hash(),
                kind: OidcTokenKind::Refresh,
                grant_id: g.id,
                created_at: now,
                expires_at: now + REFRESH_TOKEN_TTL,
                used_at: None,
            }));
            Some(SecretString::new(t.expose()))
        } else {
            None
        };
        let mut claims = self.user_claims(live);
        claims.insert("iss".into(), json!(issuer));
        claims.insert("aud".into(), json!(client.id));
        claims.insert("azp".into(), json!(client.id));
        claims.insert("iat".into(), json!(now.timestamp()));
        claims.insert("exp".into(), json!((now + ID_TOKEN_TTL).timestamp()));
        claims.insert("auth_time".into(), json!(g.auth_time.timestamp()));
        claims.insert("sid".into(), json!(g.session_id.to_string()));
        claims.insert("acr".into(), json!(g.acr()));
        claims.insert("amr".into(), json!(g.amr));
        if with_nonce && let Some(n) = &g.nonce {
            claims.insert("nonce".into(), json!(n));
        }
        let id_token = self.sign(&Value::Object(claims), "JWT").await?;
        Ok(TokenResponse {
            access_token,
            expires_in: ACCESS_TOKEN_TTL.num_seconds(),
            refresh_token,
            id_token: Some(id_token),
            scope: g.scopes.join(" "),
        })
    }

    /// The live grant behind an access token (opaque or JWT), if the token is good now.
    async fn access_grant(&self, raw: &str) -> Result<Option<(LiveGrant, i64, i64)>, StoreError> {
        let now = self.now();
        if raw.contains('.') {
            let Ok(keys) = self.jwks().await else {
                return Ok(None);
            };
            let Ok(claims) =
                jose::verify::<Value>(raw, &keys, self.oidc_issuer(), Some(now.timestamp()))
            else {
                return Ok(None);
            };
            let Some(gid) = claims["gid"].as_str().and_then(|g| Uuid::parse_str(g).ok()) else {
                return Ok(None);
            };
            let exp = claims["exp"].as_i64().unwrap_or(0);
            let iat = claims["iat"].as_i64().unwrap_or(0);
            return Ok(self.live_grant(gid).await?.map(|l| (l, exp, iat)));
        }
        let Ok(token) = Token::parse(raw) else {
            return Ok(None);
        };
        let Some(t) = self
            .deps
            .queries
            .oidc_token(&token.hash())
            .await?
            .filter(|t| {
                t.kind == OidcTokenKind::Access && t.used_at.is_none() && now < t.expires_at
            })
        else {
            return Ok(None);
        };
        Ok(self
            .live_grant(t.grant_id)
            .await?
            .map(|l| (l, t.expires_at.timestamp(), t.created_at.timestamp())))
    }

    /// UserInfo: the claims of the access token's scopes, read now; `None` when the token is not
    /// good (401).
    ///
    /// # Errors
    /// Infrastructure.
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<Value>, StoreError> {
        Ok(self
            .access_grant(access_token)
            .await?
            .map(|(live, _, _)| Value::Object(self.user_claims(&live))))
    }

    /// Introspection (RFC 7662) for a confidential client, of its own tokens: `{"active":
    /// false}` for anything not good now.
    ///
    /// # Errors
    /// `invalid_client`, infrastructure.
    pub async fn introspect(&self, auth: &ClientAuth, token: &str) -> Result<Value, TokenError> {
        let client = self.authenticate_client(auth).await?;
        if client.public {
            return Err(TokenError::InvalidClient);
        }
        let now = self.now();
        let inactive = json!({"active": false});
        let found = if let Some(found) = self.access_grant(token).await? {
            Some((found, "access_token"))
        } else if let Ok(t) = Token::parse(token) {
            match self.deps.queries.oidc_token(&t.hash()).await? {
                Some(r)
                    if r.kind == OidcTokenKind::Refresh
                        && r.used_at.is_none()
                        && now < r.expires_at =>
                {
                    self.live_grant(r.grant_id).await?.map(|l| {
                        (
                            (l, r.expires_at.timestamp(), r.created_at.timestamp()),
                            "refresh_token",
                        )
                    })
                }
                _ => None,
            }
        } else {
            None
        };
        let Some(((live, exp, iat), hint)) = found else {
            return Ok(inactive);
        };
        if live.client.id != client.id {
            return Ok(inactive);
        }
        let mut claims = self.user_claims(&live);
        claims.insert("active".into(), json!(true));
        claims.insert("scope".into(), json!(live.grant.scopes.join(" ")));
        claims.insert("client_id".into(), json!(live.client.id));
        claims.insert("token_type".into(), json!(hint));
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(iat));
        claims.insert("iss".into(), json!(self.oidc_issuer()));
        claims.insert("aud".into(), json!(live.client.id));
        claims.insert("sid".into(), json!(live.grant.session_id.to_string()));
        claims.insert("auth_time".into(), json!(live.grant.auth_time.timestamp()));
        claims.insert("acr".into(), json!(live.grant.acr()));
        Ok(Value::Object(claims))
    }

    /// Revocation (RFC 7009): a refresh token revokes its whole grant, an access token itself.
    /// Unknown tokens and other clients' tokens are accepted and change nothing.
    ///
    /// # Errors
    /// `invalid_client`, infrastructure.
    pub async fn revoke(&self, auth: &ClientAuth, token: &str) -> Result<(), TokenError> {
        let client = self.authenticate_client(auth).await?;
        let now = self.now();
        let Ok(t) = Token::parse(token) else {
            return Ok(());
        };
        let Some(stored) = self.deps.queries.oidc_token(&t.hash()).await? else {
            return Ok(());
        };
        let Some(mut grant) = self.deps.queries.oidc_grant(stored.grant_id).await? else {
            return Ok(());
        };
        if grant.client_id != client.id || grant.revoked_at.is_some() {
            return Ok(());
        }
        let mut commit = Commit::new();
        let what = match stored.kind {
            OidcTokenKind::Refresh | OidcTokenKind::Code => {
                grant.revoked_at = Some(now);
                commit.write(Write::UpdateOidcGrant(grant.clone()));
                "grant"
            }
            OidcTokenKind::Access => {
                if stored.used_at.is_some() {
                    return Ok(());
                }
                commit.write(Write::UseOidcToken {
                    hash: stored.hash,
                    at: now,
                });
                "access_token"
            }
        };
        commit.audit(self.audit_record(
            now,
            None,
            ActorRef::system(),
            Some(grant.user_id),
            AuditCategory::OidcGrantRevoked,
            format!("client={} revoked={what}", client.id),
        ));
        match self.commit_with_events(commit).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// RP-initiated logout: verifies the `id_token_hint` (RS256 only; expired hints are
    /// accepted, as the spec allows), ends the portal session the browser holds (queuing the
    /// back-channel logouts of its clients), and says where to send the browser: the
    /// registered `post_logout_redirect_uri` of the hint's (or the named) client, with `state`.
    ///
    /// # Errors
    /// `invalid_request` for a hint that does not verify or a client that does not match it;
    /// infrastructure.
    pub async fn end_session(
        &self,
        session_token: Option<&str>,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<LogoutOutcome, TokenError> {
        let mut hinted_client = None;
        if let Some(hint) = id_token_hint.filter(|h| !h.is_empty()) {
            let keys = self.jwks().await?;
            let claims: Value = jose::verify(hint, &keys, self.oidc_issuer(), None)
                .map_err(|_| TokenError::InvalidRequest("id_token_hint is not valid"))?;
            let aud = match &claims["aud"] {
                Value::String(s) => Some(s.clone()),
                Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            hinted_client = aud;
        }
        let client_id = match (hinted_client, client_id.filter(|c| !c.is_empty())) {
            (Some(h), Some(c)) if h != c => {
                return Err(TokenError::InvalidRequest(
                    "client_id does not match the id_token_hint",
                ));
            }
            (Some(h), _) => Some(h),
            (None, c) => c.map(str::to_owned),
        };
        if let Some(token) = session_token {
            self.logout(token)
                .await
                .map_err(|_| TokenError::from(StoreError::Unavailable("logout failed".into())))?;
        }
        let mut redirect = None;
        if let (Some(cid), Some(uri)) = (client_id, post_logout_redirect_uri) {
            let client = self.deps.queries.oidc_client(&cid).await?;
            if client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri)) {
                let mut target = uri.to_owned();
                if let Some(s) = state {
                    target.push(if target.contains('?') { '&' } else { '?' });
                    target.push_str("state");
                    target.push('=');
                    target.push_str(&percent_encode(s));
                }
                redirect = Some(target);
            }
        }
        Ok(LogoutOutcome { redirect })
    }

    // ----- back-channel logout -----

    /// Adds to `commit` a back-channel logout for every client with a back-channel URI that
    /// holds a grant of a session the commit ends. Called by `transact` for every use case.
    pub(crate) async fn add_backchannel_logouts(
        &self,
        commit: &mut Commit,
    ) -> Result<(), StoreError> {
        let mut ended: Vec<(UserId, Option<SessionId>)> = Vec::new();
        let mut single: Vec<SessionId> = Vec::new();
        for w in &commit.writes {
            match w {
                Write::DeleteSession(id) => single.push(*id),
                Write::DeleteSessionsOfUser { user, except } => ended.push((*user, *except)),
                Write::DeleteUser(u) => ended.push((u.id(), None)),
                _ => {}
            }
        }
        if ended.is_empty() && single.is_empty() {
            return Ok(());
        }
        let q = &self.deps.queries;
        let mut grants: Vec<Grant> = Vec::new();
        for (user, except) in &ended {
            grants.extend(
                q.oidc_grants_of_user(*user)
                    .await?
                    .into_iter()
                    .filter(|g| Some(g.session_id) != *except),
            );
        }
        for sid in &single {
            grants.extend(q.oidc_grants_of_session(*sid).await?);
        }
        let mut seen: Vec<(String, SessionId)> = Vec::new();
        let now = self.now();
        for g in grants {
            if g.revoked_at.is_some() || seen.contains(&(g.client_id.clone(), g.session_id)) {
                continue;
            }
            seen.push((g.client_id.clone(), g.session_id));
            let Some(client) = q.oidc_client(&g.client_id).await? else {
                continue;
            };
            let Some(uri) = client.backchannel_logout_uri.clone() else {
                continue;
            };
            let claims = json!({
                "iss": self.oidc_issuer(),
                "aud": client.id,
                "iat": now.timestamp(),
                "exp": (now + TimeDelta::days(1)).timestamp(),
                "jti": self.new_uuid().to_string(),
                "sub": g.user_id.to_string(),
                "sid": g.session_id.to_string(),
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            });
            // No usable key means no token was ever signed: nothing to tell anyone.
            let Some((key, der)) = self.existing_key().await? else {
                continue;
            };
            let Ok(logout_token) = jose::sign(&claims, &key.kid, "logout+jwt", &der) else {
                continue;
            };
            commit.message(OutboxMessage {
                id: crate::ids::OutboxId::from_uuid(self.new_uuid()),
                created_at: now,
                payload: Payload::BackchannelLogout(BackchannelLogout {
                    uri,
                    client_id: client.id.clone(),
                    logout_token,
                }),
            });
        }
        Ok(())
    }
}

pub(crate) fn key_aad(kid: &str) -> String {
    format!("oidc-signing-key:{kid}")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
