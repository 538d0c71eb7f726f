//! Property tests of the management rules against a small reference model.
//!
//! Each case generates a permission catalog, two customers with random entitlements, users of
//! every status, role and lock state (with random permissions), one operator, and a random
//! sequence of commands by random actors against random targets, addressed through either
//! customer's number. After every command it checks:
//!
//! - the outcome is exactly what the model predicts (R2 not-found vs R3 forbidden, R4, R5, state
//!   errors);
//! - R2: nothing outside the addressed customer changed, and reads return only its users;
//! - R5: a customer that had an active administrator still has one after an administrator's
//!   action;
//! - R11: no session of a locked or deleted user authenticates; unlock does not revive sessions;
//! - R1: for every live session and every catalog key, `may_access_area` equals
//!   active ∧ ¬locked ∧ entitled ∧ (admin ∨ holds);
//! - R4: stored permissions stay within catalog ∩ entitlements;
//! - R20: every successful state change writes exactly one audit entry, every failure and every
//!   no-op none, and the chains verify.

use adapters_memory::MemoryStore;
use portal_core::audit::{ActorRef, verify_chain};
use portal_core::config::PortalConfig;
use portal_core::customer::{Customer, CustomerRecord, ServiceChannel};
use portal_core::ids::{CustomerId, UserId};
use portal_core::password::PasswordHash;
use portal_core::permission::{
    GroupKey, LocalizedText, Permission, PermissionCatalog, PermissionGroup, PermissionKey,
    PermissionSet,
};
use portal_core::ports::{Commit, Committer, Queries, Write};
use portal_core::secret::SecretString;
use portal_core::service::{AdminError, Login, LoginOutcome, PageRequest};
use portal_core::session::ClientInfo;
use portal_core::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};
use portal_core::user::{AccountState, Lock, Role, User};
use portal_core::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use portal_core::{Actor, Deps, Portal};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

const PASSWORD: &str = "korrekt pferd batterie";
const NUMBERS: [&str; 2] = ["100000001", "100000002"];

// ---------------------------------------------------------------------------------------------
// Generated world
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    Invited,
    Pending,
    Active,
    Admin,
}

#[derive(Debug, Clone)]
struct UserSpec {
    customer: usize,
    kind: Spec,
    locked: bool,
    perms: Vec<bool>,
}

#[derive(Debug, Clone)]
struct WorldSpec {
    /// Group index per permission (None = no group).
    groups_of: Vec<Option<usize>>,
    entitled: [Vec<bool>; 2],
    users: Vec<UserSpec>,
}

#[derive(Debug, Clone)]
enum Op {
    Lock,
    Unlock,
    Delete,
    Activate,
    Demote,
    SetPermissions(Vec<bool>),
    GrantGroup(usize),
    RevokeGroup(usize),
    EndSessions,
    GetUser,
    ListUsers,
    UserAudit,
    Login,
}

#[derive(Debug, Clone)]
struct Cmd {
    /// Index into the actors: users, then the operator.
    actor: usize,
    /// Index into the users.
    target: usize,
    /// Address the target's own customer (true) or the other one.
    own_customer: bool,
    op: Op,
}

