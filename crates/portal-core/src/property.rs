//! A property-testing kit for the management rules (feature `proptest`).
//!
//! It generates worlds — a permission catalog, two customers with random entitlements, users in
//! every status, role and lock state with random permissions, and one operator — and random
//! command sequences by random actors against random targets, addressed through either
//! customer's number. [`check`] runs a [`Scenario`] through a real [`Portal`] on *your* store and
//! compares every outcome with a small reference [`Model`] of the rules. After every command it
//! asserts:
//!
//! - the outcome is exactly what the model predicts (R2 not-found vs R3 forbidden, R4, R5, state
//!   errors);
//! - R2: nothing outside the addressed customer changed, and reads return only its data;
//! - R5: a customer that had an active administrator still has one after an administrator's
//!   action;
//! - R11: no session of a locked or deleted user authenticates, and unlock revives none;
//! - R1: for every live session and every catalog key, `may_access_area` equals
//!   active ∧ ¬locked ∧ entitled ∧ (admin ∨ holds);
//! - R4: stored permissions stay within catalog ∩ entitlements;
//! - R20: every successful state change writes exactly one audit entry, every failure and every
//!   no-op none, and the chains verify;
//! - your own [`ExtraRule`]s, if you pass any: they see the stored users, the model and the
//!   real access of every live session ([`Step::access`], what `Portal::may_access_area` — and
//!   so `adapters-http`'s guard — answers), and may ask the portal itself ([`ExtraRule::probe`]).
//!
//! A failure names its step (`step 0 of 1 (u0 logs in): R1: …`) and shrinks to a minimal
//! scenario ([`shrink_candidates`]), printed compactly: permission names, one line per user and
//! per step, no catalog texts. Run the kit with [`config`]: proptest's default stops shrinking
//! after 4 × `cases` steps.
//!
//! The generators are plain proptest strategies, usable on their own: [`catalogs`],
//! [`customers`] (entitlements and service channel), [`permission_sets`] and [`permission_flags`],
//! [`users`] in every status, role and lock state, [`actors`] (users and the operator), [`ops`]
//! and [`commands`]; [`worlds`] and [`scenarios`] / [`scenarios_for`] compose them.
//!
//! Portal's own property tests are built from this kit: on the in-memory store
//! (`crates/portal-core/tests/properties.rs`) and on the SQL store, SQLite and Postgres
//! (`crates/adapters-postgres/tests/property.rs`).
//!
//! ```
//! use portal_core::property::{self, NoExtraRule};
//! use proptest::test_runner::TestRunner;
//! use std::sync::Arc;
//!
//! let mut runner = TestRunner::new(property::config(4));
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! runner
//!     .run(&property::scenarios(), |scenario| {
//!         // Any `Queries + Committer` works; here a fresh in-memory store per case.
//!         let store = Arc::new(adapters_memory::MemoryStore::new());
//!         rt.block_on(property::check(scenario, store, &NoExtraRule))
//!     })
//!     .unwrap();
//! ```

use crate::audit::{ActorRef, AuditEntry, verify_chain};
use crate::config::PortalConfig;
use crate::customer::{Customer, CustomerRecord, ServiceChannel};
use crate::ids::{CustomerId, UserId};
use crate::permission::{
    GroupKey, LocalizedText, Permission, PermissionCatalog, PermissionGroup, PermissionKey,
    PermissionSet,
};
use crate::ports::{Commit, Committer, NoLegacyDirectory, Queries, Write};
use crate::secret::SecretString;
use crate::service::{AdminError, AuditError, Login, LoginOutcome, PageRequest};
use crate::session::ClientInfo;
use crate::testing::{ManualClock, SeededRandom, SequentialIds, fast_hasher};
use crate::throttle::{LoginProtection, ThrottlePolicy};
use crate::user::{AccountState, Lock, Role, User, UserRecord};
use crate::values::{CompanyName, CustomerNumber, EmailAddress, Language, PersonName};
use crate::{Actor, Deps, Portal};
use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestCaseError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

const PASSWORD: &str = "korrekt pferd batterie";
/// The numbers of the two generated customers.
pub const CUSTOMER_NUMBERS: [&str; 2] = ["100000001", "100000002"];

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// What a generated user is, before the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// Invited, registration not finished.
    Invited,
    /// Linked to a customer with an admin, waiting for activation.
    PendingActivation,
    /// An active employee.
    Employee,
    /// An active administrator.
    Administrator,
}

/// A generated user.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Customer 0 or 1.
    pub customer: usize,
    /// Status and role.
    pub kind: UserKind,
    /// Locked on top.
    pub locked: bool,
    /// Permissions, as flags over the catalog (clipped to the customer's entitlements).
    pub permissions: Vec<bool>,
}

/// A generated customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSpec {
    /// Entitlements, as flags over the catalog.
    pub entitled: Vec<bool>,
    /// Served by the vendor or by a partner.
    pub channel: ServiceChannel,
}

impl CustomerSpec {
    /// The entitlements as catalog keys (`catalog` is the one the flags were generated over).
    #[must_use]
    pub fn entitlements(&self, catalog: &PermissionCatalog) -> PermissionSet {
        let keys: Vec<PermissionKey> = catalog
            .permissions()
            .iter()
            .map(|p| p.key.clone())
            .collect();
        set_from_flags(&keys, &self.entitled)
    }
}

/// A generated world: the catalog, the two customers, the users. Its `Debug` is compact
/// (permission names, no catalog texts).
#[derive(Clone)]
pub struct WorldSpec {
    /// The permission catalog.
    pub catalog: PermissionCatalog,
    /// Customer 0 and 1.
    pub customers: [CustomerSpec; 2],
    /// The users.
    pub users: Vec<UserSpec>,
}

/// Who runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorSpec {
    /// Generated user `n` (an index into [`WorldSpec::users`]), whatever their status, role,
    /// lock or customer — or deleted meanwhile.
    User(usize),
    /// The operator (vendor staff).
    Operator,
}

/// A management command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// "Benutzer sperren".
    Lock,
    /// "Benutzer entsperren".
    Unlock,
    /// "Benutzer löschen".
    Delete,
    /// Activate a waiting user.
    Activate,
    /// Take admin rights away.
    Demote,
    /// Replace the permissions (flags over the catalog).
    SetPermissions(Vec<bool>),
    /// "Alle anhaken" for group index `n` of the catalog (an index past the groups is unknown).
    GrantGroup(usize),
    /// "Alle abhaken".
    RevokeGroup(usize),
    /// End the target's sessions.
    EndSessions,
    /// Read the target.
    GetUser,
    /// Read the user table.
    ListUsers,
    /// Read the target's change log.
    UserAudit,
    /// The target logs in (keeps a session to check R1 and R11 on).
    Login,
}

/// One step: who does what to whom, through which customer number.
#[derive(Debug, Clone)]
pub struct Cmd {
    /// Who.
    pub actor: ActorSpec,
    /// Index into the users.
    pub target: usize,
    /// Address the target's own customer (`true`) or the other one.
    pub own_customer: bool,
    /// What.
    pub op: Op,
}

