//! The one translation from an applied store command to the orchestrator's events. The
//! leader and the simulator both call [`of`] on every command the store applied (never on a
//! refused one), so the orchestrator hears of exactly the same changes in both.
//!
//! Every command kind is decided here, with no catch-all: a new command does not compile until
//! someone says which events it raises.

use crate::orchestrator::Event;
use crate::state::StoreCommand;

/// The events an applied command raises, in order.
///
/// An orchestrator batch ([`StoreCommand::Orchestrate`]) raises none: the pass that wrote it
/// already reacted to each of its decisions while making them.
pub fn of(cmd: &StoreCommand) -> Vec<Event> {
    use StoreCommand as C;
    match cmd {
        C::CreateService { id, .. }
        | C::UpdateService { id, .. }
        | C::PutService { id, .. }
        | C::RollbackService { id, .. } => vec![Event::ServiceChanged(id.clone())],
        C::AutoRollback { service, .. } => vec![Event::ServiceChanged(service.clone())],
        C::RemoveService { id, .. } => vec![Event::ServiceRemoved(id.clone())],
        C::SetTaskStatus { id, .. }
        | C::SetTaskDesiredState { id, .. }
        | C::AssignTask { id, .. } => vec![Event::TaskObserved(id.clone())],
        C::PutTask { task, .. } => vec![Event::TaskObserved(task.id.clone())],
        C::PutNode { node, .. } => vec![Event::NodeChanged(node.id.clone())],
        C::SetNodeDescription { id, .. } | C::SetNodeStatus { id, .. } => {
            vec![Event::NodeChanged(id.clone())]
        }
        C::RemoveNode { id, .. } => vec![Event::NodeRemoved(id.clone())],
        C::Batch { commands } => commands.iter().flat_map(of).collect(),
        C::Orchestrate { .. }
        // Tasks are deleted, held and restarted, and runs and statuses stored, only by the
        // orchestrator itself; settings apply from the next decision that reads them.
        | C::RemoveTask { .. }
        | C::SetUpdateStatus { .. }
        | C::DelayStart { .. }
        | C::ClearDelay { .. }
        | C::RecordRestart { .. }
        | C::PutRollout { .. }
        | C::RemoveRollout { .. }
        | C::SetSettings { .. }
        // Nothing the orchestrator decides depends on these.
        | C::InitCluster { .. }
        | C::SetJoinSecret { .. }
        | C::Pki { .. }
        | C::SetNodeCredential { .. }
        | C::PutConfig { .. }
        | C::RemoveConfig { .. }
        | C::PutSecret { .. }
        | C::RemoveSecret { .. }
        | C::PutNetwork { .. }
        | C::RemoveNetwork { .. }
        | C::RecordStackCommit { .. }
        | C::Gitops(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Expect, Fence};
    use reconciler_types::{NodeId, NodeStatus, ServiceId, ServiceSpec, TaskId, TaskStatus};

    #[test]
    fn operator_agent_and_dispatcher_writes_raise_events_and_orchestrator_batches_none() {
        let svc = ServiceId::new("s");
        let update = StoreCommand::UpdateService {
            id: svc.clone(),
            spec: Box::new(ServiceSpec::default()),
            expected: Expect::Any,
        };
        let status = StoreCommand::SetTaskStatus {
            id: TaskId::new("t"),
            status: Box::new(TaskStatus::default()),
        };
        let node =
            StoreCommand::SetNodeStatus { id: NodeId::new("n"), status: NodeStatus::default() };
        let batch =
            StoreCommand::Batch { commands: vec![update.clone(), status.clone(), node.clone()] };
        assert_eq!(
            of(&batch),
            [
                Event::ServiceChanged(svc.clone()),
                Event::TaskObserved(TaskId::new("t")),
                Event::NodeChanged(NodeId::new("n"))
            ]
        );
        let fence = Fence { epoch: 1, claim: true, next_task_id: 0, task_ids: 0 };
        assert!(
            of(&StoreCommand::Orchestrate { fence, commands: vec![update, status, node] })
                .is_empty()
        );
    }
}
