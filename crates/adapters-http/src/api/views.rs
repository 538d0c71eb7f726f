//! Response bodies shared by several endpoints, and their conversion from the core's types.

use chrono::{DateTime, Utc};
use portal_core::admin_request::AdminRequestStatus;
use portal_core::customer::{Customer, ServiceChannel};
use portal_core::mfa::{MfaMethod, RecoveryChannel};
use portal_core::service::{AdminRequestView, AuditView};
use portal_core::session::{Session, SessionKind};
use portal_core::user::{Role, User, UserStatus};
use portal_core::values::Language;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    /// Registered, code not confirmed yet.
    PendingVerification,
    /// Invited, registration not finished.
    Invited,
    /// Waiting for an administrator to activate.
    PendingActivation,
    /// Active.
    Active,
    /// Locked.
    Locked,
}

impl From<UserStatus> for StatusView {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::PendingVerification => Self::PendingVerification,
            UserStatus::Invited => Self::Invited,
            UserStatus::PendingActivation => Self::PendingActivation,
            UserStatus::Active => Self::Active,
            UserStatus::Locked => Self::Locked,
        }
    }
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    /// Ordinary user of a customer.
    Employee,
    /// Manages the users of one customer.
    Administrator,
    /// Vendor staff.
    Operator,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        match r {
            Role::Employee => Self::Employee,
            Role::Administrator => Self::Administrator,
            Role::Operator => Self::Operator,
        }
    }
}

/// A language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LanguageView {
    /// Deutsch.
    De,
    /// English.
    En,
}

impl From<Language> for LanguageView {
    fn from(l: Language) -> Self {
        match l {
            Language::De => Self::De,
            Language::En => Self::En,
        }
    }
}

impl From<LanguageView> for Language {
    fn from(l: LanguageView) -> Self {
        match l {
            LanguageView::De => Self::De,
            LanguageView::En => Self::En,
        }
    }
}

/// A user.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// E-mail address.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Status.
    pub status: StatusView,
    /// Role.
    pub role: RoleView,
    /// Language of mails and pages.
    pub language: LanguageView,
    /// The customer's number (none for operators and users not linked yet).
    pub customer_number: Option<String>,
    /// Last login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Granted permission keys.
    pub permissions: Vec<String>,
}

impl UserView {
    /// A user of the customer with this number (if any).
    #[must_use]
    pub fn new(user: &User, customer_number: Option<String>) -> Self {
        Self {
            id: user.id().as_uuid(),
            email: user.email().to_string(),
            first_name: user.first_name().to_string(),
            last_name: user.last_name().to_string(),
            status: user.status().into(),
            role: user.role().into(),
            language: user.language().into(),
            customer_number,
            last_login_at: user.last_login_at(),
            permissions: user.permissions().iter().map(ToString::to_string).collect(),
        }
    }
}

/// A second-factor method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodView {
    /// Authenticator app.
    Totp,
    /// Code by SMS.
    Sms,
    /// Code by voice call.
    Voice,
    /// The recovery code.
    RecoveryCode,
    /// A passkey.
    Passkey,
}

impl From<MfaMethod> for MethodView {
    fn from(m: MfaMethod) -> Self {
        match m {
            MfaMethod::Totp => Self::Totp,
            MfaMethod::Sms => Self::Sms,
            MfaMethod::Voice => Self::Voice,
            MfaMethod::RecoveryCode => Self::RecoveryCode,
            MfaMethod::Passkey => Self::Passkey,
        }
    }
}

/// The customer a user belongs to.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct CustomerRef {
    /// Number (nine digits).
    pub number: String,
    /// Company name.
    pub name: String,
}

/// The second factors of the logged-in user.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct MfaView {
    /// Whether a second factor is required at login.
    pub enabled: bool,
    /// The methods a login can be finished with.
    pub methods: Vec<MethodView>,
    /// The MFA phone, masked.
    pub phone: Option<String>,
    /// Where a fresh recovery code can be sent: `phone` or `email` (masked target).
    pub recovery_channel: Option<RecoveryChannelView>,
    /// The passkeys, oldest first.
    #[serde(default)]
    pub passkeys: Vec<PasskeyView>,
}

/// A passkey of the logged-in user.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct PasskeyView {
    /// Its id.
    pub id: uuid::Uuid,
    /// The user's name for it.
    pub name: String,
    /// Registered at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last used to sign in or as the second factor.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Synced passkey (may be backed up by its provider).
    pub backup_eligible: bool,
    /// Backed up now.
    pub backed_up: bool,
}

