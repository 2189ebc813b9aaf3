//! Waiting for a service to converge (`--detach=false`, the default): polls the managers every
//! 200 ms, feeds [`super::progress`] and draws what it returns, on a terminal as lines redrawn
//! in place ([`crate::cmd::bars`]), otherwise as plain lines, each written when its text
//! changes (Docker repeats an unchanged line on every poll; flotilla writes it once). Ctrl-C leaves the rollout
//! running: `Operation continuing in background.`

use super::progress::{Line, Outcome, POLL_INTERVAL, Poll, Progress};
use crate::cmd::bars::Bars;
use reconciler_api::ApiClient;
use reconciler_types::{MonoTime, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use tokio::time::Instant;

/// Where progress goes.
enum Printer {
    /// Nothing (`--quiet`).
    Quiet,
    /// Plain lines on stdout, or on stderr when stdout carries JSON.
    Plain { last: BTreeMap<String, String>, to_stderr: bool },
    /// Lines redrawn in place on a terminal.
    Terminal(Bars),
}

impl Printer {
    fn new(quiet: bool, json: bool) -> Printer {
        if quiet {
            Printer::Quiet
        } else if !json && std::io::stdout().is_terminal() {
            Printer::Terminal(Bars::stdout())
        } else {
            Printer::Plain { last: BTreeMap::new(), to_stderr: json }
        }
    }

    fn show(&mut self, lines: &[Line]) {
        match self {
            Printer::Quiet => {}
            Printer::Plain { last, to_stderr } => {
                for l in lines.iter().filter(|l| l.bar.is_none()) {
                    if last.get(&l.id) != Some(&l.action) {
                        last.insert(l.id.clone(), l.action.clone());
                        let text = format!("{}: {}", l.id, l.action);
                        if *to_stderr {
                            eprintln!("{text}");
                        } else {
                            println!("{text}");
                        }
                    }
                }
                let _ = std::io::stdout().flush();
            }
            Printer::Terminal(bars) => bars.show(lines),
        }
    }

    fn finish(&mut self) {
        if let Printer::Terminal(bars) = self {
            bars.abandon();
        }
    }
}

/// Waits until the service `key` converges, printing progress for the service the operator
/// called `label`.
///
/// # Errors
/// The update or rollback paused (Docker's message), or the managers cannot be reached.
pub async fn wait(
    client: &ApiClient,
    key: &str,
    label: &str,
    quiet: bool,
    json: bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut progress = Progress::new(label);
    let mut printer = Printer::new(quiet, json);
    let result = loop {
        let answer = client.service_tasks(key).await?;
        let active: BTreeSet<NodeId> = answer.active_nodes.iter().cloned().collect();
        let poll = Poll {
            at: MonoTime(start.elapsed()),
            service: &answer.service,
            tasks: &answer.tasks,
            active_nodes: &active,
        };
        let (lines, outcome) = progress.poll(poll);
        printer.show(&lines);
        match outcome {
            Outcome::Converged => break Ok(()),
            Outcome::Failed(message) => break Err(anyhow::anyhow!(message)),
            Outcome::Waiting => {}
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = tokio::signal::ctrl_c() => {
                printer.finish();
                if !progress.converged() {
                    println!("Operation continuing in background.");
                    println!("Use `flotilla service ps {label}` to check progress.");
                }
                return Ok(());
            }
        }
    };
    printer.finish();
    result
}
