//! Extractors shared by the JSON API and the web UI. Each one fails with an [`ApiError`] in the
//! one error shape, never with axum's plain-text rejections, and sorts failures by the
//! rejection's *type* ([`JsonRejection`], [`BytesRejection`], [`QueryRejection`]), never by its
//! text. Path parameters have their own typed extractors in [`crate::path`].
//!
//! Body limits are `axum::extract::DefaultBodyLimit` layers on the API's routes (the configured
//! `body_limit`, and `import_body_limit` for the customer import); a body over the limit is a
//! `LengthLimitError` and answers 413 `payload_too_large`.

use crate::cookies::{self, CookieName};
use crate::error::{ApiError, ErrorCode};
use crate::middleware::{ClientContext, is_csv, is_json};
use crate::ratelimit::Bucket;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use portal_core::service::Principal;
use portal_core::values::CustomerNumber;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A JSON body (`Content-Type: application/json`, at most the configured size), parsed into `T`
/// by axum's `Json`. Request types use `#[serde(deny_unknown_fields)]`.
#[derive(Debug, Clone, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// An optional JSON body: an empty body gives `T::default()`.
#[derive(Debug, Clone)]
pub struct MaybeJson<T>(pub T);

impl<T, S> FromRequest<S> for MaybeJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req.headers().get(header::CONTENT_TYPE).map(is_json);
        let bytes = Bytes::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if json != Some(true) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// A `text/csv` body (UTF-8).
#[derive(Debug, Clone)]
pub struct CsvBody(pub String);

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !req.headers().get(header::CONTENT_TYPE).is_some_and(is_csv) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
        }
        let bytes = Bytes::from_request(req, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(Self)
            .map_err(|_| ApiError::with_message(ErrorCode::InvalidRequest, "the CSV is not UTF-8"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => data_error(serde_error(&e)),
            JsonRejection::JsonSyntaxError(e) => {
                let position = serde_error(&e).map_or_else(String::new, |e| {
                    format!(" (line {}, column {})", e.line(), e.column())
                });
                Self::with_message(
                    ErrorCode::MalformedJson,
                    format!("the body is not valid JSON{position}"),
                )
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(ErrorCode::UnsupportedMediaType),
            JsonRejection::BytesRejection(e) => e.into(),
            _ => Self::with_message(ErrorCode::InvalidRequest, "the body could not be read"),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                Self::new(ErrorCode::PayloadTooLarge)
            }
            _ => Self::with_message(ErrorCode::InvalidRequest, "the body could not be read"),
        }
    }
}

/// serde_json's error behind a JSON rejection: axum wraps it (with the path to the field, by
/// `serde_path_to_error`) as the rejection's source.
fn serde_error<'a>(
    rejection: &'a (dyn std::error::Error + 'static),
) -> Option<&'a serde_json::Error> {
    let mut source = rejection.source();
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            return Some(e.inner());
        }
        if let Some(e) = e.downcast_ref::<serde_json::Error>() {
            return Some(e);
        }
        source = e.source();
    }
    None
}

/// What serde found wrong in a body that is valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DataProblem {
    /// A field the type does not know (`deny_unknown_fields`); serde's message names it.
    UnknownField(String),
    /// A required field is absent; serde's message names it.
    MissingField(String),
    /// A value of the wrong type or out of range; what was expected (never the value).
    Mismatch(String),
    /// Anything else (a value type refused the value).
    Invalid,
}

/// Sorts serde's complaint. serde_json tells an unknown field from a missing one or a wrong type
/// only in its message, worded by serde's `de::Error` constructors (`unknown_field`,
/// `missing_field`, `invalid_type`, `invalid_value`), so this is the one place that reads it;
/// the part of the message that may hold the value (before `, expected`) is never kept.
fn classify(e: &serde_json::Error) -> DataProblem {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    if text.starts_with("unknown field `") {
        DataProblem::UnknownField(text.to_owned())
    } else if text.starts_with("missing field `") {
        DataProblem::MissingField(text.to_owned())
    } else if let Some((_, expected)) = text.split_once(", expected ") {
        DataProblem::Mismatch(expected.to_owned())
    } else {
        DataProblem::Invalid
    }
}

