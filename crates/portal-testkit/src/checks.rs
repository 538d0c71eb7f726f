//! The checks. Each takes a fresh, empty store and panics with a message when the store breaks
//! the contract of the storage ports (see `portal_core::ports`). They are written against the
//! ports only, so they run unchanged on every adapter.

use crate::Store;
use crate::fixtures::*;
use portal_core::admin_request::AdminRequestStatus;
use portal_core::audit::{self, ActorRef, AuditCategory, AuditEntry};
use portal_core::customer::AffiliationKey;
use portal_core::ids::{CustomerId, OutboxId, SessionId, UserId};
use portal_core::mail::OutboxStatus;
use portal_core::ports::{
    AdminRequestFilter, AuditQuery, Commit, CustomerQuery, LegacyClaim, PageStart, StoreError,
    UniqueKey, UserCursor, UserQuery, Write,
};
use portal_core::secret::{SecretString, VerificationCode};
use portal_core::testing::SeededRandom;
use portal_core::token::TokenPurpose;
use portal_core::user::{Lock, User};
use portal_core::values::{CustomerNumber, FreeText, Language};
use std::sync::Arc;
use uuid::Uuid;

fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict)
}

fn users_query(customer: CustomerId, start: PageStart<UserCursor>, limit: u32) -> UserQuery {
    UserQuery {
        customer,
        search: None,
        start,
        limit,
    }
}

fn ids(users: &[User]) -> Vec<UserId> {
    users.iter().map(User::id).collect()
}

fn sorted_ids(mut users: Vec<User>) -> Vec<UserId> {
    users.sort_by_key(|u| (u.sort_key(), u.id()));
    ids(&users)
}

async fn reload_user<S: Store>(store: &S, id: UserId) -> User {
    store
        .user(id)
        .await
        .expect("read user")
        .expect("user exists")
}

async fn search_ids<S: Store>(store: &S, customer: CustomerId, q: &str) -> Vec<UserId> {
    let mut query = users_query(customer, PageStart::First, 100);
    query.search = Some(q.to_owned());
    ids(&store.users_of_customer(&query).await.expect("search"))
}

fn audit_query(customer: Option<CustomerId>, limit: u32) -> AuditQuery {
    AuditQuery {
        customer,
        subject: None,
        categories: Vec::new(),
        search: None,
        search_categories: Vec::new(),
        from: None,
        until: None,
        before_seq: None,
        limit,
    }
}

fn seqs(entries: &[AuditEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

async fn setup_customer<S: Store>(store: &S, number: &str) -> portal_core::customer::Customer {
    let c = customer(number, "Kunde GmbH");
    commit_ok(store, writes([Write::InsertCustomer(c.clone())])).await;
    store
        .customer(c.id())
        .await
        .expect("read customer")
        .expect("customer exists")
}

async fn insert_users<S: Store>(store: &S, users: &[User]) {
    commit_ok(store, writes(users.iter().cloned().map(Write::InsertUser))).await;
}

// ---------------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------------

/// A customer reads back exactly as written (version 1, times to the microsecond), by id and by
/// number; an update stores version 2.
pub async fn customer_round_trips<S: Store>(store: Arc<S>) {
    let c = customer("100000001", "Müller & Söhne GmbH");
    commit_ok(&*store, writes([Write::InsertCustomer(c.clone())])).await;
    let mut expected = c.record().clone();
    expected.version = 1;
    let got = store.customer(c.id()).await.unwrap().expect("by id");
    assert_eq!(got.record(), &expected, "customer by id");
    let got = store
        .customer_by_number(c.number())
        .await
        .unwrap()
        .expect("by number");
    assert_eq!(got.record(), &expected, "customer by number");

    let mut changed = got.clone();
    changed.touch_admin_set(at(50));
    commit_ok(&*store, writes([Write::UpdateCustomer(changed)])).await;
    let again = store.customer(c.id()).await.unwrap().expect("after update");
    assert_eq!(again.version(), 2, "an update bumps the version");
    assert_eq!(again.record().updated_at, at(50));
    assert!(
        store
            .customer(CustomerId::from_uuid(new_uuid()))
            .await
            .unwrap()
            .is_none(),
        "unknown id"
    );
    assert!(
        store
            .customer_by_number(&CustomerNumber::parse("999999999").unwrap())
            .await
            .unwrap()
            .is_none(),
        "unknown number"
    );
}

/// Two customers cannot share a number; the refused one leaves no trace.
pub async fn customer_number_is_unique<S: Store>(store: Arc<S>) {
    let first = customer("100000002", "Erste GmbH");
    let second = customer("100000002", "Zweite GmbH");
    commit_ok(&*store, writes([Write::InsertCustomer(first.clone())])).await;
    let e = commit_err(&*store, writes([Write::InsertCustomer(second.clone())])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::CustomerNumber)),
        "got {e:?}"
    );
    assert!(store.customer(second.id()).await.unwrap().is_none());
    let by_number = store.customer_by_number(first.number()).await.unwrap();
    assert_eq!(by_number.map(|c| c.id()), Some(first.id()));
}

/// Customers are listed by number, `limit + 1` at a time, after a number, and found by a
/// literal substring of the number or the lower-case company name.
pub async fn customers_are_listed_by_number_with_search<S: Store>(store: Arc<S>) {
    let c3 = customer("300000003", "Gamma AG");
    let c1 = customer("100000001", "Alpha GmbH");
    let c2 = customer("200000002", "Beta 50% KG");
    commit_ok(
        &*store,
        writes([c3.clone(), c1.clone(), c2.clone()].map(Write::InsertCustomer)),
    )
    .await;
    let list = |search: Option<&str>, after: Option<&str>, limit: u32| CustomerQuery {
        search: search.map(str::to_owned),
        after: after.map(|a| CustomerNumber::parse(a).unwrap()),
        limit,
    };
    let numbers = |cs: Vec<portal_core::customer::Customer>| {
        cs.iter()
            .map(|c| c.number().as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let all = store.customers(&list(None, None, 10)).await.unwrap();
    assert_eq!(numbers(all), ["100000001", "200000002", "300000003"]);
    let first = store.customers(&list(None, None, 1)).await.unwrap();
    assert_eq!(numbers(first), ["100000001", "200000002"], "limit + 1 rows");
    let after = store
        .customers(&list(None, Some("100000001"), 10))
        .await
        .unwrap();
    assert_eq!(numbers(after), ["200000002", "300000003"]);
    let beta = store
        .customers(&list(Some("beta"), None, 10))
        .await
        .unwrap();
    assert_eq!(numbers(beta), ["200000002"], "by company name");
    let by_digits = store
        .customers(&list(Some("0003"), None, 10))
        .await
        .unwrap();
    assert_eq!(numbers(by_digits), ["300000003"], "by number");
    let percent = store.customers(&list(Some("%"), None, 10)).await.unwrap();
    assert_eq!(
        numbers(percent),
        ["200000002"],
        "`%` is a literal character"
    );
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// A user with every field set (lock, affiliation, language, last login, permissions, password)
/// reads back exactly, by id and by address.
pub async fn user_round_trips_with_every_field<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000010").await;
    let mut u = pending_user(
        "juergen.o'brien+portal@beispiel-firma.de",
        "Jürgen",
        "O'Brien",
    );
    u.set_profile(name("Jürgen"), name("O'Brien-Ähnlich"), Language::En, at(1));
    u.complete_registration(password_hash(), at(2)).unwrap();
    u.choose_affiliation(AffiliationKey::parse("de-business").unwrap(), at(3))
        .unwrap();
    u.link_to_customer(c.id(), perms(&["documents", "shop"]), false, at(4))
        .unwrap();
    u.record_login(at(5));
    u.lock_with(
        Lock {
            by: ActorRef::user(UserId::from_uuid(new_uuid())),
            at: at(6),
            reason: Some(FreeText::parse("Laptop verloren,\nbitte sperren").unwrap()),
        },
        at(6),
    )
    .unwrap();
    commit_ok(&*store, writes([Write::InsertUser(u.clone())])).await;
    let mut expected = u.record().clone();
    expected.version = 1;
    let got = reload_user(&*store, u.id()).await;
    assert_eq!(got.record(), &expected, "user by id");
    let by_email = store
        .user_by_email(u.email())
        .await
        .unwrap()
        .expect("by email");
    assert_eq!(by_email.record(), &expected, "user by email");
    assert!(
        store
            .user(UserId::from_uuid(new_uuid()))
            .await
            .unwrap()
            .is_none()
    );
}

/// `users(ids)` returns the known users and skips unknown ids.
pub async fn users_by_ids_skip_unknown_ids<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000011").await;
    let a = employee(c.id(), "a@example.com", "Anna", "A");
    let b = employee(c.id(), "b@example.com", "Bert", "B");
    insert_users(&*store, &[a.clone(), b.clone()]).await;
    let mut got = ids(&store
        .users(&[a.id(), UserId::from_uuid(new_uuid()), b.id()])
        .await
        .unwrap());
    got.sort();
    let mut want = vec![a.id(), b.id()];
    want.sort();
    assert_eq!(got, want);
    assert!(store.users(&[]).await.unwrap().is_empty());
}

/// Two accounts cannot share an address, neither by insert nor by update.
pub async fn email_is_unique_among_accounts<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000012").await;
    let anna = employee(c.id(), "anna@example.com", "Anna", "Erste");
    insert_users(&*store, std::slice::from_ref(&anna)).await;
    let twin = employee(c.id(), "anna@example.com", "Anna", "Zweite");
    let e = commit_err(&*store, writes([Write::InsertUser(twin.clone())])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::UserEmail)),
        "insert: got {e:?}"
    );
    assert!(store.user(twin.id()).await.unwrap().is_none());

    let bert = employee(c.id(), "bert@example.com", "Bert", "B");
    insert_users(&*store, std::slice::from_ref(&bert)).await;
    let mut rec = reload_user(&*store, bert.id()).await.record().clone();
    rec.email = email("anna@example.com");
    let renamed = User::from_record(rec).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateUser(renamed)])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::UserEmail)),
        "update: got {e:?}"
    );
    let found = store
        .user_by_email(&email("anna@example.com"))
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.id()), Some(anna.id()));
    let bert_now = reload_user(&*store, bert.id()).await;
    assert_eq!(bert_now.email().as_str(), "bert@example.com");
}

/// Pending registrations hold no claim on an address: several may wait with one address, and
/// only the first to be confirmed becomes the account.
pub async fn pending_registrations_hold_no_claim_on_an_address<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000013").await;
    let anna = employee(c.id(), "anna@example.com", "Anna", "Konto");
    let p1 = pending_user("anna@example.com", "Anna", "Eins");
    let p2 = pending_user("anna@example.com", "Anna", "Zwei");
    insert_users(&*store, &[anna.clone(), p1.clone(), p2.clone()]).await;
    let found = store
        .user_by_email(&email("anna@example.com"))
        .await
        .unwrap();
    assert_eq!(
        found.map(|u| u.id()),
        Some(anna.id()),
        "pending users are not accounts"
    );
    assert!(
        store.user(p1.id()).await.unwrap().is_some(),
        "but they are stored"
    );

    let b1 = pending_user("bert@example.com", "Bert", "Eins");
    let b2 = pending_user("bert@example.com", "Bert", "Zwei");
    insert_users(&*store, &[b1.clone(), b2.clone()]).await;
    assert!(
        store
            .user_by_email(&email("bert@example.com"))
            .await
            .unwrap()
            .is_none()
    );
    let mut first = reload_user(&*store, b1.id()).await;
    first
        .complete_registration(password_hash(), at(10))
        .unwrap();
    commit_ok(&*store, writes([Write::UpdateUser(first)])).await;
    let mut second = reload_user(&*store, b2.id()).await;
    second
        .complete_registration(password_hash(), at(11))
        .unwrap();
    let e = commit_err(&*store, writes([Write::UpdateUser(second)])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::UserEmail)),
        "got {e:?}"
    );
    let found = store
        .user_by_email(&email("bert@example.com"))
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.id()), Some(b1.id()));
}

