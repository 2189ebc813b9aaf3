//! The arithmetic of a rolling update, shared by the rollout state machine (which runs it)
//! and the planner (which estimates it for a pull-request comment), so the estimate and the
//! run cannot disagree (swarmkit `update/updater.go`, docs/swarm-semantics.md §6.3).

use crate::spec::UpdateConfig;
use std::time::Duration;

/// The monitor period used when a config leaves it at zero (swarmkit `api/defaults`).
pub const DEFAULT_MONITOR: Duration = Duration::from_secs(5);

impl UpdateConfig {
    /// The config as a run uses it: a zero monitor means [`DEFAULT_MONITOR`].
    #[must_use]
    pub fn with_default_monitor(&self) -> UpdateConfig {
        let mut config = self.clone();
        if config.monitor.is_zero() {
            config.monitor = DEFAULT_MONITOR;
        }
        config
    }

    /// The number of workers, each replacing one slot at a time: `parallelism`, or one per
    /// dirty slot when it is 0.
    pub fn workers(&self, dirty_slots: usize) -> usize {
        match usize::try_from(self.parallelism) {
            Ok(0) | Err(_) => dirty_slots.max(1),
            Ok(n) => n,
        }
    }

    /// How long failures are still watched after the last worker finished: `monitor`, or
    /// `delay + 1 s` when the delay is at least the monitor period.
    pub fn monitoring_tail(&self) -> Duration {
        if self.delay >= self.monitor { self.delay + Duration::from_secs(1) } else { self.monitor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_delay_plus_one_second_when_delay_reaches_monitor() {
        let c = UpdateConfig { delay: Duration::from_secs(10), ..UpdateConfig::default() };
        assert_eq!(c.monitoring_tail(), Duration::from_secs(11));
        let c = UpdateConfig { delay: Duration::from_secs(1), ..UpdateConfig::default() };
        assert_eq!(c.monitoring_tail(), Duration::from_secs(5));
    }

    #[test]
    fn zero_parallelism_means_one_worker_per_dirty_slot() {
        let c = UpdateConfig { parallelism: 0, ..UpdateConfig::default() };
        assert_eq!(c.workers(7), 7);
        assert_eq!(c.workers(0), 1);
        let c = UpdateConfig { monitor: Duration::ZERO, ..UpdateConfig::default() };
        assert_eq!(c.with_default_monitor().monitor, DEFAULT_MONITOR);
    }
}
