//! One error shape for every answer that is not a success:
//! `{"error": {"code": "...", "message": "...", "details": {...}, "request_id": "..."}}`.
//!
//! Everything about a code lives in one place, the table of [`ErrorCode`]: its HTTP status, its
//! stable snake_case name (clients branch on it, never on messages) and its description (for the
//! OpenAPI document and `docs/api.md`, which a test keeps equal to the table). The core's errors
//! map to codes through `error_mapping!` blocks, one per error type: each arm names a variant
//! and its code, and the same arms generate both the `From` impl (an exhaustive `match`, so a new
//! core variant does not compile until it has a code) and the type's [`Documented::CODES`] for
//! the OpenAPI document, so the two cannot drift.
//!
//! [`ApiError`]'s `IntoResponse` renders the body and attaches an [`ErrorReport`] to the response;
//! it does not log. The router's error layer ([`complete_error_responses`]) runs inside the
//! request's span: it logs server errors with their internal message, writes the request id into
//! the body and turns a `retry_at` into `Retry-After` by the portal's clock.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use portal_core::challenge::CodeError;
use portal_core::error::InfraError;
use portal_core::password::PasswordError;
use portal_core::ports::StoreError;
use portal_core::service::{
    AdminError, AdminRequestError, AuditError, AuthError, ContactError, CustomerError, ExportError,
    InvitationError, LinkError, LoginError, MfaError, OidcAdminError, OutboxError, PagingError,
    ProfileError, RegisterError, ResendError, ResetError, SessionError, VerifyError,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use tower_http::request_id::RequestId;
use utoipa::ToSchema;
use utoipa::openapi::{Content, RefOr, Response as OaResponse, Schema};

/// Generates [`ErrorCode`] from its table: one line per code with status, name and description.
macro_rules! error_codes {
    ($( $variant:ident = $status:literal, $name:literal, $desc:literal; )*) => {
        /// Every error code of the API, with its HTTP status ([`status`](Self::status)), its
        /// stable name ([`as_str`](Self::as_str)) and what it means
        /// ([`description`](Self::description)).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $(
                #[doc = $desc]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every code, in the order of the table (and of `docs/api.md`).
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The HTTP status as a number.
            #[must_use]
            pub const fn status_u16(self) -> u16 {
                match self { $(Self::$variant => $status,)* }
            }

            /// The stable snake_case name clients branch on.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// What the code means (the API documentation's text, and the default message).
            #[must_use]
            pub const fn description(self) -> &'static str {
                match self { $(Self::$variant => $desc,)* }
            }
        }
    };
}