/// Deleting a user removes the user with their sessions, challenges, link tokens and admin
/// requests, keeps the audit trail and the legacy claim, and frees the address.
pub async fn deleting_a_user_frees_the_address_and_removes_what_hangs_on_it<S: Store>(
    store: Arc<S>,
) {
    let c = setup_customer(&*store, "100000014").await;
    let u = employee(c.id(), "gone@example.com", "Gone", "Soon");
    let other = employee(c.id(), "stays@example.com", "Stays", "Here");
    let s_hash = token_hash();
    let s = session(u.id(), s_hash, t0());
    let s_other = session(other.id(), token_hash(), t0());
    let ch = challenge(u.id(), "gone@example.com", t0());
    let t_hash = token_hash();
    let tok = action_token(u.id(), TokenPurpose::PasswordReset, t_hash);
    let req = admin_request(c.id(), u.id(), t0());
    let mut setup = writes([
        Write::InsertUser(u.clone()),
        Write::InsertUser(other.clone()),
        Write::InsertSession(s),
        Write::InsertSession(s_other),
        Write::InsertChallenge(ch.clone()),
        Write::InsertActionToken(tok),
        Write::InsertAdminRequest(req.clone()),
        Write::InsertLegacyClaim(LegacyClaim {
            legacy_id: "legacy:gone".into(),
            user_id: u.id(),
            customer_id: c.id(),
            claimed_at: at(5),
        }),
    ]);
    setup.audit(audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserCreated,
        "",
        at(1),
    ));
    commit_ok(&*store, setup).await;

    let loaded = reload_user(&*store, u.id()).await;
    let mut del = writes([Write::DeleteUser(loaded)]);
    del.audit(audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserDeleted,
        "role=employee",
        at(9),
    ));
    commit_ok(&*store, del).await;

    assert!(store.user(u.id()).await.unwrap().is_none(), "user gone");
    assert!(
        store.sessions_of_user(u.id()).await.unwrap().is_empty(),
        "sessions gone"
    );
    assert!(
        store
            .session_context(&s_hash, at(10))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .challenge_by_ticket(&ch.record().ticket_hash)
            .await
            .unwrap()
            .is_none(),
        "challenges gone"
    );
    assert!(
        store
            .action_token(&t_hash, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_none(),
        "tokens gone"
    );
    assert!(
        store.admin_request(req.id()).await.unwrap().is_none(),
        "requests gone"
    );
    assert_eq!(
        store.sessions_of_user(other.id()).await.unwrap().len(),
        1,
        "others untouched"
    );
    assert!(
        store.legacy_claim("legacy:gone").await.unwrap().is_some(),
        "claim stays"
    );
    let trail = store.audit_chain(Some(c.id()), 0, 10).await.unwrap();
    assert_eq!(trail.len(), 2, "the audit trail stays");
    assert!(trail.iter().all(|e| e.record.subject == Some(u.id())));

    let again = employee(c.id(), "gone@example.com", "Gone", "Again");
    insert_users(&*store, std::slice::from_ref(&again)).await;
    let found = store
        .user_by_email(&email("gone@example.com"))
        .await
        .unwrap();
    assert_eq!(
        found.map(|u| u.id()),
        Some(again.id()),
        "address is free again"
    );
}

/// Administrators are listed per customer, operators globally.
pub async fn admins_and_operators_are_listed<S: Store>(store: Arc<S>) {
    let c1 = setup_customer(&*store, "100000015").await;
    let c2 = setup_customer(&*store, "100000016").await;
    let a1 = admin(c1.id(), "a1@example.com", "Ada", "Eins");
    let e1 = employee(c1.id(), "e1@example.com", "Emil", "Eins");
    let a2 = admin(c2.id(), "a2@example.com", "Ada", "Zwei");
    let op = operator("op@vendor.example");
    insert_users(&*store, &[a1.clone(), e1, a2.clone(), op.clone()]).await;
    assert_eq!(
        ids(&store.admins_of_customer(c1.id()).await.unwrap()),
        [a1.id()]
    );
    assert_eq!(
        ids(&store.admins_of_customer(c2.id()).await.unwrap()),
        [a2.id()]
    );
    assert_eq!(ids(&store.operators().await.unwrap()), [op.id()]);
}

/// Lists, counts, searches and admin lists of one customer never show another's users.
pub async fn user_lists_never_cross_customers<S: Store>(store: Arc<S>) {
    let c1 = setup_customer(&*store, "100000017").await;
    let c2 = setup_customer(&*store, "100000018").await;
    let anna1 = employee(c1.id(), "anna@eins.example", "Anna", "Eins");
    let bert1 = admin(c1.id(), "bert@eins.example", "Bert", "Eins");
    let anna2 = employee(c2.id(), "anna@zwei.example", "Anna", "Zwei");
    let carla2 = admin(c2.id(), "carla@zwei.example", "Carla", "Zwei");
    insert_users(&*store, &[anna1.clone(), bert1.clone(), anna2, carla2]).await;
    let page = store
        .users_of_customer(&users_query(c1.id(), PageStart::First, 10))
        .await
        .unwrap();
    assert_eq!(sorted_ids(page.clone()), ids(&page), "ordered");
    let mut got = ids(&page);
    got.sort();
    let mut want = vec![anna1.id(), bert1.id()];
    want.sort();
    assert_eq!(got, want, "only the customer's own users");
    assert_eq!(
        store
            .count_users_of_customer(c1.id(), None, 100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(search_ids(&*store, c1.id(), "anna").await, [anna1.id()]);
    assert_eq!(
        store
            .count_users_of_customer(c1.id(), Some("anna".into()), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ids(&store.admins_of_customer(c1.id()).await.unwrap()),
        [bert1.id()]
    );
    let empty = setup_customer(&*store, "100000019").await;
    assert!(
        store
            .users_of_customer(&users_query(empty.id(), PageStart::First, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Keyset pages follow `(sort_key, id)` bytewise (umlauts after `z`), and a cursor stays valid
/// while users are added before and after it.
pub async fn user_pages_follow_sort_key_and_id_across_inserts<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000020").await;
    let names = [
        ("Zoe", "Zander"),
        ("Anna", "Müller"),
        ("Anna", "Müller"),
        ("Ärne", "Ärger"),
        ("Bert", "Becker"),
        ("Carla", "Meier"),
        ("Dora", "Ångström"),
        ("Emil", "becker"),
    ];
    let mut users: Vec<User> = names
        .iter()
        .enumerate()
        .map(|(i, (f, l))| employee(c.id(), &format!("u{i}@example.com"), f, l))
        .collect();
    insert_users(&*store, &users).await;
    let pending = pending_user("pending@example.com", "Aaron", "Aal");
    insert_users(&*store, &[pending]).await;

    let first = store
        .users_of_customer(&users_query(c.id(), PageStart::First, 3))
        .await
        .unwrap();
    assert_eq!(first.len(), 4, "limit + 1 rows");
    let expected_all = sorted_ids(users.clone());
    assert_eq!(
        ids(&first),
        expected_all[..4],
        "first page in (sort key, id) order"
    );
    let last_seen = &first[2];
    let cursor = UserCursor {
        sort_key: last_seen.sort_key(),
        id: last_seen.id(),
    };

    // Users added before and after the cursor while someone pages.
    let early = employee(c.id(), "early@example.com", "Aaron", "Aaberg");
    let late = employee(c.id(), "late@example.com", "Zacharias", "Zz");
    let middle = employee(c.id(), "middle@example.com", "Mia", "Mitte");
    insert_users(&*store, &[early.clone(), late.clone(), middle.clone()]).await;
    users.extend([early.clone(), late, middle]);

    let key = (cursor.sort_key.clone(), cursor.id);
    let mut expected_rest = users.clone();
    expected_rest.retain(|u| (u.sort_key(), u.id()) > key);
    let expected_rest = sorted_ids(expected_rest);

    let mut walked = Vec::new();
    let mut start = PageStart::After(cursor);
    loop {
        let page = store
            .users_of_customer(&users_query(c.id(), start.clone(), 3))
            .await
            .unwrap();
        let more = page.len() > 3;
        let shown: Vec<User> = page.into_iter().take(3).collect();
        walked.extend(ids(&shown));
        match (more, shown.last()) {
            (true, Some(l)) => {
                start = PageStart::After(UserCursor {
                    sort_key: l.sort_key(),
                    id: l.id(),
                });
            }
            _ => break,
        }
    }
    assert_eq!(walked, expected_rest, "pages after the cursor");
    assert!(
        !walked.contains(&early.id()),
        "rows before the cursor stay behind it"
    );
}

/// The first pages may be addressed by offset.
pub async fn user_pages_by_offset<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000021").await;
    let users: Vec<User> = (0..5)
        .map(|i| {
            employee(
                c.id(),
                &format!("o{i}@example.com"),
                "Otto",
                &format!("Nr{i}"),
            )
        })
        .collect();
    insert_users(&*store, &users).await;
    let expected = sorted_ids(users);
    let page = store
        .users_of_customer(&users_query(c.id(), PageStart::Offset(2), 2))
        .await
        .unwrap();
    assert_eq!(ids(&page), expected[2..5]);
    let past = store
        .users_of_customer(&users_query(c.id(), PageStart::Offset(9), 2))
        .await
        .unwrap();
    assert!(past.is_empty());
}

/// Counts skip pending registrations and stop at the cap.
pub async fn user_counts_are_capped<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000022").await;
    let users: Vec<User> = (0..5)
        .map(|i| {
            employee(
                c.id(),
                &format!("k{i}@example.com"),
                "Karl",
                &format!("K{i}"),
            )
        })
        .collect();
    insert_users(&*store, &users).await;
    let mut invited = pending_user("invited@example.com", "Ina", "Eingeladen");
    invited = {
        let mut rec = invited.record().clone();
        rec.state = portal_core::user::AccountState::Invited;
        rec.customer_id = Some(c.id());
        User::from_record(rec).unwrap()
    };
    insert_users(&*store, &[invited]).await;
    assert_eq!(
        store
            .count_users_of_customer(c.id(), None, 100)
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        store
            .count_users_of_customer(c.id(), None, 3)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .count_users_of_customer(c.id(), Some("k3@".into()), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_users_of_customer(CustomerId::from_uuid(new_uuid()), None, 100)
            .await
            .unwrap(),
        0
    );
}

/// Search finds lower-case substrings of first name, last name and address, takes `%` and `_`
/// literally and is case-sensitive on the lower-case text.
pub async fn search_finds_substrings_of_name_and_email_literally<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000023").await;
    let anna = employee(c.id(), "anna.schmidt@firma.de", "Anna", "Schmidt");
    let bernd = employee(c.id(), "b_meier@firma.de", "Bernd", "Meier");
    let decoy = employee(c.id(), "abxmo@andere.de", "Xaver", "Decoy");
    let carla = employee(c.id(), "carla@andere.de", "Carla", "100%Sicher");
    let juergen = employee(c.id(), "jm@andere.de", "Jürgen", "Maß");
    insert_users(
        &*store,
        &[
            anna.clone(),
            bernd.clone(),
            decoy,
            carla.clone(),
            juergen.clone(),
        ],
    )
    .await;
    let sorted = |mut v: Vec<UserId>| {
        v.sort();
        v
    };
    assert_eq!(search_ids(&*store, c.id(), "schmidt").await, [anna.id()]);
    assert_eq!(
        sorted(search_ids(&*store, c.id(), "firma.de").await),
        sorted(vec![anna.id(), bernd.id()])
    );
    assert_eq!(
        search_ids(&*store, c.id(), "b_m").await,
        [bernd.id()],
        "`_` is literal"
    );
    assert_eq!(
        search_ids(&*store, c.id(), "%").await,
        [carla.id()],
        "`%` is literal"
    );
    assert_eq!(
        search_ids(&*store, c.id(), "jürgen maß").await,
        [juergen.id()]
    );
    assert!(
        search_ids(&*store, c.id(), "ANNA").await.is_empty(),
        "the search text is lower-case; the query is taken as given"
    );
    assert!(search_ids(&*store, c.id(), "nobody").await.is_empty());
}

/// Search follows changes: a renamed user is found by the new name only, a deleted one not at
/// all.
pub async fn search_follows_renames_and_deletes<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000024").await;
    let u = employee(c.id(), "rename@example.com", "Rosa", "Altname");
    let v = employee(c.id(), "keep@example.com", "Kurt", "Altname");
    insert_users(&*store, &[u.clone(), v.clone()]).await;
    let mut renamed = reload_user(&*store, u.id()).await;
    renamed.set_profile(name("Rosa"), name("Neuname"), Language::De, at(20));
    commit_ok(&*store, writes([Write::UpdateUser(renamed)])).await;
    assert_eq!(search_ids(&*store, c.id(), "neuname").await, [u.id()]);
    assert_eq!(search_ids(&*store, c.id(), "altname").await, [v.id()]);
    let gone = reload_user(&*store, v.id()).await;
    commit_ok(&*store, writes([Write::DeleteUser(gone)])).await;
    assert!(search_ids(&*store, c.id(), "altname").await.is_empty());
    assert_eq!(
        store
            .count_users_of_customer(c.id(), Some("name".into()), 100)
            .await
            .unwrap(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Versions and atomicity
// ---------------------------------------------------------------------------------------------

/// Every versioned entity refuses a write made from a stale copy, and keeps the newer state.
#[allow(clippy::too_many_lines)]
pub async fn stale_versions_conflict_for_every_entity<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000030").await;
    let u = employee(c.id(), "v@example.com", "Vera", "Version");
    let ch = challenge(u.id(), "v@example.com", t0());
    let tok = action_token(u.id(), TokenPurpose::Invitation, token_hash());
    let req = admin_request(c.id(), u.id(), t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertChallenge(ch.clone()),
            Write::InsertActionToken(tok.clone()),
            Write::InsertAdminRequest(req.clone()),
        ]),
    )
    .await;

    // Customer.
    let mut fresh = c.clone();
    fresh.touch_admin_set(at(10));
    commit_ok(&*store, writes([Write::UpdateCustomer(fresh)])).await;
    let mut stale = c.clone();
    stale.touch_admin_set(at(11));
    let e = commit_err(&*store, writes([Write::UpdateCustomer(stale)])).await;
    assert!(is_conflict(&e), "customer: {e:?}");
    let now = store.customer(c.id()).await.unwrap().unwrap();
    assert_eq!((now.version(), now.record().updated_at), (2, at(10)));

    // User.
    let loaded = reload_user(&*store, u.id()).await;
    let mut fresh = loaded.clone();
    fresh.record_login(at(20));
    commit_ok(&*store, writes([Write::UpdateUser(fresh)])).await;
    let mut stale = loaded;
    stale.record_login(at(21));
    let e = commit_err(&*store, writes([Write::UpdateUser(stale.clone())])).await;
    assert!(is_conflict(&e), "user: {e:?}");
    let e = commit_err(&*store, writes([Write::DeleteUser(stale)])).await;
    assert!(is_conflict(&e), "user delete: {e:?}");
    let now = reload_user(&*store, u.id()).await;
    assert_eq!((now.version(), now.last_login_at()), (2, Some(at(20))));

    // Challenge.
    let loaded = store
        .challenge_by_ticket(&ch.record().ticket_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.version(), 1);
    let code = VerificationCode::generate(&SeededRandom::new(9));
    let policy = portal_core::challenge::CodePolicy::default();
    let mut fresh = loaded.clone();
    fresh.resend(&code, &policy, at(100)).unwrap();
    commit_ok(&*store, writes([Write::UpdateChallenge(fresh)])).await;
    let mut stale = loaded;
    stale.resend(&code, &policy, at(200)).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateChallenge(stale)])).await;
    assert!(is_conflict(&e), "challenge: {e:?}");
    let now = store
        .challenge_by_ticket(&ch.record().ticket_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.version(), now.record().last_sent_at), (2, at(100)));

    // Link token.
    let loaded = store
        .action_token(&tok.record().hash, TokenPurpose::Invitation)
        .await
        .unwrap()
        .unwrap();
    let mut fresh = loaded.clone();
    fresh.consume(at(30)).unwrap();
    commit_ok(&*store, writes([Write::UpdateActionToken(fresh)])).await;
    let mut stale = loaded;
    stale.consume(at(31)).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateActionToken(stale)])).await;
    assert!(is_conflict(&e), "token used twice: {e:?}");
    let now = store
        .action_token(&tok.record().hash, TokenPurpose::Invitation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((now.version(), now.record().used_at), (2, Some(at(30))));

    // Admin request.
    let loaded = store.admin_request(req.id()).await.unwrap().unwrap();
    let mut fresh = loaded.clone();
    fresh
        .consent(UserId::from_uuid(new_uuid()), at(40))
        .unwrap();
    commit_ok(&*store, writes([Write::UpdateAdminRequest(fresh)])).await;
    let mut stale = loaded;
    stale.reject(UserId::from_uuid(new_uuid()), at(41)).unwrap();
    let e = commit_err(&*store, writes([Write::UpdateAdminRequest(stale)])).await;
    assert!(is_conflict(&e), "admin request: {e:?}");
    let now = store.admin_request(req.id()).await.unwrap().unwrap();
    assert_eq!(
        (now.version(), now.status()),
        (2, AdminRequestStatus::AwaitingApproval)
    );
}

