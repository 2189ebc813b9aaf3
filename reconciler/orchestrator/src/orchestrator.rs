//! The event entry points: one pure function per kind of store event, each reading the
//! snapshot and answering the store changes Swarm's manager would make. The driver (the
//! leader's background task, or the simulator) applies them, runs [`crate::scheduler`], and
//! calls [`Event::Tick`] at [`next_wake`].
//!
//! After applying each change the driver calls [`after_change`] (the store watchers:
//! history pruning, REMOVE deletion, the run that follows an automatic rollback).

use crate::reaper;
use crate::restart::{self, RestartReason};
use crate::rollout::{Input, SlotSnapshot};
use crate::scheduler::filters::{Needs, NodeInfo};
use crate::service::ServiceRecord;
use crate::slot::{SlotKey, TaskIdAllocator};
use crate::updater::{self, Runs};
use crate::view::{ClusterView, StoreChange};
use crate::{global, replicated};
use reconciler_types::{
    Availability, MonoTime, NodeId, NodeState, ServiceId, ServiceMode, Task, TaskId, TaskState,
};
use std::collections::BTreeMap;

/// What happened in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A service was created or its spec changed (update, rollback, scale).
    ServiceChanged(ServiceId),
    /// A service was deleted.
    ServiceRemoved(ServiceId),
    /// A task's observed state changed (already applied to the view).
    TaskObserved(TaskId),
    /// A node was added or changed (availability, labels, status).
    NodeChanged(NodeId),
    /// A node was removed (its record is already gone from the view).
    NodeRemoved(NodeId),
    /// Time passed: start held tasks, fire rollout timers.
    Tick,
    /// This manager became leader: resume rollouts and reconcile everything.
    LeaderElected,
}

/// One handler's working state: the snapshot, the time, the id allocator, the changes so
/// far and the rollout runs touched.
struct Pass<'a> {
    view: &'a ClusterView,
    now: MonoTime,
    ids: TaskIdAllocator,
    out: Vec<StoreChange>,
    runs: Runs,
}

impl<'a> Pass<'a> {
    fn new(view: &'a ClusterView, now: MonoTime) -> Self {
        Pass { view, now, ids: view.ids, out: Vec::new(), runs: Runs::default() }
    }

    fn finish(mut self) -> Vec<StoreChange> {
        self.runs.flush(&mut self.out);
        self.out
    }

    fn runs_view(&self, service: &ServiceRecord) -> Option<&crate::rollout::Rollout> {
        self.runs.peek(self.view, &service.id)
    }

    fn feed(&mut self, service: &ServiceRecord, input: Input) {
        updater::feed(
            self.view,
            &mut self.runs,
            service,
            input,
            self.now,
            &mut self.ids,
            &mut self.out,
        );
    }
}

/// Handles one event. Pure: the same view, event and time give the same changes.
#[must_use]
pub fn handle(view: &ClusterView, event: &Event, now: MonoTime) -> Vec<StoreChange> {
    let mut p = Pass::new(view, now);
    match event {
        Event::ServiceChanged(id) => {
            if let Some(s) = view.services.get(id) {
                let tasks: Vec<&Task> = view.service_tasks(id).collect();
                reconcile_service(&mut p, s, &tasks, false);
            }
        }
        Event::ServiceRemoved(id) => service_removed(&mut p, id),
        Event::TaskObserved(id) => task_observed(&mut p, id),
        Event::NodeChanged(id) => node_changed(&mut p, id),
        Event::NodeRemoved(id) => node_removed(&mut p, id),
        Event::Tick => tick(&mut p),
        Event::LeaderElected => leader_elected(&mut p),
    }
    p.finish()
}

/// The earliest time a [`Event::Tick`] has work to do.
pub fn next_wake(view: &ClusterView, now: MonoTime) -> Option<MonoTime> {
    let rollouts = view.rollouts.values().filter(|r| r.is_active()).filter_map(|r| r.next_wake());
    rollouts.chain(restart::next_wake(view, now)).min()
}

