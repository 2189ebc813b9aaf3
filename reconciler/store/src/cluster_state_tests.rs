use super::*;
use reconciler_types::{TaskState, TaskStatus};

fn node(id: &str) -> Node {
    let mut n = Node { id: NodeId::new(id), ..Node::default() };
    n.description.hostname = format!("host-{id}");
    n
}

fn service(name: &str, replicas: u64) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        mode: reconciler_types::ServiceMode::Replicated { replicas },
        ..ServiceSpec::default()
    }
}

fn task(id: &str) -> Task {
    Task { id: TaskId::new(id), service_id: ServiceId::new("s1"), slot: 1, ..Task::default() }
}

fn info() -> ClusterInfo {
    ClusterInfo {
        id: "c1".into(),
        digest: "d".into(),
        worker_secret: "w".into(),
        manager_secret: "m".into(),
        api_token: "a".into(),
        peer_token: "p".into(),
        autolock_fingerprint: None,
        version: 0,
    }
}

#[test]
fn init_cluster_is_refused_the_second_time() {
    let mut s = ClusterState::default();
    assert_eq!(s.apply(&StoreCommand::InitCluster { info: info() }, 1).into_result(), Ok(1));
    let again = s.apply(&StoreCommand::InitCluster { info: info() }, 2);
    assert_eq!(again.refusal, Some(Refusal::AlreadyInitialized));
    assert_eq!(s.cluster.as_ref().map(|c| c.version), Some(1));
    assert_eq!(s.last_index, 2);
}

#[test]
fn set_join_secret_replaces_only_that_role_and_checks_version() {
    let mut s = ClusterState::default();
    s.apply(&StoreCommand::InitCluster { info: info() }, 1);
    let stale = StoreCommand::SetJoinSecret {
        role: NodeRole::Worker,
        secret: "w2".into(),
        expected: Expect::Version(7),
    };
    assert!(matches!(s.apply(&stale, 2).refusal, Some(Refusal::VersionMismatch { .. })));
    let ok = StoreCommand::SetJoinSecret {
        role: NodeRole::Worker,
        secret: "w2".into(),
        expected: Expect::Version(1),
    };
    assert_eq!(s.apply(&ok, 3).into_result(), Ok(3));
    let c = s.cluster.as_ref().unwrap();
    assert_eq!((c.worker_secret.as_str(), c.manager_secret.as_str()), ("w2", "m"));
}

#[test]
fn put_node_with_absent_is_refused_when_the_id_is_in_use() {
    let mut s = ClusterState::default();
    let put = StoreCommand::PutNode { node: node("n1"), expected: Expect::Absent };
    assert_eq!(s.apply(&put, 1).into_result(), Ok(1));
    let r = s.apply(&put, 2).into_result();
    assert_eq!(
        r,
        Err(Refusal::VersionMismatch {
            kind: RecordKind::Node,
            id: "n1".into(),
            expected: Expect::Absent,
            actual: Some(1),
        })
    );
    assert_eq!(s.nodes[&NodeId::new("n1")].version, 1);
}

#[test]
fn remove_of_a_missing_record_is_not_found() {
    let mut s = ClusterState::default();
    let r = s.apply(&StoreCommand::RemoveNode { id: "x".into(), expected: Expect::Any }, 1);
    assert_eq!(r.refusal, Some(Refusal::NotFound { kind: RecordKind::Node, id: "x".into() }));
}

#[test]
fn put_service_keeps_the_replaced_spec_as_previous() {
    let mut s = ClusterState::default();
    let id = ServiceId::new("s1");
    let v1 = StoreCommand::PutService {
        id: id.clone(),
        spec: service("web", 1),
        expected: Expect::Absent,
    };
    s.apply(&v1, 5);
    let v2 = StoreCommand::PutService {
        id: id.clone(),
        spec: service("web", 3),
        expected: Expect::Version(5),
    };
    assert_eq!(s.apply(&v2, 6).into_result(), Ok(6));
    let rec = &s.services[&id];
    assert_eq!(rec.spec.replicas(), Some(3));
    assert_eq!(rec.previous_spec.as_ref().and_then(|p| p.replicas()), Some(1));
    assert_eq!(rec.version, 6);
}

#[test]
fn put_service_with_a_stale_version_changes_nothing() {
    let mut s = ClusterState::default();
    let id = ServiceId::new("s1");
    s.apply(
        &StoreCommand::PutService {
            id: id.clone(),
            spec: service("web", 1),
            expected: Expect::Absent,
        },
        1,
    );
    s.apply(
        &StoreCommand::PutService {
            id: id.clone(),
            spec: service("web", 2),
            expected: Expect::Version(1),
        },
        2,
    );
    let before = s.services.clone();
    let lost_update = StoreCommand::PutService {
        id: id.clone(),
        spec: service("web", 9),
        expected: Expect::Version(1),
    };
    assert!(s.apply(&lost_update, 3).refusal.is_some());
    assert_eq!(s.services, before);
}

#[test]
fn task_status_only_moves_forward() {
    let mut s = ClusterState::default();
    s.apply(&StoreCommand::PutTask { task: task("t1"), expected: Expect::Absent }, 1);
    let running = TaskStatus { state: TaskState::Running, ..TaskStatus::default() };
    let set = StoreCommand::SetTaskStatus { id: "t1".into(), status: running };
    assert_eq!(s.apply(&set, 2).into_result(), Ok(2));
    let back = TaskStatus { state: TaskState::Assigned, ..TaskStatus::default() };
    let r = s.apply(&StoreCommand::SetTaskStatus { id: "t1".into(), status: back }, 3);
    assert!(matches!(r.refusal, Some(Refusal::StaleStatus { .. })));
    assert_eq!(s.tasks[&TaskId::new("t1")].task.status.state, TaskState::Running);
}

