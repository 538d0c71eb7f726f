//! `/api/v1/auth/*`: CSRF token, registration, login (with the second step), logout, password
//! reset, step-up re-authentication.

use super::views::{MeView, MethodView, TicketView};
use super::{FactorInput, Reply, session_cookie};
use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::error::{ApiError, Documented, sets};
use crate::error_responses;
use crate::extract::{Client, JsonBody, Limit, MaybeJson, PendingLogin, SetupUser, buckets};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use portal_core::secret::{SecretString, Token};
use portal_core::service::{
    AuthError, CodeError, CompleteMfa, Login, LoginError, LoginOutcome, MfaError, Presented,
    Register, RegisterError, ResendError, ResetError, VerifyError,
};
use portal_core::values::{EmailAddress, Language, PersonName};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---------------------------------------------------------------------------------------------
// CSRF
// ---------------------------------------------------------------------------------------------

/// The CSRF token to send as `X-CSRF-Token` with every unsafe request.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CsrfView {
    /// The token.
    pub csrf_token: String,
    /// The header to send it in.
    pub header: String,
}

error_responses!(pub(crate) CsrfErrors: sets::ALWAYS);

/// Hands out the CSRF token for the cookies this browser holds: bound to the session when there
/// is one, otherwise to a pre-session nonce cookie that this call sets if it is missing.
#[utoipa::path(get, path = "/api/v1/auth/csrf", tag = "auth",
    responses((status = 200, description = "The token", body = CsrfView), CsrfErrors))]
pub(crate) async fn csrf_token(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let config = state.config();
    let mut reply = Reply::new(StatusCode::OK);
    let token = if let Some(session) = cookies::read(&headers, config, CookieName::Session) {
        csrf::session_token(config, &session)
    } else {
        let nonce = cookies::read(&headers, config, CookieName::Csrf).unwrap_or_else(|| {
            let n = csrf::new_nonce();
            reply.cookie(cookies::set(config, CookieName::Csrf, &n, None));
            n
        });
        csrf::pre_session_token(config, &nonce)
    };
    reply.json(&CsrfView {
        csrf_token: token,
        header: "X-CSRF-Token".into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

/// "Erstellen Sie Ihr Konto".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// E-mail address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Password (8–128 characters by default).
    pub password: String,
    /// The password again.
    pub password_confirmation: String,
    /// `de` (default) or `en`.
    pub language: Option<String>,
}

pub(crate) fn email(raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| {
        ApiError::with_message(
            crate::error::ErrorCode::InvalidRequest,
            format!("email: {e}"),
        )
    })
}

pub(crate) fn person_name(field: &str, raw: &str) -> Result<PersonName, ApiError> {
    PersonName::parse(raw).map_err(|e| {
        ApiError::with_message(
            crate::error::ErrorCode::InvalidRequest,
            format!("{field}: {e}"),
        )
    })
}

pub(crate) fn language(raw: Option<&str>) -> Result<Language, ApiError> {
    raw.map_or(Ok(Language::De), |l| {
        Language::parse(l).map_err(|e| {
            ApiError::with_message(
                crate::error::ErrorCode::InvalidRequest,
                format!("language: {e}"),
            )
        })
    })
}

error_responses!(pub(crate) RegisterErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, RegisterError::CODES);

/// Registers an account: mails a 6-digit code and answers with a ticket. An address that has an
/// account already gets the same answer (its owner is mailed a notice instead).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    security(("csrf" = [])),
    responses((status = 202, description = "Code mailed (or notice sent)", body = TicketView), RegisterErrors))]
