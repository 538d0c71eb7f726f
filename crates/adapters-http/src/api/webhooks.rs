//! `/api/v1/operator/webhooks*`: the endpoints that receive signed change-log events, as
//! operators manage them (list, register, show, rotate the secret, disable, enable, remove),
//! and the events' schema under the OpenAPI document's `webhooks`. The rules and the change
//! log are the core's (`Portal::create_webhook` and its siblings); a secret appears only in the
//! answer that made it.

use super::Reply;
use crate::error::{ApiError, Documented, sets};
use crate::error_responses;
use crate::extract::{CurrentUser, JsonBody};
use crate::path::WebhookPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use portal_core::service::{NewWebhook, WebhookError, WebhookWithSecret};
use portal_core::webhook::WebhookEndpoint;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A webhook endpoint (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: Uuid,
    /// Where events are posted.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// The change-log categories it receives (stable keys such as `user.locked`).
    pub events: Vec<String>,
    /// Disabled: no new events are queued for it; queued ones are dead-lettered.
    pub disabled: bool,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// When its secret was last rotated.
    pub secret_rotated_at: Option<DateTime<Utc>>,
}

impl From<&WebhookEndpoint> for WebhookView {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id,
            url: e.url.clone(),
            description: e.description.clone(),
            events: e.events.iter().map(|c| c.key().to_owned()).collect(),
            disabled: e.disabled,
            created_at: e.created_at,
            secret_rotated_at: e.secret_rotated_at,
        }
    }
}

/// Every webhook endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// In the order of registration.
    pub items: Vec<WebhookView>,
    /// Always null (one page).
    pub next: Option<String>,
}

/// An endpoint with its secret: the answer of registration and of rotation, the only places
/// the secret is ever shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookWithSecretView {
    /// The endpoint.
    pub webhook: WebhookView,
    /// The signing secret, `whsec_` + base64 (Standard Webhooks). Shown once.
    pub secret: String,
}

impl From<&WebhookWithSecret> for WebhookWithSecretView {
    fn from(w: &WebhookWithSecret) -> Self {
        Self {
            webhook: WebhookView::from(&w.endpoint),
            secret: w.secret.expose().to_owned(),
        }
    }
}

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are posted: an absolute `http(s)` URL without fragment.
    #[schema(max_length = 2000)]
    pub url: String,
    /// The change-log categories it receives (stable keys such as `user.locked`,
    /// `user.permissions_changed`, `admin_request.approved`), or `["all"]`.
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    /// What it is for, shown to operators (at most 200 characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
}

error_responses!(pub(crate) ListWebhookErrors: sets::ALWAYS, sets::SESSION, WebhookError::CODES);

/// Every webhook endpoint (operators only).
#[utoipa::path(get, path = "/api/v1/operator/webhooks", tag = "operator",
    security(("session" = [])),
    responses((status = 200, description = "The endpoints", body = WebhookList), ListWebhookErrors))]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<WebhookList>, ApiError> {
    let list = state.portal().webhooks(&user.principal.actor()).await?;
    Ok(Json(WebhookList {
        items: list.iter().map(WebhookView::from).collect(),
        next: None,
    }))
}

error_responses!(pub(crate) CreateWebhookErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, WebhookError::CODES);

/// Registers an endpoint; the answer holds its secret, shown this once. From the next change
/// on, every change-log entry of its categories is posted to it, signed (docs/operations.md,
/// Webhooks). Audited (`webhook.created`, with the URL's origin only, never the secret).
#[utoipa::path(post, path = "/api/v1/operator/webhooks", tag = "operator",
    request_body = CreateWebhookRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Registered", body = WebhookWithSecretView), CreateWebhookErrors))]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateWebhookRequest>,
) -> Result<Reply, ApiError> {
    let events = portal_core::webhook::parse_events(body.events.iter().map(String::as_str))
        .map_err(WebhookError::from)?;
    let created = state
        .portal()
        .create_webhook(
            &user.principal.actor(),
            NewWebhook {
                url: body.url,
                description: body.description,
                events,
            },
        )
        .await?;
    Ok(Reply::new(StatusCode::CREATED).json(&WebhookWithSecretView::from(&created)))
}

error_responses!(pub(crate) GetWebhookErrors: sets::ALWAYS, sets::SESSION, sets::ID, WebhookError::CODES);

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/operator/webhooks/{id}", tag = "operator",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    security(("session" = [])),
    responses((status = 200, description = "The endpoint", body = WebhookView), GetWebhookErrors))]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    WebhookPath(id): WebhookPath,
) -> Result<Json<WebhookView>, ApiError> {
    let e = state.portal().webhook(&user.principal.actor(), id).await?;
    Ok(Json(WebhookView::from(&e)))
}

error_responses!(pub(crate) WebhookActionErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::ID, WebhookError::CODES);

