//! Value objects that are valid by construction: the field is private and every way in checks
//! the value; serde goes through `TryFrom<String>` (`parse`), except for displayed texts (below).
//! Error messages name the broken rule and never echo the input back.
//!
//! Displayed texts ([`PersonName`], [`CompanyName`], [`FreeText`]) have two doors: `parse` for
//! input, which also refuses text-direction controls and invisible characters
//! ([`is_hidden_formatting`]), and `from_stored` for rows written before that rule existed, which
//! keeps the older rules only; serde (stored JSON) goes through `from_stored`.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_value {
    ($name:ident, $err:ty) => {
        impl TryFrom<String> for $name {
            type Error = $err;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// EmailAddress
// ---------------------------------------------------------------------------------------------

/// An e-mail address, normalised to lower case. At most 254 characters, one `@`, a local part of
/// at most 64 characters from the RFC 5321 "atext" set with single dots, and a domain of at least
/// two labels (letters, digits, hyphens; internationalised domains in their `xn--` form).
/// Whitespace and control characters (CR/LF header injection) are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a text is not an [`EmailAddress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing but whitespace was given.
    #[error("email address is empty")]
    Empty,
    /// More than 254 characters, or a local part over 64.
    #[error("email address is too long")]
    TooLong,
    /// Whitespace, control characters or characters outside the allowed set.
    #[error("email address contains a character that is not allowed")]
    InvalidCharacter,
    /// Not of the form `local@domain.tld`.
    #[error("email address is not of the form name@example.com")]
    Malformed,
}

impl EmailAddress {
    /// Longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses and normalises an address (surrounding whitespace removed, lower-cased).
    ///
    /// # Errors
    /// Returns which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::InvalidCharacter);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Malformed)?;
        if local.is_empty() || domain.is_empty() {
            return Err(EmailError::Malformed);
        }
        if local.len() > 64 {
            return Err(EmailError::TooLong);
        }
        const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
        {
            return Err(EmailError::InvalidCharacter);
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(EmailError::Malformed);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(EmailError::Malformed);
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(EmailError::Malformed);
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(EmailError::InvalidCharacter);
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(EmailError::Malformed);
            }
        }
        let tld = labels[labels.len() - 1];
        if tld.chars().all(|c| c.is_ascii_digit()) {
            return Err(EmailError::Malformed);
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// The part after the `@`.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(EmailAddress, EmailError);

// ---------------------------------------------------------------------------------------------
// Hidden formatting
// ---------------------------------------------------------------------------------------------

/// Whether `c` is a character that displayed text may not hold: the bidirectional embedding,
/// override and isolate controls (U+202A–U+202E, U+2066–U+2069), which can make `A\u{202E}B` show
/// as a different name or reverse what follows it on a page or in a mail, and the invisible
/// characters U+200B (zero-width space), U+2060 (word joiner) and U+FEFF (zero-width no-break
/// space), which make names that look empty or look like another. The zero-width non-joiner and
/// joiner (U+200C, U+200D) stay allowed: Persian, Arabic and Indic names need them.
#[must_use]
pub const fn is_hidden_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// The older rules of a name (before [`is_hidden_formatting`]): trimmed, not empty, at most `max`
/// characters, no control characters.
fn stored_name(raw: &str, max: usize) -> Result<&str, NameError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.chars().count() > max {
        return Err(NameError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::InvalidCharacter);
    }
    Ok(s)
}

/// [`stored_name`] and no hidden formatting: the rules of input.
fn input_name(raw: &str, max: usize) -> Result<&str, NameError> {
    let s = stored_name(raw, max)?;
    if s.chars().any(is_hidden_formatting) {
        return Err(NameError::HiddenCharacter);
    }
    Ok(s)
}

/// serde for displayed texts: deserialising is loading stored data, so it goes through
/// `from_stored`; serialising writes the text.
macro_rules! stored_serde {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::from_stored(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// PersonName
// ---------------------------------------------------------------------------------------------

/// A first or last name: 1–100 characters after trimming, no control characters, no
/// text-direction controls or invisible characters ([`is_hidden_formatting`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct PersonName(String);

/// Why a text is not a [`PersonName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing but whitespace.
    #[error("name is empty")]
    Empty,
    /// More than 100 characters.
    #[error("name is longer than 100 characters")]
    TooLong,
    /// Contains control characters (line breaks, tabs, …).
    #[error("name contains a control character")]
    InvalidCharacter,
    /// Contains a text-direction control or an invisible character ([`is_hidden_formatting`]).
    #[error("name contains an invisible or text-direction character")]
    HiddenCharacter,
}

impl PersonName {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Parses a name typed by someone; surrounding whitespace is removed.
    ///
    /// # Errors
    /// Returns which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        input_name(raw, Self::MAX_CHARS).map(|s| Self(s.to_owned()))
    }

    /// Rebuilds a stored name: the rules before [`is_hidden_formatting`] only, so that names
    /// stored earlier still load. Not for input.
    ///
    /// # Errors
    /// Returns which of the older rules the text breaks.
    pub fn from_stored(raw: &str) -> Result<Self, NameError> {
        stored_name(raw, Self::MAX_CHARS).map(|s| Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(PersonName, NameError);
stored_serde!(PersonName);

// ---------------------------------------------------------------------------------------------
// CompanyName
// ---------------------------------------------------------------------------------------------

/// A customer's company name: 1–200 characters after trimming, no control characters, no
/// text-direction controls or invisible characters ([`is_hidden_formatting`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct CompanyName(String);

impl CompanyName {
    /// Longest company name accepted, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a company name typed by someone.
    ///
    /// # Errors
    /// Returns which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        input_name(raw, Self::MAX_CHARS).map(|s| Self(s.to_owned()))
    }

    /// Rebuilds a stored company name under the older rules (see [`PersonName::from_stored`]).
    ///
    /// # Errors
    /// Returns which of the older rules the text breaks.
    pub fn from_stored(raw: &str) -> Result<Self, NameError> {
        stored_name(raw, Self::MAX_CHARS).map(|s| Self(s.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CompanyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(CompanyName, NameError);
stored_serde!(CompanyName);

// ---------------------------------------------------------------------------------------------
// CustomerNumber
// ---------------------------------------------------------------------------------------------

/// A customer number: exactly nine digits. Accepts the printed form with a leading `D` (`D123456789`,
/// `d 123456789`) and surrounding spaces, as the manual tells users to copy it from an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerNumber(String);

/// Why a text is not a [`CustomerNumber`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CustomerNumberError {
    /// Nothing but whitespace.
    #[error("customer number is empty")]
    Empty,
    /// Characters other than digits (after an optional leading `D`).
    #[error("customer number may contain only digits after an optional leading D")]
    NotDigits,
    /// Not exactly nine digits.
    #[error("customer number must have exactly nine digits")]
    WrongLength,
}

impl CustomerNumber {
    /// Parses a customer number.
    ///
    /// # Errors
    /// Returns which rule the input breaks; the input itself is not echoed back.
    pub fn parse(raw: &str) -> Result<Self, CustomerNumberError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(CustomerNumberError::Empty);
        }
        let digits = match s.strip_prefix(['D', 'd']) {
            Some(rest) => rest.trim_start_matches(' '),
            None => s,
        };
        if digits.is_empty() {
            return Err(CustomerNumberError::WrongLength);
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(CustomerNumberError::NotDigits);
        }
        if digits.len() != 9 {
            return Err(CustomerNumberError::WrongLength);
        }
        Ok(Self(digits.to_owned()))
    }

    /// The nine digits.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form printed on letters and invoices: `D` followed by the nine digits.
    #[must_use]
    pub fn printed(&self) -> String {
        format!("D{}", self.0)
    }
}

impl fmt::Display for CustomerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(CustomerNumber, CustomerNumberError);

// ---------------------------------------------------------------------------------------------
// Language
// ---------------------------------------------------------------------------------------------

/// The language a user reads mails and pages in. German is the default, as in the manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Deutsch.
    #[default]
    De,
    /// English.
    En,
}

/// The language tag is not one Portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported language (use \"de\" or \"en\")")]
pub struct LanguageError;

impl Language {
    /// Parses `de`, `en` or a regional tag such as `de-AT`/`en_GB`, case-insensitively.
    ///
    /// # Errors
    /// Any other tag.
    pub fn parse(raw: &str) -> Result<Self, LanguageError> {
        let s = raw.trim().to_ascii_lowercase();
        let primary = s.split(['-', '_']).next().unwrap_or("");
        match primary {
            "de" => Ok(Self::De),
            "en" => Ok(Self::En),
            _ => Err(LanguageError),
        }
    }

    /// `de` or `en`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

// ---------------------------------------------------------------------------------------------
// FreeText
// ---------------------------------------------------------------------------------------------

/// A short free text written by a user (message to admins, lock reason, admin request note):
/// 1–2000 characters after trimming, no control characters except line breaks and tabs, no
/// text-direction controls or invisible characters ([`is_hidden_formatting`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct FreeText(String);

/// Why a text is not a [`FreeText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FreeTextError {
    /// Nothing but whitespace.
    #[error("text is empty")]
    Empty,
    /// More than 2000 characters.
    #[error("text is longer than 2000 characters")]
    TooLong,
    /// Control characters other than line breaks and tabs.
    #[error("text contains a control character")]
    InvalidCharacter,
    /// A text-direction control or an invisible character ([`is_hidden_formatting`]).
    #[error("text contains an invisible or text-direction character")]
    HiddenCharacter,
}

impl FreeText {
    /// Longest text accepted, in characters.
    pub const MAX_CHARS: usize = 2000;

    /// Parses a free text typed by someone.
    ///
    /// # Errors
    /// Returns which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, FreeTextError> {
        let text = Self::from_stored(raw)?;
        if text.0.chars().any(is_hidden_formatting) {
            return Err(FreeTextError::HiddenCharacter);
        }
        Ok(text)
    }

    /// Rebuilds a stored text under the older rules (see [`PersonName::from_stored`]).
    ///
    /// # Errors
    /// Returns which of the older rules the text breaks.
    pub fn from_stored(raw: &str) -> Result<Self, FreeTextError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FreeTextError::Empty);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(FreeTextError::TooLong);
        }
        if s.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err(FreeTextError::InvalidCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_value!(FreeText, FreeTextError);
stored_serde!(FreeText);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let e = EmailAddress::parse("  Anna.Schmidt@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "anna.schmidt@example.com");
        assert_eq!(e.local_part(), "anna.schmidt");
        assert_eq!(e.domain(), "example.com");
    }

    #[test]
    fn email_rejects_header_injection() {
        assert_eq!(
            EmailAddress::parse("a@x.de\r\nBcc: evil@y.de"),
            Err(EmailError::InvalidCharacter)
        );
        assert_eq!(
            EmailAddress::parse("a b@x.de"),
            Err(EmailError::InvalidCharacter)
        );
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        for bad in [
            "plain",
            "@x.de",
            "a@",
            "a@localhost",
            "a@x..de",
            "a@-x.de",
            ".a@x.de",
            "a..b@x.de",
            "a@x.123",
            "a@b@c.de",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} was accepted");
        }
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
    }

    #[test]
    fn email_length_limits() {
        let local = "a".repeat(65);
        assert_eq!(
            EmailAddress::parse(&format!("{local}@x.de")),
            Err(EmailError::TooLong)
        );
        let long = format!("{}@{}.de", "a".repeat(60), "b".repeat(200));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
        assert!(EmailAddress::parse(&format!("{}@x.de", "a".repeat(64))).is_ok());
    }

    #[test]
    fn email_accepts_plus_and_punycode() {
        assert!(EmailAddress::parse("anna+portal@xn--mller-kva.de").is_ok());
    }

    #[test]
    fn email_serde_goes_through_parse() {
        let ok: EmailAddress = serde_json::from_str("\"A@B.de\"").unwrap();
        assert_eq!(ok.as_str(), "a@b.de");
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
    }

    #[test]
    fn customer_number_accepts_printed_forms() {
        for ok in [
            "123456789",
            "D123456789",
            "d123456789",
            "d 123456789",
            "  D123456789  ",
        ] {
            let n = CustomerNumber::parse(ok).unwrap();
            assert_eq!(n.as_str(), "123456789", "{ok}");
            assert_eq!(n.printed(), "D123456789");
        }
    }

    #[test]
    fn customer_number_rejects_other_noise() {
        assert_eq!(
            CustomerNumber::parse("12345678"),
            Err(CustomerNumberError::WrongLength)
        );
        assert_eq!(
            CustomerNumber::parse("1234567890"),
            Err(CustomerNumberError::WrongLength)
        );
        assert_eq!(
            CustomerNumber::parse("123 456 789"),
            Err(CustomerNumberError::NotDigits)
        );
        assert_eq!(
            CustomerNumber::parse("X123456789"),
            Err(CustomerNumberError::NotDigits)
        );
        assert_eq!(
            CustomerNumber::parse("DD123456789"),
            Err(CustomerNumberError::NotDigits)
        );
        assert_eq!(
            CustomerNumber::parse("12345678٣"),
            Err(CustomerNumberError::NotDigits)
        );
        assert_eq!(CustomerNumber::parse(""), Err(CustomerNumberError::Empty));
        assert_eq!(
            CustomerNumber::parse("D"),
            Err(CustomerNumberError::WrongLength)
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Anna ").unwrap().as_str(), "Anna");
        assert_eq!(PersonName::parse(" "), Err(NameError::Empty));
        assert_eq!(PersonName::parse(&"x".repeat(101)), Err(NameError::TooLong));
        assert!(PersonName::parse(&"ä".repeat(100)).is_ok());
        assert_eq!(
            PersonName::parse("An\nna"),
            Err(NameError::InvalidCharacter)
        );
    }

    #[test]
    fn displayed_text_refuses_direction_controls_and_invisible_characters() {
        for bad in [
            "A\u{202E}B",
            "\u{202A}Anna",
            "Anna\u{202C}",
            "\u{2066}Anna\u{2069}",
            "\u{2067}x",
            "\u{2068}x",
            "\u{200B}",
            "An\u{200B}na",
            "An\u{2060}na",
            "\u{FEFF}Anna",
        ] {
            assert_eq!(
                PersonName::parse(bad),
                Err(NameError::HiddenCharacter),
                "{bad:?}"
            );
            assert_eq!(
                CompanyName::parse(bad),
                Err(NameError::HiddenCharacter),
                "{bad:?}"
            );
            assert_eq!(
                FreeText::parse(bad),
                Err(FreeTextError::HiddenCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn zero_width_joiners_of_real_names_are_kept() {
        // The Persian name Mahlagha, مه‌لقا, is written with a ZWNJ after the ه; Devanagari
        // writes some conjuncts with a ZWJ.
        let mahlagha = "مه\u{200C}لقا";
        assert_eq!(PersonName::parse(mahlagha).unwrap().as_str(), mahlagha);
        let devanagari = "क्\u{200D}ष";
        assert_eq!(PersonName::parse(devanagari).unwrap().as_str(), devanagari);
        assert!(CompanyName::parse("شرکت\u{200C}ها").is_ok());
        assert!(FreeText::parse("سلام\u{200C}ها").is_ok());
    }

    #[test]
    fn stored_texts_with_hidden_formatting_still_load() {
        let old = "A\u{202E}B";
        assert_eq!(PersonName::from_stored(old).unwrap().as_str(), old);
        assert_eq!(CompanyName::from_stored(old).unwrap().as_str(), old);
        assert_eq!(FreeText::from_stored(old).unwrap().as_str(), old);
        let json = serde_json::to_string(old).unwrap();
        let name: PersonName = serde_json::from_str(&json).unwrap();
        assert_eq!(name.as_str(), old, "stored JSON goes through from_stored");
        assert_eq!(
            PersonName::from_stored("An\nna"),
            Err(NameError::InvalidCharacter),
            "the older rules still hold"
        );
        assert!(
            PersonName::try_from(old.to_owned()).is_err(),
            "TryFrom is input"
        );
    }

    #[test]
    fn language_parses_regional_tags() {
        assert_eq!(Language::parse("de-AT"), Ok(Language::De));
        assert_eq!(Language::parse("EN_gb"), Ok(Language::En));
        assert_eq!(Language::parse("fr"), Err(LanguageError));
        assert_eq!(Language::default(), Language::De);
    }

    #[test]
    fn free_text_keeps_line_breaks_but_not_other_controls() {
        assert!(FreeText::parse("Hallo,\nbitte freischalten.").is_ok());
        assert_eq!(
            FreeText::parse("a\u{0}b"),
            Err(FreeTextError::InvalidCharacter)
        );
        assert_eq!(
            FreeText::parse(&"x".repeat(2001)),
            Err(FreeTextError::TooLong)
        );
    }
}
