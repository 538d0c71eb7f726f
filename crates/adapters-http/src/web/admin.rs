//! The customer administration (manual chapter 3) for administrators and operators:
//! "Benutzerverwaltung" (the user table), "Benutzer hinzufügen", "Berechtigungen" with the
//! group's "Alle anhaken / Alle abhaken", "Benutzer sperren / entsperren", "Benutzer löschen",
//! activation, the change logs ("Änderungsprotokoll", "Protokoll") and admin requests awaiting
//! consent.
//!
//! Paths carry the customer number (`/admin/customers/{number}/…`); the core decides: a
//! customer or user that is not the actor's answers the 404 page exactly like an unknown one,
//! and a member who is not an administrator gets the 403 page.

use super::auth::{parse_email, parse_name, query_notice};
use super::ctx::{Authed, WebPath};
use super::form::{FormData, encode};
use super::i18n;
use super::layout::{Errors, Input, csrf_field, notice};
use crate::error::{ApiError, codes};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::authz::{Access, Acting, management_access};
use portal_core::customer::Customer;
use portal_core::ids::{AdminRequestId, UserId};
use portal_core::permission::{GroupKey, PermissionKey, PermissionSet};
use portal_core::service::{
    AdminError, AuditListQuery, AuditPage, CustomerError, Invite, PageRequest,
};
use portal_core::user::{Role, User, UserStatus};
use portal_core::values::{CustomerNumber, FreeText, Language};

// ---------------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------------

fn not_found(a: &Authed) -> Response {
    a.fail(ApiError::new(codes::NOT_FOUND))
}

fn forbidden(a: &Authed) -> Response {
    a.fail(ApiError::new(codes::FORBIDDEN))
}

/// The customer in the path, if the logged-in user manages it (R2, R3 by the core's rule): the
/// 404 page for an unknown or foreign customer, the 403 page for a member who is no admin.
async fn managed(a: &Authed, raw: &str) -> Result<(CustomerNumber, Customer), Response> {
    let Ok(number) = CustomerNumber::parse(raw) else {
        return Err(not_found(a));
    };
    let own = a.p.customer().filter(|c| c.number() == &number).cloned();
    let customer = match own {
        Some(c) => c,
        None => match a.portal().get_customer(&a.p.actor(), &number).await {
            Ok(c) => c,
            Err(CustomerError::Forbidden | CustomerError::NotFound) => return Err(not_found(a)),
            Err(e) => return Err(a.fail(e)),
        },
    };
    match management_access(&Acting::User(a.p.user().clone()), customer.id()) {
        Access::Granted(_) => Ok((number, customer)),
        Access::Forbidden => Err(forbidden(a)),
        Access::NotFound => Err(not_found(a)),
    }
}

fn admin_failed(a: &Authed, e: AdminError) -> Response {
    a.fail(e)
}

fn base(number: &CustomerNumber) -> String {
    format!("/admin/customers/{number}")
}

fn parse_user_id(a: &Authed, raw: &str) -> Result<UserId, Response> {
    raw.parse::<UserId>().map_err(|_| not_found(a))
}

/// `GET /admin/users`, `/admin/audit`, `/admin/admin-requests`: the administrator's own
/// customer (operators go to their customer list).
pub(crate) async fn mine(a: Authed) -> Response {
    let user = a.p.user();
    let tail = a.path.trim_start_matches("/admin/").to_owned();
    if user.is_active_operator() {
        return a.redirect(if tail == "admin-requests" {
            "/operator/admin-requests"
        } else {
            "/operator/customers"
        });
    }
    match a.p.customer() {
        Some(c) if user.is_active_admin_of(c.id()) => {
            a.redirect(&format!("{}/{tail}", base(c.number())))
        }
        _ => forbidden(&a),
    }
}

/// Cursor paging with "Zurück": the cursors of the pages before travel in `trail`.
pub(crate) struct Pager {
    /// This page's cursor (none: the first page).
    pub(crate) cursor: Option<String>,
    /// The cursors of the pages before (`~` for the first page).
    trail: Vec<String>,
    /// Rows per page.
    pub(crate) per_page: u32,
}

