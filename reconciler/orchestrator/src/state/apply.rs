//! [`ClusterState::apply`]: one command at a log index, batches all-or-nothing, orchestrator
//! batches behind their fence; and the rules for the cluster record, nodes and tasks.

use super::command::{Expect, Fence, RecordKind, Refusal, StoreCommand, StoreResponse};
use super::records::{ClusterInfo, ClusterSettings, DelayedStart, NodeRecord, RestartHistory};
use super::{ClusterState, TaskRecord};
use crate::slot::SlotKey;
use reconciler_types::{
    MonoTime, Node, NodeDescription, NodeId, NodeRole, NodeStatus, ServiceId, Task, TaskId,
    TaskState, TaskStatus,
};
use std::collections::BTreeMap;

/// Checks a compare-and-set condition against a record's version.
pub(super) fn check(
    kind: RecordKind,
    id: &str,
    expected: Expect,
    actual: Option<u64>,
) -> Result<(), Refusal> {
    let ok = match expected {
        Expect::Any => true,
        Expect::Absent => actual.is_none(),
        Expect::Version(v) => actual == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::VersionMismatch { kind, id: id.to_owned(), expected, actual })
    }
}

/// A record that does not exist.
pub(super) fn not_found(kind: RecordKind, id: &str) -> Refusal {
    Refusal::NotFound { kind, id: id.to_owned() }
}

/// Whether a refusal inside an orchestrator batch only means the decision is moot: its task,
/// service or rollout is gone, or its task's observed state already moved past it.
fn moot(r: &Refusal) -> bool {
    match r {
        Refusal::NotFound { kind, .. } => {
            matches!(kind, RecordKind::Task | RecordKind::Service | RecordKind::Rollout)
        }
        Refusal::StaleStatus { .. } => true,
        _ => false,
    }
}

impl ClusterState {
    /// Applies one command written at log `index`. Pure: the same command on the same state
    /// always gives the same result. A refused command changes nothing but `last_index`.
    pub fn apply(&mut self, cmd: &StoreCommand, index: u64) -> StoreResponse {
        if self.derived.savepoints == 0 && !self.indexed() {
            self.reindex();
        }
        let result = match cmd {
            StoreCommand::Batch { commands } => self.apply_batch(commands, index),
            StoreCommand::Orchestrate { fence, commands } => {
                self.apply_orchestrate(fence, commands, index)
            }
            other => self.apply_one(other, index),
        };
        self.last_index = index;
        StoreResponse { index, refusal: result.err() }
    }

    fn apply_batch(&mut self, commands: &[StoreCommand], index: u64) -> Result<(), Refusal> {
        let sp = self.savepoint();
        for cmd in commands {
            let result = match cmd {
                StoreCommand::Batch { commands } => self.apply_batch(commands, index),
                other => self.apply_one(other, index),
            };
            if let Err(e) = result {
                self.rollback(sp);
                return Err(e);
            }
        }
        self.commit(sp);
        Ok(())
    }

    fn apply_orchestrate(
        &mut self,
        fence: &Fence,
        commands: &[StoreCommand],
        index: u64,
    ) -> Result<(), Refusal> {
        let c = self.counters;
        let epoch_ok = if fence.claim {
            fence.epoch > c.orchestrator_epoch
        } else {
            fence.epoch == c.orchestrator_epoch
        };
        if !epoch_ok || fence.next_task_id != c.next_task_id {
            return Err(Refusal::Fenced {
                epoch: fence.epoch,
                current_epoch: c.orchestrator_epoch,
                next_task_id: fence.next_task_id,
                current_next_task_id: c.next_task_id,
            });
        }
        let sp = self.savepoint();
        for cmd in commands {
            match self.apply_one(cmd, index) {
                Err(e) if !moot(&e) => {
                    self.rollback(sp);
                    return Err(e);
                }
                _ => {}
            }
        }
        self.counters.next_task_id = c.next_task_id.saturating_add(fence.task_ids);
        self.counters.orchestrator_epoch = fence.epoch;
        self.commit(sp);
        Ok(())
    }

