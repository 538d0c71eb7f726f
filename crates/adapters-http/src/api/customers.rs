//! `/api/v1/customers/{number}/*`: a customer's administration, for its administrators and for
//! operators. The core checks that the session's user manages the customer in the path: a
//! customer or user that is not theirs answers 404, exactly like an unknown one.

use super::Reply;
use super::views::{
    AdminRequestList, AdminRequestOut, AuditEntryView, AuditPageView, UserPageView, UserView,
};
use crate::error::{ApiError, Documented, ErrorCode, sets};
use crate::error_responses;
use crate::extract::{ApiQuery, CurrentUser, JsonBody, MaybeJson};
use crate::path::{CustomerPath, CustomerRequestPath, GroupPath, UserPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use portal_core::audit::AuditCategory;
use portal_core::permission::{PermissionKey, PermissionSet};
use portal_core::service::{AdminError, AdminRequestError, AuditListQuery, Invite, PageRequest};
use portal_core::user::User;
use portal_core::values::{CustomerNumber, FreeText, Language};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Paging of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Search text.
    pub q: Option<String>,
    /// Page number from 1 (the first pages; deeper ones follow `next`).
    pub page: Option<u32>,
    /// Rows per page (default 10, at most 100).
    pub per_page: Option<u32>,
    /// The `next` cursor of the previous page (wins over `page`).
    pub cursor: Option<String>,
}

impl ListQuery {
    pub(crate) fn page(&self) -> PageRequest {
        PageRequest {
            size: self.per_page,
            page: self.page,
            cursor: self.cursor.clone(),
        }
    }
}

/// Filters of a change-log page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Search text (details and category labels).
    pub q: Option<String>,
    /// Comma-separated category keys (`user.locked,permissions.changed`).
    pub category: Option<String>,
    /// From this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Page number (only 1; deeper pages follow `next`).
    pub page: Option<u32>,
    /// Rows per page.
    pub per_page: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

impl AuditQuery {
    pub(crate) fn to_core(&self) -> Result<AuditListQuery, ApiError> {
        let categories = self
            .category
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|k| {
                AuditCategory::from_key(k).ok_or_else(|| {
                    ApiError::with_message(
                        ErrorCode::InvalidRequest,
                        format!("unknown category {k:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AuditListQuery {
            search: self.q.clone(),
            categories,
            from: self.from,
            until: self.until,
            page: PageRequest {
                size: self.per_page,
                page: self.page,
                cursor: self.cursor.clone(),
            },
        })
    }
}

pub(crate) fn per_page(state: &AppState, asked: Option<u32>) -> u32 {
    asked.unwrap_or(state.portal().config().default_page_size)
}

pub(crate) fn audit_page(
    state: &AppState,
    q: &AuditQuery,
    page: &portal_core::service::AuditPage,
    language: Language,
) -> AuditPageView {
    AuditPageView {
        items: page
            .items
            .iter()
            .map(|v| AuditEntryView::new(v, language))
            .collect(),
        next: page.next.clone(),
        per_page: per_page(state, q.per_page),
    }
}

fn view(user: &User, number: &CustomerNumber) -> UserView {
    UserView::new(user, Some(number.to_string()))
}

error_responses!(pub(crate) ListErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, sets::NUMBER, AdminError::CODES);

/// The user table: the customer's users, ordered by name, with search and paging.
#[utoipa::path(get, path = "/api/v1/customers/{number}/users", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ListQuery),
    security(("session" = [])),
    responses((status = 200, description = "A page of users", body = UserPageView), ListErrors))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<UserPageView>, ApiError> {
    let page = state
        .portal()
        .list_users(&user.principal.actor(), &number, q.q.as_deref(), &q.page())
        .await?;
    Ok(Json(UserPageView {
        items: page.items.iter().map(|u| view(u, &number)).collect(),
        next: page.next,
        total: page.total,
        total_capped: page.total_capped,
        per_page: per_page(&state, q.per_page),
    }))
}

/// "Benutzer hinzufügen".
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// E-mail address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `de` (default) or `en`.
    pub language: Option<String>,
    /// Permission keys to grant.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// Parses permission keys; malformed ones are refused like keys outside the catalog.
pub(crate) fn permission_set(raw: &[String]) -> Result<PermissionSet, ApiError> {
    let mut bad = Vec::new();
    let mut set = PermissionSet::new();
    for k in raw {
        match PermissionKey::parse(k) {
            Ok(key) => {
                set.insert(key);
            }
            Err(_) => bad.push(k.chars().take(64).collect::<String>()),
        }
    }
    if bad.is_empty() {
        Ok(set)
    } else {
        Err(ApiError::new(ErrorCode::NotGrantable).details(serde_json::json!({ "keys": bad })))
    }
}

error_responses!(pub(crate) InviteErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, sets::NUMBER, AdminError::CODES);

/// Invites a user: an invited account with these permissions and a mailed link.
#[utoipa::path(post, path = "/api/v1/customers/{number}/users", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$")),
    request_body = InviteRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "Invited", body = UserView), InviteErrors))]