/// What the store's watchers do after a change was applied (the view already holds it):
/// a created task prunes its slot's history; a task set to REMOVE that never reached a node
/// is deleted; an automatic rollback starts the rollback run.
#[must_use]
pub fn after_change(view: &ClusterView, change: &StoreChange, now: MonoTime) -> Vec<StoreChange> {
    let mut out = Vec::new();
    match change {
        StoreChange::CreateTask(task) => {
            if let Some(slot) = SlotKey::of(task) {
                reaper::reap_slot(view, &task.service_id, &slot, &mut out);
            }
        }
        StoreChange::SetDesired { task, state: TaskState::Remove }
            if view.tasks.get(task).is_some_and(reaper::removable) =>
        {
            out.push(StoreChange::DeleteTask(task.clone()));
        }
        StoreChange::AutoRollback { service, .. } => {
            out = handle(view, &Event::ServiceChanged(service.clone()), now)
        }
        _ => {}
    }
    out
}

/// One reconcile pass over every service, as a new leader's orchestrators do at start.
#[must_use]
pub fn reconcile_all(view: &ClusterView, now: MonoTime) -> Vec<StoreChange> {
    let mut p = Pass::new(view, now);
    let by_service = index_by_service(view);
    for s in view.services.values() {
        let tasks = by_service.get(&s.id).map_or(&[][..], Vec::as_slice);
        reconcile_service(&mut p, s, tasks, false);
    }
    p.finish()
}

fn index_by_service(view: &ClusterView) -> BTreeMap<&ServiceId, Vec<&Task>> {
    let mut by_service: BTreeMap<&ServiceId, Vec<&Task>> = BTreeMap::new();
    for t in view.tasks.values() {
        by_service.entry(&t.service_id).or_default().push(t);
    }
    by_service
}

/// Reconciles a service's slots, then hands them to the updater (or, on a new leader,
/// resumes its stored run over them).
fn reconcile_service(p: &mut Pass<'_>, s: &ServiceRecord, tasks: &[&Task], resume: bool) {
    let (view, now) = (p.view, p.now);
    let slots = match s.spec.mode {
        ServiceMode::Replicated { .. } => {
            replicated::reconcile_slots(view, s, tasks, now, &mut p.ids, &mut p.out)
        }
        ServiceMode::Global => global::reconcile_slots(view, s, tasks, now, &mut p.ids, &mut p.out),
    };
    if resume {
        updater::resume(view, &mut p.runs, s, slots, now, &mut p.ids, &mut p.out);
    } else {
        updater::update(view, &mut p.runs, s, slots, now, &mut p.ids, &mut p.out);
    }
}

fn service_removed(p: &mut Pass<'_>, id: &ServiceId) {
    for t in p.view.service_tasks(id) {
        if t.desired_state < TaskState::Remove {
            p.out.push(StoreChange::SetDesired { task: t.id.clone(), state: TaskState::Remove });
        }
    }
    if p.view.rollouts.contains_key(id) {
        p.out.push(StoreChange::RemoveRollout(id.clone()));
    }
}

fn task_observed(p: &mut Pass<'_>, id: &TaskId) {
    let view = p.view;
    let Some(task) = view.tasks.get(id) else { return };
    if reaper::removable(task) {
        p.out.push(StoreChange::DeleteTask(id.clone()));
    }
    if let Some(service) = view.services.get(&task.service_id) {
        p.feed(
            service,
            Input::TaskObserved { task: id.clone(), state: task.status.state, at: p.now },
        );
        if task.desired_state <= TaskState::Running && task.status.state.is_terminal() {
            restart_task(p, task, service, RestartReason::Ended);
        }
        if task.status.state == TaskState::Running {
            retire_outdated_siblings(p, task, service);
        }
    }
    restart::release_delayed(view, p.now, &mut p.out);
}

