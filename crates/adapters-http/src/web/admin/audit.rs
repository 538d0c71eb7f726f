//! "Änderungsprotokoll" of one user and "Protokoll" of the customer: date, category, details and
//! who did it, searchable and paged.

use super::{facts, managed, target};
use crate::web::account::reauth_redirect;
use crate::web::audit_details::{self, Names};
use crate::web::ctx::{Authed, Shell};
use crate::web::error::PageError;
use crate::web::form::Query;
use crate::web::i18n;
use crate::web::layout::{Errors, csrf_field};
use crate::web::paging::{ListQuery, Pager};
use crate::web::urls::{CustomerAudit, UserAudit, UserExport, Users};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::service::{AuditListQuery, AuditPage, AuditView, ExportError};
use std::fmt::Display;

fn audit_query(pager: &Pager, q: &ListQuery) -> AuditListQuery {
    let search = q.search();
    AuditListQuery {
        search: (!search.is_empty()).then(|| search.to_owned()),
        page: pager.request(),
        ..AuditListQuery::default()
    }
}

/// Who did it, as the log shows it: a failed login of an existing account is a "Anmeldeversuch"
/// (its subject is the account), other steps of someone not logged in say so.
fn actor(shell: &Shell, v: &AuditView) -> String {
    let r = &v.entry.record;
    match (r.actor.kind, r.category) {
        (ActorKind::Anonymous, AuditCategory::LoginFailed) => {
            shell.t("audit-actor-login-attempt").into()
        }
        (ActorKind::Anonymous, _) => shell.t("audit-actor-not-logged-in").into(),
        _ => v.actor_name.clone(),
    }
}

/// The log table ("Datum, Kategorie, Details, Benutzer"; `subject`: and whom it concerns), paged.
fn audit_table(
    shell: &Shell,
    names: &Names<'_>,
    page: &AuditPage,
    pager: &Pager,
    path: impl Display,
    subject: bool,
) -> Markup {
    // Pages are reached by their cursors; this page's number is its cursor's place.
    let current = match pager.request().cursor {
        None => 1,
        Some(c) => page
            .page_cursors
            .iter()
            .position(|x| x.as_deref() == Some(c.as_str()))
            .map_or_else(|| pager.current(), |i| i as u64 + 1),
    };
    let offset = (current - 1) * u64::from(pager.per_page);
    let from = offset + 1;
    let to = offset + page.items.len() as u64;
    // A number when exact (so "1 Eintrag" takes the singular), the capped text otherwise.
    let total: fluent_bundle::FluentValue<'static> = if page.total_capped {
        format!("{}+", page.total).into()
    } else {
        page.total.into()
    };
    html! {
        (pager.search_form(shell, &path))
        table.audit.stack {
            thead { tr {
                th scope="col" { (shell.t("date")) }
                th scope="col" { (shell.t("audit-category")) }
                th scope="col" { (shell.t("audit-details")) }
                th scope="col" { (shell.t("audit-user")) }
                @if subject { th scope="col" { (shell.t("audit-concerns")) } }
            } }
            tbody {
                @if page.items.is_empty() {
                    tr { td colspan=(if subject { "5" } else { "4" }) { (shell.t("no-entries-found")) } }
                }
                @for v in &page.items {
                    @let r = &v.entry.record;
                    tr {
                        td data-label=(shell.t("date")) { (i18n::date_time(shell.lang, r.at)) }
                        td data-label=(shell.t("audit-category")) { (r.category.label(shell.lang)) }
                        td.wrap data-label=(shell.t("audit-details")) { (audit_details::render(shell.lang, names, &r.details)) }
                        td data-label=(shell.t("audit-user")) { (actor(shell, v)) }
                        @if subject { td data-label=(shell.t("audit-concerns")) { (v.subject_name.as_deref().unwrap_or("–")) } }
                    }
                }
            }
        }
        p.muted {
            @if !page.items.is_empty() {
                (shell.t_with("audit-entries-range", [("from", from.into()), ("to", to.into())]))
                " · "
                (shell.t_with("audit-entries-count", [("total", total)]))
            }
        }
        (pager.numbered(shell, &path, current, page.page_cursors.len() as u64, page.next.as_deref(), |p| {
            page.page_cursors.get(usize::try_from(p - 1).ok()?).map(|c| pager.cursor_link(shell, &path, c.as_deref()))
        }))
    }
}

fn names(a: &Authed) -> Names<'_> {
    Names {
        catalog: a.portal().catalog(),
        affiliations: &a.portal().config().affiliations,
    }
}

/// `GET /admin/customers/{number}/users/{id}/audit`: "Änderungsprotokoll" of one user.
pub(crate) async fn user(
    a: Authed,
    path: UserAudit,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (customer, user) = target(&a, &path.number, path.id).await?;
    let pager = Pager::new(&q, a.portal().config().default_page_size);
    let page = a
        .portal()
        .user_audit(
            &a.principal.actor(),
            &path.number,
            user.id(),
            &audit_query(&pager, &q),
            a.lang,
        )
        .await?;
    let title = a.t("log");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (a.errors().summary(a.lang))
            section.card {
                h2 { (a.t("audit-user-details")) }
                (facts(&a, &user, &customer))
            }
            section.card {
                h2 { (a.t("user-export")) }
                p { (a.t("user-export-intro")) }
                form method="post" action=(a.href(UserExport { number: path.number.clone(), id: user.id() })) {
                    (csrf_field(&a))
                    button.secondary type="submit" { (a.t("user-export")) }
                }
            }
            (audit_table(&a, &names(&a), &page, &pager, &path, false))
            p { a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) } }
        },
    ))
}

/// `GET /admin/customers/{number}/audit`: the customer's log.
pub(crate) async fn customer(
    a: Authed,
    path: CustomerAudit,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let customer = managed(&a, &path.number).await?;
    let pager = Pager::new(&q, a.portal().config().default_page_size);
    let page = a
        .portal()
        .customer_audit(
            &a.principal.actor(),
            &path.number,
            &audit_query(&pager, &q),
            a.lang,
        )
        .await?;
    let title = a.t("log");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            p.muted { (customer.name().as_str()) " · " (customer.number().printed()) }
            (audit_table(&a, &names(&a), &page, &pager, &path, true))
            p { a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) } }
        },
    ))
}

/// `POST /admin/customers/{number}/users/{id}/export`: what the administrator sees of the user,
/// as a download (after a fresh login; audited and mailed to the user by the core).
pub(crate) async fn export(a: Authed, path: UserExport) -> Result<Response, PageError> {
    let back = UserAudit {
        number: path.number.clone(),
        id: path.id,
    };
    match a
        .portal()
        .export_user_data(&a.principal, &path.number, path.id)
        .await
    {
        Ok(export) => Ok(crate::api::export::download(export)),
        Err(ExportError::ReauthRequired) => Ok(reauth_redirect(&a, back)),
        Err(e @ ExportError::Throttled { .. }) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(a.back(back, errors))
        }
        Err(e) => Err(e.into()),
    }
}
