//! Multi-node Raft tests over the in-memory network with paused time: election, replication,
//! losing the leader, losing quorum, snapshots, and restarting from the data folder.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openraft::BasicNode;
use reconciler_store::log_store::open_database;
use reconciler_store::network::PeerHealth;
use reconciler_store::network::mem::MemRouter;
use reconciler_store::{Expect, RaftId, RaftNode, StoreCommand, new_raft_node, raft_config};
use reconciler_types::{Node, NodeId};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

struct Cluster {
    router: MemRouter,
    dir: tempfile::TempDir,
    nodes: BTreeMap<RaftId, RaftNode>,
    snapshot_every: u64,
}

impl Cluster {
    async fn new(n: u64, snapshot_every: u64) -> Cluster {
        let mut c = Cluster {
            router: MemRouter::default(),
            dir: tempfile::tempdir().unwrap(),
            nodes: BTreeMap::new(),
            snapshot_every,
        };
        for id in 1..=n {
            c.start(id).await;
        }
        let members: BTreeMap<RaftId, BasicNode> =
            (1..=n).map(|id| (id, BasicNode::new(format!("mem-{id}")))).collect();
        c.nodes[&1].raft.initialize(members).await.unwrap();
        c
    }

    async fn start(&mut self, id: RaftId) {
        let path = self.dir.path().join(format!("n{id}.redb"));
        let node = start_node(&self.router, id, &path, self.snapshot_every).await;
        self.router.add(id, node.raft.clone());
        self.nodes.insert(id, node);
    }

    async fn kill(&mut self, id: RaftId) {
        println!("=== kill node {id}");
        self.router.remove(id);
        let node = self.nodes.remove(&id).unwrap();
        node.raft.shutdown().await.unwrap();
    }

    async fn leader(&self) -> RaftId {
        let any = self.nodes.values().next().unwrap();
        let m = any
            .raft
            .wait(Some(Duration::from_secs(30)))
            .metrics(|m| m.current_leader.is_some_and(|l| self.nodes.contains_key(&l)), "leader")
            .await
            .unwrap();
        m.current_leader.unwrap()
    }

    async fn write_node(&self, leader: RaftId, name: &str) -> u64 {
        let node = Node { id: NodeId::new(name), ..Node::default() };
        let cmd = StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent };
        let resp = self.nodes[&leader].raft.client_write(cmd.into()).await.unwrap();
        resp.data.into_result().unwrap()
    }

    async fn wait_applied(&self, index: u64) {
        for node in self.nodes.values() {
            node.raft
                .wait(Some(Duration::from_secs(30)))
                .applied_index_at_least(Some(index), "applied")
                .await
                .unwrap();
        }
    }
}

