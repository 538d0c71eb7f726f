//! User management by a customer's administrator or an operator (manual 3.2–3.6): the user
//! table, invitations, permissions, activation, lock, unlock, delete (R2–R6, R10, R11).

use crate::support::*;
use chrono::TimeDelta;
use portal_core::Actor;
use portal_core::audit::{ActorKind, AuditCategory};
use portal_core::ids::UserId;
use portal_core::mail::MailIntent;
use portal_core::permission::GroupKey;
use portal_core::ports::{Clock as _, Write};
use portal_core::secret::SecretString;
use portal_core::service::{
    AcceptInvitation, AdminError, AuditListQuery, AuthError, InvitationError, Invite, LoginError,
    PageRequest, PagingError, ResetError, UserPage,
};
use portal_core::user::{Role, User, UserStatus};
use portal_core::values::{FreeText, Language};
use std::collections::BTreeSet;

const N: &str = "100000001";

/// Which error a case expects.
type Expect = fn(&AdminError) -> bool;
const OTHER: &str = "100000002";

fn invite_cmd(address: &str, first: &str, last: &str, perms: &[&str]) -> Invite {
    Invite {
        email: email(address),
        first_name: name(first),
        last_name: name(last),
        language: Language::De,
        permissions: keys(perms),
    }
}

fn unknown_user() -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0xdead_beef))
}

fn page(size: Option<u32>, number: Option<u32>, cursor: Option<String>) -> PageRequest {
    PageRequest {
        size,
        page: number,
        cursor,
    }
}

fn emails(p: &UserPage) -> Vec<String> {
    p.items.iter().map(|u| u.email().to_string()).collect()
}

/// A customer with an operator and an administrator.
async fn managed() -> (World, Actor, Actor) {
    let w = World::new();
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    (w, op, chef)
}

const LAST_NAMES: [&str; 25] = [
    "Weber", "Albers", "Zander", "Krause", "Becker", "Yilmaz", "Fischer", "Otto", "Meyer",
    "Richter", "Hoffmann", "Lange", "Braun", "Schulz", "Neumann", "Vogel", "Jung", "Engel",
    "Xaver", "Dietrich", "Peters", "Graf", "Ulrich", "Quandt", "Illner",
];

#[tokio::test]
async fn the_user_table_shows_ten_per_page_and_its_cursor_walks_every_user_once_in_name_order() {
    let (w, op, chef) = managed().await;
    for (i, last) in LAST_NAMES.iter().enumerate() {
        w.portal
            .invite_user(
                &chef,
                &number(N),
                invite_cmd(&format!("u{i}@example.com"), "Uwe", last, &[]),
            )
            .await
            .unwrap();
    }
    w.customer(OTHER).await;
    w.member("fremd@example.com", OTHER).await;

    let first = w
        .portal
        .list_users(&chef, &number(N), None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(first.items.len(), 10, "10 per page by default");
    assert_eq!(first.total, 26);
    assert!(!first.total_capped);
    assert!(first.next.is_some());

    // Every user exactly once, in name order, by cursor.
    let mut walked: Vec<User> = first.items.clone();
    let mut next = first.next.clone();
    let mut pages = 1;
    while let Some(cursor) = next {
        let p = w
            .portal
            .list_users(&chef, &number(N), None, &page(None, None, Some(cursor)))
            .await
            .unwrap();
        assert!(p.items.len() <= 10);
        walked.extend(p.items);
        next = p.next;
        pages += 1;
        assert!(pages <= 3, "26 users fit in three pages");
    }
    assert_eq!(pages, 3);
    let ids: BTreeSet<UserId> = walked.iter().map(User::id).collect();
    assert_eq!(ids.len(), 26, "no user twice");
    assert_eq!(walked.len(), 26, "no user missing");
    let keys: Vec<String> = walked.iter().map(User::sort_key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "name order");
    assert_eq!(walked[0].last_name().as_str(), "Albers");
    assert!(
        !walked
            .iter()
            .any(|u| u.email().as_str() == "fremd@example.com"),
        "only the customer's users"
    );

    // Page numbers give the same slices as the cursor.
    for (n, range) in [(2, 10..20), (3, 20..26)] {
        let p = w
            .portal
            .list_users(&op, &number(N), None, &page(None, Some(n), None))
            .await
            .unwrap();
        let expected: Vec<String> = walked[range]
            .iter()
            .map(|u| u.email().to_string())
            .collect();
        assert_eq!(emails(&p), expected, "page {n}");
    }
    // Another page size.
    let p = w
        .portal
        .list_users(&chef, &number(N), None, &page(Some(25), None, None))
        .await
        .unwrap();
    assert_eq!(p.items.len(), 25);
    assert!(p.next.is_some());

    // Bad page requests are refused.
    for (case, req, expected) in [
        (
            "size 0",
            page(Some(0), None, None),
            PagingError::InvalidSize { max: 100 },
        ),
        (
            "size 101",
            page(Some(101), None, None),
            PagingError::InvalidSize { max: 100 },
        ),
        (
            "page 0",
            page(None, Some(0), None),
            PagingError::PageOutOfRange,
        ),
        (
            "forged cursor",
            page(None, None, Some("bm9wZQ".into())),
            PagingError::InvalidCursor,
        ),
        (
            "garbage cursor",
            page(None, None, Some("!!".into())),
            PagingError::InvalidCursor,
        ),
    ] {
        let err = w
            .portal
            .list_users(&chef, &number(N), None, &req)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminError::Paging(e) if e == expected),
            "{case}: got {err:?}"
        );
    }
}

