//! `flotilla node ls | inspect | update | promote | demote | rm`, with Docker's columns and
//! messages.

use super::api::{GlobalArgs, OutputFormat, block_on, print_json, table};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use reconciler_api::operator::{NodeUpdate, NodeView};
use reconciler_types::{Availability, NodeState};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// `flotilla node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// List nodes.
    Ls {
        /// Only display IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more nodes.
    Inspect {
        /// Node ids, id prefixes or hostnames.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Update a node.
    Update {
        /// Availability of the node.
        #[arg(long, value_enum)]
        availability: Option<AvailabilityArg>,
        /// Add or update a node label (key=value).
        #[arg(long = "label-add", value_name = "KEY=VALUE")]
        label_add: Vec<String>,
        /// Remove a node label if exists.
        #[arg(long = "label-rm", value_name = "KEY")]
        label_rm: Vec<String>,
        /// The node.
        node: String,
    },
    /// Promote one or more nodes to manager in the swarm.
    Promote {
        /// The nodes.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Demote one or more nodes from manager in the swarm.
    Demote {
        /// The nodes.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
    /// Remove one or more nodes from the swarm.
    Rm {
        /// Force remove a node from the swarm.
        #[arg(short, long)]
        force: bool,
        /// The nodes.
        #[arg(required = true)]
        nodes: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AvailabilityArg {
    Active,
    Pause,
    Drain,
}

impl From<AvailabilityArg> for Availability {
    fn from(a: AvailabilityArg) -> Self {
        match a {
            AvailabilityArg::Active => Availability::Active,
            AvailabilityArg::Pause => Availability::Pause,
            AvailabilityArg::Drain => Availability::Drain,
        }
    }
}

fn state_label(s: NodeState) -> &'static str {
    match s {
        NodeState::Unknown => "Unknown",
        NodeState::Down => "Down",
        NodeState::Ready => "Ready",
        NodeState::Disconnected => "Disconnected",
    }
}

fn availability_label(a: Availability) -> &'static str {
    match a {
        Availability::Active => "Active",
        Availability::Pause => "Pause",
        Availability::Drain => "Drain",
    }
}

/// The `node ls` table.
pub fn render_nodes(rows: &[NodeView]) -> String {
    let header = ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let id = if r.is_self { format!("{} *", r.id) } else { r.id.to_string() };
            vec![
                id,
                r.hostname.clone(),
                state_label(r.status).to_owned(),
                availability_label(r.availability).to_owned(),
                r.manager_status.clone(),
                r.engine_version.clone(),
            ]
        })
        .collect();
    table(&header, &cells)
}

fn parse_labels(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            None if !p.is_empty() => Ok((p.clone(), String::new())),
            _ => bail!("invalid label {p:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Runs `flotilla node ...`.
pub fn run(args: NodeArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    block_on(async move {
        match args.command {
            NodeCommand::Ls { quiet } => {
                let rows = client.nodes().await?;
                if quiet {
                    rows.iter().for_each(|r| println!("{}", r.id));
                } else if global.output == OutputFormat::Json {
                    print_json(&rows)?;
                } else {
                    println!("{}", render_nodes(&rows));
                }
            }
            NodeCommand::Inspect { nodes } => {
                let mut found = Vec::new();
                for n in &nodes {
                    found.push(client.inspect_node(n).await?);
                }
                print_json(&found)?;
            }
            NodeCommand::Update { availability, label_add, label_rm, node } => {
                let update = NodeUpdate {
                    availability: availability.map(Availability::from),
                    label_add: parse_labels(&label_add)?,
                    label_rm,
                };
                let updated = client.update_node(&node, &update).await?;
                println!("{}", updated.node.id);
            }
            NodeCommand::Promote { nodes } => {
                for n in &nodes {
                    let r = client
                        .change_role(n, "promote")
                        .await
                        .with_context(|| format!("promote {n}"))?;
                    println!("Node {} promoted to a manager in the swarm.", r.node.id);
                }
            }
            NodeCommand::Demote { nodes } => {
                for n in &nodes {
                    let r = client
                        .change_role(n, "demote")
                        .await
                        .with_context(|| format!("demote {n}"))?;
                    println!("Manager {} demoted in the swarm.", r.node.id);
                }
            }
            NodeCommand::Rm { force, nodes } => {
                for n in &nodes {
                    client.remove_node(n, force).await.with_context(|| format!("rm {n}"))?;
                    println!("{n}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::render_nodes;

    #[test]
    fn node_ls_has_dockers_columns() {
        let header = render_nodes(&[]);
        let columns: Vec<&str> =
            header.split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
        // `docker node ls` (docker CLI 28.2.2).
        let docker =
            ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"];
        assert_eq!(columns, docker);
    }
}
