//! The event entry points: one pure function per kind of store event, each reading the state
//! and answering the store commands Swarm's manager would write. [`crate::driver`] calls
//! them, applies each answer to the state before the next event, runs
//! [`after_change`] on every applied command (the store watchers: history pruning, REMOVE
//! deletion, the run that follows an automatic rollback), then the scheduler, and wakes at
//! [`next_wake`].

use crate::pass::{Pass, Scratch};
use crate::reaper;
use crate::restart::{self, RestartReason};
use crate::rollout::{Input, SlotSnapshot};
use crate::scheduler::filters::{Needs, NodeInfo};
use crate::slot::SlotKey;
use crate::state::{ClusterState, DelayedStart, ServiceRecord, StoreCommand};
use crate::updater;
use crate::{global, replicated};
use reconciler_types::{
    Availability, MonoTime, NodeId, NodeState, ServiceId, ServiceMode, Task, TaskId, TaskState,
};
use std::collections::BTreeMap;

/// What happened in the store (derived from applied commands by [`crate::events::of`]), or
/// to the leader.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// A service was created or its spec changed (update, rollback, scale).
    ServiceChanged(ServiceId),
    /// A service was deleted.
    ServiceRemoved(ServiceId),
    /// A task's observed state changed (already applied to the state).
    TaskObserved(TaskId),
    /// A node was added or changed (availability, labels, description, status).
    NodeChanged(NodeId),
    /// A node was removed (its record is already gone).
    NodeRemoved(NodeId),
    /// Time passed: start held tasks, fire rollout timers.
    Tick,
    /// This manager became leader (or must resynchronise), step one (swarmkit
    /// `taskinit.CheckTasks`): tasks that ended while nobody watched are restarted, held
    /// starts released. [`Event::ReconcileAll`] follows, once these decisions are applied.
    LeaderElected,
    /// Every service is reconciled and its stored run resumed; removed tasks are reaped.
    ReconcileAll,
}

/// Handles one event within a pass (`scratch`: the time, the id allocator, the runs touched
/// so far, written back by [`Scratch::flush`] at the end). Pure: the same state, event and
/// scratch give the same commands.
#[must_use]
pub fn handle(state: &ClusterState, event: &Event, scratch: &mut Scratch) -> Vec<StoreCommand> {
    let mut p = Pass::new(state, scratch);
    match event {
        Event::ServiceChanged(id) => {
            if let Some(s) = state.services.get(id) {
                let tasks: Vec<&Task> = state.service_tasks(id).collect();
                reconcile_service(&mut p, s, &tasks, false);
            }
        }
        Event::ServiceRemoved(id) => service_removed(&mut p, id),
        Event::TaskObserved(id) => task_observed(&mut p, id),
        Event::NodeChanged(id) => node_changed(&mut p, id),
        Event::NodeRemoved(id) => node_removed(&mut p, id),
        Event::Tick => tick(&mut p),
        Event::LeaderElected => check_tasks(&mut p),
        Event::ReconcileAll => reconcile_all(&mut p),
    }
    let (out, next) = p.finish();
    scratch.ids = next;
    out
}

/// The earliest time a [`Event::Tick`] has work to do.
pub fn next_wake(state: &ClusterState, now: MonoTime) -> Option<MonoTime> {
    let rollouts = state.rollouts.values().map(|r| &r.rollout);
    let rollouts = rollouts.filter(|r| r.is_active()).filter_map(|r| r.next_wake());
    rollouts.chain(restart::next_wake(state, now)).min()
}

