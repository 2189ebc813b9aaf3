//! Slots: the unit a replicated service is counted, restarted and updated in. A replicated
//! service's slot is its number (1..); a global service's slot is the node it runs on.

use reconciler_types::{NodeId, Task};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A slot of a service: a replica number, or a node for a global service.
///
/// Ordered replica numbers first (ascending), then nodes by id: the order flotilla processes
/// dirty slots in (Docker's is random; docs/swarm-semantics.md §6.3). Serialized as a string
/// (`"3"`, `"node:<id>"`) so that it can key a map in the stored state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SlotKey {
    /// Slot `n` (1..) of a replicated service.
    Replica(u64),
    /// The node of a global service's task.
    Node(NodeId),
}

impl SlotKey {
    /// The slot a task belongs to: its slot number, or its node for a global task (slot 0).
    /// A global task without a node has no slot.
    pub fn of(task: &Task) -> Option<SlotKey> {
        if task.slot > 0 {
            Some(SlotKey::Replica(task.slot))
        } else {
            task.node_id.clone().map(SlotKey::Node)
        }
    }
}

/// The prefix of a node slot's string form.
const NODE_PREFIX: &str = "node:";

impl From<SlotKey> for String {
    fn from(slot: SlotKey) -> String {
        match slot {
            SlotKey::Replica(n) => n.to_string(),
            SlotKey::Node(id) => format!("{NODE_PREFIX}{id}"),
        }
    }
}

impl TryFrom<String> for SlotKey {
    type Error = String;
    fn try_from(s: String) -> Result<SlotKey, String> {
        match s.strip_prefix(NODE_PREFIX) {
            Some(id) => Ok(SlotKey::Node(NodeId::new(id))),
            None => s.parse().map(SlotKey::Replica).map_err(|_| format!("not a slot: {s:?}")),
        }
    }
}

impl fmt::Display for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotKey::Replica(n) => write!(f, "{n}"),
            SlotKey::Node(id) => write!(f, "{id}"),
        }
    }
}

/// A deterministic task-id allocator. Its counter lives in the cluster state, so that every
/// manager and every replay allocates the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskIdAllocator {
    /// The number the next id is made from.
    pub next: u64,
}

impl TaskIdAllocator {
    /// An allocator whose first id is made from `next`.
    pub fn starting_at(next: u64) -> Self {
        TaskIdAllocator { next }
    }

    /// A fresh task id.
    pub fn alloc(&mut self) -> reconciler_types::TaskId {
        let id = reconciler_types::TaskId(format!("t{:06}", self.next));
        self.next = self.next.saturating_add(1);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn slots_key_a_json_map() {
        let m = BTreeMap::from([(SlotKey::Replica(3), 1), (SlotKey::Node(NodeId::new("n1")), 2)]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"3":1,"node:n1":2}"#);
        assert_eq!(serde_json::from_str::<BTreeMap<SlotKey, i32>>(&json).unwrap(), m);
        assert!(serde_json::from_str::<SlotKey>(r#""x""#).is_err());
    }
}
