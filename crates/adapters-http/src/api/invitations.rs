//! `/api/v1/invitations/{token}`: the pre-filled registration behind an invitation link.

use super::Reply;
use super::views::{LanguageView, RoleView, TicketView};
use crate::error::{ApiError, Documented, sets};
use crate::error_responses;
use crate::extract::{JsonBody, Limit, buckets};
use crate::path::TokenPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use portal_core::secret::SecretString;
use portal_core::service::{AcceptInvitation, InvitationError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the invitation page shows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationOut {
    /// The invited address (fixed).
    pub email: String,
    /// First name as the administrator entered it.
    pub first_name: String,
    /// Last name as the administrator entered it.
    pub last_name: String,
    /// Language.
    pub language: LanguageView,
    /// The company (none for an operator's setup link).
    pub customer_name: Option<String>,
    /// The role the account will have.
    pub role: RoleView,
    /// When the link expires.
    pub expires_at: DateTime<Utc>,
}

error_responses!(pub(crate) ShowErrors: sets::ALWAYS, sets::PATH, InvitationError::CODES);

/// Opens an invitation link (unknown, revoked: 404; expired or used: 410).
#[utoipa::path(get, path = "/api/v1/invitations/{token}", tag = "invitations",
    params(("token" = String, Path, description = "The token from the mailed link")),
    responses((status = 200, description = "The invitation", body = InvitationOut), ShowErrors))]
pub(crate) async fn show(
    State(state): State<AppState>,
    TokenPath(token): TokenPath,
) -> Result<Json<InvitationOut>, ApiError> {
    let v = state.portal().invitation(&token).await?;
    Ok(Json(InvitationOut {
        email: v.email.to_string(),
        first_name: v.first_name.to_string(),
        last_name: v.last_name.to_string(),
        language: v.language.into(),
        customer_name: v.customer_name,
        role: v.role.into(),
        expires_at: v.expires_at,
    }))
}

/// Setting the password on the invitation page.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// Password.
    pub password: String,
    /// The password again.
    pub password_confirmation: String,
}

error_responses!(pub(crate) AcceptErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::LIMITED, InvitationError::CODES);

/// "Registrieren" on the invitation page: sets the password and mails the code; finish with
/// `POST /api/v1/auth/register/verify`.
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "invitations",
    params(("token" = String, Path, description = "The token from the mailed link")),
    request_body = AcceptRequest,
    security(("csrf" = [])),
    responses((status = 202, description = "Code mailed", body = TicketView), AcceptErrors))]
pub(crate) async fn accept(
    _: Limit<buckets::Registration>,
    State(state): State<AppState>,
    TokenPath(token): TokenPath,
    JsonBody(body): JsonBody<AcceptRequest>,
) -> Result<Reply, ApiError> {
    let ticket = state
        .portal()
        .accept_invitation(
            &token,
            AcceptInvitation {
                password: SecretString::new(body.password),
                password_confirmation: SecretString::new(body.password_confirmation),
            },
        )
        .await?;
    Ok(Reply::new(StatusCode::ACCEPTED).json(&TicketView::from(ticket)))
}
