//! The texts of the web UI, German (default) and English, and the tables several pages share:
//! labels of statuses, roles and factors, the messages of every API error code and of the value
//! parsers, and dates.
//!
//! **Texts live in files, one per language**: `locales/de.ftl` and `locales/en.ftl` in [Project
//! Fluent](https://projectfluent.org/)'s syntax, as the mail templates live in
//! `adapters-smtp/templates/{de,en}`. Code names a message by its key (`login-title`,
//! `lock-applies-at-once`); values are Fluent arguments (`{ $min }`), never concatenated text.
//! A third language is a new `.ftl` file (with its `language-name`), its line in [`SOURCES`] and
//! its [`Language`] variant in the core; the language switch and the language choices list
//! [`SOURCES`]. Dates ([`date`], [`date_time`]) follow the language too.
//!
//! The crate is `fluent-bundle` (the reference implementation of Fluent for Rust) used directly
//! rather than `fluent-templates`: the files are compiled into the binary with `include_str!`,
//! parsed once on first use, and a lookup of a message without arguments borrows its text from
//! the bundle (`Cow::Borrowed`): no allocation, no locale negotiation, no file system. Unicode
//! isolation marks around arguments are off (the pages are left-to-right HTML; the marks would
//! only show up in copied text).
//!
//! The tests check that both files hold the same keys, that every key in them is used by the
//! code, and that every key the code uses exists; a missing key is a debug assertion at run time
//! and the key itself in release builds.

use crate::error::ErrorCode;
use chrono::{DateTime, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::mfa::MfaMethod;
use portal_core::password::PasswordError;
use portal_core::user::{Role, UserStatus};
use portal_core::values::{CustomerNumberError, EmailError, FreeTextError, Language, NameError};
use std::borrow::Cow;
use std::sync::LazyLock;

/// A text in the page language: borrowed from the bundle unless it has arguments.
pub(crate) type Text = Cow<'static, str>;

/// The message files, compiled in: the language and its Fluent source.
pub(crate) const SOURCES: [(Language, &str); 2] = [
    (Language::De, include_str!("../../locales/de.ftl")),
    (Language::En, include_str!("../../locales/en.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

static BUNDLES: LazyLock<Vec<(Language, Bundle)>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(lang, source)| {
            let id = lang
                .code()
                .parse()
                .expect("a language code is a language identifier");
            let mut bundle = Bundle::new_concurrent(vec![id]);
            bundle.set_use_isolating(false);
            // The files are part of the binary and checked by the tests: an error is a bug.
            let resource = FluentResource::try_new((*source).to_owned())
                .unwrap_or_else(|(_, errors)| panic!("{} messages: {errors:?}", lang.code()));
            bundle
                .add_resource(resource)
                .unwrap_or_else(|errors| panic!("{} messages: {errors:?}", lang.code()));
            (*lang, bundle)
        })
        .collect()
});

/// The languages of the UI, in the order of [`SOURCES`].
pub(crate) fn languages() -> impl Iterator<Item = Language> {
    SOURCES.iter().map(|(lang, _)| *lang)
}

/// A language's name in itself ("Deutsch", "English"), for language choices.
pub(crate) fn language_name(lang: Language) -> Text {
    text(lang, "language-name")
}

fn bundle(lang: Language) -> &'static Bundle {
    let all = &*BUNDLES;
    all.iter()
        .find(|(l, _)| *l == lang)
        .or_else(|| all.first())
        .map(|(_, b)| b)
        .expect("at least one language")
}

/// The message `key` in `lang`.
pub(crate) fn text(lang: Language, key: &'static str) -> Text {
    format(lang, key, None)
}

/// The message `key` in `lang` with its arguments (`{ $name }` in the files).
pub(crate) fn text_with(
    lang: Language,
    key: &'static str,
    args: impl IntoIterator<Item = (&'static str, FluentValue<'static>)>,
) -> Text {
    let args: FluentArgs<'static> = args.into_iter().collect();
    format(lang, key, Some(&args))
}

fn format(lang: Language, key: &'static str, args: Option<&FluentArgs<'_>>) -> Text {
    let bundle = bundle(lang);
    let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
        debug_assert!(false, "no message {key} in {}", lang.code());
        tracing::error!(target: "portal_http", key, lang = lang.code(), "missing web text");
        return Cow::Borrowed(key);
    };
    let mut errors = Vec::new();
    let value = bundle.format_pattern(pattern, args, &mut errors);
    debug_assert!(errors.is_empty(), "message {key}: {errors:?}");
    value
}

