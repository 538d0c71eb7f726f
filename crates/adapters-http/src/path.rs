//! Typed path parameters, shared by the JSON API and the web UI: each route's parameters parse
//! into the core's values at the boundary (`CustomerPath(CustomerNumber)`, [`UserPath`] with its
//! `UserId`, …), so a handler never sees a raw string and never parses one itself.
//!
//! A refused parameter is a [`PathError`]. The API answers it in the error shape with its own
//! code (`invalid_customer_number`, `invalid_id`, `unknown_group`, or `invalid_request` for a
//! path that cannot be read at all). The web UI's route types (`web::urls`: one type per page,
//! `UserLock { number, id }`) extract through these same types and answer the 404 page for a
//! value that names nothing and the 400 page for an unreadable path.
//!
//! ```
//! use adapters_http::path::UserPath;
//! use adapters_http::ApiError;
//!
//! async fn show(UserPath { number, id }: UserPath) -> Result<String, ApiError> {
//!     Ok(format!("user {id} of customer {number}"))
//! }
//! # let _ = axum::Router::<()>::new().route("/customers/{number}/users/{id}", axum::routing::get(show));
//! ```

use crate::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use portal_core::ids::{AdminRequestId, OutboxId, SessionId, UserId};
use portal_core::permission::{GroupKey, PermissionKey};
use portal_core::values::{CustomerNumber, CustomerNumberError};
use serde::Deserialize;
use std::str::FromStr;

/// Why a path parameter was refused. The value itself is never repeated.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The parameters cannot be read (not UTF-8 once percent-decoded).
    #[error("bad path")]
    Unreadable(#[source] PathRejection),
    /// `{number}` is not a customer number.
    #[error("invalid customer number: {0}")]
    CustomerNumber(CustomerNumberError),
    /// `{id}` is not a UUID.
    #[error("invalid id")]
    Id,
    /// `{group}` is not a permission group key.
    #[error("unknown group")]
    Group,
    /// `{key}` is not a permission key (no protected area has it).
    #[error("unknown area")]
    Area,
}

/// The message for a path that cannot be read: which parameter, never its value.
fn unreadable(rejection: &PathRejection) -> String {
    use axum::extract::path::ErrorKind;
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => {
                format!("bad path: `{key}` is not UTF-8 once decoded")
            }
            _ => "bad path".to_owned(),
        },
        _ => "bad path".to_owned(),
    }
}

crate::error_mapping! {
    PathError {
        Unreadable(r) => InvalidRequest.message(unreadable(&r)),
        e @ CustomerNumber(_) => InvalidCustomerNumber.message(e.to_string()),
        Id => InvalidId,
        Group => UnknownGroup,
        Area => NotFound,
    }
}

impl IntoResponse for PathError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

fn number(raw: &str) -> Result<CustomerNumber, PathError> {
    CustomerNumber::parse(raw).map_err(PathError::CustomerNumber)
}

fn id<T: FromStr>(raw: &str) -> Result<T, PathError> {
    T::from_str(raw).map_err(|_| PathError::Id)
}

/// A typed path: the raw parameters by name, and how they parse.
trait Params: Sized {
    /// The parameters as strings, by name.
    type Raw: for<'de> Deserialize<'de> + Send;
    /// The parsed values.
    fn parse(raw: Self::Raw) -> Result<Self, PathError>;
}

/// Implements `FromRequestParts` (rejection [`PathError`]) for typed paths through [`Params`].
macro_rules! typed_paths {
    ($($ty:ty),* $(,)?) => {$(
        impl<S: Send + Sync> FromRequestParts<S> for $ty {
            type Rejection = PathError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PathError> {
                let Path(raw) = Path::<<$ty as Params>::Raw>::from_request_parts(parts, state)
                    .await
                    .map_err(PathError::Unreadable)?;
                <$ty as Params>::parse(raw)
            }
        }
    )*};
}

typed_paths!(
    CustomerPath,
    UserPath,
    GroupPath,
    CustomerRequestPath,
    AdminRequestPath,
    SessionPath,
    MailPath,
    TokenPath,
    AreaPath,
    ClientPath,
    PasskeyPath,
    WebhookPath,
);

