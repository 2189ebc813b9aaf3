//! `flotilla manager`: runs a manager until SIGINT/SIGTERM.
//!
//! `--init` starts a cluster; `--join ADDR --token T` joins one as a manager (T is the
//! manager join token, given with the global `--token`); with neither, the manager restarts
//! from its data folder.

use super::api::{GlobalArgs, block_on};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reconciler_api::source::SourceSet;
use reconciler_manager::dispatcher::DispatcherConfig;
use reconciler_manager::{ManagerOptions, StartMode, start_manager};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `flotilla manager`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ManagerArgs {
    #[command(subcommand)]
    command: Option<ManagerCommand>,
    /// The data folder (node identity and Raft database).
    #[arg(long, value_name = "DIR", required = true)]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2377")]
    listen: SocketAddr,
    /// Address other managers and clients use to reach this one (default: --listen).
    #[arg(long)]
    advertise: Option<String>,
    /// Start a new cluster.
    #[arg(long, conflicts_with = "join")]
    init: bool,
    /// Join the cluster of the manager at this address (with --token).
    #[arg(long, value_name = "ADDR")]
    join: Option<String>,
    /// Hostname to report (default: the machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// With --init: protect the cluster key with an unlock key that must be supplied
    /// (`flotilla manager unlock`) every time a manager restarts.
    #[arg(long, requires = "init")]
    autolock: bool,
    /// The unlock key of an autolocked cluster (to join it, or to restart unlocked).
    #[arg(long, env = "FLOTILLA_UNLOCK_KEY", hide_env_values = true)]
    unlock_key: Option<String>,
    /// Serve plain HTTP with token authentication only, without the cluster CA and mutual
    /// TLS (local tests only: join tokens, API tokens and secrets cross the network in clear).
    #[arg(long)]
    insecure_listen: bool,
    /// With --init: how long node certificates are valid (Swarm's default: 2160h; at least
    /// 10s). Nodes renew theirs between 50 % and 80 % of that.
    #[arg(long, value_name = "DURATION", default_value = "2160h", value_parser = humantime::parse_duration)]
    cert_expiry: std::time::Duration,
    /// Raft entries between snapshots.
    #[arg(long, default_value_t = 10_000, hide = true)]
    snapshot_every: u64,
    /// With --init: how often agents heartbeat (default 5s; a node is down after 3 missed
    /// periods).
    #[arg(long, value_name = "DURATION", requires = "init", value_parser = humantime::parse_duration)]
    dispatcher_heartbeat: Option<Duration>,
    #[command(flatten)]
    source: InitSource,
}

/// With `--init`: the Git source the new cluster deploys from (later: `flotilla source set`).
#[derive(Debug, Args)]
struct InitSource {
    /// With --init: deploy the stacks of this repository (a URL, a Git folder, or a plain
    /// folder whose files are deployed as they are).
    #[arg(long, value_name = "URL|DIR", requires = "init")]
    repo: Option<String>,
    /// The branch to deploy (default: main).
    #[arg(long, value_name = "BRANCH", requires = "repo")]
    branch: Option<String>,
    /// The repository's folder that holds the stacks (default: stacks).
    #[arg(long, value_name = "PATH", requires = "repo")]
    path: Option<String>,
    /// How often the leader fetches (default: 60s, with jitter).
    #[arg(long, value_name = "DURATION", requires = "repo", value_parser = humantime::parse_duration)]
    poll: Option<Duration>,
    /// A file holding the secret forges sign their push webhooks with.
    #[arg(long, value_name = "FILE", requires = "repo")]
    webhook_secret_file: Option<PathBuf>,
}

impl InitSource {
    fn to_set(&self) -> anyhow::Result<Option<SourceSet>> {
        let Some(repo) = &self.repo else { return Ok(None) };
        let webhook_secret =
            self.webhook_secret_file.as_deref().map(super::source::read_secret_file).transpose()?;
        Ok(Some(SourceSet {
            url: Some(super::source::repo_location(repo)?),
            branch: self.branch.clone(),
            path: self.path.clone(),
            poll: self.poll,
            webhook_secret,
            ..SourceSet::default()
        }))
    }
}

#[derive(Debug, Subcommand)]
enum ManagerCommand {
    /// Unlock a locked manager (autolock) at -H/--host.
    Unlock {
        /// The unlock key (read from stdin when not given).
        #[arg(long)]
        key: Option<String>,
    },
}

fn unlock(key: Option<String>, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let key = match key {
        Some(k) => k,
        None => {
            eprint!("Enter unlock key: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the unlock key")?;
            line.trim().to_owned()
        }
    };
    let client = global.client_with("")?;
    block_on(async { Ok(client.unlock(&key).await?) })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `flotilla manager ...`.
pub fn run(args: ManagerArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if let Some(ManagerCommand::Unlock { key }) = args.command {
        return unlock(key, global);
    }
    let Some(data_dir) = args.data_dir.clone() else {
        bail!("--data-dir is required");
    };
    let mode = match (args.init, &args.join) {
        (true, _) => StartMode::Init,
        (false, Some(addr)) => {
            let Some(token) = global.token.clone() else {
                bail!("--join needs the manager join token: --token T");
            };
            StartMode::Join { addr: addr.clone(), token }
        }
        (false, None) => StartMode::Restart,
    };
    let advertise = args.advertise.clone().unwrap_or_else(|| args.listen.to_string());
    let opts = ManagerOptions {
        data_dir: data_dir.clone(),
        listen: args.listen,
        advertise,
        mode,
        hostname: args.hostname.clone().unwrap_or_else(reconciler_manager::daemon::system_hostname),
        snapshot_every: args.snapshot_every,
        autolock: args.autolock,
        unlock_key: args.unlock_key.clone(),
        dispatcher: DispatcherConfig::default(),
        dispatcher_heartbeat: args.dispatcher_heartbeat,
        insecure: args.insecure_listen,
        cert_expiry: args.cert_expiry,
        source: args.source.to_set()?,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,openraft=error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let running = start_manager(opts).await.context("manager failed to start")?;
        let id = &running.manager.identity;
        eprintln!(
            "manager {} (raft id {}) of cluster {} listening on {}",
            id.node_id, id.raft_id, id.cluster_id, running.local_addr
        );
        eprintln!("API token: {}", data_dir.join("api-token").display());
        if running.manager.tls.is_some() {
            eprintln!("cluster CA: {} (pass it as --tlscacert)", data_dir.join("ca.pem").display());
        }
        if let Some(key) = &running.new_unlock_key {
            println!("Swarm-style autolock is on. To unlock a restarted manager, run");
            println!("`flotilla manager unlock` and give it this key:\n\n    {key}\n");
            println!("Keep it safe: it is shown only once and without it a restarted manager");
            println!("cannot start.");
        }
        wait_for_signal().await?;
        eprintln!("shutting down");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT"),
        _ = term.recv() => Ok(()),
    }
}