#[tokio::test]
async fn search_finds_first_name_last_name_and_address_regardless_of_case() {
    let (w, _op, chef) = managed().await;
    for (address, first, last) in [
        ("zoe@example.com", "Zoë", "Ziegler"),
        ("max@firma.de", "Max", "Mustermann"),
        ("eva@zimmer.example", "Eva", "Brandt"),
    ] {
        w.portal
            .invite_user(&chef, &number(N), invite_cmd(address, first, last, &[]))
            .await
            .unwrap();
    }
    let search = |q: &'static str| {
        let w = &w;
        let chef = &chef;
        async move {
            w.portal
                .list_users(chef, &number(N), Some(q), &PageRequest::default())
                .await
                .unwrap()
        }
    };
    for (q, expected) in [
        ("ZIEG", vec!["zoe@example.com"]),
        ("zoë", vec!["zoe@example.com"]),
        ("mAx", vec!["max@firma.de"]),
        ("mustermann", vec!["max@firma.de"]),
        ("ZIMMER.example", vec!["eva@zimmer.example"]),
        ("  eva  ", vec!["eva@zimmer.example"]),
        ("nobody", vec![]),
    ] {
        let p = search(q).await;
        assert_eq!(emails(&p), expected, "{q:?}");
        assert_eq!(p.total, expected.len() as u64, "{q:?}");
        assert!(p.next.is_none(), "{q:?}");
    }
    assert_eq!(search("   ").await.total, 4, "a blank search is no search");
}

