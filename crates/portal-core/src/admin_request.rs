//! Requests for admin rights (R9, manual 3.1): a user asks ("Admin-Rechte beantragen"); when the
//! customer already has an administrator, one of them must consent first; then an operator
//! approves or rejects.

use crate::customer::CorruptRecord;
use crate::ids::{AdminRequestId, CustomerId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRequestStatus {
    /// Waiting for an existing administrator's consent.
    AwaitingConsent,
    /// Waiting for an operator's decision.
    AwaitingApproval,
    /// Granted: the requester is an administrator.
    Approved,
    /// Refused by an operator, or consent declined by an administrator.
    Rejected,
}

impl AdminRequestStatus {
    /// Stable key.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::AwaitingConsent => "awaiting_consent",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a stable key.
    #[must_use]
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "awaiting_consent" => Some(Self::AwaitingConsent),
            "awaiting_approval" => Some(Self::AwaitingApproval),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }

    /// Still waiting for someone.
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(self, Self::AwaitingConsent | Self::AwaitingApproval)
    }
}

/// Everything stored about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequestRecord {
    /// Id.
    pub id: AdminRequestId,
    /// The customer whose admin the requester wants to become.
    pub customer_id: CustomerId,
    /// Who asked.
    pub requester: UserId,
    /// Where it stands.
    pub status: AdminRequestStatus,
    /// The administrator who consented.
    pub consented_by: Option<UserId>,
    /// The operator (or declining administrator) who decided.
    pub decided_by: Option<UserId>,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// Last step at.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// The request is not in a state that allows this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request is {0:?}")]
pub struct RequestClosed(pub AdminRequestStatus);

/// A request for admin rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    rec: AdminRequestRecord,
}

impl AdminRequest {
    /// Opens a request; it needs consent when the customer already has an administrator.
    #[must_use]
    pub fn open(
        id: AdminRequestId,
        customer_id: CustomerId,
        requester: UserId,
        needs_consent: bool,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            rec: AdminRequestRecord {
                id,
                customer_id,
                requester,
                status: if needs_consent {
                    AdminRequestStatus::AwaitingConsent
                } else {
                    AdminRequestStatus::AwaitingApproval
                },
                consented_by: None,
                decided_by: None,
                created_at: now,
                updated_at: now,
                version: 0,
            },
        }
    }

    /// Rebuilds a request read back from storage.
    ///
    /// # Errors
    /// Approved without a decider.
    pub fn from_record(rec: AdminRequestRecord) -> Result<Self, CorruptRecord> {
        if matches!(
            rec.status,
            AdminRequestStatus::Approved | AdminRequestStatus::Rejected
        ) && rec.decided_by.is_none()
        {
            return Err(CorruptRecord::new(
                "admin request",
                "decided without decider",
            ));
        }
        Ok(Self { rec })
    }

    /// The stored fields.
    #[must_use]
    pub fn record(&self) -> &AdminRequestRecord {
        &self.rec
    }

    /// Id.
    #[must_use]
    pub fn id(&self) -> AdminRequestId {
        self.rec.id
    }

    /// Customer.
    #[must_use]
    pub fn customer_id(&self) -> CustomerId {
        self.rec.customer_id
    }

    /// Requester.
    #[must_use]
    pub fn requester(&self) -> UserId {
        self.rec.requester
    }

    /// Status.
    #[must_use]
    pub fn status(&self) -> AdminRequestStatus {
        self.rec.status
    }

    /// Version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.rec.version
    }

    /// An administrator consents.
    ///
    /// # Errors
    /// Not waiting for consent.
    pub fn consent(&mut self, admin: UserId, now: DateTime<Utc>) -> Result<(), RequestClosed> {
        if self.rec.status != AdminRequestStatus::AwaitingConsent {
            return Err(RequestClosed(self.rec.status));
        }
        self.rec.status = AdminRequestStatus::AwaitingApproval;
        self.rec.consented_by = Some(admin);
        self.rec.updated_at = now;
        Ok(())
    }

    /// An operator approves. A request still waiting for consent can be approved only when no
    /// administrator is left who could give it (`consent_possible == false`).
    ///
    /// # Errors
    /// Not waiting for approval (or for a consent nobody can give any more).
    pub fn approve(
        &mut self,
        operator: UserId,
        consent_possible: bool,
        now: DateTime<Utc>,
    ) -> Result<(), RequestClosed> {
        let ready = match self.rec.status {
            AdminRequestStatus::AwaitingApproval => true,
            AdminRequestStatus::AwaitingConsent => !consent_possible,
            _ => false,
        };
        if !ready {
            return Err(RequestClosed(self.rec.status));
        }
        self.rec.status = AdminRequestStatus::Approved;
        self.rec.decided_by = Some(operator);
        self.rec.updated_at = now;
        Ok(())
    }

    /// An operator rejects, or an administrator declines consent.
    ///
    /// # Errors
    /// Already decided.
    pub fn reject(&mut self, by: UserId, now: DateTime<Utc>) -> Result<(), RequestClosed> {
        if !self.rec.status.is_open() {
            return Err(RequestClosed(self.rec.status));
        }
        self.rec.status = AdminRequestStatus::Rejected;
        self.rec.decided_by = Some(by);
        self.rec.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn id(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    fn req(needs_consent: bool) -> AdminRequest {
        AdminRequest::open(
            AdminRequestId::from_uuid(Uuid::from_u128(1)),
            CustomerId::from_uuid(Uuid::from_u128(2)),
            id(3),
            needs_consent,
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )
    }

    #[test]
    fn with_an_existing_admin_consent_comes_before_approval() {
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let mut r = req(true);
        assert_eq!(r.status(), AdminRequestStatus::AwaitingConsent);
        assert!(
            r.approve(id(9), true, now).is_err(),
            "no approval before consent"
        );
        r.consent(id(4), now).unwrap();
        assert!(r.consent(id(4), now).is_err());
        r.approve(id(9), true, now).unwrap();
        assert_eq!(r.status(), AdminRequestStatus::Approved);
        assert!(
            r.reject(id(9), now).is_err(),
            "decided requests stay decided"
        );
    }

    #[test]
    fn a_consent_nobody_can_give_does_not_block_the_operator() {
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let mut r = req(true);
        r.approve(id(9), false, now).unwrap();
        assert_eq!(r.status(), AdminRequestStatus::Approved);
    }

    #[test]
    fn without_an_admin_the_operator_decides_directly() {
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let mut r = req(false);
        assert_eq!(r.status(), AdminRequestStatus::AwaitingApproval);
        r.reject(id(9), now).unwrap();
        assert_eq!(r.status(), AdminRequestStatus::Rejected);
        assert!(r.approve(id(9), false, now).is_err());
    }
}