/// Removes an endpoint. Its queued events are dead-lettered when their turn comes. Audited
/// (`webhook.removed`).
#[utoipa::path(delete, path = "/api/v1/operator/webhooks/{id}", tag = "operator",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Removed"), WebhookActionErrors))]
pub(crate) async fn remove_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    WebhookPath(id): WebhookPath,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .remove_webhook(&user.principal.actor(), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an endpoint a new secret, in this answer only; every delivery from now on (retries of
/// queued events included) is signed with it. Audited (`webhook.changed`, without the secret).
#[utoipa::path(post, path = "/api/v1/operator/webhooks/{id}/rotate-secret", tag = "operator",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "The new secret", body = WebhookWithSecretView), WebhookActionErrors))]
pub(crate) async fn rotate_webhook_secret(
    State(state): State<AppState>,
    user: CurrentUser,
    WebhookPath(id): WebhookPath,
) -> Result<Json<WebhookWithSecretView>, ApiError> {
    let rotated = state
        .portal()
        .rotate_webhook_secret(&user.principal.actor(), id)
        .await?;
    Ok(Json(WebhookWithSecretView::from(&rotated)))
}

/// Disables an endpoint: no new events are queued for it, and its queued ones are
/// dead-lettered (re-queue them from the dead letters once it is enabled again). Audited.
#[utoipa::path(post, path = "/api/v1/operator/webhooks/{id}/disable", tag = "operator",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Disabled", body = WebhookView), WebhookActionErrors))]
pub(crate) async fn disable_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    WebhookPath(id): WebhookPath,
) -> Result<Json<WebhookView>, ApiError> {
    let e = state
        .portal()
        .set_webhook_disabled(&user.principal.actor(), id, true)
        .await?;
    Ok(Json(WebhookView::from(&e)))
}

/// Enables a disabled endpoint again. Audited.
#[utoipa::path(post, path = "/api/v1/operator/webhooks/{id}/enable", tag = "operator",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Enabled", body = WebhookView), WebhookActionErrors))]
pub(crate) async fn enable_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    WebhookPath(id): WebhookPath,
) -> Result<Json<WebhookView>, ApiError> {
    let e = state
        .portal()
        .set_webhook_disabled(&user.principal.actor(), id, false)
        .await?;
    Ok(Json(WebhookView::from(&e)))
}

// ----- the events' schema (OpenAPI `webhooks`) -----

/// Who made a change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookActor {
    /// `user`, `operator`, `system` or `anonymous`.
    pub kind: String,
    /// The acting user's id (null for the system and anonymous actors).
    pub user: Option<Uuid>,
}

/// The change-log entry an event reports.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEventData {
    /// The entry's id.
    pub entry_id: Uuid,
    /// The customer whose change log holds it (nine digits); null for the global log.
    pub customer_number: Option<String>,
    /// The entry's sequence number in that log, from 1.
    pub seq: u64,
    /// The sequence number of the previous event of the same log queued for this endpoint; null
    /// for the first. When it is not the last `seq` the receiver processed for that customer,
    /// an event is missing (still being retried, or dead-lettered) or arrived out of order.
    pub previous_seq: Option<u64>,
    /// Who made the change.
    pub actor: WebhookActor,
    /// Whom it concerns (a user id).
    pub subject: Option<Uuid>,
    /// The entry's details, e.g. `permissions=+documents,-shop`. No secrets, no personal data.
    pub details: String,
}

/// A change-log event, as Portal posts it to a webhook endpoint. Signed following the Standard
/// Webhooks specification: headers `webhook-id` (the same at every attempt), `webhook-timestamp`
/// (Unix seconds of the attempt) and `webhook-signature` (`v1,` + base64 of HMAC-SHA256 over
/// `{id}.{timestamp}.{body}` with the endpoint's secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    /// The change-log category's stable key, e.g. `user.locked`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change happened (UTC).
    pub timestamp: DateTime<Utc>,
    /// The entry.
    pub data: WebhookEventData,
}

/// The document's `webhooks` (OpenAPI 3.1): the one request Portal sends to every endpoint.
pub(crate) fn webhooks_section() -> utoipa::openapi::path::Paths {
    use utoipa::openapi::HttpMethod;
    use utoipa::openapi::path::{
        OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
    };
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(utoipa::openapi::schema::Object::with_type(
                utoipa::openapi::schema::Type::String,
            )))
            .build()
    };
    let operation = OperationBuilder::new()
        .operation_id(Some("portalEvent"))
        .summary(Some("A change-log event, signed (Standard Webhooks)"))
        .description(Some(
            "Posted to every enabled endpoint subscribed to the entry's category, at least once: \
             a non-2xx answer, a timeout or an unreachable endpoint is retried with exponential \
             back-off and dead-lettered after the last attempt. Verify the signature before \
             trusting the body, drop repeats by `webhook-id`, and use `seq` / `previous_seq` to \
             see gaps and order per customer (docs/operations.md, Webhooks).",
        ))
        .parameter(header(
            "webhook-id",
            "The event's id: the same at every attempt",
        ))
        .parameter(header(
            "webhook-timestamp",
            "The attempt's time, Unix seconds; refuse it when far from now",
        ))
        .parameter(header(
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of {webhook-id}.{webhook-timestamp}.{body}>`",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("WebhookEvent")))
                        .build(),
                )
                .build(),
        ))
        .response(
            "2XX",
            ResponseBuilder::new().description("Received; any other answer is retried"),
        )
        .build();
    PathsBuilder::new()
        .path("portalEvent", PathItem::new(HttpMethod::Post, operation))
        .build()
}