/// A world and a command sequence. Its `Debug` is compact: the world in a few lines, then one
/// numbered line per step.
#[derive(Clone)]
pub struct Scenario {
    /// The world.
    pub world: WorldSpec,
    /// The commands, in order.
    pub commands: Vec<Cmd>,
}

fn text(s: &str) -> LocalizedText {
    LocalizedText::new(s, s)
}

/// Catalogs of 2–6 permissions `p0…`, some in up to two groups `g0`, `g1`.
pub fn catalogs() -> impl Strategy<Value = PermissionCatalog> {
    prop::collection::vec(prop::option::of(0usize..2), 2..=6)
        .prop_map(|groups_of| generated_catalog(&groups_of))
}

/// The generated catalog whose permission `i` is `p{i}`, in group `g{groups_of[i]}` if any.
fn generated_catalog(groups_of: &[Option<usize>]) -> PermissionCatalog {
    let groups: Vec<GroupKey> = (0..2)
        .map(|g| GroupKey::parse(&format!("g{g}")).expect("valid key"))
        .collect();
    let permissions = groups_of
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let key = PermissionKey::parse(&format!("p{i}")).expect("valid key");
            Permission {
                label: text(key.as_str()),
                description: text(key.as_str()),
                key,
                group: g.map(|g| groups[g].clone()),
            }
        })
        .collect();
    let used = (0..2)
        .filter(|g| groups_of.contains(&Some(*g)))
        .map(|g| PermissionGroup {
            key: groups[g].clone(),
            label: text(groups[g].as_str()),
            description: text(groups[g].as_str()),
        })
        .collect();
    PermissionCatalog::new(permissions, used).expect("generated catalogs are consistent")
}

/// The group index (`g0` = 0, `g1` = 1) of each permission of a generated catalog.
fn generated_groups(catalog: &PermissionCatalog) -> Vec<Option<usize>> {
    catalog
        .permissions()
        .iter()
        .map(|p| p.group.as_ref().map(|g| usize::from(g.as_str() == "g1")))
        .collect()
}

/// Flags over a catalog of `n` permissions.
pub fn permission_flags(n: usize) -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(any::<bool>(), n)
}

/// A permission set drawn from a catalog.
pub fn permission_sets(catalog: &PermissionCatalog) -> impl Strategy<Value = PermissionSet> {
    let keys: Vec<PermissionKey> = catalog
        .permissions()
        .iter()
        .map(|p| p.key.clone())
        .collect();
    permission_flags(keys.len()).prop_map(move |flags| set_from_flags(&keys, &flags))
}

/// Customers over a catalog of `n_permissions` permissions: each permission entitled with
/// probability 0.7, served directly or (one in four) by a partner.
///
/// ```
/// use portal_core::permission::PermissionCatalog;
/// use portal_core::property;
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let catalog = PermissionCatalog::default_catalog();
/// let mut runner = TestRunner::deterministic();
/// let spec = property::customers(catalog.permissions().len())
///     .new_tree(&mut runner)
///     .unwrap()
///     .current();
/// // Whatever was drawn, the entitlements are catalog keys.
/// assert!(spec.entitlements(&catalog).iter().all(|k| catalog.contains(k)));
/// ```
pub fn customers(n_permissions: usize) -> impl Strategy<Value = CustomerSpec> {
    (
        prop::collection::vec(prop::bool::weighted(0.7), n_permissions),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(entitled, partner)| CustomerSpec {
            entitled,
            channel: if partner {
                ServiceChannel::Partner {
                    name: CompanyName::parse("Partner GmbH").expect("valid name"),
                }
            } else {
                ServiceChannel::Direct
            },
        })
}

/// The actors of a world with `users` users: each generated user, or the operator, alike likely.
/// Users act whatever their status, role, lock or customer, so commands by members who may not
/// (R3), by users of the other customer (R2) and by locked or deleted users are generated too.
///
/// ```
/// use portal_core::property::{self, ActorSpec};
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
///
/// let mut runner = TestRunner::deterministic();
/// for _ in 0..20 {
///     let a = property::actors(3).new_tree(&mut runner).unwrap().current();
///     assert!(matches!(a, ActorSpec::Operator | ActorSpec::User(0..=2)));
/// }
/// ```
pub fn actors(users: usize) -> impl Strategy<Value = ActorSpec> {
    (0..=users).prop_map(move |i| {
        if i == users {
            ActorSpec::Operator
        } else {
            ActorSpec::User(i)
        }
    })
}

/// Users in every status and role, locked or not, of customer 0 or 1.
pub fn users(n_permissions: usize) -> impl Strategy<Value = UserSpec> {
    (
        0usize..2,
        prop_oneof![
            1 => Just(UserKind::Invited),
            1 => Just(UserKind::PendingActivation),
            3 => Just(UserKind::Employee),
            3 => Just(UserKind::Administrator),
        ],
        prop::bool::weighted(0.2),
        permission_flags(n_permissions),
    )
        .prop_map(|(customer, kind, locked, permissions)| UserSpec {
            customer,
            kind,
            locked,
            permissions,
        })
}

/// Worlds over a given catalog: two [`customers`], 2–5 [`users`].
pub fn worlds(catalog: PermissionCatalog) -> impl Strategy<Value = WorldSpec> {
    let n = catalog.permissions().len();
    (
        [customers(n), customers(n)],
        prop::collection::vec(users(n), 2..6),
    )
        .prop_map(move |(customers, users)| WorldSpec {
            catalog: catalog.clone(),
            customers,
            users,
        })
}

/// Management operations over a catalog of `n` permissions.
pub fn ops(n_permissions: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Lock),
        2 => Just(Op::Unlock),
        1 => Just(Op::Delete),
        2 => Just(Op::Activate),
        2 => Just(Op::Demote),
        3 => permission_flags(n_permissions).prop_map(Op::SetPermissions),
        2 => (0usize..3).prop_map(Op::GrantGroup),
        2 => (0usize..3).prop_map(Op::RevokeGroup),
        1 => Just(Op::EndSessions),
        1 => Just(Op::GetUser),
        1 => Just(Op::ListUsers),
        1 => Just(Op::UserAudit),
        4 => Just(Op::Login),
    ]
}

/// Command sequences (1–29 steps) for a world with `users` users: random [`actors`] run random
/// [`ops`] on random targets, mostly through the target's own customer number.
pub fn commands(users: usize, n_permissions: usize) -> impl Strategy<Value = Vec<Cmd>> {
    let cmd = (
        actors(users),
        0..users,
        prop::bool::weighted(0.8),
        ops(n_permissions),
    )
        .prop_map(|(actor, target, own_customer, op)| Cmd {
            actor,
            target,
            own_customer,
            op,
        });
    prop::collection::vec(cmd, 1..30)
}

/// The most permissions a generated catalog has ([`catalogs`]).
pub const MAX_GENERATED_PERMISSIONS: usize = 6;

