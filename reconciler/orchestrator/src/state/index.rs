//! The tasks indexed by service and slot, and by node, so that the orchestrator's questions
//! ("the tasks of this service", "of this slot", "on this node") cost what they answer
//! instead of a scan of every task. The indexes are derived (never serialized), kept in step
//! by every task write `apply` makes, journaled with the tables (a batch or a tentative pass
//! undoes them with the tasks), and rebuilt by the next `apply` or `tentatively` when the
//! tasks were written around them (directly, or read from a snapshot). Until then reads scan.

use super::table::Table;
use super::{ClusterState, TaskRecord};
use crate::slot::SlotKey;
use reconciler_types::{NodeId, ServiceId, Task, TaskId};
use std::collections::BTreeMap;

type SlotKeyOf = (ServiceId, Option<SlotKey>, TaskId);
type NodeKeyOf = (NodeId, TaskId);

/// The derived indexes, and the count of task writes they reflect.
#[derive(Clone, Default)]
pub(super) struct TaskIndex {
    pub(super) by_slot: Table<SlotKeyOf, ()>,
    pub(super) by_node: Table<NodeKeyOf, ()>,
    pub(super) synced: u64,
}

fn slot_key(t: &Task) -> SlotKeyOf {
    (t.service_id.clone(), SlotKey::of(t), t.id.clone())
}

fn node_key(t: &Task) -> Option<NodeKeyOf> {
    t.node_id.clone().map(|n| (n, t.id.clone()))
}

type Keys = (SlotKeyOf, Option<NodeKeyOf>);

fn keys(t: &Task) -> Keys {
    (slot_key(t), node_key(t))
}

impl TaskIndex {
    fn add(&mut self, (slot, node): Keys) {
        self.by_slot.insert(slot, ());
        if let Some(k) = node {
            self.by_node.insert(k, ());
        }
    }

    fn remove(&mut self, (slot, node): Keys) {
        self.by_slot.remove(&slot);
        if let Some(k) = node {
            self.by_node.remove(&k);
        }
    }
}

