//! Vendor staff's pages ("Sage Mitarbeiter" in the manual's log): customers (list, create),
//! admin requests to approve or reject, and the outbox's dead letters of every kind (view,
//! re-queue). The core refuses everyone but active operators.

use super::ctx::Authed;
use super::error::PageError;
use super::form::{Form, Query};
use super::i18n;
use super::layout::{Errors, Input, csrf_field, flash_notice, kept_notice};
use super::urls::{
    self, Notice, OperatorApprove, OperatorReject, OperatorRequeue, OperatorSecondFactorPolicy,
    with_query,
};
use crate::error::ErrorCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::authz::{Acting, is_operator};
use portal_core::customer::{AffiliationKey, SecondFactorPolicy, ServiceChannel};
use portal_core::ids::AdminRequestId;
use portal_core::outbox::OutboxKind;
use portal_core::service::{CustomerError, NewCustomer, OutboxError};
use portal_core::user::User;
use portal_core::values::{CompanyName, CustomerNumber};
use serde::Deserialize;
use std::collections::BTreeSet;

/// The control of a customer's second-factor policy (R22): a choice and "Speichern".
pub(super) fn policy_form(
    a: &Authed,
    number: &CustomerNumber,
    current: SecondFactorPolicy,
) -> Markup {
    let id = format!("f-policy-{number}");
    html! {
        form.inline method="post" action=(a.href(urls::OperatorSecondFactorPolicy { number: number.clone() })) {
            (csrf_field(a))
            label.visually-hidden for=(id) { (a.t("second-factor-policy")) }
            select id=(id) name="policy" {
                @for p in SecondFactorPolicy::ALL {
                    option value=(p.key()) selected[p == current] { (a.t(policy_key(p))) }
                }
            }
            button.secondary type="submit" { (a.t("save")) }
        }
    }
}

/// The message key of a policy's label.
pub(crate) const fn policy_key(p: SecondFactorPolicy) -> &'static str {
    match p {
        SecondFactorPolicy::None => "second-factor-policy-none",
        SecondFactorPolicy::Administrators => "second-factor-policy-administrators",
        SecondFactorPolicy::AllUsers => "second-factor-policy-all-users",
    }
}

/// The form of [`policy_form`].
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PolicyForm {
    policy: String,
}

/// `POST /operator/customers/{number}/second-factor-policy`.
pub(crate) async fn second_factor_policy(
    a: Authed,
    path: OperatorSecondFactorPolicy,
    Form(form): Form<PolicyForm>,
) -> Result<Response, PageError> {
    let Some(policy) = SecondFactorPolicy::from_key(&form.policy) else {
        return Err(PageError::from(crate::error::ApiError::new(
            ErrorCode::InvalidRequest,
        )));
    };
    let result = a
        .portal()
        .set_second_factor_policy(&a.principal.actor(), &path.number, policy)
        .await
        .map(|_| a.redirect_with(Notice::Saved, urls::OperatorCustomers))
        .map_err(PageError::from);
    a.or_back(urls::OperatorCustomers, result)
}

/// "Kunde anlegen".
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CustomerForm {
    customer_number: String,
    name: String,
    affiliation: Vec<String>,
    channel: String,
    partner_name: String,
}

impl CustomerForm {
    fn partner(&self) -> bool {
        self.channel == "partner"
    }
}

fn new_customer_page(a: &Authed, v: &CustomerForm, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("create-customer")) }
            (errors.summary(a.lang))
            form method="post" action=(a.href(urls::OperatorNewCustomer)) {
                (csrf_field(a))
                (Input::new("customer_number", a.t("customer-number")).value(v.customer_number.trim()).inputmode("numeric").errors(errors)
                    .hint(a.t("new-customer-number-hint")))
                (Input::new("name", a.t("new-customer-company-name")).value(&v.name).auto("organization").errors(errors))
                fieldset {
                    legend { (a.t("affiliation-title")) }
                    p.hint { (a.t("customers-affiliation-hint")) }
                    @for af in &a.portal().config().affiliations {
                        label.choice {
                            input type="checkbox" name="affiliation" value=(af.key)
                                checked[v.affiliation.iter().any(|x| x == af.key.as_str())];
                            " " (af.region.get(a.lang)) ": " (af.label.get(a.lang))
                        }
                    }
                }
                fieldset {
                    legend { (a.t("served-by")) }
                    label.choice { input type="radio" name="channel" value="direct" checked[!v.partner()]; " " (a.t("directly")) }
                    label.choice { input type="radio" name="channel" value="partner" checked[v.partner()]; " " (a.t("new-customer-reseller-partner")) }
                }
                (Input::new("partner_name", a.t("new-customer-partner-name")).value(&v.partner_name).optional().errors(errors))
                div.actions {
                    a.button.secondary href=(a.href(urls::OperatorCustomers)) { (a.t("back")) }
                    button.primary type="submit" { (a.t("create-customer")) }
                }
            }
        }
    }
}

