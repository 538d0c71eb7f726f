//! A person's own data (GDPR Art. 15 and 20): the person exports everything Portal holds about
//! them, or an administrator of their customer exports what the portal already shows the
//! administrator (the manual puts the data-protection duty on the customer). Either way the
//! export needs a fresh login (step-up), takes from daily budgets, is written to the change log
//! and mails the person, in one commit. The file's shape is [`crate::data_export`].

use super::auth::Principal;
use super::{Portal, actor_kind_label, actor_ref, infra_errors};
use crate::audit::{ActorKind, ActorRef, AuditCategory, AuditEntry};
use crate::authz::Acting;
use crate::customer::Customer;
use crate::data_export::{
    DataExport, ExportAdminRequest, ExportApplication, ExportCustomer, ExportFactor, ExportLock,
    ExportLogEntry, ExportPermission, ExportProfile, ExportScope, ExportSession, FORMAT,
    granted_by_entry,
};
use crate::error::InfraError;
use crate::ids::{CustomerId, UserId};
use crate::mail::MailIntent;
use crate::mfa::{PhoneChannel, RecoveryChannel};
use crate::permission::PermissionKey;
use crate::ports::{AdminRequestFilter, AuditQuery};
use crate::throttle::{MailBudgets, keys};
use crate::user::{Role, User};
use crate::values::{CustomerNumber, Language};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The session's user can no longer log in.
    #[error("not authenticated")]
    Unauthenticated,
    /// Unknown customer or user, or not the actor's (answered like an unknown one).
    #[error("not found")]
    NotFound,
    /// Not allowed to export this customer's users.
    #[error("not allowed")]
    Forbidden,
    /// An export needs a fresh login (step-up).
    #[error("please confirm your password again")]
    ReauthRequired,
    /// A daily budget of exports is spent ([`MailBudgets`]); nothing was exported.
    #[error("too many exports; try again later")]
    Throttled {
        /// When the budget is full again (the next midnight, UTC).
        retry_at: DateTime<Utc>,
    },
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(ExportError);

/// Change-log entries read per query while exporting.
const LOG_BATCH: u32 = 1_000;

fn deleted_user(language: Language) -> &'static str {
    match language {
        Language::De => "Gelöschter Benutzer",
        Language::En => "Deleted user",
    }
}

/// Names of the people an export mentions. Only the person and users of the person's own
/// customer are named; vendor staff appear as such and anyone else by kind, so no name of
/// another customer's user can reach the file.
struct Names {
    users: BTreeMap<UserId, User>,
    subject: UserId,
    customer: Option<CustomerId>,
    language: Language,
}

impl Names {
    fn user(&self, id: UserId) -> String {
        match self.users.get(&id) {
            None => deleted_user(self.language).to_owned(),
            Some(u) if u.id() == self.subject => u.display_name(),
            Some(u) if u.role() == Role::Operator => {
                actor_kind_label(ActorKind::Operator, self.language).to_owned()
            }
            Some(u) if self.customer.is_some() && u.customer_id() == self.customer => {
                u.display_name()
            }
            Some(_) => actor_kind_label(ActorKind::User, self.language).to_owned(),
        }
    }

    fn actor(&self, actor: ActorRef) -> String {
        match (actor.kind, actor.user) {
            (ActorKind::User, Some(id)) => self.user(id),
            (kind, _) => actor_kind_label(kind, self.language).to_owned(),
        }
    }
}

impl Portal {
    /// The person's own data as one file: everything Portal holds about the session's user
    /// (see [`crate::data_export`]). Needs a fresh login (step-up: a credential proven in this
    /// session within the step-up window); takes from the person's daily budget of exports;
    /// writes a [`AuditCategory::DataExported`] entry and queues a mail to the person
    /// ([`MailIntent::DataExported`]) in one commit.
    ///
    /// # Errors
    /// Step-up needed (nothing is read or counted then), the budget spent; infrastructure
    /// failures.
    pub async fn export_my_data(&self, principal: &Principal) -> Result<DataExport, ExportError> {
        if !self.stepped_up(principal) {
            return Err(ExportError::ReauthRequired);
        }
        let user = self
            .deps
            .queries
            .user(principal.user().id())
            .await?
            .filter(User::can_log_in)
            .ok_or(ExportError::Unauthenticated)?;
        let customer = match user.customer_id() {
            Some(id) => self.deps.queries.customer(id).await?,
            None => None,
        };
        self.export(
            &Acting::User(user.clone()),
            user,
            customer,
            ExportScope::Own,
        )
        .await
    }

