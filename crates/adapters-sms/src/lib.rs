//! # adapters-sms
//!
//! Portal's production phone gateway: [`SmsGateway`], the outbox [`Sender`] of kind
//! [`sms`](OutboxKind::Sms). With [`Portal::with_sms_outbox`](portal_core::service::Portal::with_sms_outbox)
//! every SMS or voice code is queued in the commit that stores its hash; a
//! `portal_dispatch::Dispatcher` over this sender posts it to the provider's HTTP API, with the
//! outbox's retries, back-off and dead letters.
//!
//! One generic adapter fits most providers' "send a message" endpoints, configured by
//! [`GatewayConfig`] (the `PORTAL_SMS_*` variables, [`VARIABLES`]):
//!
//! * **URL** (`https://`; plain `http://` only to loopback) and one **authentication header**
//!   (`Authorization: Basic …`, `X-Api-Key: …`), sent marked sensitive;
//! * the **body template**, a [minijinja](https://docs.rs/minijinja) template (Jinja syntax,
//!   chosen because the body is configured at run time, which rules out askama, and it escapes
//!   every printed value for the body's type: as a JSON literal for `json`, form-encoded for
//!   `form`). Unknown variables are an error, checked at start by rendering a sample. Variables:
//!   `to` (E.164, `+4917612345678`), `text` (the message in the user's language), `code`, `sender`,
//!   `channel` (`sms`, `voice`), `purpose` (`login`, `enrolment`, `recovery`,
//!   `recovery_channel`), `language` (`de`, `en`), `id` (the outbox id, the same on every retry);
//! * the **success criteria**: the statuses that mean accepted (`2xx` by default), and optionally
//!   a JSON pointer with its expected value and/or a text the body must contain;
//! * **timeouts** for connecting and for the whole request.
//!
//! Outcomes: accepted → delivered. No connection, a timeout, `408`, `429` or `5xx` → transient
//! (retried with back-off). Any other status, or an accepted status whose body fails the
//! criteria → permanent (dead-lettered after the dispatcher's `permanent_failure_attempts`). The
//! errors recorded name the status or the failed criterion only — never the URL's query, the
//! body sent or received (a provider may echo the text, and so the code), nor the header.
//!
//! This crate depends on `portal-core` only among Portal's crates.

mod config;

pub use config::{
    BodyFormat, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, GatewayConfig, GatewayConfigError,
    MAX_TIMEOUT_SECONDS, StatusSet, SuccessCriteria, VARIABLES,
};

use async_trait::async_trait;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use portal_core::ids::OutboxId;
use portal_core::mfa::{PhoneChannel, PhoneNumber};
use portal_core::outbox::{OutboxKind, OutboxMessage, Payload, SendError, Sender};
use portal_core::ports::{PhoneCodePurpose, PhoneMessage};
use portal_core::secret::SecretString;
use portal_core::values::Language;
use std::fmt;

/// The most of an answer's body read to check the success criteria.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The template's name in its environment.
const BODY: &str = "body";

/// Posts phone codes to an HTTP SMS provider; the outbox's [`Sender`] of kind `sms`.
pub struct SmsGateway {
    client: reqwest::Client,
    config: GatewayConfig,
    templates: Environment<'static>,
    product: String,
}

impl fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsGateway")
            .field("config", &self.config)
            .field("product", &self.product)
            .finish_non_exhaustive()
    }
}

