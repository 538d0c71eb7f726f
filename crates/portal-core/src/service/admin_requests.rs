//! "Admin-Rechte beantragen" (manual 3.1, R9): request → consent of an existing administrator
//! (when the customer has one) → an operator approves or rejects. Every step is audited and mailed.

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::admin_request::{AdminRequest, AdminRequestStatus};
use crate::audit::AuditCategory;
use crate::authz::{Access, Acting, management_access};
use crate::customer::Customer;
use crate::error::InfraError;
use crate::ids::{AdminRequestId, CustomerId};
use crate::mail::MailIntent;
use crate::ports::{AdminRequestFilter, Commit, Write};
use crate::user::{Role, User};
use crate::values::CustomerNumber;
use chrono::{DateTime, Utc};

/// Why an admin-request step failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminRequestError {
    /// Unknown request, or not the actor's customer.
    #[error("not found")]
    NotFound,
    /// The actor may not take this step.
    #[error("not allowed")]
    Forbidden,
    /// Link the account to a customer (and be activated) first.
    #[error("only active users of a customer can ask for admin rights")]
    NotEligible,
    /// The requester is an administrator already.
    #[error("you are an administrator already")]
    AlreadyAdmin,
    /// There is an open request already.
    #[error("there is an open request already")]
    AlreadyRequested,
    /// The request is not at this step.
    #[error("the request is {}", .0.key())]
    WrongState(AdminRequestStatus),
    /// The requester can no longer become an administrator (locked, deleted, moved).
    #[error("the requester can no longer become an administrator")]
    RequesterIneligible,
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(AdminRequestError);

/// A request with the people and company it concerns, for lists.
#[derive(Debug, Clone)]
pub struct AdminRequestView {
    /// The request.
    pub request: AdminRequest,
    /// The requester (none if deleted meanwhile).
    pub requester: Option<User>,
    /// The customer.
    pub customer: Option<Customer>,
}

impl Portal {
    /// A user asks to become their customer's administrator.
    ///
    /// # Errors
    /// Not an active linked employee, already admin, open request exists; infrastructure failures.
    pub async fn request_admin_rights(
        &self,
        actor: &Actor,
    ) -> Result<AdminRequest, AdminRequestError> {
        self.transact(|| self.plan_request(actor)).await
    }

    async fn plan_request(
        &self,
        actor: &Actor,
    ) -> Result<Planned<AdminRequest>, AdminRequestError> {
        let now = self.now();
        let q = &self.deps.queries;
        let Some(Acting::User(user)) = self.acting(actor).await? else {
            return Err(AdminRequestError::Forbidden);
        };
        if user.role() == Role::Administrator {
            return Err(AdminRequestError::AlreadyAdmin);
        }
        let Some(customer_id) = user.customer_id().filter(|_| user.is_active()) else {
            return Err(AdminRequestError::NotEligible);
        };
        if user.role() != Role::Employee {
            return Err(AdminRequestError::NotEligible);
        }
        let open = q
            .admin_requests(&AdminRequestFilter {
                requester: Some(user.id()),
                statuses: vec![
                    AdminRequestStatus::AwaitingConsent,
                    AdminRequestStatus::AwaitingApproval,
                ],
                ..AdminRequestFilter::default()
            })
            .await?;
        if !open.is_empty() {
            return Err(AdminRequestError::AlreadyRequested);
        }
        let customer = q
            .customer(customer_id)
            .await?
            .ok_or(AdminRequestError::NotEligible)?;
        let admins: Vec<User> = q
            .admins_of_customer(customer_id)
            .await?
            .into_iter()
            .filter(|a| a.is_active_admin_of(customer_id))
            .collect();
        let needs_consent = !admins.is_empty();
        let request = AdminRequest::open(
            AdminRequestId::from_uuid(self.new_uuid()),
            customer_id,
            user.id(),
            needs_consent,
            now,
        );
        let mut commit = Commit::new();
        commit.write(Write::ExpectUser {
            id: user.id(),
            version: user.version(),
        });
        if needs_consent {
            for admin in &admins {
                commit.mail(self.mail_to(
                    now,
                    admin,
                    MailIntent::AdminConsentNeeded {
                        admin_first_name: admin.first_name().to_string(),
                        requester_name: user.display_name(),
                        request_id: request.id(),
                    },
                ));
            }
        } else {
            self.mail_operators(&mut commit, now, &user, &customer, &request)
                .await?;
        }
        commit
            .mail(self.mail_to(
                now,
                &user,
                MailIntent::AdminRequestReceived {
                    first_name: user.first_name().to_string(),
                    needs_consent,
                },
            ))
            .audit(self.audit_record(
                now,
                Some(customer_id),
                actor_ref(&Acting::User(user.clone())),
                Some(user.id()),
                AuditCategory::AdminRightsRequested,
                format!("request={}; needs_consent={needs_consent}", request.id()),
            ))
            .write(Write::InsertAdminRequest(request.clone()));
        Ok(Planned::new(commit, request))
    }