pub(crate) async fn register(
    _: Limit<buckets::Registration>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<Reply, ApiError> {
    let cmd = Register {
        email: email(&body.email)?,
        first_name: person_name("first_name", &body.first_name)?,
        last_name: person_name("last_name", &body.last_name)?,
        password: SecretString::new(body.password),
        password_confirmation: SecretString::new(body.password_confirmation),
        language: language(body.language.as_deref())?,
    };
    let ticket = state.portal().register(cmd).await?;
    Ok(Reply::new(StatusCode::ACCEPTED).json(&TicketView::from(ticket)))
}

/// The code from the mail.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The ticket from `/auth/register`.
    pub ticket: String,
    /// The six digits.
    #[schema(pattern = r"^[0-9]{6}$")]
    pub code: String,
}

/// A session just started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionStarted {
    /// The user.
    pub user: MeView,
    /// The CSRF token of the new session (the old one is void).
    pub csrf_token: String,
}

error_responses!(pub(crate) VerifyErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, VerifyError::CODES);

/// Confirms the mailed code: the account is created (or the invitation completed) and a session
/// starts (cookie).
#[utoipa::path(post, path = "/api/v1/auth/register/verify", tag = "auth",
    request_body = VerifyRequest,
    security(("csrf" = [])),
    responses((status = 201, description = "Account created, logged in", body = SessionStarted), VerifyErrors))]
pub(crate) async fn verify(
    _: Limit<buckets::Codes>,
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Reply, ApiError> {
    let issued = state
        .portal()
        .verify_registration(&body.ticket, &body.code, client.info())
        .await?;
    super::session_started(&state, StatusCode::CREATED, &issued).await
}

/// Asks for a new code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// The ticket from `/auth/register`.
    pub ticket: String,
}

error_responses!(pub(crate) ResendErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, ResendError::CODES);

/// "Code erneut senden": a new code (the old one stops working), after a cooldown.
#[utoipa::path(post, path = "/api/v1/auth/register/resend", tag = "auth",
    request_body = ResendRequest,
    security(("csrf" = [])),
    responses((status = 202, description = "New code mailed", body = TicketView), ResendErrors))]
pub(crate) async fn resend(
    _: Limit<buckets::Codes>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ResendRequest>,
) -> Result<Reply, ApiError> {
    let ticket = state.portal().resend_code(&body.ticket).await?;
    Ok(Reply::new(StatusCode::ACCEPTED).json(&TicketView::from(ticket)))
}

// ---------------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------------

/// "Anmelden".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Password.
    pub password: String,
}

/// The answer to a correct password.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginResponse {
    /// Logged in (session cookie set).
    Authenticated {
        /// The user.
        user: Box<MeView>,
        /// The CSRF token of the new session.
        csrf_token: String,
    },
    /// The account has a second factor: finish with `POST /api/v1/auth/login/mfa` (the pending
    /// step's cookie is set).
    MfaRequired {
        /// The factors the login can be finished with.
        methods: Vec<MethodView>,
        /// The second step must be done before this.
        expires_at: DateTime<Utc>,
    },
}

error_responses!(pub(crate) LoginErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, LoginError::CODES);

/// Logs in with e-mail and password. With a remembered-device cookie an account with a second
/// factor is logged in at once; otherwise it gets the pending second step. When the password is
/// right, the session this browser's cookie held (if any, whoever's) ends.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    security(("csrf" = [])),
    responses((status = 200, description = "Logged in, or second step required", body = LoginResponse), LoginErrors))]
