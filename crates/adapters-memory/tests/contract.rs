//! The storage contract suite (portal-testkit) against the in-memory adapter.

use adapters_memory::MemoryStore;
use portal_testkit::Fixture;
use std::sync::Arc;

struct Memory(Arc<MemoryStore>);

impl Fixture for Memory {
    type Store = MemoryStore;

    async fn setup() -> Self {
        Self(Arc::new(MemoryStore::new()))
    }

    fn store(&self) -> Arc<MemoryStore> {
        self.0.clone()
    }

    async fn teardown(self) {}
}

portal_testkit::storage_contract!(Memory);
