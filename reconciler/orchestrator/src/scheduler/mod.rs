//! The scheduler (swarmkit `manager/scheduler/`): places PENDING tasks on nodes through
//! Swarm's filter pipeline, balances them as Swarm does (spread preferences, then fewest
//! tasks of the service, then fewest tasks), and leaves what fits nowhere PENDING with
//! Swarm's explanation (`no suitable node (…)`).
//!
//! Deliberate omissions: the plugin, platform and CSI-volume filters (flotilla has no
//! plugins, no `Placement.Platforms` and no cluster volumes), and the per-node failure
//! memory of the ranking (≥ 5 failures in 5 minutes).

pub mod constraint;
pub mod filters;
pub mod spread;

use crate::state::{ClusterState, StoreCommand};
use filters::{Needs, NodeInfo, Rejection};
use reconciler_types::{MonoTime, NodeId, ServiceId, Task, TaskId, TaskState};
use std::collections::BTreeMap;

/// `scheduler assigned task to node`.
pub const MSG_ASSIGNED: &str = "scheduler assigned task to node";
/// `scheduler confirmed task can run on preassigned node`.
pub const MSG_PREASSIGNED: &str = "scheduler confirmed task can run on preassigned node";
/// `pending task scheduling`.
pub const MSG_PENDING: &str = "pending task scheduling";

/// A task that fits nowhere, with Swarm's explanation and a per-node one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// The task.
    pub task: TaskId,
    /// `no suitable node (…)`, as `docker service ps` shows it.
    pub err: String,
    /// `3 nodes: 2 drained, 1 lacks 512 MiB memory`.
    pub detail: String,
}

/// The outcome of one scheduling pass.
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use]
pub struct SchedulePass {
    /// Store commands (assignments, pending explanations).
    pub commands: Vec<StoreCommand>,
    /// Tasks left pending and why.
    pub unschedulable: Vec<Unschedulable>,
}

/// Whether a task takes resources on its node (assigned, desired ≤ COMPLETE, not ended).
fn is_active(t: &Task) -> bool {
    t.node_id.is_some() && t.desired_state <= TaskState::Complete && !t.status.state.is_terminal()
}

fn node_infos(state: &ClusterState) -> (Vec<NodeInfo<'_>>, BTreeMap<&NodeId, usize>) {
    let mut infos: Vec<NodeInfo<'_>> =
        state.nodes.values().map(|r| NodeInfo::new(&r.node)).collect();
    let index: BTreeMap<&NodeId, usize> =
        state.nodes.keys().enumerate().map(|(i, id)| (id, i)).collect();
    let mut ports: BTreeMap<&ServiceId, Vec<_>> = BTreeMap::new();
    for t in state.all_tasks().filter(|t| is_active(t)) {
        let Some(i) = t.node_id.as_ref().and_then(|n| index.get(n)) else { continue };
        let host_ports = ports.entry(&t.service_id).or_insert_with(|| {
            state
                .services
                .get(&t.service_id)
                .map(|s| filters::host_ports(&s.spec))
                .unwrap_or_default()
        });
        let needs = Needs { host_ports: host_ports.clone(), ..Needs::reservations(t) };
        infos[*i].add(&needs);
    }
    (infos, index)
}