    /// An administrator's export of a user of their customer ("the same way" as the person's
    /// own, for the customer's data-protection duty): what the portal shows the administrator
    /// about the user, without session addresses, devices, phone numbers, recovery channels or
    /// applications. For the customer's administrators and operators. Needs a fresh login of the
    /// administrator; takes from the person's and the administrator's daily budgets; audited
    /// and mailed to the person like [`Self::export_my_data`].
    ///
    /// # Errors
    /// Not found (also other customers' users and registrations not yet confirmed), forbidden,
    /// step-up needed, a budget spent; infrastructure failures.
    pub async fn export_user_data(
        &self,
        principal: &Principal,
        number: &CustomerNumber,
        user: UserId,
    ) -> Result<DataExport, ExportError> {
        let target = self
            .target(&principal.actor(), number, user)
            .await
            .map_err(|e| match e {
                super::AdminError::Forbidden => ExportError::Forbidden,
                super::AdminError::Infra(e) => ExportError::Infra(e),
                _ => ExportError::NotFound,
            })?;
        if !self.stepped_up(principal) {
            return Err(ExportError::ReauthRequired);
        }
        self.export(
            &target.acting,
            target.user,
            Some(target.customer),
            ExportScope::Administrator,
        )
        .await
    }

    async fn export(
        &self,
        acting: &Acting,
        subject: User,
        customer: Option<Customer>,
        scope: ExportScope,
    ) -> Result<DataExport, ExportError> {
        let now = self.now();
        let b = self.config.mail_budgets;
        let person = MailBudgets::daily(b.data_exports_per_person);
        let day = person.window_index(now);
        let mut budgets = vec![(keys::data_export_subject(subject.id(), day), person)];
        if let Acting::User(u) = acting
            && u.id() != subject.id()
        {
            budgets.push((
                keys::data_export_sender(u.id(), day),
                MailBudgets::daily(b.data_exports_per_sender),
            ));
        }
        if let Some(retry_at) = self.take_budgets(&budgets, now).await? {
            return Err(ExportError::Throttled { retry_at });
        }
        let export = self
            .collect(&subject, customer.as_ref(), scope, now)
            .await?;
        let by_administrator = scope == ExportScope::Administrator;
        // One commit, no retry: it reads nothing, so a retry would fail the same way. An
        // administrator who lost their rights meanwhile exports nothing.
        let mut commit = Self::commit_for(acting);
        commit
            .audit(self.audit_record(
                now,
                subject.customer_id(),
                actor_ref(acting),
                Some(subject.id()),
                AuditCategory::DataExported,
                format!("scope={}", scope.key()),
            ))
            .mail(self.mail_to(
                now,
                &subject,
                MailIntent::DataExported {
                    first_name: subject.first_name().to_string(),
                    by_administrator,
                },
            ));
        self.commit_with_events(commit).await?;
        Ok(export)
    }

    /// Every change-log entry about `subject` in one chain, newest first.
    async fn log_about(
        &self,
        chain: Option<CustomerId>,
        subject: UserId,
    ) -> Result<Vec<AuditEntry>, ExportError> {
        let mut out: Vec<AuditEntry> = Vec::new();
        loop {
            let mut batch = self
                .deps
                .queries
                .audit(&AuditQuery {
                    customer: chain,
                    subject: Some(subject),
                    categories: Vec::new(),
                    search: None,
                    search_categories: Vec::new(),
                    from: None,
                    until: None,
                    before_seq: out.last().map(|e| e.seq),
                    limit: LOG_BATCH,
                })
                .await?;
            let more = batch.len() > LOG_BATCH as usize;
            batch.truncate(LOG_BATCH as usize);
            // Defence in depth: only entries of the asked chain about the asked person.
            batch.retain(|e| e.record.customer == chain && e.record.subject == Some(subject));
            out.extend(batch);
            if !more {
                return Ok(out);
            }
        }
    }