#[tokio::test]
async fn the_user_count_stops_at_ten_thousand() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let now = w.clock.now();
    let writes = (0..10_000u128)
        .map(|i| {
            Write::InsertUser(User::new_invited(
                UserId::from_uuid(uuid::Uuid::from_u128(0x1_0000_0000 + i)),
                email(&format!("bulk{i}@example.com")),
                name("Bulk"),
                name("Nutzer"),
                Language::De,
                Role::Employee,
                Some(c.id()),
                keys(&[]),
                now,
            ))
        })
        .collect();
    w.force(writes).await;
    let p = w
        .portal
        .list_users(&chef, &number(N), None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(p.items.len(), 10);
    assert_eq!(p.total, 10_000);
    assert!(p.total_capped);
    let p = w
        .portal
        .list_users(&chef, &number(N), Some("chef"), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(p.total, 1);
    assert!(!p.total_capped);
}

#[tokio::test]
async fn another_customers_user_is_not_found_exactly_like_an_unknown_one() {
    let (w, op, chef) = managed().await;
    w.customer(OTHER).await;
    w.admin("fremd-chef@example.com", OTHER, &op).await;
    let foreign = w.user_id("fremd-chef@example.com").await;
    let before = w.user(foreign).await;
    let counts = w.counts();
    let mut messages = BTreeSet::new();
    for (case, n, user) in [
        ("foreign user under my number", N, foreign),
        ("unknown user", N, unknown_user()),
        ("foreign customer", OTHER, foreign),
        ("unknown customer", "999999999", foreign),
    ] {
        let err = w
            .portal
            .get_user(&chef, &number(n), user)
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::NotFound), "{case}: got {err:?}");
        messages.insert(err.to_string());
        let err = w
            .portal
            .lock_user(&chef, &number(n), user, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminError::NotFound),
            "lock, {case}: got {err:?}"
        );
        let err = w
            .portal
            .delete_user(&chef, &number(n), user)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminError::NotFound),
            "delete, {case}: got {err:?}"
        );
        let err = w
            .portal
            .set_permissions(&chef, &number(n), user, &keys(&["documents"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminError::NotFound),
            "permissions, {case}: got {err:?}"
        );
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
    let err = w
        .portal
        .list_users(&chef, &number(OTHER), None, &PageRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::NotFound),
        "foreign table: {err:?}"
    );
    let err = w
        .portal
        .invite_user(
            &chef,
            &number(OTHER),
            invite_cmd("x@example.com", "X", "Y", &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::NotFound),
        "foreign invite: {err:?}"
    );
    assert_eq!(w.user(foreign).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn employees_may_not_manage_users() {
    let (w, _op, chef) = managed().await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let waiting = w.pending_member("bert@example.com", N).await;
    let chef_id = id_of(&chef);
    let before = w.user(chef_id).await;
    let counts = w.counts();
    for (who, actor) in [("employee", &emma), ("pending", &waiting)] {
        let n = number(N);
        let results: Vec<(&str, Result<(), AdminError>)> = vec![
            (
                "list",
                w.portal
                    .list_users(actor, &n, None, &PageRequest::default())
                    .await
                    .map(drop),
            ),
            ("get", w.portal.get_user(actor, &n, chef_id).await.map(drop)),
            (
                "invite",
                w.portal
                    .invite_user(actor, &n, invite_cmd("x@example.com", "X", "Y", &[]))
                    .await
                    .map(drop),
            ),
            (
                "permissions",
                w.portal
                    .set_permissions(actor, &n, chef_id, &keys(&[]))
                    .await
                    .map(drop),
            ),
            (
                "lock",
                w.portal.lock_user(actor, &n, chef_id, None).await.map(drop),
            ),
            ("delete", w.portal.delete_user(actor, &n, chef_id).await),
            (
                "demote",
                w.portal
                    .revoke_admin_rights(actor, &n, chef_id)
                    .await
                    .map(drop),
            ),
            (
                "end sessions",
                w.portal.end_user_sessions(actor, &n, chef_id).await,
            ),
        ];
        for (what, r) in results {
            let err = r.unwrap_err();
            assert!(
                matches!(err, AdminError::Forbidden),
                "{who} {what}: got {err:?}"
            );
        }
    }
    assert_eq!(w.user(chef_id).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_invitation_leads_through_a_prefilled_page_to_an_active_employee() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let invited = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("ida@example.com", "Ida", "Neu", &["documents", "shop"]),
        )
        .await
        .unwrap();
    assert_eq!(invited.status(), UserStatus::Invited);
    assert_eq!(w.mail_kinds_to("ida@example.com"), ["invitation"]);
    let token = w.secret_for("ida@example.com");
    let created = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(created.record.category, AuditCategory::UserCreated);
    assert_eq!(created.record.subject, Some(invited.id()));
    assert_eq!(created.record.actor.user, Some(id_of(&chef)));
    assert_eq!(
        created.record.details,
        "via=invitation; permissions=documents,shop"
    );
    let row = w
        .portal
        .get_user(&chef, &number(N), invited.id())
        .await
        .unwrap();
    assert_eq!(row.status(), UserStatus::Invited, "listed as invited");

    let view = w.portal.invitation(&token).await.unwrap();
    assert_eq!(view.email, email("ida@example.com"));
    assert_eq!(view.first_name, name("Ida"));
    assert_eq!(view.last_name, name("Neu"));
    assert_eq!(view.customer_name.as_deref(), Some("Firma 100000001"));
    assert_eq!(view.role, Role::Employee);
    assert_eq!(view.expires_at, w.clock.now() + TimeDelta::days(7));

    let actor = w.accept_invitation(&token, "ida@example.com").await;
    assert_eq!(id_of(&actor), invited.id());
    let u = w.user(invited.id()).await;
    assert_eq!(u.status(), UserStatus::Active);
    assert_eq!(u.customer_id(), Some(c.id()));
    assert_eq!(u.role(), Role::Employee);
    assert_eq!(u.permissions(), &keys(&["documents", "shop"]));
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::UserActivated);
    assert_eq!(last.record.details, "via=invitation");
    w.login("ida@example.com").await;
}

