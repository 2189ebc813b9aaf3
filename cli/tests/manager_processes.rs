//! Three real `flotilla manager` processes on loopback: `kill -9` the leader while several
//! writers have writes in flight; a new leader takes over, and every acknowledged write (a
//! success reply, nothing else) is on every manager afterwards: the two survivors, and the
//! killed one once restarted from its data folder.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::ApiClient;
use reconciler_store::{ClusterState, Expect, StoreCommand};
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{Node, NodeId};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Concurrent writers: enough that writes are in flight whenever the kill lands.
const WRITERS: usize = 4;
/// Writes acknowledged before the kill, and again after it, before the writers stop.
const ACKED_EACH_SIDE: usize = 40;

/// One write attempt and its outcome.
#[derive(Debug)]
struct Attempt {
    name: String,
    sent: Instant,
    answered: Instant,
    /// The manager replied with success. An error, a timeout or a refused connection is
    /// not an acknowledgement (the write may or may not have been committed).
    acked: bool,
}

/// What the writers share with the test.
#[derive(Default)]
struct Progress {
    in_flight: AtomicUsize,
    acked: AtomicUsize,
    stop: AtomicBool,
}

/// Writes a new node per attempt, rotating over every manager (a killed one refuses the
/// connection; a follower forwards to the leader), until told to stop.
async fn writer(w: usize, clients: Vec<ApiClient>, progress: Arc<Progress>) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for k in 0usize.. {
        if progress.stop.load(Ordering::SeqCst) {
            break;
        }
        let name = format!("w{w}-{k:05}");
        let node = Node { id: NodeId::new(&name), ..Node::default() };
        let cmd = StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent };
        let client = &clients[(w + k) % clients.len()];
        progress.in_flight.fetch_add(1, Ordering::SeqCst);
        let sent = Instant::now();
        let acked = client.write(cmd).await.is_ok();
        let answered = Instant::now();
        progress.in_flight.fetch_sub(1, Ordering::SeqCst);
        if acked {
            progress.acked.fetch_add(1, Ordering::SeqCst);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        attempts.push(Attempt { name, sent, answered, acked });
    }
    attempts
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until manager `i`'s own state holds every name in `acked`.
async fn assert_has_all(cluster: &ProcessCluster, i: usize, acked: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = cluster.client(i).unwrap().state::<ClusterState>().await;
        let have: BTreeSet<String> =
            state.map(|s| s.nodes.keys().map(|k| k.to_string()).collect()).unwrap_or_default();
        let missing: Vec<&String> = acked.difference(&have).collect();
        if missing.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "manager {} misses {missing:?}", i + 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_loses_no_acknowledged_write() {
    let root = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let mut cluster = ProcessCluster::start(binary, root.path(), 3).await.unwrap();
    let old_leader = cluster.leader().await.unwrap();
    println!("=== leader is manager {}", old_leader + 1);
    let clients: Vec<ApiClient> = (0..3).map(|i| cluster.client(i).unwrap()).collect();
    let progress = Arc::new(Progress::default());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(w, clients.clone(), Arc::clone(&progress))))
        .collect();
    wait_until("writes before the kill", 30, || {
        progress.acked.load(Ordering::SeqCst) >= ACKED_EACH_SIDE
    })
    .await;
    wait_until("a write in flight", 10, || progress.in_flight.load(Ordering::SeqCst) > 0).await;
    let killed_at = Instant::now();
    cluster.kill(old_leader).unwrap();
    println!("=== kill -9 manager {}", old_leader + 1);
    let before = progress.acked.load(Ordering::SeqCst);
    wait_until("writes after the kill", 60, || {
        progress.acked.load(Ordering::SeqCst) >= before + ACKED_EACH_SIDE
    })
    .await;
    progress.stop.store(true, Ordering::SeqCst);
    let mut attempts = Vec::new();
    for w in writers {
        attempts.extend(w.await.unwrap());
    }
    let across_kill = attempts.iter().filter(|a| a.sent < killed_at && a.answered > killed_at);
    let across_kill = across_kill.count();
    println!("=== {} attempts, {across_kill} in flight at the kill", attempts.len());
    assert!(across_kill > 0, "no write was in flight when the leader was killed");
    let acked: BTreeSet<String> =
        attempts.iter().filter(|a| a.acked).map(|a| a.name.clone()).collect();
    let new_leader = cluster.leader().await.unwrap();
    assert_ne!(new_leader, old_leader);
    println!("=== new leader is manager {}; check the survivors", new_leader + 1);
    for i in (0..3).filter(|i| *i != old_leader) {
        assert_has_all(&cluster, i, &acked).await;
    }
    println!("=== restart manager {} from its data folder", old_leader + 1);
    cluster.restart(old_leader).unwrap();
    cluster.wait_voters(old_leader, 3).await.unwrap();
    assert_has_all(&cluster, old_leader, &acked).await;
}
