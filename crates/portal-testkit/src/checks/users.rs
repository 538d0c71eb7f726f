//! Users: round trips, the unique address of an account, deletion, listing, paging and search, never
//! across customers.

use super::{ids, insert_users, reload_user, setup_customer, users_query};
use crate::Store;
use crate::fixtures::*;
use portal_core::audit::{ActorRef, AuditCategory};
use portal_core::customer::AffiliationKey;
use portal_core::customer::{Customer, ServiceChannel};
use portal_core::ids::{CustomerId, UserId};
use portal_core::ports::{LegacyClaim, PageStart, StoreError, UniqueKey, UserCursor, Write};
use portal_core::token::TokenPurpose;
use portal_core::user::{Lock, User};
use portal_core::values::{CompanyName, FreeText, Language, PersonName};
use std::sync::Arc;

/// The checks of this module, expanded by [`storage_contract!`](crate::storage_contract): a new
/// check goes into this list too (the crate's tests fail otherwise).
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_contract_users {
    ($fixture:ty) => {
        $crate::storage_contract!(@tests $fixture; users;
            user_round_trips_with_every_field,
            users_by_ids_skip_unknown_ids,
            email_is_unique_among_accounts,
            pending_registrations_hold_no_claim_on_an_address,
            deleting_a_user_frees_the_address_and_removes_what_hangs_on_it,
            admins_and_operators_are_listed,
            user_lists_never_cross_customers,
            user_pages_follow_sort_key_and_id_across_inserts,
            user_pages_by_offset,
            user_counts_are_capped,
            search_finds_substrings_of_name_and_email_literally,
            search_follows_renames_and_deletes,
            texts_stored_before_the_hidden_character_rule_still_load,
        );
    };
}

fn sorted_ids(mut users: Vec<User>) -> Vec<UserId> {
    users.sort_by_key(|u| (u.sort_key(), u.id()));
    ids(&users)
}

async fn search_ids<S: Store>(store: &S, customer: CustomerId, q: &str) -> Vec<UserId> {
    let mut query = users_query(customer, PageStart::First, 100);
    query.search = Some(q.to_owned());
    ids(&store.users_of_customer(&query).await.expect("search"))
}

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
    u.link_to_customer(c.id(), keys(&["documents", "shop"]), false, at(4))
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

/// Names and texts written before input refused text-direction controls and invisible characters
/// (`A\u{202E}B`, a zero-width space) still load: a customer (its name and its partner's), a user
/// (both names) and a lock reason read back exactly.
pub async fn texts_stored_before_the_hidden_character_rule_still_load<S: Store>(store: Arc<S>) {
    let old = |raw: &str| CompanyName::from_stored(raw).expect("older rules");
    let mut record = customer("100000029", "Kunde GmbH").record().clone();
    record.name = old("Kunde \u{202E}HbmG");
    record.channel = ServiceChannel::Partner {
        name: old("\u{200B}Partner\u{2066}"),
    };
    let c = Customer::new(record);
    commit_ok(&*store, writes([Write::InsertCustomer(c.clone())])).await;
    let got = store.customer(c.id()).await.unwrap().expect("customer");
    assert_eq!(got.name(), c.name(), "company name");
    assert_eq!(got.record().channel, c.record().channel, "partner name");

    let person = |raw: &str| PersonName::from_stored(raw).expect("older rules");
    let mut u = employee(c.id(), "bidi@example.com", "Anna", "Alt");
    u.set_profile(
        person("A\u{202E}B"),
        person("\u{FEFF}Alt"),
        Language::De,
        at(4),
    );
    u.lock_with(
        Lock {
            by: ActorRef::user(UserId::from_uuid(new_uuid())),
            at: at(5),
            reason: Some(FreeText::from_stored("gesperrt \u{2067}x").unwrap()),
        },
        at(5),
    )
    .unwrap();
    commit_ok(&*store, writes([Write::InsertUser(u.clone())])).await;
    let got = reload_user(&*store, u.id()).await;
    assert_eq!(got.first_name().as_str(), "A\u{202E}B");
    assert_eq!(got.last_name().as_str(), "\u{FEFF}Alt");
    assert_eq!(
        got.lock().and_then(|l| l.reason.clone()),
        u.lock().and_then(|l| l.reason.clone()),
        "lock reason"
    );
}