    /// Applies one command that is not a batch.
    pub(super) fn apply_one(&mut self, cmd: &StoreCommand, index: u64) -> Result<(), Refusal> {
        use StoreCommand as C;
        match cmd {
            C::InitCluster { info } => self.init_cluster(info, index),
            C::SetJoinSecret { role, secret, expected } => {
                self.set_join_secret(*role, secret, *expected, index)
            }
            C::SetSettings { settings, expected } => self.set_settings(settings, *expected, index),
            C::PutNode { node, expected } => self.put_node(node, *expected, index),
            C::SetNodeDescription { id, description } => {
                self.set_node_description(id, description, index)
            }
            C::SetNodeStatus { id, status } => self.set_node_status(id, status, index),
            C::SetNodeCredential { id, digest } => self.set_node_credential(id, digest, index),
            C::RemoveNode { id, expected } => self.remove_node(id, *expected),
            C::Pki { command } => self.apply_pki(command, index),
            C::CreateService { id, spec } => self.create_service(id, spec, index),
            C::UpdateService { id, spec, expected } => {
                self.update_service(id, spec, *expected, index)
            }
            C::PutService { id, spec, expected } => self.put_service(id, spec, *expected, index),
            C::RollbackService { id, expected, at } => {
                self.rollback_service(id, *expected, *at, index)
            }
            C::RemoveService { id, expected } => self.remove_service(id, *expected),
            C::SetUpdateStatus { service, status } => {
                self.set_update_status(service, status.clone(), index)
            }
            C::AutoRollback { service, status } => self.auto_rollback(service, status, index),
            C::PutTask { task, expected } => self.put_task(task, *expected, index),
            C::SetTaskDesiredState { id, state, expected } => {
                self.set_desired(id, *state, *expected, index)
            }
            C::SetTaskStatus { id, status } => self.set_task_status(id, status, index),
            C::AssignTask { id, node, message, at } => self.assign(id, node, message, *at, index),
            C::RemoveTask { id, expected } => self.remove_task(id, *expected),
            C::DelayStart { task, delay } => self.delay_start(task, delay),
            C::ClearDelay { task } => {
                self.delayed.remove(task);
                Ok(())
            }
            C::RecordRestart { service, slot, spec_version, at } => {
                self.record_restart(service, slot, *spec_version, *at)
            }
            C::PutConfig { .. }
            | C::RemoveConfig { .. }
            | C::PutSecret { .. }
            | C::RemoveSecret { .. }
            | C::PutNetwork { .. }
            | C::RemoveNetwork { .. }
            | C::PutRollout { .. }
            | C::RemoveRollout { .. }
            | C::RecordStackCommit { .. } => self.apply_object(cmd, index),
            C::Gitops(g) => self.apply_gitops(g, index),
            C::Batch { .. } | C::Orchestrate { .. } => {
                Err(Refusal::invalid("an orchestrator batch cannot contain another batch"))
            }
        }
    }

    fn init_cluster(&mut self, info: &ClusterInfo, index: u64) -> Result<(), Refusal> {
        if self.cluster.is_some() {
            return Err(Refusal::AlreadyInitialized);
        }
        self.cluster = Some(ClusterInfo { version: index, ..info.clone() });
        Ok(())
    }

    fn set_join_secret(
        &mut self,
        role: NodeRole,
        secret: &str,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let Some(info) = self.cluster.as_mut() else {
            return Err(not_found(RecordKind::Cluster, "cluster"));
        };
        check(RecordKind::Cluster, &info.id, expected, Some(info.version))?;
        match role {
            NodeRole::Worker => secret.clone_into(&mut info.worker_secret),
            NodeRole::Manager => secret.clone_into(&mut info.manager_secret),
        }
        info.version = index;
        Ok(())
    }

    fn set_settings(
        &mut self,
        settings: &ClusterSettings,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        check(RecordKind::Settings, "settings", expected, Some(self.settings.version))?;
        self.settings = ClusterSettings { version: index, ..*settings };
        Ok(())
    }

    fn put_node(&mut self, node: &Node, expected: Expect, index: u64) -> Result<(), Refusal> {
        let actual = self.nodes.get(&node.id).map(|r| r.version);
        check(RecordKind::Node, node.id.as_str(), expected, actual)?;
        let credential_digest = self.nodes.get(&node.id).and_then(|r| r.credential_digest.clone());
        let record = NodeRecord { node: node.clone(), credential_digest, version: index };
        self.nodes.insert(node.id.clone(), record);
        Ok(())
    }

    fn set_node_credential(
        &mut self,
        id: &NodeId,
        digest: &str,
        index: u64,
    ) -> Result<(), Refusal> {
        let record =
            self.nodes.get_mut(id).ok_or_else(|| not_found(RecordKind::Node, id.as_str()))?;
        record.credential_digest = Some(digest.to_owned());
        record.version = index;
        Ok(())
    }

    fn node_mut(&mut self, id: &NodeId, index: u64) -> Result<&mut Node, Refusal> {
        let record =
            self.nodes.get_mut(id).ok_or_else(|| not_found(RecordKind::Node, id.as_str()))?;
        record.version = index;
        Ok(&mut record.node)
    }

    fn set_node_description(
        &mut self,
        id: &NodeId,
        description: &NodeDescription,
        index: u64,
    ) -> Result<(), Refusal> {
        self.node_mut(id, index)?.description = description.clone();
        Ok(())
    }

