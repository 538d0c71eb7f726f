//! "Berechtigungen": the user's permissions as ticks, with the group's "Alle anhaken / Alle
//! abhaken" (manual 3.3: the group row "Meine Daten" before its members).

use super::{facts, target};
use crate::error::ErrorCode;
use crate::web::ctx::{Authed, Shell};
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::i18n;
use crate::web::layout::{Errors, csrf_field, flash_notice};
use crate::web::urls::{Notice, UserPermissions, Users};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::customer::Customer;
use portal_core::permission::{GroupKey, PermissionCatalog, PermissionKey, PermissionSet};
use portal_core::service::AdminError;
use portal_core::user::{Role, User};
use serde::Deserialize;

/// The ticks and the button that was pressed (`save`, `check:<group>`, `uncheck:<group>`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PermissionsForm {
    permission: Vec<String>,
    action: String,
}

/// The table of ticks (`groups`: with the group rows and their buttons).
pub(super) fn checkbox_table(
    shell: &Shell,
    catalog: &PermissionCatalog,
    customer: &Customer,
    granted: &PermissionSet,
    groups: bool,
) -> Markup {
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
    let lang = shell.lang;
    html! {
        table.permissions.stack {
            thead { tr {
                th scope="col" { (shell.t("permissions-permission")) }
                th scope="col" { (shell.t("permissions-description")) }
            } }
            tbody {
                @for p in catalog.permissions() {
                    @if let Some((_, g)) = group_heads.iter().find(|(k, _)| *k == &p.key) {
                        @if let Some(group) = catalog.group(g) {
                            tr.group {
                                th scope="row" {
                                    (group.label.get(lang)) " "
                                    button.link type="submit" name="action" value={ "check:" (g) }
                                        aria-label={ (group.label.get(lang)) ": " (shell.t("permissions-tick-all")) } { (shell.t("permissions-tick-all")) }
                                    " "
                                    button.link type="submit" name="action" value={ "uncheck:" (g) }
                                        aria-label={ (group.label.get(lang)) ": " (shell.t("permissions-untick-all")) } { (shell.t("permissions-untick-all")) }
                                }
                                td { (group.description.get(lang)) }
                            }
                        }
                    }
                    @let entitled = customer.is_entitled(&p.key);
                    tr.member[p.group.is_some() && groups] {
                        td {
                            input type="checkbox" name="permission" value=(p.key) id={ "p-" (p.key) }
                                checked[granted.contains(&p.key)] disabled[!entitled];
                            " "
                            label for={ "p-" (p.key) } { (p.label.get(lang)) }
                            @if !entitled { " " span.muted { (shell.t("permissions-not-entitled")) } }
                        }
                        td { (p.description.get(lang)) }
                    }
                }
            }
        }
    }
}

/// The ticked keys; `None` when one is not a key at all (a tampered form).
pub(super) fn permission_set(raw: &[String]) -> Option<PermissionSet> {
    raw.iter().map(|r| PermissionKey::parse(r).ok()).collect()
}

/// The ticks after a group's "Alle anhaken" / "Alle abhaken" (`action` `check:<group>` or
/// `uncheck:<group>`): `submitted` with the group's areas the customer is entitled to ticked or
/// unticked. `None` for any other button ("Speichern").
///
/// # Errors
/// A group that is not in the catalog (a tampered form) is the 400 page.
pub(super) fn group_ticks(
    catalog: &PermissionCatalog,
    customer: &Customer,
    action: &str,
    submitted: &PermissionSet,
) -> Result<Option<PermissionSet>, PageError> {
    let group_action = action
        .strip_prefix("check:")
        .map(|g| (true, g))
        .or_else(|| action.strip_prefix("uncheck:").map(|g| (false, g)));
    let Some((tick, raw_group)) = group_action else {
        return Ok(None);
    };
    let group = GroupKey::parse(raw_group)
        .ok()
        .filter(|g| catalog.group(g).is_some())
        .ok_or_else(|| PageError::code(ErrorCode::UnknownGroup))?;
    let members = catalog
        .group_members(&group)
        .intersection(customer.entitlements());
    Ok(Some(if tick {
        submitted.union(&members)
    } else {
        submitted.difference(&members)
    }))
}

fn permissions_page(
    a: &Authed,
    path: &UserPermissions,
    (customer, user): (&Customer, &User),
    granted: &PermissionSet,
    banner: Option<&str>,
    errors: &Errors,
) -> Markup {
    html! {
        section.card {
            h1 { (a.t("permissions")) }
            (flash_notice(a))
            @if let Some(b) = banner { div.alert.info role="status" { (b) } }
            (errors.summary(a.lang))
            (facts(a, user, customer))
            @if user.role() == Role::Administrator {
                p.muted { (a.t("permissions-admins-see-all")) }
            }
            form method="post" action=(a.href(path)) {
                (csrf_field(a))
                (checkbox_table(a, a.portal().catalog(), customer, granted, true))
                div.actions {
                    a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) }
                    button.primary type="submit" name="action" value="save" { (a.t("save")) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/{id}/permissions`.
pub(crate) async fn page(a: Authed, path: UserPermissions) -> Result<Response, PageError> {
    let (customer, user) = target(&a, &path.number, path.id).await?;
    // A failed form comes back with the ticks it had.
    let errors = a.errors();
    let kept = errors
        .kept_form::<PermissionsForm>()
        .and_then(|f| permission_set(&f.permission));
    Ok(a.page(
        a.t("permissions"),
        permissions_page(
            &a,
            &path,
            (&customer, &user),
            kept.as_ref().unwrap_or_else(|| user.permissions()),
            None,
            &errors,
        ),
    ))
}

/// `POST /admin/customers/{number}/users/{id}/permissions`: "Speichern" replaces the user's
/// permissions; "Alle anhaken" / "Alle abhaken" tick or untick the group's boxes (of the areas
/// the customer is entitled to) on the page, to be saved with "Speichern" like any tick.
pub(crate) async fn submit(
    a: Authed,
    path: UserPermissions,
    Form(form): Form<PermissionsForm>,
) -> Result<Response, PageError> {
    let (customer, user) = target(&a, &path.number, path.id).await?;
    let shown = |granted: &PermissionSet, banner: Option<&str>, status, errors: &Errors| {
        a.page_with(
            status,
            a.t("permissions"),
            permissions_page(&a, &path, (&customer, &user), granted, banner, errors),
        )
    };
    let mut errors = Errors::new();
    let Some(submitted) = permission_set(&form.permission) else {
        errors.general(i18n::code(a.lang, ErrorCode::NotGrantable));
        return Ok(a.back(&path, errors));
    };
    if let Some(ticked) = group_ticks(a.portal().catalog(), &customer, &form.action, &submitted)? {
        let banner = a.t("permissions-not-saved-yet");
        return Ok(shown(&ticked, Some(&banner), StatusCode::OK, &errors));
    }
    match a
        .portal()
        .set_permissions(&a.principal.actor(), &path.number, user.id(), &submitted)
        .await
    {
        Ok(_) => Ok(a.redirect_about(Notice::PermissionsSaved, user.display_name(), &path)),
        Err(e @ AdminError::NotGrantable(_)) => {
            errors.refused(a.lang, e);
            Ok(a.back(&path, errors))
        }
        Err(e) => Err(e.into()),
    }
}
