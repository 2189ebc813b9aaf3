//! `flotilla stack ls | services | ps | history | rollback | rm`: Docker's commands, flags
//! and messages (`Nothing found in stack: NAME`, `Removing service NAME`), with what
//! flotilla's GitOps records add; `--output json` prints the manager's answer.

use super::render;
use crate::cmd::api::{GlobalArgs, OutputFormat, block_on, print_json};
use crate::cmd::service::render::{PsOptions, service_table, task_table};
use crate::cmd::service::{filter_services, filter_tasks, watch};
use anyhow::bail;
use clap::Args;
use reconciler_api::stacks::StackRollback;
use reconciler_api::{ApiClient, ApiError, ClientError};
use reconciler_types::TaskState;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `stack services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Only display IDs
    #[arg(short, long)]
    quiet: bool,
    /// Filter output based on conditions provided (id=<prefix>, name=<prefix>,
    /// label=<key> or label=<key>=<value>, mode=replicated|global)
    #[arg(short, long = "filter", value_name = "filter")]
    filters: Vec<String>,
    /// The stack
    stack: String,
}

/// `stack ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    no_resolve: bool,
    /// Filter output based on conditions provided (desired-state=running|shutdown|accepted,
    /// node=<name or id>, id=<prefix>, name=<task name>)
    #[arg(short, long = "filter", value_name = "filter")]
    filters: Vec<String>,
    /// Only display task IDs
    #[arg(short, long)]
    quiet: bool,
    /// The stack
    stack: String,
}

/// `stack rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The commit to return to (a full id or a prefix; default: the deployment before the
    /// current one)
    #[arg(long, value_name = "REV")]
    to: Option<String>,
    /// Do not wait for the stack's services to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    quiet: bool,
    /// The stack
    stack: String,
}

/// `stack rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not wait for stack removal
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    detach: bool,
    /// The stacks
    #[arg(required = true, value_name = "STACK")]
    stacks: Vec<String>,
}

fn json(global: &GlobalArgs) -> bool {
    global.output == OutputFormat::Json
}

/// Runs one call against the manager named by the global flags.
fn with_client<F, Fut>(global: &GlobalArgs, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(ApiClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let client = global.client()?;
    block_on(f(client))
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Api(ApiError::NotFound(_)))
}

