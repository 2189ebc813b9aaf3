//! `ClusterState::apply`, command by command, refusals included.

use super::objects::{MAX_CONFIG_SIZE, MAX_SECRET_SIZE};
use super::*;
use crate::rollout::{Rollout, RolloutTarget};
use crate::slot::TaskIdAllocator;
use reconciler_types::{
    ConfigReference, MonoTime, NetworkSpec, NodeDescription, NodeStatus, PortConfig, PortProtocol,
    PublishMode, ServiceMode, ServiceSpec, TaskState, TaskStatus, UpdateConfig, UpdateState,
    UpdateStatus,
};

fn node(id: &str) -> Node {
    let mut n = Node { id: NodeId::new(id), ..Node::default() };
    n.description.hostname = format!("host-{id}");
    n
}

fn service(name: &str, replicas: u64) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        mode: ServiceMode::Replicated { replicas },
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
        ca: None,
        version: 0,
    }
}

/// A state and a log index that advances with every command.
struct Log {
    s: ClusterState,
    index: u64,
}

impl Log {
    fn new() -> Log {
        Log { s: ClusterState::default(), index: 0 }
    }

    fn apply(&mut self, cmd: StoreCommand) -> Result<u64, Refusal> {
        self.index += 1;
        self.s.apply(&cmd, self.index).into_result()
    }

    fn create(&mut self, id: &str, spec: ServiceSpec) -> Result<u64, Refusal> {
        self.apply(StoreCommand::CreateService { id: ServiceId::new(id), spec: Box::new(spec) })
    }

    fn update(&mut self, id: &str, spec: ServiceSpec) -> Result<u64, Refusal> {
        self.apply(StoreCommand::UpdateService {
            id: ServiceId::new(id),
            spec: Box::new(spec),
            expected: Expect::Any,
        })
    }

    fn svc(&self, id: &str) -> &ServiceRecord {
        &self.s.services[&ServiceId::new(id)]
    }
}

fn image(spec: &ServiceSpec, image: &str) -> ServiceSpec {
    let mut s = spec.clone();
    s.task_template.container_spec.image = image.into();
    s
}

#[test]
fn init_cluster_is_refused_the_second_time() {
    let mut s = ClusterState::default();
    assert_eq!(
        s.apply(&StoreCommand::InitCluster { info: Box::new(info()) }, 1).into_result(),
        Ok(1)
    );
    let again = s.apply(&StoreCommand::InitCluster { info: Box::new(info()) }, 2);
    assert_eq!(again.refusal, Some(Refusal::AlreadyInitialized));
    assert_eq!(s.cluster.as_ref().map(|c| c.version), Some(1));
    assert_eq!(s.last_index, 2);
}

#[test]
fn set_join_secret_replaces_only_that_role_and_checks_version() {
    let mut s = ClusterState::default();
    let missing = StoreCommand::SetJoinSecret {
        role: NodeRole::Worker,
        secret: "w2".into(),
        expected: Expect::Any,
    };
    assert!(matches!(s.apply(&missing, 1).refusal, Some(Refusal::NotFound { .. })));
    s.apply(&StoreCommand::InitCluster { info: Box::new(info()) }, 2);
    let stale = StoreCommand::SetJoinSecret {
        role: NodeRole::Worker,
        secret: "w2".into(),
        expected: Expect::Version(7),
    };
    assert!(matches!(s.apply(&stale, 3).refusal, Some(Refusal::VersionMismatch { .. })));
    let ok = StoreCommand::SetJoinSecret {
        role: NodeRole::Worker,
        secret: "w2".into(),
        expected: Expect::Version(2),
    };
    assert_eq!(s.apply(&ok, 4).into_result(), Ok(4));
    let c = s.cluster.as_ref().unwrap();
    assert_eq!((c.worker_secret.as_str(), c.manager_secret.as_str()), ("w2", "m"));
}

#[test]
fn settings_default_to_swarms_and_change_under_their_version() {
    let mut l = Log::new();
    assert_eq!(l.s.settings.task_history_limit, 5);
    assert_eq!(l.s.settings.dispatcher_heartbeat, std::time::Duration::from_secs(5));
    let settings = ClusterSettings { task_history_limit: 2, ..ClusterSettings::default() };
    let stale = StoreCommand::SetSettings { settings, expected: Expect::Version(9) };
    assert!(matches!(l.apply(stale), Err(Refusal::VersionMismatch { .. })));
    let ok = StoreCommand::SetSettings { settings, expected: Expect::Version(0) };
    assert_eq!(l.apply(ok), Ok(2));
    assert_eq!((l.s.settings.task_history_limit, l.s.settings.version), (2, 2));
}

