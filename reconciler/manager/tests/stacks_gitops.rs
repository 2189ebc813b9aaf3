//! The stack commands over the real GitOps loop on an in-process manager and a temporary
//! Git repository: `stack ls` follows commits, `stack rollback` returns a stack to an earlier
//! commit's specs and auto sync leaves the commit it left alone, also when Git moves on for
//! another stack, until the stack itself changes in Git; its SYNC column follows drift, a
//! broken commit and a fix.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reconciler_api::source::SourceSet;
use reconciler_api::stacks::{DeploymentTrigger, StackRollback, SyncStatus};
use reconciler_manager::{ApiClient, ManagerOptions, RunningManager, StartMode, start_manager};
use reconciler_orchestrator::state::gitops::Outcome;
use reconciler_store::ClusterState;
use reconciler_types::StackName;
use std::path::Path;
use std::time::Duration;
use support::GitRepo;

const POLL: Duration = Duration::from_millis(200);

fn web(image: &str) -> String {
    format!("services:\n  app:\n    image: {image}\n    deploy:\n      replicas: 0\n")
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

fn image_of(s: &ClusterState, name: &str) -> Option<String> {
    let r = s.services.values().find(|r| r.spec.name == name)?;
    Some(r.spec.task_template.container_spec.image.clone())
}

/// Waits until the loop has looked at `commit` and written what it decided for `stack`.
async fn seen(m: &RunningManager, commit: &str) {
    wait_until(m, &format!("the loop has seen {commit}"), |s| {
        s.source_status.commit.as_deref() == Some(commit)
    })
    .await;
    // A pass after the one that read it.
    tokio::time::sleep(POLL * 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_stack_stays_pinned_until_git_changes_it() {
    let repo = GitRepo::new();
    repo.write("stacks/shop/stack.yml", &web("probe:1"));
    repo.write("stacks/blog/stack.yml", &web("blog:1"));
    let c1 = repo.commit("first");
    let root = tempfile::tempdir().unwrap();
    let m = start_manager(options(&root.path().join("m1"), Some(source_of(repo.path()))))
        .await
        .unwrap();
    let c = client(&m);
    let shop = StackName::new("shop");
    let done = |commit: String| {
        let shop = shop.clone();
        move |s: &ClusterState| {
            s.stacks
                .get(&shop)
                .and_then(|h| h.deploy.deployments.last())
                .is_some_and(|d| d.commit == commit && d.outcome == Outcome::Succeeded)
        }
    };
    wait_until(&m, "c1 is deployed", done(c1.clone())).await;
    repo.write("stacks/shop/stack.yml", &web("probe:2"));
    let c2 = repo.commit("shop: probe 2");
    wait_until(&m, "c2 is deployed", done(c2.clone())).await;
    seen(&m, &c2).await;
    let list = c.stacks().await.unwrap();
    let row = list.stacks.iter().find(|s| s.name == "shop").unwrap();
    assert_eq!((row.revision.as_deref(), row.sync), (Some(c2.as_str()), SyncStatus::Synced));

    println!("=== stack rollback");
    let back =
        c.rollback_stack("shop", &StackRollback { to: None, by: "ops".into() }).await.unwrap();
    assert_eq!((back.commit.as_str(), back.from.as_str()), (c1.as_str(), c2.as_str()));
    tokio::time::sleep(POLL * 5).await;
    let state = m.manager.node.state.snapshot();
    assert_eq!(image_of(&state, "shop_app").as_deref(), Some("probe:1"), "c2 is not applied again");
    let history = c.stack_history("shop").await.unwrap();
    assert_eq!(history.deployments[0].trigger, DeploymentTrigger::Rollback);
    let row = c.stacks().await.unwrap().stacks.into_iter().find(|s| s.name == "shop").unwrap();
    assert_eq!(row.sync, SyncStatus::RolledBack, "{row:?}");

    println!("=== a commit to another stack leaves the pin alone");
    repo.write("stacks/blog/stack.yml", &web("blog:2"));
    let c3 = repo.commit("blog: 2");
    seen(&m, &c3).await;
    wait_until(&m, "blog runs c3", |s| image_of(s, "blog_app").as_deref() == Some("blog:2")).await;
    // Passes after the one that applied c3 to blog.
    tokio::time::sleep(POLL * 3).await;
    let state = m.manager.node.state.snapshot();
    assert_eq!(image_of(&state, "shop_app").as_deref(), Some("probe:1"), "shop stays pinned");
    let row = c.stacks().await.unwrap().stacks.into_iter().find(|s| s.name == "shop").unwrap();
    assert_eq!(row.sync, SyncStatus::RolledBack, "{row:?}");

    println!("=== a change to the stack in Git is applied");
    repo.write("stacks/shop/stack.yml", &web("probe:3"));
    let c4 = repo.commit("shop: probe 3");
    wait_until(&m, "c4 is deployed", done(c4.clone())).await;
    let state = m.manager.node.state.snapshot();
    assert_eq!(image_of(&state, "shop_app").as_deref(), Some("probe:3"));
    assert_eq!(state.stacks[&shop].deploy.sync.rolled_back_from, None);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_ls_follows_the_loop_through_drift_a_broken_commit_and_a_fix() {
    let repo = GitRepo::new();
    repo.write("stacks/flotilla.yaml", "self_heal: false\n");
    repo.write("stacks/shop/stack.yml", &web("probe:1"));
    let c1 = repo.commit("first");
    let root = tempfile::tempdir().unwrap();
    let m = start_manager(options(&root.path().join("m1"), Some(source_of(repo.path()))))
        .await
        .unwrap();
    let c = client(&m);
    let shop = StackName::new("shop");
    wait_until(&m, "c1 is deployed", |s| {
        s.stacks
            .get(&shop)
            .and_then(|h| h.deploy.deployments.last())
            .is_some_and(|d| d.commit == c1)
    })
    .await;
    seen(&m, &c1).await;
    let sync_of = |c: ApiClient| async move {
        let list = c.stacks().await.unwrap();
        let row = list.stacks.into_iter().find(|s| s.name == "shop").unwrap();
        (row.sync, row.message)
    };
    assert_eq!(sync_of(c.clone()).await, (SyncStatus::Synced, String::new()));

    println!("=== a change by hand, self-heal off: drifted, and it stays");
    let info = c.inspect_service("shop_app").await.unwrap().service;
    let mut spec = info.spec.clone();
    spec.task_template.container_spec.image = "probe:hand".into();
    c.update_service("shop_app", info.version, &spec).await.unwrap();
    wait_until(&m, "the loop reports the drift", |s| {
        s.stacks[&shop].deploy.sync.drifted == ["shop_app"]
    })
    .await;
    assert_eq!(
        sync_of(c.clone()).await,
        (SyncStatus::Drifted, "changed by hand: shop_app".to_owned())
    );
    let tasks = c.stack_services("shop").await.unwrap();
    assert_eq!(tasks.drifted, ["shop_app"]);

    println!("=== a broken commit: failed, with the reason");
    repo.write("stacks/shop/stack.yml", "services:\n  app:\n    image: [\n");
    let bad = repo.commit("broken");
    seen(&m, &bad).await;
    let (sync, message) = sync_of(c.clone()).await;
    assert_eq!(sync, SyncStatus::Failed, "{message}");
    assert!(message.contains("stacks/shop"), "{message}");

    println!("=== a fix is applied, and the drift with it");
    repo.write("stacks/shop/stack.yml", &web("probe:2"));
    let fixed = repo.commit("fixed");
    wait_until(&m, "the fix is deployed", |s| {
        s.stacks[&shop].deploy.deployments.last().is_some_and(|d| d.commit == fixed)
    })
    .await;
    seen(&m, &fixed).await;
    assert_eq!(sync_of(c.clone()).await, (SyncStatus::Synced, String::new()));
    let history = c.stack_history("shop").await.unwrap();
    let commits: Vec<&str> = history.deployments.iter().map(|d| d.commit.as_str()).collect();
    assert_eq!(commits, [fixed.as_str(), c1.as_str()]);
    m.shutdown().await;
}