#[tokio::test]
async fn a_used_invitation_link_no_longer_works() {
    let (w, _op, chef) = managed().await;
    w.invited(&chef, N, "ida@example.com", &[]).await;
    let token = w
        .mails_to("ida@example.com")
        .iter()
        .find(|m| m.intent.key() == "invitation")
        .and_then(|m| m.intent.secret().map(|s| s.expose().to_owned()))
        .unwrap();
    let before = w.user(w.user_id("ida@example.com").await).await;
    let counts = w.counts();
    let err = w.portal.invitation(&token).await.unwrap_err();
    assert!(matches!(err, InvitationError::Used), "got {err:?}");
    let err = w
        .portal
        .accept_invitation(
            &token,
            AcceptInvitation {
                password: SecretString::new("ein ganz neues pferd"),
                password_confirmation: SecretString::new("ein ganz neues pferd"),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, InvitationError::Used), "got {err:?}");
    assert_eq!(w.user(before.id()).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn an_invitation_expires_after_exactly_seven_days() {
    let (w, _op, chef) = managed().await;
    for address in ["early@example.com", "late@example.com"] {
        w.portal
            .invite_user(&chef, &number(N), invite_cmd(address, "Ida", "Neu", &[]))
            .await
            .unwrap();
    }
    let early = w.secret_for("early@example.com");
    let late = w.secret_for("late@example.com");
    w.advance(TimeDelta::days(7) - TimeDelta::seconds(1));
    w.portal.invitation(&early).await.unwrap();
    w.accept_invitation(&early, "early@example.com").await;
    w.advance(TimeDelta::seconds(1));
    let counts = w.counts();
    let err = w.portal.invitation(&late).await.unwrap_err();
    assert!(matches!(err, InvitationError::Expired), "got {err:?}");
    let err = w
        .portal
        .accept_invitation(
            &late,
            AcceptInvitation {
                password: PASSWORD.into(),
                password_confirmation: PASSWORD.into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, InvitationError::Expired), "got {err:?}");
    assert_eq!(w.counts(), counts);
    let late_user = w.user(w.user_id("late@example.com").await).await;
    assert_eq!(late_user.status(), UserStatus::Invited);
}

#[tokio::test]
async fn a_resent_invitation_voids_the_old_link() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let ida = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("ida@example.com", "Ida", "Neu", &[]),
        )
        .await
        .unwrap();
    let old = w.secret_for("ida@example.com");
    w.advance(TimeDelta::days(6));
    w.portal
        .resend_invitation(&chef, &number(N), ida.id())
        .await
        .unwrap();
    let new = w.secret_for("ida@example.com");
    assert_ne!(old, new);
    assert_eq!(
        w.mail_kinds_to("ida@example.com"),
        ["invitation", "invitation"]
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::InvitationSent);
    assert_eq!(last.record.subject, Some(ida.id()));
    let err = w.portal.invitation(&old).await.unwrap_err();
    assert!(
        matches!(err, InvitationError::NotFound),
        "old link: {err:?}"
    );
    // The new link has its own seven days.
    w.advance(TimeDelta::days(2));
    w.accept_invitation(&new, "ida@example.com").await;

    let counts = w.counts();
    let err = w
        .portal
        .resend_invitation(&chef, &number(N), ida.id())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::WrongState(UserStatus::Active)),
        "registered already: {err:?}"
    );
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn inviting_an_address_with_an_account_or_ungrantable_permissions_is_refused() {
    let (w, _op, chef) = managed().await;
    w.customer(OTHER).await;
    w.invited(&chef, N, "emma@example.com", &[]).await;
    w.portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("ida@example.com", "Ida", "Neu", &[]),
        )
        .await
        .unwrap();
    w.member("fremd@example.com", OTHER).await;
    w.registered("solo@example.com").await;
    let counts = w.counts();
    let cases: [(&str, Invite, Expect); 6] = [
        (
            "member",
            invite_cmd("emma@example.com", "E", "M", &[]),
            |e| matches!(e, AdminError::AlreadyMember),
        ),
        (
            "invited already",
            invite_cmd("IDA@example.com", "I", "N", &[]),
            |e| matches!(e, AdminError::AlreadyMember),
        ),
        (
            "member elsewhere",
            invite_cmd("fremd@example.com", "F", "R", &[]),
            |e| matches!(e, AdminError::EmailUnavailable),
        ),
        (
            "account without customer",
            invite_cmd("solo@example.com", "S", "O", &[]),
            |e| matches!(e, AdminError::EmailUnavailable),
        ),
        (
            "operator",
            invite_cmd("op@vendor.example", "O", "P", &[]),
            |e| matches!(e, AdminError::EmailUnavailable),
        ),
        (
            "unknown permission",
            invite_cmd("neu@example.com", "N", "U", &["time_travel"]),
            |e| matches!(e, AdminError::NotGrantable(k) if k == &["time_travel"]),
        ),
    ];
    let mut notices = 0;
    for (case, cmd, expected) in cases {
        let elsewhere = matches!(
            case,
            "member elsewhere" | "account without customer" | "operator"
        );
        let err = w
            .portal
            .invite_user(&chef, &number(N), cmd)
            .await
            .unwrap_err();
        assert!(expected(&err), "{case}: got {err:?}");
        notices += usize::from(elsewhere);
    }
    // An account elsewhere gets a notice and the attempt an entry (see the test below); nothing
    // else changed.
    let after = w.counts();
    assert_eq!(
        (after.users, after.sessions, after.mails, after.audit),
        (
            counts.users,
            counts.sessions,
            counts.mails + notices,
            counts.audit + notices
        )
    );
}

#[tokio::test]
async fn inviting_an_address_with_an_account_elsewhere_keeps_its_answer_and_tells_the_owner() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    w.customer(OTHER).await;
    w.member("fremd@example.com", OTHER).await;
    let fremd = w.user_id("fremd@example.com").await;
    let other = w.customer_now(OTHER).await;
    let other_log = w.audit_of(Some(other.id())).len();
    let before = w.user(fremd).await;
    let from = w.store.outbox().len();
    let err = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("fremd@example.com", "F", "R", &["support_requests"]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::EmailUnavailable), "got {err:?}");
    assert_eq!(
        mails_since(&w, from),
        [(
            "fremd@example.com".to_owned(),
            "invitation_to_existing_account"
        )],
        "the owner is told, no invitation goes out"
    );
    match &w.last_mail_to("fremd@example.com").intent {
        MailIntent::InvitationToExistingAccount { customer_name, .. } => {
            assert_eq!(customer_name, c.name().as_str(), "who tried");
        }
        other => panic!("got {other:?}"),
    }
    assert_eq!(w.user(fremd).await, before, "the account is unchanged");
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::RegistrationAttempted);
    assert_eq!(last.record.actor.user, Some(id_of(&chef)));
    assert_eq!(last.record.subject, None, "the owner is not named");
    assert_eq!(last.record.details, "via=invitation; notice=sent");
    assert_eq!(
        w.audit_of(Some(other.id())).len(),
        other_log,
        "nothing in the other customer's log"
    );
}