#[test]
fn put_node_with_absent_is_refused_when_the_id_is_in_use() {
    let mut s = ClusterState::default();
    let put = StoreCommand::PutNode { node: Box::new(node("n1")), expected: Expect::Absent };
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
fn a_joined_node_takes_the_description_and_status_its_agent_reports() {
    let mut l = Log::new();
    l.apply(StoreCommand::PutNode { node: Box::new(node("n1")), expected: Expect::Absent })
        .unwrap();
    let mut description =
        NodeDescription { nano_cpus: 2_000_000_000, ..NodeDescription::default() };
    description.platform.os = "linux".into();
    let status = NodeStatus { state: NodeState::Ready, ..NodeStatus::default() };
    let id = NodeId::new("n1");
    l.apply(StoreCommand::SetNodeDescription {
        id: id.clone(),
        description: Box::new(description.clone()),
    })
    .unwrap();
    assert_eq!(l.apply(StoreCommand::SetNodeStatus { id: id.clone(), status }), Ok(3));
    let n = &l.s.nodes[&id];
    assert_eq!(
        (&n.node.description, n.node.status.state, n.version),
        (&description, NodeState::Ready, 3)
    );
    let ghost = StoreCommand::SetNodeStatus { id: NodeId::new("x"), status: NodeStatus::default() };
    assert!(matches!(l.apply(ghost), Err(Refusal::NotFound { kind: RecordKind::Node, .. })));
}

#[test]
fn a_node_credential_digest_survives_node_updates_and_goes_with_the_node() {
    let mut l = Log::new();
    let id = NodeId::new("n1");
    let set = StoreCommand::SetNodeCredential { id: id.clone(), digest: "d1".into() };
    assert!(matches!(l.apply(set.clone()), Err(Refusal::NotFound { .. })));
    l.apply(StoreCommand::PutNode { node: Box::new(node("n1")), expected: Expect::Absent })
        .unwrap();
    let v = l.apply(set).unwrap();
    let mut drained = node("n1");
    drained.spec.availability = reconciler_types::Availability::Drain;
    l.apply(StoreCommand::PutNode { node: Box::new(drained), expected: Expect::Version(v) })
        .unwrap();
    assert_eq!(l.s.nodes[&id].credential_digest.as_deref(), Some("d1"));
    l.apply(StoreCommand::RemoveNode { id: id.clone(), expected: Expect::Any }).unwrap();
    l.apply(StoreCommand::PutNode { node: Box::new(node("n1")), expected: Expect::Absent })
        .unwrap();
    assert_eq!(l.s.nodes[&id].credential_digest, None, "a node added again has no credential");
}

#[test]
fn remove_of_a_missing_record_is_not_found_and_a_stale_one_is_refused() {
    let mut l = Log::new();
    let r = l.apply(StoreCommand::RemoveNode { id: "x".into(), expected: Expect::Any });
    assert_eq!(r, Err(Refusal::NotFound { kind: RecordKind::Node, id: "x".into() }));
    l.apply(StoreCommand::PutNode { node: Box::new(node("n1")), expected: Expect::Absent })
        .unwrap();
    let stale = StoreCommand::RemoveNode { id: "n1".into(), expected: Expect::Version(7) };
    assert!(l.apply(stale).is_err());
    assert_eq!(
        l.apply(StoreCommand::RemoveNode { id: "n1".into(), expected: Expect::Version(2) }),
        Ok(4)
    );
    assert!(l.s.nodes.is_empty());
}

#[test]
fn create_service_allocates_spec_versions_and_refuses_an_existing_id() {
    let mut l = Log::new();
    l.create("a", service("a", 1)).unwrap();
    l.create("b", service("b", 1)).unwrap();
    assert_eq!((l.svc("a").spec_version, l.svc("b").spec_version), (1, 2));
    assert_eq!(
        (l.svc("a").update_status.as_ref(), l.svc("a").previous_spec.as_ref()),
        (None, None)
    );
    let again = l.create("a", service("a", 3));
    assert!(matches!(again, Err(Refusal::VersionMismatch { expected: Expect::Absent, .. })));
    assert_eq!(l.svc("a").spec.replicas(), Some(1));
    assert_eq!(l.s.counters.next_spec_version, 3, "a refused create allocates nothing");
}

#[test]
fn s42_update_with_an_identical_spec_still_bumps_the_version_and_keeps_previous_spec() {
    let mut l = Log::new();
    let spec = service("web", 2);
    l.create("web", spec.clone()).unwrap();
    l.update("web", image(&spec, "v2")).unwrap();
    let completed = UpdateStatus {
        state: UpdateState::Completed,
        message: "update completed".into(),
        started_at: None,
        completed_at: None,
    };
    l.apply(StoreCommand::SetUpdateStatus {
        service: ServiceId::new("web"),
        status: Some(completed),
    })
    .unwrap();
    let before = l.svc("web").spec_version;
    l.update("web", l.svc("web").spec.clone()).unwrap();
    let r = l.svc("web");
    assert_eq!(r.spec_version, before + 1, "the spec version changes");
    assert_eq!(r.previous_spec.as_ref(), Some(&r.spec), "PreviousSpec becomes identical to Spec");
    assert_eq!(r.previous_spec_version, Some(before));
    assert_eq!(r.update_status, None, "UpdateStatus is nil, not completed");
}

#[test]
fn s50_mode_change_is_refused_and_changes_nothing() {
    let mut l = Log::new();
    l.create("web", service("web", 2)).unwrap();
    let before = l.s.clone();
    let global = ServiceSpec { mode: ServiceMode::Global, ..service("web", 2) };
    assert_eq!(
        l.update("web", global),
        Err(Refusal::Invalid { message: "service mode change is not allowed".into() })
    );
    assert_eq!(l.s.services, before.services);
    assert_eq!(l.s.counters, before.counters);
}

#[test]
fn put_service_creates_then_updates_under_compare_and_set() {
    let mut s = ClusterState::default();
    let id = ServiceId::new("s1");
    let v1 = StoreCommand::PutService {
        id: id.clone(),
        spec: Box::new(service("web", 1)),
        expected: Expect::Absent,
    };
    s.apply(&v1, 5);
    let v2 = StoreCommand::PutService {
        id: id.clone(),
        spec: Box::new(service("web", 3)),
        expected: Expect::Version(5),
    };
    assert_eq!(s.apply(&v2, 6).into_result(), Ok(6));
    let rec = &s.services[&id];
    assert_eq!(rec.spec.replicas(), Some(3));
    assert_eq!(rec.previous_spec.as_ref().and_then(|p| p.replicas()), Some(1));
    assert_eq!((rec.version, rec.spec_version, rec.previous_spec_version), (6, 2, Some(1)));
    let before = s.services.clone();
    let lost_update = StoreCommand::PutService {
        id: id.clone(),
        spec: Box::new(service("web", 9)),
        expected: Expect::Version(5),
    };
    assert!(s.apply(&lost_update, 7).refusal.is_some());
    assert_eq!(s.services, before);
}

#[test]
fn s34_manual_rollback_swaps_spec_and_version_and_sets_swarms_status() {
    let mut l = Log::new();
    let v1 = service("web", 2);
    l.create("web", v1.clone()).unwrap();
    l.update("web", image(&v1, "v2")).unwrap();
    let id = ServiceId::new("web");
    let rollback = |at| StoreCommand::RollbackService {
        id: id.clone(),
        expected: Expect::Any,
        at: MonoTime::from_secs(at),
    };
    l.apply(rollback(30)).unwrap();
    let r = l.svc("web");
    assert_eq!((r.spec.task_template.container_spec.image.as_str(), r.spec_version), ("", 1));
    assert_eq!(r.previous_spec_version, Some(2));
    assert_eq!(
        r.update_status,
        Some(UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: "manually requested rollback".into(),
            started_at: Some(MonoTime::from_secs(30)),
            completed_at: None,
        })
    );
    l.apply(rollback(40)).unwrap();
    let r = l.svc("web");
    assert_eq!((r.spec.task_template.container_spec.image.as_str(), r.spec_version), ("v2", 2));
    assert_eq!(r.previous_spec_version, Some(1), "two rollbacks toggle");
}

