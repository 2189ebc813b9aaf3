//! `flotilla state export [-o FILE]`: the cluster state as JSON (credentials and secret
//! values removed), the file `reconcile --dry-run --state FILE` reads.

use super::api::{GlobalArgs, block_on};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// `flotilla state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Write the cluster state as JSON.
    Export {
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// Runs `flotilla state ...`.
pub fn run(args: StateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let StateCommand::Export { file } = args.command;
    let state = block_on(async { Ok(client.state::<serde_json::Value>().await?) })?;
    let text = serde_json::to_string_pretty(&state)? + "\n";
    match file {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