    async fn mail_operators(
        &self,
        commit: &mut Commit,
        now: DateTime<Utc>,
        requester: &User,
        customer: &Customer,
        request: &AdminRequest,
    ) -> Result<(), AdminRequestError> {
        for op in self
            .deps
            .queries
            .operators()
            .await?
            .iter()
            .filter(|o| o.is_active_operator())
        {
            commit.mail(self.mail_to(
                now,
                op,
                MailIntent::AdminApprovalNeeded {
                    requester_name: requester.display_name(),
                    customer_number: customer.number().to_string(),
                    customer_name: customer.name().to_string(),
                    request_id: request.id(),
                },
            ));
        }
        Ok(())
    }

    async fn views(
        &self,
        requests: Vec<AdminRequest>,
    ) -> Result<Vec<AdminRequestView>, AdminRequestError> {
        let q = &self.deps.queries;
        let ids: Vec<_> = requests.iter().map(AdminRequest::requester).collect();
        let users = q.users(&ids).await?;
        let mut customers: Vec<Customer> = Vec::new();
        for r in &requests {
            if !customers.iter().any(|c| c.id() == r.customer_id())
                && let Some(c) = q.customer(r.customer_id()).await?
            {
                customers.push(c);
            }
        }
        Ok(requests
            .into_iter()
            .map(|request| AdminRequestView {
                requester: users
                    .iter()
                    .find(|u| u.id() == request.requester())
                    .cloned(),
                customer: customers
                    .iter()
                    .find(|c| c.id() == request.customer_id())
                    .cloned(),
                request,
            })
            .collect())
    }

