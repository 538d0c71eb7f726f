//! Operators' pages of the applications that sign in through Portal (OpenID Connect clients):
//! the list, registration, a client's page with its settings, secret rotation and disabling.
//! A secret is shown once, on the page that answers its creation or rotation (never in a link,
//! a redirect or the change log); the core refuses everyone but active operators.

use super::ctx::Authed;
use super::error::PageError;
use super::form::Form;
use super::i18n;
use super::layout::{Errors, Input, csrf_field, flash_notice};
use super::urls::{self, Notice, OperatorClient, OperatorClientDisable, OperatorClientSecret};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::authz::{Acting, is_operator};
use portal_core::oidc::{AccessTokenFormat, Client};
use portal_core::service::{ClientChanges, ClientWithSecret, NewClient, OidcAdminError};
use serde::Deserialize;

/// The form of registration and of a client's settings. Checkboxes are present when ticked;
/// URI lists are one URI a line.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ClientForm {
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    backchannel_logout_uri: String,
    public: Option<String>,
    first_party: Option<String>,
    required_permission: String,
    require_second_factor: Option<String>,
    access_tokens: String,
}

fn lines(raw: &str) -> Vec<String> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional(raw: &str) -> Option<String> {
    Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
}

impl ClientForm {
    fn of(c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            public: c.public.then(String::new),
            first_party: c.first_party.then(String::new),
            required_permission: c.required_permission.clone().unwrap_or_default(),
            require_second_factor: c.require_second_factor.then(String::new),
            access_tokens: c.access_tokens.key().to_owned(),
        }
    }

    fn access_tokens(&self) -> AccessTokenFormat {
        AccessTokenFormat::from_key(&self.access_tokens).unwrap_or_default()
    }

    fn changes(&self) -> ClientChanges {
        ClientChanges {
            name: self.name.clone(),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            backchannel_logout_uri: optional(&self.backchannel_logout_uri),
            first_party: self.first_party.is_some(),
            required_permission: optional(&self.required_permission),
            require_second_factor: self.require_second_factor.is_some(),
            access_tokens: self.access_tokens(),
        }
    }

    fn new_client(&self) -> NewClient {
        let c = self.changes();
        NewClient {
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            backchannel_logout_uri: c.backchannel_logout_uri,
            public: self.public.is_some(),
            first_party: c.first_party,
            required_permission: c.required_permission,
            require_second_factor: c.require_second_factor,
            access_tokens: c.access_tokens,
        }
    }
}

/// A refused field's message next to it; other refusals for the whole form. The status.
fn refused(a: &Authed, errors: &mut Errors, e: OidcAdminError) -> Result<(), PageError> {
    match e {
        OidcAdminError::Invalid { field, .. } => {
            let key = match field {
                "name" => "clients-invalid-name",
                "redirect_uris" => "clients-invalid-redirect-uris",
                "required_permission" => "clients-invalid-permission",
                _ => "clients-invalid-uri",
            };
            errors.field(field, a.t(key));
            Ok(())
        }
        e => Err(e.into()),
    }
}

fn operator_only(a: &Authed) -> Result<(), PageError> {
    if is_operator(&Acting::User(a.principal.user().clone())) {
        Ok(())
    } else {
        Err(PageError::forbidden())
    }
}

/// The kind of a client in words.
fn kind(a: &Authed, c: &Client) -> String {
    if c.public {
        a.t("clients-public").to_string()
    } else {
        a.t("clients-confidential").to_string()
    }
}

/// Whether a client is active, in words.
fn status(a: &Authed, c: &Client) -> i18n::Text {
    if c.disabled {
        a.t("clients-disabled")
    } else {
        a.t("clients-enabled")
    }
}

/// A permission key by its name in the catalog.
fn permission_name(a: &Authed, key: &str) -> String {
    a.portal()
        .catalog()
        .permissions()
        .iter()
        .find(|p| p.key.as_str() == key)
        .map_or_else(|| key.to_owned(), |p| p.label.get(a.lang).to_owned())
}

