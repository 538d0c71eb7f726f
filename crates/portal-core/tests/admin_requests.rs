//! "Admin-Rechte beantragen" (manual 3.1, R9): request → consent of an existing administrator
//! (when there is one) → an operator approves or rejects. Every step is audited and mailed.

use crate::support::*;
use portal_core::Actor;
use portal_core::admin_request::{AdminRequest, AdminRequestStatus};
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::ids::AdminRequestId;
use portal_core::service::AdminRequestError;
use portal_core::user::Role;

const N: &str = "100000001";

/// Which error a case expects.
type Expect = fn(&AdminRequestError) -> bool;
const OTHER: &str = "100000002";

async fn stored(w: &World, id: AdminRequestId) -> AdminRequest {
    w.portal
        .deps()
        .queries
        .admin_request(id)
        .await
        .unwrap()
        .unwrap()
}

fn mail(to: &str, kind: &'static str) -> (String, &'static str) {
    (to.to_owned(), kind)
}

/// A customer with an admin (`chef`), an activated employee (`bert`) and two operators.
async fn with_admin() -> (World, Actor, Actor, Actor) {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    w.operator("op2@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let bert = w.pending_member("bert@example.com", N).await;
    w.portal
        .activate_user(&chef, &number(N), id_of(&bert))
        .await
        .unwrap();
    (w, op, chef, bert)
}

#[tokio::test]
async fn without_an_admin_the_request_goes_straight_to_the_operators() {
    let w = World::new();
    let c = w.customer(N).await;
    w.operator("op@vendor.example").await;
    w.operator("op2@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
    let from = w.store.outbox().len();
    let req = w.portal.request_admin_rights(&anna).await.unwrap();
    assert_eq!(req.status(), AdminRequestStatus::AwaitingApproval);
    assert_eq!(req.requester(), id_of(&anna));
    assert_eq!(req.customer_id(), c.id());
    assert_eq!(
        stored(&w, req.id()).await.status(),
        AdminRequestStatus::AwaitingApproval
    );
    assert_eq!(
        mails_since(&w, from),
        [
            mail("anna@example.com", "admin_request_received"),
            mail("op2@vendor.example", "admin_approval_needed"),
            mail("op@vendor.example", "admin_approval_needed"),
        ]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::AdminRightsRequested);
    assert_eq!(last.record.subject, Some(id_of(&anna)));
    assert_eq!(
        last.record.details,
        format!("request={}; needs_consent=false", req.id())
    );
    assert_eq!(w.user(id_of(&anna)).await.role(), Role::Employee, "not yet");
}

#[tokio::test]
async fn an_operators_approval_makes_the_requester_an_administrator() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
    let req = w.portal.request_admin_rights(&anna).await.unwrap();
    let from = w.store.outbox().len();
    let approved = w.portal.approve_admin_request(&op, req.id()).await.unwrap();
    assert_eq!(approved.status(), AdminRequestStatus::Approved);
    assert_eq!(approved.record().decided_by, Some(id_of(&op)));
    assert_eq!(
        stored(&w, req.id()).await.status(),
        AdminRequestStatus::Approved
    );
    let u = w.user(id_of(&anna)).await;
    assert_eq!(u.role(), Role::Administrator);
    assert!(u.is_active_admin_of(c.id()));
    assert_eq!(
        mails_since(&w, from),
        [mail("anna@example.com", "admin_request_approved")]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::AdminRightsGranted);
    assert_eq!(last.record.actor.kind, ActorKind::Operator);
    assert_eq!(last.record.actor.user, Some(id_of(&op)));
    assert_eq!(last.record.subject, Some(id_of(&anna)));
    // Now an admin: the user table opens.
    w.portal
        .list_users(&anna, &number(N), None, &Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn with_an_admin_the_request_waits_for_consent_and_then_for_an_operator() {
    let (w, op, chef, bert) = with_admin().await;
    let c = w.customer_now(N).await;
    w.admin("chef2@example.com", N, &op).await;
    let chef2 = w.user_id("chef2@example.com").await;

    let from = w.store.outbox().len();
    let req = w.portal.request_admin_rights(&bert).await.unwrap();
    assert_eq!(req.status(), AdminRequestStatus::AwaitingConsent);
    assert_eq!(
        mails_since(&w, from),
        [
            mail("bert@example.com", "admin_request_received"),
            mail("chef2@example.com", "admin_consent_needed"),
            mail("chef@example.com", "admin_consent_needed"),
        ],
        "the admins are asked, the operators not yet"
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(
        last.record.details,
        format!("request={}; needs_consent=true", req.id())
    );

    let from = w.store.outbox().len();
    let consented = w
        .portal
        .consent_admin_request(&chef, &number(N), req.id())
        .await
        .unwrap();
    assert_eq!(consented.status(), AdminRequestStatus::AwaitingApproval);
    assert_eq!(consented.record().consented_by, Some(id_of(&chef)));
    assert_eq!(
        mails_since(&w, from),
        [
            mail("bert@example.com", "admin_request_consented"),
            mail("op2@vendor.example", "admin_approval_needed"),
            mail("op@vendor.example", "admin_approval_needed"),
        ]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::AdminRequestConsented);
    assert_eq!(last.record.actor.user, Some(id_of(&chef)));
    assert_eq!(last.record.subject, Some(id_of(&bert)));
    assert_eq!(w.user(id_of(&bert)).await.role(), Role::Employee, "not yet");

    w.portal.approve_admin_request(&op, req.id()).await.unwrap();
    assert_eq!(w.user(id_of(&bert)).await.role(), Role::Administrator);
    assert_eq!(w.user(chef2).await.role(), Role::Administrator);
}

#[tokio::test]
async fn an_admin_can_decline_a_colleagues_request() {
    let (w, op, chef, bert) = with_admin().await;
    let c = w.customer_now(N).await;
    let req = w.portal.request_admin_rights(&bert).await.unwrap();
    let from = w.store.outbox().len();
    let declined = w
        .portal
        .decline_admin_request(&chef, &number(N), req.id())
        .await
        .unwrap();
    assert_eq!(declined.status(), AdminRequestStatus::Rejected);
    assert_eq!(
        stored(&w, req.id()).await.status(),
        AdminRequestStatus::Rejected
    );
    assert_eq!(
        mails_since(&w, from),
        [mail("bert@example.com", "admin_request_rejected")]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::AdminRequestRejected);
    assert_eq!(last.record.actor.user, Some(id_of(&chef)));
    assert_eq!(w.user(id_of(&bert)).await.role(), Role::Employee);

    let counts = w.counts();
    let err = w
        .portal
        .approve_admin_request(&op, req.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdminRequestError::WrongState(AdminRequestStatus::Rejected)
        ),
        "got {err:?}"
    );
    assert_eq!(w.counts(), counts);
    // A closed request does not block a new one.
    let again = w.portal.request_admin_rights(&bert).await.unwrap();
    assert_eq!(again.status(), AdminRequestStatus::AwaitingConsent);
}

#[tokio::test]
async fn an_operator_can_reject_a_request() {
    let w = World::new();
    let c = w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
    let req = w.portal.request_admin_rights(&anna).await.unwrap();
    let from = w.store.outbox().len();
    let rejected = w.portal.reject_admin_request(&op, req.id()).await.unwrap();
    assert_eq!(rejected.status(), AdminRequestStatus::Rejected);
    assert_eq!(rejected.record().decided_by, Some(id_of(&op)));
    assert_eq!(
        mails_since(&w, from),
        [mail("anna@example.com", "admin_request_rejected")]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::AdminRequestRejected);
    assert_eq!(last.record.actor.kind, ActorKind::Operator);
    assert_eq!(w.user(id_of(&anna)).await.role(), Role::Employee);
}

#[tokio::test]
async fn a_second_open_request_is_refused() {
    let (w, _op, chef, bert) = with_admin().await;
    let req = w.portal.request_admin_rights(&bert).await.unwrap();
    for step in ["awaiting consent", "awaiting approval"] {
        let counts = w.counts();
        let err = w.portal.request_admin_rights(&bert).await.unwrap_err();
        assert!(
            matches!(err, AdminRequestError::AlreadyRequested),
            "{step}: got {err:?}"
        );
        assert_eq!(w.counts(), counts, "{step}");
        if step == "awaiting consent" {
            w.portal
                .consent_admin_request(&chef, &number(N), req.id())
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn only_the_customers_admins_consent() {
    let (w, op, chef, bert) = with_admin().await;
    w.customer(OTHER).await;
    let stranger = w.admin("fremd@example.com", OTHER, &op).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let req = w.portal.request_admin_rights(&bert).await.unwrap();
    let before = stored(&w, req.id()).await;
    let counts = w.counts();
    let cases: [(&str, &Actor, &str, Expect); 5] = [
        ("employee", &emma, N, |e| {
            matches!(e, AdminRequestError::Forbidden)
        }),
        ("the requester", &bert, N, |e| {
            matches!(e, AdminRequestError::Forbidden)
        }),
        ("operator", &op, N, |e| {
            matches!(e, AdminRequestError::Forbidden)
        }),
        ("system", &Actor::System, N, |e| {
            matches!(e, AdminRequestError::Forbidden)
        }),
        ("admin of another customer", &stranger, N, |e| {
            matches!(e, AdminRequestError::NotFound)
        }),
    ];
    for (case, actor, n, expected) in cases {
        let err = w
            .portal
            .consent_admin_request(actor, &number(n), req.id())
            .await
            .unwrap_err();
        assert!(expected(&err), "consent, {case}: got {err:?}");
        let err = w
            .portal
            .decline_admin_request(actor, &number(n), req.id())
            .await
            .unwrap_err();
        assert!(expected(&err), "decline, {case}: got {err:?}");
    }
    // Through their own customer number the foreign admin finds no such request either.
    let err = w
        .portal
        .consent_admin_request(&stranger, &number(OTHER), req.id())
        .await
        .unwrap_err();
    assert!(matches!(err, AdminRequestError::NotFound), "got {err:?}");
    assert_eq!(stored(&w, req.id()).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn only_operators_decide() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let req = w.portal.request_admin_rights(&emma).await.unwrap();
    w.portal
        .consent_admin_request(&chef, &number(N), req.id())
        .await
        .unwrap();
    let before = stored(&w, req.id()).await;
    let counts = w.counts();
    for (case, actor) in [
        ("admin", &chef),
        ("the requester", &emma),
        ("system", &Actor::System),
    ] {
        let err = w
            .portal
            .approve_admin_request(actor, req.id())
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminRequestError::Forbidden),
            "approve, {case}: got {err:?}"
        );
        let err = w
            .portal
            .reject_admin_request(actor, req.id())
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminRequestError::Forbidden),
            "reject, {case}: got {err:?}"
        );
    }
    let err = w
        .portal
        .operator_admin_requests(&chef, &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminRequestError::Forbidden), "got {err:?}");
    assert_eq!(stored(&w, req.id()).await, before);
    assert_eq!(w.counts(), counts);
    assert_eq!(w.user(id_of(&emma)).await.role(), Role::Employee);
}

#[tokio::test]
async fn a_request_is_decided_once_and_only_at_its_step() {
    let (w, op, chef, bert) = with_admin().await;
    let req = w.portal.request_admin_rights(&bert).await.unwrap();
    let counts = w.counts();
    let err = w
        .portal
        .approve_admin_request(&op, req.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdminRequestError::WrongState(AdminRequestStatus::AwaitingConsent)
        ),
        "approve before consent: {err:?}"
    );
    assert_eq!(w.counts(), counts);
    w.portal
        .consent_admin_request(&chef, &number(N), req.id())
        .await
        .unwrap();
    let counts = w.counts();
    let err = w
        .portal
        .consent_admin_request(&chef, &number(N), req.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdminRequestError::WrongState(AdminRequestStatus::AwaitingApproval)
        ),
        "consent twice: {err:?}"
    );
    assert_eq!(w.counts(), counts);
    w.portal.approve_admin_request(&op, req.id()).await.unwrap();
    let before = stored(&w, req.id()).await;
    let counts = w.counts();
    let err = w
        .portal
        .approve_admin_request(&op, req.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdminRequestError::WrongState(AdminRequestStatus::Approved)
        ),
        "approve twice: {err:?}"
    );
    let err = w
        .portal
        .reject_admin_request(&op, req.id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AdminRequestError::WrongState(AdminRequestStatus::Approved)
        ),
        "reject after approval: {err:?}"
    );
    assert_eq!(stored(&w, req.id()).await, before);
    assert_eq!(w.counts(), counts);
    let err = w
        .portal
        .approve_admin_request(&op, AdminRequestId::from_uuid(uuid_of(7_777)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminRequestError::NotFound),
        "unknown request: {err:?}"
    );
}

