//! A software authenticator for the passkey tests: `webauthn-authenticator-rs`'s `SoftPasskey`
//! (real P-256 keys, real signatures, a sign counter) behind a small shim that makes its
//! credentials discoverable — it remembers each credential's user handle and, like a browser
//! answering a discoverable request, offers its credentials and returns the handle (which is not
//! signed, as in WebAuthn). The origin it claims is given per call, so a test can answer from
//! another origin or for another relying party.

use serde_json::Value;
use std::collections::BTreeMap;
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions,
    ResidentKeyRequirement, UserVerificationPolicy,
};

/// One authenticator (one device); it can hold several credentials.
pub struct Authenticator {
    soft: SoftPasskey,
    /// Credential id → user handle.
    handles: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Authenticator {
    /// An authenticator that verifies its user (PIN or biometrics, as a passkey does).
    pub fn new() -> Self {
        Self {
            soft: SoftPasskey::new(true),
            handles: BTreeMap::new(),
        }
    }

    /// Answers `navigator.credentials.create({publicKey})` at `origin`.
    pub fn register(&mut self, public_key: &Value, origin: &str) -> Value {
        let mut options: PublicKeyCredentialCreationOptions =
            serde_json::from_value(public_key.clone()).expect("creation options");
        let handle = options.user.id.clone();
        // The soft token keeps no resident keys itself: this shim does.
        if let Some(sel) = options.authenticator_selection.as_mut() {
            assert!(
                sel.require_resident_key,
                "Portal asks for a discoverable credential"
            );
            sel.require_resident_key = false;
            sel.resident_key = Some(ResidentKeyRequirement::Discouraged);
        }
        let reg = self
            .soft
            .perform_register(Url::parse(origin).unwrap(), options, 60_000)
            .expect("registration");
        self.handles.insert(reg.raw_id.to_vec(), handle.to_vec());
        serde_json::to_value(&reg).unwrap()
    }

    /// Answers `navigator.credentials.get({publicKey})` at `origin` with one of its credentials
    /// (the first allowed one; for a discoverable request, the first it holds).
    pub fn sign(&mut self, public_key: &Value, origin: &str) -> Value {
        self.sign_with(public_key, origin, |_| {})
    }

    /// [`Self::sign`] with the options changed first (no user verification; no allowed
    /// credentials, so it answers with its own).
    pub fn sign_with(
        &mut self,
        public_key: &Value,
        origin: &str,
        tweak: impl FnOnce(&mut PublicKeyCredentialRequestOptions),
    ) -> Value {
        let mut options: PublicKeyCredentialRequestOptions =
            serde_json::from_value(public_key.clone()).expect("request options");
        tweak(&mut options);
        if options.allow_credentials.is_empty() {
            options.allow_credentials = self
                .handles
                .keys()
                .map(|id| AllowCredentials {
                    type_: "public-key".into(),
                    id: id.clone(),
                    transports: None,
                })
                .collect();
        }
        let mut cred = self
            .soft
            .perform_auth(Url::parse(origin).unwrap(), options, 60_000)
            .expect("assertion");
        cred.response.user_handle = self.handles.get(cred.raw_id.as_slice()).cloned();
        serde_json::to_value(&cred).unwrap()
    }

    /// Drops the user verification an answer would claim (an authenticator without PIN).
    pub fn without_user_verification(options: &mut PublicKeyCredentialRequestOptions) {
        options.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    }
}
