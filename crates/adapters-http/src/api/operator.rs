//! `/api/v1/operator/*`: vendor staff's tools: customers (create, import, list, show), admin
//! requests (approve, reject), the global change log and chain verification, operator accounts,
//! and the outbox's dead letters (every kind of outgoing message).

use super::Reply;
use super::customers::{AuditQuery, ListQuery, audit_page, per_page, permission_set};
use super::views::{
    AdminRequestList, AdminRequestOut, AuditPageView, CustomerPageView, CustomerView, UserView,
};
use crate::error::{ApiError, Documented, ErrorCode, sets};
use crate::error_responses;
use crate::extract::{ApiQuery, CsvBody, CurrentUser, JsonBody, customer_number};
use crate::path::{AdminRequestPath, CustomerPath, MailPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::customer::{AffiliationKey, SecondFactorPolicy, ServiceChannel};
use portal_core::service::{
    AdminRequestError, AuditError, CustomerError, NewCustomer, OutboxError,
};
use portal_core::values::CompanyName;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

error_responses!(pub(crate) ListErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, CustomerError::CODES);

/// Customers ordered by number, with search on number and name.
#[utoipa::path(get, path = "/api/v1/operator/customers", tag = "operator",
    params(ListQuery),
    security(("session" = [])),
    responses((status = 200, description = "A page of customers", body = CustomerPageView), ListErrors))]
pub(crate) async fn list_customers(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<CustomerPageView>, ApiError> {
    let page = state
        .portal()
        .list_customers(&user.principal.actor(), q.q.as_deref(), &q.page())
        .await?;
    Ok(Json(CustomerPageView {
        items: page.items.iter().map(CustomerView::from).collect(),
        next: page.next,
        per_page: per_page(&state, q.per_page),
    }))
}

/// Direct or partner.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Served by the vendor.
    #[default]
    Direct,
    /// Served by a partner (`partner_name` required).
    Partner,
}

/// A new customer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// `123456789` or `D123456789`.
    #[schema(pattern = r"^\s*(?:[Dd] *)?[0-9]{9}\s*$")]
    pub customer_number: String,
    /// Company name.
    pub name: String,
    /// Product affiliation keys.
    #[serde(default)]
    pub affiliations: Vec<String>,
    /// Direct (default) or partner.
    #[serde(default)]
    pub channel: ChannelKind,
    /// The partner's name (for `partner`).
    pub partner_name: Option<String>,
    /// Entitled areas (default: the whole catalog).
    pub entitlements: Option<Vec<String>>,
    /// Permissions joining users get (default: the configured ones).
    pub default_permissions: Option<Vec<String>>,
}

fn company(field: &str, raw: &str) -> Result<CompanyName, ApiError> {
    CompanyName::parse(raw)
        .map_err(|e| ApiError::with_message(ErrorCode::InvalidRequest, format!("{field}: {e}")))
}

fn permissions(
    raw: Option<&Vec<String>>,
) -> Result<Option<portal_core::permission::PermissionSet>, ApiError> {
    raw.map(|r| {
        permission_set(r).map_err(|_| {
            ApiError::new(ErrorCode::UnknownPermissions).details(serde_json::json!({ "keys": r }))
        })
    })
    .transpose()
}

error_responses!(pub(crate) CreateErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, sets::NUMBER, CustomerError::CODES);

/// Creates a customer.
#[utoipa::path(post, path = "/api/v1/operator/customers", tag = "operator",
    request_body = CreateCustomerRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Created", body = CustomerView), CreateErrors))]
pub(crate) async fn create_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateCustomerRequest>,
) -> Result<Reply, ApiError> {
    let affiliations = body
        .affiliations
        .iter()
        .map(|a| {
            AffiliationKey::parse(a).map_err(|_| {
                ApiError::new(ErrorCode::UnknownAffiliation)
                    .details(serde_json::json!({ "affiliation": a }))
            })
        })
        .collect::<Result<_, _>>()?;
    let channel = match (body.channel, body.partner_name.as_deref()) {
        (ChannelKind::Direct, None) => ServiceChannel::Direct,
        (ChannelKind::Partner, Some(name)) => ServiceChannel::Partner {
            name: company("partner_name", name)?,
        },
        _ => {
            return Err(ApiError::with_message(
                ErrorCode::InvalidRequest,
                "partner_name is required for channel partner and only for it",
            ));
        }
    };
    let cmd = NewCustomer {
        number: customer_number(&body.customer_number)?,
        name: company("name", &body.name)?,
        affiliations,
        channel,
        entitlements: permissions(body.entitlements.as_ref())?,
        default_permissions: permissions(body.default_permissions.as_ref())?,
    };
    let c = state
        .portal()
        .create_customer(&user.principal.actor(), &cmd)
        .await?;
    Ok(Reply::new(StatusCode::CREATED).json(&CustomerView::from(&c)))
}

