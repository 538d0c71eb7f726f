//! Admin requests of the customer that await an administrator's consent ("Zustimmen",
//! "Ablehnen"); the vendor decides afterwards (manual 3.7, R9).

use super::managed;
use crate::web::ctx::Authed;
use crate::web::error::PageError;
use crate::web::i18n;
use crate::web::layout::{csrf_field, flash_notice, kept_notice};
use crate::web::urls::{AdminRequestConsent, AdminRequestDecline, CustomerAdminRequests, Notice};
use axum::response::Response;
use maud::html;
use portal_core::admin_request::AdminRequestStatus;
use portal_core::ids::AdminRequestId;
use portal_core::user::User;
use portal_core::values::CustomerNumber;

/// `GET /admin/customers/{number}/admin-requests`.
pub(crate) async fn page(a: Authed, path: CustomerAdminRequests) -> Result<Response, PageError> {
    let customer = managed(&a, &path.number).await?;
    let list = a
        .portal()
        .customer_admin_requests(&a.principal.actor(), &path.number)
        .await?;
    let number = &path.number;
    let title = a.t("admin-requests");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            p.muted { (customer.name().as_str()) " · " (customer.number().printed()) }
            (flash_notice(&a))
            (kept_notice(&a))
            p { (a.t("requests-intro")) }
            table.stack {
                thead { tr {
                    th scope="col" { (a.t("requester")) }
                    th scope="col" { (a.t("email-address")) }
                    th scope="col" { (a.t("date")) }
                    th scope="col" { (a.t("status")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if list.is_empty() {
                        tr { td colspan="5" { (a.t("requests-none")) } }
                    }
                    @for v in &list {
                        tr {
                            td data-label=(a.t("requester")) { (v.requester.as_ref().map(User::display_name).unwrap_or_default()) }
                            td data-label=(a.t("email-address")) { (v.requester.as_ref().map(|u| u.email().to_string()).unwrap_or_default()) }
                            td data-label=(a.t("date")) { (i18n::date_time(a.lang, v.request.record().created_at)) }
                            td data-label=(a.t("status")) { (i18n::request_status(a.lang, v.request.status())) }
                            td.actions data-label=(a.t("actions")) {
                                @if v.request.status() == AdminRequestStatus::AwaitingConsent {
                                    @let id = v.request.id();
                                    form.inline method="post" action=(a.href(AdminRequestConsent { number: number.clone(), id })) {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("requests-consent")) }
                                    }
                                    form.inline method="post" action=(a.href(AdminRequestDecline { number: number.clone(), id })) {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("requests-decline")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

async fn decide(
    a: &Authed,
    number: CustomerNumber,
    id: AdminRequestId,
    consent: bool,
) -> Result<Response, PageError> {
    let actor = a.principal.actor();
    if consent {
        a.portal()
            .consent_admin_request(&actor, &number, id)
            .await?;
    } else {
        a.portal()
            .decline_admin_request(&actor, &number, id)
            .await?;
    }
    let requester = a
        .portal()
        .customer_admin_requests(&actor, &number)
        .await?
        .into_iter()
        .find(|v| v.request.id() == id)
        .and_then(|v| v.requester);
    let to = CustomerAdminRequests { number };
    Ok(match requester {
        Some(user) => a.redirect_about(
            if consent {
                Notice::RequestConsented
            } else {
                Notice::RequestDeclined
            },
            user.display_name(),
            to,
        ),
        None => a.redirect_with(Notice::Saved, to),
    })
}

/// `POST /admin/customers/{number}/admin-requests/{id}/consent`.
pub(crate) async fn consent(a: Authed, path: AdminRequestConsent) -> Result<Response, PageError> {
    let to = CustomerAdminRequests {
        number: path.number.clone(),
    };
    a.or_back(to, decide(&a, path.number, path.id, true).await)
}

/// `POST /admin/customers/{number}/admin-requests/{id}/decline`.
pub(crate) async fn decline(a: Authed, path: AdminRequestDecline) -> Result<Response, PageError> {
    let to = CustomerAdminRequests {
        number: path.number.clone(),
    };
    a.or_back(to, decide(&a, path.number, path.id, false).await)
}
