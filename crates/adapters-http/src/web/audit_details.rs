//! The details of a change-log entry in the reader's language.
//!
//! The core stores details as stable `key=value` pairs (`method=password+totp`,
//! `added=licenses,shop; removed=`, `via=number; status=pending_activation`): ids and catalog keys,
//! never names or secrets, and part of the hash chain, so they are never rewritten. This module
//! only renders them: every key the core writes has a label here and every enumerated value a
//! text (`audit-key-*`, `audit-value-*` in the Fluent files); permission keys become the names of
//! the permission table, affiliation keys the affiliation's name, policies and roles their labels.
//! A test reads the core's use cases and fails for a key without a rendering, so no key is ever
//! shown raw. An unknown key (an entry written by a newer version) is shown as stored.

use super::i18n::{self, Text, text};
use portal_core::customer::{Affiliation, SecondFactorPolicy};
use portal_core::permission::{PermissionCatalog, PermissionKey};
use portal_core::user::Role;
use portal_core::values::Language;

/// What a rendering needs besides the language: the catalogs that name keys.
pub(crate) struct Names<'a> {
    /// The permission catalog ("Meine Daten", "Lizenzen", …).
    pub(crate) catalog: &'a PermissionCatalog,
    /// The configured affiliations.
    pub(crate) affiliations: &'a [Affiliation],
}

/// The stored details split into `(key, value)` pairs. Pairs are separated by `; ` or a space
/// before the next `key=`; a value may contain spaces (an outbox summary).
pub(crate) fn pairs(details: &str) -> Vec<(&str, &str)> {
    // Starts of `key=` tokens: at the start or after a space, a key of `[a-z_]` and then `=`.
    let mut starts = Vec::new();
    let bytes = details.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if i == 0 || bytes[i - 1] == b' ' {
            let key_len = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_lowercase() || **b == b'_')
                .count();
            if key_len > 0 && bytes.get(i + key_len) == Some(&b'=') {
                starts.push((i, key_len));
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (n, &(at, key_len)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(details.len(), |&(next, _)| next);
        let value = details[at + key_len + 1..end]
            .trim_end()
            .trim_end_matches(';')
            .trim_end();
        out.push((&details[at..at + key_len], value));
    }
    out
}

/// The label of a key the core writes, or none for an unknown key.
pub(crate) fn key_label(key: &str) -> Option<&'static str> {
    Some(match key {
        "method" => "audit-key-method",
        "reason" => "audit-key-reason",
        "via" => "audit-key-via",
        "status" => "audit-key-status",
        "mfa" => "audit-key-mfa",
        "notice" => "audit-key-notice",
        "code" => "audit-key-code",
        "mail" => "audit-key-mail",
        "link" => "audit-key-link",
        "profile" => "audit-key-profile",
        "email" => "audit-key-email",
        "email_change" => "audit-key-email-change",
        "scope" => "audit-key-scope",
        "session" => "audit-key-session",
        "recovery_channel" => "audit-key-recovery-channel",
        "recovery_channel_pending" => "audit-key-recovery-channel-pending",
        "channel" => "audit-key-channel",
        "remembered_device" => "audit-key-remembered-device",
        "recipients" => "audit-key-recipients",
        "affiliation" => "audit-key-affiliation",
        "request" => "audit-key-request",
        "needs_consent" => "audit-key-needs-consent",
        "permissions" => "audit-key-permissions",
        "added" => "audit-key-added",
        "removed" => "audit-key-removed",
        "role" => "audit-key-role",
        "entitlements" => "audit-key-entitlements",
        "number" => "audit-key-number",
        "second_factor_policy" => "audit-key-second-factor-policy",
        "outbox" => "audit-key-outbox",
        "kind" => "audit-key-kind",
        "summary" => "audit-key-summary",
        "secret" => "audit-key-secret",
        "disabled" => "audit-key-disabled",
        "grant_type" => "audit-key-grant-type",
        "client" => "audit-key-client",
        "name" => "audit-key-name",
        "public" => "audit-key-public",
        "first_party" => "audit-key-first-party",
        "revoked" => "audit-key-revoked",
        "reused" => "audit-key-reused",
        "fields" => "audit-key-fields",
        "key_id" => "audit-key-key-id",
        "kid" => "audit-key-kid",
        "what" => "audit-key-what",
        "change" => "audit-key-change",
        "retention" => "audit-key-retention",
        _ => return None,
    })
}

