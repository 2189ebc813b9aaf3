//! docs/swarm-semantics.md §12, rolling update and rollback scenarios (S23–S37, S42, S43, S53),
//! driven through the rollout state machine with a fake clock. Each asserts the exact
//! commands and their times. Task ids are allocated in order: the initial tasks of slots
//! 1..N are t000000.., the first task a run creates is t00000N.

mod support;

use reconciler_types::{FailureAction, UpdateConfig, UpdateOrder};
use std::time::Duration;
use support::{Behaviour, World, at, secs};

fn cfg(parallelism: u64, delay: u64, monitor: u64) -> UpdateConfig {
    UpdateConfig {
        parallelism,
        delay: secs(delay),
        monitor: secs(monitor),
        ..UpdateConfig::default()
    }
}

fn crashing_after(s: u64) -> Behaviour {
    Behaviour { fail_after_running: Some(secs(s)), ..Behaviour::instant() }
}

/// Stop-first never leaves more than `max` slots without a running task.
fn at_most_two_slots_down(w: &World) {
    let down = 6 - w.running_per_slot().len();
    assert!(down <= 2, "{down} slots without a running task at {:?}", w.now);
}

#[test]
fn s23_rolling_update_timeline() {
    let mut w = World::replicated(6, cfg(2, 10, 5));
    w.checks.push(at_most_two_slots_down);
    w.update_to(2, Behaviour::instant());
    w.run_until(at(100));
    let expected = [
        "t=0 status updating: update in progress",
        "t=0 create slot 1 t000006 ready",
        "t=0 desire t000000 shutdown",
        "t=0 create slot 2 t000007 ready",
        "t=0 desire t000001 shutdown",
        "t=0 wake t=60",
        "t=0 desire t000006 running",
        "t=0 desire t000007 running",
        "t=0 wake t=10",
        "t=10 create slot 3 t000008 ready",
        "t=10 desire t000002 shutdown",
        "t=10 create slot 4 t000009 ready",
        "t=10 desire t000003 shutdown",
        "t=10 wake t=70",
        "t=10 desire t000008 running",
        "t=10 desire t000009 running",
        "t=10 wake t=20",
        "t=20 create slot 5 t000010 ready",
        "t=20 desire t000004 shutdown",
        "t=20 create slot 6 t000011 ready",
        "t=20 desire t000005 shutdown",
        "t=20 wake t=80",
        "t=20 desire t000010 running",
        "t=20 desire t000011 running",
        "t=20 wake t=30",
        "t=30 wake t=41",
        "t=41 status completed: update completed",
    ];
    assert_eq!(w.commands(), expected);
    let status = w.status.clone().unwrap();
    assert_eq!((status.started_at, status.completed_at), (Some(at(0)), Some(at(41))));
    assert!(w.running_per_slot().values().all(|v| v.len() == 1 && v[0].1 == 2));
}

#[test]
fn s23_start_first_variant_keeps_old_tasks_until_new_ones_run() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..cfg(2, 10, 5) };
    let mut w = World::replicated(6, update);
    w.update_to(2, Behaviour { start_after: secs(1), ..Behaviour::instant() });
    w.run_until(at(100));
    let creates: Vec<_> = w.lines("create");
    assert_eq!(
        creates,
        [
            "t=0 create slot 1 t000006 running",
            "t=0 create slot 2 t000007 running",
            "t=11 create slot 3 t000008 running",
            "t=11 create slot 4 t000009 running",
            "t=22 create slot 5 t000010 running",
            "t=22 create slot 6 t000011 running",
        ]
    );
    assert_eq!(w.lines("desire t000000"), ["t=1 desire t000000 shutdown"]);
    assert_eq!(w.lines("status completed"), ["t=44 status completed: update completed"]);
}

#[test]
fn s24_parallelism_zero_replaces_every_slot_at_once() {
    let mut w = World::replicated(6, cfg(0, 0, 5));
    w.update_to(2, Behaviour::instant());
    w.run_until(at(100));
    let creates = w.lines("create");
    assert_eq!(creates.len(), 6);
    assert!(creates.iter().all(|l| l.starts_with("t=0 ")));
    assert_eq!(
        w.lines("status"),
        ["t=0 status updating: update in progress", "t=5 status completed: update completed"]
    );
}

#[test]
fn s25_start_first_overlaps_old_and_new_until_new_runs() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..UpdateConfig::default() };
    let mut w = World::replicated(1, update);
    w.update_to(2, Behaviour { start_after: secs(3), ..Behaviour::instant() });
    w.run_until(at(2));
    assert_eq!(w.lines("create"), ["t=0 create slot 1 t000001 running"]);
    assert!(w.lines("desire t000000").is_empty(), "the old task runs on during [0,3)");
    w.run_until(at(100));
    assert_eq!(w.lines("desire t000000"), ["t=3 desire t000000 shutdown"]);
    assert_eq!(w.lines("status completed"), ["t=8 status completed: update completed"]);
}

