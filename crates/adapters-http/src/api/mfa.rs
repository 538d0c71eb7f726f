//! `/api/v1/me/mfa*`: the logged-in user's second factors. Setting up, removing and changing
//! factors needs a fresh re-authentication (`reauth_required` otherwise); removing, regenerating
//! the recovery code and choosing the recovery channel also need a current second factor.

use super::{FactorInput, Reply};
use crate::error::{ApiError, Documented, ErrorCode, sets};
use crate::error_responses;
use crate::extract::{CurrentUser, JsonBody, Limit, SetupUser, buckets};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portal_core::mfa::{PhoneChannel, PhoneNumber, RecoveryChannel};
use portal_core::secret::SecretString;
use portal_core::service::{FactorEnabled, MfaError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

error_responses!(pub(crate) FactorErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, MfaError::CODES);
error_responses!(pub(crate) NoBodyErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::LIMITED, sets::SESSION, MfaError::CODES);

/// Removes every second factor and the recovery code (needs a current factor). Other sessions
/// and remembered devices end.
#[utoipa::path(delete, path = "/api/v1/me/mfa", tag = "mfa",
    request_body = FactorInput,
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Removed"), FactorErrors))]
pub(crate) async fn remove(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<FactorInput>,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .remove_mfa(&user.principal, &body.into_factor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an authenticator app needs. Contains the secret: shown once, never cached.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// The secret, base32, for typing into the app.
    pub secret: String,
    /// The `otpauth://` URI.
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG markup).
    pub qr_svg: String,
    /// The URI as a QR code (`data:image/png;base64,…`).
    pub qr_png: String,
}

/// Starts setting up an authenticator app; confirm with its first code.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", tag = "mfa",
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Setup started", body = TotpSetup), NoBodyErrors))]
pub(crate) async fn start_totp(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
) -> Result<Reply, ApiError> {
    let e = state.portal().start_totp_enrolment(&user.principal).await?;
    Ok(Reply::new(StatusCode::CREATED).json(&TotpSetup {
        secret: e.secret_base32().to_owned(),
        otpauth_uri: e.otpauth_uri().to_owned(),
        qr_svg: e.qr_svg().to_owned(),
        qr_png: e.qr_png_data_uri().to_owned(),
    }))
}

/// A code to confirm a factor with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Six digits.
    #[schema(pattern = r"^[0-9]{6}$")]
    pub code: String,
}

/// A factor was set up.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Enabled {
    /// The recovery code, shown once (only when the user had none).
    pub recovery_code: Option<String>,
}

impl From<FactorEnabled> for Enabled {
    fn from(f: FactorEnabled) -> Self {
        Self {
            recovery_code: f.recovery_code.map(|c| c.expose().to_owned()),
        }
    }
}

/// Confirms the authenticator app with its first code: from now on it is asked at every login.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "mfa",
    request_body = CodeRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Enabled", body = Enabled), FactorErrors))]
pub(crate) async fn confirm_totp(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<Json<Enabled>, ApiError> {
    let done = state
        .portal()
        .confirm_totp(&user.principal, &SecretString::new(body.code))
        .await?;
    Ok(Json(done.into()))
}

/// SMS or voice call.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelInput {
    /// Text message.
    Sms,
    /// Voice call.
    Voice,
}

/// A phone for codes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    /// International number (`+49 …`).
    pub phone: String,
    /// How codes arrive.
    pub channel: ChannelInput,
}

fn phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|_| {
        ApiError::with_message(
            ErrorCode::InvalidRequest,
            "phone: not an international number",
        )
    })
}

/// Starts setting up a phone as second factor: a code is sent to it now.
#[utoipa::path(post, path = "/api/v1/me/mfa/phone", tag = "mfa",
    request_body = PhoneRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Code sent"), FactorErrors))]
pub(crate) async fn start_phone(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
    JsonBody(body): JsonBody<PhoneRequest>,
) -> Result<StatusCode, ApiError> {
    let number = phone(&body.phone)?;
    let channel = match body.channel {
        ChannelInput::Sms => PhoneChannel::Sms,
        ChannelInput::Voice => PhoneChannel::Voice,
    };
    state
        .portal()
        .start_phone_enrolment(&user.principal, &number, channel)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Confirms the phone with the code it received.
#[utoipa::path(post, path = "/api/v1/me/mfa/phone/confirm", tag = "mfa",
    request_body = CodeRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Enabled", body = Enabled), FactorErrors))]
pub(crate) async fn confirm_phone(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<Json<Enabled>, ApiError> {
    let done = state
        .portal()
        .confirm_phone(&user.principal, &SecretString::new(body.code))
        .await?;
    Ok(Json(done.into()))
}

/// Sends a code to the MFA phone, to prove presence for a change without the app at hand.
#[utoipa::path(post, path = "/api/v1/me/mfa/presence-code", tag = "mfa",
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Code sent"), NoBodyErrors))]
pub(crate) async fn presence_code(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    SetupUser(user): SetupUser,
) -> Result<StatusCode, ApiError> {
    state.portal().send_presence_code(&user.principal).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A new recovery code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCode {
    /// Shown once.
    pub recovery_code: String,
}

/// "Neuen Code generieren": a new recovery code (the old one stops working); needs a current
/// second factor.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-code", tag = "mfa",
    request_body = FactorInput,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "New code", body = RecoveryCode), FactorErrors))]
pub(crate) async fn regenerate_recovery_code(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<FactorInput>,
) -> Result<Json<RecoveryCode>, ApiError> {
    let code = state
        .portal()
        .regenerate_recovery_code(&user.principal, &body.into_factor())
        .await?;
    Ok(Json(RecoveryCode {
        recovery_code: code.expose().to_owned(),
    }))
}

/// Phone or e-mail.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryKind {
    /// A phone (SMS), different from the MFA phone.
    Phone,
    /// An e-mail address.
    Email,
}

/// Where a fresh recovery code may be sent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryChannelRequest {
    /// Phone or e-mail.
    pub kind: RecoveryKind,
    /// The number or address.
    pub to: String,
    /// A current second factor ("Bestätigen Sie Ihre Identität").
    pub factor: FactorInput,
}

/// "Wiederherstellungsmethode festlegen": a code is sent to the new phone or address; it is used
/// for recovery only once confirmed (`/recovery-channel/confirm`), the verified channel before it
/// stays in use until then.
#[utoipa::path(put, path = "/api/v1/me/mfa/recovery-channel", tag = "mfa",
    request_body = RecoveryChannelRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Code sent; the channel waits for it"), FactorErrors))]
pub(crate) async fn set_recovery_channel(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<RecoveryChannelRequest>,
) -> Result<StatusCode, ApiError> {
    let channel = match body.kind {
        RecoveryKind::Phone => RecoveryChannel::Phone(phone(&body.to)?),
        RecoveryKind::Email => RecoveryChannel::Email(super::auth::email(&body.to)?),
    };
    state
        .portal()
        .set_recovery_channel(&user.principal, &channel, &body.factor.into_factor())
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Confirms the waiting recovery channel with the code it received; it replaces the verified one.
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-channel/confirm", tag = "mfa",
    request_body = CodeRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Confirmed"), FactorErrors))]
pub(crate) async fn confirm_recovery_channel(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .confirm_recovery_channel(&user.principal, &SecretString::new(body.code))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Code erneut senden": a new code to the waiting recovery channel (the old code dies).
#[utoipa::path(post, path = "/api/v1/me/mfa/recovery-channel/resend", tag = "mfa",
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Code sent"), FactorErrors))]
pub(crate) async fn resend_recovery_channel_code(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .resend_recovery_channel_code(&user.principal)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
