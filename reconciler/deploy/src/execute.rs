//! The plan executor: one stack's part of a [`Plan`](reconciler_planner::Plan), the stack
//! as Git has it and the current `ClusterState` → the one [`StoreCommand::Batch`] that
//! carries it out, in `docker stack deploy`'s order ([`steps`]), ending with the stack's
//! applied commit and its deployment record. The batch applies whole or not at all, so a
//! plan that fails to apply never changes what runs.
//!
//! Every write that replaces something read carries the version it read (`Expect`), so a
//! change made between the plan and the write refuses the batch instead of being lost.
//! Secrets arrive sealed (the leader seals them with the cluster key before calling this);
//! a mode change is remove-then-create, as Swarm refuses it in place.

use reconciler_orchestrator::state::gitops::{Deployment, GitopsCommand};
use reconciler_orchestrator::state::{
    ClusterState, ConfigRecord, Expect, SecretRecord, StoreCommand,
};
use reconciler_planner::plan::{Action, ServicePlan, StackPlan, UpdateKind};
use reconciler_planner::secret_digest::{salt_for, salted, same_content};
use reconciler_planner::snapshot::unversioned_config_name;
use reconciler_planner::steps::{ObjectKind, Step, steps};
use reconciler_types::stack::NAMESPACE_LABEL;
use reconciler_types::{ServiceId, StackName, StackSpec};
use std::collections::BTreeMap;

/// A secret's value sealed with the cluster key, and its plain size.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The sealed value.
    pub sealed: Vec<u8>,
    /// The size of the plain value in bytes.
    pub size: u64,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret").field("size", &self.size).finish_non_exhaustive()
    }
}

/// Everything one stack's batch is made from.
pub struct Apply<'a> {
    /// The stack.
    pub stack: &'a StackName,
    /// Its part of the plan.
    pub plan: &'a StackPlan,
    /// The stack as Git has it (`None`: it left Git).
    pub desired: Option<&'a StackSpec>,
    /// The values of the secrets to write, by cluster name, sealed.
    pub secrets: &'a BTreeMap<String, SealedSecret>,
    /// The deployment record (its `services` are filled in here).
    pub deployment: Deployment,
}

/// Why a plan cannot be turned into writes (a plan and a desired side that do not belong
/// together, or a secret value the caller did not seal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecuteError {
    /// The plan names an object Git's side does not have.
    #[error("{kind} {name} is in the plan but not in the stack's files")]
    NotDesired {
        /// `service`, `network`, `config` or `secret`.
        kind: &'static str,
        /// Its cluster name.
        name: String,
    },
    /// A secret to create has no sealed value.
    #[error("secret {0} has no value to write")]
    NoSecretValue(String),
}

fn kind_name(k: ObjectKind) -> &'static str {
    match k {
        ObjectKind::Service => "service",
        ObjectKind::Network => "network",
        ObjectKind::Secret => "secret",
        ObjectKind::Config => "config",
    }
}

/// The batch that carries out `a` on `state`. `new_id` names each service created.
///
/// # Errors
/// See [`ExecuteError`].
pub fn execute(
    a: &Apply<'_>,
    state: &ClusterState,
    new_id: &mut dyn FnMut() -> ServiceId,
) -> Result<StoreCommand, ExecuteError> {
    let mut out = Vec::new();
    let mut deployment = a.deployment.clone();
    for step in steps(a.plan) {
        let missing =
            || ExecuteError::NotDesired { kind: kind_name(step.kind), name: step.name.clone() };
        match step.kind {
            ObjectKind::Service => {
                let written = service(a, &step, state, new_id, &mut out).ok_or_else(missing)?;
                if let Some(id) = written {
                    deployment.services.insert(id, 0);
                }
            }
            ObjectKind::Network => network(a, &step, state, &mut out).ok_or_else(missing)?,
            ObjectKind::Config => config(a, &step, state, &mut out).ok_or_else(missing)?,
            ObjectKind::Secret => secret(a, &step, state, &mut out)?.ok_or_else(missing)?,
        }
    }
    out.push(StoreCommand::RecordStackCommit {
        stack: a.stack.clone(),
        commit: deployment.commit.clone(),
        expected: Expect::Any,
    });
    out.push(StoreCommand::Gitops(Box::new(GitopsCommand::Deployed {
        stack: a.stack.clone(),
        deployment,
        desired: a.desired.cloned().map(Box::new),
    })));
    Ok(StoreCommand::Batch { commands: out })
}

/// A service's id and record version, by its cluster name.
fn find_service(state: &ClusterState, name: &str) -> Option<(ServiceId, u64)> {
    state.services.values().find(|r| r.spec.name == name).map(|r| (r.id.clone(), r.version))
}

fn version_of(v: Option<u64>) -> Expect {
    v.map_or(Expect::Absent, Expect::Version)
}