/// One command as drawn, its actor and target still indices to resolve against the world's
/// users. Drawn independently of the world, so that shrinking the world (fewer users, fewer
/// permissions) keeps the commands and shrinking the commands keeps the world: no
/// `prop_flat_map`, whose regenerated inner values undo what was shrunk.
#[derive(Debug, Clone)]
struct RawCmd {
    actor: prop::sample::Index,
    target: prop::sample::Index,
    own_customer: bool,
    op: Op,
}

fn raw_commands(n_permissions: usize) -> impl Strategy<Value = Vec<RawCmd>> {
    let cmd = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        // Shrinks to `true`: the target's own customer.
        prop::bool::weighted(0.2).prop_map(|other| !other),
        ops(n_permissions),
    )
        .prop_map(|(actor, target, own_customer, op)| RawCmd {
            actor,
            target,
            own_customer,
            op,
        });
    prop::collection::vec(cmd, 1..30)
}

type WorldParts = ([CustomerSpec; 2], Vec<UserSpec>);

fn world_parts(n_permissions: usize) -> impl Strategy<Value = WorldParts> {
    (
        [customers(n_permissions), customers(n_permissions)],
        prop::collection::vec(users(n_permissions), 2..6),
    )
}

/// Builds the scenario: flags cut to the catalog's size, indices resolved against the users
/// (actor index `users.len()` is the operator).
fn resolve(
    catalog: PermissionCatalog,
    (mut customers, mut users): WorldParts,
    raw: Vec<RawCmd>,
) -> Scenario {
    let n = catalog.permissions().len();
    for c in &mut customers {
        c.entitled.truncate(n);
    }
    for u in &mut users {
        u.permissions.truncate(n);
    }
    let count = users.len();
    let commands = raw
        .into_iter()
        .map(|r| {
            let actor = r.actor.index(count + 1);
            let op = match r.op {
                Op::SetPermissions(mut flags) => {
                    flags.truncate(n);
                    Op::SetPermissions(flags)
                }
                op => op,
            };
            Cmd {
                actor: if actor == count {
                    ActorSpec::Operator
                } else {
                    ActorSpec::User(actor)
                },
                target: r.target.index(count),
                own_customer: r.own_customer,
                op,
            }
        })
        .collect();
    Scenario {
        world: WorldSpec {
            catalog,
            customers,
            users,
        },
        commands,
    }
}

/// Scenarios over generated catalogs ([`catalogs`]).
///
/// A failing scenario shrinks to a minimal one ([`shrink_candidates`]): the fewest commands,
/// users (two) and permissions, the simplest statuses, permission sets and entitlements. Run
/// them with [`config`], whose shrinking is not cut off halfway.
pub fn scenarios() -> impl Strategy<Value = Scenario> {
    Shrinking {
        draw: (
            catalogs(),
            world_parts(MAX_GENERATED_PERMISSIONS),
            raw_commands(MAX_GENERATED_PERMISSIONS),
        )
            .prop_map(|(catalog, world, raw)| resolve(catalog, world, raw)),
        generated_catalog: true,
    }
}

/// Scenarios over your own catalog (e.g. an embedder's replacement for the manual's ten
/// permissions); they shrink like [`scenarios`].
pub fn scenarios_for(catalog: PermissionCatalog) -> impl Strategy<Value = Scenario> {
    let n = catalog.permissions().len();
    Shrinking {
        draw: (world_parts(n), raw_commands(n))
            .prop_map(move |(world, raw)| resolve(catalog.clone(), world, raw)),
        generated_catalog: false,
    }
}

/// The runner settings the kit is made for: `cases` scenarios, no persistence file, and
/// shrinking that runs to the end (up to 100,000 steps; proptest's own default stops after
/// 4 × `cases`, e.g. after 32 steps at 8 cases, long before a 20-command scenario is minimal).
/// `PROPTEST_CASES` and the other `PROPTEST_*` variables do not override it; change the fields
/// instead.
///
/// ```
/// let config = portal_core::property::config(32);
/// assert_eq!((config.cases, config.max_shrink_iters), (32, 100_000));
/// ```
#[must_use]
pub fn config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        max_shrink_iters: 100_000,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Shrinking
// ---------------------------------------------------------------------------------------------

/// Draws scenarios with `draw` and shrinks them with [`shrink_candidates`].
#[derive(Debug)]
struct Shrinking<D> {
    draw: D,
    generated_catalog: bool,
}

impl<D: Strategy<Value = Scenario>> Strategy for Shrinking<D> {
    type Tree = ScenarioTree;
    type Value = Scenario;

    fn new_tree(&self, runner: &mut proptest::test_runner::TestRunner) -> NewTree<Self> {
        let scenario = self.draw.new_tree(runner)?.current();
        Ok(ScenarioTree {
            accepted: scenario.clone(),
            current: scenario,
            candidates: Vec::new(),
            generated_catalog: self.generated_catalog,
        })
    }
}

/// Shrinks like QuickCheck: after every simpler scenario that still fails, all its own
/// candidates are tried again, in every part (commands, users, permissions, entitlements,
/// catalog), so a simplification that only pays off after another one is still found — which
/// proptest's part-by-part shrinking of a tuple never revisits.
#[derive(Debug)]
struct ScenarioTree {
    /// The simplest scenario known to fail (at first: the drawn one).
    accepted: Scenario,
    /// What the runner tests next.
    current: Scenario,
    /// The untried candidates of `accepted`, the next one last.
    candidates: Vec<Scenario>,
    generated_catalog: bool,
}

impl ScenarioTree {
    fn next_candidate(&mut self) -> bool {
        if let Some(c) = self.candidates.pop() {
            self.current = c;
            true
        } else {
            self.current = self.accepted.clone();
            false
        }
    }
}

impl ValueTree for ScenarioTree {
    type Value = Scenario;

    fn current(&self) -> Scenario {
        self.current.clone()
    }

    /// `current` failed: it is the new simplest, try its candidates.
    fn simplify(&mut self) -> bool {
        self.accepted = self.current.clone();
        self.candidates = shrink_candidates(&self.accepted, self.generated_catalog);
        self.candidates.reverse();
        self.next_candidate()
    }

    /// `current` passed: try the next candidate of the simplest.
    fn complicate(&mut self) -> bool {
        self.next_candidate()
    }
}

/// The scenario without user `j`: commands by or on `j` dropped, later indices shifted.
fn without_user(s: &Scenario, j: usize) -> Option<Scenario> {
    if s.world.users.len() <= 2 {
        return None;
    }
    let shift = |i: usize| if i > j { i - 1 } else { i };
    let commands: Vec<Cmd> = s
        .commands
        .iter()
        .filter(|c| c.target != j && c.actor != ActorSpec::User(j))
        .map(|c| Cmd {
            actor: match c.actor {
                ActorSpec::User(i) => ActorSpec::User(shift(i)),
                ActorSpec::Operator => ActorSpec::Operator,
            },
            target: shift(c.target),
            ..c.clone()
        })
        .collect();
    if commands.is_empty() {
        return None;
    }
    let mut out = s.clone();
    out.world.users.remove(j);
    out.commands = commands;
    Some(out)
}

