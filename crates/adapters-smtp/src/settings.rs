//! What every mail shows that is not about its recipient: the public base URL its links start
//! with, the sender address, the product and vendor name and the support contacts of the footer.
//!
//! All of it comes from configuration, never from a request: a link in a mail is built from
//! [`MailSettings::public_base_url`] and nothing else, so a forged `Host` header cannot turn a
//! password-reset link into one that points elsewhere. Every text is checked here once: no
//! control characters (a CR or LF in a header would let a value add headers of its own), no
//! empty values, bounded lengths.

use portal_core::values::EmailAddress;

/// Why a mail setting was refused. The refused value is not echoed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The public base URL is not an absolute `http`/`https` URL without query, fragment and
    /// credentials.
    #[error(
        "the public base URL must be an absolute http(s) URL without query, fragment or credentials"
    )]
    BaseUrl,
    /// A text setting is empty, too long or contains control characters (CR, LF, …).
    #[error("mail setting `{0}` must be 1–100 characters without control characters")]
    Text(&'static str),
}

/// Longest accepted product name, vendor name or phone number, in characters.
pub const MAX_TEXT_CHARS: usize = 100;

/// Branding, links and footer of every mail. Valid by construction: see [`MailSettings::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    public_base_url: String,
    from: EmailAddress,
    product_name: String,
    vendor_name: Option<String>,
    support_phone: Option<String>,
    support_email: Option<EmailAddress>,
}

/// The product name used until [`MailSettings::with_product_name`] says otherwise.
pub const DEFAULT_PRODUCT_NAME: &str = "Portal";

impl MailSettings {
    /// Settings with the public base URL the portal is reached at (e.g.
    /// `https://portal.example.com` or `https://example.com/portal`; a trailing `/` is dropped)
    /// and the sender address (`From`; its domain also names the `Message-ID`s). The product name
    /// is [`DEFAULT_PRODUCT_NAME`]; vendor and support contacts are unset.
    ///
    /// # Errors
    /// [`SettingsError::BaseUrl`] unless the URL is absolute `http`/`https` with a host and has no
    /// query, fragment or user info.
    pub fn new(public_base_url: &str, from: EmailAddress) -> Result<Self, SettingsError> {
        let url = url::Url::parse(public_base_url.trim()).map_err(|_| SettingsError::BaseUrl)?;
        let acceptable = matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none();
        if !acceptable {
            return Err(SettingsError::BaseUrl);
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            public_base_url: base,
            from,
            product_name: DEFAULT_PRODUCT_NAME.to_owned(),
            vendor_name: None,
            support_phone: None,
            support_email: None,
        })
    }

    /// The product name: the sender's display name, the header of every mail, and part of some
    /// subjects ("Einladung zum Portal").
    ///
    /// # Errors
    /// [`SettingsError::Text`] for an empty, over-long or multi-line value.
    pub fn with_product_name(mut self, name: &str) -> Result<Self, SettingsError> {
        self.product_name = checked_text("product_name", name)?;
        Ok(self)
    }

    /// The vendor whose team signs the mails ("Ihr Example-Team"); the product name when unset.
    ///
    /// # Errors
    /// [`SettingsError::Text`] for an empty, over-long or multi-line value.
    pub fn with_vendor_name(mut self, name: &str) -> Result<Self, SettingsError> {
        self.vendor_name = Some(checked_text("vendor_name", name)?);
        Ok(self)
    }

    /// The support phone number of the footer ("Bei Fragen stehen wir Ihnen unter der
    /// Telefon-Nr. … gerne zur Verfügung").
    ///
    /// # Errors
    /// [`SettingsError::Text`] for an empty, over-long or multi-line value.
    pub fn with_support_phone(mut self, phone: &str) -> Result<Self, SettingsError> {
        self.support_phone = Some(checked_text("support_phone", phone)?);
        Ok(self)
    }

    /// The support address of the footer.
    #[must_use]
    pub fn with_support_email(mut self, email: EmailAddress) -> Self {
        self.support_email = Some(email);
        self
    }

    /// The public base URL, without a trailing `/`.
    #[must_use]
    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }

    /// The sender address.
    #[must_use]
    pub fn from(&self) -> &EmailAddress {
        &self.from
    }

    /// The product name.
    #[must_use]
    pub fn product_name(&self) -> &str {
        &self.product_name
    }

    /// Who signs the mails: the vendor name, else the product name.
    #[must_use]
    pub fn team(&self) -> &str {
        self.vendor_name.as_deref().unwrap_or(&self.product_name)
    }

    /// The support phone number, if configured.
    #[must_use]
    pub fn support_phone(&self) -> Option<&str> {
        self.support_phone.as_deref()
    }

    /// The support address, if configured.
    #[must_use]
    pub fn support_email(&self) -> Option<&str> {
        self.support_email.as_ref().map(EmailAddress::as_str)
    }

    /// The domain of `Message-ID`s: the sender address's domain.
    #[must_use]
    pub fn message_id_domain(&self) -> &str {
        self.from.domain()
    }
}

fn checked_text(name: &'static str, raw: &str) -> Result<String, SettingsError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > MAX_TEXT_CHARS || s.chars().any(char::is_control) {
        return Err(SettingsError::Text(name));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> EmailAddress {
        EmailAddress::parse("do-not-reply@portal.example").unwrap()
    }

    #[test]
    fn base_url_loses_its_trailing_slash_and_keeps_its_path() {
        let s = MailSettings::new("https://example.com/portal/", from()).unwrap();
        assert_eq!(s.public_base_url(), "https://example.com/portal");
        let s = MailSettings::new("http://localhost:8080", from()).unwrap();
        assert_eq!(s.public_base_url(), "http://localhost:8080");
    }

    #[test]
    fn base_urls_that_could_mislead_a_link_are_refused() {
        for bad in [
            "portal.example.com",
            "ftp://example.com",
            "https://example.com/?next=evil",
            "https://example.com/#x",
            "https://user:pw@example.com",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(
                MailSettings::new(bad, from()),
                Err(SettingsError::BaseUrl),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn header_injection_through_settings_is_refused() {
        let s = MailSettings::new("https://example.com", from()).unwrap();
        assert_eq!(
            s.clone()
                .with_product_name("Portal\r\nBcc: victim@example.com"),
            Err(SettingsError::Text("product_name"))
        );
        assert_eq!(
            s.clone().with_vendor_name("A\nB"),
            Err(SettingsError::Text("vendor_name"))
        );
        assert_eq!(
            s.clone().with_support_phone("  "),
            Err(SettingsError::Text("support_phone"))
        );
        assert!(s.with_product_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn the_team_is_the_vendor_or_else_the_product() {
        let s = MailSettings::new("https://example.com", from()).unwrap();
        assert_eq!(s.team(), "Portal");
        assert_eq!(s.message_id_domain(), "portal.example");
        let s = s.with_vendor_name(" Example ").unwrap();
        assert_eq!(s.team(), "Example");
    }
}