/// `ExpectUser` lets a commit through only while the user has the expected version.
pub async fn expected_user_version_is_checked<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000031").await;
    let actor = admin(c.id(), "actor@example.com", "Act", "Or");
    insert_users(&*store, std::slice::from_ref(&actor)).await;
    let ok = customer("100000032", "Passt GmbH");
    commit_ok(
        &*store,
        writes([
            Write::ExpectUser {
                id: actor.id(),
                version: 1,
            },
            Write::InsertCustomer(ok.clone()),
        ]),
    )
    .await;
    assert!(store.customer(ok.id()).await.unwrap().is_some());
    for (id, version) in [
        (actor.id(), 2),
        (actor.id(), 0),
        (UserId::from_uuid(new_uuid()), 1),
    ] {
        let refused = customer("100000033", "Abgelehnt GmbH");
        let e = commit_err(
            &*store,
            writes([
                Write::ExpectUser { id, version },
                Write::InsertCustomer(refused.clone()),
            ]),
        )
        .await;
        assert!(is_conflict(&e), "version {version}: {e:?}");
        assert!(store.customer(refused.id()).await.unwrap().is_none());
    }
}

/// Updating or deleting something that is not stored is a conflict (someone deleted it).
pub async fn updates_of_missing_rows_conflict<S: Store>(store: Arc<S>) {
    let c = customer("100000034", "Fehlt GmbH");
    let e = commit_err(&*store, writes([Write::UpdateCustomer(c.clone())])).await;
    assert!(is_conflict(&e), "customer: {e:?}");
    let u = employee(c.id(), "missing@example.com", "Miss", "Ing");
    let e = commit_err(&*store, writes([Write::UpdateUser(u.clone())])).await;
    assert!(is_conflict(&e), "user: {e:?}");
    let e = commit_err(&*store, writes([Write::DeleteUser(u.clone())])).await;
    assert!(is_conflict(&e), "delete: {e:?}");
    let ch = challenge(u.id(), "missing@example.com", t0());
    let e = commit_err(&*store, writes([Write::UpdateChallenge(ch)])).await;
    assert!(is_conflict(&e), "challenge: {e:?}");
    let tok = action_token(u.id(), TokenPurpose::PasswordReset, token_hash());
    let e = commit_err(&*store, writes([Write::UpdateActionToken(tok)])).await;
    assert!(is_conflict(&e), "token: {e:?}");
    let req = admin_request(c.id(), u.id(), t0());
    let e = commit_err(&*store, writes([Write::UpdateAdminRequest(req)])).await;
    assert!(is_conflict(&e), "request: {e:?}");
}

/// Inserting an entity whose id exists is a conflict (it was created concurrently).
pub async fn inserting_an_existing_id_conflicts<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000035").await;
    let mut rec = c.record().clone();
    rec.number = CustomerNumber::parse("100000036").unwrap();
    let same_id = portal_core::customer::Customer::new(rec);
    let e = commit_err(&*store, writes([Write::InsertCustomer(same_id)])).await;
    assert!(is_conflict(&e), "customer: {e:?}");
    let u = employee(c.id(), "first@example.com", "First", "One");
    insert_users(&*store, std::slice::from_ref(&u)).await;
    let mut rec = u.record().clone();
    rec.email = email("second@example.com");
    let e = commit_err(
        &*store,
        writes([Write::InsertUser(User::from_record(rec).unwrap())]),
    )
    .await;
    assert!(is_conflict(&e), "user: {e:?}");
    assert_eq!(
        reload_user(&*store, u.id()).await.email().as_str(),
        "first@example.com"
    );
    // Sessions, challenges, link tokens and admin requests: a second insert of an id conflicts
    // and leaves the first row as it was.
    let s = session(u.id(), token_hash(), t0());
    let ch = challenge(u.id(), "first@example.com", t0());
    let tok = action_token(u.id(), TokenPurpose::PasswordReset, token_hash());
    let req = admin_request(c.id(), u.id(), t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertSession(s.clone()),
            Write::InsertChallenge(ch.clone()),
            Write::InsertActionToken(tok.clone()),
            Write::InsertAdminRequest(req.clone()),
        ]),
    )
    .await;
    // Same id, another token hash: only the id collides.
    let mut again = s.record().clone();
    again.token_hash = token_hash();
    let again = portal_core::session::Session::from_record(again).unwrap();
    for w in [
        Write::InsertSession(again),
        Write::InsertChallenge(ch.clone()),
        Write::InsertActionToken(tok.clone()),
        Write::InsertAdminRequest(req.clone()),
    ] {
        let what = format!("{w:?}").chars().take(40).collect::<String>();
        let e = commit_err(&*store, writes([w])).await;
        assert!(is_conflict(&e), "{what}: {e:?}");
    }
    assert_eq!(store.sessions_of_user(u.id()).await.unwrap().len(), 1);
    assert_eq!(
        store
            .admin_request(req.id())
            .await
            .unwrap()
            .map(|r| r.record().version),
        Some(1)
    );
}

async fn assert_nothing_of<S: Store>(
    store: &S,
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: &portal_core::secret::TokenHash,
    mail: OutboxId,
) {
    assert!(
        store.customer(c.id()).await.unwrap().is_none(),
        "no customer"
    );
    assert!(store.user(u.id()).await.unwrap().is_none(), "no user");
    assert!(
        store
            .session_context(session_hash, at(1))
            .await
            .unwrap()
            .is_none(),
        "no session"
    );
    assert!(
        store
            .audit_chain(Some(c.id()), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "no audit"
    );
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "no global audit"
    );
    assert!(store.outbox_entry(mail).await.unwrap().is_none(), "no mail");
    assert_eq!(
        store.outbox_stats().await.unwrap(),
        Default::default(),
        "empty outbox"
    );
}

fn big_commit(
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: portal_core::secret::TokenHash,
    mail: &portal_core::mail::OutboxMail,
) -> Commit {
    let mut commit = writes([
        Write::InsertCustomer(c.clone()),
        Write::InsertUser(u.clone()),
        Write::InsertSession(session(u.id(), session_hash, t0())),
    ]);
    commit
        .audit(audit(
            Some(c.id()),
            Some(u.id()),
            AuditCategory::UserCreated,
            "",
            at(1),
        ))
        .audit(audit(None, None, AuditCategory::CustomerCreated, "", at(1)))
        .mail(mail.clone());
    commit
}

