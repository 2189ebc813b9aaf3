//! What agents and heartbeats tell the leader, coalesced into few Raft batches (swarmkit's
//! `processUpdates`): task states reported by agents, and node changes (registered, down,
//! unknown). A pending batch keeps one entry per task and per node; it becomes store commands
//! against the state as it is when the batch is written, so anything already superseded (a
//! task deleted meanwhile, a state that moved further) is left out rather than refused.

use crate::error::ApiError;
use reconciler_store::{ClusterState, StoreCommand};
use reconciler_types::{NodeDescription, NodeId, NodeState, TaskId, TaskStatus};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// A node's new state, message and (when reported) address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatusChange {
    /// The state.
    pub state: NodeState,
    /// Why (empty when ready).
    pub message: String,
    /// The address it reported, when it registered.
    pub addr: Option<String>,
}

/// A change to one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeChange {
    /// Its status.
    pub status: Option<NodeStatusChange>,
    /// Its description, when it registered.
    pub description: Option<NodeDescription>,
}

/// Updates waiting for the next batch, and who waits for it.
#[derive(Debug, Default)]
pub struct Pending {
    tasks: BTreeMap<TaskId, TaskStatus>,
    nodes: BTreeMap<NodeId, NodeChange>,
    waiters: Vec<oneshot::Sender<Result<(), ApiError>>>,
}

impl Pending {
    /// Number of tasks and nodes waiting.
    pub fn len(&self) -> usize {
        self.tasks.len() + self.nodes.len()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.waiters.is_empty()
    }

    /// Queues a task's status; of two for the same task, the one further along wins (the later
    /// one on a tie).
    pub fn add_task(&mut self, id: TaskId, status: TaskStatus) {
        match self.tasks.get(&id) {
            Some(queued) if queued.state > status.state => {}
            _ => {
                self.tasks.insert(id, status);
            }
        }
    }

    /// Queues a node change; a change without a description or address keeps the ones queued
    /// before it (a node that registers and goes down in one batch keeps what it reported).
    pub fn add_node(&mut self, id: NodeId, change: NodeChange) {
        let entry = self.nodes.entry(id).or_default();
        if let Some(mut status) = change.status {
            if status.addr.is_none() {
                status.addr = entry.status.take().and_then(|s| s.addr);
            }
            entry.status = Some(status);
        }
        if change.description.is_some() {
            entry.description = change.description;
        }
    }

    /// Someone waits for this batch to be written.
    pub fn wait(&mut self) -> oneshot::Receiver<Result<(), ApiError>> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        rx
    }

    /// Tells every waiter how the batch ended.
    pub fn finish(self, result: &Result<(), ApiError>) {
        for w in self.waiters {
            let _gone = w.send(result.clone());
        }
    }

    /// The store commands of this batch against `state`: task states that would not move
    /// forward, or tasks and nodes that are gone, are left out.
    pub fn commands(&self, state: &ClusterState) -> Vec<StoreCommand> {
        let mut out = Vec::with_capacity(self.len());
        for (id, status) in &self.tasks {
            let Some(record) = state.tasks.get(id) else { continue };
            let current = &record.task.status;
            if status.state < current.state || status == current {
                continue;
            }
            out.push(StoreCommand::SetTaskStatus {
                id: id.clone(),
                status: Box::new(status.clone()),
            });
        }
        for (id, change) in &self.nodes {
            let Some(record) = state.nodes.get(id) else { continue };
            let node = &record.node;
            if let Some(d) = &change.description {
                let mut description = d.clone();
                if description.hostname.is_empty() {
                    description.hostname.clone_from(&node.description.hostname);
                }
                if description != node.description {
                    out.push(StoreCommand::SetNodeDescription {
                        id: id.clone(),
                        description: Box::new(description),
                    });
                }
            }
            if let Some(s) = &change.status {
                let mut status = node.status.clone();
                status.state = s.state;
                status.message.clone_from(&s.message);
                if let Some(addr) = s.addr.as_ref().filter(|a| !a.is_empty()) {
                    status.addr.clone_from(addr);
                }
                if status != node.status {
                    out.push(StoreCommand::SetNodeStatus { id: id.clone(), status });
                }
            }
        }
        out
    }
}