/// The scenario without permission `k` of its generated catalog (flags cut, keys renumbered).
fn without_permission(s: &Scenario, k: usize) -> Option<Scenario> {
    let mut groups = generated_groups(&s.world.catalog);
    if groups.len() <= 2 {
        return None;
    }
    groups.remove(k);
    let mut out = s.clone();
    out.world.catalog = generated_catalog(&groups);
    for c in &mut out.world.customers {
        c.entitled.remove(k);
    }
    for u in &mut out.world.users {
        u.permissions.remove(k);
    }
    for c in &mut out.commands {
        if let Op::SetPermissions(flags) = &mut c.op {
            flags.remove(k);
        }
    }
    Some(out)
}

/// Orders users from simplest: status, lock, customer, permissions held.
fn user_rank(u: &UserSpec) -> (u8, bool, usize, usize) {
    let kind = match u.kind {
        UserKind::Invited => 0,
        UserKind::PendingActivation => 1,
        UserKind::Employee => 2,
        UserKind::Administrator => 3,
    };
    let held = u.permissions.iter().filter(|p| **p).count();
    (kind, u.locked, u.customer, held)
}

/// The scenario with users 0 and `j` swapped (commands follow their users).
fn swapped_users(s: &Scenario, j: usize) -> Scenario {
    let swap = |i: usize| match i {
        0 => j,
        i if i == j => 0,
        i => i,
    };
    let mut out = s.clone();
    out.world.users.swap(0, j);
    for c in &mut out.commands {
        c.target = swap(c.target);
        if let ActorSpec::User(a) = c.actor {
            c.actor = ActorSpec::User(swap(a));
        }
    }
    out
}

/// Applies a command's effect to its target's initial state; `false` for commands without one.
fn fold_into(op: &Op, u: &mut UserSpec) -> bool {
    match op {
        Op::SetPermissions(flags) => u.permissions.clone_from(flags),
        Op::Lock => u.locked = true,
        Op::Unlock => u.locked = false,
        Op::Activate | Op::Demote => u.kind = UserKind::Employee,
        _ => return false,
    }
    true
}

