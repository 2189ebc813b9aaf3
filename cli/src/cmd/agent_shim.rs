//! `flotilla agent-shim DIR` (hidden): the supervisor of one process task, started by the
//! agent's process runtime; see `agent::runtime::process::shim`.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `flotilla agent-shim`.
#[derive(Debug, Args)]
pub struct ShimArgs {
    /// The task's folder.
    dir: PathBuf,
}

/// Runs the supervisor until the task exits.
pub fn run(args: ShimArgs) -> ExitCode {
    agent::runtime::process::shim::main(&args.dir)
}
