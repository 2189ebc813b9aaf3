use super::*;
use crate::dispatcher::index::{Touched, touched};
use reconciler_store::{Expect, StoreCommand};
use reconciler_types::{Node, NodeStatus, PortConfig, ServiceSpec, TaskStatus};

struct World {
    s: ClusterState,
    ix: NodeIndex,
    mesh: MeshTable,
}

impl World {
    fn new() -> World {
        let mut w = World {
            s: ClusterState::default(),
            ix: NodeIndex::default(),
            mesh: MeshTable::default(),
        };
        w.mesh.rebuild(&w.s);
        for (id, addr) in [("n1", "10.0.0.1"), ("n2", "10.0.0.2:2377")] {
            let mut node = Node { id: NodeId::new(id), ..Node::default() };
            node.status =
                NodeStatus { state: NodeState::Ready, message: String::new(), addr: addr.into() };
            w.step(StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent });
        }
        w
    }

    /// Applies `cmd` and follows it as the dispatcher does; answers whether the table moved.
    fn step(&mut self, cmd: StoreCommand) -> bool {
        let index = self.s.last_index + 1;
        assert_eq!(self.s.apply(&cmd, index).refusal, None, "{cmd:?}");
        let mut t = Touched::default();
        touched(&cmd, &mut t);
        self.ix.update(&self.s, &t.tasks);
        self.mesh.update(&self.s, &self.ix, &t.tasks, &t.services, &t.nodes)
    }

    fn create_web(&mut self) {
        let mut spec = ServiceSpec { name: "web".into(), ..ServiceSpec::default() };
        spec.endpoint_spec.ports = vec![
            PortConfig { target_port: 80, published_port: 8080, ..PortConfig::default() },
            PortConfig {
                target_port: 53,
                published_port: 5353,
                protocol: PortProtocol::Udp,
                ..PortConfig::default()
            },
            PortConfig {
                target_port: 9000,
                published_port: 9000,
                publish_mode: PublishMode::Host,
                ..PortConfig::default()
            },
        ];
        self.step(StoreCommand::CreateService { id: ServiceId::new("s1"), spec: Box::new(spec) });
    }

    /// A running task of `s1` on `node` with node ports `base` (tcp 80) and `base + 1` (udp 53).
    fn run(&mut self, id: &str, node: &str, base: u32) {
        let mut t = Task {
            id: TaskId::new(id),
            service_id: ServiceId::new("s1"),
            node_id: Some(NodeId::new(node)),
            desired_state: TaskState::Running,
            ..Task::default()
        };
        t.status = TaskStatus { state: TaskState::Running, ..TaskStatus::default() };
        t.status.ports = vec![
            PortConfig { target_port: 80, published_port: base, ..PortConfig::default() },
            PortConfig {
                target_port: 53,
                published_port: base + 1,
                protocol: PortProtocol::Udp,
                ..PortConfig::default()
            },
            PortConfig {
                target_port: 9000,
                published_port: 9000,
                publish_mode: PublishMode::Host,
                ..PortConfig::default()
            },
        ];
        self.step(StoreCommand::PutTask { task: Box::new(t), expected: Expect::Any });
    }

    fn status(&mut self, id: &str, state: TaskState, err: &str) -> bool {
        let mut status = self.s.tasks.get(&TaskId::new(id)).unwrap().task.status.clone();
        status.state = state;
        status.err = err.into();
        self.step(StoreCommand::SetTaskStatus { id: TaskId::new(id), status: Box::new(status) })
    }

    /// The changes an agent holding `since` receives, one line each.
    fn since(&self, since: u64) -> (RoutesKind, Vec<String>) {
        let Some(r) = self.mesh.answer(since) else { return (RoutesKind::Incremental, Vec::new()) };
        assert_eq!(r.version, self.mesh.version());
        (r.kind, r.changes.iter().map(line).collect())
    }
}

fn line(c: &RouteChange) -> String {
    match c {
        RouteChange::Open { port, service } => format!("open {port} {service}"),
        RouteChange::Close { port } => format!("close {port}"),
        RouteChange::Add { port, backend: b } => {
            format!("add {port} {} {}:{}", b.task_id, b.addr, b.port)
        }
        RouteChange::Remove { port, task_id } => format!("remove {port} {task_id}"),
    }
}