error_codes! {
    // --- the request itself ---
    InvalidRequest = 400, "invalid_request", "A field is missing, has the wrong type or an invalid value, or a query or path parameter is invalid.";
    MalformedJson = 400, "malformed_json", "The body is not valid JSON.";
    UnknownField = 400, "unknown_field", "The body has a field the endpoint does not know.";
    InvalidCustomerNumber = 400, "invalid_customer_number", "A customer number is not nine digits (optionally printed as D + nine digits).";
    InvalidId = 400, "invalid_id", "An id in the path is not a UUID (for an application: not a client id).";
    PayloadTooLarge = 413, "payload_too_large", "The body is larger than the configured limit.";
    UnsupportedMediaType = 415, "unsupported_media_type", "The body is not `application/json` (or `text/csv` for the customer import).";
    MethodNotAllowed = 405, "method_not_allowed", "The endpoint does not support this method.";
    NotFound = 404, "not_found", "No such resource, or one that is not yours (answered exactly like an unknown one).";
    CsrfFailed = 403, "csrf_failed", "A cookie-authenticated unsafe request without the right `X-CSRF-Token`, or from another site (`Origin`, `Sec-Fetch-Site`).";
    RateLimited = 429, "rate_limited", "Too many requests from this address; see `Retry-After`.";
    Unauthenticated = 401, "unauthenticated", "No valid session (missing, expired, ended, or the user was locked or deleted).";
    Forbidden = 403, "forbidden", "The session's user may not do this.";
    Conflict = 409, "conflict", "Concurrent changes; try again.";
    Internal = 500, "internal", "Something failed on the server; the `request_id` is in the log.";
    Unavailable = 503, "unavailable", "A backend (database, legacy directory) is unreachable; try again later.";
    // --- login and codes ---
    InvalidCredentials = 401, "invalid_credentials", "Wrong e-mail or password (also for unknown, locked and unfinished accounts).";
    Throttled = 429, "throttled", "Too many failed attempts (login, second factor, customer number), or a daily send budget spent (messages to administrators, invitations, data exports); `details.retry_at` and `Retry-After` say when to try again.";
    NoPendingLogin = 401, "no_pending_login", "No pending second step (missing, expired, finished or used up): log in again.";
    MfaRequired = 400, "mfa_required", "The account has a second factor: give `factor` too.";
    InvalidTicket = 400, "invalid_ticket", "The registration or e-mail-change ticket is unknown or expired.";
    MalformedCode = 400, "malformed_code", "The code has the wrong form (no try was used up).";
    InvalidCode = 400, "invalid_code", "Wrong code; a try was used up.";
    CodeAlreadyUsed = 400, "code_already_used", "The authenticator app's code was already used; wait for the next one (a try was used up).";
    CodeExpired = 400, "code_expired", "The code expired; ask for a new one.";
    TooManyAttempts = 400, "too_many_attempts", "Too many wrong codes; ask for a new code (or log in again).";
    TooSoon = 429, "too_soon", "Too soon for another code; `details.retry_at` and `Retry-After` say when.";
    TooManyCodes = 400, "too_many_codes", "This registration has used up its codes; register again.";
    InvitationInvalid = 400, "invitation_invalid", "The invitation behind this registration is no longer valid.";
    AlreadyRegistered = 409, "already_registered", "The address was registered meanwhile; log in or reset the password.";
    InvitationExpired = 410, "invitation_expired", "The invitation link expired; ask the administrator for a new one.";
    InvitationUsed = 410, "invitation_used", "The invitation link was used already.";
    InvalidLink = 400, "invalid_link", "The reset link is malformed, unknown or revoked.";
    LinkExpired = 410, "link_expired", "The reset link expired; ask for a new one.";
    LinkUsed = 410, "link_used", "The reset link was used already.";
    PasswordPolicy = 422, "password_policy", "The new password breaks the policy; `details.rule` says which rule (`too_short`, `too_long`, `blocklisted`, `contains_personal_data`, `confirmation_mismatch`).";
    WrongPassword = 400, "wrong_password", "The current password is wrong.";
    SecondFactorRequired = 403, "second_factor_required", "This account must have a second factor (every operator; a customer's administrators or all its users when an operator requires it) and has none yet: set one up under `/api/v1/me/mfa` (after `POST /api/v1/auth/reauthenticate` if the login is older than 15 minutes); every other endpoint but logout answers this until then.";
    ReauthRequired = 403, "reauth_required", "A sensitive change needs a fresh authentication: `POST /api/v1/auth/reauthenticate` first.";
    // --- profile ---
    EmailUnavailable = 409, "email_unavailable", "The address cannot be used (it has an account).";
    SameEmail = 409, "same_email", "The new address is the current one.";
    // --- second factors ---
    NoSuchFactor = 400, "no_such_factor", "The account has no such factor (or no code was sent for it).";
    MfaAlreadyEnabled = 409, "mfa_already_enabled", "An authenticator app is set up already; remove it first.";
    MfaNotEnabled = 409, "mfa_not_enabled", "No second factor is set up.";
    NoSetupInProgress = 409, "no_setup_in_progress", "No factor setup in progress (or it expired); start again.";
    FactorUnavailable = 422, "factor_unavailable", "This server cannot offer this factor (no MFA key or no phone gateway).";
    SendFailed = 502, "send_failed", "The phone gateway failed; try again.";
    SamePhone = 422, "same_phone", "The recovery phone must differ from the MFA phone.";
    // --- passkeys ---
    PasskeyRefused = 400, "passkey_refused", "The passkey's answer was refused and nothing changed; `details.reason` says why: `malformed`, `wrong_origin` (made for another origin than the server's public URL), `wrong_relying_party`, `wrong_challenge`, `user_not_verified`, `counter_not_increased` (a cloned authenticator or a replayed answer), `unknown_credential` (not a passkey of this account), `already_registered` (adding a passkey the account has), `invalid` (signature).";
    PasskeyChallengeInvalid = 400, "passkey_challenge_invalid", "The passkey request is unknown, was answered already, expired (after 5 minutes) or is another user's: start again.";
    PasskeyLimit = 409, "passkey_limit", "The account has the most passkeys allowed (20); remove one first.";
    InvalidPasskeyName = 422, "invalid_passkey_name", "A passkey name has 1 to 60 characters and no control, invisible or text-direction characters.";
    LastFactor = 409, "last_factor", "The last second factor of an account that must have one cannot be removed; set up another first.";
    // --- onboarding ---
    CustomerNotFound = 404, "customer_not_found", "No customer with this number.";
    UnknownAffiliation = 422, "unknown_affiliation", "The affiliation is not one of the configured ones.";
    AffiliationRequired = 409, "affiliation_required", "Choose the product affiliation first.";
    AffiliationMismatch = 422, "affiliation_mismatch", "The customer does not belong to your product affiliation.";
    AlreadyLinked = 409, "already_linked", "The account is linked to a customer already.";
    InvalidLegacyCredentials = 400, "invalid_legacy_credentials", "Unknown username or wrong password of the old account.";
    LegacyAlreadyLinked = 409, "legacy_already_linked", "The old account was linked before (once only).";
    // --- admin requests, contact ---
    NotEligible = 409, "not_eligible", "Only active users linked to a customer can ask for admin rights.";
    AlreadyAdmin = 409, "already_admin", "The user is an administrator already.";
    AlreadyRequested = 409, "already_requested", "There is an open admin request already.";
    WrongState = 409, "wrong_state", "Not possible in the current state; `details.status` says which.";
    RequesterIneligible = 409, "requester_ineligible", "The requester can no longer become an administrator.";
    NotLinked = 409, "not_linked", "The account is not linked to a customer.";
    NoAdmin = 409, "no_admin", "The customer has no administrator yet.";
    // --- user administration ---
    NotGrantable = 422, "not_grantable", "Permissions outside the catalog or the customer's entitlements; `details.keys` lists them.";
    UnknownGroup = 404, "unknown_group", "No permission group with this key.";
    LastAdmin = 409, "last_admin", "The customer would be left without an administrator.";
    AlreadyMember = 409, "already_member", "The address belongs to a user of this customer already.";
    InvalidCursor = 400, "invalid_cursor", "The cursor was not issued by this list.";
    InvalidPageSize = 400, "invalid_page_size", "`per_page` must be between 1 and `details.max`.";
    PageOutOfRange = 400, "page_out_of_range", "Page 0, or a page too deep for page numbers: follow the `next` cursor.";
    ChainBroken = 409, "chain_broken", "The audit chain is broken: entries were altered, removed or reordered in storage. Only the change-log export answers it (a broken chain is never signed); `GET /api/v1/operator/audit/verify` reports a broken chain as its result (`valid: false`).";
    // --- customers ---
    NumberTaken = 409, "number_taken", "A customer with this number exists already.";
    UnknownPermissions = 422, "unknown_permissions", "Permission keys not in the catalog (or defaults outside the entitlements); `details.keys` lists them.";
    InvalidRow = 422, "invalid_row", "An import row is invalid (`details.row`, `details.reason`; every problem in `details.problems`); nothing was imported.";
}

