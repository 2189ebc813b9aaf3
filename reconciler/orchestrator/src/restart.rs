//! The restart supervisor (swarmkit `manager/orchestrator/restart/restart.go`): shuts a
//! stopped task down and, when the restart policy allows, creates its replacement in the
//! same slot, held at desired READY until the restart delay has elapsed and the old task has
//! stopped (or 60 s passed).

use crate::pass::Pass;
use crate::slot::{SlotKey, TaskIdAllocator};
use crate::state::{ClusterState, DelayedStart, ServiceRecord, StoreCommand};
use reconciler_types::{
    MonoTime, NodeId, RestartCondition, ServiceMode, Task, TaskState, TaskStatus,
};
use std::time::Duration;

/// Swarm's default restart delay.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);

/// How long a held replacement waits for the old task to stop.
pub const OLD_TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a task is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// Its observed state became terminal.
    Ended,
    /// Its node is down or was removed: no wait for the old task.
    NodeLost,
    /// Its node was drained: no restart delay, but wait for the old task.
    NodeDrained,
}

/// Whether the restart policy lets `task` be replaced (§5.2, §5.3).
pub fn should_restart(state: &ClusterState, task: &Task, service: &ServiceRecord) -> bool {
    let policy = &task.spec.restart_policy;
    match policy.condition {
        RestartCondition::None => return false,
        RestartCondition::OnFailure if task.status.state == TaskState::Complete => return false,
        RestartCondition::OnFailure | RestartCondition::Any => {}
    }
    if policy.max_attempts == 0 {
        return true;
    }
    let Some(slot) = SlotKey::of(task) else { return true };
    let history = state
        .restarts
        .get(&service.id)
        .and_then(|m| m.get(&slot))
        .filter(|h| h.spec_version == service.spec_version);
    let Some(history) = history else { return true };
    let window = policy.window.unwrap_or(Duration::ZERO);
    let count = if window.is_zero() {
        history.times.len()
    } else {
        let end = task.status.timestamp;
        let start = end.0.checked_sub(window);
        history.times.iter().filter(|t| start.is_none_or(|s| t.0 > s) && **t < end).count()
    };
    (count as u64) < policy.max_attempts
}

/// A new task of the service's current spec in `slot` (global: on `node`), PENDING.
pub fn new_task(
    service: &ServiceRecord,
    slot: &SlotKey,
    desired: TaskState,
    now: MonoTime,
    ids: &mut TaskIdAllocator,
) -> Task {
    let (slot_no, node): (u64, Option<NodeId>) = match slot {
        SlotKey::Replica(n) => (*n, None),
        SlotKey::Node(n) => (0, Some(n.clone())),
    };
    Task {
        id: ids.alloc(),
        service_id: service.id.clone(),
        slot: slot_no,
        node_id: node,
        spec_version: service.spec_version,
        spec: service.spec.task_template.clone(),
        desired_state: desired,
        status: TaskStatus {
            state: TaskState::Pending,
            timestamp: now,
            message: crate::scheduler::MSG_PENDING.to_owned(),
            ..TaskStatus::default()
        },
    }
}

/// Shuts `task` down and, if the policy allows, creates its replacement. Answers the
/// replacement.
pub fn restart(
    p: &mut Pass<'_>,
    task: &Task,
    service: &ServiceRecord,
    reason: RestartReason,
) -> Option<Task> {
    if task.desired_state < TaskState::Shutdown {
        p.desire(&task.id, TaskState::Shutdown);
    }
    let slot = SlotKey::of(task)?;
    if !should_restart(p.state, task, service) {
        return None;
    }
    if matches!(service.spec.mode, ServiceMode::Global) && reason != RestartReason::Ended {
        return None;
    }
    let policy = &task.spec.restart_policy;
    let delay = match reason {
        RestartReason::NodeDrained => Duration::ZERO,
        _ => policy.delay.unwrap_or(DEFAULT_DELAY),
    };
    let wait_for = (!task.status.state.is_terminal() && reason != RestartReason::NodeLost)
        .then(|| task.id.clone());
    let immediate = delay.is_zero() && wait_for.is_none();
    let desired = if immediate { TaskState::Running } else { TaskState::Ready };
    let now = p.now;
    let replacement = new_task(service, &slot, desired, now, &mut p.ids);
    p.out.push(StoreCommand::create_task(replacement.clone()));
    if policy.max_attempts > 0 {
        p.out.push(StoreCommand::RecordRestart {
            service: service.id.clone(),
            slot,
            spec_version: service.spec_version,
            at: now,
        });
    }
    if !immediate {
        let delay =
            DelayedStart { not_before: now + delay, wait_for, deadline: now + OLD_TASK_TIMEOUT };
        p.out.push(StoreCommand::DelayStart { task: replacement.id.clone(), delay });
    }
    Some(replacement)
}

