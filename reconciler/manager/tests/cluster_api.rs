//! In-process managers on loopback HTTP: init, join, forwarding, node commands, join tokens,
//! and every kind of bad input refused without damage.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_manager::api::{JoinRequest, NodeUpdate, SecretCreate, SecretView};
use reconciler_manager::{
    ApiClient, ApiError, ClientError, ManagerOptions, RunningManager, StartMode, start_manager,
};
use reconciler_store::{ClusterState, Expect, StoreCommand};
use reconciler_types::{Availability, Node, NodeId, NodeRole};
use std::path::Path;
use std::time::Duration;

fn options(dir: &Path, mode: StartMode, host: &str) -> ManagerOptions {
    ManagerOptions {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: String::new(),
        mode,
        hostname: host.to_owned(),
        snapshot_every: 1000,
        autolock: false,
        unlock_key: None,
        dispatcher: Default::default(),
        dispatcher_heartbeat: None,
        insecure: false,
        cert_expiry: reconciler_manager::pki::DEFAULT_CERT_EXPIRY,
        source: None,
    }
}

/// An operator's client: the API token, verifying the manager against its `ca.pem`.
fn client(m: &RunningManager) -> ApiClient {
    let token = m.manager.identity.api_token.clone();
    let addr = m.local_addr.to_string();
    match &m.manager.tls {
        Some(tls) => {
            let ca = tls.roots_pem();
            ApiClient::with_tls(&addr, &token, Duration::from_secs(10), &ca, None).unwrap()
        }
        None => ApiClient::new(&addr, &token, Duration::from_secs(10)).unwrap(),
    }
}

async fn three_managers(root: &Path) -> Vec<RunningManager> {
    let first = start_manager(options(&root.join("m1"), StartMode::Init, "m1")).await.unwrap();
    let token = client(&first).join_token("manager", false).await.unwrap().token;
    let mut all = vec![first];
    for name in ["m2", "m3"] {
        let mode = StartMode::Join { addr: all[0].local_addr.to_string(), token: token.clone() };
        all.push(start_manager(options(&root.join(name), mode, name)).await.unwrap());
    }
    all
}