/// The text of an enumerated value (one part of a `+` joined method), or none.
pub(crate) fn value_label(value: &str) -> Option<&'static str> {
    Some(match value {
        "password" => "audit-value-password",
        "remembered_device" => "audit-value-remembered-device",
        "totp" => "audit-value-totp",
        "sms" => "audit-value-sms",
        "voice" => "audit-value-voice",
        "phone_code" => "audit-value-phone-code",
        "recovery_code" => "audit-value-recovery-code",
        "passkey" => "audit-value-passkey",
        "reauthentication" => "audit-value-reauthentication",
        "locked" => "audit-value-locked",
        "not_active" => "audit-value-not-active",
        "new_login" => "audit-value-new-login",
        "given" => "audit-value-given",
        "none" => "audit-value-none",
        "number" => "audit-value-number",
        "legacy" => "audit-value-legacy",
        "invitation" => "audit-value-invitation",
        "registration" => "audit-value-registration",
        "settings" => "audit-value-settings",
        "reset_link" => "audit-value-reset-link",
        "setup_link" => "audit-value-setup-link",
        "pending_activation" => "audit-value-pending-activation",
        "active" => "audit-value-active",
        "totp_setup_started" => "audit-value-totp-setup-started",
        "phone_setup_started" => "audit-value-phone-setup-started",
        "sent" => "audit-value-sent",
        "suppressed" => "audit-value-suppressed",
        "withheld_locked" => "audit-value-withheld-locked",
        "changed" => "audit-value-changed",
        "started" => "audit-value-started",
        "one" => "audit-value-one",
        "others" => "audit-value-others",
        "all" => "audit-value-all",
        "phone" => "audit-value-phone",
        "email" => "audit-value-email",
        "new" => "audit-value-new",
        "true" => "audit-value-true",
        "false" => "audit-value-false",
        "mail" => "audit-value-mail",
        "rotated" => "audit-value-rotated",
        "authorization_code" => "audit-value-authorization-code",
        "refresh_token" => "audit-value-refresh-token",
        "access_token" => "audit-value-access-token",
        "backchannel_logout" => "audit-value-backchannel-logout",
        "password_reset_request" => "audit-value-password-reset-request",
        "grant" => "audit-value-grant",
        "no_permission" => "audit-value-no-permission",
        // The settings of an application (`fields=`, what an operator changed).
        "name" => "audit-value-name",
        "redirect_uris" => "audit-value-redirect-uris",
        "post_logout_redirect_uris" => "audit-value-post-logout-redirect-uris",
        "backchannel_logout_uri" => "audit-value-backchannel-logout-uri",
        "first_party" => "audit-value-first-party",
        "required_permission" => "audit-value-required-permission",
        "require_second_factor" => "audit-value-require-second-factor",
        "access_tokens" => "audit-value-access-tokens",
        // Sealed values and server keys (`what=`, `change=`), retention (`retention=`).
        "pending_totp" => "audit-value-pending-totp",
        "signing_key" => "audit-value-signing-key",
        "webhook_secret" => "audit-value-webhook-secret",
        "added" => "audit-value-added",
        "retired" => "audit-value-retired",
        "pending_registration" => "audit-value-pending-registration",
        _ => return None,
    })
}

/// How a key's value is shown.
enum Shape {
    /// One or more enumerated values joined by `+`.
    Enumerated,
    /// Comma-separated permission keys.
    Permissions,
    /// Comma-separated enumerated values (the settings an operator changed).
    List,
    /// An affiliation key.
    Affiliation,
    /// A second-factor policy key.
    Policy,
    /// A role key.
    Role,
    /// An id: its first eight characters.
    Id,
    /// Shown as stored (numbers, customer numbers, summaries).
    Plain,
}

fn shape(key: &str) -> Shape {
    match key {
        "permissions" | "added" | "removed" | "entitlements" => Shape::Permissions,
        "affiliation" => Shape::Affiliation,
        "second_factor_policy" => Shape::Policy,
        "role" => Shape::Role,
        "request" | "session" | "outbox" => Shape::Id,
        "fields" | "what" => Shape::List,
        "recipients" | "number" | "summary" | "client" | "name" | "key_id" | "kid" => Shape::Plain,
        _ => Shape::Enumerated,
    }
}

