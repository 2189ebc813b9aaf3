use super::*;
use reconciler_api::services::ServiceInfo;
use reconciler_types::{ServiceId, ServiceSpec, TaskId, TaskStatus, UpdateConfig, UpdateStatus};

fn service(replicas: Option<u64>, monitor_secs: u64) -> ServiceInfo {
    let mode =
        replicas.map_or(ServiceMode::Global, |replicas| ServiceMode::Replicated { replicas });
    let update_config =
        UpdateConfig { monitor: Duration::from_secs(monitor_secs), ..UpdateConfig::default() };
    ServiceInfo {
        id: ServiceId::new("svc1"),
        version: 10,
        spec: ServiceSpec { name: "web".into(), mode, update_config, ..ServiceSpec::default() },
        spec_version: 2,
        previous_spec: None,
        previous_spec_version: None,
        update_status: None,
        endpoint_ports: Vec::new(),
        status: None,
    }
}

fn task(
    id: &str,
    slot: u64,
    node: &str,
    version: u64,
    desired: TaskState,
    observed: TaskState,
) -> TaskView {
    TaskView {
        task: Task {
            id: TaskId::new(id),
            slot,
            node_id: Some(NodeId::new(node)),
            spec_version: version,
            desired_state: desired,
            status: TaskStatus { state: observed, ..TaskStatus::default() },
            ..Task::default()
        },
        node: node.to_owned(),
        ports: Vec::new(),
    }
}

fn at(millis: u64) -> MonoTime {
    MonoTime::from_millis(millis)
}

fn nodes(ids: &[&str]) -> BTreeSet<NodeId> {
    ids.iter().map(|n| NodeId::new(*n)).collect()
}

/// Every line written (with its time), and the outcome with its time.
type Run = (Vec<(u64, String)>, Option<(u64, Outcome)>);

/// Polls every 200 ms from t=0 to `until_ms`, with the tasks `timeline` gives for each time;
/// returns every line written (with its time) and the outcome with its time.
fn run(svc: &ServiceInfo, until_ms: u64, timeline: impl Fn(u64) -> Vec<TaskView>) -> Run {
    let active = nodes(&["n1", "n2", "n3"]);
    let mut progress = Progress::new("web");
    let mut written = Vec::new();
    for ms in (0..=until_ms).step_by(200) {
        let tasks = timeline(ms);
        let poll = Poll { at: at(ms), service: svc, tasks: &tasks, active_nodes: &active };
        let (lines, outcome) = progress.poll(poll);
        written.extend(lines.into_iter().map(|l| (ms, format!("{}: {}", l.id, l.action))));
        if outcome != Outcome::Waiting {
            return (written, Some((ms, outcome)));
        }
    }
    (written, None)
}

/// Three slots whose new tasks (spec version 2) reach RUNNING at 1 s, 2 s and 4 s.
fn three_new_tasks(ms: u64) -> Vec<TaskView> {
    let state = |ready_ms| if ms >= ready_ms { TaskState::Running } else { TaskState::Starting };
    vec![
        task("t1", 1, "n1", 2, TaskState::Running, state(1000)),
        task("t2", 2, "n2", 2, TaskState::Running, state(2000)),
        task("t3", 3, "n3", 2, TaskState::Running, state(4000)),
        task("t0", 3, "n3", 1, TaskState::Shutdown, TaskState::Shutdown),
    ]
}

fn first_time(written: &[(u64, String)], text: &str) -> Option<u64> {
    written.iter().find(|(_, l)| l == text).map(|(ms, _)| *ms)
}

#[test]
fn s52_cli_waits_the_monitor_after_convergence_then_reports_converged() {
    let svc = service(Some(3), 5);
    let (written, outcome) = run(&svc, 20_000, three_new_tasks);
    assert_eq!(written[0].1, "overall progress: 0 out of 3 tasks");
    assert_eq!(first_time(&written, "overall progress: 3 out of 3 tasks"), Some(4000));
    assert_eq!(
        first_time(&written, "verify: Waiting 5 seconds to verify that tasks are stable..."),
        Some(4000)
    );
    assert_eq!(
        first_time(&written, "verify: Waiting 1 seconds to verify that tasks are stable..."),
        Some(8000)
    );
    assert_eq!(outcome, Some((9000, Outcome::Converged)), "converged at 4 s + 5 s monitor");
    assert_eq!(written.last().map(|(_, l)| l.as_str()), Some("verify: Service web converged"));
}

#[test]
fn s52_cli_detects_a_task_failure_and_restarts_the_wait() {
    let svc = service(Some(3), 5);
    let timeline = |ms: u64| {
        let mut tasks = three_new_tasks(ms);
        if ms >= 6000 {
            // Slot 2's task fails at 6 s; its replacement runs at 7 s.
            tasks[1] = task("t2", 2, "n2", 2, TaskState::Shutdown, TaskState::Failed);
            let replacement = if ms >= 7000 { TaskState::Running } else { TaskState::Pending };
            tasks.push(task("t4", 2, "n1", 2, TaskState::Running, replacement));
        }
        tasks
    };
    let (written, outcome) = run(&svc, 30_000, timeline);
    assert_eq!(first_time(&written, "verify: Detected task failure"), Some(6000));
    let recount = written.iter().find(|(ms, l)| *ms >= 6000 && l.starts_with("overall progress"));
    assert_eq!(recount, Some(&(6000, "overall progress: 2 out of 3 tasks".to_owned())));
    let waits: Vec<u64> = written
        .iter()
        .filter(|(_, l)| l == "verify: Waiting 5 seconds to verify that tasks are stable...")
        .map(|(ms, _)| *ms)
        .collect();
    assert_eq!(waits.first(), Some(&4000));
    assert!(waits.contains(&7000), "the wait starts over at re-convergence: {waits:?}");
    assert_eq!(outcome, Some((12_000, Outcome::Converged)), "7 s + 5 s");
}

