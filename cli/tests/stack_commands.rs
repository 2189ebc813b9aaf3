//! `flotilla stack ls | services | ps | history | rollback | rm` against a real manager
//! process. Until the GitOps loop lands, the test plays its part: it writes each commit's batch
//! (made by `reconciler_deploy::execute`, as the loop makes it) through `/v1/write`.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../reconciler/planner/tests/support/mod.rs"]
mod support;

use reconciler_api::ApiClient;
use reconciler_deploy::stacks::plan_summary;
use reconciler_deploy::{Apply, actual, execute};
use reconciler_orchestrator::state::gitops::{Deployment, GitopsCommand, Outcome, Trigger};
use reconciler_planner::diff;
use reconciler_store::{ClusterState, StoreCommand};
use reconciler_testkit::fake_agent::{FakeAgent, FakeNode, healthy};
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{
    MonoTime, ServiceId, StackName, StackPolicy, StackSet, StackSpec, TaskState,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const ONE: &str = "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n";
const TWO: &str = "services:\n  web:\n    image: nginx:2\n  db:\n    image: postgres\n  cache:\n    image: redis\n";

struct Cli {
    host: String,
    token: String,
    ca: std::path::PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(args)
            .env("FLOTILLA_HOST", &self.host)
            .env("FLOTILLA_TOKEN", &self.token)
            .env("FLOTILLA_TLSCACERT", &self.ca)
            .env("USER", "bob")
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout and stderr.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "flotilla {args:?} failed: {stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    }

    /// Runs a command that must fail; returns its stderr.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "flotilla {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
}

fn epoch_now() -> MonoTime {
    MonoTime(SystemTime::now().duration_since(UNIX_EPOCH).unwrap())
}

/// What the GitOps loop writes for one commit of stack `shop`.
async fn deploy(api: &ApiClient, commit: &str, spec: &StackSpec) {
    let state: ClusterState = api.state().await.unwrap();
    let set = StackSet {
        source: commit.into(),
        stacks: BTreeMap::from([(spec.name.clone(), spec.clone())]),
    };
    let policy = StackPolicy { prune: true, ..StackPolicy::default() };
    let plan = diff(&set, &actual(&state, "cluster"), policy);
    let part = &plan.stacks["shop"];
    let deployment = Deployment {
        id: 0,
        commit: commit.into(),
        author: "Ann Lee <ann@example.com>".into(),
        subject: "a change".into(),
        at: epoch_now(),
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
        ServiceId::new(format!("{}{n:020}", &commit[..5]))
    })
    .unwrap();
    let id = api.write(batch).await.unwrap().index;
    let outcome = Outcome::Succeeded;
    let set = GitopsCommand::SetOutcome { stack, id, outcome, message: String::new() };
    api.write(StoreCommand::Gitops(Box::new(set))).await.unwrap();
}

/// Checks `--output json` of `stack ls` and `stack history` against their JSON Schema.
#[track_caller]
fn validate(json: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/json/stacks.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance: serde_json::Value = serde_json::from_str(json).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{json}\ndoes not match stacks.schema.json:\n{}", errors.join("\n"));
    instance
}

