//! The semantic diff: desired stacks against actual stacks, field by field.
//!
//! ```text
//!  desired StackSet ─┐
//!                    ├─► per stack: services, networks, configs, secrets ─► StackPlan
//!  actual  StackSet ─┘        (flattened with `fields`, compared path by path)
//! ```
//!
//! Both sides are converted specs, so anything the loader normalizes (key order, YAML
//! style, short or long syntax, values moved into env files) cannot show up here.

use crate::fields::{self, Fields};
use crate::plan::{
    Action, Counts, FieldChange, ObjectPlan, Plan, ServicePlan, StackPlan, UpdateKind,
};
use crate::rollout::{plan_rollout, replaced_tasks};
use reconciler_types::{ServiceSpec, StackPolicy, StackSet, StackSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Field paths whose change leaves running tasks alone (Swarm's `IsTaskDirty` looks only at
/// the task template and the endpoint spec).
const IN_PLACE_PREFIXES: &[&str] =
    &["deploy.replicas", "deploy.labels.", "deploy.update_config.", "deploy.rollback_config."];

/// The field-by-field difference of two flattened objects.
pub fn diff_fields(old: &Fields, new: &Fields) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (old.get(k), new.get(k));
            (o != n).then(|| FieldChange { path: k.clone(), old: o.cloned(), new: n.cloned() })
        })
        .collect()
}

fn classify(changes: &[FieldChange], secret_reasons: &[String]) -> UpdateKind {
    if changes.iter().any(|c| c.path == "deploy.mode") {
        return UpdateKind::Recreate;
    }
    let replaces = changes.iter().any(|c| !IN_PLACE_PREFIXES.iter().any(|p| c.path.starts_with(p)));
    if replaces || !secret_reasons.is_empty() { UpdateKind::Rolling } else { UpdateKind::InPlace }
}

/// Diffs two sets of stacks. `default_policy` applies to stacks Git no longer has.
pub fn diff(desired: &StackSet, actual: &StackSet, default_policy: StackPolicy) -> Plan {
    let names: BTreeSet<_> = desired.stacks.keys().chain(actual.stacks.keys()).collect();
    let stacks = names
        .into_iter()
        .filter_map(|name| {
            let (d, a) = (desired.stacks.get(name), actual.stacks.get(name));
            diff_one(d, a, default_policy).map(|plan| (name.to_string(), plan))
        })
        .collect();
    assemble(desired.source.clone(), actual.source.clone(), stacks)
}

/// One stack's part of [`diff`]: what Git wants (`desired`) against what runs (`actual`),
/// either of them missing; `None` when nothing would change. Stacks are independent of
/// each other, so their parts can be made anywhere, in any order, and given to
/// [`assemble`]. `default_policy` applies when Git no longer has the stack.
pub fn diff_one(
    desired: Option<&StackSpec>,
    actual: Option<&StackSpec>,
    default_policy: StackPolicy,
) -> Option<StackPlan> {
    let empty = StackSpec::default();
    let (d, a) = (desired, actual);
    let policy = d.map_or(default_policy, |d| d.policy);
    let mut plan = diff_stack(d.unwrap_or(&empty), a.unwrap_or(&empty), policy.prune);
    if d.is_none() && policy.prune {
        remove_objects(&mut plan);
    }
    plan.counts = crate::checks::count_stack(&plan);
    plan.action = match (d, a) {
        (Some(_), None) => Some(Action::Create),
        (None, Some(_)) if policy.prune => Some(Action::Remove),
        (None, Some(_)) => Some(Action::Orphan),
        _ if plan.counts != Counts::default() => Some(Action::Update),
        _ => None,
    };
    plan.action.is_some().then_some(plan)
}

/// The plan of the stacks' parts from [`diff_one`], by stack name, with its totals and
/// warnings; `desired` and `actual` say where each side came from.
pub fn assemble(desired: String, actual: String, stacks: BTreeMap<String, StackPlan>) -> Plan {
    let mut plan = Plan {
        format: 1,
        desired,
        actual,
        stacks,
        warnings: Vec::new(),
        totals: Counts::default(),
    };
    crate::checks::finish(&mut plan);
    plan
}

fn gone(prune: bool) -> Action {
    if prune { Action::Remove } else { Action::Orphan }
}

/// A stack that leaves Git with prune on is taken down whole, as `docker stack rm` does:
/// its networks, configs and secrets go too.
fn remove_objects(plan: &mut StackPlan) {
    let objects = plan.networks.values_mut().chain(plan.configs.values_mut());
    for o in objects.chain(plan.secrets.values_mut()) {
        o.action = Action::Remove;
    }
}