#[test]
fn s35_rollback_after_an_automatic_rollback_is_refused_and_changes_nothing() {
    let mut l = Log::new();
    let v1 = service("web", 2);
    l.create("web", v1.clone()).unwrap();
    l.update("web", image(&v1, "v2")).unwrap();
    let status = UpdateStatus {
        state: UpdateState::RollbackStarted,
        message: "update rolled back due to failure or early termination of task t1".into(),
        started_at: None,
        completed_at: None,
    };
    l.apply(StoreCommand::AutoRollback { service: ServiceId::new("web"), status: status.clone() })
        .unwrap();
    let r = l.svc("web");
    assert_eq!(
        (r.spec_version, r.previous_spec.as_ref(), r.previous_spec_version),
        (1, None, None)
    );
    assert_eq!(r.update_status.as_ref(), Some(&status));
    let before = l.s.clone();
    let again = StoreCommand::RollbackService {
        id: ServiceId::new("web"),
        expected: Expect::Any,
        at: MonoTime::ZERO,
    };
    assert_eq!(
        l.apply(again),
        Err(Refusal::FailedPrecondition {
            message: "service web does not have a previous spec".into()
        })
    );
    assert_eq!(l.s.services, before.services);
    let only_status = StoreCommand::AutoRollback { service: ServiceId::new("web"), status };
    l.apply(only_status).unwrap();
    assert_eq!(l.svc("web").spec_version, 1, "without a previous spec only the status changes");
}

