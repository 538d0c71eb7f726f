//! The kinds of outgoing messages, declared once by `outbox_kinds!`.

use crate::mail::MailIntent;
use crate::values::{EmailAddress, Language};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What one kind's payload must offer: storage as JSON, and the two things an operator's
/// dead-letter page shows about a message without reading its payload.
pub trait PayloadKind:
    Serialize + DeserializeOwned + Clone + PartialEq + Eq + std::fmt::Debug
{
    /// Where it goes, as shown to operators: an address, an endpoint.
    fn recipient(&self) -> String;

    /// What it is about in a few words, without secrets (a mail's template key, an event name).
    fn summary(&self) -> String;

    /// Replaces any secret it carries (a code, a link token) with an empty one: what storage
    /// does once the message is delivered, so a database dump holds no usable secret.
    fn purge_secret(&mut self) {}
}

/// A mail: recipient, language and what it says. The mail adapter renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailMessage {
    /// Recipient.
    pub to: EmailAddress,
    /// Language of the template.
    pub language: Language,
    /// What it says.
    pub intent: MailIntent,
}

impl PayloadKind for MailMessage {
    fn recipient(&self) -> String {
        self.to.to_string()
    }

    fn summary(&self) -> String {
        self.intent.key().to_owned()
    }

    fn purge_secret(&mut self) {
        self.intent.purge_secret();
    }
}

/// A "Passwort vergessen?" request (R15), recorded alike for every well-formed address and
/// processed behind the answer by [`PasswordResetRequests`](crate::service::PasswordResetRequests):
/// the account lookup and the link's commit happen there, so the request's timing does not tell
/// whether the address has an account (docs/security.md, "Timing").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetRequest {
    /// The address asked for; `None` once the request is processed (the delivered message is
    /// kept for a while, and an address without an account is not kept at all).
    pub email: Option<EmailAddress>,
}

impl PayloadKind for PasswordResetRequest {
    /// Never the address: it may belong to nobody, and operators need not see who asked.
    fn recipient(&self) -> String {
        "(withheld)".to_owned()
    }

    fn summary(&self) -> String {
        "password_reset_request".to_owned()
    }

    fn purge_secret(&mut self) {
        self.email = None;
    }
}

/// A phone code by SMS or voice call (R19), queued when
/// [`Portal::with_sms_outbox`](crate::service::Portal::with_sms_outbox) is on and delivered by the
/// outbox's sender of kind `sms` (an HTTP gateway). Operators see the number and the purpose;
/// the code is purged once it is delivered, like a mailed one.
impl PayloadKind for crate::ports::PhoneMessage {
    fn recipient(&self) -> String {
        self.to.as_str().to_owned()
    }

    fn summary(&self) -> String {
        let channel = match self.channel {
            crate::mfa::PhoneChannel::Sms => "sms",
            crate::mfa::PhoneChannel::Voice => "voice",
        };
        format!("{channel}:{}", self.purpose.key())
    }

    fn purge_secret(&mut self) {
        self.code = crate::secret::SecretString::new("");
    }
}

/// A stored payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbox payload of kind {kind} is unreadable: {reason}")]
pub struct PayloadError {
    /// The kind it was stored as.
    pub kind: String,
    /// Why (a JSON error, without the payload).
    pub reason: String,
}