impl ErrorCode {
    /// The HTTP status.
    #[must_use]
    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.status_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The codes an error type can answer with, for the OpenAPI document. Generated by
/// `error_mapping!` from the same arms as the type's `From` impl.
pub trait Documented {
    /// The codes, each once.
    const CODES: &'static [ErrorCode];
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorObject {
    /// Stable snake_case code (see docs/api.md).
    pub code: String,
    /// Human-readable text (English; may change, do not parse).
    pub message: String,
    /// Code-specific details (the password rule, `retry_at`, the refused keys, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// The request's id (also in the `X-Request-Id` header and the server log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error answer. Handlers return `Result<_, ApiError>`; every core error converts into it.
/// (Boxed: it travels in every `Result` of the crate.)
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    code: ErrorCode,
    message: Cow<'static, str>,
    details: Option<Value>,
    retry_after: Option<u64>,
    retry_at: Option<DateTime<Utc>>,
    /// What is logged for server errors (never sent).
    internal: Option<String>,
}

impl ApiError {
    /// An error with the code's own description as message.
    #[must_use]
    pub fn new(code: ErrorCode) -> Self {
        Self(Box::new(Inner {
            code,
            message: Cow::Borrowed(code.description()),
            details: None,
            retry_after: None,
            retry_at: None,
            internal: None,
        }))
    }

    /// An error with a specific message.
    #[must_use]
    pub fn with_message(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code).message(message)
    }

    /// Replaces the message.
    #[must_use]
    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.0.message = message.into();
        self
    }

    /// Adds details.
    #[must_use]
    pub fn details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// Adds a `Retry-After` in seconds.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds.max(1));
        self
    }

    /// A throttle answer until `retry_at`: `details.retry_at`, and a `Retry-After` that the
    /// router's error layer computes by the portal's clock.
    #[must_use]
    pub fn retry_at(mut self, retry_at: DateTime<Utc>) -> Self {
        self.0.retry_at = Some(retry_at);
        self.details(json!({ "retry_at": retry_at }))
    }

    /// An internal error with a message for the log.
    #[must_use]
    pub fn internal(log: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal).log(log)
    }

    /// Adds what the log shows for this error (never sent to the client).
    #[must_use]
    pub fn log(mut self, text: impl Into<String>) -> Self {
        self.0.internal = Some(text.into());
        self
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The details, if any.
    #[must_use]
    pub fn details_value(&self) -> Option<&Value> {
        self.0.details.as_ref()
    }

    /// Attaches this error to a response rendered otherwise (a page of the web UI), so that the
    /// router's error layer logs it like an API answer.
    pub fn attach(self, response: &mut Response) {
        let report = self.into_report(false);
        response.extensions_mut().insert(report);
    }

    fn into_report(self, json: bool) -> ErrorReport {
        let e = *self.0;
        ErrorReport {
            code: e.code,
            internal: e.internal,
            retry_at: e.retry_at,
            body: json.then(|| ErrorBody {
                error: ErrorObject {
                    code: e.code.as_str().to_owned(),
                    message: e.message.into_owned(),
                    details: e.details,
                    request_id: None,
                },
            }),
            retry_after: e.retry_after,
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code)
    }
}