#[test]
fn s26_start_first_new_task_fails_old_task_kept_and_paused() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..UpdateConfig::default() };
    let mut w = World::replicated(1, update);
    w.update_to(2, Behaviour { fail_before_running: Some(secs(2)), ..Behaviour::instant() });
    w.run_until(at(100));
    assert!(w.lines("desire t000000").is_empty(), "T1.1 is not shut down");
    assert_eq!(
        w.lines("status paused"),
        ["t=2 status paused: update paused due to failure or early termination of task t000001"]
    );
    assert!(w.lines("completed").is_empty());
}

#[test]
fn s27_stop_first_waits_for_the_old_task_to_stop() {
    let mut w = World::replicated(1, UpdateConfig::default());
    w.behaviour.insert(1, Behaviour { stop_after: Some(secs(10)), ..Behaviour::instant() });
    w.update_to(2, Behaviour::instant());
    w.run_until(at(100));
    assert_eq!(w.lines("desire t000001"), ["t=10 desire t000001 running"]);
    assert_eq!(w.lines("status completed"), ["t=15 status completed: update completed"]);
}

#[test]
fn s27_stop_first_starts_after_60s_when_the_old_node_never_reports() {
    let mut w = World::replicated(1, UpdateConfig::default());
    w.behaviour.insert(1, Behaviour { stop_after: None, ..Behaviour::instant() });
    w.update_to(2, Behaviour::instant());
    w.run_until(at(100));
    assert_eq!(w.lines("desire t000001"), ["t=60 desire t000001 running"]);
}

#[test]
fn s28_failure_with_ratio_zero_pauses() {
    let update = UpdateConfig { failure_action: FailureAction::Pause, ..cfg(1, 10, 5) };
    let mut w = World::replicated(6, update);
    w.update_to(2, crashing_after(2));
    w.run_until(at(200));
    assert_eq!(w.lines("create"), ["t=0 create slot 1 t000006 ready"]);
    assert_eq!(
        w.lines("status"),
        [
            "t=0 status updating: update in progress",
            "t=2 status paused: update paused due to failure or early termination of task t000006",
        ]
    );
    let untouched = w.running_per_slot().into_iter().filter(|(_, v)| v[0].1 == 1).count();
    assert_eq!(untouched, 5, "slots 2-6 keep spec 1");
}

#[test]
fn s29_failure_ratio_034_tolerates_two_of_six() {
    let update = UpdateConfig { max_failure_ratio: 0.34, ..cfg(1, 10, 5) };
    let mut w = World::replicated(6, update);
    w.update_to(2, crashing_after(2));
    w.run_until(at(200));
    assert_eq!(
        w.lines("create"),
        [
            "t=0 create slot 1 t000006 ready",
            "t=10 create slot 2 t000007 ready",
            "t=20 create slot 3 t000008 ready"
        ]
    );
    assert_eq!(
        w.lines("status paused"),
        ["t=22 status paused: update paused due to failure or early termination of task t000008"]
    );
}

#[test]
fn s30_failure_outside_monitor_is_not_counted() {
    let mut w = World::replicated(6, cfg(1, 10, 5));
    w.update_to(2, crashing_after(8));
    w.run_until(at(200));
    let times: Vec<_> =
        w.lines("create").iter().map(|l| l.split(' ').next().unwrap().to_owned()).collect();
    assert_eq!(times, ["t=0", "t=10", "t=20", "t=30", "t=40", "t=50"]);
    assert_eq!(
        w.lines("status"),
        ["t=0 status updating: update in progress", "t=71 status completed: update completed"]
    );
}

#[test]
fn s31_continue_completes_although_every_new_task_fails() {
    let update = UpdateConfig { failure_action: FailureAction::Continue, ..cfg(1, 10, 5) };
    let mut w = World::replicated(6, update);
    w.update_to(2, crashing_after(2));
    w.run_until(at(200));
    assert_eq!(w.lines("create").len(), 6);
    assert_eq!(
        w.lines("status"),
        ["t=0 status updating: update in progress", "t=71 status completed: update completed"]
    );
}

fn s32_world() -> World {
    let update = UpdateConfig { failure_action: FailureAction::Rollback, ..cfg(1, 10, 5) };
    let mut w = World::replicated(4, update);
    w.rollback = cfg(0, 0, 2);
    w
}

