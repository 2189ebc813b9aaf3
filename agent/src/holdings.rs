//! What this node holds from the dispatcher: its tasks and the configs and secrets they use,
//! as of an assignment generation (swarmkit `agent/worker.go` `Assign` / `Update`). Applying
//! an answer says which tasks appeared, changed or went away; the worker acts on that. Pure.
//!
//! A complete answer replaces everything; an incremental one applies only on top of the
//! generation it names, and anything else is [`Stale`] (the agent then asks for a complete
//! set).

use reconciler_api::dispatcher::{
    Assignment, AssignmentChange, AssignmentRef, Assignments, AssignmentsKind, FileAssignment,
    TaskAssignment,
};
use reconciler_types::TaskId;
use std::collections::{BTreeMap, BTreeSet};

/// An incremental answer for another generation than the one held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("assignments apply to generation {applies_to} but this node holds {held}")]
pub struct Stale {
    /// What the answer applies to.
    pub applies_to: u64,
    /// What the node holds.
    pub held: u64,
}

/// What an answer changed, for the worker.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    /// Tasks new to this node or changed by the managers.
    pub updated: Vec<TaskAssignment>,
    /// Tasks no longer assigned here.
    pub removed: Vec<TaskId>,
}

/// The node's assignments.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    generation: u64,
    tasks: BTreeMap<TaskId, TaskAssignment>,
    configs: BTreeMap<String, FileAssignment>,
    secrets: BTreeMap<String, FileAssignment>,
}

impl Holdings {
    /// The generation held (0: nothing yet, ask for a complete set).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets the generation, so the next poll asks for a complete set (after a new
    /// session).
    pub fn reset_generation(&mut self) {
        self.generation = 0;
    }

    /// A config's content.
    pub fn config(&self, name: &str) -> Option<&[u8]> {
        self.configs.get(name).map(|f| f.data.as_slice())
    }

    /// A secret's content.
    pub fn secret(&self, name: &str) -> Option<&[u8]> {
        self.secrets.get(name).map(|f| f.data.as_slice())
    }

    /// The tasks held.
    pub fn tasks(&self) -> impl Iterator<Item = &TaskAssignment> {
        self.tasks.values()
    }

    /// Applies an answer.
    ///
    /// # Errors
    /// [`Stale`] for an incremental answer on top of another generation; nothing changes.
    pub fn apply(&mut self, answer: Assignments) -> Result<Applied, Stale> {
        let complete = answer.kind == AssignmentsKind::Complete;
        if !complete && answer.applies_to != self.generation {
            return Err(Stale { applies_to: answer.applies_to, held: self.generation });
        }
        let before: BTreeSet<TaskId> = self.tasks.keys().cloned().collect();
        if complete {
            self.configs.clear();
            self.secrets.clear();
        }
        let mut seen = BTreeSet::new();
        let mut applied = Applied::default();
        for change in answer.changes {
            match change {
                AssignmentChange::Update { assignment: Assignment::Task(t) } => {
                    seen.insert(t.task.id.clone());
                    let changed = self.tasks.get(&t.task.id) != Some(&*t);
                    if changed {
                        self.tasks.insert(t.task.id.clone(), (*t).clone());
                        applied.updated.push(*t);
                    }
                }
                AssignmentChange::Update { assignment: Assignment::Config(f) } => {
                    self.configs.insert(f.name.clone(), f);
                }
                AssignmentChange::Update { assignment: Assignment::Secret(f) } => {
                    self.secrets.insert(f.name.clone(), f);
                }
                AssignmentChange::Remove { item } => match item {
                    AssignmentRef::Task { id } => {
                        if self.tasks.remove(&id).is_some() {
                            applied.removed.push(id);
                        }
                    }
                    AssignmentRef::Config { name } => {
                        self.configs.remove(&name);
                    }
                    AssignmentRef::Secret { name } => {
                        self.secrets.remove(&name);
                    }
                },
            }
        }
        if complete {
            for id in before.difference(&seen) {
                self.tasks.remove(id);
                applied.removed.push(id.clone());
            }
        }
        self.generation = answer.generation;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::{Task, TaskState};

    fn task(id: &str, desired: TaskState) -> AssignmentChange {
        let task = Task { id: TaskId::new(id), desired_state: desired, ..Task::default() };
        let a = TaskAssignment {
            task,
            service_name: "web".into(),
            service_labels: Default::default(),
            endpoint: Default::default(),
        };
        AssignmentChange::Update { assignment: Assignment::Task(Box::new(a)) }
    }

    fn secret(name: &str) -> AssignmentChange {
        let f = FileAssignment { name: name.into(), data: b"s".to_vec() };
        AssignmentChange::Update { assignment: Assignment::Secret(f) }
    }

    fn answer(
        kind: AssignmentsKind,
        applies_to: u64,
        generation: u64,
        changes: Vec<AssignmentChange>,
    ) -> Assignments {
        Assignments { kind, applies_to, generation, changes, log_subscriptions: Vec::new() }
    }

    fn ids(v: &[TaskAssignment]) -> Vec<&str> {
        v.iter().map(|t| t.task.id.as_str()).collect()
    }

    #[test]
    fn a_complete_set_replaces_everything_and_names_what_went_away() {
        let mut h = Holdings::default();
        let a = h
            .apply(answer(
                AssignmentsKind::Complete,
                0,
                3,
                vec![secret("pw"), task("t1", TaskState::Running), task("t2", TaskState::Running)],
            ))
            .unwrap();
        assert_eq!(ids(&a.updated), ["t1", "t2"]);
        assert_eq!(h.secret("pw"), Some(&b"s"[..]));
        let a = h
            .apply(answer(AssignmentsKind::Complete, 0, 4, vec![task("t2", TaskState::Running)]))
            .unwrap();
        assert!(a.updated.is_empty(), "t2 did not change");
        assert_eq!(a.removed, [TaskId::new("t1")]);
        assert_eq!(h.secret("pw"), None);
        assert_eq!(h.generation(), 4);
    }

    #[test]
    fn incremental_sets_apply_only_on_the_generation_held() {
        let mut h = Holdings::default();
        h.apply(answer(AssignmentsKind::Complete, 0, 5, vec![task("t1", TaskState::Running)]))
            .unwrap();
        let stale = h.apply(answer(AssignmentsKind::Incremental, 4, 6, vec![]));
        assert_eq!(stale, Err(Stale { applies_to: 4, held: 5 }));
        let a = h
            .apply(answer(
                AssignmentsKind::Incremental,
                5,
                6,
                vec![
                    task("t1", TaskState::Shutdown),
                    AssignmentChange::Remove {
                        item: AssignmentRef::Task { id: TaskId::new("nope") },
                    },
                ],
            ))
            .unwrap();
        assert_eq!(a.updated[0].task.desired_state, TaskState::Shutdown);
        assert!(a.removed.is_empty());
        assert_eq!(h.generation(), 6);
        h.reset_generation();
        assert_eq!(h.generation(), 0);
    }
}
