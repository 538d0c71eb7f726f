//! Passkeys (WebAuthn): `/api/v1/me/passkeys…` (list, add, rename, remove) and
//! `/api/v1/auth/passkey…` (sign in with a passkey alone), `/api/v1/auth/login/mfa/passkey…`
//! (the passkey as the second step after the password).
//!
//! Every ceremony has two calls: `…/options` starts it and answers the `publicKey` options for
//! `navigator.credentials.create()` / `.get()` with a `challenge_id`; the browser's
//! `PublicKeyCredential` (JSON, binary fields base64url, as `PublicKeyCredential.toJSON()` gives
//! it) goes back with that id. The challenge is kept on the server, answered once, for 5
//! minutes. The relying-party id and origin are the server's public URL's.

use super::Reply;
use super::mfa::Enabled;
use super::views::PasskeyView;
use crate::cookies::{self, CookieName};
use crate::error::{ApiError, Documented, sets};
use crate::error_responses;
use crate::extract::{Client, CurrentUser, JsonBody, Limit, PendingLogin, SetupUser, buckets};
use crate::path::PasskeyPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use portal_core::service::{CompleteMfa, MfaError, PasskeyCeremony, PasskeySignIn, SecondFactor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A ceremony started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CeremonyView {
    /// Send it back with the answer.
    pub challenge_id: uuid::Uuid,
    /// The `publicKey` member of the options for `navigator.credentials.create()` or `.get()`
    /// (binary fields base64url).
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// The answer is refused after this.
    pub expires_at: DateTime<Utc>,
}

impl From<PasskeyCeremony> for CeremonyView {
    fn from(c: PasskeyCeremony) -> Self {
        Self {
            challenge_id: c.challenge_id,
            public_key: c.options,
            expires_at: c.expires_at,
        }
    }
}

/// A browser's answer to a ceremony.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// From the `…/options` call.
    pub challenge_id: uuid::Uuid,
    /// The `PublicKeyCredential` (JSON).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// A passkey's answer to the second step of a login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPasskeyRequest {
    /// From `POST /api/v1/auth/login/mfa/passkey/options`.
    pub challenge_id: uuid::Uuid,
    /// The `PublicKeyCredential` (JSON).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// "Mich auf diesem Gerät für 30 Tage merken".
    #[serde(default)]
    pub remember_device: bool,
}

/// A new passkey's registration answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPasskeyRequest {
    /// From `POST /api/v1/me/passkeys/options`.
    pub challenge_id: uuid::Uuid,
    /// The user's name for it (1–60 characters).
    pub name: String,
    /// The `PublicKeyCredential` (JSON) from `navigator.credentials.create()`.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// A new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePasskeyRequest {
    /// 1–60 characters.
    pub name: String,
}

/// A passkey was added.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PasskeyAdded {
    /// The passkeys now.
    pub passkeys: Vec<PasskeyView>,
    /// The recovery code, shown once (only when the user had none).
    pub recovery_code: Option<String>,
}

error_responses!(pub(crate) StartErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::LIMITED, MfaError::CODES);
error_responses!(pub(crate) AnswerErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, MfaError::CODES);
error_responses!(pub(crate) MeStartErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::LIMITED, sets::SESSION, MfaError::CODES);
error_responses!(pub(crate) MeAnswerErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, MfaError::CODES);
error_responses!(pub(crate) ListErrors: sets::ALWAYS, sets::SESSION);
error_responses!(pub(crate) OneErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::LIMITED, sets::SESSION, sets::ID, MfaError::CODES);
error_responses!(pub(crate) RenameErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, sets::ID, MfaError::CODES);

/// Starts a sign-in with a passkey alone ("Mit Passkey anmelden"): discoverable credentials,
/// user verification required. Nothing about any account is looked at.
#[utoipa::path(post, path = "/api/v1/auth/passkey/options", tag = "auth",
    security(("csrf" = [])),
    responses((status = 200, description = "Ceremony started", body = CeremonyView), StartErrors))]
pub(crate) async fn sign_in_options(
    _: Limit<buckets::Login>,
    State(state): State<AppState>,
) -> Result<Json<CeremonyView>, ApiError> {
    Ok(Json(state.portal().begin_passkey_sign_in().await?.into()))
}

/// Signs in with a passkey alone (it counts as two factors). The session this browser's cookie
/// held ends. Refused answers change nothing and never tell whether an account exists;
/// throttled per credential and client address.
#[utoipa::path(post, path = "/api/v1/auth/passkey", tag = "auth",
    request_body = AnswerRequest,
    security(("csrf" = [])),
    responses((status = 200, description = "Logged in", body = super::auth::LoginResponse), AnswerErrors))]
pub(crate) async fn sign_in(
    _: Limit<buckets::Login>,
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AnswerRequest>,
) -> Result<Reply, ApiError> {
    let config = state.config();
    let issued = state
        .portal()
        .finish_passkey_sign_in(PasskeySignIn {
            challenge_id: body.challenge_id,
            response: body.credential,
            client: client.info(),
            presented_session: cookies::read(&headers, config, CookieName::Session),
        })
        .await?;
    let mut reply = super::session_started(&state, StatusCode::OK, &issued).await?;
    reply.cookie(cookies::clear(config, CookieName::PendingMfa));
    Ok(reply)
}

