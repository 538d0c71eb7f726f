//! German (default) and English texts of the web UI: labels of statuses, roles and factors, the
//! messages of every API error code and of the value parsers, and dates.
//!
//! Texts are written at their use as `t(lang, "Deutsch", "English")`; the tables here are the
//! ones several pages share.

use crate::error::ErrorCode;
use chrono::{DateTime, Utc};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::mfa::MfaMethod;
use portal_core::password::PasswordError;
use portal_core::user::{Role, UserStatus};
use portal_core::values::{CustomerNumberError, EmailError, FreeTextError, Language, NameError};

/// The text in `lang`.
#[must_use]
pub(crate) const fn t(lang: Language, de: &'static str, en: &'static str) -> &'static str {
    match lang {
        Language::De => de,
        Language::En => en,
    }
}

/// "Aktiv", "Gesperrt", … as in the manual's user table.
pub(crate) const fn status(lang: Language, s: UserStatus) -> &'static str {
    match s {
        UserStatus::PendingVerification => t(lang, "Unbestätigt", "Unverified"),
        UserStatus::Invited => t(lang, "Eingeladen", "Invited"),
        UserStatus::PendingActivation => t(lang, "Wartet auf Freischaltung", "Awaiting activation"),
        UserStatus::Active => t(lang, "Aktiv", "Active"),
        UserStatus::Locked => t(lang, "Gesperrt", "Locked"),
    }
}

/// "Mitarbeiter", "Administrator", "Portal-Mitarbeiter".
pub(crate) const fn role(lang: Language, r: Role) -> &'static str {
    match r {
        Role::Employee => t(lang, "Mitarbeiter", "Employee"),
        Role::Administrator => t(lang, "Administrator", "Administrator"),
        Role::Operator => t(lang, "Portal-Mitarbeiter", "Portal staff"),
    }
}

/// Where an admin request stands.
pub(crate) const fn request_status(lang: Language, s: AdminRequestStatus) -> &'static str {
    match s {
        AdminRequestStatus::AwaitingConsent => t(
            lang,
            "Wartet auf Zustimmung eines Administrators",
            "Awaiting an administrator's consent",
        ),
        AdminRequestStatus::AwaitingApproval => t(lang, "Wartet auf Freigabe", "Awaiting approval"),
        AdminRequestStatus::Approved => t(lang, "Erteilt", "Approved"),
        AdminRequestStatus::Rejected => t(lang, "Abgelehnt", "Rejected"),
    }
}

/// A second factor's name.
pub(crate) const fn method(lang: Language, m: MfaMethod) -> &'static str {
    match m {
        MfaMethod::Totp => t(lang, "Authentifizierungs-App", "Authenticator app"),
        MfaMethod::Sms => t(lang, "Code per SMS", "Code by text message"),
        MfaMethod::Voice => t(lang, "Code per Anruf", "Code by phone call"),
        MfaMethod::RecoveryCode => t(lang, "Wiederherstellungscode", "Recovery code"),
    }
}

/// `22.02.2022` / `2022-02-22`.
pub(crate) fn date(lang: Language, at: DateTime<Utc>) -> String {
    match lang {
        Language::De => at.format("%d.%m.%Y").to_string(),
        Language::En => at.format("%Y-%m-%d").to_string(),
    }
}

