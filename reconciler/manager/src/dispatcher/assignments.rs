//! What one node holds, and the generation-stamped changes that bring it up to date (swarmkit
//! `dispatcher/assignments.go`). Pure: the caller passes the node's tasks and a way to read
//! config and secret content.
//!
//! * A node receives its tasks once they are ASSIGNED or later. A task already sent is sent
//!   again when the managers change it (desired state, spec version) or while its observed
//!   state is still a manager's (ASSIGNED); a change the agent itself reported is not echoed.
//! * With a task that is not yet past RUNNING come exactly the configs and secrets it uses;
//!   when no task of the node uses one any more (every user ended or is gone) it is removed.
//! * Within an answer, configs and secrets come before the tasks that use them, and are
//!   removed after them.

use reconciler_api::dispatcher::{
    Assignment, AssignmentChange, AssignmentRef, Assignments, AssignmentsKind, FileAssignment,
    TaskAssignment,
};
use reconciler_types::{Task, TaskId, TaskState};
use std::collections::{BTreeMap, BTreeSet};

/// Where the content of configs and secrets, and each task's service, comes from.
pub trait Sources {
    /// A config's content, `None` when it does not exist.
    fn config(&self, name: &str) -> Option<Vec<u8>>;
    /// A secret's plain value, `None` when it does not exist or cannot be unsealed.
    fn secret(&self, name: &str) -> Option<Vec<u8>>;
    /// The task as its node receives it (service name, labels, endpoint added).
    fn describe(&self, task: &Task) -> TaskAssignment;
}

/// What makes a task worth sending again: the managers' side of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stable {
    desired: TaskState,
    spec_version: u64,
    slot: u64,
}

impl Stable {
    fn of(t: &Task) -> Self {
        Stable { desired: t.desired_state, spec_version: t.spec_version, slot: t.slot }
    }
}

#[derive(Debug, Clone)]
struct Held {
    stable: Stable,
    /// The observed state when last sent.
    state: TaskState,
    deps: Vec<AssignmentRef>,
}

/// The configs and secrets a task uses, in spec order, without repeats.
fn dependencies(t: &Task) -> Vec<AssignmentRef> {
    let c = &t.spec.container_spec;
    let configs = c.configs.iter().map(|r| AssignmentRef::Config { name: r.config_name.clone() });
    let secrets = c.secrets.iter().map(|r| AssignmentRef::Secret { name: r.secret_name.clone() });
    let mut seen = BTreeSet::new();
    configs.chain(secrets).filter(|d| seen.insert(d.clone())).collect()
}

/// The set one node holds as of its last answer, and the tasks touched since (only those are
/// looked at for the next incremental answer, so an answer costs what changed, not what the
/// node holds).
#[derive(Debug, Clone, Default)]
pub struct AssignmentSet {
    generation: u64,
    tasks: BTreeMap<TaskId, Held>,
    users: BTreeMap<AssignmentRef, BTreeSet<TaskId>>,
    touched: BTreeSet<TaskId>,
}

/// The changes of one answer, kept apart by kind so they can be ordered.
#[derive(Default)]
struct Changes {
    files: Vec<AssignmentChange>,
    tasks: Vec<AssignmentChange>,
    removed_files: Vec<AssignmentRef>,
}