/// Why the gateway cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A setting was refused (the body template does not compile or render).
    #[error(transparent)]
    Config(#[from] GatewayConfigError),
    /// The HTTP client cannot be built (no TLS provider).
    #[error("the HTTP client cannot be built: {0}")]
    Client(#[from] reqwest::Error),
}

impl SmsGateway {
    /// A gateway with `config`; `product` is the product's name in the texts ("Ihr Anmeldecode
    /// für {product}: …", the mail's `PORTAL_PRODUCT_NAME`).
    ///
    /// # Errors
    /// The body template does not compile, or fails on a sample message (an unknown variable, a
    /// filter misused); the HTTP client cannot be built.
    pub fn new(config: GatewayConfig, product: impl Into<String>) -> Result<Self, GatewayError> {
        let templates = check_template(&config)?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portal/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            config,
            templates,
            product: product.into(),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The text of `message` as the user reads (or, for a voice call, hears) it.
    #[must_use]
    pub fn text(&self, message: &PhoneMessage) -> String {
        text(message, &self.product)
    }

    /// The request body for the message with `id`, as the template renders it.
    ///
    /// # Errors
    /// The template failed on this message (the reason names the template's line, never the
    /// values).
    pub fn body(&self, id: OutboxId, message: &PhoneMessage) -> Result<String, String> {
        render(&self.templates, &self.config, &self.product, id, message)
    }

    /// Whether an answer's `body` means accepted (the status is judged before); otherwise which
    /// criterion failed.
    fn accepted(&self, body: &[u8]) -> Result<(), String> {
        let success = &self.config.success;
        if let Some(needle) = &success.body_contains
            && !String::from_utf8_lossy(body).contains(needle.as_str())
        {
            return Err("the answer lacks the expected text".to_owned());
        }
        if let Some((pointer, expected)) = &success.json {
            let json: serde_json::Value =
                serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_owned())?;
            let found = match json.pointer(pointer) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            if found.as_deref() != Some(expected.as_str()) {
                return Err(format!("the answer's {pointer} is not {expected}"));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Sender for SmsGateway {
    fn kind(&self) -> OutboxKind {
        OutboxKind::Sms
    }

    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let Payload::Sms(text) = &message.payload else {
            return Err(SendError::Permanent(format!(
                "not a phone code: kind {}",
                message.payload.kind_key()
            )));
        };
        if text.code.expose().is_empty() {
            // Delivered before and purged, then re-queued by an operator: nothing to send.
            return Err(SendError::Permanent(
                "the code was purged after an earlier delivery; the user asks for a new one"
                    .to_owned(),
            ));
        }
        let body = self
            .body(message.id, text)
            .map_err(|reason| SendError::Permanent(format!("body template: {reason}")))?;
        let mut request = self
            .client
            .post(self.config.url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                self.config.format.content_type(),
            )
            .header(reqwest::header::ACCEPT, "application/json, */*;q=0.5")
            .body(body);
        if let Some((name, value)) = &self.config.auth_header {
            request = request.header(name.clone(), value.clone());
        }
        let mut response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            SendError::Transient(format!("gateway {what}"))
        })?;
        let status = response.status();
        if self.config.success.statuses.contains(status.as_u16()) {
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if body.len() >= MAX_ANSWER_BYTES {
                            break;
                        }
                    }
                    Ok(None) => break,
                    // Accepted, but the answer broke off: whether the text went out is unknown,
                    // and a retry may send it twice. Sending twice is the lesser harm (a code the
                    // user waits for); the id in the template lets a provider drop the repeat.
                    Err(_) => {
                        return Err(SendError::Transient(format!(
                            "gateway answered {status} but the answer broke off"
                        )));
                    }
                }
            }
            return self
                .accepted(&body)
                .map_err(|why| SendError::Permanent(format!("gateway answered {status}: {why}")));
        }
        let code = status.as_u16();
        if status.is_server_error() || code == 429 || code == 408 {
            Err(SendError::Transient(format!("gateway answered {status}")))
        } else {
            Err(SendError::Permanent(format!("gateway answered {status}")))
        }
    }
}

/// Compiles the body template and renders it once with a sample message: a template that does
/// not compile, names an unknown variable or misuses a filter is refused at start.
pub(crate) fn check_template(
    config: &GatewayConfig,
) -> Result<Environment<'static>, GatewayConfigError> {
    let templates = environment(config)?;
    render(
        &templates,
        config,
        "Portal",
        OutboxId::from_uuid(uuid::Uuid::nil()),
        &sample(),
    )
    .map_err(|reason| GatewayConfigError {
        var: "PORTAL_SMS_BODY_TEMPLATE",
        reason,
    })?;
    Ok(templates)
}

