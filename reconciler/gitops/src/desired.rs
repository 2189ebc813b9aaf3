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
    /// Stacks left out of `set` by [`skip_unrunnable`], with the reason.
    pub skipped: BTreeMap<StackName, String>,
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
        skipped: BTreeMap::new(),
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

/// Why `runtime` (`process` or `docker`) cannot run every service of `stack`: a service
/// that asks for another runtime (label `com.flotilla.runtime`), or on the process runtime
/// a service with neither entrypoint nor command, or whose program is neither `flotilla`
/// nor `installed` (asked of the program's name or path). `None`: it can run them all.
pub fn unrunnable(
    stack: &StackSpec,
    runtime: &str,
    installed: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let why: Vec<String> = stack
        .services
        .values()
        .filter_map(|s| {
            let c = &s.task_template.container_spec;
            if let Err(e) = agent_core::launch::check_runtime(c, runtime) {
                return Some(e.to_string());
            }
            if runtime != "process" {
                return None;
            }
            match agent_core::launch::process_argv(c, &s.name, "flotilla") {
                Err(e) => Some(e.to_string()),
                Ok(argv) => {
                    let program = argv.first().map_or("", String::as_str);
                    (program != "flotilla" && !installed(program)).then(|| {
                        format!(
                            "the process runtime cannot find {program:?}, the program of {} \
                             (its image {:?} is recorded, not run), on this machine",
                            s.name, c.image
                        )
                    })
                }
            }
        })
        .collect();
    (!why.is_empty()).then(|| why.join("; "))
}

/// Moves the stacks `runtime` cannot run ([`unrunnable`]) from `desired.set` to
/// `desired.skipped`, with their secret values.
pub fn skip_unrunnable(desired: &mut Desired, runtime: &str, installed: &dyn Fn(&str) -> bool) {
    let skipped: Vec<(StackName, String)> = desired
        .set
        .stacks
        .iter()
        .filter_map(|(name, stack)| {
            unrunnable(stack, runtime, installed).map(|why| (name.clone(), why))
        })
        .collect();
    for (name, why) in skipped {
        desired.set.stacks.remove(&name);
        desired.secrets.remove(&name);
        desired.skipped.insert(name, why);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::ServiceSpec;

    fn stack(services: &[(&str, &[&str], &[&str])]) -> StackSpec {
        let mut s = StackSpec { name: StackName::new("demo"), ..StackSpec::default() };
        for (name, entrypoint, command) in services {
            let mut spec = ServiceSpec { name: format!("demo_{name}"), ..ServiceSpec::default() };
            let c = &mut spec.task_template.container_spec;
            c.image = "example/app:1".into();
            c.command = entrypoint.iter().map(|w| (*w).to_owned()).collect();
            c.args = command.iter().map(|w| (*w).to_owned()).collect();
            s.services.insert((*name).to_owned(), spec);
        }
        s
    }

    #[test]
    fn the_process_runtime_skips_a_stack_with_a_service_it_has_nothing_to_run_for() {
        let installed = |p: &str| p == "/bin/true";
        let runnable = stack(&[("web", &[], &["flotilla", "probe"]), ("job", &["/bin/true"], &[])]);
        assert_eq!(unrunnable(&runnable, "process", &installed), None);
        let image_only = stack(&[("web", &[], &["flotilla", "probe"]), ("db", &[], &[])]);
        let why = unrunnable(&image_only, "process", &installed).unwrap();
        assert!(why.contains("demo_db has neither"), "{why}");
        assert!(!why.contains("demo_web"), "{why}");
        let missing = stack(&[("api", &["/app/api"], &["--listen", ":9000"])]);
        let why = unrunnable(&missing, "process", &installed).unwrap();
        assert!(why.contains(r#"cannot find "/app/api", the program of demo_api"#), "{why}");
        // Docker runs an image's own command.
        assert_eq!(unrunnable(&image_only, "docker", &installed), None);
        let mut docker_only = runnable.clone();
        for s in docker_only.services.values_mut() {
            let labels = &mut s.task_template.container_spec.labels;
            labels.insert(agent_core::launch::RUNTIME_LABEL.into(), "docker".into());
        }
        let why = unrunnable(&docker_only, "process", &installed).unwrap();
        assert!(why.contains("docker runtime"), "{why}");
    }

    #[test]
    fn skipped_stacks_leave_the_set_with_their_secrets_and_their_reason() {
        let mut d = Desired {
            commit: "c".into(),
            path_found: true,
            set: StackSet::default(),
            problems: Vec::new(),
            default_policy: StackPolicy::default(),
            secrets: BTreeMap::new(),
            skipped: BTreeMap::new(),
        };
        let mut shop = stack(&[("db", &[], &[])]);
        shop.name = StackName::new("shop");
        let hello = stack(&[("web", &[], &["flotilla", "probe"])]);
        d.set.stacks.insert(StackName::new("shop"), shop);
        d.set.stacks.insert(StackName::new("hello"), hello);
        d.secrets.insert(StackName::new("shop"), BTreeMap::from([("pw".into(), Plain(vec![1]))]));
        skip_unrunnable(&mut d, "process", &|_| false);
        assert_eq!(d.set.stacks.keys().map(StackName::as_str).collect::<Vec<_>>(), ["hello"]);
        assert!(d.secrets.is_empty());
        assert!(d.skipped[&StackName::new("shop")].contains("neither"));
    }
}