/// Simpler variants of a failing scenario, the most promising first: fewer commands (cut the
/// tail, drop one, or fold a command's effect into the world: a `SetPermissions` becomes the
/// target's initial permissions, a `Lock` its initial lock, …), fewer users, the simplest user
/// first, fewer permissions (generated catalogs), then simpler users (status, lock, customer, permissions), customers
/// (entitlements, channel) and commands (actor, customer addressed, flags, group).
#[must_use]
pub fn shrink_candidates(s: &Scenario, catalog_is_generated: bool) -> Vec<Scenario> {
    let mut out = Vec::new();
    let n = s.commands.len();
    let with = |f: &dyn Fn(&mut Scenario)| {
        let mut c = s.clone();
        f(&mut c);
        c
    };
    // Fewer commands.
    for keep in 1..n {
        out.push(with(&|c| c.commands.truncate(keep)));
    }
    for i in 0..n {
        if n > 1 {
            out.push(with(&|c| {
                c.commands.remove(i);
            }));
        }
        let cmd = &s.commands[i];
        let mut folded = s.clone();
        if fold_into(&cmd.op, &mut folded.world.users[cmd.target]) {
            if n > 1 {
                folded.commands.remove(i);
            }
            out.push(folded);
        }
    }
    // Fewer users and permissions.
    out.extend((0..s.world.users.len()).filter_map(|j| without_user(s, j)));
    // The simplest user first, so that a minimal scenario reads the same however it was found.
    for j in 1..s.world.users.len() {
        if user_rank(&s.world.users[j]) < user_rank(&s.world.users[0]) {
            out.push(swapped_users(s, j));
        }
    }
    if catalog_is_generated {
        let k = s.world.catalog.permissions().len();
        out.extend((0..k).rev().filter_map(|p| without_permission(s, p)));
        let groups = generated_groups(&s.world.catalog);
        for (p, g) in groups.iter().enumerate() {
            if g.is_some() {
                let mut groups = groups.clone();
                groups[p] = None;
                out.push(with(&|c| c.world.catalog = generated_catalog(&groups)));
            }
        }
    }
    // Simpler users.
    let kinds = [
        UserKind::Invited,
        UserKind::PendingActivation,
        UserKind::Employee,
        UserKind::Administrator,
    ];
    for (j, u) in s.world.users.iter().enumerate() {
        for kind in kinds.iter().take_while(|k| **k != u.kind) {
            out.push(with(&|c| c.world.users[j].kind = *kind));
        }
        if u.locked {
            out.push(with(&|c| c.world.users[j].locked = false));
        }
        if u.customer == 1 {
            out.push(with(&|c| c.world.users[j].customer = 0));
        }
        for (p, on) in u.permissions.iter().enumerate() {
            if *on {
                out.push(with(&|c| c.world.users[j].permissions[p] = false));
            }
        }
    }
    // Simpler customers.
    for (i, customer) in s.world.customers.iter().enumerate() {
        if customer.channel != ServiceChannel::Direct {
            out.push(with(&|c| {
                c.world.customers[i].channel = ServiceChannel::Direct
            }));
        }
        for (p, on) in customer.entitled.iter().enumerate() {
            if *on {
                out.push(with(&|c| c.world.customers[i].entitled[p] = false));
            }
        }
    }
    // Simpler commands.
    for (i, cmd) in s.commands.iter().enumerate() {
        if let ActorSpec::User(a) = cmd.actor {
            for b in 0..a {
                out.push(with(&|c| c.commands[i].actor = ActorSpec::User(b)));
            }
        }
        for t in 0..cmd.target {
            out.push(with(&|c| c.commands[i].target = t));
        }
        if !cmd.own_customer {
            out.push(with(&|c| c.commands[i].own_customer = true));
        }
        match &cmd.op {
            Op::SetPermissions(flags) => {
                for (p, on) in flags.iter().enumerate() {
                    if *on {
                        out.push(with(&|c| {
                            if let Op::SetPermissions(f) = &mut c.commands[i].op {
                                f[p] = false;
                            }
                        }));
                    }
                }
            }
            Op::GrantGroup(g) if *g > 0 => {
                out.push(with(&|c| c.commands[i].op = Op::GrantGroup(g - 1)));
            }
            Op::RevokeGroup(g) if *g > 0 => {
                out.push(with(&|c| c.commands[i].op = Op::RevokeGroup(g - 1)));
            }
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Compact printing
// ---------------------------------------------------------------------------------------------

fn key_names(catalog: &PermissionCatalog, flags: &[bool]) -> String {
    let names: Vec<&str> = catalog
        .permissions()
        .iter()
        .zip(flags)
        .filter(|(_, on)| **on)
        .map(|(p, _)| p.key.as_str())
        .collect();
    format!("[{}]", names.join(", "))
}

impl WorldSpec {
    fn actor_name(&self, a: ActorSpec) -> String {
        match a {
            ActorSpec::Operator => "operator".to_owned(),
            ActorSpec::User(i) => format!("u{i}"),
        }
    }

    /// One command in words, with permission and group names: `u0: SetPermissions [p1] on u1
    /// via 100000001`.
    #[must_use]
    pub fn describe(&self, cmd: &Cmd) -> String {
        let actor = self.actor_name(cmd.actor);
        let group = |g: usize| {
            self.catalog
                .groups()
                .get(g)
                .map_or_else(|| format!("<unknown group {g}>"), |g| g.key.to_string())
        };
        let op = match &cmd.op {
            Op::Login => return format!("u{} logs in", cmd.target),
            Op::SetPermissions(flags) => {
                format!("SetPermissions {}", key_names(&self.catalog, flags))
            }
            Op::GrantGroup(g) => format!("GrantGroup {}", group(*g)),
            Op::RevokeGroup(g) => format!("RevokeGroup {}", group(*g)),
            other => format!("{other:?}"),
        };
        let own = self.users.get(cmd.target).map_or(0, |u| u.customer);
        let via = CUSTOMER_NUMBERS[if cmd.own_customer { own } else { 1 - own }];
        format!("{actor}: {op} on u{} via {via}", cmd.target)
    }
}

/// Compact: permission and group names, no labels or descriptions.
impl std::fmt::Debug for WorldSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .catalog
            .permissions()
            .iter()
            .map(|p| match &p.group {
                Some(g) => format!("{}({g})", p.key),
                None => p.key.to_string(),
            })
            .collect();
        writeln!(f, "catalog: {}", keys.join(" "))?;
        for (c, spec) in self.customers.iter().enumerate() {
            let channel = match spec.channel {
                ServiceChannel::Direct => "direct",
                ServiceChannel::Partner { .. } => "partner",
            };
            writeln!(
                f,
                "customer {}: {channel}, entitled to {}",
                CUSTOMER_NUMBERS[c],
                key_names(&self.catalog, &spec.entitled)
            )?;
        }
        for (i, u) in self.users.iter().enumerate() {
            writeln!(
                f,
                "u{i}: {:?} of {}{}, holds {}",
                u.kind,
                CUSTOMER_NUMBERS[u.customer],
                if u.locked { ", locked" } else { "" },
                key_names(&self.catalog, &u.permissions)
            )?;
        }
        Ok(())
    }
}

/// Compact: the world ([`WorldSpec`]'s `Debug`) and one numbered line per step
/// ([`WorldSpec::describe`]); the step numbers are the ones a failure names.
impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Scenario of {} step(s)", self.commands.len())?;
        write!(f, "{:?}", self.world)?;
        for (i, cmd) in self.commands.iter().enumerate() {
            writeln!(f, "step {i}: {}", self.world.describe(cmd))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reference model
// ---------------------------------------------------------------------------------------------

/// A user as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUser {
    /// Customer 0 or 1.
    pub customer: usize,
    /// Administrator of that customer.
    pub admin: bool,
    /// Lifecycle state.
    pub state: AccountState,
    /// Locked.
    pub locked: bool,
    /// Permissions as catalog indices.
    pub permissions: BTreeSet<usize>,
}

impl ModelUser {
    /// Active and not locked.
    #[must_use]
    pub fn active(&self) -> bool {
        self.state == AccountState::Active && !self.locked
    }

    /// An active administrator.
    #[must_use]
    pub fn active_admin(&self) -> bool {
        self.admin && self.active()
    }

    /// May log in.
    #[must_use]
    pub fn can_log_in(&self) -> bool {
        !self.locked
            && matches!(
                self.state,
                AccountState::Active | AccountState::PendingActivation
            )
    }
}

/// The rules in their simplest form.
#[derive(Debug, Clone)]
pub struct Model {
    /// The users (`None` once deleted).
    pub users: Vec<Option<ModelUser>>,
    /// Entitlements of customer 0 and 1, as catalog indices.
    pub entitled: [BTreeSet<usize>; 2],
    /// Group index of each permission.
    pub groups_of: Vec<Option<usize>>,
}

/// What a command answered (or, for the model, should answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success; `changes` when state changed.
    Ok {
        /// Whether anything changed.
        changes: bool,
    },
    /// Not found (also for foreign customers' data).
    NotFound,
    /// Forbidden (a member who is not an administrator).
    Forbidden,
    /// The status does not allow it.
    WrongState,
    /// It would leave the customer without an active administrator.
    LastAdmin,
    /// Permissions outside catalog or entitlements.
    NotGrantable,
    /// Unknown group.
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

    /// Whether customer `c` has an active administrator.
    #[must_use]
    pub fn has_active_admin(&self, c: usize) -> bool {
        self.users
            .iter()
            .flatten()
            .any(|u| u.customer == c && u.active_admin())
    }

    /// The outcome of a management command addressed through customer `addressed`.
    #[must_use]
    pub fn predict(&self, cmd: &Cmd, addressed: usize) -> Outcome {
        if let Op::GrantGroup(g) | Op::RevokeGroup(g) = cmd.op
            && self.members(g).is_empty()
        {
            return Outcome::UnknownGroup;
        }
        let authority = match cmd.actor {
            ActorSpec::Operator => Authority::Operator,
            ActorSpec::User(i) => match &self.users[i] {
                None => return Outcome::NotFound,
                Some(a) if a.customer == addressed && a.active_admin() => Authority::Admin,
                Some(a) if a.customer == addressed => return Outcome::Forbidden,
                Some(_) => return Outcome::NotFound,
            },
        };
        if cmd.op == Op::ListUsers {
            return Outcome::Ok { changes: false };
        }
        let Some(t) = self.users[cmd.target]
            .as_ref()
            .filter(|t| t.customer == addressed)
        else {
            return Outcome::NotFound;
        };
        let last_admin = |after_admin: bool| -> bool {
            matches!(authority, Authority::Admin)
                && t.active_admin()
                && !after_admin
                && self.other_active_admins(addressed, cmd.target) == 0
        };
        match &cmd.op {
            Op::GetUser | Op::UserAudit | Op::ListUsers | Op::Login => {
                Outcome::Ok { changes: false }
            }
            Op::EndSessions => Outcome::Ok { changes: true },
            Op::Lock if t.locked => Outcome::WrongState,
            Op::Lock | Op::Delete if last_admin(false) => Outcome::LastAdmin,
            Op::Lock | Op::Delete => Outcome::Ok { changes: true },
            Op::Unlock if !t.locked => Outcome::WrongState,
            Op::Unlock => Outcome::Ok { changes: true },
            Op::Activate if t.state != AccountState::PendingActivation || t.locked => {
                Outcome::WrongState
            }
            Op::Activate => Outcome::Ok { changes: true },
            Op::Demote if !t.admin => Outcome::WrongState,
            Op::Demote if last_admin(false) => Outcome::LastAdmin,
            Op::Demote => Outcome::Ok { changes: true },
            Op::SetPermissions(flags) => {
                let wanted = indices(flags);
                if wanted.is_subset(&self.entitled[addressed]) {
                    Outcome::Ok {
                        changes: wanted != t.permissions,
                    }
                } else {
                    Outcome::NotGrantable
                }
            }
            Op::GrantGroup(g) => {
                let add: BTreeSet<usize> = self
                    .members(*g)
                    .intersection(&self.entitled[addressed])
                    .copied()
                    .collect();
                Outcome::Ok {
                    changes: !add.is_subset(&t.permissions),
                }
            }
            Op::RevokeGroup(g) => Outcome::Ok {
                changes: !self.members(*g).is_disjoint(&t.permissions),
            },
        }
    }

    /// Applies a command the model predicted to succeed.
    pub fn apply(&mut self, cmd: &Cmd, addressed: usize) {
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
        let Some(t) = slot.as_mut() else {
            return;
        };
        match &cmd.op {
            Op::Lock => t.locked = true,
            Op::Unlock => t.locked = false,
            Op::Delete => *slot = None,
            Op::Activate => t.state = AccountState::Active,
            Op::Demote => t.admin = false,
            Op::SetPermissions(flags) => t.permissions = indices(flags),
            Op::GrantGroup(_) => {
                t.permissions = t
                    .permissions
                    .union(&members.intersection(&entitled).copied().collect())
                    .copied()
                    .collect();
            }
            Op::RevokeGroup(_) => {
                t.permissions = t.permissions.difference(&members).copied().collect();
            }
            Op::GetUser | Op::ListUsers | Op::UserAudit | Op::EndSessions | Op::Login => {}
        }
    }

    /// R1 in its simplest form: active ∧ ¬locked ∧ entitled ∧ (admin ∨ holds).
    #[must_use]
    pub fn may_access(&self, user: usize, area: usize) -> bool {
        self.users[user].as_ref().is_some_and(|u| {
            u.active()
                && self.entitled[u.customer].contains(&area)
                && (u.admin || u.permissions.contains(&area))
        })
    }
}

