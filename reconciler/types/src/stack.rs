//! A whole stack as flotilla deploys it: the service specs `docker stack deploy` would create
//! from the stack files, and the networks, volumes, configs and secrets they use, all under
//! Docker's names. Built by the planner from Git (`DesiredStack`) and, for a running cluster,
//! from the store's records grouped by the `com.docker.stack.namespace` label.

use crate::ids::StackName;
use crate::spec::{ConfigSpec, NetworkSpec, SecretSpec, ServiceSpec, VolumeSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The label Docker puts on every object of a stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// The service label carrying the image as written in the stack file.
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

/// Whether flotilla applies a stack's changes by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// The managers apply every new commit.
    #[default]
    Auto,
    /// Only `flotilla reconcile` applies.
    Manual,
}

/// How a stack is kept in sync (from `flotilla.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StackPolicy {
    /// Automatic or manual sync.
    pub sync: SyncPolicy,
    /// Remove services that left the stack file (otherwise they are orphaned).
    pub prune: bool,
    /// Return services changed by hand to Git's state (default: on with auto sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_heal: Option<bool>,
}

impl StackPolicy {
    /// Whether drift is reverted by the next pass: as set, else on for auto sync.
    pub fn self_heals(&self) -> bool {
        self.self_heal.unwrap_or(self.sync == SyncPolicy::Auto)
    }
}

/// One stack, converted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StackSpec {
    /// The stack's name.
    pub name: StackName,
    /// Services by their short name (the key under `services:`).
    pub services: BTreeMap<String, ServiceSpec>,
    /// Networks the stack creates or references, by cluster name.
    pub networks: BTreeMap<String, NetworkSpec>,
    /// Named volumes, by cluster name.
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// Configs by their unversioned cluster name; each spec's `name` is the versioned name.
    pub configs: BTreeMap<String, ConfigSpec>,
    /// Secrets by cluster name (digest only).
    pub secrets: BTreeMap<String, SecretSpec>,
    /// Sync and prune settings.
    pub policy: StackPolicy,
}

/// Every stack at one revision (desired) or in one cluster (actual).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StackSet {
    /// Where this came from: a commit id, a snapshot file, a manager.
    pub source: String,
    /// The stacks, by name.
    pub stacks: BTreeMap<StackName, StackSpec>,
}
