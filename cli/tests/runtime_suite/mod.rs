//! The runtime suite: what every `Runtime` must do, run against the process runtime
//! (`runtime_process.rs`) and the docker runtime (`runtime_docker.rs`) with `flotilla probe`
//! as the workload. A runtime's test file implements [`Harness`] and calls
//! `runtime_suite!(make_harness)`, which declares one test per case.
//!
//! The tasks are real processes or containers: waits poll with deadlines, never sleep a
//! fixed time.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use agent::runtime::{Found, LogQuery, Runtime, RuntimeError, TaskContext, TaskFile};
use agent_core::files::{FileKind, PlacedFile};
use agent_core::logs::LogLimits;
use agent_core::{HealthTest, TaskIdentity};
use reconciler_types::{NodeId, PortConfig, TaskId, TaskSpec};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What a runtime's test file provides.
pub trait Harness: Send + Sync {
    /// The runtime under test.
    type R: Runtime;
    /// The runtime.
    fn runtime(&self) -> &Self::R;
    /// A second instance over the same state, as after an agent restart.
    async fn restarted(&self) -> Self::R;
    /// A task context skeleton (image set for docker).
    fn base_spec(&self) -> TaskSpec;
    /// A prefix for task ids, unique to this run.
    fn prefix(&self) -> &str;
    /// The node the runtime runs tasks for.
    fn node_id(&self) -> NodeId;
}

/// A unique task id.
pub fn task_id(h: &impl Harness, name: &str) -> TaskId {
    TaskId::new(format!("{}{name}", h.prefix()))
}

/// A task that runs `flotilla probe` with `env`, publishing port 8080.
pub fn probe_task(h: &impl Harness, name: &str, env: &[(&str, &str)]) -> TaskContext {
    let mut spec = h.base_spec();
    spec.container_spec.command = vec!["flotilla".into(), "probe".into()];
    spec.container_spec.env = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    spec.container_spec.stop_grace_period = Some(Duration::from_secs(5));
    TaskContext {
        who: TaskIdentity {
            task_id: task_id(h, name),
            service_name: "suite_web".into(),
            service_id: "svc1".into(),
            slot: 1,
            node_id: h.node_id(),
        },
        spec,
        service_labels: Default::default(),
        ports: vec![PortConfig { target_port: 8080, ..PortConfig::default() }],
        files: Vec::new(),
        log_limits: LogLimits::default(),
    }
}

/// Prepares (see [`prepare`]) and starts; answers the node port of the task's first port.
pub async fn run(rt: &impl Runtime, task: &TaskContext) -> u32 {
    prepare(rt, task).await.expect("prepare");
    let ports = rt.start(task).await.expect("start");
    assert_eq!(ports.len(), task.ports.len(), "one node port per service port: {ports:?}");
    ports[0].published_port
}

/// Prepares a task, ignoring progress messages.
pub async fn prepare(rt: &impl Runtime, task: &TaskContext) -> Result<(), RuntimeError> {
    let (progress, _) = tokio::sync::watch::channel(String::new());
    rt.prepare(task, &progress).await
}

/// GETs a path of the task at `port` until it answers (or the deadline passes).
pub async fn get(port: u32, path: &str) -> (u16, String) {
    let http = reconciler_api::http::http_client(Duration::from_secs(5)).unwrap();
    let url = format!("http://127.0.0.1:{port}{path}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(&url).send().await {
            Ok(r) => return (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) if Instant::now() > deadline => panic!("{url}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Waits for the task's exit code, with a deadline.
pub async fn wait_exit(rt: &impl Runtime, task: &TaskContext) -> i32 {
    tokio::time::timeout(Duration::from_secs(60), rt.wait(task))
        .await
        .expect("the task exits in time")
        .expect("wait")
}

/// Every log line of a task (no follow).
pub async fn log_lines(rt: &impl Runtime, task: &TaskContext, query: LogQuery) -> Vec<String> {
    let (tx, mut rx) = mpsc::channel(10_000);
    rt.logs(task, query, tx).await.expect("logs");
    let mut out = Vec::new();
    while let Ok(r) = rx.try_recv() {
        out.push(r.log);
    }
    out
}

pub async fn a_task_that_exits_0_completes(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "exit0", &[("PROBE_EXIT_AFTER", "100ms"), ("PROBE_EXIT_CODE", "0")]);
    run(rt, &t).await;
    assert_eq!(wait_exit(rt, &t).await, 0);
    rt.remove(&t).await.unwrap();
}

pub async fn a_nonzero_exit_code_is_reported(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "exit3", &[("PROBE_EXIT_AFTER", "100ms"), ("PROBE_EXIT_CODE", "3")]);
    run(rt, &t).await;
    assert_eq!(wait_exit(rt, &t).await, 3);
    rt.remove(&t).await.unwrap();
}

pub async fn the_task_answers_on_its_port_with_its_environment(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "env", &[("PROBE_VERSION", "v7")]);
    let port = run(rt, &t).await;
    let (status, body) = get(port, "/").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "v7");
    assert_eq!(v["task"], t.who.task_id.as_str());
    rt.stop(&t).await.unwrap();
    rt.remove(&t).await.unwrap();
}

