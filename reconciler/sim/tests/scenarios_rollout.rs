//! docs/swarm-semantics.md §12, the rolling update and rollback scenarios (S23–S37, S42,
//! S43, S53), run on the machinery the leader runs: the simulator drives the orchestration
//! core's driver, every decision is a store command applied by `ClusterState::apply`, and the
//! agents follow their tasks with the workloads' timings. Every status, message and version
//! asserted here is the product's: read from the replicated state or from the narrative of
//! the commands it wrote. Task ids are allocated in order: the initial tasks of slots 1..N are
//! t000000.., the first task an update creates is t00000N.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic

use reconciler_orchestrator::state::{ClusterState, Refusal, StoreCommand};
use reconciler_sim::{SimCluster, Workload};
use reconciler_types::{
    FailureAction, HealthConfig, MonoTime, ServiceMode, ServiceSpec, TaskId, TaskState,
    UpdateConfig, UpdateOrder, UpdateState,
};
use std::collections::BTreeMap;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> MonoTime {
    MonoTime::from_secs(s)
}

fn cfg(parallelism: u64, delay: u64, monitor: u64) -> UpdateConfig {
    UpdateConfig {
        parallelism,
        delay: secs(delay),
        monitor: secs(monitor),
        ..UpdateConfig::default()
    }
}

fn spec(replicas: u64, update: UpdateConfig) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: "svc".into(),
        mode: ServiceMode::Replicated { replicas },
        update_config: update,
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = "v1".into();
    s
}

/// `replicas` slots of spec v1 running on three nodes at t=0.
fn cluster(replicas: u64, update: UpdateConfig) -> SimCluster {
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        c.add_node(n, |_| {});
    }
    c.create_service("svc", spec(replicas, update));
    c.run_until(at(0));
    c
}

fn image(c: &mut SimCluster, image: &str) {
    c.update_service("svc", |s| s.task_template.container_spec.image = image.into()).unwrap();
}

fn crashing_after(s: u64) -> Workload {
    Workload { exit_after: Some((secs(s), 1)), ..Workload::default() }
}

/// The narrative lines whose verb (after the time) is one of `verbs`.
fn timeline(lines: &[String], verbs: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.split(' ').nth(1).is_some_and(|v| verbs.contains(&v)))
        .cloned()
        .collect()
}

/// Those lines from the first update on (the narrative after `update svc`).
fn since_update(c: &SimCluster, verbs: &[&str]) -> Vec<String> {
    let start = c.log.iter().position(|l| l.contains(" update svc ")).unwrap_or(0);
    timeline(&c.log[start..], verbs)
}

fn times(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| l.split(' ').next().unwrap()).collect()
}

/// Slots with a task observed RUNNING, by slot: the spec versions running there.
fn running_per_slot(c: &SimCluster) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for t in c.tasks_of("svc") {
        if t.status.state == TaskState::Running {
            m.entry(t.slot).or_default().push(t.spec_version);
        }
    }
    m
}

fn status(c: &SimCluster) -> (UpdateState, String, Option<MonoTime>, Option<MonoTime>) {
    let s = c.service("svc").unwrap().update_status.clone().unwrap();
    (s.state, s.message, s.started_at, s.completed_at)
}

#[test]
fn s23_rolling_update_timeline() {
    let mut c = cluster(6, cfg(2, 10, 5));
    image(&mut c, "v2");
    let mut most_down = 0;
    for t in 0..=100 {
        c.run_until(at(t));
        most_down = most_down.max(6 - running_per_slot(&c).len());
    }
    let expected = [
        "t=0 status svc updating: update in progress",
        "t=0 create t000006 svc slot 1 on n1 v2 ready",
        "t=0 desire t000000 shutdown",
        "t=0 create t000007 svc slot 2 on n2 v2 ready",
        "t=0 desire t000001 shutdown",
        "t=0 desire t000006 running",
        "t=0 desire t000007 running",
        "t=10 create t000008 svc slot 3 on n1 v2 ready",
        "t=10 desire t000002 shutdown",
        "t=10 create t000009 svc slot 4 on n3 v2 ready",
        "t=10 desire t000003 shutdown",
        "t=10 desire t000008 running",
        "t=10 desire t000009 running",
        "t=20 create t000010 svc slot 5 on n2 v2 ready",
        "t=20 desire t000004 shutdown",
        "t=20 create t000011 svc slot 6 on n3 v2 ready",
        "t=20 desire t000005 shutdown",
        "t=20 desire t000010 running",
        "t=20 desire t000011 running",
        "t=41 status svc completed: update completed",
    ];
    assert_eq!(since_update(&c, &["status", "create", "desire"]), expected);
    assert_eq!(
        status(&c),
        (UpdateState::Completed, "update completed".into(), Some(at(0)), Some(at(41)))
    );
    assert!(most_down <= 2, "{most_down} slots without a running task");
    assert!(running_per_slot(&c).values().all(|v| v == &[2]), "{:?}", running_per_slot(&c));
}

