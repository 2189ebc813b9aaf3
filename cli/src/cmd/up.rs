//! `flotilla up`: a one-node cluster on this machine in one process — a manager (its data
//! folder made on the first run, resumed on the next) and an agent joined to it with the
//! worker token — deploying a Git repository: by default the `examples/stacks/` of the
//! flotilla checkout that holds the current folder.
//!
//! ```text
//!  up ─► manager (Raft, API, GitOps loop on DATA/manager) ◄─ agent (DATA/agent, runtime)
//!   │          ▲ source: the repo, runtime filter (stacks the runtime cannot run are skipped)
//!   └─ every 250 ms: read the state, print what changed (the agent's routing mesh serves
//!      the published ports); on a terminal, also a bar per service whose rollout is under
//!      way or whose tasks are starting ([`bars`])
//! ```
//!
//! Stacks the runtime cannot run are skipped by the Git source itself (its `runtime`
//! setting), so the loop, `source show` and this command agree on them. Published ports
//! answer on this machine through the agent's routing mesh (`agent::mesh`), as on any node
//! of a cluster. Ctrl-C (SIGINT or SIGTERM) drains the agent's
//! node, waits for its tasks to stop, then stops the agent and the manager; the next `up`
//! makes the node active again and the tasks come back.

use super::api::{HOST_FILE, block_on, default_data_dir};
use super::bars::Bars;
use super::service::progress::Line;
use agent::agent::{AgentOptions, RuntimeKind};
use agent_core::logs::LogLimits;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use reconciler_api::operator::NodeUpdate;
use reconciler_api::source::SourceSet;
use reconciler_manager::dispatcher::DispatcherConfig;
use reconciler_manager::{ManagerOptions, StartMode, start_manager};
use reconciler_orchestrator::state::ClusterState;
use reconciler_orchestrator::state::gitops::Outcome;
use reconciler_orchestrator::updater::is_clean;
use reconciler_types::{
    Availability, NodeId, NodeRole, PortProtocol, ServiceMode, TaskState, UpdateState,
};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// The folder of the stacks `up` deploys from a flotilla checkout.
pub const EXAMPLES_PATH: &str = "examples/stacks";

/// How long a stop waits for the node's tasks (their grace periods) before it gives up.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// `flotilla up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The repository to deploy: a Git folder, a plain folder or a URL (default: the
    /// flotilla checkout that holds the current folder).
    #[arg(long, value_name = "DIR|URL")]
    repo: Option<String>,
    /// The repository's folder that holds the stacks (default: examples/stacks without
    /// --repo, stacks with it).
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
    /// The branch to deploy (default: the branch a local repository has checked out, else
    /// main).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// The data folder (default: $XDG_STATE_HOME/flotilla, else ~/.local/state/flotilla,
    /// where other commands find the manager and its token without flags).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// What runs the tasks; stacks it cannot run are skipped.
    #[arg(long, value_enum, default_value_t = UpRuntime::Process)]
    runtime: UpRuntime,
    /// The manager's address.
    #[arg(long, default_value = super::api::DEFAULT_HOST)]
    listen: SocketAddr,
    /// How often the repository is looked at (default: 1s for a folder, 60s for a URL).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    poll: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum UpRuntime {
    /// Host processes (a service needs an entrypoint or a command).
    Process,
    /// Docker containers (the local engine, or DOCKER_HOST).
    Docker,
}

impl UpRuntime {
    fn name(self) -> &'static str {
        match self {
            UpRuntime::Process => "process",
            UpRuntime::Docker => "docker",
        }
    }
}

/// The flotilla checkout that holds `dir`: the nearest folder at or above it with `.git`
/// and `examples/stacks`.
fn find_checkout(dir: &Path) -> anyhow::Result<PathBuf> {
    for d in dir.ancestors() {
        if d.join(".git").exists() {
            if d.join(EXAMPLES_PATH).is_dir() {
                return Ok(d.to_path_buf());
            }
            bail!(
                "{} is a Git repository but not a flotilla checkout (it has no {EXAMPLES_PATH}): \
                 run `flotilla up` inside a flotilla checkout, or give the stacks to deploy with \
                 --repo DIR|URL [--path PATH]",
                d.display()
            );
        }
    }
    bail!(
        "{} is not inside a flotilla checkout, whose {EXAMPLES_PATH} `flotilla up` deploys by \
         default: run it inside one (git clone https://github.com/flotilla/flotilla), or give \
         the stacks to deploy with --repo DIR|URL [--path PATH]",
        dir.display()
    )
}