/// The answer to a body that is valid JSON but not a valid request: `unknown_field` or
/// `invalid_request`. Values from the body are never echoed (a password must not come back in
/// an error message); field names are.
fn data_error(e: Option<&serde_json::Error>) -> ApiError {
    match e.map(classify).unwrap_or(DataProblem::Invalid) {
        DataProblem::UnknownField(message) => {
            ApiError::with_message(ErrorCode::UnknownField, message)
        }
        DataProblem::MissingField(message) => {
            ApiError::with_message(ErrorCode::InvalidRequest, message)
        }
        DataProblem::Mismatch(expected) => ApiError::with_message(
            ErrorCode::InvalidRequest,
            format!("a field has the wrong type or value; expected {expected}"),
        ),
        DataProblem::Invalid => {
            ApiError::with_message(ErrorCode::InvalidRequest, "a field has an invalid value")
        }
    }
}

/// Query parameters.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Self(q.0)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                // serde_urlencoded's complaint (the query is the client's own, and is not logged).
                let why = std::error::Error::source(&e)
                    .and_then(std::error::Error::source)
                    .map_or_else(|| "invalid".to_owned(), ToString::to_string);
                Err(ApiError::with_message(
                    ErrorCode::InvalidRequest,
                    format!("bad query: {why}"),
                ))
            }
            Err(_) => Err(ApiError::with_message(
                ErrorCode::InvalidRequest,
                "bad query",
            )),
        }
    }
}

/// Parses a customer number from a body or a query.
///
/// # Errors
/// `invalid_customer_number`.
pub fn customer_number(raw: &str) -> Result<CustomerNumber, ApiError> {
    CustomerNumber::parse(raw).map_err(|e| {
        ApiError::with_message(
            ErrorCode::InvalidCustomerNumber,
            format!("invalid customer number: {e}"),
        )
    })
}

/// Where the request comes from (set by the request middleware).
#[derive(Debug, Clone)]
pub struct Client(pub ClientContext);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(
            parts
                .extensions
                .get::<ClientContext>()
                .cloned()
                .unwrap_or_default(),
        ))
    }
}

/// The session of the request: its user as stored now (a lock, deletion or role change applies
/// at once). Only a full session counts: the pending second step's cookie and a remembered
/// device authenticate nothing here.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The authenticated party.
    pub principal: Principal,
    /// The session token (to rotate or end the session).
    pub token: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    /// Refuses a user who must set up a second factor first (R22) with
    /// `second_factor_required`: only the endpoints that take a [`SetupUser`] serve them.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let SetupUser(user) = SetupUser::from_request_parts(parts, state).await?;
        if user.principal.second_factor_missing() {
            return Err(ApiError::new(ErrorCode::SecondFactorRequired));
        }
        Ok(user)
    }
}

/// The session of the request like [`CurrentUser`], also when the user still has to set up a
/// required second factor (R22): for the second-factor setup and re-authentication endpoints,
/// the only ones such a user may reach (with logout).
#[derive(Debug, Clone)]
pub struct SetupUser(pub CurrentUser);

impl FromRequestParts<AppState> for SetupUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = cookies::read(&parts.headers, state.config(), CookieName::Session)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
        let principal = state.portal().authenticate(&token).await?;
        Ok(Self(CurrentUser { principal, token }))
    }
}

/// The token of the pending second step of a login (its own cookie; useful only on the
/// `/auth/login/mfa*` endpoints).
#[derive(Debug, Clone)]
pub struct PendingLogin(pub String);

impl FromRequestParts<AppState> for PendingLogin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        cookies::read(&parts.headers, state.config(), CookieName::PendingMfa)
            .map(Self)
            .ok_or_else(|| ApiError::new(ErrorCode::NoPendingLogin))
    }
}

/// The endpoint groups, as types for [`Limit`].
pub mod buckets {
    use super::Bucket;
    /// A group.
    pub trait Group {
        /// Which.
        const BUCKET: Bucket;
    }
    macro_rules! group {
        ($($name:ident),*) => {$(
            #[doc = concat!("The `", stringify!($name), "` group.")]
            #[derive(Debug)]
            pub struct $name;
            impl Group for $name { const BUCKET: Bucket = Bucket::$name; }
        )*};
    }
    group!(Login, Mfa, Registration, Codes, Password);
}

/// Takes a token from the client's bucket of group `G`, or answers 429 `rate_limited` with
/// `Retry-After`. Put it first among a handler's arguments.
#[derive(Debug)]
pub struct Limit<G>(PhantomData<G>);

