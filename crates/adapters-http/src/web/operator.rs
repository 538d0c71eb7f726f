//! Vendor staff's pages ("Sage Mitarbeiter" in the manual's log): customers (list, create) and
//! admin requests to approve or reject. The core refuses everyone but active operators.

use super::admin::Pager;
use super::auth::query_notice;
use super::ctx::{Authed, WebPath};
use super::form::{FormData, encode};
use super::i18n;
use super::layout::{Errors, Input, csrf_field};
use crate::error::{ApiError, codes};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::authz::{Acting, is_operator};
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::ids::AdminRequestId;
use portal_core::service::{CustomerError, NewCustomer};
use portal_core::user::User;
use portal_core::values::{CompanyName, CustomerNumber};
use std::collections::BTreeSet;

/// `GET /operator/customers`.
pub(crate) async fn customers(a: Authed) -> Response {
    let pager = Pager::from_query(&a.query, a.portal().config().default_page_size);
    let q = a.query.get("q").trim().to_owned();
    let page = match a
        .portal()
        .list_customers(&a.p.actor(), Some(&q), &pager.request())
        .await
    {
        Ok(p) => p,
        Err(e) => return a.fail(e),
    };
    let extra = if q.is_empty() {
        String::new()
    } else {
        format!("&q={}", encode(&q))
    };
    let title = a.t("customers");
    a.page(
        &title,
        html! {
            h1 { (title) }
            (query_notice(&a))
            div.toolbar {
                a.button.primary href="/operator/customers/new" { (a.t("create-customer")) }
                a.button.secondary href="/operator/admin-requests" { (a.t("admin-requests")) }
            }
            form.search method="get" action="/operator/customers" role="search" {
                label for="f-q" { (a.t("customers-search")) }
                input #f-q type="search" name="q" value=(q);
                button.secondary type="submit" { (a.t("search")) }
            }
            table {
                thead { tr {
                    th scope="col" { (a.t("customer-number")) }
                    th scope="col" { (a.t("name")) }
                    th scope="col" { (a.t("affiliation-title")) }
                    th scope="col" { (a.t("served-by")) }
                    th scope="col" { (a.t("customers-created")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if page.items.is_empty() {
                        tr { td colspan="6" { (a.t("no-entries-found")) } }
                    }
                    @for c in &page.items {
                        @let r = c.record();
                        tr {
                            td { (c.number().printed()) }
                            td { (c.name().as_str()) }
                            td { (r.affiliations.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                            td {
                                @match &r.channel {
                                    ServiceChannel::Direct => (a.t("directly")),
                                    ServiceChannel::Partner { name } => { (a.t("customers-partner")) " " (name.as_str()) },
                                }
                            }
                            td { (i18n::date(a.lang, r.created_at)) }
                            td.actions {
                                a href={ "/admin/customers/" (c.number()) "/users" } { (a.t("user-management")) }
                                a href={ "/admin/customers/" (c.number()) "/audit" } { (a.t("log")) }
                            }
                        }
                    }
                }
            }
            (pager.nav(a.lang, "/operator/customers", &extra, page.next.as_deref()))
        },
    )
}

#[derive(Default)]
struct CustomerInput {
    number: String,
    name: String,
    affiliations: Vec<String>,
    partner: bool,
    partner_name: String,
}

fn new_customer_page(a: &Authed, v: &CustomerInput, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("create-customer")) }
            (errors.summary(a.lang))
            form method="post" action="/operator/customers/new" {
                (csrf_field(a))
                (Input::new("customer_number", a.t("customer-number")).value(&v.number).inputmode("numeric").errors(errors)
                    .hint(a.t("new-customer-number-hint")))
                (Input::new("name", a.t("new-customer-company-name")).value(&v.name).auto("organization").errors(errors))
                fieldset {
                    legend { (a.t("affiliation-title")) }
                    @for af in &a.portal().config().affiliations {
                        label.choice {
                            input type="checkbox" name="affiliation" value=(af.key)
                                checked[v.affiliations.iter().any(|x| x == af.key.as_str())];
                            " " (af.region.get(a.lang)) ": " (af.label.get(a.lang))
                        }
                    }
                }
                fieldset {
                    legend { (a.t("served-by")) }
                    label.choice { input type="radio" name="channel" value="direct" checked[!v.partner]; " " (a.t("directly")) }
                    label.choice { input type="radio" name="channel" value="partner" checked[v.partner]; " " (a.t("new-customer-reseller-partner")) }
                }
                (Input::new("partner_name", a.t("new-customer-partner-name")).value(&v.partner_name).optional().errors(errors))
                div.actions {
                    a.button.secondary href="/operator/customers" { (a.t("back")) }
                    button.primary type="submit" { (a.t("create-customer")) }
                }
            }
        }
    }
}

/// `GET /operator/customers/new`.
pub(crate) async fn new_customer(a: Authed) -> Response {
    if !is_operator(&Acting::User(a.p.user().clone())) {
        return a.fail(ApiError::new(codes::FORBIDDEN));
    }
    a.page(
        a.t("create-customer"),
        new_customer_page(&a, &CustomerInput::default(), &Errors::new()),
    )
}

/// `POST /operator/customers/new`.
pub(crate) async fn create_customer(a: Authed, form: FormData) -> Response {
    let v = CustomerInput {
        number: form.get("customer_number").trim().to_owned(),
        name: form.get("name").to_owned(),
        affiliations: form
            .all("affiliation")
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        partner: form.get("channel") == "partner",
        partner_name: form.get("partner_name").to_owned(),
    };
    let lang = a.lang;
    let mut errors = Errors::new();
    let number = CustomerNumber::parse(&v.number)
        .map_err(|e| errors.field("customer_number", i18n::customer_number(lang, e)))
        .ok();
    let name = CompanyName::parse(&v.name)
        .map_err(|e| errors.field("name", i18n::name(lang, e)))
        .ok();
    let channel = if v.partner {
        CompanyName::parse(&v.partner_name)
            .map(|name| ServiceChannel::Partner { name })
            .map_err(|e| errors.field("partner_name", i18n::name(lang, e)))
            .ok()
    } else {
        Some(ServiceChannel::Direct)
    };
    let affiliations: Option<BTreeSet<AffiliationKey>> = v
        .affiliations
        .iter()
        .map(|k| AffiliationKey::parse(k).ok())
        .collect();
    if affiliations.is_none() {
        errors.general(i18n::code(lang, codes::UNKNOWN_AFFILIATION));
    }
    let again = |errors: &Errors, status| {
        a.page_with(
            status,
            a.t("create-customer"),
            new_customer_page(&a, &v, errors),
        )
    };
    let (Some(number), Some(name), Some(channel), Some(affiliations)) =
        (number, name, channel, affiliations)
    else {
        return again(&errors, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let cmd = NewCustomer {
        number: number.clone(),
        name,
        affiliations,
        channel,
        entitlements: None,
        default_permissions: None,
    };
    match a.portal().create_customer(&a.p.actor(), &cmd).await {
        Ok(_) => a.redirect(&format!("/operator/customers?notice=saved&q={number}")),
        Err(CustomerError::NumberTaken) => {
            errors.field("customer_number", i18n::code(lang, codes::NUMBER_TAKEN));
            again(&errors, StatusCode::CONFLICT)
        }
        Err(e @ CustomerError::UnknownAffiliation(_)) => {
            errors.general(i18n::code(lang, ApiError::from(e).code()));
            again(&errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => a.fail(e),
    }
}

/// `GET /operator/admin-requests`: those an operator can decide now.
pub(crate) async fn requests(a: Authed) -> Response {
    let list = match a
        .portal()
        .operator_admin_requests(&a.p.actor(), &[], None)
        .await
    {
        Ok(l) => l,
        Err(e) => return a.fail(e),
    };
    let title = a.t("admin-requests");
    a.page(
        &title,
        html! {
            h1 { (title) }
            (query_notice(&a))
            table {
                thead { tr {
                    th scope="col" { (a.t("requester")) }
                    th scope="col" { (a.t("email-address")) }
                    th scope="col" { (a.t("operator-requests-customer")) }
                    th scope="col" { (a.t("date")) }
                    th scope="col" { (a.t("status")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if list.is_empty() {
                        tr { td colspan="6" { (a.t("operator-requests-none")) } }
                    }
                    @for v in &list {
                        tr {
                            td { (v.requester.as_ref().map(User::display_name).unwrap_or_default()) }
                            td { (v.requester.as_ref().map(|u| u.email().to_string()).unwrap_or_default()) }
                            td { @if let Some(c) = &v.customer { (c.number().printed()) " " (c.name().as_str()) } }
                            td { (i18n::date_time(a.lang, v.request.record().created_at)) }
                            td { (i18n::request_status(a.lang, v.request.status())) }
                            td.actions {
                                @if v.request.status().is_open() {
                                    form.inline method="post" action={ "/operator/admin-requests/" (v.request.id()) "/approve" } {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("operator-requests-approve")) }
                                    }
                                    form.inline method="post" action={ "/operator/admin-requests/" (v.request.id()) "/reject" } {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("operator-requests-reject")) }
                                    }
                                }
                                @if v.request.status() == AdminRequestStatus::AwaitingConsent {
                                    span.muted { (a.t("operator-requests-without-consent")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

async fn decide(a: Authed, id: &str, approve: bool) -> Response {
    let Ok(rid) = id.parse::<AdminRequestId>() else {
        return a.fail(ApiError::new(codes::NOT_FOUND));
    };
    let actor = a.p.actor();
    let result = if approve {
        a.portal().approve_admin_request(&actor, rid).await
    } else {
        a.portal().reject_admin_request(&actor, rid).await
    };
    match result {
        Ok(_) => a.redirect("/operator/admin-requests?notice=saved"),
        Err(e) => a.fail(e),
    }
}

/// `POST /operator/admin-requests/{id}/approve`.
pub(crate) async fn approve(a: Authed, WebPath(id): WebPath<String>) -> Response {
    decide(a, &id, true).await
}

/// `POST /operator/admin-requests/{id}/reject`.
pub(crate) async fn reject(a: Authed, WebPath(id): WebPath<String>) -> Response {
    decide(a, &id, false).await
}
