//! The invitation link (manual 3.6): a registration pre-filled with what the administrator
//! entered; the person sets a password and confirms the mailed code.

use super::password_error;
use super::register::remember_ticket;
use crate::error::{ApiError, ErrorCode};
use crate::ratelimit::Bucket;
use crate::web::ctx::Ctx;
use crate::web::error::PageError;
use crate::web::form::Form;
use crate::web::layout::{Errors, Input, csrf_field, new_password};
use crate::web::urls::{self, Invitation};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::secret::SecretString;
use portal_core::service::{AcceptInvitation, InvitationError, InvitationView};
use serde::Deserialize;

/// The password for the new account.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AcceptForm {
    password: String,
    password_confirmation: String,
}

fn invitation_form(ctx: &Ctx, path: &Invitation, v: &InvitationView, errors: &Errors) -> Markup {
    html! {
        section.card.narrow {
            h1 { (ctx.t("create-your-account")) }
            p {
                (ctx.t("invitation-welcome"))
                @if let Some(c) = &v.customer_name { " " (ctx.t("invitation-invited-by")) " " strong { (c) } }
            }
            (errors.summary(ctx.lang))
            form method="post" action=(ctx.href(path)) {
                (csrf_field(ctx))
                (Input::new("email", ctx.t("email")).kind("email").value(v.email.as_str()).auto("username").readonly())
                (Input::new("first_name", ctx.t("first-name")).value(v.first_name.as_str()).readonly())
                (Input::new("last_name", ctx.t("last-name")).value(v.last_name.as_str()).readonly())
                (new_password("password", ctx.t("password"), errors)
                    .hint(ctx.t("password-hint")))
                (new_password("password_confirmation", ctx.t("confirm-password"), errors))
                button.primary type="submit" { (ctx.t("register")) }
            }
        }
    }
}

/// An unknown link says so in words of its own; the rest by its code.
fn failed(e: InvitationError) -> PageError {
    let e = ApiError::from(e);
    if e.code() == ErrorCode::NotFound {
        PageError::new(e.code().status(), "invitation-invalid-link")
    } else {
        e.into()
    }
}

/// `GET /invitations/{token}`: the pre-filled registration (the token is not used up).
pub(crate) async fn page(ctx: Ctx, path: Invitation) -> Result<Response, PageError> {
    let v = ctx.portal().invitation(&path.token).await.map_err(failed)?;
    Ok(ctx.page(
        ctx.t("create-your-account"),
        invitation_form(&ctx, &path, &v, &ctx.errors()),
    ))
}

/// `POST /invitations/{token}`: sets the password and mails the code; on to the code page.
pub(crate) async fn accept(
    ctx: Ctx,
    path: Invitation,
    Form(form): Form<AcceptForm>,
) -> Result<Response, PageError> {
    ctx.limit(Bucket::Registration)?;
    let view = ctx.portal().invitation(&path.token).await.map_err(failed)?;
    let result = ctx
        .portal()
        .accept_invitation(
            &path.token,
            AcceptInvitation {
                password: SecretString::new(&form.password),
                password_confirmation: SecretString::new(&form.password_confirmation),
            },
        )
        .await;
    match result {
        Ok(ticket) => {
            remember_ticket(&ctx, &ticket, &view.email);
            Ok(ctx.redirect(urls::RegisterCode))
        }
        Err(InvitationError::Password(e)) => {
            let mut errors = Errors::new();
            password_error(ctx.lang, &e, &mut errors);
            Ok(ctx.back(&path, errors))
        }
        Err(e) => Err(failed(e)),
    }
}
