//! The browser side of the provider: the authorization endpoint (login through the portal's own
//! pages, consent, "no permission"), the consent form and RP-initiated logout.

use crate::cookies::CookieName;
use crate::web::ctx::Ctx;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::layout::{csrf_field, hidden};
use crate::web::urls;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fluent_bundle::FluentValue;
use maud::html;
use portal_core::service::{
    AuthorizeOutcome, AuthorizeRefusal, AuthorizeRequest, CheckedAuthorize, ErrorRedirect,
};
use serde::Deserialize;

/// The page policy, with the client's origin allowed as a form target (the consent form's
/// answer redirects there).
fn page_csp(form_target: Option<&str>) -> String {
    let origin = form_target.and_then(origin_of).unwrap_or_default();
    format!(
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self' {origin}; object-src 'none'"
    )
}

fn origin_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

fn with_page_headers(mut r: Response, form_target: Option<&str>) -> Response {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&page_csp(form_target)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `303` to an absolute URL outside the portal (the client's redirect URI).
fn to_client(url: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(url) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn append_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = serde_html_form::to_string(pairs).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

fn error_redirect(ctx: &Ctx, e: &ErrorRedirect) -> Response {
    to_client(&error_address(ctx, e))
}

/// The client's redirect URI with the error, `state` and `iss` (RFC 9207).
fn error_address(ctx: &Ctx, e: &ErrorRedirect) -> String {
    let iss = super::issuer(&ctx.state);
    let mut pairs = vec![("error", e.error), ("error_description", e.description)];
    if let Some(s) = &e.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &iss));
    append_query(&e.redirect_uri, &pairs)
}

/// Whether this authorization request is the browser coming back from the portal's own login
/// (or second-factor) form: [`return_address`] marks it with `login_since`.
fn after_portal_form(query: &[(String, String)]) -> bool {
    query.iter().any(|(k, _)| k == "login_since")
}

/// Back to the client with the authorization response at `url`. Right after the portal's login
/// or second-factor form a `303` would end a redirect chain that began with that form's
/// submission at the client's origin, and browsers hold such a chain to the form page's
/// `form-action 'self'` (Chromium blocks it: the user would stay on the login page). So then a
/// page answers that moves on by itself — the `Refresh` header starts a new navigation, which
/// `form-action` does not govern — with a link for a browser that does not follow it.
fn back_to_client(ctx: &Ctx, url: &str, client_name: &str, after_form: bool) -> Response {
    if !after_form {
        return to_client(url);
    }
    let title = ctx.t("oidc-continue-title");
    let client = || [("client", FluentValue::from(client_name.to_owned()))];
    let content = html! {
        section.card.narrow {
            h1 { (title) }
            p { (ctx.t_with("oidc-continue-text", client())) }
            p { a href=(url) { (ctx.t_with("oidc-continue-link", client())) } }
        }
    };
    let mut r = with_page_headers(ctx.page(&title, content), None);
    if let Ok(v) = HeaderValue::from_str(&format!("0; url={url}")) {
        r.headers_mut().insert(header::REFRESH, v);
    }
    r
}

/// The authorization request's parameters, as the browser sent them.
fn request_of(query: &[(String, String)]) -> AuthorizeRequest {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    AuthorizeRequest {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        scope: get("scope"),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        prompt: get("prompt"),
        max_age: get("max_age"),
        login_hint: get("login_hint"),
    }
}

/// Where the login page sends the browser back to: this request, with `prompt=login` answered
/// (`login_since` = now in Unix milliseconds: the session must be at least that fresh; whole
/// seconds would let a sign-in earlier in the same second count as the fresh one).
fn return_address(query: &[(String, String)], now: DateTime<Utc>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "login_since")
        .cloned()
        .collect();
    pairs.push(("login_since".into(), now.timestamp_millis().to_string()));
    format!(
        "/oidc/authorize?{}",
        serde_html_form::to_string(&pairs).unwrap_or_default()
    )
}

fn refused_page(ctx: &Ctx, why: &'static str) -> Response {
    let text = if why == "invalid_redirect_uri" {
        ctx.t("oidc-error-redirect-uri")
    } else {
        ctx.t("oidc-error-unknown-client")
    };
    let title = ctx.t("oidc-error-title");
    with_page_headers(
        ctx.page_with(
            StatusCode::BAD_REQUEST,
            &title,
            html! {
                section.card.narrow {
                    h1 { (title) }
                    p { (text) }
                }
            },
        ),
        None,
    )
}

fn consent_page(
    ctx: &Ctx,
    checked: &CheckedAuthorize,
    client_name: &str,
    scopes: &[String],
) -> Response {
    let raw = serde_html_form::to_string(&ctx.query).unwrap_or_default();
    let title = ctx.t("oidc-consent-title");
    let content = html! {
        section.card.narrow {
            h1 { (title) }
            p { (ctx.t_with("oidc-consent-text", [("client", FluentValue::from(client_name.to_owned()))])) }
            ul {
                @for s in scopes {
                    li { (scope_text(ctx, s)) }
                }
            }
            form method="post" action=(ctx.href("/oidc/authorize/consent")) {
                (csrf_field(ctx))
                (hidden("request", &raw))
                button.primary type="submit" name="decision" value="allow" { (ctx.t("oidc-consent-allow")) }
                " "
                button type="submit" name="decision" value="deny" { (ctx.t("oidc-consent-deny")) }
            }
        }
    };
    with_page_headers(ctx.page(&title, content), Some(&checked.redirect_uri))
}

