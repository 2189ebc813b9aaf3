//! The stack endpoints on an in-process manager: `stack ls | services | ps | history |
//! rollback | rm` over GitOps records written the way the GitOps loop writes them (one
//! `StoreCommand::Batch` per stack and commit, made by `reconciler_deploy::execute`).

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../planner/tests/support/mod.rs"]
mod support;

use reconciler_api::stacks::{DeploymentOutcome, DeploymentTrigger, StackRollback, SyncStatus};
use reconciler_deploy::stacks::plan_summary;
use reconciler_deploy::{Apply, actual, execute};
use reconciler_manager::{
    ApiClient, ApiError, ClientError, ManagerOptions, RunningManager, StartMode, start_manager,
};
use reconciler_orchestrator::state::gitops::{Deployment, GitopsCommand, Outcome, Trigger};
use reconciler_planner::diff;
use reconciler_store::{ClusterState, Expect, StoreCommand};
use reconciler_types::{
    MonoTime, ServiceId, StackName, StackPolicy, StackSet, StackSpec, Task, TaskId, TaskState,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

fn options(dir: &Path) -> ManagerOptions {
    ManagerOptions {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: String::new(),
        mode: StartMode::Init,
        hostname: "m1".to_owned(),
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

fn api_err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ApiError {
    match r {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// What the GitOps loop writes for one commit of stack `shop`: the plan applied with its
/// deployment record, then the outcome.
async fn deploy(c: &ApiClient, commit: &str, spec: &StackSpec, outcome: Outcome) {
    let state: ClusterState = c.state().await.unwrap();
    let set = StackSet {
        source: commit.into(),
        stacks: BTreeMap::from([(spec.name.clone(), spec.clone())]),
    };
    let plan = diff(
        &set,
        &actual(&state, "cluster"),
        StackPolicy { prune: true, ..StackPolicy::default() },
    );
    let part = &plan.stacks["shop"];
    let deployment = Deployment {
        id: 0,
        commit: commit.into(),
        author: "Ann <ann@example.com>".into(),
        subject: "a change".into(),
        at: MonoTime::from_secs(1_700_000_000),
        summary: plan_summary(&part.counts),
        trigger: Trigger::Sync,
        services: BTreeMap::new(),
        outcome: Outcome::InProgress,
        message: String::new(),
    };
    let stack = StackName::new("shop");
    let secrets = BTreeMap::new();
    let a = Apply { stack: &stack, plan: part, desired: Some(spec), secrets: &secrets, deployment };
    let mut n = 0;
    let batch = execute(&a, &state, &mut || {
        n += 1;
        ServiceId::new(format!("{commit}-{n}"))
    })
    .unwrap();
    let id = c.write(batch).await.unwrap().index;
    let set = GitopsCommand::SetOutcome { stack, id, outcome, message: String::new() };
    c.write(StoreCommand::Gitops(Box::new(set))).await.unwrap();
}

const ONE: &str = "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n";
const TWO: &str = "services:\n  web:\n    image: nginx:2\n  db:\n    image: postgres\n  cache:\n    image: redis\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_commands_list_roll_back_and_remove_a_stack_deployed_from_git() {
    let root = tempfile::tempdir().unwrap();
    let m = start_manager(options(&root.path().join("m1"))).await.unwrap();
    let c = client(&m);
    assert!(c.stacks().await.unwrap().stacks.is_empty());
    println!("=== deploy c1, then c2");
    deploy(&c, C1, &support::convert("shop", ONE, &[]), Outcome::Succeeded).await;
    deploy(&c, C2, &support::convert("shop", TWO, &[]), Outcome::Succeeded).await;
    let list = c.stacks().await.unwrap();
    let [shop] = list.stacks.as_slice() else { panic!("{list:?}") };
    assert_eq!((shop.name.as_str(), shop.services), ("shop", 3));
    assert_eq!((shop.revision.as_deref(), shop.sync), (Some(C2), SyncStatus::Synced));
    let last = shop.last_deployment.as_ref().unwrap();
    assert_eq!(
        (last.outcome, last.summary.as_str()),
        (DeploymentOutcome::Succeeded, "1 created, 1 updated")
    );

    println!("=== stack services and stack ps");
    let services = c.stack_services("shop").await.unwrap();
    let names: Vec<&str> = services.services.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["shop_cache", "shop_db", "shop_web"]);
    assert!(services.services.iter().all(|s| s.status.is_some()), "with task counts");
    let err = api_err(c.stack_services("other").await);
    assert_eq!(err.to_string(), "Nothing found in stack: other");
    let web = services.services.iter().find(|s| s.spec.name == "shop_web").unwrap();
    let task = Task {
        id: TaskId::new("t1"),
        service_id: web.id.clone(),
        slot: 1,
        spec_version: web.spec_version,
        spec: web.spec.task_template.clone(),
        desired_state: TaskState::Running,
        ..Task::default()
    };
    c.write(StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent })
        .await
        .unwrap();
    let tasks = c.stack_tasks("shop").await.unwrap();
    assert_eq!(tasks.services.len(), 3);
    assert!(tasks.services.iter().any(|s| s.tasks.iter().any(|t| t.task.id.as_str() == "t1")));
    let err = api_err(c.stack_tasks("other").await);
    assert_eq!(err.to_string(), "nothing found in stack: other");

    println!("=== a change by hand is drift");
    let db = c.inspect_service("shop_db").await.unwrap().service;
    let mut spec = db.spec.clone();
    spec.task_template.container_spec.image = "postgres:17".into();
    c.update_service("shop_db", db.version, &spec).await.unwrap();
    let shop = c.stacks().await.unwrap().stacks.remove(0);
    assert_eq!(
        (shop.sync, shop.drifted.as_slice()),
        (SyncStatus::Drifted, ["shop_db".to_owned()].as_slice())
    );
    assert_eq!(c.stack_tasks("shop").await.unwrap().drifted, ["shop_db"]);

    println!("=== roll back to c1");
    let err = api_err(
        c.rollback_stack("shop", &StackRollback { to: Some("ffff".into()), by: "bob".into() })
            .await,
    );
    assert!(matches!(err, ApiError::NotFound(_)), "{err:?}");
    let done =
        c.rollback_stack("shop", &StackRollback { to: None, by: "bob".into() }).await.unwrap();
    assert_eq!((done.commit.as_str(), done.from.as_str()), (C1, C2));
    assert_eq!(done.summary, "2 updated, 1 removed");
    let services = c.stack_services("shop").await.unwrap();
    let images: Vec<(&str, &str)> = services
        .services
        .iter()
        .map(|s| (s.spec.name.as_str(), s.spec.task_template.container_spec.image.as_str()))
        .collect();
    assert_eq!(images, [("shop_db", "postgres"), ("shop_web", "nginx")]);
    let shop = c.stacks().await.unwrap().stacks.remove(0);
    assert_eq!((shop.sync, shop.revision.as_deref()), (SyncStatus::RolledBack, Some(C1)));
    assert_eq!(shop.message, "rolled back from 222222222222");
    let history = c.stack_history("shop").await.unwrap();
    let rows: Vec<(&str, DeploymentTrigger, Option<&str>)> = history
        .deployments
        .iter()
        .map(|d| (d.commit.as_str(), d.trigger, d.by.as_deref()))
        .collect();
    assert_eq!(
        rows,
        [
            (C1, DeploymentTrigger::Rollback, Some("bob")),
            (C2, DeploymentTrigger::Sync, None),
            (C1, DeploymentTrigger::Sync, None),
        ]
    );
    assert_eq!(history.deployments[0].id, done.deployment);
    assert_eq!(history.rolled_back_from.as_deref(), Some(C2));
    assert!(matches!(api_err(c.stack_history("other").await), ApiError::NotFound(_)));

    println!("=== stack rm");
    let removed = c.remove_stack("shop").await.unwrap();
    let lines: Vec<String> =
        removed.removed.iter().map(|r| format!("{} {}", r.kind, r.name)).collect();
    assert_eq!(lines, ["service shop_db", "service shop_web", "network shop_default"]);
    assert!(removed.from_git);
    let state: ClusterState = c.state().await.unwrap();
    assert!(state.services.is_empty() && state.networks.is_empty());
    let err = api_err(c.remove_stack("shop").await);
    assert_eq!(err.to_string(), "Nothing found in stack: shop");
    m.shutdown().await;
}
