//! The leader loop on three real manager processes, with fake agents that speak the real
//! dispatcher protocol (`reconciler-testkit`): a service gets its tasks placed and running, a
//! rolling update goes in batches (read from the task history, not assumed), a version whose
//! tasks fail rolls back by itself, a `kill -9` of the leader mid-rollout leaves the new
//! leader to finish it without starting any slot twice, a node whose heartbeats stop goes
//! down and its tasks are replaced elsewhere, and a drained node's tasks move off it.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::ApiClient;
use reconciler_api::services::ServiceTasks;
use reconciler_testkit::fake_agent::{self, Behaviour, FakeAgent, FakeNode};
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{MonoTime, NodeId, NodeState, Task, TaskState, UpdateState};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

struct Setup {
    cluster: ProcessCluster,
    agents: Vec<FakeAgent>,
    _dir: tempfile::TempDir,
}

async fn start(agents: usize, behaviour: Behaviour) -> Setup {
    start_with(agents, behaviour, &[]).await
}

/// [`start`], the first manager initialised with `init_args` beside `--init`.
async fn start_with(agents: usize, behaviour: Behaviour, init_args: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let root = dir.path().join("m");
    let cluster =
        ProcessCluster::start_with_init_args(bin, &root, 3, false, init_args).await.unwrap();
    let worker = cluster.client(0).unwrap().join_token("worker", false).await.unwrap().token;
    let mut fakes = Vec::new();
    for i in 0..agents {
        let host = format!("a{}", i + 1);
        let at = &cluster.managers[i % 3].addr;
        let node = FakeNode::named(&host);
        let agent_dir = dir.path().join(&host);
        let fake = FakeAgent::start(at, &worker, false, &agent_dir, node, behaviour.clone()).await;
        fakes.push(fake.unwrap());
    }
    let s = Setup { cluster, agents: fakes, _dir: dir };
    s.wait_ready(agents).await;
    s
}

impl Setup {
    async fn cli(&self, i: usize, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(args)
            .env("FLOTILLA_HOST", &self.cluster.managers[i].addr)
            .env("FLOTILLA_TOKEN", &self.cluster.token)
            .env("FLOTILLA_TLSCACERT", self.cluster.ca_file())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let managers = self.statuses().await;
            panic!("flotilla {args:?} failed: {stderr}\n{managers:#?}");
        }
        String::from_utf8(out.stdout).unwrap()
    }

    fn running(&self) -> usize {
        (0..3).find(|i| self.cluster.managers[*i].is_running()).unwrap()
    }

    fn client(&self) -> ApiClient {
        self.cluster.client(self.running()).unwrap()
    }

    /// Waits until the update to `probe:v2` completed on all six slots; answers the tasks and
    /// when each slot's v2 task started, after checking no slot started twice.
    async fn updated_to_v2(&self) -> (ServiceTasks, BTreeMap<u64, Vec<MonoTime>>) {
        self.wait("the update to complete", "web", |t| {
            update_state(t) == Some(UpdateState::Completed) && running_with(t, "probe:v2") == 6
        })
        .await;
        let t = self.client().service_tasks("web").await.unwrap();
        let started = starts(&t, "probe:v2");
        assert_eq!(started.len(), 6, "{:#?}", describe(&t));
        assert!(started.values().all(|s| s.len() == 1), "a slot started twice: {started:?}");
        (t, started)
    }

    /// The id of the fake node named `host`.
    async fn node_id(&self, host: &str) -> NodeId {
        let nodes = self.client().nodes().await.unwrap();
        nodes.into_iter().find(|v| v.hostname == host).map(|v| v.id).unwrap()
    }

    /// Waits until the node named `host` is in `state`.
    async fn wait_node(&self, host: &str, state: NodeState) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let nodes = self.client().nodes().await.unwrap_or_default();
            if nodes.iter().any(|v| v.hostname == host && v.status == state) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let nodes = self.client().nodes().await;
        panic!("node {host} did not become {state:?}: {nodes:#?}");
    }

    /// Waits until `n` fake nodes are ready.
    async fn wait_ready(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let nodes = self.client().nodes().await.unwrap_or_default();
            let fake = nodes.iter().filter(|v| v.hostname.starts_with('a'));
            if fake.filter(|v| v.status == NodeState::Ready).count() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} fake nodes did not become ready");
    }

    /// What each running manager says of itself (leader loop counters included).
    async fn statuses(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in (0..3).filter(|i| self.cluster.managers[*i].is_running()) {
            let status = self.cluster.client(i).unwrap().status().await;
            out.push(format!("manager {}: {status:?}", i + 1));
        }
        out
    }

    /// Waits until `f` holds of the service's tasks (answered by the leader).
    async fn wait(&self, what: &str, service: &str, f: impl Fn(&ServiceTasks) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(t) = self.client().service_tasks(service).await {
                if f(&t) {
                    return;
                }
                last = Some(t);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let summary = last.map(|t| describe(&t));
        let managers = self.statuses().await;
        panic!("timed out waiting for {what}: {summary:#?}\n{managers:#?}");
    }
}