impl<G: buckets::Group> FromRequestParts<AppState> for Limit<G> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts.extensions.get::<ClientContext>().and_then(|c| c.ip);
        match state.limiter().take(G::BUCKET, ip) {
            Ok(()) => Ok(Self(PhantomData)),
            Err(wait) => {
                tracing::warn!(target: "portal_http", bucket = ?G::BUCKET, "rate limited");
                Err(ApiError::new(ErrorCode::RateLimited).retry_after(wait.as_secs() + 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        password: String,
        n: u32,
    }

    fn parse_json(bytes: &[u8]) -> Result<T, ApiError> {
        axum::Json::<T>::from_bytes(bytes)
            .map(|j| j.0)
            .map_err(ApiError::from)
    }

    #[test]
    fn json_errors_are_sorted_and_never_echo_values() {
        let e = parse_json(b"{").unwrap_err();
        assert_eq!(e.code(), ErrorCode::MalformedJson);
        let e = parse_json(br#"{"password":"x","n":1,"extra":1}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownField);
        let e = parse_json(br#"{"password":"x"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = parse_json(br#"{"password":"hunter2secret","n":"hunter2secret"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
        assert!(parse_json(br#"{"password":"x","n":1}"#).is_ok());
    }

    #[test]
    fn serde_complaints_are_classified_in_one_place() {
        let problem = |body: &[u8]| {
            let e = serde_json::from_slice::<T>(body).unwrap_err();
            classify(&e)
        };
        assert!(matches!(
            problem(br#"{"password":"x","n":1,"admin":true}"#),
            DataProblem::UnknownField(m) if m.starts_with("unknown field `admin`")
        ));
        assert_eq!(
            problem(br#"{"password":"x"}"#),
            DataProblem::MissingField("missing field `n`".into())
        );
        assert_eq!(
            problem(br#"{"password":"geheim","n":"geheim"}"#),
            DataProblem::Mismatch("u32".into())
        );
        assert_eq!(
            problem(br#"{"password":"x","n":-1}"#),
            DataProblem::Mismatch("u32".into())
        );
    }

    /// Sends `body` with `content_type` to a route taking `JsonBody<T>`, `MaybeJson<T>` or a
    /// `CsvBody` behind a 64-byte body limit; the answer's status and code.
    async fn send(path: &str, content_type: Option<&str>, body: String) -> (u16, String) {
        use axum::routing::post;
        let app = axum::Router::new()
            .route("/json", post(|JsonBody(_): JsonBody<T>| async {}))
            .route(
                "/maybe",
                post(|MaybeJson(_): MaybeJson<Option<T>>| async {}),
            )
            .route("/csv", post(|CsvBody(_): CsvBody| async {}))
            .layer(axum::extract::DefaultBodyLimit::max(64));
        let mut req = axum::http::Request::post(path);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let r = tower::ServiceExt::oneshot(app, req.body(axum::body::Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 10_000).await.unwrap();
        let code = serde_json::from_slice::<serde_json::Value>(&bytes)
            .map(|v| v["error"]["code"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        (status, code)
    }

    #[tokio::test]
    async fn rejections_are_sorted_by_their_type() {
        let json = Some("application/json");
        let ok = r#"{"password":"x","n":1}"#.to_owned();
        assert_eq!(send("/json", json, ok.clone()).await, (200, String::new()));
        let big = format!(r#"{{"password":"{}","n":1}}"#, "x".repeat(100));
        assert_eq!(
            send("/json", json, big.clone()).await,
            (413, "payload_too_large".into())
        );
        assert_eq!(
            send("/maybe", json, big).await,
            (413, "payload_too_large".into())
        );
        assert_eq!(
            send("/csv", Some("text/csv"), "x".repeat(100)).await,
            (413, "payload_too_large".into())
        );
        let cases = [
            (r#"{"password":"x","n":1,"admin":1}"#, 400, "unknown_field"),
            (r#"{"password":"x"}"#, 400, "invalid_request"),
            (r#"{"password":"x","n":"y"}"#, 400, "invalid_request"),
            (r#"{"password": "#, 400, "malformed_json"),
            ("not json", 400, "malformed_json"),
            ("", 400, "malformed_json"),
        ];
        for (body, status, code) in cases {
            assert_eq!(
                send("/json", json, body.into()).await,
                (status, code.into()),
                "{body}"
            );
        }
        assert_eq!(
            send("/json", Some("text/plain"), ok.clone()).await,
            (415, "unsupported_media_type".into())
        );
        assert_eq!(
            send("/json", None, ok.clone()).await,
            (415, "unsupported_media_type".into())
        );
        assert_eq!(
            send("/maybe", None, String::new()).await,
            (200, String::new())
        );
        assert_eq!(
            send("/maybe", None, ok.clone()).await,
            (415, "unsupported_media_type".into())
        );
        assert_eq!(
            send("/maybe", json, "{".into()).await,
            (400, "malformed_json".into())
        );
        assert_eq!(
            send("/csv", json, ok).await,
            (415, "unsupported_media_type".into())
        );
    }
}