fn indices(flags: &[bool]) -> BTreeSet<usize> {
    flags
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i)
        .collect()
}

fn set_from_flags(keys: &[PermissionKey], flags: &[bool]) -> PermissionSet {
    set_of(keys, &indices(flags))
}

fn set_of(keys: &[PermissionKey], idx: &BTreeSet<usize>) -> PermissionSet {
    idx.iter().map(|&i| keys[i].clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Extra rules of embedders
// ---------------------------------------------------------------------------------------------

/// What an [`ExtraRule`] sees after each step.
#[derive(Debug)]
pub struct Step<'a> {
    /// The step's number in the scenario (from 0; the number a failure names).
    pub index: usize,
    /// The command just run.
    pub command: &'a Cmd,
    /// Its outcome (for logins: `Ok` when a session started).
    pub outcome: Outcome,
    /// Every generated user as stored now (`None` once deleted).
    pub users: &'a [Option<UserRecord>],
    /// The catalog.
    pub catalog: &'a PermissionCatalog,
    /// The model after the step.
    pub model: &'a Model,
    /// Real access, probed after the step: for every generated user with a live session (by
    /// index into the users), the areas [`Portal::may_access_area`] lets that session enter
    /// now — the decision `adapters-http`'s `RequirePermission` guard takes on each request.
    /// Users without a live session are absent.
    pub access: &'a BTreeMap<usize, PermissionSet>,
    /// The live sessions after the step: user index and session token (what a cookie holds),
    /// for an [`ExtraRule::probe`] that asks the portal itself.
    pub sessions: &'a [(usize, String)],
    /// The portal under test, for [`ExtraRule::probe`].
    pub portal: &'a Portal,
}

impl Step<'_> {
    /// Whether user `user` (an index into the users) may enter `area` on a live session now,
    /// by the real portal ([`Step::access`]); `false` without a live session.
    #[must_use]
    pub fn may_access(&self, user: usize, area: &str) -> bool {
        self.access
            .get(&user)
            .is_some_and(|areas| areas.iter().any(|k| k.as_str() == area))
    }
}

/// An embedder's own rule on top of Portal's, checked after every step of [`check`]: first
/// [`check`](ExtraRule::check) on what the step left behind (stored users, the model, real
/// access), then [`probe`](ExtraRule::probe), which may call the portal itself. Implement
/// either or both; a message of either fails the scenario at that step.
#[async_trait::async_trait]
pub trait ExtraRule: Send + Sync {
    /// Checks the step's results.
    ///
    /// # Errors
    /// A message saying how the rule is broken.
    fn check(&self, step: &Step<'_>) -> Result<(), String> {
        let _ = step;
        Ok(())
    }

    /// Asks the real portal ([`Step::portal`], e.g. `authenticate` with a token of
    /// [`Step::sessions`]) after [`check`](ExtraRule::check) passed.
    ///
    /// # Errors
    /// A message saying how the rule is broken.
    async fn probe(&self, step: &Step<'_>) -> Result<(), String> {
        let _ = step;
        Ok(())
    }
}

/// No extra rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExtraRule;

impl ExtraRule for NoExtraRule {}

// ---------------------------------------------------------------------------------------------
// The system under test
// ---------------------------------------------------------------------------------------------

