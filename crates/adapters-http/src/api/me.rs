//! `/api/v1/me*`: the logged-in user's profile, credentials, customer link, admin request,
//! message to the administrators, and sessions.

use super::auth::{email, language, person_name};
use super::views::{AdminRequestOut, MeView, SessionList, SessionView, TicketView};
use super::{Reply, session_cookie};
use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::error::{ApiError, Documented, ErrorCode, sets};
use crate::error_responses;
use crate::extract::{Client, CurrentUser, JsonBody, Limit, buckets};
use crate::path::SessionPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portal_core::customer::AffiliationKey;
use portal_core::secret::SecretString;
use portal_core::service::{
    AdminRequestError, ContactError, LinkError, LinkOutcome, ProfileError, SessionError,
};
use portal_core::values::FreeText;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

error_responses!(pub(crate) ShowErrors: sets::ALWAYS, sets::SESSION);

/// The logged-in user, their customer and second factors.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    security(("session" = [])),
    responses((status = 200, description = "The user", body = MeView), ShowErrors))]
pub(crate) async fn show(user: CurrentUser) -> Json<MeView> {
    let p = &user.principal;
    Json(MeView::new(p.user(), p.customer()))
}

/// Name and language.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `de` or `en`.
    pub language: String,
}

error_responses!(pub(crate) UpdateErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, ProfileError::CODES);

/// Changes the user's own name and language.
#[utoipa::path(put, path = "/api/v1/me", tag = "me",
    request_body = ProfileRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Changed", body = MeView), UpdateErrors))]
pub(crate) async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<ProfileRequest>,
) -> Result<Json<MeView>, ApiError> {
    let first = person_name("first_name", &body.first_name)?;
    let last = person_name("last_name", &body.last_name)?;
    let lang = language(Some(&body.language))?;
    let p = &user.principal;
    let updated = state
        .portal()
        .update_profile(p, &first, &last, lang)
        .await?;
    Ok(Json(MeView::new(&updated, p.customer())))
}

/// Changing the password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password.
    pub password: String,
    /// The new password again.
    pub password_confirmation: String,
}

/// A rotated session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Rotated {
    /// The CSRF token of the new session token.
    pub csrf_token: String,
}

error_responses!(pub(crate) PasswordErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, ProfileError::CODES);

/// Changes the password with the current one. Needs a fresh authentication (a login or
/// `POST /api/v1/auth/reauthenticate` within the last 15 minutes; `403 reauth_required`
/// otherwise, and nothing changes). Every other session and remembered device ends; this session
/// gets a new token (cookie and CSRF token).
#[utoipa::path(put, path = "/api/v1/me/password", tag = "me",
    request_body = PasswordRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Changed", body = Rotated), PasswordErrors))]
pub(crate) async fn change_password(
    _: Limit<buckets::Password>,
    State(state): State<AppState>,
    Client(client): Client,
    user: CurrentUser,
    JsonBody(body): JsonBody<PasswordRequest>,
) -> Result<Reply, ApiError> {
    let issued = state
        .portal()
        .change_password(
            &user.principal,
            &SecretString::new(body.current_password),
            &SecretString::new(body.password),
            &SecretString::new(body.password_confirmation),
            client.info(),
        )
        .await?;
    let config = state.config();
    let mut reply = Reply::new(StatusCode::OK);
    reply.cookie(session_cookie(&state, &issued));
    Ok(reply.json(&Rotated {
        csrf_token: csrf::session_token(config, issued.token.expose()),
    }))
}

/// A new e-mail address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The new address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

error_responses!(pub(crate) EmailErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, ProfileError::CODES);

/// Starts changing the e-mail address (needs a fresh re-authentication): a code goes to the new
/// address, a notice to the current one.
#[utoipa::path(post, path = "/api/v1/me/email", tag = "me",
    request_body = EmailChangeRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Code mailed to the new address", body = TicketView), EmailErrors))]
pub(crate) async fn start_email_change(
    _: Limit<buckets::Codes>,
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<EmailChangeRequest>,
) -> Result<Reply, ApiError> {
    let new = email(&body.email)?;
    let ticket = state
        .portal()
        .start_email_change(&user.principal, &new)
        .await?;
    Ok(Reply::new(StatusCode::ACCEPTED).json(&TicketView::from(ticket)))
}

