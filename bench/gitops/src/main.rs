//! Benchmark of the GitOps loop (issue 13): the time from a Git commit of a new probe version
//! to every task of a 10-replica service answering that version, on real `flotilla manager`
//! and `flotilla agent` processes (process runtime), median of several runs:
//!
//! ```text
//!  webhook: git commit ─► POST /v1/webhook (X-Hub-Signature-256) ─► leader fetches ─► plan ─►
//!           apply ─► rollout (parallelism 2, delay 200 ms) ─► agent ─► every task answers
//!  poll:    git commit ─► … the leader's next fetch (--poll, + up to 10 % jitter) ─► … the same
//! ```
//!
//! With polling, each commit is made at a random moment of the poll interval, so the figure
//! includes the wait for the next fetch as a commit at any moment meets it (half the
//! interval on average).
//!
//! The repository is a folder on this machine given at `manager --init --repo`, so the
//! fetch is local. The clock starts when `git commit` has returned and stops when the last
//! of the ten tasks meant to run (each of the new version, RUNNING) has answered `GET /` with
//! the new version on the node port its agent reported (the API and the tasks are polled
//! every 10 ms). Flotilla's overhead is that time minus the rollout's configured waits on the
//! way: the delay after each batch but the last (`(ceil(10 / parallelism) - 1) × delay`;
//! the monitor period runs after the last batch, when every task already answers, and is
//! not on the way). The webhook is signed with the cluster's configured secret as GitHub
//! signs it (HMAC-SHA256 of the body) and sent over the cluster's TLS.
//!
//! What the Swarm GitOps tools do by default is printed beside it as text (their documented
//! poll intervals), not measured.
//!
//! ```text
//! cargo build --release -p flotilla -p bench-gitops
//! target/release/bench-gitops [--runs 5] [--poll 1s] [--managers 1] [--flotilla PATH]
//!                             [--keep DIR]
//! ```
//!
//! `--keep DIR` runs in DIR and leaves it: the managers' logs (`DIR/m/mN.log`), the agent's
//! (`DIR/a1.log`) and the repository. With `FLOTILLA_LOG=debug` the logs time every step
//! on the way (webhook, fetch, deploy, the leader's passes, assignments answered and
//! received, task states, the dispatcher's batches).

use anyhow::{Context, bail};
use hmac::{Hmac, KeyInit, Mac};
use reconciler_api::ApiClient;
use reconciler_api::services::ServiceTasks;
use reconciler_api::source::{SourceSet, WEBHOOK_PATH};
use reconciler_api::stacks::DeploymentOutcome;
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{TaskId, TaskState, UpdateState};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

const STACK: &str = "bench";
const SERVICE: &str = "bench_web";
const REPLICAS: usize = 10;
const PARALLELISM: usize = 2;
const DELAY: Duration = Duration::from_millis(200);
const MONITOR: Duration = Duration::from_millis(500);
const POLL_EVERY: Duration = Duration::from_millis(10);
const DEADLINE: Duration = Duration::from_secs(120);
/// The branch the cluster deploys, as a push event names it.
const PUSH_BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

/// What the command line asked for.
struct Options {
    runs: usize,
    poll: Duration,
    managers: usize,
    flotilla: PathBuf,
    /// Keep the managers' and the agent's folders and logs here (`FLOTILLA_LOG` sets their
    /// level) instead of a temporary folder removed at the end.
    keep: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let mut o = Options {
        runs: 5,
        poll: Duration::from_secs(1),
        managers: 1,
        flotilla: dir.join("flotilla"),
        keep: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--runs" => o.runs = value.parse::<usize>()?.max(1),
            "--poll" => o.poll = humantime::parse_duration(&value)?,
            "--managers" => o.managers = value.parse::<usize>()?.max(1),
            "--flotilla" => o.flotilla = value.into(),
            "--keep" => o.keep = Some(value.into()),
            other => bail!("unknown flag {other} {value}"),
        }
    }
    if !o.flotilla.exists() {
        bail!(
            "no flotilla binary at {}; build it (-p flotilla) or pass --flotilla",
            o.flotilla.display()
        );
    }
    // Task supervisors run it from their own folders.
    o.flotilla = std::fs::canonicalize(&o.flotilla)?;
    Ok(o)
}

/// The median (the upper one of an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The rollout's configured waits between the commit and the last task answering: the delay
/// after every batch but the last.
fn configured_waits() -> Duration {
    let batches = REPLICAS.div_ceil(PARALLELISM);
    DELAY * u32::try_from(batches.saturating_sub(1)).unwrap_or(u32::MAX)
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Bench", "-c", "user.email=bench@example.com"])
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn stack(version: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  web:
    image: flotilla/probe:{version}
    command: ["flotilla", "probe"]
    environment:
      PROBE_VERSION: {version}
    ports:
      - target: 80
    stop_grace_period: 2s
    deploy:
      replicas: {REPLICAS}
      update_config:
        parallelism: {PARALLELISM}
        delay: {delay}ms
        monitor: {monitor}ms
        order: start-first
"#,
        delay = DELAY.as_millis(),
        monitor = MONITOR.as_millis(),
    )
}