#[tokio::test]
async fn the_thirteenth_invitation_to_one_address_in_a_day_is_refused_and_queues_nothing() {
    let (w, _op, chef) = managed().await;
    w.customer(OTHER).await;
    w.member("fremd@example.com", OTHER).await;
    // Six first sends and re-sends to an outside address, and six attempts to an address
    // with an account elsewhere: twelve per address, the budget.
    let token = w.invite(&chef, N, "aussen@example.com", &[]).await;
    assert!(!token.is_empty());
    let ida = w.user_id("aussen@example.com").await;
    for _ in 0..11 {
        w.portal
            .resend_invitation(&chef, &number(N), ida)
            .await
            .unwrap();
    }
    for _ in 0..12 {
        let err = w
            .portal
            .invite_user(
                &chef,
                &number(N),
                invite_cmd("fremd@example.com", "F", "R", &[]),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::EmailUnavailable), "got {err:?}");
    }
    let counts = w.counts();
    let midnight = (w.now() + TimeDelta::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let err = w
        .portal
        .resend_invitation(&chef, &number(N), ida)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::Throttled { retry_at } if retry_at == midnight),
        "13th re-send: {err:?}"
    );
    let err = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("fremd@example.com", "F", "R", &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::Throttled { .. }),
        "13th attempt: {err:?}"
    );
    assert_eq!(w.counts(), counts, "nothing queued, nothing logged");
    // Other addresses are not affected, and the next day the budget is full again.
    w.invite(&chef, N, "dritte@example.com", &[]).await;
    w.clock.set(midnight);
    w.portal
        .resend_invitation(&chef, &number(N), ida)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_administrators_invitations_are_capped_per_day() {
    let mut config = portal_core::config::PortalConfig::default();
    config.mail_budgets.invitations_per_sender = 3;
    let w = World::with_config(config);
    w.customer(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    for i in 0..3 {
        w.invite(&chef, N, &format!("neu{i}@example.com"), &[])
            .await;
    }
    let counts = w.counts();
    let err = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("neu9@example.com", "N", "U", &[]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::Throttled { .. }), "got {err:?}");
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn refused_invitations_spend_no_budget() {
    let (w, _op, chef) = managed().await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    for _ in 0..20 {
        let err = w
            .portal
            .invite_user(
                &emma,
                &number(N),
                invite_cmd("ziel@example.com", "Z", "I", &[]),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::Forbidden), "got {err:?}");
    }
    w.invite(&chef, N, "ziel@example.com", &[]).await;
}

#[tokio::test]
async fn setting_permissions_replaces_them_and_audits_the_difference() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let emma = w
        .invited(&chef, N, "emma@example.com", &["support_requests"])
        .await;
    let u = w
        .portal
        .set_permissions(
            &chef,
            &number(N),
            id_of(&emma),
            &keys(&["documents", "shop"]),
        )
        .await
        .unwrap();
    assert_eq!(u.permissions(), &keys(&["documents", "shop"]));
    assert_eq!(
        w.user(id_of(&emma)).await.permissions(),
        &keys(&["documents", "shop"])
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::PermissionsChanged);
    assert_eq!(last.record.subject, Some(id_of(&emma)));
    assert_eq!(last.record.actor.user, Some(id_of(&chef)));
    assert_eq!(
        last.record.details,
        "added=documents,shop; removed=support_requests"
    );

    let counts = w.counts();
    w.portal
        .set_permissions(
            &chef,
            &number(N),
            id_of(&emma),
            &keys(&["shop", "documents"]),
        )
        .await
        .unwrap();
    assert_eq!(w.counts(), counts, "no change, no entry");
}

