//! User management by a customer's administrator (manual 3.2–3.6) or an operator: the user table,
//! invitations, permissions, activation, lock, unlock, delete (R2–R6, R10, R11).
//!
//! Every method addresses the customer by its number and checks, on data loaded in the same
//! attempt as its commit, that the actor manages that customer. A customer or user that is not
//! the actor's answers exactly like an unknown one.

use super::paging::{self, PageRequest, PagingError};
use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::AuditCategory;
use crate::authz::{self, Access, Acting, Authority, management_access};
use crate::customer::Customer;
use crate::error::InfraError;
use crate::ids::{ActionTokenId, UserId};
use crate::mail::MailIntent;
use crate::permission::{GroupKey, PermissionSet};
use crate::ports::{Commit, UniqueKey, UserCursor, UserQuery, Write};
use crate::secret::{SecretString, Token};
use crate::throttle::{MailBudgets, keys};
use crate::token::{ActionToken, TokenPurpose};
use crate::user::{AccountState, Lock, Role, User, UserStatus};
use crate::values::{CustomerNumber, EmailAddress, FreeText, Language, PersonName};

/// Counts in the user table stop at this many ("10.000+").
pub const USER_COUNT_CAP: u64 = 10_000;

/// Why a management action failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Unknown customer or user, or one that is not the actor's (R2).
    #[error("not found")]
    NotFound,
    /// The actor belongs to the customer but is not its administrator (R3).
    #[error("only the customer's administrators may do this")]
    Forbidden,
    /// A bad page request.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// Permissions that are not in the catalog or that the customer is not entitled to (R4).
    #[error("permissions not grantable: {}", .0.join(", "))]
    NotGrantable(Vec<String>),
    /// Unknown permission group.
    #[error("unknown permission group")]
    UnknownGroup,
    /// The user's status does not allow this (activating an active user, unlocking an unlocked
    /// one, re-inviting a registered one, …).
    #[error("not possible while the user is {}", .0.key())]
    WrongState(UserStatus),
    /// The change would leave the customer without an active administrator (R5).
    #[error("the customer would be left without an administrator")]
    LastAdmin,
    /// The address belongs to a user of this customer already.
    #[error("this address belongs to a user of this customer already")]
    AlreadyMember,
    /// The address cannot be invited (it has an account elsewhere).
    #[error("this address cannot be invited")]
    EmailUnavailable,
    /// The sender's or the address's daily budget of invitations is spent
    /// ([`MailBudgets`](crate::throttle::MailBudgets)); nothing was sent.
    #[error("too many invitations; try again later")]
    Throttled {
        /// When the budget is full again (the next midnight, UTC).
        retry_at: chrono::DateTime<chrono::Utc>,
    },
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(AdminError, UniqueKey::UserEmail => AdminError::EmailUnavailable);

/// A page of the user table.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The users, ordered by name.
    pub items: Vec<User>,
    /// Cursor of the next page, if there is one.
    pub next: Option<String>,
    /// Matching users, counted up to [`USER_COUNT_CAP`].
    pub total: u64,
    /// Whether `total` hit the cap.
    pub total_capped: bool,
    /// What the table offers on each row, in the order of `items` ([`authz::row_actions`]).
    pub actions: Vec<authz::RowActions>,
}

/// "Benutzer hinzufügen".
#[derive(Debug, Clone)]
pub struct Invite {
    /// E-Mail-Adresse.
    pub email: EmailAddress,
    /// Vorname.
    pub first_name: PersonName,
    /// Nachname.
    pub last_name: PersonName,
    /// Language of the invitation.
    pub language: Language,
    /// Permissions the user gets ("Im Anschluss erteilen Sie bitte die Berechtigungen").
    pub permissions: PermissionSet,
}

pub(super) struct Target {
    pub(super) acting: Acting,
    authority: Authority,
    pub(super) customer: Customer,
    pub(super) user: User,
}

