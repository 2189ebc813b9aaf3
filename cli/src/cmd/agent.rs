//! `flotilla agent`: runs this machine's tasks for the cluster until SIGINT/SIGTERM. The
//! first start joins with `--join ADDR --token T` (the worker join token, the global
//! `--token`); later starts find the identity in the data folder. Stopping leaves the tasks
//! running for the next start to adopt.

use super::api::GlobalArgs;
use agent::agent::{AgentOptions, RuntimeKind, run};
use agent::mesh::MeshPath;
use agent_core::logs::{LogLimits, parse_size};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// `flotilla agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A manager to join through (first start) or to reach first.
    #[arg(long, value_name = "ADDR")]
    join: Option<String>,
    /// The data folder (node identity, task records, task folders and logs).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// What runs the tasks.
    #[arg(long, value_enum, default_value_t = RuntimeArg::Process)]
    runtime: RuntimeArg,
    /// An engine label (`engine.labels.KEY` in constraints); repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// The address other nodes reach this one at (default: the local address towards the
    /// manager).
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
    /// The hostname to report (default: the machine's).
    #[arg(long)]
    hostname: Option<String>,
    /// A task's log file rotates at this size (10m; k, m, g).
    #[arg(long, default_value = "10m")]
    log_max_size: String,
    /// Log files kept per task, the current one included.
    #[arg(long, default_value_t = 3)]
    log_max_file: u32,
    /// Talk plain HTTP to managers started with --insecure-listen.
    #[arg(long)]
    insecure: bool,
    /// Where the routing mesh listens on every published ingress port (one address per
    /// agent when several run on one machine, e.g. 127.0.0.2 and 127.0.0.3).
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    mesh_addr: std::net::IpAddr,
    /// Run no routing mesh on this node (published ports answer only on the other nodes).
    #[arg(long)]
    no_mesh: bool,
    /// How the routing mesh forwards TCP: in the kernel (nftables destination NAT; root and
    /// the `nft` tool, for connections made on this machine to tasks on loopback), in user
    /// space, or the kernel when it can (auto).
    #[arg(long, value_enum, default_value = "auto")]
    mesh_path: MeshPathArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MeshPathArg {
    /// The kernel when it can be used, else user space.
    Auto,
    /// The kernel, or the agent does not start.
    Kernel,
    /// User space only.
    Userspace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeArg {
    /// Host processes, each in its own folder and process group.
    Process,
    /// Docker containers (the local engine, or DOCKER_HOST).
    Docker,
}

fn labels(given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    given
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("--label {l:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Runs `flotilla agent`.
pub fn run_agent(args: AgentArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let max_size = parse_size(&args.log_max_size)
        .map_err(|why| anyhow::anyhow!("--log-max-size {:?}: {why}", args.log_max_size))?;
    if args.log_max_file == 0 {
        bail!("--log-max-file must be at least 1");
    }
    let opts = AgentOptions {
        data_dir: args.data_dir,
        join: args.join,
        token: global.token.clone(),
        runtime: match args.runtime {
            RuntimeArg::Process => RuntimeKind::Process,
            RuntimeArg::Docker => RuntimeKind::Docker,
        },
        labels: labels(&args.labels)?,
        advertise: args.advertise,
        hostname: args.hostname,
        log_limits: LogLimits { max_size, max_files: args.log_max_file },
        insecure: args.insecure,
        flotilla_exe: std::env::current_exe().context("cannot find this program's path")?,
        mesh_addr: (!args.no_mesh).then_some(args.mesh_addr),
        mesh_path: match args.mesh_path {
            MeshPathArg::Auto => MeshPath::Auto,
            MeshPathArg::Kernel => MeshPath::Kernel,
            MeshPathArg::Userspace => MeshPath::Userspace,
        },
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        run(opts, stop_signal()).await.context("agent")?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_as_key_value() {
        let l = labels(&["zone=a".into(), "empty=".into()]).unwrap();
        assert_eq!(l["zone"], "a");
        assert_eq!(l["empty"], "");
        assert!(labels(&["novalue".into()]).is_err());
        assert!(labels(&["=x".into()]).is_err());
    }
}
