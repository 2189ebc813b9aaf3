//! The global orchestrator (swarmkit `manager/orchestrator/global/global.go`): one task per
//! eligible node (not down, not drained, matching the constraints); paused nodes are left
//! alone; tasks on nodes that stopped being eligible are shut down, not moved.

use crate::pass::Pass;
use crate::restart::{new_task, should_restart};
use crate::rollout::SlotSnapshot;
use crate::scheduler::constraint;
use crate::slot::SlotKey;
use crate::state::{ClusterState, ServiceRecord, StoreCommand};
use crate::updater;
use reconciler_types::{Availability, Node, NodeId, NodeState, Task, TaskState};
use std::collections::BTreeMap;

/// Whether a node should run the service's task: not down, not drained, constraints hold.
pub fn eligible(service: &ServiceRecord, node: &Node) -> bool {
    node.status.state != NodeState::Down
        && node.spec.availability != Availability::Drain
        && constraint::node_matches(
            &service.spec.name,
            &service.spec.task_template.placement.constraints,
            node,
        )
}

fn shut_down(p: &mut Pass<'_>, tasks: &[&Task]) {
    for t in tasks.iter().filter(|t| t.desired_state <= TaskState::Running) {
        p.desire(&t.id, TaskState::Shutdown);
    }
}

fn create(p: &mut Pass<'_>, service: &ServiceRecord, node: &NodeId) {
    let task =
        new_task(service, &SlotKey::Node(node.clone()), TaskState::Running, p.now, &mut p.ids);
    p.out.push(StoreCommand::create_task(task));
}

/// Whether the node's last task ended and must not be restarted ("completed" for this node).
fn node_completed(state: &ClusterState, service: &ServiceRecord, tasks: &[&Task]) -> bool {
    let newest =
        tasks.iter().max_by(|a, b| (a.status.timestamp, &a.id).cmp(&(b.status.timestamp, &b.id)));
    newest.is_some_and(|t| {
        t.desired_state > TaskState::Running
            && t.status.state.is_terminal()
            && !should_restart(state, t, service)
    })
}

/// The live tasks of `service` on `node`, or `None` when the node is left alone: not
/// eligible (its live tasks are shut down) or paused (no new tasks, old ones kept).
fn live_on_node<'a>(
    p: &mut Pass<'_>,
    service: &ServiceRecord,
    node: &Node,
    on_node: &[&'a Task],
) -> Option<Vec<&'a Task>> {
    let live: Vec<&Task> =
        on_node.iter().copied().filter(|t| t.desired_state <= TaskState::Running).collect();
    if !eligible(service, node) {
        shut_down(p, &live);
        return None;
    }
    (node.spec.availability != Availability::Pause).then_some(live)
}

/// Reconciles one global service over every node (service created or updated); answers
/// the slots (nodes with a live task) for the updater.
pub fn reconcile_slots(
    p: &mut Pass<'_>,
    service: &ServiceRecord,
    tasks: &[&Task],
) -> Vec<SlotSnapshot> {
    let state = p.state;
    let mut by_node: BTreeMap<&NodeId, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        if let Some(n) = &t.node_id {
            by_node.entry(n).or_default().push(t);
        }
    }
    let mut slots = Vec::new();
    for (id, record) in state.nodes.iter() {
        let on_node = by_node.remove(id).unwrap_or_default();
        let Some(live) = live_on_node(p, service, &record.node, &on_node) else { continue };
        if live.is_empty() {
            if !node_completed(state, service, &on_node) {
                create(p, service, id);
            }
        } else {
            slots.push(updater::snapshot(state, service, SlotKey::Node(id.clone()), &live));
        }
    }
    for (_, gone) in by_node {
        shut_down(p, &gone);
    }
    slots
}

/// Reconciles every global service on one node that changed (swarmkit `reconcileOneNode`):
/// drained or down → shut its tasks down; paused → nothing; otherwise create a missing task,
/// replace outdated ones directly (not a rolling update) and shut duplicates down.
pub fn reconcile_node(p: &mut Pass<'_>, node: &Node) {
    let state = p.state;
    for service in state.services.values().filter(|s| s.spec.replicas().is_none()) {
        let on_node: Vec<&Task> =
            state.node_tasks(&node.id).filter(|t| t.service_id == service.id).collect();
        let Some(live) = live_on_node(p, service, node, &on_node) else { continue };
        let (clean, dirty): (Vec<&Task>, Vec<&Task>) =
            live.iter().partition(|t| updater::is_clean(state, t, service));
        shut_down(p, &dirty);
        if clean.len() > 1 {
            shut_down(p, &clean[1..]);
        }
        if clean.is_empty() && (!dirty.is_empty() || !node_completed(state, service, &on_node)) {
            create(p, service, &node.id);
        }
    }
}