#[test]
fn s23_start_first_variant_keeps_old_tasks_until_new_ones_run() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..cfg(2, 10, 5) };
    let mut c = cluster(6, update);
    c.workloads.insert("v2".into(), Workload { start_after: secs(1), ..Workload::default() });
    image(&mut c, "v2");
    c.run_until(at(100));
    assert_eq!(
        times(&since_update(&c, &["create"])),
        ["t=0", "t=0", "t=11", "t=11", "t=22", "t=22"]
    );
    assert!(
        since_update(&c, &["create"]).iter().all(|l| l.ends_with(" running")),
        "started at once"
    );
    assert_eq!(c.lines("desire t000000"), ["t=1 desire t000000 shutdown"]);
    assert_eq!(c.lines("status svc completed"), ["t=44 status svc completed: update completed"]);
}

#[test]
fn s24_parallelism_zero_replaces_every_slot_at_once() {
    let mut c = cluster(6, cfg(0, 0, 5));
    image(&mut c, "v2");
    c.run_until(at(100));
    assert_eq!(times(&since_update(&c, &["create"])), ["t=0"; 6]);
    assert_eq!(
        since_update(&c, &["status"]),
        [
            "t=0 status svc updating: update in progress",
            "t=5 status svc completed: update completed"
        ]
    );
}

#[test]
fn s25_start_first_overlaps_old_and_new_until_new_runs() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..UpdateConfig::default() };
    let mut c = cluster(1, update);
    c.workloads.insert("v2".into(), Workload { start_after: secs(3), ..Workload::default() });
    image(&mut c, "v2");
    c.run_until(at(2));
    assert_eq!(since_update(&c, &["create"]), ["t=0 create t000001 svc slot 1 on n2 v2 running"]);
    let both: Vec<_> = c.tasks_of("svc").iter().map(|t| t.desired_state).collect();
    assert_eq!(
        both,
        [TaskState::Running, TaskState::Running],
        "two tasks wanted in slot 1 during [0,3)"
    );
    c.run_until(at(100));
    assert_eq!(c.lines("desire t000000"), ["t=3 desire t000000 shutdown"]);
    assert_eq!(c.lines("status svc completed"), ["t=8 status svc completed: update completed"]);
}

#[test]
fn s26_start_first_new_task_fails_old_task_kept_and_paused() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..UpdateConfig::default() };
    let mut c = cluster(1, update);
    let failing = Workload { fail_before_running: Some(secs(2)), ..Workload::default() };
    c.workloads.insert("v2".into(), failing);
    image(&mut c, "v2");
    c.run_until(at(6));
    assert_eq!(
        c.status_line("svc"),
        "paused: update paused due to failure or early termination of task t000001"
    );
    assert!(c.lines("desire t000000").is_empty(), "T1.1 is not shut down");
    assert_eq!(c.lines("create t000002"), ["t=2 create t000002 svc slot 1 v2 ready"], "the retry");
    c.run_until(at(30));
    assert_eq!(c.lines("desire t000002 running"), ["t=7 desire t000002 running"]);
    assert_eq!(c.task(&TaskId::new("t000000")).unwrap().desired_state, TaskState::Running);
    assert_eq!(
        running_per_slot(&c),
        BTreeMap::from([(1, vec![1])]),
        "the retries keep failing; T1.1 serves"
    );
    assert!(c.status_line("svc").starts_with("paused"));
}

