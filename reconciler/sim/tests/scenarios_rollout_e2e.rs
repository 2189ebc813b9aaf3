//! Rolling-update scenarios (S23, S26, S28, S32, S37) run end to end: orchestrators,
//! restart supervisor, scheduler, reaper and simulated agents together.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic

use reconciler_sim::{SimCluster, Workload};
use reconciler_types::{
    FailureAction, MonoTime, ServiceMode, ServiceSpec, TaskState, UpdateConfig, UpdateOrder,
};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> MonoTime {
    MonoTime::from_secs(s)
}

fn service(replicas: u64, update: UpdateConfig) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: "svc".into(),
        mode: ServiceMode::Replicated { replicas },
        update_config: update,
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = "v1".into();
    s
}

fn cluster(replicas: u64, update: UpdateConfig) -> SimCluster {
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        c.add_node(n, |_| {});
    }
    c.create_service("svc", service(replicas, update));
    c.run_until(at(0));
    c
}

fn to_v2(c: &mut SimCluster) {
    c.update_service("svc", |s| s.task_template.container_spec.image = "v2".into()).unwrap();
}

fn times(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| l.split(' ').next().unwrap()).collect()
}

fn cfg(parallelism: u64, delay: u64, monitor: u64) -> UpdateConfig {
    UpdateConfig {
        parallelism,
        delay: secs(delay),
        monitor: secs(monitor),
        ..UpdateConfig::default()
    }
}

#[test]
fn s23_rolling_update_timeline_end_to_end() {
    let mut c = cluster(6, cfg(2, 10, 5));
    to_v2(&mut c);
    let mut max_down = 0;
    for t in 0..=50 {
        c.run_until(at(t));
        max_down = max_down.max(6 - c.running("svc").len());
    }
    let creates = c.lines("create");
    assert_eq!(times(&creates[6..]), ["t=0", "t=0", "t=10", "t=10", "t=20", "t=20"]);
    assert_eq!(
        c.lines("status svc"),
        [
            "t=0 status svc updating: update in progress",
            "t=41 status svc completed: update completed"
        ]
    );
    assert!(max_down <= 2, "at most 2 slots without a running task");
    assert!(c.running("svc").iter().all(|(_, _, v)| *v == 2));
}

#[test]
fn s26_start_first_failure_pauses_and_the_restart_supervisor_retries() {
    let mut c =
        cluster(1, UpdateConfig { order: UpdateOrder::StartFirst, ..UpdateConfig::default() });
    c.workloads.insert(
        "v2".into(),
        Workload { fail_before_running: Some(secs(2)), ..Workload::default() },
    );
    to_v2(&mut c);
    c.run_until(at(6));
    assert_eq!(
        c.status_line("svc"),
        format!(
            "paused: update paused due to failure or early termination of task {}",
            c.tasks_of("svc")[1].id
        )
    );
    let old = c.tasks_of("svc")[0];
    assert_eq!(
        (old.desired_state, old.status.state),
        (TaskState::Running, TaskState::Running),
        "T1.1 is not shut down"
    );
    let retry = c.tasks_of("svc")[2].id.clone();
    assert_eq!(
        c.lines(&format!("create {retry}")),
        [format!("t=2 create {retry} svc slot 1 v2 ready")]
    );
    c.run_until(at(8));
    assert_eq!(
        c.lines(&format!("desire {retry} running")),
        [format!("t=7 desire {retry} running")]
    );
}

#[test]
fn s28_paused_update_keeps_restarting_slot_one_with_the_new_spec() {
    let update = UpdateConfig { failure_action: FailureAction::Pause, ..cfg(1, 10, 5) };
    let mut c = cluster(6, update);
    c.workloads
        .insert("v2".into(), Workload { exit_after: Some((secs(2), 1)), ..Workload::default() });
    to_v2(&mut c);
    c.run_until(at(60));
    assert!(
        c.status_line("svc")
            .starts_with("paused: update paused due to failure or early termination of task")
    );
    let v1_slots = c.running("svc").iter().filter(|(_, _, v)| *v == 1).count();
    assert_eq!(v1_slots, 5, "slots 2-6 keep spec 1");
    let slot1_v2 = c.tasks_of("svc").iter().filter(|t| t.slot == 1 && t.spec_version == 2).count();
    assert!(slot1_v2 >= 5, "slot 1 keeps being restarted with spec 2 (history limit 5)");
}