/// `29.08.2023 09:10` / `2023-08-29 09:10` (UTC).
pub(crate) fn date_time(lang: Language, at: DateTime<Utc>) -> String {
    match lang {
        Language::De => at.format("%d.%m.%Y %H:%M").to_string(),
        Language::En => at.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// A password rule that was broken.
pub(crate) fn password(lang: Language, e: &PasswordError) -> String {
    match e {
        PasswordError::TooShort { min } => match lang {
            Language::De => format!("Das Passwort muss mindestens {min} Zeichen lang sein."),
            Language::En => format!("The password must have at least {min} characters."),
        },
        PasswordError::TooLong { max } => match lang {
            Language::De => format!("Das Passwort darf höchstens {max} Zeichen lang sein."),
            Language::En => format!("The password must have at most {max} characters."),
        },
        PasswordError::Blocklisted => t(
            lang,
            "Dieses Passwort ist zu verbreitet. Bitte wählen Sie ein anderes.",
            "This password is too common. Please choose another one.",
        )
        .to_owned(),
        PasswordError::ContainsPersonalData => t(
            lang,
            "Das Passwort darf weder Ihre E-Mail-Adresse noch Ihren Namen enthalten.",
            "The password must not contain your e-mail address or name.",
        )
        .to_owned(),
        PasswordError::ConfirmationMismatch => t(
            lang,
            "Die Passwörter stimmen nicht überein.",
            "The passwords do not match.",
        )
        .to_owned(),
    }
}

/// Why an e-mail address was refused.
pub(crate) const fn email(lang: Language, e: EmailError) -> &'static str {
    match e {
        EmailError::Empty => t(
            lang,
            "Bitte geben Sie Ihre E-Mail-Adresse ein.",
            "Please enter your e-mail address.",
        ),
        EmailError::TooLong => t(
            lang,
            "Die E-Mail-Adresse ist zu lang.",
            "The e-mail address is too long.",
        ),
        EmailError::InvalidCharacter | EmailError::Malformed => t(
            lang,
            "Bitte geben Sie eine gültige E-Mail-Adresse ein (name@example.com).",
            "Please enter a valid e-mail address (name@example.com).",
        ),
    }
}

/// Why a name was refused.
pub(crate) const fn name(lang: Language, e: NameError) -> &'static str {
    match e {
        NameError::Empty => t(lang, "Bitte ausfüllen.", "Please fill in."),
        NameError::TooLong => t(lang, "Der Name ist zu lang.", "The name is too long."),
        NameError::InvalidCharacter => t(
            lang,
            "Der Name enthält ein unzulässiges Zeichen.",
            "The name contains a character that is not allowed.",
        ),
    }
}

/// Why a customer number was refused.
pub(crate) const fn customer_number(lang: Language, e: CustomerNumberError) -> &'static str {
    match e {
        CustomerNumberError::Empty => t(
            lang,
            "Bitte geben Sie Ihre Kundennummer ein.",
            "Please enter your customer number.",
        ),
        CustomerNumberError::NotDigits | CustomerNumberError::WrongLength => t(
            lang,
            "Die Kundennummer besteht aus neun Ziffern (ohne das vorangestellte „D“).",
            "The customer number has nine digits (without the leading \"D\").",
        ),
    }
}

/// Why a free text was refused.
pub(crate) const fn free_text(lang: Language, e: FreeTextError) -> &'static str {
    match e {
        FreeTextError::Empty => t(
            lang,
            "Bitte geben Sie einen Text ein.",
            "Please enter a text.",
        ),
        FreeTextError::TooLong => t(
            lang,
            "Der Text darf höchstens 2000 Zeichen lang sein.",
            "The text must have at most 2000 characters.",
        ),
        FreeTextError::InvalidCharacter => t(
            lang,
            "Der Text enthält ein unzulässiges Zeichen.",
            "The text contains a character that is not allowed.",
        ),
    }
}

