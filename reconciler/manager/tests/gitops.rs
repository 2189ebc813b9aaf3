//! The GitOps loop on an in-process manager with a temporary Git repository: a commit
//! becomes services and a deployment record, an invalid commit changes nothing and is
//! recorded, a change by hand is healed, and the webhook refuses a wrong signature.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reconciler_api::source::{SourceSet, WebhookAnswer};
use reconciler_manager::{ApiClient, ManagerOptions, RunningManager, StartMode, start_manager};
use reconciler_orchestrator::state::gitops::{Outcome, Trigger};
use reconciler_store::ClusterState;
use reconciler_types::{ServiceMode, StackName};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::GitRepo;

const POLL: Duration = Duration::from_millis(200);
const SECRET: &str = "it's a secret to everybody";

fn web(image: &str, replicas: u32) -> String {
    format!(
        "services:\n  app:\n    image: {image}\n    command: [\"flotilla\", \"probe\"]\n    deploy:\n      replicas: {replicas}\n"
    )
}

fn options(dir: &Path, source: Option<SourceSet>) -> ManagerOptions {
    ManagerOptions {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: String::new(),
        mode: StartMode::Init,
        hostname: "m1".into(),
        snapshot_every: 1000,
        autolock: false,
        unlock_key: None,
        dispatcher: Default::default(),
        dispatcher_heartbeat: None,
        insecure: true,
        cert_expiry: reconciler_manager::pki::DEFAULT_CERT_EXPIRY,
        source,
    }
}

fn source_of(repo: &Path) -> SourceSet {
    SourceSet {
        url: Some(repo.display().to_string()),
        branch: Some("main".into()),
        path: Some("stacks".into()),
        poll: Some(POLL),
        webhook_secret: Some(SECRET.into()),
        ..SourceSet::default()
    }
}

fn client(m: &RunningManager) -> ApiClient {
    let token = m.manager.identity.api_token.clone();
    ApiClient::new(&m.local_addr.to_string(), &token, Duration::from_secs(10)).unwrap()
}

