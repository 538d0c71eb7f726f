//! "Bestätigen Sie Ihre Identität": the second step of a login, with a code by SMS or call and a
//! fresh recovery code on request. The pending login is the `portal-mfa` cookie; the page's
//! query carries the methods to offer and where to go afterwards.

use super::{factor_fields, factor_of, next_of, recovery_code_shown, started};
use crate::api::auth::seconds_until;
use crate::cookies::CookieName;
use crate::error::ErrorCode;
use crate::ratelimit::Bucket;
use crate::web::ctx::Ctx;
use crate::web::error::PageError;
use crate::web::form::{Form, Query};
use crate::web::i18n;
use crate::web::layout::{Errors, Input, csrf_field, flash_notice, hidden};
use crate::web::passkeys;
use crate::web::urls::{self, Notice, with_query};
use axum::response::Response;
use maud::{Markup, html};
use portal_core::mfa::MfaMethod;
use portal_core::service::{CodeError, CompleteMfa, MfaError, SecondFactor};
use serde::{Deserialize, Serialize};

/// The query of the second step's pages: the offered methods (`totp,recovery_code`), where
/// to go afterwards, and the chosen step (`phone` once a code went to the phone: the page of
/// that method).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MfaQuery {
    pub(crate) methods: String,
    pub(crate) next: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) step: String,
}

/// The value of [`MfaQuery::step`] for the phone's page.
pub(crate) const PHONE_STEP: &str = "phone";

/// The second step's form.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct MfaForm {
    factor: String,
    code: String,
    remember_device: Option<String>,
    /// `factor=passkey`: the ceremony and the browser's answer (filled in by the script).
    challenge_id: String,
    credential: String,
}

/// The key of a method in the query.
pub(crate) const fn method_key(m: MfaMethod) -> &'static str {
    match m {
        MfaMethod::Totp => "totp",
        MfaMethod::Sms => "sms",
        MfaMethod::Voice => "voice",
        MfaMethod::RecoveryCode => "recovery_code",
        MfaMethod::Passkey => "passkey",
    }
}

fn method_from_key(k: &str) -> Option<MfaMethod> {
    match k {
        "totp" => Some(MfaMethod::Totp),
        "sms" => Some(MfaMethod::Sms),
        "voice" => Some(MfaMethod::Voice),
        "recovery_code" => Some(MfaMethod::RecoveryCode),
        "passkey" => Some(MfaMethod::Passkey),
        _ => None,
    }
}

fn pending_methods(q: &MfaQuery) -> Vec<MfaMethod> {
    let m: Vec<MfaMethod> = q.methods.split(',').filter_map(method_from_key).collect();
    if m.is_empty() {
        vec![MfaMethod::Totp, MfaMethod::RecoveryCode]
    } else {
        m
    }
}

/// The page's own query again, with `next` made safe.
fn own_query(ctx: &Ctx, q: &MfaQuery) -> MfaQuery {
    MfaQuery {
        methods: q.methods.clone(),
        next: next_of(ctx, None),
        step: if q.step == PHONE_STEP {
            PHONE_STEP.to_owned()
        } else {
            String::new()
        },
    }
}