/// What the store's watchers do after a command was applied (the state already holds it):
/// a created task prunes its slot's history; a task set to REMOVE that never reached a node
/// is deleted; an automatic rollback starts the rollback run.
#[must_use]
pub fn after_change(
    state: &ClusterState,
    cmd: &StoreCommand,
    scratch: &mut Scratch,
) -> Vec<StoreCommand> {
    let mut out = Vec::new();
    match cmd {
        StoreCommand::PutTask { task, .. } => {
            if let Some(slot) = SlotKey::of(task) {
                reaper::reap_slot(state, &task.service_id, &slot, &mut out);
            }
        }
        StoreCommand::SetTaskDesiredState { id, state: TaskState::Remove, .. }
            if state.task(id).is_some_and(reaper::removable) =>
        {
            out.push(StoreCommand::delete_task(id));
        }
        StoreCommand::AutoRollback { service, .. } => {
            out = handle(state, &Event::ServiceChanged(service.clone()), scratch);
        }
        _ => {}
    }
    out
}

fn index_by_service(state: &ClusterState) -> BTreeMap<&ServiceId, Vec<&Task>> {
    let mut by_service: BTreeMap<&ServiceId, Vec<&Task>> = BTreeMap::new();
    for t in state.all_tasks() {
        by_service.entry(&t.service_id).or_default().push(t);
    }
    by_service
}

/// Reconciles a service's slots, then hands them to the updater (or, on a new leader,
/// resumes its stored run over them).
fn reconcile_service(p: &mut Pass<'_>, s: &ServiceRecord, tasks: &[&Task], resume: bool) {
    let slots = match s.spec.mode {
        ServiceMode::Replicated { .. } => replicated::reconcile_slots(p, s, tasks),
        ServiceMode::Global => global::reconcile_slots(p, s, tasks),
    };
    if resume {
        updater::resume(p, s, slots);
    } else {
        updater::update(p, s, slots);
    }
}

fn service_removed(p: &mut Pass<'_>, id: &ServiceId) {
    for t in p.state.service_tasks(id) {
        if t.desired_state < TaskState::Remove {
            p.desire(&t.id, TaskState::Remove);
        }
    }
}

fn task_observed(p: &mut Pass<'_>, id: &TaskId) {
    let state = p.state;
    let Some(task) = state.task(id) else { return };
    if reaper::removable(task) {
        p.out.push(StoreCommand::delete_task(id));
    }
    if let Some(service) = state.services.get(&task.service_id) {
        let input = Input::TaskObserved { task: id.clone(), state: task.status.state, at: p.now };
        updater::feed(p, service, input);
        if task.desired_state <= TaskState::Running && task.status.state.is_terminal() {
            restart_task(p, task, service, RestartReason::Ended);
        }
        if task.status.state == TaskState::Running {
            retire_outdated_siblings(p, task, service);
        }
    }
    restart::release_delayed(p);
}

/// The other tasks of a task's slot.
fn slot_siblings<'a>(
    state: &'a ClusterState,
    task: &'a Task,
) -> impl Iterator<Item = &'a Task> + 'a {
    SlotKey::of(task)
        .into_iter()
        .flat_map(move |slot| state.slot_tasks(&task.service_id, slot))
        .filter(move |t| t.id != task.id)
}

/// A task of the current spec reached RUNNING in a slot that still runs an outdated task no
/// rollout is handling (a start-first update whose new task failed and whose restart now
/// runs): the outdated task is shut down, so a slot never keeps two running tasks. Swarm
/// leaves both until the next update (S26); flotilla finishes the start-first handover.
fn retire_outdated_siblings(p: &mut Pass<'_>, task: &Task, service: &ServiceRecord) {
    let state = p.state;
    let Some(slot) = SlotKey::of(task) else { return };
    if !updater::is_clean(state, task, service) || task.desired_state != TaskState::Running {
        return;
    }
    if p.run(&service.id).is_some_and(|r| r.is_active() && r.holds_slot(&slot)) {
        return;
    }
    for t in slot_siblings(state, task) {
        if t.desired_state <= TaskState::Running && !updater::is_clean(state, t, service) {
            p.desire(&t.id, TaskState::Shutdown);
        }
    }
}

