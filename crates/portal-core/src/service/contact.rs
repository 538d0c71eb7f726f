//! "Administrator kontaktieren" (manual 3.2, R12): a user writes to the customer's administrators,
//! who get the message by mail.

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::AuditCategory;
use crate::authz::Acting;
use crate::error::InfraError;
use crate::mail::MailIntent;
use crate::ports::{Commit, Write};
use crate::throttle::{MailBudgets, keys};
use crate::user::{AccountState, User};
use crate::values::FreeText;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// Only users linked to a customer can write to its administrators.
    #[error("your account is not linked to a customer")]
    NotLinked,
    /// The customer has no active administrator.
    #[error("your company has no administrator yet")]
    NoAdmin,
    /// Locked or otherwise not allowed.
    #[error("not allowed")]
    Forbidden,
    /// The sender's or an administrator's daily budget of messages is spent
    /// ([`MailBudgets`](crate::throttle::MailBudgets)); nothing was sent.
    #[error("too many messages; try again later")]
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
infra_errors!(ContactError);

impl Portal {
    /// Whether "Administrator kontaktieren" can reach anyone for this actor: the same check as
    /// [`Portal::contact_admins`] before it sends (a linked, active or waiting user whose customer
    /// has another active administrator), so the portal never offers what it would refuse.
    ///
    /// # Errors
    /// Infrastructure failures.
    pub async fn may_contact_admins(&self, actor: &Actor) -> Result<bool, ContactError> {
        match self.contact_recipients(actor).await {
            Ok(_) => Ok(true),
            Err(ContactError::NoAdmin | ContactError::NotLinked | ContactError::Forbidden) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a message to every active administrator of the user's customer. Returns how many
    /// were written to. The message goes into the mails only, not into the change log. Each
    /// message takes from the sender's daily budget and from each administrator's
    /// ([`MailBudgets`]); over either, nothing is sent.
    ///
    /// # Errors
    /// Not linked, no administrator, a budget spent; infrastructure failures.
    pub async fn contact_admins(
        &self,
        actor: &Actor,
        message: &FreeText,
    ) -> Result<usize, ContactError> {
        let now = self.now();
        let (user, admins) = self.contact_recipients(actor).await?;
        let b = self.config.mail_budgets;
        let (sender, recipient) = (
            MailBudgets::daily(b.contact_per_sender),
            MailBudgets::daily(b.contact_per_recipient),
        );
        let day = sender.window_index(now);
        let mut budgets = vec![(keys::contact_sender(user.id(), day), sender)];
        budgets.extend(
            admins
                .iter()
                .map(|a| (keys::contact_recipient(a.id(), day), recipient)),
        );
        if let Some(retry_at) = self.take_budgets(&budgets, now).await? {
            return Err(ContactError::Throttled { retry_at });
        }
        self.transact(|| self.plan_contact(actor, message)).await
    }

    /// The writing user and the administrators who get the message.
    async fn contact_recipients(&self, actor: &Actor) -> Result<(User, Vec<User>), ContactError> {
        let Some(Acting::User(user)) = self.acting(actor).await? else {
            return Err(ContactError::Forbidden);
        };
        // A user waiting for activation may write too: asking to be activated is the point.
        if user.lock().is_some()
            || !matches!(
                user.state(),
                AccountState::Active | AccountState::PendingActivation
            )
        {
            return Err(ContactError::Forbidden);
        }
        let customer = user.customer_id().ok_or(ContactError::NotLinked)?;
        let admins: Vec<_> = self
            .deps
            .queries
            .admins_of_customer(customer)
            .await?
            .into_iter()
            .filter(|a| a.is_active_admin_of(customer) && a.id() != user.id())
            .collect();
        if admins.is_empty() {
            return Err(ContactError::NoAdmin);
        }
        Ok((user, admins))
    }

    async fn plan_contact(
        &self,
        actor: &Actor,
        message: &FreeText,
    ) -> Result<Planned<usize>, ContactError> {
        let now = self.now();
        let (user, admins) = self.contact_recipients(actor).await?;
        let customer = user.customer_id().ok_or(ContactError::NotLinked)?;
        let mut commit = Commit::new();
        for admin in &admins {
            commit.mail(self.mail_to(
                now,
                admin,
                MailIntent::MessageToAdmins {
                    admin_first_name: admin.first_name().to_string(),
                    from_name: user.display_name(),
                    from_email: user.email().to_string(),
                    message: message.as_str().to_owned(),
                },
            ));
        }
        commit
            .write(Write::ExpectUser {
                id: user.id(),
                version: user.version(),
            })
            .audit(self.audit_record(
                now,
                Some(customer),
                actor_ref(&Acting::User(user.clone())),
                Some(user.id()),
                AuditCategory::MessageToAdmins,
                format!("recipients={}", admins.len()),
            ));
        Ok(Planned::new(commit, admins.len()))
    }
}