/// Writes one service step; answers the id written (`None` for a removal), or `None` when
/// Git's side lacks the service.
fn service(
    a: &Apply<'_>,
    step: &Step,
    state: &ClusterState,
    new_id: &mut dyn FnMut() -> ServiceId,
    out: &mut Vec<StoreCommand>,
) -> Option<Option<ServiceId>> {
    let existing = find_service(state, &step.name);
    if step.action == Action::Remove {
        if let Some((id, v)) = existing {
            out.push(StoreCommand::RemoveService { id, expected: Expect::Version(v) });
        }
        return Some(None);
    }
    let spec = a.desired?.services.values().find(|s| s.name == step.name)?.clone();
    let recreate = a
        .plan
        .services
        .values()
        .any(|s: &ServicePlan| s.name == step.name && s.update == Some(UpdateKind::Recreate));
    let id = match existing {
        Some((id, v)) if !recreate => {
            out.push(StoreCommand::UpdateService {
                id: id.clone(),
                spec: Box::new(spec),
                expected: Expect::Version(v),
            });
            id
        }
        other => {
            if let Some((old, v)) = other {
                out.push(StoreCommand::RemoveService { id: old, expected: Expect::Version(v) });
            }
            let id = new_id();
            out.push(StoreCommand::CreateService { id: id.clone(), spec: Box::new(spec) });
            id
        }
    };
    Some(Some(id))
}

fn network(
    a: &Apply<'_>,
    step: &Step,
    state: &ClusterState,
    out: &mut Vec<StoreCommand>,
) -> Option<()> {
    let current = state.networks.get(&step.name).map(|r| r.version);
    if step.action == Action::Remove {
        if let Some(v) = current {
            out.push(StoreCommand::RemoveNetwork {
                name: step.name.clone(),
                expected: Expect::Version(v),
            });
        }
        return Some(());
    }
    let spec = a.desired?.networks.get(&step.name)?.clone();
    out.push(StoreCommand::PutNetwork { spec: Box::new(spec), expected: version_of(current) });
    Some(())
}

/// Whether an object belongs to the stack.
fn in_stack(labels: &BTreeMap<String, String>, stack: &StackName) -> bool {
    labels.get(NAMESPACE_LABEL).is_some_and(|s| s == stack.as_str())
}

fn config(
    a: &Apply<'_>,
    step: &Step,
    state: &ClusterState,
    out: &mut Vec<StoreCommand>,
) -> Option<()> {
    if step.action == Action::Remove {
        // Every version of the config the stack made.
        for c in state.configs.values() {
            if unversioned_config_name(&c.name) == step.name && in_stack(&c.labels, a.stack) {
                let expected = Expect::Version(c.version);
                out.push(StoreCommand::RemoveConfig { name: c.name.clone(), expected });
            }
        }
        return Some(());
    }
    let spec = a.desired?.configs.get(&step.name)?;
    let current = state.configs.get(&spec.name).map(|r| r.version);
    let config = ConfigRecord {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        data: spec.data.clone(),
        version: 0,
    };
    out.push(StoreCommand::PutConfig { config: Box::new(config), expected: version_of(current) });
    Some(())
}

fn secret(
    a: &Apply<'_>,
    step: &Step,
    state: &ClusterState,
    out: &mut Vec<StoreCommand>,
) -> Result<Option<()>, ExecuteError> {
    let current = state.secrets.get(&step.name);
    if step.action == Action::Remove {
        if let Some(c) = current {
            let expected = Expect::Version(c.version);
            out.push(StoreCommand::RemoveSecret { name: step.name.clone(), expected });
        }
        return Ok(Some(()));
    }
    let Some(spec) = a.desired.and_then(|d| d.secrets.get(&step.name)) else { return Ok(None) };
    // A label change keeps the sealed value; a content change carries the new one (and the
    // store refuses it, as Swarm does: only labels may change under a name).
    // The record shows a digest salted per secret (the salt comes from the sealed value);
    // Git's spec has the plain one.
    let same = |c: &SecretRecord| same_content((&c.salt, &c.digest), (&spec.salt, &spec.digest));
    let (sealed, size, salt, digest) = match (current, a.secrets.get(&step.name)) {
        (Some(c), _) if same(c) => (c.sealed.clone(), c.size, c.salt.clone(), c.digest.clone()),
        (_, Some(s)) if spec.salt.is_empty() => {
            let salt = salt_for(&s.sealed);
            let digest = salted(&salt, &spec.digest);
            (s.sealed.clone(), s.size, salt, digest)
        }
        (_, Some(s)) => (s.sealed.clone(), s.size, spec.salt.clone(), spec.digest.clone()),
        (_, None) => return Err(ExecuteError::NoSecretValue(step.name.clone())),
    };
    let secret = SecretRecord {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        digest,
        salt,
        sealed,
        size,
        version: 0,
    };
    out.push(StoreCommand::PutSecret {
        secret: Box::new(secret),
        expected: version_of(current.map(|c| c.version)),
    });
    Ok(Some(()))
}
