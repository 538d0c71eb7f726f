//! `/api/v1/operator/clients*`: the applications that sign in through Portal's OpenID Connect
//! provider, as operators manage them (list, register, show, change, rotate the secret,
//! disable). The rules and the change log are the core's (`Portal::create_client` and its
//! siblings); a client secret appears only in the answer that created it.

use super::Reply;
use crate::error::{ApiError, Documented, sets};
use crate::error_responses;
use crate::extract::{CurrentUser, JsonBody};
use crate::path::ClientPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use portal_core::oidc::{AccessTokenFormat, Client};
use portal_core::service::{ClientChanges, ClientWithSecret, NewClient, OidcAdminError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a client's access tokens are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokens {
    /// Random strings, checked by introspection: revocation takes effect at once.
    #[default]
    Opaque,
    /// Short-lived signed JWTs (RFC 9068) the application checks itself; their lifetime bounds
    /// how long a revocation takes.
    Jwt,
}

impl From<AccessTokens> for AccessTokenFormat {
    fn from(a: AccessTokens) -> Self {
        match a {
            AccessTokens::Opaque => Self::Opaque,
            AccessTokens::Jwt => Self::Jwt,
        }
    }
}

impl From<AccessTokenFormat> for AccessTokens {
    fn from(a: AccessTokenFormat) -> Self {
        match a {
            AccessTokenFormat::Opaque => Self::Opaque,
            AccessTokenFormat::Jwt => Self::Jwt,
        }
    }
}

/// An application registered with the OpenID Connect provider (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    /// The `client_id`.
    pub id: String,
    /// Shown to users (consent page, no-permission page).
    pub name: String,
    /// A public client (no secret, PKCE required), or a confidential one.
    pub public: bool,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted.
    pub backchannel_logout_uri: Option<String>,
    /// First-party: no consent page.
    pub first_party: bool,
    /// The permission a user needs to sign in (a catalog key).
    pub required_permission: Option<String>,
    /// Users must have signed in with a second factor.
    pub require_second_factor: bool,
    /// `opaque` or `jwt`.
    pub access_tokens: AccessTokens,
    /// Disabled: no new sign-ins, none of its tokens is good.
    pub disabled: bool,
    /// Registered at.
    pub created_at: DateTime<Utc>,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            public: c.public,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            first_party: c.first_party,
            required_permission: c.required_permission.clone(),
            require_second_factor: c.require_second_factor,
            access_tokens: c.access_tokens.into(),
            disabled: c.disabled,
            created_at: c.created_at,
        }
    }
}

/// Every registered application.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientList {
    /// In the order of registration.
    pub items: Vec<ClientView>,
    /// Always null (one page).
    pub next: Option<String>,
}

/// A client with its secret: the answer of registration and of secret rotation, the only
/// places the secret is ever shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientWithSecretView {
    /// The client.
    pub client: ClientView,
    /// The `client_secret` (confidential clients; null for public ones). Shown once: Portal
    /// keeps only its hash.
    pub client_secret: Option<String>,
}

impl From<&ClientWithSecret> for ClientWithSecretView {
    fn from(c: &ClientWithSecret) -> Self {
        Self {
            client: ClientView::from(&c.client),
            client_secret: c.secret.as_ref().map(|s| s.expose().to_owned()),
        }
    }
}

/// A new application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Shown to users: 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Redirect URIs (at least one): absolute `http(s)` URIs without fragment, matched exactly.
    #[schema(min_items = 1)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to (same form).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted (same form).
    pub backchannel_logout_uri: Option<String>,
    /// A public client (no secret, PKCE required); default confidential.
    #[serde(default)]
    pub public: bool,
    /// No consent page (the vendor's own applications); default false.
    #[serde(default)]
    pub first_party: bool,
    /// The permission a user needs (a catalog key); others get a page saying so, not a token.
    pub required_permission: Option<String>,
    /// Users must sign in with a second factor; default false.
    #[serde(default)]
    pub require_second_factor: bool,
    /// `opaque` (default) or `jwt`.
    #[serde(default)]
    pub access_tokens: AccessTokens,
}

/// The new state of an application: every field is given. The kind (public or confidential)
/// and the secret are not changed here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    /// Shown to users: 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Redirect URIs (at least one): absolute `http(s)` URIs without fragment, matched exactly.
    #[schema(min_items = 1)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted (null: none).
    pub backchannel_logout_uri: Option<String>,
    /// No consent page.
    pub first_party: bool,
    /// The permission a user needs (null: none).
    pub required_permission: Option<String>,
    /// Users must sign in with a second factor.
    pub require_second_factor: bool,
    /// `opaque` or `jwt`.
    pub access_tokens: AccessTokens,
}

error_responses!(pub(crate) ListClientErrors: sets::ALWAYS, sets::SESSION, OidcAdminError::CODES);