error_responses!(pub(crate) GetErrors: sets::ALWAYS, sets::SESSION, sets::NUMBER, CustomerError::CODES);

/// One customer.
#[utoipa::path(get, path = "/api/v1/operator/customers/{number}", tag = "operator",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$")),
    security(("session" = [])),
    responses((status = 200, description = "The customer", body = CustomerView), GetErrors))]
pub(crate) async fn get_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
) -> Result<Json<CustomerView>, ApiError> {
    let c = state
        .portal()
        .get_customer(&user.principal.actor(), &number)
        .await?;
    Ok(Json(CustomerView::from(&c)))
}

/// Who of a customer's users must have a second factor.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorPolicyRequest {
    /// `none`, `administrators` or `all_users`.
    pub policy: String,
}

error_responses!(pub(crate) PolicyErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, sets::NUMBER, CustomerError::CODES);

/// Sets who of the customer's users must have a second factor (R22): `none`, `administrators`
/// or `all_users`. Audited; users it covers who have none are led to set one up at their next
/// request (`second_factor_required`). Operators always need one, whatever the policy.
#[utoipa::path(put, path = "/api/v1/operator/customers/{number}/second-factor-policy", tag = "operator",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$")),
    request_body = SecondFactorPolicyRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "The customer", body = CustomerView), PolicyErrors))]
pub(crate) async fn set_second_factor_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
    JsonBody(body): JsonBody<SecondFactorPolicyRequest>,
) -> Result<Json<CustomerView>, ApiError> {
    let policy = SecondFactorPolicy::from_key(&body.policy).ok_or_else(|| {
        ApiError::with_message(
            ErrorCode::InvalidRequest,
            "policy: use none, administrators or all_users",
        )
    })?;
    let c = state
        .portal()
        .set_second_factor_policy(&user.principal.actor(), &number, policy)
        .await?;
    Ok(Json(CustomerView::from(&c)))
}

/// What an import did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportReportView {
    /// New customers.
    pub created: usize,
    /// Customers whose data changed.
    pub updated: usize,
    /// Customers already up to date.
    pub unchanged: usize,
}

error_responses!(pub(crate) ImportErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, CustomerError::CODES);

/// Imports customers from CSV (`number,name,products,channel`; see docs/api.md and
/// [`crate::import`]): creates new numbers, updates existing ones. Every row is checked first; an
/// invalid row imports nothing.
#[utoipa::path(post, path = "/api/v1/operator/customers/import", tag = "operator",
    request_body(content = String, content_type = "text/csv",
        description = "One customer per row: `number,name,products,channel` (a header row naming the columns allows any order); products separated by `;` (or `|`); channel `direct` or `partner:<name>`"),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Imported", body = ImportReportView), ImportErrors))]
pub(crate) async fn import_customers(
    State(state): State<AppState>,
    user: CurrentUser,
    CsvBody(text): CsvBody,
) -> Result<Json<ImportReportView>, ApiError> {
    let rows =
        crate::import::parse_customers(text.as_bytes(), &state.portal().config().affiliations)?;
    let r = state
        .portal()
        .import_customers(&user.principal.actor(), &rows)
        .await?;
    Ok(Json(ImportReportView {
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
    }))
}

/// Filters of the operators' request list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Comma-separated statuses (`awaiting_consent,awaiting_approval,approved,rejected`); by
    /// default the requests an operator can decide now.
    pub status: Option<String>,
    /// Only this customer's requests.
    pub customer_number: Option<String>,
}

error_responses!(pub(crate) RequestsErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, sets::NUMBER, AdminRequestError::CODES, &[ErrorCode::NotFound]);

/// Admin requests for operators.
#[utoipa::path(get, path = "/api/v1/operator/admin-requests", tag = "operator",
    params(RequestQuery),
    security(("session" = [])),
    responses((status = 200, description = "Requests", body = AdminRequestList), RequestsErrors))]