fn uuid_of(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

#[tokio::test]
async fn only_active_linked_employees_may_ask() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let waiting = w.pending_member("bert@example.com", N).await;
    let (solo, _) = w.registered("solo@example.com").await;
    let cases: [(&str, &Actor, Expect); 4] = [
        ("pending activation", &waiting, |e| {
            matches!(e, AdminRequestError::NotEligible)
        }),
        ("not linked", &solo, |e| {
            matches!(e, AdminRequestError::NotEligible)
        }),
        ("operator", &op, |e| {
            matches!(e, AdminRequestError::NotEligible)
        }),
        ("admin already", &chef, |e| {
            matches!(e, AdminRequestError::AlreadyAdmin)
        }),
    ];
    let counts = w.counts();
    for (case, actor, expected) in cases {
        let err = w.portal.request_admin_rights(actor).await.unwrap_err();
        assert!(expected(&err), "{case}: got {err:?}");
    }
    let err = w
        .portal
        .request_admin_rights(&Actor::System)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminRequestError::Forbidden),
        "system: {err:?}"
    );
    assert_eq!(w.counts(), counts);
    let open = w
        .portal
        .operator_admin_requests(
            &op,
            &[
                AdminRequestStatus::AwaitingConsent,
                AdminRequestStatus::AwaitingApproval,
            ],
            None,
        )
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
}