#[derive(Deserialize)]
struct RawNumber {
    number: String,
}

#[derive(Deserialize)]
struct RawNumberId {
    number: String,
    id: String,
}

#[derive(Deserialize)]
struct RawGroup {
    number: String,
    id: String,
    group: String,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawToken {
    token: String,
}

#[derive(Deserialize)]
struct RawKey {
    key: String,
}

/// `{number}`: a customer number (`123456789` or the printed `D123456789`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerPath(pub CustomerNumber);

impl Params for CustomerPath {
    type Raw = RawNumber;
    fn parse(raw: RawNumber) -> Result<Self, PathError> {
        number(&raw.number).map(Self)
    }
}

/// `{number}/…/{id}`: a user of a customer (the number is checked first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPath {
    /// The customer.
    pub number: CustomerNumber,
    /// The user.
    pub id: UserId,
}

impl Params for UserPath {
    type Raw = RawNumberId;
    fn parse(raw: RawNumberId) -> Result<Self, PathError> {
        Ok(Self {
            number: number(&raw.number)?,
            id: id(&raw.id)?,
        })
    }
}

/// `{number}/…/{id}/…/{group}`: a permission group on a user's permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPath {
    /// The customer.
    pub number: CustomerNumber,
    /// The user.
    pub id: UserId,
    /// The group.
    pub group: GroupKey,
}

impl Params for GroupPath {
    type Raw = RawGroup;
    fn parse(raw: RawGroup) -> Result<Self, PathError> {
        Ok(Self {
            number: number(&raw.number)?,
            id: id(&raw.id)?,
            group: GroupKey::parse(&raw.group).map_err(|_| PathError::Group)?,
        })
    }
}

/// `{number}/admin-requests/{id}`: an admin request of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRequestPath {
    /// The customer.
    pub number: CustomerNumber,
    /// The request.
    pub id: AdminRequestId,
}

impl Params for CustomerRequestPath {
    type Raw = RawNumberId;
    fn parse(raw: RawNumberId) -> Result<Self, PathError> {
        Ok(Self {
            number: number(&raw.number)?,
            id: id(&raw.id)?,
        })
    }
}

/// `admin-requests/{id}`: an admin request (operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminRequestPath(pub AdminRequestId);

/// `sessions/{id}`: one of the user's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPath(pub SessionId);

/// `outbox/{id}`: a message of the outbox (of any kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailPath(pub OutboxId);

macro_rules! id_paths {
    ($($ty:ident),*) => {$(
        impl Params for $ty {
            type Raw = RawId;
            fn parse(raw: RawId) -> Result<Self, PathError> {
                id(&raw.id).map(Self)
            }
        }
    )*};
}
id_paths!(
    AdminRequestPath,
    SessionPath,
    MailPath,
    PasskeyPath,
    WebhookPath
);

/// `webhooks/{id}`: a webhook endpoint (operators). Its id is a UUID; anything else is
/// `invalid_id`, and an id that names no endpoint is the core's `not_found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookPath(pub uuid::Uuid);

/// `passkeys/{id}`: one of the user's passkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasskeyPath(pub uuid::Uuid);

/// `clients/{id}`: an application registered with the OpenID Connect provider. Its id is as the
/// server mints it (32 hex digits), or at most 64 letters, digits, `-` and `_`; anything else is
/// `invalid_id`, and an id that names no client is the core's `not_found`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPath(pub String);

impl Params for ClientPath {
    type Raw = RawId;
    fn parse(raw: RawId) -> Result<Self, PathError> {
        let ok = (1..=64).contains(&raw.id.len())
            && raw
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.id))
        } else {
            Err(PathError::Id)
        }
    }
}

/// `{token}`: the token of a mailed link (invitation, password reset). It is opaque here; the
/// core looks it up and answers an unknown or malformed one like any other unknown link.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPath(pub String);

impl std::fmt::Debug for TokenPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPath(…)")
    }
}

impl Params for TokenPath {
    type Raw = RawToken;
    fn parse(raw: RawToken) -> Result<Self, PathError> {
        Ok(Self(raw.token))
    }
}

