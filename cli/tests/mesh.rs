//! The routing mesh through real processes: one manager and two `flotilla agent` processes
//! (process runtime) on one machine, each node's mesh on its own loopback address (node `a`
//! on 127.0.0.2, node `b` on 127.0.0.3, each advertising it). A 2-replica `flotilla probe`
//! service placed on `b` publishes a TCP port and a UDP port in ingress mode:
//!
//! * connecting to the published port on `a`, which runs no task, reaches `b`'s tasks, over
//!   TCP (both replicas answer in turn) and UDP (the probe's echo);
//! * a task whose health check fails stops getting new connections while it is still being
//!   stopped (it ignores SIGTERM and keeps answering on its own node port meanwhile).
//!
//! As root (CI), the agents forward TCP in the kernel (nftables destination NAT, the
//! routing mesh's kernel path), and their NAT tables are gone once they stop; otherwise in
//! user space. The same assertions hold for either path.
//!
//! Everything asserted is what the product did: the task that answered (the probe names
//! itself), the task states the API reports. Waits poll with deadlines.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::ApiClient;
use reconciler_api::services::{ServiceTasks, TaskView};
use reconciler_testkit::AgentProcess;
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{
    HealthConfig, PortConfig, PortProtocol, ServiceMode, ServiceSpec, TaskId, TaskState,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

const SERVICE: &str = "mesh_web";
const NODE_A: &str = "127.0.0.2";
const NODE_B: &str = "127.0.0.3";

/// A port free for TCP and UDP on both nodes' addresses (the kernel's choice on one).
fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind((NODE_A, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let free = [NODE_A, NODE_B].iter().all(|ip| {
            std::net::TcpListener::bind((*ip, port)).is_ok()
                && std::net::UdpSocket::bind((*ip, port)).is_ok()
        });
        if free {
            return port;
        }
    }
}

fn spec(tcp: u16, udp: u16) -> ServiceSpec {
    let mut spec = ServiceSpec { name: SERVICE.into(), ..ServiceSpec::default() };
    spec.mode = ServiceMode::Replicated { replicas: 2 };
    spec.task_template.placement.constraints = vec!["node.hostname==b".into()];
    let c = &mut spec.task_template.container_spec;
    c.image = "flotilla/probe".into();
    c.command = vec!["flotilla".into(), "probe".into()];
    // The UDP echo answers on the node port of target 53; a stopped task ignores SIGTERM for
    // the whole grace period, so it stays alive (and answers directly) while it is stopped.
    c.env = vec!["PROBE_UDP_ECHO=53".into(), "PROBE_IGNORE_STOP=1".into()];
    c.stop_grace_period = Some(Duration::from_secs(60));
    c.healthcheck = Some(HealthConfig {
        test: ["CMD", "flotilla", "probe", "check", "/health"].map(String::from).to_vec(),
        interval: Some(Duration::from_millis(300)),
        retries: Some(1),
        start_period: Some(Duration::from_secs(5)),
        start_interval: Some(Duration::from_millis(300)),
        ..HealthConfig::default()
    });
    spec.endpoint_spec.ports = vec![
        PortConfig { target_port: 80, published_port: u32::from(tcp), ..PortConfig::default() },
        PortConfig {
            target_port: 53,
            published_port: u32::from(udp),
            protocol: PortProtocol::Udp,
            ..PortConfig::default()
        },
    ];
    spec
}

/// Tasks that serve: running, wanted running, no error.
fn serving(t: &ServiceTasks) -> Vec<TaskView> {
    let ok = |v: &&TaskView| {
        v.task.status.state == TaskState::Running
            && v.task.desired_state == TaskState::Running
            && v.task.status.err.is_empty()
    };
    t.tasks.iter().filter(ok).cloned().collect()
}

async fn wait_tasks(
    c: &ApiClient,
    agents: &[&AgentProcess],
    what: &str,
    f: impl Fn(&ServiceTasks) -> bool,
) -> ServiceTasks {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(t) = c.service_tasks(SERVICE).await {
            if f(&t) {
                return t;
            }
            last = Some(t);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: Vec<String> = last
        .iter()
        .flat_map(|t| &t.tasks)
        .map(|v| {
            let k = &v.task;
            format!(
                "{} desired {} state {} err {:?}",
                k.id, k.desired_state, k.status.state, k.status.err
            )
        })
        .collect();
    panic!("timed out waiting for {what}: {rows:#?}\n{}", logs(agents));
}

fn logs(agents: &[&AgentProcess]) -> String {
    let mut out = String::new();
    for a in agents {
        let log = std::fs::read_to_string(a.log_file()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        out.push_str(&format!("--- agent {} (tail)\n", a.hostname));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The task that answers `GET /` at `ip:port` (`None`: no answer).
async fn who_answers(ip: &str, port: u16) -> Option<String> {
    let http = reconciler_api::http::http_client(Duration::from_secs(3)).unwrap();
    let r = http.get(format!("http://{ip}:{port}/")).send().await.ok()?;
    let body: serde_json::Value = r.json().await.ok()?;
    body["task"].as_str().map(str::to_owned)
}

/// The task that echoes a datagram sent to `ip:port` from a new client socket.
async fn who_echoes(ip: &str, port: u16) -> Option<String> {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect((ip, port)).await.unwrap();
    for _ in 0..5 {
        s.send(b"ping").await.ok()?;
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), s.recv(&mut buf)).await
        {
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (task, payload) = reply.split_once(' ')?;
            assert_eq!(payload, "ping", "the echo carries the datagram");
            return Some(task.to_owned());
        }
    }
    None
}

/// Polls `f` until it answers (30 s at most).
async fn until<T, F, Fut>(what: &str, agents: &[&AgentProcess], mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out: {what}\n{}", logs(agents));
}

async fn start_agent(cluster: &ProcessCluster, root: &Path, name: &str, ip: &str) -> AgentProcess {
    let mut a = AgentProcess::at_address(cluster, &root.join(name), name, ip).await.unwrap();
    a.log_level = "info,agent::mesh=debug".into();
    a.spawn().unwrap();
    a.wait_ready(cluster).await.unwrap();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_port_on_a_node_without_tasks_reaches_the_healthy_tasks_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = ProcessCluster::start(binary, root, 1).await.unwrap();
    let a = start_agent(&cluster, root, "a", NODE_A).await;
    let b = start_agent(&cluster, root, "b", NODE_B).await;
    let agents = [&a, &b];
    let c = cluster.client(0).unwrap();
    let (tcp, udp) = (free_port(), free_port());
    println!("=== publish tcp {tcp} and udp {udp}; two replicas on node b");
    c.create_service(&spec(tcp, udp)).await.unwrap();
    let t = wait_tasks(&c, &agents, "two serving tasks", |t| serving(t).len() == 2).await;
    let tasks: BTreeSet<String> = serving(&t).iter().map(|v| v.task.id.to_string()).collect();
    let b_node = b.node_id().unwrap();
    for v in serving(&t) {
        assert_eq!(v.task.node_id.as_ref(), Some(&b_node), "placed on b");
    }

    println!("=== TCP on node a (no task there) reaches b's tasks, spread over both");
    let first = until("an answer on node a", &agents, || who_answers(NODE_A, tcp)).await;
    let mut seen = BTreeSet::from([first]);
    for _ in 0..5 {
        seen.insert(who_answers(NODE_A, tcp).await.expect("node a answers"));
    }
    assert_eq!(seen, tasks, "both replicas answer through node a");
    let on_b = who_answers(NODE_B, tcp).await.expect("node b answers too");
    assert!(tasks.contains(&on_b));
    let root = nix::unistd::geteuid().is_root();
    let pids: Vec<u32> = agents.iter().filter_map(|a| a.pid()).collect();
    for a in agents {
        let log = std::fs::read_to_string(a.log_file()).unwrap_or_default();
        let kernel = log.contains("forwarded in the kernel");
        assert_eq!(kernel, root, "agent {}: the kernel path is used exactly as root", a.hostname);
    }
    let tables = agent::mesh::kernel::tables();
    let held = |pid: &u32| tables.iter().any(|(_, owner)| owner == pid);
    assert_eq!(pids.iter().all(held), root, "each agent holds a NAT table as root: {tables:?}");
    println!("=== TCP forwarded {}", if root { "in the kernel" } else { "in user space" });

    println!("=== UDP on node a reaches b's tasks");
    let echo = until("a udp echo through node a", &agents, || who_echoes(NODE_A, udp)).await;
    assert!(tasks.contains(&echo), "{echo} is one of {tasks:?}");

    println!("=== one task found unhealthy: no new connections, though it still answers");
    let sick = serving(&t).into_iter().next().unwrap();
    let (sick_id, healthy_id) = {
        let id = sick.task.id.to_string();
        let other = tasks.iter().find(|t| **t != id).cloned().unwrap();
        (id, other)
    };
    let node_port = sick.task.status.ports.iter().find(|p| p.target_port == 80).unwrap();
    let direct = u16::try_from(node_port.published_port).unwrap();
    let http = reconciler_api::http::http_client(Duration::from_secs(3)).unwrap();
    http.get(format!("http://{NODE_B}:{direct}/fail-health")).send().await.unwrap();
    let sick_task = TaskId::new(&sick_id);
    let reported = |t: &ServiceTasks| {
        t.tasks.iter().any(|v| v.task.id == sick_task && !v.task.status.err.is_empty())
    };
    let t = wait_tasks(&c, &agents, "the unhealthy task reported", reported).await;
    let at = Instant::now();
    let view = t.tasks.iter().find(|v| v.task.id == sick_task).unwrap();
    println!(
        "=== {sick_id}: {} with {:?} ({})",
        view.task.status.state, view.task.status.err, view.task.status.message
    );
    assert_eq!(view.task.status.state, TaskState::Running, "still being stopped");
    assert_eq!(view.task.status.err, "processexec: unhealthy container");
    // The mesh follows within moments; from then on every new connection goes to the other.
    until("the unhealthy task out of the mesh", &agents, || async {
        let got = who_answers(NODE_A, tcp).await?;
        (got == healthy_id).then_some(())
    })
    .await;
    println!("=== out of the mesh {:?} after the API showed it", at.elapsed());
    assert!(at.elapsed() < Duration::from_secs(2), "{:?}", at.elapsed());
    for ip in [NODE_A, NODE_B, NODE_A, NODE_B, NODE_A, NODE_B] {
        assert_eq!(who_answers(ip, tcp).await.as_deref(), Some(healthy_id.as_str()), "via {ip}");
    }
    for _ in 0..3 {
        assert_eq!(who_echoes(NODE_A, udp).await.as_deref(), Some(healthy_id.as_str()));
    }
    assert_eq!(
        who_answers(NODE_B, direct).await.as_deref(),
        Some(sick_id.as_str()),
        "the unhealthy task is alive (ignoring SIGTERM), yet gets nothing from the mesh"
    );
    c.remove_service(SERVICE).await.unwrap();
    drop(a);
    drop(b);
    drop(cluster);
    let left: Vec<_> =
        agent::mesh::kernel::tables().into_iter().filter(|(_, p)| pids.contains(p)).collect();
    assert!(left.is_empty(), "the agents' NAT tables are removed: {left:?}");
}