/// flotilla's deliberate deviation (rollout module docs): when a retry of the new spec finally
/// runs in a start-first slot that no rollout handles any more, the old task is shut down;
/// Swarm keeps both running until the next update.
#[test]
fn s26_deviation_a_retry_that_runs_takes_the_slot_over_from_the_old_task() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..UpdateConfig::default() };
    let mut c = cluster(1, update);
    let failing = Workload { fail_before_running: Some(secs(2)), ..Workload::default() };
    c.workloads.insert("v2".into(), failing);
    image(&mut c, "v2");
    c.run_until(at(3));
    c.workloads.insert("v2".into(), Workload::default());
    c.run_until(at(30));
    assert_eq!(c.lines("observed t000002 running"), ["t=7 observed t000002 running"]);
    assert_eq!(c.lines("desire t000000"), ["t=7 desire t000000 shutdown"]);
    assert_eq!(
        running_per_slot(&c),
        BTreeMap::from([(1, vec![2])]),
        "one task in the slot, not two"
    );
    assert!(c.status_line("svc").starts_with("paused"), "the update itself stays paused");
}

#[test]
fn s27_stop_first_waits_for_the_old_task_to_stop() {
    let mut c = cluster(1, UpdateConfig::default());
    c.workloads.insert("v1".into(), Workload { stop_after: secs(10), ..Workload::default() });
    image(&mut c, "v2");
    c.run_until(at(100));
    assert_eq!(c.lines("observed t000000 shutdown"), ["t=10 observed t000000 shutdown"]);
    assert_eq!(c.lines("desire t000001 running"), ["t=10 desire t000001 running"]);
    assert_eq!(c.lines("status svc completed"), ["t=15 status svc completed: update completed"]);
}

#[test]
fn s27_stop_first_starts_after_60s_when_the_old_task_never_reports() {
    let mut c = cluster(1, UpdateConfig::default());
    c.workloads.insert("v1".into(), Workload { stop_after: secs(10_000), ..Workload::default() });
    image(&mut c, "v2");
    c.run_until(at(100));
    assert_eq!(c.lines("desire t000001 running"), ["t=60 desire t000001 running"]);
}

#[test]
fn s27_stop_first_starts_when_the_old_task_s_node_goes_down() {
    let mut c = cluster(1, UpdateConfig::default());
    c.workloads.insert("v1".into(), Workload { stop_after: secs(10_000), ..Workload::default() });
    let old_node = c.task(&TaskId::new("t000000")).unwrap().node_id.clone().unwrap();
    // The old task's node takes no new task, and its agent goes silent.
    c.update_node(old_node.as_str(), |n| {
        n.spec.availability = reconciler_types::Availability::Pause
    });
    c.stop_heartbeats(old_node.as_str());
    image(&mut c, "v2");
    c.run_until(at(100));
    assert_eq!(c.lines(&format!("node {old_node} down")), [format!("t=15 node {old_node} down")]);
    assert_eq!(c.lines("desire t000001 running"), ["t=15 desire t000001 running"], "not at t=60");
    assert_eq!(c.lines("status svc completed"), ["t=20 status svc completed: update completed"]);
}

#[test]
fn s28_failure_with_ratio_zero_pauses_and_slot_one_keeps_restarting() {
    let update = UpdateConfig { failure_action: FailureAction::Pause, ..cfg(1, 10, 5) };
    let mut c = cluster(6, update);
    c.workloads.insert("v2".into(), crashing_after(2));
    image(&mut c, "v2");
    c.run_until(at(60));
    assert_eq!(since_update(&c, &["create"])[0], "t=0 create t000006 svc slot 1 on n1 v2 ready");
    assert_eq!(
        since_update(&c, &["status"]),
        [
            "t=0 status svc updating: update in progress",
            "t=2 status svc paused: update paused due to failure or early termination of task t000006",
        ]
    );
    let v1 = running_per_slot(&c).into_iter().filter(|(_, v)| v == &[1]).count();
    assert_eq!(v1, 5, "slots 2-6 keep spec 1");
    let slot1: Vec<_> =
        since_update(&c, &["create"]).iter().filter(|l| l.contains(" slot 1 ")).cloned().collect();
    assert!(slot1.len() >= 6, "slot 1 keeps being restarted with spec 2: {slot1:?}");
    assert!(slot1.iter().all(|l| l.contains(" v2 ")));
}

