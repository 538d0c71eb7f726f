//! Portal's WebAuthn relying party: [`WebauthnVerifier`] implements `portal-core`'s
//! [`PasskeyVerifier`] port with the [`webauthn-rs`](webauthn_rs) crate (Kanidm's, audited,
//! maintained; no hand-written CBOR, COSE or attestation code here).
//!
//! Why an adapter crate and not the core: `webauthn-rs` verifies signatures with OpenSSL and
//! carries its own types; the core keeps its dependency rule (no I/O, small pure crates) and
//! sees credentials and ceremony states only as opaque JSON text. Only `portal-server` (the
//! composition root) depends on this crate.
//!
//! Decisions (see `docs/security.md`):
//! - The relying-party id is the host of `PORTAL_PUBLIC_URL` and the only accepted origin is that
//!   URL's origin; an IP address cannot be a relying-party id ([`VerifierError::IpAddress`]).
//! - Registration asks for a discoverable credential (resident key required), so a passkey can
//!   sign in without a user name; `webauthn-rs`'s passkey ceremonies require user verification,
//!   and a passkey registered with it must keep proving it at every use (the crate enforces the
//!   registration policy), also as the second factor.
//! - Sign counters and backup flags are checked by the crate (a counter that does not increase
//!   is refused as a possible clone) and the updated credential is handed back to be stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portal_core::ports::{
    Ceremony, PasskeyRejected, PasskeyVerifier, RegisteredCredential, VerifiedAssertion,
};
use serde_json::Value;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
    WebauthnError,
};

/// The relying party could not be set up from the public URL.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// The public URL has no host.
    #[error("the public URL has no host name")]
    NoHost,
    /// A relying-party id cannot be an IP address: use a host name (`localhost` in development).
    #[error(
        "passkeys need a host name in the public URL, not an IP address ({0}); use e.g. http://localhost:8080"
    )]
    IpAddress(String),
    /// `webauthn-rs` refused the configuration (e.g. a non-secure origin other than localhost).
    #[error("passkeys cannot be offered for this public URL: {0}")]
    Refused(String),
}

/// The WebAuthn relying party of one public URL.
#[derive(Debug)]
pub struct WebauthnVerifier {
    webauthn: Webauthn,
    rp_id: String,
}

/// What a stored authentication state is: the second factor (allowed credentials listed) or a
/// sign-in with a discoverable credential.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "state", rename_all = "snake_case")]
enum AuthState {
    Listed(PasskeyAuthentication),
    Discoverable(DiscoverableAuthentication),
}

impl WebauthnVerifier {
    /// The relying party of `public_url`: its host is the relying-party id, its origin the only
    /// origin accepted; `rp_name` is shown by authenticators.
    ///
    /// # Errors
    /// No host, an IP address, or a URL `webauthn-rs` refuses.
    pub fn new(public_url: &str, rp_name: &str) -> Result<Self, VerifierError> {
        let url = Url::parse(public_url).map_err(|e| VerifierError::Refused(e.to_string()))?;
        let host = url.host_str().ok_or(VerifierError::NoHost)?.to_owned();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Err(VerifierError::IpAddress(host));
        }
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|e| VerifierError::Refused(e.to_string()))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .map_err(|e| VerifierError::Refused(e.to_string()))?
            .rp_name(rp_name)
            .build()
            .map_err(|e| VerifierError::Refused(e.to_string()))?;
        Ok(Self {
            webauthn,
            rp_id: host,
        })
    }

    /// The relying-party id (the public URL's host).
    #[must_use]
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }
}

