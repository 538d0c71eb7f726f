//! A person's data export (GDPR Art. 15 and 20): `GET /api/v1/me/export` (the person's own) and
//! `GET /api/v1/customers/{number}/users/{id}/export` (an administrator's, holding what the
//! portal shows the administrator). Both answer one JSON file as an attachment; the shape is
//! [`portal_core::data_export`], mirrored here for the OpenAPI document.

use crate::error::{ApiError, Documented, sets};
use crate::error_responses;
use crate::extract::CurrentUser;
use crate::path::UserPath;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use portal_core::data_export as core;
use portal_core::service::ExportError;
use serde::Serialize;
use utoipa::ToSchema;

/// For whom the file was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportScopeView {
    /// The person themselves: everything Portal holds about them.
    #[serde(rename = "self")]
    Own,
    /// An administrator of the person's customer: what the portal shows the administrator.
    Administrator,
}

/// Everything Portal holds about a person (or, for an administrator, what the portal shows
/// them), as one file. Never holds a secret (password hash, authenticator seed, recovery-code
/// hash, passkey credential, session token).
#[derive(Debug, Serialize, ToSchema)]
pub struct DataExportView {
    /// `portal-data-export-v1`.
    pub format: String,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// For whom.
    pub scope: ExportScopeView,
    /// The account.
    pub profile: ExportProfileView,
    /// The customer the account is linked to.
    pub customer: Option<ExportCustomerView>,
    /// Permissions held, with when and by whom each was granted as far as the change log says.
    pub permissions: Vec<ExportPermissionView>,
    /// Sessions and remembered devices, newest first.
    pub sessions: Vec<ExportSessionView>,
    /// Second factors and recovery settings: kinds and dates.
    pub second_factors: Vec<ExportFactorView>,
    /// Requests for admin rights, newest first.
    pub admin_requests: Vec<ExportAdminRequestView>,
    /// Applications signed in to (empty in an administrator's export).
    pub applications: Vec<ExportApplicationView>,
    /// Change-log entries about the person, newest first.
    pub change_log: Vec<ExportLogEntryView>,
}

/// The account.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportProfileView {
    /// User id.
    pub id: String,
    /// Login and contact address.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// `de` or `en`.
    pub language: String,
    /// `employee`, `administrator` or `operator`.
    pub role: String,
    /// `invited`, `pending_activation`, `active` or `locked`.
    pub status: String,
    /// Product affiliation.
    pub affiliation: Option<String>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// The administrator's lock.
    pub lock: Option<ExportLockView>,
}

/// An administrator's lock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportLockView {
    /// Locked at.
    pub at: DateTime<Utc>,
    /// By whom (name).
    pub by: String,
    /// The reason given.
    pub reason: Option<String>,
}

/// The customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportCustomerView {
    /// `D` + nine digits.
    pub number: String,
    /// Company name.
    pub name: String,
}

/// A permission held.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportPermissionView {
    /// Catalog key.
    pub key: String,
    /// Its name in the person's language.
    pub label: String,
    /// When last granted, if the change log records it.
    pub granted_at: Option<DateTime<Utc>>,
    /// By whom (name), if the change log records it.
    pub granted_by: Option<String>,
}

/// A session or remembered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportSessionView {
    /// Session id (not the token).
    pub id: String,
    /// `full`, `mfa_pending` or `remembered_device`.
    pub kind: String,
    /// Started at.
    pub created_at: DateTime<Utc>,
    /// Last request seen.
    pub last_seen_at: DateTime<Utc>,
    /// Ends then at the latest.
    pub expires_at: DateTime<Utc>,
    /// How the person authenticated (`pwd`, `otp`, …).
    pub methods: Vec<String>,
    /// Client address (only in the person's own export).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// User agent (only in the person's own export).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A second factor or recovery setting.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportFactorView {
    /// `totp`, `sms`, `voice`, `passkey`, `recovery_code`, `recovery_phone`, `recovery_email`.
    pub kind: String,
    /// Set up at, where stored.
    pub created_at: Option<DateTime<Utc>>,
    /// Last used at (passkeys).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Passkey name, phone number or recovery address (only in the person's own export).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A request for admin rights.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportAdminRequestView {
    /// Request id.
    pub id: String,
    /// `awaiting_consent`, `awaiting_approval`, `approved` or `rejected`.
    pub status: String,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// Last step at.
    pub updated_at: DateTime<Utc>,
    /// The administrator who consented (name).
    pub consented_by: Option<String>,
    /// Who decided (name).
    pub decided_by: Option<String>,
}

