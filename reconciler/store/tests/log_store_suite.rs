//! openraft's storage conformance suite against the redb log store and state machine.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openraft::testing::{StoreBuilder, Suite};
use reconciler_store::log_store::{LogStore, open_database};
use reconciler_store::state_machine::StateMachineStore;
use reconciler_store::type_config::{StorageError, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_database(&dir.path().join("raft.redb")).expect("open redb");
        let (sm, _handle) = StateMachineStore::open(db.clone())?;
        Ok((dir, LogStore::new(db), sm))
    }
}

#[test]
fn redb_store_passes_the_openraft_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}