impl Pager {
    /// From the query (`cursor`, `trail`, `per_page`).
    pub(crate) fn from_query(q: &FormData, default: u32) -> Self {
        let cursor = q.opt("cursor").filter(|c| !c.is_empty()).map(str::to_owned);
        let trail = q
            .get("trail")
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let per_page = q
            .opt("per_page")
            .and_then(|p| p.parse().ok())
            .filter(|p| (1..=100).contains(p))
            .unwrap_or(default);
        Self {
            cursor,
            trail,
            per_page,
        }
    }

    /// The core's page request.
    pub(crate) fn request(&self) -> PageRequest {
        PageRequest {
            size: Some(self.per_page),
            page: None,
            cursor: self.cursor.clone(),
        }
    }

    /// Rows before this page.
    pub(crate) fn offset(&self) -> u64 {
        self.trail.len() as u64 * u64::from(self.per_page)
    }

    fn link(&self, path: &str, extra: &str, cursor: Option<&str>, trail: &[String]) -> String {
        let mut s = format!("{path}?per_page={}{extra}", self.per_page);
        if let Some(c) = cursor {
            s.push_str("&cursor=");
            s.push_str(&encode(c));
        }
        if !trail.is_empty() {
            s.push_str("&trail=");
            s.push_str(&encode(&trail.join(".")));
        }
        s
    }

    /// "Zurück" and "Nächste" (`extra`: more query, e.g. `&q=…`).
    pub(crate) fn nav(
        &self,
        lang: Language,
        path: &str,
        extra: &str,
        next: Option<&str>,
    ) -> Markup {
        let prev = self.trail.split_last().map(|(last, before)| {
            let cursor = (last != "~").then_some(last.as_str());
            self.link(path, extra, cursor, before)
        });
        let next = next.map(|n| {
            let mut trail = self.trail.clone();
            trail.push(self.cursor.clone().unwrap_or_else(|| "~".into()));
            self.link(path, extra, Some(n), &trail)
        });
        let page = self.trail.len() + 1;
        html! {
            nav.pager aria-label=(i18n::text(lang, "pager-pages")) {
                @match prev {
                    Some(href) => a rel="prev" href=(href) { (i18n::text(lang, "pager-previous")) },
                    None => span.disabled { (i18n::text(lang, "pager-previous")) },
                }
                " " strong aria-current="page" { (page) } " "
                @match next {
                    Some(href) => a rel="next" href=(href) { (i18n::text(lang, "pager-next")) },
                    None => span.disabled { (i18n::text(lang, "pager-next")) },
                }
            }
        }
    }
}

/// "10 Einträge anzeigen" and "Suchen".
fn search_form(a: &Authed, action: &str, per_page: u32) -> Markup {
    html! {
        form.search method="get" action=(action) role="search" {
            label for="f-per-page" {
                select #f-per-page name="per_page" {
                    @for n in [10u32, 25, 50, 100] {
                        option value=(n) selected[n == per_page] { (n) }
                    }
                }
                " " (a.t("list-entries-per-page"))
            }
            label for="f-q" { (a.t("search")) }
            input #f-q type="search" name="q" value=(a.query.get("q"));
            button.secondary type="submit" { (a.t("search")) }
        }
    }
}

fn facts(a: &Authed, user: &User, customer: &Customer) -> Markup {
    html! {
        dl.facts {
            dt { (a.t("user-facts-name")) } dd { (user.display_name()) }
            dt { (a.t("user-facts-email")) } dd { (user.email().as_str()) }
            dt { (a.t("user-facts-customer-number")) } dd { (customer.number().printed()) }
            dt { (a.t("user-facts-last-login")) } dd { (last_login(a.lang, user)) }
            dt { (a.t("user-facts-status")) } dd { (i18n::status(a.lang, user.status())) }
            dt { (a.t("user-facts-role")) } dd { (i18n::role(a.lang, user.role())) }
        }
    }
}

fn last_login(lang: Language, user: &User) -> String {
    user.last_login_at()
        .map_or_else(|| "–".to_owned(), |t| i18n::date(lang, t))
}

// ---------------------------------------------------------------------------------------------
// Benutzerverwaltung
// ---------------------------------------------------------------------------------------------