#[test]
fn update_status_and_removal_of_a_missing_service_are_not_found() {
    let mut l = Log::new();
    let set = StoreCommand::SetUpdateStatus { service: ServiceId::new("x"), status: None };
    assert!(matches!(l.apply(set), Err(Refusal::NotFound { kind: RecordKind::Service, .. })));
    let rm = StoreCommand::RemoveService { id: ServiceId::new("x"), expected: Expect::Any };
    assert!(matches!(l.apply(rm), Err(Refusal::NotFound { kind: RecordKind::Service, .. })));
}

fn a_rollout(service: &ServiceId) -> Rollout {
    let config = UpdateConfig::default();
    let target = RolloutTarget {
        service,
        spec_version: 2,
        update_config: &config,
        rollback_config: &config,
        status: None,
    };
    Rollout::start(&target, Vec::new(), MonoTime::ZERO, &mut TaskIdAllocator::default()).0
}

#[test]
fn remove_service_drops_its_rollout_and_restart_history() {
    let mut l = Log::new();
    l.create("web", service("web", 1)).unwrap();
    let id = ServiceId::new("web");
    let rollout = Box::new(a_rollout(&id));
    l.apply(StoreCommand::PutRollout { service: id.clone(), rollout, expected: Expect::Absent })
        .unwrap();
    l.apply(StoreCommand::RecordRestart {
        service: id.clone(),
        slot: SlotKey::Replica(1),
        spec_version: 1,
        at: MonoTime::ZERO,
    })
    .unwrap();
    l.apply(StoreCommand::RemoveService { id: id.clone(), expected: Expect::Version(7) })
        .unwrap_err();
    l.apply(StoreCommand::RemoveService { id: id.clone(), expected: Expect::Any }).unwrap();
    assert!(l.s.services.is_empty() && l.s.rollouts.is_empty() && l.s.restarts.is_empty());
}

#[test]
fn task_status_only_moves_forward() {
    let mut s = ClusterState::default();
    s.apply(&StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent }, 1);
    let running = TaskStatus { state: TaskState::Running, ..TaskStatus::default() };
    let set = StoreCommand::SetTaskStatus { id: "t1".into(), status: Box::new(running) };
    assert_eq!(s.apply(&set, 2).into_result(), Ok(2));
    let back = TaskStatus { state: TaskState::Assigned, ..TaskStatus::default() };
    let r = s.apply(&StoreCommand::SetTaskStatus { id: "t1".into(), status: Box::new(back) }, 3);
    assert!(matches!(r.refusal, Some(Refusal::StaleStatus { .. })));
    assert_eq!(s.tasks[&TaskId::new("t1")].task.status.state, TaskState::Running);
    let ghost =
        StoreCommand::SetTaskStatus { id: "x".into(), status: Box::new(TaskStatus::default()) };
    assert!(matches!(s.apply(&ghost, 4).refusal, Some(Refusal::NotFound { .. })));
}

#[test]
fn desired_state_write_checks_the_task_version() {
    let mut s = ClusterState::default();
    s.apply(&StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent }, 1);
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
fn assign_task_places_it_and_clears_the_scheduler_error() {
    let mut l = Log::new();
    let mut t = task("t1");
    t.status.state = TaskState::Pending;
    t.status.err = "no suitable node".into();
    l.apply(StoreCommand::PutTask { task: Box::new(t), expected: Expect::Absent }).unwrap();
    let assign = StoreCommand::AssignTask {
        id: "t1".into(),
        node: NodeId::new("n1"),
        message: "scheduler assigned task to node".into(),
        at: MonoTime::from_secs(3),
    };
    l.apply(assign).unwrap();
    let t = l.s.task(&TaskId::new("t1")).unwrap();
    assert_eq!(t.node_id, Some(NodeId::new("n1")));
    assert_eq!((t.status.state, t.status.err.as_str()), (TaskState::Assigned, ""));
    assert_eq!(
        (t.status.message.as_str(), t.status.timestamp),
        ("scheduler assigned task to node", MonoTime::from_secs(3))
    );
}

