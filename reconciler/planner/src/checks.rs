//! Counting and the safety warnings the automatic loop acts on: removing a whole stack, or
//! more than half of a stack's services, needs an explicit override.

use crate::plan::{Action, Counts, ObjectPlan, Plan, StackPlan, Warning};
use std::collections::BTreeMap;

fn count_objects(c: &mut Counts, objects: &BTreeMap<String, ObjectPlan>) {
    for o in objects.values() {
        bump(c, o.action);
    }
}

fn bump(c: &mut Counts, a: Action) {
    match a {
        Action::Create => c.created += 1,
        Action::Update => c.updated += 1,
        Action::Remove => c.removed += 1,
        Action::Orphan => c.orphaned += 1,
    }
}

/// The counts of one stack.
pub fn count_stack(s: &StackPlan) -> Counts {
    let mut c = Counts::default();
    for svc in s.services.values() {
        bump(&mut c, svc.action);
        if let Some(r) = &svc.rollout {
            c.rollout_batches += u64::try_from(r.batches.len()).unwrap_or(u64::MAX).max(1);
        }
    }
    count_objects(&mut c, &s.networks);
    count_objects(&mut c, &s.configs);
    count_objects(&mut c, &s.secrets);
    c
}

/// Fills in the counts and the warnings; "more than half" is measured against the services
/// the stack has in the cluster.
pub fn finish(plan: &mut Plan) {
    let mut totals = Counts::default();
    let mut warnings = Vec::new();
    for (name, stack) in plan.stacks.iter_mut() {
        stack.counts = count_stack(stack);
        let c = stack.counts;
        totals.created += c.created;
        totals.updated += c.updated;
        totals.removed += c.removed;
        totals.orphaned += c.orphaned;
        totals.rollout_batches += c.rollout_batches;
        if stack.action == Some(Action::Remove) {
            warnings.push(Warning {
                stack: name.clone(),
                kind: "stack_removed".into(),
                message: format!(
                    "stack {name} would be removed with all its services; the automatic \
                     sync refuses this without an override"
                ),
            });
            continue;
        }
        let existing = stack.actual_services;
        let removed = stack.services.values().filter(|s| s.action == Action::Remove).count();
        let removed = u64::try_from(removed).unwrap_or(u64::MAX);
        if removed > 0 && removed * 2 > existing {
            warnings.push(Warning {
                stack: name.clone(),
                kind: "mass_removal".into(),
                message: format!(
                    "{removed} of {existing} services of stack {name} would be removed; the \
                     automatic sync refuses this without an override"
                ),
            });
        }
    }
    plan.totals = totals;
    plan.warnings = warnings;
}