#[test]
fn backends_are_the_running_tasks_and_an_agent_gets_only_what_changed_since_its_version() {
    let mut w = World::new();
    w.create_web();
    let (kind, all) = w.since(0);
    assert_eq!(kind, RoutesKind::Complete);
    assert_eq!(all, ["open 8080/tcp web", "open 5353/udp web"], "host-mode ports are not routed");
    w.run("t1", "n1", 41000);
    w.run("t2", "n2", 42000);
    let held = w.mesh.version();
    assert_eq!(w.since(held), (RoutesKind::Incremental, Vec::new()), "up to date");

    println!("=== t1 found unhealthy: RUNNING with its error while it stops");
    assert!(w.status("t1", TaskState::Running, "processexec: unhealthy container"));
    assert_eq!(
        w.since(held),
        (RoutesKind::Incremental, vec!["remove 8080/tcp t1".into(), "remove 5353/udp t1".into()])
    );
    let (kind, all) = w.since(0);
    assert_eq!(kind, RoutesKind::Complete);
    assert_eq!(
        all,
        [
            "open 8080/tcp web",
            "open 5353/udp web",
            "add 8080/tcp t2 10.0.0.2:42000",
            "add 5353/udp t2 10.0.0.2:42001",
        ],
        "the node's address without its port"
    );
    assert!(!w.status("t1", TaskState::Failed, "processexec: unhealthy container"), "no change");

    println!("=== a task told to stop takes no new connections while it stops");
    let held = w.mesh.version();
    let id = TaskId::new("t2");
    let stop = StoreCommand::SetTaskDesiredState {
        id: id.clone(),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    assert!(w.step(stop));
    assert_eq!(w.since(held).1, ["remove 8080/tcp t2", "remove 5353/udp t2"]);
}

#[test]
fn a_node_gone_down_takes_its_backends_and_a_removed_service_closes_its_ports() {
    let mut w = World::new();
    w.create_web();
    w.run("t1", "n1", 41000);
    w.run("t2", "n2", 42000);
    let held = w.mesh.version();
    let down = NodeStatus {
        state: NodeState::Down,
        message: "heartbeat failure".into(),
        addr: "10.0.0.2".into(),
    };
    assert!(w.step(StoreCommand::SetNodeStatus { id: NodeId::new("n2"), status: down }));
    assert_eq!(w.since(held).1, ["remove 8080/tcp t2", "remove 5353/udp t2"]);
    let held = w.mesh.version();
    let up =
        NodeStatus { state: NodeState::Ready, message: String::new(), addr: "10.0.0.9".into() };
    assert!(w.step(StoreCommand::SetNodeStatus { id: NodeId::new("n2"), status: up }));
    assert_eq!(
        w.since(held).1,
        ["add 8080/tcp t2 10.0.0.9:42000", "add 5353/udp t2 10.0.0.9:42001"],
        "back, at its new address"
    );
    let held = w.mesh.version();
    let rm = StoreCommand::RemoveService { id: ServiceId::new("s1"), expected: Expect::Any };
    assert!(w.step(rm));
    assert_eq!(w.since(held).1, ["close 8080/tcp", "close 5353/udp"]);
    assert_eq!(w.since(0).1, Vec::<String>::new(), "nothing left");
    assert!(w.mesh.by_service.is_empty() && w.mesh.by_task.is_empty());
}

#[test]
fn an_agent_with_a_version_the_table_cannot_answer_from_gets_the_complete_table() {
    let mut w = World::new();
    w.create_web();
    w.run("t1", "n1", 41000);
    let v = w.mesh.version();
    assert_eq!(w.since(v + 7).0, RoutesKind::Complete, "a version of another leader");
    w.mesh.rebuild(&w.s);
    assert_eq!(w.since(v).0, RoutesKind::Complete, "from before the rebuild");
    let (kind, all) = w.since(0);
    assert_eq!(kind, RoutesKind::Complete);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(w.since(w.mesh.version()).1, Vec::<String>::new());
}