pub(crate) async fn login(
    _: Limit<buckets::Login>,
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Reply, ApiError> {
    let cmd = Login {
        email: body.email,
        password: SecretString::new(body.password),
        client: client.info(),
    };
    let config = state.config();
    let presented = Presented {
        session: cookies::read(&headers, config, CookieName::Session),
        remembered_device: cookies::read(&headers, config, CookieName::Device),
        known_browser: crate::known_browser::read(&state, &headers),
    };
    let outcome = state.portal().login_presenting(cmd, presented).await?;
    match outcome {
        LoginOutcome::Authenticated(issued) => {
            let mut reply = super::session_started(&state, StatusCode::OK, &issued).await?;
            reply.cookie(cookies::clear(config, CookieName::PendingMfa));
            Ok(reply)
        }
        LoginOutcome::MfaRequired(pending) => {
            let mut reply = Reply::new(StatusCode::OK);
            reply.cookie(cookies::clear(config, CookieName::Session));
            reply.cookie(cookies::set(
                config,
                CookieName::PendingMfa,
                pending.token.expose(),
                Some(seconds_until(&state, pending.expires_at)),
            ));
            Ok(reply.json(&LoginResponse::MfaRequired {
                methods: pending.methods.into_iter().map(Into::into).collect(),
                expires_at: pending.expires_at,
            }))
        }
    }
}

/// Seconds from now (by the portal's clock) until `t`, at least 1: a cookie's `Max-Age`.
pub(crate) fn seconds_until(state: &AppState, t: DateTime<Utc>) -> i64 {
    (t - state.now()).num_seconds().max(1)
}

/// The second step of a login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginRequest {
    /// Which factor the code is from.
    pub method: FactorMethod,
    /// Six digits (app or phone) or the recovery code.
    pub code: String,
    /// "Mich auf diesem Gerät für 30 Tage merken".
    #[serde(default)]
    pub remember_device: bool,
}

/// Which factor a code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactorMethod {
    /// The authenticator app.
    Totp,
    /// The code sent by SMS or voice call.
    PhoneCode,
    /// The recovery code.
    RecoveryCode,
    /// A passkey (re-authentication and presence proofs: give `challenge_id` and `credential`
    /// instead of `code`; the login's second step has its own endpoint,
    /// `POST /api/v1/auth/login/mfa/passkey`).
    Passkey,
}

/// A finished second step.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MfaLoginResponse {
    /// The user.
    pub user: MeView,
    /// The CSRF token of the new session.
    pub csrf_token: String,
    /// After a login with the recovery code: the new recovery code, shown once.
    pub recovery_code: Option<String>,
    /// After a login with the recovery code: set up a new factor.
    pub choose_new_factor: bool,
    /// Whether this device is remembered now.
    pub device_remembered: bool,
}

error_responses!(pub(crate) MfaLoginErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, MfaError::CODES);

/// Finishes a login with the second factor (needs the pending step's cookie). The session
/// cookie is set; with `remember_device` also the 30-day device cookie.
#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth",
    request_body = MfaLoginRequest,
    security(("pending_login" = [], "csrf" = [])),
    responses((status = 200, description = "Logged in", body = MfaLoginResponse), MfaLoginErrors))]
pub(crate) async fn login_mfa(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    Client(client): Client,
    PendingLogin(token): PendingLogin,
    JsonBody(body): JsonBody<MfaLoginRequest>,
) -> Result<Result<Reply, axum::response::Response>, ApiError> {
    let factor = FactorInput {
        method: body.method,
        code: body.code,
        challenge_id: None,
        credential: None,
    }
    .into_factor();
    finish_mfa_login(
        &state,
        CompleteMfa {
            token,
            factor,
            remember_device: body.remember_device,
            client: client.info(),
        },
    )
    .await
}

/// The second step of a login, whichever factor (a code here, a passkey in
/// [`super::passkeys::second_factor`]): completes it, sets the session cookie (and the device
/// cookie when asked for), clears the pending step's cookie, and answers [`MfaLoginResponse`].
/// When the pending step is over (gone, or too many tries) its cookie is cleared with the error.
pub(crate) async fn finish_mfa_login(
    state: &AppState,
    cmd: CompleteMfa,
) -> Result<Result<Reply, axum::response::Response>, ApiError> {
    let config = state.config();
    let done = match state.portal().complete_mfa(cmd).await {
        Ok(done) => done,
        // The pending step is over: its cookie goes too.
        Err(e @ (MfaError::NoPendingLogin | MfaError::Code(CodeError::TooManyAttempts))) => {
            let mut response = ApiError::from(e).into_response();
            cookies::append(
                response.headers_mut(),
                [cookies::clear(config, CookieName::PendingMfa)],
            );
            return Ok(Err(response));
        }
        Err(e) => return Err(e.into()),
    };
    let principal = state
        .portal()
        .authenticate(done.session.token.expose())
        .await?;
    let mut reply = Reply::new(StatusCode::OK);
    reply.cookie(session_cookie(state, &done.session));
    reply.cookie(cookies::clear(config, CookieName::PendingMfa));
    if let Some(device) = &done.remembered_device {
        reply.cookie(cookies::set(
            config,
            CookieName::Device,
            device.token.expose(),
            Some(seconds_until(state, device.expires_at)),
        ));
    }
    Ok(Ok(reply.json(&MfaLoginResponse {
        user: MeView::new(principal.user(), principal.customer()),
        csrf_token: csrf::session_token(config, done.session.token.expose()),
        recovery_code: done.new_recovery_code.map(|c| c.expose().to_owned()),
        choose_new_factor: done.choose_new_factor,
        device_remembered: done.remembered_device.is_some(),
    })))
}

