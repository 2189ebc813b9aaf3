//! The global orchestrator (swarmkit `manager/orchestrator/global/global.go`): one task per
//! eligible node (not down, not drained, matching the constraints); paused nodes are left
//! alone; tasks on nodes that stopped being eligible are shut down, not moved.

use crate::restart::{new_task, should_restart};
use crate::rollout::SlotSnapshot;
use crate::scheduler::constraint;
use crate::service::ServiceRecord;
use crate::slot::{SlotKey, TaskIdAllocator};
use crate::updater;
use crate::view::{ClusterView, StoreChange};
use reconciler_types::{Availability, MonoTime, Node, NodeId, NodeState, Task, TaskState};
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

fn shut_down(tasks: &[&Task], out: &mut Vec<StoreChange>) {
    for t in tasks.iter().filter(|t| t.desired_state <= TaskState::Running) {
        out.push(StoreChange::SetDesired { task: t.id.clone(), state: TaskState::Shutdown });
    }
}

/// Whether the node's last task ended and must not be restarted ("completed" for this node).
fn node_completed(view: &ClusterView, service: &ServiceRecord, tasks: &[&Task]) -> bool {
    let newest =
        tasks.iter().max_by(|a, b| (a.status.timestamp, &a.id).cmp(&(b.status.timestamp, &b.id)));
    newest.is_some_and(|t| {
        t.desired_state > TaskState::Running
            && t.status.state.is_terminal()
            && !should_restart(view, t, service)
    })
}

/// The live tasks of `service` on `node`, or `None` when the node is left alone: not
/// eligible (its live tasks are shut down) or paused (no new tasks, old ones kept).
fn live_on_node<'a>(
    service: &ServiceRecord,
    node: &Node,
    on_node: &[&'a Task],
    out: &mut Vec<StoreChange>,
) -> Option<Vec<&'a Task>> {
    let live: Vec<&Task> =
        on_node.iter().copied().filter(|t| t.desired_state <= TaskState::Running).collect();
    if !eligible(service, node) {
        shut_down(&live, out);
        return None;
    }
    (node.spec.availability != Availability::Pause).then_some(live)
}

/// Reconciles one global service over every node (service created or updated); answers
/// the slots (nodes with a live task) for the updater.
pub fn reconcile_slots(
    view: &ClusterView,
    service: &ServiceRecord,
    tasks: &[&Task],
    now: MonoTime,
    ids: &mut TaskIdAllocator,
    out: &mut Vec<StoreChange>,
) -> Vec<SlotSnapshot> {
    let mut by_node: BTreeMap<&NodeId, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        if let Some(n) = &t.node_id {
            by_node.entry(n).or_default().push(t);
        }
    }
    let mut slots = Vec::new();
    for (id, node) in &view.nodes {
        let on_node = by_node.remove(id).unwrap_or_default();
        let Some(live) = live_on_node(service, node, &on_node, out) else { continue };
        if live.is_empty() {
            if !node_completed(view, service, &on_node) {
                out.push(StoreChange::CreateTask(Box::new(new_task(
                    service,
                    &SlotKey::Node(id.clone()),
                    TaskState::Running,
                    now,
                    ids,
                ))));
            }
        } else {
            slots.push(updater::snapshot(view, service, SlotKey::Node(id.clone()), &live));
        }
    }
    for (_, gone) in by_node {
        shut_down(&gone, out);
    }
    slots
}

/// Reconciles every global service on one node that changed (swarmkit `reconcileOneNode`):
/// drained or down → shut its tasks down; paused → nothing; otherwise create a missing task,
/// replace outdated ones directly (not a rolling update) and shut duplicates down.
pub fn reconcile_node(
    view: &ClusterView,
    node: &Node,
    now: MonoTime,
    ids: &mut TaskIdAllocator,
    out: &mut Vec<StoreChange>,
) {
    for service in view.services.values().filter(|s| s.spec.replicas().is_none()) {
        let on_node: Vec<&Task> = view
            .service_tasks(&service.id)
            .filter(|t| t.node_id.as_ref() == Some(&node.id))
            .collect();
        let Some(live) = live_on_node(service, node, &on_node, out) else { continue };
        let (clean, dirty): (Vec<&Task>, Vec<&Task>) =
            live.iter().partition(|t| updater::is_clean(view, t, service));
        shut_down(&dirty, out);
        if clean.len() > 1 {
            shut_down(&clean[1..], out);
        }
        if clean.is_empty() && (!dirty.is_empty() || !node_completed(view, service, &on_node)) {
            out.push(StoreChange::CreateTask(Box::new(new_task(
                service,
                &SlotKey::Node(node.id.clone()),
                TaskState::Running,
                now,
                ids,
            ))));
        }
    }
}