#[test]
fn s29_failure_ratio_034_tolerates_two_of_six() {
    let update = UpdateConfig { max_failure_ratio: 0.34, ..cfg(1, 10, 5) };
    let mut c = cluster(6, update);
    c.workloads.insert("v2".into(), crashing_after(2));
    image(&mut c, "v2");
    c.run_until(at(200));
    let first: Vec<String> = (2..=4).filter_map(|s| first_create(&c, s)).collect();
    assert_eq!(
        times(&first),
        ["t=10", "t=20"],
        "slots 2 and 3 are handed out at t=10, t=20, 4 never"
    );
    let third = first_create(&c, 3).unwrap();
    let third = third.split(' ').nth(2).unwrap();
    assert_eq!(
        c.lines("status svc paused"),
        [format!(
            "t=22 status svc paused: update paused due to failure or early termination of task {third}"
        )]
    );
    let untouched = [4, 5, 6].iter().all(|s| running_per_slot(&c).get(s) == Some(&vec![1]));
    assert!(untouched, "slots 4-6 are never updated: {:?}", running_per_slot(&c));
}

/// The first task created in a slot after the update (the updater's; restarts come later).
fn first_create(c: &SimCluster, slot: u64) -> Option<String> {
    since_update(c, &["create"]).into_iter().find(|l| l.contains(&format!(" slot {slot} ")))
}

#[test]
fn s30_failure_outside_monitor_is_not_counted() {
    let mut c = cluster(6, cfg(1, 10, 5));
    c.workloads.insert("v2".into(), crashing_after(8));
    image(&mut c, "v2");
    c.run_until(at(200));
    let first_per_slot: Vec<String> = (1..=6).filter_map(|s| first_create(&c, s)).collect();
    assert_eq!(times(&first_per_slot), ["t=0", "t=10", "t=20", "t=30", "t=40", "t=50"]);
    assert_eq!(
        since_update(&c, &["status"]),
        [
            "t=0 status svc updating: update in progress",
            "t=71 status svc completed: update completed"
        ]
    );
}

#[test]
fn s31_continue_completes_although_every_new_task_fails() {
    let update = UpdateConfig { failure_action: FailureAction::Continue, ..cfg(1, 10, 5) };
    let mut c = cluster(6, update);
    c.workloads.insert("v2".into(), crashing_after(2));
    image(&mut c, "v2");
    c.run_until(at(200));
    assert_eq!(
        since_update(&c, &["status"]),
        [
            "t=0 status svc updating: update in progress",
            "t=71 status svc completed: update completed"
        ]
    );
}

fn s32_cluster() -> SimCluster {
    let update = UpdateConfig { failure_action: FailureAction::Rollback, ..cfg(1, 10, 5) };
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3", "n4"] {
        c.add_node(n, |_| {});
    }
    let mut s = spec(4, update);
    s.rollback_config = cfg(0, 0, 2);
    c.create_service("svc", s);
    c.run_until(at(0));
    c.workloads.insert("v2".into(), crashing_after(1));
    c
}

#[test]
fn s32_automatic_rollback() {
    let mut c = s32_cluster();
    image(&mut c, "v2");
    c.run_until(at(30));
    // At t=1 the failed v2 task is restarted (with the spec still v2: the restart supervisor
    // and the rollback act on the same failure), and the rollback run replaces that v2 task
    // with a v1 one once it has stopped (§12 S32: "after the v2 task in that slot reports
    // SHUTDOWN").
    let expected = [
        "t=0 status svc updating: update in progress",
        "t=0 create t000004 svc slot 1 on n1 v2 ready",
        "t=0 desire t000000 shutdown",
        "t=0 desire t000004 running",
        "t=1 rollback svc rollback_started: update rolled back due to failure or early termination of task t000004",
        "t=1 desire t000004 shutdown",
        "t=1 create t000005 svc slot 1 v2 ready",
        "t=1 create t000006 svc slot 1 v1 ready",
        "t=1 desire t000005 shutdown",
        "t=1 desire t000006 running",
        "t=3 status svc rollback_completed: rollback completed",
    ];
    assert_eq!(since_update(&c, &["status", "create", "desire", "rollback"]), expected);
    assert!(c.lines("observed t000005 running").is_empty(), "the v2 restart never runs");
    let svc = c.service("svc").unwrap();
    assert_eq!(svc.spec.task_template.container_spec.image, "v1");
    assert_eq!(
        (svc.spec_version, svc.previous_spec.as_ref(), svc.previous_spec_version),
        (1, None, None)
    );
    assert_eq!(running_per_slot(&c), (1..=4).map(|s| (s, vec![1])).collect(), "every slot runs v1");
    assert!(
        since_update(&c, &["create"]).iter().all(|l| l.contains(" slot 1 ")),
        "slots 2-4 are never touched"
    );
}