/// "Aktiv", "Gesperrt", … as in the manual's user table.
pub(crate) fn status(lang: Language, s: UserStatus) -> Text {
    match s {
        UserStatus::PendingVerification => text(lang, "user-status-unverified"),
        UserStatus::Invited => text(lang, "user-status-invited"),
        UserStatus::PendingActivation => text(lang, "user-status-awaiting-activation"),
        UserStatus::Active => text(lang, "user-status-active"),
        UserStatus::Locked => text(lang, "user-status-locked"),
    }
}

/// "Mitarbeiter", "Administrator", "Portal-Mitarbeiter".
pub(crate) fn role(lang: Language, r: Role) -> Text {
    match r {
        Role::Employee => text(lang, "role-employee"),
        Role::Administrator => text(lang, "role-administrator"),
        Role::Operator => text(lang, "role-portal-staff"),
    }
}

/// Where an admin request stands.
pub(crate) fn request_status(lang: Language, s: AdminRequestStatus) -> Text {
    match s {
        AdminRequestStatus::AwaitingConsent => text(lang, "request-status-awaiting-consent"),
        AdminRequestStatus::AwaitingApproval => text(lang, "request-status-awaiting-approval"),
        AdminRequestStatus::Approved => text(lang, "request-status-approved"),
        AdminRequestStatus::Rejected => text(lang, "request-status-rejected"),
    }
}