impl Portal {
    async fn managed_customer(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<(Acting, Authority, Customer), AdminError> {
        let customer = self
            .deps
            .queries
            .customer_by_number(number)
            .await?
            .ok_or(AdminError::NotFound)?;
        let acting = self.acting(actor).await?.ok_or(AdminError::NotFound)?;
        match management_access(&acting, customer.id()) {
            Access::Granted(authority) => Ok((acting, authority, customer)),
            Access::Forbidden => Err(AdminError::Forbidden),
            Access::NotFound => Err(AdminError::NotFound),
        }
    }

    /// The acting administrator (or operator), their authority, the customer and its user
    /// `user` (not a pending registration): `NotFound` for another customer's user, as R2 wants.
    pub(super) async fn target(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<Target, AdminError> {
        let (acting, authority, customer) = self.managed_customer(actor, number).await?;
        let user = self
            .deps
            .queries
            .user(user)
            .await?
            .filter(|u| {
                u.customer_id() == Some(customer.id())
                    && u.state() != AccountState::PendingVerification
            })
            .ok_or(AdminError::NotFound)?;
        Ok(Target {
            acting,
            authority,
            customer,
            user,
        })
    }

    /// A commit that fails if the acting user changed meanwhile (lost their rights).
    pub(super) fn commit_for(acting: &Acting) -> Commit {
        let mut commit = Commit::new();
        if let Acting::User(u) = acting {
            commit.write(Write::ExpectUser {
                id: u.id(),
                version: u.version(),
            });
        }
        commit
    }

    /// R5: refuses an administrator's change that would leave the customer without an active
    /// administrator. Returns whether the set of administrators changes (then the customer row
    /// is bumped so concurrent changes to it conflict).
    async fn guard_admins(&self, t: &Target, after: &User) -> Result<bool, AdminError> {
        let c = t.customer.id();
        let after_admin = after.is_active_admin_of(c);
        if t.user.role() != Role::Administrator && after.role() != Role::Administrator {
            return Ok(false);
        }
        // Without other administrators first: the query only when the change could matter.
        if authz::leaves_without_admin(&t.authority, &t.user, c, after_admin, 0) {
            let others = self
                .deps
                .queries
                .admins_of_customer(c)
                .await?
                .iter()
                .filter(|a| a.id() != t.user.id() && a.is_active_admin_of(c))
                .count();
            if authz::leaves_without_admin(&t.authority, &t.user, c, after_admin, others) {
                return Err(AdminError::LastAdmin);
            }
        }
        Ok(true)
    }

    fn grantable(&self, customer: &Customer, wanted: &PermissionSet) -> Result<(), AdminError> {
        let bad: Vec<String> = wanted
            .iter()
            .filter(|k| !self.catalog.contains(k) || !customer.is_entitled(k))
            .map(ToString::to_string)
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(AdminError::NotGrantable(bad))
        }
    }

    /// The user table ("Benutzerverwaltung"): a customer's users with search, ordered by name,
    /// 10 per page by default.
    ///
    /// # Errors
    /// Not the actor's customer, not an admin, bad page request; infrastructure failures.
    pub async fn list_users(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        search: Option<&str>,
        page: &PageRequest,
    ) -> Result<UserPage, AdminError> {
        let (_, authority, customer) = self.managed_customer(actor, number).await?;
        let size = paging::page_size(&self.config, page)?;
        let start = paging::user_start(&self.config, page, size)?;
        let search = search
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(100).collect::<String>());
        let q = &self.deps.queries;
        let mut items = q
            .users_of_customer(&UserQuery {
                customer: customer.id(),
                search: search.clone(),
                start,
                limit: size,
            })
            .await?;
        let next = if items.len() > size as usize {
            items.truncate(size as usize);
            items.last().map(|u| {
                paging::encode_user_cursor(&UserCursor {
                    sort_key: u.sort_key(),
                    id: u.id(),
                })
            })
        } else {
            None
        };
        let total = q
            .count_users_of_customer(customer.id(), search, USER_COUNT_CAP)
            .await?;
        let c = customer.id();
        let admins: Vec<UserId> = q
            .admins_of_customer(c)
            .await?
            .iter()
            .filter(|a| a.is_active_admin_of(c))
            .map(User::id)
            .collect();
        let actions = items
            .iter()
            .map(|u| {
                let others = admins.iter().filter(|a| **a != u.id()).count();
                authz::row_actions(&authority, u, c, others)
            })
            .collect();
        Ok(UserPage {
            items,
            next,
            total,
            total_capped: total >= USER_COUNT_CAP,
            actions,
        })
    }

