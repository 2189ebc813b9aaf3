//! `flotilla ca [--rotate] [-q]`: Swarm's `docker swarm ca`. Prints the cluster's root CA
//! certificate; `--rotate` makes a new root, cross-signed by the current one, onto which
//! every node moves by renewing its certificate, after which the old root is dropped.

use super::api::{GlobalArgs, OutputFormat, block_on, print_json};
use clap::Args;
use reconciler_api::client::Method;
use reconciler_api::pki::CaView;
use std::process::ExitCode;

/// `flotilla ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// Rotate the swarm CA: a new root certificate and key, and new certificates for
    /// every node.
    #[arg(long)]
    rotate: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `flotilla ca ...`.
pub fn run(args: CaArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let view: CaView = block_on(async {
        Ok(if args.rotate {
            client.call(Method::POST, "/v1/ca/rotate", None::<&()>).await?
        } else {
            client.call(Method::GET, "/v1/ca", None::<&()>).await?
        })
    })?;
    if global.output == OutputFormat::Json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.rotate && !args.quiet {
        eprintln!("Root rotation started: every node renews its certificate onto the new root;");
        eprintln!("the old root is dropped once all have (`flotilla ca` shows one root again).");
    }
    print!("{}", view.bundle);
    Ok(ExitCode::SUCCESS)
}
