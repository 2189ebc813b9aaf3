//! The order in which one stack's plan is carried out, as `docker stack deploy` carries it
//! out (docs/swarm-semantics.md §10): with prune, the services that left Git are removed
//! first; then networks, secrets and configs are created or updated; then services are
//! created or updated (Docker's order among services is Go map order; flotilla's is by
//! name). Orphans are left alone. A stack that leaves Git with prune on is taken down as
//! `docker stack rm` does: services, then secrets, configs and networks.

use crate::plan::{Action, ObjectPlan, StackPlan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kind of object a step acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A service.
    Service,
    /// A network.
    Network,
    /// A secret.
    Secret,
    /// A config.
    Config,
}

/// One step: create, update or remove one object (never [`Action::Orphan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What happens.
    pub action: Action,
    /// To what kind of object.
    pub kind: ObjectKind,
    /// The object's cluster name (for a config: the unversioned one).
    pub name: String,
}

fn objects(kind: ObjectKind, map: &BTreeMap<String, ObjectPlan>, keep: Keep) -> Vec<Step> {
    map.values()
        .filter(|o| keep(o.action))
        .map(|o| Step { action: o.action, kind, name: o.name.clone() })
        .collect()
}

fn services(plan: &StackPlan, keep: Keep) -> Vec<Step> {
    plan.services
        .values()
        .filter(|s| keep(s.action))
        .map(|s| Step { action: s.action, kind: ObjectKind::Service, name: s.name.clone() })
        .collect()
}

/// Which actions a group of steps takes.
type Keep = fn(Action) -> bool;

fn removed(a: Action) -> bool {
    a == Action::Remove
}

fn created_or_updated(a: Action) -> bool {
    matches!(a, Action::Create | Action::Update)
}

/// The steps of `plan`, in the order they are carried out.
pub fn steps(plan: &StackPlan) -> Vec<Step> {
    let mut out = services(plan, removed);
    if plan.action == Some(Action::Remove) {
        out.extend(objects(ObjectKind::Secret, &plan.secrets, removed));
        out.extend(objects(ObjectKind::Config, &plan.configs, removed));
        out.extend(objects(ObjectKind::Network, &plan.networks, removed));
        return out;
    }
    out.extend(objects(ObjectKind::Network, &plan.networks, created_or_updated));
    out.extend(objects(ObjectKind::Secret, &plan.secrets, created_or_updated));
    out.extend(objects(ObjectKind::Config, &plan.configs, created_or_updated));
    out.extend(services(plan, created_or_updated));
    out
}