    /// One user of the table (the header of "Berechtigungen", "Benutzer sperren", …).
    ///
    /// # Errors
    /// Not found (also for other customers' users), forbidden; infrastructure failures.
    pub async fn get_user(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<User, AdminError> {
        Ok(self.target(actor, number, user).await?.user)
    }

    /// One user of the table with what the table offers on their row ([`authz::row_actions`]):
    /// the lock and delete pages, opened by their address, refuse what the row does not offer.
    ///
    /// # Errors
    /// Not found (also for other customers' users), forbidden; infrastructure failures.
    pub async fn get_user_actions(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<(User, authz::RowActions), AdminError> {
        let Target {
            authority,
            customer,
            user,
            ..
        } = self.target(actor, number, user).await?;
        let c = customer.id();
        let others = self
            .deps
            .queries
            .admins_of_customer(c)
            .await?
            .iter()
            .filter(|a| a.is_active_admin_of(c) && a.id() != user.id())
            .count();
        let actions = authz::row_actions(&authority, &user, c, others);
        Ok((user, actions))
    }

    /// "Benutzer anlegen": creates an invited user with the given permissions and mails the
    /// invitation link ("Einladung zum Portal"). Each invitation takes from the sender's and the
    /// address's daily budgets ([`MailBudgets`]). An address with an account elsewhere answers
    /// [`AdminError::EmailUnavailable`], counts in the budgets, and its owner is mailed a notice.
    ///
    /// # Errors
    /// Not grantable permissions, an address in use, a budget spent; not found/forbidden;
    /// infrastructure failures.
    pub async fn invite_user(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        cmd: Invite,
    ) -> Result<User, AdminError> {
        let token = Token::generate(&*self.deps.random);
        // Authorization, grantability and membership before the budgets: a refused request
        // spends nobody's budget. An address with an account elsewhere does spend it.
        let (acting, _, customer) = self.managed_customer(actor, number).await?;
        self.grantable(&customer, &cmd.permissions)?;
        if let Some(existing) = self.deps.queries.user_by_email(&cmd.email).await?
            && existing.customer_id() == Some(customer.id())
        {
            return Err(AdminError::AlreadyMember);
        }
        self.take_invitation_budgets(&acting, &cmd.email).await?;
        self.transact(|| self.plan_invite(actor, number, &cmd, &token))
            .await?
    }

    /// Takes one invitation from the sender's and the address's daily budgets
    /// ([`MailBudgets`]); the system (command line) has no sender budget.
    async fn take_invitation_budgets(
        &self,
        acting: &Acting,
        email: &EmailAddress,
    ) -> Result<(), AdminError> {
        let now = self.now();
        let b = self.config.mail_budgets;
        let (sender, recipient) = (
            MailBudgets::daily(b.invitations_per_sender),
            MailBudgets::daily(b.invitations_per_recipient),
        );
        let day = recipient.window_index(now);
        let mut budgets = vec![(keys::invitation_recipient(email, day), recipient)];
        if let Acting::User(u) = acting {
            budgets.push((keys::invitation_sender(u.id(), day), sender));
        }
        match self.take_budgets(&budgets, now).await? {
            Some(retry_at) => Err(AdminError::Throttled { retry_at }),
            None => Ok(()),
        }
    }

    async fn plan_invite(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        cmd: &Invite,
        token: &Token,
    ) -> Result<Planned<Result<User, AdminError>>, AdminError> {
        let now = self.now();
        let (acting, _, customer) = self.managed_customer(actor, number).await?;
        self.grantable(&customer, &cmd.permissions)?;
        if let Some(existing) = self.deps.queries.user_by_email(&cmd.email).await? {
            if existing.customer_id() == Some(customer.id()) {
                return Err(AdminError::AlreadyMember);
            }
            // An account elsewhere (or an operator's): the answer cannot be hidden — the invited
            // user would have to appear in the table — so it stays, and the owner is told who
            // tried. The entry goes into the inviting customer's log without naming the owner.
            let mut commit = Self::commit_for(&acting);
            commit
                .mail(self.mail_to(
                    now,
                    &existing,
                    MailIntent::InvitationToExistingAccount {
                        first_name: existing.first_name().to_string(),
                        customer_name: customer.name().to_string(),
                    },
                ))
                .audit(self.audit_record(
                    now,
                    Some(customer.id()),
                    actor_ref(&acting),
                    None,
                    AuditCategory::RegistrationAttempted,
                    "via=invitation; notice=sent",
                ));
            return Ok(Planned::new(commit, Err(AdminError::EmailUnavailable)));
        }
        let user = User::new_invited(
            UserId::from_uuid(self.new_uuid()),
            cmd.email.clone(),
            cmd.first_name.clone(),
            cmd.last_name.clone(),
            cmd.language,
            Role::Employee,
            Some(customer.id()),
            cmd.permissions.clone(),
            now,
        );
        let mut commit = Self::commit_for(&acting);
        // The user first: the link token refers to it.
        commit.write(Write::InsertUser(user.clone()));
        self.add_invitation(&mut commit, &user, &customer, token, now);
        commit.audit(self.audit_record(
            now,
            Some(customer.id()),
            actor_ref(&acting),
            Some(user.id()),
            AuditCategory::UserCreated,
            format!("via=invitation; permissions={}", cmd.permissions.joined()),
        ));
        Ok(Planned::new(commit, Ok(user)))
    }

    fn add_invitation(
        &self,
        commit: &mut Commit,
        user: &User,
        customer: &Customer,
        token: &Token,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let ttl = self.config.invitation_ttl;
        commit
            .write(Write::InsertActionToken(ActionToken::issue(
                ActionTokenId::from_uuid(self.new_uuid()),
                token.hash(),
                TokenPurpose::Invitation,
                user.id(),
                now,
                now + ttl,
            )))
            .mail(self.mail_to(
                now,
                user,
                MailIntent::Invitation {
                    first_name: user.first_name().to_string(),
                    customer_name: customer.name().to_string(),
                    token: SecretString::new(token.expose()),
                    valid_days: ttl.num_days(),
                },
            ));
    }

    /// Sends a fresh invitation link to an invited user; older links stop working. Takes from the
    /// same budgets as [`Self::invite_user`].
    ///
    /// # Errors
    /// The user is not (or no longer) invited, a budget spent; not found/forbidden;
    /// infrastructure failures.
    pub async fn resend_invitation(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<(), AdminError> {
        let token = Token::generate(&*self.deps.random);
        let t = self.target(actor, number, user).await?;
        if t.user.status() != UserStatus::Invited {
            return Err(AdminError::WrongState(t.user.status()));
        }
        self.take_invitation_budgets(&t.acting, t.user.email())
            .await?;
        self.transact(|| self.plan_resend_invitation(actor, number, user, &token))
            .await
    }

    async fn plan_resend_invitation(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        token: &Token,
    ) -> Result<Planned<()>, AdminError> {
        let now = self.now();
        let t = self.target(actor, number, user).await?;
        if t.user.status() != UserStatus::Invited {
            return Err(AdminError::WrongState(t.user.status()));
        }
        let mut commit = Self::commit_for(&t.acting);
        commit
            .write(Write::ExpectUser {
                id: t.user.id(),
                version: t.user.version(),
            })
            .write(Write::DeleteActionTokensOfUser {
                user: t.user.id(),
                purpose: Some(TokenPurpose::Invitation),
            })
            .write(Write::DeleteChallengesOfUser(t.user.id()));
        self.add_invitation(&mut commit, &t.user, &t.customer, token, now);
        commit.audit(self.audit_record(
            now,
            Some(t.customer.id()),
            actor_ref(&t.acting),
            Some(t.user.id()),
            AuditCategory::InvitationSent,
            "",
        ));
        Ok(Planned::new(commit, ()))
    }

    /// "Speichern" on the permission page: replaces the user's permissions (R4, R6).
    ///
    /// # Errors
    /// Keys outside catalog or entitlements; not found/forbidden; infrastructure failures.
    pub async fn set_permissions(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        permissions: &PermissionSet,
    ) -> Result<User, AdminError> {
        self.transact(|| self.plan_permissions(actor, number, user, |_, _| Ok(permissions.clone())))
            .await
    }

    /// "Alle anhaken": grants every permission of a group the customer is entitled to (union;
    /// idempotent).
    ///
    /// # Errors
    /// Unknown group; not found/forbidden; infrastructure failures.
    pub async fn grant_group(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        group: &GroupKey,
    ) -> Result<User, AdminError> {
        let members = self.group_members(group)?;
        self.transact(|| {
            self.plan_permissions(actor, number, user, |u, c| {
                Ok(u.permissions()
                    .union(&members.intersection(c.entitlements())))
            })
        })
        .await
    }

    /// "Alle abhaken": revokes every permission of a group (difference; idempotent).
    ///
    /// # Errors
    /// Unknown group; not found/forbidden; infrastructure failures.
    pub async fn revoke_group(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        group: &GroupKey,
    ) -> Result<User, AdminError> {
        let members = self.group_members(group)?;
        self.transact(|| {
            self.plan_permissions(actor, number, user, |u, _| {
                Ok(u.permissions().difference(&members))
            })
        })
        .await
    }

    fn group_members(&self, group: &GroupKey) -> Result<PermissionSet, AdminError> {
        if self.catalog.group(group).is_none() {
            return Err(AdminError::UnknownGroup);
        }
        Ok(self.catalog.group_members(group))
    }

    async fn plan_permissions<F>(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        new_set: F,
    ) -> Result<Planned<User>, AdminError>
    where
        F: Fn(&User, &Customer) -> Result<PermissionSet, AdminError>,
    {
        let now = self.now();
        let t = self.target(actor, number, user).await?;
        let wanted = new_set(&t.user, &t.customer)?;
        self.grantable(&t.customer, &wanted)?;
        let old = t.user.permissions().clone();
        if wanted == old {
            return Ok(Planned::new(Commit::new(), t.user));
        }
        let mut user = t.user.clone();
        user.set_permissions(wanted.clone(), now);
        let mut commit = Self::commit_for(&t.acting);
        commit.audit(self.audit_record(
            now,
            Some(t.customer.id()),
            actor_ref(&t.acting),
            Some(user.id()),
            AuditCategory::PermissionsChanged,
            format!(
                "added={}; removed={}",
                wanted.difference(&old).joined(),
                old.difference(&wanted).joined()
            ),
        ));
        commit.write(Write::UpdateUser(user.clone()));
        Ok(Planned::new(commit, user))
    }

    /// Activates a user who waits for the administrator (R8); the user is mailed.
    ///
    /// # Errors
    /// The user is not waiting; not found/forbidden; infrastructure failures.
    pub async fn activate_user(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<User, AdminError> {
        self.transact(|| self.plan_activate(actor, number, user))
            .await
    }

    async fn plan_activate(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<Planned<User>, AdminError> {
        let now = self.now();
        let t = self.target(actor, number, user).await?;
        let mut user = t.user.clone();
        user.activate(now)
            .map_err(|e| AdminError::WrongState(e.status))?;
        let mut commit = Self::commit_for(&t.acting);
        commit
            .audit(self.audit_record(
                now,
                Some(t.customer.id()),
                actor_ref(&t.acting),
                Some(user.id()),
                AuditCategory::UserActivated,
                "",
            ))
            .mail(self.mail_to(
                now,
                &user,
                MailIntent::Welcome {
                    first_name: user.first_name().to_string(),
                },
            ))
            .write(Write::UpdateUser(user.clone()));
        Ok(Planned::new(commit, user))
    }

    /// "Benutzer sperren": the user can no longer log in, and every session, pending link and code
    /// of the user dies in the same commit (R11) — not "after logout" as in the manual.
    ///
    /// # Errors
    /// Already locked, last administrator (R5); not found/forbidden; infrastructure failures.
    pub async fn lock_user(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        reason: Option<&FreeText>,
    ) -> Result<User, AdminError> {
        self.transact(|| self.plan_lock(actor, number, user, reason))
            .await
    }

    async fn plan_lock(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        reason: Option<&FreeText>,
    ) -> Result<Planned<User>, AdminError> {
        let now = self.now();
        let mut t = self.target(actor, number, user).await?;
        let mut user = t.user.clone();
        user.lock_with(
            Lock {
                by: actor_ref(&t.acting),
                at: now,
                reason: reason.cloned(),
            },
            now,
        )
        .map_err(|e| AdminError::WrongState(e.status))?;
        let admin_set_changed = self.guard_admins(&t, &user).await?;
        let mut commit = Self::commit_for(&t.acting);
        if admin_set_changed {
            t.customer.touch_admin_set(now);
            commit.write(Write::UpdateCustomer(t.customer.clone()));
        }
        commit
            .write(Write::DeleteSessionsOfUser {
                user: user.id(),
                except: None,
            })
            .write(Write::DeleteActionTokensOfUser {
                user: user.id(),
                purpose: None,
            })
            .write(Write::DeleteChallengesOfUser(user.id()))
            .audit(self.audit_record(
                now,
                Some(t.customer.id()),
                actor_ref(&t.acting),
                Some(user.id()),
                AuditCategory::UserLocked,
                if reason.is_some() {
                    "reason=given"
                } else {
                    "reason=none"
                },
            ))
            .mail(self.mail_to(
                now,
                &user,
                MailIntent::AccountLocked {
                    first_name: user.first_name().to_string(),
                },
            ))
            .write(Write::UpdateUser(user.clone()));
        Ok(Planned::new(commit, user))
    }

    /// "Benutzer entsperren": login works again; old sessions stay dead.
    ///
    /// # Errors
    /// Not locked; not found/forbidden; infrastructure failures.
    pub async fn unlock_user(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<User, AdminError> {
        self.transact(|| self.plan_unlock(actor, number, user))
            .await
    }

    async fn plan_unlock(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<Planned<User>, AdminError> {
        let now = self.now();
        let mut t = self.target(actor, number, user).await?;
        let mut user = t.user.clone();
        user.unlock(now)
            .map_err(|e| AdminError::WrongState(e.status))?;
        let mut commit = Self::commit_for(&t.acting);
        if self.guard_admins(&t, &user).await? {
            t.customer.touch_admin_set(now);
            commit.write(Write::UpdateCustomer(t.customer.clone()));
        }
        commit
            .audit(self.audit_record(
                now,
                Some(t.customer.id()),
                actor_ref(&t.acting),
                Some(user.id()),
                AuditCategory::UserUnlocked,
                "",
            ))
            .mail(self.mail_to(
                now,
                &user,
                MailIntent::AccountUnlocked {
                    first_name: user.first_name().to_string(),
                },
            ))
            .write(Write::UpdateUser(user.clone()));
        Ok(Planned::new(commit, user))
    }

    /// "Benutzer löschen": removes the user's access and personal data; the address is free for a
    /// new registration; the change log keeps its entries, which refer to the user only by a
    /// pseudonymous id (R11).
    ///
    /// # Errors
    /// Last administrator (R5); not found/forbidden; infrastructure failures.
    pub async fn delete_user(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<(), AdminError> {
        self.transact(|| self.plan_delete(actor, number, user))
            .await
    }

    async fn plan_delete(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<Planned<()>, AdminError> {
        let now = self.now();
        let mut t = self.target(actor, number, user).await?;
        // Judge R5 as if the user were locked: gone is not an active admin.
        let mut gone = t.user.clone();
        if gone.lock().is_none() {
            let _ = gone.lock_with(
                Lock {
                    by: actor_ref(&t.acting),
                    at: now,
                    reason: None,
                },
                now,
            );
        }
        let mut commit = Self::commit_for(&t.acting);
        if self.guard_admins(&t, &gone).await? {
            t.customer.touch_admin_set(now);
            commit.write(Write::UpdateCustomer(t.customer.clone()));
        }
        commit
            .audit(self.audit_record(
                now,
                Some(t.customer.id()),
                actor_ref(&t.acting),
                Some(t.user.id()),
                AuditCategory::UserDeleted,
                format!("role={}", t.user.role().key()),
            ))
            .write(Write::DeleteUser(t.user.clone()));
        Ok(Planned::new(commit, ()))
    }

    /// Takes administrator rights away (an administrator stepping down, or demoting another).
    ///
    /// # Errors
    /// Not an administrator, last administrator (R5); not found/forbidden; infrastructure
    /// failures.
    pub async fn revoke_admin_rights(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<User, AdminError> {
        self.transact(|| self.plan_demote(actor, number, user))
            .await
    }

    async fn plan_demote(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<Planned<User>, AdminError> {
        let now = self.now();
        let mut t = self.target(actor, number, user).await?;
        let mut user = t.user.clone();
        user.demote(now)
            .map_err(|e| AdminError::WrongState(e.status))?;
        let mut commit = Self::commit_for(&t.acting);
        if self.guard_admins(&t, &user).await? {
            t.customer.touch_admin_set(now);
            commit.write(Write::UpdateCustomer(t.customer.clone()));
        }
        commit
            .audit(self.audit_record(
                now,
                Some(t.customer.id()),
                actor_ref(&t.acting),
                Some(user.id()),
                AuditCategory::AdminRightsRevoked,
                "",
            ))
            .write(Write::UpdateUser(user.clone()));
        Ok(Planned::new(commit, user))
    }

    /// Ends every session of a user of the customer (e.g. a lost laptop), without locking.
    ///
    /// # Errors
    /// Not found/forbidden; infrastructure failures.
    pub async fn end_user_sessions(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<(), AdminError> {
        self.transact(|| self.plan_end_sessions(actor, number, user))
            .await
    }

    async fn plan_end_sessions(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<Planned<()>, AdminError> {
        let now = self.now();
        let t = self.target(actor, number, user).await?;
        let mut commit = Self::commit_for(&t.acting);
        commit
            .write(Write::DeleteSessionsOfUser {
                user: t.user.id(),
                except: None,
            })
            .audit(self.audit_record(
                now,
                Some(t.customer.id()),
                actor_ref(&t.acting),
                Some(t.user.id()),
                AuditCategory::SessionsEnded,
                "scope=all",
            ));
        Ok(Planned::new(commit, ()))
    }
}
