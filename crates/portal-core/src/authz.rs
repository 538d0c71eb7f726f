//! Who may do what: the authorization rules R1–R3 in one place. Use cases call these on data
//! they loaded in the same attempt as their commit, so a decision is never made on a stale
//! session snapshot (R6).

use crate::customer::Customer;
use crate::ids::{CustomerId, UserId};
use crate::permission::PermissionKey;
use crate::user::{Role, User};

/// Who is acting, as loaded fresh from storage.
#[allow(clippy::large_enum_variant)] // short-lived, one per use-case attempt
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    /// The system itself (command line, maintenance). Trusted.
    System,
    /// A user, as stored right now.
    User(User),
}

/// In what capacity an actor may manage a customer's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The system.
    System,
    /// An operator (vendor staff): any customer.
    Operator(UserId),
    /// An administrator of this one customer.
    Admin {
        /// The administrator.
        admin: UserId,
        /// Their customer.
        customer: CustomerId,
    },
}

impl Authority {
    /// Whether R5 (an admin's own action never leaves the customer without an admin) binds.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin { .. })
    }

    /// The acting user, if any.
    #[must_use]
    pub fn user(&self) -> Option<UserId> {
        match self {
            Self::System => None,
            Self::Operator(u) => Some(*u),
            Self::Admin { admin, .. } => Some(*admin),
        }
    }
}

/// The answer to "may this actor manage that customer's users?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Yes, in this capacity.
    Granted(Authority),
    /// The actor belongs to the customer but is not its administrator (R3): "forbidden".
    Forbidden,
    /// The customer is not the actor's: answered exactly like an unknown customer (R2).
    NotFound,
}

/// R2 + R3: only an active administrator of the customer, an active operator or the system may
/// manage its users, permissions, locks and deletions. Members of the customer who are not its
/// administrators are refused; everybody else gets "not found", as for an unknown customer.
#[must_use]
pub fn management_access(actor: &Acting, customer: CustomerId) -> Access {
    match actor {
        Acting::System => Access::Granted(Authority::System),
        Acting::User(u) if u.is_active_operator() => Access::Granted(Authority::Operator(u.id())),
        Acting::User(u) if u.is_active_admin_of(customer) => Access::Granted(Authority::Admin {
            admin: u.id(),
            customer,
        }),
        Acting::User(u) if u.customer_id() == Some(customer) => Access::Forbidden,
        Acting::User(_) => Access::NotFound,
    }
}

/// Operator-only actions (customers, admin-request decisions).
#[must_use]
pub fn is_operator(actor: &Acting) -> bool {
    match actor {
        Acting::System => true,
        Acting::User(u) => u.is_active_operator(),
    }
}

/// R1: access to a protected area = the user is active and not locked ∧ belongs to the customer ∧
/// the customer is entitled to the area ∧ (the user is its administrator ∨ holds the permission).
/// Deny by default: no customer, no access.
#[must_use]
pub fn may_access_area(user: &User, customer: Option<&Customer>, area: &PermissionKey) -> bool {
    let Some(customer) = customer else {
        return false;
    };
    user.is_active()
        && user.customer_id() == Some(customer.id())
        && customer.is_entitled(area)
        && (user.role() == Role::Administrator || user.holds(area))
}

/// R22: whether `user` must have a second factor before using the portal. Operators when
/// `operators_need_one` ([`PortalConfig::operators_need_second_factor`](crate::config::PortalConfig::operators_need_second_factor));
/// a customer's users as its [`SecondFactorPolicy`](crate::customer::SecondFactorPolicy) says
/// (its administrators, or everybody). Users without a customer need none.
#[must_use]
pub fn second_factor_required(
    user: &User,
    customer: Option<&Customer>,
    operators_need_one: bool,
) -> bool {
    use crate::customer::SecondFactorPolicy;
    if user.role() == Role::Operator {
        return operators_need_one;
    }
    let Some(customer) = customer.filter(|c| user.customer_id() == Some(c.id())) else {
        return false;
    };
    match customer.second_factor_policy() {
        SecondFactorPolicy::None => false,
        SecondFactorPolicy::Administrators => user.role() == Role::Administrator,
        SecondFactorPolicy::AllUsers => true,
    }
}

/// Whether an application the user signs in to through Portal's OpenID Connect provider
/// requires a second factor: one of the user's `grants` (any state — a grant the store still
/// holds shows the user signs in there) is at one of `clients` that requires one and is not
/// disabled. Such a user keeps a last second factor as [`second_factor_required`] keeps it:
/// without one, the password alone would be enough to set up a new factor and so to pass the
/// application's requirement.
#[must_use]
pub fn client_requires_second_factor(
    grants: &[crate::oidc::Grant],
    clients: &[crate::oidc::Client],
) -> bool {
    clients
        .iter()
        .filter(|c| c.require_second_factor && !c.disabled)
        .any(|c| grants.iter().any(|g| g.client_id == c.id))
}