async fn start_node(router: &MemRouter, id: RaftId, path: &Path, every: u64) -> RaftNode {
    let db = open_database(path).unwrap();
    let health = PeerHealth::default();
    let net = router.factory(id, health.clone());
    new_raft_node(id, raft_config(every).unwrap(), db, net, health).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn three_nodes_elect_a_leader_and_replicate_writes() {
    let c = Cluster::new(3, 1000).await;
    let leader = c.leader().await;
    println!("=== leader is {leader}");
    let mut last = 0;
    for i in 0..10 {
        last = c.write_node(leader, &format!("n{i}")).await;
    }
    c.wait_applied(last).await;
    for node in c.nodes.values() {
        assert_eq!(node.state.snapshot().nodes.len(), 10, "node {}", node.id);
    }
}

#[tokio::test(start_paused = true)]
async fn acknowledged_writes_survive_the_leader_being_killed() {
    let mut c = Cluster::new(3, 1000).await;
    let first = c.leader().await;
    let mut acked = Vec::new();
    for i in 0..5 {
        c.write_node(first, &format!("a{i}")).await;
        acked.push(format!("a{i}"));
    }
    c.kill(first).await;
    let second = c.leader().await;
    assert_ne!(first, second);
    println!("=== new leader is {second}");
    let mut last = 0;
    for i in 0..5 {
        last = c.write_node(second, &format!("b{i}")).await;
        acked.push(format!("b{i}"));
    }
    println!("=== restart node {first} from its data folder");
    c.start(first).await;
    c.wait_applied(last).await;
    for node in c.nodes.values() {
        let state = node.state.snapshot();
        for name in &acked {
            assert!(
                state.nodes.contains_key(&NodeId::new(name.as_str())),
                "{name} missing on {}",
                node.id
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_is_elected_within_the_lease_and_one_election_timeout() {
    // Detection is the leader's lease (the longest election timeout) plus the survivor's own
    // election timeout, checked once per tick (1.5 heartbeat intervals): at worst
    // 2 × max + 1.5 × heartbeat after the last heartbeat, which is what bounds failover.
    let config = raft_config(1000).unwrap();
    let worst =
        Duration::from_millis(2 * config.election_timeout_max + config.heartbeat_interval * 3 / 2);
    assert!(worst <= Duration::from_millis(1200), "the Raft timings allow {worst:?}");
    for round in 0..3 {
        let mut c = Cluster::new(3, 1000).await;
        let first = c.leader().await;
        let index = c.write_node(first, "a").await;
        c.wait_applied(index).await;
        let killed = tokio::time::Instant::now();
        c.kill(first).await;
        let second = c.leader().await;
        let took = killed.elapsed();
        println!("=== round {round}: node {second} leads {took:?} after node {first} was killed");
        assert_ne!(first, second);
        assert!(took <= worst, "a new leader after {took:?}, more than {worst:?}");
        let lease_less_a_tick = config.election_timeout_max - config.heartbeat_interval * 3 / 2;
        assert!(
            took >= Duration::from_millis(lease_less_a_tick),
            "a new leader after {took:?}: within the old leader's lease"
        );
        c.write_node(second, "b").await;
    }
}

#[tokio::test(start_paused = true)]
async fn writes_do_not_commit_without_quorum_and_reads_still_work() {
    let c = Cluster::new(3, 1000).await;
    let leader = c.leader().await;
    let index = c.write_node(leader, "before").await;
    c.wait_applied(index).await;
    for id in c.nodes.keys().filter(|id| **id != leader) {
        c.router.set_isolated(*id, true);
    }
    let node = Node { id: NodeId::new("after"), ..Node::default() };
    let cmd = StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent };
    let write = c.nodes[&leader].raft.client_write(cmd.into());
    let outcome = tokio::time::timeout(Duration::from_secs(5), write).await;
    assert!(outcome.is_err(), "a write committed without a quorum");
    for node in c.nodes.values() {
        let state = node.state.snapshot();
        assert!(state.nodes.contains_key(&NodeId::new("before")));
        assert!(!state.nodes.contains_key(&NodeId::new("after")));
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_node_catches_up_from_a_snapshot_after_compaction() {
    let mut c = Cluster::new(1, 20).await;
    let leader = c.leader().await;
    let mut last = 0;
    for i in 0..300 {
        last = c.write_node(leader, &format!("n{i}")).await;
    }
    c.wait_applied(last).await;
    let m = c.nodes[&leader].raft.metrics().borrow().clone();
    assert!(m.snapshot.is_some(), "no snapshot was built");
    assert!(m.purged.is_some_and(|p| p.index > 100), "the log was not compacted: {:?}", m.purged);
    println!("=== add node 2 as a learner; the log it needs is gone");
    c.start(2).await;
    let raft = &c.nodes[&leader].raft;
    raft.add_learner(2, BasicNode::new("mem-2"), true).await.unwrap();
    c.wait_applied(last).await;
    assert_eq!(c.nodes[&2].state.snapshot().nodes.len(), 300);
}

#[tokio::test(start_paused = true)]
async fn every_applied_command_is_published_in_log_order_with_its_response() {
    let c = Cluster::new(3, 1000).await;
    let leader = c.leader().await;
    let follower = *c.nodes.keys().find(|id| **id != leader).unwrap();
    let mut events = c.nodes[&follower].state.subscribe();
    let first = c.write_node(leader, "a").await;
    c.write_node(leader, "b").await;
    let node = Node { id: NodeId::new("a"), ..Node::default() };
    let refused = StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent };
    let resp = c.nodes[&leader].raft.client_write(refused.clone().into()).await.unwrap();
    assert!(resp.data.refusal.is_some());
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.recv().await.unwrap() {
            reconciler_store::StoreEvent::Applied { index, command, response } => {
                seen.push((index, (*command).clone(), response.refusal.is_some()));
            }
            reconciler_store::StoreEvent::Reset { .. } => panic!("no snapshot was installed"),
        }
    }
    assert_eq!(seen[0].0, first);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in log order");
    assert_eq!((seen[2].1.clone(), seen[2].2), (refused, true), "a refusal is published too");
}