#[test]
fn desired_state_write_checks_the_task_version() {
    let mut s = ClusterState::default();
    s.apply(&StoreCommand::PutTask { task: task("t1"), expected: Expect::Absent }, 1);
    let cmd = StoreCommand::SetTaskDesiredState {
        id: "t1".into(),
        state: TaskState::Shutdown,
        expected: Expect::Version(1),
    };
    assert_eq!(s.apply(&cmd, 2).into_result(), Ok(2));
    assert!(s.apply(&cmd, 3).refusal.is_some(), "the same CAS a second time must fail");
    assert_eq!(s.tasks[&TaskId::new("t1")].task.desired_state, TaskState::Shutdown);
}

#[test]
fn batch_is_all_or_nothing() {
    let mut s = ClusterState::default();
    let batch = StoreCommand::Batch {
        commands: vec![
            StoreCommand::PutTask { task: task("t1"), expected: Expect::Absent },
            StoreCommand::PutTask { task: task("t2"), expected: Expect::Absent },
            StoreCommand::RemoveTask { id: "missing".into(), expected: Expect::Any },
        ],
    };
    assert!(s.apply(&batch, 1).refusal.is_some());
    assert!(s.tasks.is_empty());
    let ok = StoreCommand::Batch {
        commands: vec![
            StoreCommand::PutTask { task: task("t1"), expected: Expect::Absent },
            StoreCommand::PutTask { task: task("t2"), expected: Expect::Absent },
        ],
    };
    assert_eq!(s.apply(&ok, 2).into_result(), Ok(2));
    assert_eq!(s.tasks.len(), 2);
}

#[test]
fn configs_secrets_networks_and_rollouts_round_trip() {
    let mut s = ClusterState::default();
    let cfg = ConfigRecord { name: "c".into(), data: b"x".to_vec(), ..ConfigRecord::default() };
    let sec = SecretRecord { name: "s".into(), sealed: vec![1, 2], ..SecretRecord::default() };
    let net = NetworkSpec { name: "n".into(), ..NetworkSpec::default() };
    let cmds = [
        StoreCommand::PutConfig { config: cfg, expected: Expect::Absent },
        StoreCommand::PutSecret { secret: sec, expected: Expect::Absent },
        StoreCommand::PutNetwork { spec: net, expected: Expect::Absent },
        StoreCommand::PutRollout {
            service: "s1".into(),
            progress: serde_json::json!({"step": 2}),
            expected: Expect::Absent,
        },
    ];
    for (i, c) in cmds.iter().enumerate() {
        assert_eq!(s.apply(c, i as u64 + 1).refusal, None, "{c:?}");
    }
    assert_eq!(s.configs["c"].version, 1);
    assert_eq!(s.secrets["s"].version, 2);
    assert_eq!(s.networks["n"].version, 3);
    assert_eq!(s.rollouts[&ServiceId::new("s1")].progress["step"], 2);
    let rm = StoreCommand::RemoveSecret { name: "s".into(), expected: Expect::Version(2) };
    assert_eq!(s.apply(&rm, 5).refusal, None);
    assert!(s.secrets.is_empty());
}

#[test]
fn stack_history_appends_and_keeps_a_bounded_tail() {
    let mut s = ClusterState::default();
    let stack = StackName::new("shop");
    for i in 0..(STACK_HISTORY_LIMIT as u64 + 5) {
        let cmd = StoreCommand::RecordStackCommit {
            stack: stack.clone(),
            commit: format!("c{i}"),
            expected: Expect::Any,
        };
        s.apply(&cmd, i + 1);
    }
    let h = &s.stacks[&stack];
    assert_eq!(h.applied.len(), STACK_HISTORY_LIMIT);
    assert_eq!(h.applied.first().map(|c| c.commit.as_str()), Some("c5"));
    assert_eq!(h.applied.last().map(|c| c.index), Some(STACK_HISTORY_LIMIT as u64 + 5));
}

#[test]
fn secret_and_cluster_debug_output_hides_values() {
    let sec =
        SecretRecord { name: "db".into(), sealed: b"hunter2".to_vec(), ..SecretRecord::default() };
    let text = format!("{sec:?} {:?}", info());
    assert!(!text.contains("104, 117") && !text.contains("hunter2"));
    assert!(!text.contains("worker_secret") && !text.contains("api_token"));
}

#[test]
fn managers_are_indexed_by_raft_id() {
    let mut s = ClusterState::default();
    let mut m = node("m1");
    m.spec.role = NodeRole::Manager;
    m.manager_status = Some(reconciler_types::ManagerStatus { raft_id: 7, ..Default::default() });
    s.apply(&StoreCommand::PutNode { node: m, expected: Expect::Absent }, 1);
    s.apply(&StoreCommand::PutNode { node: node("w1"), expected: Expect::Absent }, 2);
    assert_eq!(s.managers().len(), 1);
    assert_eq!(s.node_by_raft_id(7).map(|n| n.id.as_str()), Some("m1"));
    assert_eq!(s.max_raft_id(), 7);
}