/// Whether the task's slot already holds another wanted task of the current spec (a
/// rollout's new task), which makes a restart replacement redundant.
fn slot_covered(state: &ClusterState, task: &Task, service: &ServiceRecord) -> bool {
    slot_siblings(state, task)
        .any(|t| t.desired_state <= TaskState::Running && updater::is_clean(state, t, service))
}

/// A global task on a node that no longer takes it: shut it down, tell the rollout the slot
/// is empty. Answers whether that was the case.
fn leave_global_node(p: &mut Pass<'_>, task: &Task, service: &ServiceRecord) -> bool {
    let node = task.node_id.as_ref().and_then(|n| p.state.node(n));
    let keeps = node.is_some_and(|n| {
        n.spec.availability == Availability::Active && global::eligible(service, n)
    });
    if keeps {
        return false;
    }
    if task.desired_state < TaskState::Shutdown {
        p.desire(&task.id, TaskState::Shutdown);
    }
    if let Some(slot) = SlotKey::of(task) {
        let input = Input::SlotRefreshed { slot: SlotSnapshot { slot, tasks: Vec::new() } };
        updater::feed(p, service, input);
    }
    true
}

/// Restarts a task and tells an active rollout what its slot now holds.
fn restart_task(p: &mut Pass<'_>, task: &Task, service: &ServiceRecord, reason: RestartReason) {
    let state = p.state;
    if matches!(service.spec.mode, ServiceMode::Global) && leave_global_node(p, task, service) {
        return;
    }
    if slot_covered(state, task, service) {
        // The slot already has a task of the current spec (a rollout's new task): shut the
        // stopped one down without a second replacement.
        if task.desired_state < TaskState::Shutdown {
            p.desire(&task.id, TaskState::Shutdown);
        }
        return;
    }
    let Some(new) = restart::restart(p, task, service, reason) else { return };
    let Some(slot) = SlotKey::of(&new) else { return };
    let mut tasks: Vec<&Task> =
        slot_siblings(state, task).filter(|t| t.desired_state <= TaskState::Running).collect();
    tasks.push(&new);
    let snapshot = updater::snapshot(state, service, slot, &tasks);
    updater::feed(p, service, Input::SlotRefreshed { slot: snapshot });
}

fn node_changed(p: &mut Pass<'_>, id: &NodeId) {
    let state = p.state;
    let Some(node) = state.node(id) else { return };
    let lost = node.status.state == NodeState::Down;
    let drained = node.spec.availability == Availability::Drain;
    if lost || drained {
        let reason = if lost { RestartReason::NodeLost } else { RestartReason::NodeDrained };
        for t in state.node_tasks(id).filter(|t| !t.status.state.is_terminal()) {
            let Some(service) = state.services.get(&t.service_id) else { continue };
            if lost {
                // Also an old task already told to stop: a worker may be waiting for it.
                updater::feed(p, service, Input::OldTaskGone { task: t.id.clone(), at: p.now });
            }
            if t.desired_state <= TaskState::Running {
                restart_task(p, t, service, reason);
            }
        }
    } else if node.status.state == NodeState::Ready
        && node.spec.availability == Availability::Active
    {
        enforce_constraints(p, id);
        global::reconcile_node(p, node);
    }
    restart::release_delayed(p);
}

/// The constraint enforcer (§3.8): tasks on an active node whose service's constraints no
/// longer match it, or whose reservations no longer fit (tasks taken in id order), are
/// REJECTED, then restarted elsewhere per the restart policy.
fn enforce_constraints(p: &mut Pass<'_>, id: &NodeId) {
    let state = p.state;
    let Some(node) = state.node(id) else { return };
    let mut room = NodeInfo::new(node);
    for t in state.node_tasks(id) {
        let wanted =
            t.desired_state >= TaskState::Assigned && t.desired_state <= TaskState::Complete;
        if !wanted || t.status.state.is_terminal() {
            continue;
        }
        let Some(service) = state.services.get(&t.service_id) else { continue };
        let constraints = &service.spec.task_template.placement.constraints;
        let needs = Needs::reservations(t);
        if crate::scheduler::constraint::node_matches(&service.spec.name, constraints, node)
            && room.fits(&needs)
        {
            room.add(&needs);
            continue;
        }
        let (message, err) =
            ("task rejected by constraint enforcer", "assigned node no longer meets constraints");
        p.out.push(StoreCommand::mark_task(t, TaskState::Rejected, message, err, p.now));
        let mut rejected = t.clone();
        rejected.status.state = TaskState::Rejected;
        rejected.status.timestamp = p.now;
        restart_task(p, &rejected, service, RestartReason::Ended);
    }
}