/// A task of the current spec reached RUNNING in a slot that still runs an outdated task no
/// rollout is handling (a start-first update whose new task failed and whose restart now
/// runs): the outdated task is shut down, so a slot never keeps two running tasks. Swarm
/// leaves both until the next update (S26); flotilla finishes the start-first handover.
fn retire_outdated_siblings(p: &mut Pass<'_>, task: &Task, service: &ServiceRecord) {
    let view = p.view;
    let Some(slot) = SlotKey::of(task) else { return };
    if !updater::is_clean(view, task, service) || task.desired_state != TaskState::Running {
        return;
    }
    let handled = p.runs_view(service).is_some_and(|r| r.is_active() && r.holds_slot(&slot));
    if handled {
        return;
    }
    for t in view.service_tasks(&service.id) {
        let sibling = t.id != task.id && SlotKey::of(t).as_ref() == Some(&slot);
        if sibling && t.desired_state <= TaskState::Running && !updater::is_clean(view, t, service)
        {
            p.out.push(StoreChange::SetDesired { task: t.id.clone(), state: TaskState::Shutdown });
        }
    }
}

/// Whether the task's slot already holds another wanted task of the current spec (a
/// rollout's new task), which makes a restart replacement redundant.
fn slot_covered(view: &ClusterView, task: &Task, service: &ServiceRecord) -> bool {
    let Some(slot) = SlotKey::of(task) else { return false };
    view.service_tasks(&service.id).any(|t| {
        t.id != task.id
            && t.desired_state <= TaskState::Running
            && SlotKey::of(t).as_ref() == Some(&slot)
            && updater::is_clean(view, t, service)
    })
}

/// Restarts a task and tells an active rollout what its slot now holds.
fn restart_task(p: &mut Pass<'_>, task: &Task, service: &ServiceRecord, reason: RestartReason) {
    let view = p.view;
    if matches!(service.spec.mode, ServiceMode::Global) {
        let node = task.node_id.as_ref().and_then(|n| view.nodes.get(n));
        let keeps = node.is_some_and(|n| {
            n.spec.availability == Availability::Active && global::eligible(service, n)
        });
        if !keeps {
            if task.desired_state < TaskState::Shutdown {
                p.out.push(StoreChange::SetDesired {
                    task: task.id.clone(),
                    state: TaskState::Shutdown,
                });
            }
            if let Some(slot) = SlotKey::of(task) {
                p.feed(
                    service,
                    Input::SlotRefreshed { slot: SlotSnapshot { slot, tasks: Vec::new() } },
                );
            }
            return;
        }
    }
    if slot_covered(view, task, service) {
        // The slot already has a task of the current spec (a rollout's new task): shut the
        // stopped one down without a second replacement.
        if task.desired_state < TaskState::Shutdown {
            p.out.push(StoreChange::SetDesired {
                task: task.id.clone(),
                state: TaskState::Shutdown,
            });
        }
        return;
    }
    let Some(new) = restart::restart(view, task, service, reason, p.now, &mut p.ids, &mut p.out)
    else {
        return;
    };
    let Some(slot) = SlotKey::of(&new) else { return };
    let mut tasks: Vec<&Task> = view
        .service_tasks(&service.id)
        .filter(|t| {
            t.id != task.id
                && t.desired_state <= TaskState::Running
                && SlotKey::of(t).as_ref() == Some(&slot)
        })
        .collect();
    tasks.push(&new);
    let snapshot: SlotSnapshot = updater::snapshot(view, service, slot, &tasks);
    p.feed(service, Input::SlotRefreshed { slot: snapshot });
}

fn tasks_on<'a>(view: &'a ClusterView, node: &'a NodeId) -> impl Iterator<Item = &'a Task> + 'a {
    view.tasks.values().filter(move |t| t.node_id.as_ref() == Some(node))
}

