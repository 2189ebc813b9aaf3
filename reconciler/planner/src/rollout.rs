//! Rollout batches and the shortest time a rolling update can take (swarmkit
//! `update/updater.go`, see docs/swarm-semantics.md §6.3).
//!
//! `parallelism` workers each take one dirty slot at a time (0 = all slots at once), wait
//! for the new task to run, then sleep `delay`. With instant starts that is batches of
//! `parallelism` every `delay`. After the last batch the updater keeps watching for
//! `monitor` (or `delay + 1s` when `delay ≥ monitor`). A health check adds the wait for the
//! first probe, since a task only counts as running once healthy. The batch size and the
//! tail come from `reconciler_types::rollout_math`, the arithmetic the rollout machine runs.

use crate::fields::{failure_action_str, fmt_duration, order_str};
use crate::plan::{Batch, Rollout};
use reconciler_types::{ServiceMode, ServiceSpec, UpdateConfig};
use std::time::Duration;

/// Docker's health check interval when none is given.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's interval during the start period when none is given.
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

/// The tasks an update of `old` to `new` replaces: the slots that exist on both sides
/// (`None` for a global service).
pub fn replaced_tasks(old: &ServiceSpec, new: &ServiceSpec) -> Option<u64> {
    match (old.mode, new.mode) {
        (ServiceMode::Replicated { replicas: a }, ServiceMode::Replicated { replicas: b }) => {
            Some(a.min(b))
        }
        _ => None,
    }
}

/// How long a new task of `spec` takes at least to count as running.
pub fn health_wait(spec: &ServiceSpec) -> Duration {
    let Some(h) = &spec.task_template.container_spec.healthcheck else { return Duration::ZERO };
    if h.test.is_empty() || h.test.first().is_some_and(|t| t == "NONE") {
        return Duration::ZERO;
    }
    match h.start_period {
        Some(p) if !p.is_zero() => h.start_interval.unwrap_or(DEFAULT_START_INTERVAL),
        _ => h.interval.filter(|i| !i.is_zero()).unwrap_or(DEFAULT_HEALTH_INTERVAL),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The rollout of `tasks` tasks (`None`: global) under `cfg`.
pub fn plan_rollout(cfg: &UpdateConfig, tasks: Option<u64>, spec: &ServiceSpec) -> Rollout {
    let batches: Vec<Batch> = match tasks {
        Some(n) => {
            let slots = usize::try_from(n).unwrap_or(usize::MAX);
            (1..=n)
                .collect::<Vec<u64>>()
                .chunks(cfg.workers(slots))
                .map(|c| Batch { slots: c.to_vec() })
                .collect()
        }
        None => Vec::new(),
    };
    let health = health_wait(spec);
    let per_batch = health + cfg.delay;
    // The run's own arithmetic (reconciler_types::rollout_math), so estimate and run agree.
    let tail = cfg.with_default_monitor().monitoring_tail();
    let count = u32::try_from(batches.len()).unwrap_or(u32::MAX);
    let (total, formula) = match tasks {
        Some(_) => {
            let total = per_batch * count + tail;
            let formula = format!(
                "{count} batch{} × ({} health + {} delay) + {} monitor",
                if count == 1 { "" } else { "es" },
                fmt_duration(health),
                fmt_duration(cfg.delay),
                fmt_duration(tail)
            );
            (total, formula)
        }
        None => {
            let formula = format!(
                "per batch of {} node(s): {} health + {} delay; then {} monitor",
                cfg.parallelism,
                fmt_duration(health),
                fmt_duration(cfg.delay),
                fmt_duration(tail)
            );
            (per_batch + tail, formula)
        }
    };
    Rollout {
        tasks,
        parallelism: cfg.parallelism,
        order: order_str(cfg.order).to_owned(),
        delay_ns: nanos(cfg.delay),
        monitor_ns: nanos(cfg.monitor),
        failure_action: failure_action_str(cfg.failure_action).to_owned(),
        max_failure_ratio: cfg.max_failure_ratio,
        batches,
        min_duration_ns: nanos(total),
        min_duration_formula: formula,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_rollout_batches_by_parallelism_when_replicated() {
        let cfg =
            UpdateConfig { parallelism: 2, delay: Duration::from_secs(10), ..Default::default() };
        let r = plan_rollout(&cfg, Some(5), &ServiceSpec::default());
        let slots: Vec<Vec<u64>> = r.batches.iter().map(|b| b.slots.clone()).collect();
        assert_eq!(slots, vec![vec![1, 2], vec![3, 4], vec![5]]);
        // 3 × 10s delay, then delay ≥ monitor (5s) so the tail is 11s.
        assert_eq!(r.min_duration_ns, 41_000_000_000);
    }

    #[test]
    fn plan_rollout_runs_one_batch_when_parallelism_is_zero() {
        let cfg = UpdateConfig { parallelism: 0, ..Default::default() };
        let r = plan_rollout(&cfg, Some(4), &ServiceSpec::default());
        assert_eq!(r.batches.len(), 1);
        assert_eq!(r.min_duration_ns, 5_000_000_000);
    }

    #[test]
    fn a_zero_monitor_is_estimated_as_the_run_watches_it() {
        // The rollout machine watches 5 s when the monitor is 0; the estimate must agree.
        let cfg = UpdateConfig { monitor: Duration::ZERO, ..Default::default() };
        let r = plan_rollout(&cfg, Some(1), &ServiceSpec::default());
        assert_eq!(r.min_duration_ns, 5_000_000_000);
    }

    #[test]
    fn health_wait_uses_docker_defaults() {
        let mut s = ServiceSpec::default();
        s.task_template.container_spec.healthcheck = Some(reconciler_types::HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        });
        assert_eq!(health_wait(&s), DEFAULT_HEALTH_INTERVAL);
    }
}