pub(crate) async fn admin_requests(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<RequestQuery>,
) -> Result<Json<AdminRequestList>, ApiError> {
    let statuses = q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            AdminRequestStatus::from_key(s).ok_or_else(|| {
                ApiError::with_message(ErrorCode::InvalidRequest, format!("unknown status {s:?}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let actor = user.principal.actor();
    let customer = match q.customer_number.as_deref() {
        Some(n) => {
            let number = customer_number(n)?;
            Some(
                state
                    .portal()
                    .get_customer(&actor, &number)
                    .await
                    .map_err(|e| match e {
                        CustomerError::Forbidden => ApiError::new(ErrorCode::Forbidden),
                        other => other.into(),
                    })?
                    .id(),
            )
        }
        None => None,
    };
    let list = state
        .portal()
        .operator_admin_requests(&actor, &statuses, customer)
        .await?;
    Ok(Json(AdminRequestList {
        items: list.iter().map(AdminRequestOut::from_view).collect(),
        next: None,
    }))
}

error_responses!(pub(crate) DecideErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::ID, AdminRequestError::CODES);

/// Grants an admin request: the requester becomes an administrator.
#[utoipa::path(post, path = "/api/v1/operator/admin-requests/{id}/approve", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Approved", body = AdminRequestOut), DecideErrors))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    user: CurrentUser,
    AdminRequestPath(rid): AdminRequestPath,
) -> Result<Json<AdminRequestOut>, ApiError> {
    let r = state
        .portal()
        .approve_admin_request(&user.principal.actor(), rid)
        .await?;
    Ok(Json(AdminRequestOut::bare(&r)))
}

/// Refuses an admin request.
#[utoipa::path(post, path = "/api/v1/operator/admin-requests/{id}/reject", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "Request id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Rejected", body = AdminRequestOut), DecideErrors))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    AdminRequestPath(rid): AdminRequestPath,
) -> Result<Json<AdminRequestOut>, ApiError> {
    let r = state
        .portal()
        .reject_admin_request(&user.principal.actor(), rid)
        .await?;
    Ok(Json(AdminRequestOut::bare(&r)))
}

error_responses!(pub(crate) AuditErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, sets::AUDIT);

/// The global change log (events outside any customer: registrations, operators).
#[utoipa::path(get, path = "/api/v1/operator/audit", tag = "operator",
    params(AuditQuery),
    security(("session" = [])),
    responses((status = 200, description = "Entries", body = AuditPageView), AuditErrors))]
pub(crate) async fn global_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    let language = user.principal.user().language();
    let page = state
        .portal()
        .global_audit(&user.principal.actor(), &q.to_core()?, language)
        .await?;
    Ok(Json(audit_page(&state, &q, &page, language)))
}

/// Which chain to verify.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// A customer's chain (default: the global chain).
    pub customer_number: Option<String>,
}

/// The result of a chain verification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChainView {
    /// Whether every entry links to the one before.
    pub valid: bool,
    /// Entries checked (when valid).
    pub entries: Option<u64>,
    /// Hash of the last entry, hex (when valid).
    pub head: Option<String>,
    /// Where and how the chain breaks (when not valid).
    pub problem: Option<String>,
}

error_responses!(pub(crate) VerifyErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, sets::NUMBER, sets::AUDIT);

/// Verifies the hash chain of a customer's change log (or the global one) from its first entry.
/// A broken chain is a result (`valid: false`), not an error.
#[utoipa::path(get, path = "/api/v1/operator/audit/verify", tag = "operator",
    params(VerifyQuery),
    security(("session" = [])),
    responses((status = 200, description = "Verification result", body = ChainView), VerifyErrors))]
pub(crate) async fn verify_chain(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> Result<Json<ChainView>, ApiError> {
    let number = q
        .customer_number
        .as_deref()
        .map(customer_number)
        .transpose()?;
    match state
        .portal()
        .verify_audit_chain(&user.principal.actor(), number.as_ref())
        .await
    {
        Ok(r) => Ok(Json(ChainView {
            valid: true,
            entries: Some(r.entries),
            head: Some(r.head),
            problem: None,
        })),
        Err(AuditError::Broken(b)) => Ok(Json(ChainView {
            valid: false,
            entries: None,
            head: None,
            problem: Some(b.to_string()),
        })),
        Err(e) => Err(e.into()),
    }
}

/// A new operator.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    /// E-mail address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `de` (default) or `en`.
    pub language: Option<String>,
}

/// A new operator account and its one-time setup link.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperatorCreated {
    /// The invited operator.
    pub user: UserView,
    /// The token of the setup link (the invitation page); shown once.
    pub setup_token: String,
    /// The setup link.
    pub setup_url: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

error_responses!(pub(crate) OperatorErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, CustomerError::CODES);