/// What the router's error layer ([`complete_error_responses`]) learns about an error answer:
/// attached to the response's extensions by [`ApiError`]'s `IntoResponse` (and by the web UI's
/// error pages through [`ApiError::attach`]).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    code: ErrorCode,
    internal: Option<String>,
    retry_at: Option<DateTime<Utc>>,
    retry_after: Option<u64>,
    /// The JSON body, for answers of the API (a page renders its own).
    body: Option<ErrorBody>,
}

impl ErrorReport {
    /// The code.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The JSON body with this request id, if the answer is one of the API.
    fn json(&self, request_id: Option<&str>) -> Option<Vec<u8>> {
        let mut body = self.body.clone()?;
        body.error.request_id = request_id.map(str::to_owned);
        serde_json::to_vec(&body).ok()
    }

    /// The `Retry-After` seconds: as given, or until `retry_at` from `now`, rounded up to whole
    /// seconds (at least 1) so that a client waiting exactly that long is not refused again.
    fn retry_seconds(&self, now: Option<DateTime<Utc>>) -> Option<u64> {
        self.retry_after.or_else(|| {
            let wait = self.retry_at? - now?;
            let whole = wait.num_seconds();
            let secs = if wait > chrono::TimeDelta::seconds(whole) {
                whole.saturating_add(1)
            } else {
                whole
            };
            u64::try_from(secs.max(1)).ok()
        })
    }
}

fn set_retry_after(headers: &mut axum::http::HeaderMap, seconds: Option<u64>) {
    if let Some(secs) = seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        headers.insert(header::RETRY_AFTER, v);
    }
}

impl IntoResponse for ApiError {
    /// The JSON answer without `request_id` (the error layer adds it, with the `Retry-After` of a
    /// `retry_at`), with the [`ErrorReport`] attached. Nothing is logged here.
    fn into_response(self) -> Response {
        let report = self.into_report(true);
        let body = report.json(None).unwrap_or_default();
        let mut response = (
            report.code.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        set_retry_after(response.headers_mut(), report.retry_seconds(None));
        response.extensions_mut().insert(report);
        response
    }
}

/// The error layer of the router (`axum::middleware::from_fn_with_state`), inside the request's
/// tracing span: logs every server error with its code and internal message (the span adds the
/// request id and route), and completes JSON error bodies with the request id and
/// `Retry-After` (by the portal's clock).
pub async fn complete_error_responses(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .map(str::to_owned);
    let response = next.run(req).await;
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    if report.code.status().is_server_error() {
        tracing::error!(
            target: "portal_http",
            code = report.code.as_str(),
            error = report.internal.as_deref().unwrap_or(""),
            "request failed"
        );
    }
    let Some(body) = report.json(request_id.as_deref()) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if !parts.headers.contains_key(header::RETRY_AFTER) {
        let now = report.retry_at.map(|_| state.now());
        set_retry_after(&mut parts.headers, report.retry_seconds(now));
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: error responses per operation
// ---------------------------------------------------------------------------------------------

/// Merges code lists into OpenAPI responses: one per status, its description listing the codes.
#[must_use]
pub fn responses(sets: &[&[ErrorCode]]) -> BTreeMap<String, RefOr<OaResponse>> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for set in sets {
        for c in *set {
            let list = by_status.entry(c.status_u16()).or_default();
            if !list.contains(c) {
                list.push(*c);
            }
        }
    }
    by_status
        .into_iter()
        .map(|(status, list)| {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            let mut description = format!("{reason}. Codes:");
            for c in &list {
                description.push_str(&format!("\n- `{}`: {}", c.as_str(), c.description()));
            }
            let schema: RefOr<Schema> =
                RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"));
            let mut builder = utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content("application/json", Content::new(Some(schema)));
            if status == 429 {
                builder = builder.header(
                    "Retry-After",
                    utoipa::openapi::header::HeaderBuilder::new()
                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                            utoipa::openapi::schema::Type::Integer,
                        )))
                        .description(Some("Seconds to wait."))
                        .build(),
                );
            }
            (status.to_string(), RefOr::T(builder.build()))
        })
        .collect()
}

/// Declares a marker type whose OpenAPI responses are the union of some code lists:
/// `error_responses!(pub(crate) RegisterErrors: sets::BODY, RegisterError::CODES);`
#[macro_export]
#[doc(hidden)]
macro_rules! error_responses {
    ($vis:vis $name:ident: $($set:expr),+ $(,)?) => {
        #[doc = concat!("Error responses of one operation: ", stringify!($name), ".")]
        $vis struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::error::responses(&[$($set),+])
            }
        }
    };
}