/// A commit whose last write fails leaves no entity, no audit entry and no mail; the same
/// commit without that write then succeeds with the chains starting at 1.
pub async fn a_commit_whose_last_write_fails_leaves_nothing<S: Store>(store: Arc<S>) {
    let c = customer("100000040", "Atomar GmbH");
    let u = employee(c.id(), "atom@example.com", "Ato", "Mar");
    let hash = token_hash();
    let mail = code_mail("atom@example.com", "123456", at(1));
    let mut failing = big_commit(&c, &u, hash, &mail);
    let ghost = employee(c.id(), "ghost@example.com", "Gho", "St");
    failing.write(Write::UpdateUser(ghost));
    let e = commit_err(&*store, failing).await;
    assert!(is_conflict(&e), "got {e:?}");
    assert_nothing_of(&*store, &c, &u, &hash, mail.id).await;

    commit_ok(&*store, big_commit(&c, &u, hash, &mail)).await;
    assert!(store.customer(c.id()).await.unwrap().is_some());
    assert_eq!(
        seqs(&store.audit_chain(Some(c.id()), 0, 10).await.unwrap()),
        [1]
    );
    assert_eq!(seqs(&store.audit_chain(None, 0, 10).await.unwrap()), [1]);
    assert!(store.outbox_entry(mail.id).await.unwrap().is_some());
}

/// A commit whose last write breaks a uniqueness rule leaves nothing either.
pub async fn a_duplicate_in_the_last_write_leaves_nothing<S: Store>(store: Arc<S>) {
    let taken = setup_customer(&*store, "100000041").await;
    let c = customer("100000042", "Doppelt GmbH");
    let u = employee(c.id(), "dup@example.com", "Dup", "Licate");
    let hash = token_hash();
    let mail = code_mail("dup@example.com", "654321", at(1));
    let mut failing = big_commit(&c, &u, hash, &mail);
    failing.write(Write::InsertCustomer(customer(
        taken.number().as_str(),
        "Nummer vergeben GmbH",
    )));
    let e = commit_err(&*store, failing).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::CustomerNumber)),
        "got {e:?}"
    );
    assert!(
        store.customer(c.id()).await.unwrap().is_none(),
        "no customer"
    );
    assert!(store.user(u.id()).await.unwrap().is_none(), "no user");
    assert!(
        store
            .audit_chain(Some(c.id()), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "no audit"
    );
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "no global audit"
    );
    assert!(
        store.outbox_entry(mail.id).await.unwrap().is_none(),
        "no mail"
    );
}

/// What exists before the atomicity checks below: a customer whose audit chain has one entry,
/// and one queued mail.
struct Before {
    pre: portal_core::customer::Customer,
    pre_entry: portal_core::ids::AuditEntryId,
    old: portal_core::mail::OutboxMail,
}

async fn before_state<S: Store>(store: &S, number: &str) -> Before {
    let pre = setup_customer(store, number).await;
    let record = audit(
        Some(pre.id()),
        None,
        AuditCategory::CustomerCreated,
        "",
        t0(),
    );
    let pre_entry = record.id;
    let old = code_mail("old@example.com", "111111", t0());
    let mut commit = Commit::new();
    commit.audit(record).mail(old.clone());
    commit_ok(store, commit).await;
    Before {
        pre,
        pre_entry,
        old,
    }
}

/// [`big_commit`] plus an audit entry in the chain of `before.pre` (a chain whose head exists).
fn big_commit_on(
    before: &Before,
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: portal_core::secret::TokenHash,
    mail: &portal_core::mail::OutboxMail,
) -> Commit {
    let mut commit = big_commit(c, u, session_hash, mail);
    commit.audit(audit(
        Some(before.pre.id()),
        Some(u.id()),
        AuditCategory::UserCreated,
        "moved",
        at(1),
    ));
    commit
}

/// Nothing of a failed [`big_commit_on`] is kept: no entity, session, audit entry (the head of
/// `before.pre`'s chain unmoved) or mail, and what existed before is as it was.
async fn assert_only_before<S: Store>(
    store: &S,
    what: &str,
    before: &Before,
    failed: (&portal_core::customer::Customer, &User),
    session_hash: &portal_core::secret::TokenHash,
    mail: OutboxId,
) {
    let (c, u) = failed;
    assert!(
        store.customer(c.id()).await.unwrap().is_none(),
        "{what}: no customer"
    );
    assert!(
        store.user(u.id()).await.unwrap().is_none(),
        "{what}: no user"
    );
    assert!(
        store
            .session_context(session_hash, at(1))
            .await
            .unwrap()
            .is_none(),
        "{what}: no session"
    );
    assert!(
        store.sessions_of_user(u.id()).await.unwrap().is_empty(),
        "{what}: no session listed"
    );
    assert!(
        store
            .audit_chain(Some(c.id()), 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "{what}: no audit in the new chain"
    );
    assert!(
        store.audit_chain(None, 0, 10).await.unwrap().is_empty(),
        "{what}: no global audit"
    );
    let pre_chain = store
        .audit_chain(Some(before.pre.id()), 0, 10)
        .await
        .unwrap();
    assert_eq!(
        pre_chain
            .iter()
            .map(|e| (e.seq, e.record.id))
            .collect::<Vec<_>>(),
        [(1, before.pre_entry)],
        "{what}: the existing chain is as it was"
    );
    assert!(
        store.outbox_entry(mail).await.unwrap().is_none(),
        "{what}: no mail"
    );
    let old = store
        .outbox_entry(before.old.id)
        .await
        .unwrap()
        .expect("the mail queued before");
    assert_eq!(old.mail, before.old, "{what}: the queued mail is untouched");
    assert_eq!(old.status, OutboxStatus::Pending);
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (1, 0, 0, 0),
        "{what}: only the mail queued before"
    );
}

/// After the failed attempts, the same commit without the broken part succeeds, and every chain
/// continues where it was: the failed commits moved no chain head.
async fn assert_clean_commit_continues<S: Store>(
    store: &S,
    before: &Before,
    c: &portal_core::customer::Customer,
    u: &User,
    session_hash: portal_core::secret::TokenHash,
    mail: &portal_core::mail::OutboxMail,
) {
    commit_ok(store, big_commit_on(before, c, u, session_hash, mail)).await;
    assert!(store.customer(c.id()).await.unwrap().is_some());
    assert!(store.user(u.id()).await.unwrap().is_some());
    assert!(
        store
            .session_context(&session_hash, at(1))
            .await
            .unwrap()
            .is_some()
    );
    for (chain, want) in [
        (Some(before.pre.id()), vec![1, 2]),
        (Some(c.id()), vec![1]),
        (None, vec![1]),
    ] {
        let entries = store.audit_chain(chain, 0, 10).await.unwrap();
        assert_eq!(seqs(&entries), want, "chain {chain:?}");
        assert_eq!(audit::verify_chain(&entries), Ok(()), "chain {chain:?}");
    }
    assert!(store.outbox_entry(mail.id).await.unwrap().is_some());
    assert_eq!(store.outbox_stats().await.unwrap().pending, 2);
}

/// A commit whose *mail insert* fails — the same mail id twice in the commit, or the id of a
/// mail queued before — is a `Conflict` and leaves nothing: its writes, audit entries (chain
/// heads included) and earlier mails are rolled back, though they had all been applied when the
/// mail failed.
pub async fn a_commit_whose_mail_insert_fails_leaves_nothing<S: Store>(store: Arc<S>) {
    let before = before_state(&*store, "100000043").await;
    let c = customer("100000044", "Post GmbH");
    let u = employee(c.id(), "post@example.com", "Pos", "Tal");
    let hash = token_hash();
    let mail = code_mail("post@example.com", "222222", at(1));

    let mut twice = big_commit_on(&before, &c, &u, hash, &mail);
    let mut again = code_mail("twice@example.com", "333333", at(1));
    again.id = mail.id;
    twice.mail(again);
    let mut clash = big_commit_on(&before, &c, &u, hash, &mail);
    let mut queued = code_mail("clash@example.com", "444444", at(1));
    queued.id = before.old.id;
    clash.mail(queued);

    for (what, commit) in [
        ("same mail id twice", twice),
        ("mail id queued before", clash),
    ] {
        let e = commit_err(&*store, commit).await;
        assert!(is_conflict(&e), "{what}: got {e:?}");
        assert_only_before(&*store, what, &before, (&c, &u), &hash, mail.id).await;
    }
    assert_clean_commit_continues(&*store, &before, &c, &u, hash, &mail).await;
}

/// A commit whose *audit append* fails — two records with one id, or the id of an entry stored
/// before, each placed after a record of another chain, so that chain's head has moved when the
/// append fails — is a `Conflict` and leaves nothing: no entity, session, audit entry, chain
/// head move or mail.
pub async fn a_commit_whose_audit_append_fails_leaves_nothing<S: Store>(store: Arc<S>) {
    let before = before_state(&*store, "100000045").await;
    let c = customer("100000046", "Protokoll GmbH");
    let u = employee(c.id(), "log@example.com", "Pro", "Tokoll");
    let hash = token_hash();
    let mail = code_mail("log@example.com", "555555", at(1));

    // The global chain sorts first (the SQL stores append chain by chain in key order), so its
    // head is created and moved before the failing record of the customer chain.
    let mut twice = big_commit_on(&before, &c, &u, hash, &mail);
    let global = audit(
        None,
        Some(u.id()),
        AuditCategory::UserCreated,
        "first",
        at(1),
    );
    let mut same_id = audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserLocked,
        "",
        at(1),
    );
    same_id.id = global.id;
    twice.audit(global).audit(same_id);
    let mut clash = big_commit_on(&before, &c, &u, hash, &mail);
    let mut stored_id = audit(
        Some(before.pre.id()),
        Some(u.id()),
        AuditCategory::UserLocked,
        "",
        at(1),
    );
    stored_id.id = before.pre_entry;
    clash.audit(stored_id);

    for (what, commit) in [("audit id twice", twice), ("audit id stored before", clash)] {
        let e = commit_err(&*store, commit).await;
        assert!(is_conflict(&e), "{what}: got {e:?}");
        assert_only_before(&*store, what, &before, (&c, &u), &hash, mail.id).await;
    }
    assert_clean_commit_continues(&*store, &before, &c, &u, hash, &mail).await;
}

// ---------------------------------------------------------------------------------------------
// Sessions, challenges, tokens, requests, legacy claims
// ---------------------------------------------------------------------------------------------

/// A session is found by its token hash with its user and customer; nothing else finds it.
pub async fn session_round_trips_and_is_found_by_hash_only<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000050").await;
    let u = employee(c.id(), "s@example.com", "Sina", "Session");
    let op = operator("op@vendor.example");
    let hash = token_hash();
    let s = session(u.id(), hash, t0());
    let op_hash = token_hash();
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertUser(op.clone()),
            Write::InsertSession(s.clone()),
            Write::InsertSession(session(op.id(), op_hash, t0())),
        ]),
    )
    .await;
    let ctx = store
        .session_context(&hash, at(1))
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(ctx.session.record(), s.record(), "session round trip");
    assert_eq!(ctx.user.id(), u.id());
    assert_eq!(ctx.user.version(), 1);
    assert_eq!(ctx.customer.map(|c| c.id()), Some(c.id()));
    let op_ctx = store
        .session_context(&op_hash, at(1))
        .await
        .unwrap()
        .expect("operator");
    assert!(op_ctx.customer.is_none(), "operators have no customer");
    assert!(
        store
            .session_context(&token_hash(), at(1))
            .await
            .unwrap()
            .is_none()
    );
    let listed = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].record(), s.record());
}

