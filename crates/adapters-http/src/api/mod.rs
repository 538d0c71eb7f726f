//! The JSON API under `/api/v1`: handlers, request and response bodies, and the OpenAPI
//! document derived from them.

pub mod auth;
pub mod clients;
pub mod customers;
pub mod export;
pub mod health;
pub mod invitations;
pub mod me;
pub mod mfa;
pub mod operator;
pub mod passkeys;
pub mod views;

use crate::config::HttpConfig;
use crate::cookies::{self, CookieName};
use crate::csrf;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use portal_core::secret::SecretString;
use portal_core::service::{IssuedSession, SecondFactor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

/// A response under construction: status, cookies, an optional JSON body.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    cookies: Vec<HeaderValue>,
    body: Option<serde_json::Value>,
}

impl Reply {
    /// An empty answer with this status.
    #[must_use]
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            cookies: Vec::new(),
            body: None,
        }
    }

    /// Adds a `Set-Cookie`.
    pub fn cookie(&mut self, value: HeaderValue) {
        self.cookies.push(value);
    }

    /// Sets the JSON body.
    #[must_use]
    pub fn json<T: Serialize>(mut self, body: &T) -> Self {
        self.body = Some(serde_json::to_value(body).unwrap_or(serde_json::Value::Null));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, axum::Json(body)).into_response(),
            None => self.status.into_response(),
        };
        cookies::append(response.headers_mut(), self.cookies);
        response
    }
}

/// The session cookie for a freshly issued session.
pub(crate) fn session_cookie(state: &AppState, issued: &IssuedSession) -> HeaderValue {
    cookies::set(
        state.config(),
        CookieName::Session,
        issued.token.expose(),
        Some(auth::seconds_until(state, issued.expires_at)),
    )
}

/// The answer to a request that started a session: the cookie, the user and the new CSRF token.
pub(crate) async fn session_started(
    state: &AppState,
    status: StatusCode,
    issued: &IssuedSession,
) -> Result<Reply, ApiError> {
    let config = state.config();
    let principal = state.portal().authenticate(issued.token.expose()).await?;
    let mut reply = Reply::new(status);
    reply.cookie(session_cookie(state, issued));
    reply.cookie(crate::known_browser::issue(state, issued.user_id));
    let csrf_token = csrf::session_token(config, issued.token.expose());
    let user = views::MeView::new(principal.user(), principal.customer());
    Ok(if status == StatusCode::CREATED {
        reply.json(&auth::SessionStarted { user, csrf_token })
    } else {
        reply.json(&auth::LoginResponse::Authenticated {
            user: Box::new(user),
            csrf_token,
        })
    })
}

/// A second factor given with a request.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorInput {
    /// Which factor.
    pub method: auth::FactorMethod,
    /// Six digits (app or phone) or the recovery code (not for `passkey`).
    #[serde(default)]
    pub code: String,
    /// `passkey`: the challenge from `POST /api/v1/me/passkeys/presence-options`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<uuid::Uuid>,
    /// `passkey`: the `PublicKeyCredential` (JSON) answering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub credential: Option<serde_json::Value>,
}

impl FactorInput {
    pub(crate) fn into_factor(self) -> SecondFactor {
        let code = SecretString::new(self.code);
        match self.method {
            auth::FactorMethod::Totp => SecondFactor::Totp(code),
            auth::FactorMethod::PhoneCode => SecondFactor::PhoneCode(code),
            auth::FactorMethod::RecoveryCode => SecondFactor::RecoveryCode(code),
            // Without its challenge the answer is refused as malformed.
            auth::FactorMethod::Passkey => SecondFactor::Passkey {
                challenge_id: self.challenge_id.unwrap_or_default(),
                response: self.credential.unwrap_or_default(),
            },
        }
    }
}

/// Adds the security schemes with the cookie names of this configuration.
struct Security {
    session: String,
    pending: String,
}

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                self.session.clone(),
                "The session cookie (HttpOnly), set by login, the second step, registration \
                 and re-authentication."
                    .to_owned(),
            ))),
        );
        components.add_security_scheme(
            "pending_login",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                self.pending.clone(),
                "The pending second step's cookie, set by a login that needs a second factor; \
                 accepted only by /api/v1/auth/login/mfa*."
                    .to_owned(),
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The token from GET /api/v1/auth/csrf; required on every POST, PUT and DELETE.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portal API",
        description = "The JSON API of Portal, a B2B customer portal: self-service registration \
                       and login with second factors, customer administration and the operators' \
                       tools. Authentication is by cookies; every unsafe request carries the \
                       CSRF token from `GET /api/v1/auth/csrf` in `X-CSRF-Token`. Errors have one \
                       shape, `{\"error\": {\"code\", \"message\", \"details\"?, \"request_id\"?}}`, \
                       with stable codes (see docs/api.md).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Registration, login, logout, password reset, step-up"),
        (name = "invitations", description = "Invitation links"),
        (name = "me", description = "The logged-in user: profile, customer link, sessions"),
        (name = "mfa", description = "Second factors of the logged-in user"),
        (name = "customers", description = "A customer's administration (administrators and operators)"),
        (name = "operator", description = "Vendor staff: customers, admin requests, audit, outbox, applications (OpenID Connect clients)"),
    )
)]
struct ApiDoc;