/// One task query, answered from an index or by a scan.
enum Query<'a> {
    Service(&'a ServiceId),
    Slot(&'a ServiceId, SlotKey),
    Node(&'a NodeId),
}

impl Query<'_> {
    fn matches(&self, t: &Task) -> bool {
        match self {
            Query::Service(s) => &t.service_id == *s,
            Query::Slot(s, slot) => &t.service_id == *s && SlotKey::of(t).as_ref() == Some(slot),
            Query::Node(n) => t.node_id.as_ref() == Some(*n),
        }
    }
}

impl ClusterState {
    /// Whether the indexes reflect every task write.
    pub(super) fn indexed(&self) -> bool {
        self.derived.index.synced == self.tasks.writes()
    }

    /// Rebuilds the derived indexes from the tasks (outside any savepoint only; inside one,
    /// reads scan until the next chance). `apply` and `tentatively` call it when the tasks
    /// were written around the indexes; a program that builds a state by hand may call it.
    pub fn reindex(&mut self) {
        if self.derived.savepoints > 0 {
            return;
        }
        let mut by_slot = BTreeMap::new();
        let mut by_node = BTreeMap::new();
        for r in self.tasks.values() {
            by_slot.insert(slot_key(&r.task), ());
            if let Some(k) = node_key(&r.task) {
                by_node.insert(k, ());
            }
        }
        let synced = self.tasks.writes();
        self.derived.index = TaskIndex { by_slot: by_slot.into(), by_node: by_node.into(), synced };
    }

    /// Runs a write to the tasks table and keeps the indexes in step with it.
    pub(super) fn write_task<T>(
        &mut self,
        id: &TaskId,
        f: impl FnOnce(&mut Table<TaskId, TaskRecord>) -> T,
    ) -> T {
        let indexed = self.indexed();
        let before = self.tasks.get(id).map(|r| keys(&r.task));
        let out = f(&mut self.tasks);
        if indexed {
            let after = self.tasks.get(id).map(|r| keys(&r.task));
            if before != after {
                if let Some(k) = before {
                    self.derived.index.remove(k);
                }
                if let Some(k) = after {
                    self.derived.index.add(k);
                }
            }
            self.derived.index.synced = self.tasks.writes();
        }
        out
    }

    fn query<'a>(&'a self, q: Query<'a>) -> Box<dyn Iterator<Item = &'a Task> + 'a> {
        if !self.indexed() {
            // In the index's order: a service's tasks by slot then id, the others by id.
            let mut found: Vec<&Task> = self.all_tasks().filter(|t| q.matches(t)).collect();
            if let Query::Service(_) = q {
                found.sort_by_cached_key(|t| (SlotKey::of(t), t.id.clone()));
            }
            return Box::new(found.into_iter());
        }
        let index = &self.derived.index;
        let ids: Box<dyn Iterator<Item = &'a TaskId> + 'a> = match q {
            Query::Service(s) => Box::new(
                index
                    .by_slot
                    .range((s.clone(), None, TaskId::default())..)
                    .take_while(move |(k, _)| &k.0 == s)
                    .map(|(k, _)| &k.2),
            ),
            Query::Slot(s, slot) => {
                let start = (s.clone(), Some(slot.clone()), TaskId::default());
                Box::new(
                    index
                        .by_slot
                        .range(start..)
                        .take_while(move |(k, _)| &k.0 == s && k.1.as_ref() == Some(&slot))
                        .map(|(k, _)| &k.2),
                )
            }
            Query::Node(n) => Box::new(
                index
                    .by_node
                    .range((n.clone(), TaskId::default())..)
                    .take_while(move |(k, _)| &k.0 == n)
                    .map(|(k, _)| &k.1),
            ),
        };
        Box::new(ids.filter_map(|id| self.task(id)))
    }

    /// The tasks of a service, by slot then id (tasks without a slot first).
    pub fn service_tasks<'a>(
        &'a self,
        service: &'a ServiceId,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.query(Query::Service(service))
    }

    /// The tasks of one slot of a service, in id order.
    pub fn slot_tasks<'a>(
        &'a self,
        service: &'a ServiceId,
        slot: SlotKey,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.query(Query::Slot(service, slot))
    }

    /// The tasks placed on a node, in id order.
    pub fn node_tasks<'a>(&'a self, node: &'a NodeId) -> impl Iterator<Item = &'a Task> + 'a {
        self.query(Query::Node(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Expect, StoreCommand};
    use reconciler_types::TaskState;

    fn task(id: &str, service: &str, slot: u64, node: Option<&str>) -> Task {
        Task {
            id: TaskId::new(id),
            service_id: ServiceId::new(service),
            slot,
            node_id: node.map(NodeId::new),
            ..Task::default()
        }
    }

    fn ids<'a>(it: impl Iterator<Item = &'a Task>) -> Vec<String> {
        it.map(|t| t.id.to_string()).collect()
    }

    fn answers(s: &ClusterState) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (svc, slot, node) = (ServiceId::new("a"), SlotKey::Replica(2), NodeId::new("n1"));
        (ids(s.service_tasks(&svc)), ids(s.slot_tasks(&svc, slot)), ids(s.node_tasks(&node)))
    }

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn indexed_answers_equal_a_scan_through_writes_undos_and_direct_edits() {
        let mut s = ClusterState::default();
        let put = |t: Task| StoreCommand::PutTask { task: Box::new(t), expected: Expect::Any };
        s.apply(&put(task("t3", "a", 2, Some("n1"))), 1);
        s.apply(&put(task("t1", "a", 1, Some("n2"))), 2);
        s.apply(&put(task("t2", "a", 2, None)), 3);
        s.apply(&put(task("t4", "b", 1, Some("n1"))), 4);
        assert!(s.indexed());
        let indexed = answers(&s);
        assert_eq!(indexed, (v(&["t1", "t2", "t3"]), v(&["t2", "t3"]), v(&["t3", "t4"])));
        let assign = StoreCommand::AssignTask {
            id: TaskId::new("t2"),
            node: NodeId::new("n1"),
            message: String::new(),
            at: reconciler_types::MonoTime::ZERO,
        };
        let before = s.clone();
        s.tentatively(|s| {
            s.apply(&assign, 5);
            s.apply(&StoreCommand::RemoveTask { id: TaskId::new("t3"), expected: Expect::Any }, 6);
            assert_eq!(answers(s), (v(&["t1", "t2"]), v(&["t2"]), v(&["t2", "t4"])));
        });
        assert_eq!(answers(&s), indexed, "undone with the tasks");
        assert!(s.indexed() && s == before);
        let mut t5 = task("t5", "a", 2, Some("n1"));
        t5.desired_state = TaskState::Running;
        s.tasks.insert(t5.id.clone(), TaskRecord { task: t5, version: 0 });
        assert!(!s.indexed(), "a direct write is noticed");
        assert_eq!(
            answers(&s),
            (v(&["t1", "t2", "t3", "t5"]), v(&["t2", "t3", "t5"]), v(&["t3", "t4", "t5"]))
        );
        s.apply(&StoreCommand::ClearDelay { task: TaskId::new("x") }, 7);
        assert!(s.indexed(), "the next apply rebuilds");
        let json = serde_json::to_string(&s).unwrap();
        let back: ClusterState = serde_json::from_str(&json).unwrap();
        assert!(!back.indexed() || back.tasks.is_empty());
        assert_eq!(answers(&back), answers(&s));
    }
}