pub(crate) async fn invite_user(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
    JsonBody(body): JsonBody<InviteRequest>,
) -> Result<Reply, ApiError> {
    let cmd = Invite {
        email: super::auth::email(&body.email)?,
        first_name: super::auth::person_name("first_name", &body.first_name)?,
        last_name: super::auth::person_name("last_name", &body.last_name)?,
        language: super::auth::language(body.language.as_deref())?,
        permissions: permission_set(&body.permissions)?,
    };
    let invited = state
        .portal()
        .invite_user(&user.principal.actor(), &number, cmd)
        .await?;
    Ok(Reply::new(StatusCode::CREATED).json(&view(&invited, &number)))
}

error_responses!(pub(crate) UserErrors: sets::ALWAYS, sets::SESSION, sets::NUMBER, sets::ID, AdminError::CODES);
error_responses!(pub(crate) UserChangeErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::NUMBER, sets::ID, AdminError::CODES);
error_responses!(pub(crate) UserBodyErrors: sets::ALWAYS, sets::BODY, sets::CSRF, sets::SESSION, sets::NUMBER, sets::ID, AdminError::CODES);

/// One user of the customer.
#[utoipa::path(get, path = "/api/v1/customers/{number}/users/{id}", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [])),
    responses((status = 200, description = "The user", body = UserView), UserErrors))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<Json<UserView>, ApiError> {
    let u = state
        .portal()
        .get_user(&user.principal.actor(), &number, uid)
        .await?;
    Ok(Json(view(&u, &number)))
}

/// "Benutzer löschen": removes the user's access and personal data (the change log keeps a
/// pseudonymous reference).
#[utoipa::path(delete, path = "/api/v1/customers/{number}/users/{id}", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Deleted"), UserChangeErrors))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .delete_user(&user.principal.actor(), &number, uid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One catalog entry as the permission page shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PermissionEntry {
    /// Key.
    pub key: String,
    /// Label (in the viewer's language).
    pub label: String,
    /// Description.
    pub description: String,
    /// Group key, if any.
    pub group: Option<String>,
    /// Whether the user holds it.
    pub granted: bool,
}

/// A user's permissions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PermissionsView {
    /// The user's id.
    pub user_id: uuid::Uuid,
    /// Granted keys.
    pub permissions: Vec<String>,
    /// The catalog, with what the user holds.
    pub catalog: Vec<PermissionEntry>,
}

fn permissions_view(state: &AppState, u: &User, language: Language) -> PermissionsView {
    PermissionsView {
        user_id: u.id().as_uuid(),
        permissions: u.permissions().iter().map(ToString::to_string).collect(),
        catalog: state
            .portal()
            .catalog()
            .permissions()
            .iter()
            .map(|p| PermissionEntry {
                key: p.key.to_string(),
                label: p.label.get(language).to_owned(),
                description: p.description.get(language).to_owned(),
                group: p.group.as_ref().map(ToString::to_string),
                granted: u.permissions().contains(&p.key),
            })
            .collect(),
    }
}

/// A user's permissions, with the catalog.
#[utoipa::path(get, path = "/api/v1/customers/{number}/users/{id}/permissions", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [])),
    responses((status = 200, description = "Permissions", body = PermissionsView), UserErrors))]
pub(crate) async fn get_permissions(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<Json<PermissionsView>, ApiError> {
    let u = state
        .portal()
        .get_user(&user.principal.actor(), &number, uid)
        .await?;
    Ok(Json(permissions_view(
        &state,
        &u,
        user.principal.user().language(),
    )))
}

/// The permissions a user shall have.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    /// Permission keys (replaces the current set).
    pub permissions: Vec<String>,
}

/// "Speichern" on the permission page: replaces the user's permissions.
#[utoipa::path(put, path = "/api/v1/customers/{number}/users/{id}/permissions", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    request_body = PermissionsRequest,
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Saved", body = PermissionsView), UserBodyErrors))]
pub(crate) async fn set_permissions(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
    JsonBody(body): JsonBody<PermissionsRequest>,
) -> Result<Json<PermissionsView>, ApiError> {
    let set = permission_set(&body.permissions)?;
    let u = state
        .portal()
        .set_permissions(&user.principal.actor(), &number, uid, &set)
        .await?;
    Ok(Json(permissions_view(
        &state,
        &u,
        user.principal.user().language(),
    )))
}