fn node_removed(p: &mut Pass<'_>, id: &NodeId) {
    let state = p.state;
    for t in state.node_tasks(id) {
        let Some(service) = state.services.get(&t.service_id) else { continue };
        if !t.status.state.is_terminal() {
            updater::feed(p, service, Input::OldTaskGone { task: t.id.clone(), at: p.now });
        }
        if matches!(service.spec.mode, ServiceMode::Global) {
            p.out.push(StoreCommand::delete_task(&t.id));
        } else if t.desired_state <= TaskState::Running {
            restart_task(p, t, service, RestartReason::NodeLost);
        }
    }
    restart::release_delayed(p);
}

fn tick(p: &mut Pass<'_>) {
    let state = p.state;
    restart::release_delayed(p);
    for id in p.services_with_runs() {
        let due =
            p.run(&id).is_some_and(|r| r.is_active() && r.next_wake().is_some_and(|t| t <= p.now));
        if let (true, Some(service)) = (due, state.services.get(&id)) {
            updater::feed(p, service, Input::Tick { now: p.now });
        }
    }
}

/// A new leader's first step (swarmkit `taskinit.CheckTasks`): tasks that ended while
/// nobody watched are restarted; tasks a lost rollout worker held at READY are started once
/// their slot's stopping task has stopped (or at once when none is left); held restarts whose
/// time came are released.
fn check_tasks(p: &mut Pass<'_>) {
    let state = p.state;
    for t in state.all_tasks() {
        let ended = t.desired_state <= TaskState::Running && t.status.state.is_terminal();
        if let (true, Some(service)) = (ended, state.services.get(&t.service_id)) {
            restart_task(p, t, service, RestartReason::Ended);
        }
        let held = t.desired_state == TaskState::Ready && !t.status.state.is_terminal();
        if held && !state.delayed.contains_key(&t.id) {
            start_held(p, t);
        }
    }
    restart::release_delayed(p);
}

/// Starts a task left at READY by a rollout worker that a leader change lost: after the
/// slot's task that is still stopping (as the worker would have, with its 60 s bound).
fn start_held(p: &mut Pass<'_>, task: &Task) {
    let state = p.state;
    let stopping = slot_siblings(state, task).find(|o| {
        o.desired_state > TaskState::Running
            && !o.status.state.is_terminal()
            && !state.node_lost(o.node_id.as_ref())
    });
    match stopping {
        None => p.desire(&task.id, TaskState::Running),
        Some(old) => {
            let delay = DelayedStart {
                not_before: p.now,
                wait_for: Some(old.id.clone()),
                deadline: p.now + restart::OLD_TASK_TIMEOUT,
            };
            p.out.push(StoreCommand::DelayStart { task: task.id.clone(), delay });
        }
    }
}

/// Each orchestrator's start on a new leader: every service reconciled, its stored run
/// resumed; removed tasks reaped.
fn reconcile_all(p: &mut Pass<'_>) {
    let state = p.state;
    let by_service = index_by_service(state);
    for s in state.services.values() {
        let tasks = by_service.get(&s.id).map_or(&[][..], Vec::as_slice);
        reconcile_service(p, s, tasks, true);
    }
    reaper::reap_removed(state, &mut p.out);
}
