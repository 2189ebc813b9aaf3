//! Task states waiting to be reported (swarmkit `agent/reporter.go`): the latest status of
//! each task, never an older state over a newer one, sent in batches and kept until the
//! dispatcher answered (a batch lost with a connection is sent again).

use reconciler_api::dispatcher::TaskStatusUpdate;
use reconciler_types::{TaskId, TaskStatus};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::Notify;

/// The most updates sent in one report.
pub const MAX_BATCH: usize = 500;

/// Statuses to report, shared by the task runners and the session.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: Mutex<BTreeMap<TaskId, TaskStatus>>,
    /// Woken when something is queued.
    pub queued: Notify,
}

impl Outbox {
    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<TaskId, TaskStatus>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a status; one behind what is queued for the task already is dropped.
    pub fn push(&self, task: TaskId, status: TaskStatus) {
        let mut p = self.pending();
        if p.get(&task).is_some_and(|queued| queued.state > status.state) {
            return;
        }
        p.insert(task, status);
        drop(p);
        self.queued.notify_one();
    }

    /// Up to [`MAX_BATCH`] queued updates (they stay queued until [`Outbox::sent`]).
    pub fn batch(&self) -> Vec<TaskStatusUpdate> {
        self.pending()
            .iter()
            .take(MAX_BATCH)
            .map(|(id, s)| TaskStatusUpdate { task_id: id.clone(), status: s.clone() })
            .collect()
    }

    /// Forgets what a batch reported, unless a newer status was queued meanwhile.
    pub fn sent(&self, batch: &[TaskStatusUpdate]) {
        let mut p = self.pending();
        for u in batch {
            if p.get(&u.task_id) == Some(&u.status) {
                p.remove(&u.task_id);
            }
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::TaskState;

    fn st(state: TaskState, msg: &str) -> TaskStatus {
        TaskStatus { state, message: msg.into(), ..TaskStatus::default() }
    }

    #[test]
    fn the_latest_state_wins_and_never_an_older_one() {
        let o = Outbox::default();
        let t = TaskId::new("t1");
        o.push(t.clone(), st(TaskState::Preparing, "preparing"));
        o.push(t.clone(), st(TaskState::Running, "started"));
        o.push(t.clone(), st(TaskState::Starting, "late"));
        let b = o.batch();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].status.state, TaskState::Running);
    }

    #[test]
    fn a_batch_stays_until_sent_and_a_newer_status_survives_the_ack() {
        let o = Outbox::default();
        let t = TaskId::new("t1");
        o.push(t.clone(), st(TaskState::Running, "started"));
        let b = o.batch();
        assert_eq!(o.batch(), b, "not removed by taking it");
        o.push(t.clone(), st(TaskState::Failed, "exited"));
        o.sent(&b);
        assert_eq!(o.batch()[0].status.state, TaskState::Failed);
        o.sent(&o.batch());
        assert!(o.is_empty());
    }
}