impl From<&portal_core::passkey::Passkey> for PasskeyView {
    fn from(p: &portal_core::passkey::Passkey) -> Self {
        Self {
            id: p.id,
            name: p.name.to_string(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            backup_eligible: p.backup_eligible,
            backed_up: p.backup_state,
        }
    }
}

/// Where a fresh recovery code goes.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct RecoveryChannelView {
    /// `phone` or `email`.
    pub kind: String,
    /// The phone (masked) or the address.
    pub to: String,
}

/// The logged-in user.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct MeView {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// The chosen product affiliation.
    pub affiliation: Option<String>,
    /// The customer.
    pub customer: Option<CustomerRef>,
    /// Second factors.
    pub mfa: MfaView,
}

impl MeView {
    /// The view of `user` of `customer`.
    #[must_use]
    pub fn new(user: &User, customer: Option<&Customer>) -> Self {
        let mfa = user.mfa();
        Self {
            user: UserView::new(user, customer.map(|c| c.number().to_string())),
            affiliation: user.affiliation().map(ToString::to_string),
            customer: customer.map(|c| CustomerRef {
                number: c.number().to_string(),
                name: c.name().to_string(),
            }),
            mfa: MfaView {
                enabled: mfa.is_enabled(),
                methods: mfa.methods().into_iter().map(Into::into).collect(),
                phone: mfa.phone.as_ref().map(|p| p.number.masked()),
                recovery_channel: mfa.recovery_channel.as_ref().map(|c| match c {
                    RecoveryChannel::Phone(p) => RecoveryChannelView {
                        kind: "phone".into(),
                        to: p.masked(),
                    },
                    RecoveryChannel::Email(e) => RecoveryChannelView {
                        kind: "email".into(),
                        to: e.to_string(),
                    },
                }),
                passkeys: mfa.passkeys.iter().map(Into::into).collect(),
            },
        }
    }
}

/// A page of the user table.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct UserPageView {
    /// The users, ordered by name.
    pub items: Vec<UserView>,
    /// Cursor of the next page, or null.
    pub next: Option<String>,
    /// Matching users, counted up to 10,000.
    pub total: u64,
    /// Whether `total` hit the cap ("10.000+").
    pub total_capped: bool,
    /// Rows per page.
    pub per_page: u32,
}

/// One of the user's sessions or remembered devices.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct SessionView {
    /// Id (end it with `DELETE /api/v1/me/sessions/{id}`).
    pub id: Uuid,
    /// `session` or `remembered_device`.
    pub kind: String,
    /// Whether it is the session of this request.
    pub current: bool,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Last activity.
    pub last_seen_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// Client address at the start.
    pub ip: Option<String>,
    /// Browser at the start.
    pub user_agent: Option<String>,
}

impl SessionView {
    /// The view of a session; `current` is the request's session.
    #[must_use]
    pub fn new(s: &Session, current: bool) -> Self {
        let r = s.record();
        Self {
            id: s.id().as_uuid(),
            kind: match s.kind() {
                SessionKind::RememberedDevice => "remembered_device".into(),
                SessionKind::Full => "session".into(),
                SessionKind::MfaPending { .. } => "pending_login".into(),
            },
            current,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            ip: r.client.ip.clone(),
            user_agent: r.client.user_agent.clone(),
        }
    }
}

/// A sessions list.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub items: Vec<SessionView>,
    /// Always null (one page).
    pub next: Option<String>,
}

/// An admin request's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminRequestStatusView {
    /// An existing administrator must consent.
    AwaitingConsent,
    /// An operator decides.
    AwaitingApproval,
    /// Granted.
    Approved,
    /// Refused.
    Rejected,
}

impl From<AdminRequestStatus> for AdminRequestStatusView {
    fn from(s: AdminRequestStatus) -> Self {
        match s {
            AdminRequestStatus::AwaitingConsent => Self::AwaitingConsent,
            AdminRequestStatus::AwaitingApproval => Self::AwaitingApproval,
            AdminRequestStatus::Approved => Self::Approved,
            AdminRequestStatus::Rejected => Self::Rejected,
        }
    }
}

