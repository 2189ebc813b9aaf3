//! The dispatcher over loopback HTTP with in-process managers and a hand-driven agent
//! (`DispatcherClient`): credentials, sessions, assignments with exactly the secrets a node's
//! tasks use, status reports, heartbeats and the DOWN verdict, log routing, and forwarding
//! from a follower.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::dispatcher::{
    Assignment, AssignmentChange, Assignments, AssignmentsKind, AssignmentsQuery, LogChunk,
    LogLine, LogOptions, LogStream, LogSubscription, RegisterRequest, StatusReport,
    TaskStatusUpdate,
};
use reconciler_api::operator::{JoinRequest, SecretCreate, SecretView};
use reconciler_api::{ApiError, ClientError, DispatcherClient};
use reconciler_manager::dispatcher::DispatcherConfig;
use reconciler_manager::{ApiClient, ManagerOptions, RunningManager, StartMode, start_manager};
use reconciler_store::{Expect, StoreCommand};
use reconciler_types::{
    MonoTime, NodeDescription, NodeId, NodeRole, NodeState, SecretReference, Task, TaskId,
    TaskState, TaskStatus,
};
use std::path::Path;
use std::time::Duration;

const PERIOD: Duration = Duration::from_millis(300);

fn options(dir: &Path, mode: StartMode, host: &str) -> ManagerOptions {
    ManagerOptions {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: String::new(),
        mode,
        hostname: host.to_owned(),
        snapshot_every: 1000,
        autolock: false,
        unlock_key: None,
        dispatcher: DispatcherConfig::default(),
        dispatcher_heartbeat: Some(PERIOD),
        // Plain HTTP: these tests speak the dispatcher protocol with the node credential.
        insecure: true,
        cert_expiry: reconciler_manager::pki::DEFAULT_CERT_EXPIRY,
        source: None,
    }
}

fn client(m: &RunningManager) -> ApiClient {
    let token = m.manager.identity.api_token.clone();
    ApiClient::new(&m.local_addr.to_string(), &token, Duration::from_secs(10)).unwrap()
}

/// Joins a worker named `host` and answers its dispatcher client (on manager `via`).
async fn worker(m: &RunningManager, via: &RunningManager, host: &str) -> DispatcherClient {
    let token = client(m).join_token("worker", false).await.unwrap().token;
    let http = reqwest::Client::new();
    let req = JoinRequest {
        token,
        role: NodeRole::Worker,
        node_id: Some(NodeId::new(host)),
        hostname: host.to_owned(),
        addr: format!("{host}.example:0"),
        csr: None,
    };
    let joined =
        reconciler_api::client::join(&http, &m.local_addr.to_string(), &req).await.unwrap();
    let credential = joined.node_credential.expect("a worker gets its own credential");
    assert!(credential.starts_with(&format!("FLTNODE-1-{host}-")));
    DispatcherClient::new(&via.local_addr.to_string(), &credential, http)
}

