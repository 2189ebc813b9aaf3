//! The task reaper (swarmkit `manager/orchestrator/taskreaper/task_reaper.go`): keeps at
//! most `task-history-limit` tasks per slot (`max_attempts + 1` for services with
//! `max_attempts > 0`), deleting the oldest finished ones, and deletes tasks whose desired
//! state is REMOVE once they are down (or never reached a node).

use crate::slot::SlotKey;
use crate::state::{ClusterState, StoreCommand};
use reconciler_types::{ServiceId, Task, TaskState};

/// The history limit for a service: `max_attempts + 1` when its restart policy has
/// attempts, else the cluster's setting (negative = never prune).
pub fn history_limit(state: &ClusterState, service: &ServiceId) -> i64 {
    let attempts =
        state.services.get(service).map_or(0, |s| s.spec.task_template.restart_policy.max_attempts);
    if attempts > 0 {
        i64::try_from(attempts).unwrap_or(i64::MAX).saturating_add(1)
    } else {
        state.settings.task_history_limit
    }
}

/// Whether a REMOVE task may be deleted now: down (≥ COMPLETE) or never reached a node.
pub fn removable(task: &Task) -> bool {
    task.desired_state == TaskState::Remove
        && (task.status.state >= TaskState::Complete || task.status.state < TaskState::Assigned)
}

/// Prunes one slot that just got a new task (§1.6): oldest first, only tasks that are
/// terminal or will never run, until the slot holds at most the limit.
pub fn reap_slot(
    state: &ClusterState,
    service: &ServiceId,
    slot: &SlotKey,
    out: &mut Vec<StoreCommand>,
) {
    let limit = history_limit(state, service);
    let Ok(limit) = usize::try_from(limit) else { return };
    let mut tasks: Vec<&Task> = state.slot_tasks(service, slot.clone()).collect();
    let mut count = tasks.len();
    if count <= limit {
        return;
    }
    tasks.sort_by(|a, b| (a.status.timestamp, &a.id).cmp(&(b.status.timestamp, &b.id)));
    for t in tasks {
        if count <= limit {
            break;
        }
        let dead = t.status.state.is_terminal()
            || (t.status.state < TaskState::Assigned && t.desired_state > TaskState::Running);
        if dead {
            out.push(StoreCommand::delete_task(&t.id));
            count -= 1;
        }
    }
}

/// Deletes every REMOVE task that is down, and every task of a deleted service that is
/// down or orphaned (the reaper's start-up scan, also run on events).
pub fn reap_removed(state: &ClusterState, out: &mut Vec<StoreCommand>) {
    for t in state.all_tasks() {
        let serviceless = !state.services.contains_key(&t.service_id)
            && (t.status.state == TaskState::Orphaned
                || t.status.state.is_terminal()
                || t.status.state < TaskState::Assigned);
        if removable(t) || serviceless {
            out.push(StoreCommand::delete_task(&t.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ServiceRecord, TaskRecord};
    use reconciler_types::{MonoTime, ServiceSpec, TaskId};

    fn view_with_slot(states: &[(TaskState, TaskState)], max_attempts: u64) -> ClusterState {
        let mut view = ClusterState::default();
        let mut spec = ServiceSpec::default();
        spec.task_template.restart_policy.max_attempts = max_attempts;
        view.services.insert(ServiceId::new("s"), ServiceRecord::new(ServiceId::new("s"), spec, 1));
        for (i, (desired, observed)) in states.iter().enumerate() {
            let mut t = Task {
                id: TaskId(format!("t{i}")),
                service_id: ServiceId::new("s"),
                slot: 1,
                ..Task::default()
            };
            t.desired_state = *desired;
            t.status.state = *observed;
            t.status.timestamp = MonoTime::from_secs(i as u64);
            view.tasks.insert(t.id.clone(), TaskRecord { task: t, version: 0 });
        }
        view
    }

    fn deleted(view: &ClusterState) -> Vec<String> {
        let mut out = Vec::new();
        reap_slot(view, &ServiceId::new("s"), &SlotKey::Replica(1), &mut out);
        out.iter()
            .filter_map(|c| match c {
                StoreCommand::RemoveTask { id, .. } => Some(id.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reaper_keeps_the_limit_deleting_oldest_finished_first() {
        let dead = (TaskState::Shutdown, TaskState::Failed);
        let live = (TaskState::Running, TaskState::Running);
        let view = view_with_slot(&[dead, dead, dead, dead, dead, dead, live], 0);
        assert_eq!(deleted(&view), ["t0", "t1"]);
    }

    #[test]
    fn reaper_never_deletes_running_tasks_and_honours_max_attempts() {
        let running = (TaskState::Shutdown, TaskState::Running);
        let dead = (TaskState::Shutdown, TaskState::Failed);
        let view = view_with_slot(&[running, dead, dead, dead], 1);
        assert_eq!(
            deleted(&view),
            ["t1", "t2"],
            "limit max_attempts + 1 = 2; the running one stays"
        );
        let mut view = view_with_slot(&[dead; 8], 0);
        view.settings.task_history_limit = -1;
        assert!(deleted(&view).is_empty(), "a negative limit never prunes");
    }

    #[test]
    fn remove_tasks_are_deleted_once_down_or_never_assigned() {
        let mut t = Task { desired_state: TaskState::Remove, ..Task::default() };
        t.status.state = TaskState::Pending;
        assert!(removable(&t));
        t.status.state = TaskState::Running;
        assert!(!removable(&t));
        t.status.state = TaskState::Shutdown;
        assert!(removable(&t));
    }
}
