//! "Änderungsprotokoll" of one user and "Protokoll" of the customer: date, category, details and
//! who did it, searchable and paged.

use super::{facts, managed, target};
use crate::web::ctx::{Authed, Shell};
use crate::web::error::PageError;
use crate::web::form::Query;
use crate::web::i18n;
use crate::web::paging::{ListQuery, Pager};
use crate::web::urls::{CustomerAudit, UserAudit, Users};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::service::{AuditListQuery, AuditPage};
use std::fmt::Display;

fn audit_query(pager: &Pager, q: &ListQuery) -> AuditListQuery {
    let search = q.search();
    AuditListQuery {
        search: (!search.is_empty()).then(|| search.to_owned()),
        page: pager.request(),
        ..AuditListQuery::default()
    }
}

/// The log table ("Datum, Kategorie, Details, Benutzer"; `subject`: and whom it concerns), paged.
fn audit_table(
    shell: &Shell,
    page: &AuditPage,
    pager: &Pager,
    path: impl Display,
    subject: bool,
) -> Markup {
    let from = pager.offset() + 1;
    let to = pager.offset() + page.items.len() as u64;
    html! {
        (pager.search_form(shell, &path))
        table.audit {
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
                        td { (i18n::date_time(shell.lang, r.at)) }
                        td { (r.category.label(shell.lang)) }
                        td { (r.details) }
                        td { (v.actor_name) }
                        @if subject { td { (v.subject_name.as_deref().unwrap_or("–")) } }
                    }
                }
            }
        }
        p.muted {
            @if !page.items.is_empty() {
                (shell.t_with("audit-entries-range", [("from", from.into()), ("to", to.into())]))
            }
        }
        (pager.nav(shell, &path, page.next.as_deref()))
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
            section.card {
                h2 { (a.t("audit-user-details")) }
                (facts(&a, &user, &customer))
            }
            (audit_table(&a, &page, &pager, &path, false))
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
            (audit_table(&a, &page, &pager, &path, true))
            p { a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) } }
        },
    ))
}