#[test]
fn s32_automatic_rollback_end_to_end() {
    let update = UpdateConfig { failure_action: FailureAction::Rollback, ..cfg(1, 10, 5) };
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3", "n4"] {
        c.add_node(n, |_| {});
    }
    let mut s = service(4, update);
    s.rollback_config = cfg(0, 0, 2);
    c.create_service("svc", s);
    c.run_until(at(0));
    c.workloads
        .insert("v2".into(), Workload { exit_after: Some((secs(1), 1)), ..Workload::default() });
    to_v2(&mut c);
    c.run_until(at(30));
    let v2_task = c
        .tasks_of("svc")
        .into_iter()
        .find(|t| t.spec_version == 2 && t.status.state == TaskState::Failed)
        .unwrap()
        .id
        .clone();
    assert_eq!(
        c.lines("status svc").into_iter().chain(c.lines("rollback svc")).collect::<Vec<_>>(),
        [
            "t=0 status svc updating: update in progress".to_owned(),
            "t=3 status svc rollback_completed: rollback completed".to_owned(),
            format!(
                "t=1 rollback svc rollback_started: update rolled back due to failure or early termination of task {v2_task}"
            ),
        ]
    );
    let svc = &c.service("svc").unwrap();
    assert_eq!(
        (svc.spec.task_template.container_spec.image.as_str(), svc.previous_spec.is_none()),
        ("v1", true)
    );
    assert_eq!(c.running("svc").len(), 4);
    assert!(c.running("svc").iter().all(|(_, _, v)| *v == 1), "every slot runs v1");
    assert_eq!(
        c.rollback_service("svc").unwrap_err().to_string(),
        "service svc does not have a previous spec"
    );
}

#[test]
fn s37_new_leader_resumes_without_restarting_any_task_twice() {
    let mut c = cluster(6, cfg(2, 10, 5));
    to_v2(&mut c);
    c.run_until(at(15));
    c.leaderless_until(at(35));
    c.elect_new_leader();
    c.run_until(at(100));
    let creates = c.lines("create");
    assert_eq!(times(&creates[6..]), ["t=0", "t=0", "t=10", "t=10", "t=35", "t=35"]);
    assert_eq!(c.lines("status svc completed"), ["t=56 status svc completed: update completed"]);
}

#[test]
fn a_new_spec_mid_rollout_supersedes_the_running_update_end_to_end() {
    let mut c = cluster(4, cfg(1, 10, 5));
    to_v2(&mut c);
    c.run_until(at(15));
    c.update_service("svc", |s| s.task_template.container_spec.image = "v3".into()).unwrap();
    c.run_until(at(200));
    let running = c.running("svc");
    assert_eq!(running.len(), 4);
    assert!(
        running.iter().all(|(_, _, v)| *v == 3),
        "every slot runs the newest spec: {running:?}"
    );
    assert_eq!(c.status_line("svc"), "completed: update completed");
}

#[test]
fn global_rolling_update_goes_node_by_node() {
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        c.add_node(n, |_| {});
    }
    let mut s = service(1, cfg(1, 10, 5));
    s.mode = ServiceMode::Global;
    c.create_service("svc", s);
    c.run_until(at(0));
    to_v2(&mut c);
    c.run_until(at(100));
    let creates: Vec<String> = c.lines("create").into_iter().skip(3).collect();
    let when_where: Vec<(&str, &str)> = creates
        .iter()
        .map(|l| {
            (
                l.split(' ').next().unwrap(),
                l.split(" on ").nth(1).unwrap().split(' ').next().unwrap(),
            )
        })
        .collect();
    assert_eq!(when_where, [("t=0", "n1"), ("t=10", "n2"), ("t=20", "n3")]);
    assert_eq!(c.lines("status svc completed"), ["t=41 status svc completed: update completed"]);
}