#[test]
fn s32_automatic_rollback() {
    let mut w = s32_world();
    w.update_to(2, crashing_after(1));
    w.run_until(at(100));
    let expected = [
        "t=0 status updating: update in progress",
        "t=0 create slot 1 t000004 ready",
        "t=0 desire t000000 shutdown",
        "t=0 wake t=60",
        "t=0 desire t000004 running",
        "t=0 wake t=10",
        "t=1 rollback rollback_started: update rolled back due to failure or early termination of task t000004",
        "t=1 create slot 1 t000005 ready",
        "t=1 desire t000004 shutdown",
        "t=1 desire t000005 running",
        "t=1 wake t=3",
        "t=3 status rollback_completed: rollback completed",
    ];
    assert_eq!(w.commands(), expected);
    assert_eq!(w.spec_version, 1);
    assert!(
        w.running_per_slot().values().all(|v| v.len() == 1 && v[0].1 == 1),
        "every slot runs v1"
    );
    assert_eq!(w.lines("create").len(), 2, "slots 2-4 are never touched");
}

#[test]
fn s33_rollback_failure_pauses_with_update_paused_message() {
    let mut w = s32_world();
    w.update_to(2, crashing_after(1));
    w.behaviour.insert(1, crashing_after(1));
    w.run_until(at(100));
    assert_eq!(
        w.lines("status rollback_paused"),
        [
            "t=2 status rollback_paused: update paused due to failure or early termination of task t000005"
        ]
    );
}

#[test]
fn s33_rollback_failure_with_action_rollback_never_rolls_back_a_rollback() {
    let mut w = s32_world();
    w.rollback.failure_action = FailureAction::Rollback;
    w.update_to(2, crashing_after(1));
    w.behaviour.insert(1, crashing_after(1));
    w.run_until(at(100));
    assert_eq!(
        w.lines("status rollback_paused"),
        [
            "t=2 status rollback_paused: rollback paused due to failure or early termination of task t000005"
        ]
    );
    assert_eq!(w.lines("rollback rollback_started").len(), 1);
}

#[test]
fn s34_manual_rollback_toggles() {
    let mut w = World::replicated(2, UpdateConfig::default());
    w.update_to(2, Behaviour::instant());
    w.run_until(at(50));
    assert_eq!(w.status_line(), "completed: update completed");
    w.manual_rollback().unwrap();
    assert_eq!(w.status_line(), "rollback_started: manually requested rollback");
    w.run_until(at(100));
    assert_eq!(w.status_line(), "rollback_completed: rollback completed");
    assert!(w.running_per_slot().values().all(|v| v[0].1 == 1));
    w.manual_rollback().unwrap();
    w.run_until(at(150));
    assert_eq!((w.spec_version, w.previous_version), (2, Some(1)));
    assert!(w.running_per_slot().values().all(|v| v[0].1 == 2));
}

#[test]
fn s35_no_manual_rollback_after_automatic_rollback() {
    let mut w = s32_world();
    w.update_to(2, crashing_after(1));
    w.run_until(at(100));
    let log_len = w.log.len();
    assert_eq!(w.manual_rollback().unwrap_err(), "service svc does not have a previous spec");
    assert_eq!(w.log.len(), log_len, "nothing changes");
}

#[test]
fn s36_paused_update_resumes_only_on_a_new_update() {
    let mut w = World::replicated(6, cfg(1, 10, 5));
    w.update_to(2, crashing_after(2));
    w.run_until(at(50));
    assert_eq!(w.status.as_ref().unwrap().state.as_str(), "paused");
    let creates = w.lines("create").len();
    w.run_until(at(120));
    assert_eq!(w.lines("create").len(), creates, "no slot is updated while paused");
    w.behaviour.insert(2, Behaviour::instant());
    w.update_same_spec();
    assert_eq!(
        w.lines("status updating").last().unwrap(),
        "t=120 status updating: update in progress"
    );
    w.run_until(at(300));
    assert_eq!(w.lines("create").len(), creates + 5, "the 5 still-dirty slots are updated");
    assert_eq!(w.status_line(), "completed: update completed");
}

#[test]
fn s37_leader_failover_after_last_batch_completes_at_takeover() {
    let mut w = World::replicated(6, cfg(2, 10, 5));
    w.update_to(2, Behaviour::instant());
    w.run_until(at(25));
    w.leaderless_until(at(35));
    w.fail_over();
    w.run_until(at(100));
    assert_eq!(w.lines("create").len(), 6, "no task is created twice");
    let status = w.status.clone().unwrap();
    assert_eq!(w.status_line(), "completed: update completed");
    assert_eq!((status.started_at, status.completed_at), (Some(at(0)), Some(at(35))));
}

