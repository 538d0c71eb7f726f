//! "Benutzer sperren / entsperren" and "Benutzer löschen": the user's facts and one action,
//! confirmed by its button. A lock ends the user's sessions and remembered devices at once
//! (R11); the last administrator can neither lock nor delete themself (R5).

use super::{facts, managed, target};
use crate::web::ctx::Authed;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::i18n;
use crate::web::layout::{Errors, csrf_field, hidden};
use crate::web::urls::{Notice, UserDelete, UserLock, Users};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use portal_core::authz::RowActions;
use portal_core::customer::Customer;
use portal_core::ids::UserId;
use portal_core::service::AdminError;
use portal_core::user::{User, UserStatus};
use portal_core::values::CustomerNumber;
use portal_core::values::FreeText;
use serde::Deserialize;
use std::fmt::Display;

/// `action` = `lock` (with an optional `reason`) or `unlock`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LockForm {
    action: String,
    reason: String,
}

fn lock_form(
    a: &Authed,
    path: &UserLock,
    (customer, user): (&Customer, &User),
    errors: &Errors,
) -> Markup {
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
            form method="post" action=(a.href(path)) {
                (csrf_field(a))
                @if !locked {
                    div.field {
                        label for="f-reason" { (a.t("lock-reason")) }
                        textarea #f-reason name="reason" rows="2" { (errors.kept("reason").unwrap_or_default()) }
                    }
                }
                (hidden("action", if locked { "unlock" } else { "lock" }))
                div.actions {
                    a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) }
                    button.danger[!locked].primary[locked] type="submit" { (title) }
                }
            }
        }
    }
}

/// What the page cannot do (the last administrator, a state that does not allow it): back to
/// the page `to` with the reason; anything else is an error page.
fn refused(a: &Authed, e: AdminError, to: impl Display) -> Result<Response, PageError> {
    match e {
        e @ (AdminError::LastAdmin | AdminError::WrongState(_)) => {
            let mut errors = Errors::new();
            errors.refused(a.lang, e);
            Ok(a.back(to, errors))
        }
        e => Err(e.into()),
    }
}

/// A lock or delete page opened by its address for what the user table does not offer (the
/// last active administrator, R5): the user's facts and why not, no button that would do it.
fn not_offered(
    a: &Authed,
    title: &str,
    number: &CustomerNumber,
    (customer, user): (&Customer, &User),
) -> Response {
    let mut errors = Errors::new();
    errors.refused(a.lang, AdminError::LastAdmin);
    a.page_with(
        StatusCode::CONFLICT,
        title,
        html! {
            section.card.narrow {
                h1 { (title) }
                (errors.summary(a.lang))
                (facts(a, user, customer))
                div.actions {
                    a.button.secondary href=(a.href(Users { number: number.clone() })) { (a.t("back")) }
                }
            }
        },
    )
}

/// The customer and the user of a lock or delete page, with what their row offers.
async fn target_actions(
    a: &Authed,
    number: &CustomerNumber,
    id: UserId,
) -> Result<(Customer, User, RowActions), PageError> {
    let customer = managed(a, number).await?;
    let (user, actions) = a
        .portal()
        .get_user_actions(&a.principal.actor(), number, id)
        .await?;
    Ok((customer, user, actions))
}

/// `GET /admin/customers/{number}/users/{id}/lock`: the lock (or unlock) form, or why the user
/// cannot be locked.
pub(crate) async fn lock_page(a: Authed, path: UserLock) -> Result<Response, PageError> {
    let (customer, user, actions) = target_actions(&a, &path.number, path.id).await?;
    if !actions.lock && !actions.unlock {
        return Ok(not_offered(
            &a,
            &a.t("lock-user"),
            &path.number,
            (&customer, &user),
        ));
    }
    Ok(a.page(
        a.t("lock-user"),
        lock_form(&a, &path, (&customer, &user), &a.errors()),
    ))
}

/// `POST /admin/customers/{number}/users/{id}/lock` (`action` = `lock` or `unlock`).
pub(crate) async fn lock(
    a: Authed,
    path: UserLock,
    Form(form): Form<LockForm>,
) -> Result<Response, PageError> {
    let (_, user) = target(&a, &path.number, path.id).await?;
    let actor = a.principal.actor();
    let unlock = form.action == "unlock";
    let result = if unlock {
        a.portal()
            .unlock_user(&actor, &path.number, user.id())
            .await
    } else {
        let reason = form.reason.trim();
        let reason = if reason.is_empty() {
            None
        } else {
            match FreeText::parse(reason) {
                Ok(r) => Some(r),
                Err(e) => {
                    let mut errors = Errors::new();
                    errors.general(i18n::free_text(a.lang, e));
                    return Ok(a.back(&path, errors));
                }
            }
        };
        a.portal()
            .lock_user(&actor, &path.number, user.id(), reason.as_ref())
            .await
    };
    match result {
        Ok(_) => Ok(a.redirect_about(
            if unlock {
                Notice::UserUnlocked
            } else {
                Notice::UserLocked
            },
            user.display_name(),
            Users {
                number: path.number.clone(),
            },
        )),
        Err(e) => refused(&a, e, &path),
    }
}

fn delete_form(
    a: &Authed,
    path: &UserDelete,
    (customer, user): (&Customer, &User),
    errors: &Errors,
) -> Markup {
    html! {
        section.card.narrow {
            h1 { (a.t("delete-user")) }
            p.subtitle { (a.t("delete-subtitle")) }
            p { (a.t("delete-text")) }
            (errors.summary(a.lang))
            (facts(a, user, customer))
            form method="post" action=(a.href(path)) {
                (csrf_field(a))
                div.actions {
                    a.button.secondary href=(a.href(Users { number: path.number.clone() })) { (a.t("back")) }
                    button.danger type="submit" { (a.t("delete-user")) }
                }
            }
        }
    }
}

/// `GET /admin/customers/{number}/users/{id}/delete`: the confirmation, or why the user cannot
/// be deleted.
pub(crate) async fn delete_page(a: Authed, path: UserDelete) -> Result<Response, PageError> {
    let (customer, user, actions) = target_actions(&a, &path.number, path.id).await?;
    if !actions.delete {
        return Ok(not_offered(
            &a,
            &a.t("delete-user"),
            &path.number,
            (&customer, &user),
        ));
    }
    Ok(a.page(
        a.t("delete-user"),
        delete_form(&a, &path, (&customer, &user), &a.errors()),
    ))
}

/// `POST /admin/customers/{number}/users/{id}/delete`.
pub(crate) async fn delete(a: Authed, path: UserDelete) -> Result<Response, PageError> {
    let (_, user) = target(&a, &path.number, path.id).await?;
    match a
        .portal()
        .delete_user(&a.principal.actor(), &path.number, user.id())
        .await
    {
        Ok(()) => Ok(a.redirect_about(
            Notice::UserDeleted,
            user.display_name(),
            Users {
                number: path.number.clone(),
            },
        )),
        Err(e) => refused(&a, e, &path),
    }
}
