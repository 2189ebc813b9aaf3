//! `flotilla reconcile --dry-run`: what a merge (or a sync) would change, field by field.
//!
//! ```text
//!  --repo/--ref ─► reconciler-source (Git tree) ─► convert ─► desired ─┐
//!  --base REV ─────► same repo, other commit ───► convert ─► actual ──┤
//!  --state FILE ───► snapshot JSON ─────────────────────────► actual ──┼─► diff ─► render
//!  -H URL (default) ► the manager's /v1/state ──────────────► actual ──┘
//! ```
//!
//! The assembly (read, convert, diff) is `reconciler-gitops`, the library the leader's loop
//! plans with too.
//!
//! Exit status: 0 nothing would change, 2 something would, 1 error (every broken stack is
//! reported with file, field and reason).

use super::api::{GlobalArgs, OutputFormat, block_on};
use anyhow::{Context, Result, bail};
use clap::Args;
use reconciler_gitops::desired::only;
use reconciler_gitops::{short, show_problem};
use reconciler_planner::Plan;
use reconciler_planner::render::{Format, render};
use reconciler_planner::snapshot::stacks_from_snapshot;
use reconciler_source::{Repo, StackProblem};
use reconciler_types::StackSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// `flotilla reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Only show what would change; apply nothing.
    #[arg(long)]
    dry_run: bool,
    /// The repository: a folder (work tree or bare) or a URL (https, ssh, file).
    #[arg(long, default_value = ".")]
    repo: String,
    /// The revision that holds the desired state.
    #[arg(long = "ref", default_value = "HEAD", value_name = "REV")]
    rev: String,
    /// The folder of the repository that holds the stacks.
    #[arg(long, default_value = "stacks")]
    path: String,
    /// Compare with this revision of the same repository (no cluster needed).
    #[arg(long, value_name = "REV", conflicts_with = "state")]
    base: Option<String>,
    /// Compare with a state snapshot (`flotilla state export`).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Only this stack.
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// Where remote repositories are cached (default: $FLOTILLA_CACHE_DIR, else
    /// $XDG_CACHE_HOME/flotilla/repos, else ~/.cache/flotilla/repos).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

fn cache_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(d) = given {
        return d;
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("FLOTILLA_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("flotilla/repos")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/flotilla/repos")))
        .unwrap_or_else(|| std::env::temp_dir().join("flotilla-repos"))
}

/// What runs: a state snapshot, or the live cluster.
fn actual(args: &ReconcileArgs, global: &GlobalArgs) -> Result<StackSet> {
    if let Some(file) = &args.state {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the state snapshot {}", file.display()))?;
        let name = file
            .file_name()
            .map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        let set = stacks_from_snapshot(&text, &format!("state {name}"))?;
        return Ok(only(set, args.stack.as_deref()));
    }
    let client = global
        .client()
        .context("reading the live cluster state (or pass --base REV or --state FILE)")?;
    let state = block_on(async { Ok(client.state::<serde_json::Value>().await?) })
        .with_context(|| format!("cannot read the cluster state from {}", global.host()))?;
    let text = serde_json::to_string(&state)?;
    let set = stacks_from_snapshot(&text, &format!("manager {}", global.host()))?;
    Ok(only(set, args.stack.as_deref()))
}

fn format_of(global: &GlobalArgs) -> Format {
    match global.output {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
        OutputFormat::Markdown => Format::Markdown,
    }
}

fn use_color() -> bool {
    color_wanted(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

/// Color only on a terminal, and never when `NO_COLOR` is set to anything but empty
/// (no-color.org).
fn color_wanted(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Runs `flotilla reconcile`.
pub fn run(args: ReconcileArgs, global: &GlobalArgs) -> Result<ExitCode> {
    if !args.dry_run {
        bail!("applying from the command line is not available yet; use --dry-run to see the plan");
    }
    reconciler_source::skip_object_hash_checks();
    let repo = Repo::open(&args.repo, &cache_dir(args.cache_dir.clone()))?;
    let plan = match &args.base {
        Some(base) => plan_against_base(&args, &repo, base)?,
        None => plan_against_cluster(&args, &repo, global)?,
    };
    print!("{}", render(&plan, format_of(global), use_color()));
    let code = if plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    // The process ends here: freeing the plan one allocation at a time would take longer
    // than the exit that returns its pages.
    std::mem::forget(plan);
    Ok(code)
}

/// Fails with every problem of the head revision, when it has any.
fn refuse_problems(problems: &[StackProblem], commit: &str) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    for p in problems {
        eprintln!("error: {}", show_problem(p));
    }
    let stacks: std::collections::BTreeSet<&str> =
        problems.iter().map(|p| p.stack.as_str()).collect();
    bail!(
        "{} invalid stack{} at {}",
        stacks.len(),
        if stacks.len() == 1 { "" } else { "s" },
        short(commit)
    );
}

/// Git's stacks against the cluster (`--state FILE` or `-H URL`).
fn plan_against_cluster(args: &ReconcileArgs, repo: &Repo, global: &GlobalArgs) -> Result<Plan> {
    let only = args.stack.as_deref();
    let head = reconciler_gitops::desired(repo, &args.rev, &args.path, only, false)?;
    if !head.path_found {
        bail!("{} has no folder {:?} at {}", repo.display, args.path, args.rev);
    }
    if let Some(only) = only
        && head.set.stacks.is_empty()
        && head.problems.is_empty()
        && args.state.is_none()
    {
        eprintln!("warning: stack {only} is not in {} at {}", repo.display, args.rev);
    }
    refuse_problems(&head.problems, &head.commit)?;
    let actual = actual(args, global)?;
    Ok(reconciler_gitops::plan(&head, &actual))
}

/// The head against `--base REV` (see `reconciler_gitops::base`).
fn plan_against_base(args: &ReconcileArgs, repo: &Repo, base: &str) -> Result<Plan> {
    let only = args.stack.as_deref();
    let compared = reconciler_gitops::base::against_base(repo, &args.rev, base, &args.path, only)?;
    if !compared.head_path_found {
        bail!("{} has no folder {:?} at {}", repo.display, args.path, args.rev);
    }
    refuse_problems(&compared.head_problems, &compared.head_commit)?;
    let base = compared.base?;
    for p in &base.problems {
        eprintln!(
            "warning: base {}: {} (the stack is left out of the base)",
            short(&base.commit),
            show_problem(p)
        );
    }
    Ok(base.plan)
}

#[cfg(test)]
mod tests {
    use super::color_wanted;
    use std::ffi::OsStr;

    #[test]
    fn color_only_on_a_terminal_without_no_color() {
        assert!(color_wanted(true, None));
        assert!(color_wanted(true, Some(OsStr::new(""))));
        assert!(!color_wanted(true, Some(OsStr::new("1"))));
        assert!(!color_wanted(false, None));
    }
}