/// R22: whether `user` is required to have a second factor and has none yet: such a user is
/// led to set one up and can use nothing else until done.
#[must_use]
pub fn second_factor_missing(
    user: &User,
    customer: Option<&Customer>,
    operators_need_one: bool,
) -> bool {
    second_factor_required(user, customer, operators_need_one) && !user.mfa().is_enabled()
}

/// R5: whether a change by `authority` after which `target` is no longer an active
/// administrator of `customer` (`after_admin` false) would leave the customer without one: only
/// an administrator's own change is held to it, and only when no other active administrator
/// remains (`other_active_admins`).
#[must_use]
pub fn leaves_without_admin(
    authority: &Authority,
    target: &User,
    customer: CustomerId,
    after_admin: bool,
    other_active_admins: usize,
) -> bool {
    authority.is_admin()
        && target.is_active_admin_of(customer)
        && !after_admin
        && other_active_admins == 0
}

/// What the user table offers on a user's row: only what the rules would allow, so that a
/// refusal never comes after a confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::struct_excessive_bools)] // one flag per offered action
pub struct RowActions {
    /// "Berechtigungen": offered once the user is activated ([`may_set_permissions`]).
    pub permissions: bool,
    /// "Benutzer sperren": not locked yet, and not the last active administrator (R5).
    pub lock: bool,
    /// "Benutzer entsperren".
    pub unlock: bool,
    /// "Benutzer löschen": not the last active administrator (R5).
    pub delete: bool,
    /// "Freischalten": waits for activation.
    pub activate: bool,
    /// A fresh invitation link: invited, not registered yet.
    pub reinvite: bool,
}

/// The actions of a row for `target` of `customer`, as `authority` may use them;
/// `other_active_admins` counts the customer's active administrators other than `target`.
#[must_use]
pub fn row_actions(
    authority: &Authority,
    target: &User,
    customer: CustomerId,
    other_active_admins: usize,
) -> RowActions {
    use crate::user::UserStatus;
    let status = target.status();
    let last_admin = leaves_without_admin(authority, target, customer, false, other_active_admins);
    RowActions {
        permissions: may_set_permissions(target),
        lock: !matches!(status, UserStatus::Locked | UserStatus::PendingVerification)
            && !last_admin,
        unlock: status == UserStatus::Locked,
        delete: !last_admin,
        activate: status == UserStatus::PendingActivation,
        reinvite: status == UserStatus::Invited,
    }
}

/// Whether the user table offers a user's permissions: not while they wait for an administrator
/// to activate them ("Freischalten" comes first; a waiting user enters no area whatever they hold,
/// R1, so permissions set then would only confuse).
#[must_use]
pub fn may_set_permissions(target: &User) -> bool {
    target.status() != crate::user::UserStatus::PendingActivation
}

#[cfg(test)]
mod tests {
    use super::client_requires_second_factor;
    use crate::ids::{SessionId, UserId};
    use crate::oidc::{AccessTokenFormat, Client, Grant};
    use chrono::DateTime;
    use uuid::Uuid;

    fn client(id: &str, require_second_factor: bool, disabled: bool) -> Client {
        Client {
            id: id.into(),
            name: id.into(),
            secret_hash: None,
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            public: true,
            first_party: true,
            required_permission: None,
            require_second_factor,
            access_tokens: AccessTokenFormat::Opaque,
            disabled,
            created_at: DateTime::UNIX_EPOCH,
            version: 1,
        }
    }

    fn grant(client_id: &str, revoked: bool) -> Grant {
        Grant {
            id: Uuid::from_u128(7),
            client_id: client_id.into(),
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            session_id: SessionId::from_uuid(Uuid::from_u128(2)),
            scopes: vec!["openid".into()],
            nonce: None,
            auth_time: DateTime::UNIX_EPOCH,
            amr: vec!["hwk".into(), "user".into()],
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: None,
            created_at: DateTime::UNIX_EPOCH,
            revoked_at: revoked.then_some(DateTime::UNIX_EPOCH),
            version: 1,
        }
    }

    #[test]
    fn a_client_the_user_signs_in_to_that_requires_a_second_factor_requires_one() {
        let clients = [client("crm", false, false), client("erp", true, false)];
        assert!(client_requires_second_factor(
            &[grant("erp", false)],
            &clients
        ));
        // A grant revoked since (a logout, a token used twice) still shows the user signs in
        // there.
        assert!(client_requires_second_factor(
            &[grant("erp", true)],
            &clients
        ));
    }

    #[test]
    fn clients_the_user_never_signed_in_to_or_that_are_off_require_nothing() {
        let clients = [
            client("crm", false, false),
            client("erp", true, false),
            client("old", true, true),
        ];
        assert!(!client_requires_second_factor(&[], &clients));
        assert!(!client_requires_second_factor(
            &[grant("crm", false)],
            &clients
        ));
        assert!(
            !client_requires_second_factor(&[grant("old", false)], &clients),
            "a disabled client signs no one in"
        );
        assert!(
            !client_requires_second_factor(&[grant("gone", false)], &clients),
            "a grant of a client deleted since"
        );
    }
}
