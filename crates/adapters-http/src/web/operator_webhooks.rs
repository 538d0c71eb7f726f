//! Operators' page of the webhook endpoints that receive signed change-log events: the list
//! with each endpoint's actions (new secret, disable or enable, remove) and the registration
//! form. A secret is shown once, on the page that answers its creation or rotation (never in a
//! link, a redirect or the change log); the core refuses everyone but active operators. Events
//! that could not be delivered are on the dead-letter page with every other outgoing message.

use super::ctx::Authed;
use super::error::PageError;
use super::form::Form;
use super::i18n;
use super::layout::{Errors, Input, csrf_field, flash_notice};
use super::urls::{
    self, Notice, OperatorWebhookDisable, OperatorWebhookEnable, OperatorWebhookRemove,
    OperatorWebhookSecret,
};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::audit::AuditCategory;
use portal_core::service::{NewWebhook, WebhookError, WebhookWithSecret};
use serde::Deserialize;

/// The registration form: the URL, a description, and the ticked categories.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct WebhookForm {
    url: String,
    description: String,
    events: Vec<String>,
}

/// A refused field's message next to it; other refusals as the page's error.
fn refused(a: &Authed, errors: &mut Errors, e: WebhookError) -> Result<(), PageError> {
    match e {
        WebhookError::Invalid { field, .. } => {
            let key = match field {
                "url" => "webhooks-invalid-url",
                "description" => "webhooks-invalid-description",
                _ => "webhooks-invalid-events",
            };
            errors.field(field, a.t(key));
            Ok(())
        }
        e => Err(e.into()),
    }
}

