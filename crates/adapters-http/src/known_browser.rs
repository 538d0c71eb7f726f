//! The known-browser cookie: OWASP's "device cookie" against online guessing without lock-out
//! (R14). Every successful sign-in (login, second step, registration, re-authentication,
//! password change) and every password reset gives the browser a cookie naming the account; a
//! later login for that account from this browser is exempt from the per-address, pair and daily
//! limits and held to a counter of its own ([`portal_core::throttle::LoginProtection`]). So an
//! attacker who keeps failing from anywhere cannot keep the user out of a browser they signed in
//! with before.
//!
//! The value is `handle.day.tag`: `handle` 256 random bits (base64url; it keys the browser's own
//! failure counter), `day` the UTC day of issue (days since 1970), and `tag` =
//! `HMAC-SHA-256(cookie_key, "known-browser" ‖ handle ‖ day ‖ user id)`. The account is not in
//! the cookie in clear: only the key's holder can tell whether a cookie names a given user, which
//! is the one question the core asks ([`KnownBrowser::names`], compared in constant time). A
//! cookie older than [`LIFETIME_DAYS`] is ignored. Stateless: nothing is stored, and rotating the
//! cookie key voids every such cookie (they are only an exemption, never a credential).

use crate::cookies::{self, CookieName};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use portal_core::ids::UserId;
use portal_core::service::KnownBrowser;
use sha2::Sha256;
use std::sync::Arc;

/// How long a known-browser cookie counts, in days (and its `Max-Age`).
pub const LIFETIME_DAYS: i64 = 365;

fn mac(key: &[u8; 32], handle: &str, day: i64, user: UserId) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"known-browser\0");
    m.update(handle.as_bytes());
    m.update(&[0]);
    m.update(&day.to_be_bytes());
    m.update(user.as_uuid().as_bytes());
    m
}

/// A well-formed, unexpired known-browser cookie of a request (its signature is checked against
/// an account when the core asks).
pub(crate) struct SignedBrowser {
    key: [u8; 32],
    handle: String,
    day: i64,
    tag: Vec<u8>,
}

impl std::fmt::Debug for SignedBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedBrowser")
            .field("handle", &self.handle)
            .field("day", &self.day)
            .finish_non_exhaustive()
    }
}

impl KnownBrowser for SignedBrowser {
    fn names(&self, user: UserId) -> bool {
        mac(&self.key, &self.handle, self.day, user)
            .verify_slice(&self.tag)
            .is_ok()
    }

    fn handle(&self) -> &str {
        &self.handle
    }
}

fn today(state: &AppState) -> i64 {
    state.now().timestamp().div_euclid(86_400)
}

/// The `Set-Cookie` that marks this browser as one that signed in to `user`.
pub(crate) fn issue(state: &AppState, user: UserId) -> HeaderValue {
    let handle = crate::csrf::new_nonce();
    let day = today(state);
    let tag = mac(state.config().cookie_key.bytes(), &handle, day, user).finalize();
    let value = format!(
        "{handle}.{day}.{}",
        URL_SAFE_NO_PAD.encode(tag.into_bytes())
    );
    cookies::set(
        state.config(),
        CookieName::KnownBrowser,
        &value,
        Some(LIFETIME_DAYS * 86_400),
    )
}

/// The request's known-browser cookie, when it is well formed and not older than
/// [`LIFETIME_DAYS`].
pub(crate) fn read(state: &AppState, headers: &HeaderMap) -> Option<Arc<dyn KnownBrowser>> {
    let value = cookies::read(headers, state.config(), CookieName::KnownBrowser)?;
    let mut parts = value.split('.');
    let (handle, day, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || handle.len() != crate::csrf::NONCE_CHARS {
        return None;
    }
    let day: i64 = day.parse().ok()?;
    let age = today(state) - day;
    if !(0..=LIFETIME_DAYS).contains(&age) {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    Some(Arc::new(SignedBrowser {
        key: *state.config().cookie_key.bytes(),
        handle: handle.to_owned(),
        day,
        tag,
    }))
}