#[test]
fn held_starts_are_recorded_cleared_and_released_with_their_task() {
    let mut l = Log::new();
    let delay = DelayedStart {
        not_before: MonoTime::from_secs(5),
        wait_for: None,
        deadline: MonoTime::from_secs(60),
    };
    let hold = |id: &str| StoreCommand::DelayStart { task: id.into(), delay: delay.clone() };
    assert!(matches!(l.apply(hold("t1")), Err(Refusal::NotFound { kind: RecordKind::Task, .. })));
    l.apply(StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent })
        .unwrap();
    l.apply(StoreCommand::PutTask { task: Box::new(task("t2")), expected: Expect::Absent })
        .unwrap();
    l.apply(hold("t1")).unwrap();
    l.apply(hold("t2")).unwrap();
    l.apply(StoreCommand::ClearDelay { task: "t1".into() }).unwrap();
    l.apply(StoreCommand::ClearDelay { task: "t1".into() }).unwrap();
    assert_eq!(l.s.delayed.keys().collect::<Vec<_>>(), [&TaskId::new("t2")]);
    l.apply(StoreCommand::RemoveTask { id: "t2".into(), expected: Expect::Any }).unwrap();
    assert!(l.s.delayed.is_empty(), "a deleted task is no longer held");
}

#[test]
fn restart_history_is_kept_per_slot_and_spec_version() {
    let mut l = Log::new();
    let id = ServiceId::new("web");
    let record = |v, at| StoreCommand::RecordRestart {
        service: id.clone(),
        slot: SlotKey::Replica(1),
        spec_version: v,
        at: MonoTime::from_secs(at),
    };
    assert!(l.apply(record(1, 1)).is_err(), "no history for a service that does not exist");
    l.create("web", service("web", 1)).unwrap();
    l.apply(record(1, 1)).unwrap();
    l.apply(record(1, 7)).unwrap();
    let h = &l.s.restarts[&id][&SlotKey::Replica(1)];
    assert_eq!((h.spec_version, h.times.len()), (1, 2));
    l.apply(record(2, 9)).unwrap();
    let h = &l.s.restarts[&id][&SlotKey::Replica(1)];
    assert_eq!(
        (h.spec_version, h.times.clone()),
        (2, vec![MonoTime::from_secs(9)]),
        "a new spec version resets the history"
    );
}

#[test]
fn batch_is_all_or_nothing_down_to_the_counters() {
    let mut l = Log::new();
    let batch = StoreCommand::Batch {
        commands: vec![
            StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent },
            StoreCommand::CreateService {
                id: ServiceId::new("web"),
                spec: Box::new(service("web", 1)),
            },
            StoreCommand::Batch {
                commands: vec![StoreCommand::PutTask {
                    task: Box::new(task("t2")),
                    expected: Expect::Absent,
                }],
            },
            StoreCommand::RemoveTask { id: "missing".into(), expected: Expect::Any },
        ],
    };
    let before = l.s.clone();
    assert!(l.apply(batch).is_err());
    assert_eq!(ClusterState { last_index: 0, ..l.s.clone() }, before);
    let ok = StoreCommand::Batch {
        commands: vec![
            StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent },
            StoreCommand::PutTask { task: Box::new(task("t2")), expected: Expect::Absent },
        ],
    };
    assert_eq!(l.apply(ok), Ok(2));
    assert_eq!(l.s.tasks.len(), 2);
}

fn fence(epoch: u64, claim: bool, next_task_id: u64, task_ids: u64) -> Fence {
    Fence { epoch, claim, next_task_id, task_ids }
}

#[test]
fn an_orchestrator_batch_applies_only_behind_its_fence() {
    let mut l = Log::new();
    let create =
        |id: &str| StoreCommand::PutTask { task: Box::new(task(id)), expected: Expect::Absent };
    let stale = StoreCommand::Orchestrate {
        fence: fence(0, false, 0, 1),
        commands: vec![create("t000000")],
    };
    // Epoch 0 is nobody's: a batch must claim one first.
    let claim = StoreCommand::Orchestrate {
        fence: fence(3, true, 0, 1),
        commands: vec![create("t000000")],
    };
    assert_eq!(l.apply(claim), Ok(1));
    assert_eq!((l.s.counters.orchestrator_epoch, l.s.counters.next_task_id), (3, 1));
    assert!(matches!(l.apply(stale), Err(Refusal::Fenced { epoch: 0, current_epoch: 3, .. })));
    let replay =
        StoreCommand::Orchestrate { fence: fence(3, false, 0, 1), commands: vec![create("t9")] };
    assert!(
        matches!(
            l.apply(replay),
            Err(Refusal::Fenced { next_task_id: 0, current_next_task_id: 1, .. })
        ),
        "computed on an older task counter"
    );
    let reclaim = StoreCommand::Orchestrate { fence: fence(3, true, 1, 0), commands: Vec::new() };
    assert!(l.apply(reclaim).is_err(), "a claim must be higher than the current epoch");
    let next = StoreCommand::Orchestrate {
        fence: fence(3, false, 1, 1),
        commands: vec![create("t000001")],
    };
    assert_eq!(l.apply(next), Ok(5));
    let successor = StoreCommand::Orchestrate { fence: fence(4, true, 2, 0), commands: Vec::new() };
    l.apply(successor).unwrap();
    let old_leader = StoreCommand::Orchestrate {
        fence: fence(3, false, 2, 1),
        commands: vec![create("t000002")],
    };
    assert!(
        l.apply(old_leader).is_err(),
        "the old leader cannot write after its successor claimed"
    );
    assert_eq!(l.s.tasks.len(), 2);
}

