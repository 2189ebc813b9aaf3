//! The `flotilla` binary: every command of flotilla in one program.
//!
//! `main` only parses the command line and hands each subcommand to its module under
//! `cmd/`; errors are printed on stderr and turn into exit code 1.

mod cmd;

// Loading a large stack is allocation-bound: mimalloc makes `stack config` on 5,000
// services about a third faster than the system allocator (bench/stack-config/run).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// flotilla: Docker Swarm's model, driven from Git, in one binary.
#[derive(Debug, Parser)]
#[command(name = "flotilla", version, about)]
struct Cli {
    #[command(flatten)]
    global: cmd::api::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a one-node cluster on this machine (a manager and an agent) that deploys a Git
    /// repository, by default this checkout's examples/stacks.
    Up(cmd::up::UpArgs),
    /// Manage stacks.
    Stack(cmd::stack::StackArgs),
    /// Show (with --dry-run) what Git would change in the cluster.
    Reconcile(cmd::reconcile::ReconcileArgs),
    /// Run a manager (start a cluster, join one, or restart from a data folder).
    Manager(cmd::manager::ManagerArgs),
    /// Manage nodes.
    Node(cmd::node::NodeArgs),
    /// Manage services.
    Service(cmd::service::ServiceArgs),
    /// Manage join tokens.
    #[command(name = "join-token")]
    JoinToken(cmd::join_token::JoinTokenArgs),
    /// Set, show or remove the Git repository the cluster deploys from.
    Source(cmd::source::SourceArgs),
    /// Export the cluster state.
    State(cmd::state::StateArgs),
    /// Run this machine's tasks for the cluster (join it the first time).
    Agent(cmd::agent::AgentArgs),
    /// A built-in HTTP workload for demos and tests (and its health-check command).
    Probe(cmd::probe::ProbeArgs),
    /// The supervisor of one process task (started by the agent).
    #[command(name = "agent-shim", hide = true)]
    AgentShim(cmd::agent_shim::ShimArgs),
    /// Show or rotate the cluster's root CA.
    Ca(cmd::ca::CaArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(args),
        Command::Stack(args) => cmd::stack::run(args, &cli.global),
        Command::Reconcile(args) => cmd::reconcile::run(args, &cli.global),
        Command::Manager(args) => cmd::manager::run(args, &cli.global),
        Command::Node(args) => cmd::node::run(args, &cli.global),
        Command::Service(args) => cmd::service::run(args, &cli.global),
        Command::JoinToken(args) => cmd::join_token::run(args, &cli.global),
        Command::Source(args) => cmd::source::run(args, &cli.global),
        Command::State(args) => cmd::state::run(args, &cli.global),
        Command::Probe(args) => cmd::probe::run(args),
        Command::Agent(args) => cmd::agent::run_agent(args, &cli.global),
        Command::AgentShim(args) => return cmd::agent_shim::run(args),
        Command::Ca(args) => cmd::ca::run(args, &cli.global),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}