/// The code the new address received.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfirmRequest {
    /// The ticket from `POST /api/v1/me/email`.
    pub ticket: String,
    /// The six digits.
    #[schema(pattern = r"^[0-9]{6}$")]
    pub code: String,
}

/// Confirms the new address with its code; the old address is told.
#[utoipa::path(post, path = "/api/v1/me/email/confirm", tag = "me",
    request_body = EmailConfirmRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Address changed", body = MeView), EmailErrors))]
pub(crate) async fn confirm_email_change(
    _: Limit<buckets::Codes>,
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<EmailConfirmRequest>,
) -> Result<Json<MeView>, ApiError> {
    let p = &user.principal;
    let updated = state
        .portal()
        .confirm_email_change(p, &body.ticket, &body.code)
        .await?;
    Ok(Json(MeView::new(&updated, p.customer())))
}

/// "Bitte wählen Sie Ihre Zugehörigkeit aus".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AffiliationRequest {
    /// An affiliation key of the installation (e.g. `de-business`).
    pub affiliation: String,
}

error_responses!(pub(crate) LinkErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, LinkError::CODES);

/// Chooses the product affiliation (before linking to a customer).
#[utoipa::path(put, path = "/api/v1/me/affiliation", tag = "me",
    request_body = AffiliationRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Chosen"), LinkErrors))]
pub(crate) async fn choose_affiliation(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<AffiliationRequest>,
) -> Result<StatusCode, ApiError> {
    let key = AffiliationKey::parse(&body.affiliation)
        .map_err(|_| ApiError::new(ErrorCode::UnknownAffiliation))?;
    state
        .portal()
        .choose_affiliation(&user.principal.actor(), &key)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where linking left the user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Linked {
    /// `active` (the customer had no administrator) or `pending_activation`.
    pub status: String,
}

impl From<LinkOutcome> for Linked {
    fn from(o: LinkOutcome) -> Self {
        Self {
            status: match o {
                LinkOutcome::Active => "active".into(),
                LinkOutcome::PendingActivation => "pending_activation".into(),
            },
        }
    }
}

/// Linking by customer number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkCustomerRequest {
    /// `123456789` or `D123456789`.
    #[schema(pattern = r"^\s*(?:[Dd] *)?[0-9]{9}\s*$")]
    pub customer_number: String,
}

error_responses!(pub(crate) LinkNumberErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, sets::NUMBER, LinkError::CODES);

/// "Jetzt registrieren": links the account to a customer by its number. Rate limited like a
/// login (the login group): a number is something to guess.
#[utoipa::path(post, path = "/api/v1/me/link/customer", tag = "me",
    request_body = LinkCustomerRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Linked", body = Linked), LinkNumberErrors))]
pub(crate) async fn link_customer(
    _: Limit<buckets::Login>,
    State(state): State<AppState>,
    Client(client): Client,
    user: CurrentUser,
    JsonBody(body): JsonBody<LinkCustomerRequest>,
) -> Result<Json<Linked>, ApiError> {
    let number = crate::extract::customer_number(&body.customer_number)?;
    let outcome = state
        .portal()
        .link_customer_from(&user.principal.actor(), &number, &client.info())
        .await?;
    Ok(Json(outcome.into()))
}

/// Linking with an old account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkLegacyRequest {
    /// The old username.
    pub username: String,
    /// The old password.
    pub password: String,
}

error_responses!(pub(crate) LinkLegacyErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, sets::SESSION, LinkError::CODES);

/// "Jetzt verknüpfen": links the account with the credentials of an old account (once).
#[utoipa::path(post, path = "/api/v1/me/link/legacy", tag = "me",
    request_body = LinkLegacyRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Linked", body = Linked), LinkLegacyErrors))]
pub(crate) async fn link_legacy(
    _: Limit<buckets::Login>,
    State(state): State<AppState>,
    Client(client): Client,
    user: CurrentUser,
    JsonBody(body): JsonBody<LinkLegacyRequest>,
) -> Result<Json<Linked>, ApiError> {
    let outcome = state
        .portal()
        .link_legacy_from(
            &user.principal.actor(),
            &body.username,
            &SecretString::new(body.password),
            &client.info(),
        )
        .await?;
    Ok(Json(outcome.into()))
}