    async fn admin_of(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<(Acting, Customer), AdminRequestError> {
        let customer = self
            .deps
            .queries
            .customer_by_number(number)
            .await?
            .ok_or(AdminRequestError::NotFound)?;
        let acting = self
            .acting(actor)
            .await?
            .ok_or(AdminRequestError::NotFound)?;
        match management_access(&acting, customer.id()) {
            Access::Granted(_) => Ok((acting, customer)),
            Access::Forbidden => Err(AdminRequestError::Forbidden),
            Access::NotFound => Err(AdminRequestError::NotFound),
        }
    }

    /// The acting user's own open admin request (awaiting consent or approval), if any: what
    /// "Admin-Rechte beantragen" shows on a later visit.
    ///
    /// # Errors
    /// Not logged in as a user; infrastructure failures.
    pub async fn my_open_admin_request(
        &self,
        actor: &Actor,
    ) -> Result<Option<AdminRequest>, AdminRequestError> {
        let Actor::User { id, .. } = actor else {
            return Err(AdminRequestError::Forbidden);
        };
        let open = self
            .deps
            .queries
            .admin_requests(&AdminRequestFilter {
                customer: None,
                requester: Some(*id),
                statuses: vec![
                    AdminRequestStatus::AwaitingConsent,
                    AdminRequestStatus::AwaitingApproval,
                ],
            })
            .await?;
        Ok(open.into_iter().next())
    }

    /// The admin requests of a customer, for its administrators (open ones first need their
    /// consent).
    ///
    /// # Errors
    /// Not found/forbidden; infrastructure failures.
    pub async fn customer_admin_requests(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<Vec<AdminRequestView>, AdminRequestError> {
        let (_, customer) = self.admin_of(actor, number).await?;
        let requests = self
            .deps
            .queries
            .admin_requests(&AdminRequestFilter {
                customer: Some(customer.id()),
                ..AdminRequestFilter::default()
            })
            .await?;
        self.views(requests).await
    }

    /// An existing administrator consents to a colleague's request; the operators decide next.
    ///
    /// # Errors
    /// Not waiting for consent; not found/forbidden; infrastructure failures.
    pub async fn consent_admin_request(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        id: AdminRequestId,
    ) -> Result<AdminRequest, AdminRequestError> {
        self.transact(|| self.plan_consent(actor, number, id, true))
            .await
    }

    /// An existing administrator declines a colleague's request.
    ///
    /// # Errors
    /// Already decided; not found/forbidden; infrastructure failures.
    pub async fn decline_admin_request(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        id: AdminRequestId,
    ) -> Result<AdminRequest, AdminRequestError> {
        self.transact(|| self.plan_consent(actor, number, id, false))
            .await
    }

    async fn plan_consent(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        id: AdminRequestId,
        consent: bool,
    ) -> Result<Planned<AdminRequest>, AdminRequestError> {
        let now = self.now();
        let q = &self.deps.queries;
        let (acting, customer) = self.admin_of(actor, number).await?;
        let Acting::User(admin) = &acting else {
            return Err(AdminRequestError::Forbidden);
        };
        if !admin.is_active_admin_of(customer.id()) {
            // Consent is the customer's word; operators decide instead.
            return Err(AdminRequestError::Forbidden);
        }
        let mut request = q
            .admin_request(id)
            .await?
            .filter(|r| r.customer_id() == customer.id())
            .ok_or(AdminRequestError::NotFound)?;
        let requester = q.user(request.requester()).await?;
        let mut commit = Commit::new();
        commit.write(Write::ExpectUser {
            id: admin.id(),
            version: admin.version(),
        });
        if consent {
            if request.status() != AdminRequestStatus::AwaitingConsent {
                return Err(AdminRequestError::WrongState(request.status()));
            }
            let requester = requester.ok_or(AdminRequestError::RequesterIneligible)?;
            request
                .consent(admin.id(), now)
                .map_err(|e| AdminRequestError::WrongState(e.0))?;
            self.mail_operators(&mut commit, now, &requester, &customer, &request)
                .await?;
            commit.mail(self.mail_to(
                now,
                &requester,
                MailIntent::AdminRequestConsented {
                    first_name: requester.first_name().to_string(),
                },
            ));
        } else {
            request
                .reject(admin.id(), now)
                .map_err(|e| AdminRequestError::WrongState(e.0))?;
            if let Some(requester) = &requester {
                commit.mail(self.mail_to(
                    now,
                    requester,
                    MailIntent::AdminRequestRejected {
                        first_name: requester.first_name().to_string(),
                    },
                ));
            }
        }
        commit
            .audit(self.audit_record(
                now,
                Some(customer.id()),
                actor_ref(&acting),
                Some(request.requester()),
                if consent {
                    AuditCategory::AdminRequestConsented
                } else {
                    AuditCategory::AdminRequestRejected
                },
                format!("request={}", request.id()),
            ))
            .write(Write::UpdateAdminRequest(request.clone()));
        Ok(Planned::new(commit, request))
    }

    /// Requests for operators: by default the ones they can decide now — waiting for approval, or
    /// still waiting for a consent that nobody can give any more (the customer has no active
    /// administrator left).
    ///
    /// # Errors
    /// Not an operator; infrastructure failures.
    pub async fn operator_admin_requests(
        &self,
        actor: &Actor,
        statuses: &[AdminRequestStatus],
        customer: Option<CustomerId>,
    ) -> Result<Vec<AdminRequestView>, AdminRequestError> {
        self.acting_operator(actor)
            .await?
            .ok_or(AdminRequestError::Forbidden)?;
        let q = &self.deps.queries;
        let default = statuses.is_empty();
        let mut requests = q
            .admin_requests(&AdminRequestFilter {
                customer,
                requester: None,
                statuses: if default {
                    vec![
                        AdminRequestStatus::AwaitingApproval,
                        AdminRequestStatus::AwaitingConsent,
                    ]
                } else {
                    statuses.to_vec()
                },
            })
            .await?;
        if default {
            let mut orphaned = Vec::new();
            for r in &requests {
                if r.status() == AdminRequestStatus::AwaitingConsent {
                    let has_admin = q
                        .admins_of_customer(r.customer_id())
                        .await?
                        .iter()
                        .any(|a| a.is_active_admin_of(r.customer_id()));
                    if !has_admin {
                        orphaned.push(r.id());
                    }
                }
            }
            requests.retain(|r| {
                r.status() == AdminRequestStatus::AwaitingApproval || orphaned.contains(&r.id())
            });
        }
        self.views(requests).await
    }

    /// An operator grants the request: the requester becomes an administrator.
    ///
    /// # Errors
    /// Not waiting for approval, requester no longer eligible; not an operator; infrastructure
    /// failures.
    pub async fn approve_admin_request(
        &self,
        actor: &Actor,
        id: AdminRequestId,
    ) -> Result<AdminRequest, AdminRequestError> {
        self.transact(|| self.plan_decide(actor, id, true)).await
    }

    /// An operator refuses the request.
    ///
    /// # Errors
    /// Already decided; not an operator; infrastructure failures.
    pub async fn reject_admin_request(
        &self,
        actor: &Actor,
        id: AdminRequestId,
    ) -> Result<AdminRequest, AdminRequestError> {
        self.transact(|| self.plan_decide(actor, id, false)).await
    }

    async fn plan_decide(
        &self,
        actor: &Actor,
        id: AdminRequestId,
        approve: bool,
    ) -> Result<Planned<AdminRequest>, AdminRequestError> {
        let now = self.now();
        let q = &self.deps.queries;
        let acting = self
            .acting(actor)
            .await?
            .ok_or(AdminRequestError::Forbidden)?;
        // Decisions carry a person's name: operators only, not the system.
        let Acting::User(op) = &acting else {
            return Err(AdminRequestError::Forbidden);
        };
        if !op.is_active_operator() {
            return Err(AdminRequestError::Forbidden);
        }
        let decider = op.id();
        let mut request = q
            .admin_request(id)
            .await?
            .ok_or(AdminRequestError::NotFound)?;
        let mut commit = Commit::new();
        commit.write(Write::ExpectUser {
            id: op.id(),
            version: op.version(),
        });
        let requester = q.user(request.requester()).await?;
        let category = if approve {
            // A request still waiting for consent may be decided once no administrator is left
            // who could give it (deleted, locked or demoted meanwhile).
            let consent_possible = q
                .admins_of_customer(request.customer_id())
                .await?
                .iter()
                .any(|a| a.is_active_admin_of(request.customer_id()));
            let ready = match request.status() {
                AdminRequestStatus::AwaitingApproval => true,
                AdminRequestStatus::AwaitingConsent => !consent_possible,
                _ => false,
            };
            if !ready {
                return Err(AdminRequestError::WrongState(request.status()));
            }
            let mut user = requester
                .clone()
                .filter(|u| u.customer_id() == Some(request.customer_id()))
                .ok_or(AdminRequestError::RequesterIneligible)?;
            user.promote(now)
                .map_err(|_| AdminRequestError::RequesterIneligible)?;
            let mut customer = q
                .customer(request.customer_id())
                .await?
                .ok_or(AdminRequestError::RequesterIneligible)?;
            customer.touch_admin_set(now);
            request
                .approve(decider, consent_possible, now)
                .map_err(|e| AdminRequestError::WrongState(e.0))?;
            commit
                .mail(self.mail_to(
                    now,
                    &user,
                    MailIntent::AdminRequestApproved {
                        first_name: user.first_name().to_string(),
                    },
                ))
                .write(Write::UpdateUser(user))
                .write(Write::UpdateCustomer(customer));
            AuditCategory::AdminRightsGranted
        } else {
            request
                .reject(decider, now)
                .map_err(|e| AdminRequestError::WrongState(e.0))?;
            if let Some(user) = &requester {
                commit.mail(self.mail_to(
                    now,
                    user,
                    MailIntent::AdminRequestRejected {
                        first_name: user.first_name().to_string(),
                    },
                ));
            }
            AuditCategory::AdminRequestRejected
        };
        commit
            .audit(self.audit_record(
                now,
                Some(request.customer_id()),
                actor_ref(&acting),
                Some(request.requester()),
                category,
                format!("request={}", request.id()),
            ))
            .write(Write::UpdateAdminRequest(request.clone()));
        Ok(Planned::new(commit, request))
    }
}
