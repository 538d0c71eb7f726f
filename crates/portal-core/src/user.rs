//! The user: one person's portal identity, its role, status and permissions.
//!
//! State machine (the lock sits on top of it, so unlocking restores the state underneath):
//!
//! ```text
//! register ─▶ PendingVerification ─code─▶ Active (no customer yet)
//!                                            │ link by number / legacy
//!                                            ├─ customer has an admin ─▶ PendingActivation ─activate─▶ Active
//!                                            └─ no admin ───────────────────────────────────────────▶ Active
//! invite ───▶ Invited ─accept + code─▶ Active
//! any status ─lock─▶ Locked ─unlock─▶ (previous status)
//! ```

use crate::audit::ActorRef;
use crate::customer::{AffiliationKey, CorruptRecord};
use crate::ids::{CustomerId, UserId};
use crate::mfa::MfaState;
use crate::password::PasswordHash;
use crate::permission::{PermissionKey, PermissionSet};
use crate::values::{EmailAddress, FreeText, Language, PersonName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a user may do beyond using the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// "Mitarbeiter": an ordinary user of a customer.
    Employee,
    /// Manages the users of exactly one customer.
    Administrator,
    /// Vendor staff: manages customers and approves admin requests; belongs to no customer.
    Operator,
}

impl Role {
    /// Stable key (`employee`, `administrator`, `operator`).
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Employee => "employee",
            Self::Administrator => "administrator",
            Self::Operator => "operator",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "employee" => Some(Self::Employee),
            "administrator" => Some(Self::Administrator),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

/// Where a user is in the lifecycle, ignoring locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Registered, the mailed code not yet confirmed. Not an account yet: cannot log in, holds no
    /// claim on the address.
    PendingVerification,
    /// Created by an admin's invitation; the person has not finished registration.
    Invited,
    /// Linked to a customer that has an admin; waits for the admin to activate.
    PendingActivation,
    /// Can log in.
    Active,
}

impl AccountState {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Invited => "invited",
            Self::PendingActivation => "pending_activation",
            Self::Active => "active",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "pending_verification" => Some(Self::PendingVerification),
            "invited" => Some(Self::Invited),
            "pending_activation" => Some(Self::PendingActivation),
            "active" => Some(Self::Active),
            _ => None,
        }
    }
}

/// The status shown in the user table: the account state, or `Locked` when a lock is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Code not yet confirmed.
    PendingVerification,
    /// Invitation not yet accepted.
    Invited,
    /// Waiting for the admin.
    PendingActivation,
    /// "Aktiv".
    Active,
    /// "Gesperrt".
    Locked,
}

impl UserStatus {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Invited => "invited",
            Self::PendingActivation => "pending_activation",
            Self::Active => "active",
            Self::Locked => "locked",
        }
    }
}

/// An administrator's lock on a user ("Benutzer sperren"): who, when, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Who locked.
    pub by: ActorRef,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, if given.
    pub reason: Option<FreeText>,
}

/// Everything stored about a user. Read it through [`User::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Login and contact address.
    pub email: EmailAddress,
    /// First name.
    pub first_name: PersonName,
    /// Last name.
    pub last_name: PersonName,
    /// Language for mails and pages.
    pub language: Language,
    /// Role.
    pub role: Role,
    /// Lifecycle state.
    pub state: AccountState,
    /// Admin lock, if any.
    pub lock: Option<Lock>,
    /// The customer the user belongs to (none for operators and before linking).
    pub customer_id: Option<CustomerId>,
    /// Chosen product affiliation.
    pub affiliation: Option<AffiliationKey>,
    /// Individually granted permissions.
    pub permissions: PermissionSet,
    /// Password hash (none until registration is complete).
    pub password_hash: Option<PasswordHash>,
    /// Second factors.
    pub mfa: MfaState,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// A transition that the user's current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not allowed in status {status:?}")]
pub struct WrongState {
    /// The status the user is in.
    pub status: UserStatus,
}

/// A portal user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    rec: UserRecord,
}

