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