pub async fn stop_ends_the_task_with_its_stop_signal(h: &impl Harness) {
    let rt = h.runtime();
    let mut t = probe_task(h, "stop", &[]);
    t.spec.container_spec.stop_signal = "SIGINT".into();
    let port = run(rt, &t).await;
    get(port, "/health").await;
    let began = Instant::now();
    rt.stop(&t).await.unwrap();
    assert!(began.elapsed() < t.stop_grace(), "the stop signal ends the probe at once");
    assert_eq!(wait_exit(rt, &t).await, 0);
    let lines = log_lines(rt, &t, LogQuery::default()).await;
    assert!(lines.iter().any(|l| l == "probe: stopping on SIGINT"), "{lines:?}");
    // Stopping again is a no-op.
    rt.stop(&t).await.unwrap();
    rt.remove(&t).await.unwrap();
}

pub async fn a_task_ignoring_the_stop_signal_is_killed_after_the_grace_period(h: &impl Harness) {
    let rt = h.runtime();
    let mut t = probe_task(h, "kill", &[("PROBE_IGNORE_STOP", "1")]);
    t.spec.container_spec.stop_grace_period = Some(Duration::from_millis(1500));
    let port = run(rt, &t).await;
    get(port, "/health").await;
    let began = Instant::now();
    rt.stop(&t).await.unwrap();
    assert!(began.elapsed() >= Duration::from_millis(1400), "{:?}", began.elapsed());
    assert_eq!(wait_exit(rt, &t).await, 128 + 9);
    let lines = log_lines(rt, &t, LogQuery::default()).await;
    assert!(lines.iter().any(|l| l == "probe: ignoring SIGTERM"), "{lines:?}");
    rt.remove(&t).await.unwrap();
}

pub async fn configs_and_secrets_are_files_at_their_targets(h: &impl Harness) {
    let rt = h.runtime();
    let mut t = probe_task(h, "files", &[]);
    let file = |kind, name: &str, path: &str, data: &[u8]| TaskFile {
        placed: PlacedFile {
            kind,
            name: name.into(),
            path: path.into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        },
        data: data.to_vec(),
    };
    t.files = vec![
        file(FileKind::Config, "suite_conf", "etc/app/conf.yml", b"answer: 42\n"),
        file(FileKind::Secret, "suite_pw", "run/secrets/pw", b"hunter2"),
    ];
    let port = run(rt, &t).await;
    let sha = |b: &[u8]| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
    };
    let (s, body) = get(port, "/file?path=etc/app/conf.yml").await;
    assert_eq!((s, body.trim()), (200, sha(b"answer: 42\n").as_str()));
    let (s, body) = get(port, "/file?path=run/secrets/pw").await;
    assert_eq!((s, body.trim()), (200, sha(b"hunter2").as_str()));
    rt.stop(&t).await.unwrap();
    rt.remove(&t).await.unwrap();
}

pub async fn logs_are_kept_after_exit_and_read_with_tail_and_since(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "logs", &[("PROBE_VERSION", "v3")]);
    let port = run(rt, &t).await;
    for _ in 0..3 {
        get(port, "/").await;
    }
    rt.stop(&t).await.unwrap();
    wait_exit(rt, &t).await;
    let all = log_lines(rt, &t, LogQuery::default()).await;
    assert!(all.iter().any(|l| l.starts_with("probe v3 listening on")), "{all:?}");
    assert_eq!(all.iter().filter(|l| *l == "GET /").count(), 3, "{all:?}");
    let tail = log_lines(rt, &t, LogQuery { tail: Some(2), ..LogQuery::default() }).await;
    assert_eq!(tail, all[all.len() - 2..]);
    let future = agent::clock::now() + Duration::from_secs(3600);
    let none = log_lines(rt, &t, LogQuery { since: Some(future), ..LogQuery::default() }).await;
    assert!(none.is_empty(), "{none:?}");
    rt.remove(&t).await.unwrap();
}

pub async fn a_follower_gets_new_lines_until_the_task_exits(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "follow", &[]);
    let port = run(rt, &t).await;
    get(port, "/health").await;
    let (tx, mut rx) = mpsc::channel(1000);
    let q = LogQuery { follow: true, ..LogQuery::default() };
    let follow = async {
        rt.logs(&t, q, tx).await.unwrap();
    };
    let drive = async {
        get(port, "/exit?code=0").await;
        let mut lines = Vec::new();
        while let Some(r) = rx.recv().await {
            lines.push(r.log);
        }
        lines
    };
    let ((), lines) =
        tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(follow, drive) })
            .await
            .expect("the follow ends when the task exits");
    assert!(lines.iter().any(|l| l == "GET /exit: exiting with code 0"), "{lines:?}");
    rt.remove(&t).await.unwrap();
}