fn mfa_form(ctx: &Ctx, q: &MfaQuery, errors: &Errors) -> Markup {
    let methods = pending_methods(q);
    let phone = methods.contains(&MfaMethod::Sms) || methods.contains(&MfaMethod::Voice);
    let q = own_query(ctx, q);
    // The phone's page once its code was sent: that method's text, its one field, and sending
    // again; otherwise the app (and the recovery code), with the phone as a button that sends.
    let phone_step = phone && q.step == PHONE_STEP;
    let others: Vec<MfaMethod> = methods
        .iter()
        .copied()
        .filter(|m| !matches!(m, MfaMethod::Sms | MfaMethod::Voice))
        .collect();
    let without_step = MfaQuery {
        step: String::new(),
        ..q.clone()
    };
    let to_phone = MfaQuery {
        step: PHONE_STEP.to_owned(),
        ..q.clone()
    };
    html! {
        section.card.narrow {
            h1 { (ctx.t("confirm-your-identity")) }
            (flash_notice(ctx))
            (errors.summary(ctx.lang))
            @if phone_step {
                p { (ctx.t("mfa-step-intro-phone")) }
            } @else if others.contains(&MfaMethod::Totp) {
                p { (ctx.t("mfa-step-intro")) }
            } @else {
                p { (ctx.t("mfa-step-intro-other")) }
            }
            form method="post" action=(ctx.href(with_query(urls::LoginMfa, &q))) {
                (csrf_field(ctx))
                @if phone_step {
                    (hidden("factor", "phone"))
                    (Input::new("code", ctx.t("code")).auto("one-time-code").inputmode("numeric").errors(errors)
                        .hint(ctx.t("mfa-step-phone-code-hint")))
                } @else {
                    (factor_fields(ctx, &others, errors))
                }
                label.choice {
                    input type="checkbox" name="remember_device" value="1";
                    " " (ctx.t("mfa-step-remember-device"))
                }
                button.primary type="submit" { (ctx.t("continue")) }
            }
            @if methods.contains(&MfaMethod::Passkey) && ctx.portal().passkeys_available() {
                (crate::web::passkeys::second_factor(ctx, &ctx.href(with_query(urls::LoginMfa, &q))))
            }
            @if phone {
                form.inline method="post" action=(ctx.href(with_query(urls::LoginMfaPhoneCode, &to_phone))) {
                    (csrf_field(ctx))
                    @if phone_step {
                        button.secondary type="submit" { (ctx.t("mfa-step-send-phone-code-again")) }
                    } @else {
                        button.secondary type="submit" { (ctx.t("mfa-step-send-phone-code")) }
                    }
                }
            }
            @if phone_step && others.contains(&MfaMethod::Totp) {
                p { a href=(ctx.href(with_query(urls::LoginMfa, &without_step))) { (ctx.t("mfa-step-use-app")) } }
            }
            form.inline method="post" action=(ctx.href(with_query(urls::LoginMfaRecoveryCode, &q))) {
                (csrf_field(ctx))
                (ctx.t("forgot-recovery-code")) " "
                button.link type="submit" { (ctx.t("mfa-step-send-recovery-code")) }
            }
            p { a href=(ctx.href(urls::Login)) { (ctx.t("cancel")) } }
        }
    }
}

/// A failed step: back to the step's page with the errors.
fn again(ctx: &Ctx, q: &MfaQuery, errors: Errors) -> Response {
    ctx.back(with_query(urls::LoginMfa, &own_query(ctx, q)), errors)
}

fn expired(ctx: &Ctx) -> Response {
    ctx.redirect_with(Notice::LoginExpired, urls::Login)
}

/// `GET /login/mfa`: the second step.
pub(crate) async fn page(ctx: Ctx, Query(q): Query<MfaQuery>) -> Response {
    if ctx.cookie_value(CookieName::PendingMfa).is_none() {
        return expired(&ctx);
    }
    ctx.page(
        ctx.t("confirm-your-identity"),
        mfa_form(&ctx, &q, &ctx.errors()),
    )
}

