//! `flotilla join-token worker|manager [--rotate] [-q]`, printed the way Docker prints it.

use super::api::{GlobalArgs, OutputFormat, block_on, print_json};
use clap::{Args, ValueEnum};
use std::process::ExitCode;

/// `flotilla join-token`.
#[derive(Debug, Args)]
pub struct JoinTokenArgs {
    /// Which token.
    #[arg(value_enum)]
    role: RoleArg,
    /// Rotate join token.
    #[arg(long)]
    rotate: bool,
    /// Only display token.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Worker,
    Manager,
}

/// Runs `flotilla join-token ...`.
pub fn run(args: JoinTokenArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let role = match args.role {
        RoleArg::Worker => "worker",
        RoleArg::Manager => "manager",
    };
    let view = block_on(async { Ok(client.join_token(role, args.rotate).await?) })?;
    if args.quiet {
        println!("{}", view.token);
        return Ok(ExitCode::SUCCESS);
    }
    if global.output == OutputFormat::Json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.rotate {
        println!("Successfully rotated {role} join token.\n");
    }
    let host = &global.host();
    println!("To add a {role} to this swarm, run the following command:\n");
    match args.role {
        RoleArg::Worker => {
            println!("    flotilla agent --join {host} --token {} --data-dir DIR\n", view.token)
        }
        RoleArg::Manager => println!(
            "    flotilla manager --join {host} --token {} --data-dir DIR --listen ADDR --advertise ADDR\n",
            view.token
        ),
    }
    Ok(ExitCode::SUCCESS)
}
