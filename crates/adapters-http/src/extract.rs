//! Extractors shared by the JSON API and the web UI. Each one fails with an [`ApiError`] in the
//! one error shape, never with axum's plain-text rejections.

use crate::cookies::{self, CookieName};
use crate::error::{ApiError, ErrorCode};
use crate::middleware::{ClientContext, body_limit, is_csv, is_json};
use crate::ratelimit::Bucket;
use crate::state::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use portal_core::service::Principal;
use portal_core::values::CustomerNumber;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::str::FromStr;

/// Reads a body of at most `limit` bytes.
async fn read_body(req: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large = e.to_string().contains("length limit")
                || std::error::Error::source(&e)
                    .is_some_and(|s| s.to_string().contains("length limit"));
            if too_large {
                ApiError::new(ErrorCode::PayloadTooLarge)
            } else {
                ApiError::with_message(ErrorCode::InvalidRequest, "the body could not be read")
            }
        })
}

/// Parses JSON into `T`, sorting serde's complaints into `malformed_json`, `unknown_field` and
/// `invalid_request`. Values from the body are never echoed (a password must not come back in
/// an error message); field names are.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::with_message(
                ErrorCode::MalformedJson,
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            ),
            Category::Data => {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or("").to_owned();
                if msg.starts_with("unknown field") {
                    ApiError::with_message(ErrorCode::UnknownField, msg)
                } else if msg.starts_with("missing field") {
                    ApiError::with_message(ErrorCode::InvalidRequest, msg)
                } else if let Some((_, expected)) = msg.split_once(", expected ") {
                    ApiError::with_message(
                        ErrorCode::InvalidRequest,
                        format!("a field has the wrong type or value; expected {expected}"),
                    )
                } else {
                    ApiError::with_message(
                        ErrorCode::InvalidRequest,
                        "a field has an invalid value",
                    )
                }
            }
        }
    })
}

/// A JSON body (`Content-Type: application/json`, at most the configured size), parsed into `T`.
/// Request types use `#[serde(deny_unknown_fields)]`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !req.headers().get(header::CONTENT_TYPE).is_some_and(is_json) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
        }
        let limit = body_limit(state.config(), req.uri().path());
        let bytes = read_body(req, limit).await?;
        parse_json(&bytes).map(Self)
    }
}

/// An optional JSON body: an empty body gives `T::default()`.
#[derive(Debug, Clone)]
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = req.headers().get(header::CONTENT_TYPE).map(is_json);
        let limit = body_limit(state.config(), req.uri().path());
        let bytes = read_body(req, limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if json != Some(true) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
        }
        parse_json(&bytes).map(Self)
    }
}

/// A `text/csv` body (UTF-8).
#[derive(Debug, Clone)]
pub struct CsvBody(pub String);

impl FromRequest<AppState> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !req.headers().get(header::CONTENT_TYPE).is_some_and(is_csv) {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
        }
        let limit = body_limit(state.config(), req.uri().path());
        let bytes = read_body(req, limit).await?;
        String::from_utf8(bytes.to_vec())
            .map(Self)
            .map_err(|_| ApiError::with_message(ErrorCode::InvalidRequest, "the CSV is not UTF-8"))
    }
}

/// Path parameters as strings (parsed by the handler into domain values, so a bad value gets
/// its own code: `invalid_customer_number`, `invalid_id`).
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| {
                ApiError::with_message(
                    ErrorCode::InvalidRequest,
                    format!("bad path: {}", e.body_text()),
                )
            })
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
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| {
                let text = e.body_text();
                let text = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                ApiError::with_message(ErrorCode::InvalidRequest, format!("bad query: {text}"))
            })
    }
}

/// Parses a customer number from the path or a body.
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

/// Parses an id from the path.
///
/// # Errors
/// `invalid_id`.
pub fn id<T: FromStr>(raw: &str) -> Result<T, ApiError> {
    T::from_str(raw).map_err(|_| ApiError::new(ErrorCode::InvalidId))
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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = cookies::read(&parts.headers, state.config(), CookieName::Session)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))?;
        let principal = state.portal().authenticate(&token).await?;
        Ok(Self { principal, token })
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

    #[test]
    fn json_errors_are_sorted_and_never_echo_values() {
        let e = parse_json::<T>(b"{").unwrap_err();
        assert_eq!(e.code(), ErrorCode::MalformedJson);
        let e = parse_json::<T>(br#"{"password":"x","n":1,"extra":1}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownField);
        let e = parse_json::<T>(br#"{"password":"x"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e =
            parse_json::<T>(br#"{"password":"hunter2secret","n":"hunter2secret"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(!format!("{e:?}").contains("hunter2secret"), "{e:?}");
        assert!(parse_json::<T>(br#"{"password":"x","n":1}"#).is_ok());
    }
}
