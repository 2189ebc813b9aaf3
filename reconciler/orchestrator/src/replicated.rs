//! The replicated orchestrator (swarmkit `manager/orchestrator/replicated/`): keeps
//! `replicas` live slots, scales up into the lowest free slot numbers, scales down choosing
//! the slots Swarm would remove, deletes dead slots, and hands live slots to the updater.

use crate::pass::Pass;
use crate::restart::{new_task, should_restart};
use crate::rollout::SlotSnapshot;
use crate::slot::SlotKey;
use crate::state::{ClusterState, ServiceRecord, StoreCommand};
use crate::updater;
use reconciler_types::{NodeId, Task, TaskState, UpdateState};
use std::collections::{BTreeMap, BTreeSet};

/// The updatable tasks of a slot (swarmkit `UpdatableTasksInSlot`): those with desired ≤
/// RUNNING; else, unless a rollback is in progress, the newest task if the restart policy
/// says it must not be restarted (the slot stays live). Empty = a dead slot.
pub fn updatable_tasks<'a>(
    state: &ClusterState,
    service: &ServiceRecord,
    slot: &[&'a Task],
) -> Vec<&'a Task> {
    let up: Vec<&Task> =
        slot.iter().copied().filter(|t| t.desired_state <= TaskState::Running).collect();
    if !up.is_empty() {
        return up;
    }
    if service.update_status.as_ref().is_some_and(|s| s.state == UpdateState::RollbackStarted) {
        return Vec::new();
    }
    let newest = slot
        .iter()
        .copied()
        .max_by(|a, b| (a.status.timestamp, &a.id).cmp(&(b.status.timestamp, &b.id)));
    match newest {
        Some(t) if !should_restart(state, t, service) => vec![t],
        _ => Vec::new(),
    }
}

/// Orders live slots for a scale-down and answers them, the ones to keep first (§2.2):
/// running first, then by per-node index (the extra copies on crowded nodes last).
fn keep_order(live: Vec<(u64, Vec<&Task>)>) -> Vec<(u64, Vec<&Task>)> {
    let mut live = live;
    let running = |s: &(u64, Vec<&Task>)| s.1.iter().any(|t| t.status.state == TaskState::Running);
    live.sort_by(|a, b| running(b).cmp(&running(a)).then(a.0.cmp(&b.0)));
    let mut per_node: BTreeMap<&NodeId, i64> = BTreeMap::new();
    let mut indexed: Vec<(i64, (u64, Vec<&Task>))> = Vec::with_capacity(live.len());
    for s in live {
        let index = match s.1.as_slice() {
            [only] => match &only.node_id {
                Some(node) => {
                    let n = per_node.entry(node).or_insert(0);
                    *n += 1;
                    *n
                }
                None => -1,
            },
            _ => -1,
        };
        indexed.push((index, s));
    }
    indexed.sort_by_key(|(i, _)| if *i < 0 { i64::MAX } else { *i });
    indexed.into_iter().map(|(_, s)| s).collect()
}

/// Reconciles one replicated service (swarmkit `reconcile`): deletes dead slots, scales,
/// and answers the live slots kept, for the updater.
pub fn reconcile_slots(
    p: &mut Pass<'_>,
    service: &ServiceRecord,
    tasks: &[&Task],
) -> Vec<SlotSnapshot> {
    let state = p.state;
    let replicas = service.spec.replicas().unwrap_or(0);
    let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.slot > 0) {
        slots.entry(t.slot).or_default().push(t);
    }
    let mut live = Vec::new();
    for (n, slot_tasks) in &slots {
        let up = updatable_tasks(state, service, slot_tasks);
        if up.is_empty() {
            p.out.extend(slot_tasks.iter().map(|t| StoreCommand::delete_task(&t.id)));
        } else {
            live.push((*n, up));
        }
    }
    let live_count = live.len() as u64;
    let kept = if replicas < live_count {
        let ordered = keep_order(live);
        let keep = usize::try_from(replicas).unwrap_or(usize::MAX);
        for (n, _) in &ordered[keep..] {
            for t in &slots[n] {
                p.desire(&t.id, TaskState::Remove);
            }
        }
        ordered.into_iter().take(keep).collect()
    } else {
        live
    };
    let used: BTreeSet<u64> = kept.iter().map(|(n, _)| *n).collect();
    let mut next = 1u64;
    for _ in kept.len() as u64..replicas {
        while used.contains(&next) {
            next += 1;
        }
        let task =
            new_task(service, &SlotKey::Replica(next), TaskState::Running, p.now, &mut p.ids);
        p.out.push(StoreCommand::create_task(task));
        next += 1;
    }
    let mut kept = kept;
    kept.sort_by_key(|(n, _)| *n);
    kept.into_iter()
        .map(|(n, t)| updater::snapshot(state, service, SlotKey::Replica(n), &t))
        .collect()
}
