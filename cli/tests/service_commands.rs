//! `flotilla service ...` against three real manager processes, every command sent to a
//! follower (so writes are forwarded and reads answered by the leader). The leader loop places
//! the tasks and fake agents (`reconciler-testkit`, the real dispatcher protocol) run them.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::ApiClient;
use reconciler_testkit::fake_agent::{Behaviour, FakeAgent, FakeNode, Run};
use reconciler_testkit::harness::ProcessCluster;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Cli {
    host: String,
    token: String,
    ca: std::path::PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
        cmd.args(args)
            .env("FLOTILLA_HOST", &self.host)
            .env("FLOTILLA_TOKEN", &self.token)
            .env("FLOTILLA_TLSCACERT", &self.ca);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "flotilla {args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "flotilla {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }
}

/// A fake node whose tasks take `start_after` to start.
async fn fake_node(
    cluster: &ProcessCluster,
    root: &Path,
    name: &str,
    start_after: Duration,
) -> FakeAgent {
    let worker = cluster.client(0).unwrap().join_token("worker", false).await.unwrap().token;
    let run = Run { start_after, exit_after: None };
    let behaviour: Behaviour = std::sync::Arc::new(move |_| run);
    let at = &cluster.managers[0].addr;
    FakeAgent::start(at, &worker, false, &root.join(name), FakeNode::named(name), behaviour)
        .await
        .unwrap()
}