macro_rules! outbox_kinds {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) => $key:literal; )*) => {
        /// The kinds of outgoing message this build knows; each has its own [`Sender`](super::Sender)
        /// and its own dispatcher, and shares the leases, retries and dead letters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OutboxKind {
            $( $(#[$doc])* $variant, )*
        }

        impl OutboxKind {
            /// Every kind.
            pub const ALL: &'static [OutboxKind] = &[$(Self::$variant),*];

            /// Stable key, as stored in the `kind` column and shown in the operator's pages.
            #[must_use]
            pub const fn key(self) -> &'static str {
                match self { $(Self::$variant => $key,)* }
            }

            /// Parses a stable key.
            #[must_use]
            pub fn from_key(key: &str) -> Option<Self> {
                match key { $($key => Some(Self::$variant),)* _ => None }
            }
        }

        /// What an outgoing message carries; the variant is its kind.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Payload {
            $( $(#[$doc])* $variant($payload), )*
            /// A kind this build does not know, written by a newer process: kept as stored,
            /// never claimed or rewritten here, listed and re-queued like any other.
            Unknown {
                /// Its stored kind key.
                kind: String,
                /// Its stored recipient.
                recipient: String,
                /// Its stored JSON, untouched.
                json: String,
            },
        }

        impl Payload {
            /// The kind, if this build knows it.
            #[must_use]
            pub fn kind(&self) -> Option<OutboxKind> {
                match self {
                    $(Self::$variant(_) => Some(OutboxKind::$variant),)*
                    Self::Unknown { .. } => None,
                }
            }

            /// The stored kind key (also of an unknown kind).
            #[must_use]
            pub fn kind_key(&self) -> &str {
                match self {
                    $(Self::$variant(_) => $key,)*
                    Self::Unknown { kind, .. } => kind,
                }
            }

            /// Where it goes, as shown to operators.
            #[must_use]
            pub fn recipient(&self) -> String {
                match self {
                    $(Self::$variant(p) => PayloadKind::recipient(p),)*
                    Self::Unknown { recipient, .. } => recipient.clone(),
                }
            }

            /// What it is about, without secrets; empty for an unknown kind.
            #[must_use]
            pub fn summary(&self) -> String {
                match self {
                    $(Self::$variant(p) => PayloadKind::summary(p),)*
                    Self::Unknown { .. } => String::new(),
                }
            }

            /// Purges the secret it carries (see [`PayloadKind::purge_secret`]); an unknown
            /// kind is left as it is.
            pub fn purge_secret(&mut self) {
                match self {
                    $(Self::$variant(p) => PayloadKind::purge_secret(p),)*
                    Self::Unknown { .. } => {}
                }
            }

            /// The JSON storage keeps (an unknown kind's as it was read).
            #[must_use]
            pub fn to_json(&self) -> String {
                match self {
                    // Serializing these types cannot fail: plain structs and enums of strings
                    // and numbers, no maps with non-string keys.
                    $(Self::$variant(p) => serde_json::to_string(p).unwrap_or_default(),)*
                    Self::Unknown { json, .. } => json.clone(),
                }
            }

            /// Reads a stored payload of the stored `kind`; a kind this build does not know
            /// becomes [`Payload::Unknown`].
            ///
            /// # Errors
            /// The kind is known but its JSON does not fit it.
            pub fn from_stored(kind: &str, recipient: &str, json: &str) -> Result<Self, PayloadError> {
                let err = |e: serde_json::Error| PayloadError {
                    kind: kind.to_owned(),
                    // Position and class only: serde's messages can quote the stored text.
                    reason: format!(
                        "{:?} error at line {} column {}",
                        e.classify(),
                        e.line(),
                        e.column()
                    ),
                };
                match kind {
                    $($key => serde_json::from_str(json).map(Self::$variant).map_err(err),)*
                    _ => Ok(Self::Unknown {
                        kind: kind.to_owned(),
                        recipient: recipient.to_owned(),
                        json: json.to_owned(),
                    }),
                }
            }
        }
    };
}