/// Login throttling has its own tests; here logins of locked users must keep failing the same
/// way however often they are tried.
fn unthrottled() -> PortalConfig {
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

struct Sut<S> {
    portal: Portal,
    store: Arc<S>,
    keys: Vec<PermissionKey>,
    groups: Vec<GroupKey>,
    customers: [CustomerId; 2],
    users: Vec<UserId>,
    emails: Vec<String>,
    operator: UserId,
    /// Session tokens per user, with whether the model thinks each is alive.
    sessions: BTreeMap<usize, Vec<(String, bool)>>,
}

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

async fn seed<S: Queries + Committer + 'static>(
    world: &WorldSpec,
    store: Arc<S>,
) -> Result<(Sut<S>, Model), TestCaseError> {
    let catalog = world.catalog.clone();
    let keys: Vec<PermissionKey> = catalog
        .permissions()
        .iter()
        .map(|p| p.key.clone())
        .collect();
    let groups: Vec<GroupKey> = catalog.groups().iter().map(|g| g.key.clone()).collect();
    let groups_of: Vec<Option<usize>> = catalog
        .permissions()
        .iter()
        .map(|p| {
            p.group
                .as_ref()
                .and_then(|g| groups.iter().position(|k| k == g))
        })
        .collect();
    let clock = Arc::new(ManualClock::new());
    let hasher = fast_hasher(3);
    let hash = hasher
        .hash_blocking(PASSWORD)
        .map_err(|e| fail(e.to_string()))?;
    let portal = Portal::new(
        Deps {
            queries: store.clone(),
            committer: store.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::new()),
            random: Arc::new(SeededRandom::new(9)),
            hasher: Arc::new(hasher),
            legacy: Arc::new(NoLegacyDirectory),
        },
        unthrottled(),
        catalog,
    )
    .map_err(|e| fail(e.to_string()))?;
    let now = crate::ports::Clock::now(&*clock);
    let entitled = [
        indices(&world.customers[0].entitled),
        indices(&world.customers[1].entitled),
    ];
    let mut commit = Commit::new();
    let customers = [0u128, 1].map(|c| CustomerId::from_uuid(Uuid::from_u128(100 + c)));
    for c in 0..2 {
        commit.write(Write::InsertCustomer(Customer::new(CustomerRecord {
            id: customers[c],
            number: CustomerNumber::parse(CUSTOMER_NUMBERS[c]).expect("valid number"),
            name: CompanyName::parse(&format!("Firma {c}")).expect("valid name"),
            affiliations: BTreeSet::new(),
            channel: world.customers[c].channel.clone(),
            entitlements: set_of(&keys, &entitled[c]),
            default_permissions: PermissionSet::new(),
            second_factor_policy: crate::customer::SecondFactorPolicy::None,
            created_at: now,
            updated_at: now,
            version: 0,
        })));
    }
    let mut model_users = Vec::new();
    let mut users = Vec::new();
    let mut emails = Vec::new();
    for (i, u) in world.users.iter().enumerate() {
        let id = UserId::from_uuid(Uuid::from_u128(1_000 + i as u128));
        let address = format!("u{i}@example.com");
        let perms: BTreeSet<usize> = indices(&u.permissions)
            .intersection(&entitled[u.customer])
            .copied()
            .collect();
        let first = PersonName::parse("Uma").expect("valid name");
        let last = PersonName::parse(&format!("Nutzer{i}")).expect("valid name");
        let email = EmailAddress::parse(&address).expect("valid address");
        let mut user = match u.kind {
            UserKind::Invited => User::new_invited(
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
                let wrong = |e: crate::user::WrongState| fail(e.to_string());
                user.complete_registration(hash.clone(), now)
                    .map_err(wrong)?;
                user.link_to_customer(
                    customers[u.customer],
                    set_of(&keys, &perms),
                    u.kind == UserKind::PendingActivation,
                    now,
                )
                .map_err(wrong)?;
                if u.kind == UserKind::Administrator {
                    user.promote(now).map_err(wrong)?;
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
            .map_err(|e| fail(e.to_string()))?;
        }
        model_users.push(Some(ModelUser {
            customer: u.customer,
            admin: u.kind == UserKind::Administrator,
            state: user.state(),
            locked: u.locked,
            permissions: perms,
        }));
        commit.write(Write::InsertUser(user));
        users.push(id);
        emails.push(address);
    }
    let operator = UserId::from_uuid(Uuid::from_u128(999));
    let mut op_user = User::new_invited(
        operator,
        EmailAddress::parse("operator@vendor.example").expect("valid address"),
        PersonName::parse("Otto").expect("valid name"),
        PersonName::parse("Operator").expect("valid name"),
        Language::De,
        Role::Operator,
        None,
        PermissionSet::new(),
        now,
    );
    op_user
        .complete_registration(hash, now)
        .map_err(|e| fail(e.to_string()))?;
    commit.write(Write::InsertUser(op_user));
    store
        .commit(commit)
        .await
        .map_err(|e| fail(format!("seeding the store: {e}")))?;
    Ok((
        Sut {
            portal,
            store,
            keys,
            groups,
            customers,
            users,
            emails,
            operator,
            sessions: BTreeMap::new(),
        },
        Model {
            users: model_users,
            entitled,
            groups_of,
        },
    ))
}

fn classify(r: Result<bool, AdminError>) -> Result<Outcome, TestCaseError> {
    Ok(match r {
        Ok(changes) => Outcome::Ok { changes },
        Err(AdminError::NotFound) => Outcome::NotFound,
        Err(AdminError::Forbidden) => Outcome::Forbidden,
        Err(AdminError::WrongState(_)) => Outcome::WrongState,
        Err(AdminError::LastAdmin) => Outcome::LastAdmin,
        Err(AdminError::NotGrantable(_)) => Outcome::NotGrantable,
        Err(AdminError::UnknownGroup) => Outcome::UnknownGroup,
        Err(e) => return Err(fail(format!("unexpected error {e:?}"))),
    })
}

impl<S: Queries + Committer + 'static> Sut<S> {
    fn actor(&self, a: ActorSpec) -> Actor {
        match a {
            ActorSpec::Operator => Actor::user(self.operator),
            ActorSpec::User(i) => Actor::user(self.users[i]),
        }
    }

    async fn chain(&self, customer: Option<CustomerId>) -> Result<Vec<AuditEntry>, TestCaseError> {
        self.store
            .audit_chain(customer, 0, u32::MAX)
            .await
            .map_err(|e| fail(e.to_string()))
    }

    async fn audit_len(&self) -> Result<usize, TestCaseError> {
        let mut n = 0;
        for c in [None, Some(self.customers[0]), Some(self.customers[1])] {
            n += self.chain(c).await?.len();
        }
        Ok(n)
    }

    async fn stored_users(&self) -> Result<Vec<Option<UserRecord>>, TestCaseError> {
        let mut out = Vec::new();
        for id in &self.users {
            let u = self
                .store
                .user(*id)
                .await
                .map_err(|e| fail(e.to_string()))?;
            out.push(u.map(|u| u.record().clone()));
        }
        Ok(out)
    }

    /// Everything stored about one customer: its users' records and its audit chain length.
    async fn snapshot(&self, c: usize) -> Result<(Vec<Option<UserRecord>>, usize), TestCaseError> {
        let users = self
            .stored_users()
            .await?
            .into_iter()
            .map(|u| u.filter(|u| u.customer_id == Some(self.customers[c])))
            .collect();
        Ok((users, self.chain(Some(self.customers[c])).await?.len()))
    }

    async fn run(&self, cmd: &Cmd, addressed: usize) -> Result<Outcome, TestCaseError> {
        let p = &self.portal;
        let actor = self.actor(cmd.actor);
        let number = CustomerNumber::parse(CUSTOMER_NUMBERS[addressed]).expect("valid number");
        let target = self.users[cmd.target];
        let before = self
            .store
            .user(target)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let changed = |u: &User| Some(u.permissions()) != before.as_ref().map(User::permissions);
        let group = |g: usize| {
            self.groups
                .get(g)
                .cloned()
                .unwrap_or_else(|| GroupKey::parse("no_such_group").expect("valid key"))
        };
        let leaked = |what: &str| fail(format!("R2: {what} leaked another customer's data"));
        let r = match &cmd.op {
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
            Op::SetPermissions(flags) => p
                .set_permissions(&actor, &number, target, &set_from_flags(&self.keys, flags))
                .await
                .map(|u| changed(&u)),
            Op::GrantGroup(g) => p
                .grant_group(&actor, &number, target, &group(*g))
                .await
                .map(|u| changed(&u)),
            Op::RevokeGroup(g) => p
                .revoke_group(&actor, &number, target, &group(*g))
                .await
                .map(|u| changed(&u)),
            Op::GetUser => match p.get_user(&actor, &number, target).await {
                Ok(u) if u.customer_id() != Some(self.customers[addressed]) => {
                    return Err(leaked("get_user"));
                }
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            },
            Op::ListUsers => {
                let page = PageRequest {
                    size: Some(100),
                    ..PageRequest::default()
                };
                match p.list_users(&actor, &number, None, &page).await {
                    Ok(page) => {
                        if page
                            .items
                            .iter()
                            .any(|u| u.customer_id() != Some(self.customers[addressed]))
                        {
                            return Err(leaked("list_users"));
                        }
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
            Op::UserAudit => {
                match p
                    .user_audit(&actor, &number, target, &Default::default(), Language::De)
                    .await
                {
                    Ok(page) => {
                        if page.items.iter().any(|v| {
                            v.entry.record.customer != Some(self.customers[addressed])
                                || v.entry.record.subject != Some(target)
                        }) {
                            return Err(leaked("user_audit"));
                        }
                        Ok(false)
                    }
                    Err(AuditError::NotFound) => Err(AdminError::NotFound),
                    Err(AuditError::Forbidden) => Err(AdminError::Forbidden),
                    Err(e) => return Err(fail(format!("unexpected {e:?}"))),
                }
            }
            Op::Login => return Err(fail("login is not a management command")),
        };
        classify(r)
    }
}

/// Runs a scenario on `store` (fresh and empty) and checks the rules after every step.
///
/// # Errors
/// The first broken rule, as a proptest failure (so proptest shrinks the scenario), naming the
/// step: `step 0 of 1 (u1 logs in): …`.
pub async fn check<S, R>(scenario: Scenario, store: Arc<S>, extra: &R) -> Result<(), TestCaseError>
where
    S: Queries + Committer + 'static,
    R: ExtraRule + ?Sized,
{
    let Scenario { world, commands } = scenario;
    let (mut sut, mut model) = seed(&world, store).await?;
    let total = commands.len();
    for (index, cmd) in commands.iter().enumerate() {
        run_step(&world, &mut sut, &mut model, index, cmd, extra)
            .await
            .map_err(|e| match e {
                TestCaseError::Fail(why) => fail(format!(
                    "step {index} of {total} ({}): {why}",
                    world.describe(cmd)
                )),
                other => other,
            })?;
    }
    for c in [None, Some(sut.customers[0]), Some(sut.customers[1])] {
        prop_assert_eq!(verify_chain(&sut.chain(c).await?), Ok(()));
    }
    Ok(())
}

/// One step of [`check`]: runs `cmd`, compares with the model, checks the rules.
async fn run_step<S, R>(
    world: &WorldSpec,
    sut: &mut Sut<S>,
    model: &mut Model,
    index: usize,
    cmd: &Cmd,
    extra: &R,
) -> Result<(), TestCaseError>
where
    S: Queries + Committer + 'static,
    R: ExtraRule + ?Sized,
{
    let audit_before = sut.audit_len().await?;
    let outcome = if cmd.op == Op::Login {
        let i = cmd.target;
        let r = sut
            .portal
            .login(Login {
                email: sut.emails[i].clone(),
                password: SecretString::new(PASSWORD),
                client: ClientInfo::default(),
            })
            .await;
        let expected = model.users[i].as_ref().is_some_and(ModelUser::can_log_in);
        prop_assert_eq!(r.is_ok(), expected, "login of {:?}", model.users[i]);
        if let Ok(LoginOutcome::Authenticated(s)) = &r {
            sut.sessions
                .entry(i)
                .or_default()
                .push((s.token.expose().to_owned(), true));
        }
        // The right password is audited (a session, or a refusal of a locked account); an
        // invited user has no password yet, and wrong passwords are counted, not audited.
        let has_password = model.users[i]
            .as_ref()
            .is_some_and(|u| u.state != crate::user::AccountState::Invited);
        prop_assert_eq!(
            sut.audit_len().await? - audit_before,
            usize::from(has_password),
            "R20 login"
        );
        Outcome::Ok { changes: r.is_ok() }
    } else {
        let target_customer = world.users[cmd.target].customer;
        let addressed = if cmd.own_customer {
            target_customer
        } else {
            1 - target_customer
        };
        let predicted = model.predict(cmd, addressed);
        let other = 1 - addressed;
        let other_before = sut.snapshot(other).await?;
        let had_admin = [model.has_active_admin(0), model.has_active_admin(1)];
        let actual = sut.run(cmd, addressed).await?;
        prop_assert_eq!(actual, predicted, "the outcome");
        // R20: one entry per state change, none otherwise.
        let delta = sut.audit_len().await? - audit_before;
        let expected_delta = usize::from(matches!(actual, Outcome::Ok { changes: true }));
        prop_assert_eq!(delta, expected_delta, "R20: audit entries written");
        // R2: the other customer is untouched.
        prop_assert_eq!(
            sut.snapshot(other).await?,
            other_before,
            "R2: the other customer changed"
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
        if let ActorSpec::User(_) = cmd.actor {
            for (c, had) in had_admin.iter().enumerate() {
                prop_assert!(
                    !had || model.has_active_admin(c),
                    "R5: customer {} lost its last active administrator",
                    CUSTOMER_NUMBERS[c]
                );
            }
        }
        actual
    };
    // Model and store agree on every user; R4.
    let stored = sut.stored_users().await?;
    for (i, rec) in stored.iter().enumerate() {
        match (&model.users[i], rec) {
            (None, None) => {}
            (Some(m), Some(u)) => {
                prop_assert_eq!(m.locked, u.lock.is_some());
                prop_assert_eq!(m.admin, u.role == Role::Administrator);
                prop_assert_eq!(m.state, u.state);
                prop_assert_eq!(&set_of(&sut.keys, &m.permissions), &u.permissions);
                prop_assert!(
                    u.permissions
                        .is_subset(&set_of(&sut.keys, &model.entitled[m.customer])),
                    "R4: permissions beyond the entitlements"
                );
            }
            (m, u) => prop_assert!(false, "model {:?} vs store {:?}", m, u.is_some()),
        }
    }
    // R11 and R1 for every session held; what the sessions may enter, for the extra rule.
    let mut access: BTreeMap<usize, PermissionSet> = BTreeMap::new();
    let mut live = Vec::new();
    for (&i, tokens) in &sut.sessions {
        for (token, alive) in tokens {
            let auth = sut.portal.authenticate(token).await;
            let should = *alive && model.users[i].as_ref().is_some_and(ModelUser::can_log_in);
            prop_assert_eq!(
                auth.is_ok(),
                should,
                "R11: session of u{} ({:?})",
                i,
                model.users[i]
            );
            if let Ok(p) = auth {
                let areas = access.entry(i).or_default();
                for (k, key) in sut.keys.iter().enumerate() {
                    let may = sut.portal.may_access_area(&p, key);
                    prop_assert_eq!(
                        may,
                        model.may_access(i, k),
                        "R1: u{} ({:?}) in area {}",
                        i,
                        model.users[i],
                        key
                    );
                    if may {
                        areas.insert(key.clone());
                    }
                }
                live.push((i, token.clone()));
            }
        }
    }
    let step = Step {
        index,
        command: cmd,
        outcome,
        users: &stored,
        catalog: sut.portal.catalog(),
        model,
        access: &access,
        sessions: &live,
        portal: &sut.portal,
    };
    extra.check(&step).map_err(fail)?;
    extra.probe(&step).await.map_err(fail)?;
    Ok(())
}
