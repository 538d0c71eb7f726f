//! Every URL of the web UI, written once: one type per route, implementing `axum-extra`'s
//! [`TypedPath`] (kanidm keeps its paths in `views/constants.rs`; a type also carries the
//! parameters). The router mounts each at its [`TypedPath::PATH`], handlers take the type as
//! their path extractor, and templates and redirects print it (`Display` fills in and
//! percent-encodes the parameters, with the `percent-encoding` crate that `url` and `axum-extra`
//! use).
//!
//! A route's parameters are parsed once, by the typed path extractors the JSON API uses too
//! ([`crate::path`]: `CustomerPath`, `UserPath`, `TokenPath`, …): each route names the
//! extractor it goes through (`via UserPath { number, id }`), so its fields are the core's
//! values. The page answers a [`PathError`] in its own way ([`page_error`]): a value that names
//! nothing (not a customer number, not an id) is the 404 page like an unknown one, a path that
//! cannot be read (not UTF-8 once percent-decoded) the 400 page; the API answers the same errors
//! with their own codes.
//!
//! Paths here start at the web UI's root. A host application may nest the router under the path
//! of the public URL ([`HttpConfig::public_path`](crate::HttpConfig::public_path)); that prefix
//! is added where a link is rendered ([`super::ctx::Shell::href`]) or a redirect is sent, never
//! by rewriting the rendered HTML.

use super::error::PageError;
use crate::path::{
    AdminRequestPath, AreaPath, ClientPath, CustomerPath, CustomerRequestPath, MailPath,
    PasskeyPath, PathError, SessionPath, TokenPath, UserPath,
};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::routing::TypedPath;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use portal_core::ids::{AdminRequestId, OutboxId, SessionId, UserId};
use portal_core::permission::PermissionKey;
use portal_core::values::CustomerNumber;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Display};

/// What a path segment must escape (as `axum-extra`'s own `TypedPath` derive): controls, space,
/// `"`, `<`, `>`, `` ` ``, `#`, `?`, `{`, `}`, `/` and `%`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'?')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// A parameter as one percent-encoded path segment.
fn segment(value: &impl Display) -> String {
    utf8_percent_encode(&value.to_string(), SEGMENT).to_string()
}

/// How a page answers a path parameter that does not parse: the 404 page for a value that names
/// nothing, the 400 page for a path that cannot be read.
pub(crate) fn page_error(e: PathError) -> PageError {
    match e {
        PathError::Unreadable(_) => e.into(),
        PathError::CustomerNumber(_) | PathError::Id | PathError::Group | PathError::Area => {
            PageError::not_found()
        }
    }
}

/// `"/path" => Name;` or `"/path/{param}" => Name { param: Type } via Extractor(pattern);`: a
/// route type with its path (and its `Debug`, which names the route, never a parameter's
/// value: tokens travel in paths).
macro_rules! routes {
    ($(
        $(#[$doc:meta])*
        $path:literal => $name:ident
            $({ $($field:ident: $ty:ty),* } via $via:ident $pattern:tt)?;
    )*) => {$(
        route!($(#[$doc])* $path => $name $({ $($field: $ty),* } via $via $pattern)?);

        impl TypedPath for $name {
            const PATH: &'static str = $path;
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), $path)
            }
        }
    )*};
}

macro_rules! route {
    ($(#[$doc:meta])* $path:literal => $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub(crate) struct $name;

        impl Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($path)
            }
        }
    };
    (
        $(#[$doc:meta])* $path:literal => $name:ident
            { $($field:ident: $ty:ty),* } via $via:ident $pattern:tt
    ) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty,)*
        }

        impl Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Self { $($field),* } = self;
                write!(f, $path, $($field = segment($field)),*)
            }
        }

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = PageError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
                let $via $pattern = $via::from_request_parts(parts, state)
                    .await
                    .map_err(page_error)?;
                Ok(Self { $($field),* })
            }
        }
    };
}