fn describe(t: &ServiceTasks) -> Vec<String> {
    let mut rows: Vec<String> = t
        .tasks
        .iter()
        .map(|v| {
            let k = &v.task;
            format!(
                "slot {} v{} {} desired {:?} state {:?} {}",
                k.slot, k.spec_version, k.id, k.desired_state, k.status.state, k.status.err
            )
        })
        .collect();
    rows.sort();
    rows.push(format!("update status: {:?}", t.service.update_status));
    rows
}

fn image_of(t: &Task) -> &str {
    &t.spec.container_spec.image
}

/// Tasks of `image` that are running and meant to be.
fn running_with(t: &ServiceTasks, image: &str) -> usize {
    let live = t.tasks.iter().map(|v| &v.task).filter(|k| {
        k.status.state == TaskState::Running
            && k.desired_state == TaskState::Running
            && image_of(k) == image
    });
    live.count()
}

fn update_state(t: &ServiceTasks) -> Option<UpdateState> {
    t.service.update_status.as_ref().map(|s| s.state)
}

/// When each task of `image` was first seen RUNNING, by slot (a slot started twice has two).
fn starts(t: &ServiceTasks, image: &str) -> BTreeMap<u64, Vec<MonoTime>> {
    let mut by_slot: BTreeMap<u64, Vec<MonoTime>> = BTreeMap::new();
    for k in t.tasks.iter().map(|v| &v.task).filter(|k| image_of(k) == image) {
        if k.status.state >= TaskState::Running {
            by_slot.entry(k.slot).or_default().push(k.status.timestamp);
        }
    }
    by_slot
}