/// Heartbeats `session` every 100 ms until the test ends.
fn heartbeats(client: &DispatcherClient, session: &str) -> tokio::task::JoinHandle<()> {
    let (client, session) = (client.clone(), session.to_owned());
    tokio::spawn(async move {
        loop {
            let _ = client.heartbeat(&session).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn register_request(cpus: i64) -> RegisterRequest {
    let mut description = NodeDescription {
        nano_cpus: cpus * 1_000_000_000,
        memory_bytes: 1 << 30,
        ..Default::default()
    };
    description.platform.os = "linux".into();
    RegisterRequest { description, addr: "10.1.2.3".into(), runtimes: vec!["process".into()] }
}

async fn wait_until(
    m: &RunningManager,
    what: &str,
    f: impl Fn(&reconciler_store::ClusterState) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !m.manager.node.state.read(|s| f(&s.state)) {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn node_state(s: &reconciler_store::ClusterState, id: &str) -> (NodeState, String) {
    let n = &s.nodes[&NodeId::new(id)].node;
    (n.status.state, n.status.message.clone())
}

fn task_on(id: &str, node: &str, secret: &str) -> Task {
    let mut t =
        Task { id: TaskId::new(id), node_id: Some(NodeId::new(node)), slot: 1, ..Task::default() };
    t.desired_state = TaskState::Running;
    t.status.state = TaskState::Assigned;
    t.spec
        .container_spec
        .secrets
        .push(SecretReference { secret_name: secret.into(), ..Default::default() });
    t
}

fn secrets_in(a: &Assignments) -> Vec<(String, String)> {
    a.changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Update { assignment: Assignment::Secret(f) } => {
                Some((f.name.clone(), String::from_utf8_lossy(&f.data).into_owned()))
            }
            _ => None,
        })
        .collect()
}

fn tasks_in(a: &Assignments) -> Vec<String> {
    a.changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Update { assignment: Assignment::Task(t) } => {
                Some(t.task.id.to_string())
            }
            _ => None,
        })
        .collect()
}

fn api_err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ApiError {
    match r {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_node_is_ready_gets_only_its_own_secrets_and_reports_its_own_tasks() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let c = client(&m1);
    let (a, b) = (worker(&m1, &m1, "a").await, worker(&m1, &m1, "b").await);
    println!("=== register: description, address and READY go through raft");
    let sa = a.register(&register_request(4)).await.unwrap();
    let sb = b.register(&register_request(2)).await.unwrap();
    // Both nodes keep their sessions (300 ms periods) however slow the machine is.
    let _beats = [heartbeats(&a, &sa.session), heartbeats(&b, &sb.session)];
    assert_eq!(sa.node_id, NodeId::new("a"));
    assert!(sa.heartbeat_period_ms >= 270 && sa.heartbeat_period_ms <= 330, "{sa:?}");
    assert_eq!(sa.managers, [m1.local_addr.to_string()]);
    let state = m1.manager.node.state.snapshot();
    let node_a = &state.nodes[&NodeId::new("a")].node;
    assert_eq!(node_a.status.state, NodeState::Ready);
    assert_eq!(
        (node_a.status.addr.as_str(), node_a.description.nano_cpus),
        ("10.1.2.3", 4_000_000_000)
    );
    assert_eq!(node_a.description.hostname, "a", "an empty hostname keeps the joined one");
    println!("=== two secrets, one task on each node");
    for (name, value) in [("for_a", "apple"), ("for_b", "banana")] {
        let s = SecretCreate { name: name.into(), labels: Default::default(), data: value.into() };
        let _: SecretView = c.post("/v1/secrets", &s).await.unwrap();
    }
    for t in [task_on("t1", "a", "for_a"), task_on("t2", "b", "for_b")] {
        c.write(StoreCommand::PutTask { task: Box::new(t), expected: Expect::Absent })
            .await
            .unwrap();
    }
    let q = |s: &str, since| AssignmentsQuery { session: s.to_owned(), since, wait_ms: 2000 };
    let first = a.assignments(&q(&sa.session, 0)).await.unwrap();
    assert_eq!((first.kind, first.generation), (AssignmentsKind::Complete, 1));
    assert_eq!(tasks_in(&first), ["t1"]);
    assert_eq!(secrets_in(&first), [("for_a".to_owned(), "apple".to_owned())]);
    let of_b = b.assignments(&q(&sb.session, 0)).await.unwrap();
    assert_eq!(secrets_in(&of_b), [("for_b".to_owned(), "banana".to_owned())]);
    println!("=== reports: own task recorded, another node's and backwards refused");
    let status =
        |state| TaskStatus { state, timestamp: MonoTime::from_secs(1), ..TaskStatus::default() };
    let report = StatusReport {
        session: sa.session.clone(),
        updates: vec![
            TaskStatusUpdate { task_id: TaskId::new("t1"), status: status(TaskState::Running) },
            TaskStatusUpdate { task_id: TaskId::new("t2"), status: status(TaskState::Running) },
            TaskStatusUpdate { task_id: TaskId::new("t9"), status: status(TaskState::Running) },
        ],
    };
    let ack = a.report(&report).await.unwrap();
    let refused: Vec<String> = ack.refused.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(refused, ["task t2 is not assigned to this node", "task t9 not found"]);
    let t1 = m1.manager.node.state.read(|s| s.state.tasks[&TaskId::new("t1")].task.status.state);
    assert_eq!(t1, TaskState::Running, "an acknowledged report is committed");
    let back = StatusReport {
        session: sa.session.clone(),
        updates: vec![TaskStatusUpdate {
            task_id: TaskId::new("t1"),
            status: status(TaskState::Starting),
        }],
    };
    assert!(a.report(&back).await.unwrap().refused[0].reason.contains("cannot go back"));
    println!("=== the agent's own report is not echoed; a desired-state change is");
    let quiet = AssignmentsQuery { wait_ms: 300, ..q(&sa.session, 1) };
    let idle = a.assignments(&quiet).await.unwrap();
    assert!(idle.changes.is_empty() && idle.generation == 1, "{idle:?}");
    let shut = StoreCommand::SetTaskDesiredState {
        id: TaskId::new("t1"),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    let poll = tokio::spawn({
        let a = a.clone();
        let query = q(&sa.session, 1);
        async move { a.assignments(&query).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.write(shut).await.unwrap();
    let woken = poll.await.unwrap().unwrap();
    assert_eq!(
        (woken.kind, woken.applies_to, woken.generation),
        (AssignmentsKind::Incremental, 1, 2)
    );
    assert_eq!(tasks_in(&woken), ["t1"]);
    println!("=== a session from another call is refused");
    let stale = api_err(a.heartbeat("not-a-session").await);
    assert!(matches!(stale, ApiError::NotFound(_)), "{stale:?}");
    m1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_goes_down_and_a_removed_nodes_credential_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let a = worker(&m1, &m1, "a").await;
    let s = a.register(&register_request(1)).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(PERIOD).await;
        a.heartbeat(&s.session).await.unwrap();
    }
    assert_eq!(m1.manager.node.state.read(|st| node_state(&st.state, "a")).0, NodeState::Ready);
    println!("=== stop heartbeating");
    let silent = std::time::Instant::now();
    wait_until(&m1, "a is down", |st| node_state(st, "a").0 == NodeState::Down).await;
    let took = silent.elapsed();
    assert!(took >= PERIOD * 27 / 10, "down after {took:?}, before 3 periods");
    assert_eq!(m1.manager.node.state.read(|st| node_state(&st.state, "a")).1, "heartbeat failure");
    assert!(matches!(api_err(a.heartbeat(&s.session).await), ApiError::NotFound(_)));
    println!("=== the node registers again, then is removed: its credential stops working");
    a.register(&register_request(1)).await.unwrap();
    client(&m1).remove_node("a", true).await.unwrap();
    assert_eq!(api_err(a.register(&register_request(1)).await), ApiError::Unauthorized);
    assert_eq!(api_err(a.heartbeat(&s.session).await), ApiError::Unauthorized);
    m1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forwards_agent_calls_and_log_chunks_reach_the_subscriber() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let token = client(&m1).join_token("manager", false).await.unwrap().token;
    let mode = StartMode::Join { addr: m1.local_addr.to_string(), token };
    let m2 = start_manager(options(&root.path().join("m2"), mode, "m2")).await.unwrap();
    let credential_file = std::fs::read_to_string(root.path().join("m2/node-credential")).unwrap();
    assert!(credential_file.starts_with("FLTNODE-1-"), "a manager keeps its own credential");
    let a = worker(&m1, &m2, "a").await;
    let s = a.register(&register_request(1)).await.unwrap();
    assert!(
        m1.manager.dispatcher.has_session(&NodeId::new("a")),
        "the session lives on the leader"
    );
    assert!(!m2.manager.dispatcher.has_session(&NodeId::new("a")));
    let sub = LogSubscription {
        id: "L1".into(),
        tasks: vec![TaskId::new("t1")],
        options: LogOptions { follow: true, ..Default::default() },
    };
    let mut rx = m1.manager.dispatcher.subscribe_logs(&NodeId::new("a"), sub.clone());
    let q = AssignmentsQuery { session: s.session.clone(), since: 0, wait_ms: 1000 };
    let first = a.assignments(&q).await.unwrap();
    assert_eq!(first.log_subscriptions, [sub]);
    let line = LogLine {
        task_id: TaskId::new("t1"),
        timestamp: MonoTime::from_secs(3),
        stream: LogStream::Stdout,
        line: "hello".into(),
    };
    let chunk = LogChunk {
        session: s.session.clone(),
        subscription: "L1".into(),
        lines: vec![line.clone()],
        done: false,
    };
    assert!(!a.publish_logs(&chunk).await.unwrap().cancelled);
    assert_eq!(rx.recv().await.unwrap().lines, [line]);
    drop(rx);
    assert!(a.publish_logs(&chunk).await.unwrap().cancelled, "a dropped subscriber cancels");
    m2.shutdown().await;
    m1.shutdown().await;
}
