//! Property test of the management rules R1–R5, R11 and R20, built from the property-testing
//! kit that embedders use too (`portal_core::property`, feature `proptest`): generated catalogs,
//! customers, permission sets, users in every status and command sequences, run on the
//! in-memory store and compared with the kit's reference model after every step.

use crate::support::rt;
use adapters_memory::MemoryStore;
use portal_core::permission::PermissionCatalog;
use portal_core::property::{self, NoExtraRule};
use proptest::prelude::*;
use std::sync::Arc;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn management_commands_follow_the_rules(scenario in property::scenarios()) {
        rt().block_on(property::check(scenario, Arc::new(MemoryStore::new()), &NoExtraRule))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The manual's own catalog (ten permissions, group "Meine Daten").
    #[test]
    fn the_default_catalog_follows_the_rules(
        scenario in property::scenarios_for(PermissionCatalog::default_catalog())
    ) {
        rt().block_on(property::check(scenario, Arc::new(MemoryStore::new()), &NoExtraRule))?;
    }
}

/// A rule that is false on purpose: employees never enter the catalog's first area. It probes
/// real access (`Step::access`, what `Portal::may_access_area` answers on live sessions).
struct EmployeesNeverEnterTheFirstArea;

impl property::ExtraRule for EmployeesNeverEnterTheFirstArea {
    fn check(&self, step: &property::Step<'_>) -> Result<(), String> {
        let first = step.catalog.permissions()[0].key.as_str();
        for &user in step.access.keys() {
            let admin = step.model.users[user].as_ref().is_some_and(|u| u.admin);
            if !admin && step.may_access(user, first) {
                return Err(format!("employee u{user} entered {first}"));
            }
        }
        Ok(())
    }
}

/// Runs the false rule with the kit's settings and returns the minimal scenario and message.
fn shrink_false_rule(
    strategy: impl Strategy<Value = property::Scenario>,
    seed: u64,
) -> (property::Scenario, String) {
    use proptest::test_runner::{RngSeed, TestError, TestRunner};
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        rng_seed: RngSeed::Fixed(seed),
        ..property::config(64)
    });
    let rt = rt();
    let result = runner.run(&strategy, |scenario| {
        rt.block_on(property::check(
            scenario,
            Arc::new(MemoryStore::new()),
            &EmployeesNeverEnterTheFirstArea,
        ))
    });
    match result {
        Err(TestError::Fail(why, scenario)) => (scenario, why.to_string()),
        other => panic!("the false rule must fail, got {other:?}"),
    }
}

/// The kit's promise: at its settings a failure shrinks to the true minimum — one step (the
/// employee's login), two users, the employee holding only the area, the customer entitled to
/// only it — and the report names the step. Three seeds, so that no lucky draw carries it.
#[test]
fn a_false_rule_shrinks_to_the_minimal_scenario() {
    for seed in [1, 2, 3] {
        let (s, why) = shrink_false_rule(property::scenarios(), seed);
        let printed = format!("{s:?}");
        assert_eq!(s.commands.len(), 1, "seed {seed}:\n{printed}");
        assert_eq!(s.commands[0].op, property::Op::Login, "{printed}");
        assert_eq!(s.world.users.len(), 2, "{printed}");
        assert_eq!(s.world.catalog.permissions().len(), 2, "{printed}");
        let failing = &s.world.users[s.commands[0].target];
        assert_eq!(failing.kind, property::UserKind::Employee, "{printed}");
        assert_eq!(failing.permissions, [true, false], "{printed}");
        assert_eq!(
            s.world.customers[failing.customer].entitled,
            [true, false],
            "{printed}"
        );
        let other = &s.world.users[1 - s.commands[0].target];
        assert_eq!(other.permissions, [false, false], "{printed}");
        assert!(
            why.starts_with(&format!(
                "step 0 of 1 (u{} logs in): ",
                s.commands[0].target
            )),
            "{why}"
        );
        assert!(why.contains("entered p0"), "{why}");
        // Compact: names, not flag vectors or the catalog's texts.
        assert!(printed.contains("holds [p0]"), "{printed}");
        assert!(
            !printed.contains("true") && !printed.contains("label"),
            "{printed}"
        );
        assert!(printed.lines().count() <= 8, "{printed}");
    }
}

/// The same on the manual's catalog of ten permissions (`documents` is not first: the rule
/// looks at `support_requests`, the first).
#[test]
fn a_false_rule_on_the_default_catalog_shrinks_to_one_login() {
    let catalog = PermissionCatalog::default_catalog();
    let (s, why) = shrink_false_rule(property::scenarios_for(catalog.clone()), 7);
    let printed = format!("{s:?}");
    assert_eq!(s.commands.len(), 1, "{printed}");
    assert_eq!(s.world.users.len(), 2, "{printed}");
    let failing = &s.world.users[s.commands[0].target];
    let held: Vec<usize> = (0..failing.permissions.len())
        .filter(|&i| failing.permissions[i])
        .collect();
    assert_eq!(held, [0], "{printed}");
    let first = catalog.permissions()[0].key.as_str();
    assert!(printed.contains(&format!("holds [{first}]")), "{printed}");
    assert!(why.contains(&format!("entered {first}")), "{why}");
}
