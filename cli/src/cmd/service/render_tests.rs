use super::*;
use reconciler_api::services::ServiceStatus;
use reconciler_types::{NodeId, ServiceId, ServiceSpec, Task, TaskId, TaskStatus};

fn info(id: &str, name: &str, mode: ServiceMode) -> ServiceInfo {
    let mut spec = ServiceSpec { name: name.into(), mode, ..ServiceSpec::default() };
    spec.task_template.container_spec.image = "nginx:1.25@sha256:abcd".into();
    ServiceInfo {
        id: ServiceId::new(id),
        version: 1,
        spec,
        spec_version: 1,
        previous_spec: None,
        previous_spec_version: None,
        update_status: None,
        endpoint_ports: Vec::new(),
        status: Some(ServiceStatus { running_tasks: 2, desired_tasks: 3 }),
    }
}

fn port(published: u32, target: u32) -> PortConfig {
    PortConfig { published_port: published, target_port: target, ..PortConfig::default() }
}

#[test]
fn human_durations_are_dockers() {
    let s = Duration::from_secs;
    assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
    assert_eq!(human_duration(s(1)), "1 second");
    assert_eq!(human_duration(s(5)), "5 seconds");
    assert_eq!(human_duration(s(90)), "About a minute");
    assert_eq!(human_duration(s(600)), "10 minutes");
    assert_eq!(human_duration(s(3600)), "About an hour");
    assert_eq!(human_duration(s(5 * 3600)), "5 hours");
    assert_eq!(human_duration(s(3 * 86_400)), "3 days");
    assert_eq!(human_duration(s(20 * 86_400)), "2 weeks");
    assert_eq!(human_duration(s(90 * 86_400)), "3 months");
    assert_eq!(human_duration(s(800 * 86_400)), "2 years");
}

#[test]
fn natural_order_compares_numbers_by_value() {
    let mut names = vec!["web.10", "web.2", "web.1", "api.3"];
    names.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(names, ["api.3", "web.1", "web.2", "web.10"]);
    assert_eq!(natural_cmp("t1000000", "t999999"), Ordering::Greater);
}

#[test]
fn images_drop_digest_and_docker_hub_prefix() {
    assert_eq!(familiar_image("nginx:1.25@sha256:abcd"), "nginx:1.25");
    assert_eq!(familiar_image("docker.io/library/redis:7"), "redis:7");
    assert_eq!(familiar_image("nginx@sha256:abcd"), "nginx@sha256:abcd");
    assert_eq!(familiar_image("localhost:5000/app"), "localhost:5000/app");
}

#[test]
fn ls_ports_group_ranges_as_docker_does() {
    assert_eq!(ls_ports(&[port(8080, 80)]), "*:8080->80/tcp");
    assert_eq!(ls_ports(&[port(81, 81), port(80, 80)]), "*:80-81->80-81/tcp");
    assert_eq!(ls_ports(&[port(80, 80), port(81, 80)]), "*:80-81->80/tcp");
    assert_eq!(
        ls_ports(&[port(80, 80), port(81, 81), port(82, 80)]),
        "*:80-81->80-81/tcp, *:82->80/tcp"
    );
    let host = PortConfig { publish_mode: PublishMode::Host, ..port(9000, 90) };
    assert_eq!(ls_ports(&[host]), "", "host-mode ports are not on the routing mesh");
}

#[test]
fn service_ls_has_dockers_columns_and_order() {
    let mut web = info("0123456789abcdefghijklmno", "web", ServiceMode::Replicated { replicas: 3 });
    web.endpoint_ports = vec![port(8080, 80)];
    web.spec.task_template.placement.max_replicas = 1;
    let mut agent = info("zzz", "agent", ServiceMode::Global);
    agent.status = Some(ServiceStatus { running_tasks: 2, desired_tasks: 2 });
    let out = service_table(&[web, agent]);
    let expected = "\
ID             NAME      MODE         REPLICAS               IMAGE        PORTS
zzz            agent     global       2/2                    nginx:1.25
0123456789ab   web       replicated   2/3 (max 1 per node)   nginx:1.25   *:8080->80/tcp";
    assert_eq!(out, expected);
}

