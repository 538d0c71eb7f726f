//! One error shape for every answer that is not a success:
//! `{"error": {"code": "...", "message": "...", "details": {...}, "request_id": "..."}}`.
//!
//! Codes are stable snake_case strings; clients branch on them, never on messages. Every variant
//! of every core error enum maps to one code through an exhaustive `match`, so a new variant does
//! not compile until it has a mapping. Each enum also lists its codes ([`Documented::CODES`]) for
//! the OpenAPI document; tests check that every variant's mapping is among them.

use crate::middleware::current_request_id;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use portal_core::error::InfraError;
use portal_core::password::PasswordError;
use portal_core::ports::StoreError;
use portal_core::service::{
    AdminError, AdminRequestError, AuditError, AuthError, ContactError, CustomerError,
    InvitationError, LinkError, LoginError, MfaError, PagingError, ProfileError, RegisterError,
    ResendError, ResetError, SessionError, VerifyError,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa::openapi::{Content, RefOr, Response as OaResponse, Schema};

/// A stable error code with its HTTP status and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// HTTP status.
    pub status: u16,
    /// The code clients branch on.
    pub code: &'static str,
    /// What it means (for the API documentation).
    pub description: &'static str,
}

macro_rules! codes {
    ($($name:ident = $status:literal, $code:literal, $desc:literal;)*) => {
        /// Every error code of the API.
        pub mod codes {
            use super::ErrorCode;
            $(
                #[doc = $desc]
                pub const $name: ErrorCode = ErrorCode { status: $status, code: $code, description: $desc };
            )*
            /// All codes, for documentation and tests.
            pub const ALL: &[ErrorCode] = &[$($name),*];
        }
    };
}

