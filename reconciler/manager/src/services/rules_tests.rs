use super::*;
use reconciler_store::cluster_state::{NodeRecord, SecretRecord, TaskRecord};
use reconciler_types::{
    HealthConfig, NodeDescription, PortConfig, SecretReference, Task, TaskId, TaskStatus,
};

fn spec(name: &str) -> ServiceSpec {
    let mut s = ServiceSpec { name: name.into(), ..ServiceSpec::default() };
    s.task_template.container_spec.image = "nginx:1.25".into();
    s
}

fn state_with(services: &[(&str, &str)]) -> ClusterState {
    let mut state = ClusterState::default();
    for (id, name) in services {
        let record =
            ServiceRecord { version: 1, ..ServiceRecord::new(ServiceId::new(*id), spec(name), 1) };
        state.services.insert(ServiceId::new(*id), record);
    }
    state
}

fn message(r: Result<impl std::fmt::Debug, ApiError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn services_resolve_by_id_then_name_then_unique_prefix() {
    let state = state_with(&[("abc123", "web"), ("abd456", "api"), ("web", "other")]);
    assert_eq!(resolve(&state, "abc123").unwrap().spec.name, "web");
    assert_eq!(resolve(&state, "web").unwrap().id.as_str(), "web", "a full id wins over a name");
    assert_eq!(resolve(&state, "api").unwrap().id.as_str(), "abd456");
    assert_eq!(resolve(&state, "abd").unwrap().spec.name, "api");
    assert_eq!(message(resolve(&state, "ab")), "service ab is ambiguous (2 matches found)");
    assert_eq!(message(resolve(&state, "zzz")), "service zzz not found");
    assert!(matches!(resolve(&state, ""), Err(ApiError::NotFound(_))));
}

#[test]
fn validation_uses_swarms_messages() {
    let state = ClusterState::default();
    let check = |f: &dyn Fn(&mut ServiceSpec)| {
        let mut s = spec("web");
        f(&mut s);
        validate(&s, &state).err().map(|e| e.to_string())
    };
    assert_eq!(check(&|_| {}), None);
    assert_eq!(
        check(&|s| s.name = "-web".into()).as_deref(),
        Some("name must be valid as a DNS name component")
    );
    assert_eq!(
        check(&|s| s.name = "a".repeat(64)).as_deref(),
        Some("name must be 63 characters or fewer")
    );
    assert_eq!(check(&|s| s.name = "web_1-x".into()), None);
    assert_eq!(
        check(&|s| s.task_template.container_spec.image.clear()).as_deref(),
        Some("ContainerSpec: image reference must be provided")
    );
    assert_eq!(
        check(&|s| s.update_config.max_failure_ratio = 1.5).as_deref(),
        Some("TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1")
    );
    assert_eq!(
        check(&|s| s.task_template.resources.reservations.memory_bytes = 1024).as_deref(),
        Some("invalid memory value 1024: Must be at least 4MiB")
    );
    let dnsrr_ingress = |s: &mut ServiceSpec| {
        s.endpoint_spec.mode = EndpointMode::Dnsrr;
        s.endpoint_spec.ports = vec![PortConfig { target_port: 80, ..PortConfig::default() }];
    };
    assert_eq!(
        check(&dnsrr_ingress).as_deref(),
        Some("EndpointSpec: port published with ingress mode can't be used with dnsrr mode")
    );
    let duplicate = |s: &mut ServiceSpec| {
        let p = PortConfig { target_port: 80, published_port: 8080, ..PortConfig::default() };
        s.endpoint_spec.ports = vec![p.clone(), PortConfig { target_port: 81, ..p }];
    };
    assert_eq!(
        check(&duplicate).as_deref(),
        Some("EndpointSpec: duplicate published ports provided")
    );
    let bad_constraint = |s: &mut ServiceSpec| {
        s.task_template.placement.constraints = vec!["node.role=manager".into()]
    };
    assert!(check(&bad_constraint).unwrap().contains("invalid placement constraint"));
    let tiny_interval = |s: &mut ServiceSpec| {
        let h =
            HealthConfig { interval: Some(Duration::from_micros(10)), ..HealthConfig::default() };
        s.task_template.container_spec.healthcheck = Some(h);
    };
    assert_eq!(
        check(&tiny_interval).as_deref(),
        Some("ContainerSpec: Interval in HealthConfig cannot be less than 1ms")
    );
}

#[test]
fn secrets_must_exist_and_not_share_a_target() {
    let mut state = ClusterState::default();
    let secret = SecretRecord { name: "db".into(), ..SecretRecord::default() };
    state.secrets.insert("db".into(), secret);
    let reference = |name: &str, target: &str| SecretReference {
        secret_name: name.into(),
        target: target.into(),
        ..SecretReference::default()
    };
    let mut s = spec("web");
    s.task_template.container_spec.secrets = vec![reference("db", "db")];
    assert!(validate(&s, &state).is_ok());
    s.task_template.container_spec.secrets =
        vec![reference("db", "db"), reference("x", "x"), reference("y", "y")];
    assert_eq!(message(validate(&s, &state)), "secrets not found: x, y");
    s.task_template.container_spec.secrets = vec![reference("db", "t"), reference("db2", "t")];
    assert_eq!(
        message(validate(&s, &state)),
        "secret references 'db' and 'db2' have a conflicting target: 't'"
    );
}

#[test]
fn names_are_unique_and_updates_keep_the_name() {
    let state = state_with(&[("s1", "web")]);
    assert_eq!(
        message(check_name_free(&state, "web")),
        "name conflicts with an existing object: service web already exists"
    );
    assert!(check_name_free(&state, "api").is_ok());
    let current = resolve(&state, "web").unwrap();
    assert_eq!(message(check_update(current, &spec("web2"))), "renaming services is not supported");
    let scaled = ServiceSpec { mode: ServiceMode::Replicated { replicas: 5 }, ..spec("web") };
    assert!(check_update(current, &scaled).is_ok());
}

fn task(
    id: &str,
    service: &str,
    node: &str,
    desired: TaskState,
    observed: TaskState,
) -> TaskRecord {
    TaskRecord {
        task: Task {
            id: TaskId::new(id),
            service_id: ServiceId::new(service),
            slot: 1,
            node_id: Some(NodeId::new(node)),
            desired_state: desired,
            status: TaskStatus { state: observed, ..TaskStatus::default() },
            ..Task::default()
        },
        version: 1,
    }
}

#[test]
fn status_counts_running_tasks_on_nodes_that_are_up() {
    let mut state = state_with(&[("s1", "web")]);
    state.services.get_mut(&ServiceId::new("s1")).unwrap().spec.mode =
        ServiceMode::Replicated { replicas: 3 };
    for t in [
        task("t1", "s1", "n1", TaskState::Running, TaskState::Running),
        task("t2", "s1", "n2", TaskState::Running, TaskState::Running),
        task("t3", "s1", "n1", TaskState::Shutdown, TaskState::Running),
        task("t4", "s1", "n1", TaskState::Running, TaskState::Starting),
        task("t5", "other", "n1", TaskState::Running, TaskState::Running),
    ] {
        state.tasks.insert(t.task.id.clone(), t);
    }
    let active: BTreeSet<NodeId> = [NodeId::new("n1")].into();
    assert_eq!(
        service_statuses(&state, &active)[&ServiceId::new("s1")],
        ServiceStatus { running_tasks: 1, desired_tasks: 3 }
    );
}

#[test]
fn global_desired_counts_tasks_desired_to_run() {
    let mut state = state_with(&[("s1", "agent")]);
    state.services.get_mut(&ServiceId::new("s1")).unwrap().spec.mode = ServiceMode::Global;
    for t in [
        task("t1", "s1", "n1", TaskState::Running, TaskState::Running),
        task("t2", "s1", "n2", TaskState::Running, TaskState::Pending),
        task("t3", "s1", "n3", TaskState::Shutdown, TaskState::Shutdown),
    ] {
        state.tasks.insert(t.task.id.clone(), t);
    }
    let active: BTreeSet<NodeId> = [NodeId::new("n1"), NodeId::new("n2")].into();
    assert_eq!(
        service_statuses(&state, &active)[&ServiceId::new("s1")],
        ServiceStatus { running_tasks: 1, desired_tasks: 2 }
    );
}

#[test]
fn task_views_name_nodes_and_show_host_ports_of_running_tasks() {
    let mut state = state_with(&[("s1", "web")]);
    let host_port = PortConfig {
        target_port: 80,
        published_port: 8080,
        publish_mode: PublishMode::Host,
        ..PortConfig::default()
    };
    state.services.get_mut(&ServiceId::new("s1")).unwrap().spec.endpoint_spec.ports =
        vec![host_port.clone()];
    let node = reconciler_types::Node {
        id: NodeId::new("n1"),
        description: NodeDescription { hostname: "box1".into(), ..NodeDescription::default() },
        ..reconciler_types::Node::default()
    };
    state.nodes.insert(NodeId::new("n1"), NodeRecord { node, credential_digest: None, version: 1 });
    for t in [
        task("t1", "s1", "n1", TaskState::Running, TaskState::Running),
        task("t2", "s1", "gone", TaskState::Shutdown, TaskState::Failed),
    ] {
        state.tasks.insert(t.task.id.clone(), t);
    }
    let views = task_views(&state, resolve(&state, "web").unwrap());
    let shown: Vec<(&str, &str, usize)> =
        views.iter().map(|v| (v.task.id.as_str(), v.node.as_str(), v.ports.len())).collect();
    assert_eq!(shown, [("t1", "box1", 1), ("t2", "gone", 0)]);
    assert_eq!(views[0].ports, [host_port]);
}

#[test]
fn generated_names_are_valid_service_names() {
    for a in [0u8, 7, 200, 255] {
        let name = generated_name([a, a.wrapping_mul(3)]);
        assert!(validate_name(&name).is_ok(), "{name}");
        assert!(name.contains('_'));
    }
}