fn world_spec() -> impl Strategy<Value = WorldSpec> {
    (2usize..=6).prop_flat_map(|n| {
        let groups = prop::collection::vec(prop::option::of(0usize..2), n);
        let entitled = [
            prop::collection::vec(prop::bool::weighted(0.7), n),
            prop::collection::vec(prop::bool::weighted(0.7), n),
        ];
        let user = (
            0usize..2,
            prop_oneof![
                1 => Just(Spec::Invited),
                1 => Just(Spec::Pending),
                3 => Just(Spec::Active),
                3 => Just(Spec::Admin),
            ],
            prop::bool::weighted(0.2),
            prop::collection::vec(any::<bool>(), n),
        )
            .prop_map(|(customer, kind, locked, perms)| UserSpec {
                customer,
                kind,
                locked,
                perms,
            });
        (groups, entitled, prop::collection::vec(user, 2..6)).prop_map(
            |(groups_of, entitled, users)| WorldSpec {
                groups_of,
                entitled,
                users,
            },
        )
    })
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Lock),
        2 => Just(Op::Unlock),
        1 => Just(Op::Delete),
        2 => Just(Op::Activate),
        2 => Just(Op::Demote),
        3 => prop::collection::vec(any::<bool>(), n).prop_map(Op::SetPermissions),
        2 => (0usize..2).prop_map(Op::GrantGroup),
        2 => (0usize..2).prop_map(Op::RevokeGroup),
        1 => Just(Op::EndSessions),
        1 => Just(Op::GetUser),
        1 => Just(Op::ListUsers),
        1 => Just(Op::UserAudit),
        4 => Just(Op::Login),
    ]
}

fn scenario() -> impl Strategy<Value = (WorldSpec, Vec<Cmd>)> {
    world_spec().prop_flat_map(|w| {
        let n = w.groups_of.len();
        let users = w.users.len();
        let cmd = (0..=users, 0..users, prop::bool::weighted(0.8), op(n)).prop_map(
            |(actor, target, own_customer, op)| Cmd {
                actor,
                target,
                own_customer,
                op,
            },
        );
        (Just(w), prop::collection::vec(cmd, 1..30))
    })
}

// ---------------------------------------------------------------------------------------------
// Reference model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct MUser {
    customer: usize,
    admin: bool,
    state: AccountState,
    locked: bool,
    perms: BTreeSet<usize>,
}

impl MUser {
    fn active(&self) -> bool {
        self.state == AccountState::Active && !self.locked
    }
    fn active_admin(&self) -> bool {
        self.admin && self.active()
    }
    fn can_log_in(&self) -> bool {
        !self.locked
            && matches!(
                self.state,
                AccountState::Active | AccountState::PendingActivation
            )
    }
}

#[derive(Debug, Clone)]
struct Model {
    users: Vec<Option<MUser>>,
    entitled: [BTreeSet<usize>; 2],
    groups_of: Vec<Option<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok { changes: bool },
    NotFound,
    Forbidden,
    WrongState,
    LastAdmin,
    NotGrantable,
    UnknownGroup,
}

enum Authority {
    Operator,
    Admin,
}

impl Model {
    fn members(&self, g: usize) -> BTreeSet<usize> {
        (0..self.groups_of.len())
            .filter(|&p| self.groups_of[p] == Some(g))
            .collect()
    }

    fn group_exists(&self, g: usize) -> bool {
        !self.members(g).is_empty()
    }

    fn other_active_admins(&self, customer: usize, except: usize) -> usize {
        self.users
            .iter()
            .enumerate()
            .filter(|(i, u)| {
                *i != except
                    && u.as_ref()
                        .is_some_and(|u| u.customer == customer && u.active_admin())
            })
            .count()
    }