pub async fn a_restarted_agent_adopts_the_running_task_and_learns_its_exit_code(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "adopt", &[]);
    let port = run(rt, &t).await;
    get(port, "/health").await;
    let again = h.restarted().await;
    match again.adopt(&t).await.unwrap() {
        Found::Running { ports } => assert_eq!(ports[0].published_port, port),
        other => panic!("expected the task running, found {other:?}"),
    }
    // Starting an adopted task again does not start a second one.
    assert_eq!(again.start(&t).await.unwrap()[0].published_port, port);
    get(port, "/exit?code=7").await;
    assert_eq!(wait_exit(&again, &t).await, 7);
    assert_eq!(again.adopt(&t).await.unwrap(), Found::Exited(7));
    again.remove(&t).await.unwrap();
    assert_eq!(again.adopt(&t).await.unwrap(), Found::Absent);
}

pub async fn a_prepared_task_is_found_prepared_and_unknown_ones_absent(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "prepared", &[]);
    prepare(rt, &t).await.unwrap();
    prepare(rt, &t).await.unwrap();
    assert_eq!(h.restarted().await.adopt(&t).await.unwrap(), Found::Prepared);
    let ids = rt.list().await.unwrap();
    assert!(ids.iter().any(|i| i == t.who.task_id.as_str()), "{ids:?}");
    rt.remove_by_id(t.who.task_id.as_str()).await.unwrap();
    assert_eq!(rt.adopt(&t).await.unwrap(), Found::Absent);
    let never = probe_task(h, "never", &[]);
    assert_eq!(rt.adopt(&never).await.unwrap(), Found::Absent);
    rt.stop(&never).await.unwrap();
    rt.remove(&never).await.unwrap();
}

pub async fn a_program_that_does_not_exist_is_a_fatal_error(h: &impl Harness) {
    let rt = h.runtime();
    let mut t = probe_task(h, "noexec", &[]);
    t.spec.container_spec.command = vec!["no-such-program-flotilla".into()];
    let err = match prepare(rt, &t).await {
        Err(e) => e,
        Ok(()) => rt.start(&t).await.expect_err("start fails"),
    };
    assert!(!err.temporary, "{err:?}");
    assert!(err.message.contains("no-such-program-flotilla"), "{err}");
    rt.remove(&t).await.unwrap();
}

pub async fn health_probes_pass_fail_and_time_out(h: &impl Harness) {
    let rt = h.runtime();
    let t = probe_task(h, "health", &[]);
    let port = run(rt, &t).await;
    get(port, "/health").await;
    let check = |path: &str| {
        HealthTest::Exec(vec!["flotilla".into(), "probe".into(), "check".into(), path.into()])
    };
    let ok = rt.probe(&t, &check("/health"), Duration::from_secs(10)).await.unwrap();
    assert!(ok.passed, "{ok:?}");
    let slow = rt.probe(&t, &check("/slow?ms=5000"), Duration::from_millis(500)).await.unwrap();
    assert!(!slow.passed && slow.output.contains("exceeded timeout"), "{slow:?}");
    get(port, "/fail-health").await;
    let bad = rt.probe(&t, &check("/health"), Duration::from_secs(10)).await.unwrap();
    assert!(!bad.passed && bad.output.contains("503"), "{bad:?}");
    rt.stop(&t).await.unwrap();
    rt.remove(&t).await.unwrap();
}

/// Declares one `#[tokio::test]` per suite case for the harness made by `$make`.
#[macro_export]
macro_rules! runtime_suite {
    ($make:path) => {
        $crate::runtime_suite!(@cases $make;
            a_task_that_exits_0_completes,
            a_nonzero_exit_code_is_reported,
            the_task_answers_on_its_port_with_its_environment,
            stop_ends_the_task_with_its_stop_signal,
            a_task_ignoring_the_stop_signal_is_killed_after_the_grace_period,
            configs_and_secrets_are_files_at_their_targets,
            logs_are_kept_after_exit_and_read_with_tail_and_since,
            a_follower_gets_new_lines_until_the_task_exits,
            a_restarted_agent_adopts_the_running_task_and_learns_its_exit_code,
            a_prepared_task_is_found_prepared_and_unknown_ones_absent,
            a_program_that_does_not_exist_is_a_fatal_error,
            health_probes_pass_fail_and_time_out,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let h = $make(stringify!($case)).await;
                runtime_suite::$case(&h).await;
            }
        )*
    };
}
