//! Property tests of the rollout state machine over random configs, start/stop latencies
//! and crashes: parallelism bounds, availability bounds, convergence, determinism.
//! `PROPTEST_CASES=5000` runs more cases than the default 256.

mod support;

use proptest::prelude::*;
use reconciler_types::{FailureAction, TaskState, UpdateConfig, UpdateOrder, UpdateState};
use std::time::Duration;
use support::{Behaviour, World, at};

#[derive(Debug, Clone)]
struct Case {
    replicas: u64,
    update: UpdateConfig,
    jitter: Vec<Duration>,
    crashes: Vec<Option<Duration>>,
}

fn config() -> impl Strategy<Value = UpdateConfig> {
    (0u64..4, 0u64..4, 1u64..6, any::<bool>(), 0usize..3, 0u32..4).prop_map(
        |(p, d, m, start_first, action, ratio)| UpdateConfig {
            parallelism: p,
            delay: Duration::from_secs(d),
            monitor: Duration::from_secs(m),
            order: if start_first { UpdateOrder::StartFirst } else { UpdateOrder::StopFirst },
            failure_action: [
                FailureAction::Pause,
                FailureAction::Continue,
                FailureAction::Rollback,
            ][action],
            max_failure_ratio: ratio as f32 * 0.25,
        },
    )
}

fn case(with_crashes: bool) -> impl Strategy<Value = Case> {
    let crash = proptest::option::weighted(0.3, (0u64..8).prop_map(Duration::from_secs))
        .prop_map(move |c| if with_crashes { c } else { None });
    (
        1u64..8,
        config(),
        proptest::collection::vec((0u64..4000).prop_map(Duration::from_millis), 1..12),
        proptest::collection::vec(crash, 1..8),
    )
        .prop_map(|(replicas, update, jitter, crashes)| Case {
            replicas,
            update,
            jitter,
            crashes,
        })
}

fn world(c: &Case) -> World {
    let mut w = World::replicated(c.replicas, c.update.clone());
    w.jitter = c.jitter.clone();
    w.crashes = c.crashes.clone();
    w.checks.push(in_flight_within_parallelism);
    w
}

fn in_flight_within_parallelism(w: &World) {
    if let Some(r) = &w.rollout {
        assert!(
            r.in_flight() <= r.capacity(),
            "{} slots in flight, capacity {}",
            r.in_flight(),
            r.capacity()
        );
        let p = r.config().parallelism;
        if p > 0 {
            assert!(r.in_flight() as u64 <= p);
        }
    }
}

/// Tasks the orchestrator wants running (an old task told to stop may take a while to).
fn tasks_wanted_running(w: &World) -> usize {
    w.tasks
        .values()
        .filter(|t| t.desired == TaskState::Running && !t.observed.is_terminal())
        .count()
}

fn slots_with_a_running_task(w: &World) -> usize {
    w.running_per_slot().len()
}

thread_local! {
    static BOUNDS: std::cell::Cell<(u64, u64, bool)> = const { std::cell::Cell::new((0, 0, false)) };
}

fn availability_bounds(w: &World) {
    let (replicas, parallelism, start_first) = BOUNDS.with(|b| b.get());
    let p = if parallelism == 0 { replicas } else { parallelism };
    if start_first {
        let n = tasks_wanted_running(w) as u64;
        assert!(n <= replicas + p, "start-first wanted {n} tasks running");
    } else {
        let min = replicas.saturating_sub(p);
        assert!(
            slots_with_a_running_task(w) as u64 >= min,
            "stop-first left {} slots running",
            slots_with_a_running_task(w)
        );
    }
}

proptest! {
    #[test]
    fn without_failures_bounds_hold_and_a_completed_update_runs_the_new_spec_everywhere(c in case(false)) {
        let mut w = world(&c);
        BOUNDS.with(|b| b.set((c.replicas, c.update.parallelism, c.update.order == UpdateOrder::StartFirst)));
        w.checks.push(availability_bounds);
        w.update_to(2, Behaviour::instant());
        w.run_until(at(100_000));
        prop_assert_eq!(w.status.as_ref().map(|s| s.state), Some(UpdateState::Completed));
        let running = w.running_per_slot();
        prop_assert_eq!(running.len() as u64, c.replicas);
        for (slot, tasks) in running {
            prop_assert_eq!(tasks.len(), 1, "slot {} has two running tasks after convergence", slot);
            prop_assert_eq!(tasks[0].1, 2);
        }
    }

    #[test]
    fn with_failures_the_run_ends_paused_completed_or_rolled_back(c in case(true)) {
        let mut w = world(&c);
        w.update_to(2, Behaviour::instant());
        w.run_until(at(100_000));
        let state = w.status.as_ref().map(|s| s.state).expect("a status is set");
        match state {
            UpdateState::Completed => {
                // Every slot's live task runs the new spec.
                for (_, t) in w.tasks.iter().filter(|(_, t)| t.desired == TaskState::Running) {
                    prop_assert_eq!(t.version, 2);
                }
            }
            UpdateState::RollbackCompleted => {
                prop_assert_eq!(c.update.failure_action, FailureAction::Rollback);
                let running = w.running_per_slot();
                prop_assert_eq!(running.len() as u64, c.replicas);
                for tasks in running.values() {
                    prop_assert_eq!(tasks.len(), 1);
                    prop_assert_eq!(tasks[0].1, 1, "a completed rollback runs the previous spec");
                }
            }
            UpdateState::Paused => prop_assert_ne!(c.update.failure_action, FailureAction::Continue),
            other => prop_assert!(false, "unexpected final state {other}"),
        }
    }

    #[test]
    fn identical_inputs_give_identical_outputs(c in case(true)) {
        let run = |c: &Case| {
            let mut w = world(c);
            w.update_to(2, Behaviour::instant());
            w.run_until(at(100_000));
            w.log
        };
        prop_assert_eq!(run(&c), run(&c));
    }

    #[test]
    fn a_failover_at_any_moment_never_starts_a_slot_twice(c in case(false), cut in 0u64..40) {
        let mut w = world(&c);
        w.update_to(2, Behaviour::instant());
        w.run_until(at(cut));
        w.fail_over();
        w.run_until(at(100_000));
        prop_assert_eq!(w.status.as_ref().map(|s| s.state), Some(UpdateState::Completed));
        let created = w.lines("create").len() as u64;
        prop_assert_eq!(created, c.replicas, "each slot gets exactly one new task");
    }
}
