//! The askama templates: one plain-text and one HTML template per language, each a `match` over
//! every [`MailIntent`] variant, so a new variant does not compile until both languages have a
//! text for it. HTML templates escape every value (`.html` extension); plain-text templates need
//! no escaping. Links are built here, from the configured base URL only.

use crate::settings::MailSettings;
use askama::Template;
use portal_core::mail::MailIntent;
use portal_core::secret::SecretString;
use portal_core::values::Language;

/// What a template sees.
pub(crate) struct View<'a> {
    pub(crate) intent: &'a MailIntent,
    pub(crate) s: &'a MailSettings,
    pub(crate) subject: &'a str,
}

/// How the footer names the support contacts.
pub(crate) enum Support<'a> {
    PhoneAndMail { phone: &'a str, mail: &'a str },
    Phone { phone: &'a str },
    Mail { mail: &'a str },
    Nothing,
}

impl View<'_> {
    /// The portal's start page (login).
    pub(crate) fn portal_url(&self) -> String {
        format!("{}/", self.s.public_base_url())
    }

    /// `{base}/invitations/{token}`.
    pub(crate) fn invitation_url(&self, token: &SecretString) -> String {
        invitation_url(self.s, token)
    }

    /// `{base}/password/reset/{token}`.
    pub(crate) fn reset_url(&self, token: &SecretString) -> String {
        reset_url(self.s, token)
    }

    /// Whom a reply reaches, when not the sender address: the person who wrote the message
    /// (the mail's `Reply-To`). `None` for the portal's own mails, which ask not to be answered.
    pub(crate) fn replies_to(&self) -> Option<&str> {
        reply_to(self.intent)
    }

    pub(crate) fn support(&self) -> Support<'_> {
        match (self.s.support_phone(), self.s.support_email()) {
            (Some(phone), Some(mail)) => Support::PhoneAndMail { phone, mail },
            (Some(phone), None) => Support::Phone { phone },
            (None, Some(mail)) => Support::Mail { mail },
            (None, None) => Support::Nothing,
        }
    }
}

/// The `Reply-To` of a mail: the writer of a message to the administrators; no other mail has one.
pub(crate) fn reply_to(intent: &MailIntent) -> Option<&str> {
    match intent {
        MailIntent::MessageToAdmins { from_email, .. } => Some(from_email),
        _ => None,
    }
}

/// The invitation link for a token.
pub(crate) fn invitation_url(s: &MailSettings, token: &SecretString) -> String {
    format!(
        "{}/invitations/{}",
        s.public_base_url(),
        path_segment(token.expose())
    )
}

/// The password-reset link for a token.
pub(crate) fn reset_url(s: &MailSettings, token: &SecretString) -> String {
    format!(
        "{}/password/reset/{}",
        s.public_base_url(),
        path_segment(token.expose())
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters. Tokens are base64url and pass
/// unchanged; anything else cannot break out of its path segment.
fn path_segment(raw: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[derive(Template)]
#[template(path = "de/mail.txt")]
struct DeText<'a> {
    v: &'a View<'a>,
}

#[derive(Template)]
#[template(path = "de/mail.html")]
struct DeHtml<'a> {
    v: &'a View<'a>,
}

#[derive(Template)]
#[template(path = "en/mail.txt")]
struct EnText<'a> {
    v: &'a View<'a>,
}

#[derive(Template)]
#[template(path = "en/mail.html")]
struct EnHtml<'a> {
    v: &'a View<'a>,
}

/// Renders the plain-text and the HTML body.
pub(crate) fn render_bodies(
    language: Language,
    v: &View<'_>,
) -> Result<(String, String), askama::Error> {
    match language {
        Language::De => Ok((DeText { v }.render()?, DeHtml { v }.render()?)),
        Language::En => Ok((EnText { v }.render()?, EnHtml { v }.render()?)),
    }
}