#[test]
fn an_orchestrator_batch_skips_moot_decisions_and_is_refused_whole_otherwise() {
    let mut l = Log::new();
    l.apply(StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent })
        .unwrap();
    let gone_task = StoreCommand::SetTaskDesiredState {
        id: "gone".into(),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    let gone_service =
        StoreCommand::SetUpdateStatus { service: ServiceId::new("gone"), status: None };
    let backwards =
        StoreCommand::SetTaskStatus { id: "t1".into(), status: Box::new(TaskStatus::default()) };
    let real = StoreCommand::SetTaskDesiredState {
        id: "t1".into(),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    let ok = StoreCommand::Orchestrate {
        fence: fence(1, true, 0, 0),
        commands: vec![gone_task, gone_service, real],
    };
    l.apply(ok).unwrap();
    assert_eq!(l.s.task(&TaskId::new("t1")).unwrap().desired_state, TaskState::Shutdown);
    let conflict = StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent };
    let undone = StoreCommand::SetTaskDesiredState {
        id: "t1".into(),
        state: TaskState::Remove,
        expected: Expect::Any,
    };
    let refused = StoreCommand::Orchestrate {
        fence: fence(1, false, 0, 3),
        commands: vec![undone, backwards, conflict],
    };
    assert!(matches!(l.apply(refused), Err(Refusal::VersionMismatch { .. })));
    assert_eq!(l.s.task(&TaskId::new("t1")).unwrap().desired_state, TaskState::Shutdown);
    assert_eq!(l.s.counters.next_task_id, 0, "a refused batch allocates no ids");
    let nested = StoreCommand::Orchestrate {
        fence: fence(1, false, 0, 0),
        commands: vec![StoreCommand::Batch { commands: Vec::new() }],
    };
    assert!(matches!(l.apply(nested), Err(Refusal::Invalid { .. })));
}

fn config(name: &str, data: &[u8]) -> ConfigRecord {
    ConfigRecord { name: name.into(), data: data.to_vec(), ..ConfigRecord::default() }
}

fn secret(name: &str, size: u64, digest: &str) -> SecretRecord {
    SecretRecord {
        name: name.into(),
        size,
        digest: digest.into(),
        sealed: vec![1, 2],
        ..SecretRecord::default()
    }
}

#[test]
fn configs_secrets_networks_and_rollouts_round_trip() {
    let mut l = Log::new();
    l.create("s1", service("web", 1)).unwrap();
    let net = NetworkSpec { name: "n".into(), ..NetworkSpec::default() };
    let rollout = Box::new(a_rollout(&ServiceId::new("s1")));
    l.apply(StoreCommand::PutConfig {
        config: Box::new(config("c", b"x")),
        expected: Expect::Absent,
    })
    .unwrap();
    l.apply(StoreCommand::PutSecret {
        secret: Box::new(secret("s", 3, "d")),
        expected: Expect::Absent,
    })
    .unwrap();
    l.apply(StoreCommand::PutNetwork { spec: Box::new(net), expected: Expect::Absent }).unwrap();
    l.apply(StoreCommand::PutRollout {
        service: "s1".into(),
        rollout: rollout.clone(),
        expected: Expect::Absent,
    })
    .unwrap();
    let orphan = StoreCommand::PutRollout { service: "x".into(), rollout, expected: Expect::Any };
    assert!(matches!(l.apply(orphan), Err(Refusal::NotFound { kind: RecordKind::Service, .. })));
    assert_eq!(
        (l.s.configs["c"].version, l.s.secrets["s"].version, l.s.networks["n"].version),
        (2, 3, 4)
    );
    assert_eq!(l.s.rollouts[&ServiceId::new("s1")].rollout.spec_version(), 2);
    let json = serde_json::to_string(&l.s).unwrap();
    let back: ClusterState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, l.s, "the whole state reads back identical, rollouts typed");
    l.apply(StoreCommand::RemoveSecret { name: "s".into(), expected: Expect::Version(3) }).unwrap();
    l.apply(StoreCommand::RemoveNetwork { name: "n".into(), expected: Expect::Any }).unwrap();
    l.apply(StoreCommand::RemoveRollout { service: "s1".into(), expected: Expect::Any }).unwrap();
    l.apply(StoreCommand::RemoveConfig { name: "c".into(), expected: Expect::Any }).unwrap();
    assert!(
        l.s.secrets.is_empty()
            && l.s.networks.is_empty()
            && l.s.rollouts.is_empty()
            && l.s.configs.is_empty()
    );
}

