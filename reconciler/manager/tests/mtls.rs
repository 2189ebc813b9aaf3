//! Mutual TLS between nodes, with in-process managers on loopback: an agent joins with the
//! worker token (the manager pinned by the token's digest first), talks to the dispatcher with
//! its own certificate, and that certificate acts for its own node only; workers cannot speak
//! Raft; removed and expired certificates are refused; short certificates are renewed before
//! they expire; and what crosses the wire between nodes holds no secret in the clear.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::dispatcher::{
    Assignment, AssignmentChange, Assignments, AssignmentsQuery, RegisterRequest,
};
use reconciler_api::operator::{JoinRequest, SecretCreate, SecretView};
use reconciler_api::pki::{CaView, join_tls, tls_client};
use reconciler_api::{ApiError, ClientError, DispatcherClient};
use reconciler_manager::listener::TlsListener;
use reconciler_manager::{ApiClient, ManagerOptions, RunningManager, StartMode, start_manager};
use reconciler_store::network::http::{APPEND_PATH, VOTE_PATH};
use reconciler_store::{Expect, StoreCommand};
use reconciler_tls::{NodeIdentity, NodeKey, RootCa, TlsState};
use reconciler_types::{
    NodeDescription, NodeId, NodeRole, SecretReference, Task, TaskId, TaskState,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

fn client_at(addr: &str, m: &RunningManager) -> ApiClient {
    let token = m.manager.identity.api_token.clone();
    match &m.manager.tls {
        Some(tls) => {
            let ca = tls.roots_pem();
            ApiClient::with_tls(addr, &token, Duration::from_secs(10), &ca, None).unwrap()
        }
        None => ApiClient::new(addr, &token, Duration::from_secs(10)).unwrap(),
    }
}

fn client(m: &RunningManager) -> ApiClient {
    client_at(&m.local_addr.to_string(), m)
}

/// A worker node as an agent holds it after joining over TLS.
struct Worker {
    tls: Arc<TlsState>,
    http: reqwest::Client,
    credential: String,
}

impl Worker {
    /// A dispatcher client of the manager at `addr` with this node's certificate.
    fn dispatcher(&self, addr: &str) -> DispatcherClient {
        DispatcherClient::new(&format!("https://{addr}"), &self.credential, self.http.clone())
    }
}

async fn join_worker(m: &RunningManager, via: &str, host: &str) -> Worker {
    let token = client(m).join_token("worker", false).await.unwrap().token;
    let req = JoinRequest {
        token,
        role: NodeRole::Worker,
        node_id: Some(NodeId::new(host)),
        hostname: host.to_owned(),
        addr: format!("{host}.example:0"),
        csr: None,
    };
    let key = NodeKey::generate().unwrap();
    let (resp, tls) = join_tls(via, req, &key).await.unwrap();
    let http = tls_client(&tls, Duration::from_secs(10), true).unwrap();
    Worker { tls, http, credential: resp.node_credential.unwrap() }
}

fn register_request() -> RegisterRequest {
    let mut description = NodeDescription { nano_cpus: 1_000_000_000, ..Default::default() };
    description.memory_bytes = 1 << 30;
    description.platform.os = "linux".into();
    RegisterRequest { description, addr: "10.1.2.3".into(), runtimes: vec!["process".into()] }
}

fn task_on(id: &str, node: &str, secret: &str) -> Task {
    let mut t =
        Task { id: TaskId::new(id), node_id: Some(NodeId::new(node)), slot: 1, ..Task::default() };
    t.desired_state = TaskState::Running;
    t.status.state = TaskState::Assigned;
    t.spec
        .container_spec
        .secrets
        .push(SecretReference { secret_name: secret.into(), ..Default::default() });
    t
}

fn secrets_in(a: &Assignments) -> Vec<(String, String)> {
    a.changes
        .iter()
        .filter_map(|c| match c {
            AssignmentChange::Update { assignment: Assignment::Secret(f) } => {
                Some((f.name.clone(), String::from_utf8_lossy(&f.data).into_owned()))
            }
            _ => None,
        })
        .collect()
}

fn api_err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ApiError {
    match r {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn put_secret(c: &ApiClient, name: &str, value: &str) {
    let s = SecretCreate { name: name.into(), labels: Default::default(), data: value.into() };
    let _: SecretView = c.post("/v1/secrets", &s).await.unwrap();
}

async fn put_task(c: &ApiClient, task: Task) {
    c.write(StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent })
        .await
        .unwrap();
}

fn query(session: &str) -> AssignmentsQuery {
    AssignmentsQuery { session: session.to_owned(), since: 0, wait_ms: 2000 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_certificate_acts_for_its_own_node_only_and_not_once_it_is_removed() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let addr = m1.local_addr.to_string();
    let c = client(&m1);
    let (a, b) = (join_worker(&m1, &addr, "a").await, join_worker(&m1, &addr, "b").await);
    let who = a.tls.info().unwrap().identity;
    assert_eq!((who.node_id.as_str(), who.role), ("a", NodeRole::Worker));
    assert_eq!(who.cluster_id, m1.manager.identity.cluster_id);
    println!("=== each agent opens its session over mutual TLS and gets its own secret");
    let (da, db) = (a.dispatcher(&addr), b.dispatcher(&addr));
    let sa = da.register(&register_request()).await.unwrap();
    let sb = db.register(&register_request()).await.unwrap();
    put_secret(&c, "for_a", "apple").await;
    put_secret(&c, "for_b", "banana").await;
    put_task(&c, task_on("t1", "a", "for_a")).await;
    put_task(&c, task_on("t2", "b", "for_b")).await;
    let of_a = da.assignments(&query(&sa.session)).await.unwrap();
    assert_eq!(secrets_in(&of_a), [("for_a".to_owned(), "apple".to_owned())]);
    println!("=== a's certificate with b's credential: refused, b's secret stays with b");
    let stolen = DispatcherClient::new(&format!("https://{addr}"), &b.credential, a.http.clone());
    let refused = api_err(stolen.assignments(&query(&sb.session)).await);
    assert!(matches!(&refused, ApiError::Forbidden(m) if m.contains("node a")), "{refused:?}");
    assert!(matches!(api_err(stolen.register(&register_request()).await), ApiError::Forbidden(_)));
    println!("=== a credential without a certificate: refused");
    let anonymous = TlsState::new(&m1.manager.tls.as_ref().unwrap().roots_pem()).unwrap();
    let anonymous = tls_client(&anonymous, Duration::from_secs(10), true).unwrap();
    let bare = DispatcherClient::new(&format!("https://{addr}"), &a.credential, anonymous);
    assert_eq!(api_err(bare.heartbeat(&sa.session).await), ApiError::Unauthorized);
    println!("=== a worker's certificate cannot speak Raft or use the operator API");
    for path in [VOTE_PATH, APPEND_PATH] {
        let resp = a.http.post(format!("https://{addr}{path}")).json(&()).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    let nodes = a.http.get(format!("https://{addr}/v1/nodes")).send().await.unwrap();
    assert_eq!(nodes.status(), 401);
    println!("=== the agent renews its own certificate over mutual TLS");
    let base = format!("https://{addr}");
    let (key, issued) = reconciler_api::pki::renew(&a.http, &base).await.unwrap();
    let renewed = a.tls.set_credentials(&issued.certificate, &key).unwrap();
    assert_eq!(renewed.identity, who);
    da.heartbeat(&sa.session).await.unwrap();
    let shown = c.inspect_node("a").await.unwrap().certificate.expect("a certificate is shown");
    assert_eq!((shown.expires_at, shown.role), (renewed.not_after, NodeRole::Worker));
    println!("=== node a is removed: its certificate is refused from then on");
    c.remove_node("a", true).await.unwrap();
    assert_eq!(api_err(da.heartbeat(&sa.session).await), ApiError::Unauthorized);
    assert_eq!(api_err(da.register(&register_request()).await), ApiError::Unauthorized);
    let status = reconciler_api::pki::status(&a.http, &base).await;
    assert!(matches!(api_err(status), ApiError::Forbidden(_)));
    let renew = reconciler_api::pki::renew(&a.http, &base).await;
    assert!(matches!(api_err(renew), ApiError::Forbidden(_)));
    db.heartbeat(&sb.session).await.unwrap();
    m1.shutdown().await;
}

/// A TLS server posing as a manager with a CA of its own: it answers `GET /v1/ca` with
/// `bundle` (its own root when `None`) and records every request that reaches it.
async fn impostor(bundle: Option<String>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let now = reconciler_manager::pki::unix_now();
    let root = RootCa::generate("impostor", now).unwrap();
    let who = NodeIdentity {
        node_id: NodeId::new("evil"),
        role: NodeRole::Manager,
        cluster_id: "impostor".into(),
    };
    let expiry = Duration::from_secs(3600);
    let (key, chain, _) = reconciler_manager::pki::self_issue(&root, &who, expiry).unwrap();
    let tls = TlsState::new(&root.cert_pem()).unwrap();
    tls.set_credentials(&chain, &key.to_pem()).unwrap();
    let bundle = bundle.unwrap_or_else(|| root.cert_pem());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (log, bundle) = (log.clone(), bundle.clone());
        async move {
            log.lock().unwrap().push(format!("{} {}", req.method(), req.uri().path()));
            axum::Json(CaView { bundle, digest: String::new(), rotating: false })
        }
    });
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener::new(tcp, &tls).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_refuses_a_manager_the_tokens_digest_does_not_pin_before_sending_anything_secret() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let token = client(&m1).join_token("worker", false).await.unwrap().token;
    let req = JoinRequest {
        token: token.clone(),
        role: NodeRole::Worker,
        node_id: None,
        hostname: "a".into(),
        addr: "a.example:0".into(),
        csr: None,
    };
    let key = NodeKey::generate().unwrap();
    println!("=== an impostor with its own CA: the digest does not match");
    let (addr, seen) = impostor(None).await;
    let err = api_err(join_tls(&addr.to_string(), req.clone(), &key).await);
    assert!(err.to_string().contains("does not match the join token's digest"), "{err}");
    assert_eq!(*seen.lock().unwrap(), ["GET /v1/ca"], "only the public CA was asked for");
    println!("=== an impostor serving the real CA bundle cannot prove it holds a certificate");
    let real = m1.manager.tls.as_ref().unwrap().roots_pem();
    let (addr, seen) = impostor(Some(real)).await;
    let err = join_tls(&addr.to_string(), req, &key).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert_eq!(*seen.lock().unwrap(), ["GET /v1/ca"], "the join never reached the impostor");
    assert_eq!(m1.manager.node.state.read(|s| s.state.nodes.len()), 1, "nobody joined");
    m1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_certificate_is_renewed_before_it_expires_and_an_expired_one_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut opts = options(&root.path().join("m1"), StartMode::Init, "m1");
    opts.cert_expiry = Duration::from_secs(5);
    assert!(start_manager(opts.clone()).await.is_err(), "a 5 s expiry is refused");
    let _ = std::fs::remove_dir_all(root.path().join("m1"));
    opts.cert_expiry = reconciler_manager::pki::MIN_CERT_EXPIRY;
    let m1 = start_manager(opts).await.unwrap();
    let addr = m1.local_addr.to_string();
    let tls = m1.manager.tls.clone().unwrap();
    let first = tls.info().unwrap();
    let issued = first.not_before + reconciler_tls::ca::BACKDATE_SECS;
    assert_eq!(first.not_after - issued, 10);
    let c = client(&m1);
    let id = m1.manager.identity.node_id.to_string();
    let shown = c.inspect_node(&id).await.unwrap().certificate.unwrap();
    assert_eq!(shown.expires_at, first.not_after);
    println!("=== the manager renews its certificate between 50 % and 80 % of its life");
    let renewed = loop {
        let now = reconciler_manager::pki::unix_now();
        assert!(now < first.not_after, "the certificate expired before it was renewed");
        let info = tls.info().unwrap();
        if info.not_after > first.not_after {
            assert!(now >= issued + 5, "renewed at once ({now}, issued {issued})");
            assert!(now + 1 < first.not_after, "renewed too late ({now})");
            break info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let shown = c.inspect_node(&id).await.unwrap().certificate.unwrap();
        if shown.expires_at >= renewed.not_after {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "node inspect shows the old expiry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("=== a certificate from the cluster's own root, past its expiry: refused");
    let state = m1.manager.node.state.snapshot();
    let ca = state.cluster.unwrap().ca.unwrap();
    let ca_key = m1.manager.cluster_key.open(&ca.root_key_sealed).unwrap();
    let ca = RootCa::from_pem(&ca.root_cert, &String::from_utf8(ca_key).unwrap()).unwrap();
    let who = NodeIdentity {
        node_id: m1.manager.identity.node_id.clone(),
        role: NodeRole::Manager,
        cluster_id: m1.manager.identity.cluster_id.clone(),
    };
    let holding = |issued_at: u64| {
        let key = NodeKey::generate().unwrap();
        let chain = ca.issue(&key.csr_der().unwrap(), &who, issued_at, 10, &[]).unwrap();
        let state = TlsState::new(&ca.cert_pem()).unwrap();
        state.set_credentials(&chain, &key.to_pem()).unwrap();
        tls_client(&state, Duration::from_secs(5), true).unwrap()
    };
    let base = format!("https://{addr}");
    let now = reconciler_manager::pki::unix_now();
    let fresh = reconciler_api::pki::status(&holding(now), &base).await;
    assert_eq!(fresh.unwrap().role, NodeRole::Manager, "the same certificate, in date, works");
    let expired = reconciler_api::pki::status(&holding(now - 60), &base).await;
    assert!(matches!(expired, Err(ClientError::Transport { .. })), "{expired:?}");
    m1.shutdown().await;
}

/// A TCP proxy that keeps a copy of every byte it forwards, both ways.
struct Recorder {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn to(target: SocketAddr) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let log = bytes.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else { continue };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pump(ri, wo, log.clone()));
                tokio::spawn(pump(ro, wi, log.clone()));
            }
        });
        Recorder { addr, bytes }
    }

    fn captured(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        log.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The forms a value takes in flotilla's JSON: as text, as base64 (dispatcher files) and as
/// an array of byte values (API bodies).
fn encodings(value: &str) -> Vec<String> {
    let array = serde_json::to_string(value.as_bytes()).unwrap();
    let b64 = reconciler_api::b64::serialize(value.as_bytes(), serde_json::value::Serializer);
    let b64 = b64.unwrap().as_str().unwrap().to_owned();
    // The value is a whole file here, so its base64 starts aligned; the padding may differ.
    vec![value.to_owned(), array.trim_matches(['[', ']']).to_owned(), b64[..b64.len() - 4].into()]
}

fn holds_any(haystack: &[u8], value: &str) -> bool {
    encodings(value).iter().any(|e| contains(haystack, e))
}

const SECRET: &str = "correct-horse-battery-staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_between_nodes_carries_no_secret_in_the_clear() {
    let root = tempfile::tempdir().unwrap();
    let m1 = start_manager(options(&root.path().join("m1"), StartMode::Init, "m1")).await.unwrap();
    let c1 = client(&m1);
    let manager_token = c1.join_token("manager", false).await.unwrap().token;
    let worker_token = c1.join_token("worker", false).await.unwrap().token;
    let to_m1 = Recorder::to(m1.local_addr).await;
    // m2 joins through the recorder, and the others reach it (Raft included) through another.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let m2_listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let to_m2 = Recorder::to(m2_listen).await;
    let mode = StartMode::Join { addr: to_m1.addr.to_string(), token: manager_token.clone() };
    let mut opts = options(&root.path().join("m2"), mode, "m2");
    opts.listen = m2_listen;
    opts.advertise = to_m2.addr.to_string();
    let m2 = start_manager(opts).await.unwrap();
    println!("=== the operator creates a secret through the follower; a worker joins and gets it");
    put_secret(&client_at(&to_m2.addr.to_string(), &m1), "db", SECRET).await;
    let b = join_worker(&m1, &to_m1.addr.to_string(), "b").await;
    let db = b.dispatcher(&to_m2.addr.to_string());
    let session = db.register(&register_request()).await.unwrap();
    put_task(&c1, task_on("t1", "b", "db")).await;
    let got = db.assignments(&query(&session.session)).await.unwrap();
    assert_eq!(secrets_in(&got), [("db".to_owned(), SECRET.to_owned())]);
    let replicated = std::time::Instant::now() + Duration::from_secs(10);
    while !m2.manager.node.state.read(|s| s.state.tasks.contains_key(&TaskId::new("t1"))) {
        assert!(std::time::Instant::now() < replicated, "raft did not reach m2");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut wire = to_m1.captured();
    wire.extend(to_m2.captured());
    println!("=== {} bytes crossed the recorders", wire.len());
    assert!(wire.len() > 10_000, "the recorders saw the traffic");
    let secret_of = |token: &str| token.rsplit('-').next().unwrap().to_owned();
    let credential = reconciler_api::NodeCredential::parse(&b.credential).unwrap().secret;
    let forbidden = [
        ("the secret's value", SECRET.to_owned()),
        ("the manager join token", secret_of(&manager_token)),
        ("the worker join token", secret_of(&worker_token)),
        ("the cluster key", m1.manager.cluster_key.to_hex()),
        ("the API token", m1.manager.identity.api_token.clone()),
        ("the peer token", m1.manager.identity.peer_token.clone()),
        ("the node credential", credential),
    ];
    for (what, value) in &forbidden {
        assert!(!holds_any(&wire, value), "{what} crossed the wire in the clear");
    }
    m2.shutdown().await;
    m1.shutdown().await;
    println!("=== control: without TLS the same recorder does see the secret");
    let mut plain = options(&root.path().join("p1"), StartMode::Init, "p1");
    plain.insecure = true;
    let p1 = start_manager(plain).await.unwrap();
    let to_p1 = Recorder::to(p1.local_addr).await;
    put_secret(&client_at(&to_p1.addr.to_string(), &p1), "db", SECRET).await;
    assert!(holds_any(&to_p1.captured(), SECRET), "the recorder does not record");
    p1.shutdown().await;
}