#[test]
fn s37_leader_failover_before_last_batch_hands_it_out_at_takeover() {
    let mut w = World::replicated(6, cfg(2, 10, 5));
    w.update_to(2, Behaviour::instant());
    w.run_until(at(15));
    w.leaderless_until(at(35));
    w.fail_over();
    w.run_until(at(100));
    let times: Vec<_> =
        w.lines("create").iter().map(|l| l.split(' ').next().unwrap().to_owned()).collect();
    assert_eq!(times, ["t=0", "t=0", "t=10", "t=10", "t=35", "t=35"]);
    let status = w.status.clone().unwrap();
    assert_eq!((status.started_at, status.completed_at), (Some(at(0)), Some(at(56))));
}

#[test]
fn s37_start_first_failover_with_two_tasks_in_a_slot_finishes_through_the_clean_task() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..cfg(1, 0, 5) };
    let mut w = World::replicated(1, update);
    w.update_to(2, Behaviour { start_after: secs(3), ..Behaviour::instant() });
    w.run_until(at(1));
    w.leaderless_until(at(5));
    // The new task came up while there was no leader.
    w.tasks
        .values_mut()
        .filter(|t| t.version == 2)
        .for_each(|t| t.observed = reconciler_types::TaskState::Running);
    w.fail_over();
    w.run_until(at(100));
    assert_eq!(w.lines("create").len(), 1, "the new task is not started twice");
    assert_eq!(w.lines("desire t000000"), ["t=5 desire t000000 shutdown"]);
    assert_eq!(w.status_line(), "completed: update completed");
}

#[test]
fn s42_no_op_update_changes_no_task_and_leaves_status_nil() {
    let mut w = World::replicated(6, cfg(2, 10, 5));
    w.update_to(2, Behaviour::instant());
    w.run_until(at(100));
    let log_len = w.log.len();
    w.update_same_spec();
    w.run_until(at(200));
    assert_eq!(w.log.len(), log_len, "no command at all");
    assert_eq!(w.status, None);
}

#[test]
fn s43_force_update_replaces_every_slot_one_at_a_time() {
    let mut w = World::replicated(3, UpdateConfig::default());
    w.update_to(2, Behaviour::instant());
    w.run_until(at(100));
    assert_eq!(
        w.lines("create"),
        [
            "t=0 create slot 1 t000003 ready",
            "t=0 create slot 2 t000004 ready",
            "t=0 create slot 3 t000005 ready"
        ]
    );
    assert_eq!(w.lines("status completed"), ["t=5 status completed: update completed"]);
}

#[test]
fn s53_healthcheck_gates_running_and_the_monitor_window() {
    let mut w = World::replicated(1, UpdateConfig::default());
    w.update_to(2, Behaviour { start_after: secs(10), ..Behaviour::instant() });
    w.run_until(at(100));
    assert_eq!(w.lines("status completed"), ["t=15 status completed: update completed"]);
}

#[test]
fn s53_unhealthy_first_check_fails_the_task_and_pauses() {
    let mut w = World::replicated(1, UpdateConfig::default());
    w.update_to(2, Behaviour { fail_before_running: Some(secs(10)), ..Behaviour::instant() });
    w.run_until(at(100));
    assert_eq!(
        w.lines("status paused"),
        ["t=10 status paused: update paused due to failure or early termination of task t000001"]
    );
}

#[test]
fn slow_start_keeps_the_worker_busy_with_no_timeout() {
    let mut w = World::replicated(2, UpdateConfig::default());
    w.update_to(2, Behaviour { start_after: Duration::from_secs(1000), ..Behaviour::instant() });
    w.run_until(at(500));
    assert_eq!(w.lines("create").len(), 1);
    assert_eq!(w.status_line(), "updating: update in progress");
}

#[test]
fn a_new_spec_mid_rollout_supersedes_the_running_update() {
    let mut w = World::replicated(4, cfg(1, 10, 5));
    w.update_to(2, Behaviour::instant());
    w.run_until(at(15));
    assert_eq!(w.lines("create").len(), 2, "slots 1 and 2 are on v2");
    w.update_to(3, Behaviour::instant());
    w.run_until(at(200));
    let running = w.running_per_slot();
    assert_eq!(running.len(), 4);
    assert!(
        running.values().all(|v| v.len() == 1 && v[0].1 == 3),
        "every slot runs v3: {running:?}"
    );
    assert_eq!(w.lines("create").len(), 6, "2 tasks of v2, then 4 of v3, none twice");
    assert_eq!(w.status_line(), "completed: update completed");
}