#[test]
fn s33_rollback_failure_pauses_with_the_update_paused_message() {
    let mut c = s32_cluster();
    image(&mut c, "v2");
    c.workloads.insert("v1".into(), crashing_after(1));
    c.run_until(at(100));
    assert_eq!(
        c.lines("status svc rollback_paused"),
        [
            "t=2 status svc rollback_paused: update paused due to failure or early termination of task t000006"
        ]
    );
}

#[test]
fn s33_rollback_failure_with_action_rollback_never_rolls_back_a_rollback() {
    let mut c = s32_cluster();
    c.update_service("svc", |s| s.rollback_config.failure_action = FailureAction::Rollback)
        .unwrap();
    c.run_until(at(10));
    let rolled = c.lines("rollback svc").len();
    image(&mut c, "v2");
    c.workloads.insert("v1".into(), crashing_after(1));
    c.run_until(at(100));
    assert_eq!(
        c.lines("status svc rollback_paused"),
        [
            "t=12 status svc rollback_paused: rollback paused due to failure or early termination of task t000006"
        ]
    );
    assert_eq!(c.lines("rollback svc").len(), rolled + 1, "one automatic rollback, never a second");
}

#[test]
fn s34_manual_rollback_toggles() {
    let mut c = cluster(2, UpdateConfig::default());
    image(&mut c, "v2");
    c.run_until(at(50));
    assert_eq!(c.status_line("svc"), "completed: update completed");
    c.rollback_service("svc").unwrap();
    let svc = c.service("svc").unwrap();
    assert_eq!((svc.spec_version, svc.previous_spec_version), (1, Some(2)));
    assert_eq!(svc.spec.task_template.container_spec.image, "v1");
    assert_eq!(
        status(&c),
        (UpdateState::RollbackStarted, "manually requested rollback".into(), Some(at(50)), None)
    );
    c.run_until(at(100));
    assert_eq!(c.status_line("svc"), "rollback_completed: rollback completed");
    assert_eq!(running_per_slot(&c), BTreeMap::from([(1, vec![1]), (2, vec![1])]));
    c.rollback_service("svc").unwrap();
    c.run_until(at(150));
    let svc = c.service("svc").unwrap();
    assert_eq!((svc.spec_version, svc.previous_spec_version), (2, Some(1)), "two rollbacks toggle");
    assert_eq!(svc.previous_spec.as_ref().unwrap().task_template.container_spec.image, "v1");
    assert_eq!(running_per_slot(&c), BTreeMap::from([(1, vec![2]), (2, vec![2])]));
}

#[test]
fn s35_no_manual_rollback_after_an_automatic_rollback() {
    let mut c = s32_cluster();
    image(&mut c, "v2");
    c.run_until(at(100));
    let (services, log) = (c.state.services.clone(), c.log.len());
    assert_eq!(
        c.rollback_service("svc"),
        Err(Refusal::FailedPrecondition {
            message: "service svc does not have a previous spec".into()
        })
    );
    assert_eq!((c.state.services.clone(), c.log.len()), (services, log), "nothing changes");
}