fn value(lang: Language, names: &Names<'_>, key: &str, raw: &str) -> String {
    match shape(key) {
        Shape::Enumerated => raw
            .split('+')
            .map(|part| value_label(part).map_or_else(|| part.to_owned(), |k| text(lang, k).into()))
            .collect::<Vec<_>>()
            .join(" + "),
        Shape::List => raw
            .split(',')
            .filter(|k| !k.is_empty())
            .map(|part| value_label(part).map_or_else(|| part.to_owned(), |k| text(lang, k).into()))
            .collect::<Vec<_>>()
            .join(", "),
        Shape::Permissions => {
            let names: Vec<String> = raw
                .split(',')
                .filter(|k| !k.is_empty())
                .map(|k| {
                    PermissionKey::parse(k)
                        .ok()
                        .and_then(|k| names.catalog.get(&k))
                        .map_or_else(|| k.to_owned(), |p| p.label.get(lang).to_owned())
                })
                .collect();
            if names.is_empty() {
                "–".to_owned()
            } else {
                names.join(", ")
            }
        }
        Shape::Affiliation => names
            .affiliations
            .iter()
            .find(|a| a.key.as_str() == raw)
            .map_or_else(|| raw.to_owned(), |a| affiliation_name(lang, a)),
        Shape::Policy => SecondFactorPolicy::from_key(raw).map_or_else(
            || raw.to_owned(),
            |p| text(lang, super::operator::policy_key(p)).into(),
        ),
        Shape::Role => {
            Role::from_key(raw).map_or_else(|| raw.to_owned(), |r| i18n::role(lang, r).into())
        }
        Shape::Id => raw.chars().take(8).collect(),
        Shape::Plain => raw.to_owned(),
    }
}

/// An affiliation as the operator pages name it: "Deutschland: Sage 50 Connected, …".
pub(crate) fn affiliation_name(lang: Language, a: &Affiliation) -> String {
    format!("{}: {}", a.region.get(lang), a.label.get(lang))
}