/// The branch a local repository has checked out.
fn checked_out_branch(dir: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!("{} has no branch checked out (a detached HEAD): pass --branch", dir.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The Git source `up` deploys.
fn source_of(args: &UpArgs) -> anyhow::Result<SourceSet> {
    let (url, path) = match &args.repo {
        Some(repo) => (super::source::repo_location(repo)?, args.path.clone()),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current folder")?;
            let checkout = find_checkout(&cwd)?;
            let path = args.path.clone().unwrap_or_else(|| EXAMPLES_PATH.to_owned());
            (checkout.display().to_string(), Some(path))
        }
    };
    let local = !reconciler_source::repo::is_url(&url);
    let git_folder = local && reconciler_source::repo::is_repository(Path::new(&url));
    let branch = match &args.branch {
        Some(b) => Some(b.clone()),
        None if git_folder => Some(checked_out_branch(Path::new(&url))?),
        None => None,
    };
    let poll = args.poll.or(local.then_some(Duration::from_secs(1)));
    Ok(SourceSet {
        url: Some(url),
        branch,
        path,
        poll,
        runtime: Some(args.runtime.name().to_owned()),
        ..SourceSet::default()
    })
}

/// Runs `flotilla up`.
pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let default_dir = default_data_dir();
    let Some(data_dir) = args.data_dir.clone().or_else(|| default_dir.clone()) else {
        bail!("no data folder: pass --data-dir DIR (or set HOME or XDG_STATE_HOME)");
    };
    let source = source_of(&args)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let is_default = default_dir.as_deref() == Some(data_dir.as_path());
    block_on(async move { serve(args, data_dir, source, is_default).await })
}

async fn serve(
    args: UpArgs,
    data_dir: PathBuf,
    source: SourceSet,
    is_default: bool,
) -> anyhow::Result<ExitCode> {
    let manager_dir = data_dir.join("manager");
    let agent_dir = data_dir.join("agent");
    let resume = manager_dir.join(reconciler_manager::identity::IDENTITY_FILE).exists();
    let opts = ManagerOptions {
        data_dir: manager_dir.clone(),
        listen: args.listen,
        advertise: String::new(),
        mode: if resume { StartMode::Restart } else { StartMode::Init },
        hostname: reconciler_manager::daemon::system_hostname(),
        snapshot_every: 10_000,
        autolock: false,
        unlock_key: None,
        dispatcher: DispatcherConfig::default(),
        dispatcher_heartbeat: None,
        insecure: false,
        cert_expiry: Duration::from_secs(2160 * 3600),
        source: (!resume).then(|| source.clone()),
    };
    let running = start_manager(opts)
        .await
        .with_context(|| format!("the manager in {} failed to start", manager_dir.display()))?;
    let m = running.manager.clone();
    let addr = running.local_addr;
    std::fs::write(data_dir.join(HOST_FILE), format!("{addr}\n"))
        .with_context(|| format!("cannot write {}", data_dir.join(HOST_FILE).display()))?;
    if resume {
        with_leader(|| m.set_source(&source)).await.context("cannot set the Git source")?;
    }
    let token = with_leader(|| async { m.join_token(NodeRole::Worker) }).await?.token;
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent_opts = AgentOptions {
        data_dir: agent_dir.clone(),
        join: Some(addr.to_string()),
        token: Some(token),
        runtime: match args.runtime {
            UpRuntime::Process => RuntimeKind::Process,
            UpRuntime::Docker => RuntimeKind::Docker,
        },
        labels: BTreeMap::new(),
        advertise: None,
        hostname: None,
        log_limits: LogLimits::default(),
        insecure: false,
        flotilla_exe: std::env::current_exe().context("cannot find this program's path")?,
        mesh_addr: Some(std::net::Ipv4Addr::UNSPECIFIED.into()),
        mesh_path: agent::mesh::MeshPath::Auto,
    };
    let mut agent = tokio::spawn(agent::agent::run(agent_opts, async {
        let _ = agent_stopped.await;
    }));
    let node = tokio::select! {
        n = agent_node(&agent_dir) => n?,
        r = &mut agent => bail!("the agent stopped: {}", agent_end(r)),
    };
    set_availability(&m, &node, Availability::Active).await?;

    println!(
        "{} cluster in {} (manager on {addr}, agent on the {} runtime)",
        if resume { "Resumed the" } else { "Started a" },
        data_dir.display(),
        args.runtime.name()
    );
    println!(
        "Deploying {} of {} ({}), and each commit to it",
        source.path.as_deref().unwrap_or("stacks"),
        source.url.as_deref().unwrap_or_default(),
        source
            .branch
            .as_deref()
            .map_or_else(|| "branch main".to_owned(), |b| format!("branch {b}")),
    );
    if is_default {
        println!("Other flotilla commands on this machine use this cluster without flags.");
    } else {
        println!(
            "Other commands: -H {addr} --tlscacert {} --token $(cat {})",
            manager_dir.join("ca.pem").display(),
            manager_dir.join(reconciler_manager::identity::API_TOKEN_FILE).display()
        );
    }
    println!("Ctrl-C stops the tasks and the cluster; `flotilla up` again resumes it.");

    let mut signals = Signals::new()?;
    let mut seen = View { empty_cluster: !resume, ..View::default() };
    let mut out = Output::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            () = signals.next() => break,
            r = &mut agent => {
                out.finish();
                running.shutdown().await;
                bail!("the agent stopped: {}", agent_end(r));
            }
            _ = tick.tick() => {
                let view = m.node.state.read(|s| View::of(&s.state, &node));
                out.show(&seen.changes(&view), &view);
                seen = view;
            }
        }
    }
    out.finish();
    println!("Stopping: draining this node's tasks (Ctrl-C again to stop at once)");
    tokio::select! {
        r = drain(&m, &node) => {
            if let Err(e) = r {
                println!("{e:#}");
            }
        }
        () = signals.next() => println!("Stopping at once: the tasks left running are adopted by the next `up`"),
    }
    let _ = stop_agent.send(());
    let _ = agent.await;
    running.shutdown().await;
    println!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