/// Commits the stack at `version`; answers the commit id.
fn commit(repo: &Path, version: &str) -> anyhow::Result<String> {
    let dir = repo.join("stacks").join(STACK);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("stack.yml"), stack(version))?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-q", "-m", &format!("probe {version}")])?;
    git(repo, &["rev-parse", "HEAD"])
}

/// GitHub's `X-Hub-Signature-256` of `body` with `secret`.
fn hub_signature(body: &[u8], secret: &str) -> anyhow::Result<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| anyhow::anyhow!("hmac key: {e}"))?;
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256={hex}"))
}

fn version_of(env: &[String]) -> &str {
    env.iter().find_map(|e| e.strip_prefix("PROBE_VERSION=")).unwrap_or_default()
}

/// The tasks meant to run, when there are exactly `REPLICAS` of them and every one runs
/// `version`: their ids and node ports.
fn all_running(t: &ServiceTasks, version: &str) -> Option<Vec<(TaskId, u32)>> {
    let meant: Vec<_> =
        t.tasks.iter().filter(|v| v.task.desired_state <= TaskState::Running).collect();
    if meant.len() != REPLICAS {
        return None;
    }
    meant
        .iter()
        .map(|v| {
            let k = &v.task;
            let ok = k.status.state == TaskState::Running
                && version_of(&k.spec.container_spec.env) == version;
            let port = k.status.ports.first().map(|p| p.published_port)?;
            ok.then(|| (k.id.clone(), port))
        })
        .collect()
}

/// What brings a commit to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// A signed push webhook, sent right after the commit.
    Webhook,
    /// The leader's poll, every this long.
    Poll(Duration),
}

/// A number in [0, 1) from the clock's nanoseconds (a phase, not a secret).
fn random_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    f64::from(nanos) / 1e9
}

struct Bench {
    cluster: ProcessCluster,
    client: ApiClient,
    /// Plain GETs of the tasks.
    http: reqwest::Client,
    /// The webhook's client: the cluster's TLS, no client certificate (a forge has none).
    hook: reqwest::Client,
    secret: String,
    repo: PathBuf,
    /// Print when each commit was made, to find it in the kept logs.
    keep: bool,
}