outbox_kinds! {
    /// A mail, rendered and sent by the mail adapter.
    Mail(MailMessage) => "mail";
    /// An OpenID Connect back-channel logout token, posted to a client's registered URI.
    BackchannelLogout(crate::oidc::BackchannelLogout) => "backchannel_logout";
    /// A password-reset request, processed by the core itself (the lookup and the link's commit).
    PasswordResetRequest(PasswordResetRequest) => "password_reset_request";
    /// A change-log event for a registered webhook endpoint, signed and posted by the webhook
    /// sender (Standard Webhooks).
    Webhook(crate::webhook::WebhookDelivery) => "webhook";
    /// A phone code by SMS (or voice call), delivered by a phone gateway's sender.
    Sms(crate::ports::PhoneMessage) => "sms";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;

    fn mail() -> Payload {
        Payload::Mail(MailMessage {
            to: EmailAddress::parse("anna@example.com").unwrap(),
            language: Language::En,
            intent: MailIntent::VerificationCode {
                first_name: "Anna".into(),
                code: SecretString::new("123456"),
                valid_minutes: 15,
            },
        })
    }

    #[test]
    fn a_known_kind_round_trips_through_its_stored_form() {
        let p = mail();
        assert_eq!(p.kind(), Some(OutboxKind::Mail));
        assert_eq!(p.kind_key(), "mail");
        assert_eq!(p.recipient(), "anna@example.com");
        assert_eq!(p.summary(), "verification_code");
        let back = Payload::from_stored("mail", "ignored", &p.to_json()).unwrap();
        assert_eq!(back, p);
        for k in OutboxKind::ALL {
            assert_eq!(OutboxKind::from_key(k.key()), Some(*k));
        }
    }

    #[test]
    fn an_unknown_kind_is_kept_as_stored() {
        let json = r#"{"event":"user.locked","n":1}"#;
        let p = Payload::from_stored("webhook_v9", "https://hooks.example.com/x", json).unwrap();
        assert_eq!(p.kind(), None);
        assert_eq!(p.kind_key(), "webhook_v9");
        assert_eq!(p.recipient(), "https://hooks.example.com/x");
        assert_eq!(p.to_json(), json, "written back byte for byte");
        let mut purged = p.clone();
        purged.purge_secret();
        assert_eq!(purged, p);
    }

    #[test]
    fn a_known_kind_with_a_payload_that_does_not_fit_is_an_error_without_the_payload() {
        let e = Payload::from_stored("mail", "x", r#"{"to":"secret-123456"}"#).unwrap_err();
        assert_eq!(e.kind, "mail");
        assert!(!e.to_string().contains("secret-123456"), "{e}");
    }

    #[test]
    fn a_reset_request_never_shows_its_address_and_loses_it_once_processed() {
        let mut p = Payload::PasswordResetRequest(PasswordResetRequest {
            email: Some(EmailAddress::parse("anna@example.com").unwrap()),
        });
        assert_eq!(p.kind(), Some(OutboxKind::PasswordResetRequest));
        assert_eq!(p.kind_key(), "password_reset_request");
        assert!(!p.recipient().contains("anna"), "{}", p.recipient());
        assert!(!p.summary().contains("anna"), "{}", p.summary());
        let back = Payload::from_stored("password_reset_request", "x", &p.to_json()).unwrap();
        assert_eq!(back, p);
        p.purge_secret();
        assert!(!p.to_json().contains("anna"), "{}", p.to_json());
        let Payload::PasswordResetRequest(r) = &p else {
            unreachable!()
        };
        assert_eq!(r.email, None);
    }

    #[test]
    fn a_phone_code_shows_number_and_purpose_never_the_code_and_loses_it_once_delivered() {
        use crate::mfa::{PhoneChannel, PhoneNumber};
        use crate::ports::{PhoneCodePurpose, PhoneMessage};
        let mut p = Payload::Sms(PhoneMessage {
            to: PhoneNumber::parse("+49 176 12345678").unwrap(),
            channel: PhoneChannel::Sms,
            code: SecretString::new("402913"),
            purpose: PhoneCodePurpose::Login,
            language: Language::De,
        });
        assert_eq!(p.kind(), Some(OutboxKind::Sms));
        assert_eq!(p.kind_key(), "sms");
        assert_eq!(p.recipient(), "+4917612345678");
        assert_eq!(p.summary(), "sms:login");
        let back = Payload::from_stored("sms", "x", &p.to_json()).unwrap();
        assert_eq!(back, p);
        assert!(p.to_json().contains("402913"), "kept until delivered");
        p.purge_secret();
        assert!(!p.to_json().contains("402913"), "{}", p.to_json());
    }

    #[test]
    fn delivered_mail_loses_its_code() {
        let mut p = mail();
        p.purge_secret();
        let Payload::Mail(m) = &p else { unreachable!() };
        assert_eq!(m.intent.secret().map(SecretString::expose), Some(""));
    }
}
