//! "Benutzerverwaltung": the customer's user table with search and paging, "Freischalten" and a
//! new invitation link.

use super::{last_login, managed};
use crate::web::ctx::Authed;
use crate::web::error::PageError;
use crate::web::form::Query;
use crate::web::i18n;
use crate::web::layout::{csrf_field, flash_notice, kept_notice};
use crate::web::paging::{ListQuery, Pager};
use crate::web::urls::{
    self, Notice, UserActivate, UserAudit, UserDelete, UserInvitation, UserLock, UserPermissions,
    Users,
};
use axum::response::Response;
use maud::html;

/// `GET /admin/customers/{number}/users`.
pub(crate) async fn page(
    a: Authed,
    path: Users,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let customer = managed(&a, &path.number).await?;
    let pager = Pager::new(&q, a.portal().config().default_page_size);
    let page = a
        .portal()
        .list_users(
            &a.principal.actor(),
            &path.number,
            Some(q.search()),
            &pager.request(),
        )
        .await?;
    let number = &path.number;
    let from = pager.offset() + 1;
    let to = pager.offset() + page.items.len() as u64;
    let total = if page.total_capped {
        format!("{}+", page.total)
    } else {
        page.total.to_string()
    };
    let pages = page.total.div_ceil(u64::from(pager.per_page));
    let max_offset = u64::from(a.portal().config().max_page_offset);
    let title = a.t("user-management");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            p.muted { (customer.name().as_str()) " · " (a.t("customer-number")) " " (customer.number().printed()) }
            p.policy { (a.t("second-factor-policy")) ": " (a.t(crate::web::operator::policy_key(customer.second_factor_policy()))) }
            (flash_notice(&a))
            (kept_notice(&a))
            div.toolbar {
                a.button.primary href=(a.href(urls::NewUser { number: number.clone() })) { (a.t("add-user")) }
                a.button.secondary href=(a.href(urls::CustomerAudit { number: number.clone() })) { (a.t("log")) }
                a.button.secondary href=(a.href(urls::CustomerAdminRequests { number: number.clone() })) { (a.t("admin-requests")) }
            }
            (pager.search_form(&a, &path))
            table.users.stack {
                caption.visually-hidden { (title) }
                thead { tr {
                    th scope="col" { (a.t("name")) }
                    th scope="col" { (a.t("email-address")) }
                    th scope="col" { (a.t("users-last-login")) }
                    th scope="col" { (a.t("status")) }
                    th scope="col" { (a.t("role")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if page.items.is_empty() {
                        tr { td colspan="6" { (a.t("no-entries-found")) } }
                    }
                    @for (u, can) in page.items.iter().zip(&page.actions) {
                        @let (number, id) = (number.clone(), u.id());
                        tr {
                            td data-label=(a.t("name")) { (u.display_name()) }
                            td.wrap data-label=(a.t("email-address")) { (u.email().as_str()) }
                            td data-label=(a.t("users-last-login")) { (last_login(a.lang, u)) }
                            td data-label=(a.t("status")) { (i18n::status(a.lang, u.status())) }
                            td data-label=(a.t("role")) { (i18n::role(a.lang, u.role())) }
                            td.actions data-label=(a.t("actions")) {
                                @if can.permissions {
                                    a href=(a.href(UserPermissions { number: number.clone(), id })) { (a.t("permissions")) }
                                }
                                @let lock = a.href(UserLock { number: number.clone(), id });
                                @if can.unlock {
                                    a href=(lock) { (a.t("unlock-user")) }
                                } @else if can.lock {
                                    a href=(lock) { (a.t("lock-user")) }
                                }
                                @if can.delete {
                                    a href=(a.href(UserDelete { number: number.clone(), id })) { (a.t("delete-user")) }
                                }
                                a href=(a.href(UserAudit { number: number.clone(), id })) { (a.t("users-change-log")) }
                                @if can.activate {
                                    form.inline method="post" action=(a.href(UserActivate { number: number.clone(), id })) {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("users-activate")) }
                                    }
                                }
                                @if can.reinvite {
                                    form.inline method="post" action=(a.href(UserInvitation { number, id })) {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("users-reinvite")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.muted {
                @if page.items.is_empty() {
                    (a.t("users-no-entries-count"))
                } @else {
                    (a.t_with("users-entries-count", [("from", from.into()), ("to", to.into()), ("total", total.into())]))
                }
            }
            (pager.numbered(&a, &path, pager.current(), pages, page.next.as_deref(), |p| {
                ((p - 1) * u64::from(pager.per_page) <= max_offset).then(|| pager.page_link(&a, &path, p))
            }))
        },
    ))
}

/// `POST /admin/customers/{number}/users/{id}/activate`: "Freischalten".
pub(crate) async fn activate(a: Authed, path: UserActivate) -> Result<Response, PageError> {
    let to = Users {
        number: path.number.clone(),
    };
    let result = async {
        let user = a
            .portal()
            .activate_user(&a.principal.actor(), &path.number, path.id)
            .await?;
        Ok(a.redirect_about(Notice::UserActivated, user.display_name(), &to))
    }
    .await;
    a.or_back(&to, result)
}

/// `POST /admin/customers/{number}/users/{id}/invitation`: a fresh invitation link.
pub(crate) async fn reinvite(a: Authed, path: UserInvitation) -> Result<Response, PageError> {
    let to = Users {
        number: path.number.clone(),
    };
    let result = async {
        let actor = a.principal.actor();
        let user = a.portal().get_user(&actor, &path.number, path.id).await?;
        a.portal()
            .resend_invitation(&actor, &path.number, path.id)
            .await?;
        Ok(a.redirect_about(Notice::InvitationResent, user.display_name(), &to))
    }
    .await;
    a.or_back(&to, result)
}