/// An application signed in to (OpenID Connect grant).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportApplicationView {
    /// Client id.
    pub client_id: String,
    /// Its name, while registered.
    pub name: Option<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Granted at.
    pub created_at: DateTime<Utc>,
    /// Revoked at.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A change-log entry about the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportLogEntryView {
    /// When.
    pub at: DateTime<Utc>,
    /// Category key.
    pub category: String,
    /// Category label in the person's language.
    pub label: String,
    /// Details (no personal data, no secrets).
    pub details: String,
    /// Who did it (name; vendor staff as such).
    pub actor: String,
    /// `customer` or `global`.
    pub chain: String,
    /// Position in that chain.
    pub seq: u64,
}

impl From<core::DataExport> for DataExportView {
    fn from(e: core::DataExport) -> Self {
        Self {
            format: e.format,
            generated_at: e.generated_at,
            scope: match e.scope {
                core::ExportScope::Own => ExportScopeView::Own,
                core::ExportScope::Administrator => ExportScopeView::Administrator,
            },
            profile: ExportProfileView {
                id: e.profile.id,
                email: e.profile.email,
                first_name: e.profile.first_name,
                last_name: e.profile.last_name,
                language: e.profile.language,
                role: e.profile.role,
                status: e.profile.status,
                affiliation: e.profile.affiliation,
                created_at: e.profile.created_at,
                updated_at: e.profile.updated_at,
                last_login_at: e.profile.last_login_at,
                lock: e.profile.lock.map(|l| ExportLockView {
                    at: l.at,
                    by: l.by,
                    reason: l.reason,
                }),
            },
            customer: e.customer.map(|c| ExportCustomerView {
                number: c.number,
                name: c.name,
            }),
            permissions: e
                .permissions
                .into_iter()
                .map(|p| ExportPermissionView {
                    key: p.key,
                    label: p.label,
                    granted_at: p.granted_at,
                    granted_by: p.granted_by,
                })
                .collect(),
            sessions: e
                .sessions
                .into_iter()
                .map(|s| ExportSessionView {
                    id: s.id,
                    kind: s.kind,
                    created_at: s.created_at,
                    last_seen_at: s.last_seen_at,
                    expires_at: s.expires_at,
                    methods: s.methods,
                    ip: s.ip,
                    user_agent: s.user_agent,
                })
                .collect(),
            second_factors: e
                .second_factors
                .into_iter()
                .map(|f| ExportFactorView {
                    kind: f.kind,
                    created_at: f.created_at,
                    last_used_at: f.last_used_at,
                    label: f.label,
                })
                .collect(),
            admin_requests: e
                .admin_requests
                .into_iter()
                .map(|r| ExportAdminRequestView {
                    id: r.id,
                    status: r.status,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    consented_by: r.consented_by,
                    decided_by: r.decided_by,
                })
                .collect(),
            applications: e
                .applications
                .into_iter()
                .map(|a| ExportApplicationView {
                    client_id: a.client_id,
                    name: a.name,
                    scopes: a.scopes,
                    created_at: a.created_at,
                    revoked_at: a.revoked_at,
                })
                .collect(),
            change_log: e
                .change_log
                .into_iter()
                .map(|l| ExportLogEntryView {
                    at: l.at,
                    category: l.category,
                    label: l.label,
                    details: l.details,
                    actor: l.actor,
                    chain: l.chain,
                    seq: l.seq,
                })
                .collect(),
        }
    }
}

/// The file as a download: JSON, `Content-Disposition: attachment`, never cached. Shared by the
/// API and the web pages' download buttons.
pub(crate) fn download(export: core::DataExport) -> Response {
    let name = format!(
        "attachment; filename=\"portal-data-{}.json\"",
        export.profile.id
    );
    let body = serde_json::to_vec_pretty(&DataExportView::from(export)).unwrap_or_default();
    (
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

error_responses!(pub(crate) MyExportErrors: sets::ALWAYS, sets::SESSION, ExportError::CODES);

/// "Meine Daten herunterladen": everything Portal holds about the logged-in user, as one JSON
/// file (GDPR Art. 15 and 20). Needs a fresh authentication (a login or
/// `POST /api/v1/auth/reauthenticate` within the last 15 minutes; `403 reauth_required`
/// otherwise). At most 5 exports of a person a day (`429 throttled`). Each export is written to
/// the change log and the user is mailed.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "me",
    security(("session" = [])),
    responses((status = 200, description = "The file (attachment)", body = DataExportView,
        content_type = "application/json"), MyExportErrors))]