async fn wait_until(m: &RunningManager, what: &str, f: impl Fn(&ClusterState) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !m.manager.node.state.read(|s| f(&s.state)) {
        if std::time::Instant::now() > deadline {
            let state = m.manager.node.state.snapshot();
            panic!(
                "timed out waiting until {what}; source status {:?}, stacks {:#?}",
                state.source_status, state.stacks
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn replicas_of(s: &ClusterState, name: &str) -> Option<u64> {
    let r = s.services.values().find(|r| r.spec.name == name)?;
    match r.spec.mode {
        ServiceMode::Replicated { replicas } => Some(replicas),
        _ => None,
    }
}

fn image_of(s: &ClusterState, name: &str) -> Option<String> {
    let r = s.services.values().find(|r| r.spec.name == name)?;
    Some(r.spec.task_template.container_spec.image.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_becomes_services_and_an_invalid_one_changes_nothing() {
    let repo = GitRepo::new();
    repo.write("stacks/web/stack.yml", &web("probe:1", 2));
    let first = repo.commit("web: first version");
    let root = tempfile::tempdir().unwrap();
    let m = start_manager(options(&root.path().join("m1"), Some(source_of(repo.path()))))
        .await
        .unwrap();
    println!("=== the first commit is deployed");
    let web_stack = StackName::new("web");
    wait_until(&m, "web_app runs the first commit", |s| {
        s.stacks.get(&web_stack).is_some_and(|h| h.deploy.deployments.len() == 1)
            && s.source_status.commit.is_some()
    })
    .await;
    let state = m.manager.node.state.snapshot();
    assert_eq!(replicas_of(&state, "web_app"), Some(2));
    assert_eq!(image_of(&state, "web_app").as_deref(), Some("probe:1"));
    let d = &state.stacks[&web_stack].deploy.deployments[0];
    assert_eq!((d.commit.as_str(), d.author.as_str()), (first.as_str(), "Ada <ada@example.com>"));
    assert_eq!((d.subject.as_str(), &d.trigger), ("web: first version", &Trigger::Sync));
    assert_eq!(d.summary, "2 created", "the network and the service");
    assert_eq!(d.services.len(), 1);
    assert_eq!(state.stacks[&web_stack].applied.last().unwrap().commit, first);
    assert_eq!(state.source_status.commit.as_deref(), Some(first.as_str()));
    assert_eq!(state.source_status.error, None);

    println!("=== an invalid commit changes nothing and says why");
    repo.write(
        "stacks/web/stack.yml",
        "services:\n  app:\n    image: probe:2\n    deploy:\n      replicas: lots\n",
    );
    let bad = repo.commit("web: broken");
    wait_until(&m, "the broken commit is seen", |s| {
        s.source_status.commit.as_deref() == Some(bad.as_str())
    })
    .await;
    let state = m.manager.node.state.snapshot();
    let error = state.source_status.error.clone().expect("the error is recorded");
    assert!(error.contains("1 invalid stack") && error.contains("stacks/web"), "{error}");
    let sync = &state.stacks[&web_stack].deploy.sync;
    assert!(sync.error.as_deref().is_some_and(|e| e.contains("replicas")), "{sync:?}");
    assert_eq!(image_of(&state, "web_app").as_deref(), Some("probe:1"));
    assert_eq!(state.stacks[&web_stack].deploy.deployments.len(), 1);

    println!("=== a fixed commit rolls on");
    repo.write("stacks/web/stack.yml", &web("probe:2", 3));
    let fixed = repo.commit("web: second version");
    wait_until(&m, "the second version is deployed", |s| {
        s.stacks[&web_stack].deploy.deployments.last().is_some_and(|d| d.commit == fixed)
            && s.source_status.commit.as_deref() == Some(fixed.as_str())
    })
    .await;
    let state = m.manager.node.state.snapshot();
    assert_eq!(image_of(&state, "web_app").as_deref(), Some("probe:2"));
    assert_eq!(replicas_of(&state, "web_app"), Some(3));
    assert_eq!(state.stacks[&web_stack].deploy.sync.error, None);
    assert_eq!(state.source_status.error, None);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_by_hand_is_drift_that_self_heal_reverts() {
    let repo = GitRepo::new();
    repo.write("stacks/web/stack.yml", &web("probe:1", 2));
    repo.commit("web");
    let root = tempfile::tempdir().unwrap();
    let m = start_manager(options(&root.path().join("m1"), Some(source_of(repo.path()))))
        .await
        .unwrap();
    wait_until(&m, "web_app exists", |s| replicas_of(s, "web_app") == Some(2)).await;
    println!("=== scale by hand");
    let c = client(&m);
    let info = c.inspect_service("web_app").await.unwrap().service;
    let mut spec = info.spec.clone();
    spec.mode = ServiceMode::Replicated { replicas: 5 };
    c.update_service("web_app", info.version, &spec).await.unwrap();
    wait_until(&m, "self-heal returns it to 2", |s| {
        let healed = s.stacks[&StackName::new("web")]
            .deploy
            .deployments
            .iter()
            .any(|d| d.trigger == Trigger::SelfHeal);
        healed && replicas_of(s, "web_app") == Some(2)
    })
    .await;
    m.shutdown().await;
}

fn hub_signature(body: &[u8], secret: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn post_hook(m: &RunningManager, sig: &str, body: &[u8]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}/v1/webhook", m.local_addr))
        .header("X-Hub-Signature-256", sig)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_a_wrong_signature_and_a_right_one_fetches_at_once() {
    let repo = GitRepo::new();
    repo.write("stacks/web/stack.yml", &web("probe:1", 1));
    repo.commit("web");
    let root = tempfile::tempdir().unwrap();
    let slow = SourceSet { poll: Some(Duration::from_secs(3600)), ..source_of(repo.path()) };
    let m = start_manager(options(&root.path().join("m1"), Some(slow))).await.unwrap();
    wait_until(&m, "web_app exists", |s| replicas_of(s, "web_app") == Some(1)).await;
    repo.write("stacks/web/stack.yml", &web("probe:1", 4));
    let second = repo.commit("web: four");
    let body = br#"{"ref":"refs/heads/main"}"#;
    println!("=== a wrong signature");
    let wrong = post_hook(&m, &hub_signature(body, "guess"), body).await;
    assert_eq!(wrong.status().as_u16(), 401);
    let text = wrong.text().await.unwrap();
    assert!(text.contains("does not match"), "{text}");
    assert!(!text.contains(SECRET));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(m.manager.node.state.read(|s| replicas_of(&s.state, "web_app")), Some(1));
    println!("=== a push to another branch is acknowledged, not fetched");
    let other = br#"{"ref":"refs/heads/dev"}"#;
    let answer: WebhookAnswer =
        post_hook(&m, &hub_signature(other, SECRET), other).await.json().await.unwrap();
    assert!(!answer.fetch && answer.reason.contains("refs/heads/dev"), "{answer:?}");
    println!("=== the right signature");
    let right = post_hook(&m, &hub_signature(body, SECRET), body).await;
    assert_eq!(right.status().as_u16(), 200);
    assert!(right.json::<WebhookAnswer>().await.unwrap().fetch);
    wait_until(&m, "the pushed commit is deployed at once", |s| {
        replicas_of(s, "web_app") == Some(4)
            && s.source_status.commit.as_deref() == Some(second.as_str())
    })
    .await;
    println!("=== /metrics counts the refused webhook and the deployments; /healthz answers ok");
    let get = |path: &str| {
        let url = format!("http://{}{path}", m.local_addr);
        async move { reqwest::get(url).await.unwrap() }
    };
    let metrics = get("/metrics").await;
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    for line in [
        "flotilla_gitops_webhook_rejections_total 1\n",
        "flotilla_manager_leader 1\n",
        "flotilla_services 1\n",
        "# TYPE flotilla_tasks gauge\n",
        "flotilla_stack_deployments{stack=\"web\",outcome=\"",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    let fetches = text.lines().find_map(|l| l.strip_prefix("flotilla_gitops_fetches_total "));
    assert!(fetches.is_some_and(|n| n.parse::<u64>().unwrap() >= 2), "{text}");
    let health = get("/healthz").await;
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_is_set_shown_changed_and_removed_through_the_api() {
    let repo = GitRepo::new();
    repo.write("deploy/web/stack.yml", &web("probe:1", 1));
    repo.commit("web");
    let root = tempfile::tempdir().unwrap();
    let m = start_manager(options(&root.path().join("m1"), None)).await.unwrap();
    let c = client(&m);
    assert_eq!(c.source().await.unwrap().source, None);
    let set = SourceSet {
        url: Some(repo.path().display().to_string()),
        poll: Some(POLL),
        webhook_secret: Some(SECRET.into()),
        ..SourceSet::default()
    };
    let view = c.set_source(&set).await.unwrap();
    let info = view.source.unwrap();
    assert_eq!((info.branch.as_str(), info.path.as_str(), info.webhook), ("main", "stacks", true));
    let shown = serde_json::to_string(&c.source().await.unwrap()).unwrap();
    assert!(!shown.contains(SECRET), "{shown}");
    wait_until(&m, "the missing folder is an error", |s| {
        s.source_status.error.as_deref().is_some_and(|e| e.contains("no folder \"stacks\""))
    })
    .await;
    println!("=== change only the path");
    let path = SourceSet { path: Some("deploy".into()), ..SourceSet::default() };
    let view = c.set_source(&path).await.unwrap();
    assert!(view.source.as_ref().unwrap().webhook, "the secret is kept");
    wait_until(&m, "web_app exists", |s| replicas_of(s, "web_app") == Some(1)).await;
    wait_until(&m, "the deployment succeeds (it wrote no task yet: nothing to wait for)", |s| {
        s.stacks[&StackName::new("web")].deploy.deployments[0].outcome != Outcome::Failed
    })
    .await;
    c.remove_source().await.unwrap();
    assert_eq!(c.source().await.unwrap().source, None);
    assert!(m.manager.node.state.read(|s| replicas_of(&s.state, "web_app")).is_some());
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_folder_deploys_its_files_as_they_are() {
    let folder = tempfile::tempdir().unwrap();
    let stacks: PathBuf = folder.path().join("web");
    std::fs::create_dir_all(&stacks).unwrap();
    std::fs::write(stacks.join("stack.yml"), web("probe:1", 1)).unwrap();
    let root = tempfile::tempdir().unwrap();
    let set = SourceSet {
        url: Some(folder.path().display().to_string()),
        path: Some(".".into()),
        poll: Some(POLL),
        ..SourceSet::default()
    };
    let m = start_manager(options(&root.path().join("m1"), Some(set))).await.unwrap();
    wait_until(&m, "web_app exists", |s| replicas_of(s, "web_app") == Some(1)).await;
    std::fs::write(stacks.join("stack.yml"), web("probe:1", 3)).unwrap();
    wait_until(&m, "the edit is deployed", |s| replicas_of(s, "web_app") == Some(3)).await;
    let state = m.manager.node.state.snapshot();
    let deployments = &state.stacks[&StackName::new("web")].deploy.deployments;
    assert_eq!(deployments.len(), 2);
    assert!(deployments[1].author.starts_with("flotilla"), "{:?}", deployments[1]);
    m.shutdown().await;
}