/// The routes that take a larger body than [`HttpConfig::body_limit`]: the customer import (its
/// own [`crate::middleware::BodyLimit`], attached in [`crate::router`], and the extractors'
/// limit).
pub(crate) fn upload_routes(config: &HttpConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(operator::import_customers).layer(
        axum::extract::DefaultBodyLimit::max(config.import_body_limit),
    ))
}

/// Every documented route of the API, with its OpenAPI document.
pub(crate) fn routes(config: &HttpConfig) -> OpenApiRouter<AppState> {
    let mut doc = ApiDoc::openapi();
    Security {
        session: CookieName::Session.name(config),
        pending: CookieName::PendingMfa.name(config),
    }
    .modify(&mut doc);
    // The documented paths start at `/api/v1`; under a prefix (a host application nesting the
    // router at the public URL's path) they resolve against it.
    let prefix = config.public_path();
    doc.servers = Some(vec![
        utoipa::openapi::ServerBuilder::new()
            .url(if prefix.is_empty() { "/" } else { prefix })
            .description(Some("This portal (the path of its public URL)"))
            .build(),
    ]);
    OpenApiRouter::with_openapi(doc)
        // auth
        .routes(routes!(auth::csrf_token))
        .routes(routes!(auth::register))
        .routes(routes!(auth::verify))
        .routes(routes!(auth::resend))
        .routes(routes!(auth::login))
        .routes(routes!(auth::login_mfa))
        .routes(routes!(auth::login_phone_code))
        .routes(routes!(auth::login_recovery_code))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::forgot_password))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::reauthenticate))
        .routes(routes!(passkeys::sign_in_options))
        .routes(routes!(passkeys::sign_in))
        .routes(routes!(passkeys::second_factor_options))
        .routes(routes!(passkeys::second_factor))
        // invitations
        .routes(routes!(invitations::show))
        .routes(routes!(invitations::accept))
        // me
        .routes(routes!(me::show, me::update))
        .routes(routes!(me::change_password))
        .routes(routes!(me::start_email_change))
        .routes(routes!(me::confirm_email_change))
        .routes(routes!(me::choose_affiliation))
        .routes(routes!(me::link_customer))
        .routes(routes!(me::link_legacy))
        .routes(routes!(me::request_admin_rights))
        .routes(routes!(me::contact_admins))
        .routes(routes!(me::sessions, me::end_other_sessions))
        .routes(routes!(me::session, me::end_session))
        .routes(routes!(export::export_mine))
        // mfa
        .routes(routes!(mfa::remove))
        .routes(routes!(mfa::start_totp))
        .routes(routes!(mfa::confirm_totp))
        .routes(routes!(mfa::start_phone))
        .routes(routes!(mfa::confirm_phone))
        .routes(routes!(mfa::presence_code))
        .routes(routes!(mfa::regenerate_recovery_code))
        .routes(routes!(mfa::set_recovery_channel))
        .routes(routes!(mfa::confirm_recovery_channel))
        .routes(routes!(mfa::resend_recovery_channel_code))
        .routes(routes!(passkeys::list, passkeys::add))
        .routes(routes!(passkeys::add_options))
        .routes(routes!(passkeys::presence_options))
        .routes(routes!(passkeys::rename, passkeys::remove))
        // customer administration
        .routes(routes!(customers::list_users, customers::invite_user))
        .routes(routes!(customers::get_user, customers::delete_user))
        .routes(routes!(
            customers::get_permissions,
            customers::set_permissions
        ))
        .routes(routes!(customers::grant_group, customers::revoke_group))
        .routes(routes!(customers::lock, customers::unlock))
        .routes(routes!(customers::activate))
        .routes(routes!(customers::resend_invitation))
        .routes(routes!(customers::revoke_admin_rights))
        .routes(routes!(customers::end_sessions))
        .routes(routes!(customers::user_audit))
        .routes(routes!(export::export_user))
        .routes(routes!(customers::customer_audit))
        .routes(routes!(customers::export_audit))
        .routes(routes!(customers::admin_requests))
        .routes(routes!(customers::consent))
        .routes(routes!(customers::decline))
        // operator
        .routes(routes!(operator::list_customers, operator::create_customer))
        .routes(routes!(operator::get_customer))
        .routes(routes!(operator::set_second_factor_policy))
        .routes(routes!(operator::admin_requests))
        .routes(routes!(operator::approve))
        .routes(routes!(operator::reject))
        .routes(routes!(operator::global_audit))
        .routes(routes!(operator::verify_chain))
        .routes(routes!(operator::create_operator))
        .routes(routes!(operator::dead_letters))
        .routes(routes!(operator::requeue))
        .routes(routes!(clients::list_clients, clients::create_client))
        .routes(routes!(clients::get_client, clients::update_client))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(clients::disable_client))
}