/// Expired sessions (idle or absolute, at the instant of expiry) are never returned, even
/// before they are purged.
pub async fn session_expiry_is_enforced_in_the_query<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000051").await;
    let u = employee(c.id(), "exp@example.com", "Ex", "Pire");
    let idle_hash = token_hash();
    let abs_hash = token_hash();
    let idle = session(u.id(), idle_hash, t0());
    let abs = session(u.id(), abs_hash, t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertSession(idle.clone()),
            Write::InsertSession(abs.clone()),
        ]),
    )
    .await;
    let us = chrono::TimeDelta::microseconds(1);
    let hour = chrono::TimeDelta::hours(1);
    assert!(
        store
            .session_context(&idle_hash, t0() + hour - us)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_context(&idle_hash, t0() + hour)
            .await
            .unwrap()
            .is_none(),
        "idle expiry is exclusive"
    );
    // Kept alive until its absolute end, then dead however fresh its idle expiry.
    let end = abs.record().expires_at;
    store
        .touch_session(abs.id(), end - hour, end)
        .await
        .unwrap();
    assert!(
        store
            .session_context(&abs_hash, end - us)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_context(&abs_hash, end)
            .await
            .unwrap()
            .is_none(),
        "absolute expiry"
    );
    assert_eq!(
        store.sessions_of_user(u.id()).await.unwrap().len(),
        2,
        "expired sessions are still listed until purged"
    );
}

/// Touching moves `last_seen_at` and the idle expiry; a missing session is not an error.
pub async fn touching_a_session_moves_its_idle_expiry<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000052").await;
    let u = employee(c.id(), "t@example.com", "Tim", "Touch");
    let hash = token_hash();
    let s = session(u.id(), hash, t0());
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertSession(s.clone()),
        ]),
    )
    .await;
    store
        .touch_session(s.id(), at(1800), at(5400))
        .await
        .unwrap();
    let got = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(got[0].record().last_seen_at, at(1800));
    assert_eq!(got[0].record().idle_expires_at, at(5400));
    assert!(
        store
            .session_context(&hash, at(3700))
            .await
            .unwrap()
            .is_some(),
        "alive past the old idle expiry"
    );
    store
        .touch_session(SessionId::from_uuid(new_uuid()), at(1), at(2))
        .await
        .expect("touching a missing session is not an error");
}

/// `DeleteSessionsOfUser` ends all of one user's sessions but the one kept; `DeleteSession` is
/// idempotent.
pub async fn sessions_of_a_user_end_together_except_one<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000053").await;
    let u = employee(c.id(), "many@example.com", "Many", "Sessions");
    let v = employee(c.id(), "other@example.com", "Other", "User");
    let s: Vec<_> = (0..3)
        .map(|i| session(u.id(), token_hash(), at(i)))
        .collect();
    let sv = session(v.id(), token_hash(), t0());
    let mut w = vec![Write::InsertUser(u.clone()), Write::InsertUser(v.clone())];
    w.extend(s.iter().cloned().map(Write::InsertSession));
    w.push(Write::InsertSession(sv.clone()));
    commit_ok(&*store, writes(w)).await;
    commit_ok(
        &*store,
        writes([Write::DeleteSessionsOfUser {
            user: u.id(),
            except: Some(s[1].id()),
        }]),
    )
    .await;
    let left = session_ids(&*store, u.id()).await;
    assert_eq!(left, [s[1].id()]);
    assert_eq!(
        store.sessions_of_user(v.id()).await.unwrap().len(),
        1,
        "other users untouched"
    );
    commit_ok(&*store, writes([Write::DeleteSession(s[1].id())])).await;
    commit_ok(&*store, writes([Write::DeleteSession(s[1].id())])).await;
    assert!(store.sessions_of_user(u.id()).await.unwrap().is_empty());
}

/// A challenge reads back by its ticket hash; sends per address are counted from a time on.
pub async fn challenge_round_trips_and_counts_sends<S: Store>(store: Arc<S>) {
    let p = pending_user("code@example.com", "Cody", "Code");
    let q = pending_user("else@example.com", "Else", "Where");
    let c1 = challenge(p.id(), "code@example.com", t0());
    let c2 = challenge(p.id(), "code@example.com", at(120));
    let c3 = challenge(q.id(), "else@example.com", at(60));
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(p.clone()),
            Write::InsertUser(q.clone()),
            Write::InsertChallenge(c1.clone()),
            Write::InsertChallenge(c2),
            Write::InsertChallenge(c3),
        ]),
    )
    .await;
    let got = store
        .challenge_by_ticket(&c1.record().ticket_hash)
        .await
        .unwrap()
        .expect("by ticket");
    let mut expected = c1.record().clone();
    expected.version = 1;
    assert_eq!(got.record(), &expected);
    assert!(
        store
            .challenge_by_ticket(&token_hash())
            .await
            .unwrap()
            .is_none()
    );
    let addr = email("code@example.com");
    assert_eq!(
        store.count_challenges_sent_to(&addr, t0()).await.unwrap(),
        2
    );
    assert_eq!(
        store.count_challenges_sent_to(&addr, at(60)).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .count_challenges_sent_to(&addr, at(121))
            .await
            .unwrap(),
        0
    );
    commit_ok(&*store, writes([Write::DeleteChallengesOfUser(p.id())])).await;
    assert!(
        store
            .challenge_by_ticket(&c1.record().ticket_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.count_challenges_sent_to(&addr, t0()).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .count_challenges_sent_to(&email("else@example.com"), t0())
            .await
            .unwrap(),
        1
    );
}

/// A link token is found by hash and purpose only; deleting by purpose keeps the others.
pub async fn action_tokens_round_trip_by_hash_and_purpose<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000054").await;
    let u = employee(c.id(), "tok@example.com", "Tok", "En");
    let h_reset = token_hash();
    let h_invite = token_hash();
    let reset = action_token(u.id(), TokenPurpose::PasswordReset, h_reset);
    let invite = action_token(u.id(), TokenPurpose::Invitation, h_invite);
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertActionToken(reset.clone()),
            Write::InsertActionToken(invite.clone()),
        ]),
    )
    .await;
    let got = store
        .action_token(&h_reset, TokenPurpose::PasswordReset)
        .await
        .unwrap()
        .expect("by hash");
    let mut expected = reset.record().clone();
    expected.version = 1;
    assert_eq!(got.record(), &expected);
    assert!(
        store
            .action_token(&h_reset, TokenPurpose::Invitation)
            .await
            .unwrap()
            .is_none(),
        "a token of one purpose is useless for the other"
    );
    let of_user = store
        .action_tokens_of_user(u.id(), TokenPurpose::PasswordReset)
        .await
        .unwrap();
    assert_eq!(
        of_user.iter().map(|t| t.id()).collect::<Vec<_>>(),
        [reset.id()]
    );
    commit_ok(
        &*store,
        writes([Write::DeleteActionTokensOfUser {
            user: u.id(),
            purpose: Some(TokenPurpose::Invitation),
        }]),
    )
    .await;
    assert!(
        store
            .action_token(&h_invite, TokenPurpose::Invitation)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .action_token(&h_reset, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_some()
    );
    commit_ok(
        &*store,
        writes([Write::DeleteActionTokensOfUser {
            user: u.id(),
            purpose: None,
        }]),
    )
    .await;
    assert!(
        store
            .action_token(&h_reset, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_none()
    );
}

/// Admin requests read back, list newest first and filter by customer, requester and status.
pub async fn admin_requests_round_trip_and_filter_newest_first<S: Store>(store: Arc<S>) {
    let c1 = setup_customer(&*store, "100000055").await;
    let c2 = setup_customer(&*store, "100000056").await;
    let r1 = employee(c1.id(), "r1@example.com", "Re", "Eins");
    let r2 = employee(c1.id(), "r2@example.com", "Re", "Zwei");
    let r3 = employee(c2.id(), "r3@example.com", "Re", "Drei");
    let a = admin_request(c1.id(), r1.id(), at(10));
    let b = admin_request(c1.id(), r2.id(), at(20));
    let c = admin_request(c2.id(), r3.id(), at(30));
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(r1.clone()),
            Write::InsertUser(r2),
            Write::InsertUser(r3),
            Write::InsertAdminRequest(a.clone()),
            Write::InsertAdminRequest(b.clone()),
            Write::InsertAdminRequest(c.clone()),
        ]),
    )
    .await;
    let mut expected = a.record().clone();
    expected.version = 1;
    assert_eq!(
        store.admin_request(a.id()).await.unwrap().unwrap().record(),
        &expected
    );
    let list = |f: AdminRequestFilter| {
        let store = store.clone();
        async move {
            store
                .admin_requests(&f)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(AdminRequestFilter::default()).await,
        [c.id(), b.id(), a.id()]
    );
    assert_eq!(
        list(AdminRequestFilter {
            customer: Some(c1.id()),
            ..Default::default()
        })
        .await,
        [b.id(), a.id()]
    );
    assert_eq!(
        list(AdminRequestFilter {
            requester: Some(r1.id()),
            ..Default::default()
        })
        .await,
        [a.id()]
    );
    let mut consented = store.admin_request(b.id()).await.unwrap().unwrap();
    consented.consent(r1.id(), at(40)).unwrap();
    commit_ok(&*store, writes([Write::UpdateAdminRequest(consented)])).await;
    assert_eq!(
        list(AdminRequestFilter {
            customer: Some(c1.id()),
            statuses: vec![AdminRequestStatus::AwaitingApproval],
            ..Default::default()
        })
        .await,
        [b.id()]
    );
}