#[tokio::test]
async fn permissions_outside_the_catalog_or_the_entitlements_are_not_grantable() {
    let w = World::new();
    w.customer_with(N, Some(keys(&["support_requests", "documents", "shop"])))
        .await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w
        .invited(&chef, N, "emma@example.com", &["documents"])
        .await;
    let before = w.user(id_of(&emma)).await;
    let counts = w.counts();
    for (actor, wanted, bad) in [
        (
            &chef,
            vec!["documents", "cancellation"],
            vec!["cancellation"],
        ),
        (&chef, vec!["time_travel"], vec!["time_travel"]),
        (
            &op,
            vec!["shop", "licenses", "time_travel"],
            vec!["licenses", "time_travel"],
        ),
    ] {
        let err = w
            .portal
            .set_permissions(actor, &number(N), id_of(&emma), &keys(&wanted))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AdminError::NotGrantable(k) if *k == bad),
            "{wanted:?}: got {err:?}"
        );
    }
    let err = w
        .portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("neu@example.com", "N", "U", &["cancellation"]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::NotGrantable(_)),
        "invite: {err:?}"
    );
    assert_eq!(w.user(id_of(&emma)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn the_my_data_group_is_granted_as_a_union_and_revoked_as_a_difference() {
    let w = World::new();
    // Entitled to everything but payment methods.
    let all: Vec<&str> = vec![
        "cloud_orders",
        "cancellation",
        "payroll_service",
        "documents",
        "licenses",
        "master_data",
        "shop",
        "support_requests",
        "products_contracts",
    ];
    w.customer_with(N, Some(keys(&all))).await;
    let c = w.customer_now(N).await;
    let op = w.operator("op@vendor.example").await;
    let chef = w.admin("chef@example.com", N, &op).await;
    let emma = w
        .invited(&chef, N, "emma@example.com", &["documents", "licenses"])
        .await;
    let my_data = GroupKey::parse("my_data").unwrap();

    let u = w
        .portal
        .grant_group(&chef, &number(N), id_of(&emma), &my_data)
        .await
        .unwrap();
    assert_eq!(
        u.permissions(),
        &keys(&["documents", "licenses", "master_data", "shop"]),
        "union, within the entitlements"
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::PermissionsChanged);
    assert_eq!(last.record.details, "added=master_data,shop; removed=");
    let counts = w.counts();
    let again = w
        .portal
        .grant_group(&chef, &number(N), id_of(&emma), &my_data)
        .await
        .unwrap();
    assert_eq!(again.permissions(), u.permissions());
    assert_eq!(w.counts(), counts, "idempotent: no second entry");

    let u = w
        .portal
        .revoke_group(&chef, &number(N), id_of(&emma), &my_data)
        .await
        .unwrap();
    assert_eq!(u.permissions(), &keys(&["documents"]), "difference");
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(
        last.record.details,
        "added=; removed=licenses,master_data,shop"
    );
    let counts = w.counts();
    w.portal
        .revoke_group(&chef, &number(N), id_of(&emma), &my_data)
        .await
        .unwrap();
    assert_eq!(w.counts(), counts, "idempotent: no second entry");
    assert_eq!(
        w.user(id_of(&emma)).await.permissions(),
        &keys(&["documents"])
    );

    let err = w
        .portal
        .grant_group(
            &chef,
            &number(N),
            id_of(&emma),
            &GroupKey::parse("your_data").unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::UnknownGroup), "got {err:?}");
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn activating_a_waiting_user_welcomes_them() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let bert = w.pending_member("bert@example.com", N).await;
    let u = w
        .portal
        .activate_user(&chef, &number(N), id_of(&bert))
        .await
        .unwrap();
    assert_eq!(u.status(), UserStatus::Active);
    assert_eq!(w.user(id_of(&bert)).await.status(), UserStatus::Active);
    assert_eq!(w.mail_kinds_to("bert@example.com").last(), Some(&"welcome"));
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::UserActivated);
    assert_eq!(last.record.subject, Some(id_of(&bert)));
    assert_eq!(last.record.actor.user, Some(id_of(&chef)));

    let before = w.user(id_of(&bert)).await;
    let counts = w.counts();
    let err = w
        .portal
        .activate_user(&chef, &number(N), id_of(&bert))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::WrongState(UserStatus::Active)),
        "got {err:?}"
    );
    assert_eq!(w.user(id_of(&bert)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn a_lock_ends_every_session_voids_reset_links_and_tells_the_user() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let s1 = w.login("emma@example.com").await;
    let s2 = w.login("emma@example.com").await;
    w.forgot_password("emma@example.com").await.unwrap();
    let reset_link = w.secret_for("emma@example.com");
    let reason = FreeText::parse("Hat das Unternehmen verlassen").unwrap();

    let u = w
        .portal
        .lock_user(&chef, &number(N), id_of(&emma), Some(&reason))
        .await
        .unwrap();
    assert_eq!(u.status(), UserStatus::Locked);
    let lock = w.user(id_of(&emma)).await.lock().cloned().unwrap();
    assert_eq!(lock.by.user, Some(id_of(&chef)));
    assert_eq!(lock.reason, Some(reason.clone()));
    assert_eq!(lock.at, w.clock.now());
    for s in [&s1, &s2] {
        let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
        assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    }
    let left = w
        .portal
        .deps()
        .queries
        .sessions_of_user(id_of(&emma))
        .await
        .unwrap();
    assert!(left.is_empty(), "sessions are deleted, not just refused");
    assert_eq!(
        w.mail_kinds_to("emma@example.com").last(),
        Some(&"account_locked")
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::UserLocked);
    assert_eq!(last.record.subject, Some(id_of(&emma)));
    assert_eq!(last.record.details, "reason=given");
    let err = w.try_login("emma@example.com", PASSWORD).await.unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "got {err:?}");

    let before = w.user(id_of(&emma)).await;
    let counts = w.counts();
    let err = w
        .portal
        .lock_user(&chef, &number(N), id_of(&emma), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::WrongState(UserStatus::Locked)),
        "got {err:?}"
    );
    assert_eq!(w.user(id_of(&emma)).await, before);
    assert_eq!(w.counts(), counts);

    // The reset link died with the lock: unlocking does not bring it back.
    w.portal
        .unlock_user(&chef, &number(N), id_of(&emma))
        .await
        .unwrap();
    let err = w
        .portal
        .reset_password(
            &reset_link,
            &SecretString::new("neues pferd im stall"),
            &SecretString::new("neues pferd im stall"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ResetError::InvalidLink), "got {err:?}");
}