/// Code lists shared by many operations.
pub mod sets {
    use super::{Documented, ErrorCode};
    use portal_core::error::InfraError;
    use portal_core::service::PagingError;
    /// Every operation: the infrastructure's codes.
    pub const ALWAYS: &[ErrorCode] = InfraError::CODES;
    /// Operations with a JSON body.
    pub const BODY: &[ErrorCode] = &[
        ErrorCode::InvalidRequest,
        ErrorCode::MalformedJson,
        ErrorCode::UnknownField,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
    ];
    /// Unsafe operations without a body (a body, if sent, must still be JSON and small).
    pub const NO_BODY: &[ErrorCode] =
        &[ErrorCode::PayloadTooLarge, ErrorCode::UnsupportedMediaType];
    /// Operations with query parameters.
    pub const QUERY: &[ErrorCode] = &[ErrorCode::InvalidRequest];
    /// Unsafe operations (CSRF).
    pub const CSRF: &[ErrorCode] = &[ErrorCode::CsrfFailed];
    /// Operations under a per-address rate limit.
    pub const LIMITED: &[ErrorCode] = &[ErrorCode::RateLimited];
    /// Operations that need a session.
    pub const SESSION: &[ErrorCode] =
        &[ErrorCode::Unauthenticated, ErrorCode::SecondFactorRequired];
    /// Operations with path parameters (a value that is not UTF-8 once decoded).
    pub const PATH: &[ErrorCode] = &[ErrorCode::InvalidRequest];
    /// Operations with a customer number in the path.
    pub const NUMBER: &[ErrorCode] = &[ErrorCode::InvalidCustomerNumber, ErrorCode::InvalidRequest];
    /// Operations with an id in the path.
    pub const ID: &[ErrorCode] = &[ErrorCode::InvalidId, ErrorCode::InvalidRequest];
    /// The change-log operations: [`AuditError::CODES`](super::AuditError) without
    /// `chain_broken`, which none of them answers (the verification reports a broken chain as its
    /// result, `valid: false`; the lists do not verify).
    pub const AUDIT: &[ErrorCode] = &[
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::InvalidCursor,
        ErrorCode::InvalidPageSize,
        ErrorCode::PageOutOfRange,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];
    /// The change-log export: [`AUDIT`] without the paging codes, with
    /// `chain_broken` (a broken stored chain is not exported).
    pub const AUDIT_EXPORT: &[ErrorCode] = &[
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::ChainBroken,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];
    /// Paged lists.
    pub const PAGING: &[ErrorCode] = PagingError::CODES;
}

// ---------------------------------------------------------------------------------------------
// Mapping of the core's errors
// ---------------------------------------------------------------------------------------------

/// The number of distinct codes in some lists (the length of a joined `CODES`).
#[doc(hidden)]
#[must_use]
pub const fn distinct(parts: &[&[ErrorCode]]) -> usize {
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            if !seen_before(parts, p, i) {
                n += 1;
            }
            i += 1;
        }
        p += 1;
    }
    n
}

/// The distinct codes of some lists, in order of first appearance.
#[doc(hidden)]
#[must_use]
pub const fn join<const N: usize>(parts: &[&[ErrorCode]]) -> [ErrorCode; N] {
    let mut out = [ErrorCode::Internal; N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            if !seen_before(parts, p, i) {
                out[n] = parts[p][i];
                n += 1;
            }
            i += 1;
        }
        p += 1;
    }
    out
}

/// Whether `parts[p][i]` appears earlier in `parts`.
const fn seen_before(parts: &[&[ErrorCode]], p: usize, i: usize) -> bool {
    let code = parts[p][i] as usize;
    let mut q = 0;
    while q <= p {
        let end = if q == p { i } else { parts[q].len() };
        let mut j = 0;
        while j < end {
            if parts[q][j] as usize == code {
                return true;
            }
            j += 1;
        }
        q += 1;
    }
    false
}

/// Maps a core error type to codes. Each arm is a pattern of one of the type's variants (the
/// variants are in scope) and either
/// - `=> Code` with optional builder calls (`.message(…)`, `.details(…)`, `.log(…)`,
///   `.retry_at(…)`), which answer `Code`; or, after `via`,
/// - `=> Type(expr)`, which hands a wrapped error to `Type`'s own mapping and answers its codes.
///
/// The macro generates `impl From<Type> for ApiError` (an exhaustive `match` over the arms) and
/// `impl Documented for Type` (the arms' codes, each once), so the two cannot drift.
#[macro_export]
#[doc(hidden)]
macro_rules! error_mapping {
    ($(
        $ty:ident {
            $( $pat:pat $(if $guard:expr)? => $code:ident $(. $method:ident ( $($arg:tt)* ))* ),* $(,)?
            $( ; via $( $vpat:pat => $dt:ident ( $inner:expr ) ),+ $(,)? )?
        }
    )*) => {$(
        impl From<$ty> for $crate::error::ApiError {
            #[allow(unused_imports)]
            fn from(error: $ty) -> Self {
                use $ty::*;
                match error {
                    $( $pat $(if $guard)? => $crate::error::ApiError::new(
                        $crate::error::ErrorCode::$code
                    ) $(. $method ( $($arg)* ))*, )*
                    $($( $vpat => <$crate::error::ApiError as From<$dt>>::from($inner), )+)?
                }
            }
        }
        impl $crate::error::Documented for $ty {
            const CODES: &'static [$crate::error::ErrorCode] = {
                const PARTS: &[&[$crate::error::ErrorCode]] = &[
                    &[$($crate::error::ErrorCode::$code),*],
                    $($( <$dt as $crate::error::Documented>::CODES, )+)?
                ];
                const JOINED: [$crate::error::ErrorCode; $crate::error::distinct(PARTS)] =
                    $crate::error::join(PARTS);
                &JOINED
            };
        }
    )*};
}

