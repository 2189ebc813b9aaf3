//! The update supervisor (swarmkit `update/updater.go` `Supervisor`): decides which tasks are
//! dirty, snapshots slots for the rollout state machine, starts, feeds and resumes runs, and
//! turns their commands into store commands.

use crate::pass::Pass;
use crate::restart::new_task;
use crate::rollout::{Command, Input, Rollout, RolloutTarget, SlotSnapshot, SlotTask};
use crate::scheduler::constraint;
use crate::slot::{SlotKey, TaskIdAllocator};
use crate::state::{ClusterState, ServiceRecord, StoreCommand};
use reconciler_types::{Task, TaskState};

/// Whether a task already runs the service's current spec (swarmkit `IsTaskDirty`, negated):
/// same spec version; or a deep-equal task template; or only the placement constraints
/// changed and the task's node satisfies the new ones.
pub fn is_clean(state: &ClusterState, task: &Task, service: &ServiceRecord) -> bool {
    if task.spec_version == service.spec_version {
        return true;
    }
    let want = &service.spec.task_template;
    if task.spec == *want {
        return true;
    }
    if task.spec.placement.constraints == want.placement.constraints {
        return false;
    }
    let mut relaxed = task.spec.clone();
    relaxed.placement.constraints.clone_from(&want.placement.constraints);
    if relaxed != *want {
        return false;
    }
    let node = task.node_id.as_ref().and_then(|n| state.node(n));
    node.is_some_and(|n| {
        constraint::node_matches(&service.spec.name, &want.placement.constraints, n)
    })
}

/// A slot as the rollout sees it.
pub fn snapshot(
    state: &ClusterState,
    service: &ServiceRecord,
    slot: SlotKey,
    tasks: &[&Task],
) -> SlotSnapshot {
    let tasks = tasks
        .iter()
        .map(|t| SlotTask {
            id: t.id.clone(),
            clean: is_clean(state, t, service),
            desired: t.desired_state,
            observed: t.status.state,
            // A task never placed has no agent to report on it either.
            node_down: t.node_id.is_none() || state.node_lost(t.node_id.as_ref()),
        })
        .collect();
    SlotSnapshot { slot, tasks }
}

/// Hands the live slots to the updater: nothing if a run toward this spec version is still
/// active; otherwise a new run replaces the old one (swarmkit `Supervisor.Update`).
pub fn update(p: &mut Pass<'_>, service: &ServiceRecord, slots: Vec<SlotSnapshot>) {
    let existing = p.run(&service.id);
    if existing.is_some_and(|r| r.spec_version() == service.spec_version && r.is_active()) {
        return;
    }
    let existing_active = existing.is_some_and(Rollout::is_active);
    let target = RolloutTarget {
        service: &service.id,
        spec_version: service.spec_version,
        update_config: &service.spec.update_config,
        rollback_config: &service.spec.rollback_config,
        status: service.update_status.as_ref(),
    };
    let (run, cmds) = Rollout::start(&target, slots, p.now, &mut p.ids);
    if cmds.is_empty() && !run.is_active() && !existing_active {
        return;
    }
    convert(p, service, cmds);
    p.set_run(&service.id, run);
}

/// Feeds an input to the service's run, if it has an active one toward the current spec.
pub fn feed(p: &mut Pass<'_>, service: &ServiceRecord, input: Input) {
    let mut ids = p.ids;
    let Some(run) = p.run_mut(&service.id) else { return };
    if !run.is_active() || run.spec_version() != service.spec_version {
        return;
    }
    let cmds = run.handle(input, &mut ids);
    p.ids = ids;
    convert(p, service, cmds);
}

/// Resumes the service's stored run on a new leader over the slots as the store has them
/// (or starts one when there is none toward the current spec).
pub fn resume(p: &mut Pass<'_>, service: &ServiceRecord, slots: Vec<SlotSnapshot>) {
    match p.run(&service.id) {
        Some(run) if run.spec_version() == service.spec_version && !run.is_cancelled() => {
            let (run, cmds) = run.clone().resume(slots, p.now, &mut p.ids);
            convert(p, service, cmds);
            p.set_run(&service.id, run);
        }
        _ => update(p, service, slots),
    }
}