error_responses!(pub(crate) AdminRequestErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, AdminRequestError::CODES);

/// "Admin-Rechte beantragen".
#[utoipa::path(post, path = "/api/v1/me/admin-request", tag = "me",
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Requested", body = AdminRequestOut), AdminRequestErrors))]
pub(crate) async fn request_admin_rights(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Reply, ApiError> {
    let r = state
        .portal()
        .request_admin_rights(&user.principal.actor())
        .await?;
    Ok(Reply::new(StatusCode::CREATED).json(&AdminRequestOut::bare(&r)))
}

/// A message to the administrators.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// The text (1–2000 characters).
    pub message: String,
}

/// How many administrators were written to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactSent {
    /// Recipients.
    pub recipients: usize,
}

error_responses!(pub(crate) ContactErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, ContactError::CODES);

/// "Administrator kontaktieren": mails the message to the customer's administrators.
#[utoipa::path(post, path = "/api/v1/me/contact-admin", tag = "me",
    request_body = ContactRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Sent", body = ContactSent), ContactErrors))]
pub(crate) async fn contact_admins(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<ContactRequest>,
) -> Result<Reply, ApiError> {
    let message = FreeText::parse(&body.message)
        .map_err(|e| ApiError::with_message(ErrorCode::InvalidRequest, format!("message: {e}")))?;
    let recipients = state
        .portal()
        .contact_admins(&user.principal.actor(), &message)
        .await?;
    Ok(Reply::new(StatusCode::ACCEPTED).json(&ContactSent { recipients }))
}

error_responses!(pub(crate) SessionsErrors: sets::ALWAYS, sets::SESSION, SessionError::CODES);

/// The user's live sessions and remembered devices, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me",
    security(("session" = [])),
    responses((status = 200, description = "Sessions", body = SessionList), SessionsErrors))]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<SessionList>, ApiError> {
    let current = user.principal.session().id();
    let list = state.portal().my_sessions(&user.principal).await?;
    Ok(Json(SessionList {
        items: list
            .iter()
            .map(|s| SessionView::new(s, s.id() == current))
            .collect(),
        next: None,
    }))
}

error_responses!(pub(crate) EndErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, SessionError::CODES);

/// "Sign out everywhere else": ends every other session and remembered device.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "me",
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Ended"), EndErrors))]
pub(crate) async fn end_other_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .end_my_other_sessions(&user.principal)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

error_responses!(pub(crate) SessionErrors: sets::ALWAYS, sets::SESSION, sets::ID, SessionError::CODES);

/// One of the user's live sessions or remembered devices. An id that is not one of the user's own
/// (another user's session, an ended or unknown one) answers 404 `not_found`.
#[utoipa::path(get, path = "/api/v1/me/sessions/{id}", tag = "me",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    security(("session" = [])),
    responses((status = 200, description = "The session", body = SessionView), SessionErrors))]
pub(crate) async fn session(
    State(state): State<AppState>,
    user: CurrentUser,
    SessionPath(sid): SessionPath,
) -> Result<Json<SessionView>, ApiError> {
    let current = user.principal.session().id();
    // The user's own list is the scope: nobody else's session can match.
    let list = state.portal().my_sessions(&user.principal).await?;
    list.iter()
        .find(|s| s.id() == sid)
        .map(|s| Json(SessionView::new(s, sid == current)))
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))
}

error_responses!(pub(crate) EndOneErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::ID, SessionError::CODES);

/// Ends one of the user's sessions or remembered devices (the current one too, like a logout).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Ended"), EndOneErrors))]
pub(crate) async fn end_session(
    State(state): State<AppState>,
    user: CurrentUser,
    SessionPath(sid): SessionPath,
) -> Result<Reply, ApiError> {
    state.portal().end_my_session(&user.principal, sid).await?;
    let mut reply = Reply::new(StatusCode::NO_CONTENT);
    if sid == user.principal.session().id() {
        reply.cookie(cookies::clear(state.config(), CookieName::Session));
    }
    Ok(reply)
}