#[test]
fn s36_paused_update_resumes_only_on_a_new_update() {
    let mut c = cluster(6, cfg(1, 10, 5));
    c.workloads.insert("v2".into(), crashing_after(2));
    image(&mut c, "v2");
    c.run_until(at(50));
    assert!(c.status_line("svc").starts_with("paused: "));
    let paused = c.status_line("svc");
    // A node joins and an old task fails: the update stays paused and hands out no slot.
    c.add_node("n4", |_| {});
    let old = c.tasks_of("svc").into_iter().find(|t| t.slot == 2).unwrap().id.clone();
    c.report(&old, TaskState::Failed);
    c.run_until(at(120));
    assert_eq!(c.status_line("svc"), paused);
    for slot in 3..=6 {
        let created = since_update(&c, &["create"])
            .iter()
            .filter(|l| l.contains(&format!(" slot {slot} ")))
            .count();
        assert_eq!(created, 0, "slot {slot} is not updated while paused");
    }
    // Slot 2's failed task is restarted by the restart supervisor (with the current spec, v2,
    // which crashes too): every task created in slot 2 follows a failure there, at once.
    let failures: Vec<String> =
        c.lines(" failed").iter().map(|l| l.split(' ').next().unwrap().to_owned()).collect();
    let slot2 = since_update(&c, &["create"])
        .into_iter()
        .filter(|l| l.contains(" slot 2 "))
        .collect::<Vec<_>>();
    assert!(!slot2.is_empty());
    assert!(
        times(&slot2).iter().all(|t| failures.iter().any(|f| f == t)),
        "{slot2:?} vs {failures:?}"
    );
    c.workloads.insert("v2".into(), Workload::default());
    let version = c.service("svc").unwrap().spec_version;
    c.update_service("svc", |_| {}).unwrap();
    assert_eq!(c.service("svc").unwrap().spec_version, version + 1);
    assert_eq!(
        c.lines("status svc updating").last().unwrap(),
        "t=120 status svc updating: update in progress"
    );
    c.run_until(at(300));
    assert_eq!(c.status_line("svc"), "completed: update completed");
    let images: BTreeMap<u64, Vec<String>> = c
        .tasks_of("svc")
        .iter()
        .filter(|t| t.status.state == TaskState::Running)
        .fold(BTreeMap::new(), |mut m, t| {
            m.entry(t.slot).or_insert_with(Vec::new).push(t.spec.container_spec.image.clone());
            m
        });
    assert_eq!(
        images,
        (1..=6).map(|s| (s, vec!["v2".to_owned()])).collect(),
        "the still-dirty slots are updated"
    );
}

#[test]
fn s37_leader_failover_after_the_last_batch_completes_at_takeover() {
    let mut c = cluster(6, cfg(2, 10, 5));
    image(&mut c, "v2");
    c.run_until(at(25));
    c.leaderless_until(at(35));
    c.elect_new_leader();
    c.run_until(at(100));
    assert_eq!(since_update(&c, &["create"]).len(), 6, "no task is created twice");
    assert_eq!(
        status(&c),
        (UpdateState::Completed, "update completed".into(), Some(at(0)), Some(at(35)))
    );
}

#[test]
fn s37_leader_failover_before_the_last_batch_hands_it_out_at_takeover() {
    let mut c = cluster(6, cfg(2, 10, 5));
    image(&mut c, "v2");
    c.run_until(at(15));
    c.leaderless_until(at(35));
    c.elect_new_leader();
    c.run_until(at(100));
    assert_eq!(
        times(&since_update(&c, &["create"])),
        ["t=0", "t=0", "t=10", "t=10", "t=35", "t=35"]
    );
    assert_eq!(
        status(&c),
        (UpdateState::Completed, "update completed".into(), Some(at(0)), Some(at(56)))
    );
}

#[test]
fn s37_start_first_failover_with_two_tasks_in_a_slot_finishes_through_the_clean_task() {
    let update = UpdateConfig { order: UpdateOrder::StartFirst, ..cfg(1, 0, 5) };
    let mut c = cluster(1, update);
    c.workloads.insert("v2".into(), Workload { start_after: secs(3), ..Workload::default() });
    image(&mut c, "v2");
    c.run_until(at(1));
    // The new task comes up at t=3, while there is no leader.
    c.leaderless_until(at(5));
    assert_eq!(c.task(&TaskId::new("t000001")).unwrap().status.state, TaskState::Running);
    c.elect_new_leader();
    c.run_until(at(100));
    assert_eq!(since_update(&c, &["create"]).len(), 1, "the new task is not started twice");
    assert_eq!(c.lines("desire t000000"), ["t=5 desire t000000 shutdown"]);
    assert_eq!(c.status_line("svc"), "completed: update completed");
}

#[test]
fn s37_a_replacement_held_at_ready_when_the_leader_died_is_started_by_the_new_one() {
    let mut c = cluster(3, cfg(1, 0, 1));
    c.workloads.insert("v1".into(), Workload { stop_after: secs(4), ..Workload::default() });
    image(&mut c, "v2");
    // t000003 is held at READY until t000000 stops (t=4); the leader dies at once.
    c.leaderless_until(at(3));
    c.elect_new_leader();
    c.run_until(at(60));
    assert_eq!(c.lines("desire t000003 running"), ["t=4 desire t000003 running"]);
    assert_eq!(c.lines("observed t000003 running"), ["t=4 observed t000003 running"]);
    assert_eq!(running_per_slot(&c), (1..=3).map(|s| (s, vec![2])).collect());
}