/// `{key}`: the permission key of a protected area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaPath(pub PermissionKey);

impl Params for AreaPath {
    type Raw = RawKey;
    fn parse(raw: RawKey) -> Result<Self, PathError> {
        PermissionKey::parse(&raw.key)
            .map(Self)
            .map_err(|_| PathError::Area)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Documented, ErrorCode};
    use axum::http::Request;

    /// Extracts `T` from `uri` on a router with `route`: the value's `Debug`, or the code.
    async fn extract<T>(route: &str, uri: &str) -> Result<String, ErrorCode>
    where
        T: FromRequestParts<(), Rejection = PathError> + std::fmt::Debug + Send + 'static,
    {
        let app = axum::Router::new().route(
            route,
            axum::routing::get(|r: Result<T, PathError>| async move {
                match r {
                    Ok(v) => format!("ok {v:?}"),
                    Err(e) => ApiError::from(e).code().as_str().to_owned(),
                }
            }),
        );
        let r = tower::ServiceExt::oneshot(
            app,
            Request::get(uri).body(axum::body::Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        let body = axum::body::to_bytes(r.into_body(), 10_000).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        match text.strip_prefix("ok ") {
            Some(v) => Ok(v.to_owned()),
            None => Err(*ErrorCode::ALL.iter().find(|c| c.as_str() == text).unwrap()),
        }
    }

    const USER: &str = "/customers/{number}/users/{id}";
    const GROUP: &str = "/c/{number}/u/{id}/g/{group}";
    const UUID: &str = "00000000-0000-7000-8000-000000000001";

    #[tokio::test]
    async fn paths_parse_into_domain_values() {
        let user = extract::<UserPath>(USER, &format!("/customers/D123456789/users/{UUID}"))
            .await
            .unwrap();
        assert!(
            user.contains("\"123456789\"") && user.contains(UUID),
            "{user}"
        );
        let number = extract::<CustomerPath>("/c/{number}", "/c/%20123456789")
            .await
            .unwrap();
        assert!(number.contains("\"123456789\""), "{number}");
        let group = extract::<GroupPath>(GROUP, &format!("/c/123456789/u/{UUID}/g/meine-daten"))
            .await
            .unwrap();
        assert!(group.contains("meine-daten"), "{group}");
        let token = extract::<TokenPath>("/t/{token}", "/t/secret-token")
            .await
            .unwrap();
        assert!(
            !token.contains("secret"),
            "tokens stay out of Debug: {token}"
        );
    }

    #[tokio::test]
    async fn bad_values_get_their_own_codes_and_the_number_is_checked_first() {
        let e = |r: Result<String, ErrorCode>| r.unwrap_err();
        assert_eq!(
            e(extract::<UserPath>(USER, "/customers/12/users/nope").await),
            ErrorCode::InvalidCustomerNumber
        );
        assert_eq!(
            e(extract::<UserPath>(USER, "/customers/123456789/users/nope").await),
            ErrorCode::InvalidId
        );
        assert_eq!(
            e(extract::<SessionPath>("/s/{id}", "/s/42").await),
            ErrorCode::InvalidId
        );
        assert_eq!(
            e(extract::<GroupPath>(GROUP, &format!("/c/123456789/u/{UUID}/g/NO%20KEY")).await),
            ErrorCode::UnknownGroup
        );
        assert_eq!(
            e(extract::<AreaPath>("/a/{key}", "/a/NO%20KEY").await),
            ErrorCode::NotFound
        );
        assert_eq!(
            e(extract::<CustomerPath>("/c/{number}", "/c/%FF%FE").await),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn refused_values_are_not_repeated_and_every_code_is_documented() {
        let e = ApiError::from(PathError::CustomerNumber(
            CustomerNumber::parse("12345x").unwrap_err(),
        ));
        assert_eq!(e.code(), ErrorCode::InvalidCustomerNumber);
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidCustomerNumber,
            ErrorCode::InvalidId,
            ErrorCode::UnknownGroup,
            ErrorCode::NotFound,
        ] {
            assert!(PathError::CODES.contains(&code), "{code}");
        }
    }
}