#[test]
fn s47_config_content_never_changes_under_a_name_and_rotates_by_a_new_name() {
    let mut l = Log::new();
    l.apply(StoreCommand::PutConfig {
        config: Box::new(config("shop_app", b"A")),
        expected: Expect::Absent,
    })
    .unwrap();
    let mut web = service("shop_web", 1);
    web.task_template.container_spec.configs =
        vec![ConfigReference { config_name: "shop_app".into(), ..ConfigReference::default() }];
    l.create("web", web.clone()).unwrap();
    let changed = StoreCommand::PutConfig {
        config: Box::new(config("shop_app", b"B")),
        expected: Expect::Any,
    };
    assert_eq!(
        l.apply(changed),
        Err(Refusal::Invalid { message: "only updates to Labels are allowed".into() })
    );
    assert_eq!(l.s.configs["shop_app"].data, b"A", "the config keeps its content");
    let mut relabelled = config("shop_app", b"A");
    relabelled.labels.insert("k".into(), "v".into());
    l.apply(StoreCommand::PutConfig { config: Box::new(relabelled), expected: Expect::Any })
        .unwrap();
    let remove_old =
        || StoreCommand::RemoveConfig { name: "shop_app".into(), expected: Expect::Any };
    assert_eq!(
        l.apply(remove_old()),
        Err(Refusal::Invalid {
            message: "config 'shop_app' is in use by the following service: shop_web".into()
        })
    );
    l.apply(StoreCommand::PutConfig {
        config: Box::new(config("shop_app_v2", b"B")),
        expected: Expect::Absent,
    })
    .unwrap();
    let version = l.svc("web").spec_version;
    web.task_template.container_spec.configs[0].config_name = "shop_app_v2".into();
    l.update("web", web).unwrap();
    assert_eq!(l.svc("web").spec_version, version + 1, "web is updated (a rolling update follows)");
    assert!(l.s.configs.contains_key("shop_app"), "the old config remains until removed");
    l.apply(remove_old()).unwrap();
}

#[test]
fn s48_secret_and_config_sizes_are_bounded_as_in_swarm() {
    let mut l = Log::new();
    let put = |name: &str, size| StoreCommand::PutSecret {
        secret: Box::new(secret(name, size, "d")),
        expected: Expect::Absent,
    };
    let too = Refusal::Invalid {
        message: "secret data must be larger than 0 and less than 512000 bytes".into(),
    };
    assert_eq!(MAX_SECRET_SIZE, 512_000);
    assert_eq!(l.apply(put("big", 512_000)), Err(too.clone()));
    assert_eq!(l.apply(put("empty", 0)), Err(too));
    l.apply(put("ok", 511_999)).unwrap();
    let changed = StoreCommand::PutSecret {
        secret: Box::new(secret("ok", 10, "other")),
        expected: Expect::Any,
    };
    assert_eq!(l.apply(changed), Err(Refusal::invalid("only updates to Labels are allowed")));
    let too = Refusal::invalid("config data must be larger than 0 and less than 1024000 bytes");
    let cfg = |n: usize| StoreCommand::PutConfig {
        config: Box::new(config("c", &vec![b'x'; n])),
        expected: Expect::Any,
    };
    assert_eq!(MAX_CONFIG_SIZE, 1000 * 1024);
    assert_eq!(l.apply(cfg(1000 * 1024)), Err(too.clone()));
    assert_eq!(l.apply(cfg(0)), Err(too));
    l.apply(cfg(1000 * 1024 - 1)).unwrap();
    let mut web = service("shop_web", 1);
    web.task_template.container_spec.secrets =
        vec![reconciler_types::SecretReference { secret_name: "ok".into(), ..Default::default() }];
    l.create("web", web).unwrap();
    assert_eq!(
        l.apply(StoreCommand::RemoveSecret { name: "ok".into(), expected: Expect::Any }),
        Err(Refusal::invalid("secret 'ok' is in use by the following service: shop_web"))
    );
}

fn published(target: u32, published: u32, mode: PublishMode) -> ServiceSpec {
    let mut s = service("x", 1);
    s.endpoint_spec.ports = vec![PortConfig {
        target_port: target,
        published_port: published,
        publish_mode: mode,
        ..PortConfig::default()
    }];
    s
}

fn port_of(l: &Log, id: &str) -> u32 {
    l.svc(id).endpoint_ports[0].published_port
}

