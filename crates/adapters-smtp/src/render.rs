//! Turns an [`OutboxMail`] into a complete MIME message: subject, `multipart/alternative` body
//! (plain text and HTML, in the recipient's language), and headers that make a retried mail
//! recognisable (`Message-ID` and `Date` derived from the outbox entry, a boundary derived from
//! its id: the same entry renders to the same bytes every time).

use crate::settings::MailSettings;
use crate::templates::{self, View};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use portal_core::ids::OutboxId;
use portal_core::mail::{MailIntent, OutboxMail};
use portal_core::secret::SecretString;
use portal_core::values::{EmailAddress, Language};
use std::fmt;

/// Why a mail could not be rendered. Rendering is deterministic, so none of these goes away by
/// itself: the dispatcher dead-letters the mail at once.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed (a bug: templates are checked at compile time).
    #[error("template failed: {0}")]
    Template(#[from] askama::Error),
    /// The sender or recipient address is not one the SMTP library accepts.
    #[error("address not accepted by the mail library")]
    Address,
    /// A header value contained a control character (CR/LF header injection).
    #[error("header `{0}` would contain a control character")]
    HeaderInjection(&'static str),
    /// The message could not be assembled.
    #[error("message could not be built: {0}")]
    Build(#[from] lettre::error::Error),
}

/// What a mail asks its reader to use: the code to type or the link to open. Secret (redacted
/// `Debug`); the development mailbox prints it, nothing else does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailAction {
    /// A verification code.
    Code(SecretString),
    /// A link with a token in it.
    Link(SecretString),
}

impl MailAction {
    /// The code or the link.
    #[must_use]
    pub fn expose(&self) -> &str {
        match self {
            Self::Code(s) | Self::Link(s) => s.expose(),
        }
    }
}

/// A rendered mail, ready for a [`MailSender`](crate::MailSender).
///
/// `Debug` leaves out the bodies and the action, which carry the code or link.
#[derive(Clone)]
pub struct RenderedMail {
    outbox_id: OutboxId,
    kind: &'static str,
    language: Language,
    to: EmailAddress,
    subject: String,
    message_id: String,
    text: String,
    html: String,
    action: Option<MailAction>,
    message: Message,
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail")
            .field("outbox_id", &self.outbox_id)
            .field("kind", &self.kind)
            .field("language", &self.language)
            .field("subject", &self.subject)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

impl RenderedMail {
    /// The outbox entry it was rendered from.
    #[must_use]
    pub fn outbox_id(&self) -> OutboxId {
        self.outbox_id
    }

    /// The intent's stable key (`verification_code`, `invitation`, …).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The language it was rendered in.
    #[must_use]
    pub fn language(&self) -> Language {
        self.language
    }

    /// The recipient.
    #[must_use]
    pub fn to(&self) -> &EmailAddress {
        &self.to
    }

    /// The subject.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The `Message-ID`, with angle brackets: `<{outbox id}@{sender domain}>`.
    #[must_use]
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The plain-text body (contains the code or link).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTML body (contains the code or link).
    #[must_use]
    pub fn html(&self) -> &str {
        &self.html
    }

    /// The code or link the mail carries, if any.
    #[must_use]
    pub fn action(&self) -> Option<&MailAction> {
        self.action.as_ref()
    }

    /// The assembled message (headers, envelope, MIME body).
    #[must_use]
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message as RFC 5322 bytes (what an `.eml` file holds).
    #[must_use]
    pub fn formatted(&self) -> Vec<u8> {
        self.message.formatted()
    }
}

/// Renders outbox mails with one set of [`MailSettings`].
#[derive(Debug, Clone)]
pub struct MailRenderer {
    settings: MailSettings,
    from: Mailbox,
}

impl MailRenderer {
    /// A renderer for these settings.
    ///
    /// # Errors
    /// [`RenderError::Address`] if the SMTP library refuses the sender address.
    pub fn new(settings: MailSettings) -> Result<Self, RenderError> {
        let address = settings
            .from()
            .as_str()
            .parse()
            .map_err(|_| RenderError::Address)?;
        let from = Mailbox::new(Some(settings.product_name().to_owned()), address);
        Ok(Self { settings, from })
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    /// Renders one mail in its language.
    ///
    /// # Errors
    /// See [`RenderError`]; none is transient.
    pub fn render(&self, mail: &OutboxMail) -> Result<RenderedMail, RenderError> {
        let subject = subject(mail.language, &mail.intent, &self.settings);
        if subject.chars().any(char::is_control) {
            return Err(RenderError::HeaderInjection("Subject"));
        }
        let view = View {
            intent: &mail.intent,
            s: &self.settings,
            subject: &subject,
        };
        let (text, html) = templates::render_bodies(mail.language, &view)?;
        let message_id = message_id(mail.id, self.settings.message_id_domain());
        let to = Mailbox::new(
            None,
            mail.to.as_str().parse().map_err(|_| RenderError::Address)?,
        );
        let body = MultiPart::alternative()
            .boundary(format!("portal-alt-{}", mail.id.as_uuid().simple()))
            .singlepart(SinglePart::plain(text.clone()))
            .singlepart(SinglePart::html(html.clone()));
        let mut builder = Message::builder().from(self.from.clone());
        // The writer of a message to the administrators gets the answer.
        if let Some(sender) = templates::reply_to(&mail.intent) {
            let sender = sender.parse().map_err(|_| RenderError::Address)?;
            builder = builder.reply_to(Mailbox::new(None, sender));
        }
        let message = builder
            .to(to)
            .subject(subject.clone())
            .message_id(Some(message_id.clone()))
            .date(mail.created_at.into())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                mail.language.code().to_owned(),
            ))
            .multipart(body)?;
        Ok(RenderedMail {
            outbox_id: mail.id,
            kind: mail.intent.key(),
            language: mail.language,
            to: mail.to.clone(),
            subject,
            message_id,
            text,
            html,
            action: action(&mail.intent, &self.settings),
            message,
        })
    }
}

/// The stable `Message-ID` of an outbox entry: `<{uuid}@{domain}>`. A re-sent mail carries the
/// same one, so receivers (and people) can tell it is the same mail.
#[must_use]
pub fn message_id(id: OutboxId, domain: &str) -> String {
    format!("<{}@{}>", id.as_uuid().hyphenated(), domain)
}

fn action(intent: &MailIntent, s: &MailSettings) -> Option<MailAction> {
    match intent {
        MailIntent::VerificationCode { code, .. }
        | MailIntent::RecoveryCode { code, .. }
        | MailIntent::RecoveryChannelCode { code, .. } => Some(MailAction::Code(code.clone())),
        MailIntent::Invitation { token, .. } => Some(MailAction::Link(SecretString::new(
            templates::invitation_url(s, token),
        ))),
        MailIntent::PasswordReset { token, .. } => Some(MailAction::Link(SecretString::new(
            templates::reset_url(s, token),
        ))),
        _ => None,
    }
}

/// The subject of a mail. Subjects never contain user text (names go into bodies only).
#[must_use]
pub fn subject(language: Language, intent: &MailIntent, s: &MailSettings) -> String {
    let product = s.product_name();
    match language {
        Language::De => match intent {
            MailIntent::VerificationCode { .. } => "Verifizieren Sie Ihre E-Mail-Adresse".into(),
            MailIntent::ExistingAccountNotice { .. } => {
                "Registrierung mit Ihrer E-Mail-Adresse".into()
            }
            MailIntent::AddressInUseNotice { .. } => {
                "Ihre E-Mail-Adresse wurde für ein anderes Konto angegeben".into()
            }
            MailIntent::InvitationToExistingAccount { .. } => {
                format!("Einladung zum {product}: Sie haben bereits ein Konto")
            }
            MailIntent::Invitation { .. } => format!("Einladung zum {product}"),
            MailIntent::PasswordReset { .. } | MailIntent::PasswordResetLocked { .. } => {
                "Ihr Passwort zurücksetzen".into()
            }
            MailIntent::PasswordChanged { .. } => "Ihr Passwort wurde geändert".into(),
            MailIntent::ActivationNeeded { .. } => "Neuer Benutzer wartet auf Freischaltung".into(),
            MailIntent::Welcome { .. } => format!("Herzlich willkommen im {product}"),
            MailIntent::MessageToAdmins { .. } => {
                "Nachricht eines Benutzers an den Administrator".into()
            }
            MailIntent::AdminConsentNeeded { .. } => {
                "Zustimmung zu einem Antrag auf Admin-Rechte erforderlich".into()
            }
            MailIntent::AdminApprovalNeeded { .. } => {
                "Antrag auf Admin-Rechte wartet auf Ihre Entscheidung".into()
            }
            MailIntent::AdminRequestReceived { .. } => {
                "Ihr Antrag auf Admin-Rechte ist eingegangen".into()
            }
            MailIntent::AdminRequestConsented { .. } => {
                "Zustimmung zu Ihrem Antrag auf Admin-Rechte".into()
            }
            MailIntent::AdminRequestApproved { .. } => {
                "Ihre Admin-Rechte wurden freigeschaltet".into()
            }
            MailIntent::AdminRequestRejected { .. } => {
                "Ihr Antrag auf Admin-Rechte wurde abgelehnt".into()
            }
            MailIntent::AccountLocked { .. } => "Ihr Benutzerkonto wurde gesperrt".into(),
            MailIntent::AccountUnlocked { .. } => "Ihr Benutzerkonto wurde entsperrt".into(),
            MailIntent::MfaEnabled { .. } => "Multi-Faktor-Authentifizierung eingerichtet".into(),
            MailIntent::MfaDisabled { .. } => "Multi-Faktor-Authentifizierung entfernt".into(),
            MailIntent::PasskeyRemoved { .. } => "Passkey entfernt".into(),
            MailIntent::RecoveryCodeRenewed { .. } => "Neuer Wiederherstellungscode erzeugt".into(),
            MailIntent::RecoveryCodeUsed { .. } => {
                "Anmeldung mit Ihrem Wiederherstellungscode".into()
            }
            MailIntent::RecoveryCode { .. } => "Ihr neuer Wiederherstellungscode".into(),
            MailIntent::RecoveryChannelCode { .. } => "Wiederherstellungsmethode bestätigen".into(),
            MailIntent::EmailChangeRequested { .. } => {
                "Änderung Ihrer E-Mail-Adresse angefordert".into()
            }
            MailIntent::EmailChanged { .. } => "Ihre E-Mail-Adresse wurde geändert".into(),
            MailIntent::DataExported { .. } => "Ihre Daten wurden exportiert".into(),
        },
        Language::En => match intent {
            MailIntent::VerificationCode { .. } => "Verify your email address".into(),
            MailIntent::ExistingAccountNotice { .. } => {
                "Registration attempt with your email address".into()
            }
            MailIntent::AddressInUseNotice { .. } => {
                "Your email address was given for another account".into()
            }
            MailIntent::InvitationToExistingAccount { .. } => {
                format!("Invitation to {product}: you already have an account")
            }
            MailIntent::Invitation { .. } => format!("Invitation to {product}"),
            MailIntent::PasswordReset { .. } | MailIntent::PasswordResetLocked { .. } => {
                "Reset your password".into()
            }
            MailIntent::PasswordChanged { .. } => "Your password was changed".into(),
            MailIntent::ActivationNeeded { .. } => "A new user is waiting for activation".into(),
            MailIntent::Welcome { .. } => format!("Welcome to {product}"),
            MailIntent::MessageToAdmins { .. } => {
                "A message from a user to the administrator".into()
            }
            MailIntent::AdminConsentNeeded { .. } => {
                "Your consent to a request for admin rights is needed".into()
            }
            MailIntent::AdminApprovalNeeded { .. } => {
                "A request for admin rights awaits your decision".into()
            }
            MailIntent::AdminRequestReceived { .. } => {
                "We have received your request for admin rights".into()
            }
            MailIntent::AdminRequestConsented { .. } => {
                "Consent to your request for admin rights".into()
            }
            MailIntent::AdminRequestApproved { .. } => "Your admin rights have been granted".into(),
            MailIntent::AdminRequestRejected { .. } => {
                "Your request for admin rights was declined".into()
            }
            MailIntent::AccountLocked { .. } => "Your account has been locked".into(),
            MailIntent::AccountUnlocked { .. } => "Your account has been unlocked".into(),
            MailIntent::MfaEnabled { .. } => "Multi-factor authentication set up".into(),
            MailIntent::MfaDisabled { .. } => "Multi-factor authentication removed".into(),
            MailIntent::PasskeyRemoved { .. } => "Passkey removed".into(),
            MailIntent::RecoveryCodeRenewed { .. } => "A new recovery code was generated".into(),
            MailIntent::RecoveryCodeUsed { .. } => "Login with your recovery code".into(),
            MailIntent::RecoveryCode { .. } => "Your new recovery code".into(),
            MailIntent::RecoveryChannelCode { .. } => "Confirm your recovery method".into(),
            MailIntent::EmailChangeRequested { .. } => {
                "Change of your email address requested".into()
            }
            MailIntent::EmailChanged { .. } => "Your email address was changed".into(),
            MailIntent::DataExported { .. } => "Your data were exported".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portal_core::ids::AdminRequestId;

    fn settings() -> MailSettings {
        MailSettings::new(
            "https://portal.example.com/base/",
            EmailAddress::parse("do-not-reply@portal.example.com").unwrap(),
        )
        .unwrap()
        .with_vendor_name("Example")
        .unwrap()
        .with_support_phone("069 - 50 007 6035")
        .unwrap()
        .with_support_email(EmailAddress::parse("support@example.com").unwrap())
    }

    fn mail(language: Language, intent: MailIntent) -> OutboxMail {
        OutboxMail {
            id: OutboxId::from_uuid(uuid::Uuid::from_u128(0xabc)),
            created_at: chrono::DateTime::from_timestamp(1_767_600_000, 0).unwrap(),
            to: EmailAddress::parse("anna@example.com").unwrap(),
            language,
            intent,
        }
    }

    fn render(language: Language, intent: MailIntent) -> RenderedMail {
        MailRenderer::new(settings())
            .unwrap()
            .render(&mail(language, intent))
            .unwrap()
    }

    #[test]
    fn names_and_messages_are_escaped_in_html_and_kept_in_text() {
        let hostile = "<script>alert('x')</script> & \"Ben\"";
        let r = render(
            Language::De,
            MailIntent::MessageToAdmins {
                admin_first_name: hostile.into(),
                from_name: "<b>Eve</b>".into(),
                from_email: "eve@example.com".into(),
                message: "Hallo,\n<img src=x onerror=alert(1)>\nbitte freischalten.".into(),
            },
        );
        assert!(!r.html().contains("<script>"), "{}", r.html());
        assert!(!r.html().contains("<b>Eve"), "{}", r.html());
        assert!(!r.html().contains("<img"), "{}", r.html());
        assert!(r.html().contains("&#60;script&#62;"), "{}", r.html());
        assert!(r.html().contains("&#60;img src=x onerror=alert(1)&#62;"));
        assert!(
            r.text().contains(hostile),
            "plain text shows the name as typed"
        );
        assert!(
            r.text()
                .contains("<img src=x onerror=alert(1)>\nbitte freischalten.")
        );
        assert!(!r.subject().contains("Eve"), "names never reach a header");
    }

    #[test]
    fn links_start_with_the_configured_base_url() {
        let r = render(
            Language::De,
            MailIntent::PasswordReset {
                first_name: "Anna".into(),
                token: SecretString::new("tok_EN-123"),
                valid_minutes: 60,
            },
        );
        let link = "https://portal.example.com/base/password/reset/tok_EN-123";
        assert_eq!(r.action().map(MailAction::expose), Some(link));
        assert!(r.text().contains(link), "{}", r.text());
        assert!(
            r.html().contains(&format!("href=\"{link}\"")),
            "{}",
            r.html()
        );
        assert_eq!(r.subject(), "Ihr Passwort zurücksetzen");

        let r = render(
            Language::En,
            MailIntent::Invitation {
                first_name: "Anna".into(),
                customer_name: "Müller & Söhne GmbH".into(),
                token: SecretString::new("a/b?c"),
                valid_days: 7,
            },
        );
        let link = "https://portal.example.com/base/invitations/a%2Fb%3Fc";
        assert_eq!(r.action().map(MailAction::expose), Some(link));
        assert!(
            r.text()
                .contains("Register now: https://portal.example.com/base/invitations/")
        );
        assert!(r.html().contains("Müller &#38; Söhne GmbH"), "{}", r.html());
        assert_eq!(r.subject(), "Invitation to Portal");
    }

    #[test]
    fn the_footer_comes_from_configuration() {
        let r = render(
            Language::De,
            MailIntent::Welcome {
                first_name: "Anna".into(),
            },
        );
        assert_eq!(r.subject(), "Herzlich willkommen im Portal");
        for part in [r.text(), r.html()] {
            assert!(part.contains("Telefon-Nr. 069 - 50 007 6035"), "{part}");
            assert!(part.contains("support@example.com"), "{part}");
            assert!(part.contains("Ihr Example-Team"), "{part}");
            assert!(part.contains("do-not-reply@portal.example.com"), "{part}");
        }
        let plain = MailRenderer::new(
            MailSettings::new(
                "https://p.example",
                EmailAddress::parse("a@p.example").unwrap(),
            )
            .unwrap()
            .with_product_name("Kundenportal")
            .unwrap(),
        )
        .unwrap()
        .render(&mail(
            Language::En,
            MailIntent::Welcome {
                first_name: "Anna".into(),
            },
        ))
        .unwrap();
        assert_eq!(plain.subject(), "Welcome to Kundenportal");
        assert!(!plain.text().contains("If you have any questions"));
        assert!(plain.text().contains("Your Kundenportal team"));
    }

    #[test]
    fn a_message_to_the_administrators_is_answered_to_its_writer() {
        for language in [Language::De, Language::En] {
            let r = render(
                language,
                MailIntent::MessageToAdmins {
                    admin_first_name: "Anna".into(),
                    from_name: "Ben Becker".into(),
                    from_email: "ben@kunde.example".into(),
                    message: "Bitte Zugang freischalten".into(),
                },
            );
            let eml = String::from_utf8(r.formatted()).unwrap();
            assert!(eml.contains("Reply-To: ben@kunde.example\r\n"), "{eml}");
            for part in [r.text(), r.html()] {
                assert!(!part.contains("do not reply"), "{part}");
                assert!(!part.contains("antworten Sie nicht"), "{part}");
                let says = match language {
                    Language::De => "Ihre Antwort auf diese E-Mail geht an ben@kunde.example",
                    Language::En => "Your reply to this email goes to ben@kunde.example",
                };
                assert!(part.contains(says), "{part}");
            }
        }
        let other = render(
            Language::De,
            MailIntent::Welcome {
                first_name: "Anna".into(),
            },
        );
        let eml = String::from_utf8(other.formatted()).unwrap();
        assert!(!eml.contains("Reply-To"), "{eml}");
        assert!(other.text().contains("Bitte antworten Sie nicht"));
    }

    #[test]
    fn the_same_entry_renders_to_the_same_bytes() {
        let intent = MailIntent::VerificationCode {
            first_name: "Anna".into(),
            code: SecretString::new("123456"),
            valid_minutes: 15,
        };
        let a = render(Language::De, intent.clone());
        let b = render(Language::De, intent);
        assert_eq!(a.formatted(), b.formatted());
        assert_eq!(
            a.message_id(),
            "<00000000-0000-0000-0000-000000000abc@portal.example.com>"
        );
        let eml = String::from_utf8(a.formatted()).unwrap();
        assert!(eml.contains("Date: Mon, 05 Jan 2026"), "{eml}");
        assert!(eml.contains("multipart/alternative"), "{eml}");
        assert!(!format!("{a:?}").contains("123456"), "Debug hides the code");
    }

    #[test]
    fn admin_request_mails_name_the_request() {
        let id = AdminRequestId::from_uuid(uuid::Uuid::from_u128(7));
        let r = render(
            Language::En,
            MailIntent::AdminApprovalNeeded {
                requester_name: "Anna Muster".into(),
                customer_number: "D123456789".into(),
                customer_name: "ACME".into(),
                request_id: id,
            },
        );
        assert!(r.text().contains(&id.to_string()));
        assert!(r.text().contains("customer number D123456789"));
        let r = render(
            Language::De,
            MailIntent::AdminRequestReceived {
                first_name: "Anna".into(),
                needs_consent: true,
            },
        );
        assert!(
            r.text().contains("muss dieser zunächst zustimmen"),
            "{}",
            r.text()
        );
        let r = render(
            Language::De,
            MailIntent::AdminRequestReceived {
                first_name: "Anna".into(),
                needs_consent: false,
            },
        );
        assert!(!r.text().contains("zustimmen"), "{}", r.text());
    }
}
