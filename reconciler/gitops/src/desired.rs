//! One revision's stacks, read and converted: Git's side of every plan.

use reconciler_planner::convert::secret_values;
use reconciler_planner::{Plan, StackInput, convert_stack, diff};
use reconciler_source::{Repo, Revision, SourceError, StackProblem, StackSource};
use reconciler_types::{StackName, StackPolicy, StackSet, StackSpec};
use std::collections::BTreeMap;

/// A secret's plain value on its way to being sealed; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Plain(pub Vec<u8>);

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plain({} bytes)", self.0.len())
    }
}

/// The stacks Git wants at one revision.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The full commit id.
    pub commit: String,
    /// Whether the stacks path exists at this revision.
    pub path_found: bool,
    /// The stacks that converted (`source` is the short commit id).
    pub set: StackSet,
    /// Why the others could not be used.
    pub problems: Vec<StackProblem>,
    /// The policy of stacks the revision does not have.
    pub default_policy: StackPolicy,
    /// With `keep_secrets`: each stack's own secret values, by cluster name.
    pub secrets: BTreeMap<StackName, BTreeMap<String, Plain>>,
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// `stack S: FILE[:LINE]: [PATH: ]MESSAGE`.
pub fn show_problem(p: &StackProblem) -> String {
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

/// A stack's specs (and, when asked, its secret values), or why it could not be converted.
pub type Converted = Result<(StackSpec, BTreeMap<String, Plain>), Vec<StackProblem>>;

/// Converts one loaded stack (on the thread that loaded it, so that its loaded form is freed
/// at once); conversion problems name the stack's first file.
pub fn convert_source(s: &StackSource, keep_secrets: bool) -> Converted {
    let input = StackInput { name: &s.name, config: &s.config, files: &s.files, policy: s.policy };
    let spec = convert_stack(&input).map_err(|errors| {
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
            .collect::<Vec<_>>()
    })?;
    let secrets = if keep_secrets {
        secret_values(&input).into_iter().map(|(k, v)| (k, Plain(v.to_vec()))).collect()
    } else {
        BTreeMap::new()
    };
    Ok((spec, secrets))
}

/// Reads and converts the stacks under `path` at `rev` (only `only`, when given).
///
/// # Errors
/// When the revision does not resolve or `flotilla.yaml` is broken; broken stacks are
/// reported in [`Desired::problems`] instead.
pub fn desired(
    repo: &Repo,
    rev: &str,
    path: &str,
    only: Option<&str>,
    keep_secrets: bool,
) -> Result<Desired, SourceError> {
    let head = repo.read_with(rev, path, only, |s| convert_source(s, keep_secrets))?;
    Ok(from_revision(head))
}

fn from_revision(rev: Revision<Converted>) -> Desired {
    let mut out = Desired {
        commit: rev.commit.clone(),
        path_found: rev.path_found,
        set: StackSet { source: short(&rev.commit).to_owned(), stacks: BTreeMap::new() },
        problems: rev.problems,
        default_policy: rev.default_policy,
        secrets: BTreeMap::new(),
    };
    for (name, converted) in rev.stacks {
        match converted {
            Ok((spec, secrets)) => {
                out.set.stacks.insert(name.clone(), spec);
                if !secrets.is_empty() {
                    out.secrets.insert(name, secrets);
                }
            }
            Err(errors) => out.problems.extend(errors),
        }
    }
    out
}

/// Keeps only stack `only` (all when `None`).
pub fn only(mut set: StackSet, only: Option<&str>) -> StackSet {
    if let Some(only) = only {
        set.stacks.retain(|k: &StackName, _| k.as_str() == only);
    }
    set
}

/// The plan: Git's stacks against what runs.
pub fn plan(desired: &Desired, actual: &StackSet) -> Plan {
    diff(&desired.set, actual, desired.default_policy)
}