/// `GET /operator/customers/new`.
pub(crate) async fn new_customer(a: Authed) -> Result<Response, PageError> {
    if !is_operator(&Acting::User(a.principal.user().clone())) {
        return Err(PageError::forbidden());
    }
    Ok(a.page(a.t("create-customer"), {
        let errors = a.errors();
        let v = errors.kept_form::<CustomerForm>().unwrap_or_default();
        new_customer_page(&a, &v, &errors)
    }))
}

/// `POST /operator/customers/new`.
pub(crate) async fn create_customer(
    a: Authed,
    Form(v): Form<CustomerForm>,
) -> Result<Response, PageError> {
    let lang = a.lang;
    let mut errors = Errors::new();
    let number = CustomerNumber::parse(v.customer_number.trim())
        .map_err(|e| errors.field("customer_number", i18n::customer_number(lang, e)))
        .ok();
    let name = CompanyName::parse(&v.name)
        .map_err(|e| errors.field("name", i18n::name(lang, e)))
        .ok();
    let channel = if v.partner() {
        CompanyName::parse(&v.partner_name)
            .map(|name| ServiceChannel::Partner { name })
            .map_err(|e| errors.field("partner_name", i18n::name(lang, e)))
            .ok()
    } else {
        Some(ServiceChannel::Direct)
    };
    let affiliations: Option<BTreeSet<AffiliationKey>> = v
        .affiliation
        .iter()
        .map(|k| AffiliationKey::parse(k).ok())
        .collect();
    if affiliations.is_none() {
        errors.general(i18n::code(lang, ErrorCode::UnknownAffiliation));
    }
    let again = |errors: Errors| a.back(urls::OperatorNewCustomer, errors);
    let (Some(number), Some(name), Some(channel), Some(affiliations)) =
        (number, name, channel, affiliations)
    else {
        return Ok(again(errors));
    };
    let cmd = NewCustomer {
        number: number.clone(),
        name,
        affiliations,
        channel,
        entitlements: None,
        default_permissions: None,
    };
    match a.portal().create_customer(&a.principal.actor(), &cmd).await {
        Ok(_) => {
            let created = with_query(urls::OperatorCustomers, &[("q", number.as_str())]);
            Ok(a.redirect_with(Notice::Saved, created))
        }
        Err(CustomerError::NumberTaken) => {
            errors.field("customer_number", i18n::code(lang, ErrorCode::NumberTaken));
            Ok(again(errors))
        }
        Err(e @ CustomerError::UnknownAffiliation(_)) => {
            errors.refused(lang, e);
            Ok(again(errors))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /operator/admin-requests`: those an operator can decide now.
pub(crate) async fn requests(a: Authed) -> Result<Response, PageError> {
    let list = a
        .portal()
        .operator_admin_requests(&a.principal.actor(), &[], None)
        .await?;
    let title = a.t("admin-requests");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            (kept_notice(&a))
            table.stack {
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
                            td data-label=(a.t("requester")) { (v.requester.as_ref().map(User::display_name).unwrap_or_default()) }
                            td data-label=(a.t("email-address")) { (v.requester.as_ref().map(|u| u.email().to_string()).unwrap_or_default()) }
                            td data-label=(a.t("operator-requests-customer")) { @if let Some(c) = &v.customer { (c.number().printed()) " " (c.name().as_str()) } }
                            td data-label=(a.t("date")) { (i18n::date_time(a.lang, v.request.record().created_at)) }
                            td data-label=(a.t("status")) { (i18n::request_status(a.lang, v.request.status())) }
                            td.actions data-label=(a.t("actions")) {
                                @if v.request.status().is_open() {
                                    form.inline method="post" action=(a.href(OperatorApprove { id: v.request.id() })) {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("operator-requests-approve")) }
                                    }
                                    form.inline method="post" action=(a.href(OperatorReject { id: v.request.id() })) {
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
    ))
}

async fn decide(a: &Authed, id: AdminRequestId, approve: bool) -> Result<Response, PageError> {
    let actor = a.principal.actor();
    let decided = if approve {
        a.portal().approve_admin_request(&actor, id).await?
    } else {
        a.portal().reject_admin_request(&actor, id).await?
    };
    let requester = a
        .portal()
        .operator_admin_requests(&actor, &[decided.status()], Some(decided.customer_id()))
        .await?
        .into_iter()
        .find(|v| v.request.id() == id)
        .and_then(|v| v.requester);
    let to = urls::OperatorAdminRequests;
    Ok(match requester {
        Some(user) => a.redirect_about(
            if approve {
                Notice::RequestApproved
            } else {
                Notice::RequestRejected
            },
            user.display_name(),
            to,
        ),
        None => a.redirect_with(Notice::Saved, to),
    })
}

/// `POST /operator/admin-requests/{id}/approve`.
pub(crate) async fn approve(a: Authed, path: OperatorApprove) -> Result<Response, PageError> {
    a.or_back(urls::OperatorAdminRequests, decide(&a, path.id, true).await)
}

/// `POST /operator/admin-requests/{id}/reject`.
pub(crate) async fn reject(a: Authed, path: OperatorReject) -> Result<Response, PageError> {
    a.or_back(
        urls::OperatorAdminRequests,
        decide(&a, path.id, false).await,
    )
}

/// `?kind=` of the dead-letter page.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct OutboxFilter {
    kind: String,
}

/// `GET /operator/outbox`: dead letters of every kind (or of one, `?kind=`), newest first, each
/// with a button to put it back in the queue.
pub(crate) async fn outbox(
    a: Authed,
    Query(f): Query<OutboxFilter>,
) -> Result<Response, PageError> {
    let outbox = a
        .state
        .outbox()
        .ok_or(PageError::from(OutboxError::NotFound))?;
    let kind = Some(f.kind.as_str()).filter(|k| !k.is_empty());
    let list = a
        .portal()
        .dead_letters(&a.principal.actor(), outbox, kind, 200)
        .await?;
    let title = a.t("outbox-title");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            (kept_notice(&a))
            p { (a.t("outbox-intro")) }
            nav.toolbar aria-label=(a.t("outbox-filter")) {
                @if kind.is_none() {
                    strong { (a.t("outbox-all-kinds")) }
                } @else {
                    a href=(a.href(urls::OperatorOutbox)) { (a.t("outbox-all-kinds")) }
                }
                @for k in OutboxKind::ALL {
                    " · "
                    @if kind == Some(k.key()) {
                        strong { (kind_label(&a, Some(*k), k.key())) }
                    } @else {
                        a href=(a.href(with_query(urls::OperatorOutbox, &[("kind", k.key())]))) { (kind_label(&a, Some(*k), k.key())) }
                    }
                }
            }
            table.stack {
                thead { tr {
                    th scope="col" { (a.t("outbox-kind")) }
                    th scope="col" { (a.t("outbox-recipient")) }
                    th scope="col" { (a.t("outbox-summary")) }
                    th scope="col" { (a.t("outbox-attempts")) }
                    th scope="col" { (a.t("outbox-last-error")) }
                    th scope="col" { (a.t("date")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if list.is_empty() {
                        tr { td colspan="7" { (a.t("outbox-none")) } }
                    }
                    @for e in &list {
                        tr {
                            td data-label=(a.t("outbox-kind")) { (kind_label(&a, e.message.payload.kind(), e.message.payload.kind_key())) }
                            td.wrap data-label=(a.t("outbox-recipient")) { (e.message.payload.recipient()) }
                            td data-label=(a.t("outbox-summary")) { (e.message.payload.summary()) }
                            td data-label=(a.t("outbox-attempts")) { (e.attempts) }
                            td.wrap data-label=(a.t("outbox-last-error")) { (e.last_error.as_deref().unwrap_or_default()) }
                            td data-label=(a.t("date")) { (i18n::date_time(a.lang, e.message.created_at)) }
                            td.actions data-label=(a.t("actions")) {
                                form.inline method="post" action=(a.href(OperatorRequeue { id: e.id() })) {
                                    (csrf_field(&a))
                                    button.link type="submit" { (a.t("outbox-requeue")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// A kind's name in the reader's language; a kind this build does not know (a newer process's
/// row) by its stored key.
fn kind_label(a: &Authed, kind: Option<OutboxKind>, key: &str) -> String {
    match kind {
        Some(OutboxKind::Mail) => a.t("outbox-kind-mail").to_string(),
        Some(OutboxKind::BackchannelLogout) => a.t("outbox-kind-backchannel-logout").to_string(),
        Some(OutboxKind::PasswordResetRequest) => {
            a.t("outbox-kind-password-reset-request").to_string()
        }
        Some(OutboxKind::Webhook) => a.t("outbox-kind-webhook").to_string(),
        Some(OutboxKind::Sms) => a.t("outbox-kind-sms").to_string(),
        None => key.to_owned(),
    }
}

/// `POST /operator/outbox/{id}/requeue`: back in the queue, audited (`outbox.requeued`).
pub(crate) async fn requeue(a: Authed, path: OperatorRequeue) -> Result<Response, PageError> {
    let outbox = a
        .state
        .outbox()
        .ok_or(PageError::from(OutboxError::NotFound))?;
    let result = a
        .portal()
        .requeue_outbox(&a.principal.actor(), outbox, path.id)
        .await
        .map(|_| a.redirect_with(Notice::Saved, urls::OperatorOutbox))
        .map_err(PageError::from);
    a.or_back(urls::OperatorOutbox, result)
}