fn expect_api_err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ApiError {
    match r {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_managers_form_a_cluster_and_followers_forward_writes() {
    let root = tempfile::tempdir().unwrap();
    let ms = three_managers(root.path()).await;
    let c1 = client(&ms[0]);
    assert_eq!(c1.status().await.unwrap().voters, vec![1, 2, 3]);
    // Reachability is what the leader heard lately: wait for it to settle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = c1.nodes().await.unwrap();
        let labels: Vec<&str> = rows.iter().map(|r| r.manager_status.as_str()).collect();
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        if sorted == ["Leader", "Reachable", "Reachable"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("=== write through a follower");
    let c3 = client(&ms[2]);
    let node = Node { id: NodeId::new("w1"), ..Node::default() };
    let index = c3
        .write(StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent })
        .await
        .unwrap()
        .index;
    let update = NodeUpdate { availability: Some(Availability::Drain), ..NodeUpdate::default() };
    let updated = c3.update_node("w1", &update).await.unwrap();
    assert!(updated.version > index);
    for m in &ms {
        let mut applied = m.manager.node.state.applied();
        applied.wait_for(|i| *i >= updated.version).await.unwrap();
        let state = m.manager.node.state.snapshot();
        assert_eq!(state.nodes[&NodeId::new("w1")].node.spec.availability, Availability::Drain);
    }
    for m in ms {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_rotate_and_wrong_tokens_or_roles_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let c = client(&m1);
    let worker = c.join_token("worker", false).await.unwrap().token;
    let manager = c.join_token("manager", false).await.unwrap().token;
    assert!(worker.starts_with("FLT-1-") && worker != manager);
    let join = |token: &str, role, node_id: Option<&str>| JoinRequest {
        token: token.to_owned(),
        role,
        node_id: node_id.map(NodeId::new),
        hostname: "h".into(),
        addr: "127.0.0.1:1".into(),
        csr: None,
    };
    let wrong_role: Result<serde_json::Value, _> =
        c.post("/v1/join", &join(&worker, NodeRole::Manager, None)).await;
    assert!(expect_api_err(wrong_role).to_string().contains("worker token"));
    let ok: serde_json::Value =
        c.post("/v1/join", &join(&worker, NodeRole::Worker, Some("w-1"))).await.unwrap();
    assert_eq!(ok["role"], "worker");
    assert!(ok["peer_token"].is_null(), "workers must not get manager credentials");
    let dup: Result<serde_json::Value, _> =
        c.post("/v1/join", &join(&worker, NodeRole::Worker, Some("w-1"))).await;
    assert!(matches!(expect_api_err(dup), ApiError::Conflict(m) if m.contains("already in use")));
    println!("=== rotate the worker token");
    let rotated = c.join_token("worker", true).await.unwrap().token;
    assert_ne!(rotated, worker);
    assert_eq!(c.join_token("manager", false).await.unwrap().token, manager);
    let old: Result<serde_json::Value, _> =
        c.post("/v1/join", &join(&worker, NodeRole::Worker, None)).await;
    assert!(matches!(expect_api_err(old), ApiError::Forbidden(_)));
    let new: serde_json::Value =
        c.post("/v1/join", &join(&rotated, NodeRole::Worker, None)).await.unwrap();
    assert_eq!(new["role"], "worker");
    let bad = format!("FLT-1-{}-{}", "0".repeat(50), "1".repeat(25));
    let other: Result<serde_json::Value, _> =
        c.post("/v1/join", &join(&bad, NodeRole::Worker, None)).await;
    assert!(expect_api_err(other).to_string().contains("another cluster"));
    m1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let root = tempfile::tempdir().unwrap();
    // Plain HTTP (`--insecure-listen`), so raw requests can be written by hand.
    let mut opts = options(&root.path().join("m1"), StartMode::Init, "m1");
    opts.insecure = true;
    let m1 = start_manager(opts).await.unwrap();
    let before = m1.manager.node.state.snapshot();
    let base = format!("http://{}", m1.local_addr);
    let http = reqwest::Client::new();
    let token = m1.manager.identity.api_token.clone();
    let no_auth = http.get(format!("{base}/v1/nodes")).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);
    let wrong = http.get(format!("{base}/v1/nodes")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let malformed = http
        .post(format!("{base}/v1/write"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"command\": {\"op\": \"put_node\"")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let text = malformed.text().await.unwrap();
    assert!(text.contains("\"error\""), "{text}");
    let huge = vec![b'x'; 2 * 1024 * 1024];
    // The server closes a connection whose body it refused: use a connection of its own.
    let oversize = reqwest::Client::new()
        .post(format!("{base}/v1/write"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(oversize.status(), 413);
    let api_on_raft = http
        .post(format!("{base}/raft/vote"))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(api_on_raft.status(), 401, "the API token must not reach raft RPCs");
    let c = client(&m1);
    let rm = expect_api_err(c.remove_node(m1.manager.identity.node_id.as_str(), true).await);
    assert!(rm.to_string().contains("must be demoted to worker before removal"), "{rm}");
    assert_eq!(m1.manager.node.state.snapshot().nodes, before.nodes);
    m1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_is_tied_to_its_cluster() {
    let root = tempfile::tempdir().unwrap();
    let a = start_manager(options(&root.path().join("a"), StartMode::Init, "a")).await.unwrap();
    let b = start_manager(options(&root.path().join("b"), StartMode::Init, "b")).await.unwrap();
    let token_b = client(&b).join_token("manager", false).await.unwrap().token;
    a.shutdown().await;
    let again = start_manager(options(&root.path().join("a"), StartMode::Init, "a")).await;
    assert!(again.err().unwrap().to_string().contains("already belongs to cluster"));
    let mode = StartMode::Join { addr: b.local_addr.to_string(), token: token_b };
    let wrong = start_manager(options(&root.path().join("a"), mode, "a")).await;
    assert!(wrong.err().unwrap().to_string().contains("belongs to cluster"));
    println!("=== restart a from its folder");
    let restarted =
        start_manager(options(&root.path().join("a"), StartMode::Restart, "a")).await.unwrap();
    let raft = &restarted.manager.node.raft;
    raft.wait(Some(Duration::from_secs(10))).current_leader(1, "re-elected").await.unwrap();
    assert_eq!(restarted.manager.node.state.snapshot().nodes.len(), 1);
    restarted.shutdown().await;
    b.shutdown().await;
}

/// The README's promise: without quorum a write fails 3 s (the manager's write timeout) after
/// it reached a manager. Seen from the client, that is at least 3 s and, with loopback HTTP
/// on a busy machine, less than 3.5 s.
const NO_QUORUM_AFTER: Duration = Duration::from_secs(3);
const ROUND_TRIP_ALLOWANCE: Duration = Duration::from_millis(500);

fn put_node(name: &str) -> StoreCommand {
    let node = Node { id: NodeId::new(name), ..Node::default() };
    StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent }
}

/// Writes through `c` without quorum: the write must fail with "no quorum" in the promised
/// time, and reads must still work.
async fn assert_no_quorum(c: &ApiClient, name: &str) {
    let started = std::time::Instant::now();
    let err = expect_api_err(c.write(put_node(name)).await);
    let took = started.elapsed();
    println!("no quorum after {took:?}");
    assert!(took >= NO_QUORUM_AFTER, "failed before the write timeout: {took:?}");
    assert!(took < NO_QUORUM_AFTER + ROUND_TRIP_ALLOWANCE, "took {took:?}");
    assert!(err.to_string().starts_with("no quorum: "), "{err}");
    assert!(err.to_string().ends_with(" of 3 managers reachable"), "{err}");
    let rows = c.nodes().await.unwrap();
    let managers: Vec<&str> = rows
        .iter()
        .map(|r| r.manager_status.as_str())
        .filter(|status| !status.is_empty())
        .collect();
    assert_eq!(managers.len(), 3, "{rows:?}");
    assert_eq!(managers.iter().filter(|s| **s == "Unreachable").count(), 2, "{rows:?}");
    assert!(
        c.state::<ClusterState>().await.unwrap().cluster.is_some_and(|i| i.api_token.is_empty())
    );
}

/// The index of the manager that leads, as `ms[0]` sees it.
async fn leader_index(ms: &[RunningManager]) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = client(&ms[0]).status().await.unwrap();
        if let Some(i) = ms.iter().position(|m| Some(m.manager.node.id) == status.leader) {
            return i;
        }
        assert!(std::time::Instant::now() < deadline, "no leader: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// docs/swarm-semantics.md §12 S51: with one of three managers stopped (the leader) writes
/// still succeed; with two stopped they fail (no quorum) and reads still work. Here the last
/// manager is a follower, so the write goes through the forwarding path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s51_quorum_writes_succeed_with_one_manager_stopped_and_fail_with_two() {
    let root = tempfile::tempdir().unwrap();
    let mut ms = three_managers(root.path()).await;
    let first = leader_index(&ms).await;
    println!("=== stop the leader, manager {}", first + 1);
    ms.remove(first).shutdown().await;
    for (i, m) in ms.iter().enumerate() {
        let c = client(m);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        // A write may meet the election; only its eventual success matters here.
        while let Err(e) = c.write(put_node(&format!("after-one-{i}"))).await {
            assert!(std::time::Instant::now() < deadline, "writes keep failing: {e}");
        }
    }
    let second = ms.iter().position(|m| {
        m.manager.node.raft.metrics().borrow().current_leader == Some(m.manager.node.id)
    });
    let second = second.expect("one of the two managers leads");
    println!("=== stop the new leader too");
    ms.remove(second).shutdown().await;
    let survivor = ms.remove(0);
    let c = client(&survivor);
    assert_no_quorum(&c, "late").await;
    let state = c.state::<ClusterState>().await.unwrap();
    assert!(state.nodes.contains_key(&NodeId::new("after-one-0")));
    assert!(state.nodes.contains_key(&NodeId::new("after-one-1")));
    survivor.shutdown().await;
}

/// S51 on the leader's own path: the two followers stop and the leader keeps its role, so
/// the write waits for a quorum that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s51_quorum_lost_under_a_leader_fails_writes_in_time() {
    let root = tempfile::tempdir().unwrap();
    let mut ms = three_managers(root.path()).await;
    let leader = ms.remove(leader_index(&ms).await);
    println!("=== stop both followers");
    for m in ms {
        m.shutdown().await;
    }
    assert_no_quorum(&client(&leader), "late").await;
    leader.shutdown().await;
}

/// S51: demoting the only manager of a one-manager cluster is refused with Swarm's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s51_demoting_the_last_manager_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let before = m1.manager.node.state.snapshot();
    let c = client(&m1);
    let last = expect_api_err(c.change_role(m1.manager.identity.node_id.as_str(), "demote").await);
    assert_eq!(last.to_string(), "attempting to demote the last manager of the swarm");
    assert_eq!(m1.manager.node.state.snapshot().nodes, before.nodes);
    m1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_at_rest_and_autolock_needs_the_unlock_key_after_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m1");
    let mut opts = options(&dir, StartMode::Init, "m1");
    opts.autolock = true;
    let m1 = start_manager(opts.clone()).await.unwrap();
    let unlock_key = m1.new_unlock_key.clone().expect("an unlock key after --autolock");
    let c = client(&m1);
    let secret =
        SecretCreate { name: "db".into(), labels: Default::default(), data: b"hunter2".to_vec() };
    let view: SecretView = c.post("/v1/secrets", &secret).await.unwrap();
    assert_eq!(view.digest.len(), 64);
    println!("=== digests are salted per secret: no dictionary of plain SHA-256 finds them");
    let plain = reconciler_manager::keys::content_digest(b"hunter2");
    assert_eq!(view.salt.len(), 32);
    assert_ne!(view.digest, plain);
    assert_eq!(view.digest, reconciler_planner::secret_digest::salted(&view.salt, &plain));
    let twin = SecretCreate { name: "db2".into(), ..secret.clone() };
    let twin: SecretView = c.post("/v1/secrets", &twin).await.unwrap();
    assert_ne!(twin.digest, view.digest, "equal values do not show equal digests");
    let labelled =
        SecretCreate { labels: [("team".to_owned(), "a".to_owned())].into(), ..secret.clone() };
    let relabelled: SecretView = c.post("/v1/secrets", &labelled).await.unwrap();
    assert_eq!((&relabelled.salt, &relabelled.digest), (&view.salt, &view.digest));
    let other = SecretCreate { data: b"hunter3".to_vec(), ..secret.clone() };
    let refused = expect_api_err(c.post::<_, SecretView>("/v1/secrets", &other).await);
    assert!(refused.to_string().contains("only updates to Labels are allowed"), "{refused}");
    let listed: Vec<SecretView> = c.get("/v1/secrets").await.unwrap();
    assert!(listed.iter().all(|s| s.salt.len() == 32 && s.digest != plain), "{listed:?}");
    assert_eq!(m1.manager.secret_value("db").unwrap(), b"hunter2");
    let exported = serde_json::to_string(&c.state::<ClusterState>().await.unwrap()).unwrap();
    assert!(!exported.contains("hunter2"));
    let listen = m1.local_addr;
    m1.shutdown().await;
    let on_disk = std::fs::read(dir.join("raft.redb")).unwrap();
    assert!(!on_disk.windows(7).any(|w| w == b"hunter2"), "a secret value reached the disk");
    println!("=== restart: the manager stays locked until unlocked");
    let mut restart = options(&dir, StartMode::Restart, "m1");
    restart.listen = listen;
    restart.advertise = listen.to_string();
    let pending = tokio::spawn(start_manager(restart));
    // The locked manager already speaks TLS with its node certificate.
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let tls = reconciler_tls::TlsState::new(&ca).unwrap();
    let http = reconciler_api::pki::tls_client(&tls, Duration::from_secs(5), true).unwrap();
    let url = format!("https://{listen}/v1/unlock");
    let wrong = SymmetricKeyHelper::other_unlock_key();
    let mut status = 0;
    for _ in 0..250 {
        match http.post(&url).json(&serde_json::json!({ "key": wrong })).send().await {
            Ok(r) => {
                status = r.status().as_u16();
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert_eq!(status, 403, "a wrong unlock key must be refused");
    let nodes = http.get(format!("https://{listen}/v1/nodes")).send().await.unwrap();
    assert_eq!(nodes.status(), 503);
    assert!(nodes.text().await.unwrap().contains("locked"));
    let ok = http.post(&url).json(&serde_json::json!({ "key": unlock_key })).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    println!("=== unlocked");
    let started = tokio::time::timeout(Duration::from_secs(20), pending);
    let m1 = started.await.expect("the manager starts once unlocked").unwrap().unwrap();
    assert_eq!(m1.manager.secret_value("db").unwrap(), b"hunter2");
    m1.shutdown().await;
}

struct SymmetricKeyHelper;

impl SymmetricKeyHelper {
    fn other_unlock_key() -> String {
        reconciler_manager::keys::SymmetricKey::generate().unwrap().to_unlock_key()
    }
}