fn view(
    id: &str,
    slot: u64,
    node: Option<&str>,
    desired: TaskState,
    state: TaskState,
    at: u64,
) -> TaskView {
    let mut task = Task {
        id: TaskId::new(id),
        slot,
        node_id: node.map(NodeId::new),
        desired_state: desired,
        status: TaskStatus { state, timestamp: MonoTime::from_secs(at), ..TaskStatus::default() },
        ..Task::default()
    };
    task.spec.container_spec.image = "nginx:1.25".into();
    TaskView {
        task,
        node: node.map(|n| format!("host-{n}")).unwrap_or_default(),
        ports: Vec::new(),
    }
}

#[test]
fn service_ps_shows_history_under_the_live_task() {
    let svc = info("s1", "web", ServiceMode::Replicated { replicas: 2 });
    let mut pending = view("t000004", 2, None, TaskState::Running, TaskState::Pending, 995);
    pending.task.status.err =
        "no suitable node (scheduling constraints not satisfied on 3 nodes)".into();
    let tasks = vec![
        view("t000001", 1, Some("n1"), TaskState::Shutdown, TaskState::Failed, 900),
        view("t000003", 1, Some("n2"), TaskState::Running, TaskState::Running, 995),
        pending,
    ];
    let out = task_table(&[(&svc, &tasks)], MonoTime::from_secs(1000), PsOptions::default());
    let expected = "\
ID        NAME        IMAGE        NODE      DESIRED STATE   CURRENT STATE               ERROR                              PORTS
t000003   web.1       nginx:1.25   host-n2   Running         Running 5 seconds ago
t000001    \\_ web.1   nginx:1.25   host-n1   Shutdown        Failed about a minute ago
t000004   web.2       nginx:1.25             Running         Pending 5 seconds ago       \"no suitable node (scheduling …\"";
    assert_eq!(out, expected);
}

#[test]
fn service_ps_names_global_tasks_by_node_and_can_show_ids() {
    let svc = info("s1", "agent", ServiceMode::Global);
    let tasks = vec![view("t1", 0, Some("n1"), TaskState::Running, TaskState::Running, 10)];
    let o = PsOptions { no_trunc: true, no_resolve: true };
    let out = task_table(&[(&svc, &tasks)], MonoTime::from_secs(10), o);
    let row = out.lines().nth(1).unwrap();
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&words[..5], ["t1", "s1.n1", "nginx:1.25", "n1", "Running"], "{row}");
    assert!(row.ends_with("Running less than a second ago"), "{row}");
}

#[test]
fn errors_are_quoted_and_cut_at_thirty_characters() {
    assert_eq!(error_cell("", false), "");
    assert_eq!(error_cell("short", false), "\"short\"");
    let long = "a".repeat(40);
    assert_eq!(error_cell(&long, false).chars().count(), 32);
    assert_eq!(error_cell(&long, true).len(), 42);
}

#[test]
fn pretty_inspect_follows_dockers_template() {
    let mut svc = info("abc", "web", ServiceMode::Replicated { replicas: 3 });
    svc.spec.task_template.placement.constraints = vec!["node.role==worker".into()];
    svc.endpoint_ports = vec![port(8080, 80)];
    let out = pretty(&svc, MonoTime::from_secs(0));
    assert!(
        out.starts_with("\nID:\t\tabc\nName:\t\tweb\nService Mode:\tReplicated\n Replicas:\t3\n"),
        "{out}"
    );
    assert!(out.contains("Placement:\n Constraints:\t[node.role==worker]\n"), "{out}");
    assert!(out.contains("UpdateConfig:\n Parallelism:\t1\n On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\n"), "{out}");
    assert!(out.contains("ContainerSpec:\n Image:\t\tnginx:1.25@sha256:abcd\n"), "{out}");
    assert!(out.contains("Ports:\n PublishedPort = 8080\n  Protocol = tcp\n  TargetPort = 80\n  PublishMode = ingress\n"), "{out}");
}