/// Starts the passkey as the second step of a login (needs the pending step's cookie).
#[utoipa::path(post, path = "/api/v1/auth/login/mfa/passkey/options", tag = "auth",
    security(("pending_login" = [], "csrf" = [])),
    responses((status = 200, description = "Ceremony started", body = CeremonyView), StartErrors))]
pub(crate) async fn second_factor_options(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    PendingLogin(token): PendingLogin,
) -> Result<Json<CeremonyView>, ApiError> {
    Ok(Json(
        state
            .portal()
            .begin_passkey_second_factor(&token)
            .await?
            .into(),
    ))
}

/// Finishes a login with a passkey as the second factor (needs the pending step's cookie).
#[utoipa::path(post, path = "/api/v1/auth/login/mfa/passkey", tag = "auth",
    request_body = MfaPasskeyRequest,
    security(("pending_login" = [], "csrf" = [])),
    responses((status = 200, description = "Logged in", body = super::auth::MfaLoginResponse), AnswerErrors))]
pub(crate) async fn second_factor(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    Client(client): Client,
    PendingLogin(token): PendingLogin,
    JsonBody(body): JsonBody<MfaPasskeyRequest>,
) -> Result<Result<Reply, axum::response::Response>, ApiError> {
    super::auth::finish_mfa_login(
        &state,
        CompleteMfa {
            token,
            factor: SecondFactor::Passkey {
                challenge_id: body.challenge_id,
                response: body.credential,
            },
            remember_device: body.remember_device,
            client: client.info(),
        },
    )
    .await
}

/// The logged-in user's passkeys, oldest first.
#[utoipa::path(get, path = "/api/v1/me/passkeys", tag = "mfa",
    security(("session" = [])),
    responses((status = 200, description = "Passkeys", body = Vec<PasskeyView>), ListErrors))]
pub(crate) async fn list(user: CurrentUser) -> Json<Vec<PasskeyView>> {
    Json(
        user.principal
            .user()
            .mfa()
            .passkeys
            .iter()
            .map(Into::into)
            .collect(),
    )
}

/// Starts adding a passkey ("Passkey hinzufügen"; needs a fresh re-authentication).
#[utoipa::path(post, path = "/api/v1/me/passkeys/options", tag = "mfa",
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Ceremony started", body = CeremonyView), MeStartErrors))]
pub(crate) async fn add_options(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
) -> Result<Json<CeremonyView>, ApiError> {
    Ok(Json(
        state
            .portal()
            .begin_passkey_registration(&user.principal)
            .await?
            .into(),
    ))
}

/// Adds the passkey: from now on it signs in alone and serves as the second factor after the
/// password. Other sessions and remembered devices end; a recovery code is issued if the user
/// had none (shown once). Audited and mailed.
#[utoipa::path(post, path = "/api/v1/me/passkeys", tag = "mfa",
    request_body = AddPasskeyRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Added", body = PasskeyAdded), MeAnswerErrors))]
pub(crate) async fn add(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
    JsonBody(body): JsonBody<AddPasskeyRequest>,
) -> Result<Reply, ApiError> {
    let done = state
        .portal()
        .finish_passkey_registration(
            &user.principal,
            body.challenge_id,
            &body.name,
            &body.credential,
        )
        .await?;
    let passkeys = state
        .portal()
        .authenticate(&user.token)
        .await?
        .user()
        .mfa()
        .passkeys
        .iter()
        .map(Into::into)
        .collect();
    Ok(Reply::new(StatusCode::CREATED).json(&PasskeyAdded {
        passkeys,
        recovery_code: Enabled::from(done).recovery_code,
    }))
}

/// Renames a passkey.
#[utoipa::path(put, path = "/api/v1/me/passkeys/{id}", tag = "mfa",
    params(("id" = uuid::Uuid, Path, description = "Passkey id")),
    request_body = RenamePasskeyRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Renamed"), RenameErrors))]
pub(crate) async fn rename(
    State(state): State<AppState>,
    user: CurrentUser,
    PasskeyPath(id): PasskeyPath,
    JsonBody(body): JsonBody<RenamePasskeyRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .rename_passkey(&user.principal, id, &body.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a passkey (needs a fresh re-authentication; refused for the last second factor of an
/// account that must have one). Other sessions and remembered devices end; audited and mailed.
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{id}", tag = "mfa",
    params(("id" = uuid::Uuid, Path, description = "Passkey id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Removed"), OneErrors))]
pub(crate) async fn remove(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    user: CurrentUser,
    PasskeyPath(id): PasskeyPath,
) -> Result<StatusCode, ApiError> {
    state.portal().remove_passkey(&user.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a passkey as the proof of a current second factor (re-authentication, removing all
/// factors, a new recovery code): answer with `{"method": "passkey", "challenge_id",
/// "credential"}` as the `factor`.
#[utoipa::path(post, path = "/api/v1/me/passkeys/presence-options", tag = "mfa",
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Ceremony started", body = CeremonyView), MeStartErrors))]
pub(crate) async fn presence_options(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
) -> Result<Json<CeremonyView>, ApiError> {
    Ok(Json(
        state
            .portal()
            .begin_passkey_presence(&user.principal)
            .await?
            .into(),
    ))
}