/// `POST /login/mfa`.
pub(crate) async fn submit(
    ctx: Ctx,
    Query(q): Query<MfaQuery>,
    Form(form): Form<MfaForm>,
) -> Result<Response, PageError> {
    ctx.limit(Bucket::Mfa)?;
    let Some(token) = ctx.cookie_value(CookieName::PendingMfa) else {
        return Ok(expired(&ctx));
    };
    let mut errors = Errors::new();
    let factor = if form.factor == "passkey" {
        match passkeys::answer(&form.challenge_id, &form.credential) {
            Some((challenge_id, response)) => Some(SecondFactor::Passkey {
                challenge_id,
                response,
            }),
            None => {
                errors.refused(ctx.lang, passkeys::malformed());
                return Ok(again(&ctx, &q, errors));
            }
        }
    } else {
        factor_of(&form.factor, &form.code)
    };
    let Some(factor) = factor else {
        errors.field("factor", ctx.t("please-choose-a-method"));
        return Ok(again(&ctx, &q, errors));
    };
    let result = ctx
        .portal()
        .complete_mfa(CompleteMfa {
            token,
            factor,
            remember_device: form.remember_device.is_some(),
            client: ctx.client.info(),
        })
        .await;
    match result {
        Ok(done) => {
            started(&ctx, &done.session);
            if let Some(device) = &done.remembered_device {
                ctx.set_cookie(
                    CookieName::Device,
                    device.token.expose(),
                    Some(seconds_until(&ctx.state, device.expires_at)),
                );
            }
            let next = next_of(&ctx, None);
            return Ok(match done.new_recovery_code {
                Some(code) => {
                    let next = if done.choose_new_factor {
                        urls::Mfa.to_string()
                    } else {
                        next
                    };
                    ctx.page(
                        ctx.t("recovery-code-new-title"),
                        recovery_code_shown(&ctx, code.expose(), next),
                    )
                }
                None => ctx.redirect(next),
            });
        }
        Err(MfaError::NoPendingLogin | MfaError::Code(CodeError::TooManyAttempts)) => {
            ctx.clear_cookie(CookieName::PendingMfa);
            return Ok(expired(&ctx));
        }
        Err(MfaError::NoSuchFactor) => {
            errors.field("factor", i18n::code(ctx.lang, ErrorCode::NoSuchFactor));
        }
        Err(
            e @ (MfaError::Code(CodeError::Malformed)
            | MfaError::Code(CodeError::Wrong)
            | MfaError::Code(CodeError::Used)
            | MfaError::Code(CodeError::Expired)
            | MfaError::Throttled { .. }),
        ) => {
            errors.refused_at(ctx.lang, "code", e);
        }
        Err(e) => passkeys::refused(ctx.lang, e, &mut errors)?,
    }
    Ok(again(&ctx, &q, errors))
}

/// `POST /login/mfa/phone-code`: a code by SMS or call for the second step.
pub(crate) async fn phone_code(ctx: Ctx, q: Query<MfaQuery>) -> Result<Response, PageError> {
    send(ctx, q, false).await
}

/// `POST /login/mfa/recovery-code`: a fresh recovery code to the recovery channel.
pub(crate) async fn recovery_code(ctx: Ctx, q: Query<MfaQuery>) -> Result<Response, PageError> {
    send(ctx, q, true).await
}

async fn send(ctx: Ctx, Query(q): Query<MfaQuery>, recovery: bool) -> Result<Response, PageError> {
    ctx.limit(Bucket::Mfa)?;
    let Some(token) = ctx.cookie_value(CookieName::PendingMfa) else {
        return Ok(expired(&ctx));
    };
    let portal = ctx.portal();
    let sent = if recovery {
        portal.send_recovery_code(&token).await
    } else {
        portal.send_login_phone_code(&token).await
    };
    match sent {
        Ok(()) => {
            let own = own_query(&ctx, &q);
            let notice = if recovery {
                Notice::RecoverySent
            } else {
                Notice::CodeSent
            };
            Ok(ctx.redirect_with(notice, with_query(urls::LoginMfa, &own)))
        }
        Err(MfaError::NoPendingLogin | MfaError::Code(CodeError::TooManyAttempts)) => {
            Ok(expired(&ctx))
        }
        Err(e @ (MfaError::NoSuchFactor | MfaError::SendFailed(_) | MfaError::Unavailable)) => {
            let mut errors = Errors::new();
            errors.refused(ctx.lang, e);
            Ok(again(&ctx, &q, errors))
        }
        Err(e) => Err(e.into()),
    }
}