/// The details of an entry as a reader sees them: "Methode: Passwort + Authenticator-App".
pub(crate) fn render(lang: Language, names: &Names<'_>, details: &str) -> String {
    let pairs = pairs(details);
    if pairs.is_empty() {
        return details.trim().to_owned();
    }
    pairs
        .iter()
        .map(|(key, raw)| match key_label(key) {
            Some(label) => {
                let label: Text = text(lang, label);
                format!("{label}: {}", value(lang, names, key, raw))
            }
            None => format!("{key}={raw}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn names_default() -> (PermissionCatalog, Vec<Affiliation>) {
        (
            PermissionCatalog::default_catalog(),
            Affiliation::defaults(),
        )
    }

    /// `text` without its `impl std::fmt::Display for …` blocks: those write log and console
    /// lines (the housekeeping report), not entries.
    fn without_display_impls(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("impl std::fmt::Display for") {
            out.push_str(&rest[..at]);
            rest = rest[at..]
                .find("\n}\n")
                .map_or("", |end| &rest[at + end + 3..]);
        }
        out.push_str(rest);
        out
    }

    /// Every `key=value` the core's use cases write: string literals in
    /// `portal-core/src/service/**` (outside test modules and `Display` impls, which write log
    /// lines, not entries), with their literal values (`{…}` for a formatted one).
    fn written_pairs() -> BTreeSet<(String, String)> {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                    out.push((path.display().to_string(), without_display_impls(text)));
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../portal-core/src/service"),
            &mut files,
        );
        let mut found = BTreeSet::new();
        for (_, text) in files {
            // String literals: between unescaped quotes on one line.
            for line in text.lines() {
                let mut parts = line.split('"');
                parts.next();
                while let (Some(lit), _) = (parts.next(), parts.next()) {
                    for (key, value) in pairs(lit) {
                        let value = value.split(';').next().unwrap_or_default();
                        found.insert((key.to_owned(), value.to_owned()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_scan_finds_the_keys_it_should() {
        let found = written_pairs();
        let keys: BTreeSet<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        for key in [
            "method", "reason", "added", "removed", "via", "status", "mfa",
        ] {
            assert!(keys.contains(key), "{key} not found in {keys:?}");
        }
        assert!(
            found.contains(&("reason".to_owned(), "none".to_owned())),
            "{found:?}"
        );
    }

    #[test]
    fn no_key_or_value_the_core_writes_is_left_raw() {
        let (catalog, affiliations) = names_default();
        let names = Names {
            catalog: &catalog,
            affiliations: &affiliations,
        };
        // Values the core formats in (`{method}`, `{via}`, …): their possible values.
        let formatted: &[(&str, &str)] = &[
            ("method", "totp"),
            ("method", "sms"),
            ("method", "voice"),
            ("method", "password+totp"),
            ("method", "password+phone_code"),
            ("method", "password+recovery_code"),
            ("via", "number"),
            ("via", "legacy"),
            ("status", "pending_activation"),
            ("status", "active"),
            ("needs_consent", "true"),
            ("needs_consent", "false"),
            ("role", "employee"),
            ("role", "administrator"),
            ("role", "operator"),
            ("second_factor_policy", "none"),
            ("second_factor_policy", "administrators"),
            ("second_factor_policy", "all_users"),
            ("affiliation", "de-business"),
            ("added", "licenses,shop"),
            ("removed", ""),
            ("kind", "mail"),
            ("kind", "backchannel_logout"),
            ("kind", "password_reset_request"),
            ("kind", "sms"),
            ("public", "true"),
            ("first_party", "false"),
            ("revoked", "grant"),
            ("revoked", "access_token"),
            ("reused", "authorization_code"),
            ("reused", "refresh_token"),
            ("reason", "not_active"),
            ("reason", "no_permission"),
            ("what", "totp,pending_totp"),
            ("what", "totp"),
            ("what", "pending_totp"),
            ("what", "signing_key"),
            ("what", "webhook_secret"),
            ("key_id", "k7f3a9c2e1d0"),
            ("kid", "0190aabbccdd"),
            ("change", "added"),
            ("change", "retired"),
            ("retention", "invitation"),
            ("retention", "pending_registration"),
            (
                "fields",
                "name,redirect_uris,post_logout_redirect_uris,backchannel_logout_uri,first_party,\
                 required_permission,require_second_factor,access_tokens",
            ),
        ];
        let written = written_pairs();
        // Keys whose formatted value is an id, a count or a number.
        let ids = [
            "client",
            "name",
            "request",
            "session",
            "outbox",
            "recipients",
            "number",
            "summary",
            "permissions",
            "entitlements",
        ];
        let mut checked = 0;
        for (key, raw) in written.into_iter().filter(|(_, v)| !v.contains('{')).chain(
            formatted
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        ) {
            assert!(key_label(&key).is_some(), "no label for the key {key}");
            let details = format!("{key}={raw}");
            for lang in [Language::De, Language::En] {
                let shown = render(lang, &names, &details);
                assert!(!shown.contains('='), "{details} in {lang:?}: {shown}");
                if matches!(shape(&key), Shape::Enumerated) {
                    for part in raw.split('+') {
                        assert!(
                            value_label(part).is_some(),
                            "no text for {key}={part} ({details})"
                        );
                    }
                }
                assert!(
                    !shown
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .any(|w| w.contains('_')),
                    "{details} in {lang:?} shows a raw code: {shown}"
                );
            }
            checked += 1;
        }
        // Formatted keys whose value is an id, a count or a number.
        for key in ids {
            assert!(key_label(key).is_some(), "no label for the key {key}");
        }
        assert!(checked > 40, "only {checked} pairs checked");
    }

    #[test]
    fn the_manual_s_examples_read_well() {
        let (catalog, affiliations) = names_default();
        let names = Names {
            catalog: &catalog,
            affiliations: &affiliations,
        };
        assert_eq!(
            render(Language::De, &names, "method=password"),
            "Methode: Passwort"
        );
        assert_eq!(
            render(
                Language::En,
                &names,
                "via=number; status=pending_activation"
            ),
            "Via: customer number; Status: awaiting activation"
        );
        let de = render(Language::De, &names, "added=licenses,shop; removed=");
        assert_eq!(de, "Hinzugefügt: Meine Lizenzen, Shop; Entfernt: –");
        assert_eq!(
            render(
                Language::De,
                &names,
                "outbox=0190aabbccdd kind=mail summary=Ihr Code"
            ),
            "Nachricht: 0190aabb; Art: E-Mail; Betreff: Ihr Code"
        );
        assert_eq!(
            render(
                Language::De,
                &names,
                "client=0a1b2c fields=name,redirect_uris,require_second_factor"
            ),
            "Anwendung: 0a1b2c; Geänderte Einstellungen: Name, Rücksprungadressen, zweiter Faktor nötig"
        );
        assert_eq!(
            render(Language::En, &names, "client=0a1b2c reused=refresh_token"),
            "Application: 0a1b2c; Used twice: refresh"
        );
        // Unknown keys stay as stored; empty details stay empty.
        assert_eq!(render(Language::De, &names, "future=thing"), "future=thing");
        assert_eq!(render(Language::De, &names, ""), "");
    }
}
