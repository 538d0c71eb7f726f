//! The checks. Each takes a fresh, empty store and panics with a message when the store breaks
//! the contract of the storage ports (see `portal_core::ports`). They are written against the
//! ports only, so they run unchanged on every adapter.
//!
//! One module per part of the storage contract; each lists its checks in a macro beside them,
//! and [`storage_contract!`](crate::storage_contract) expands every module's list. Every check is
//! re-exported here (`checks::customer_round_trips`).

pub mod atomicity;
pub mod audit_log;
pub mod customers;
pub mod housekeeping;
pub mod legacy;
pub mod oidc;
pub mod operations;
pub mod outbox;
pub mod passkeys;
pub mod second_factors;
pub mod sessions;
pub mod times;
pub mod users;
pub mod webhooks;

pub use atomicity::*;
pub use audit_log::*;
pub use customers::*;
pub use housekeeping::*;
pub use legacy::*;
pub use oidc::*;
pub use operations::*;
pub use outbox::*;
pub use passkeys::*;
pub use second_factors::*;
pub use sessions::*;
pub use times::*;
pub use users::*;
pub use webhooks::*;

use crate::Store;
use crate::fixtures::{commit_ok, customer, writes};
use portal_core::audit::AuditEntry;
use portal_core::ids::{CustomerId, UserId};
use portal_core::ports::{Commit, PageStart, StoreError, UserCursor, UserQuery, Write};
use portal_core::user::User;

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

async fn reload_user<S: Store>(store: &S, id: UserId) -> User {
    store
        .user(id)
        .await
        .expect("read user")
        .expect("user exists")
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

async fn queue<S: Store>(store: &S, mails: &[portal_core::mail::OutboxMail]) {
    let mut commit = Commit::new();
    for m in mails {
        commit.mail(m.clone());
    }
    commit_ok(store, commit).await;
}

#[cfg(test)]
mod tests {
    /// Every module of the suite, with its source.
    const MODULES: &[(&str, &str)] = &[
        ("atomicity", include_str!("atomicity.rs")),
        ("audit_log", include_str!("audit_log.rs")),
        ("customers", include_str!("customers.rs")),
        ("housekeeping", include_str!("housekeeping.rs")),
        ("legacy", include_str!("legacy.rs")),
        ("oidc", include_str!("oidc.rs")),
        ("operations", include_str!("operations.rs")),
        ("outbox", include_str!("outbox.rs")),
        ("passkeys", include_str!("passkeys.rs")),
        ("second_factors", include_str!("second_factors.rs")),
        ("sessions", include_str!("sessions.rs")),
        ("times", include_str!("times.rs")),
        ("users", include_str!("users.rs")),
        ("webhooks", include_str!("webhooks.rs")),
    ];

    /// The checks a module defines (`pub async fn`), in file order.
    fn defined(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .map(|l| &l[..l.find(['<', '(']).expect("a generic or a parameter list")])
            .collect()
    }

    /// The checks a module lists in its `__storage_contract_<module>!` macro, in order.
    fn listed<'a>(module: &str, source: &'a str) -> Vec<&'a str> {
        let head = format!("@tests $fixture; {module};");
        let start = source.find(&head).expect("the module's list") + head.len();
        let list = &source[start..];
        list[..list.find(");").expect("the end of the list")]
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect()
    }

    #[test]
    fn every_check_is_listed_beside_it_and_every_list_is_expanded() {
        let lib = include_str!("../lib.rs");
        let modules: Vec<&str> = include_str!("mod.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod "))
            .map(|l| l.trim_end_matches(';'))
            .collect();
        assert_eq!(
            modules,
            MODULES.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            "MODULES names every module of the suite"
        );
        let mut all = Vec::new();
        for (module, source) in MODULES {
            let defined = defined(source);
            assert!(!defined.is_empty(), "{module} defines no check");
            assert_eq!(
                listed(module, source),
                defined,
                "{module}: its macro lists exactly its checks, in file order"
            );
            assert!(
                lib.contains(&format!("$crate::__storage_contract_{module}!($fixture);")),
                "storage_contract! expands the list of {module}"
            );
            all.extend(defined);
        }
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "check names are unique across modules");
    }
}