/// `stack ls`.
pub fn ls(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = json(global);
    with_client(global, |client| async move {
        let list = client.stacks().await?;
        if json {
            print_json(&list)?;
        } else {
            println!("{}", render::stack_table(&list));
            render::stack_notes(&list).iter().for_each(|n| eprintln!("{n}"));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `stack services`: Docker prints `Nothing found in stack: NAME` on stderr and succeeds.
pub fn services(a: &ServicesArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = json(global);
    with_client(global, |client| async move {
        let mut answer = match client.stack_services(&a.stack).await {
            Ok(answer) => answer,
            Err(e) if is_not_found(&e) => {
                eprintln!("Nothing found in stack: {}", a.stack);
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e.into()),
        };
        filter_services(&mut answer.services, &a.filters)?;
        if json {
            print_json(&answer)?;
        } else if a.quiet {
            answer.services.iter().for_each(|s| println!("{}", s.id));
        } else {
            println!("{}", service_table(&answer.services));
            render::drift_notes(&answer.drifted).iter().for_each(|n| eprintln!("{n}"));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `stack ps`: Docker fails with `nothing found in stack: NAME` when there is no task.
pub fn ps(a: &PsArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = json(global);
    with_client(global, |client| async move {
        let mut answer = match client.stack_tasks(&a.stack).await {
            Ok(answer) => answer,
            Err(e) if is_not_found(&e) => bail!("nothing found in stack: {}", a.stack),
            Err(e) => return Err(e.into()),
        };
        for s in &mut answer.services {
            filter_tasks(s, &a.filters)?;
        }
        if json {
            print_json(&answer)?;
        } else if a.quiet {
            answer.services.iter().flat_map(|s| &s.tasks).for_each(|t| println!("{}", t.task.id));
        } else {
            let groups: Vec<_> =
                answer.services.iter().map(|s| (&s.service, s.tasks.as_slice())).collect();
            let o = PsOptions { no_trunc: a.no_trunc, no_resolve: a.no_resolve };
            println!("{}", task_table(&groups, answer.now, o));
            render::drift_notes(&answer.drifted).iter().for_each(|n| eprintln!("{n}"));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `stack history`.
pub fn history(stack: &str, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = json(global);
    with_client(global, |client| async move {
        let h = client.stack_history(stack).await?;
        if json {
            print_json(&h)?;
        } else {
            println!("{}", render::history_table(&h));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Who asks, as the deployment records it: `user@host`.
fn who_asks() -> String {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    match nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()) {
        Some(host) if !host.is_empty() => format!("{user}@{host}"),
        _ => user,
    }
}

/// `stack rollback`.
pub fn rollback(a: &RollbackArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = json(global);
    with_client(global, |client| async move {
        let req = StackRollback { to: a.to.clone(), by: who_asks() };
        let done = client.rollback_stack(&a.stack, &req).await?;
        if json {
            print_json(&done)?;
        } else {
            println!(
                "Rolled back stack {} to {} ({})",
                a.stack,
                render::short_commit(&done.commit),
                done.summary
            );
            println!(
                "Auto sync will not apply {} again; it applies the next commit Git offers",
                render::short_commit(&done.from)
            );
        }
        if !a.detach {
            // Docker's progress, service after service, for what the stack runs now.
            let services = match client.stack_services(&a.stack).await {
                Ok(s) => s.services,
                Err(e) if is_not_found(&e) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            for s in &services {
                watch::wait(&client, s.id.as_str(), &s.spec.name, a.quiet, json).await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// How long `stack rm --detach=false` waits for the stack's tasks to stop.
const RM_WAIT: Duration = Duration::from_secs(120);

/// Waits until every task of `stack` has stopped or is gone, those of its removed services
/// included (Docker's `waitOnTasks`).
async fn wait_on_tasks(client: &ApiClient, stack: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + RM_WAIT;
    loop {
        let running = match client.stack_tasks(stack).await {
            Ok(t) => t
                .services
                .iter()
                .flat_map(|s| &s.tasks)
                .chain(&t.removed)
                .any(|t| !past_running(t.task.status.state)),
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(e.into()),
        };
        if !running {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("failed to wait on tasks of stack: {stack}: still running after {RM_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Docker's `terminalState`: past RUNNING.
fn past_running(state: TaskState) -> bool {
    state > TaskState::Running
}

/// `stack rm`: one batch per stack; Docker's lines, `Nothing found in stack: NAME` on
/// stderr for a stack with nothing in it.
pub fn rm(a: &RmArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = json(global);
    with_client(global, |client| async move {
        let mut errors = Vec::new();
        let mut answers = Vec::new();
        for stack in &a.stacks {
            match client.remove_stack(stack).await {
                Ok(done) => {
                    if !json {
                        for r in &done.removed {
                            println!("Removing {} {}", r.kind, r.name);
                        }
                    }
                    if done.from_git {
                        eprintln!(
                            "stack {stack} is deployed from Git: remove it from Git too, or the GitOps loop may deploy it again"
                        );
                    }
                    if !a.detach
                        && let Err(e) = wait_on_tasks(&client, stack).await
                    {
                        errors.push(format!("{e:#}"));
                    }
                    answers.push(done);
                }
                Err(e) if is_not_found(&e) => eprintln!("Nothing found in stack: {stack}"),
                Err(e) => errors.push(format!("failed to remove stack {stack}: {e}")),
            }
        }
        if json {
            print_json(&answers)?;
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("\n"));
        }
        Ok(ExitCode::SUCCESS)
    })
}