error_responses!(pub(crate) PendingSendErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::LIMITED, MfaError::CODES);

/// Sends a code by SMS or voice call to the MFA phone for the pending second step (over the
/// hourly limit the answer is the same, but nothing is sent).
#[utoipa::path(post, path = "/api/v1/auth/login/mfa/phone-code", tag = "auth",
    security(("pending_login" = [], "csrf" = [])),
    responses((status = 202, description = "Code sent"), PendingSendErrors))]
pub(crate) async fn login_phone_code(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    PendingLogin(token): PendingLogin,
) -> Result<StatusCode, ApiError> {
    state.portal().send_login_phone_code(&token).await?;
    Ok(StatusCode::ACCEPTED)
}

/// "Haben Sie Ihren Wiederherstellungscode vergessen?": sends a fresh recovery code to the
/// recovery phone or address (a few per day; beyond that nothing is sent).
#[utoipa::path(post, path = "/api/v1/auth/login/mfa/recovery-code", tag = "auth",
    security(("pending_login" = [], "csrf" = [])),
    responses((status = 202, description = "Recovery code sent"), PendingSendErrors))]
pub(crate) async fn login_recovery_code(
    _: Limit<buckets::Mfa>,
    State(state): State<AppState>,
    PendingLogin(token): PendingLogin,
) -> Result<StatusCode, ApiError> {
    state.portal().send_recovery_code(&token).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Logout options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Also forget this device (its remembered-device token ends and its cookie is cleared).
    #[serde(default)]
    pub forget_device: bool,
}

error_responses!(pub(crate) LogoutErrors: sets::ALWAYS, sets::BODY, sets::CSRF, AuthError::CODES);

/// Logs out: the session ends on the server and its cookies are cleared (`Max-Age=0`). The
/// remembered-device cookie stays unless `forget_device` is set. Without a live session this
/// only clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body(content = Option<LogoutRequest>, description = "Optional"),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Logged out"), LogoutErrors))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeJson(body): MaybeJson<LogoutRequest>,
) -> Result<Reply, ApiError> {
    let config = state.config();
    let portal = state.portal();
    let session = cookies::read(&headers, config, CookieName::Session);
    let mut reply = Reply::new(StatusCode::NO_CONTENT);
    if body.forget_device
        && let Some(device) = cookies::read(&headers, config, CookieName::Device)
    {
        if let Some(session) = &session
            && let Ok(principal) = portal.authenticate(session).await
            && let Ok(device) = Token::parse(&device)
        {
            let hash = device.hash();
            let sessions = portal
                .my_sessions(&principal)
                .await
                .map_err(ApiError::from)?;
            if let Some(s) = sessions.iter().find(|s| s.record().token_hash == hash) {
                portal.end_my_session(&principal, s.id()).await?;
            }
        }
        reply.cookie(cookies::clear(config, CookieName::Device));
    }
    if let Some(session) = session {
        portal.logout(&session).await?;
    }
    reply.cookie(cookies::clear(config, CookieName::Session));
    reply.cookie(cookies::clear(config, CookieName::PendingMfa));
    Ok(reply)
}

