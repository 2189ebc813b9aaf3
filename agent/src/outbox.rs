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

    /// Waits until something is queued and answers the next batch to send, at once: a
    /// status waits only for the report before it to be answered (what is queued meanwhile
    /// goes in the next one), never a gathering window, since a task's RUNNING is on the way
    /// of every rolling update's next step.
    pub async fn next_batch(&self) -> Vec<TaskStatusUpdate> {
        loop {
            let queued = self.queued.notified();
            let batch = self.batch();
            if !batch.is_empty() {
                return batch;
            }
            queued.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::TaskState;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_next_batch_goes_at_once_and_waits_only_while_nothing_is_queued() {
        let o = Outbox::default();
        let start = tokio::time::Instant::now();
        o.push(TaskId::new("a"), st(TaskState::Running, "started"));
        let first = o.next_batch().await;
        assert_eq!((first.len(), start.elapsed()), (1, Duration::ZERO), "no gathering window");
        o.sent(&first);
        let later = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            o.push(TaskId::new("b"), st(TaskState::Running, "started"));
        };
        let (second, ()) = tokio::join!(o.next_batch(), later);
        assert_eq!(second[0].task_id, TaskId::new("b"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

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