#[tokio::test]
async fn unlock_restores_login_and_the_state_underneath() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let bert = w.pending_member("bert@example.com", N).await;
    for u in [&emma, &bert] {
        w.portal
            .lock_user(&chef, &number(N), id_of(u), None)
            .await
            .unwrap();
    }
    let u = w
        .portal
        .unlock_user(&chef, &number(N), id_of(&emma))
        .await
        .unwrap();
    assert_eq!(u.status(), UserStatus::Active);
    assert_eq!(
        w.mail_kinds_to("emma@example.com").last(),
        Some(&"account_unlocked")
    );
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::UserUnlocked);
    assert_eq!(last.record.subject, Some(id_of(&emma)));
    w.login("emma@example.com").await;

    let u = w
        .portal
        .unlock_user(&chef, &number(N), id_of(&bert))
        .await
        .unwrap();
    assert_eq!(u.status(), UserStatus::PendingActivation, "back to waiting");

    let before = w.user(id_of(&emma)).await;
    let counts = w.counts();
    let err = w
        .portal
        .unlock_user(&chef, &number(N), id_of(&emma))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AdminError::WrongState(UserStatus::Active)),
        "got {err:?}"
    );
    assert_eq!(w.user(id_of(&emma)).await, before);
    assert_eq!(w.counts(), counts);
}

#[tokio::test]
async fn a_deleted_user_is_gone_but_the_log_keeps_a_pseudonymous_trail() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let emma = w
        .invited(&chef, N, "emma@example.com", &["documents"])
        .await;
    let old_id = id_of(&emma);
    let session = w.login("emma@example.com").await;
    let entries_about = w.categories_about(Some(c.id()), old_id).len();

    w.portal
        .delete_user(&chef, &number(N), old_id)
        .await
        .unwrap();
    let err = w
        .portal
        .get_user(&chef, &number(N), old_id)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::NotFound), "got {err:?}");
    let err = w
        .portal
        .authenticate(session.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    let err = w.try_login("emma@example.com", PASSWORD).await.unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "got {err:?}");
    let about = w.categories_about(Some(c.id()), old_id);
    assert_eq!(about.len(), entries_about + 1, "the trail stays: {about:?}");
    assert_eq!(about.last(), Some(&AuditCategory::UserDeleted));
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.details, "role=employee");
    let page = w
        .portal
        .customer_audit(&chef, &number(N), &AuditListQuery::default(), Language::De)
        .await
        .unwrap();
    let row = page
        .items
        .iter()
        .find(|v| v.entry.record.subject == Some(old_id))
        .unwrap();
    assert_eq!(row.subject_name.as_deref(), Some("Gelöschter Benutzer"));

    // Deleting again: nobody there.
    let counts = w.counts();
    let err = w
        .portal
        .delete_user(&chef, &number(N), old_id)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::NotFound), "got {err:?}");
    assert_eq!(w.counts(), counts);

    // The address is free for a new registration: a new, unlinked account.
    let (fresh, _) = w.registered("emma@example.com").await;
    assert_ne!(id_of(&fresh), old_id);
    let u = w.user(id_of(&fresh)).await;
    assert!(u.customer_id().is_none());
    assert!(u.permissions().is_empty());
}

#[tokio::test]
async fn an_admin_cannot_remove_the_last_active_admin() {
    let (w, op, chef) = managed().await;
    let chef_id = id_of(&chef);
    let before = w.user(chef_id).await;
    let counts = w.counts();
    let n = number(N);
    let results: [(&str, Result<(), AdminError>); 3] = [
        (
            "lock himself",
            w.portal.lock_user(&chef, &n, chef_id, None).await.map(drop),
        ),
        (
            "delete himself",
            w.portal.delete_user(&chef, &n, chef_id).await,
        ),
        (
            "demote himself",
            w.portal
                .revoke_admin_rights(&chef, &n, chef_id)
                .await
                .map(drop),
        ),
    ];
    for (case, r) in results {
        let err = r.unwrap_err();
        assert!(matches!(err, AdminError::LastAdmin), "{case}: got {err:?}");
    }
    assert_eq!(w.user(chef_id).await, before);
    assert_eq!(w.counts(), counts);

    // A locked second admin does not count.
    let chef2 = w.admin("chef2@example.com", N, &op).await;
    w.portal
        .lock_user(&chef, &n, id_of(&chef2), None)
        .await
        .unwrap();
    let err = w
        .portal
        .revoke_admin_rights(&chef, &n, chef_id)
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::LastAdmin), "got {err:?}");

    // An active second admin does.
    w.portal
        .unlock_user(&chef, &n, id_of(&chef2))
        .await
        .unwrap();
    let u = w
        .portal
        .revoke_admin_rights(&chef, &n, chef_id)
        .await
        .unwrap();
    assert_eq!(u.role(), Role::Employee);
    let c = w.customer_now(N).await;
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::AdminRightsRevoked);
    // Now chef2 is the last one.
    for r in [
        w.portal
            .lock_user(&chef2, &n, id_of(&chef2), None)
            .await
            .map(drop),
        w.portal.delete_user(&chef2, &n, id_of(&chef2)).await,
    ] {
        let err = r.unwrap_err();
        assert!(matches!(err, AdminError::LastAdmin), "got {err:?}");
    }
}

