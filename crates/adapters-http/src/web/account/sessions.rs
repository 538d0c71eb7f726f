//! "Sitzungen": where the user is logged in and which devices are remembered, each to end.

use crate::cookies::CookieName;
use crate::web::ctx::Authed;
use crate::web::error::PageError;
use crate::web::i18n;
use crate::web::layout::{csrf_field, flash_notice, kept_notice};
use crate::web::urls::{self, Notice, SessionEnd};
use axum::response::Response;
use maud::html;
use portal_core::session::SessionKind;

/// The browser and system of a user-agent string ("Chrome 120 · Linux"), read by the `woothee`
/// crate (the user-agent parser of the Woothee project, shared with its Ruby, Java and JavaScript
/// versions); "Unbekannter Browser" when it names none it knows.
pub(crate) fn browser_and_system(a: &Authed, user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "–".to_owned();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    match woothee::parser::Parser::new().parse(ua) {
        Some(r) if known(r.name) => {
            let major = r.version.split('.').next().unwrap_or_default();
            let browser = if known(major) {
                format!("{} {major}", r.name)
            } else {
                r.name.to_owned()
            };
            if known(r.os) {
                format!("{browser} · {}", r.os)
            } else {
                browser
            }
        }
        _ => a.t("sessions-unknown-browser").into(),
    }
}

/// `GET /sessions`.
pub(crate) async fn page(a: Authed) -> Result<Response, PageError> {
    let list = a.portal().my_sessions(&a.principal).await?;
    let current = a.principal.session().id();
    let title = a.t("sessions");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            (kept_notice(&a))
            p { (a.t("sessions-intro")) }
            table.stack {
                caption.visually-hidden { (title) }
                thead { tr {
                    th scope="col" { (a.t("kind")) }
                    th scope="col" { (a.t("sessions-started")) }
                    th scope="col" { (a.t("sessions-last-active")) }
                    th scope="col" { (a.t("sessions-expires")) }
                    th scope="col" { (a.t("sessions-address")) }
                    th scope="col" { (a.t("sessions-browser")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @for s in &list {
                        @let r = s.record();
                        tr {
                            td data-label=(a.t("kind")) {
                                @match s.kind() {
                                    SessionKind::RememberedDevice => (a.t("sessions-remembered-device")),
                                    _ => (a.t("sessions-session")),
                                }
                                @if s.id() == current { " " strong { (a.t("sessions-this-one")) } }
                            }
                            td data-label=(a.t("sessions-started")) { (i18n::date_time(a.lang, r.created_at)) }
                            td data-label=(a.t("sessions-last-active")) { (i18n::date_time(a.lang, r.last_seen_at)) }
                            td data-label=(a.t("sessions-expires")) { (i18n::date_time(a.lang, r.expires_at)) }
                            td.wrap data-label=(a.t("sessions-address")) { (r.client.ip.as_deref().unwrap_or("–")) }
                            td.ua data-label=(a.t("sessions-browser")) title=[r.client.user_agent.as_deref()] { (browser_and_system(&a, r.client.user_agent.as_deref())) }
                            td.actions data-label=(a.t("actions")) {
                                form method="post" action=(a.href(SessionEnd { id: s.id() })) {
                                    (csrf_field(&a))
                                    button.link type="submit" { (a.t("sessions-end")) }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action=(a.href(urls::SessionsEndOthers)) {
                (csrf_field(&a))
                button.secondary type="submit" { (a.t("sessions-end-others")) }
            }
        },
    ))
}

/// `POST /sessions/end-others`.
pub(crate) async fn end_others(a: Authed) -> Result<Response, PageError> {
    let result = a
        .portal()
        .end_my_other_sessions(&a.principal)
        .await
        .map(|_| a.redirect_with(Notice::Saved, urls::Sessions))
        .map_err(PageError::from);
    a.or_back(urls::Sessions, result)
}

/// `POST /sessions/{id}/end` (the current one too: like logging out).
pub(crate) async fn end_one(a: Authed, path: SessionEnd) -> Result<Response, PageError> {
    if let Err(e) = a.portal().end_my_session(&a.principal, path.id).await {
        return a.or_back(urls::Sessions, Err(e.into()));
    }
    if path.id == a.principal.session().id() {
        a.clear_cookie(CookieName::Session);
        Ok(a.redirect_with(Notice::LoggedOut, urls::Login))
    } else {
        Ok(a.redirect_with(Notice::Saved, urls::Sessions))
    }
}