const CREATE: &[&str] = &[
    "service",
    "create",
    "--detach",
    "--name",
    "web",
    "--replicas",
    "6",
    "--update-parallelism",
    "2",
    "--update-delay",
    "1500ms",
    "--update-order",
    "start-first",
    "--update-monitor",
    "1s",
    "--update-failure-action",
    "rollback",
    "--rollback-parallelism",
    "0",
    "--rollback-monitor",
    "1s",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_run_an_update_goes_in_batches_and_a_failing_version_rolls_back() {
    let s = start(3, fake_agent::failing_images(":bad", Duration::from_millis(200))).await;
    let follower = (s.cluster.leader().await.unwrap() + 1) % 3;
    s.cli(follower, &[CREATE, &["probe:v1"]].concat()).await;
    s.wait("six running replicas", "web", |t| running_with(t, "probe:v1") == 6).await;
    let placed = s.client().service_tasks("web").await.unwrap();
    let nodes: std::collections::BTreeSet<_> =
        placed.tasks.iter().filter_map(|v| v.task.node_id.clone()).collect();
    assert_eq!(nodes.len(), 3, "the replicas are spread over the three nodes");

    s.cli(follower, &["service", "update", "--detach", "--image", "probe:v2", "web"]).await;
    let (_, started) = s.updated_to_v2().await;
    let mut times: Vec<MonoTime> = started.values().flatten().copied().collect();
    times.sort();
    // Parallelism 2 with a 1.5 s delay: three batches of two, at least the delay apart.
    for (i, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        if i % 2 == 0 {
            assert!(gap < Duration::from_millis(1000), "batch {} split: {times:?}", i / 2);
        } else {
            assert!(
                gap >= Duration::from_millis(1400),
                "batches {} and {} too close",
                i / 2,
                i / 2 + 1
            );
        }
    }

    s.cli(follower, &["service", "update", "--detach", "--image", "probe:bad", "web"]).await;
    s.wait("the automatic rollback", "web", |t| {
        update_state(t) == Some(UpdateState::RollbackCompleted) && running_with(t, "probe:v2") == 6
    })
    .await;
    let t = s.client().service_tasks("web").await.unwrap();
    assert_eq!(t.service.spec.task_template.container_spec.image, "probe:v2");
    let failed = t.tasks.iter().filter(|v| v.task.status.state == TaskState::Failed);
    assert!(failed.count() >= 1, "the bad version ran and failed: {:#?}", describe(&t));
    drop(s.agents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_new_leader_finishes_a_rollout_when_the_old_one_is_killed_mid_way() {
    let mut s = start(3, fake_agent::healthy()).await;
    let leader = s.cluster.leader().await.unwrap();
    let other = (leader + 1) % 3;
    s.cli(other, &[CREATE, &["probe:v1"]].concat()).await;
    s.wait("six running replicas", "web", |t| running_with(t, "probe:v1") == 6).await;
    s.cli(other, &["service", "update", "--detach", "--image", "probe:v2", "web"]).await;
    s.wait("the first batch", "web", |t| running_with(t, "probe:v2") >= 2).await;
    s.cluster.kill(leader).unwrap();
    let (t, _) = s.updated_to_v2().await;
    let new_per_slot = t.tasks.iter().filter(|v| image_of(&v.task) == "probe:v2").count();
    assert_eq!(new_per_slot, 6, "one new task per slot: {:#?}", describe(&t));
}

/// The nodes running `image`'s tasks that are meant to run, with how many each.
fn running_on(t: &ServiceTasks, image: &str) -> BTreeMap<NodeId, usize> {
    let mut by_node = BTreeMap::new();
    for k in t.tasks.iter().map(|v| &v.task) {
        if k.status.state == TaskState::Running
            && k.desired_state == TaskState::Running
            && image_of(k) == image
            && let Some(n) = &k.node_id
        {
            *by_node.entry(n.clone()).or_insert(0) += 1;
        }
    }
    by_node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_node_goes_down_and_a_drained_node_hands_over_its_tasks() {
    let s = start_with(3, fake_agent::healthy(), &["--dispatcher-heartbeat", "500ms"]).await;
    s.cli(0, &["service", "create", "--detach", "--name", "web", "--replicas", "6", "probe:v1"])
        .await;
    s.wait("six running replicas", "web", |t| running_with(t, "probe:v1") == 6).await;
    let (a1, a2, a3) = (s.node_id("a1").await, s.node_id("a2").await, s.node_id("a3").await);
    let t = s.client().service_tasks("web").await.unwrap();
    assert_eq!(running_on(&t, "probe:v1").get(&a1), Some(&2), "{:#?}", describe(&t));

    println!("=== a1 goes silent: down, and its two tasks are replaced on a2 and a3");
    s.agents[0].stop();
    s.wait_node("a1", NodeState::Down).await;
    s.wait("six running replicas off a1", "web", |t| {
        let on = running_on(t, "probe:v1");
        !on.contains_key(&a1) && on.values().sum::<usize>() == 6
    })
    .await;
    let t = s.client().service_tasks("web").await.unwrap();
    let on = running_on(&t, "probe:v1");
    assert_eq!((on.get(&a2), on.get(&a3)), (Some(&3), Some(&3)), "{:#?}", describe(&t));
    let slots: std::collections::BTreeSet<u64> = t
        .tasks
        .iter()
        .filter(|v| v.task.desired_state == TaskState::Running)
        .map(|v| v.task.slot)
        .collect();
    assert_eq!(slots.len(), 6, "each slot has one task meant to run: {:#?}", describe(&t));

    println!("=== a2 is drained: its tasks move to a3, the only active ready node");
    s.cli(0, &["node", "update", "--availability", "drain", "a2"]).await;
    s.wait("every replica on a3", "web", |t| {
        let on = running_on(t, "probe:v1");
        on.get(&a3) == Some(&6) && on.len() == 1
    })
    .await;
    let t = s.client().service_tasks("web").await.unwrap();
    let on_a2 = t.tasks.iter().map(|v| &v.task).filter(|k| k.node_id.as_ref() == Some(&a2));
    assert!(
        on_a2.clone().all(|k| k.desired_state > TaskState::Running),
        "nothing is meant to run on the drained node: {:#?}",
        describe(&t)
    );
    assert!(on_a2.count() >= 3, "a2 ran its tasks before the drain");
}