/// Diffs one stack (either side may be empty). Prune removes the services that left the
/// stack, never its networks, configs or secrets (`docker stack deploy --prune`,
/// docs/swarm-semantics.md §10): those stay as orphans, and configs are collected once no
/// service's spec or previous spec uses them.
pub fn diff_stack(desired: &StackSpec, actual: &StackSpec, prune: bool) -> StackPlan {
    let secrets = diff_objects(&desired.secrets, &actual.secrets, fields::secret_fields, |d, a| {
        let same = crate::secret_digest::same_content((&d.salt, &d.digest), (&a.salt, &a.digest));
        (!same, None)
    });
    let changed_secrets: BTreeSet<&str> = secrets
        .values()
        .filter(|s| s.action == Action::Update && s.content_changed)
        .map(|s| s.name.as_str())
        .collect();
    let configs = diff_objects(&desired.configs, &actual.configs, fields::config_fields, |d, a| {
        (
            d.data != a.data,
            (d.data != a.data).then(|| crate::render::text::content_diff(&a.data, &d.data)),
        )
    });
    let networks =
        diff_objects(&desired.networks, &actual.networks, fields::network_fields, |_, _| {
            (false, None)
        });
    let mut services = BTreeMap::new();
    let keys: BTreeSet<&String> = desired.services.keys().chain(actual.services.keys()).collect();
    for key in keys {
        let (d, a) = (desired.services.get(key), actual.services.get(key));
        let plan = match (d, a) {
            (Some(d), None) => ServicePlan {
                name: d.name.clone(),
                action: Action::Create,
                update: None,
                fields: diff_fields(&Fields::new(), &fields::service_fields(d)),
                reasons: Vec::new(),
                rollout: None,
            },
            (None, Some(a)) => ServicePlan {
                name: a.name.clone(),
                action: gone(prune),
                update: None,
                fields: Vec::new(),
                reasons: Vec::new(),
                rollout: None,
            },
            (Some(d), Some(a)) => match diff_service(d, a, &changed_secrets) {
                Some(p) => p,
                None => continue,
            },
            (None, None) => continue,
        };
        services.insert(key.clone(), plan);
    }
    StackPlan {
        action: None,
        prune,
        services,
        networks,
        configs,
        secrets,
        actual_services: u64::try_from(actual.services.len()).unwrap_or(u64::MAX),
        counts: Counts::default(),
    }
}

/// An updated service's plan, or `None` when nothing changed.
fn diff_service(
    d: &ServiceSpec,
    a: &ServiceSpec,
    changed_secrets: &BTreeSet<&str>,
) -> Option<ServicePlan> {
    let mut reasons: Vec<String> = d
        .task_template
        .container_spec
        .secrets
        .iter()
        .filter(|r| changed_secrets.contains(r.secret_name.as_str()))
        .map(|r| format!("secret {}: content changed", r.secret_name))
        .collect();
    if d == a && reasons.is_empty() {
        return None;
    }
    let changes = diff_fields(&fields::service_fields(a), &fields::service_fields(d));
    if changes.is_empty() && reasons.is_empty() {
        return None;
    }
    if !changes.is_empty() && changes.iter().all(|c| c.path == "deploy.placement.constraints") {
        reasons.push(
            "only placement constraints changed: tasks on nodes that still match are kept"
                .to_owned(),
        );
    }
    let kind = classify(&changes, &reasons);
    let rollout = (kind == UpdateKind::Rolling)
        .then(|| plan_rollout(&d.update_config, replaced_tasks(a, d), d));
    Some(ServicePlan {
        name: d.name.clone(),
        action: Action::Update,
        update: Some(kind),
        fields: changes,
        reasons,
        rollout,
    })
}

fn diff_objects<T>(
    desired: &BTreeMap<String, T>,
    actual: &BTreeMap<String, T>,
    flatten: fn(&T) -> Fields,
    content: impl Fn(&T, &T) -> (bool, Option<String>),
) -> BTreeMap<String, ObjectPlan> {
    let mut out = BTreeMap::new();
    let keys: BTreeSet<&String> = desired.keys().chain(actual.keys()).collect();
    for key in keys {
        let plan = |action, fields, content_changed, content_diff| ObjectPlan {
            name: key.clone(),
            action,
            fields,
            content_changed,
            content_diff,
        };
        let p = match (desired.get(key), actual.get(key)) {
            (Some(d), None) => {
                plan(Action::Create, diff_fields(&Fields::new(), &flatten(d)), false, None)
            }
            (None, Some(_)) => plan(Action::Orphan, Vec::new(), false, None),
            (Some(d), Some(a)) => {
                let changes = diff_fields(&flatten(a), &flatten(d));
                let (changed, text) = content(d, a);
                if changes.is_empty() && !changed {
                    continue;
                }
                plan(Action::Update, changes, changed, text)
            }
            (None, None) => continue,
        };
        out.insert(key.clone(), p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::StackName;

    fn stack(name: &str, services: &[(&str, &str)]) -> StackSpec {
        let mut spec = StackSpec { name: StackName::new(name.to_owned()), ..Default::default() };
        for (key, image) in services {
            let mut svc = ServiceSpec { name: format!("{name}_{key}"), ..Default::default() };
            svc.task_template.container_spec.image = (*image).to_owned();
            spec.services.insert((*key).to_owned(), svc);
        }
        spec
    }

    #[test]
    fn diff_is_its_stacks_parts_assembled() {
        let set = |source: &str, stacks: Vec<StackSpec>| StackSet {
            source: source.to_owned(),
            stacks: stacks.into_iter().map(|s| (s.name.clone(), s)).collect(),
        };
        let desired = set("head", vec![stack("a", &[("web", "nginx:2")]), stack("b", &[])]);
        let actual =
            set("base", vec![stack("a", &[("web", "nginx:1")]), stack("c", &[("x", "y")])]);
        let policy = StackPolicy::default();
        let names = ["a", "b", "c"];
        let parts = names
            .iter()
            .filter_map(|n| {
                let n = StackName::new((*n).to_owned());
                let part = diff_one(desired.stacks.get(&n), actual.stacks.get(&n), policy)?;
                Some((n.to_string(), part))
            })
            .collect();
        let whole = diff(&desired, &actual, policy);
        assert_eq!(whole.stacks.len(), 3);
        assert_eq!(whole, assemble("head".into(), "base".into(), parts));
    }
}