/// Whether a run's desired-state decision still applies to the task as the store has it now
/// (the run decides from its snapshots): a held task is started only while it is still held
/// at READY (swarmkit's `StartNow`), never once it ended or was told to stop; a task is told
/// to stop only once. A task the pass created is not in the state yet and always applies.
fn still_applies(
    state: &ClusterState,
    task: &reconciler_types::TaskId,
    desired: TaskState,
) -> bool {
    match state.task(task) {
        None => true,
        Some(t) if desired == TaskState::Running => {
            t.desired_state == TaskState::Ready && !t.status.state.is_terminal()
        }
        Some(t) => t.desired_state < desired,
    }
}

fn convert(p: &mut Pass<'_>, service: &ServiceRecord, cmds: Vec<Command>) {
    for cmd in cmds {
        let out = match cmd {
            Command::CreateTask { slot, task, desired } => {
                let mut t =
                    new_task(service, &slot, desired, p.now, &mut TaskIdAllocator::default());
                t.id = task;
                StoreCommand::create_task(t)
            }
            Command::SetDesired { task, state } if still_applies(p.state, &task, state) => {
                StoreCommand::set_desired(&task, state)
            }
            Command::SetDesired { .. } => continue,
            Command::SetStatus(status) => {
                StoreCommand::SetUpdateStatus { service: service.id.clone(), status: Some(status) }
            }
            Command::Rollback(status) => {
                StoreCommand::AutoRollback { service: service.id.clone(), status }
            }
            Command::WakeAt(_) => continue,
        };
        p.out.push(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::Scratch;
    use crate::rollout::Input;
    use crate::state::{ServiceRecord, TaskRecord};
    use reconciler_types::{MonoTime, ServiceId, ServiceSpec, TaskId};

    fn task(id: &str, version: u64, desired: TaskState, observed: TaskState) -> Task {
        let mut t = Task {
            id: TaskId::new(id),
            service_id: ServiceId::new("s"),
            slot: 1,
            spec_version: version,
            ..Task::default()
        };
        t.spec.container_spec.image = format!("v{version}");
        t.desired_state = desired;
        t.status.state = observed;
        t
    }

    #[test]
    fn a_run_never_starts_a_task_that_ended_since_its_snapshot() {
        let mut state = ClusterState::default();
        let mut spec = ServiceSpec::default();
        spec.task_template.container_spec.image = "v2".into();
        let service = ServiceRecord::new(ServiceId::new("s"), spec, 2);
        state.services.insert(service.id.clone(), service.clone());
        // The run's snapshot: the held new task (clean, READY) beside the old one still running.
        let held = task("held", 2, TaskState::Ready, TaskState::Ready);
        let old = task("old", 1, TaskState::Running, TaskState::Running);
        let slot = snapshot(&state, &service, SlotKey::Replica(1), &[&held, &old]);
        // Meanwhile the held task was started by the restart supervisor, failed and was stopped.
        let ended = task("held", 2, TaskState::Shutdown, TaskState::Failed);
        state.tasks.insert(ended.id.clone(), TaskRecord { task: ended, version: 1 });
        let mut scratch = Scratch::new(MonoTime::ZERO, TaskIdAllocator::default());
        let mut p = Pass::new(&state, &mut scratch);
        update(&mut p, &service, vec![slot]);
        feed(
            &mut p,
            &service,
            Input::OldTaskGone { task: TaskId::new("old"), at: MonoTime::from_secs(1) },
        );
        let revived = p.out.iter().any(|c| {
            matches!(c, StoreCommand::SetTaskDesiredState { id, state: TaskState::Running, .. } if id.as_str() == "held")
        });
        assert!(!revived, "an ended task was told to run again: {:?}", p.out);
    }
}