/// A second factor's name.
pub(crate) fn method(lang: Language, m: MfaMethod) -> Text {
    match m {
        MfaMethod::Totp => text(lang, "mfa-method-totp"),
        MfaMethod::Sms => text(lang, "mfa-method-sms"),
        MfaMethod::Voice => text(lang, "mfa-method-voice"),
        MfaMethod::RecoveryCode => text(lang, "mfa-method-recovery-code"),
        MfaMethod::Passkey => text(lang, "mfa-method-passkey"),
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
pub(crate) fn password(lang: Language, e: &PasswordError) -> Text {
    match e {
        PasswordError::TooShort { min } => {
            text_with(lang, "password-error-too-short", [("min", (*min).into())])
        }
        PasswordError::TooLong { max } => {
            text_with(lang, "password-error-too-long", [("max", (*max).into())])
        }
        PasswordError::Blocklisted => text(lang, "password-error-blocklisted"),
        PasswordError::ContainsPersonalData => text(lang, "password-error-personal-data"),
        PasswordError::ConfirmationMismatch => text(lang, "password-error-confirmation-mismatch"),
    }
}

/// Why an e-mail address was refused.
pub(crate) fn email(lang: Language, e: EmailError) -> Text {
    match e {
        EmailError::Empty => text(lang, "email-error-empty"),
        EmailError::TooLong => text(lang, "email-error-too-long"),
        EmailError::InvalidCharacter | EmailError::Malformed => text(lang, "email-error-malformed"),
    }
}

/// Why a name was refused.
pub(crate) fn name(lang: Language, e: NameError) -> Text {
    match e {
        NameError::Empty => text(lang, "name-error-empty"),
        NameError::TooLong => text(lang, "name-error-too-long"),
        NameError::InvalidCharacter => text(lang, "name-error-invalid-character"),
        NameError::HiddenCharacter => text(lang, "name-error-hidden-character"),
    }
}

/// What is wrong with a customer file, in the reader's language (the import page's table; the
/// CLI and the API keep the English [`crate::import::RowError::reason`]).
pub(crate) fn import_problem(lang: Language, p: &crate::import::Problem) -> Text {
    use crate::import::Problem;
    let arg = |v: &str| FluentValue::from(v.to_owned());
    match p {
        Problem::Unreadable(_) => text(lang, "import-reason-unreadable"),
        Problem::NotUtf8 => text(lang, "import-reason-not-utf8"),
        Problem::Empty => text(lang, "import-reason-empty"),
        Problem::FirstRowNotCsv => text(lang, "import-reason-first-row-not-csv"),
        Problem::NotCsv => text(lang, "import-reason-not-csv"),
        Problem::NoRows => text(lang, "import-reason-no-rows"),
        Problem::ColumnTwice(c) => {
            text_with(lang, "import-reason-column-twice", [("column", arg(c))])
        }
        Problem::MissingColumn(c) => {
            text_with(lang, "import-reason-missing-column", [("column", arg(c))])
        }
        Problem::UnknownColumn(c) => {
            text_with(lang, "import-reason-unknown-column", [("column", arg(c))])
        }
        Problem::FieldCount { found, expected } => text_with(
            lang,
            "import-reason-field-count",
            [
                ("found", arg(&found.to_string())),
                ("expected", arg(&expected.to_string())),
            ],
        ),
        Problem::DuplicateNumber { first_line } => text_with(
            lang,
            "import-reason-duplicate-number",
            [("line", arg(&first_line.to_string()))],
        ),
        Problem::Number(e) => customer_number(lang, *e),
        Problem::Name(e) => name(lang, *e),
        Problem::UnknownProduct { key, configured } => text_with(
            lang,
            "import-reason-unknown-product",
            [("key", arg(key)), ("configured", arg(configured))],
        ),
        Problem::MalformedProduct => text(lang, "import-reason-malformed-product"),
        Problem::Channel => text(lang, "import-reason-channel"),
        Problem::PartnerName(e) => text_with(
            lang,
            "import-reason-partner-name",
            [("reason", FluentValue::from(name(lang, *e).into_owned()))],
        ),
    }
}

/// Why a customer number was refused.
pub(crate) fn customer_number(lang: Language, e: CustomerNumberError) -> Text {
    match e {
        CustomerNumberError::Empty => text(lang, "customer-number-error-empty"),
        CustomerNumberError::NotDigits | CustomerNumberError::WrongLength => {
            text(lang, "customer-number-error-nine-digits")
        }
    }
}

/// Why a free text was refused.
pub(crate) fn free_text(lang: Language, e: FreeTextError) -> Text {
    match e {
        FreeTextError::Empty => text(lang, "text-error-empty"),
        FreeTextError::TooLong => text(lang, "text-error-too-long"),
        FreeTextError::InvalidCharacter => text(lang, "text-error-invalid-character"),
        FreeTextError::HiddenCharacter => text(lang, "text-error-hidden-character"),
    }
}

/// The key of an API error code's message, for pages. Every code has its arm (no catch-all): a
/// new code does not compile until it has a message in the files.
pub(crate) const fn code_key(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::MalformedJson
        | ErrorCode::UnknownField
        | ErrorCode::InvalidId => "error-invalid-request",
        ErrorCode::InvalidCustomerNumber => "customer-number-error-nine-digits",
        ErrorCode::PayloadTooLarge => "error-payload-too-large",
        ErrorCode::UnsupportedMediaType => "error-unsupported-media-type",
        ErrorCode::MethodNotAllowed => "error-method-not-allowed",
        ErrorCode::NotFound | ErrorCode::CustomerNotFound => "error-not-found",
        ErrorCode::CsrfFailed => "error-csrf-failed",
        ErrorCode::RateLimited => "error-rate-limited",
        ErrorCode::Unauthenticated => "error-unauthenticated",
        ErrorCode::Forbidden => "error-forbidden",
        ErrorCode::Conflict => "error-conflict",
        ErrorCode::Internal => "error-internal",
        ErrorCode::Unavailable => "error-unavailable",
        ErrorCode::InvalidCredentials => "error-invalid-credentials",
        ErrorCode::Throttled => "error-throttled",
        ErrorCode::SecondFactorRequired => "error-second-factor-required",
        ErrorCode::NoPendingLogin => "error-no-pending-login",
        ErrorCode::MfaRequired => "error-mfa-required",
        ErrorCode::InvalidTicket => "error-invalid-ticket",
        ErrorCode::MalformedCode => "error-malformed-code",
        ErrorCode::InvalidCode => "error-invalid-code",
        ErrorCode::CodeAlreadyUsed => "error-code-already-used",
        ErrorCode::CodeExpired => "error-code-expired",
        ErrorCode::TooManyAttempts => "error-too-many-attempts",
        ErrorCode::TooSoon => "error-too-soon",
        ErrorCode::TooManyCodes => "error-too-many-codes",
        ErrorCode::InvitationInvalid => "error-invitation-invalid",
        ErrorCode::AlreadyRegistered => "error-already-registered",
        ErrorCode::InvitationExpired => "error-invitation-expired",
        ErrorCode::InvitationUsed => "error-invitation-used",
        ErrorCode::InvalidLink => "error-invalid-link",
        ErrorCode::LinkExpired => "error-link-expired",
        ErrorCode::LinkUsed => "error-link-used",
        ErrorCode::PasswordPolicy => "error-password-policy",
        ErrorCode::WrongPassword => "error-wrong-password",
        ErrorCode::ReauthRequired => "error-reauth-required",
        ErrorCode::EmailUnavailable => "error-email-unavailable",
        ErrorCode::SameEmail => "error-same-email",
        ErrorCode::NoSuchFactor => "error-no-such-factor",
        ErrorCode::MfaAlreadyEnabled => "error-mfa-already-enabled",
        ErrorCode::MfaNotEnabled => "error-mfa-not-enabled",
        ErrorCode::NoSetupInProgress => "error-no-setup-in-progress",
        ErrorCode::FactorUnavailable => "error-factor-unavailable",
        ErrorCode::SendFailed => "error-send-failed",
        ErrorCode::SamePhone => "error-same-phone",
        ErrorCode::PasskeyRefused => "error-passkey-refused",
        ErrorCode::PasskeyChallengeInvalid => "error-passkey-challenge-invalid",
        ErrorCode::PasskeyLimit => "error-passkey-limit",
        ErrorCode::InvalidPasskeyName => "error-invalid-passkey-name",
        ErrorCode::LastFactor => "error-last-factor",
        ErrorCode::UnknownAffiliation => "error-unknown-affiliation",
        ErrorCode::AffiliationRequired => "error-affiliation-required",
        ErrorCode::AffiliationMismatch => "error-affiliation-mismatch",
        ErrorCode::AlreadyLinked => "error-already-linked",
        ErrorCode::InvalidLegacyCredentials => "error-invalid-legacy-credentials",
        ErrorCode::LegacyAlreadyLinked => "error-legacy-already-linked",
        ErrorCode::NotEligible => "error-not-eligible",
        ErrorCode::AlreadyAdmin => "error-already-admin",
        ErrorCode::AlreadyRequested => "error-already-requested",
        ErrorCode::WrongState => "error-wrong-state",
        ErrorCode::RequesterIneligible => "error-requester-ineligible",
        ErrorCode::NotLinked => "error-not-linked",
        ErrorCode::NoAdmin => "error-no-admin",
        ErrorCode::NotGrantable => "error-not-grantable",
        ErrorCode::UnknownGroup => "error-unknown-group",
        ErrorCode::LastAdmin => "error-last-admin",
        ErrorCode::AlreadyMember => "error-already-member",
        ErrorCode::InvalidCursor | ErrorCode::InvalidPageSize | ErrorCode::PageOutOfRange => {
            "error-no-such-page"
        }
        ErrorCode::ChainBroken => "error-chain-broken",
        ErrorCode::NumberTaken => "error-number-taken",
        ErrorCode::UnknownPermissions => "error-unknown-permissions",
        ErrorCode::InvalidRow => "error-invalid-row",
    }
}

/// The message of an API error code, for pages.
pub(crate) fn code(lang: Language, code: ErrorCode) -> Text {
    text(lang, code_key(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use fluent_syntax::ast::Entry;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The change log's count takes the singular for one entry, and a capped total as given.
    #[test]
    fn the_change_log_count_agrees_with_its_number() {
        let count = |lang, total: FluentValue<'static>| {
            text_with(lang, "audit-entries-count", [("total", total)]).into_owned()
        };
        assert_eq!(count(Language::De, 1_u64.into()), "1 Eintrag");
        assert_eq!(count(Language::De, 13_u64.into()), "13 Einträge");
        assert_eq!(count(Language::En, 1_u64.into()), "1 entry");
        assert_eq!(count(Language::En, 2_u64.into()), "2 entries");
        assert_eq!(count(Language::De, "10000+".into()), "10000+ Einträge");
    }

    #[test]
    fn customer_import_problems_read_in_the_page_language() {
        use crate::import::Problem;
        use portal_core::values::{CustomerNumberError, NameError};
        let all = [
            Problem::Unreadable("os error".into()),
            Problem::NotUtf8,
            Problem::Empty,
            Problem::FirstRowNotCsv,
            Problem::NotCsv,
            Problem::NoRows,
            Problem::ColumnTwice("name"),
            Problem::UnknownColumn("nummer".into()),
            Problem::MissingColumn("channel"),
            Problem::FieldCount {
                found: 3,
                expected: 4,
            },
            Problem::DuplicateNumber { first_line: 2 },
            Problem::Number(CustomerNumberError::WrongLength),
            Problem::Name(NameError::Empty),
            Problem::UnknownProduct {
                key: "fr-business".into(),
                configured: "de-business, de-accounting".into(),
            },
            Problem::MalformedProduct,
            Problem::Channel,
            Problem::PartnerName(NameError::Empty),
        ];
        for p in &all {
            let de = import_problem(Language::De, p);
            let en = import_problem(Language::En, p);
            assert!(!de.is_empty() && !en.is_empty(), "{p:?}");
            assert_ne!(de, en, "{p:?} is not translated");
            assert_ne!(
                de.as_ref(),
                p.to_string(),
                "{p:?}: German shows the English reason"
            );
        }
        let de = |p: &Problem| import_problem(Language::De, p).into_owned();
        assert_eq!(
            de(&Problem::FieldCount {
                found: 3,
                expected: 4
            }),
            "3 Felder statt 4."
        );
        assert_eq!(
            de(&Problem::DuplicateNumber { first_line: 12345 }),
            "Die Kundennummer steht schon in Zeile 12345."
        );
        assert_eq!(
            de(&Problem::MissingColumn("channel")),
            "Die Spalte „channel“ fehlt."
        );
        assert!(de(&Problem::PartnerName(NameError::Empty)).starts_with("Partnername: "));
    }

    #[test]
    fn every_api_code_has_a_message_in_every_language() {
        for c in ErrorCode::ALL {
            for (lang, bundle) in &*BUNDLES {
                assert!(
                    bundle
                        .get_message(code_key(*c))
                        .is_some_and(|m| m.value().is_some()),
                    "{c} has no message in {}",
                    lang.code()
                );
            }
        }
    }

    /// The message keys of a Fluent file (parse errors fail the test).
    fn keys_of(lang: Language, source: &str) -> BTreeSet<String> {
        let resource = fluent_syntax::parser::parse(source)
            .unwrap_or_else(|(_, errors)| panic!("{}.ftl: {errors:?}", lang.code()));
        let mut keys = BTreeSet::new();
        for entry in resource.body {
            match entry {
                Entry::Message(m) => {
                    assert!(
                        m.value.is_some(),
                        "{}: {} has no value",
                        lang.code(),
                        m.id.name
                    );
                    assert!(keys.insert(m.id.name.to_owned()), "{} twice", m.id.name);
                }
                Entry::Comment(_) | Entry::GroupComment(_) | Entry::ResourceComment(_) => {}
                other => panic!("{}.ftl: unexpected entry {other:?}", lang.code()),
            }
        }
        keys
    }

    /// The keys the code names: the first string literal after `.t(` and `t_with(`, the second
    /// after `text(`, `text_with(` and `PageError::new(`, and the hyphenated literals a `match`
    /// arm answers with (tables of keys such as `Notice::key` and `code_key`).
    fn keys_in_code(source: &str) -> BTreeSet<String> {
        let literal = |rest: &str| {
            let tail = rest.trim_start().strip_prefix('"')?;
            let end = tail.find('"')?;
            Some(tail[..end].to_owned())
        };
        let mut keys = BTreeSet::new();
        for (call, skip_first) in [
            ("t(", false),
            ("t_with(", false),
            ("text(", true),
            ("text_with(", true),
            ("PageError::new(", true),
        ] {
            for (at, _) in source.match_indices(call) {
                let before = source[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let mut rest = &source[at + call.len()..];
                if skip_first {
                    let Some((_, after)) = rest.split_once(',') else {
                        continue;
                    };
                    rest = after;
                }
                keys.extend(literal(rest));
            }
        }
        for (at, _) in source.match_indices("=>") {
            // `=> "key"`, or `=> {` and the key alone in the block where rustfmt breaks the arm.
            let rest = source[at + 2..].trim_start();
            if let Some(key) = literal(rest.strip_prefix('{').unwrap_or(rest))
                && key.contains('-')
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                keys.insert(key);
            }
        }
        keys
    }

    fn web_sources(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                web_sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // This module's own tests name keys only as examples.
                let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                out.push_str(text);
            }
        }
    }

    #[test]
    fn every_language_has_every_key_and_every_key_is_used_and_exists() {
        let files: Vec<_> = SOURCES
            .iter()
            .map(|(lang, source)| (*lang, keys_of(*lang, source)))
            .collect();
        let (first, keys) = &files[0];
        for (lang, other) in &files[1..] {
            assert_eq!(
                keys.symmetric_difference(other).collect::<Vec<_>>(),
                Vec::<&String>::new(),
                "keys in only one of {}.ftl and {}.ftl",
                first.code(),
                lang.code()
            );
        }
        let mut code = String::new();
        web_sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web"),
            &mut code,
        );
        web_sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oidc"),
            &mut code,
        );
        let used = keys_in_code(&code);
        assert_eq!(
            used.difference(keys).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "keys the code uses but the files lack"
        );
        assert_eq!(
            keys.difference(&used).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "keys no code uses"
        );
    }

    #[test]
    fn arguments_are_filled_in_without_isolation_marks() {
        let de = password(Language::De, &PasswordError::TooShort { min: 12 });
        assert_eq!(de, "Das Passwort muss mindestens 12 Zeichen lang sein.");
        let en = text_with(
            Language::En,
            "audit-entries-range",
            [("from", 1.into()), ("to", 10.into())],
        );
        assert_eq!(en, "Entries 1 to 10");
        assert!(matches!(text(Language::En, "save"), Cow::Borrowed("Save")));
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