/// The body for one message.
fn render(
    templates: &Environment<'static>,
    config: &GatewayConfig,
    product: &str,
    id: OutboxId,
    message: &PhoneMessage,
) -> Result<String, String> {
    let template = templates.get_template(BODY).map_err(|e| describe(&e))?;
    template
        .render(minijinja::context! {
            to => message.to.as_str(),
            text => text(message, product),
            code => message.code.expose(),
            sender => config.sender.as_str(),
            channel => match message.channel {
                PhoneChannel::Sms => "sms",
                PhoneChannel::Voice => "voice",
            },
            purpose => message.purpose.key(),
            language => message.language.code(),
            id => id.to_string(),
        })
        .map_err(|e| describe(&e))
}

/// The template environment: the body template, strict about unknown variables, every printed
/// value escaped for the body's format.
fn environment(config: &GatewayConfig) -> Result<Environment<'static>, GatewayConfigError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let escape = match config.format {
        BodyFormat::Json => AutoEscape::Json,
        BodyFormat::Form => AutoEscape::Custom("form"),
    };
    env.set_auto_escape_callback(move |_| escape);
    env.set_formatter(|out, state, value| match state.auto_escape() {
        AutoEscape::Custom("form") if !value.is_safe() => {
            let text = printed(value);
            let encoded: String = form_urlencoded::byte_serialize(text.as_bytes()).collect();
            out.write_str(&encoded).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env.add_template_owned(BODY, config.body_template.clone())
        .map_err(|e| GatewayConfigError {
            var: "PORTAL_SMS_BODY_TEMPLATE",
            reason: describe(&e),
        })?;
    Ok(env)
}

/// A value as text: a string as it is, `none` as nothing, anything else as minijinja prints it.
fn printed(value: &Value) -> String {
    if value.is_none() || value.is_undefined() {
        String::new()
    } else if let Some(s) = value.as_str() {
        s.to_owned()
    } else {
        value.to_string()
    }
}

/// A template error without the template's text (it may hold a credential).
fn describe(e: &minijinja::Error) -> String {
    let mut text = format!("{:?}", e.kind());
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// The message the template is tried with at start.
fn sample() -> PhoneMessage {
    PhoneMessage {
        to: PhoneNumber::parse("+4917612345678").unwrap_or_else(|_| unreachable!()),
        channel: PhoneChannel::Sms,
        code: SecretString::new("123456"),
        purpose: PhoneCodePurpose::Login,
        language: Language::De,
    }
}

/// The text of a phone code, short enough for one SMS (70 characters when an umlaut makes it
/// UCS-2, with a product name of up to about 20). A voice call reads the digits one by one.
#[must_use]
pub fn text(message: &PhoneMessage, product: &str) -> String {
    let code = match message.channel {
        PhoneChannel::Sms => message.code.expose().to_owned(),
        PhoneChannel::Voice => spaced(message.code.expose()),
    };
    match (message.language, message.purpose) {
        (Language::De, PhoneCodePurpose::Login) => format!("Ihr Anmeldecode für {product}: {code}"),
        (Language::De, PhoneCodePurpose::Enrolment) => {
            format!("Ihr Bestätigungscode für {product}: {code}")
        }
        (Language::De, PhoneCodePurpose::Recovery) => {
            format!("Ihr neuer Wiederherstellungscode für {product}: {code}")
        }
        (Language::De, PhoneCodePurpose::RecoveryChannel) => {
            format!("Code für Ihre Wiederherstellungsnummer bei {product}: {code}")
        }
        (Language::En, PhoneCodePurpose::Login) => format!("Your {product} sign-in code: {code}"),
        (Language::En, PhoneCodePurpose::Enrolment) => {
            format!("Your {product} confirmation code: {code}")
        }
        (Language::En, PhoneCodePurpose::Recovery) => {
            format!("Your new {product} recovery code: {code}")
        }
        (Language::En, PhoneCodePurpose::RecoveryChannel) => {
            format!("Code for your {product} recovery number: {code}")
        }
    }
}

fn spaced(code: &str) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    for (i, c) in code.chars().filter(char::is_ascii_alphanumeric).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(
        language: Language,
        purpose: PhoneCodePurpose,
        channel: PhoneChannel,
    ) -> PhoneMessage {
        PhoneMessage {
            to: PhoneNumber::parse("+4917612345678").unwrap(),
            channel,
            code: SecretString::new("402913"),
            purpose,
            language,
        }
    }

    #[test]
    fn every_text_carries_the_code_and_fits_one_sms() {
        for language in [Language::De, Language::En] {
            for purpose in [
                PhoneCodePurpose::Login,
                PhoneCodePurpose::Enrolment,
                PhoneCodePurpose::Recovery,
                PhoneCodePurpose::RecoveryChannel,
            ] {
                let t = text(
                    &message(language, purpose, PhoneChannel::Sms),
                    "Kundenportal",
                );
                assert!(t.contains("402913"), "{t}");
                assert!(t.contains("Kundenportal"), "{t}");
                assert!(t.chars().count() <= 70, "{t}");
            }
        }
        let spoken = text(
            &message(Language::En, PhoneCodePurpose::Login, PhoneChannel::Voice),
            "Portal",
        );
        assert_eq!(spoken, "Your Portal sign-in code: 4 0 2 9 1 3");
    }

    fn gateway(format: BodyFormat, template: &str) -> Result<SmsGateway, GatewayError> {
        let config = GatewayConfig::new("http://127.0.0.1:9/", format, template).unwrap();
        SmsGateway::new(config, "Portal")
    }

    #[test]
    fn json_bodies_print_every_value_as_a_json_literal() {
        let g = gateway(
            BodyFormat::Json,
            r#"{"to": {{ to }}, "text": {{ text }}, "ref": {{ id }}}"#,
        )
        .unwrap();
        let mut m = message(Language::De, PhoneCodePurpose::Login, PhoneChannel::Sms);
        m.code = SecretString::new("1\"}, \"x\": \"\\");
        let body = g.body(OutboxId::from_uuid(uuid::Uuid::nil()), &m).unwrap();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["to"], "+4917612345678");
        assert_eq!(
            json["text"], "Ihr Anmeldecode für Portal: 1\"}, \"x\": \"\\",
            "quotes and backslashes stay inside the string"
        );
        assert_eq!(json.as_object().unwrap().len(), 3, "{body}");
    }

    #[test]
    fn form_bodies_encode_every_value() {
        let g = gateway(BodyFormat::Form, "To={{ to }}&Body={{ text }}").unwrap();
        let mut m = message(Language::En, PhoneCodePurpose::Login, PhoneChannel::Sms);
        m.code = SecretString::new("1&x=2");
        let body = g.body(OutboxId::from_uuid(uuid::Uuid::nil()), &m).unwrap();
        assert_eq!(
            body,
            "To=%2B4917612345678&Body=Your+Portal+sign-in+code%3A+1%26x%3D2"
        );
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].1, "Your Portal sign-in code: 1&x=2");
    }

    #[test]
    fn a_template_that_does_not_compile_or_names_an_unknown_variable_is_refused_at_start() {
        for bad in ["{{ to ", "{{ phone }}", "{% if %}"] {
            let e = gateway(BodyFormat::Json, bad).unwrap_err();
            let GatewayError::Config(e) = e else {
                panic!("{e}")
            };
            assert_eq!(e.var, "PORTAL_SMS_BODY_TEMPLATE", "{bad}: {e}");
        }
    }
}