impl AssignmentSet {
    /// The generation of the last answer (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Everything the node should hold, as a complete set (after a new session, or when the
    /// agent's `since` is not the last generation sent).
    pub fn complete<'a>(
        &mut self,
        tasks: impl Iterator<Item = &'a Task>,
        src: &dyn Sources,
    ) -> Assignments {
        let next = self.generation + 1;
        *self = AssignmentSet { generation: next, ..AssignmentSet::default() };
        let mut ch = Changes::default();
        for t in tasks {
            self.add_or_update(t, src, &mut ch);
        }
        ch.into_answer(AssignmentsKind::Complete, 0, next)
    }

    /// Tasks written, moved or removed since the last answer, as far as this node is
    /// concerned (placed on it, or no longer placed on it).
    pub fn touch(&mut self, ids: impl IntoIterator<Item = TaskId>) {
        self.touched.extend(ids);
    }

    /// Whether a task was touched since the last answer.
    pub fn is_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// The changes since the last answer, looking only at the tasks touched since
    /// ([`AssignmentSet::touch`]); `current` answers a touched task as it is now when it is
    /// still this node's, `None` when it is gone or placed elsewhere. `None` when nothing
    /// changed for the node (the poll keeps waiting).
    pub fn incremental<'a>(
        &mut self,
        current: impl Fn(&TaskId) -> Option<&'a Task>,
        src: &dyn Sources,
    ) -> Option<Assignments> {
        let mut ch = Changes::default();
        for id in std::mem::take(&mut self.touched) {
            match current(&id) {
                Some(t) => self.add_or_update(t, src, &mut ch),
                None => self.remove(&id, &mut ch),
            }
        }
        if ch.is_empty() {
            return None;
        }
        let applies_to = self.generation;
        self.generation += 1;
        Some(ch.into_answer(AssignmentsKind::Incremental, applies_to, self.generation))
    }

    fn add_or_update(&mut self, t: &Task, src: &dyn Sources, ch: &mut Changes) {
        if t.status.state < TaskState::Assigned {
            return;
        }
        let (stable, state) = (Stable::of(t), t.status.state);
        match self.tasks.get_mut(&t.id) {
            // Unchanged by the managers: what the agent reported is not sent back.
            Some(held)
                if held.stable == stable
                    && (state > TaskState::Assigned || held.state == state) =>
            {
                held.state = state;
                if state > TaskState::Running && !held.deps.is_empty() {
                    let deps = std::mem::take(&mut held.deps);
                    self.release(&t.id, deps, ch);
                }
                return;
            }
            Some(held) => {
                held.stable = stable;
                held.state = state;
            }
            None => {
                let deps =
                    if state <= TaskState::Running { self.acquire(t, src, ch) } else { Vec::new() };
                self.tasks.insert(t.id.clone(), Held { stable, state, deps });
            }
        }
        let assignment = Assignment::Task(Box::new(src.describe(t)));
        ch.tasks.push(AssignmentChange::Update { assignment });
    }

    fn acquire(&mut self, t: &Task, src: &dyn Sources, ch: &mut Changes) -> Vec<AssignmentRef> {
        let deps = dependencies(t);
        for dep in &deps {
            let users = self.users.entry(dep.clone()).or_default();
            if users.is_empty() {
                let file = |name: &str, data: Option<Vec<u8>>| {
                    data.map(|data| FileAssignment { name: name.to_owned(), data })
                };
                let assignment = match dep {
                    AssignmentRef::Config { name } => {
                        file(name, src.config(name)).map(Assignment::Config)
                    }
                    AssignmentRef::Secret { name } => {
                        file(name, src.secret(name)).map(Assignment::Secret)
                    }
                    AssignmentRef::Task { .. } => None,
                };
                if let Some(assignment) = assignment {
                    ch.files.push(AssignmentChange::Update { assignment });
                }
            }
            users.insert(t.id.clone());
        }
        deps
    }

    fn release(&mut self, task: &TaskId, deps: Vec<AssignmentRef>, ch: &mut Changes) {
        for dep in deps {
            let Some(users) = self.users.get_mut(&dep) else { continue };
            users.remove(task);
            if users.is_empty() {
                self.users.remove(&dep);
                ch.removed_files.push(dep);
            }
        }
    }

    fn remove(&mut self, id: &TaskId, ch: &mut Changes) {
        if let Some(held) = self.tasks.remove(id) {
            ch.tasks
                .push(AssignmentChange::Remove { item: AssignmentRef::Task { id: id.clone() } });
            self.release(id, held.deps, ch);
        }
    }
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.tasks.is_empty() && self.removed_files.is_empty()
    }

    fn into_answer(self, kind: AssignmentsKind, applies_to: u64, generation: u64) -> Assignments {
        let mut changes = self.files;
        changes.extend(self.tasks);
        let removed = self.removed_files.into_iter().map(|item| AssignmentChange::Remove { item });
        changes.extend(removed);
        Assignments { kind, applies_to, generation, changes, log_subscriptions: Vec::new() }
    }
}

#[cfg(test)]
#[path = "assignments_tests.rs"]
mod tests;