fn node_changed(p: &mut Pass<'_>, id: &NodeId) {
    let view = p.view;
    let Some(node) = view.nodes.get(id) else { return };
    let lost = node.status.state == NodeState::Down;
    let drained = node.spec.availability == Availability::Drain;
    if lost || drained {
        let reason = if lost { RestartReason::NodeLost } else { RestartReason::NodeDrained };
        for t in tasks_on(view, id).filter(|t| t.desired_state <= TaskState::Running) {
            let Some(service) = view.services.get(&t.service_id) else { continue };
            if lost {
                p.feed(service, Input::OldTaskGone { task: t.id.clone(), at: p.now });
            }
            restart_task(p, t, service, reason);
        }
    } else if node.status.state == NodeState::Ready
        && node.spec.availability == Availability::Active
    {
        enforce_constraints(p, id);
        global::reconcile_node(view, node, p.now, &mut p.ids, &mut p.out);
    }
    restart::release_delayed(view, p.now, &mut p.out);
}

/// The constraint enforcer (§3.8): tasks on an active node whose service's constraints no
/// longer match it, or whose reservations no longer fit (tasks taken in id order), are
/// REJECTED, then restarted elsewhere per the restart policy.
fn enforce_constraints(p: &mut Pass<'_>, id: &NodeId) {
    let view = p.view;
    let Some(node) = view.nodes.get(id) else { return };
    let mut room = NodeInfo::new(node);
    for t in tasks_on(view, id) {
        let wanted =
            t.desired_state >= TaskState::Assigned && t.desired_state <= TaskState::Complete;
        if !wanted || t.status.state.is_terminal() {
            continue;
        }
        let Some(service) = view.services.get(&t.service_id) else { continue };
        let constraints = &service.spec.task_template.placement.constraints;
        let needs = Needs::reservations(t);
        if crate::scheduler::constraint::node_matches(&service.spec.name, constraints, node)
            && room.fits(&needs)
        {
            room.add(&needs);
            continue;
        }
        p.out.push(StoreChange::SetObserved {
            task: t.id.clone(),
            state: TaskState::Rejected,
            message: "task rejected by constraint enforcer".to_owned(),
            err: "assigned node no longer meets constraints".to_owned(),
            at: p.now,
        });
        let mut rejected = t.clone();
        rejected.status.state = TaskState::Rejected;
        rejected.status.timestamp = p.now;
        restart_task(p, &rejected, service, RestartReason::Ended);
    }
}

fn node_removed(p: &mut Pass<'_>, id: &NodeId) {
    let view = p.view;
    for t in tasks_on(view, id) {
        let Some(service) = view.services.get(&t.service_id) else { continue };
        if matches!(service.spec.mode, ServiceMode::Global) {
            p.out.push(StoreChange::DeleteTask(t.id.clone()));
        } else if t.desired_state <= TaskState::Running {
            p.feed(service, Input::OldTaskGone { task: t.id.clone(), at: p.now });
            restart_task(p, t, service, RestartReason::NodeLost);
        }
    }
    restart::release_delayed(view, p.now, &mut p.out);
}

fn tick(p: &mut Pass<'_>) {
    let view = p.view;
    restart::release_delayed(view, p.now, &mut p.out);
    for (id, run) in &view.rollouts {
        if run.is_active()
            && run.next_wake().is_some_and(|t| t <= p.now)
            && let Some(service) = view.services.get(id)
        {
            p.feed(service, Input::Tick { now: p.now });
        }
    }
}

fn leader_elected(p: &mut Pass<'_>) {
    let view = p.view;
    let by_service = index_by_service(view);
    for s in view.services.values() {
        let tasks = by_service.get(&s.id).map_or(&[][..], Vec::as_slice);
        reconcile_service(p, s, tasks, true);
    }
    reaper::reap_removed(view, &mut p.out);
    restart::release_delayed(view, p.now, &mut p.out);
}
