//! The replicated state is the one model of the orchestration core
//! ([`reconciler_orchestrator::state`]): the store applies it, the leader's orchestrator and
//! the simulator read it. Re-exported here under the store's historical paths.

pub use reconciler_orchestrator::state::{
    AppliedCommit, ClusterInfo, ClusterSettings, ClusterState, ConfigRecord, Counters,
    DelayedStart, LastPorts, NetworkRecord, NodeRecord, RestartHistory, RolloutRecord,
    STACK_HISTORY_LIMIT, SecretRecord, ServiceRecord, StackHistory, Table, TaskRecord,
};