/// The message of an API error code, for pages. Every code has its own arm (no catch-all): a
/// new code does not compile until it has a text.
pub(crate) fn code(lang: Language, code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::MalformedJson
        | ErrorCode::UnknownField
        | ErrorCode::InvalidId => t(lang, "Die Anfrage ist ungültig.", "The request is invalid."),
        ErrorCode::InvalidCustomerNumber => customer_number(lang, CustomerNumberError::WrongLength),
        ErrorCode::PayloadTooLarge => {
            t(lang, "Die Eingabe ist zu groß.", "The input is too large.")
        }
        ErrorCode::UnsupportedMediaType => t(
            lang,
            "Dieses Formular kann so nicht gesendet werden.",
            "This form cannot be sent like this.",
        ),
        ErrorCode::MethodNotAllowed => t(
            lang,
            "Diese Aktion ist hier nicht möglich.",
            "This action is not possible here.",
        ),
        ErrorCode::NotFound | ErrorCode::CustomerNotFound => {
            t(lang, "Nicht gefunden.", "Not found.")
        }
        ErrorCode::CsrfFailed => t(
            lang,
            "Das Formular ist abgelaufen oder kam nicht von dieser Seite. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
            "The form has expired or did not come from this site. Please reload the page and try again.",
        ),
        ErrorCode::RateLimited => t(
            lang,
            "Zu viele Anfragen. Bitte warten Sie einen Moment.",
            "Too many requests. Please wait a moment.",
        ),
        ErrorCode::Unauthenticated => t(lang, "Bitte melden Sie sich an.", "Please log in."),
        ErrorCode::Forbidden => t(
            lang,
            "Dafür fehlen Ihnen die Rechte.",
            "You are not allowed to do this.",
        ),
        ErrorCode::Conflict => t(
            lang,
            "Gleichzeitige Änderung. Bitte versuchen Sie es noch einmal.",
            "Concurrent change. Please try again.",
        ),
        ErrorCode::Internal => t(
            lang,
            "Ein Fehler ist aufgetreten. Bitte versuchen Sie es später noch einmal.",
            "Something went wrong. Please try again later.",
        ),
        ErrorCode::Unavailable => t(
            lang,
            "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal.",
            "The service is unavailable right now. Please try again later.",
        ),
        ErrorCode::InvalidCredentials => t(
            lang,
            "E-Mail-Adresse oder Passwort ist falsch.",
            "Wrong e-mail address or password.",
        ),
        ErrorCode::Throttled => t(
            lang,
            "Zu viele Fehlversuche. Bitte versuchen Sie es später noch einmal.",
            "Too many failed attempts. Please try again later.",
        ),
        ErrorCode::NoPendingLogin => t(
            lang,
            "Die Anmeldung ist abgelaufen. Bitte melden Sie sich erneut an.",
            "The login has expired. Please log in again.",
        ),
        ErrorCode::MfaRequired => t(
            lang,
            "Bitte bestätigen Sie Ihre Identität mit Ihrem zweiten Faktor.",
            "Please confirm your identity with your second factor.",
        ),
        ErrorCode::InvalidTicket => t(
            lang,
            "Die Registrierung ist abgelaufen. Bitte registrieren Sie sich erneut.",
            "The registration has expired. Please register again.",
        ),
        ErrorCode::MalformedCode => t(
            lang,
            "Der Code hat nicht die richtige Form.",
            "The code does not have the right form.",
        ),
        ErrorCode::InvalidCode => t(lang, "Der Code ist falsch.", "The code is wrong."),
        ErrorCode::CodeExpired => t(
            lang,
            "Der Code ist abgelaufen. Bitte fordern Sie einen neuen an.",
            "The code has expired. Please ask for a new one.",
        ),
        ErrorCode::TooManyAttempts => t(
            lang,
            "Zu viele falsche Codes. Bitte fordern Sie einen neuen Code an.",
            "Too many wrong codes. Please ask for a new code.",
        ),
        ErrorCode::TooSoon => t(
            lang,
            "Bitte warten Sie etwas, bevor Sie einen neuen Code anfordern.",
            "Please wait a little before asking for a new code.",
        ),
        ErrorCode::TooManyCodes => t(
            lang,
            "Für diese Registrierung können keine weiteren Codes gesendet werden. Bitte registrieren Sie sich erneut.",
            "No more codes can be sent for this registration. Please register again.",
        ),
        ErrorCode::InvitationInvalid => t(
            lang,
            "Die Einladung ist nicht mehr gültig.",
            "The invitation is no longer valid.",
        ),
        ErrorCode::AlreadyRegistered => t(
            lang,
            "Diese Adresse ist bereits registriert. Bitte melden Sie sich an oder setzen Sie Ihr Passwort zurück.",
            "This address is registered already. Please log in or reset your password.",
        ),
        ErrorCode::InvitationExpired => t(
            lang,
            "Der Einladungslink ist abgelaufen. Bitte bitten Sie Ihren Administrator um eine neue Einladung.",
            "The invitation link has expired. Please ask your administrator for a new invitation.",
        ),
        ErrorCode::InvitationUsed => t(
            lang,
            "Der Einladungslink wurde bereits verwendet. Bitte melden Sie sich an.",
            "The invitation link was used already. Please log in.",
        ),
        ErrorCode::InvalidLink => t(
            lang,
            "Der Link ist ungültig. Bitte fordern Sie einen neuen an.",
            "The link is invalid. Please ask for a new one.",
        ),
        ErrorCode::LinkExpired => t(
            lang,
            "Der Link ist abgelaufen. Bitte fordern Sie einen neuen an.",
            "The link has expired. Please ask for a new one.",
        ),
        ErrorCode::LinkUsed => t(
            lang,
            "Der Link wurde bereits verwendet.",
            "The link was used already.",
        ),
        ErrorCode::PasswordPolicy => t(
            lang,
            "Das Passwort erfüllt die Anforderungen nicht.",
            "The password does not meet the requirements.",
        ),
        ErrorCode::WrongPassword => t(lang, "Das Passwort ist falsch.", "The password is wrong."),
        ErrorCode::ReauthRequired => t(
            lang,
            "Bitte bestätigen Sie zuerst erneut Ihr Passwort.",
            "Please confirm your password again first.",
        ),
        ErrorCode::EmailUnavailable => t(
            lang,
            "Diese E-Mail-Adresse kann nicht verwendet werden.",
            "This e-mail address cannot be used.",
        ),
        ErrorCode::SameEmail => t(
            lang,
            "Das ist Ihre aktuelle E-Mail-Adresse.",
            "This is your current e-mail address.",
        ),
        ErrorCode::NoSuchFactor => t(
            lang,
            "Dieser zweite Faktor ist nicht eingerichtet (oder es wurde kein Code gesendet).",
            "This second factor is not set up (or no code was sent).",
        ),
        ErrorCode::MfaAlreadyEnabled => t(
            lang,
            "Eine Authentifizierungs-App ist bereits eingerichtet. Bitte entfernen Sie sie zuerst.",
            "An authenticator app is set up already. Please remove it first.",
        ),
        ErrorCode::MfaNotEnabled => t(
            lang,
            "Es ist kein zweiter Faktor eingerichtet.",
            "No second factor is set up.",
        ),
        ErrorCode::NoSetupInProgress => t(
            lang,
            "Die Einrichtung ist abgelaufen. Bitte beginnen Sie erneut.",
            "The setup has expired. Please start again.",
        ),
        ErrorCode::FactorUnavailable => t(
            lang,
            "Dieses Verfahren ist auf diesem Server nicht verfügbar.",
            "This method is not available on this server.",
        ),
        ErrorCode::SendFailed => t(
            lang,
            "Der Code konnte nicht gesendet werden. Bitte versuchen Sie es noch einmal.",
            "The code could not be sent. Please try again.",
        ),
        ErrorCode::SamePhone => t(
            lang,
            "Die Telefonnummer für die Wiederherstellung muss sich von der Nummer für Codes unterscheiden.",
            "The recovery phone must differ from the phone used for codes.",
        ),
        ErrorCode::UnknownAffiliation => t(
            lang,
            "Bitte wählen Sie eine der angebotenen Zugehörigkeiten aus.",
            "Please choose one of the offered affiliations.",
        ),
        ErrorCode::AffiliationRequired => t(
            lang,
            "Bitte wählen Sie zuerst Ihre Zugehörigkeit aus.",
            "Please choose your affiliation first.",
        ),
        ErrorCode::AffiliationMismatch => t(
            lang,
            "Diese Kundennummer gehört nicht zu Ihrer gewählten Zugehörigkeit.",
            "This customer number does not belong to your chosen affiliation.",
        ),
        ErrorCode::AlreadyLinked => t(
            lang,
            "Ihr Konto ist bereits mit einem Kunden verknüpft.",
            "Your account is linked to a customer already.",
        ),
        ErrorCode::InvalidLegacyCredentials => t(
            lang,
            "Benutzername oder Passwort des bisherigen Zugangs ist falsch.",
            "Wrong username or password of the old account.",
        ),
        ErrorCode::LegacyAlreadyLinked => t(
            lang,
            "Dieser bisherige Zugang wurde bereits verknüpft.",
            "This old account was linked already.",
        ),
        ErrorCode::NotEligible => t(
            lang,
            "Nur aktive Benutzer eines Kunden können Admin-Rechte beantragen.",
            "Only active users of a customer can ask for admin rights.",
        ),
        ErrorCode::AlreadyAdmin => t(
            lang,
            "Sie sind bereits Administrator.",
            "You are an administrator already.",
        ),
        ErrorCode::AlreadyRequested => t(
            lang,
            "Es gibt bereits einen offenen Antrag.",
            "There is an open request already.",
        ),
        ErrorCode::WrongState => t(
            lang,
            "Das ist im aktuellen Zustand nicht möglich.",
            "This is not possible in the current state.",
        ),
        ErrorCode::RequesterIneligible => t(
            lang,
            "Der Antragsteller kann nicht mehr Administrator werden.",
            "The requester can no longer become an administrator.",
        ),
        ErrorCode::NotLinked => t(
            lang,
            "Ihr Konto ist noch mit keinem Kunden verknüpft.",
            "Your account is not linked to a customer yet.",
        ),
        ErrorCode::NoAdmin => t(
            lang,
            "Ihr Unternehmen hat noch keinen Administrator.",
            "Your company has no administrator yet.",
        ),
        ErrorCode::NotGrantable => t(
            lang,
            "Diese Berechtigungen können nicht vergeben werden.",
            "These permissions cannot be granted.",
        ),
        ErrorCode::UnknownGroup => t(lang, "Unbekannter Bereich.", "Unknown area."),
        ErrorCode::LastAdmin => t(
            lang,
            "Das Unternehmen hätte dann keinen Administrator mehr.",
            "The company would be left without an administrator.",
        ),
        ErrorCode::AlreadyMember => t(
            lang,
            "Diese Adresse gehört bereits zu einem Benutzer Ihres Unternehmens.",
            "This address belongs to a user of your company already.",
        ),
        ErrorCode::InvalidCursor | ErrorCode::InvalidPageSize | ErrorCode::PageOutOfRange => t(
            lang,
            "Diese Seite gibt es nicht. Bitte beginnen Sie auf der ersten Seite.",
            "There is no such page. Please start on the first page.",
        ),
        ErrorCode::ChainBroken => t(lang, "Das Protokoll ist beschädigt.", "The log is damaged."),
        ErrorCode::NumberTaken => t(
            lang,
            "Es gibt bereits einen Kunden mit dieser Nummer.",
            "A customer with this number exists already.",
        ),
        ErrorCode::UnknownPermissions => {
            t(lang, "Unbekannte Berechtigungen.", "Unknown permissions.")
        }
        ErrorCode::InvalidRow => t(lang, "Ungültige Zeile.", "Invalid row."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_code_has_a_message_in_both_languages() {
        for c in ErrorCode::ALL {
            for lang in [Language::De, Language::En] {
                assert!(!code(lang, *c).is_empty(), "{c} has no message");
            }
        }
    }

    #[test]
    fn dates_follow_the_manual_in_german() {
        let at = DateTime::parse_from_rfc3339("2023-08-29T09:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(date(Language::De, at), "29.08.2023");
        assert_eq!(date_time(Language::De, at), "29.08.2023 09:10");
        assert_eq!(date_time(Language::En, at), "2023-08-29 09:10");
    }
}