/// Creates an operator account with a one-time setup link (hand it over personally).
#[utoipa::path(post, path = "/api/v1/operator/operators", tag = "operator",
    request_body = CreateOperatorRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Created", body = OperatorCreated), OperatorErrors))]
pub(crate) async fn create_operator(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<CreateOperatorRequest>,
) -> Result<Reply, ApiError> {
    let setup = state
        .portal()
        .create_operator(
            &user.principal.actor(),
            &super::auth::email(&body.email)?,
            &super::auth::person_name("first_name", &body.first_name)?,
            &super::auth::person_name("last_name", &body.last_name)?,
            super::auth::language(body.language.as_deref())?,
        )
        .await?;
    let token = setup.token.expose().to_owned();
    Ok(Reply::new(StatusCode::CREATED).json(&OperatorCreated {
        user: UserView::new(&setup.user, None),
        setup_url: crate::setup_url(state.config().public_url(), &token),
        setup_token: token,
        expires_at: setup.expires_at,
    }))
}

/// An outgoing message that could not be delivered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterView {
    /// Id (requeue it with `POST /api/v1/operator/outbox/{id}/requeue`).
    pub id: uuid::Uuid,
    /// Which kind of message: `mail` (later kinds, e.g. back-channel logout tokens, join it;
    /// a kind written by a newer server version is listed with its own key).
    pub kind: String,
    /// Where it goes: an e-mail address for `mail`, an endpoint for other kinds.
    pub recipient: String,
    /// What it is about, without secrets: a mail's template (`verification_code`,
    /// `invitation`, …); empty for a kind this server version does not know.
    pub summary: String,
    /// Delivery attempts.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<String>,
    /// Written at.
    pub created_at: DateTime<Utc>,
}

/// Dead letters.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    /// Newest first.
    pub items: Vec<DeadLetterView>,
    /// Always null (one page).
    pub next: Option<String>,
}

/// Which dead letters to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this kind (`mail`, …): lower-case letters, digits and `_`, at most 40 characters.
    pub kind: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

impl From<&portal_core::outbox::OutboxEntry> for DeadLetterView {
    fn from(e: &portal_core::outbox::OutboxEntry) -> Self {
        let p = &e.message.payload;
        Self {
            id: e.id().as_uuid(),
            kind: p.kind_key().to_owned(),
            recipient: p.recipient(),
            summary: p.summary(),
            attempts: e.attempts,
            last_error: e.last_error.clone(),
            created_at: e.message.created_at,
        }
    }
}

fn outbox_of(state: &AppState) -> Result<&dyn portal_core::ports::OutboxStore, ApiError> {
    state
        .outbox()
        .ok_or_else(|| ApiError::with_message(ErrorCode::NotFound, "this server has no outbox"))
}

error_responses!(pub(crate) DeadErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, OutboxError::CODES);

/// Outgoing messages of every kind given up after their retries, newest first, optionally of
/// one kind (operators only).
#[utoipa::path(get, path = "/api/v1/operator/outbox/dead-letters", tag = "operator",
    params(DeadLetterQuery),
    security(("session" = [])),
    responses((status = 200, description = "Dead letters", body = DeadLetterList), DeadErrors))]
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let actor = user.principal.actor();
    if !user.principal.user().is_active_operator() {
        return Err(OutboxError::Forbidden.into());
    }
    let outbox = outbox_of(&state)?;
    let limit = q.limit.unwrap_or(100);
    let items = state
        .portal()
        .dead_letters(&actor, outbox, q.kind.as_deref(), limit)
        .await?;
    Ok(Json(DeadLetterList {
        items: items.iter().map(DeadLetterView::from).collect(),
        next: None,
    }))
}

error_responses!(pub(crate) RequeueErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::ID, OutboxError::CODES);

/// Puts a dead letter of any kind back in the queue, due at once with its attempts reset, and
/// records `outbox.requeued` in the change log in the same commit (operators only); 404 if it is
/// not dead.
#[utoipa::path(post, path = "/api/v1/operator/outbox/{id}/requeue", tag = "operator",
    params(("id" = uuid::Uuid, Path, description = "Message id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Queued again"), RequeueErrors))]
pub(crate) async fn requeue(
    State(state): State<AppState>,
    user: CurrentUser,
    MailPath(mid): MailPath,
) -> Result<StatusCode, ApiError> {
    let actor = user.principal.actor();
    if !user.principal.user().is_active_operator() {
        return Err(OutboxError::Forbidden.into());
    }
    let outbox = outbox_of(&state)?;
    state.portal().requeue_outbox(&actor, outbox, mid).await?;
    Ok(StatusCode::NO_CONTENT)
}