impl Bench {
    /// Waits until every task meant to run runs `version` and has answered it; answers when.
    async fn answering(&self, version: &str) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + DEADLINE;
        let mut answered: BTreeSet<TaskId> = BTreeSet::new();
        loop {
            if let Ok(t) = self.client.service_tasks(SERVICE).await
                && let Some(tasks) = all_running(&t, version)
            {
                for (id, port) in &tasks {
                    if answered.contains(id) {
                        continue;
                    }
                    let url = format!("http://127.0.0.1:{port}/");
                    let Ok(r) = self.http.get(&url).send().await else { continue };
                    let Ok(body) = r.json::<serde_json::Value>().await else { continue };
                    if body["version"] == version && body["task"] == id.as_str() {
                        answered.insert(id.clone());
                    }
                }
                if tasks.iter().all(|(id, _)| answered.contains(id)) {
                    return Ok(Instant::now());
                }
            }
            if Instant::now() > deadline {
                bail!("{SERVICE} did not answer {version} within {DEADLINE:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until the rollout to `commit` completed and its deployment succeeded, so that
    /// the next run starts from a settled cluster.
    async fn settled(&self, commit: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let done = self.client.service_tasks(SERVICE).await.ok().is_some_and(|t| {
                t.service.update_status.as_ref().is_none_or(|u| u.state == UpdateState::Completed)
            });
            let recorded = self.client.stack_history(STACK).await.ok().is_some_and(|h| {
                h.deployments.first().is_some_and(|d| {
                    d.commit == commit && d.outcome == DeploymentOutcome::Succeeded
                })
            });
            if done && recorded {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the deployment of {commit} did not succeed within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn push_webhook(&self) -> anyhow::Result<()> {
        let url = format!(
            "{}{WEBHOOK_PATH}",
            reconciler_api::pki::https_url(&self.cluster.managers[0].addr)
        );
        let r = self
            .hook
            .post(&url)
            .header("X-Hub-Signature-256", hub_signature(PUSH_BODY, &self.secret)?)
            .header("content-type", "application/json")
            .body(PUSH_BODY.to_vec())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() || !text.contains("\"fetch\":true") {
            bail!("the webhook was refused: {status} {text}");
        }
        Ok(())
    }

    /// One run: commit `version`, trigger (webhook or not), time until every task answers.
    /// Without the webhook the commit first waits a random part of the poll interval. The
    /// previous run ends when the loop records its deployment, which it does as soon as the
    /// rollout's last step is applied (an event, not the next fetch); but that rollout began
    /// at a fetch and takes nearly the same time every run, so it ends at nearly the same
    /// moment of the poll interval every time (with 1 s polls and a 2 s rollout, just before
    /// a fetch), and a commit made at once would wait nearly the same part of an interval
    /// every time instead of half of one on average, as a commit at any moment does.
    async fn run(&self, version: &str, trigger: Trigger) -> anyhow::Result<Duration> {
        if let Trigger::Poll(every) = trigger {
            tokio::time::sleep(every.mul_f64(random_fraction())).await;
        }
        let commit = commit(&self.repo, version)?;
        let start = Instant::now();
        if self.keep {
            let at = humantime::format_rfc3339_micros(std::time::SystemTime::now());
            println!("  {version} committed at {at} (the logs' clock)");
        }
        if trigger == Trigger::Webhook {
            self.push_webhook().await?;
        }
        let end = self.answering(version).await?;
        self.settled(&commit).await?;
        Ok(end - start)
    }
}

async fn run(o: Options) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let root = match &o.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::fs::canonicalize(dir)?
        }
        None => temp.path().to_owned(),
    };
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    let first = commit(&repo, "v0")?;
    let secret = format!("bench-{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let secret_file = root.join("webhook-secret");
    std::fs::write(&secret_file, &secret)?;
    let repo_arg = repo.to_str().context("a temporary path that is not UTF-8")?;
    let secret_arg = secret_file.to_str().context("a temporary path that is not UTF-8")?;
    // The webhook runs first: the poll is an hour, so only the webhook brings a commit in.
    let init = ["--repo", repo_arg, "--poll", "1h", "--webhook-secret-file", secret_arg];
    let cluster = ProcessCluster::start_with_init_args(
        &o.flotilla,
        &root.join("m"),
        o.managers,
        false,
        &init,
    )
    .await?;
    let level = std::env::var("FLOTILLA_LOG").unwrap_or_else(|_| "warn".to_owned());
    let agent = cluster.start_agent(&root, "a1", &level).await?;
    let client = cluster.client(0)?;
    let http = reconciler_api::http::http_client(Duration::from_secs(2))?;
    let tls = reconciler_tls::TlsState::new(&cluster.ca)?;
    let hook = reconciler_api::pki::tls_client(&tls, Duration::from_secs(10), true)?;
    let b = Bench { cluster, client, http, hook, secret, repo, keep: o.keep.is_some() };
    b.answering("v0").await.context("the first deployment")?;
    b.settled(&first).await?;

    let waits = configured_waits();
    println!(
        "commit → all {REPLICAS} tasks answer the new version ({} manager(s), one process agent; \
         update_config parallelism {PARALLELISM}, delay {} ms, monitor {} ms, start-first: \
         {} ms of configured delays on the way)",
        o.managers,
        DELAY.as_millis(),
        MONITOR.as_millis(),
        waits.as_millis()
    );
    let mut version = 0;
    let mut results = Vec::new();
    for (mode, trigger) in [("webhook", Trigger::Webhook), ("poll", Trigger::Poll(o.poll))] {
        if trigger != Trigger::Webhook {
            let set = SourceSet { poll: Some(o.poll), ..SourceSet::default() };
            b.client.set_source(&set).await?;
        }
        let mut took = Vec::new();
        for i in 1..=o.runs {
            version += 1;
            let d = b.run(&format!("v{version}"), trigger).await?;
            println!("  {mode} run {i}: {:.1} ms, overhead {:.1} ms", ms(d), ms(d) - ms(waits));
            took.push(ms(d));
        }
        let m = median(took);
        results.push((mode, m, m - ms(waits)));
    }
    drop(agent);
    drop(b);

    let poll = humantime::format_duration(o.poll);
    println!();
    println!("| benchmark (command) | flotilla | reference | ratio |");
    println!("|---|---|---|---|");
    for (mode, raw, overhead) in results {
        let (label, goal) = if mode == "webhook" {
            (
                "commit → all 10 tasks answer, push webhook (X-Hub-Signature-256)".to_owned(),
                if overhead < 500.0 { "goal < 500 ms: met" } else { "goal < 500 ms: not met" },
            )
        } else {
            (format!("same, polling (`--poll {poll}`, + up to 10 % jitter)"), "")
        };
        let reference = if mode == "webhook" {
            "SwarmCD: polls every 120 s; doco-cd: 180 s; Portainer: 5 min; Argo CD: 120 s + jitter (defaults, not measured)"
        } else {
            ""
        };
        let cmd = if mode == "webhook" {
            format!("`target/release/bench-gitops --runs {} --poll {poll}`: ", o.runs)
        } else {
            String::new()
        };
        println!(
            "| {cmd}{label} | {overhead:.0} ms overhead ({raw:.0} ms − {} ms of configured delays) | {reference} | {goal} |",
            waits.as_millis()
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = parse_args()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // On Ctrl-C the run is dropped: the harness kills every process it started.
        tokio::select! {
            r = run(o) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted; cleaned up"),
        }
    })
}
