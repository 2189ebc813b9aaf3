//! Two revisions of one repository compared (`reconcile --dry-run --base REV`): both load at
//! once, a stack whose folder did not change is loaded only once, and each stack is diffed
//! as soon as its two sides are there.

use crate::desired::{Converted, convert_source, short};
use reconciler_planner::plan::StackPlan;
use reconciler_planner::{Plan, assemble, diff_one};
use reconciler_source::{Repo, SourceError, StackProblem};
use reconciler_types::{StackName, StackSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

/// [`Converted`], shared by both revisions when a stack is loaded once for both.
type Shared = Arc<Converted>;

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
        Some(Ok((spec, _))) => (Some(spec), Vec::new()),
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

/// The base's side of a comparison.
#[derive(Debug)]
pub struct BaseSide {
    /// The base's commit id.
    pub commit: String,
    /// Why some of the base's stacks were left out of it.
    pub problems: Vec<StackProblem>,
    /// The head against the base.
    pub plan: Plan,
}

/// The head against a base revision.
#[derive(Debug)]
pub struct Comparison {
    /// The head's commit id.
    pub head_commit: String,
    /// Whether the stacks path exists at the head.
    pub head_path_found: bool,
    /// Why some of the head's stacks cannot be used (the plan should be refused).
    pub head_problems: Vec<StackProblem>,
    /// The base (its own failure: a revision that does not resolve, a broken settings file).
    pub base: Result<BaseSide, SourceError>,
}

/// Compares `rev` with `base` under `path` (only `only`, when given).
///
/// # Errors
/// When the head's revision does not resolve or its `flotilla.yaml` is broken.
pub fn against_base(
    repo: &Repo,
    rev: &str,
    base: &str,
    path: &str,
    only: Option<&str>,
) -> Result<Comparison, SourceError> {
    let convert = |s: &reconciler_source::StackSource| Arc::new(convert_source(s, false));
    let compared = repo.compare(rev, base, path, only, convert, meet)?;
    let head = compared.head;
    let mut head_problems = head.problems;
    head_problems.extend(compared.stacks.values().flat_map(|m| m.head_problems.iter().cloned()));
    let base = compared.base.map(|b| {
        let mut problems = b.problems;
        problems.extend(compared.stacks.values().flat_map(|m| m.base_problems.iter().cloned()));
        let mut parts = BTreeMap::new();
        for (name, met) in compared.stacks {
            let part = match met.gone {
                Some(a) => diff_one(None, Some(&a), head.default_policy),
                None => met.part,
            };
            if let Some(part) = part {
                parts.insert(name.to_string(), part);
            }
        }
        let plan = assemble(short(&head.commit).to_owned(), short(&b.commit).to_owned(), parts);
        BaseSide { commit: b.commit, problems, plan }
    });
    Ok(Comparison {
        head_commit: head.commit,
        head_path_found: head.path_found,
        head_problems,
        base,
    })
}
