//! The home page (the protected areas the user may open, or the waiting state), the areas, the
//! affiliation choice and the customer link ("Willkommen im Portal"), "Administrator
//! kontaktieren" and "Admin-Rechte beantragen".

use super::auth::query_notice;
use super::ctx::{Authed, Ctx, WebPath};
use super::form::FormData;
use super::i18n;
use super::layout::{Errors, Input, csrf_field, current_password, notice};
use crate::path::AreaPath;

use crate::error::ApiError;
use crate::ratelimit::Bucket;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::customer::AffiliationKey;
use portal_core::secret::SecretString;
use portal_core::service::{AdminRequestError, ContactError, LinkError, LinkOutcome};
use portal_core::user::{AccountState, Role};
use portal_core::values::{CustomerNumber, FreeText};

/// `GET /`: home when logged in, else the login page.
pub(crate) async fn root(ctx: Ctx) -> Response {
    if ctx.principal.is_some() {
        ctx.redirect("/home")
    } else {
        ctx.redirect("/login")
    }
}

fn contact_form(ctx: &Ctx, message: &str, errors: &Errors) -> Markup {
    html! {
        form method="post" action="/contact-admin" {
            (csrf_field(ctx))
            div.field.invalid[errors.get("message").is_some()] {
                label for="f-message" { (ctx.t("Ihre Nachricht", "Your message")) }
                textarea #f-message name="message" rows="5" required
                    aria-invalid=[errors.get("message").map(|_| "true")]
                    aria-describedby=[errors.get("message").map(|_| "f-message-error")] { (message) }
                @if let Some(e) = errors.get("message") { p.field-error #f-message-error { (e) } }
            }
            button.primary type="submit" { (ctx.t("Nachricht senden", "Send message")) }
        }
    }
}

/// `GET /home`.
pub(crate) async fn home(a: Authed) -> Response {
    let user = a.principal.user();
    let title = a.t("Willkommen im Portal", "Welcome to the portal");
    if user.role() == Role::Operator {
        return a.page(
            title,
            html! {
                h1 { (title) }
                p { (a.t("Sie sind als Portal-Mitarbeiter angemeldet.", "You are logged in as portal staff.")) }
                ul.tiles {
                    li { a href="/operator/customers" { (a.t("Kunden verwalten", "Manage customers")) } }
                    li { a href="/operator/admin-requests" { (a.t("Admin-Anträge entscheiden", "Decide admin requests")) } }
                }
            },
        );
    }
    if user.customer_id().is_none() {
        return if user.affiliation().is_none() {
            a.redirect("/onboarding/affiliation")
        } else {
            a.redirect("/onboarding/link")
        };
    }
    let company = a
        .principal
        .customer()
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    if user.state() == AccountState::PendingActivation {
        let waiting = a.t(
            "Ihr Zugang wartet auf Freischaltung",
            "Your access awaits activation",
        );
        return a.page(
            waiting,
            html! {
                h1 { (waiting) }
                (query_notice(&a))
                p { (a.t(
                    "Ihr Konto ist mit Ihrem Unternehmen verknüpft. Da Ihr Unternehmen einen Administrator hat, schaltet dieser neue Zugänge frei und vergibt die Berechtigungen. Sie erhalten eine E-Mail, sobald Ihr Zugang aktiviert ist.",
                    "Your account is linked to your company. As your company has an administrator, they activate new accounts and grant permissions. You will get an e-mail once your access is active."
                )) }
                p { (a.t("Unternehmen:", "Company:")) " " strong { (company) } }
                section.card {
                    h2 { (a.t("Administrator kontaktieren", "Contact the administrator")) }
                    (contact_form(&a, "", &Errors::new()))
                }
            },
        );
    }
    let catalog = a.portal().catalog();
    let areas: Vec<_> = catalog
        .permissions()
        .iter()
        .filter(|p| a.portal().may_access_area(&a.principal, &p.key))
        .collect();
    let admin = user.is_active() && user.role() == Role::Administrator;
    a.page(
        title,
        html! {
            h1 { (title) }
            (query_notice(&a))
            p { (a.t("Unternehmen:", "Company:")) " " strong { (company) }
                @if let Some(c) = a.principal.customer() { " (" (a.t("Kundennummer", "Customer number")) " " (c.number().printed()) ")" } }
            @if admin {
                p { a.button.secondary href="/admin/users" { (a.t("Benutzerverwaltung", "User management")) } }
            }
            h2 { (a.t("Ihre Bereiche", "Your areas")) }
            @if areas.is_empty() {
                p { (a.t(
                    "Für Sie sind noch keine Bereiche freigeschaltet. Bitte wenden Sie sich an Ihren Administrator.",
                    "No areas are open to you yet. Please ask your administrator."
                )) }
            } @else {
                ul.tiles.areas {
                    @for p in &areas {
                        li {
                            a href={ "/areas/" (p.key) } { strong { (p.label.get(a.lang)) } }
                            p { (p.description.get(a.lang)) }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /areas/{key}`: a protected area (R1: only who may open it).
pub(crate) async fn area(a: Authed, WebPath(AreaPath(key)): WebPath<AreaPath>) -> Response {
    let Some(perm) = a.portal().catalog().get(&key).cloned() else {
        return a.error_page(StatusCode::NOT_FOUND, a.t("Nicht gefunden.", "Not found."));
    };
    if !a.portal().may_access_area(&a.principal, &perm.key) {
        return a.error_page(
            StatusCode::FORBIDDEN,
            a.t(
                "Für diesen Bereich fehlt Ihnen die Berechtigung. Bitte wenden Sie sich an Ihren Administrator.",
                "You do not have the permission for this area. Please ask your administrator.",
            ),
        );
    }
    let title = perm.label.get(a.lang);
    a.page(
        title,
        html! {
            h1 { (title) }
            p { (perm.description.get(a.lang)) }
            p.muted { (a.t("Die Inhalte dieses Bereichs stellt Ihre Installation bereit.", "This area's content is provided by your installation.")) }
            p { a href="/home" { (a.t("Zurück", "Back")) } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Zugehörigkeit, Kundennummer
// ---------------------------------------------------------------------------------------------

fn affiliation_page(a: &Authed, errors: &Errors) -> Markup {
    let affiliations = &a.portal().config().affiliations;
    let mut regions: Vec<&str> = Vec::new();
    for af in affiliations {
        let r = af.region.get(a.lang);
        if !regions.contains(&r) {
            regions.push(r);
        }
    }
    html! {
        section.card {
            h1 { (a.t("Starten Sie durch!", "Get started!")) }
            p { (a.t("Bitte wählen Sie Ihre Zugehörigkeit aus", "Please choose your affiliation")) }
            (errors.summary(a.lang))
            form method="post" action="/onboarding/affiliation" {
                (csrf_field(a))
                @for region in &regions {
                    h2 { (region) ":" }
                    ul.choices {
                        @for af in affiliations.iter().filter(|af| af.region.get(a.lang) == *region) {
                            li {
                                span { (af.label.get(a.lang)) }
                                " "
                                button.link type="submit" name="affiliation" value=(af.key) { (a.t("Hier anmelden", "Sign in here")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /onboarding/affiliation`.
pub(crate) async fn affiliation(a: Authed) -> Response {
    if a.principal.user().customer_id().is_some() {
        return a.redirect("/home");
    }
    a.page(
        a.t("Zugehörigkeit", "Affiliation"),
        affiliation_page(&a, &Errors::new()),
    )
}

/// `POST /onboarding/affiliation`.
pub(crate) async fn choose_affiliation(a: Authed, form: FormData) -> Response {
    let result = match AffiliationKey::parse(form.get("affiliation")) {
        Ok(key) => {
            a.portal()
                .choose_affiliation(&a.principal.actor(), &key)
                .await
        }
        Err(_) => Err(LinkError::UnknownAffiliation),
    };
    match result {
        Ok(()) => a.redirect("/onboarding/link"),
        Err(LinkError::AlreadyLinked) => a.redirect("/home"),
        Err(LinkError::UnknownAffiliation) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(
                a.lang,
                crate::error::ErrorCode::UnknownAffiliation,
            ));
            a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("Zugehörigkeit", "Affiliation"),
                affiliation_page(&a, &errors),
            )
        }
        Err(e) => a.fail(e),
    }
}

fn link_page(a: &Authed, number: &str, username: &str, errors: &Errors) -> Markup {
    html! {
        h1 { (a.t("Willkommen im Portal", "Welcome to the portal")) }
        (errors.summary(a.lang))
        div.columns {
            section.card {
                h2 { (a.t("Neu hier? Starten Sie durch!", "New here? Get started!")) }
                p { (a.t("Sie haben bisher noch keinen Zugang? Dann tragen Sie bitte hier Ihre Kundennummer* ein:", "You have no access yet? Then please enter your customer number* here:")) }
                form method="post" action="/onboarding/link/customer" {
                    (csrf_field(a))
                    (Input::new("customer_number", a.t("Kundennummer", "Customer number")).value(number).inputmode("numeric").errors(errors)
                        .hint(a.t(
                            "* Ihre neunstellige Kundennummer finden Sie entweder auf einem Anschreiben oder einer Rechnung – meist hinter der Rechnungsnummer mit einem „D“ beginnend. Bitte ohne das „D“ eingeben.",
                            "* You find your nine-digit customer number on a letter or an invoice – usually after the invoice number, starting with a \"D\". Please enter it without the \"D\"."
                        )))
                    button.primary type="submit" { (a.t("Jetzt registrieren", "Register now")) }
                }
            }
            section.card {
                h2 { (a.t("Sie haben schon einen Zugang?", "You already have an account?")) }
                p { (a.t(
                    "Bitte geben Sie Ihre bekannten Servicewelt-Zugangsdaten einmalig ein, damit eine Verknüpfung hergestellt werden kann. In Zukunft melden Sie sich direkt mit Ihrem Konto an.",
                    "Please enter your old Servicewelt credentials once so that they can be linked. From then on you log in with your account directly."
                )) }
                form method="post" action="/onboarding/link/legacy" {
                    (csrf_field(a))
                    (Input::new("username", a.t("Benutzername", "Username")).value(username).errors(errors))
                    (current_password("legacy_password", a.t("Passwort", "Password"), errors))
                    button.primary type="submit" { (a.t("Jetzt verknüpfen", "Link now")) }
                }
            }
        }
        p { a href="/onboarding/affiliation" { (a.t("Zugehörigkeit ändern", "Change affiliation")) } }
    }
}

/// `GET /onboarding/link`.
pub(crate) async fn link(a: Authed) -> Response {
    if a.principal.user().customer_id().is_some() {
        return a.redirect("/home");
    }
    if a.principal.user().affiliation().is_none() {
        return a.redirect("/onboarding/affiliation");
    }
    a.page(
        a.t("Willkommen im Portal", "Welcome to the portal"),
        link_page(&a, "", "", &Errors::new()),
    )
}

fn linked(
    a: &Authed,
    result: Result<LinkOutcome, LinkError>,
    number: &str,
    username: &str,
    field: &'static str,
) -> Response {
    let mut errors = Errors::new();
    let status = match result {
        Ok(LinkOutcome::Active | LinkOutcome::PendingActivation)
        | Err(LinkError::AlreadyLinked) => {
            return a.redirect("/home");
        }
        Err(LinkError::AffiliationRequired) => return a.redirect("/onboarding/affiliation"),
        Err(
            e @ (LinkError::CustomerNotFound
            | LinkError::AffiliationMismatch
            | LinkError::InvalidLegacyCredentials
            | LinkError::LegacyAlreadyLinked),
        ) => {
            let api = ApiError::from(e);
            errors.field(field, i18n::code(a.lang, api.code()));
            api.code().status()
        }
        Err(e) => return a.fail(e),
    };
    a.page_with(
        status,
        a.t("Willkommen im Portal", "Welcome to the portal"),
        link_page(a, number, username, &errors),
    )
}

/// `POST /onboarding/link/customer`: "Jetzt registrieren".
pub(crate) async fn link_customer(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Login) {
        return r;
    }
    let raw = form.get("customer_number").to_owned();
    let number = match CustomerNumber::parse(&raw) {
        Ok(n) => n,
        Err(e) => {
            let mut errors = Errors::new();
            errors.field("customer_number", i18n::customer_number(a.lang, e));
            return a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("Willkommen im Portal", "Welcome to the portal"),
                link_page(&a, &raw, "", &errors),
            );
        }
    };
    let result = a
        .portal()
        .link_customer(&a.principal.actor(), &number)
        .await;
    linked(&a, result, &raw, "", "customer_number")
}

/// `POST /onboarding/link/legacy`: "Jetzt verknüpfen".
pub(crate) async fn link_legacy(a: Authed, form: FormData) -> Response {
    if let Err(r) = a.limit(Bucket::Login) {
        return r;
    }
    let username = form.get("username").trim().to_owned();
    let result = a
        .portal()
        .link_legacy(
            &a.principal.actor(),
            &username,
            &SecretString::new(form.get("legacy_password")),
        )
        .await;
    linked(&a, result, "", &username, "username")
}

// ---------------------------------------------------------------------------------------------
// Administrator kontaktieren, Admin-Rechte beantragen
// ---------------------------------------------------------------------------------------------

fn contact_page(a: &Authed, message: &str, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("Administrator kontaktieren", "Contact the administrator")) }
            (query_notice(a))
            p { (a.t(
                "Haben Sie ein Anliegen? Ihre Nachricht geht per E-Mail an die Administratoren Ihres Unternehmens.",
                "Do you have a request? Your message is e-mailed to your company's administrators."
            )) }
            (errors.summary(a.lang))
            (contact_form(a, message, errors))
        }
    }
}