/// Starts the held replacements whose delay has elapsed and whose old task has stopped, is
/// gone, or has had 60 s (§5.4).
pub fn release_delayed(p: &mut Pass<'_>) {
    let (state, now) = (p.state, p.now);
    for (id, d) in state.delayed.iter() {
        let clear = StoreCommand::ClearDelay { task: id.clone() };
        let Some(task) = state.task(id) else {
            p.out.push(clear);
            continue;
        };
        if task.desired_state > TaskState::Ready {
            p.out.push(clear);
            continue;
        }
        if now < d.not_before {
            continue;
        }
        let old_done = d.wait_for.as_ref().is_none_or(|old| {
            state
                .task(old)
                .is_none_or(|o| o.status.state.is_terminal() || state.node_lost(o.node_id.as_ref()))
        });
        if old_done || now >= d.deadline {
            p.desire(id, TaskState::Running);
            p.out.push(clear);
        }
    }
}

/// The next time a held replacement may start.
pub fn next_wake(state: &ClusterState, now: MonoTime) -> Option<MonoTime> {
    state
        .delayed
        .values()
        .map(|d| if now < d.not_before { d.not_before } else { d.deadline })
        .filter(|t| *t > now)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RestartHistory;
    use reconciler_types::{ServiceId, ServiceSpec};
    use std::collections::BTreeMap;

    fn setup(
        max_attempts: u64,
        window: Option<u64>,
        restarts: &[u64],
    ) -> (ClusterState, ServiceRecord, Task) {
        let mut spec = ServiceSpec::default();
        spec.task_template.restart_policy.max_attempts = max_attempts;
        spec.task_template.restart_policy.window = window.map(Duration::from_secs);
        let service = ServiceRecord::new(ServiceId::new("s"), spec, 1);
        let mut view = ClusterState::default();
        let times = restarts.iter().map(|s| MonoTime::from_secs(*s)).collect();
        view.restarts.insert(
            service.id.clone(),
            BTreeMap::from([(SlotKey::Replica(1), RestartHistory { spec_version: 1, times })]),
        );
        let mut task = Task {
            slot: 1,
            service_id: service.id.clone(),
            spec: service.spec.task_template.clone(),
            ..Task::default()
        };
        task.status.state = TaskState::Failed;
        task.status.timestamp = MonoTime::from_secs(13);
        (view, service, task)
    }

    #[test]
    fn window_counts_restarts_in_the_open_interval_before_the_failure() {
        let (view, service, task) = setup(2, Some(60), &[1, 7]);
        assert!(!should_restart(&view, &task, &service), "2 restarts in (-47, 13)");
        let (view, service, task) = setup(2, Some(10), &[1, 7]);
        assert!(should_restart(&view, &task, &service), "only t=7 is in (3, 13)");
        let (view, service, task) = setup(2, Some(10), &[3, 13]);
        assert!(should_restart(&view, &task, &service), "t=3 is at the edge and t=13 not before T");
    }

    #[test]
    fn history_of_another_spec_version_does_not_count() {
        let (view, mut service, task) = setup(1, None, &[5]);
        assert!(!should_restart(&view, &task, &service));
        service.spec_version = 2;
        assert!(should_restart(&view, &task, &service));
    }

    #[test]
    fn on_failure_does_not_restart_a_completed_task() {
        let (view, service, mut task) = setup(0, None, &[]);
        task.spec.restart_policy.condition = RestartCondition::OnFailure;
        task.status.state = TaskState::Complete;
        assert!(!should_restart(&view, &task, &service));
        task.status.state = TaskState::Failed;
        assert!(should_restart(&view, &task, &service));
    }
}
