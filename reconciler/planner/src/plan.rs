//! The plan: what a merge (or a sync) would change, stack → object → field, with the
//! rollout each updated service would go through. Serialized as-is for `--output json`
//! (schema: `schema/json/plan.schema.json`); rendered for humans by [`crate::render`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What happens to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It is created.
    Create,
    /// Some of its fields change.
    Update,
    /// It is removed (prune is on).
    Remove,
    /// It left Git but stays in the cluster: prune is off, or it is a network, config or
    /// secret of a stack that is still deployed (prune removes only services).
    Orphan,
}

/// How an updated service's running tasks are affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    /// Tasks are replaced, batch by batch, as `update_config` says.
    Rolling,
    /// No task is replaced: a scale, label or rollout-policy change.
    InPlace,
    /// Swarm refuses the change in place (a mode change): remove, then create.
    Recreate,
}

/// One changed field; `old` is absent when the field is added, `new` when it is removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Compose path (`deploy.replicas`, `environment.LOG_LEVEL`).
    pub path: String,
    /// The value before.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old: Option<String>,
    /// The value after.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub new: Option<String>,
}

/// One rollout batch: the slots whose tasks are replaced together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// 1-based slot numbers (empty for a global service: one task per node).
    pub slots: Vec<u64>,
}

/// How a rolling update would run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Tasks replaced (`None` for a global service: one per eligible node).
    pub tasks: Option<u64>,
    /// Tasks replaced at once (0 = all).
    pub parallelism: u64,
    /// `stop-first` or `start-first`.
    pub order: String,
    /// Pause after each task, in nanoseconds.
    pub delay_ns: u64,
    /// Failure watch after each task, in nanoseconds.
    pub monitor_ns: u64,
    /// `pause`, `continue` or `rollback`.
    pub failure_action: String,
    /// Tolerated failure ratio.
    pub max_failure_ratio: f32,
    /// The batches, in order (empty for a global service).
    pub batches: Vec<Batch>,
    /// The shortest time the rollout can take, in nanoseconds (per batch for a global one).
    pub min_duration_ns: u64,
    /// How `min_duration_ns` is made up, for humans.
    pub min_duration_formula: String,
}

/// A service's part of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    /// Docker's name, `<stack>_<service>`.
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// For an update: replace tasks or not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub update: Option<UpdateKind>,
    /// The changed fields (all of them for a created or removed service: none).
    pub fields: Vec<FieldChange>,
    /// Why tasks are replaced besides the fields (`secret shop_db_password: content changed`).
    pub reasons: Vec<String>,
    /// The rollout, for a rolling update.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rollout: Option<Rollout>,
}

/// A network's, config's or secret's part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPlan {
    /// The cluster name (for a config: the unversioned one).
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// Changed fields (never a secret's value or digest).
    pub fields: Vec<FieldChange>,
    /// Whether the content changed (configs and secrets).
    pub content_changed: bool,
    /// A unified line diff of a config's content (never for secrets).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_diff: Option<String>,
}

/// Counts for the summary table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Objects created.
    pub created: u64,
    /// Objects updated.
    pub updated: u64,
    /// Objects removed.
    pub removed: u64,
    /// Objects orphaned.
    pub orphaned: u64,
    /// Rollout batches over all rolling updates.
    pub rollout_batches: u64,
}

/// One stack's part of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackPlan {
    /// The stack as a whole: created, removed, orphaned or updated (`None`: unchanged).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub action: Option<Action>,
    /// Whether prune is on.
    pub prune: bool,
    /// Services by short name.
    pub services: BTreeMap<String, ServicePlan>,
    /// Networks by cluster name.
    pub networks: BTreeMap<String, ObjectPlan>,
    /// Configs by unversioned cluster name.
    pub configs: BTreeMap<String, ObjectPlan>,
    /// Secrets by cluster name.
    pub secrets: BTreeMap<String, ObjectPlan>,
    /// How many services the stack has in the cluster now.
    pub actual_services: u64,
    /// Counts.
    pub counts: Counts,
}

/// A warning the automatic loop acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The stack concerned.
    pub stack: String,
    /// `stack_removed` or `mass_removal`.
    pub kind: String,
    /// What it says.
    pub message: String,
}

/// The whole plan.
#[must_use]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Plan format version.
    pub format: u32,
    /// The desired side (a commit id).
    pub desired: String,
    /// The actual side (a commit id, a snapshot file, a manager).
    pub actual: String,
    /// Stacks with something to show, by name.
    pub stacks: BTreeMap<String, StackPlan>,
    /// Warnings: removal of a stack or of more than half of a stack's services.
    pub warnings: Vec<Warning>,
    /// Totals over all stacks.
    pub totals: Counts,
}

impl Plan {
    /// Whether applying the plan would change the cluster (orphans change nothing).
    pub fn has_changes(&self) -> bool {
        let Counts { created, updated, removed, orphaned: _, rollout_batches: _ } = self.totals;
        created + updated + removed > 0
    }
}