/// An admin request.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct AdminRequestOut {
    /// Id.
    pub id: Uuid,
    /// Status.
    pub status: AdminRequestStatusView,
    /// The requester's id.
    pub requester_id: Uuid,
    /// The requester's name (none if deleted meanwhile).
    pub requester_name: Option<String>,
    /// The requester's address.
    pub requester_email: Option<String>,
    /// The customer's number.
    pub customer_number: Option<String>,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl AdminRequestOut {
    /// From a request alone (the requester and customer known by id only).
    #[must_use]
    pub fn bare(r: &portal_core::admin_request::AdminRequest) -> Self {
        let rec = r.record();
        Self {
            id: r.id().as_uuid(),
            status: r.status().into(),
            requester_id: r.requester().as_uuid(),
            requester_name: None,
            requester_email: None,
            customer_number: None,
            customer_name: None,
            created_at: rec.created_at,
            updated_at: rec.updated_at,
        }
    }

    /// From a list view.
    #[must_use]
    pub fn from_view(v: &AdminRequestView) -> Self {
        let mut out = Self::bare(&v.request);
        out.requester_name = v.requester.as_ref().map(User::display_name);
        out.requester_email = v.requester.as_ref().map(|u| u.email().to_string());
        out.customer_number = v.customer.as_ref().map(|c| c.number().to_string());
        out.customer_name = v.customer.as_ref().map(|c| c.name().to_string());
        out
    }
}

/// A list of admin requests.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct AdminRequestList {
    /// The requests.
    pub items: Vec<AdminRequestOut>,
    /// Always null (one page).
    pub next: Option<String>,
}

/// One change-log entry.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Position in its chain.
    pub seq: u64,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Category key (`user.locked`, …).
    pub category: String,
    /// Category label in the requested language.
    pub category_label: String,
    /// Details.
    pub details: String,
    /// Who did it (a name, "Portal-Mitarbeiter", "System", or a placeholder for deleted users).
    pub actor: String,
    /// Whom it concerns.
    pub subject: Option<String>,
}

impl AuditEntryView {
    /// From the core's row view.
    #[must_use]
    pub fn new(v: &AuditView, language: Language) -> Self {
        Self {
            seq: v.entry.seq,
            at: v.entry.record.at,
            category: v.entry.record.category.key().to_owned(),
            category_label: v.entry.record.category.label(language).to_owned(),
            details: v.entry.record.details.clone(),
            actor: v.actor_name.clone(),
            subject: v.subject_name.clone(),
        }
    }
}

/// A page of the change log.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct AuditPageView {
    /// Newest first.
    pub items: Vec<AuditEntryView>,
    /// Cursor of the next (older) page, or null.
    pub next: Option<String>,
    /// Rows per page.
    pub per_page: u32,
}

/// How a customer is served.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ChannelView {
    /// `direct` or `partner`.
    pub kind: String,
    /// The partner's name.
    pub partner: Option<String>,
}

/// A customer, for operators.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct CustomerView {
    /// Id.
    pub id: Uuid,
    /// Number (nine digits).
    pub number: String,
    /// Printed number (`D` + nine digits).
    pub printed_number: String,
    /// Company name.
    pub name: String,
    /// Product affiliations.
    pub affiliations: Vec<String>,
    /// Served by the vendor or a partner.
    pub channel: ChannelView,
    /// Entitled areas.
    pub entitlements: Vec<String>,
    /// Permissions joining users get.
    pub default_permissions: Vec<String>,
    /// Who must have a second factor: `none`, `administrators` or `all_users`.
    pub second_factor_policy: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        let r = c.record();
        Self {
            id: c.id().as_uuid(),
            number: c.number().to_string(),
            printed_number: c.number().printed(),
            name: c.name().to_string(),
            affiliations: r.affiliations.iter().map(ToString::to_string).collect(),
            channel: match &r.channel {
                ServiceChannel::Direct => ChannelView {
                    kind: "direct".into(),
                    partner: None,
                },
                ServiceChannel::Partner { name } => ChannelView {
                    kind: "partner".into(),
                    partner: Some(name.to_string()),
                },
            },
            entitlements: c.entitlements().iter().map(ToString::to_string).collect(),
            default_permissions: c
                .default_permissions()
                .iter()
                .map(ToString::to_string)
                .collect(),
            second_factor_policy: c.second_factor_policy().key().to_owned(),
            created_at: r.created_at,
        }
    }
}

/// A page of customers.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct CustomerPageView {
    /// Ordered by number.
    pub items: Vec<CustomerView>,
    /// Cursor of the next page, or null.
    pub next: Option<String>,
    /// Rows per page.
    pub per_page: u32,
}

/// A registration (or e-mail change) in progress: the ticket to send back with the code.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct TicketView {
    /// Send it back with the code (`/auth/register/verify`) and to get a new code.
    pub ticket: String,
    /// When the mailed code expires.
    pub code_expires_at: DateTime<Utc>,
    /// When a new code can be asked for.
    pub resend_available_at: DateTime<Utc>,
}

impl From<portal_core::service::RegistrationTicket> for TicketView {
    fn from(t: portal_core::service::RegistrationTicket) -> Self {
        Self {
            ticket: t.ticket.expose().to_owned(),
            code_expires_at: t.code_expires_at,
            resend_available_at: t.resend_available_at,
        }
    }
}