#[test]
fn s49_dynamic_published_ports_are_allocated_serially() {
    let mut l = Log::new();
    l.create("a", published(80, 0, PublishMode::Ingress)).unwrap();
    l.create("b", published(80, 0, PublishMode::Ingress)).unwrap();
    assert_eq!((port_of(&l, "a"), port_of(&l, "b")), (30000, 30001));
    assert_eq!(
        l.svc("a").spec.endpoint_spec.ports[0].published_port,
        0,
        "the spec keeps asking for any port"
    );
    l.apply(StoreCommand::RemoveService { id: ServiceId::new("a"), expected: Expect::Any })
        .unwrap();
    l.create("c", published(80, 0, PublishMode::Ingress)).unwrap();
    assert_eq!(port_of(&l, "c"), 30002, "serial: not the freed 30000");
    let mut scaled = l.svc("c").spec.clone();
    scaled.mode = ServiceMode::Replicated { replicas: 3 };
    l.update("c", scaled).unwrap();
    assert_eq!(port_of(&l, "c"), 30002, "an update keeps the allocated port");
    l.create("host", published(80, 0, PublishMode::Host)).unwrap();
    assert_eq!(port_of(&l, "host"), 0, "host mode is left to the node");
    let mut udp = published(53, 0, PublishMode::Ingress);
    udp.endpoint_spec.ports[0].protocol = PortProtocol::Udp;
    l.create("dns", udp).unwrap();
    assert_eq!(port_of(&l, "dns"), 30000, "each protocol has its own port space");
}

#[test]
fn s49_dynamic_ports_wrap_around_and_skip_ports_in_use() {
    let mut l = Log::new();
    l.create("low", published(80, 30000, PublishMode::Ingress)).unwrap();
    l.s.counters.last_dynamic_port.tcp = DYNAMIC_PORTS_END - 1;
    l.create("a", published(80, 0, PublishMode::Ingress)).unwrap();
    l.create("b", published(80, 0, PublishMode::Ingress)).unwrap();
    assert_eq!((port_of(&l, "a"), port_of(&l, "b")), (DYNAMIC_PORTS_END, DYNAMIC_PORTS_START + 1));
}

#[test]
fn a_published_port_in_use_is_refused_with_swarms_message() {
    let mut l = Log::new();
    l.create(
        "web",
        ServiceSpec { name: "shop_web".into(), ..published(80, 8080, PublishMode::Ingress) },
    )
    .unwrap();
    l.create("edge", ServiceSpec { name: "edge".into(), ..published(80, 9090, PublishMode::Host) })
        .unwrap();
    assert_eq!(
        l.create("b", published(81, 8080, PublishMode::Host)),
        Err(Refusal::invalid(
            "port '8080' is already in use by service 'shop_web' (web) as an ingress port"
        ))
    );
    assert_eq!(
        l.create("c", published(81, 9090, PublishMode::Ingress)),
        Err(Refusal::invalid(
            "port '9090' is already in use by service 'edge' (edge) as a host-published port"
        ))
    );
    l.create("d", published(81, 9090, PublishMode::Host)).unwrap();
    assert_eq!(l.s.services.len(), 3, "host-mode ports are shared; the scheduler keeps them apart");
    let web = l.svc("web").spec.clone();
    l.update("web", image(&web, "v2")).unwrap();
    let taken = published(80, 0, PublishMode::Ingress);
    l.create("e", taken).unwrap();
    assert_eq!(port_of(&l, "e"), 30000);
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
    s.apply(&StoreCommand::PutNode { node: Box::new(m), expected: Expect::Absent }, 1);
    s.apply(&StoreCommand::PutNode { node: Box::new(node("w1")), expected: Expect::Absent }, 2);
    assert_eq!(s.managers().len(), 1);
    assert_eq!(s.node_by_raft_id(7).map(|n| n.id.as_str()), Some("m1"));
    assert_eq!(s.max_raft_id(), 7);
}

#[test]
fn tentatively_undoes_everything_including_a_panicking_run() {
    let mut l = Log::new();
    l.create("web", service("web", 1)).unwrap();
    l.apply(StoreCommand::PutTask { task: Box::new(task("t1")), expected: Expect::Absent })
        .unwrap();
    let before = l.s.clone();
    let seen = l.s.tentatively(|s| {
        s.apply(&StoreCommand::RemoveTask { id: "t1".into(), expected: Expect::Any }, 9);
        s.apply(
            &StoreCommand::CreateService {
                id: ServiceId::new("api"),
                spec: Box::new(service("api", 1)),
            },
            10,
        );
        (s.tasks.len(), s.services.len())
    });
    assert_eq!(seen, (0, 2), "the run sees its own changes");
    assert_eq!(l.s, before, "and they are gone afterwards");
    let mut s = before.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.tentatively(|s| {
            s.apply(&StoreCommand::RemoveTask { id: "t1".into(), expected: Expect::Any }, 9);
            panic!("a bug in a pass");
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(s, before);
}
