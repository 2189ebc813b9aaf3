//! The cluster's stacks as the planner sees them: the records of the live `ClusterState`
//! turned into the planner's [`LiveObjects`] and grouped by [`group`], the same grouping
//! that reads a state snapshot for `reconcile --dry-run` (so the dry run against a manager
//! and the leader's loop compare Git with the same thing).

use reconciler_orchestrator::state::ClusterState;
use reconciler_planner::snapshot::{LiveObjects, group};
use reconciler_types::{ConfigSpec, SecretSpec, StackSet};

/// The objects of `state`, before grouping.
pub fn live_objects(state: &ClusterState) -> LiveObjects {
    LiveObjects {
        services: state.services.values().map(|r| r.spec.clone()).collect(),
        networks: state.networks.values().map(|r| r.spec.clone()).collect(),
        secrets: state
            .secrets
            .values()
            .map(|s| SecretSpec {
                name: s.name.clone(),
                labels: s.labels.clone(),
                digest: s.digest.clone(),
                salt: s.salt.clone(),
                external: false,
            })
            .collect(),
        configs: state
            .configs
            .values()
            .map(|c| ConfigSpec {
                name: c.name.clone(),
                labels: c.labels.clone(),
                data: c.data.clone(),
                external: false,
            })
            .collect(),
        applied: state
            .stacks
            .iter()
            .filter_map(|(name, h)| h.applied.last().map(|c| (name.to_string(), c.commit.clone())))
            .collect(),
    }
}

/// The stacks that run in `state`; `source` names the cluster in the plan.
pub fn actual(state: &ClusterState, source: &str) -> StackSet {
    group(live_objects(state), source)
}