fn refused(e: &WebauthnError) -> PasskeyRejected {
    match e {
        WebauthnError::InvalidRPOrigin | WebauthnError::CredentialCrossOrigin => {
            PasskeyRejected::WrongOrigin
        }
        WebauthnError::InvalidRPIDHash => PasskeyRejected::WrongRelyingParty,
        WebauthnError::MismatchedChallenge | WebauthnError::ChallengeNotFound => {
            PasskeyRejected::WrongChallenge
        }
        WebauthnError::UserNotVerified | WebauthnError::UserNotPresent => {
            PasskeyRejected::UserNotVerified
        }
        WebauthnError::CredentialPossibleCompromise => PasskeyRejected::CounterNotIncreased,
        WebauthnError::CredentialNotFound => PasskeyRejected::UnknownCredential,
        WebauthnError::CredentialExcludedFromRequest | WebauthnError::CredentialAlreadyExists => {
            PasskeyRejected::AlreadyRegistered
        }
        WebauthnError::ParseJSONFailure(_)
        | WebauthnError::ParseCBORFailure(_)
        | WebauthnError::ParseNOMFailure
        | WebauthnError::ParseInsufficientBytesAvailable
        | WebauthnError::InvalidClientDataType
        | WebauthnError::InvalidUserUniqueId => PasskeyRejected::Malformed,
        _ => PasskeyRejected::Invalid,
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, PasskeyRejected> {
    serde_json::from_value(v.clone()).map_err(|_| PasskeyRejected::Malformed)
}

/// A stored record this verifier wrote and cannot read back: a programming or storage error,
/// refused like an invalid answer (nothing is changed).
fn stored<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, PasskeyRejected> {
    serde_json::from_str(s).map_err(|_| PasskeyRejected::Invalid)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PasskeyRejected> {
    serde_json::to_string(v).map_err(|_| PasskeyRejected::Invalid)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, PasskeyRejected> {
    serde_json::to_value(v).map_err(|_| PasskeyRejected::Invalid)
}

/// The facts the core keeps of a passkey: counter and backup flags (read from the crate's own
/// serialised record, so no "danger" feature is needed).
fn facts(pk: &Passkey) -> Result<(String, u32, bool, bool), PasskeyRejected> {
    let v = to_value(pk)?;
    let cred = &v["cred"];
    let counter = cred["counter"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    Ok((
        to_json(pk)?,
        counter,
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
    ))
}

impl PasskeyVerifier for WebauthnVerifier {
    fn start_registration(
        &self,
        user_handle: Uuid,
        user_name: &str,
        display_name: &str,
        exclude: &[String],
    ) -> Result<Ceremony, PasskeyRejected> {
        let exclude: Vec<_> = exclude
            .iter()
            .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
            .collect();
        let (ccr, state) = self
            .webauthn
            .start_passkey_registration(
                user_handle,
                user_name,
                display_name,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| refused(&e))?;
        // A passkey signs in without a user name: ask for a discoverable credential. (The
        // crate leaves it "discouraged"; the registration check does not depend on it.)
        let mut options = to_value(&ccr.public_key)?;
        if let Some(sel) = options
            .get_mut("authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            sel.insert("residentKey".into(), Value::from("required"));
            sel.insert("requireResidentKey".into(), Value::from(true));
        }
        Ok(Ceremony {
            options,
            state: to_json(&state)?,
        })
    }

    fn finish_registration(
        &self,
        state: &str,
        response: &Value,
    ) -> Result<RegisteredCredential, PasskeyRejected> {
        let state: PasskeyRegistration = stored(state)?;
        let reg: RegisterPublicKeyCredential = parse(response)?;
        let pk = self
            .webauthn
            .finish_passkey_registration(&reg, &state)
            .map_err(|e| refused(&e))?;
        let credential_id = URL_SAFE_NO_PAD.encode(pk.cred_id());
        let (credential, counter, backup_eligible, backup_state) = facts(&pk)?;
        Ok(RegisteredCredential {
            credential_id,
            credential,
            counter,
            backup_eligible,
            backup_state,
        })
    }

    fn start_authentication(&self, credentials: &[String]) -> Result<Ceremony, PasskeyRejected> {
        let creds: Vec<Passkey> = credentials
            .iter()
            .map(|c| stored(c))
            .collect::<Result<_, _>>()?;
        let (rcr, state) = self
            .webauthn
            .start_passkey_authentication(&creds)
            .map_err(|e| refused(&e))?;
        Ok(Ceremony {
            options: to_value(&rcr.public_key)?,
            state: to_json(&AuthState::Listed(state))?,
        })
    }

    fn start_discoverable(&self) -> Result<Ceremony, PasskeyRejected> {
        let (rcr, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| refused(&e))?;
        Ok(Ceremony {
            options: to_value(&rcr.public_key)?,
            state: to_json(&AuthState::Discoverable(state))?,
        })
    }

    fn identify(&self, response: &Value) -> Result<(Option<Uuid>, String), PasskeyRejected> {
        let cred: PublicKeyCredential = parse(response)?;
        let handle = cred
            .get_user_unique_id()
            .map(|b| Uuid::from_slice(b).map_err(|_| PasskeyRejected::Malformed))
            .transpose()?;
        Ok((handle, URL_SAFE_NO_PAD.encode(cred.get_credential_id())))
    }

    fn finish_authentication(
        &self,
        state: &str,
        response: &Value,
        credential: &str,
    ) -> Result<VerifiedAssertion, PasskeyRejected> {
        let cred: PublicKeyCredential = parse(response)?;
        let mut pk: Passkey = stored(credential)?;
        let result = match stored::<AuthState>(state)? {
            AuthState::Listed(s) => self.webauthn.finish_passkey_authentication(&cred, &s),
            AuthState::Discoverable(s) => self
                .webauthn
                .finish_discoverable_authentication_v2(&cred, s, &pk),
        }
        .map_err(|e| refused(&e))?;
        pk.update_credential(&result);
        let (credential, _, backup_eligible, backup_state) = facts(&pk)?;
        Ok(VerifiedAssertion {
            credential,
            counter: result.counter(),
            backup_eligible,
            backup_state,
            user_verified: result.user_verified(),
        })
    }
}