    fn set_node_status(
        &mut self,
        id: &NodeId,
        status: &NodeStatus,
        index: u64,
    ) -> Result<(), Refusal> {
        self.node_mut(id, index)?.status = status.clone();
        Ok(())
    }

    fn remove_node(&mut self, id: &NodeId, expected: Expect) -> Result<(), Refusal> {
        let actual = self.nodes.get(id).map(|r| r.version);
        let _ = actual.ok_or_else(|| not_found(RecordKind::Node, id.as_str()))?;
        check(RecordKind::Node, id.as_str(), expected, actual)?;
        self.nodes.remove(id);
        let removed = super::pki::NodeCertRecord { removed: true, ..Default::default() };
        self.node_certs.insert(id.clone(), removed);
        Ok(())
    }

    fn put_task(&mut self, task: &Task, expected: Expect, index: u64) -> Result<(), Refusal> {
        let actual = self.tasks.get(&task.id).map(|r| r.version);
        check(RecordKind::Task, task.id.as_str(), expected, actual)?;
        let record = TaskRecord { task: task.clone(), version: index };
        self.write_task(&task.id, |tasks| tasks.insert(task.id.clone(), record));
        Ok(())
    }

    /// Changes a task in place after its CAS check (the indexes follow).
    fn update_task(
        &mut self,
        id: &TaskId,
        expected: Expect,
        index: u64,
        f: impl FnOnce(&mut Task),
    ) -> Result<(), Refusal> {
        let version = self.tasks.get(id).map(|r| r.version);
        let version = version.ok_or_else(|| not_found(RecordKind::Task, id.as_str()))?;
        check(RecordKind::Task, id.as_str(), expected, Some(version))?;
        self.write_task(id, |tasks| {
            if let Some(record) = tasks.get_mut(id) {
                record.version = index;
                f(&mut record.task);
            }
        });
        Ok(())
    }

    fn set_desired(
        &mut self,
        id: &TaskId,
        state: TaskState,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        self.update_task(id, expected, index, |t| t.desired_state = state)
    }

    fn set_task_status(
        &mut self,
        id: &TaskId,
        status: &TaskStatus,
        index: u64,
    ) -> Result<(), Refusal> {
        let current = self.task(id).ok_or_else(|| not_found(RecordKind::Task, id.as_str()))?;
        let current = current.status.state;
        if status.state < current {
            return Err(Refusal::StaleStatus {
                id: id.to_string(),
                current,
                proposed: status.state,
            });
        }
        self.update_task(id, Expect::Any, index, |t| t.status = status.clone())
    }

    fn assign(
        &mut self,
        id: &TaskId,
        node: &NodeId,
        message: &str,
        at: MonoTime,
        index: u64,
    ) -> Result<(), Refusal> {
        self.update_task(id, Expect::Any, index, |t| place(t, node, message, at))
    }

    fn remove_task(&mut self, id: &TaskId, expected: Expect) -> Result<(), Refusal> {
        let actual = self.tasks.get(id).map(|r| r.version);
        let _ = actual.ok_or_else(|| not_found(RecordKind::Task, id.as_str()))?;
        check(RecordKind::Task, id.as_str(), expected, actual)?;
        self.write_task(id, |tasks| tasks.remove(id));
        self.delayed.remove(id);
        Ok(())
    }

    fn delay_start(&mut self, task: &TaskId, delay: &DelayedStart) -> Result<(), Refusal> {
        if !self.tasks.contains_key(task) {
            return Err(not_found(RecordKind::Task, task.as_str()));
        }
        self.delayed.insert(task.clone(), delay.clone());
        Ok(())
    }

    fn record_restart(
        &mut self,
        service: &ServiceId,
        slot: &SlotKey,
        spec_version: u64,
        at: MonoTime,
    ) -> Result<(), Refusal> {
        if !self.services.contains_key(service) {
            return Err(not_found(RecordKind::Service, service.as_str()));
        }
        let slots = self.restarts.get_or_insert_with(service.clone(), BTreeMap::new);
        let h = slots.entry(slot.clone()).or_default();
        if h.spec_version != spec_version {
            *h = RestartHistory { spec_version, times: Vec::new() };
        }
        h.times.push(at);
        Ok(())
    }
}

/// What [`StoreCommand::AssignTask`] does to the task it places: its node, observed at least
/// ASSIGNED, the scheduler's message, error cleared.
pub fn place(t: &mut Task, node: &NodeId, message: &str, at: MonoTime) {
    t.node_id = Some(node.clone());
    t.status.state = t.status.state.max(TaskState::Assigned);
    message.clone_into(&mut t.status.message);
    t.status.err.clear();
    t.status.timestamp = at;
}