    async fn collect(
        &self,
        subject: &User,
        customer: Option<&Customer>,
        scope: ExportScope,
        now: DateTime<Utc>,
    ) -> Result<DataExport, ExportError> {
        let own = scope == ExportScope::Own;
        let language = subject.language();
        let customer_id = customer.map(Customer::id);
        let q = &self.deps.queries;

        // The person's customer's log; their own export adds the global one (registration).
        let mut log: Vec<(AuditEntry, &'static str)> = Vec::new();
        if let Some(c) = customer_id {
            log.extend(
                self.log_about(Some(c), subject.id())
                    .await?
                    .into_iter()
                    .map(|e| (e, "customer")),
            );
        }
        if own {
            log.extend(
                self.log_about(None, subject.id())
                    .await?
                    .into_iter()
                    .map(|e| (e, "global")),
            );
        }
        log.sort_by(|(a, _), (b, _)| b.record.at.cmp(&a.record.at).then(b.seq.cmp(&a.seq)));

        let mut sessions = q.sessions_of_user(subject.id()).await?;
        sessions.retain(|s| s.user_id() == subject.id());
        sessions.sort_by_key(|s| std::cmp::Reverse(s.record().created_at));
        let mut requests = match customer_id {
            Some(c) => {
                q.admin_requests(&AdminRequestFilter {
                    customer: Some(c),
                    requester: Some(subject.id()),
                    statuses: Vec::new(),
                })
                .await?
            }
            None => Vec::new(),
        };
        requests.retain(|r| r.requester() == subject.id() && Some(r.customer_id()) == customer_id);
        let grants = if own {
            let mut g = q.oidc_grants_of_user(subject.id()).await?;
            g.retain(|g| g.user_id == subject.id());
            g.sort_by_key(|g| std::cmp::Reverse(g.created_at));
            g
        } else {
            Vec::new()
        };

        // Everyone the file names, loaded at once.
        let mut ids: Vec<UserId> = vec![subject.id()];
        ids.extend(log.iter().filter_map(|(e, _)| e.record.actor.user));
        ids.extend(subject.lock().and_then(|l| l.by.user));
        for r in &requests {
            ids.extend(r.record().consented_by);
            ids.extend(r.record().decided_by);
        }
        ids.sort();
        ids.dedup();
        let names = Names {
            users: q
                .users(&ids)
                .await?
                .into_iter()
                .map(|u| (u.id(), u))
                .collect(),
            subject: subject.id(),
            customer: customer_id,
            language,
        };

        let rec = subject.record();
        let profile = ExportProfile {
            id: subject.id().to_string(),
            email: subject.email().to_string(),
            first_name: subject.first_name().to_string(),
            last_name: subject.last_name().to_string(),
            language: language.code().to_owned(),
            role: subject.role().key().to_owned(),
            status: subject.status().key().to_owned(),
            affiliation: subject.affiliation().map(|a| a.as_str().to_owned()),
            created_at: rec.created_at,
            updated_at: rec.updated_at,
            last_login_at: subject.last_login_at(),
            lock: subject.lock().map(|l| ExportLock {
                at: l.at,
                by: names.actor(l.by),
                reason: l.reason.as_ref().map(|r| r.as_str().to_owned()),
            }),
        };

        let held: Vec<PermissionKey> = subject.permissions().iter().cloned().collect();
        let defaults: Vec<PermissionKey> = customer
            .map(|c| c.default_permissions().iter().cloned().collect())
            .unwrap_or_default();
        let customer_log: Vec<AuditEntry> = log
            .iter()
            .filter(|(_, chain)| *chain == "customer")
            .map(|(e, _)| e.clone())
            .collect();
        let permissions = granted_by_entry(&held, &defaults, &customer_log)
            .into_iter()
            .map(|(key, entry)| ExportPermission {
                label: self
                    .catalog
                    .get(&key)
                    .map_or_else(|| key.to_string(), |p| p.label.get(language).to_owned()),
                key: key.to_string(),
                granted_at: entry.map(|e| e.record.at),
                granted_by: entry.map(|e| names.actor(e.record.actor)),
            })
            .collect();

        let sessions = sessions
            .iter()
            .map(|s| {
                let r = s.record();
                ExportSession {
                    id: r.id.to_string(),
                    kind: s.kind().key().to_owned(),
                    created_at: r.created_at,
                    last_seen_at: r.last_seen_at,
                    expires_at: r.expires_at,
                    methods: r.methods.clone(),
                    ip: own.then(|| r.client.ip.clone()).flatten(),
                    user_agent: own.then(|| r.client.user_agent.clone()).flatten(),
                }
            })
            .collect();

        let mfa = subject.mfa();
        let mut second_factors = Vec::new();
        if let Some(t) = &mfa.totp {
            second_factors.push(factor("totp", Some(t.enrolled_at), None, None));
        }
        if let Some(p) = &mfa.phone {
            let kind = match p.channel {
                PhoneChannel::Sms => "sms",
                PhoneChannel::Voice => "voice",
            };
            let label = own.then(|| p.number.as_str().to_owned());
            second_factors.push(factor(kind, Some(p.enrolled_at), None, label));
        }
        for k in &mfa.passkeys {
            let label = own.then(|| k.name.to_string());
            second_factors.push(factor("passkey", Some(k.created_at), k.last_used_at, label));
        }
        if mfa.recovery_code.is_some() {
            second_factors.push(factor("recovery_code", None, None, None));
        }
        match &mfa.recovery_channel {
            Some(RecoveryChannel::Phone(n)) => second_factors.push(factor(
                "recovery_phone",
                None,
                None,
                own.then(|| n.as_str().to_owned()),
            )),
            Some(RecoveryChannel::Email(e)) => second_factors.push(factor(
                "recovery_email",
                None,
                None,
                own.then(|| e.to_string()),
            )),
            None => {}
        }

        let admin_requests = requests
            .iter()
            .map(|r| {
                let rec = r.record();
                ExportAdminRequest {
                    id: rec.id.to_string(),
                    status: rec.status.key().to_owned(),
                    created_at: rec.created_at,
                    updated_at: rec.updated_at,
                    consented_by: rec.consented_by.map(|id| names.user(id)),
                    decided_by: rec.decided_by.map(|id| names.user(id)),
                }
            })
            .collect();

        // The applications' names in one read (a grant per sign-in: there may be hundreds).
        let client_names: std::collections::HashMap<String, String> = if grants.is_empty() {
            std::collections::HashMap::new()
        } else {
            q.oidc_clients()
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect()
        };
        let applications = grants
            .iter()
            .map(|g| ExportApplication {
                client_id: g.client_id.clone(),
                name: client_names.get(&g.client_id).cloned(),
                scopes: g.scopes.clone(),
                created_at: g.created_at,
                revoked_at: g.revoked_at,
            })
            .collect();

        let change_log = log
            .iter()
            .map(|(e, chain)| ExportLogEntry {
                at: e.record.at,
                category: e.record.category.key().to_owned(),
                label: e.record.category.label(language).to_owned(),
                details: e.record.details.clone(),
                actor: names.actor(e.record.actor),
                chain: (*chain).to_owned(),
                seq: e.seq,
            })
            .collect();

        Ok(DataExport {
            format: FORMAT.to_owned(),
            generated_at: now,
            scope,
            profile,
            customer: customer.map(|c| ExportCustomer {
                number: c.number().printed(),
                name: c.name().to_string(),
            }),
            permissions,
            sessions,
            second_factors,
            admin_requests,
            applications,
            change_log,
        })
    }
}

fn factor(
    kind: &str,
    created_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    label: Option<String>,
) -> ExportFactor {
    ExportFactor {
        kind: kind.to_owned(),
        created_at,
        last_used_at,
        label,
    }
}