pub(crate) async fn export_mine(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, ApiError> {
    let export = state.portal().export_my_data(&user.principal).await?;
    Ok(download(export))
}

error_responses!(pub(crate) UserExportErrors: sets::ALWAYS, sets::SESSION, sets::NUMBER, sets::ID, ExportError::CODES);

/// An administrator's export of a user of their customer: what the portal shows the
/// administrator about the user (no session addresses or devices, no phone numbers or recovery
/// channels, no applications, only the customer's change log), as one JSON file. Needs a fresh
/// authentication of the administrator; at most 5 exports of a person and 100 by an
/// administrator a day. Written to the change log; the user is mailed.
#[utoipa::path(get, path = "/api/v1/customers/{number}/users/{id}/export", tag = "customers",
    params(("number" = String, Path, description = "Customer number: nine digits, optionally with a leading `D`", pattern = r"^[Dd]?[0-9]{9}$"), ("id" = uuid::Uuid, Path, description = "User id")),
    security(("session" = [])),
    responses((status = 200, description = "The file (attachment)", body = DataExportView,
        content_type = "application/json"), UserExportErrors))]
pub(crate) async fn export_user(
    State(state): State<AppState>,
    user: CurrentUser,
    UserPath { number, id }: UserPath,
) -> Result<Response, ApiError> {
    let export = state
        .portal()
        .export_user_data(&user.principal, &number, id)
        .await?;
    Ok(download(export))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The documented mirror serialises exactly like the core's file: they cannot drift.
    #[test]
    fn the_view_serialises_exactly_like_the_core_export() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        let export = core::DataExport {
            format: core::FORMAT.to_owned(),
            generated_at: at,
            scope: core::ExportScope::Own,
            profile: core::ExportProfile {
                id: "u".into(),
                email: "a@example.com".into(),
                first_name: "A".into(),
                last_name: "B".into(),
                language: "de".into(),
                role: "employee".into(),
                status: "locked".into(),
                affiliation: Some("de-business".into()),
                created_at: at,
                updated_at: at,
                last_login_at: Some(at),
                lock: Some(core::ExportLock {
                    at,
                    by: "C D".into(),
                    reason: Some("why".into()),
                }),
            },
            customer: Some(core::ExportCustomer {
                number: "D123456789".into(),
                name: "Firma".into(),
            }),
            permissions: vec![core::ExportPermission {
                key: "docs".into(),
                label: "Belege".into(),
                granted_at: Some(at),
                granted_by: Some("C D".into()),
            }],
            sessions: vec![
                core::ExportSession {
                    id: "s".into(),
                    kind: "full".into(),
                    created_at: at,
                    last_seen_at: at,
                    expires_at: at,
                    methods: vec!["pwd".into()],
                    ip: Some("192.0.2.1".into()),
                    user_agent: Some("ua".into()),
                },
                core::ExportSession {
                    id: "t".into(),
                    kind: "remembered_device".into(),
                    created_at: at,
                    last_seen_at: at,
                    expires_at: at,
                    methods: vec![],
                    ip: None,
                    user_agent: None,
                },
            ],
            second_factors: vec![core::ExportFactor {
                kind: "passkey".into(),
                created_at: Some(at),
                last_used_at: None,
                label: Some("Laptop".into()),
            }],
            admin_requests: vec![core::ExportAdminRequest {
                id: "r".into(),
                status: "approved".into(),
                created_at: at,
                updated_at: at,
                consented_by: None,
                decided_by: Some("Portal staff".into()),
            }],
            applications: vec![core::ExportApplication {
                client_id: "crm".into(),
                name: Some("CRM".into()),
                scopes: vec!["openid".into()],
                created_at: at,
                revoked_at: None,
            }],
            change_log: vec![core::ExportLogEntry {
                at,
                category: "user.locked".into(),
                label: "Benutzer gesperrt".into(),
                details: String::new(),
                actor: "C D".into(),
                chain: "customer".into(),
                seq: 3,
            }],
        };
        let core_json = serde_json::to_value(&export).unwrap();
        let view_json = serde_json::to_value(DataExportView::from(export)).unwrap();
        assert_eq!(core_json, view_json);
    }
}