error_responses!(pub(crate) GroupErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::NUMBER, sets::ID, AdminError::CODES);

/// "Alle anhaken": grants every permission of a group the customer is entitled to.
#[utoipa::path(post, path = "/api/v1/customers/{number}/users/{id}/permissions/groups/{group}", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id"), ("group" = String, Path, description = "Group key")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Granted", body = PermissionsView), GroupErrors))]
pub(crate) async fn grant_group(
    State(state): State<AppState>,
    user: CurrentUser,
    GroupPath {
        number,
        id: uid,
        group,
    }: GroupPath,
) -> Result<Json<PermissionsView>, ApiError> {
    let u = state
        .portal()
        .grant_group(&user.principal.actor(), &number, uid, &group)
        .await?;
    Ok(Json(permissions_view(
        &state,
        &u,
        user.principal.user().language(),
    )))
}

/// "Alle abhaken": revokes every permission of a group.
#[utoipa::path(delete, path = "/api/v1/customers/{number}/users/{id}/permissions/groups/{group}", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id"), ("group" = String, Path, description = "Group key")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Revoked", body = PermissionsView), GroupErrors))]
pub(crate) async fn revoke_group(
    State(state): State<AppState>,
    user: CurrentUser,
    GroupPath {
        number,
        id: uid,
        group,
    }: GroupPath,
) -> Result<Json<PermissionsView>, ApiError> {
    let u = state
        .portal()
        .revoke_group(&user.principal.actor(), &number, uid, &group)
        .await?;
    Ok(Json(permissions_view(
        &state,
        &u,
        user.principal.user().language(),
    )))
}

/// Why a user is locked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    /// An optional reason (1–2000 characters).
    pub reason: Option<String>,
}

/// "Benutzer sperren": the user can no longer log in, and every session ends at once.
#[utoipa::path(post, path = "/api/v1/customers/{number}/users/{id}/lock", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    request_body(content = Option<LockRequest>, description = "Optional"),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Locked", body = UserView), UserBodyErrors))]
pub(crate) async fn lock(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
    MaybeJson(body): MaybeJson<LockRequest>,
) -> Result<Json<UserView>, ApiError> {
    let reason = body
        .reason
        .as_deref()
        .map(FreeText::parse)
        .transpose()
        .map_err(|e| ApiError::with_message(ErrorCode::InvalidRequest, format!("reason: {e}")))?;
    let u = state
        .portal()
        .lock_user(&user.principal.actor(), &number, uid, reason.as_ref())
        .await?;
    Ok(Json(view(&u, &number)))
}

/// "Benutzer entsperren": login works again (old sessions stay ended).
#[utoipa::path(delete, path = "/api/v1/customers/{number}/users/{id}/lock", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Unlocked", body = UserView), UserChangeErrors))]
pub(crate) async fn unlock(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<Json<UserView>, ApiError> {
    let u = state
        .portal()
        .unlock_user(&user.principal.actor(), &number, uid)
        .await?;
    Ok(Json(view(&u, &number)))
}

/// Activates a user who waits for the administrator.
#[utoipa::path(post, path = "/api/v1/customers/{number}/users/{id}/activate", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Activated", body = UserView), UserChangeErrors))]
pub(crate) async fn activate(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<Json<UserView>, ApiError> {
    let u = state
        .portal()
        .activate_user(&user.principal.actor(), &number, uid)
        .await?;
    Ok(Json(view(&u, &number)))
}

/// Sends an invited user a fresh invitation link (older links stop working).
#[utoipa::path(post, path = "/api/v1/customers/{number}/users/{id}/invitation", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 202, description = "Sent"), UserChangeErrors))]
pub(crate) async fn resend_invitation(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .resend_invitation(&user.principal.actor(), &number, uid)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Takes administrator rights away (stepping down, or demoting another administrator).
#[utoipa::path(delete, path = "/api/v1/customers/{number}/users/{id}/admin-rights", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Revoked", body = UserView), UserChangeErrors))]
pub(crate) async fn revoke_admin_rights(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<Json<UserView>, ApiError> {
    let u = state
        .portal()
        .revoke_admin_rights(&user.principal.actor(), &number, uid)
        .await?;
    Ok(Json(view(&u, &number)))
}

/// Ends every session of a user (e.g. a lost laptop) without locking.
#[utoipa::path(delete, path = "/api/v1/customers/{number}/users/{id}/sessions", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "Ended"), UserChangeErrors))]
pub(crate) async fn end_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
) -> Result<StatusCode, ApiError> {
    state
        .portal()
        .end_user_sessions(&user.principal.actor(), &number, uid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

error_responses!(pub(crate) AuditErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, sets::NUMBER, sets::AUDIT);
error_responses!(pub(crate) UserAuditErrors: sets::ALWAYS, sets::QUERY, sets::SESSION, sets::NUMBER, sets::ID, sets::AUDIT);

/// A user's change log, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{number}/users/{id}/audit", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id"), AuditQuery),
    security(("session" = [])),
    responses((status = 200, description = "Entries", body = AuditPageView), UserAuditErrors))]
pub(crate) async fn user_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id: uid }: UserPath,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    let language = user.principal.user().language();
    let page = state
        .portal()
        .user_audit(
            &user.principal.actor(),
            &number,
            uid,
            &q.to_core()?,
            language,
        )
        .await?;
    Ok(Json(audit_page(&state, &q, &page, language)))
}

/// The customer's change log, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{number}/audit", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), AuditQuery),
    security(("session" = [])),
    responses((status = 200, description = "Entries", body = AuditPageView), AuditErrors))]