/// The stable `details.reason` of a refused passkey answer.
fn passkey_reason(r: portal_core::ports::PasskeyRejected) -> &'static str {
    use portal_core::ports::PasskeyRejected as R;
    match r {
        R::Malformed => "malformed",
        R::WrongOrigin => "wrong_origin",
        R::WrongRelyingParty => "wrong_relying_party",
        R::WrongChallenge => "wrong_challenge",
        R::UserNotVerified => "user_not_verified",
        R::CounterNotIncreased => "counter_not_increased",
        R::UnknownCredential => "unknown_credential",
        R::AlreadyRegistered => "already_registered",
        R::Invalid => "invalid",
    }
}

error_mapping! {
    InfraError {
        e if e.is_unavailable() => Unavailable.log(e.to_string()),
        e => Internal.log(e.to_string()),
    }
    StoreError {
        Conflict => Conflict;
        via other => InfraError(InfraError::Store(other)),
    }
    PasswordError {
        e @ TooShort { min } => PasswordPolicy
            .message(e.to_string())
            .details(json!({"rule": "too_short", "min": min})),
        e @ TooLong { max } => PasswordPolicy
            .message(e.to_string())
            .details(json!({"rule": "too_long", "max": max})),
        e @ Blocklisted => PasswordPolicy
            .message(e.to_string())
            .details(json!({"rule": "blocklisted"})),
        e @ ContainsPersonalData => PasswordPolicy
            .message(e.to_string())
            .details(json!({"rule": "contains_personal_data"})),
        e @ ConfirmationMismatch => PasswordPolicy
            .message(e.to_string())
            .details(json!({"rule": "confirmation_mismatch"})),
    }
    CodeError {
        Malformed => MalformedCode,
        Wrong => InvalidCode,
        Used => CodeAlreadyUsed,
        Expired => CodeExpired,
        TooManyAttempts => TooManyAttempts,
    }
    PagingError {
        InvalidCursor => InvalidCursor,
        e @ InvalidSize { max } => InvalidPageSize
            .message(e.to_string())
            .details(json!({ "max": max })),
        PageOutOfRange => PageOutOfRange,
    }
    LoginError {
        InvalidCredentials => InvalidCredentials,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    AuthError {
        Unauthenticated => Unauthenticated,
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    RegisterError {
        Conflict => Conflict;
        via Password(p) => PasswordError(p),
        Infra(i) => InfraError(i),
    }
    ResendError {
        InvalidTicket => InvalidTicket,
        TooSoon { retry_at } => TooSoon.retry_at(retry_at),
        TooMany => TooManyCodes,
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    VerifyError {
        InvalidTicket => InvalidTicket,
        InvitationInvalid => InvitationInvalid,
        AlreadyRegistered => AlreadyRegistered,
        Conflict => Conflict;
        via Code(c) => CodeError(c),
        Infra(i) => InfraError(i),
    }
    InvitationError {
        NotFound => NotFound,
        Expired => InvitationExpired,
        Used => InvitationUsed,
        Conflict => Conflict;
        via Password(p) => PasswordError(p),
        Infra(i) => InfraError(i),
    }
    ResetError {
        InvalidLink => InvalidLink,
        Expired => LinkExpired,
        Used => LinkUsed,
        Conflict => Conflict;
        via Password(p) => PasswordError(p),
        Infra(i) => InfraError(i),
    }
    MfaError {
        NoPendingLogin => NoPendingLogin,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        NoSuchFactor => NoSuchFactor,
        ReauthRequired => ReauthRequired,
        AlreadyEnabled => MfaAlreadyEnabled,
        NotEnabled => MfaNotEnabled,
        NoSetupInProgress => NoSetupInProgress,
        Unavailable => FactorUnavailable,
        SendFailed(source) => SendFailed.log(source.to_string()),
        SamePhone => SamePhone,
        WrongPassword => WrongPassword,
        e @ Passkey(r) => PasskeyRefused
            .message(e.to_string())
            .details(json!({ "reason": passkey_reason(r) })),
        PasskeyChallenge => PasskeyChallengeInvalid,
        PasskeyLimit => PasskeyLimit,
        InvalidPasskeyName(_) => InvalidPasskeyName,
        LastFactor => LastFactor,
        Conflict => Conflict;
        via Code(c) => CodeError(c),
        Infra(i) => InfraError(i),
    }
    ProfileError {
        Unauthenticated => Unauthenticated,
        WrongPassword => WrongPassword,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        ReauthRequired => ReauthRequired,
        EmailUnavailable => EmailUnavailable,
        SameEmail => SameEmail,
        InvalidTicket => InvalidTicket,
        Conflict => Conflict;
        via Password(p) => PasswordError(p),
        Code(c) => CodeError(c),
        Infra(i) => InfraError(i),
    }
    SessionError {
        NotFound => NotFound,
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    LinkError {
        Forbidden => Forbidden,
        CustomerNotFound => CustomerNotFound,
        UnknownAffiliation => UnknownAffiliation,
        AffiliationRequired => AffiliationRequired,
        AffiliationMismatch => AffiliationMismatch,
        AlreadyLinked => AlreadyLinked,
        InvalidLegacyCredentials => InvalidLegacyCredentials,
        LegacyAlreadyLinked => LegacyAlreadyLinked,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    AdminRequestError {
        NotFound => NotFound,
        Forbidden => Forbidden,
        NotEligible => NotEligible,
        AlreadyAdmin => AlreadyAdmin,
        AlreadyRequested => AlreadyRequested,
        e @ WrongState(s) => WrongState
            .message(e.to_string())
            .details(json!({ "status": s.key() })),
        RequesterIneligible => RequesterIneligible,
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    OutboxError {
        Forbidden => Forbidden,
        NotFound => NotFound,
        e @ InvalidKind => InvalidRequest.message(e.to_string()),
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    OidcAdminError {
        Forbidden => Forbidden,
        NotFound => NotFound,
        e @ Invalid { field, .. } => InvalidRequest
            .message(e.to_string())
            .details(json!({ "field": field })),
        NoSealingKey => Internal.log("no server key to seal signing keys"),
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    ExportError {
        Unauthenticated => Unauthenticated,
        NotFound => NotFound,
        Forbidden => Forbidden,
        ReauthRequired => ReauthRequired,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    ContactError {
        NotLinked => NotLinked,
        NoAdmin => NoAdmin,
        Forbidden => Forbidden,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        Conflict => Conflict;
        via Infra(i) => InfraError(i),
    }
    AdminError {
        NotFound => NotFound,
        Forbidden => Forbidden,
        NotGrantable(keys) => NotGrantable.details(json!({ "keys": keys })),
        UnknownGroup => UnknownGroup,
        e @ WrongState(s) => WrongState
            .message(e.to_string())
            .details(json!({ "status": s.key() })),
        LastAdmin => LastAdmin,
        AlreadyMember => AlreadyMember,
        EmailUnavailable => EmailUnavailable,
        Throttled { retry_at } => Throttled.retry_at(retry_at),
        Conflict => Conflict;
        via Paging(p) => PagingError(p),
        Infra(i) => InfraError(i),
    }
    AuditError {
        NotFound => NotFound,
        Forbidden => Forbidden,
        Broken(b) => ChainBroken.message(format!("audit chain broken: {b}")),
        Conflict => Conflict;
        via Paging(p) => PagingError(p),
        Infra(i) => InfraError(i),
    }
    CustomerError {
        Forbidden => Forbidden,
        NotFound => NotFound,
        NumberTaken => NumberTaken,
        UnknownAffiliation(a) => UnknownAffiliation.details(json!({ "affiliation": a })),
        UnknownPermissions(keys) => UnknownPermissions.details(json!({ "keys": keys })),
        EmailUnavailable => EmailUnavailable,
        InvalidRow { row, reason } => InvalidRow
            .message(format!("row {row}: {reason}"))
            .details(json!({ "row": row, "reason": reason })),
        Conflict => Conflict;
        via Paging(p) => PagingError(p),
        Infra(i) => InfraError(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portal_core::admin_request::AdminRequestStatus;

    fn infra() -> InfraError {
        InfraError::Store(StoreError::backend("x"))
    }

    #[test]
    fn retry_after_rounds_a_remainder_up_to_the_next_whole_second() {
        let now = DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
        let ms = chrono::TimeDelta::milliseconds;
        let secs = |wait| {
            ApiError::new(ErrorCode::Throttled)
                .retry_at(now + wait)
                .into_report(true)
                .retry_seconds(Some(now))
        };
        assert_eq!(
            secs(ms(1_500)),
            Some(2),
            "1.5 s left: 1 s would be too early"
        );
        assert_eq!(secs(ms(1)), Some(1));
        assert_eq!(secs(ms(2_000)), Some(2), "whole seconds stay as they are");
        assert_eq!(secs(ms(2_001)), Some(3));
        assert_eq!(secs(ms(-500)), Some(1), "a past retry time still says 1");
    }

    #[test]
    fn codes_are_unique_snake_case_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
            assert!(StatusCode::from_u16(c.status_u16()).is_ok());
            assert_eq!(c.status().as_u16(), c.status_u16());
            assert!(c.status_u16() >= 400);
            assert!(!c.description().is_empty(), "{c}");
        }
    }

    #[test]
    fn documented_lists_hold_each_code_of_their_arms_once() {
        fn once(codes: &[ErrorCode]) {
            let set: std::collections::BTreeSet<_> = codes.iter().collect();
            assert_eq!(set.len(), codes.len(), "{codes:?}");
        }
        for codes in [
            MfaError::CODES,
            ProfileError::CODES,
            AdminError::CODES,
            CustomerError::CODES,
            PasswordError::CODES,
            StoreError::CODES,
        ] {
            once(codes);
        }
        assert_eq!(PasswordError::CODES, [ErrorCode::PasswordPolicy]);
        assert_eq!(
            InfraError::CODES,
            [ErrorCode::Unavailable, ErrorCode::Internal]
        );
        assert_eq!(
            StoreError::CODES,
            [
                ErrorCode::Conflict,
                ErrorCode::Unavailable,
                ErrorCode::Internal
            ]
        );
        // A wrapped error's codes come with its wrapper: the shared code checks, the paging.
        for c in CodeError::CODES {
            for wrapper in [VerifyError::CODES, ProfileError::CODES, MfaError::CODES] {
                assert!(wrapper.contains(c), "{c}");
            }
        }
        for c in PagingError::CODES {
            for wrapper in [AdminError::CODES, AuditError::CODES, CustomerError::CODES] {
                assert!(wrapper.contains(c), "{c}");
            }
        }
        // What the mapping answers is among the codes the type documents.
        let e = ApiError::from(MfaError::Code(CodeError::TooManyAttempts));
        assert_eq!(e.code(), ErrorCode::TooManyAttempts);
        assert!(MfaError::CODES.contains(&e.code()));
        let e = ApiError::from(AdminError::Paging(PagingError::InvalidSize { max: 100 }));
        assert_eq!(e.code(), ErrorCode::InvalidPageSize);
        assert_eq!(e.details_value(), Some(&json!({ "max": 100 })));
        let e = ApiError::from(AdminRequestError::WrongState(AdminRequestStatus::Approved));
        assert_eq!(e.details_value(), Some(&json!({ "status": "approved" })));
    }

    #[test]
    fn the_audit_operations_document_every_audit_code_but_chain_broken() {
        let missing: Vec<&str> = AuditError::CODES
            .iter()
            .filter(|c| !sets::AUDIT.contains(c))
            .map(|c| c.as_str())
            .collect();
        assert_eq!(missing, ["chain_broken"]);
        assert!(sets::AUDIT.iter().all(|c| AuditError::CODES.contains(c)));
    }

    /// The table of codes in `docs/api.md`, as the enum says it must read.
    fn docs_table() -> String {
        let mut table = String::from("| code | status | meaning |\n| --- | --- | --- |\n");
        for c in ErrorCode::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status_u16(),
                c.description()
            ));
        }
        table
    }

    #[test]
    fn docs_api_md_lists_exactly_the_codes_with_their_status_and_meaning() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let doc = std::fs::read_to_string(path).expect("docs/api.md");
        let start = doc
            .find("| code | status | meaning |")
            .expect("the code table");
        let end = doc[start..]
            .find("\n\n")
            .map_or(doc.len(), |n| start + n + 1);
        let expected = docs_table();
        assert!(
            doc[start..end] == expected,
            "docs/api.md's code table differs from ErrorCode; it should read:\n{expected}"
        );
    }

    #[test]
    fn unavailable_storage_is_503_and_other_failures_500() {
        let e = ApiError::from(LoginError::Infra(InfraError::Store(
            StoreError::Unavailable("down".into()),
        )));
        assert_eq!(e.code().status_u16(), 503);
        let e = ApiError::from(LoginError::Infra(infra()));
        assert_eq!(e.code().status_u16(), 500);
    }

    #[test]
    fn an_error_answer_carries_its_report_and_no_request_id_outside_the_router() {
        let r = ApiError::internal("db exploded").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = r.extensions().get::<ErrorReport>().expect("report");
        assert_eq!(report.code(), ErrorCode::Internal);
        assert_eq!(report.internal.as_deref(), Some("db exploded"));
        let body: ErrorBody = serde_json::from_slice(&report.json(None).unwrap()).unwrap();
        assert_eq!(body.error.code, "internal");
        assert!(body.error.request_id.is_none());
        assert!(!body.error.message.contains("exploded"));
    }

    #[test]
    fn retry_at_becomes_retry_after_by_the_given_clock() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = ApiError::from(LoginError::Throttled {
            retry_at: now + chrono::TimeDelta::seconds(90),
        });
        let report = e.into_report(true);
        assert_eq!(report.retry_seconds(Some(now)), Some(90));
        assert_eq!(report.retry_seconds(None), None, "no clock, no guess");
        let late = now + chrono::TimeDelta::seconds(500);
        assert_eq!(report.retry_seconds(Some(late)), Some(1));
    }
}
