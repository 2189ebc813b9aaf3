//! `flotilla reconcile --dry-run`: what a merge (or a sync) would change, field by field.
//!
//! ```text
//!  --repo/--ref ─► reconciler-source (Git tree) ─► convert ─► desired ─┐
//!  --base REV ─────► same repo, other commit ───► convert ─► actual ──┤
//!  --state FILE ───► snapshot JSON ─────────────────────────► actual ──┼─► diff ─► render
//!  -H URL (default) ► the manager's /v1/state ──────────────► actual ──┘
//! ```
//!
//! Exit status: 0 nothing would change, 2 something would, 1 error (every broken stack is
//! reported with file, field and reason).

use super::api::{GlobalArgs, OutputFormat, block_on};
use anyhow::{Context, Result, bail};
use clap::Args;
use reconciler_planner::plan::StackPlan;
use reconciler_planner::render::{Format, render};
use reconciler_planner::snapshot::stacks_from_snapshot;
use reconciler_planner::{Plan, StackInput, assemble, convert_stack, diff, diff_one};
use reconciler_source::{Repo, Revision, StackProblem, StackSource};
use reconciler_types::{StackName, StackSet, StackSpec};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn show_problem(p: &StackProblem) -> String {
    let mut at = p.file.clone();
    if let Some(l) = p.line {
        at.push_str(&format!(":{l}"));
    }
    match &p.path {
        Some(path) if !p.message.starts_with(path.as_str()) => {
            format!("stack {}: {at}: {path}: {}", p.stack, p.message)
        }
        _ => format!("stack {}: {at}: {}", p.stack, p.message),
    }
}

/// A stack's specs, or why it could not be converted.
type Converted = Result<StackSpec, Vec<StackProblem>>;

/// [`Converted`], shared by both revisions when a stack is loaded once for both.
type Shared = Arc<Converted>;

/// Converts one loaded stack (on the thread that loaded it, so that its loaded form is freed
/// at once); conversion problems name the stack's first file.
fn convert_source(s: &StackSource) -> Converted {
    let input = StackInput { name: &s.name, config: &s.config, files: &s.files, policy: s.policy };
    convert_stack(&input).map_err(|errors| {
        let file = format!("{}/{}", s.dir, s.config.filename.rsplit('/').next().unwrap_or(""));
        errors
            .into_iter()
            .map(|e| StackProblem {
                stack: s.name.to_string(),
                file: file.clone(),
                path: Some(e.path),
                line: None,
                message: e.message,
            })
            .collect()
    })
}

/// The specs of a revision's stacks; conversion problems follow the load problems.
fn stack_set(rev: Revision<Converted>) -> (StackSet, Vec<StackProblem>) {
    let mut problems = rev.problems;
    let mut set = StackSet { source: short(&rev.commit).to_owned(), stacks: Default::default() };
    for (name, converted) in rev.stacks {
        match converted {
            Ok(spec) => {
                set.stacks.insert(name, spec);
            }
            Err(errors) => problems.extend(errors),
        }
    }
    (set, problems)
}

fn filter(mut set: StackSet, only: Option<&str>) -> StackSet {
    if let Some(only) = only {
        set.stacks.retain(|k: &StackName, _| k.as_str() == only);
    }
    set
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
        return Ok(filter(set, args.stack.as_deref()));
    }
    let client = global
        .client()
        .context("reading the live cluster state (or pass --base REV or --state FILE)")?;
    let state = block_on(async { Ok(client.state::<serde_json::Value>().await?) })
        .with_context(|| format!("cannot read the cluster state from {}", global.host))?;
    let text = serde_json::to_string(&state)?;
    let set = stacks_from_snapshot(&text, &format!("manager {}", global.host))?;
    Ok(filter(set, args.stack.as_deref()))
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
    let head = repo.read_with(&args.rev, &args.path, only, convert_source)?;
    if !head.path_found {
        bail!("{} has no folder {:?} at {}", repo.display, args.path, args.rev);
    }
    if let Some(only) = only
        && head.stacks.is_empty()
        && head.problems.is_empty()
        && args.state.is_none()
    {
        eprintln!("warning: stack {only} is not in {} at {}", repo.display, args.rev);
    }
    let default_policy = head.default_policy;
    let commit = head.commit.clone();
    let (desired, problems) = stack_set(head);
    refuse_problems(&problems, &commit)?;
    let actual = actual(args, global)?;
    Ok(diff(&desired, &actual, default_policy))
}

/// One stack of both revisions, compared on the thread that made its second side.
struct Met {
    /// Why the head's side could not be converted.
    head_problems: Vec<StackProblem>,
    /// Why the base's side could not be converted (it is left out of the base).
    base_problems: Vec<StackProblem>,
    /// The stack's part of the plan (`None`: unchanged).
    part: Option<StackPlan>,
    /// A stack only the base has: its part needs the head's default policy, so it is made
    /// afterwards.
    gone: Option<StackSpec>,
}

/// The two sides of a stack, compared where they met; both are freed there. A stack that
/// was loaded once for both revisions (its inputs are equal) has one spec on both sides,
/// and a spec never differs from itself: it is not diffed.
fn meet(_: &StackName, head: Option<Shared>, base: Option<Shared>) -> Met {
    if let (Some(h), Some(b)) = (&head, &base)
        && Arc::ptr_eq(h, b)
        && h.is_ok()
    {
        return Met {
            head_problems: Vec::new(),
            base_problems: Vec::new(),
            part: None,
            gone: None,
        };
    }
    let side = |c: Option<Shared>| match c.map(Arc::unwrap_or_clone) {
        Some(Ok(spec)) => (Some(spec), Vec::new()),
        Some(Err(p)) => (None, p),
        None => (None, Vec::new()),
    };
    let ((desired, head_problems), (actual, base_problems)) = (side(head), side(base));
    let (part, gone) = match desired {
        // The default policy only applies to stacks the head does not have.
        Some(d) => (diff_one(Some(&d), actual.as_ref(), d.policy), None),
        None => (None, actual),
    };
    Met { head_problems, base_problems, part, gone }
}

/// The head against `--base REV`: both revisions load at once, a stack whose folder did not
/// change is loaded only once, and each stack is diffed as soon as its two sides are there.
fn plan_against_base(args: &ReconcileArgs, repo: &Repo, base: &str) -> Result<Plan> {
    let only = args.stack.as_deref();
    let convert = |s: &StackSource| Arc::new(convert_source(s));
    let compared = repo.compare(&args.rev, base, &args.path, only, convert, meet)?;
    let head = compared.head;
    if !head.path_found {
        bail!("{} has no folder {:?} at {}", repo.display, args.path, args.rev);
    }
    let mut problems = head.problems;
    problems.extend(compared.stacks.values().flat_map(|m| m.head_problems.iter().cloned()));
    refuse_problems(&problems, &head.commit)?;
    let base = compared.base?;
    let mut warnings = base.problems;
    warnings.extend(compared.stacks.values().flat_map(|m| m.base_problems.iter().cloned()));
    for p in &warnings {
        eprintln!(
            "warning: base {}: {} (the stack is left out of the base)",
            short(&base.commit),
            show_problem(p)
        );
    }
    let mut parts = std::collections::BTreeMap::new();
    for (name, met) in compared.stacks {
        let part = match met.gone {
            Some(a) => diff_one(None, Some(&a), head.default_policy),
            None => met.part,
        };
        if let Some(part) = part {
            parts.insert(name.to_string(), part);
        }
    }
    Ok(assemble(short(&head.commit).to_owned(), short(&base.commit).to_owned(), parts))
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