fn agent_end(r: Result<Result<(), agent::agent::AgentError>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => "without an error".into(),
        Ok(Err(e)) => format!("{:#}", anyhow::Error::new(e)),
        Err(e) => e.to_string(),
    }
}

/// Calls `f` until the manager leads (a restarted one-node cluster elects itself within a
/// few seconds).
async fn with_leader<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, reconciler_manager::ApiError>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The agent's node id, once it has joined.
async fn agent_node(dir: &Path) -> anyhow::Result<NodeId> {
    let file = dir.join(agent::node::NODE_FILE);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(node) = serde_json::from_str::<agent::node::NodeFile>(&text)
        {
            return Ok(node.node_id);
        }
        if Instant::now() > deadline {
            bail!("the agent did not join within 30s ({} was not written)", file.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_availability(
    m: &reconciler_manager::Manager,
    node: &NodeId,
    availability: Availability,
) -> anyhow::Result<()> {
    let now = m.node.state.read(|s| s.state.nodes.get(node).map(|n| n.node.spec.availability));
    if now == Some(availability) {
        return Ok(());
    }
    let update = NodeUpdate { availability: Some(availability), ..NodeUpdate::default() };
    with_leader(|| m.update_node(node.as_str(), &update))
        .await
        .with_context(|| format!("cannot set node {node} {availability:?}"))?;
    Ok(())
}

/// Drains the node and waits until none of its tasks runs.
async fn drain(m: &reconciler_manager::Manager, node: &NodeId) -> anyhow::Result<()> {
    set_availability(m, node, Availability::Drain).await?;
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let left = m.node.state.read(|s| {
            s.state
                .tasks
                .values()
                .filter(|t| {
                    t.task.node_id.as_ref() == Some(node) && !t.task.status.state.is_terminal()
                })
                .filter(|t| t.task.status.state >= TaskState::Assigned)
                .count()
        });
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} task(s) still running after {STOP_TIMEOUT:?}; the next `up` adopts them");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGINT and SIGTERM.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Where `up` writes what happens: plain lines, or on a terminal the same lines with a
/// progress bar under them for each rollout under way.
enum Output {
    Plain,
    Terminal(Bars),
}

impl Output {
    fn new() -> Output {
        if std::io::stdout().is_terminal() {
            Output::Terminal(Bars::stdout())
        } else {
            Output::Plain
        }
    }

    /// Writes the `changes` lines, then draws the bars of `view`.
    fn show(&mut self, changes: &[String], view: &View) {
        match self {
            Output::Plain => {
                for line in changes {
                    println!("{line}");
                }
            }
            Output::Terminal(b) => {
                for line in changes {
                    b.println(line);
                }
                let lines = bars(view);
                b.keep_only(&lines.iter().map(|l| l.id.as_str()).collect::<Vec<_>>());
                b.show(&lines);
            }
        }
    }

    /// Removes the bars (what follows is plain lines).
    fn finish(&mut self) {
        if let Output::Terminal(b) = self {
            b.keep_only(&[]);
        }
    }
}

/// The progress bars `up` draws on a terminal for `view`, one per service whose tasks are
/// being replaced or are starting, in service name order:
/// * an update (or a rollback) under way: running tasks of the service's current spec out of
///   the tasks it wants, `service web: updating, 1/3 tasks updated [====>   ]`;
/// * otherwise, tasks still starting: running tasks out of wanted, `service web: 1/3 tasks
///   running [====>   ]`.
///
/// A service with every task running and no rollout under way has none.
pub fn bars(view: &View) -> Vec<Line> {
    let mut out = Vec::new();
    for (name, s) in &view.services {
        let id = format!("service {name}");
        let (updated, total) = s.updated;
        let (running, wanted) = s.running;
        let action = match &s.update {
            Some((UpdateState::Updating, _)) => {
                format!("updating, {updated}/{total} tasks updated")
            }
            Some((UpdateState::RollbackStarted, message)) => {
                let why = if message.is_empty() { String::new() } else { format!(" ({message})") };
                format!("rolling back{why}, {updated}/{total} tasks rolled back")
            }
            _ if running < wanted => format!("{running}/{wanted} tasks running"),
            _ => continue,
        };
        let bar = match &s.update {
            Some((UpdateState::Updating | UpdateState::RollbackStarted, _)) => (updated, total),
            _ => (running, wanted),
        };
        let bar =
            (u64::try_from(bar.0).unwrap_or(u64::MAX), u64::try_from(bar.1).unwrap_or(u64::MAX));
        out.push(Line { id, action, bar: Some(bar) });
    }
    out
}

/// What `up` reports, read from the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The source's head commit.
    pub commit: Option<String>,
    /// The source's error.
    pub error: Option<String>,
    /// The stacks skipped, with the reason.
    pub skipped: Vec<String>,
    /// Each stack's last deployment: id, commit, summary, outcome, message.
    pub deployments: BTreeMap<String, (u64, String, String, Outcome, String)>,
    /// Each service by name.
    pub services: BTreeMap<String, ServiceView>,
    /// Tasks that failed, by id: `name: error`.
    pub failed: BTreeMap<String, String>,
    /// The view before anything existed (a cluster just started): every deployment found
    /// next is new, even one already done when first seen (a deployment can finish within
    /// one tick); otherwise one found done is a resumed cluster's past and shows only its end.
    pub empty_cluster: bool,
}

/// A service as `up` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceView {
    /// The rollout state and its message.
    pub update: Option<(UpdateState, String)>,
    /// Tasks running, tasks wanted.
    pub running: (usize, usize),
    /// Running tasks of the service's current spec, tasks it wants once converged (its
    /// replicas; for a global service, the tasks wanted now).
    pub updated: (usize, usize),
    /// TCP ingress ports: published port → the node ports of this node's running tasks
    /// (the port answers, through the agent's mesh, once there is one).
    pub routes: BTreeMap<u32, Vec<u16>>,
}

impl View {
    /// Reads what `up` reports of `state` (routes to tasks on `node`).
    pub fn of(state: &ClusterState, node: &NodeId) -> View {
        let st = &state.source_status;
        let deployments = state
            .stacks
            .iter()
            .filter_map(|(name, h)| {
                let d = h.deploy.deployments.last()?;
                let short = reconciler_gitops::short(&d.commit).to_owned();
                Some((
                    name.to_string(),
                    (d.id, short, d.summary.clone(), d.outcome, d.message.clone()),
                ))
            })
            .collect();
        let mut services: BTreeMap<String, ServiceView> = BTreeMap::new();
        let mut names = BTreeMap::new();
        for s in state.services.values() {
            names.insert(s.id.clone(), s.spec.name.clone());
            let update = s.update_status.as_ref().map(|u| (u.state, u.message.clone()));
            let routes = s
                .endpoint_ports
                .iter()
                .filter(|p| p.protocol == PortProtocol::Tcp && p.published_port != 0)
                .map(|p| (p.published_port, Vec::new()))
                .collect();
            let replicas = match s.spec.mode {
                ServiceMode::Replicated { replicas } => usize::try_from(replicas).ok(),
                ServiceMode::Global => None,
            };
            let view = ServiceView {
                update,
                running: (0, 0),
                updated: (0, replicas.unwrap_or(0)),
                routes,
            };
            services.insert(s.spec.name.clone(), view);
        }
        let mut failed = BTreeMap::new();
        for t in state.tasks.values().map(|r| &r.task) {
            let Some(name) = names.get(&t.service_id) else { continue };
            let Some(view) = services.get_mut(name) else { continue };
            let record = state.services.get(&t.service_id);
            let global = record.is_some_and(|s| matches!(s.spec.mode, ServiceMode::Global));
            if t.desired_state == TaskState::Running {
                view.running.1 += 1;
                if global {
                    view.updated.1 += 1;
                }
            }
            if t.status.state == TaskState::Running {
                view.running.0 += 1;
                if t.desired_state == TaskState::Running
                    && record.is_some_and(|s| is_clean(state, t, s))
                {
                    view.updated.0 += 1;
                }
                if t.node_id.as_ref() == Some(node) {
                    for p in &t.status.ports {
                        let Ok(port) = u16::try_from(p.published_port) else { continue };
                        let wanted = state
                            .services
                            .get(&t.service_id)
                            .into_iter()
                            .flat_map(|s| &s.endpoint_ports)
                            .find(|e| e.target_port == p.target_port && e.protocol == p.protocol);
                        if let Some(e) = wanted
                            && let Some(r) = view.routes.get_mut(&e.published_port)
                        {
                            r.push(port);
                        }
                    }
                }
            }
            if matches!(t.status.state, TaskState::Failed | TaskState::Rejected) {
                let why = if t.status.err.is_empty() { &t.status.message } else { &t.status.err };
                failed.insert(t.id.to_string(), format!("{name}.{}: {why}", t.slot));
            }
        }
        View {
            commit: st.commit.clone(),
            error: st.error.clone(),
            skipped: st.skipped.clone(),
            deployments,
            services,
            failed,
            empty_cluster: false,
        }
    }

    /// One line per change from `self` to `next`.
    pub fn changes(&self, next: &View) -> Vec<String> {
        let mut out = Vec::new();
        if next.commit != self.commit
            && let Some(c) = &next.commit
        {
            out.push(format!("source: commit {}", reconciler_gitops::short(c)));
        }
        if next.error != self.error {
            match &next.error {
                Some(e) => out.push(format!("source: {e}")),
                None if self.error.is_some() => out.push("source: no error".into()),
                None => {}
            }
        }
        for s in next.skipped.iter().filter(|s| !self.skipped.contains(s)) {
            out.push(format!("skipped {s}"));
        }
        for (stack, (id, commit, summary, outcome, message)) in &next.deployments {
            let before = self.deployments.get(stack);
            // A deployment found done (the first look of a resumed cluster) only shows its end.
            if before.map(|b| b.0) != Some(*id)
                && (before.is_some() || *outcome == Outcome::InProgress || self.empty_cluster)
            {
                out.push(format!("stack {stack}: deploying {commit} ({summary})"));
            }
            if *outcome != Outcome::InProgress
                && before.is_none_or(|b| b.0 != *id || b.3 != *outcome)
            {
                let why = if message.is_empty() { String::new() } else { format!(": {message}") };
                out.push(format!("stack {stack}: {commit} {}{why}", outcome.as_str()));
            }
        }
        for (name, s) in &next.services {
            let before = self.services.get(name);
            if before.map(|b| &b.update) != Some(&s.update)
                && let Some((state, message)) = &s.update
            {
                let why = if message.is_empty() { String::new() } else { format!(": {message}") };
                out.push(format!("service {name}: {}{why}", state.as_str()));
            }
            // The plain lines' counterpart of a rollout's bar.
            let what = match &s.update {
                Some((UpdateState::Updating, _)) => Some("updated"),
                Some((UpdateState::RollbackStarted, _)) => Some("rolled back"),
                _ => None,
            };
            if let Some(what) = what
                && (before.map(|b| b.updated) != Some(s.updated)
                    || before.map(|b| &b.update) != Some(&s.update))
            {
                let (done, total) = s.updated;
                out.push(format!("service {name}: {done}/{total} tasks {what}"));
            }
            if before.map(|b| b.running) != Some(s.running) {
                let (running, wanted) = s.running;
                out.push(format!("service {name}: {running}/{wanted} tasks running"));
            }
            for (published, tasks) in &s.routes {
                let had =
                    before.and_then(|b| b.routes.get(published)).is_some_and(|t| !t.is_empty());
                if !had && !tasks.is_empty() {
                    out.push(format!(
                        "service {name}: http://127.0.0.1:{published}/ answers (port {published})"
                    ));
                }
            }
        }
        for (id, what) in &next.failed {
            if !self.failed.contains_key(id) {
                out.push(format!("task {what}"));
            }
        }
        for name in self.services.keys().filter(|n| !next.services.contains_key(*n)) {
            out.push(format!("service {name}: removed"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_orchestrator::state::{ServiceRecord, TaskRecord};
    use reconciler_types::{ServiceId, ServiceSpec, Task, TaskId, UpdateStatus};

    #[test]
    fn a_folder_outside_a_checkout_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_checkout(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not inside a flotilla checkout") && err.contains("--repo"), "{err}");
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let err = find_checkout(&dir.path().join("sub")).unwrap_err().to_string();
        assert!(err.contains("not a flotilla checkout"), "{err}");
        std::fs::create_dir_all(dir.path().join(EXAMPLES_PATH)).unwrap();
        assert_eq!(find_checkout(&dir.path().join("a/b")).unwrap(), dir.path());
    }

    fn task(id: &str, slot: u64, spec_version: u64, env: &str, state: TaskState) -> Task {
        let mut t = Task {
            id: TaskId::new(id),
            service_id: ServiceId::new("s1"),
            slot,
            spec_version,
            desired_state: TaskState::Running,
            ..Task::default()
        };
        t.spec.container_spec.env = vec![env.to_owned()];
        t.status.state = state;
        t
    }

    #[test]
    fn a_view_counts_the_running_tasks_of_the_current_spec_as_updated() {
        let mut spec = ServiceSpec { name: "web".into(), ..ServiceSpec::default() };
        spec.mode = ServiceMode::Replicated { replicas: 2 };
        spec.task_template.container_spec.env = vec!["V=2".into()];
        let mut record = ServiceRecord::new(ServiceId::new("s1"), spec, 3);
        record.update_status = Some(UpdateStatus {
            state: UpdateState::Updating,
            message: "update in progress".into(),
            started_at: None,
            completed_at: None,
        });
        let mut state = ClusterState::default();
        state.services.insert(ServiceId::new("s1"), record);
        // Slot 1 is updated; slot 2 runs the old spec while its new task starts (start-first);
        // an old task of slot 1 has stopped.
        let mut stopped = task("t0", 1, 2, "V=1", TaskState::Shutdown);
        stopped.desired_state = TaskState::Shutdown;
        for t in [
            task("t1", 1, 3, "V=2", TaskState::Running),
            task("t2", 2, 2, "V=1", TaskState::Running),
            task("t3", 2, 3, "V=2", TaskState::Starting),
            stopped,
        ] {
            state.tasks.insert(t.id.clone(), TaskRecord { task: t, version: 1 });
        }
        let view = View::of(&state, &NodeId::new("n1"));
        let web = &view.services["web"];
        assert_eq!(web.updated, (1, 2));
        assert_eq!(web.running, (2, 3));
        assert_eq!(web.update, Some((UpdateState::Updating, "update in progress".to_owned())));
        assert_eq!(
            bars(&view),
            [Line {
                id: "service web".into(),
                action: "updating, 1/2 tasks updated".into(),
                bar: Some((1, 2)),
            }]
        );
    }

    #[test]
    fn bars_show_rollouts_and_starting_tasks_and_nothing_once_converged() {
        let mut v = View::default();
        let done = ServiceView {
            update: Some((UpdateState::Completed, "update completed".into())),
            running: (2, 2),
            updated: (2, 2),
            ..ServiceView::default()
        };
        v.services.insert("a_done".into(), done);
        let rolling_back = ServiceView {
            update: Some((UpdateState::RollbackStarted, "update rolled back".into())),
            running: (3, 3),
            updated: (1, 3),
            ..ServiceView::default()
        };
        v.services.insert("b_api".into(), rolling_back);
        let starting = ServiceView { running: (1, 3), updated: (1, 3), ..ServiceView::default() };
        v.services.insert("c_db".into(), starting);
        let updating = ServiceView {
            update: Some((UpdateState::Updating, "update in progress".into())),
            running: (2, 2),
            updated: (0, 2),
            ..ServiceView::default()
        };
        v.services.insert("d_web".into(), updating);
        let line = |id: &str, action: &str, bar: (u64, u64)| Line {
            id: id.into(),
            action: action.into(),
            bar: Some(bar),
        };
        assert_eq!(
            bars(&v),
            [
                line(
                    "service b_api",
                    "rolling back (update rolled back), 1/3 tasks rolled back",
                    (1, 3)
                ),
                line("service c_db", "1/3 tasks running", (1, 3)),
                line("service d_web", "updating, 0/2 tasks updated", (0, 2)),
            ]
        );
        v.services.clear();
        assert!(bars(&v).is_empty());
    }

    #[test]
    fn changes_are_one_line_each_and_only_once() {
        let mut v = View::default();
        assert!(View::default().changes(&v).is_empty());
        v.commit = Some("0123456789abcdef".into());
        v.skipped = vec!["stack shop: no command".into()];
        v.deployments.insert(
            "hello".into(),
            (7, "0123456789ab".into(), "1 to create".into(), Outcome::InProgress, String::new()),
        );
        let mut web = ServiceView { running: (1, 2), ..ServiceView::default() };
        web.routes.insert(8080, vec![41000]);
        v.services.insert("hello_web".into(), web);
        assert_eq!(
            View::default().changes(&v),
            [
                "source: commit 0123456789ab",
                "skipped stack shop: no command",
                "stack hello: deploying 0123456789ab (1 to create)",
                "service hello_web: 1/2 tasks running",
                "service hello_web: http://127.0.0.1:8080/ answers (port 8080)",
            ]
        );
        assert!(v.changes(&v).is_empty());
        let mut done = v.clone();
        if let Some(d) = done.deployments.get_mut("hello") {
            d.3 = Outcome::Succeeded;
        }
        assert_eq!(v.changes(&done), ["stack hello: 0123456789ab succeeded"]);
        // Found done at the first look: a resumed cluster's past shows only its end, a new
        // cluster's deployment (done within one tick) shows whole.
        done.services.clear();
        done.commit = None;
        done.skipped.clear();
        assert_eq!(View::default().changes(&done), ["stack hello: 0123456789ab succeeded"]);
        let empty = View { empty_cluster: true, ..View::default() };
        assert_eq!(
            empty.changes(&done),
            [
                "stack hello: deploying 0123456789ab (1 to create)",
                "stack hello: 0123456789ab succeeded"
            ]
        );
    }

    #[test]
    fn a_rollout_prints_its_progress_each_time_a_task_is_updated() {
        let web = |update: Option<UpdateState>, updated: usize| {
            let mut v = View::default();
            let s = ServiceView {
                update: update.map(|u| (u, String::new())),
                running: (2, 2),
                updated: (updated, 2),
                ..ServiceView::default()
            };
            v.services.insert("web".into(), s);
            v
        };
        let steady = web(None, 2);
        let started = web(Some(UpdateState::Updating), 0);
        assert_eq!(
            steady.changes(&started),
            ["service web: updating", "service web: 0/2 tasks updated"]
        );
        assert!(started.changes(&started).is_empty());
        let one = web(Some(UpdateState::Updating), 1);
        assert_eq!(started.changes(&one), ["service web: 1/2 tasks updated"]);
        let done = web(Some(UpdateState::Completed), 2);
        assert_eq!(one.changes(&done), ["service web: completed"]);
        let back = web(Some(UpdateState::RollbackStarted), 1);
        assert_eq!(
            one.changes(&back),
            ["service web: rollback_started", "service web: 1/2 tasks rolled back"]
        );
    }
}
