//! Configs, secrets and networks, rollout runs and stack histories. Configs and secrets
//! follow Swarm's rules (docs/swarm-semantics.md §9, S47, S48; swarmkit
//! `controlapi/config.go`, `controlapi/secret.go`): content never changes under a name (only
//! labels may), sizes are bounded, and an object a service uses cannot be removed.

use super::apply::{check, not_found};
use super::command::{Expect, RecordKind, Refusal, StoreCommand};
use super::records::{
    AppliedCommit, ConfigRecord, NetworkRecord, RolloutRecord, SecretRecord, ServiceRecord,
};
use super::table::Table;
use super::{ClusterState, STACK_HISTORY_LIMIT};
use crate::rollout::Rollout;
use reconciler_types::{ServiceId, StackName};

/// Swarm's largest config (`MaxConfigSize`, 1000 KiB): data must be shorter.
pub const MAX_CONFIG_SIZE: usize = 1000 * 1024;
/// Swarm's largest secret (`MaxSecretSize`, 500 KiB): data must be shorter.
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;
/// Swarm's refusal of a content change under the same name.
pub const MSG_LABELS_ONLY: &str = "only updates to Labels are allowed";

/// `config '<name>' is in use by the following service: <svc>` (or `secret`, `services`).
fn in_use(kind: &str, name: &str, users: &[&str]) -> Refusal {
    let noun = if users.len() == 1 { "service" } else { "services" };
    Refusal::invalid(format!(
        "{kind} '{name}' is in use by the following {noun}: {}",
        users.join(", ")
    ))
}

/// Removes a record after its CAS check; a missing record is not found.
fn remove_checked<K: Ord + Clone, V: Clone>(
    table: &mut Table<K, V>,
    kind: RecordKind,
    key: &K,
    id: &str,
    expected: Expect,
    version: impl Fn(&V) -> u64,
) -> Result<(), Refusal> {
    let actual = table.get(key).map(version);
    if actual.is_none() {
        return Err(not_found(kind, id));
    }
    check(kind, id, expected, actual)?;
    table.remove(key);
    Ok(())
}

impl ClusterState {
    /// The services whose current spec uses a config (`configs`) or secret.
    fn users(&self, uses: impl Fn(&ServiceRecord) -> bool) -> Vec<&str> {
        self.services.values().filter(|s| uses(s)).map(|s| s.spec.name.as_str()).collect()
    }

    pub(super) fn apply_object(&mut self, cmd: &StoreCommand, index: u64) -> Result<(), Refusal> {
        match cmd {
            StoreCommand::PutConfig { config, expected } => {
                self.put_config(config, *expected, index)
            }
            StoreCommand::RemoveConfig { name, expected } => {
                let refs = |s: &ServiceRecord| {
                    s.spec
                        .task_template
                        .container_spec
                        .configs
                        .iter()
                        .any(|c| &c.config_name == name)
                };
                let users = self.users(refs);
                if !users.is_empty() {
                    return Err(in_use("config", name, &users));
                }
                remove_checked(&mut self.configs, RecordKind::Config, name, name, *expected, |r| {
                    r.version
                })
            }
            StoreCommand::PutSecret { secret, expected } => {
                self.put_secret(secret, *expected, index)
            }
            StoreCommand::RemoveSecret { name, expected } => {
                let refs = |s: &ServiceRecord| {
                    s.spec
                        .task_template
                        .container_spec
                        .secrets
                        .iter()
                        .any(|c| &c.secret_name == name)
                };
                let users = self.users(refs);
                if !users.is_empty() {
                    return Err(in_use("secret", name, &users));
                }
                remove_checked(&mut self.secrets, RecordKind::Secret, name, name, *expected, |r| {
                    r.version
                })
            }
            StoreCommand::PutNetwork { spec, expected } => {
                let actual = self.networks.get(&spec.name).map(|r| r.version);
                check(RecordKind::Network, &spec.name, *expected, actual)?;
                self.networks.insert(
                    spec.name.clone(),
                    NetworkRecord { spec: (**spec).clone(), version: index },
                );
                Ok(())
            }
            StoreCommand::RemoveNetwork { name, expected } => remove_checked(
                &mut self.networks,
                RecordKind::Network,
                name,
                name,
                *expected,
                |r| r.version,
            ),
            StoreCommand::PutRollout { service, rollout, expected } => {
                self.put_rollout(service, rollout, *expected, index)
            }
            StoreCommand::RemoveRollout { service, expected } => remove_checked(
                &mut self.rollouts,
                RecordKind::Rollout,
                service,
                service.as_str(),
                *expected,
                |r| r.version,
            ),
            StoreCommand::RecordStackCommit { stack, commit, expected } => {
                self.record_stack_commit(stack, commit, *expected, index)
            }
            _ => Err(Refusal::invalid("not a config, secret, network, rollout or stack command")),
        }
    }

    fn put_config(
        &mut self,
        config: &ConfigRecord,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let current = self.configs.get(&config.name);
        check(RecordKind::Config, &config.name, expected, current.map(|r| r.version))?;
        if config.data.is_empty() || config.data.len() >= MAX_CONFIG_SIZE {
            return Err(Refusal::invalid(format!(
                "config data must be larger than 0 and less than {MAX_CONFIG_SIZE} bytes"
            )));
        }
        if current.is_some_and(|c| c.data != config.data) {
            return Err(Refusal::invalid(MSG_LABELS_ONLY));
        }
        self.configs.insert(config.name.clone(), ConfigRecord { version: index, ..config.clone() });
        Ok(())
    }

    fn put_secret(
        &mut self,
        secret: &SecretRecord,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let current = self.secrets.get(&secret.name);
        check(RecordKind::Secret, &secret.name, expected, current.map(|r| r.version))?;
        if secret.size == 0 || secret.size >= MAX_SECRET_SIZE {
            return Err(Refusal::invalid(format!(
                "secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes"
            )));
        }
        if current.is_some_and(|c| c.digest != secret.digest) {
            return Err(Refusal::invalid(MSG_LABELS_ONLY));
        }
        self.secrets.insert(secret.name.clone(), SecretRecord { version: index, ..secret.clone() });
        Ok(())
    }

    fn put_rollout(
        &mut self,
        service: &ServiceId,
        rollout: &Rollout,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        if !self.services.contains_key(service) {
            return Err(not_found(RecordKind::Service, service.as_str()));
        }
        let actual = self.rollouts.get(service).map(|r| r.version);
        check(RecordKind::Rollout, service.as_str(), expected, actual)?;
        let record = RolloutRecord { rollout: rollout.clone(), version: index };
        self.rollouts.insert(service.clone(), record);
        Ok(())
    }

    fn record_stack_commit(
        &mut self,
        stack: &StackName,
        commit: &str,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let actual = self.stacks.get(stack).map(|h| h.version);
        check(RecordKind::Stack, stack.as_str(), expected, actual)?;
        let history = self.stacks.get_or_insert_with(stack.clone(), Default::default);
        history.applied.push(AppliedCommit { commit: commit.to_owned(), index });
        let excess = history.applied.len().saturating_sub(STACK_HISTORY_LIMIT);
        history.applied.drain(..excess);
        history.version = index;
        Ok(())
    }
}
