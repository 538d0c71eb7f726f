//! Mail configuration from environment variables, for the composition root (the server binary):
//! one place that knows the variable names, their defaults, and which sender they select.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `SMTP_URL` | SMTP server (see [`SmtpConfig`]); when unset, mail goes to the development mailbox | unset |
//! | `PORTAL_MAIL_DIR` | directory of the development mailbox (used only without `SMTP_URL`) | `mail-outbox` |
//! | `PORTAL_PUBLIC_URL` | public base URL that links in mails start with | `http://localhost:8080` |
//! | `PORTAL_MAIL_FROM` | sender address (`From`, `Message-ID` domain) | `no-reply@portal.localhost` |
//! | `PORTAL_PRODUCT_NAME` | product name (sender name, header, some subjects) | `Portal` |
//! | `PORTAL_VENDOR_NAME` | who signs ("Ihr …-Team") | the product name |
//! | `PORTAL_SUPPORT_PHONE` | support phone in the footer | none |
//! | `PORTAL_SUPPORT_EMAIL` | support address in the footer | none |
//!
//! Empty values count as unset. Errors name the variable, never its value (`SMTP_URL` may hold
//! a password).

use crate::dev::MailDirectory;
use crate::sender::MailSender;
use crate::settings::{MailSettings, SettingsError};
use crate::smtp::{SmtpConfig, SmtpSender, SmtpSetupError, SmtpUrlError};
use portal_core::values::EmailAddress;
use std::path::PathBuf;
use std::sync::Arc;

/// Default public base URL.
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";
/// Default sender address.
pub const DEFAULT_MAIL_FROM: &str = "no-reply@portal.localhost";
/// Default development mailbox directory.
pub const DEFAULT_MAIL_DIR: &str = "mail-outbox";

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp(SmtpConfig),
    /// The development mailbox: `.eml` files in a directory and a log line per mail, with the
    /// code or link in it. For development only.
    Directory(PathBuf),
}