impl User {
    /// A new registration, waiting for its code.
    #[must_use]
    pub fn new_pending(
        id: UserId,
        email: EmailAddress,
        first_name: PersonName,
        last_name: PersonName,
        language: Language,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            rec: UserRecord {
                id,
                email,
                first_name,
                last_name,
                language,
                role: Role::Employee,
                state: AccountState::PendingVerification,
                lock: None,
                customer_id: None,
                affiliation: None,
                permissions: PermissionSet::new(),
                password_hash: None,
                mfa: MfaState::default(),
                last_login_at: None,
                created_at: now,
                updated_at: now,
                version: 0,
            },
        }
    }

    /// A user created by an invitation (an admin adding an employee, or the setup of an operator).
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new_invited(
        id: UserId,
        email: EmailAddress,
        first_name: PersonName,
        last_name: PersonName,
        language: Language,
        role: Role,
        customer_id: Option<CustomerId>,
        permissions: PermissionSet,
        now: DateTime<Utc>,
    ) -> Self {
        let mut user = Self::new_pending(id, email, first_name, last_name, language, now);
        user.rec.state = AccountState::Invited;
        user.rec.role = role;
        user.rec.customer_id = customer_id;
        user.rec.permissions = permissions;
        user
    }

    /// Rebuilds a user read back from storage.
    ///
    /// # Errors
    /// The record breaks an invariant (an operator with a customer, an admin without one, …).
    pub fn from_record(rec: UserRecord) -> Result<Self, CorruptRecord> {
        let bad = |r: &str| Err(CorruptRecord::new("user", r));
        match rec.role {
            Role::Operator if rec.customer_id.is_some() => {
                return bad("operator belongs to a customer");
            }
            Role::Administrator if rec.customer_id.is_none() => {
                return bad("administrator without customer");
            }
            _ => {}
        }
        match rec.state {
            AccountState::PendingActivation if rec.customer_id.is_none() => {
                return bad("pending activation without customer");
            }
            AccountState::Active | AccountState::PendingActivation
                if rec.password_hash.is_none() =>
            {
                return bad("active account without password");
            }
            _ => {}
        }
        Ok(Self { rec })
    }

    /// The stored fields.
    #[must_use]
    pub fn record(&self) -> &UserRecord {
        &self.rec
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> UserId {
        self.rec.id
    }

    /// E-mail address.
    #[must_use]
    pub fn email(&self) -> &EmailAddress {
        &self.rec.email
    }

    /// First name.
    #[must_use]
    pub fn first_name(&self) -> &PersonName {
        &self.rec.first_name
    }

    /// Last name.
    #[must_use]
    pub fn last_name(&self) -> &PersonName {
        &self.rec.last_name
    }

    /// "First Last".
    #[must_use]
    pub fn display_name(&self) -> String {
        format!("{} {}", self.rec.first_name, self.rec.last_name)
    }

    /// Language.
    #[must_use]
    pub fn language(&self) -> Language {
        self.rec.language
    }

    /// Role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.rec.role
    }

    /// Lifecycle state (ignoring the lock).
    #[must_use]
    pub fn state(&self) -> AccountState {
        self.rec.state
    }

    /// The status shown in the user table.
    #[must_use]
    pub fn status(&self) -> UserStatus {
        if self.rec.lock.is_some() {
            return UserStatus::Locked;
        }
        match self.rec.state {
            AccountState::PendingVerification => UserStatus::PendingVerification,
            AccountState::Invited => UserStatus::Invited,
            AccountState::PendingActivation => UserStatus::PendingActivation,
            AccountState::Active => UserStatus::Active,
        }
    }

    /// The lock, if any.
    #[must_use]
    pub fn lock(&self) -> Option<&Lock> {
        self.rec.lock.as_ref()
    }

    /// The customer, if linked.
    #[must_use]
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.rec.customer_id
    }

    /// Chosen affiliation.
    #[must_use]
    pub fn affiliation(&self) -> Option<&AffiliationKey> {
        self.rec.affiliation.as_ref()
    }

    /// Individually granted permissions.
    #[must_use]
    pub fn permissions(&self) -> &PermissionSet {
        &self.rec.permissions
    }

    /// Password hash.
    #[must_use]
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.rec.password_hash.as_ref()
    }

    /// Second factors.
    #[must_use]
    pub fn mfa(&self) -> &MfaState {
        &self.rec.mfa
    }

    /// Last successful login.
    #[must_use]
    pub fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.rec.last_login_at
    }

    /// Version for optimistic concurrency.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.rec.version
    }

    /// Active and not locked: the precondition of every protected action (R1).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.rec.state == AccountState::Active && self.rec.lock.is_none()
    }

    /// May start a session: has a password, is not locked, and has finished registration.
    #[must_use]
    pub fn can_log_in(&self) -> bool {
        self.rec.password_hash.is_some()
            && self.rec.lock.is_none()
            && matches!(
                self.rec.state,
                AccountState::Active | AccountState::PendingActivation
            )
    }

    /// An active, unlocked administrator of this customer.
    #[must_use]
    pub fn is_active_admin_of(&self, customer: CustomerId) -> bool {
        self.rec.role == Role::Administrator
            && self.rec.customer_id == Some(customer)
            && self.is_active()
    }

    /// An active, unlocked operator.
    #[must_use]
    pub fn is_active_operator(&self) -> bool {
        self.rec.role == Role::Operator && self.is_active()
    }

    /// Whether the user holds a permission individually.
    #[must_use]
    pub fn holds(&self, key: &PermissionKey) -> bool {
        self.rec.permissions.contains(key)
    }

    /// Key for sorting user lists by name: lower-case "last first", then e-mail. Keyset paging
    /// orders by (sort key, id).
    #[must_use]
    pub fn sort_key(&self) -> String {
        format!(
            "{} {}\u{1f}{}",
            self.rec.last_name.as_str().to_lowercase(),
            self.rec.first_name.as_str().to_lowercase(),
            self.rec.email
        )
    }

    /// Lower-case text searched by the user list's search box: first name, last name, e-mail.
    #[must_use]
    pub fn search_text(&self) -> String {
        format!(
            "{} {} {}",
            self.rec.first_name.as_str().to_lowercase(),
            self.rec.last_name.as_str().to_lowercase(),
            self.rec.email
        )
    }

    fn changed(&mut self, now: DateTime<Utc>) {
        self.rec.updated_at = now;
    }

    fn wrong_state(&self) -> WrongState {
        WrongState {
            status: self.status(),
        }
    }

    /// The mailed code was confirmed: a registration or an accepted invitation becomes active.
    ///
    /// # Errors
    /// The user is neither pending verification nor invited, or is locked.
    pub fn complete_registration(
        &mut self,
        password_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<(), WrongState> {
        if self.rec.lock.is_some()
            || !matches!(
                self.rec.state,
                AccountState::PendingVerification | AccountState::Invited
            )
        {
            return Err(self.wrong_state());
        }
        self.rec.password_hash = Some(password_hash);
        self.rec.state = AccountState::Active;
        self.changed(now);
        Ok(())
    }

    /// Replaces the names and language of a pending registration or an invitation being accepted.
    pub fn set_profile(
        &mut self,
        first_name: PersonName,
        last_name: PersonName,
        language: Language,
        now: DateTime<Utc>,
    ) {
        self.rec.first_name = first_name;
        self.rec.last_name = last_name;
        self.rec.language = language;
        self.changed(now);
    }

    /// Stores the chosen product affiliation (allowed until the user is linked).
    ///
    /// # Errors
    /// Already linked to a customer, or not an active employee.
    pub fn choose_affiliation(
        &mut self,
        key: AffiliationKey,
        now: DateTime<Utc>,
    ) -> Result<(), WrongState> {
        if !self.is_active() || self.rec.customer_id.is_some() || self.rec.role != Role::Employee {
            return Err(self.wrong_state());
        }
        self.rec.affiliation = Some(key);
        self.changed(now);
        Ok(())
    }

    /// Links the user to a customer (R8). With `needs_activation` the user waits for the
    /// customer's admin; otherwise the user is active at once.
    ///
    /// # Errors
    /// Already linked, not active, or not an employee.
    pub fn link_to_customer(
        &mut self,
        customer: CustomerId,
        permissions: PermissionSet,
        needs_activation: bool,
        now: DateTime<Utc>,
    ) -> Result<(), WrongState> {
        if !self.is_active() || self.rec.customer_id.is_some() || self.rec.role != Role::Employee {
            return Err(self.wrong_state());
        }
        self.rec.customer_id = Some(customer);
        self.rec.permissions = permissions;
        if needs_activation {
            self.rec.state = AccountState::PendingActivation;
        }
        self.changed(now);
        Ok(())
    }

    /// An admin activates a waiting user.
    ///
    /// # Errors
    /// The user is not pending activation (or is locked).
    pub fn activate(&mut self, now: DateTime<Utc>) -> Result<(), WrongState> {
        if self.rec.state != AccountState::PendingActivation || self.rec.lock.is_some() {
            return Err(self.wrong_state());
        }
        self.rec.state = AccountState::Active;
        self.changed(now);
        Ok(())
    }

    /// Locks the user.
    ///
    /// # Errors
    /// Already locked, or still pending verification (not an account yet).
    pub fn lock_with(&mut self, lock: Lock, now: DateTime<Utc>) -> Result<(), WrongState> {
        if self.rec.lock.is_some() || self.rec.state == AccountState::PendingVerification {
            return Err(self.wrong_state());
        }
        self.rec.lock = Some(lock);
        self.changed(now);
        Ok(())
    }

    /// Lifts the lock; the user returns to the state underneath.
    ///
    /// # Errors
    /// Not locked.
    pub fn unlock(&mut self, now: DateTime<Utc>) -> Result<(), WrongState> {
        if self.rec.lock.is_none() {
            return Err(self.wrong_state());
        }
        self.rec.lock = None;
        self.changed(now);
        Ok(())
    }

    /// Replaces the individually granted permissions.
    pub fn set_permissions(&mut self, permissions: PermissionSet, now: DateTime<Utc>) {
        self.rec.permissions = permissions;
        self.changed(now);
    }

    /// Makes the user an administrator of their customer.
    ///
    /// # Errors
    /// Not linked to a customer, not active, or not an employee.
    pub fn promote(&mut self, now: DateTime<Utc>) -> Result<(), WrongState> {
        if self.rec.role != Role::Employee || self.rec.customer_id.is_none() || !self.is_active() {
            return Err(self.wrong_state());
        }
        self.rec.role = Role::Administrator;
        self.changed(now);
        Ok(())
    }

    /// Takes administrator rights away.
    ///
    /// # Errors
    /// Not an administrator.
    pub fn demote(&mut self, now: DateTime<Utc>) -> Result<(), WrongState> {
        if self.rec.role != Role::Administrator {
            return Err(self.wrong_state());
        }
        self.rec.role = Role::Employee;
        self.changed(now);
        Ok(())
    }

    /// A successful login.
    pub fn record_login(&mut self, now: DateTime<Utc>) {
        self.rec.last_login_at = Some(now);
        self.changed(now);
    }

    /// Sets a new password hash (reset, change, rehash).
    pub fn set_password(&mut self, hash: PasswordHash, now: DateTime<Utc>) {
        self.rec.password_hash = Some(hash);
        self.changed(now);
    }

    /// Changes the second factors.
    pub fn change_mfa(&mut self, change: impl FnOnce(&mut MfaState), now: DateTime<Utc>) {
        change(&mut self.rec.mfa);
        self.changed(now);
    }

    /// Replaces the e-mail address (after the new one was confirmed by a code).
    pub fn change_email(&mut self, email: EmailAddress, now: DateTime<Utc>) {
        self.rec.email = email;
        self.changed(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ActorRef;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 9, 10, 0).unwrap()
    }

    fn hash() -> PasswordHash {
        PasswordHash::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA").unwrap()
    }

    fn pending() -> User {
        User::new_pending(
            UserId::from_uuid(Uuid::from_u128(1)),
            EmailAddress::parse("anna@example.com").unwrap(),
            PersonName::parse("Anna").unwrap(),
            PersonName::parse("Schmidt").unwrap(),
            Language::De,
            now(),
        )
    }

    fn active() -> User {
        let mut u = pending();
        u.complete_registration(hash(), now()).unwrap();
        u
    }

    fn cust() -> CustomerId {
        CustomerId::from_uuid(Uuid::from_u128(9))
    }

    fn lock() -> Lock {
        Lock {
            by: ActorRef::system(),
            at: now(),
            reason: None,
        }
    }

    #[test]
    fn pending_user_cannot_log_in_until_the_code_is_confirmed() {
        let mut u = pending();
        assert_eq!(u.status(), UserStatus::PendingVerification);
        assert!(!u.can_log_in());
        u.complete_registration(hash(), now()).unwrap();
        assert_eq!(u.status(), UserStatus::Active);
        assert!(u.can_log_in());
        assert!(u.complete_registration(hash(), now()).is_err());
    }

    #[test]
    fn linking_to_a_customer_with_an_admin_waits_for_activation() {
        let mut u = active();
        u.link_to_customer(cust(), PermissionSet::new(), true, now())
            .unwrap();
        assert_eq!(u.status(), UserStatus::PendingActivation);
        assert!(
            u.can_log_in(),
            "a waiting user may log in to see the waiting page"
        );
        assert!(!u.is_active());
        assert!(
            u.link_to_customer(cust(), PermissionSet::new(), false, now())
                .is_err(),
            "linking happens once"
        );
        u.activate(now()).unwrap();
        assert!(u.is_active());
        assert!(u.activate(now()).is_err(), "activating an active user");
    }

    #[test]
    fn lock_hides_the_state_and_unlock_restores_it() {
        let mut u = active();
        u.link_to_customer(cust(), PermissionSet::new(), true, now())
            .unwrap();
        u.lock_with(lock(), now()).unwrap();
        assert_eq!(u.status(), UserStatus::Locked);
        assert!(!u.can_log_in());
        assert!(u.lock_with(lock(), now()).is_err(), "double lock");
        assert!(u.activate(now()).is_err(), "locked users are not activated");
        u.unlock(now()).unwrap();
        assert_eq!(u.status(), UserStatus::PendingActivation);
        assert!(u.unlock(now()).is_err());
    }

    #[test]
    fn pending_registrations_cannot_be_locked() {
        assert!(pending().lock_with(lock(), now()).is_err());
    }

    #[test]
    fn promotion_needs_an_active_linked_employee() {
        let mut u = active();
        assert!(u.promote(now()).is_err(), "no customer");
        u.link_to_customer(cust(), PermissionSet::new(), false, now())
            .unwrap();
        u.promote(now()).unwrap();
        assert!(u.is_active_admin_of(cust()));
        assert!(u.promote(now()).is_err());
        u.demote(now()).unwrap();
        assert_eq!(u.role(), Role::Employee);
        assert!(u.demote(now()).is_err());
    }

    #[test]
    fn affiliation_only_before_linking() {
        let mut u = active();
        let k = AffiliationKey::parse("at").unwrap();
        u.choose_affiliation(k.clone(), now()).unwrap();
        u.link_to_customer(cust(), PermissionSet::new(), false, now())
            .unwrap();
        assert!(u.choose_affiliation(k, now()).is_err());
    }

    #[test]
    fn corrupt_records_are_refused() {
        let mut rec = active().record().clone();
        rec.role = Role::Operator;
        rec.customer_id = Some(cust());
        assert!(User::from_record(rec).is_err());
        let mut rec = active().record().clone();
        rec.password_hash = None;
        assert!(User::from_record(rec).is_err());
        let mut rec = active().record().clone();
        rec.role = Role::Administrator;
        assert!(User::from_record(rec).is_err());
    }

    #[test]
    fn sort_and_search_keys_are_lower_case() {
        let u = active();
        assert!(u.sort_key().starts_with("schmidt anna"));
        assert_eq!(u.search_text(), "anna schmidt anna@example.com");
    }
}
