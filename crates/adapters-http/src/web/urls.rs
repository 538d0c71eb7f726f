//! Every URL of the web UI, written once: one type per route, with `axum-extra`'s
//! [`TypedPath`] (kanidm keeps its paths in `views/constants.rs`; a type also carries the
//! parameters). The router mounts each at its [`TypedPath::PATH`], handlers take the type as
//! their path extractor (its fields are the core's parsed values: a malformed customer number or
//! id answers the 404 page like an unknown one), and templates and redirects print it
//! (`Display` fills in and percent-encodes the parameters).
//!
//! Paths here start at the web UI's root. A host application may nest the router under the path
//! of the public URL ([`HttpConfig::public_path`](crate::HttpConfig::public_path)); that prefix
//! is added where a link is rendered ([`super::ctx::Shell::href`]) or a redirect is sent, never
//! by rewriting the rendered HTML.

use super::error::PageError;
use crate::error::codes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::response::{IntoResponse, Response};
use axum_extra::routing::TypedPath;
use portal_core::ids::{AdminRequestId, SessionId, UserId};
use portal_core::permission::PermissionKey;
use portal_core::values::CustomerNumber;
use serde::{Deserialize, Serialize};
use std::fmt::Display;

/// `"/path/{param}" => struct Name { param: Type }`: a route type with its path.
macro_rules! routes {
    ($( $(#[$doc:meta])* $path:literal => $item:item )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, TypedPath, Deserialize)]
            #[typed_path($path, rejection(NoSuchPage))]
            $item
        )*
    };
}

routes! {
    /// Home when logged in, else the login page.
    "/" => pub(crate) struct Root;
    /// The stylesheet (served by the crate).
    "/assets/portal.css" => pub(crate) struct Stylesheet;

    // Anmelden, Registrieren, Passwort vergessen, Einladung
    /// "Anmelden".
    "/login" => pub(crate) struct Login;
    /// The second step of a login.
    "/login/mfa" => pub(crate) struct LoginMfa;
    /// A code by SMS or call for the second step.
    "/login/mfa/phone-code" => pub(crate) struct LoginMfaPhoneCode;
    /// A fresh recovery code for the second step.
    "/login/mfa/recovery-code" => pub(crate) struct LoginMfaRecoveryCode;
    /// "Abmelden".
    "/logout" => pub(crate) struct Logout;
    /// "Erstellen Sie Ihr Konto".
    "/register" => pub(crate) struct Register;
    /// The mailed verification code.
    "/register/code" => pub(crate) struct RegisterCode;
    /// "Code erneut senden".
    "/register/code/resend" => pub(crate) struct RegisterCodeResend;
    /// "Passwort vergessen".
    "/password/forgot" => pub(crate) struct PasswordForgot;
    /// The mailed reset link.
    "/password/reset/{token}" => pub(crate) struct PasswordReset { pub(crate) token: String }
    /// "Passwort geändert!".
    "/password/changed" => pub(crate) struct PasswordChanged;
    /// The mailed invitation link: a pre-filled registration.
    "/invitations/{token}" => pub(crate) struct Invitation { pub(crate) token: String }

    // Startseite, Bereiche, Zugehörigkeit, Kundennummer, Kontakt, Admin-Antrag
    /// "Willkommen im Portal".
    "/home" => pub(crate) struct Home;
    /// A protected area.
    "/areas/{key}" => pub(crate) struct Area { pub(crate) key: PermissionKey }
    /// "Bitte wählen Sie Ihre Zugehörigkeit aus".
    "/onboarding/affiliation" => pub(crate) struct Affiliation;
    /// Customer number or legacy credentials.
    "/onboarding/link" => pub(crate) struct Link;
    /// "Jetzt registrieren".
    "/onboarding/link/customer" => pub(crate) struct LinkCustomer;
    /// "Jetzt verknüpfen".
    "/onboarding/link/legacy" => pub(crate) struct LinkLegacy;
    /// "Administrator kontaktieren".
    "/contact-admin" => pub(crate) struct ContactAdmin;
    /// "Admin-Rechte beantragen".
    "/admin-request" => pub(crate) struct AdminRequest;

    // Meine Daten, Sicherheit, Sitzungen
    /// "Meine Daten".
    "/profile" => pub(crate) struct Profile;
    /// "Passwort ändern".
    "/profile/password" => pub(crate) struct ProfilePassword;
    /// "E-Mail-Adresse ändern".
    "/profile/email" => pub(crate) struct ProfileEmail;
    /// The code sent to the new address.
    "/profile/email/confirm" => pub(crate) struct ProfileEmailConfirm;
    /// The step-up page.
    "/reauth" => pub(crate) struct Reauth;
    /// "Sitzungen".
    "/sessions" => pub(crate) struct Sessions;
    /// "Alle anderen Sitzungen beenden".
    "/sessions/end-others" => pub(crate) struct SessionsEndOthers;
    /// Ends one session.
    "/sessions/{id}/end" => pub(crate) struct SessionEnd { pub(crate) id: SessionId }
    /// "2-Faktor-Authentifizierung".
    "/mfa" => pub(crate) struct Mfa;
    /// Starts an authenticator app's setup.
    "/mfa/totp" => pub(crate) struct MfaTotp;
    /// The app's first code.
    "/mfa/totp/confirm" => pub(crate) struct MfaTotpConfirm;
    /// Starts a phone's setup.
    "/mfa/phone" => pub(crate) struct MfaPhone;
    /// The phone's first code.
    "/mfa/phone/confirm" => pub(crate) struct MfaPhoneConfirm;
    /// A code to the MFA phone, to prove presence.
    "/mfa/presence-code" => pub(crate) struct MfaPresenceCode;
    /// Removes every second factor.
    "/mfa/remove" => pub(crate) struct MfaRemove;
    /// "Neuen Code generieren".
    "/mfa/recovery-code" => pub(crate) struct MfaRecoveryCode;
    /// "Wiederherstellungsmethode festlegen".
    "/mfa/recovery-channel" => pub(crate) struct MfaRecoveryChannel;

    // Benutzerverwaltung
    /// The administrator's own user table.
    "/admin/users" => pub(crate) struct MyUsers;
    /// The administrator's own customer's log.
    "/admin/audit" => pub(crate) struct MyAudit;
    /// The administrator's own customer's admin requests.
    "/admin/admin-requests" => pub(crate) struct MyAdminRequests;
    /// "Benutzerverwaltung".
    "/admin/customers/{number}/users" => pub(crate) struct Users { pub(crate) number: CustomerNumber }
    /// "Benutzer hinzufügen".
    "/admin/customers/{number}/users/new" => pub(crate) struct NewUser { pub(crate) number: CustomerNumber }
    /// "Berechtigungen".
    "/admin/customers/{number}/users/{id}/permissions" => pub(crate) struct UserPermissions { pub(crate) number: CustomerNumber, pub(crate) id: UserId }
    /// "Benutzer sperren / entsperren".
    "/admin/customers/{number}/users/{id}/lock" => pub(crate) struct UserLock { pub(crate) number: CustomerNumber, pub(crate) id: UserId }
    /// "Benutzer löschen".
    "/admin/customers/{number}/users/{id}/delete" => pub(crate) struct UserDelete { pub(crate) number: CustomerNumber, pub(crate) id: UserId }
    /// "Freischalten".
    "/admin/customers/{number}/users/{id}/activate" => pub(crate) struct UserActivate { pub(crate) number: CustomerNumber, pub(crate) id: UserId }
    /// A fresh invitation link.
    "/admin/customers/{number}/users/{id}/invitation" => pub(crate) struct UserInvitation { pub(crate) number: CustomerNumber, pub(crate) id: UserId }
    /// "Änderungsprotokoll" of one user.
    "/admin/customers/{number}/users/{id}/audit" => pub(crate) struct UserAudit { pub(crate) number: CustomerNumber, pub(crate) id: UserId }
    /// "Protokoll" of the customer.
    "/admin/customers/{number}/audit" => pub(crate) struct CustomerAudit { pub(crate) number: CustomerNumber }
    /// Admin requests awaiting an administrator's consent.
    "/admin/customers/{number}/admin-requests" => pub(crate) struct CustomerAdminRequests { pub(crate) number: CustomerNumber }
    /// "Zustimmen".
    "/admin/customers/{number}/admin-requests/{id}/consent" => pub(crate) struct AdminRequestConsent { pub(crate) number: CustomerNumber, pub(crate) id: AdminRequestId }
    /// "Ablehnen".
    "/admin/customers/{number}/admin-requests/{id}/decline" => pub(crate) struct AdminRequestDecline { pub(crate) number: CustomerNumber, pub(crate) id: AdminRequestId }

    // Portal-Mitarbeiter
    /// "Kunden".
    "/operator/customers" => pub(crate) struct OperatorCustomers;
    /// "Kunde anlegen".
    "/operator/customers/new" => pub(crate) struct OperatorNewCustomer;
    /// Admin requests to decide.
    "/operator/admin-requests" => pub(crate) struct OperatorAdminRequests;
    /// "Freigeben".
    "/operator/admin-requests/{id}/approve" => pub(crate) struct OperatorApprove { pub(crate) id: AdminRequestId }
    /// "Ablehnen".
    "/operator/admin-requests/{id}/reject" => pub(crate) struct OperatorReject { pub(crate) id: AdminRequestId }

    // Entwicklung
    /// The development mailbox (development mode only).
    "/dev/mailbox" => pub(crate) struct DevMailbox;
}

/// The rejection of a path whose parameters do not parse: a malformed customer number or id
/// names nothing that exists, so it answers the 404 page like an unknown one; a path that cannot
/// be read at all (not UTF-8 once percent-decoded) is the 400 page.
#[derive(Debug, Default)]
pub(crate) struct NoSuchPage(Option<PageError>);

impl From<PathRejection> for NoSuchPage {
    fn from(rejection: PathRejection) -> Self {
        let unreadable = matches!(
            &rejection,
            PathRejection::FailedToDeserializePathParams(e)
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. })
        );
        Self(unreadable.then(|| PageError::code(codes::INVALID_REQUEST)))
    }
}

impl IntoResponse for NoSuchPage {
    fn into_response(self) -> Response {
        self.0.unwrap_or_else(PageError::not_found).into_response()
    }
}

/// A path with a query (`/login?notice=logged-out`), encoded by `serde_html_form`.
pub(crate) fn with_query(path: impl Display, query: &impl Serialize) -> String {
    match serde_html_form::to_string(query) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

/// The short messages a redirect can ask the next page to show (`?notice=`): only these keys,
/// never text from the request.
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
}

impl Notice {
    /// `path?notice=…`.
    pub(crate) fn on(self, path: impl Display) -> String {
        with_query(path, &[("notice", self)])
    }

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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn queries_are_encoded_and_notices_are_keys() {
        assert_eq!(
            with_query(Login, &[("next", "/admin/users?q=a b")]),
            "/login?next=%2Fadmin%2Fusers%3Fq%3Da+b"
        );
        assert_eq!(Notice::Saved.on(Profile), "/profile?notice=saved");
        assert_eq!(
            Notice::LoginExpired.on(Login),
            "/login?notice=login-expired"
        );
        assert_eq!(with_query(Home, &[("x", None::<&str>)]), "/home");
    }
}