/// One scheduling pass over every PENDING task (swarmkit `tick`): preassigned (global) tasks
/// are checked against their node, the others are placed by (service, spec version) group.
/// Tasks already told to stop are placed too (their agent reports them shut down at once),
/// except REMOVE ones, which the reaper deletes.
pub fn schedule(state: &ClusterState, now: MonoTime) -> SchedulePass {
    let mut pass = SchedulePass::default();
    let pending: Vec<&Task> = state
        .all_tasks()
        .filter(|t| t.status.state <= TaskState::Pending && t.desired_state <= TaskState::Shutdown)
        .filter(|t| state.services.contains_key(&t.service_id))
        .collect();
    if pending.is_empty() {
        return pass;
    }
    let (mut infos, index) = node_infos(state);
    let mut groups: BTreeMap<(&ServiceId, u64), Vec<&Task>> = BTreeMap::new();
    for t in pending {
        match &t.node_id {
            Some(node) => {
                preassigned(state, t, index.get(node).copied(), &mut infos, now, &mut pass)
            }
            None => groups.entry((&t.service_id, t.spec_version)).or_default().push(t),
        }
    }
    for ((service_id, _), mut tasks) in groups {
        let Some(service) = state.services.get(service_id) else { continue };
        tasks.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
        let needs = Needs::of(service_id, &service.spec, tasks[0]);
        let descriptors: Vec<&str> = tasks[0]
            .spec
            .placement
            .preferences
            .iter()
            .map(|p| p.spread.as_str())
            .filter(|d| spread::is_spread_descriptor(d))
            .collect();
        let tree = spread::Tree::build(&infos, &descriptors, &needs);
        let mut chosen = Vec::new();
        spread::schedule_subtree(tasks.len(), &tree, &mut infos, &needs, &mut chosen);
        for (t, node) in tasks.iter().zip(&chosen) {
            let node = infos[*node].node.id.clone();
            let message = MSG_ASSIGNED.to_owned();
            pass.commands.push(StoreCommand::AssignTask {
                id: t.id.clone(),
                node,
                message,
                at: now,
            });
        }
        if chosen.len() < tasks.len() {
            let rejections = reject_all(&infos, &needs);
            for t in &tasks[chosen.len()..] {
                still_pending(state, t, &rejections, infos.len(), now, &mut pass);
            }
        }
    }
    pass
}

fn reject_all(infos: &[NodeInfo<'_>], needs: &Needs) -> Vec<Rejection> {
    infos
        .iter()
        .filter_map(|i| {
            i.check(needs).err().map(|(filter, detail)| Rejection {
                node: i.node.id.clone(),
                filter,
                detail,
            })
        })
        .collect()
}

fn still_pending(
    state: &ClusterState,
    t: &Task,
    rejections: &[Rejection],
    nodes: usize,
    now: MonoTime,
    pass: &mut SchedulePass,
) {
    let version = state.services.get(&t.service_id).map(|s| s.spec_version);
    if t.desired_state >= TaskState::Shutdown && version != Some(t.spec_version) {
        // A stopped task of another spec version that fits nowhere is simply shut down.
        pass.commands.push(StoreCommand::mark_task(t, TaskState::Shutdown, "shutdown", "", now));
        return;
    }
    let err = filters::explain(rejections);
    let detail = filters::explain_nodes(nodes, rejections);
    if t.status.err != err || t.status.state != TaskState::Pending {
        pass.commands.push(StoreCommand::mark_task(t, TaskState::Pending, MSG_PENDING, &err, now));
    }
    pass.unschedulable.push(Unschedulable { task: t.id.clone(), err, detail });
}

fn preassigned<'a>(
    state: &'a ClusterState,
    t: &'a Task,
    node: Option<usize>,
    infos: &mut [NodeInfo<'a>],
    now: MonoTime,
    pass: &mut SchedulePass,
) {
    let Some(service) = state.services.get(&t.service_id) else { return };
    let needs = Needs::of(&t.service_id, &service.spec, t);
    let verdict = match node {
        Some(i) => infos[i].check(&needs).map(|()| i).map_err(|(filter, detail)| {
            vec![Rejection { node: infos[i].node.id.clone(), filter, detail }]
        }),
        None => Err(Vec::new()),
    };
    match verdict {
        Ok(i) => {
            infos[i].add(&needs);
            let node = infos[i].node.id.clone();
            let message = MSG_PREASSIGNED.to_owned();
            pass.commands.push(StoreCommand::AssignTask {
                id: t.id.clone(),
                node,
                message,
                at: now,
            });
        }
        Err(rejections) => still_pending(state, t, &rejections, 1, now, pass),
    }
}
