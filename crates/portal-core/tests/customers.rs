//! Customers, for operators: create, import, list; and the setup of operator accounts.

use crate::support::*;
use portal_core::Actor;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::customer::{AffiliationKey, ServiceChannel};
use portal_core::permission::PermissionSet;
use portal_core::secret::SecretString;
use portal_core::service::{
    AcceptInvitation, CustomerError, ImportReport, InvitationError, NewCustomer, PageRequest,
    PagingError,
};
use portal_core::user::{Role, UserStatus};
use portal_core::values::{CompanyName, Language};
use std::collections::BTreeSet;

const N: &str = "100000001";

fn new_customer(n: &str, company: &str) -> NewCustomer {
    NewCustomer {
        number: number(n),
        name: CompanyName::parse(company).unwrap(),
        affiliations: BTreeSet::from([affiliation()]),
        channel: ServiceChannel::Direct,
        entitlements: None,
        default_permissions: None,
    }
}

fn with(
    mut c: NewCustomer,
    entitlements: Option<PermissionSet>,
    defaults: Option<PermissionSet>,
) -> NewCustomer {
    c.entitlements = entitlements;
    c.default_permissions = defaults;
    c
}

fn page(size: u32, cursor: Option<String>) -> PageRequest {
    PageRequest {
        size: Some(size),
        page: None,
        cursor,
    }
}

#[tokio::test]
async fn an_operator_creates_a_customer_with_the_default_entitlements() {
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    let c = w
        .portal
        .create_customer(&op, &new_customer(" D100000001 ", "Muster GmbH"))
        .await
        .unwrap();
    assert_eq!(c.number().as_str(), N);
    assert_eq!(c.name().as_str(), "Muster GmbH");
    assert_eq!(
        c.entitlements(),
        &w.portal.catalog().all(),
        "every catalog area"
    );
    assert_eq!(c.default_permissions(), &keys(&["support_requests"]));
    let stored = w.portal.get_customer(&op, &number(N)).await.unwrap();
    assert_eq!(stored.id(), c.id());
    assert_eq!(stored.entitlements(), c.entitlements());
    let entries = w.audit_of(Some(c.id()));
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].record.category, AuditCategory::CustomerCreated);
    assert_eq!(entries[0].record.actor.kind, ActorKind::Operator);
    assert_eq!(entries[0].record.actor.user, Some(id_of(&op)));
    assert_eq!(entries[0].record.details, "number=100000001");
    let err = w
        .portal
        .get_customer(&op, &number("999999999"))
        .await
        .unwrap_err();
    assert!(matches!(err, CustomerError::NotFound), "got {err:?}");
}