/// Runs `cli` until its stdout satisfies `f`.
async fn wait_for_output(cli: &Cli, args: &[&str], f: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli.ok(args);
        if f(&out) {
            return out;
        }
        assert!(tokio::time::Instant::now() < deadline, "flotilla {args:?} still prints {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start() -> (tempfile::TempDir, ProcessCluster, Cli, ApiClient) {
    let root = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = ProcessCluster::start(binary, root.path(), 3).await.unwrap();
    let leader = cluster.leader().await.unwrap();
    let follower = (leader + 1) % 3;
    println!("=== leader is manager {}, the CLI talks to manager {}", leader + 1, follower + 1);
    let host = cluster.managers[follower].addr.clone();
    let cli = Cli { host, token: cluster.token.clone(), ca: cluster.ca_file() };
    let api = cluster.client(follower).unwrap();
    (root, cluster, cli, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_commands_create_list_inspect_update_scale_rollback_and_remove() {
    let (root, cluster, cli, api) = start().await;
    println!("=== service create");
    let id = cli.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "2",
        "-p",
        "8080:80",
        "--update-parallelism",
        "2",
        "nginx:1.25",
    ]);
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 25, "a Swarm-style id: {id}");
    let err = cli.fails(&["service", "create", "-d", "--name", "web", "nginx"]);
    assert!(
        err.contains("name conflicts with an existing object: service web already exists"),
        "{err}"
    );

    println!("=== service ls before any task runs");
    let ls = cli.ok(&["service", "ls"]);
    let mut lines = ls.lines();
    assert_eq!(
        lines.next(),
        Some("ID             NAME      MODE         REPLICAS   IMAGE        PORTS")
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, [&id[..12], "web", "replicated", "0/2", "nginx:1.25", "*:8080->80/tcp"]);

    println!("=== nodes join: the leader loop places the tasks, ls and ps show them running");
    let _nodes = [
        fake_node(&cluster, root.path(), "a1", Duration::ZERO).await,
        fake_node(&cluster, root.path(), "a2", Duration::ZERO).await,
    ];
    let ls = wait_for_output(&cli, &["service", "ls"], |ls| ls.contains(" 2/2 ")).await;
    assert!(ls.lines().nth(1).unwrap().contains(" 2/2 "), "{ls}");
    let ps = cli.ok(&["service", "ps", &id[..6]]);
    let names: Vec<&str> =
        ps.lines().skip(1).map(|l| l.split("   ").nth(1).unwrap().trim()).collect();
    assert_eq!(names, ["web.1", "web.2"], "{ps}");
    assert!(
        ps.contains("Running less than a second ago") || ps.contains("Running 1 second ago"),
        "{ps}"
    );

    println!("=== inspect: JSON by default, --pretty for people");
    let json: serde_json::Value =
        serde_json::from_str(&cli.ok(&["service", "inspect", "web"])).unwrap();
    assert_eq!(json[0]["spec"]["update_config"]["parallelism"], 2);
    let pretty = cli.ok(&["service", "inspect", "--pretty", "web"]);
    assert!(
        pretty.contains("Name:\t\tweb\nService Mode:\tReplicated\n Replicas:\t2\n"),
        "{pretty}"
    );

    println!("=== update, scale, rollback");
    assert_eq!(
        cli.ok(&["service", "update", "-d", "--image", "nginx:1.26", "--env-add", "A=1", "web"]),
        "web\n"
    );
    let spec = api.inspect_service("web").await.unwrap().service.spec;
    assert_eq!(spec.task_template.container_spec.image, "nginx:1.26");
    let history =
        |ps: &str| ps.matches("\\_ web.").count() == 2 && ps.matches("nginx:1.26").count() == 2;
    let ps = wait_for_output(&cli, &["service", "ps", "web"], history).await;
    let names: Vec<&str> =
        ps.lines().skip(1).map(|l| l.split("   ").nth(1).unwrap().trim()).collect();
    assert_eq!(names, ["web.1", "\\_ web.1", "web.2", "\\_ web.2"], "{ps}");
    assert_eq!(cli.ok(&["service", "scale", "-d", "web=5"]), "web scaled to 5\n");
    assert_eq!(api.inspect_service(&id).await.unwrap().service.spec.replicas(), Some(5));
    let err = cli.fails(&["service", "update", "--rollback", "--replicas", "1", "web"]);
    assert!(err.contains("other flags may not be combined with --rollback"), "{err}");
    cli.ok(&["service", "rollback", "-d", "web"]);
    let back = api.inspect_service("web").await.unwrap().service.spec;
    assert_eq!(
        (back.replicas(), back.task_template.container_spec.image.as_str()),
        (Some(2), "nginx:1.26")
    );

    println!("=== Swarm's refusals");
    let err = cli.fails(&["service", "scale", "-d", "nothing=2"]);
    assert!(err.contains("service nothing not found"), "{err}");
    let err = cli.fails(&["service", "update", "-d", "--update-max-failure-ratio", "2", "web"]);
    assert!(err.contains("update-maxfailureratio cannot be less than 0 or bigger than 1"), "{err}");
    let err = cli.fails(&["service", "create", "-d", "--name", "x", "--secret", "missing", "img"]);
    assert!(err.contains("secret not found: missing"), "{err}");
    let err = cli.fails(&["service", "update", "-d", "--rollback", "nothing"]);
    assert!(err.contains("service nothing not found"), "{err}");
    cli.ok(&["service", "create", "-d", "--name", "fresh", "img"]);
    let err = cli.fails(&["service", "rollback", "-d", "fresh"]);
    assert!(err.contains("does not have a previous spec"), "{err}");
    cli.ok(&["service", "rm", "fresh"]);

    println!("=== --output json and rm");
    let rows: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--output", "json", "service", "ls"])).unwrap();
    let web = rows.as_array().unwrap().iter().find(|r| r["spec"]["name"] == "web");
    assert_eq!(web.unwrap()["status"]["desired_tasks"], 2, "{rows:#}");
    assert_eq!(cli.ok(&["service", "rm", "web"]), "web\n");
    assert_eq!(cli.ok(&["service", "ls", "-q"]), "");
    let err = cli.fails(&["service", "ps", "web"]);
    assert!(err.contains("no such service: web"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_create_waits_for_its_tasks_and_the_monitor_before_converged() {
    let (root, cluster, cli, api) = start().await;
    let _node = fake_node(&cluster, root.path(), "a1", Duration::from_millis(800)).await;
    let child = cli
        .command(&["service", "create", "--name", "api", "--update-monitor", "1s", "img"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    println!("=== the CLI waits for the fake node to report the task running");
    let info = loop {
        if let Ok(found) = api.inspect_service("api").await {
            break found.service;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = info.id.to_string();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // Each line is printed when it changes: the task's states in between depend on timing.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&id.as_str()), "{stdout}");
    assert!(lines.contains(&"overall progress: 0 out of 1 tasks"), "{stdout}");
    let end = [
        "overall progress: 1 out of 1 tasks".to_owned(),
        "verify: Waiting 1 seconds to verify that tasks are stable...".to_owned(),
        format!("verify: Service {id} converged"),
    ];
    assert!(lines.ends_with(&end.iter().map(String::as_str).collect::<Vec<_>>()), "{stdout}");
}