/// `GET /contact-admin`.
pub(crate) async fn contact(a: Authed) -> Response {
    a.page(
        a.t("Administrator kontaktieren", "Contact the administrator"),
        contact_page(&a, "", &Errors::new()),
    )
}

/// `POST /contact-admin`.
pub(crate) async fn send_contact(a: Authed, form: FormData) -> Response {
    let raw = form.get("message").to_owned();
    let mut errors = Errors::new();
    let status = match FreeText::parse(&raw) {
        Err(e) => {
            errors.field("message", i18n::free_text(a.lang, e));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Ok(message) => match a
            .portal()
            .contact_admins(&a.principal.actor(), &message)
            .await
        {
            Ok(_) => return a.redirect("/contact-admin?notice=message-sent"),
            Err(e @ (ContactError::NoAdmin | ContactError::NotLinked)) => {
                let api = ApiError::from(e);
                errors.general(i18n::code(a.lang, api.code()));
                StatusCode::CONFLICT
            }
            Err(e) => return a.fail(e),
        },
    };
    a.page_with(
        status,
        a.t("Administrator kontaktieren", "Contact the administrator"),
        contact_page(&a, &raw, &errors),
    )
}

fn admin_request_page(a: &Authed, errors: &Errors, done: bool) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("Admin-Rechte beantragen", "Request admin rights")) }
            (errors.summary(a.lang))
            @if done {
                (notice(a.t(
                    "Ihr Antrag wurde gestellt. Hat Ihr Unternehmen bereits einen Administrator, muss dieser zuerst zustimmen; danach entscheidet der Anbieter. Sie werden per E-Mail informiert.",
                    "Your request has been made. If your company has an administrator already, they must consent first; then the vendor decides. You will be told by e-mail."
                )))
            }
            p { (a.t("Der Administrator übernimmt die Administration der Zugänge Ihres Unternehmens und ist erster Ansprechpartner für alle Nutzer. Seine Aufgaben:", "The administrator manages your company's accounts and is the first contact for all users. Their duties:")) }
            ul {
                li { (a.t("Die Aktivierung und Verwaltung der Benutzerzugänge", "Activating and managing user accounts")) }
                li { (a.t("Die Vergabe von Berechtigungen für die einzelnen Benutzer", "Granting permissions to each user")) }
                li { (a.t("Das Sperren von Benutzerzugängen, z. B. bei unberechtigtem Zugriff oder wenn ein Mitarbeiter das Unternehmen verlässt", "Locking accounts, e.g. after unauthorised access or when an employee leaves")) }
            }
            p { (a.t(
                "Sobald Ihr Unternehmen einen Administrator hat, können neue Zugänge nur noch von ihm aktiviert werden. Gibt es bereits einen Administrator, muss er Ihrem Antrag zustimmen.",
                "Once your company has an administrator, only they can activate new accounts. If there is an administrator already, they must consent to your request."
            )) }
            @if !done {
                form method="post" action="/admin-request" {
                    (csrf_field(a))
                    button.primary type="submit" { (a.t("Admin-Rechte beantragen", "Request admin rights")) }
                }
            }
        }
    }
}

/// `GET /admin-request`.
pub(crate) async fn admin_request(a: Authed) -> Response {
    a.page(
        a.t("Admin-Rechte beantragen", "Request admin rights"),
        admin_request_page(&a, &Errors::new(), a.query.get("notice") == "requested"),
    )
}

/// `POST /admin-request`.
pub(crate) async fn request_admin(a: Authed) -> Response {
    match a.portal().request_admin_rights(&a.principal.actor()).await {
        Ok(_) => a.redirect("/admin-request?notice=requested"),
        Err(
            e @ (AdminRequestError::NotEligible
            | AdminRequestError::AlreadyAdmin
            | AdminRequestError::AlreadyRequested),
        ) => {
            let api = ApiError::from(e);
            let mut errors = Errors::new();
            errors.general(i18n::code(a.lang, api.code()));
            a.page_with(
                StatusCode::CONFLICT,
                a.t("Admin-Rechte beantragen", "Request admin rights"),
                admin_request_page(&a, &errors, false),
            )
        }
        Err(e) => a.fail(e),
    }
}