fn scope_text(ctx: &Ctx, scope: &str) -> crate::web::i18n::Text {
    match scope {
        "profile" => ctx.t("oidc-scope-profile"),
        "email" => ctx.t("oidc-scope-email"),
        "portal" => ctx.t("oidc-scope-portal"),
        "offline_access" => ctx.t("oidc-scope-offline-access"),
        _ => ctx.t("oidc-scope-openid"),
    }
}

fn no_permission_page(ctx: &Ctx, client_name: &str) -> Response {
    let title = ctx.t("oidc-no-permission-title");
    let content = html! {
        section.card.narrow {
            h1 { (title) }
            p { (ctx.t_with("oidc-no-permission-text", [("client", FluentValue::from(client_name.to_owned()))])) }
            p { a href=(ctx.href(urls::ContactAdmin)) { (ctx.t("contact-the-administrator")) } }
        }
    };
    with_page_headers(ctx.page_with(StatusCode::FORBIDDEN, &title, content), None)
}

async fn decide(
    ctx: &Ctx,
    query: &[(String, String)],
    consent: bool,
) -> Result<Response, PageError> {
    let portal = ctx.portal();
    let checked = match portal.check_authorize(&request_of(query)).await {
        Ok(c) => c,
        Err(AuthorizeRefusal::Page(why)) => return Ok(refused_page(ctx, why)),
        Err(AuthorizeRefusal::Redirect(e)) => return Ok(error_redirect(ctx, &e)),
    };
    let since = query
        .iter()
        .find(|(k, _)| k == "login_since")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    let outcome = portal
        .authorize(ctx.principal.as_ref(), &checked, since, consent)
        .await
        .map_err(|e| PageError::from(portal_core::error::InfraError::Store(e)))?;
    let now = ctx.state.now();
    let after_form = after_portal_form(query);
    let client_name = checked.client.name.as_str();
    Ok(match outcome {
        AuthorizeOutcome::Code {
            redirect_uri,
            code,
            state,
        } => {
            let iss = super::issuer(&ctx.state);
            let mut pairs = vec![("code", code.expose())];
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            pairs.push(("iss", &iss));
            back_to_client(
                ctx,
                &append_query(&redirect_uri, &pairs),
                client_name,
                after_form,
            )
        }
        AuthorizeOutcome::Login | AuthorizeOutcome::SecondFactorLogin => {
            let next = return_address(query, now);
            let mut pairs: Vec<(&str, &str)> = vec![("next", &next)];
            if ctx.principal.is_some() {
                pairs.push(("reauth", "1"));
            }
            if let Some(hint) = &checked.login_hint {
                pairs.push(("login_hint", hint));
            }
            ctx.redirect(urls::with_query(urls::Login, &pairs))
        }
        AuthorizeOutcome::SecondFactorSetup => {
            let next = return_address(query, now);
            ctx.redirect(urls::with_query(urls::Mfa, &[("next", next.as_str())]))
        }
        AuthorizeOutcome::Consent {
            client_name,
            scopes,
        } => consent_page(ctx, &checked, &client_name, &scopes),
        AuthorizeOutcome::NoPermission { client_name } => no_permission_page(ctx, &client_name),
        AuthorizeOutcome::Error(e) => {
            back_to_client(ctx, &error_address(ctx, &e), client_name, after_form)
        }
    })
}

/// `GET /oidc/authorize`.
pub(crate) async fn authorize(ctx: Ctx) -> Result<Response, PageError> {
    let query = ctx.query.clone();
    decide(&ctx, &query, false).await
}

/// The consent form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConsentForm {
    request: String,
    decision: String,
}

/// `POST /oidc/authorize/consent`: allow (the code follows) or deny (`access_denied`).
pub(crate) async fn consent(
    ctx: Ctx,
    Form(form): Form<ConsentForm>,
) -> Result<Response, PageError> {
    let query: Vec<(String, String)> = serde_html_form::from_str(&form.request).unwrap_or_default();
    if form.decision != "allow" {
        let checked = match ctx.portal().check_authorize(&request_of(&query)).await {
            Ok(c) => c,
            Err(AuthorizeRefusal::Page(why)) => return Ok(refused_page(&ctx, why)),
            Err(AuthorizeRefusal::Redirect(e)) => return Ok(error_redirect(&ctx, &e)),
        };
        return Ok(error_redirect(
            &ctx,
            &ErrorRedirect {
                redirect_uri: checked.redirect_uri,
                error: "access_denied",
                description: "the user declined",
                state: checked.state,
            },
        ));
    }
    if ctx.principal.is_none() {
        return Ok(ctx.redirect(urls::Login));
    }
    decide(&ctx, &query, true).await
}

/// `GET /oidc/logout`: RP-initiated logout.
pub(crate) async fn logout(ctx: Ctx) -> Result<Response, PageError> {
    let q = |n: &str| ctx.query_value(n).map(str::to_owned);
    let session = ctx.cookie_value(CookieName::Session);
    let outcome = ctx
        .portal()
        .end_session(
            session.as_deref(),
            q("id_token_hint").as_deref(),
            q("client_id").as_deref(),
            q("post_logout_redirect_uri").as_deref(),
            q("state").as_deref(),
        )
        .await;
    match outcome {
        Ok(o) => Ok({
            ctx.clear_cookie(CookieName::Session);
            ctx.clear_cookie(CookieName::PendingMfa);
            match o.redirect {
                Some(uri) => to_client(&uri),
                None => ctx.redirect(urls::Login),
            }
        }),
        Err(_) => Ok(refused_page(&ctx, "unknown_client")),
    }
}