codes! {
    // --- the request itself ---
    INVALID_REQUEST = 400, "invalid_request", "A field is missing, has the wrong type or an invalid value, or a query or path parameter is invalid.";
    MALFORMED_JSON = 400, "malformed_json", "The body is not valid JSON.";
    UNKNOWN_FIELD = 400, "unknown_field", "The body has a field the endpoint does not know.";
    INVALID_CUSTOMER_NUMBER = 400, "invalid_customer_number", "A customer number is not nine digits (optionally printed as D + nine digits).";
    INVALID_ID = 400, "invalid_id", "An id in the path is not a UUID.";
    PAYLOAD_TOO_LARGE = 413, "payload_too_large", "The body is larger than the configured limit.";
    UNSUPPORTED_MEDIA_TYPE = 415, "unsupported_media_type", "The body is not `application/json` (or `text/csv` for the customer import).";
    METHOD_NOT_ALLOWED = 405, "method_not_allowed", "The endpoint does not support this method.";
    NOT_FOUND = 404, "not_found", "No such resource, or one that is not yours (answered exactly like an unknown one).";
    CSRF_FAILED = 403, "csrf_failed", "A cookie-authenticated unsafe request without the right `X-CSRF-Token`, or from another site (`Origin`, `Sec-Fetch-Site`).";
    RATE_LIMITED = 429, "rate_limited", "Too many requests from this address; see `Retry-After`.";
    UNAUTHENTICATED = 401, "unauthenticated", "No valid session (missing, expired, ended, or the user was locked or deleted).";
    FORBIDDEN = 403, "forbidden", "The session's user may not do this.";
    CONFLICT = 409, "conflict", "Concurrent changes; try again.";
    INTERNAL = 500, "internal", "Something failed on the server; the `request_id` is in the log.";
    UNAVAILABLE = 503, "unavailable", "A backend (database, legacy directory) is unreachable; try again later.";
    // --- login and codes ---
    INVALID_CREDENTIALS = 401, "invalid_credentials", "Wrong e-mail or password (also for unknown, locked and unfinished accounts).";
    THROTTLED = 429, "throttled", "Too many failed attempts for this account or factor; `details.retry_at` and `Retry-After` say when to try again.";
    NO_PENDING_LOGIN = 401, "no_pending_login", "No pending second step (missing, expired, finished or used up): log in again.";
    MFA_REQUIRED = 400, "mfa_required", "The account has a second factor: give `factor` too.";
    INVALID_TICKET = 400, "invalid_ticket", "The registration or e-mail-change ticket is unknown or expired.";
    MALFORMED_CODE = 400, "malformed_code", "The code has the wrong form (no try was used up).";
    INVALID_CODE = 400, "invalid_code", "Wrong (or already used) code; a try was used up.";
    CODE_EXPIRED = 400, "code_expired", "The code expired; ask for a new one.";
    TOO_MANY_ATTEMPTS = 400, "too_many_attempts", "Too many wrong codes; ask for a new code (or log in again).";
    TOO_SOON = 429, "too_soon", "Too soon for another code; `details.retry_at` and `Retry-After` say when.";
    TOO_MANY_CODES = 400, "too_many_codes", "This registration has used up its codes; register again.";
    INVITATION_INVALID = 400, "invitation_invalid", "The invitation behind this registration is no longer valid.";
    ALREADY_REGISTERED = 409, "already_registered", "The address was registered meanwhile; log in or reset the password.";
    INVITATION_EXPIRED = 410, "invitation_expired", "The invitation link expired; ask the administrator for a new one.";
    INVITATION_USED = 410, "invitation_used", "The invitation link was used already.";
    INVALID_LINK = 400, "invalid_link", "The reset link is malformed, unknown or revoked.";
    LINK_EXPIRED = 410, "link_expired", "The reset link expired; ask for a new one.";
    LINK_USED = 410, "link_used", "The reset link was used already.";
    PASSWORD_POLICY = 422, "password_policy", "The new password breaks the policy; `details.rule` says which rule (`too_short`, `too_long`, `blocklisted`, `contains_personal_data`, `confirmation_mismatch`).";
    WRONG_PASSWORD = 400, "wrong_password", "The current password is wrong.";
    REAUTH_REQUIRED = 403, "reauth_required", "A sensitive change needs a fresh authentication: `POST /api/v1/auth/reauthenticate` first.";
    // --- profile ---
    EMAIL_UNAVAILABLE = 409, "email_unavailable", "The address cannot be used (it has an account).";
    SAME_EMAIL = 409, "same_email", "The new address is the current one.";
    // --- second factors ---
    NO_SUCH_FACTOR = 400, "no_such_factor", "The account has no such factor (or no code was sent for it).";
    MFA_ALREADY_ENABLED = 409, "mfa_already_enabled", "An authenticator app is set up already; remove it first.";
    MFA_NOT_ENABLED = 409, "mfa_not_enabled", "No second factor is set up.";
    NO_SETUP_IN_PROGRESS = 409, "no_setup_in_progress", "No factor setup in progress (or it expired); start again.";
    FACTOR_UNAVAILABLE = 422, "factor_unavailable", "This server cannot offer this factor (no MFA key or no phone gateway).";
    SEND_FAILED = 502, "send_failed", "The phone gateway failed; try again.";
    SAME_PHONE = 422, "same_phone", "The recovery phone must differ from the MFA phone.";
    // --- onboarding ---
    CUSTOMER_NOT_FOUND = 404, "customer_not_found", "No customer with this number.";
    UNKNOWN_AFFILIATION = 422, "unknown_affiliation", "The affiliation is not one of the configured ones.";
    AFFILIATION_REQUIRED = 409, "affiliation_required", "Choose the product affiliation first.";
    AFFILIATION_MISMATCH = 422, "affiliation_mismatch", "The customer does not belong to your product affiliation.";
    ALREADY_LINKED = 409, "already_linked", "The account is linked to a customer already.";
    INVALID_LEGACY_CREDENTIALS = 400, "invalid_legacy_credentials", "Unknown username or wrong password of the old account.";
    LEGACY_ALREADY_LINKED = 409, "legacy_already_linked", "The old account was linked before (once only).";
    // --- admin requests, contact ---
    NOT_ELIGIBLE = 409, "not_eligible", "Only active users linked to a customer can ask for admin rights.";
    ALREADY_ADMIN = 409, "already_admin", "The user is an administrator already.";
    ALREADY_REQUESTED = 409, "already_requested", "There is an open admin request already.";
    WRONG_STATE = 409, "wrong_state", "Not possible in the current state; `details.status` says which.";
    REQUESTER_INELIGIBLE = 409, "requester_ineligible", "The requester can no longer become an administrator.";
    NOT_LINKED = 409, "not_linked", "The account is not linked to a customer.";
    NO_ADMIN = 409, "no_admin", "The customer has no administrator yet.";
    // --- user administration ---
    NOT_GRANTABLE = 422, "not_grantable", "Permissions outside the catalog or the customer's entitlements; `details.keys` lists them.";
    UNKNOWN_GROUP = 404, "unknown_group", "No permission group with this key.";
    LAST_ADMIN = 409, "last_admin", "The customer would be left without an administrator.";
    ALREADY_MEMBER = 409, "already_member", "The address belongs to a user of this customer already.";
    INVALID_CURSOR = 400, "invalid_cursor", "The cursor was not issued by this list.";
    INVALID_PAGE_SIZE = 400, "invalid_page_size", "`per_page` must be between 1 and `details.max`.";
    PAGE_OUT_OF_RANGE = 400, "page_out_of_range", "Page 0, or a page too deep for page numbers: follow the `next` cursor.";
    CHAIN_BROKEN = 409, "chain_broken", "The audit chain is broken. No operation of the JSON API answers it: `GET /api/v1/operator/audit/verify` reports a broken chain as its result (`valid: false`).";
    // --- customers ---
    NUMBER_TAKEN = 409, "number_taken", "A customer with this number exists already.";
    UNKNOWN_PERMISSIONS = 422, "unknown_permissions", "Permission keys not in the catalog (or defaults outside the entitlements); `details.keys` lists them.";
    INVALID_ROW = 422, "invalid_row", "An import row is invalid (`details.row`, `details.reason`); nothing was imported.";
}

