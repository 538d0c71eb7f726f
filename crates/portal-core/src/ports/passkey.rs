//! [`PasskeyVerifier`]: the WebAuthn ceremonies (issue 16), implemented by `adapters-webauthn`
//! with the `webauthn-rs` crate. Pure computation (no I/O): the core stores what it returns.

use uuid::Uuid;

/// A ceremony started: what the browser gets (`PublicKeyCredentialCreationOptions` or
/// `…RequestOptions` as JSON, the `publicKey` member inside) and what the server keeps.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// For `navigator.credentials.create/get` (JSON).
    pub options: serde_json::Value,
    /// The ceremony's state (holds the challenge): stored server-side, never sent.
    pub state: String,
}

/// A credential registered by [`PasskeyVerifier::finish_registration`].
#[derive(Debug, Clone)]
pub struct RegisteredCredential {
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The verifier's record of it (opaque to the core).
    pub credential: String,
    /// Sign counter at registration.
    pub counter: u32,
    /// May be backed up (synced).
    pub backup_eligible: bool,
    /// Is backed up.
    pub backup_state: bool,
}

/// A verified assertion.
#[derive(Debug, Clone)]
pub struct VerifiedAssertion {
    /// The credential's record after this use (counter and backup state updated).
    pub credential: String,
    /// The new sign counter.
    pub counter: u32,
    /// May be backed up (can only become true).
    pub backup_eligible: bool,
    /// Is backed up now.
    pub backup_state: bool,
    /// The authenticator verified the user (PIN, biometrics).
    pub user_verified: bool,
}

/// Why a ceremony's answer was refused. Nothing is changed by a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyRejected {
    /// The answer is not a WebAuthn answer (bad JSON, bad encoding).
    #[error("the passkey answer is malformed")]
    Malformed,
    /// Signed for another origin than this server's public URL.
    #[error("the passkey answer was made for another origin")]
    WrongOrigin,
    /// Signed for another relying-party id than this server's host.
    #[error("the passkey answer was made for another relying party")]
    WrongRelyingParty,
    /// Not the challenge of this ceremony.
    #[error("the passkey answer does not answer this challenge")]
    WrongChallenge,
    /// The user was not verified (no PIN or biometrics) where it is required.
    #[error("the authenticator did not verify the user")]
    UserNotVerified,
    /// The sign counter did not increase: a cloned authenticator or a replayed answer.
    #[error("the passkey's sign counter did not increase")]
    CounterNotIncreased,
    /// Not one of the credentials this ceremony allows.
    #[error("this passkey is not registered for the account")]
    UnknownCredential,
    /// Registering a credential the account has already.
    #[error("this passkey is registered for the account already")]
    AlreadyRegistered,
    /// The signature or another check failed.
    #[error("the passkey answer was refused")]
    Invalid,
}

/// The WebAuthn relying party: its id and origin come from the server's public URL.
pub trait PasskeyVerifier: Send + Sync + std::fmt::Debug {
    /// Starts registering a passkey for `user` (`user_handle` is what a discoverable credential
    /// stores and gives back at sign-in), leaving out credentials the user already has.
    ///
    /// # Errors
    /// The verifier could not build the challenge.
    fn start_registration(
        &self,
        user_handle: Uuid,
        user_name: &str,
        display_name: &str,
        exclude: &[String],
    ) -> Result<Ceremony, PasskeyRejected>;

    /// Checks a registration answer against its ceremony's state.
    ///
    /// # Errors
    /// Why it was refused.
    fn finish_registration(
        &self,
        state: &str,
        response: &serde_json::Value,
    ) -> Result<RegisteredCredential, PasskeyRejected>;

    /// Starts an authentication with one of `credentials` (records from this verifier): the
    /// second factor after the password (user verification preferred).
    ///
    /// # Errors
    /// No usable credential.
    fn start_authentication(&self, credentials: &[String]) -> Result<Ceremony, PasskeyRejected>;

    /// Starts a sign-in with a passkey alone (discoverable credentials, conditional UI; user
    /// verification required).
    ///
    /// # Errors
    /// The verifier could not build the challenge.
    fn start_discoverable(&self) -> Result<Ceremony, PasskeyRejected>;

    /// Who an answer claims to be: the user handle (given by discoverable credentials) and the
    /// credential id (base64url). Nothing is verified yet.
    ///
    /// # Errors
    /// Malformed.
    fn identify(
        &self,
        response: &serde_json::Value,
    ) -> Result<(Option<Uuid>, String), PasskeyRejected>;

    /// Verifies an assertion against its ceremony's state and the claimed credential (origin,
    /// relying party, challenge, signature, user verification, sign counter).
    ///
    /// # Errors
    /// Why it was refused.
    fn finish_authentication(
        &self,
        state: &str,
        response: &serde_json::Value,
        credential: &str,
    ) -> Result<VerifiedAssertion, PasskeyRejected>;
}
