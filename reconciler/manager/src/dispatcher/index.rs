//! Which tasks each node holds, kept beside the store so that an assignments poll reads its
//! node's tasks without walking every task of the cluster, and so that only the nodes whose
//! tasks changed are woken. [`NodeIndex::refresh`] compares the state with what the index
//! last saw (a task's record version changes with every write to it).

use reconciler_store::ClusterState;
use reconciler_types::{NodeId, TaskId};
use std::collections::{BTreeSet, HashMap};

/// Tasks by node.
#[derive(Debug, Default)]
pub struct NodeIndex {
    tasks: HashMap<TaskId, (NodeId, u64)>,
    by_node: HashMap<NodeId, BTreeSet<TaskId>>,
}

impl NodeIndex {
    /// Brings the index up to `state`; answers the nodes whose tasks were added, changed or
    /// removed.
    pub fn refresh(&mut self, state: &ClusterState) -> BTreeSet<NodeId> {
        let mut changed = BTreeSet::new();
        let mut placed = 0usize;
        for (id, record) in &state.tasks {
            let Some(node) = &record.task.node_id else { continue };
            placed += 1;
            match self.tasks.get_mut(id) {
                Some((n, v)) if n == node => {
                    if *v != record.version {
                        *v = record.version;
                        changed.insert(node.clone());
                    }
                }
                Some((n, v)) => {
                    let old = std::mem::replace(n, node.clone());
                    *v = record.version;
                    self.unlink(&old, id);
                    self.by_node.entry(node.clone()).or_default().insert(id.clone());
                    changed.insert(old);
                    changed.insert(node.clone());
                }
                None => {
                    self.tasks.insert(id.clone(), (node.clone(), record.version));
                    self.by_node.entry(node.clone()).or_default().insert(id.clone());
                    changed.insert(node.clone());
                }
            }
        }
        if self.tasks.len() > placed {
            let gone: Vec<TaskId> = self
                .tasks
                .keys()
                .filter(|id| state.tasks.get(*id).is_none_or(|r| r.task.node_id.is_none()))
                .cloned()
                .collect();
            for id in gone {
                if let Some((node, _)) = self.tasks.remove(&id) {
                    self.unlink(&node, &id);
                    changed.insert(node);
                }
            }
        }
        changed
    }

    fn unlink(&mut self, node: &NodeId, id: &TaskId) {
        if let Some(set) = self.by_node.get_mut(node) {
            set.remove(id);
            if set.is_empty() {
                self.by_node.remove(node);
            }
        }
    }

    /// The tasks placed on `node`, in id order.
    pub fn tasks_of(&self, node: &NodeId) -> impl Iterator<Item = &TaskId> {
        self.by_node.get(node).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_store::{Expect, StoreCommand};
    use reconciler_types::{Task, TaskState};

    fn put(s: &mut ClusterState, id: &str, node: Option<&str>, index: u64) {
        let task = Task { id: TaskId::new(id), node_id: node.map(NodeId::new), ..Task::default() };
        s.apply(&StoreCommand::PutTask { task, expected: Expect::Any }, index);
    }

    fn of(ix: &NodeIndex, node: &str) -> Vec<String> {
        ix.tasks_of(&NodeId::new(node)).map(|t| t.to_string()).collect()
    }

    fn nodes(names: &[&str]) -> BTreeSet<NodeId> {
        names.iter().map(|n| NodeId::new(*n)).collect()
    }

    #[test]
    fn refresh_reports_exactly_the_nodes_whose_tasks_changed() {
        let mut s = ClusterState::default();
        let mut ix = NodeIndex::default();
        put(&mut s, "t1", Some("a"), 1);
        put(&mut s, "t2", Some("b"), 2);
        put(&mut s, "t3", None, 3);
        assert_eq!(ix.refresh(&s), nodes(&["a", "b"]));
        assert!(ix.refresh(&s).is_empty(), "nothing new");
        let status =
            reconciler_types::TaskStatus { state: TaskState::Running, ..Default::default() };
        s.apply(&StoreCommand::SetTaskStatus { id: TaskId::new("t1"), status }, 4);
        assert_eq!(ix.refresh(&s), nodes(&["a"]));
        put(&mut s, "t3", Some("b"), 5);
        s.apply(&StoreCommand::RemoveTask { id: TaskId::new("t1"), expected: Expect::Any }, 6);
        assert_eq!(ix.refresh(&s), nodes(&["a", "b"]));
        assert_eq!(of(&ix, "a"), Vec::<String>::new());
        assert_eq!(of(&ix, "b"), ["t2", "t3"]);
    }
}