/// `GET /operator/clients`.
pub(crate) async fn list(a: Authed) -> Result<Response, PageError> {
    let clients = a.portal().clients(&a.principal.actor()).await?;
    let title = a.t("clients-title");
    Ok(a.page(
        &title,
        html! {
            h1 { (title) }
            (flash_notice(&a))
            p { (a.t("clients-intro")) }
            div.toolbar {
                a.button.primary href=(a.href(urls::OperatorNewClient)) { (a.t("clients-create")) }
            }
            table.stack {
                thead { tr {
                    th scope="col" { (a.t("name")) }
                    th scope="col" { (a.t("clients-id")) }
                    th scope="col" { (a.t("clients-kind")) }
                    th scope="col" { (a.t("clients-required-permission")) }
                    th scope="col" { (a.t("status")) }
                    th scope="col" { (a.t("actions")) }
                } }
                tbody {
                    @if clients.is_empty() {
                        tr { td colspan="6" { (a.t("clients-none")) } }
                    }
                    @for c in &clients {
                        tr {
                            td data-label=(a.t("name")) { (c.name) }
                            td.wrap data-label=(a.t("clients-id")) { code { (c.id) } }
                            td data-label=(a.t("clients-kind")) { (kind(&a, c)) }
                            td data-label=(a.t("clients-required-permission")) {
                                @match &c.required_permission {
                                    Some(p) => (permission_name(&a, p)),
                                    None => "–",
                                }
                            }
                            td data-label=(a.t("status")) {
                                (status(&a, c))
                            }
                            td.actions data-label=(a.t("actions")) {
                                a href=(a.href(OperatorClient { id: c.id.clone() })) { (a.t("clients-edit")) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// A `<textarea>` with its label, hint and error, like [`Input`].
fn uri_lines(
    a: &Authed,
    name: &'static str,
    label: i18n::Text,
    value: &str,
    errors: &Errors,
) -> Markup {
    let id = format!("f-{name}");
    let hint_id = format!("{id}-hint");
    let error = errors.get(name);
    let described = match error {
        Some(_) => format!("{hint_id} {id}-error"),
        None => hint_id.clone(),
    };
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            textarea id=(id) name=(name) rows="3" spellcheck="false" autocapitalize="off"
                aria-invalid=[error.map(|_| "true")] aria-describedby=(described) { (value) }
            p.hint id=(hint_id) { (a.t("clients-uri-lines-hint")) }
            @if let Some(e) = error { p.field-error id={(id) "-error"} { (e) } }
        }
    }
}

/// The fields shared by registration and a client's settings.
fn fields(a: &Authed, v: &ClientForm, errors: &Errors, new: bool) -> Markup {
    let permission_error = errors.get("required_permission");
    html! {
        (Input::new("name", a.t("clients-name")).value(&v.name).errors(errors).hint(a.t("clients-name-hint")))
        (uri_lines(a, "redirect_uris", a.t("clients-redirect-uris"), &v.redirect_uris, errors))
        (uri_lines(a, "post_logout_redirect_uris", a.t("clients-post-logout-uris"), &v.post_logout_redirect_uris, errors))
        (Input::new("backchannel_logout_uri", a.t("clients-backchannel-uri")).kind("url").value(&v.backchannel_logout_uri)
            .optional().errors(errors).hint(a.t("clients-backchannel-uri-hint")))
        div.field.invalid[permission_error.is_some()] {
            label for="f-required_permission" { (a.t("clients-required-permission")) }
            select #f-required_permission name="required_permission"
                aria-invalid=[permission_error.map(|_| "true")]
                aria-describedby=[permission_error.map(|_| "f-required_permission-error")] {
                option value="" selected[v.required_permission.is_empty()] { (a.t("clients-no-permission")) }
                @for p in a.portal().catalog().permissions() {
                    option value=(p.key.as_str()) selected[v.required_permission == p.key.as_str()] { (p.label.get(a.lang)) }
                }
            }
            @if let Some(e) = permission_error { p.field-error #f-required_permission-error { (e) } }
        }
        fieldset {
            legend { (a.t("clients-options")) }
            @if new {
                label.choice { input type="checkbox" name="public" value="on" checked[v.public.is_some()]; " " (a.t("clients-public-choice")) }
            }
            label.choice { input type="checkbox" name="first_party" value="on" checked[v.first_party.is_some()]; " " (a.t("clients-first-party-choice")) }
            label.choice { input type="checkbox" name="require_second_factor" value="on" checked[v.require_second_factor.is_some()]; " " (a.t("clients-second-factor-choice")) }
        }
        fieldset {
            legend { (a.t("clients-access-tokens")) }
            label.choice { input type="radio" name="access_tokens" value="opaque" checked[v.access_tokens() == AccessTokenFormat::Opaque]; " " (a.t("clients-access-tokens-opaque")) }
            label.choice { input type="radio" name="access_tokens" value="jwt" checked[v.access_tokens() == AccessTokenFormat::Jwt]; " " (a.t("clients-access-tokens-jwt")) }
        }
    }
}

fn new_page(a: &Authed, v: &ClientForm, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("clients-create")) }
            (errors.summary(a.lang))
            form method="post" action=(a.href(urls::OperatorNewClient)) {
                (csrf_field(a))
                (fields(a, v, errors, true))
                div.actions {
                    a.button.secondary href=(a.href(urls::OperatorClients)) { (a.t("back")) }
                    button.primary type="submit" { (a.t("clients-create")) }
                }
            }
        }
    }
}

/// `GET /operator/clients/new`.
pub(crate) async fn new(a: Authed) -> Result<Response, PageError> {
    operator_only(&a)?;
    // A failed form comes back with what was typed and ticked.
    let errors = a.errors();
    let v = errors.kept_form().unwrap_or_else(|| ClientForm {
        first_party: Some(String::new()),
        ..ClientForm::default()
    });
    Ok(a.page(a.t("clients-create"), new_page(&a, &v, &errors)))
}

/// The page that shows a secret, once.
fn secret_page(a: &Authed, created: &ClientWithSecret, status: StatusCode) -> Response {
    let c = &created.client;
    let title = a.t("clients-secret-title");
    a.page_with(
        status,
        &title,
        html! {
            section.card.narrow {
                h1 { (title) }
                dl.facts {
                    dt { (a.t("name")) } dd { (c.name) }
                    dt { (a.t("clients-id")) } dd { code #client-id { (c.id) } }
                    @if let Some(secret) = &created.secret {
                        dt { (a.t("clients-secret")) } dd { code #client-secret { (secret.expose()) } }
                    }
                }
                @if created.secret.is_some() {
                    div.alert.warn role="alert" { p { (a.t("clients-secret-once")) } }
                } @else {
                    p { (a.t("clients-public-no-secret")) }
                }
                div.actions {
                    a.button.primary href=(a.href(OperatorClient { id: c.id.clone() })) { (a.t("clients-secret-done")) }
                }
            }
        },
    )
}

/// `POST /operator/clients/new`: the result page shows the secret (no redirect: it is never in
/// a URL).
pub(crate) async fn create(a: Authed, Form(v): Form<ClientForm>) -> Result<Response, PageError> {
    match a
        .portal()
        .create_client(&a.principal.actor(), v.new_client())
        .await
    {
        Ok(created) => Ok(secret_page(&a, &created, StatusCode::CREATED)),
        Err(e) => {
            let mut errors = Errors::new();
            refused(&a, &mut errors, e)?;
            Ok(a.back(urls::OperatorNewClient, errors))
        }
    }
}

fn client_page(a: &Authed, c: &Client, v: &ClientForm, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (c.name) }
            (flash_notice(a))
            (errors.summary(a.lang))
            dl.facts {
                dt { (a.t("clients-id")) } dd { code { (c.id) } }
                dt { (a.t("clients-kind")) } dd { (kind(a, c)) }
                dt { (a.t("status")) } dd { (status(a, c)) }
                dt { (a.t("clients-registered")) } dd { (i18n::date_time(a.lang, c.created_at)) }
            }
            form method="post" action=(a.href(OperatorClient { id: c.id.clone() })) {
                (csrf_field(a))
                (fields(a, v, errors, false))
                div.actions {
                    a.button.secondary href=(a.href(urls::OperatorClients)) { (a.t("back")) }
                    button.primary type="submit" { (a.t("save")) }
                }
            }
        }
        @if !c.public || !c.disabled {
            section.card.narrow.danger {
                h2 { (a.t("clients-danger")) }
                @if !c.public {
                    p { (a.t("clients-rotate-text")) }
                    form method="post" action=(a.href(OperatorClientSecret { id: c.id.clone() })) {
                        (csrf_field(a))
                        button.secondary type="submit" { (a.t("clients-rotate")) }
                    }
                }
                @if !c.disabled {
                    p { (a.t("clients-disable-text")) }
                    form method="post" action=(a.href(OperatorClientDisable { id: c.id.clone() })) {
                        (csrf_field(a))
                        button.danger type="submit" { (a.t("clients-disable")) }
                    }
                }
            }
        }
    }
}

/// `GET /operator/clients/{id}`.
pub(crate) async fn show(a: Authed, path: OperatorClient) -> Result<Response, PageError> {
    let c = a.portal().client(&a.principal.actor(), &path.id).await?;
    let errors = a.errors();
    let v = errors.kept_form().unwrap_or_else(|| ClientForm::of(&c));
    Ok(a.page(&c.name, client_page(&a, &c, &v, &errors)))
}

/// `POST /operator/clients/{id}`: saves the settings.
pub(crate) async fn update(
    a: Authed,
    path: OperatorClient,
    Form(v): Form<ClientForm>,
) -> Result<Response, PageError> {
    let actor = a.principal.actor();
    match a
        .portal()
        .update_client(&actor, &path.id, &v.changes())
        .await
    {
        Ok(_) => Ok(a.redirect_with(Notice::Saved, OperatorClient { id: path.id })),
        Err(e) => {
            let mut errors = Errors::new();
            refused(&a, &mut errors, e)?;
            Ok(a.back(&path, errors))
        }
    }
}

/// `POST /operator/clients/{id}/rotate-secret`: the new secret, shown once.
pub(crate) async fn rotate(a: Authed, path: OperatorClientSecret) -> Result<Response, PageError> {
    let rotated = a
        .portal()
        .rotate_client_secret(&a.principal.actor(), &path.id)
        .await?;
    Ok(secret_page(&a, &rotated, StatusCode::OK))
}

/// `POST /operator/clients/{id}/disable`.
pub(crate) async fn disable(a: Authed, path: OperatorClientDisable) -> Result<Response, PageError> {
    a.portal()
        .disable_client(&a.principal.actor(), &path.id)
        .await?;
    Ok(a.redirect_with(Notice::Saved, OperatorClient { id: path.id }))
}