pub(crate) async fn customer_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    let language = user.principal.user().language();
    let page = state
        .portal()
        .customer_audit(&user.principal.actor(), &number, &q.to_core()?, language)
        .await?;
    Ok(Json(audit_page(&state, &q, &page, language)))
}

error_responses!(pub(crate) AuditExportErrors: sets::ALWAYS, sets::SESSION, sets::NUMBER, sets::AUDIT_EXPORT);

/// The customer's whole change log as a file that can be checked outside Portal: JSON Lines (a
/// header with the published signing keys, one line per entry with its chain hashes, and last the
/// chain's head signed as an RS256 JWT with the OpenID Connect signing key). `portal audit verify
/// FILE` checks it offline and names the first entry that does not fit. For the customer's
/// administrators (and operators); a stored chain that is broken is not exported (409
/// `chain_broken`).
#[utoipa::path(get, path = "/api/v1/customers/{number}/audit/export", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$")),
    security(("session" = [])),
    responses((status = 200, description = "JSON Lines: `header`, `entry` lines in chain order, `head` (see docs/api.md, \"Change-log export\")", body = String, content_type = "application/jsonl",
        headers(("content-disposition" = String, description = "`attachment; filename=\"audit-<number>.jsonl\"`"))),
        AuditExportErrors))]
pub(crate) async fn export_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let body = state
        .portal()
        .export_customer_audit(&user.principal.actor(), &number)
        .await?;
    let disposition = format!("attachment; filename=\"audit-{}.jsonl\"", number.as_str());
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/jsonl".to_owned(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    ))
}

error_responses!(pub(crate) RequestsErrors: sets::ALWAYS, sets::SESSION, sets::NUMBER, AdminRequestError::CODES);

/// The customer's admin requests (those awaiting consent need an administrator's word).
#[utoipa::path(get, path = "/api/v1/customers/{number}/admin-requests", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$")),
    security(("session" = [])),
    responses((status = 200, description = "Requests", body = AdminRequestList), RequestsErrors))]
pub(crate) async fn admin_requests(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerPath(number): CustomerPath,
) -> Result<Json<AdminRequestList>, ApiError> {
    let list = state
        .portal()
        .customer_admin_requests(&user.principal.actor(), &number)
        .await?;
    Ok(Json(AdminRequestList {
        items: list.iter().map(AdminRequestOut::from_view).collect(),
        next: None,
    }))
}

error_responses!(pub(crate) DecideErrors: sets::ALWAYS, sets::NO_BODY, sets::CSRF, sets::SESSION, sets::NUMBER, sets::ID, AdminRequestError::CODES);

/// An administrator consents to a colleague's request; operators decide next.
#[utoipa::path(post, path = "/api/v1/customers/{number}/admin-requests/{id}/consent", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "Request id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Consented", body = AdminRequestOut), DecideErrors))]
pub(crate) async fn consent(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerRequestPath { number, id: rid }: CustomerRequestPath,
) -> Result<Json<AdminRequestOut>, ApiError> {
    let r = state
        .portal()
        .consent_admin_request(&user.principal.actor(), &number, rid)
        .await?;
    Ok(Json(AdminRequestOut::bare(&r)))
}

/// An administrator declines a colleague's request.
#[utoipa::path(post, path = "/api/v1/customers/{number}/admin-requests/{id}/decline", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "Request id")),
    security(("session" = [], "csrf" = [])),
    responses((status = 200, description = "Declined", body = AdminRequestOut), DecideErrors))]
pub(crate) async fn decline(
    State(state): State<AppState>,
    user: CurrentUser,
    CustomerRequestPath { number, id: rid }: CustomerRequestPath,
) -> Result<Json<AdminRequestOut>, ApiError> {
    let r = state
        .portal()
        .decline_admin_request(&user.principal.actor(), &number, rid)
        .await?;
    Ok(Json(AdminRequestOut::bare(&r)))
}