#[tokio::test]
async fn explicit_entitlements_and_defaults_are_kept_and_checked() {
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    let c = w
        .portal
        .create_customer(
            &op,
            &with(
                new_customer(N, "Muster GmbH"),
                Some(keys(&["documents", "shop"])),
                Some(keys(&["shop"])),
            ),
        )
        .await
        .unwrap();
    assert_eq!(c.entitlements(), &keys(&["documents", "shop"]));
    assert_eq!(c.default_permissions(), &keys(&["shop"]));
    let c = w
        .portal
        .create_customer(
            &op,
            &with(
                new_customer("100000002", "Ohne Support AG"),
                Some(keys(&["documents"])),
                None,
            ),
        )
        .await
        .unwrap();
    assert!(
        c.default_permissions().is_empty(),
        "the configured default is not entitled here"
    );

    let counts = w.counts();
    for (case, cmd, bad) in [
        (
            "unknown entitlement",
            with(
                new_customer("100000003", "X"),
                Some(keys(&["documents", "time_travel"])),
                None,
            ),
            vec!["time_travel"],
        ),
        (
            "default outside the entitlements",
            with(
                new_customer("100000003", "X"),
                Some(keys(&["documents"])),
                Some(keys(&["shop"])),
            ),
            vec!["shop"],
        ),
    ] {
        let err = w.portal.create_customer(&op, &cmd).await.unwrap_err();
        assert!(
            matches!(&err, CustomerError::UnknownPermissions(k) if *k == bad),
            "{case}: got {err:?}"
        );
    }
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn a_taken_number_or_an_unknown_affiliation_is_refused() {
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    w.portal
        .create_customer(&op, &new_customer(N, "Muster GmbH"))
        .await
        .unwrap();
    let c = w.customer_now(N).await;
    let counts = w.counts();
    let err = w
        .portal
        .create_customer(&op, &new_customer("D100000001", "Andere GmbH"))
        .await
        .unwrap_err();
    assert!(matches!(err, CustomerError::NumberTaken), "got {err:?}");
    let mut cmd = new_customer("100000002", "Andere GmbH");
    cmd.affiliations
        .insert(AffiliationKey::parse("mars").unwrap());
    let err = w.portal.create_customer(&op, &cmd).await.unwrap_err();
    assert!(
        matches!(&err, CustomerError::UnknownAffiliation(a) if a == "mars"),
        "got {err:?}"
    );
    assert_eq!(w.counts(), counts);
    assert_eq!(w.customer_now(N).await, c, "the first one is untouched");
    let err = w
        .portal
        .get_customer(&op, &number("100000002"))
        .await
        .unwrap_err();
    assert!(matches!(err, CustomerError::NotFound), "got {err:?}");
}

#[tokio::test]
async fn only_operators_manage_customers() {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let (solo, _) = w.registered("solo@example.com").await;
    w.portal
        .lock_user(&Actor::System, &number(N), id_of(&emma), None)
        .await
        .unwrap();
    let emma_locked = emma;
    let emma2 = w.invited(&chef, N, "emma2@example.com", &[]).await;
    let counts = w.counts();
    for (who, actor) in [
        ("admin", &chef),
        ("employee", &emma2),
        ("locked employee", &emma_locked),
        ("user without customer", &solo),
    ] {
        let err = w
            .portal
            .create_customer(actor, &new_customer("100000002", "X"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CustomerError::Forbidden),
            "create, {who}: {err:?}"
        );
        let err = w
            .portal
            .import_customers(actor, &[new_customer("100000002", "X")])
            .await
            .unwrap_err();
        assert!(
            matches!(err, CustomerError::Forbidden),
            "import, {who}: {err:?}"
        );
        let err = w
            .portal
            .list_customers(actor, None, &PageRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, CustomerError::Forbidden),
            "list, {who}: {err:?}"
        );
        let err = w.portal.get_customer(actor, &number(N)).await.unwrap_err();
        assert!(
            matches!(err, CustomerError::Forbidden),
            "get, {who}: {err:?}"
        );
        let err = w
            .portal
            .create_operator(
                actor,
                &email("neu@vendor.example"),
                &name("Neu"),
                &name("Operator"),
                Language::De,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, CustomerError::Forbidden),
            "operator, {who}: {err:?}"
        );
    }
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_import_creates_updates_and_leaves_unchanged() {
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    let same = new_customer("100000001", "Bleibt GmbH");
    let changed = new_customer("100000002", "Alter Name GmbH");
    w.portal.create_customer(&op, &same).await.unwrap();
    let before = w.portal.create_customer(&op, &changed).await.unwrap();
    let same_entries = w
        .audit_of(Some(w.customer_now("100000001").await.id()))
        .len();

    let mut renamed = new_customer("100000002", "Neuer Name GmbH");
    renamed.entitlements = Some(keys(&["documents", "support_requests"]));
    let report = w
        .portal
        .import_customers(
            &op,
            &[same.clone(), renamed, new_customer("100000003", "Neu AG")],
        )
        .await
        .unwrap();
    assert_eq!(
        report,
        ImportReport {
            created: 1,
            updated: 1,
            unchanged: 1
        }
    );
    let after = w.customer_now("100000002").await;
    assert_eq!(after.id(), before.id());
    assert_eq!(after.name().as_str(), "Neuer Name GmbH");
    assert_eq!(
        after.entitlements(),
        &keys(&["documents", "support_requests"])
    );
    let last = w.audit_of(Some(after.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::CustomerUpdated);
    assert_eq!(
        last.record.details,
        "entitlements=documents,support_requests"
    );
    assert_eq!(
        w.audit_of(Some(w.customer_now("100000001").await.id()))
            .len(),
        same_entries,
        "unchanged: no entry"
    );
    let created = w.customer_now("100000003").await;
    assert_eq!(
        w.audit_of(Some(created.id()))[0].record.category,
        AuditCategory::CustomerCreated
    );

    // Importing the same rows again changes nothing.
    let counts = w.counts();
    let report = w
        .portal
        .import_customers(&op, &[same, new_customer("100000003", "Neu AG")])
        .await
        .unwrap();
    assert_eq!(report.unchanged, 2);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_import_with_an_invalid_row_writes_nothing() {
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    w.portal
        .create_customer(&op, &new_customer(N, "Bleibt GmbH"))
        .await
        .unwrap();
    let c = w.customer_now(N).await;
    let counts = w.counts();
    let mut bad_affiliation = new_customer("100000003", "Mars AG");
    bad_affiliation.affiliations = BTreeSet::from([AffiliationKey::parse("mars").unwrap()]);
    let cases = [
        (
            "unknown affiliation",
            vec![
                new_customer(N, "Umbenannt GmbH"),
                new_customer("100000002", "Neu AG"),
                bad_affiliation,
            ],
            3,
        ),
        (
            "unknown permission",
            vec![
                new_customer("100000002", "Neu AG"),
                with(
                    new_customer("100000004", "Y"),
                    Some(keys(&["time_travel"])),
                    None,
                ),
            ],
            2,
        ),
        (
            "number twice",
            vec![
                new_customer("100000002", "Neu AG"),
                new_customer("D100000002", "Doppelt AG"),
            ],
            2,
        ),
    ];
    for (case, rows, bad_row) in cases {
        let err = w.portal.import_customers(&op, &rows).await.unwrap_err();
        assert!(
            matches!(&err, CustomerError::InvalidRow { row, .. } if *row == bad_row),
            "{case}: got {err:?}"
        );
    }
    assert_eq!(w.counts(), counts);
    assert_eq!(w.customer_now(N).await, c, "not renamed");
    let err = w
        .portal
        .get_customer(&op, &number("100000002"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CustomerError::NotFound),
        "not created: {err:?}"
    );
}

#[tokio::test]
async fn customers_are_listed_by_number_with_search_and_cursor() {
    let w = World::new();
    let op = w.operator("op@vendor.example").await;
    for (n, company) in [
        ("300000000", "Gamma Bau GmbH"),
        ("100000000", "Alpha Software AG"),
        ("500000000", "Epsilon Handel KG"),
        ("200000000", "Beta Bau GmbH"),
        ("400000000", "Delta Dienste e. K."),
    ] {
        w.portal
            .create_customer(&op, &new_customer(n, company))
            .await
            .unwrap();
    }
    let mut numbers = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let p = w
            .portal
            .list_customers(&op, None, &page(2, cursor))
            .await
            .unwrap();
        assert!(p.items.len() <= 2);
        numbers.extend(p.items.iter().map(|c| c.number().as_str().to_owned()));
        pages += 1;
        cursor = p.next;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 5, "runaway paging");
    }
    assert_eq!(
        numbers,
        [
            "100000000",
            "200000000",
            "300000000",
            "400000000",
            "500000000"
        ]
    );
    assert_eq!(pages, 3);

    let found = |q: &'static str| {
        let w = &w;
        let op = &op;
        async move {
            w.portal
                .list_customers(op, Some(q), &PageRequest::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| c.number().as_str().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("bau").await, ["200000000", "300000000"], "by name");
    assert_eq!(
        found("  BAU gmbh ").await,
        ["200000000", "300000000"],
        "any case"
    );
    assert_eq!(found("40000").await, ["400000000"], "by number");
    assert!(found("zeta").await.is_empty());

    for (case, req, expected) in [
        (
            "garbage cursor",
            page(2, Some("not a number".into())),
            PagingError::InvalidCursor,
        ),
        (
            "page 2 without cursor",
            PageRequest {
                size: Some(2),
                page: Some(2),
                cursor: None,
            },
            PagingError::PageOutOfRange,
        ),
        (
            "size 0",
            page(0, None),
            PagingError::InvalidSize { max: 100 },
        ),
    ] {
        let err = w.portal.list_customers(&op, None, &req).await.unwrap_err();
        assert!(
            matches!(err, CustomerError::Paging(e) if e == expected),
            "{case}: got {err:?}"
        );
    }
}

#[tokio::test]
async fn a_new_operator_sets_up_the_account_once_through_the_link() {
    let w = World::new();
    assert!(!w.portal.has_operator().await.unwrap());
    let setup = w
        .portal
        .create_operator(
            &Actor::System,
            &email("olga@vendor.example"),
            &name("Olga"),
            &name("Neu"),
            Language::En,
        )
        .await
        .unwrap();
    assert!(w.portal.has_operator().await.unwrap());
    assert_eq!(setup.user.role(), Role::Operator);
    assert_eq!(setup.user.status(), UserStatus::Invited);
    assert!(setup.user.customer_id().is_none());
    assert!(
        w.mails_to("olga@vendor.example").is_empty(),
        "the link is handed over, not mailed"
    );
    let last = w.audit_of(None).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::UserCreated);
    assert_eq!(last.record.subject, Some(setup.user.id()));
    assert_eq!(last.record.details, "role=operator; via=setup_link");
    assert!(!last.record.details.contains(setup.token.expose()));

    let view = w.portal.invitation(setup.token.expose()).await.unwrap();
    assert_eq!(view.role, Role::Operator);
    assert_eq!(view.customer_name, None);
    assert_eq!(view.expires_at, setup.expires_at);

    let olga = w
        .accept_invitation(setup.token.expose(), "olga@vendor.example")
        .await;
    let u = w.user(id_of(&olga)).await;
    assert_eq!(u.status(), UserStatus::Active);
    assert!(u.is_active_operator());
    w.portal
        .create_customer(&olga, &new_customer(N, "Muster GmbH"))
        .await
        .unwrap();

    let counts = w.counts();
    let err = w
        .portal
        .accept_invitation(
            setup.token.expose(),
            AcceptInvitation {
                password: SecretString::new("ein anderes pferd"),
                password_confirmation: SecretString::new("ein anderes pferd"),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, InvitationError::Used), "got {err:?}");
    assert_eq!(w.counts(), counts);

    // An operator can add another; an address in use cannot.
    w.portal
        .create_operator(
            &olga,
            &email("otto@vendor.example"),
            &name("Otto"),
            &name("Zwei"),
            Language::De,
        )
        .await
        .unwrap();
    let counts = w.counts();
    let err = w
        .portal
        .create_operator(
            &olga,
            &email("OLGA@vendor.example"),
            &name("Olga"),
            &name("Doppelt"),
            Language::De,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CustomerError::EmailUnavailable),
        "got {err:?}"
    );
    assert_eq!(w.counts(), counts);
}
