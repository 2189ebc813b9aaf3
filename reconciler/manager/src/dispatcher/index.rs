//! Which tasks each node holds, kept beside the store so that an assignments poll reads its
//! node's tasks without walking every task of the cluster, and so that only the nodes whose
//! tasks changed are woken. The index follows the store's applied commands
//! ([`touched`] → [`NodeIndex::update`]); after a snapshot or a missed event it is rebuilt
//! from the whole state ([`NodeIndex::refresh`]).

use reconciler_store::cluster_state::TaskRecord;
use reconciler_store::{ClusterState, StoreCommand};
use reconciler_types::{NodeId, ServiceId, TaskId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The tasks an update added to, changed on or removed from each node (a task that moved is
/// listed under both nodes).
pub type Changed = BTreeMap<NodeId, BTreeSet<TaskId>>;

/// What an applied command touched, as far as the dispatcher cares.
#[derive(Debug, Default)]
pub struct Touched {
    /// Tasks written or removed.
    pub tasks: BTreeSet<TaskId>,
    /// Nodes removed (their sessions end).
    pub removed_nodes: Vec<NodeId>,
    /// The cluster settings changed (the heartbeat period may have).
    pub settings: bool,
    /// Services written or removed (the routing mesh follows their published ports).
    pub services: BTreeSet<ServiceId>,
    /// Nodes whose state or address may have changed (the mesh's backends live on them).
    pub nodes: BTreeSet<NodeId>,
}

impl Touched {
    /// Whether nothing the dispatcher follows was touched.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
            && self.removed_nodes.is_empty()
            && !self.settings
            && self.services.is_empty()
            && self.nodes.is_empty()
    }
}

/// Adds what `cmd` touched to `out`.
pub fn touched(cmd: &StoreCommand, out: &mut Touched) {
    use StoreCommand as C;
    match cmd {
        C::PutTask { task, .. } => {
            out.tasks.insert(task.id.clone());
        }
        C::SetTaskDesiredState { id, .. }
        | C::SetTaskStatus { id, .. }
        | C::AssignTask { id, .. }
        | C::RemoveTask { id, .. } => {
            out.tasks.insert(id.clone());
        }
        C::RemoveNode { id, .. } => {
            out.removed_nodes.push(id.clone());
            out.nodes.insert(id.clone());
        }
        C::PutNode { node, .. } => {
            out.nodes.insert(node.id.clone());
        }
        C::SetNodeStatus { id, .. } => {
            out.nodes.insert(id.clone());
        }
        C::CreateService { id, .. }
        | C::UpdateService { id, .. }
        | C::PutService { id, .. }
        | C::RollbackService { id, .. }
        | C::RemoveService { id, .. } => {
            out.services.insert(id.clone());
        }
        C::SetSettings { .. } => out.settings = true,
        C::Batch { commands } | C::Orchestrate { commands, .. } => {
            for c in commands {
                touched(c, out);
            }
        }
        _ => {}
    }
}

/// Tasks by node.
#[derive(Debug, Default)]
pub struct NodeIndex {
    tasks: HashMap<TaskId, (NodeId, u64)>,
    by_node: HashMap<NodeId, BTreeSet<TaskId>>,
}

impl NodeIndex {
    /// Rebuilds the index from `state`; answers the tasks added, changed or removed on each
    /// node since it was last up to date.
    pub fn refresh(&mut self, state: &ClusterState) -> Changed {
        let mut changed = Changed::new();
        for (id, record) in state.tasks.iter() {
            self.sync(id, Some(record), &mut changed);
        }
        let gone: Vec<TaskId> =
            self.tasks.keys().filter(|id| !state.tasks.contains_key(*id)).cloned().collect();
        for id in gone {
            self.sync(&id, None, &mut changed);
        }
        changed
    }

    /// Brings the entries of `ids` up to `state`; answers the tasks they changed, by node.
    pub fn update<'a>(
        &mut self,
        state: &ClusterState,
        ids: impl IntoIterator<Item = &'a TaskId>,
    ) -> Changed {
        let mut changed = Changed::new();
        for id in ids {
            self.sync(id, state.tasks.get(id), &mut changed);
        }
        changed
    }

    fn sync(&mut self, id: &TaskId, record: Option<&TaskRecord>, changed: &mut Changed) {
        let now = record.and_then(|r| Some((r.task.node_id.as_ref()?, r.version)));
        let before = self.tasks.get(id);
        let mut mark = |node: &NodeId| {
            changed.entry(node.clone()).or_default().insert(id.clone());
        };
        match (before, now) {
            (Some((n, v)), Some((node, version))) if n == node && *v == version => {}
            (Some((n, _)), Some((node, version))) if n == node => {
                mark(node);
                self.tasks.insert(id.clone(), (node.clone(), version));
            }
            (_, Some((node, version))) => {
                if let Some((old, _)) = self.tasks.insert(id.clone(), (node.clone(), version)) {
                    self.unlink(&old, id);
                    mark(&old);
                }
                self.by_node.entry(node.clone()).or_default().insert(id.clone());
                mark(node);
            }
            (Some(_), None) => {
                if let Some((old, _)) = self.tasks.remove(id) {
                    self.unlink(&old, id);
                    mark(&old);
                }
            }
            (None, None) => {}
        }
    }

    fn unlink(&mut self, node: &NodeId, id: &TaskId) {
        if let Some(set) = self.by_node.get_mut(node) {
            set.remove(id);
            if set.is_empty() {
                self.by_node.remove(node);
            }
        }
    }

    /// The node a task is placed on.
    pub fn node_of(&self, id: &TaskId) -> Option<&NodeId> {
        self.tasks.get(id).map(|(node, _)| node)
    }

    /// The tasks placed on `node`, in id order.
    pub fn tasks_of(&self, node: &NodeId) -> impl Iterator<Item = &TaskId> {
        self.by_node.get(node).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_store::Expect;
    use reconciler_types::{Task, TaskState, TaskStatus};

    fn put(id: &str, node: Option<&str>) -> StoreCommand {
        let task = Task { id: TaskId::new(id), node_id: node.map(NodeId::new), ..Task::default() };
        StoreCommand::PutTask { task: Box::new(task), expected: Expect::Any }
    }

    fn of(ix: &NodeIndex, node: &str) -> Vec<String> {
        ix.tasks_of(&NodeId::new(node)).map(|t| t.to_string()).collect()
    }

    /// `node: task task…` for each node an update changed.
    fn listed(changed: &Changed) -> Vec<String> {
        let line = |(n, ids): (&NodeId, &BTreeSet<TaskId>)| {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            format!("{n}: {}", ids.join(" "))
        };
        changed.iter().map(line).collect()
    }

    /// Applies `cmd` and updates the index from what it touched.
    fn step(s: &mut ClusterState, ix: &mut NodeIndex, cmd: StoreCommand) -> Changed {
        let index = s.last_index + 1;
        assert_eq!(s.apply(&cmd, index).refusal, None);
        let mut t = Touched::default();
        touched(&cmd, &mut t);
        ix.update(s, &t.tasks)
    }

    #[test]
    fn updates_report_exactly_the_nodes_whose_tasks_changed() {
        let mut s = ClusterState::default();
        let mut ix = NodeIndex::default();
        let batch = StoreCommand::Batch {
            commands: vec![put("t1", Some("a")), put("t2", Some("b")), put("t3", None)],
        };
        assert_eq!(listed(&step(&mut s, &mut ix, batch)), ["a: t1", "b: t2"]);
        let status = TaskStatus { state: TaskState::Running, ..Default::default() };
        let report =
            StoreCommand::SetTaskStatus { id: TaskId::new("t1"), status: Box::new(status) };
        assert_eq!(listed(&step(&mut s, &mut ix, report)), ["a: t1"]);
        assert_eq!(listed(&step(&mut s, &mut ix, put("t3", Some("b")))), ["b: t3"]);
        let rm = StoreCommand::RemoveTask { id: TaskId::new("t1"), expected: Expect::Any };
        assert_eq!(listed(&step(&mut s, &mut ix, rm)), ["a: t1"]);
        let moved = step(&mut s, &mut ix, put("t2", Some("a")));
        assert_eq!(listed(&moved), ["a: t2", "b: t2"], "moved: both nodes");
        assert_eq!(ix.node_of(&TaskId::new("t2")), Some(&NodeId::new("a")));
        assert_eq!(of(&ix, "a"), ["t2"]);
        assert_eq!(of(&ix, "b"), ["t3"]);
    }

    #[test]
    fn a_rebuild_finds_what_the_events_missed() {
        let mut s = ClusterState::default();
        let mut ix = NodeIndex::default();
        step(&mut s, &mut ix, put("t1", Some("a")));
        s.apply(&put("t2", Some("b")), 9);
        s.apply(&StoreCommand::RemoveTask { id: TaskId::new("t1"), expected: Expect::Any }, 10);
        assert_eq!(listed(&ix.refresh(&s)), ["a: t1", "b: t2"]);
        assert!(ix.refresh(&s).is_empty(), "nothing new");
        assert_eq!((of(&ix, "a").len(), of(&ix, "b")), (0, vec!["t2".to_owned()]));
    }
}