    /// Predicts the outcome of a command; `actor == users.len()` is the operator.
    fn predict(&self, cmd: &Cmd, addressed: usize) -> Outcome {
        // The group is resolved against the catalog before anything else (it reveals nothing).
        if let Op::GrantGroup(g) | Op::RevokeGroup(g) = cmd.op
            && !self.group_exists(g)
        {
            return Outcome::UnknownGroup;
        }
        let authority = if cmd.actor == self.users.len() {
            Authority::Operator
        } else {
            match &self.users[cmd.actor] {
                None => return Outcome::NotFound,
                Some(a) if a.customer == addressed && a.active_admin() => Authority::Admin,
                Some(a) if a.customer == addressed => return Outcome::Forbidden,
                Some(_) => return Outcome::NotFound,
            }
        };
        if let Op::ListUsers = cmd.op {
            return Outcome::Ok { changes: false };
        }
        let Some(t) = self.users[cmd.target]
            .as_ref()
            .filter(|t| t.customer == addressed)
        else {
            return Outcome::NotFound;
        };
        let r5 = |after_admin: bool| -> bool {
            matches!(authority, Authority::Admin)
                && t.active_admin()
                && !after_admin
                && self.other_active_admins(addressed, cmd.target) == 0
        };
        match &cmd.op {
            Op::GetUser | Op::UserAudit | Op::ListUsers => Outcome::Ok { changes: false },
            Op::Login => unreachable!("login is not a management command"),
            Op::EndSessions => Outcome::Ok { changes: true },
            Op::Lock if t.locked => Outcome::WrongState,
            Op::Lock | Op::Delete if r5(false) => Outcome::LastAdmin,
            Op::Lock | Op::Delete => Outcome::Ok { changes: true },
            Op::Unlock if !t.locked => Outcome::WrongState,
            Op::Unlock => Outcome::Ok { changes: true },
            Op::Activate if t.state != AccountState::PendingActivation || t.locked => {
                Outcome::WrongState
            }
            Op::Activate => Outcome::Ok { changes: true },
            Op::Demote if !t.admin => Outcome::WrongState,
            Op::Demote if r5(false) => Outcome::LastAdmin,
            Op::Demote => Outcome::Ok { changes: true },
            Op::SetPermissions(bits) => {
                let wanted = bit_set(bits);
                if !wanted.is_subset(&self.entitled[addressed]) {
                    Outcome::NotGrantable
                } else {
                    Outcome::Ok {
                        changes: wanted != t.perms,
                    }
                }
            }
            Op::GrantGroup(g) => {
                let add: BTreeSet<usize> = self
                    .members(*g)
                    .intersection(&self.entitled[addressed])
                    .copied()
                    .collect();
                Outcome::Ok {
                    changes: !add.is_subset(&t.perms),
                }
            }
            Op::RevokeGroup(g) => Outcome::Ok {
                changes: !self.members(*g).is_disjoint(&t.perms),
            },
        }
    }

    fn apply(&mut self, cmd: &Cmd, addressed: usize) {
        if matches!(
            cmd.op,
            Op::GetUser | Op::ListUsers | Op::UserAudit | Op::EndSessions | Op::Login
        ) {
            return;
        }
        let entitled = self.entitled[addressed].clone();
        let members = match cmd.op {
            Op::GrantGroup(g) | Op::RevokeGroup(g) => self.members(g),
            _ => BTreeSet::new(),
        };
        let slot = &mut self.users[cmd.target];
        let t = slot.as_mut().expect("predicted ok");
        match &cmd.op {
            Op::Lock => t.locked = true,
            Op::Unlock => t.locked = false,
            Op::Delete => *slot = None,
            Op::Activate => t.state = AccountState::Active,
            Op::Demote => t.admin = false,
            Op::SetPermissions(bits) => t.perms = bit_set(bits),
            Op::GrantGroup(_) => {
                t.perms = t
                    .perms
                    .union(&members.intersection(&entitled).copied().collect())
                    .copied()
                    .collect();
            }
            Op::RevokeGroup(_) => t.perms = t.perms.difference(&members).copied().collect(),
            _ => {}
        }
    }

    fn may_access(&self, user: usize, area: usize) -> bool {
        self.users[user].as_ref().is_some_and(|u| {
            u.active()
                && self.entitled[u.customer].contains(&area)
                && (u.admin || u.perms.contains(&area))
        })
    }
}