/// The codes an error type can answer with, for the OpenAPI document.
pub trait Documented {
    /// The codes.
    const CODES: &'static [ErrorCode];
}

/// The body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// What went wrong.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
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
    /// What is logged for server errors (never sent).
    internal: Option<String>,
}

impl ApiError {
    /// An error with the code's own description as message.
    #[must_use]
    pub fn new(code: ErrorCode) -> Self {
        Self(Box::new(Inner {
            code,
            message: Cow::Borrowed(code.description),
            details: None,
            retry_after: None,
            internal: None,
        }))
    }

    /// An error with a specific message.
    #[must_use]
    pub fn with_message(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        let mut e = Self::new(code);
        e.0.message = message.into();
        e
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

    /// A throttle answer until `retry_at`.
    #[must_use]
    pub fn until(code: ErrorCode, retry_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let secs = (retry_at - now).num_seconds().max(1);
        Self::new(code)
            .details(json!({ "retry_at": retry_at }))
            .retry_after(u64::try_from(secs).unwrap_or(1))
    }

    /// A server error (500, or 503 for an unreachable backend); `internal` is logged with the
    /// request id, never sent.
    #[must_use]
    pub fn infra(e: &InfraError) -> Self {
        let code = if e.is_unavailable() {
            codes::UNAVAILABLE
        } else {
            codes::INTERNAL
        };
        Self::new(code).log(e.to_string())
    }

    /// An internal error with a message for the log.
    #[must_use]
    pub fn internal(log: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL).log(log)
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

    /// The message shown to the client (the web UI renders it).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The details, if any.
    #[must_use]
    pub fn details_value(&self) -> Option<&Value> {
        self.0.details.as_ref()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = *self.0;
        let status =
            StatusCode::from_u16(e.code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = current_request_id();
        if status.is_server_error() {
            tracing::error!(
                request_id = request_id.as_deref().unwrap_or("-"),
                code = e.code.code,
                error = e.internal.as_deref().unwrap_or(""),
                "request failed"
            );
        }
        let body = ErrorBody {
            error: ErrorObject {
                code: e.code.code.to_owned(),
                message: e.message.into_owned(),
                details: e.details,
                request_id,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
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
            let list = by_status.entry(c.status).or_default();
            if !list.iter().any(|x| x.code == c.code) {
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
                description.push_str(&format!("\n- `{}`: {}", c.code, c.description));
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
    use super::{ErrorCode, codes};
    /// Every operation.
    pub const ALWAYS: &[ErrorCode] = &[codes::INTERNAL, codes::UNAVAILABLE];
    /// Operations with a JSON body.
    pub const BODY: &[ErrorCode] = &[
        codes::INVALID_REQUEST,
        codes::MALFORMED_JSON,
        codes::UNKNOWN_FIELD,
        codes::PAYLOAD_TOO_LARGE,
        codes::UNSUPPORTED_MEDIA_TYPE,
    ];
    /// Unsafe operations without a body (a body, if sent, must still be JSON and small).
    pub const NO_BODY: &[ErrorCode] = &[codes::PAYLOAD_TOO_LARGE, codes::UNSUPPORTED_MEDIA_TYPE];
    /// Operations with query parameters.
    pub const QUERY: &[ErrorCode] = &[codes::INVALID_REQUEST];
    /// Unsafe operations (CSRF).
    pub const CSRF: &[ErrorCode] = &[codes::CSRF_FAILED];
    /// Operations under a per-address rate limit.
    pub const LIMITED: &[ErrorCode] = &[codes::RATE_LIMITED];
    /// Operations that need a session.
    pub const SESSION: &[ErrorCode] = &[codes::UNAUTHENTICATED];
    /// Operations with path parameters (a value that is not UTF-8 once decoded).
    pub const PATH: &[ErrorCode] = &[codes::INVALID_REQUEST];
    /// Operations with a customer number in the path.
    pub const NUMBER: &[ErrorCode] = &[codes::INVALID_CUSTOMER_NUMBER, codes::INVALID_REQUEST];
    /// Operations with an id in the path.
    pub const ID: &[ErrorCode] = &[codes::INVALID_ID, codes::INVALID_REQUEST];
    /// The change-log operations: [`AuditError::CODES`](super::AuditError) without
    /// `chain_broken`, which none of them answers (the verification reports a broken chain as its
    /// result, `valid: false`; the lists do not verify).
    pub const AUDIT: &[ErrorCode] = &[
        codes::NOT_FOUND,
        codes::FORBIDDEN,
        codes::INVALID_CURSOR,
        codes::INVALID_PAGE_SIZE,
        codes::PAGE_OUT_OF_RANGE,
        codes::CONFLICT,
    ];
    /// Paged lists.
    pub const PAGING: &[ErrorCode] = &[
        codes::INVALID_CURSOR,
        codes::INVALID_PAGE_SIZE,
        codes::PAGE_OUT_OF_RANGE,
    ];
}

// ---------------------------------------------------------------------------------------------
// Mapping of the core's errors
// ---------------------------------------------------------------------------------------------

fn store(e: StoreError) -> ApiError {
    ApiError::infra(&InfraError::Store(e))
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::new(codes::CONFLICT),
            other => store(other),
        }
    }
}

/// The details of a password-policy error.
fn password(e: PasswordError) -> ApiError {
    let details = match e {
        PasswordError::TooShort { min } => json!({"rule": "too_short", "min": min}),
        PasswordError::TooLong { max } => json!({"rule": "too_long", "max": max}),
        PasswordError::Blocklisted => json!({"rule": "blocklisted"}),
        PasswordError::ContainsPersonalData => json!({"rule": "contains_personal_data"}),
        PasswordError::ConfirmationMismatch => json!({"rule": "confirmation_mismatch"}),
    };
    ApiError::with_message(codes::PASSWORD_POLICY, e.to_string()).details(details)
}

impl From<PagingError> for ApiError {
    fn from(e: PagingError) -> Self {
        match e {
            PagingError::InvalidCursor => Self::new(codes::INVALID_CURSOR),
            PagingError::InvalidSize { max } => {
                Self::with_message(codes::INVALID_PAGE_SIZE, e.to_string())
                    .details(json!({ "max": max }))
            }
            PagingError::PageOutOfRange => Self::new(codes::PAGE_OUT_OF_RANGE),
        }
    }
}
impl Documented for PagingError {
    const CODES: &'static [ErrorCode] = sets::PAGING;
}

/// "Now" for retry hints: the portal's clock.
fn now() -> DateTime<Utc> {
    crate::middleware::request_now()
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::InvalidCredentials => Self::new(codes::INVALID_CREDENTIALS),
            LoginError::Throttled { retry_at } => Self::until(codes::THROTTLED, retry_at, now()),
            LoginError::Conflict => Self::new(codes::CONFLICT),
            LoginError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for LoginError {
    const CODES: &'static [ErrorCode] = &[
        codes::INVALID_CREDENTIALS,
        codes::THROTTLED,
        codes::CONFLICT,
    ];
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => Self::new(codes::UNAUTHENTICATED),
            AuthError::Conflict => Self::new(codes::CONFLICT),
            AuthError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for AuthError {
    const CODES: &'static [ErrorCode] = &[codes::UNAUTHENTICATED, codes::CONFLICT];
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Password(p) => password(p),
            RegisterError::Conflict => Self::new(codes::CONFLICT),
            RegisterError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for RegisterError {
    const CODES: &'static [ErrorCode] = &[codes::PASSWORD_POLICY, codes::CONFLICT];
}

impl From<ResendError> for ApiError {
    fn from(e: ResendError) -> Self {
        match e {
            ResendError::InvalidTicket => Self::new(codes::INVALID_TICKET),
            ResendError::TooSoon { retry_at } => Self::until(codes::TOO_SOON, retry_at, now()),
            ResendError::TooMany => Self::new(codes::TOO_MANY_CODES),
            ResendError::Conflict => Self::new(codes::CONFLICT),
            ResendError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for ResendError {
    const CODES: &'static [ErrorCode] = &[
        codes::INVALID_TICKET,
        codes::TOO_SOON,
        codes::TOO_MANY_CODES,
        codes::CONFLICT,
    ];
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::InvalidTicket => Self::new(codes::INVALID_TICKET),
            VerifyError::MalformedCode => Self::new(codes::MALFORMED_CODE),
            VerifyError::WrongCode => Self::new(codes::INVALID_CODE),
            VerifyError::CodeExpired => Self::new(codes::CODE_EXPIRED),
            VerifyError::TooManyAttempts => Self::new(codes::TOO_MANY_ATTEMPTS),
            VerifyError::InvitationInvalid => Self::new(codes::INVITATION_INVALID),
            VerifyError::AlreadyRegistered => Self::new(codes::ALREADY_REGISTERED),
            VerifyError::Conflict => Self::new(codes::CONFLICT),
            VerifyError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for VerifyError {
    const CODES: &'static [ErrorCode] = &[
        codes::INVALID_TICKET,
        codes::MALFORMED_CODE,
        codes::INVALID_CODE,
        codes::CODE_EXPIRED,
        codes::TOO_MANY_ATTEMPTS,
        codes::INVITATION_INVALID,
        codes::ALREADY_REGISTERED,
        codes::CONFLICT,
    ];
}

impl From<InvitationError> for ApiError {
    fn from(e: InvitationError) -> Self {
        match e {
            InvitationError::NotFound => Self::new(codes::NOT_FOUND),
            InvitationError::Expired => Self::new(codes::INVITATION_EXPIRED),
            InvitationError::Used => Self::new(codes::INVITATION_USED),
            InvitationError::Password(p) => password(p),
            InvitationError::Conflict => Self::new(codes::CONFLICT),
            InvitationError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for InvitationError {
    const CODES: &'static [ErrorCode] = &[
        codes::NOT_FOUND,
        codes::INVITATION_EXPIRED,
        codes::INVITATION_USED,
        codes::PASSWORD_POLICY,
        codes::CONFLICT,
    ];
}

impl From<ResetError> for ApiError {
    fn from(e: ResetError) -> Self {
        match e {
            ResetError::InvalidLink => Self::new(codes::INVALID_LINK),
            ResetError::Expired => Self::new(codes::LINK_EXPIRED),
            ResetError::Used => Self::new(codes::LINK_USED),
            ResetError::Password(p) => password(p),
            ResetError::Conflict => Self::new(codes::CONFLICT),
            ResetError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for ResetError {
    const CODES: &'static [ErrorCode] = &[
        codes::INVALID_LINK,
        codes::LINK_EXPIRED,
        codes::LINK_USED,
        codes::PASSWORD_POLICY,
        codes::CONFLICT,
    ];
}

impl From<MfaError> for ApiError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::NoPendingLogin => Self::new(codes::NO_PENDING_LOGIN),
            MfaError::MalformedCode => Self::new(codes::MALFORMED_CODE),
            MfaError::WrongCode => Self::new(codes::INVALID_CODE),
            MfaError::CodeExpired => Self::new(codes::CODE_EXPIRED),
            MfaError::AttemptsExhausted => Self::new(codes::TOO_MANY_ATTEMPTS),
            MfaError::Throttled { retry_at } => Self::until(codes::THROTTLED, retry_at, now()),
            MfaError::NoSuchFactor => Self::new(codes::NO_SUCH_FACTOR),
            MfaError::ReauthRequired => Self::new(codes::REAUTH_REQUIRED),
            MfaError::AlreadyEnabled => Self::new(codes::MFA_ALREADY_ENABLED),
            MfaError::NotEnabled => Self::new(codes::MFA_NOT_ENABLED),
            MfaError::NoSetupInProgress => Self::new(codes::NO_SETUP_IN_PROGRESS),
            MfaError::Unavailable => Self::new(codes::FACTOR_UNAVAILABLE),
            MfaError::SendFailed(source) => Self::new(codes::SEND_FAILED).log(source.to_string()),
            MfaError::SamePhone => Self::new(codes::SAME_PHONE),
            MfaError::WrongPassword => Self::new(codes::WRONG_PASSWORD),
            MfaError::Conflict => Self::new(codes::CONFLICT),
            MfaError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for MfaError {
    const CODES: &'static [ErrorCode] = &[
        codes::NO_PENDING_LOGIN,
        codes::MALFORMED_CODE,
        codes::INVALID_CODE,
        codes::CODE_EXPIRED,
        codes::TOO_MANY_ATTEMPTS,
        codes::THROTTLED,
        codes::NO_SUCH_FACTOR,
        codes::REAUTH_REQUIRED,
        codes::MFA_ALREADY_ENABLED,
        codes::MFA_NOT_ENABLED,
        codes::NO_SETUP_IN_PROGRESS,
        codes::FACTOR_UNAVAILABLE,
        codes::SEND_FAILED,
        codes::SAME_PHONE,
        codes::WRONG_PASSWORD,
        codes::CONFLICT,
    ];
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Unauthenticated => Self::new(codes::UNAUTHENTICATED),
            ProfileError::WrongPassword => Self::new(codes::WRONG_PASSWORD),
            ProfileError::Throttled { retry_at } => Self::until(codes::THROTTLED, retry_at, now()),
            ProfileError::Password(p) => password(p),
            ProfileError::ReauthRequired => Self::new(codes::REAUTH_REQUIRED),
            ProfileError::EmailUnavailable => Self::new(codes::EMAIL_UNAVAILABLE),
            ProfileError::SameEmail => Self::new(codes::SAME_EMAIL),
            ProfileError::InvalidTicket => Self::new(codes::INVALID_TICKET),
            ProfileError::MalformedCode => Self::new(codes::MALFORMED_CODE),
            ProfileError::WrongCode => Self::new(codes::INVALID_CODE),
            ProfileError::CodeExpired => Self::new(codes::CODE_EXPIRED),
            ProfileError::TooManyAttempts => Self::new(codes::TOO_MANY_ATTEMPTS),
            ProfileError::Conflict => Self::new(codes::CONFLICT),
            ProfileError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for ProfileError {
    const CODES: &'static [ErrorCode] = &[
        codes::UNAUTHENTICATED,
        codes::WRONG_PASSWORD,
        codes::THROTTLED,
        codes::PASSWORD_POLICY,
        codes::REAUTH_REQUIRED,
        codes::EMAIL_UNAVAILABLE,
        codes::SAME_EMAIL,
        codes::INVALID_TICKET,
        codes::MALFORMED_CODE,
        codes::INVALID_CODE,
        codes::CODE_EXPIRED,
        codes::TOO_MANY_ATTEMPTS,
        codes::CONFLICT,
    ];
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::NotFound => Self::new(codes::NOT_FOUND),
            SessionError::Conflict => Self::new(codes::CONFLICT),
            SessionError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for SessionError {
    const CODES: &'static [ErrorCode] = &[codes::NOT_FOUND, codes::CONFLICT];
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Forbidden => Self::new(codes::FORBIDDEN),
            LinkError::CustomerNotFound => Self::new(codes::CUSTOMER_NOT_FOUND),
            LinkError::UnknownAffiliation => Self::new(codes::UNKNOWN_AFFILIATION),
            LinkError::AffiliationRequired => Self::new(codes::AFFILIATION_REQUIRED),
            LinkError::AffiliationMismatch => Self::new(codes::AFFILIATION_MISMATCH),
            LinkError::AlreadyLinked => Self::new(codes::ALREADY_LINKED),
            LinkError::InvalidLegacyCredentials => Self::new(codes::INVALID_LEGACY_CREDENTIALS),
            LinkError::LegacyAlreadyLinked => Self::new(codes::LEGACY_ALREADY_LINKED),
            LinkError::Conflict => Self::new(codes::CONFLICT),
            LinkError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for LinkError {
    const CODES: &'static [ErrorCode] = &[
        codes::FORBIDDEN,
        codes::CUSTOMER_NOT_FOUND,
        codes::UNKNOWN_AFFILIATION,
        codes::AFFILIATION_REQUIRED,
        codes::AFFILIATION_MISMATCH,
        codes::ALREADY_LINKED,
        codes::INVALID_LEGACY_CREDENTIALS,
        codes::LEGACY_ALREADY_LINKED,
        codes::CONFLICT,
    ];
}

impl From<AdminRequestError> for ApiError {
    fn from(e: AdminRequestError) -> Self {
        match e {
            AdminRequestError::NotFound => Self::new(codes::NOT_FOUND),
            AdminRequestError::Forbidden => Self::new(codes::FORBIDDEN),
            AdminRequestError::NotEligible => Self::new(codes::NOT_ELIGIBLE),
            AdminRequestError::AlreadyAdmin => Self::new(codes::ALREADY_ADMIN),
            AdminRequestError::AlreadyRequested => Self::new(codes::ALREADY_REQUESTED),
            AdminRequestError::WrongState(s) => {
                Self::with_message(codes::WRONG_STATE, e.to_string())
                    .details(json!({ "status": s.key() }))
            }
            AdminRequestError::RequesterIneligible => Self::new(codes::REQUESTER_INELIGIBLE),
            AdminRequestError::Conflict => Self::new(codes::CONFLICT),
            AdminRequestError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for AdminRequestError {
    const CODES: &'static [ErrorCode] = &[
        codes::NOT_FOUND,
        codes::FORBIDDEN,
        codes::NOT_ELIGIBLE,
        codes::ALREADY_ADMIN,
        codes::ALREADY_REQUESTED,
        codes::WRONG_STATE,
        codes::REQUESTER_INELIGIBLE,
        codes::CONFLICT,
    ];
}

impl From<ContactError> for ApiError {
    fn from(e: ContactError) -> Self {
        match e {
            ContactError::NotLinked => Self::new(codes::NOT_LINKED),
            ContactError::NoAdmin => Self::new(codes::NO_ADMIN),
            ContactError::Forbidden => Self::new(codes::FORBIDDEN),
            ContactError::Conflict => Self::new(codes::CONFLICT),
            ContactError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for ContactError {
    const CODES: &'static [ErrorCode] = &[
        codes::NOT_LINKED,
        codes::NO_ADMIN,
        codes::FORBIDDEN,
        codes::CONFLICT,
    ];
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => Self::new(codes::NOT_FOUND),
            AdminError::Forbidden => Self::new(codes::FORBIDDEN),
            AdminError::Paging(p) => p.into(),
            AdminError::NotGrantable(keys) => {
                Self::new(codes::NOT_GRANTABLE).details(json!({ "keys": keys }))
            }
            AdminError::UnknownGroup => Self::new(codes::UNKNOWN_GROUP),
            AdminError::WrongState(s) => Self::with_message(codes::WRONG_STATE, e.to_string())
                .details(json!({ "status": s.key() })),
            AdminError::LastAdmin => Self::new(codes::LAST_ADMIN),
            AdminError::AlreadyMember => Self::new(codes::ALREADY_MEMBER),
            AdminError::EmailUnavailable => Self::new(codes::EMAIL_UNAVAILABLE),
            AdminError::Conflict => Self::new(codes::CONFLICT),
            AdminError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for AdminError {
    const CODES: &'static [ErrorCode] = &[
        codes::NOT_FOUND,
        codes::FORBIDDEN,
        codes::INVALID_CURSOR,
        codes::INVALID_PAGE_SIZE,
        codes::PAGE_OUT_OF_RANGE,
        codes::NOT_GRANTABLE,
        codes::UNKNOWN_GROUP,
        codes::WRONG_STATE,
        codes::LAST_ADMIN,
        codes::ALREADY_MEMBER,
        codes::EMAIL_UNAVAILABLE,
        codes::CONFLICT,
    ];
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::NotFound => Self::new(codes::NOT_FOUND),
            AuditError::Forbidden => Self::new(codes::FORBIDDEN),
            AuditError::Paging(p) => p.into(),
            AuditError::Broken(b) => {
                Self::with_message(codes::CHAIN_BROKEN, format!("audit chain broken: {b}"))
            }
            AuditError::Conflict => Self::new(codes::CONFLICT),
            AuditError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for AuditError {
    const CODES: &'static [ErrorCode] = &[
        codes::NOT_FOUND,
        codes::FORBIDDEN,
        codes::INVALID_CURSOR,
        codes::INVALID_PAGE_SIZE,
        codes::PAGE_OUT_OF_RANGE,
        codes::CHAIN_BROKEN,
        codes::CONFLICT,
    ];
}

impl From<CustomerError> for ApiError {
    fn from(e: CustomerError) -> Self {
        match e {
            CustomerError::Forbidden => Self::new(codes::FORBIDDEN),
            CustomerError::NotFound => Self::new(codes::NOT_FOUND),
            CustomerError::NumberTaken => Self::new(codes::NUMBER_TAKEN),
            CustomerError::UnknownAffiliation(a) => {
                Self::new(codes::UNKNOWN_AFFILIATION).details(json!({ "affiliation": a }))
            }
            CustomerError::UnknownPermissions(keys) => {
                Self::new(codes::UNKNOWN_PERMISSIONS).details(json!({ "keys": keys }))
            }
            CustomerError::EmailUnavailable => Self::new(codes::EMAIL_UNAVAILABLE),
            CustomerError::InvalidRow { row, reason } => {
                Self::with_message(codes::INVALID_ROW, format!("row {row}: {reason}"))
                    .details(json!({ "row": row, "reason": reason }))
            }
            CustomerError::Paging(p) => p.into(),
            CustomerError::Conflict => Self::new(codes::CONFLICT),
            CustomerError::Infra(i) => Self::infra(&i),
        }
    }
}
impl Documented for CustomerError {
    const CODES: &'static [ErrorCode] = &[
        codes::FORBIDDEN,
        codes::NOT_FOUND,
        codes::NUMBER_TAKEN,
        codes::UNKNOWN_AFFILIATION,
        codes::UNKNOWN_PERMISSIONS,
        codes::EMAIL_UNAVAILABLE,
        codes::INVALID_ROW,
        codes::INVALID_CURSOR,
        codes::INVALID_PAGE_SIZE,
        codes::PAGE_OUT_OF_RANGE,
        codes::CONFLICT,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use portal_core::admin_request::AdminRequestStatus;
    use portal_core::user::UserStatus;

    fn check<E: Documented>(errors: Vec<E>)
    where
        ApiError: From<E>,
    {
        for e in errors {
            let api = ApiError::from(e);
            let c = api.code();
            assert!(
                E::CODES.contains(&c) || sets::ALWAYS.contains(&c),
                "{} ({}) is not documented for {}",
                c.code,
                c.status,
                std::any::type_name::<E>()
            );
        }
    }

    fn infra() -> InfraError {
        InfraError::Store(StoreError::backend("x"))
    }

    #[test]
    fn codes_are_unique_snake_case_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for c in codes::ALL {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(
                c.code
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{}",
                c.code
            );
            assert!(StatusCode::from_u16(c.status).is_ok());
            assert!(c.status >= 400);
        }
    }

    #[test]
    fn every_variant_maps_to_a_documented_code() {
        let t = Utc::now();
        check(vec![
            LoginError::InvalidCredentials,
            LoginError::Throttled { retry_at: t },
            LoginError::Conflict,
            LoginError::Infra(infra()),
        ]);
        check(vec![
            AuthError::Unauthenticated,
            AuthError::Conflict,
            AuthError::Infra(infra()),
        ]);
        check(vec![
            RegisterError::Password(PasswordError::Blocklisted),
            RegisterError::Conflict,
            RegisterError::Infra(infra()),
        ]);
        check(vec![
            ResendError::InvalidTicket,
            ResendError::TooSoon { retry_at: t },
            ResendError::TooMany,
            ResendError::Conflict,
            ResendError::Infra(infra()),
        ]);
        check(vec![
            VerifyError::InvalidTicket,
            VerifyError::MalformedCode,
            VerifyError::WrongCode,
            VerifyError::CodeExpired,
            VerifyError::TooManyAttempts,
            VerifyError::InvitationInvalid,
            VerifyError::AlreadyRegistered,
            VerifyError::Conflict,
            VerifyError::Infra(infra()),
        ]);
        check(vec![
            InvitationError::NotFound,
            InvitationError::Expired,
            InvitationError::Used,
            InvitationError::Password(PasswordError::TooShort { min: 8 }),
            InvitationError::Conflict,
            InvitationError::Infra(infra()),
        ]);
        check(vec![
            ResetError::InvalidLink,
            ResetError::Expired,
            ResetError::Used,
            ResetError::Password(PasswordError::ConfirmationMismatch),
            ResetError::Conflict,
            ResetError::Infra(infra()),
        ]);
        check(vec![
            MfaError::NoPendingLogin,
            MfaError::MalformedCode,
            MfaError::WrongCode,
            MfaError::CodeExpired,
            MfaError::AttemptsExhausted,
            MfaError::Throttled { retry_at: t },
            MfaError::NoSuchFactor,
            MfaError::ReauthRequired,
            MfaError::AlreadyEnabled,
            MfaError::NotEnabled,
            MfaError::NoSetupInProgress,
            MfaError::Unavailable,
            MfaError::SendFailed(portal_core::ports::SmsError("down".into())),
            MfaError::SamePhone,
            MfaError::WrongPassword,
            MfaError::Conflict,
            MfaError::Infra(infra()),
        ]);
        check(vec![
            ProfileError::Unauthenticated,
            ProfileError::WrongPassword,
            ProfileError::Throttled { retry_at: t },
            ProfileError::Password(PasswordError::TooLong { max: 128 }),
            ProfileError::ReauthRequired,
            ProfileError::EmailUnavailable,
            ProfileError::SameEmail,
            ProfileError::InvalidTicket,
            ProfileError::MalformedCode,
            ProfileError::WrongCode,
            ProfileError::CodeExpired,
            ProfileError::TooManyAttempts,
            ProfileError::Conflict,
            ProfileError::Infra(infra()),
        ]);
        check(vec![
            SessionError::NotFound,
            SessionError::Conflict,
            SessionError::Infra(infra()),
        ]);
        check(vec![
            LinkError::Forbidden,
            LinkError::CustomerNotFound,
            LinkError::UnknownAffiliation,
            LinkError::AffiliationRequired,
            LinkError::AffiliationMismatch,
            LinkError::AlreadyLinked,
            LinkError::InvalidLegacyCredentials,
            LinkError::LegacyAlreadyLinked,
            LinkError::Conflict,
            LinkError::Infra(infra()),
        ]);
        check(vec![
            AdminRequestError::NotFound,
            AdminRequestError::Forbidden,
            AdminRequestError::NotEligible,
            AdminRequestError::AlreadyAdmin,
            AdminRequestError::AlreadyRequested,
            AdminRequestError::WrongState(AdminRequestStatus::Approved),
            AdminRequestError::RequesterIneligible,
            AdminRequestError::Conflict,
            AdminRequestError::Infra(infra()),
        ]);
        check(vec![
            ContactError::NotLinked,
            ContactError::NoAdmin,
            ContactError::Forbidden,
            ContactError::Conflict,
            ContactError::Infra(infra()),
        ]);
        check(vec![
            AdminError::NotFound,
            AdminError::Forbidden,
            AdminError::Paging(PagingError::InvalidCursor),
            AdminError::Paging(PagingError::InvalidSize { max: 100 }),
            AdminError::Paging(PagingError::PageOutOfRange),
            AdminError::NotGrantable(vec!["x".into()]),
            AdminError::UnknownGroup,
            AdminError::WrongState(UserStatus::Active),
            AdminError::LastAdmin,
            AdminError::AlreadyMember,
            AdminError::EmailUnavailable,
            AdminError::Conflict,
            AdminError::Infra(infra()),
        ]);
        check(vec![
            AuditError::NotFound,
            AuditError::Forbidden,
            AuditError::Paging(PagingError::InvalidCursor),
            AuditError::Conflict,
            AuditError::Infra(infra()),
        ]);
        check(vec![
            CustomerError::Forbidden,
            CustomerError::NotFound,
            CustomerError::NumberTaken,
            CustomerError::UnknownAffiliation("x".into()),
            CustomerError::UnknownPermissions(vec!["x".into()]),
            CustomerError::EmailUnavailable,
            CustomerError::InvalidRow {
                row: 1,
                reason: "x".into(),
            },
            CustomerError::Paging(PagingError::PageOutOfRange),
            CustomerError::Conflict,
            CustomerError::Infra(infra()),
        ]);
    }

    #[test]
    fn the_audit_operations_document_every_audit_code_but_chain_broken() {
        let missing: Vec<&str> = AuditError::CODES
            .iter()
            .filter(|c| !sets::AUDIT.contains(c))
            .map(|c| c.code)
            .collect();
        assert_eq!(missing, ["chain_broken"]);
        assert!(sets::AUDIT.iter().all(|c| AuditError::CODES.contains(c)));
    }

    #[test]
    fn docs_api_md_lists_every_code_with_its_status() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let doc = std::fs::read_to_string(path).expect("docs/api.md");
        for c in codes::ALL {
            let row = format!("| `{}` | {} |", c.code, c.status);
            assert!(doc.contains(&row), "docs/api.md lacks {row}");
        }
    }

    #[test]
    fn unavailable_storage_is_503_and_other_failures_500() {
        let e = ApiError::from(LoginError::Infra(InfraError::Store(
            StoreError::Unavailable("down".into()),
        )));
        assert_eq!(e.code().status, 503);
        let e = ApiError::from(LoginError::Infra(infra()));
        assert_eq!(e.code().status, 500);
    }
}