/// Every application registered with the OpenID Connect provider (operators only).
#[utoipa::path(get, path = "/api/v1/operator/clients", tag = "operator",
    security(("session" = [])),
    responses((status = 200, description = "The applications", body = ClientList), ListClientErrors))]
pub(crate) async fn list_clients(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<ClientList>, ApiError> {
    let clients = state.portal().clients(&user.principal.actor()).await?;
    Ok(Json(ClientList {
        items: clients.iter().map(ClientView::from).collect(),
        next: None,
    }))
}

error_responses!(pub(crate) CreateClientErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, OidcAdminError::CODES);

/// Registers an application; the answer holds its `client_secret` (confidential clients),
/// shown this once. Audited (`oidc.client_created`, without the secret).
#[utoipa::path(post, path = "/api/v1/operator/clients", tag = "operator",
    request_body = CreateClientRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Registered", body = ClientWithSecretView), CreateClientErrors))]
pub(crate) async fn create_client(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateClientRequest>,
) -> Result<Reply, ApiError> {
    let new = NewClient {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        backchannel_logout_uri: body.backchannel_logout_uri,
        public: body.public,
        first_party: body.first_party,
        required_permission: body.required_permission,
        require_second_factor: body.require_second_factor,
        access_tokens: body.access_tokens.into(),
    };
    let created = state
        .portal()
        .create_client(&user.principal.actor(), new)
        .await?;
    Ok(Reply::new(StatusCode::CREATED).json(&ClientWithSecretView::from(&created)))
}

error_responses!(pub(crate) GetClientErrors: sets::ALWAYS, sets::SESSION, sets::ID, OidcAdminError::CODES);

/// One application.
#[utoipa::path(get, path = "/api/v1/operator/clients/{id}", tag = "operator",
    params(("id" = String, Path, description = "The client id", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    security(("session" = [])),
    responses((status = 200, description = "The application", body = ClientView), GetClientErrors))]
pub(crate) async fn get_client(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientPath(id): ClientPath,
) -> Result<Json<ClientView>, ApiError> {
    let c = state.portal().client(&user.principal.actor(), &id).await?;
    Ok(Json(ClientView::from(&c)))
}

error_responses!(pub(crate) UpdateClientErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, sets::ID, OidcAdminError::CODES);

/// Changes an application: name, URIs, required permission, second factor, first-party and
/// the access-token format (the whole new state). Audited (`oidc.client_changed` with the names
/// of the changed fields); a refused change changes nothing.
#[utoipa::path(put, path = "/api/v1/operator/clients/{id}", tag = "operator",
    params(("id" = String, Path, description = "The client id", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    request_body = UpdateClientRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "The application", body = ClientView), UpdateClientErrors))]
pub(crate) async fn update_client(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientPath(id): ClientPath,
    JsonBody(body): JsonBody<UpdateClientRequest>,
) -> Result<Json<ClientView>, ApiError> {
    let changes = ClientChanges {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        backchannel_logout_uri: body.backchannel_logout_uri,
        first_party: body.first_party,
        required_permission: body.required_permission,
        require_second_factor: body.require_second_factor,
        access_tokens: body.access_tokens.into(),
    };
    let c = state
        .portal()
        .update_client(&user.principal.actor(), &id, &changes)
        .await?;
    Ok(Json(ClientView::from(&c)))
}

error_responses!(pub(crate) ClientActionErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::ID, OidcAdminError::CODES);

/// Gives a confidential application a new secret, in this answer only; the old one stops
/// working at once. A public client has none (400 `invalid_request`). Audited without the
/// secret.
#[utoipa::path(post, path = "/api/v1/operator/clients/{id}/rotate-secret", tag = "operator",
    params(("id" = String, Path, description = "The client id", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "The new secret", body = ClientWithSecretView), ClientActionErrors))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientPath(id): ClientPath,
) -> Result<Json<ClientWithSecretView>, ApiError> {
    let rotated = state
        .portal()
        .rotate_client_secret(&user.principal.actor(), &id)
        .await?;
    Ok(Json(ClientWithSecretView::from(&rotated)))
}

/// Disables an application: no new sign-ins, and none of its tokens is good any more (the next
/// introspection says inactive). Audited.
#[utoipa::path(post, path = "/api/v1/operator/clients/{id}/disable", tag = "operator",
    params(("id" = String, Path, description = "The client id", pattern = r"^[A-Za-z0-9_-]{1,64}$")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Disabled", body = ClientView), ClientActionErrors))]
pub(crate) async fn disable_client(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientPath(id): ClientPath,
) -> Result<Json<ClientView>, ApiError> {
    let c = state
        .portal()
        .disable_client(&user.principal.actor(), &id)
        .await?;
    Ok(Json(ClientView::from(&c)))
}