routes! {
    /// Home when logged in, else the login page.
    "/" => Root;
    /// The stylesheet (served by the crate).
    "/assets/portal.css" => Stylesheet;
    /// The passkey script (served by the crate).
    "/assets/passkeys.js" => PasskeyScript;

    // Anmelden, Registrieren, Passwort vergessen, Einladung
    /// "Anmelden".
    "/login" => Login;
    /// The second step of a login.
    "/login/mfa" => LoginMfa;
    /// "Mit Passkey anmelden": the passkey's answer (filled in by the passkey script).
    "/login/passkey" => LoginPasskey;
    /// A code by SMS or call for the second step.
    "/login/mfa/phone-code" => LoginMfaPhoneCode;
    /// A fresh recovery code for the second step.
    "/login/mfa/recovery-code" => LoginMfaRecoveryCode;
    /// "Abmelden".
    "/logout" => Logout;
    /// "Erstellen Sie Ihr Konto".
    "/register" => Register;
    /// The mailed verification code.
    "/register/code" => RegisterCode;
    /// "Code erneut senden".
    "/register/code/resend" => RegisterCodeResend;
    /// "Passwort vergessen".
    "/password/forgot" => PasswordForgot;
    /// The mailed reset link.
    "/password/reset/{token}" => PasswordReset { token: String } via TokenPath(token);
    /// "Passwort geändert!".
    "/password/changed" => PasswordChanged;
    /// The mailed invitation link: a pre-filled registration.
    "/invitations/{token}" => Invitation { token: String } via TokenPath(token);

    // Startseite, Bereiche, Zugehörigkeit, Kundennummer, Kontakt, Admin-Antrag
    /// "Willkommen im Portal".
    "/home" => Home;
    /// A protected area.
    "/areas/{key}" => Area { key: PermissionKey } via AreaPath(key);
    /// "Bitte wählen Sie Ihre Zugehörigkeit aus".
    "/onboarding/affiliation" => Affiliation;
    /// Customer number or legacy credentials.
    "/onboarding/link" => Link;
    /// "Jetzt registrieren".
    "/onboarding/link/customer" => LinkCustomer;
    /// "Jetzt verknüpfen".
    "/onboarding/link/legacy" => LinkLegacy;
    /// "Administrator kontaktieren".
    "/contact-admin" => ContactAdmin;
    /// "Admin-Rechte beantragen".
    "/admin-request" => AdminRequest;

    // Meine Daten, Sicherheit, Sitzungen
    /// "Meine Daten".
    "/profile" => Profile;
    /// "Passwort ändern".
    "/profile/password" => ProfilePassword;
    /// "E-Mail-Adresse ändern".
    "/profile/email" => ProfileEmail;
    /// The code sent to the new address.
    "/profile/email/confirm" => ProfileEmailConfirm;
    /// "Meine Daten herunterladen": the person's data export (a download).
    "/profile/export" => ProfileExport;
    /// The step-up page.
    "/reauth" => Reauth;
    /// "Sitzungen".
    "/sessions" => Sessions;
    /// "Alle anderen Sitzungen beenden".
    "/sessions/end-others" => SessionsEndOthers;
    /// Ends one session.
    "/sessions/{id}/end" => SessionEnd { id: SessionId } via SessionPath(id);
    /// "2-Faktor-Authentifizierung".
    "/mfa" => Mfa;
    /// Starts an authenticator app's setup.
    "/mfa/totp" => MfaTotp;
    /// The app's first code.
    "/mfa/totp/confirm" => MfaTotpConfirm;
    /// Starts a phone's setup.
    "/mfa/phone" => MfaPhone;
    /// The phone's first code.
    "/mfa/phone/confirm" => MfaPhoneConfirm;
    /// A code to the MFA phone, to prove presence.
    "/mfa/presence-code" => MfaPresenceCode;
    /// Removes every second factor.
    "/mfa/remove" => MfaRemove;
    /// Removes one passkey.
    "/mfa/passkeys/{id}/remove" => MfaPasskeyRemove { id: uuid::Uuid } via PasskeyPath(id);
    /// Renames one passkey.
    "/mfa/passkeys/{id}/rename" => MfaPasskeyRename { id: uuid::Uuid } via PasskeyPath(id);
    /// "Neuen Code generieren".
    "/mfa/recovery-code" => MfaRecoveryCode;
    /// "Wiederherstellungsmethode festlegen".
    "/mfa/recovery-channel" => MfaRecoveryChannel;
    /// The code that verifies a new recovery channel.
    "/mfa/recovery-channel/confirm" => MfaRecoveryChannelConfirm;
    /// A new code to the recovery channel waiting for confirmation.
    "/mfa/recovery-channel/resend" => MfaRecoveryChannelResend;

    // Benutzerverwaltung
    /// The administrator's own user table.
    "/admin/users" => MyUsers;
    /// The administrator's own customer's log.
    "/admin/audit" => MyAudit;
    /// The administrator's own customer's admin requests.
    "/admin/admin-requests" => MyAdminRequests;
    /// "Benutzerverwaltung".
    "/admin/customers/{number}/users" => Users { number: CustomerNumber } via CustomerPath(number);
    /// "Benutzer hinzufügen".
    "/admin/customers/{number}/users/new" => NewUser { number: CustomerNumber } via CustomerPath(number);
    /// "Berechtigungen".
    "/admin/customers/{number}/users/{id}/permissions" => UserPermissions { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// "Benutzer sperren / entsperren".
    "/admin/customers/{number}/users/{id}/lock" => UserLock { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// "Benutzer löschen".
    "/admin/customers/{number}/users/{id}/delete" => UserDelete { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// "Freischalten".
    "/admin/customers/{number}/users/{id}/activate" => UserActivate { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// A fresh invitation link.
    "/admin/customers/{number}/users/{id}/invitation" => UserInvitation { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// "Änderungsprotokoll" of one user.
    "/admin/customers/{number}/users/{id}/audit" => UserAudit { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// A user's data export (a download).
    "/admin/customers/{number}/users/{id}/export" => UserExport { number: CustomerNumber, id: UserId } via UserPath { number, id };
    /// "Protokoll" of the customer.
    "/admin/customers/{number}/audit" => CustomerAudit { number: CustomerNumber } via CustomerPath(number);
    /// Admin requests awaiting an administrator's consent.
    "/admin/customers/{number}/admin-requests" => CustomerAdminRequests { number: CustomerNumber } via CustomerPath(number);
    /// "Zustimmen".
    "/admin/customers/{number}/admin-requests/{id}/consent" => AdminRequestConsent { number: CustomerNumber, id: AdminRequestId } via CustomerRequestPath { number, id };
    /// "Ablehnen".
    "/admin/customers/{number}/admin-requests/{id}/decline" => AdminRequestDecline { number: CustomerNumber, id: AdminRequestId } via CustomerRequestPath { number, id };

    // Portal-Mitarbeiter
    /// "Kunden".
    "/operator/customers" => OperatorCustomers;
    /// "Kunde anlegen".
    "/operator/customers/new" => OperatorNewCustomer;
    /// "Kunden importieren": the CSV import with its preview.
    "/operator/customers/import" => OperatorImportCustomers;
    /// "Zweiter Faktor": who of a customer's users must have one (R22).
    "/operator/customers/{number}/second-factor-policy" => OperatorSecondFactorPolicy { number: CustomerNumber } via CustomerPath(number);
    /// Admin requests to decide.
    "/operator/admin-requests" => OperatorAdminRequests;
    /// "Freigeben".
    "/operator/admin-requests/{id}/approve" => OperatorApprove { id: AdminRequestId } via AdminRequestPath(id);
    /// "Ablehnen".
    "/operator/admin-requests/{id}/reject" => OperatorReject { id: AdminRequestId } via AdminRequestPath(id);
    /// The outbox's dead letters, of every kind.
    "/operator/outbox" => OperatorOutbox;
    /// "Erneut einreihen".
    "/operator/outbox/{id}/requeue" => OperatorRequeue { id: OutboxId } via MailPath(id);
    /// "Anwendungen": the OpenID Connect clients.
    "/operator/clients" => OperatorClients;
    /// "Anwendung registrieren".
    "/operator/clients/new" => OperatorNewClient;
    /// An application's page and settings.
    "/operator/clients/{id}" => OperatorClient { id: String } via ClientPath(id);
    /// "Neues Geheimnis erzeugen".
    "/operator/clients/{id}/rotate-secret" => OperatorClientSecret { id: String } via ClientPath(id);
    /// "Anwendung deaktivieren".
    "/operator/clients/{id}/disable" => OperatorClientDisable { id: String } via ClientPath(id);

    // Entwicklung
    /// The development mailbox (development mode only).
    "/dev/mailbox" => DevMailbox;
}

/// `path` (a [`TypedPath`] of this module, or another path of the router such as
/// `/api/docs/`) under `base`: the base path ([`crate::HttpConfig::public_path`], empty at the
/// root) for links and redirects, or the public URL for an absolute address. The one place where
/// the two are joined (pages, error pages, redirects, the Swagger UI, the API's setup link).
pub(crate) fn under(base: &str, path: impl Display) -> String {
    format!("{base}{path}")
}

/// A path with a query (`/login?next=%2Fhome`), encoded by `serde_html_form`.
pub(crate) fn with_query(path: impl Display, query: &impl Serialize) -> String {
    match serde_html_form::to_string(query) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// The short messages a form's redirect can ask the next page to show ([`super::flash`]): only
/// these keys, never text from the request; the `…About` ones name whom the action concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Notice {
    /// "Gespeichert."
    Saved,
    /// The reset link is on its way.
    ResetSent,
    /// "Sie wurden abgemeldet."
    LoggedOut,
    /// The pending login expired.
    LoginExpired,
    /// A new registration code was sent.
    CodeResent,
    /// A code was sent.
    CodeSent,
    /// A recovery code was sent, if there is a recovery method.
    RecoverySent,
    /// The message went to the administrators.
    MessageSent,
    /// The admin request was made.
    Requested,
    /// A user was invited.
    Invited,
    /// "$name wurde gesperrt."
    UserLocked,
    /// "$name wurde entsperrt."
    UserUnlocked,
    /// "$name wurde gelöscht."
    UserDeleted,
    /// "$name wurde freigeschaltet."
    UserActivated,
    /// "$name wurde erneut eingeladen."
    InvitationResent,
    /// "Die Berechtigungen von $name wurden gespeichert."
    PermissionsSaved,
    /// "Sie haben dem Antrag von $name zugestimmt."
    RequestConsented,
    /// "Sie haben den Antrag von $name abgelehnt."
    RequestDeclined,
    /// "$name ist jetzt Administrator."
    RequestApproved,
    /// "Der Antrag von $name wurde abgelehnt."
    RequestRejected,
    /// "Import abgeschlossen: $name." (the counts, as the import page said them)
    CustomersImported,
}

impl Notice {
    /// Its text's key.
    pub(crate) const fn key(self) -> &'static str {
        match self {
            Self::Saved => "notice-saved",
            Self::ResetSent => "notice-reset-sent",
            Self::LoggedOut => "notice-logged-out",
            Self::LoginExpired => "notice-login-expired",
            Self::CodeResent => "notice-code-resent",
            Self::CodeSent => "notice-code-sent",
            Self::RecoverySent => "notice-recovery-sent",
            Self::MessageSent => "notice-message-sent",
            Self::Requested => "admin-request-done",
            Self::Invited => "permissions-invited-notice",
            Self::UserLocked => "notice-user-locked",
            Self::UserUnlocked => "notice-user-unlocked",
            Self::UserDeleted => "notice-user-deleted",
            Self::UserActivated => "notice-user-activated",
            Self::InvitationResent => "notice-invitation-resent",
            Self::PermissionsSaved => "notice-permissions-saved",
            Self::RequestConsented => "notice-request-consented",
            Self::RequestDeclined => "notice-request-declined",
            Self::RequestApproved => "notice-request-approved",
            Self::RequestRejected => "notice-request-rejected",
            Self::CustomersImported => "notice-customers-imported",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_the_base_path_or_the_public_url() {
        assert_eq!(under("", Root), "/");
        assert_eq!(under("/portal", Login), "/portal/login");
        assert_eq!(
            under(
                "https://p.example/portal",
                Invitation {
                    token: "a/b".into()
                }
            ),
            "https://p.example/portal/invitations/a%2Fb"
        );
    }

    /// The base path is joined in [`under`] only: no other source of the crate formats a path
    /// behind `base`, `public_path()` or `public_url()` itself.
    #[test]
    fn no_other_place_joins_the_base_path() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src];
        let mut offenders = Vec::new();
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") || p.ends_with("web/urls.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for (n, line) in text.lines().enumerate() {
                let joined = line.contains("format!(\"{base}")
                    || line.contains("format!(\"{}{path}\", self.base")
                    || line.contains("(base) (urls::")
                    || (line.contains("format!(\"{}/") && line.contains("public_url()"));
                if joined {
                    offenders.push(format!("{}:{}: {}", p.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:#?}");
    }

    #[test]
    fn paths_print_their_parameters_percent_encoded() {
        let number = CustomerNumber::parse("D123456789").unwrap();
        let id: UserId = "0190a5d6-0000-7000-8000-000000000001".parse().unwrap();
        assert_eq!(
            UserLock { number, id }.to_string(),
            "/admin/customers/123456789/users/0190a5d6-0000-7000-8000-000000000001/lock"
        );
        assert_eq!(
            PasswordReset {
                token: "a/b c".into()
            }
            .to_string(),
            "/password/reset/a%2Fb%20c"
        );
        assert_eq!(Login.to_string(), Login::PATH);
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            with_query(Login, &[("next", "/admin/users?q=a b")]),
            "/login?next=%2Fadmin%2Fusers%3Fq%3Da+b"
        );
        assert_eq!(with_query(Home, &[("x", None::<&str>)]), "/home");
    }

    /// Every notice.
    const ALL: [Notice; 21] = [
        Notice::Saved,
        Notice::ResetSent,
        Notice::LoggedOut,
        Notice::LoginExpired,
        Notice::CodeResent,
        Notice::CodeSent,
        Notice::RecoverySent,
        Notice::MessageSent,
        Notice::Requested,
        Notice::Invited,
        Notice::UserLocked,
        Notice::UserUnlocked,
        Notice::UserDeleted,
        Notice::UserActivated,
        Notice::InvitationResent,
        Notice::PermissionsSaved,
        Notice::RequestConsented,
        Notice::RequestDeclined,
        Notice::RequestApproved,
        Notice::RequestRejected,
        Notice::CustomersImported,
    ];

    #[test]
    fn every_notice_has_its_text_in_every_language_and_names_whom_it_is_about() {
        use super::super::i18n;
        for notice in ALL {
            for lang in i18n::languages() {
                let text = i18n::text_with(lang, notice.key(), [("name", "Ben Becker".into())]);
                assert_ne!(&*text, notice.key(), "{notice:?} {lang:?}");
                assert!(!text.contains('{'), "{notice:?} {lang:?}: {text}");
                let named = !matches!(
                    notice,
                    Notice::Saved
                        | Notice::ResetSent
                        | Notice::LoggedOut
                        | Notice::LoginExpired
                        | Notice::CodeResent
                        | Notice::CodeSent
                        | Notice::RecoverySent
                        | Notice::MessageSent
                        | Notice::Requested
                        | Notice::Invited
                );
                assert_eq!(
                    text.contains("Ben Becker"),
                    named,
                    "{notice:?} {lang:?}: {text}"
                );
            }
        }
    }
}
