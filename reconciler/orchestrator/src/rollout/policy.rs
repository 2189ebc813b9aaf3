//! The numbers of a rollout: which config applies, how many workers, how long the monitoring
//! tail is, when failures trigger the failure action, and Docker's status messages.

use super::RolloutKind;
use reconciler_types::{TaskId, UpdateConfig};
use std::time::Duration;

pub use reconciler_types::rollout_math::DEFAULT_MONITOR;

/// How long a stop-first replacement waits for the old task to stop before starting anyway
/// (swarmkit `restart.go`, `defaultOldTaskTimeout`).
pub const OLD_TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The config a run uses, with Swarm's fallbacks applied: an update uses `update_config`, a
/// rollback the restored spec's `rollback_config`; a zero monitor means 5 s.
pub fn effective_config(
    kind: RolloutKind,
    update: &UpdateConfig,
    rollback: &UpdateConfig,
) -> UpdateConfig {
    match kind {
        RolloutKind::Update => update.with_default_monitor(),
        RolloutKind::Rollback => rollback.with_default_monitor(),
    }
}

/// The number of workers: `parallelism`, or one per dirty slot when it is 0.
pub fn worker_count(config: &UpdateConfig, dirty_slots: usize) -> usize {
    config.workers(dirty_slots)
}

/// How long failures are still watched after the last worker finished: `monitor`, or
/// `delay + 1 s` when the delay is at least the monitor period (`updater.go`).
pub fn monitoring_tail(config: &UpdateConfig) -> Duration {
    config.monitoring_tail()
}

/// Whether `failures` out of `dirty_slots` exceeds the tolerated ratio. Computed in `f32`
/// as Swarm does (`float32(failed)/float32(len(dirtySlots)) > MaxFailureRatio`).
pub fn failures_trigger_action(config: &UpdateConfig, failures: u32, dirty_slots: u32) -> bool {
    if dirty_slots == 0 {
        return failures > 0;
    }
    // Counts of slots are far below f32's exact-integer range.
    #[allow(clippy::cast_precision_loss)]
    let ratio = failures as f32 / dirty_slots as f32;
    ratio > config.max_failure_ratio
}

/// `update in progress`.
pub const MSG_UPDATING: &str = "update in progress";
/// `update completed`.
pub const MSG_COMPLETED: &str = "update completed";
/// `rollback completed`.
pub const MSG_ROLLBACK_COMPLETED: &str = "rollback completed";
/// `manually requested rollback`.
pub const MSG_MANUAL_ROLLBACK: &str = "manually requested rollback";

/// `update paused due to failure or early termination of task <id>` (also used for a paused
/// rollback whose failure action is pause, as Docker does).
pub fn msg_paused(task: &TaskId) -> String {
    format!("update paused due to failure or early termination of task {task}")
}

/// `update rolled back due to failure or early termination of task <id>`.
pub fn msg_rolled_back(task: &TaskId) -> String {
    format!("update rolled back due to failure or early termination of task {task}")
}

/// `rollback paused due to failure or early termination of task <id>`.
pub fn msg_rollback_paused(task: &TaskId) -> String {
    format!("rollback paused due to failure or early termination of task {task}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_delay_plus_one_second_when_delay_reaches_monitor() {
        let mut c = UpdateConfig { delay: Duration::from_secs(10), ..UpdateConfig::default() };
        assert_eq!(monitoring_tail(&c), Duration::from_secs(11));
        c.delay = Duration::from_secs(2);
        assert_eq!(monitoring_tail(&c), Duration::from_secs(5));
        c.delay = Duration::from_secs(5);
        assert_eq!(monitoring_tail(&c), Duration::from_secs(6));
    }

    #[test]
    fn ratio_is_strictly_greater_as_in_swarm() {
        let c = UpdateConfig { max_failure_ratio: 0.34, ..UpdateConfig::default() };
        assert!(!failures_trigger_action(&c, 1, 6));
        assert!(!failures_trigger_action(&c, 2, 6));
        assert!(failures_trigger_action(&c, 3, 6));
        let zero = UpdateConfig::default();
        assert!(!failures_trigger_action(&zero, 0, 6));
        assert!(failures_trigger_action(&zero, 1, 6));
    }

    #[test]
    fn parallelism_zero_means_one_worker_per_dirty_slot() {
        let c = UpdateConfig { parallelism: 0, ..UpdateConfig::default() };
        assert_eq!(worker_count(&c, 6), 6);
        assert_eq!(worker_count(&UpdateConfig::default(), 6), 1);
    }

    #[test]
    fn zero_monitor_falls_back_to_five_seconds() {
        let u = UpdateConfig { monitor: Duration::ZERO, ..UpdateConfig::default() };
        let r = UpdateConfig { parallelism: 0, ..UpdateConfig::default() };
        assert_eq!(effective_config(RolloutKind::Update, &u, &r).monitor, DEFAULT_MONITOR);
        assert_eq!(effective_config(RolloutKind::Rollback, &u, &r).parallelism, 0);
    }
}
