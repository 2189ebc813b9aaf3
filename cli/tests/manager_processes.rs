//! Three real `flotilla manager` processes on loopback: `kill -9` the leader during a stream
//! of writes; a new leader takes over, and every acknowledged write is on every manager
//! afterwards (the killed one included, once restarted from its data folder).

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::{ApiError, ClientError};
use reconciler_manager::harness::ProcessCluster;
use reconciler_store::{Expect, StoreCommand};
use reconciler_types::{Node, NodeId};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Writes node `name` through any running manager, retrying until acknowledged. A conflict
/// on retry means an earlier, unanswered attempt was committed: also acknowledged.
async fn write_acked(cluster: &ProcessCluster, name: &str, start: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = start;
    while Instant::now() < deadline {
        i = (i + 1) % cluster.managers.len();
        if !cluster.managers[i].is_running() {
            continue;
        }
        let node = Node { id: NodeId::new(name), ..Node::default() };
        let cmd = StoreCommand::PutNode { node, expected: Expect::Absent };
        match cluster.client(i).unwrap().write(cmd).await {
            Ok(_) => return true,
            Err(ClientError::Api(ApiError::Conflict(_))) => return true,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write() {
    let root = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let mut cluster = ProcessCluster::start(binary, root.path(), 3).await.unwrap();
    let old_leader = cluster.leader().await.unwrap();
    println!("=== leader is manager {}", old_leader + 1);
    let mut acked = BTreeSet::new();
    for i in 0..60 {
        if i == 20 {
            println!("=== kill -9 manager {}", old_leader + 1);
            cluster.kill(old_leader).unwrap();
        }
        let name = format!("n{i:03}");
        if write_acked(&cluster, &name, i).await {
            acked.insert(name);
        }
    }
    assert_eq!(acked.len(), 60, "writes kept failing after the leader died");
    let new_leader = cluster.leader().await.unwrap();
    assert_ne!(new_leader, old_leader);
    println!("=== new leader is manager {}; restart manager {}", new_leader + 1, old_leader + 1);
    cluster.restart(old_leader).unwrap();
    cluster.wait_voters(old_leader, 3).await.unwrap();
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = cluster.client(i).unwrap().state::<reconciler_store::ClusterState>().await;
            let have: BTreeSet<String> =
                state.map(|s| s.nodes.keys().map(|k| k.to_string()).collect()).unwrap_or_default();
            let missing: Vec<&String> = acked.difference(&have).collect();
            if missing.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "manager {} misses {missing:?}", i + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