// ---------------------------------------------------------------------------------------------
// Password reset
// ---------------------------------------------------------------------------------------------

/// "Passwort vergessen?".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    /// The account's address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

error_responses!(pub(crate) ForgotErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED);

/// Mails a reset link if the address has an account that can log in. Always the same answer.
#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth",
    request_body = ForgotRequest,
    security(("csrf" = [])),
    responses((status = 202, description = "Recorded; if the address has an account, a link is mailed shortly"), ForgotErrors))]
pub(crate) async fn forgot_password(
    _: Limit<buckets::Password>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ForgotRequest>,
) -> Result<StatusCode, ApiError> {
    state.portal().forgot_password(&body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// "Passwort zurücksetzen".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The token from the mailed link.
    pub token: String,
    /// New password.
    pub password: String,
    /// The new password again.
    pub password_confirmation: String,
}

error_responses!(pub(crate) ResetErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, ResetError::CODES);

/// Sets a new password with the mailed link. Every session of the account ends; it does not log
/// in.
#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth",
    request_body = ResetRequest,
    security(("csrf" = [])),
    responses((status = 204, description = "Password set; log in"), ResetErrors))]
pub(crate) async fn reset_password(
    _: Limit<buckets::Password>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<Reply, ApiError> {
    let user = state
        .portal()
        .reset_password(
            &body.token,
            &SecretString::new(body.password),
            &SecretString::new(body.password_confirmation),
        )
        .await?;
    // The browser that proved the mailbox is one the account's owner uses: its logins are
    // exempt from the throttles of other addresses.
    let mut reply = Reply::new(StatusCode::NO_CONTENT);
    reply.cookie(crate::known_browser::issue(&state, user));
    Ok(reply)
}

// ---------------------------------------------------------------------------------------------
// Step-up
// ---------------------------------------------------------------------------------------------

/// Step-up re-authentication.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    /// The password.
    pub password: String,
    /// A current second factor (required when the account has one).
    pub factor: Option<FactorInput>,
}

/// A re-authenticated session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Reauthenticated {
    /// The CSRF token of the rotated session.
    pub csrf_token: String,
    /// Sensitive changes are allowed until then.
    pub step_up_until: DateTime<Utc>,
}

error_responses!(pub(crate) ReauthErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, &[crate::error::ErrorCode::MfaRequired], MfaError::CODES);

/// Proves the password (and a second factor) again for sensitive changes (e-mail, password,
/// factors). The session token is rotated: a new cookie and CSRF token.
#[utoipa::path(post, path = "/api/v1/auth/reauthenticate", tag = "auth",
    request_body = ReauthRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Re-authenticated", body = Reauthenticated), ReauthErrors))]
pub(crate) async fn reauthenticate(
    _: Limit<buckets::Login>,
    State(state): State<AppState>,
    Client(client): Client,
    SetupUser(user): SetupUser,
    JsonBody(body): JsonBody<ReauthRequest>,
) -> Result<Reply, ApiError> {
    let has_factor = body.factor.is_some();
    let factor = body.factor.map(FactorInput::into_factor);
    let issued = state
        .portal()
        .reauthenticate(
            &user.principal,
            &SecretString::new(body.password),
            factor.as_ref(),
            client.info(),
        )
        .await
        .map_err(|e| match e {
            MfaError::NoSuchFactor if !has_factor => {
                ApiError::new(crate::error::ErrorCode::MfaRequired)
            }
            other => other.into(),
        })?;
    let config = state.config();
    let mut reply = Reply::new(StatusCode::OK);
    reply.cookie(session_cookie(&state, &issued));
    let window = state.portal().config().step_up_window;
    Ok(reply.json(&Reauthenticated {
        csrf_token: csrf::session_token(config, issued.token.expose()),
        step_up_until: state.now() + window,
    }))
}