fn bit_set(bits: &[bool]) -> BTreeSet<usize> {
    bits.iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// System under test
// ---------------------------------------------------------------------------------------------

struct Sut {
    portal: Portal,
    store: Arc<MemoryStore>,
    keys: Vec<PermissionKey>,
    groups: Vec<GroupKey>,
    customers: [CustomerId; 2],
    users: Vec<UserId>,
    emails: Vec<String>,
    operator: UserId,
    /// Session tokens per user, with whether the model thinks each is alive.
    sessions: BTreeMap<usize, Vec<(String, bool)>>,
}

fn catalog(groups_of: &[Option<usize>]) -> (PermissionCatalog, Vec<PermissionKey>, Vec<GroupKey>) {
    let keys: Vec<PermissionKey> = (0..groups_of.len())
        .map(|i| PermissionKey::parse(&format!("p{i}")).unwrap())
        .collect();
    let groups: Vec<GroupKey> = (0..2)
        .map(|g| GroupKey::parse(&format!("g{g}")).unwrap())
        .collect();
    let text = |s: &str| LocalizedText::new(s, s);
    let permissions = keys
        .iter()
        .zip(groups_of)
        .map(|(k, g)| Permission {
            key: k.clone(),
            label: text(k.as_str()),
            description: text(k.as_str()),
            group: g.map(|g| groups[g].clone()),
        })
        .collect();
    let used: Vec<PermissionGroup> = (0..2)
        .filter(|g| groups_of.contains(&Some(*g)))
        .map(|g| PermissionGroup {
            key: groups[g].clone(),
            label: text(groups[g].as_str()),
            description: text(groups[g].as_str()),
        })
        .collect();
    (
        PermissionCatalog::new(permissions, used).unwrap(),
        keys,
        groups,
    )
}

/// Login throttling has its own tests and properties; here logins of locked users must keep
/// failing the same way however often they are tried.
fn unthrottled() -> PortalConfig {
    use portal_core::throttle::{LoginProtection, ThrottlePolicy};
    PortalConfig {
        login_protection: LoginProtection {
            account: ThrottlePolicy {
                free_failures: u32::MAX,
                ..ThrottlePolicy::ACCOUNT
            },
            address: ThrottlePolicy {
                free_failures: u32::MAX,
                ..ThrottlePolicy::ADDRESS
            },
            ..LoginProtection::default()
        },
        ..PortalConfig::default()
    }
}

fn set_of(keys: &[PermissionKey], bits: &BTreeSet<usize>) -> PermissionSet {
    bits.iter().map(|&i| keys[i].clone()).collect()
}

async fn build(spec: &WorldSpec) -> (Sut, Model) {
    let (catalog, keys, groups) = catalog(&spec.groups_of);
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new());
    let hasher = fast_hasher(3);
    let hash: PasswordHash = hasher.hash_blocking(PASSWORD).unwrap();
    let portal = Portal::new(
        Deps {
            queries: store.clone(),
            committer: store.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(9)),
            hasher: Arc::new(hasher),
            legacy: Arc::new(portal_core::ports::NoLegacyDirectory),
        },
        unthrottled(),
        catalog,
    )
    .unwrap();
    let now = portal_core::ports::Clock::now(&*clock);
    let entitled = [bit_set(&spec.entitled[0]), bit_set(&spec.entitled[1])];
    let mut commit = Commit::new();
    let mut customers = [CustomerId::from_uuid(Uuid::nil()); 2];
    for c in 0..2 {
        customers[c] = CustomerId::from_uuid(Uuid::from_u128(100 + c as u128));
        commit.write(Write::InsertCustomer(Customer::new(CustomerRecord {
            id: customers[c],
            number: CustomerNumber::parse(NUMBERS[c]).unwrap(),
            name: CompanyName::parse(&format!("Firma {c}")).unwrap(),
            affiliations: BTreeSet::new(),
            channel: ServiceChannel::Direct,
            entitlements: set_of(&keys, &entitled[c]),
            default_permissions: PermissionSet::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        })));
    }
    let mut model_users = Vec::new();
    let mut users = Vec::new();
    let mut emails = Vec::new();
    for (i, u) in spec.users.iter().enumerate() {
        let id = UserId::from_uuid(Uuid::from_u128(1_000 + i as u128));
        let address = format!("u{i}@example.com");
        let perms: BTreeSet<usize> = bit_set(&u.perms)
            .intersection(&entitled[u.customer])
            .copied()
            .collect();
        let first = PersonName::parse("Uma").unwrap();
        let last = PersonName::parse(&format!("Nutzer{i}")).unwrap();
        let email = EmailAddress::parse(&address).unwrap();
        let mut user = match u.kind {
            Spec::Invited => User::new_invited(
                id,
                email,
                first,
                last,
                Language::De,
                Role::Employee,
                Some(customers[u.customer]),
                set_of(&keys, &perms),
                now,
            ),
            _ => {
                let mut user = User::new_pending(id, email, first, last, Language::De, now);
                user.complete_registration(hash.clone(), now).unwrap();
                user.link_to_customer(
                    customers[u.customer],
                    set_of(&keys, &perms),
                    u.kind == Spec::Pending,
                    now,
                )
                .unwrap();
                if u.kind == Spec::Admin {
                    user.promote(now).unwrap();
                }
                user
            }
        };
        if u.locked {
            user.lock_with(
                Lock {
                    by: ActorRef::system(),
                    at: now,
                    reason: None,
                },
                now,
            )
            .unwrap();
        }
        model_users.push(Some(MUser {
            customer: u.customer,
            admin: u.kind == Spec::Admin,
            state: user.state(),
            locked: u.locked,
            perms,
        }));
        commit.write(Write::InsertUser(user));
        users.push(id);
        emails.push(address);
    }
    let operator = UserId::from_uuid(Uuid::from_u128(999));
    let mut op_user = User::new_invited(
        operator,
        EmailAddress::parse("operator@vendor.example").unwrap(),
        PersonName::parse("Otto").unwrap(),
        PersonName::parse("Operator").unwrap(),
        Language::De,
        Role::Operator,
        None,
        PermissionSet::new(),
        now,
    );
    op_user.complete_registration(hash, now).unwrap();
    commit.write(Write::InsertUser(op_user));
    store.commit(commit).await.unwrap();
    let sut = Sut {
        portal,
        store,
        keys,
        groups,
        customers,
        users,
        emails,
        operator,
        sessions: BTreeMap::new(),
    };
    let model = Model {
        users: model_users,
        entitled,
        groups_of: spec.groups_of.clone(),
    };
    (sut, model)
}