#[test]
fn tasks_of_an_older_spec_do_not_count() {
    let svc = service(Some(1), 5);
    let old_running = |_| vec![task("t0", 1, "n1", 1, TaskState::Running, TaskState::Running)];
    let (written, outcome) = run(&svc, 3000, old_running);
    assert_eq!(outcome, None);
    assert!(written.iter().all(|(_, l)| !l.contains("1 out of 1")));
}

#[test]
fn a_pending_task_shows_the_schedulers_reason() {
    let svc = service(Some(1), 5);
    let pending = |_| {
        let mut t = task("t1", 1, "n1", 2, TaskState::Running, TaskState::Pending);
        t.task.node_id = None;
        t.task.status.err =
            "no suitable node (scheduling constraints not satisfied on 3 nodes)".into();
        vec![t]
    };
    let (written, _) = run(&svc, 0, pending);
    assert!(written.contains(&(
        0,
        "1/1: no suitable node (scheduling constraints not satisfied on 3 nodes)".into()
    )));
}

#[test]
fn tasks_on_down_nodes_are_not_counted() {
    let svc = service(Some(1), 5);
    let on_down_node = |_| vec![task("t1", 1, "n9", 2, TaskState::Running, TaskState::Running)];
    let (_, outcome) = run(&svc, 3000, on_down_node);
    assert_eq!(outcome, None);
}

#[test]
fn a_paused_update_ends_the_wait_with_dockers_error() {
    let mut svc = service(Some(1), 5);
    svc.update_status = Some(UpdateStatus {
        state: UpdateState::Paused,
        message: "update paused due to failure or early termination of task t1".into(),
        started_at: None,
        completed_at: None,
    });
    let (_, outcome) = run(&svc, 0, |_| Vec::new());
    let msg = "service update paused: update paused due to failure or early termination of task t1";
    assert_eq!(outcome, Some((0, Outcome::Failed(msg.into()))));
    svc.update_status.as_mut().unwrap().state = UpdateState::RollbackPaused;
    let (_, outcome) = run(&svc, 0, |_| Vec::new());
    assert!(
        matches!(outcome, Some((0, Outcome::Failed(m))) if m.starts_with("service rollback paused: "))
    );
}

#[test]
fn a_rollback_is_reported_and_its_completion_printed_after_convergence() {
    let mut svc = service(Some(1), 1);
    let status = |state, message: &str| UpdateStatus {
        state,
        message: message.into(),
        started_at: None,
        completed_at: None,
    };
    svc.update_status = Some(status(
        UpdateState::RollbackStarted,
        "update rolled back due to failure or early termination of task t9",
    ));
    let running = |_| vec![task("t1", 1, "n1", 2, TaskState::Running, TaskState::Running)];
    let mut progress = Progress::new("web");
    let active = nodes(&["n1"]);
    let tasks = running(0);
    let (lines, _) =
        progress.poll(Poll { at: at(0), service: &svc, tasks: &tasks, active_nodes: &active });
    let texts: Vec<String> = lines.iter().map(|l| format!("{}: {}", l.id, l.action)).collect();
    assert_eq!(
        texts[0],
        "rollback: update rolled back due to failure or early termination of task t9"
    );
    assert!(texts.contains(&"overall progress: rolling back update: 1 out of 1 tasks".to_owned()));
    svc.update_status = Some(status(UpdateState::RollbackCompleted, "rollback completed"));
    let (lines, outcome) =
        progress.poll(Poll { at: at(1000), service: &svc, tasks: &tasks, active_nodes: &active });
    let texts: Vec<String> = lines.iter().map(|l| format!("{}: {}", l.id, l.action)).collect();
    assert_eq!(outcome, Outcome::Converged);
    assert_eq!(
        texts,
        ["verify: Service web converged"],
        "converged before the rollback completed: no message"
    );
}

#[test]
fn a_completed_update_seen_before_convergence_ends_at_once() {
    let mut svc = service(Some(1), 5);
    svc.update_status = Some(UpdateStatus {
        state: UpdateState::Completed,
        message: "update completed".into(),
        started_at: None,
        completed_at: None,
    });
    let (_, outcome) = run(&svc, 0, |_| Vec::new());
    assert_eq!(outcome, Some((0, Outcome::Converged)));
}

#[test]
fn a_global_service_converges_on_its_nodes() {
    let svc = service(None, 2);
    let (written, outcome) = run(&svc, 10_000, |ms| {
        if ms < 400 {
            return Vec::new();
        }
        vec![
            task("t1", 0, "n1", 2, TaskState::Running, TaskState::Running),
            task(
                "t2",
                0,
                "n2",
                2,
                TaskState::Running,
                if ms >= 1000 { TaskState::Running } else { TaskState::Preparing },
            ),
        ]
    });
    assert_eq!(written[0], (0, "overall progress: waiting for new tasks".into()));
    assert_eq!(first_time(&written, "overall progress: 2 out of 2 tasks"), Some(1000));
    assert_eq!(outcome, Some((3000, Outcome::Converged)));
}

#[test]
fn long_errors_are_cut_as_docker_cuts_them() {
    let long = "x".repeat(100);
    assert_eq!(trunc_error(&long).chars().count(), 75);
    assert_eq!(trunc_error("a\nb"), "a b");
}