/// `GET /admin/customers/{number}/users`.
pub(crate) async fn users(a: Authed, WebPath(raw): WebPath<String>) -> Response {
    let (number, customer) = match managed(&a, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pager = Pager::from_query(&a.query, a.portal().config().default_page_size);
    let q = a.query.get("q").trim().to_owned();
    let page = match a
        .portal()
        .list_users(&a.p.actor(), &number, Some(&q), &pager.request())
        .await
    {
        Ok(p) => p,
        Err(e) => return admin_failed(&a, e),
    };
    let base = base(&number);
    let path = format!("{base}/users");
    let extra = if q.is_empty() {
        String::new()
    } else {
        format!("&q={}", encode(&q))
    };
    let from = pager.offset() + 1;
    let to = pager.offset() + page.items.len() as u64;
    let total = if page.total_capped {
        format!("{}+", page.total)
    } else {
        page.total.to_string()
    };
    let title = a.t("user-management");
    a.page(
        &title,
        html! {
            h1 { (title) }
            p.muted { (customer.name().as_str()) " · " (a.t("customer-number")) " " (customer.number().printed()) }
            (query_notice(&a))
            div.toolbar {
                a.button.primary href={ (base) "/users/new" } { (a.t("add-user")) }
                a.button.secondary href={ (base) "/audit" } { (a.t("log")) }
                a.button.secondary href={ (base) "/admin-requests" } { (a.t("admin-requests")) }
            }
            (search_form(&a, &path, pager.per_page))
            table.users {
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
                    @for u in &page.items {
                        @let ub = format!("{base}/users/{}", u.id());
                        tr {
                            td { (u.display_name()) }
                            td { (u.email().as_str()) }
                            td { (last_login(a.lang, u)) }
                            td { (i18n::status(a.lang, u.status())) }
                            td { (i18n::role(a.lang, u.role())) }
                            td.actions {
                                a href={ (ub) "/permissions" } { (a.t("permissions")) }
                                @if u.status() == UserStatus::Locked {
                                    a href={ (ub) "/lock" } { (a.t("unlock-user")) }
                                } @else {
                                    a href={ (ub) "/lock" } { (a.t("lock-user")) }
                                }
                                a href={ (ub) "/delete" } { (a.t("delete-user")) }
                                a href={ (ub) "/audit" } { (a.t("users-change-log")) }
                                @if u.status() == UserStatus::PendingActivation {
                                    form.inline method="post" action={ (ub) "/activate" } {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("users-activate")) }
                                    }
                                }
                                @if u.status() == UserStatus::Invited {
                                    form.inline method="post" action={ (ub) "/invitation" } {
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
            (pager.nav(a.lang, &path, &extra, page.next.as_deref()))
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Benutzer hinzufügen
// ---------------------------------------------------------------------------------------------

struct AddInput {
    first_name: String,
    last_name: String,
    email: String,
    language: Language,
    permissions: PermissionSet,
}

fn checkbox_table(
    a: &Authed,
    customer: &Customer,
    granted: &PermissionSet,
    groups: bool,
) -> Markup {
    let catalog = a.portal().catalog();
    // The group's row goes before its first member (the manual's "Meine Daten" row).
    let mut group_heads: Vec<(&PermissionKey, &GroupKey)> = Vec::new();
    for p in catalog.permissions() {
        if let Some(g) = &p.group
            && groups
            && !group_heads.iter().any(|(_, seen)| *seen == g)
        {
            group_heads.push((&p.key, g));
        }
    }
    html! {
        table.permissions {
            thead { tr {
                th scope="col" { (a.t("permissions-permission")) }
                th scope="col" { (a.t("permissions-description")) }
            } }
            tbody {
                @for p in catalog.permissions() {
                    @if let Some((_, g)) = group_heads.iter().find(|(k, _)| *k == &p.key) {
                        @if let Some(group) = catalog.group(g) {
                            tr.group {
                                th scope="row" {
                                    (group.label.get(a.lang)) " "
                                    button.link type="submit" name="action" value={ "check:" (g) }
                                        aria-label={ (group.label.get(a.lang)) ": " (a.t("permissions-tick-all")) } { (a.t("permissions-tick-all")) }
                                    " "
                                    button.link type="submit" name="action" value={ "uncheck:" (g) }
                                        aria-label={ (group.label.get(a.lang)) ": " (a.t("permissions-untick-all")) } { (a.t("permissions-untick-all")) }
                                }
                                td { (group.description.get(a.lang)) }
                            }
                        }
                    }
                    @let entitled = customer.is_entitled(&p.key);
                    tr.member[p.group.is_some() && groups] {
                        td {
                            input type="checkbox" name="permission" value=(p.key) id={ "p-" (p.key) }
                                checked[granted.contains(&p.key)] disabled[!entitled];
                            " "
                            label for={ "p-" (p.key) } { (p.label.get(a.lang)) }
                            @if !entitled { " " span.muted { (a.t("permissions-not-entitled")) } }
                        }
                        td { (p.description.get(a.lang)) }
                    }
                }
            }
        }
    }
}

fn add_page(a: &Authed, customer: &Customer, v: &AddInput, errors: &Errors) -> Markup {
    let base = base(customer.number());
    html! {
        section.card {
            h1 { (a.t("add-user")) }
            p { (a.t("invite-intro")) }
            (errors.summary(a.lang))
            form method="post" action={ (base) "/users/new" } {
                (csrf_field(a))
                (Input::new("first_name", a.t("first-name")).value(&v.first_name).errors(errors))
                (Input::new("last_name", a.t("last-name")).value(&v.last_name).errors(errors))
                (Input::new("email", a.t("invite-email-address")).kind("email").value(&v.email).errors(errors))
                div.field {
                    label for="f-language" { (a.t("invite-language")) }
                    select #f-language name="language" {
                        option value="de" selected[v.language == Language::De] { "Deutsch" }
                        option value="en" selected[v.language == Language::En] { "English" }
                    }
                }
                h2 { (a.t("permissions")) }
                (checkbox_table(a, customer, &v.permissions, false))
                div.actions {
                    a.button.secondary href={ (base) "/users" } { (a.t("back")) }
                    button.primary type="submit" { (a.t("invite-submit")) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/new`.
pub(crate) async fn add(a: Authed, WebPath(raw): WebPath<String>) -> Response {
    let (_, customer) = match managed(&a, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let v = AddInput {
        first_name: String::new(),
        last_name: String::new(),
        email: String::new(),
        language: a.lang,
        permissions: customer.default_permissions().clone(),
    };
    a.page(a.t("add-user"), add_page(&a, &customer, &v, &Errors::new()))
}

fn permission_set(raw: &[&str]) -> Result<PermissionSet, Vec<String>> {
    let mut bad = Vec::new();
    let mut set = PermissionSet::new();
    for r in raw {
        match PermissionKey::parse(r) {
            Ok(k) => {
                set.insert(k);
            }
            Err(_) => bad.push((*r).to_owned()),
        }
    }
    if bad.is_empty() { Ok(set) } else { Err(bad) }
}

/// `POST /admin/customers/{number}/users/new`: invites, then on to the permissions page.
pub(crate) async fn create(a: Authed, WebPath(raw): WebPath<String>, form: FormData) -> Response {
    let (number, customer) = match managed(&a, &raw).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut errors = Errors::new();
    let permissions = permission_set(&form.all("permission")).unwrap_or_default();
    let v = AddInput {
        first_name: form.get("first_name").to_owned(),
        last_name: form.get("last_name").to_owned(),
        email: form.get("email").trim().to_owned(),
        language: Language::parse(form.get("language")).unwrap_or(a.lang),
        permissions: permissions.clone(),
    };
    let first = parse_name(a.lang, &v.first_name, "first_name", &mut errors);
    let last = parse_name(a.lang, &v.last_name, "last_name", &mut errors);
    let email = parse_email(a.lang, &v.email, "email", &mut errors);
    let again = |errors: &Errors, status| {
        a.page_with(status, a.t("add-user"), add_page(&a, &customer, &v, errors))
    };
    let (Some(first_name), Some(last_name), Some(email)) = (first, last, email) else {
        return again(&errors, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let result = a
        .portal()
        .invite_user(
            &a.p.actor(),
            &number,
            Invite {
                email,
                first_name,
                last_name,
                language: v.language,
                permissions,
            },
        )
        .await;
    match result {
        Ok(user) => a.redirect(&format!(
            "{}/users/{}/permissions?notice=invited",
            base(&number),
            user.id()
        )),
        Err(e @ (AdminError::AlreadyMember | AdminError::EmailUnavailable)) => {
            errors.field("email", i18n::code(a.lang, ApiError::from(e).code()));
            again(&errors, StatusCode::CONFLICT)
        }
        Err(e @ AdminError::NotGrantable(_)) => {
            errors.general(i18n::code(a.lang, ApiError::from(e).code()));
            again(&errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => admin_failed(&a, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Berechtigungen
// ---------------------------------------------------------------------------------------------

async fn target(
    a: &Authed,
    raw_number: &str,
    raw_id: &str,
) -> Result<(CustomerNumber, Customer, User), Response> {
    let (number, customer) = managed(a, raw_number).await?;
    let uid = parse_user_id(a, raw_id)?;
    match a.portal().get_user(&a.p.actor(), &number, uid).await {
        Ok(u) => Ok((number, customer, u)),
        Err(e) => Err(admin_failed(a, e)),
    }
}

fn permissions_page(
    a: &Authed,
    customer: &Customer,
    user: &User,
    granted: &PermissionSet,
    banner: Option<&str>,
    errors: &Errors,
) -> Markup {
    let base = base(customer.number());
    html! {
        section.card {
            h1 { (a.t("permissions")) }
            (query_notice(a))
            @if a.query.get("notice") == "invited" {
                (notice(a.t("permissions-invited-notice")))
            }
            @if let Some(b) = banner { div.alert.info role="status" { (b) } }
            (errors.summary(a.lang))
            (facts(a, user, customer))
            @if user.role() == Role::Administrator {
                p.muted { (a.t("permissions-admins-see-all")) }
            }
            form method="post" action={ (base) "/users/" (user.id()) "/permissions" } {
                (csrf_field(a))
                (checkbox_table(a, customer, granted, true))
                div.actions {
                    a.button.secondary href={ (base) "/users" } { (a.t("back")) }
                    button.primary type="submit" name="action" value="save" { (a.t("save")) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/{id}/permissions`.
pub(crate) async fn permissions(
    a: Authed,
    WebPath((n, id)): WebPath<(String, String)>,
) -> Response {
    let (_, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let granted = user.permissions().clone();
    a.page(
        a.t("permissions"),
        permissions_page(&a, &customer, &user, &granted, None, &Errors::new()),
    )
}

/// `POST /admin/customers/{number}/users/{id}/permissions`: "Speichern" replaces the user's
/// permissions; "Alle anhaken" / "Alle abhaken" tick or untick the group's boxes (of the areas
/// the customer is entitled to) on the page, to be saved with "Speichern" like any tick.
pub(crate) async fn save_permissions(
    a: Authed,
    WebPath((n, id)): WebPath<(String, String)>,
    form: FormData,
) -> Response {
    let (number, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut errors = Errors::new();
    let submitted = match permission_set(&form.all("permission")) {
        Ok(s) => s,
        Err(_) => {
            errors.general(i18n::code(a.lang, codes::NOT_GRANTABLE));
            return a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("permissions"),
                permissions_page(&a, &customer, &user, user.permissions(), None, &errors),
            );
        }
    };
    let action = form.get("action");
    let group_action = action
        .strip_prefix("check:")
        .map(|g| (true, g))
        .or_else(|| action.strip_prefix("uncheck:").map(|g| (false, g)));
    if let Some((tick, raw_group)) = group_action {
        let catalog = a.portal().catalog();
        let Some(group) = GroupKey::parse(raw_group)
            .ok()
            .filter(|g| catalog.group(g).is_some())
        else {
            return a.fail(ApiError::new(codes::UNKNOWN_GROUP));
        };
        let members = catalog
            .group_members(&group)
            .intersection(customer.entitlements());
        let shown = if tick {
            submitted.union(&members)
        } else {
            submitted.difference(&members)
        };
        return a.page(
            a.t("permissions"),
            permissions_page(
                &a,
                &customer,
                &user,
                &shown,
                Some(&a.t("permissions-not-saved-yet")),
                &errors,
            ),
        );
    }
    match a
        .portal()
        .set_permissions(&a.p.actor(), &number, user.id(), &submitted)
        .await
    {
        Ok(_) => a.redirect(&format!(
            "{}/users/{}/permissions?notice=saved",
            base(&number),
            user.id()
        )),
        Err(e @ AdminError::NotGrantable(_)) => {
            errors.general(i18n::code(a.lang, ApiError::from(e).code()));
            a.page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                a.t("permissions"),
                permissions_page(&a, &customer, &user, &submitted, None, &errors),
            )
        }
        Err(e) => admin_failed(&a, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Benutzer sperren / entsperren, löschen, freischalten, Einladung
// ---------------------------------------------------------------------------------------------

fn lock_page(a: &Authed, customer: &Customer, user: &User, errors: &Errors) -> Markup {
    let base = base(customer.number());
    let locked = user.status() == UserStatus::Locked;
    let title = if locked {
        a.t("unlock-user")
    } else {
        a.t("lock-user")
    };
    html! {
        section.card.narrow {
            h1 { (title) }
            @if locked {
                p { (a.t("lock-unlock-text")) }
            } @else {
                p.subtitle { (a.t("lock-subtitle")) }
                p { (a.t("lock-text")) }
                p.alert.info { (a.t("lock-applies-at-once")) }
            }
            (errors.summary(a.lang))
            (facts(a, user, customer))
            form method="post" action={ (base) "/users/" (user.id()) "/lock" } {
                (csrf_field(a))
                @if !locked {
                    div.field {
                        label for="f-reason" { (a.t("lock-reason")) }
                        textarea #f-reason name="reason" rows="2" {}
                    }
                }
                input type="hidden" name="action" value=(if locked { "unlock" } else { "lock" });
                div.actions {
                    a.button.secondary href={ (base) "/users" } { (a.t("back")) }
                    button.danger[!locked].primary[locked] type="submit" { (title) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/{id}/lock`.
pub(crate) async fn lock(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    let (_, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    a.page(
        a.t("lock-user"),
        lock_page(&a, &customer, &user, &Errors::new()),
    )
}

fn refused(a: &Authed, e: AdminError, page: impl FnOnce(&Errors) -> Markup) -> Response {
    match e {
        e @ (AdminError::LastAdmin | AdminError::WrongState(_)) => {
            let mut errors = Errors::new();
            errors.general(i18n::code(a.lang, ApiError::from(e).code()));
            a.page_with(
                StatusCode::CONFLICT,
                a.t("status-title-not-possible"),
                page(&errors),
            )
        }
        e => admin_failed(a, e),
    }
}

/// `POST /admin/customers/{number}/users/{id}/lock` (`action` = `lock` or `unlock`).
pub(crate) async fn set_lock(
    a: Authed,
    WebPath((n, id)): WebPath<(String, String)>,
    form: FormData,
) -> Response {
    let (number, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let actor = a.p.actor();
    let result = if form.get("action") == "unlock" {
        a.portal().unlock_user(&actor, &number, user.id()).await
    } else {
        let reason = form.get("reason").trim();
        let reason = if reason.is_empty() {
            None
        } else {
            match FreeText::parse(reason) {
                Ok(r) => Some(r),
                Err(e) => {
                    let mut errors = Errors::new();
                    errors.general(i18n::free_text(a.lang, e));
                    return a.page_with(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        a.t("lock-user"),
                        lock_page(&a, &customer, &user, &errors),
                    );
                }
            }
        };
        a.portal()
            .lock_user(&actor, &number, user.id(), reason.as_ref())
            .await
    };
    match result {
        Ok(_) => a.redirect(&format!("{}/users?notice=saved", base(&number))),
        Err(e) => refused(&a, e, |errors| lock_page(&a, &customer, &user, errors)),
    }
}

fn delete_page(a: &Authed, customer: &Customer, user: &User, errors: &Errors) -> Markup {
    let base = base(customer.number());
    html! {
        section.card.narrow {
            h1 { (a.t("delete-user")) }
            p.subtitle { (a.t("delete-subtitle")) }
            p { (a.t("delete-text")) }
            (errors.summary(a.lang))
            (facts(a, user, customer))
            form method="post" action={ (base) "/users/" (user.id()) "/delete" } {
                (csrf_field(a))
                div.actions {
                    a.button.secondary href={ (base) "/users" } { (a.t("back")) }
                    button.danger type="submit" { (a.t("delete-user")) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/{id}/delete`.
pub(crate) async fn delete(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    let (_, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    a.page(
        a.t("delete-user"),
        delete_page(&a, &customer, &user, &Errors::new()),
    )
}

/// `POST /admin/customers/{number}/users/{id}/delete`.
pub(crate) async fn do_delete(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    let (number, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match a
        .portal()
        .delete_user(&a.p.actor(), &number, user.id())
        .await
    {
        Ok(()) => a.redirect(&format!("{}/users?notice=saved", base(&number))),
        Err(e) => refused(&a, e, |errors| delete_page(&a, &customer, &user, errors)),
    }
}

/// `POST /admin/customers/{number}/users/{id}/activate`: "Freischalten".
pub(crate) async fn activate(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    let Ok(number) = CustomerNumber::parse(&n) else {
        return not_found(&a);
    };
    let uid = match parse_user_id(&a, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match a.portal().activate_user(&a.p.actor(), &number, uid).await {
        Ok(_) => a.redirect(&format!("{}/users?notice=saved", base(&number))),
        Err(e) => admin_failed(&a, e),
    }
}

/// `POST /admin/customers/{number}/users/{id}/invitation`: a fresh invitation link.
pub(crate) async fn reinvite(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    let Ok(number) = CustomerNumber::parse(&n) else {
        return not_found(&a);
    };
    let uid = match parse_user_id(&a, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match a
        .portal()
        .resend_invitation(&a.p.actor(), &number, uid)
        .await
    {
        Ok(()) => a.redirect(&format!("{}/users?notice=saved", base(&number))),
        Err(e) => admin_failed(&a, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Protokoll
// ---------------------------------------------------------------------------------------------

fn audit_query(pager: &Pager, q: &str) -> AuditListQuery {
    AuditListQuery {
        search: (!q.is_empty()).then(|| q.to_owned()),
        page: pager.request(),
        ..AuditListQuery::default()
    }
}

/// The log table ("Datum, Kategorie, Details, Benutzer"), paged.
pub(crate) fn audit_table(
    a: &Authed,
    page: &AuditPage,
    pager: &Pager,
    path: &str,
    q: &str,
    subject: bool,
) -> Markup {
    let extra = if q.is_empty() {
        String::new()
    } else {
        format!("&q={}", encode(q))
    };
    let from = pager.offset() + 1;
    let to = pager.offset() + page.items.len() as u64;
    html! {
        (search_form(a, path, pager.per_page))
        table.audit {
            thead { tr {
                th scope="col" { (a.t("date")) }
                th scope="col" { (a.t("audit-category")) }
                th scope="col" { (a.t("audit-details")) }
                th scope="col" { (a.t("audit-user")) }
                @if subject { th scope="col" { (a.t("audit-concerns")) } }
            } }
            tbody {
                @if page.items.is_empty() {
                    tr { td colspan=(if subject { "5" } else { "4" }) { (a.t("no-entries-found")) } }
                }
                @for v in &page.items {
                    @let r = &v.entry.record;
                    tr {
                        td { (i18n::date_time(a.lang, r.at)) }
                        td { (r.category.label(a.lang)) }
                        td { (r.details) }
                        td { (v.actor_name) }
                        @if subject { td { (v.subject_name.as_deref().unwrap_or("–")) } }
                    }
                }
            }
        }
        p.muted {
            @if !page.items.is_empty() {
                (a.t_with("audit-entries-range", [("from", from.into()), ("to", to.into())]))
            }
        }
        (pager.nav(a.lang, path, &extra, page.next.as_deref()))
    }
}

/// `GET /admin/customers/{number}/users/{id}/audit`: "Änderungsprotokoll" of one user.
pub(crate) async fn user_audit(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    let (number, customer, user) = match target(&a, &n, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pager = Pager::from_query(&a.query, a.portal().config().default_page_size);
    let q = a.query.get("q").trim().to_owned();
    let page = match a
        .portal()
        .user_audit(
            &a.p.actor(),
            &number,
            user.id(),
            &audit_query(&pager, &q),
            a.lang,
        )
        .await
    {
        Ok(p) => p,
        Err(e) => return a.fail(e),
    };
    let path = format!("{}/users/{}/audit", base(&number), user.id());
    let title = a.t("log");
    a.page(
        &title,
        html! {
            h1 { (title) }
            section.card {
                h2 { (a.t("audit-user-details")) }
                (facts(&a, &user, &customer))
            }
            (audit_table(&a, &page, &pager, &path, &q, false))
            p { a.button.secondary href={ (base(&number)) "/users" } { (a.t("back")) } }
        },
    )
}

/// `GET /admin/customers/{number}/audit`: the customer's log.
pub(crate) async fn customer_audit(a: Authed, WebPath(n): WebPath<String>) -> Response {
    let (number, customer) = match managed(&a, &n).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pager = Pager::from_query(&a.query, a.portal().config().default_page_size);
    let q = a.query.get("q").trim().to_owned();
    let page = match a
        .portal()
        .customer_audit(&a.p.actor(), &number, &audit_query(&pager, &q), a.lang)
        .await
    {
        Ok(p) => p,
        Err(e) => return a.fail(e),
    };
    let path = format!("{}/audit", base(&number));
    let title = a.t("log");
    a.page(
        &title,
        html! {
            h1 { (title) }
            p.muted { (customer.name().as_str()) " · " (customer.number().printed()) }
            (audit_table(&a, &page, &pager, &path, &q, true))
            p { a.button.secondary href={ (base(&number)) "/users" } { (a.t("back")) } }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Admin-Anträge (Zustimmung)
// ---------------------------------------------------------------------------------------------

/// `GET /admin/customers/{number}/admin-requests`.
pub(crate) async fn requests(a: Authed, WebPath(n): WebPath<String>) -> Response {
    let (number, customer) = match managed(&a, &n).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let list = match a
        .portal()
        .customer_admin_requests(&a.p.actor(), &number)
        .await
    {
        Ok(l) => l,
        Err(e) => return a.fail(e),
    };
    let base = base(&number);
    let title = a.t("admin-requests");
    a.page(
        &title,
        html! {
            h1 { (title) }
            p.muted { (customer.name().as_str()) " · " (customer.number().printed()) }
            (query_notice(&a))
            p { (a.t("requests-intro")) }
            table {
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
                            td { (v.requester.as_ref().map(User::display_name).unwrap_or_default()) }
                            td { (v.requester.as_ref().map(|u| u.email().to_string()).unwrap_or_default()) }
                            td { (i18n::date_time(a.lang, v.request.record().created_at)) }
                            td { (i18n::request_status(a.lang, v.request.status())) }
                            td.actions {
                                @if v.request.status() == AdminRequestStatus::AwaitingConsent {
                                    form.inline method="post" action={ (base) "/admin-requests/" (v.request.id()) "/consent" } {
                                        (csrf_field(&a))
                                        button.link type="submit" { (a.t("requests-consent")) }
                                    }
                                    form.inline method="post" action={ (base) "/admin-requests/" (v.request.id()) "/decline" } {
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
    )
}

async fn decide(a: Authed, n: &str, id: &str, consent: bool) -> Response {
    let Ok(number) = CustomerNumber::parse(n) else {
        return not_found(&a);
    };
    let Ok(rid) = id.parse::<AdminRequestId>() else {
        return not_found(&a);
    };
    let actor = a.p.actor();
    let result = if consent {
        a.portal().consent_admin_request(&actor, &number, rid).await
    } else {
        a.portal().decline_admin_request(&actor, &number, rid).await
    };
    match result {
        Ok(_) => a.redirect(&format!("{}/admin-requests?notice=saved", base(&number))),
        Err(e) => a.fail(e),
    }
}

/// `POST /admin/customers/{number}/admin-requests/{id}/consent`.
pub(crate) async fn consent(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    decide(a, &n, &id, true).await
}

/// `POST /admin/customers/{number}/admin-requests/{id}/decline`.
pub(crate) async fn decline(a: Authed, WebPath((n, id)): WebPath<(String, String)>) -> Response {
    decide(a, &n, &id, false).await
}