/// A variable was refused.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    /// `SMTP_URL` is not a usable SMTP URL.
    #[error("SMTP_URL: {0}")]
    SmtpUrl(#[from] SmtpUrlError),
    /// An address variable is not an e-mail address.
    #[error("{0} is not an e-mail address")]
    Address(&'static str),
    /// A branding or URL variable was refused.
    #[error("{0}: {1}")]
    Setting(&'static str, #[source] SettingsError),
    /// The SMTP transport could not be built.
    #[error(transparent)]
    SmtpSetup(#[from] SmtpSetupError),
    /// The mailbox directory could not be created.
    #[error("PORTAL_MAIL_DIR cannot be created: {0}")]
    MailDir(#[source] std::io::Error),
}

/// Branding, links and transport, as read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// What every mail shows.
    pub settings: MailSettings,
    /// Where mail goes.
    pub transport: MailTransport,
}

impl MailConfig {
    /// Reads the process environment (see the [module docs](crate::config)).
    ///
    /// # Errors
    /// See [`MailConfigError`].
    pub fn from_env() -> Result<Self, MailConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (for tests and other configuration sources).
    ///
    /// # Errors
    /// See [`MailConfigError`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, MailConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let address = |name: &'static str, default: &str| {
            EmailAddress::parse(&var(name).unwrap_or_else(|| default.to_owned()))
                .map_err(|_| MailConfigError::Address(name))
        };
        let setting = |name: &'static str| move |e| MailConfigError::Setting(name, e);
        let public_url = var("PORTAL_PUBLIC_URL").unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned());
        let mut settings =
            MailSettings::new(&public_url, address("PORTAL_MAIL_FROM", DEFAULT_MAIL_FROM)?)
                .map_err(setting("PORTAL_PUBLIC_URL"))?;
        if let Some(v) = var("PORTAL_PRODUCT_NAME") {
            settings = settings
                .with_product_name(&v)
                .map_err(setting("PORTAL_PRODUCT_NAME"))?;
        }
        if let Some(v) = var("PORTAL_VENDOR_NAME") {
            settings = settings
                .with_vendor_name(&v)
                .map_err(setting("PORTAL_VENDOR_NAME"))?;
        }
        if let Some(v) = var("PORTAL_SUPPORT_PHONE") {
            settings = settings
                .with_support_phone(&v)
                .map_err(setting("PORTAL_SUPPORT_PHONE"))?;
        }
        if var("PORTAL_SUPPORT_EMAIL").is_some() {
            settings = settings.with_support_email(address("PORTAL_SUPPORT_EMAIL", "")?);
        }
        let transport = match var("SMTP_URL") {
            Some(url) => MailTransport::Smtp(SmtpConfig::parse(&url)?),
            None => MailTransport::Directory(
                var("PORTAL_MAIL_DIR")
                    .unwrap_or_else(|| DEFAULT_MAIL_DIR.to_owned())
                    .into(),
            ),
        };
        Ok(Self {
            settings,
            transport,
        })
    }

    /// Builds the sender the transport names. Call inside a tokio runtime (the SMTP pool
    /// starts a task).
    ///
    /// # Errors
    /// The SMTP transport cannot be built, or the mailbox directory cannot be created.
    pub fn sender(&self) -> Result<Arc<dyn MailSender>, MailConfigError> {
        Ok(match &self.transport {
            MailTransport::Smtp(c) => Arc::new(SmtpSender::new(c)?),
            MailTransport::Directory(dir) => {
                tracing::warn!(
                    dir = %dir.display(),
                    "no SMTP_URL: mails are written to the development mailbox and their codes and links are logged (development only)"
                );
                Arc::new(MailDirectory::new(dir).map_err(MailConfigError::MailDir)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn without_smtp_url_mail_goes_to_the_development_mailbox() {
        let c = MailConfig::from_lookup(lookup(&[("SMTP_URL", " ")])).unwrap();
        assert_eq!(c.transport, MailTransport::Directory("mail-outbox".into()));
        assert_eq!(c.settings.public_base_url(), "http://localhost:8080");
        assert_eq!(c.settings.from().as_str(), DEFAULT_MAIL_FROM);
        assert_eq!(c.settings.product_name(), "Portal");
    }

    #[test]
    fn every_variable_is_read() {
        let c = MailConfig::from_lookup(lookup(&[
            ("SMTP_URL", "smtps://u:p@mail.example.com"),
            ("PORTAL_PUBLIC_URL", "https://portal.example.com/"),
            ("PORTAL_MAIL_FROM", "portal@example.com"),
            ("PORTAL_PRODUCT_NAME", "Kundenportal"),
            ("PORTAL_VENDOR_NAME", "Example"),
            ("PORTAL_SUPPORT_PHONE", "069 123"),
            ("PORTAL_SUPPORT_EMAIL", "support@example.com"),
        ]))
        .unwrap();
        assert!(matches!(c.transport, MailTransport::Smtp(ref s) if s.port() == 465));
        assert_eq!(c.settings.public_base_url(), "https://portal.example.com");
        assert_eq!(c.settings.team(), "Example");
        assert_eq!(c.settings.support_phone(), Some("069 123"));
        assert_eq!(c.settings.support_email(), Some("support@example.com"));
    }

    #[test]
    fn errors_name_the_variable_but_not_the_value() {
        let e = MailConfig::from_lookup(lookup(&[("SMTP_URL", "smtp://u:hunter2@x?tls=maybe")]))
            .unwrap_err();
        assert!(e.to_string().starts_with("SMTP_URL"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = MailConfig::from_lookup(lookup(&[("PORTAL_MAIL_FROM", "nope")])).unwrap_err();
        assert_eq!(e.to_string(), "PORTAL_MAIL_FROM is not an e-mail address");
        let e = MailConfig::from_lookup(lookup(&[("PORTAL_PUBLIC_URL", "ftp://x")])).unwrap_err();
        assert!(e.to_string().starts_with("PORTAL_PUBLIC_URL"), "{e}");
    }
}