#[tokio::test]
async fn an_admin_may_remove_another_admin_or_himself_while_one_remains() {
    let (w, op, chef) = managed().await;
    let n = number(N);
    let chef2 = w.admin("chef2@example.com", N, &op).await;
    let chef3 = w.admin("chef3@example.com", N, &op).await;
    w.portal
        .lock_user(&chef, &n, id_of(&chef2), None)
        .await
        .unwrap();
    w.portal
        .delete_user(&chef, &n, id_of(&chef3))
        .await
        .unwrap();
    w.portal
        .unlock_user(&chef, &n, id_of(&chef2))
        .await
        .unwrap();
    w.portal.delete_user(&chef, &n, id_of(&chef)).await.unwrap();
    let c = w.customer_now(N).await;
    let admins: Vec<_> = w
        .portal
        .deps()
        .queries
        .admins_of_customer(c.id())
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.is_active_admin_of(c.id()))
        .map(|a| a.id())
        .collect();
    assert_eq!(admins, [id_of(&chef2)]);
}

#[tokio::test]
async fn operators_may_remove_the_last_admin() {
    let (w, op, chef) = managed().await;
    let n = number(N);
    let u = w
        .portal
        .lock_user(&op, &n, id_of(&chef), None)
        .await
        .unwrap();
    assert_eq!(u.status(), UserStatus::Locked);
    w.portal.unlock_user(&op, &n, id_of(&chef)).await.unwrap();
    let u = w
        .portal
        .revoke_admin_rights(&op, &n, id_of(&chef))
        .await
        .unwrap();
    assert_eq!(u.role(), Role::Employee);
    let c = w.customer_now(N).await;
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.actor.kind, ActorKind::Operator);
    let chef2 = w.admin("chef2@example.com", N, &op).await;
    w.portal.delete_user(&op, &n, id_of(&chef2)).await.unwrap();
    assert!(
        w.portal
            .deps()
            .queries
            .user(id_of(&chef2))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn ending_a_users_sessions_logs_them_out_everywhere_without_locking() {
    let (w, _op, chef) = managed().await;
    let c = w.customer_now(N).await;
    let emma = w.invited(&chef, N, "emma@example.com", &[]).await;
    let s1 = w.login("emma@example.com").await;
    let s2 = w.login("emma@example.com").await;
    let mine = w.login("chef@example.com").await;
    w.portal
        .end_user_sessions(&chef, &number(N), id_of(&emma))
        .await
        .unwrap();
    for s in [&s1, &s2] {
        let err = w.portal.authenticate(s.token.expose()).await.unwrap_err();
        assert!(matches!(err, AuthError::Unauthenticated), "got {err:?}");
    }
    w.principal(&mine).await; // only hers
    assert_eq!(w.user(id_of(&emma)).await.status(), UserStatus::Active);
    let last = w.audit_of(Some(c.id())).pop().unwrap();
    assert_eq!(last.record.category, AuditCategory::SessionsEnded);
    assert_eq!(last.record.subject, Some(id_of(&emma)));
    assert_eq!(last.record.details, "scope=all");
    w.login("emma@example.com").await;
}

#[tokio::test]

async fn an_invitation_accepted_in_time_can_be_confirmed_with_a_valid_code() {
    let (w, _op, chef) = managed().await;
    w.portal
        .invite_user(
            &chef,
            &number(N),
            invite_cmd("ida@example.com", "Ida", "Neu", &[]),
        )
        .await
        .unwrap();
    let token = w.secret_for("ida@example.com");
    w.advance(TimeDelta::days(7) - TimeDelta::seconds(30));
    let ticket = w
        .portal
        .accept_invitation(
            &token,
            AcceptInvitation {
                password: PASSWORD.into(),
                password_confirmation: PASSWORD.into(),
            },
        )
        .await
        .unwrap();
    let code = w.secret_for("ida@example.com");
    w.advance(TimeDelta::seconds(60)); // the code lives 15 minutes
    let r = w
        .portal
        .verify_registration(ticket.ticket.expose(), &code, client())
        .await;
    assert!(r.is_ok(), "got {r:?}");
}