fn words(line: &str) -> Vec<&str> {
    line.split("   ").map(str::trim).filter(|w| !w.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_commands_show_sync_drift_history_and_roll_back_and_remove() {
    let root = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = ProcessCluster::start(binary, root.path(), 1).await.unwrap();
    let cli = Cli {
        host: cluster.managers[0].addr.clone(),
        token: cluster.token.clone(),
        ca: cluster.ca_file(),
    };
    let api = cluster.client(0).unwrap();
    assert_eq!(
        cli.ok(&["stack", "ls"]).0,
        "NAME      SERVICES   REVISION   SYNC      LAST DEPLOYMENT\n"
    );

    println!("=== two commits deployed");
    deploy(&api, C1, &support::convert("shop", ONE, &[])).await;
    deploy(&api, C2, &support::convert("shop", TWO, &[])).await;
    let (ls, _) = cli.ok(&["stack", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines[0], "NAME      SERVICES   REVISION       SYNC      LAST DEPLOYMENT");
    let row = words(lines[1]);
    assert_eq!(row[..4], ["shop", "3", "222222222222", "synced"], "{ls}");
    assert!(row[4].starts_with("succeeded ") && row[4].ends_with(" ago"), "{ls}");

    println!("=== stack services and stack ps, as Docker prints them");
    let (services, _) = cli.ok(&["stack", "services", "shop"]);
    let names: Vec<&str> = services.lines().skip(1).map(|l| words(l)[1]).collect();
    assert_eq!(names, ["shop_cache", "shop_db", "shop_web"], "{services}");
    assert!(
        services.starts_with("ID             NAME         MODE         REPLICAS"),
        "{services}"
    );
    let (quiet, _) = cli.ok(&["stack", "services", "-q", "--filter", "name=shop_w", "shop"]);
    assert_eq!(quiet.lines().count(), 1, "{quiet}");
    let (none, err) = cli.ok(&["stack", "services", "other"]);
    assert_eq!((none.as_str(), err.as_str()), ("", "Nothing found in stack: other\n"));
    // The leader loop made the services' tasks; no node runs an agent, so they are pending.
    let (ps, _) = cli.ok(&["stack", "ps", "shop"]);
    assert!(ps.starts_with("ID "), "{ps}");
    let web = ps.lines().map(words).find(|r| r.get(1) == Some(&"shop_web.1"));
    assert_eq!(web.unwrap()[2], "nginx:2", "{ps}");
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--output", "json", "stack", "ps", "shop"]).0).unwrap();
    assert_eq!(json["services"].as_array().unwrap().len(), 3);

    println!("=== a change by hand shows as drift");
    cli.ok(&["service", "update", "-d", "--image", "postgres:17", "shop_db"]);
    let (ls, err) = cli.ok(&["stack", "ls"]);
    assert_eq!(words(ls.lines().nth(1).unwrap())[3], "drifted", "{ls}");
    let json = validate(&cli.ok(&["--output", "json", "stack", "ls"]).0);
    assert_eq!(json["stacks"][0]["sync"], "drifted");
    assert_eq!(json["stacks"][0]["last_deployment"]["outcome"], "succeeded");
    assert_eq!(err, "shop: drifted: changed by hand: shop_db\n");
    let (_, err) = cli.ok(&["stack", "ps", "shop"]);
    assert_eq!(err, "shop_db: differs from the last deployment (changed by hand)\n");

    println!("=== stack rollback");
    let err = cli.fails(&["stack", "rollback", "--to", "ffff", "shop"]);
    assert!(err.contains("stack shop has no deployment of revision ffff"), "{err}");
    let (out, _) = cli.ok(&["stack", "rollback", "shop"]);
    assert_eq!(
        out,
        "Rolled back stack shop to 111111111111 (2 updated, 1 removed)\n\
         Auto sync will not apply 222222222222 again; it applies the next commit Git offers\n"
    );
    let (ls, err) = cli.ok(&["stack", "ls"]);
    assert_eq!(
        words(ls.lines().nth(1).unwrap())[..4],
        ["shop", "2", "111111111111", "rolled back"]
    );
    assert_eq!(err, "shop: rolled back: rolled back from 222222222222\n");
    let (history, _) = cli.ok(&["stack", "history", "shop"]);
    let rows: Vec<Vec<&str>> = history.lines().map(words).collect();
    assert_eq!(
        rows[0],
        ["REVISION", "DEPLOYED", "AUTHOR", "CHANGES", "RESULT", "TRIGGER", "MESSAGE"]
    );
    assert_eq!(rows.len(), 4, "{history}");
    assert_eq!(
        (rows[1][0], rows[1][3], rows[1][4]),
        ("111111111111", "2 updated, 1 removed", "in progress")
    );
    assert!(rows[1][5].starts_with("rollback by bob"), "{history}");
    assert_eq!((rows[2][0], rows[2][2], rows[2][5]), ("222222222222", "Ann Lee", "sync"));
    let json = validate(&cli.ok(&["--output", "json", "stack", "history", "shop"]).0);
    assert_eq!(json["deployments"][0]["trigger"], "rollback");
    assert_eq!(json["rolled_back_from"], C2);

    println!("=== stack rm");
    let (out, err) = cli.ok(&["stack", "rm", "shop", "other"]);
    assert_eq!(
        out,
        "Removing service shop_db\nRemoving service shop_web\nRemoving network shop_default\n"
    );
    assert!(err.contains("Nothing found in stack: other"), "{err}");
    assert!(err.contains("stack shop is deployed from Git"), "{err}");
    let json = validate(&cli.ok(&["--output", "json", "stack", "ls"]).0);
    assert_eq!(json["stacks"][0]["services"], 0);
    assert_eq!(json["stacks"][0]["sync"], "drifted");
}

const WATCHED: &str =
    "services:\n  web:\n    image: nginx\n    deploy:\n      update_config:\n        monitor: 1s\n";

/// Runs `cli` until its stdout satisfies `f`.
async fn wait_for_output(cli: &Cli, args: &[&str], f: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = cli.run(args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        if f(&stdout) {
            return stdout;
        }
        if tokio::time::Instant::now() >= deadline {
            let all = String::from_utf8(cli.run(&["stack", "ps", "--no-trunc", "shop"]).stdout);
            let history = String::from_utf8(cli.run(&["stack", "history", "shop"]).stdout);
            let svc = String::from_utf8(cli.run(&["service", "inspect", "shop_web"]).stdout);
            panic!(
                "flotilla {args:?} still prints {stdout}\nall tasks: {}\n{}\n{}",
                all.unwrap(),
                history.unwrap(),
                svc.unwrap()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_and_rm_wait_for_the_tasks_with_detach_false() {
    let root = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = ProcessCluster::start(binary, root.path(), 1).await.unwrap();
    let cli = Cli {
        host: cluster.managers[0].addr.clone(),
        token: cluster.token.clone(),
        ca: cluster.ca_file(),
    };
    let api = cluster.client(0).unwrap();
    let worker = api.join_token("worker", false).await.unwrap().token;
    let at = &cluster.managers[0].addr;
    let node = FakeNode::named("n1");
    let _agent = FakeAgent::start(at, &worker, false, &root.path().join("n1"), node, healthy())
        .await
        .unwrap();
    println!("=== c1, then c2, both running on a fake node");
    // Placed (a NODE), desired Running and currently Running.
    let running = |out: &str| {
        out.lines()
            .skip(1)
            .map(words)
            .any(|r| r.len() > 5 && r[4] == "Running" && r[5].starts_with("Running"))
    };
    deploy(&api, C1, &support::convert("shop", WATCHED, &[])).await;
    wait_for_output(&cli, &["stack", "ps", "shop"], running).await;
    deploy(&api, C2, &support::convert("shop", &WATCHED.replace("nginx", "nginx:2"), &[])).await;
    wait_for_output(&cli, &["stack", "ps", "--filter", "desired-state=running", "shop"], |o| {
        o.lines()
            .skip(1)
            .map(words)
            .any(|r| r.len() > 5 && r[2] == "nginx:2" && r[5].starts_with("Running"))
    })
    .await;
    println!("=== stack rollback --detach=false waits for the services to converge");
    let (out, _) = cli.ok(&["stack", "rollback", "--detach=false", "shop"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Rolled back stack shop to 111111111111 (1 updated)", "{out}");
    assert_eq!(lines.last(), Some(&"verify: Service shop_web converged"), "{out}");
    let (ps, _) = cli.ok(&["stack", "ps", "--filter", "desired-state=running", "shop"]);
    let row = words(ps.lines().nth(1).unwrap());
    assert_eq!((row[2], row[5].starts_with("Running")), ("nginx", true), "{ps}");
    println!("=== stack rm --detach=false waits until the tasks are gone");
    let (out, _) = cli.ok(&["stack", "rm", "--detach=false", "shop"]);
    assert_eq!(out, "Removing service shop_web\nRemoving network shop_default\n");
    let state: ClusterState = api.state().await.unwrap();
    let left: Vec<_> =
        state.tasks.values().filter(|t| t.task.status.state <= TaskState::Running).collect();
    assert!(left.is_empty(), "{left:?}");
}