fn form_fields(a: &Authed, v: &WebhookForm, errors: &Errors) -> Markup {
    let events_error = errors.get("events");
    html! {
        (Input::new("url", a.t("webhooks-url")).kind("url").value(&v.url).errors(errors).hint(a.t("webhooks-url-hint")))
        (Input::new("description", a.t("webhooks-description")).value(&v.description).optional().errors(errors))
        fieldset.invalid[events_error.is_some()] aria-describedby=[events_error.map(|_| "f-events-error")] {
            legend { (a.t("webhooks-events")) }
            @for c in AuditCategory::ALL {
                label.choice {
                    input type="checkbox" name="events" value=(c.key()) checked[v.events.iter().any(|e| e == c.key())];
                    " " (c.label(a.lang)) " " code { (c.key()) }
                }
            }
            @if let Some(e) = events_error { p.field-error #f-events-error { (e) } }
        }
    }
}

/// `GET /operator/webhooks`.
pub(crate) async fn list(a: Authed) -> Result<Response, PageError> {
    let endpoints = a.portal().webhooks(&a.principal.actor()).await?;
    let errors = a.errors();
    let v: WebhookForm = errors.kept_form().unwrap_or_default();
    let title = a.t("webhooks-title");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            p { (a.t("webhooks-intro")) }
            table.stack {
                thead { tr {
                    th scope="col" { (a.t("webhooks-url")) }
                    th scope="col" { (a.t("webhooks-events")) }
                    th scope="col" { (a.t("status")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if endpoints.is_empty() {
                        tr { td colspan="4" { (a.t("webhooks-none")) } }
                    }
                    @for e in &endpoints {
                        tr {
                            td.wrap data-label=(a.t("webhooks-url")) {
                                code { (e.url) }
                                @if !e.description.is_empty() { br; (e.description) }
                            }
                            td.wrap data-label=(a.t("webhooks-events")) {
                                (e.events.iter().map(|c| c.label(a.lang)).collect::<Vec<_>>().join(", "))
                            }
                            td data-label=(a.t("status")) {
                                @if e.disabled { (a.t("webhooks-disabled")) } @else { (a.t("webhooks-enabled")) }
                            }
                            td.actions data-label=(a.t("actions")) {
                                form method="post" action=(a.href(OperatorWebhookSecret { id: e.id })) {
                                    (csrf_field(&a))
                                    button.secondary type="submit" { (a.t("webhooks-rotate")) }
                                }
                                @if e.disabled {
                                    form method="post" action=(a.href(OperatorWebhookEnable { id: e.id })) {
                                        (csrf_field(&a))
                                        button.secondary type="submit" { (a.t("webhooks-enable")) }
                                    }
                                } @else {
                                    form method="post" action=(a.href(OperatorWebhookDisable { id: e.id })) {
                                        (csrf_field(&a))
                                        button.secondary type="submit" { (a.t("webhooks-disable")) }
                                    }
                                }
                                form method="post" action=(a.href(OperatorWebhookRemove { id: e.id })) {
                                    (csrf_field(&a))
                                    button.danger type="submit" { (a.t("webhooks-remove")) }
                                }
                            }
                        }
                    }
                }
            }
            section.card.narrow {
                h2 { (a.t("webhooks-create")) }
                (errors.summary(a.lang))
                form method="post" action=(a.href(urls::OperatorWebhooks)) {
                    (csrf_field(&a))
                    (form_fields(&a, &v, &errors))
                    div.actions {
                        button.primary type="submit" { (a.t("webhooks-create")) }
                    }
                }
            }
        },
    ))
}

/// The page that shows a secret, once.
fn secret_page(a: &Authed, w: &WebhookWithSecret, status: StatusCode) -> Response {
    let title = a.t("webhooks-secret-title");
    a.page_with(
        status,
        &title,
        html! {
            section.card.narrow {
                h1 { (title) }
                dl.facts {
                    dt { (a.t("webhooks-url")) } dd { code { (w.endpoint.url) } }
                    dt { (a.t("webhooks-id")) } dd { code #webhook-id { (w.endpoint.id) } }
                    dt { (a.t("webhooks-secret")) } dd { code #webhook-secret { (w.secret.expose()) } }
                    dt { (a.t("webhooks-registered")) } dd { (i18n::date_time(a.lang, w.endpoint.created_at)) }
                }
                div.alert.warn role="alert" { p { (a.t("webhooks-secret-once")) } }
                div.actions {
                    a.button.primary href=(a.href(urls::OperatorWebhooks)) { (a.t("webhooks-secret-done")) }
                }
            }
        },
    )
}

/// `POST /operator/webhooks`: registers an endpoint; the answer page shows its secret (no
/// redirect: a secret is never in a URL).
pub(crate) async fn create(a: Authed, Form(v): Form<WebhookForm>) -> Result<Response, PageError> {
    let events = portal_core::webhook::parse_events(v.events.iter().map(String::as_str));
    let result = match events {
        Ok(events) => {
            a.portal()
                .create_webhook(
                    &a.principal.actor(),
                    NewWebhook {
                        url: v.url.clone(),
                        description: v.description.clone(),
                        events,
                    },
                )
                .await
        }
        Err(e) => Err(WebhookError::from(e)),
    };
    match result {
        Ok(created) => Ok(secret_page(&a, &created, StatusCode::CREATED)),
        Err(e) => {
            let mut errors = Errors::new();
            refused(&a, &mut errors, e)?;
            Ok(a.back(urls::OperatorWebhooks, errors))
        }
    }
}

/// `POST /operator/webhooks/{id}/rotate-secret`: the new secret, shown once.
pub(crate) async fn rotate(a: Authed, path: OperatorWebhookSecret) -> Result<Response, PageError> {
    let rotated = a
        .portal()
        .rotate_webhook_secret(&a.principal.actor(), path.id)
        .await?;
    Ok(secret_page(&a, &rotated, StatusCode::OK))
}

/// `POST /operator/webhooks/{id}/disable`.
pub(crate) async fn disable(
    a: Authed,
    path: OperatorWebhookDisable,
) -> Result<Response, PageError> {
    a.portal()
        .set_webhook_disabled(&a.principal.actor(), path.id, true)
        .await?;
    Ok(a.redirect_with(Notice::Saved, urls::OperatorWebhooks))
}

/// `POST /operator/webhooks/{id}/enable`.
pub(crate) async fn enable(a: Authed, path: OperatorWebhookEnable) -> Result<Response, PageError> {
    a.portal()
        .set_webhook_disabled(&a.principal.actor(), path.id, false)
        .await?;
    Ok(a.redirect_with(Notice::Saved, urls::OperatorWebhooks))
}

/// `POST /operator/webhooks/{id}/remove`.
pub(crate) async fn remove(a: Authed, path: OperatorWebhookRemove) -> Result<Response, PageError> {
    a.portal()
        .remove_webhook(&a.principal.actor(), path.id)
        .await?;
    Ok(a.redirect_with(Notice::Saved, urls::OperatorWebhooks))
}