/// An old account can be linked once.
pub async fn legacy_claims_are_unique<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000057").await;
    let u = employee(c.id(), "legacy@example.com", "Leg", "Acy");
    let v = employee(c.id(), "second@example.com", "Sec", "Ond");
    insert_users(&*store, &[u.clone(), v.clone()]).await;
    let claim = LegacyClaim {
        legacy_id: "legacy:mueller".into(),
        user_id: u.id(),
        customer_id: c.id(),
        claimed_at: at(7),
    };
    commit_ok(&*store, writes([Write::InsertLegacyClaim(claim.clone())])).await;
    let again = LegacyClaim {
        user_id: v.id(),
        ..claim.clone()
    };
    let e = commit_err(&*store, writes([Write::InsertLegacyClaim(again)])).await;
    assert!(
        matches!(e, StoreError::Duplicate(UniqueKey::LegacyAccount)),
        "got {e:?}"
    );
    assert_eq!(
        store.legacy_claim("legacy:mueller").await.unwrap(),
        Some(claim)
    );
    assert!(store.legacy_claim("legacy:other").await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

/// Entries are chained per customer (and globally), numbered from 1 without gaps, and every
/// chain verifies; records read back exactly.
pub async fn audit_entries_form_verifiable_chains_per_customer<S: Store>(store: Arc<S>) {
    let c1 = setup_customer(&*store, "100000060").await;
    let c2 = setup_customer(&*store, "100000061").await;
    let mut written = Vec::new();
    for round in 0..3_i64 {
        let mut commit = Commit::new();
        let recs = [
            audit(
                Some(c1.id()),
                None,
                AuditCategory::UserCreated,
                "a",
                at(round * 10),
            ),
            audit(
                Some(c2.id()),
                None,
                AuditCategory::UserLocked,
                "reason=given",
                at(round * 10),
            ),
            audit(
                Some(c1.id()),
                None,
                AuditCategory::PermissionsChanged,
                "permissions=+shop",
                at(round * 10 + 1),
            ),
            audit(
                None,
                None,
                AuditCategory::CustomerCreated,
                "",
                at(round * 10 + 2),
            ),
        ];
        for r in recs {
            written.push(r.clone());
            commit.audit(r);
        }
        commit_ok(&*store, commit).await;
    }
    for chain in [Some(c1.id()), Some(c2.id()), None] {
        let entries = store.audit_chain(chain, 0, 100).await.unwrap();
        let want: Vec<_> = written
            .iter()
            .filter(|r| r.customer == chain)
            .cloned()
            .collect();
        assert_eq!(
            entries.iter().map(|e| e.record.clone()).collect::<Vec<_>>(),
            want,
            "records of chain {chain:?} in commit order"
        );
        assert_eq!(seqs(&entries), (1..=want.len() as u64).collect::<Vec<_>>());
        assert_eq!(
            audit::verify_chain(&entries),
            Ok(()),
            "chain {chain:?} verifies"
        );
    }
    let all = store.audit_chain(Some(c1.id()), 0, 100).await.unwrap();
    let stretch = store.audit_chain(Some(c1.id()), 2, 2).await.unwrap();
    assert_eq!(seqs(&stretch), [3, 4]);
    assert_eq!(audit::verify_chain_from(&stretch, 2, all[1].hash), Ok(()));
}

/// The log pages newest first by sequence number and filters by subject, category and time.
pub async fn audit_pages_newest_first_with_filters<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000062").await;
    let other = setup_customer(&*store, "100000063").await;
    let u1 = UserId::from_uuid(new_uuid());
    let u2 = UserId::from_uuid(new_uuid());
    for i in 0..10_i64 {
        let (subject, category) = if i % 2 == 0 {
            (u1, AuditCategory::UserLocked)
        } else {
            (u2, AuditCategory::PermissionsChanged)
        };
        let mut commit = Commit::new();
        commit.audit(audit(Some(c.id()), Some(subject), category, "", at(i * 60)));
        commit_ok(&*store, commit).await;
    }
    let mut commit = Commit::new();
    commit.audit(audit(
        Some(other.id()),
        Some(u1),
        AuditCategory::UserLocked,
        "",
        at(0),
    ));
    commit_ok(&*store, commit).await;

    let q = audit_query(Some(c.id()), 3);
    assert_eq!(
        seqs(&store.audit(&q).await.unwrap()),
        [10, 9, 8, 7],
        "limit + 1, newest first"
    );
    let q = AuditQuery {
        before_seq: Some(7),
        ..audit_query(Some(c.id()), 3)
    };
    assert_eq!(seqs(&store.audit(&q).await.unwrap()), [6, 5, 4, 3]);
    let q = AuditQuery {
        subject: Some(u1),
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(seqs(&store.audit(&q).await.unwrap()), [9, 7, 5, 3, 1]);
    let q = AuditQuery {
        categories: vec![AuditCategory::PermissionsChanged],
        before_seq: Some(6),
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(seqs(&store.audit(&q).await.unwrap()), [4, 2]);
    let q = AuditQuery {
        from: Some(at(180)),
        until: Some(at(360)),
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(
        seqs(&store.audit(&q).await.unwrap()),
        [6, 5, 4],
        "from inclusive, until exclusive"
    );
    assert_eq!(
        seqs(
            &store
                .audit(&audit_query(Some(other.id()), 10))
                .await
                .unwrap()
        ),
        [1]
    );
    assert!(
        store
            .audit(&audit_query(None, 10))
            .await
            .unwrap()
            .is_empty(),
        "chains are separate"
    );
    assert!(
        store
            .audit(&audit_query(Some(CustomerId::from_uuid(new_uuid())), 10))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Search finds entries whose lower-cased details contain the text, or whose category is one of
/// the matched categories; `%` is literal.
pub async fn audit_search_matches_details_or_categories<S: Store>(store: Arc<S>) {
    let c = setup_customer(&*store, "100000064").await;
    let mut commit = Commit::new();
    commit
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::PermissionsChanged,
            "permissions=+documents,-shop",
            at(1),
        ))
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::UserLocked,
            "reason=given",
            at(2),
        ))
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::UserDeleted,
            "Role=Administrator",
            at(3),
        ))
        .audit(audit(
            Some(c.id()),
            None,
            AuditCategory::AccountChanged,
            "quota=100%",
            at(4),
        ));
    commit_ok(&*store, commit).await;
    let search = |text: &str, cats: Vec<AuditCategory>| AuditQuery {
        search: Some(text.to_owned()),
        search_categories: cats,
        ..audit_query(Some(c.id()), 10)
    };
    assert_eq!(
        seqs(&store.audit(&search("documents", vec![])).await.unwrap()),
        [1]
    );
    assert_eq!(
        seqs(&store.audit(&search("role=admin", vec![])).await.unwrap()),
        [3],
        "details are searched lower-cased"
    );
    assert_eq!(
        seqs(
            &store
                .audit(&search("gesperrt", vec![AuditCategory::UserLocked]))
                .await
                .unwrap()
        ),
        [2],
        "a category whose label matched"
    );
    assert_eq!(seqs(&store.audit(&search("%", vec![])).await.unwrap()), [4]);
    assert!(
        store
            .audit(&search("nothing", vec![]))
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

async fn queue<S: Store>(store: &S, mails: &[portal_core::mail::OutboxMail]) {
    let mut commit = Commit::new();
    for m in mails {
        commit.mail(m.clone());
    }
    commit_ok(store, commit).await;
}

/// A queued mail reads back exactly, pending, due at its creation, with no attempts.
pub async fn outbox_mails_round_trip_and_start_pending<S: Store>(store: Arc<S>) {
    let m1 = code_mail("a@example.com", "111111", at(1));
    let mut m2 = code_mail("b@example.com", "222222", at(2));
    m2.intent = portal_core::mail::MailIntent::AdminApprovalNeeded {
        requester_name: "Anna Ä".into(),
        customer_number: "D100000001".into(),
        customer_name: "Müller GmbH".into(),
        request_id: portal_core::ids::AdminRequestId::from_uuid(new_uuid()),
    };
    queue(&*store, &[m1.clone(), m2.clone()]).await;
    for m in [&m1, &m2] {
        let e = store.outbox_entry(m.id).await.unwrap().expect("queued");
        assert_eq!(&e.mail, m, "mail round trip");
        assert_eq!(e.status, OutboxStatus::Pending);
        assert_eq!(e.attempts, 0);
        assert_eq!(e.next_attempt_at, m.created_at);
        assert!(e.claim.is_none() && e.claimed_until.is_none() && e.sent_at.is_none());
    }
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (2, 0, 0, 0)
    );
    assert!(
        store
            .outbox_entry(OutboxId::from_uuid(new_uuid()))
            .await
            .unwrap()
            .is_none()
    );
}

/// A claim takes due mails in queue order up to its limit; mails due later, and mails under
/// another claim's lease, are left alone.
pub async fn outbox_claim_takes_due_mails_oldest_first<S: Store>(store: Arc<S>) {
    let mails: Vec<_> = (0..5)
        .map(|i| code_mail(&format!("m{i}@example.com"), "000000", at(i)))
        .collect();
    for m in &mails {
        queue(&*store, std::slice::from_ref(m)).await;
    }
    let future = code_mail("later@example.com", "999999", at(10_000));
    queue(&*store, std::slice::from_ref(&future)).await;

    let c1 = Uuid::from_u128(1);
    let got = store.claim_outbox(c1, at(100), at(400), 2).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.mail.id).collect::<Vec<_>>(),
        [mails[0].id, mails[1].id],
        "oldest first"
    );
    for e in &got {
        assert_eq!(e.status, OutboxStatus::Claimed);
        assert_eq!(e.claim, Some(c1));
        assert_eq!(e.claimed_until, Some(at(400)));
        assert_eq!(e.attempts, 1);
    }
    let stored = store.outbox_entry(mails[0].id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.claim, stored.attempts),
        (OutboxStatus::Claimed, Some(c1), 1)
    );
    let c2 = Uuid::from_u128(2);
    let rest = store.claim_outbox(c2, at(100), at(400), 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.mail.id).collect::<Vec<_>>(),
        [mails[2].id, mails[3].id, mails[4].id],
        "claimed and future mails are skipped"
    );
    assert!(
        store
            .claim_outbox(c2, at(100), at(400), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_outbox(c2, at(10_000), at(10_300), 0)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.claimed), (1, 5));
}

