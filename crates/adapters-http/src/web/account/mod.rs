//! The logged-in user's own pages, one screen per module: "Meine Daten" with the password and
//! e-mail changes ([`profile`]), the step-up page that sensitive changes ask for first
//! ([`reauth`]), and the sessions and remembered devices ([`sessions`]).

pub(crate) mod profile;
pub(crate) mod reauth;
pub(crate) mod sessions;

use super::ctx::Authed;
use super::urls::{self, with_query};
use axum::response::Response;
use std::fmt::Display;

/// Where a sensitive change sends the user first: the step-up page, back to `back` afterwards.
pub(crate) fn reauth_redirect(a: &Authed, back: impl Display) -> Response {
    a.redirect(with_query(urls::Reauth, &[("next", back.to_string())]))
}