fn classify(r: Result<bool, AdminError>) -> Outcome {
    match r {
        Ok(changes) => Outcome::Ok { changes },
        Err(AdminError::NotFound) => Outcome::NotFound,
        Err(AdminError::Forbidden) => Outcome::Forbidden,
        Err(AdminError::WrongState(_)) => Outcome::WrongState,
        Err(AdminError::LastAdmin) => Outcome::LastAdmin,
        Err(AdminError::NotGrantable(_)) => Outcome::NotGrantable,
        Err(AdminError::UnknownGroup) => Outcome::UnknownGroup,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Everything stored about one customer: its users' records and its audit chain length.
async fn snapshot(sut: &Sut, c: usize) -> (Vec<Option<portal_core::user::UserRecord>>, usize) {
    let mut users = Vec::new();
    for id in &sut.users {
        let u = sut.store.user(*id).await.unwrap();
        users.push(
            u.filter(|u| u.customer_id() == Some(sut.customers[c]))
                .map(|u| u.record().clone()),
        );
    }
    (users, sut.store.audit_entries(Some(sut.customers[c])).len())
}

impl Sut {
    fn actor(&self, i: usize) -> Actor {
        if i == self.users.len() {
            Actor::user(self.operator)
        } else {
            Actor::user(self.users[i])
        }
    }

    async fn run(&self, cmd: &Cmd, addressed: usize) -> Result<bool, AdminError> {
        let p = &self.portal;
        let actor = self.actor(cmd.actor);
        let number = CustomerNumber::parse(NUMBERS[addressed]).unwrap();
        let target = self.users[cmd.target];
        let before = self.store.user(target).await.unwrap();
        let changed_perms =
            |u: &User| Some(u.permissions()) != before.as_ref().map(User::permissions);
        match &cmd.op {
            Op::Lock => p
                .lock_user(&actor, &number, target, None)
                .await
                .map(|_| true),
            Op::Unlock => p.unlock_user(&actor, &number, target).await.map(|_| true),
            Op::Delete => p.delete_user(&actor, &number, target).await.map(|()| true),
            Op::Activate => p.activate_user(&actor, &number, target).await.map(|_| true),
            Op::Demote => p
                .revoke_admin_rights(&actor, &number, target)
                .await
                .map(|_| true),
            Op::EndSessions => p
                .end_user_sessions(&actor, &number, target)
                .await
                .map(|()| true),
            Op::SetPermissions(bits) => {
                let set = set_of(&self.keys, &bit_set(bits));
                p.set_permissions(&actor, &number, target, &set)
                    .await
                    .map(|u| changed_perms(&u))
            }
            Op::GrantGroup(g) => p
                .grant_group(&actor, &number, target, &self.groups[*g])
                .await
                .map(|u| changed_perms(&u)),
            Op::RevokeGroup(g) => p
                .revoke_group(&actor, &number, target, &self.groups[*g])
                .await
                .map(|u| changed_perms(&u)),
            Op::GetUser => {
                let u = p.get_user(&actor, &number, target).await?;
                assert_eq!(
                    u.customer_id(),
                    Some(self.customers[addressed]),
                    "R2: read leaked"
                );
                Ok(false)
            }
            Op::ListUsers => {
                let page = p
                    .list_users(
                        &actor,
                        &number,
                        None,
                        &PageRequest {
                            size: Some(100),
                            ..PageRequest::default()
                        },
                    )
                    .await?;
                for u in &page.items {
                    assert_eq!(
                        u.customer_id(),
                        Some(self.customers[addressed]),
                        "R2: list leaked"
                    );
                }
                Ok(false)
            }
            Op::UserAudit => {
                let page = p
                    .user_audit(&actor, &number, target, &Default::default(), Language::De)
                    .await
                    .map_err(|e| match e {
                        portal_core::service::AuditError::NotFound => AdminError::NotFound,
                        portal_core::service::AuditError::Forbidden => AdminError::Forbidden,
                        other => panic!("unexpected {other:?}"),
                    })?;
                for v in &page.items {
                    assert_eq!(
                        v.entry.record.customer,
                        Some(self.customers[addressed]),
                        "R2: log leaked"
                    );
                    assert_eq!(v.entry.record.subject, Some(target));
                }
                Ok(false)
            }
            Op::Login => unreachable!(),
        }
    }
}

async fn check_case(spec: WorldSpec, cmds: Vec<Cmd>) -> Result<(), TestCaseError> {
    let (mut sut, mut model) = build(&spec).await;
    for cmd in &cmds {
        let audit_before = sut.store.audit_len();
        if let Op::Login = cmd.op {
            let i = cmd.target;
            let r = sut
                .portal
                .login(Login {
                    email: sut.emails[i].clone(),
                    password: SecretString::new(PASSWORD),
                    client: ClientInfo::default(),
                })
                .await;
            let expected = model.users[i].as_ref().is_some_and(MUser::can_log_in);
            prop_assert_eq!(r.is_ok(), expected, "login of {:?}", model.users[i]);
            if let Ok(LoginOutcome::Authenticated(s)) = r {
                sut.sessions
                    .entry(i)
                    .or_default()
                    .push((s.token.expose().to_owned(), true));
            }
            let exists = model.users[i].is_some();
            prop_assert_eq!(
                sut.store.audit_len() - audit_before,
                usize::from(exists),
                "R20 login"
            );
        } else {
            let target_customer = spec.users[cmd.target].customer;
            let addressed = if cmd.own_customer {
                target_customer
            } else {
                1 - target_customer
            };
            let predicted = model.predict(cmd, addressed);
            let other = 1 - addressed;
            let other_before = snapshot(&sut, other).await;
            let had_admin: Vec<bool> = (0..2)
                .map(|c| {
                    model
                        .users
                        .iter()
                        .flatten()
                        .any(|u| u.customer == c && u.active_admin())
                })
                .collect();
            let actual = classify(sut.run(cmd, addressed).await);
            prop_assert_eq!(actual, predicted, "cmd {:?}", cmd);
            // R20: one entry per state change, none otherwise.
            let delta = sut.store.audit_len() - audit_before;
            let expected_delta = usize::from(matches!(actual, Outcome::Ok { changes: true }));
            prop_assert_eq!(delta, expected_delta, "R20 for {:?}", cmd);
            // R2: the other customer is untouched.
            prop_assert_eq!(
                snapshot(&sut, other).await,
                other_before,
                "R2 for {:?}",
                cmd
            );
            if let Outcome::Ok { .. } = actual {
                model.apply(cmd, addressed);
                if matches!(cmd.op, Op::Lock | Op::Delete | Op::EndSessions) {
                    for s in sut.sessions.entry(cmd.target).or_default() {
                        s.1 = false;
                    }
                }
            }
            // R5: an administrator's action never leaves a customer without an active admin.
            let by_admin = cmd.actor < sut.users.len();
            for (c, had) in had_admin.iter().enumerate() {
                let has_admin = model
                    .users
                    .iter()
                    .flatten()
                    .any(|u| u.customer == c && u.active_admin());
                if by_admin && *had {
                    prop_assert!(
                        has_admin,
                        "R5: customer {} lost its last admin by {:?}",
                        c,
                        cmd
                    );
                }
            }
        }
        // Model and store agree on every user.
        for (i, id) in sut.users.iter().enumerate() {
            let stored = sut.store.user(*id).await.unwrap();
            match (&model.users[i], stored) {
                (None, None) => {}
                (Some(m), Some(u)) => {
                    prop_assert_eq!(m.locked, u.lock().is_some());
                    prop_assert_eq!(m.admin, u.role() == Role::Administrator);
                    prop_assert_eq!(m.state, u.state());
                    prop_assert_eq!(&set_of(&sut.keys, &m.perms), u.permissions());
                    // R4: within catalog and entitlements.
                    let c = if Some(sut.customers[0]) == u.customer_id() {
                        0
                    } else {
                        1
                    };
                    prop_assert!(
                        u.permissions()
                            .is_subset(&set_of(&sut.keys, &model.entitled[c])),
                        "R4"
                    );
                }
                (m, u) => prop_assert!(false, "model {:?} vs store {:?}", m, u.map(|u| u.status())),
            }
        }
        // R11 and R1 for every session the test holds.
        for (&i, tokens) in &sut.sessions {
            for (token, alive) in tokens {
                let auth = sut.portal.authenticate(token).await;
                let should = *alive && model.users[i].as_ref().is_some_and(MUser::can_log_in);
                prop_assert_eq!(auth.is_ok(), should, "R11 session of {:?}", model.users[i]);
                if let Ok(p) = auth {
                    for (k, key) in sut.keys.iter().enumerate() {
                        prop_assert_eq!(
                            sut.portal.may_access_area(&p, key),
                            model.may_access(i, k),
                            "R1 user {:?} area {}",
                            model.users[i],
                            k
                        );
                    }
                }
            }
        }
    }
    for c in [None, Some(sut.customers[0]), Some(sut.customers[1])] {
        prop_assert_eq!(verify_chain(&sut.store.audit_entries(c)), Ok(()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn management_commands_follow_the_rules(case in scenario()) {
        let (spec, cmds) = case;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check_case(spec, cmds))?;
    }
}