/// Acknowledging a delivery marks it sent and purges its secret; a second ack is refused.
pub async fn outbox_ack_purges_the_secret_and_counts<S: Store>(store: Arc<S>) {
    let m = code_mail("ack@example.com", "424242", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let claim = Uuid::from_u128(7);
    let got = store.claim_outbox(claim, at(10), at(70), 5).await.unwrap();
    assert_eq!(
        got[0].mail.intent.secret().map(SecretString::expose),
        Some("424242"),
        "the dispatcher gets the secret"
    );
    assert!(store.mark_sent(m.id, claim, at(20)).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(e.status, OutboxStatus::Sent);
    assert_eq!(e.sent_at, Some(at(20)));
    assert!(e.claim.is_none() && e.claimed_until.is_none());
    assert_eq!(
        e.mail.intent.secret().map(SecretString::expose),
        Some(""),
        "secret purged after delivery"
    );
    assert!(
        !store.mark_sent(m.id, claim, at(21)).await.unwrap(),
        "acknowledged once"
    );
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.claimed, stats.sent), (0, 0, 1));
    assert!(
        store
            .claim_outbox(claim, at(1000), at(1060), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A failed attempt waits until its retry time; without one the mail is dead, listed as a dead
/// letter, and can be re-queued with its attempts reset.
pub async fn outbox_retry_then_dead_letter_then_requeue<S: Store>(store: Arc<S>) {
    let m = code_mail("retry@example.com", "131313", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let c1 = Uuid::from_u128(11);
    assert_eq!(
        store
            .claim_outbox(c1, at(10), at(70), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let long_error = "4".repeat(600);
    assert!(
        store
            .mark_failed(m.id, c1, &long_error, Some(at(500)))
            .await
            .unwrap()
    );
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.next_attempt_at, e.claim),
        (OutboxStatus::Pending, at(500), None)
    );
    assert_eq!(
        e.last_error.as_deref().map(str::len),
        Some(500),
        "errors are cut"
    );
    assert!(
        store
            .claim_outbox(c1, at(499), at(560), 1)
            .await
            .unwrap()
            .is_empty(),
        "not due"
    );
    let c2 = Uuid::from_u128(12);
    let again = store.claim_outbox(c2, at(500), at(560), 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert!(
        store
            .mark_failed(m.id, c2, "550 no such user", None)
            .await
            .unwrap()
    );
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.iter().map(|e| e.mail.id).collect::<Vec<_>>(), [m.id]);
    assert_eq!(dead[0].status, OutboxStatus::Dead);
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
    assert!(
        store
            .claim_outbox(c2, at(100_000), at(100_060), 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.outbox_stats().await.unwrap().dead, 1);

    assert!(store.requeue(m.id, at(600)).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.attempts, e.next_attempt_at),
        (OutboxStatus::Pending, 0, at(600))
    );
    assert!(
        !store.requeue(m.id, at(601)).await.unwrap(),
        "only dead mails are re-queued"
    );
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(
        store
            .claim_outbox(c2, at(600), at(660), 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A claim whose lease ended can be taken over; the old claim's acknowledgements are ignored.
pub async fn outbox_expired_lease_is_reclaimed_and_stale_acks_ignored<S: Store>(store: Arc<S>) {
    let m = code_mail("lease@example.com", "777777", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let old = Uuid::from_u128(21);
    let new = Uuid::from_u128(22);
    assert_eq!(
        store
            .claim_outbox(old, at(100), at(160), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_outbox(new, at(159), at(219), 1)
            .await
            .unwrap()
            .is_empty(),
        "lease still running"
    );
    let taken = store.claim_outbox(new, at(160), at(220), 1).await.unwrap();
    assert_eq!(taken.len(), 1, "lease ended at its instant");
    assert_eq!((taken[0].claim, taken[0].attempts), (Some(new), 2));
    assert!(
        !store.mark_sent(m.id, old, at(161)).await.unwrap(),
        "stale ack ignored"
    );
    assert!(
        !store.mark_failed(m.id, old, "x", None).await.unwrap(),
        "stale failure ignored"
    );
    assert!(
        !store.release(m.id, old).await.unwrap(),
        "stale release ignored"
    );
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!((e.status, e.claim), (OutboxStatus::Claimed, Some(new)));
    assert!(store.mark_sent(m.id, new, at(170)).await.unwrap());
}

/// Releasing a claim puts the mail back, due at once, without counting the attempt.
pub async fn outbox_release_gives_the_mail_back_uncounted<S: Store>(store: Arc<S>) {
    let m = code_mail("release@example.com", "858585", at(1));
    queue(&*store, std::slice::from_ref(&m)).await;
    let c1 = Uuid::from_u128(31);
    assert_eq!(
        store.claim_outbox(c1, at(10), at(70), 1).await.unwrap()[0].attempts,
        1
    );
    assert!(store.release(m.id, c1).await.unwrap());
    let e = store.outbox_entry(m.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.attempts, e.claim),
        (OutboxStatus::Pending, 0, None)
    );
    let c2 = Uuid::from_u128(32);
    let again = store.claim_outbox(c2, at(10), at(70), 1).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    assert!(
        !store.release(m.id, c1).await.unwrap(),
        "not the current claim"
    );
}

/// The second factors stored on a user round-trip exactly, and change only with the user's
/// version.
pub async fn mfa_state_round_trips_with_the_user<S: Store>(store: Arc<S>) {
    use portal_core::mfa::{
        PendingCode, PhoneChannel, PhoneFactor, PhoneNumber, RecoveryChannel, TotpFactor,
    };
    let c = setup_customer(&*store, "100000090").await;
    let mut u = employee(c.id(), "mfa@example.com", "Mia", "Faktor");
    u.change_mfa(
        |m| {
            m.totp = Some(TotpFactor {
                sealed_secret: "v1.c2VhbGVk".into(),
                last_used_step: 59_000_123,
                enrolled_at: at(1),
            });
            m.phone = Some(PhoneFactor {
                number: PhoneNumber::parse("+4917612345678").unwrap(),
                channel: PhoneChannel::Voice,
                enrolled_at: at(2),
            });
            m.pending_phone = Some(portal_core::mfa::PendingPhone {
                number: PhoneNumber::parse("+4917612345679").unwrap(),
                channel: PhoneChannel::Sms,
                code: PendingCode {
                    code_hash: token_hash(),
                    expires_at: at(600),
                    attempts_left: 4,
                },
            });
            m.recovery_code = Some(password_hash());
            m.recovery_channel = Some(RecoveryChannel::Email(email("r@example.org")));
        },
        at(3),
    );
    commit_ok(&*store, writes([Write::InsertUser(u.clone())])).await;
    let got = reload_user(&*store, u.id()).await;
    assert_eq!(got.mfa(), u.mfa(), "MFA state round trip");
    let mut next = got.clone();
    next.change_mfa(
        |m| {
            if let Some(t) = &mut m.totp {
                t.last_used_step += 1;
            }
        },
        at(4),
    );
    commit_ok(&*store, writes([Write::UpdateUser(next.clone())])).await;
    // The same step again from the old version: the version check refuses it.
    let e = commit_err(&*store, writes([Write::UpdateUser(next)])).await;
    assert!(is_conflict(&e), "stale MFA update: {e:?}");
    let stored = reload_user(&*store, u.id()).await;
    assert_eq!(
        stored.mfa().totp.as_ref().map(|t| t.last_used_step),
        Some(59_000_124)
    );
}

/// Pending second steps and remembered devices are stored with their kind; a pending step's
/// attempts and phone code are replaced by `UpdateSession`.
pub async fn session_kinds_round_trip_and_update<S: Store>(store: Arc<S>) {
    use portal_core::mfa::PendingCode;
    use portal_core::session::{ClientInfo, Session, SessionKind};
    let c = setup_customer(&*store, "100000091").await;
    let u = employee(c.id(), "kind@example.com", "Kim", "Kind");
    let pending_hash = token_hash();
    let device_hash = token_hash();
    let mut pending = Session::start_mfa_pending(
        SessionId::from_uuid(new_uuid()),
        pending_hash,
        u.id(),
        ClientInfo::new(Some("10.0.0.1"), Some("test")),
        chrono::TimeDelta::minutes(5),
        5,
        t0(),
    );
    let device = Session::start_remembered_device(
        SessionId::from_uuid(new_uuid()),
        device_hash,
        u.id(),
        ClientInfo::default(),
        chrono::TimeDelta::days(30),
        t0(),
    );
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertSession(pending.clone()),
            Write::InsertSession(device.clone()),
        ]),
    )
    .await;
    let ctx = store
        .session_context(&device_hash, at(1))
        .await
        .unwrap()
        .expect("device");
    assert_eq!(ctx.session.kind(), &SessionKind::RememberedDevice);
    assert_eq!(ctx.session.record(), device.record());
    assert!(
        store
            .session_context(&device_hash, t0() + chrono::TimeDelta::days(30))
            .await
            .unwrap()
            .is_none(),
        "a device ends 30 days after it was remembered"
    );
    pending.spend_attempt();
    pending.set_phone_code(PendingCode {
        code_hash: token_hash(),
        expires_at: at(300),
        attempts_left: 5,
    });
    commit_ok(&*store, writes([Write::UpdateSession(pending.clone())])).await;
    let ctx = store
        .session_context(&pending_hash, at(1))
        .await
        .unwrap()
        .expect("pending");
    assert_eq!(
        ctx.session.record(),
        pending.record(),
        "updated pending step"
    );
    // Updating a session that is gone is no error and creates nothing.
    let ghost = Session::start_mfa_pending(
        SessionId::from_uuid(new_uuid()),
        token_hash(),
        u.id(),
        ClientInfo::default(),
        chrono::TimeDelta::minutes(5),
        5,
        t0(),
    );
    commit_ok(&*store, writes([Write::UpdateSession(ghost.clone())])).await;
    assert_eq!(store.sessions_of_user(u.id()).await.unwrap().len(), 2);
}

/// An e-mail change challenge round-trips with its purpose and the new address.
pub async fn email_change_challenges_round_trip<S: Store>(store: Arc<S>) {
    use portal_core::challenge::{ChallengePurpose, CodePolicy, EmailChallenge};
    use portal_core::ids::ChallengeId;
    let c = setup_customer(&*store, "100000092").await;
    let u = employee(c.id(), "old@example.com", "Olga", "Alt");
    let ticket = token_hash();
    let code = VerificationCode::generate(&SeededRandom::new(3));
    let ch = EmailChallenge::issue(
        ChallengeId::from_uuid(new_uuid()),
        ticket,
        u.id(),
        ChallengePurpose::EmailChange,
        email("new@example.com"),
        &code,
        None,
        &CodePolicy::default(),
        t0(),
    );
    commit_ok(
        &*store,
        writes([Write::InsertUser(u), Write::InsertChallenge(ch.clone())]),
    )
    .await;
    let got = store
        .challenge_by_ticket(&ticket)
        .await
        .unwrap()
        .expect("challenge");
    assert_eq!(got.purpose(), ChallengePurpose::EmailChange);
    assert_eq!(got.email().as_str(), "new@example.com");
    assert_eq!(got.record().version, 1);
}

/// Rate counters count atomically, start again after their window, and can be reset.
pub async fn rate_counters_count_atomically_and_reset<S: Store>(store: Arc<S>) {
    let window = chrono::TimeDelta::hours(1);
    assert!(
        store
            .counter("login:account:a@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.bump_counter("login:account:a@example.com", t0(), window)
                .await
                .unwrap()
                .count
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<_>>(),
        "no lost or doubled increments"
    );
    let c = store
        .counter("login:account:a@example.com")
        .await
        .unwrap()
        .expect("counter");
    assert_eq!((c.count, c.last_at), (20, t0()));
    let later = store
        .bump_counter(
            "login:account:a@example.com",
            t0() + window - chrono::TimeDelta::seconds(1),
            window,
        )
        .await
        .unwrap();
    assert_eq!(later.count, 21, "still inside the window of the last event");
    let fresh = store
        .bump_counter(
            "login:account:a@example.com",
            later.last_at + window,
            window,
        )
        .await
        .unwrap();
    assert_eq!(fresh.count, 1, "a quiet window starts the count again");
    store
        .reset_counter("login:account:a@example.com")
        .await
        .unwrap();
    assert!(
        store
            .counter("login:account:a@example.com")
            .await
            .unwrap()
            .is_none()
    );
    store.reset_counter("never-set").await.unwrap();
    assert!(
        store.counter("login:ip:10.0.0.1").await.unwrap().is_none(),
        "keys are separate"
    );
}

// ---------------------------------------------------------------------------------------------
// Time precision
// ---------------------------------------------------------------------------------------------

/// Every stored time is kept to the microsecond on every backend: written with nanoseconds
/// (`.123456999`), it reads back truncated (`.123456`, not rounded up), for every entity, the
/// audit chain (which still verifies), the outbox's times and the rate counters.
#[allow(clippy::too_many_lines)]
pub async fn times_are_stored_truncated_to_microseconds<S: Store>(store: Arc<S>) {
    use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
    let ns = TimeDelta::nanoseconds(999);
    let nano = |seconds: i64| at(seconds) + ns;
    let us = |t: DateTime<Utc>| t.trunc_subsecs(6);
    assert_ne!(nano(0), us(nano(0)), "the test times carry nanoseconds");
    assert_eq!(us(nano(0)), t0(), "truncated, not rounded");

    let mut c_rec = customer("100000095", "Nano GmbH").record().clone();
    c_rec.created_at = nano(0);
    c_rec.updated_at = nano(1);
    let c = portal_core::customer::Customer::new(c_rec);
    let mut u_rec = employee(c.id(), "nano@example.com", "Nana", "Sekunde")
        .record()
        .clone();
    u_rec.created_at = nano(2);
    u_rec.updated_at = nano(3);
    u_rec.last_login_at = Some(nano(4));
    let u = User::from_record(u_rec).unwrap();
    let hash = token_hash();
    let s = session(u.id(), hash, nano(5));
    let ch = challenge(u.id(), "nano@example.com", nano(6));
    let mut t_rec = action_token(u.id(), TokenPurpose::PasswordReset, token_hash())
        .record()
        .clone();
    t_rec.created_at = nano(7);
    t_rec.expires_at = nano(3600);
    t_rec.used_at = Some(nano(8));
    let tok = portal_core::token::ActionToken::from_record(t_rec).unwrap();
    let req = admin_request(c.id(), u.id(), nano(9));
    let claim = LegacyClaim {
        legacy_id: "legacy:nano".into(),
        user_id: u.id(),
        customer_id: c.id(),
        claimed_at: nano(10),
    };
    let record = audit(
        Some(c.id()),
        Some(u.id()),
        AuditCategory::UserCreated,
        "",
        nano(11),
    );
    let mail = code_mail("nano@example.com", "123456", nano(12));
    let mut commit = writes([
        Write::InsertCustomer(c.clone()),
        Write::InsertUser(u.clone()),
        Write::InsertSession(s.clone()),
        Write::InsertChallenge(ch.clone()),
        Write::InsertActionToken(tok.clone()),
        Write::InsertAdminRequest(req.clone()),
        Write::InsertLegacyClaim(claim.clone()),
    ]);
    commit.audit(record.clone()).mail(mail.clone());
    commit_ok(&*store, commit).await;

    let got = store.customer(c.id()).await.unwrap().expect("customer");
    assert_eq!(
        (got.record().created_at, got.record().updated_at),
        (us(nano(0)), us(nano(1))),
        "customer"
    );
    let got = reload_user(&*store, u.id()).await;
    assert_eq!(
        (
            got.record().created_at,
            got.record().updated_at,
            got.record().last_login_at
        ),
        (us(nano(2)), us(nano(3)), Some(us(nano(4)))),
        "user"
    );
    let got = store.sessions_of_user(u.id()).await.unwrap();
    let r = got[0].record();
    let w = s.record();
    assert_eq!(
        [
            r.created_at,
            r.last_seen_at,
            r.idle_expires_at,
            r.expires_at,
            r.authenticated_at
        ],
        [
            us(w.created_at),
            us(w.last_seen_at),
            us(w.idle_expires_at),
            us(w.expires_at),
            us(w.authenticated_at)
        ],
        "session"
    );
    let got = store
        .challenge_by_ticket(&ch.record().ticket_hash)
        .await
        .unwrap()
        .expect("challenge");
    let w = ch.record();
    assert_eq!(
        [
            got.record().created_at,
            got.record().last_sent_at,
            got.record().expires_at
        ],
        [us(w.created_at), us(w.last_sent_at), us(w.expires_at)],
        "challenge"
    );
    let got = store
        .action_token(&tok.record().hash, TokenPurpose::PasswordReset)
        .await
        .unwrap()
        .expect("token");
    assert_eq!(
        (
            got.record().created_at,
            got.record().expires_at,
            got.record().used_at
        ),
        (us(nano(7)), us(nano(3600)), Some(us(nano(8)))),
        "action token"
    );
    let got = store
        .admin_request(req.id())
        .await
        .unwrap()
        .expect("request");
    assert_eq!(
        (got.record().created_at, got.record().updated_at),
        (us(nano(9)), us(nano(9))),
        "admin request"
    );
    let got = store
        .legacy_claim("legacy:nano")
        .await
        .unwrap()
        .expect("claim");
    assert_eq!(got.claimed_at, us(nano(10)), "legacy claim");
    let chain = store.audit_chain(Some(c.id()), 0, 10).await.unwrap();
    assert_eq!(chain[0].record.at, us(nano(11)), "audit entry");
    assert_eq!(
        audit::verify_chain(&chain),
        Ok(()),
        "the hash covers the stored time"
    );
    let got = store.outbox_entry(mail.id).await.unwrap().expect("mail");
    assert_eq!(
        (got.mail.created_at, got.next_attempt_at),
        (us(nano(12)), us(nano(12))),
        "mail"
    );

    // Times handed to the outbox, counter and session calls are stored the same way.
    let claim_id = new_uuid();
    let claimed = store
        .claim_outbox(claim_id, nano(20), nano(320), 10)
        .await
        .unwrap();
    assert_eq!(claimed[0].claimed_until, Some(us(nano(320))), "lease");
    assert_eq!(
        store
            .outbox_entry(mail.id)
            .await
            .unwrap()
            .expect("mail")
            .claimed_until,
        Some(us(nano(320))),
        "stored lease"
    );
    assert!(
        store
            .mark_failed(mail.id, claim_id, "451", Some(nano(400)))
            .await
            .unwrap()
    );
    let got = store.outbox_entry(mail.id).await.unwrap().expect("mail");
    assert_eq!(got.next_attempt_at, us(nano(400)), "retry time");
    let again = store
        .claim_outbox(claim_id, nano(400), nano(700), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "due at its truncated retry time");
    assert!(store.mark_sent(mail.id, claim_id, nano(450)).await.unwrap());
    let got = store.outbox_entry(mail.id).await.unwrap().expect("mail");
    assert_eq!(got.sent_at, Some(us(nano(450))), "sent time");

    let counted = store
        .bump_counter("nano", nano(30), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(counted.last_at, us(nano(30)), "counter as returned");
    assert_eq!(
        store.counter("nano").await.unwrap().map(|c| c.last_at),
        Some(us(nano(30))),
        "counter as stored"
    );
    store
        .touch_session(s.id(), nano(40), nano(1800))
        .await
        .unwrap();
    let got = store.sessions_of_user(u.id()).await.unwrap();
    assert_eq!(
        (
            got[0].record().last_seen_at,
            got[0].record().idle_expires_at
        ),
        (us(nano(40)), us(nano(1800))),
        "touched session"
    );
}

// ---------------------------------------------------------------------------------------------
// Housekeeping
// ---------------------------------------------------------------------------------------------

/// Purging removes exactly the rows dead at the cut-off (the cut-off itself included) and
/// nothing else: sessions by idle expiry, challenges by start, link tokens by expiry, counters
/// by their last event. A purged session is gone from every query; a second purge finds nothing.
pub async fn purging_removes_exactly_the_rows_dead_at_the_cutoff<S: Store>(store: Arc<S>) {
    use portal_core::ports::Expired;
    let c = setup_customer(&*store, "100000091").await;
    let u = employee(c.id(), "purge@example.com", "Paul", "Purge");
    let p = pending_user("pending.purge@example.com", "Pia", "Pending");
    let (old_hash, new_hash) = (token_hash(), token_hash());
    // Idle expiries t0 + 1 h and t0 + 3 h.
    let old = session(u.id(), old_hash, t0());
    let new = session(u.id(), new_hash, at(7_200));
    let old_challenge = challenge(p.id(), "pending.purge@example.com", t0());
    let new_challenge = challenge(p.id(), "pending.purge@example.com", at(120));
    let (old_link, new_link) = (token_hash(), token_hash());
    let old_token = action_token(u.id(), TokenPurpose::PasswordReset, old_link); // ends at 3600
    let new_token = portal_core::token::ActionToken::issue(
        portal_core::ids::ActionTokenId::from_uuid(new_uuid()),
        new_link,
        TokenPurpose::Invitation,
        u.id(),
        t0(),
        at(7_200),
    );
    commit_ok(
        &*store,
        writes([
            Write::InsertUser(u.clone()),
            Write::InsertUser(p.clone()),
            Write::InsertSession(old.clone()),
            Write::InsertSession(new.clone()),
            Write::InsertChallenge(old_challenge.clone()),
            Write::InsertChallenge(new_challenge.clone()),
            Write::InsertActionToken(old_token),
            Write::InsertActionToken(new_token),
        ]),
    )
    .await;
    let window = chrono::TimeDelta::hours(24);
    store.bump_counter("old", t0(), window).await.unwrap();
    store.bump_counter("new", at(1), window).await.unwrap();

    let us = chrono::TimeDelta::microseconds(1);
    let hour = at(3_600);
    // Just before the cut-off nothing is dead yet.
    for (kind, cutoff) in [
        (Expired::Sessions, hour - us),
        (Expired::Challenges, t0() - us),
        (Expired::ActionTokens, hour - us),
        (Expired::Counters, t0() - us),
    ] {
        assert_eq!(
            store.purge_expired(kind, cutoff, 100).await.unwrap(),
            0,
            "{kind:?} before its cut-off"
        );
    }
    for (kind, cutoff) in [
        (Expired::Sessions, hour),
        (Expired::Challenges, t0()),
        (Expired::ActionTokens, hour),
        (Expired::Counters, t0()),
    ] {
        assert_eq!(
            store.purge_expired(kind, cutoff, 100).await.unwrap(),
            1,
            "{kind:?} at its cut-off"
        );
        assert_eq!(
            store.purge_expired(kind, cutoff, 100).await.unwrap(),
            0,
            "{kind:?} purged once"
        );
    }
    let left = session_ids(&*store, u.id()).await;
    assert_eq!(left, [new.id()]);
    assert!(
        store
            .session_context(&old_hash, t0())
            .await
            .unwrap()
            .is_none(),
        "a purged session is gone from the lookup by hash"
    );
    assert!(
        store
            .session_context(&new_hash, at(7_201))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .challenge_by_ticket(&old_challenge.record().ticket_hash)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .challenge_by_ticket(&new_challenge.record().ticket_hash)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .action_token(&old_link, TokenPurpose::PasswordReset)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .action_token(&new_link, TokenPurpose::Invitation)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.counter("old").await.unwrap().is_none());
    assert_eq!(
        store.counter("new").await.unwrap().map(|c| c.count),
        Some(1)
    );
    // A purged counter starts again at 1.
    assert_eq!(
        store
            .bump_counter("old", at(2), window)
            .await
            .unwrap()
            .count,
        1
    );
    // Users, customers and the audit log are never touched.
    assert!(store.user(u.id()).await.unwrap().is_some());
    assert!(store.user(p.id()).await.unwrap().is_some());
}

/// Purges work in batches of at most `limit` rows until none is left; a limit of 0 deletes
/// nothing.
pub async fn purges_go_in_batches<S: Store>(store: Arc<S>) {
    use portal_core::ports::Expired;
    let c = setup_customer(&*store, "100000092").await;
    let u = employee(c.id(), "batch@example.com", "Bea", "Batch");
    let mut ws = vec![Write::InsertUser(u.clone())];
    for i in 0..5 {
        ws.push(Write::InsertSession(session(u.id(), token_hash(), at(i))));
    }
    commit_ok(&*store, writes(ws)).await;
    let cutoff = at(86_400);
    assert_eq!(
        store
            .purge_expired(Expired::Sessions, cutoff, 0)
            .await
            .unwrap(),
        0
    );
    let mut batches = Vec::new();
    loop {
        let n = store
            .purge_expired(Expired::Sessions, cutoff, 2)
            .await
            .unwrap();
        batches.push(n);
        if n < 2 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1]);
    assert!(store.sessions_of_user(u.id()).await.unwrap().is_empty());
}

/// Purging delivered mail removes only mails sent at or before the cut-off; pending, claimed
/// and dead mails stay, whatever their age.
pub async fn purging_sent_mail_keeps_open_and_dead_mail<S: Store>(store: Arc<S>) {
    let early = code_mail("early@example.com", "111111", at(1));
    let late = code_mail("late@example.com", "222222", at(2));
    let dead = code_mail("dead@example.com", "333333", at(3));
    let claimed = code_mail("claimed@example.com", "444444", at(4));
    let pending = code_mail("pending@example.com", "555555", at(5));
    queue(
        &*store,
        &[
            early.clone(),
            late.clone(),
            dead.clone(),
            claimed.clone(),
            pending.clone(),
        ],
    )
    .await;
    let c = Uuid::from_u128(91);
    assert_eq!(
        store
            .claim_outbox(c, at(10), at(70), 4)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(store.mark_sent(early.id, c, at(20)).await.unwrap());
    assert!(store.mark_sent(late.id, c, at(40)).await.unwrap());
    assert!(store.mark_failed(dead.id, c, "550", None).await.unwrap());

    assert_eq!(
        store
            .purge_sent(at(20) - chrono::TimeDelta::microseconds(1), 10)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.purge_sent(at(20), 10).await.unwrap(), 1);
    assert!(store.outbox_entry(early.id).await.unwrap().is_none());
    assert!(store.outbox_entry(late.id).await.unwrap().is_some());
    assert_eq!(store.purge_sent(at(1_000_000), 0).await.unwrap(), 0);
    assert_eq!(store.purge_sent(at(1_000_000), 10).await.unwrap(), 1);
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.claimed, stats.sent, stats.dead),
        (1, 1, 0, 1)
    );
    assert_eq!(
        store
            .dead_letters(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.mail.id)
            .collect::<Vec<_>>(),
        [dead.id]
    );
    let due = store
        .claim_outbox(Uuid::from_u128(92), at(100), at(160), 10)
        .await
        .unwrap();
    let mut ids: Vec<OutboxId> = due.iter().map(|e| e.mail.id).collect();
    ids.sort();
    let mut want = vec![claimed.id, pending.id];
    want.sort();
    assert_eq!(
        ids, want,
        "the claimed (lease over) and pending mails are still queued"
    );
}