#[tokio::test]
async fn a_requester_locked_meanwhile_is_not_promoted() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let anna = w.member("anna@example.com", N).await;
    let req = w.portal.request_admin_rights(&anna).await.unwrap();
    w.portal
        .lock_user(&op, &number(N), id_of(&anna), None)
        .await
        .unwrap();
    let before = stored(&w, req.id()).await;
    let user = w.user(id_of(&anna)).await;
    let counts = w.counts();
    let err = w
        .portal
        .approve_admin_request(&op, req.id())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminRequestError::RequesterIneligible),
        "got {err:?}"
    );
    assert_eq!(stored(&w, req.id()).await, before);
    assert_eq!(w.user(id_of(&anna)).await, user);
    assert_eq!(w.counts(), counts);
    // Rejecting it is still possible.
    w.portal.reject_admin_request(&op, req.id()).await.unwrap();
}

#[tokio::test]
async fn operators_see_waiting_requests_and_admins_those_of_their_customer() {
    let (w, op, chef, bert) = with_admin().await;
    w.customer(OTHER).await;
    let stranger = w.admin("fremd@example.com", OTHER, &op).await;
    let req = w.portal.request_admin_rights(&bert).await.unwrap();

    let waiting = w
        .portal
        .operator_admin_requests(&op, &[], None)
        .await
        .unwrap();
    assert!(
        waiting
            .iter()
            .all(|v| v.request.status() == AdminRequestStatus::AwaitingApproval),
        "by default only requests waiting for a decision"
    );
    assert!(
        !waiting.iter().any(|v| v.request.id() == req.id()),
        "needs consent first"
    );

    let mine = w
        .portal
        .customer_admin_requests(&chef, &number(N))
        .await
        .unwrap();
    let view = mine.iter().find(|v| v.request.id() == req.id()).unwrap();
    assert_eq!(view.requester.as_ref().map(|u| u.id()), Some(id_of(&bert)));
    assert_eq!(view.customer.as_ref().map(|c| c.number().as_str()), Some(N));
    let theirs = w
        .portal
        .customer_admin_requests(&stranger, &number(OTHER))
        .await
        .unwrap();
    assert!(!theirs.iter().any(|v| v.request.id() == req.id()), "R2");
    let err = w
        .portal
        .customer_admin_requests(&stranger, &number(N))
        .await
        .unwrap_err();
    assert!(matches!(err, AdminRequestError::NotFound), "R2: {err:?}");

    w.portal
        .consent_admin_request(&chef, &number(N), req.id())
        .await
        .unwrap();
    let waiting = w
        .portal
        .operator_admin_requests(&op, &[], None)
        .await
        .unwrap();
    assert!(waiting.iter().any(|v| v.request.id() == req.id()));
}

#[tokio::test]

async fn a_request_waiting_for_a_consent_nobody_can_give_reaches_the_operators() {
    let (w, op, chef, bert) = with_admin().await;
    let req = w.portal.request_admin_rights(&bert).await.unwrap();
    w.portal
        .delete_user(&op, &number(N), id_of(&chef))
        .await
        .unwrap();
    let waiting = w
        .portal
        .operator_admin_requests(&op, &[], None)
        .await
        .unwrap();
    assert!(
        waiting.iter().any(|v| v.request.id() == req.id()),
        "the operators see it"
    );
    w.portal.approve_admin_request(&op, req.id()).await.unwrap();
    assert_eq!(w.user(id_of(&bert)).await.role(), Role::Administrator);
}