#[test]
fn s37_a_batch_the_old_leader_still_had_in_flight_is_refused_after_the_new_leader_claims() {
    let mut c = cluster(6, cfg(2, 10, 5));
    image(&mut c, "v2");
    c.run_until(at(9));
    let mut old = c.driver.clone();
    c.leaderless_until(at(10));
    // The deposed leader still believes it leads: its timer fires and it decides slots 3, 4,
    // but its batch is still in flight when the new leader takes over.
    let stale = old.pass(&mut c.state, at(10)).batches.into_iter().next().unwrap();
    c.elect_new_leader();
    c.run_until(at(11));
    let creates = match &stale {
        StoreCommand::Orchestrate { commands, .. } => {
            commands.iter().filter(|c| matches!(c, StoreCommand::PutTask { .. })).count()
        }
        _ => 0,
    };
    assert_eq!(creates, 2, "the old leader's batch would start two tasks");
    let before = c.state.clone();
    assert!(matches!(c.write(stale), Err(Refusal::Fenced { epoch: 1, current_epoch: 2, .. })));
    let mut after: ClusterState = c.state.clone();
    after.last_index = before.last_index;
    assert_eq!(after, before, "the refused batch changed nothing");
    c.run_until(at(100));
    let mut per_slot: BTreeMap<String, usize> = BTreeMap::new();
    for l in since_update(&c, &["create"]) {
        *per_slot
            .entry(l.split(" slot ").nth(1).unwrap().split(' ').next().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(per_slot.values().all(|n| *n == 1), "no slot started twice: {per_slot:?}");
    assert_eq!(c.status_line("svc"), "completed: update completed");
}

#[test]
fn s42_no_op_update_changes_no_task_and_leaves_status_nil() {
    let mut c = cluster(6, cfg(2, 10, 5));
    image(&mut c, "v2");
    c.run_until(at(100));
    let svc = c.service("svc").unwrap().clone();
    let tasks = c.log.len();
    c.update_service("svc", |_| {}).unwrap();
    c.run_until(at(200));
    let after = c.service("svc").unwrap();
    assert_eq!(after.spec_version, svc.spec_version + 1, "SpecVersion changes");
    assert_eq!(after.previous_spec.as_ref(), Some(&svc.spec), "PreviousSpec is identical to Spec");
    assert_eq!(after.update_status, None, "UpdateStatus is nil, not completed");
    let since: Vec<&String> =
        c.log[tasks..].iter().filter(|l| !l.contains(" update svc ")).collect();
    assert!(since.is_empty(), "no task is created or stopped: {since:?}");
}

#[test]
fn s43_force_update_replaces_every_slot_one_at_a_time() {
    let mut c = cluster(3, UpdateConfig::default());
    let before = c.service("svc").unwrap().spec.task_template.force_update;
    c.update_service("svc", |s| s.task_template.force_update += 1).unwrap();
    c.run_until(at(100));
    assert_eq!(c.service("svc").unwrap().spec.task_template.force_update, before + 1);
    let steps = since_update(&c, &["create", "observed"]);
    let steps: Vec<&str> = steps.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(
        steps,
        [
            "create t000003 svc slot 1 on n1 v2 ready",
            "observed t000000 shutdown",
            "observed t000003 ready",
            "observed t000003 running",
            "create t000004 svc slot 2 on n2 v2 ready",
            "observed t000001 shutdown",
            "observed t000004 ready",
            "observed t000004 running",
            "create t000005 svc slot 3 on n3 v2 ready",
            "observed t000002 shutdown",
            "observed t000005 ready",
            "observed t000005 running",
        ],
        "one slot at a time: the next is created once the previous one runs"
    );
    assert_eq!(since_update(&c, &["status"])[1], "t=5 status svc completed: update completed");
}

fn health_checked(c: &mut SimCluster, unhealthy: bool) {
    let check = HealthConfig {
        test: vec!["CMD".into(), "probe".into()],
        interval: Some(secs(10)),
        retries: Some(1),
        ..HealthConfig::default()
    };
    c.workloads.insert("v2".into(), Workload { unhealthy, ..Workload::default() });
    c.update_service("svc", |s| {
        s.task_template.container_spec.image = "v2".into();
        s.task_template.container_spec.healthcheck = Some(check);
    })
    .unwrap();
}

#[test]
fn s53_healthcheck_gates_running_and_the_monitor_window() {
    let mut c = cluster(1, UpdateConfig::default());
    health_checked(&mut c, false);
    for t in 0..10 {
        c.run_until(at(t));
        assert_eq!(
            c.task(&TaskId::new("t000001")).unwrap().status.state,
            TaskState::Starting,
            "t={t}"
        );
    }
    c.run_until(at(100));
    assert_eq!(
        c.lines("observed t000001"),
        [
            "t=0 observed t000001 ready",
            "t=0 observed t000001 starting",
            "t=10 observed t000001 running",
        ]
    );
    assert_eq!(c.lines("status svc completed"), ["t=15 status svc completed: update completed"]);
}

#[test]
fn s53_an_unhealthy_first_check_fails_the_task_and_pauses() {
    let mut c = cluster(1, UpdateConfig::default());
    health_checked(&mut c, true);
    c.run_until(at(100));
    assert_eq!(c.lines("observed t000001 failed"), ["t=10 observed t000001 failed"]);
    assert_eq!(
        c.lines("status svc paused"),
        [
            "t=10 status svc paused: update paused due to failure or early termination of task t000001"
        ]
    );
}

#[test]
fn a_slow_start_keeps_the_worker_busy_with_no_timeout() {
    let mut c = cluster(2, UpdateConfig::default());
    c.workloads.insert("v2".into(), Workload { start_after: secs(1000), ..Workload::default() });
    image(&mut c, "v2");
    c.run_until(at(500));
    assert_eq!(since_update(&c, &["create"]).len(), 1);
    assert_eq!(c.status_line("svc"), "updating: update in progress");
}

#[test]
fn a_new_spec_mid_rollout_supersedes_the_running_update() {
    let mut c = cluster(4, cfg(1, 10, 5));
    image(&mut c, "v2");
    c.run_until(at(15));
    assert_eq!(since_update(&c, &["create"]).len(), 2, "slots 1 and 2 are on v2");
    image(&mut c, "v3");
    c.run_until(at(200));
    assert_eq!(running_per_slot(&c), (1..=4).map(|s| (s, vec![3])).collect(), "every slot runs v3");
    assert_eq!(c.status_line("svc"), "completed: update completed");
}

#[test]
fn a_global_rolling_update_goes_node_by_node() {
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        c.add_node(n, |_| {});
    }
    let mut s = spec(1, cfg(1, 10, 5));
    s.mode = ServiceMode::Global;
    c.create_service("svc", s);
    c.run_until(at(0));
    image(&mut c, "v2");
    c.run_until(at(100));
    let where_when: Vec<(String, String)> = since_update(&c, &["create"])
        .iter()
        .map(|l| {
            (
                l.split(' ').next().unwrap().to_owned(),
                l.split(" on ").nth(1).unwrap().split(' ').next().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [("t=0", "n1"), ("t=10", "n2"), ("t=20", "n3")]
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    assert_eq!(where_when, expected);
    assert_eq!(c.lines("status svc completed"), ["t=41 status svc completed: update completed"]);
}

/// A stop-first update of a slot whose task was never placed (no node can run it yet) has
/// no old task to wait for: nothing runs it and no agent will report it stopped, so the new
/// task is released at once instead of after the 60 s old-task timeout, and it runs as soon
/// as a node joins.
#[test]
fn a_stop_first_update_does_not_wait_for_an_old_task_that_was_never_placed() {
    let mut c = SimCluster::new();
    c.create_service("svc", spec(1, cfg(1, 0, 1)));
    c.run_until(at(1));
    let old = c.tasks_of("svc").iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    assert_eq!(old.len(), 1);
    assert_eq!(c.task(&old[0]).unwrap().status.state, TaskState::Pending);
    image(&mut c, "v2");
    c.run_until(at(2));
    let new = c.tasks_of("svc").into_iter().find(|t| t.id != old[0]).unwrap().clone();
    assert_eq!(new.spec.container_spec.image, "v2");
    assert_eq!(new.desired_state, TaskState::Running, "released without waiting");
    assert!(c.task(&old[0]).unwrap().desired_state >= TaskState::Shutdown);
    c.add_node("n1", |_| {});
    c.run_until(at(4));
    assert_eq!(c.running("svc").len(), 1, "{}", c.status_line("svc"));
    assert_eq!(c.task(&new.id).unwrap().status.state, TaskState::Running);
}