/// Why an agent's report of a task is not recorded, or `None` when it may be.
pub fn refuse_report(
    state: &ClusterState,
    node: &NodeId,
    id: &TaskId,
    status: &TaskStatus,
) -> Option<String> {
    let Some(record) = state.tasks.get(id) else {
        return Some(format!("task {id} not found"));
    };
    if record.task.node_id.as_ref() != Some(node) {
        return Some(format!("task {id} is not assigned to this node"));
    }
    let current = record.task.status.state;
    if status.state < current {
        return Some(format!(
            "task {id}: observed state {current} cannot go back to {}",
            status.state
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_store::Expect;
    use reconciler_types::{Node, Task, TaskState};

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        let mut node = Node { id: NodeId::new("n1"), ..Node::default() };
        node.description.hostname = "h1".into();
        s.apply(&StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent }, 1);
        for (i, id) in ["t1", "t2"].iter().enumerate() {
            let mut task =
                Task { id: TaskId::new(*id), node_id: Some(NodeId::new("n1")), ..Task::default() };
            task.status.state = TaskState::Assigned;
            s.apply(
                &StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent },
                2 + i as u64,
            );
        }
        s
    }

    fn status(state: TaskState) -> TaskStatus {
        TaskStatus { state, ..TaskStatus::default() }
    }

    #[test]
    fn reports_for_other_nodes_unknown_tasks_or_going_backwards_are_refused() {
        let s = state();
        let n1 = NodeId::new("n1");
        let t1 = TaskId::new("t1");
        assert_eq!(refuse_report(&s, &n1, &t1, &status(TaskState::Running)), None);
        let other = refuse_report(&s, &NodeId::new("n2"), &t1, &status(TaskState::Running));
        assert_eq!(other.as_deref(), Some("task t1 is not assigned to this node"));
        let gone = refuse_report(&s, &n1, &TaskId::new("t9"), &status(TaskState::Running));
        assert_eq!(gone.as_deref(), Some("task t9 not found"));
        let back = refuse_report(&s, &n1, &t1, &status(TaskState::New));
        assert_eq!(back.as_deref(), Some("task t1: observed state assigned cannot go back to new"));
    }

    #[test]
    fn a_batch_keeps_the_furthest_state_and_leaves_out_what_is_superseded() {
        let mut s = state();
        let mut p = Pending::default();
        p.add_task(TaskId::new("t1"), status(TaskState::Running));
        p.add_task(TaskId::new("t1"), status(TaskState::Starting));
        p.add_task(TaskId::new("t2"), status(TaskState::Running));
        p.add_task(TaskId::new("t9"), status(TaskState::Running));
        s.apply(
            &StoreCommand::SetTaskStatus {
                id: TaskId::new("t2"),
                status: Box::new(status(TaskState::Failed)),
            },
            9,
        );
        let cmds = p.commands(&s);
        assert_eq!(
            cmds,
            [StoreCommand::SetTaskStatus {
                id: TaskId::new("t1"),
                status: Box::new(status(TaskState::Running))
            }]
        );
        let mut batch = s.clone();
        let r = batch.apply(&StoreCommand::Batch { commands: cmds }, 10);
        assert_eq!(r.refusal, None, "a batch built from the state applies whole");
    }

    #[test]
    fn a_node_change_keeps_its_hostname_and_a_later_down_keeps_the_description() {
        let s = state();
        let mut p = Pending::default();
        let description =
            NodeDescription { nano_cpus: 4_000_000_000, ..NodeDescription::default() };
        let ready = NodeStatusChange {
            state: NodeState::Ready,
            message: String::new(),
            addr: Some("10.0.0.5".into()),
        };
        p.add_node(
            NodeId::new("n1"),
            NodeChange { status: Some(ready), description: Some(description) },
        );
        let down = NodeStatusChange {
            state: NodeState::Down,
            message: "heartbeat failure".into(),
            addr: None,
        };
        p.add_node(NodeId::new("n1"), NodeChange { status: Some(down), description: None });
        let mut applied = s.clone();
        let r = applied.apply(&StoreCommand::Batch { commands: p.commands(&s) }, 10);
        assert_eq!(r.refusal, None);
        let node = &applied.nodes[&NodeId::new("n1")].node;
        assert_eq!(
            (node.status.state, node.status.message.as_str()),
            (NodeState::Down, "heartbeat failure")
        );
        assert_eq!(
            (node.status.addr.as_str(), node.description.nano_cpus),
            ("10.0.0.5", 4_000_000_000)
        );
        assert_eq!(
            node.description.hostname, "h1",
            "an agent reporting no hostname keeps the joined one"
        );
        let again = Pending { nodes: p.nodes.clone(), ..Pending::default() };
        assert!(again.commands(&applied).is_empty(), "nothing to write when nothing changes");
    }
}
