//! The glue between the orchestrators and the rollout state machine (swarmkit
//! `update.Supervisor`): builds slot snapshots, starts, feeds and stores runs, and turns
//! their commands into store changes.

use crate::restart::new_task;
use crate::rollout::{Command, Input, Rollout, RolloutTarget, SlotSnapshot, SlotTask};
use crate::scheduler::constraint;
use crate::service::ServiceRecord;
use crate::slot::{SlotKey, TaskIdAllocator};
use crate::view::{ClusterView, StoreChange};
use reconciler_types::{MonoTime, ServiceId, Task};
use std::collections::BTreeMap;

/// Whether a task already runs the service's current spec (swarmkit `IsTaskDirty`, negated):
/// same spec version; or a deep-equal task template; or only the placement constraints
/// changed and the task's node satisfies the new ones.
pub fn is_clean(view: &ClusterView, task: &Task, service: &ServiceRecord) -> bool {
    if task.spec_version == service.spec_version {
        return true;
    }
    let want = &service.spec.task_template;
    if task.spec == *want {
        return true;
    }
    let mut relaxed = task.spec.clone();
    relaxed.placement.constraints.clone_from(&want.placement.constraints);
    if relaxed != *want {
        return false;
    }
    let node = task.node_id.as_ref().and_then(|n| view.nodes.get(n));
    node.is_some_and(|n| {
        constraint::node_matches(&service.spec.name, &want.placement.constraints, n)
    })
}

/// A slot as the rollout sees it.
pub fn snapshot(
    view: &ClusterView,
    service: &ServiceRecord,
    slot: SlotKey,
    tasks: &[&Task],
) -> SlotSnapshot {
    let tasks = tasks
        .iter()
        .map(|t| SlotTask {
            id: t.id.clone(),
            clean: is_clean(view, t, service),
            desired: t.desired_state,
            observed: t.status.state,
            node_down: view.node_lost(t.node_id.as_ref()),
        })
        .collect();
    SlotSnapshot { slot, tasks }
}

/// The rollout runs touched while handling one event: read from the view once, changed in
/// place, written back by [`Runs::flush`] (so two inputs to the same run in one handler do
/// not overwrite each other).
#[derive(Debug, Default)]
pub struct Runs(BTreeMap<ServiceId, Rollout>);

impl Runs {
    fn get<'a>(&'a mut self, view: &ClusterView, id: &ServiceId) -> Option<&'a mut Rollout> {
        if !self.0.contains_key(id) {
            let run = view.rollouts.get(id)?.clone();
            self.0.insert(id.clone(), run);
        }
        self.0.get_mut(id)
    }

    /// The service's run as this handler sees it.
    pub fn peek<'a>(&'a self, view: &'a ClusterView, id: &ServiceId) -> Option<&'a Rollout> {
        self.0.get(id).or_else(|| view.rollouts.get(id))
    }

    /// Writes every touched run back (`PutRollout`), in service order.
    pub fn flush(self, out: &mut Vec<StoreChange>) {
        out.extend(self.0.into_values().map(|r| StoreChange::PutRollout(Box::new(r))));
    }
}

/// Hands the live slots to the updater: nothing if a run toward this spec version is still
/// active; otherwise a new run replaces the old one (swarmkit `Supervisor.Update`).
pub fn update(
    view: &ClusterView,
    runs: &mut Runs,
    service: &ServiceRecord,
    slots: Vec<SlotSnapshot>,
    now: MonoTime,
    ids: &mut TaskIdAllocator,
    out: &mut Vec<StoreChange>,
) {
    let existing = runs.get(view, &service.id);
    if existing.as_ref().is_some_and(|r| r.spec_version() == service.spec_version && r.is_active())
    {
        return;
    }
    let existing_active = existing.is_some_and(|r| r.is_active());
    let target = RolloutTarget {
        service: &service.id,
        spec_version: service.spec_version,
        update_config: &service.spec.update_config,
        rollback_config: &service.spec.rollback_config,
        status: service.update_status.as_ref(),
    };
    let (run, cmds) = Rollout::start(&target, slots, now, ids);
    if cmds.is_empty() && !run.is_active() && !existing_active {
        runs.0.remove(&service.id);
        return;
    }
    convert(service, cmds, now, out);
    runs.0.insert(service.id.clone(), run);
}

/// Feeds an input to the service's run, if it has an active one toward the current spec.
pub fn feed(
    view: &ClusterView,
    runs: &mut Runs,
    service: &ServiceRecord,
    input: Input,
    now: MonoTime,
    ids: &mut TaskIdAllocator,
    out: &mut Vec<StoreChange>,
) {
    let Some(run) = runs.get(view, &service.id) else { return };
    if !run.is_active() || run.spec_version() != service.spec_version {
        return;
    }
    let cmds = run.handle(input, ids);
    convert(service, cmds, now, out);
}

/// Resumes the service's stored run on a new leader over the slots as the store has them
/// (or starts one when there is none toward the current spec).
pub fn resume(
    view: &ClusterView,
    runs: &mut Runs,
    service: &ServiceRecord,
    slots: Vec<SlotSnapshot>,
    now: MonoTime,
    ids: &mut TaskIdAllocator,
    out: &mut Vec<StoreChange>,
) {
    match runs.get(view, &service.id) {
        Some(run) if run.spec_version() == service.spec_version && !run.is_cancelled() => {
            let (run, cmds) = run.clone().resume(slots, now, ids);
            convert(service, cmds, now, out);
            runs.0.insert(service.id.clone(), run);
        }
        _ => update(view, runs, service, slots, now, ids, out),
    }
}

fn convert(service: &ServiceRecord, cmds: Vec<Command>, now: MonoTime, out: &mut Vec<StoreChange>) {
    for cmd in cmds {
        match cmd {
            Command::CreateTask { slot, task, desired } => {
                let mut ids = TaskIdAllocator::default();
                let mut t = new_task(service, &slot, desired, now, &mut ids);
                t.id = task;
                out.push(StoreChange::CreateTask(Box::new(t)));
            }
            Command::SetDesired { task, state } => {
                out.push(StoreChange::SetDesired { task, state })
            }
            Command::SetStatus(status) => {
                out.push(StoreChange::SetUpdateStatus {
                    service: service.id.clone(),
                    status: Some(status),
                });
            }
            Command::Rollback(status) => {
                out.push(StoreChange::AutoRollback { service: service.id.clone(), status })
            }
            Command::WakeAt(_) => {}
        }
    }
}
