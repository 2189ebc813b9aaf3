//! Convergence progress of `service create | update | rollback | scale` without `--detach`
//! (docs/swarm-semantics.md §11 and S52; Docker's `cli/command/service/progress/progress.go`).
//!
//! A pure state machine: each poll hands it what the managers answered and the time of the
//! poll (time is data, so tests need no sleeps), and it returns the progress lines Docker would
//! write and whether the wait is over:
//! * replicated: converged when every slot's up-to-date task runs (`overall progress: 3 out of
//!   3 tasks`); global: when every node with an up-to-date task, and not down, runs it;
//! * after converging it waits the update monitor (5 s by default), printing `Waiting N
//!   seconds to verify that tasks are stable...`; a task that stops meanwhile prints `Detected
//!   task failure` and the wait starts over once converged again; then `Service <id>
//!   converged`;
//! * update status: `paused` ends with `service update paused: <message>`, `rollback_paused`
//!   with `service rollback paused: <message>`; `rollback_started` prints the message under
//!   `rollback:` and counts as "rolling back update"; `rollback_completed` ends successfully
//!   after convergence with `rollback: rollback completed`; `completed` seen before the CLI saw
//!   convergence ends at once.

use super::render::short_id;
use reconciler_api::services::{ServiceInfo, TaskView};
use reconciler_types::{MonoTime, NodeId, ServiceMode, Task, TaskState, UpdateState};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How often the CLI polls (Docker's 200 ms).
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// At most this many per-task lines are drawn.
const MAX_PROGRESS_BARS: u64 = 20;
/// A task's bar is full at RUNNING (Docker's `maxProgress`).
const MAX_PROGRESS: u64 = 9;
/// The widest state name shown (`preparing`), for aligned bars.
const LONGEST_STATE: usize = 9;
/// Docker's limit on an error shown in a progress line.
const MAX_ERR_WIDTH: usize = 75;

/// One line of progress, Docker's `progress.Progress`: `<id>: <action>`, with a bar when
/// `bar` is set (drawn on a terminal only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's key (`overall progress`, `1/3`, `verify`, `rollback`, a node id).
    pub id: String,
    /// Its text.
    pub action: String,
    /// `(current, total)` of a task's bar.
    pub bar: Option<(u64, u64)>,
}

impl Line {
    fn text(id: &str, action: impl Into<String>) -> Line {
        Line { id: id.to_owned(), action: action.into(), bar: None }
    }
}

/// Whether the wait goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Poll again after [`POLL_INTERVAL`].
    Waiting,
    /// The service converged (or its update completed, or its rollback did).
    Converged,
    /// The update (or the rollback) paused: Docker's error message.
    Failed(String),
}

/// What one poll observed.
#[derive(Debug, Clone, Copy)]
pub struct Poll<'a> {
    /// When it was observed, on the CLI's own monotonic timeline.
    pub at: MonoTime,
    /// The service.
    pub service: &'a ServiceInfo,
    /// All of its tasks.
    pub tasks: &'a [TaskView],
    /// The nodes that are not down.
    pub active_nodes: &'a BTreeSet<NodeId>,
}

/// Docker's order of task states for progress (`numberedStates`); 0 for states it ignores.
fn numbered(state: TaskState) -> u64 {
    match state {
        TaskState::New => 1,
        TaskState::Pending => 3,
        TaskState::Assigned => 4,
        TaskState::Accepted => 5,
        TaskState::Preparing => 6,
        TaskState::Ready => 7,
        TaskState::Starting => 8,
        TaskState::Running => 9,
        TaskState::Complete => 10,
        TaskState::Shutdown => 11,
        TaskState::Failed => 12,
        TaskState::Rejected => 13,
        TaskState::Remove | TaskState::Orphaned => 0,
    }
}

fn terminal(state: TaskState) -> bool {
    numbered(state) > numbered(TaskState::Running)
}

/// The progress of one wait. Feed it every poll with [`Progress::poll`].
#[derive(Debug, Clone)]
pub struct Progress {
    /// The service as the operator named it (`Service <name> converged`).
    label: String,
    converged: bool,
    converged_at: Option<MonoTime>,
    rollback: bool,
    message: Option<Line>,
    initialized: bool,
    done: bool,
    /// Slot → its line number (replicated), so lines appear in order.
    slot_map: BTreeMap<u64, u64>,
}

impl Progress {
    /// A wait on the service the operator called `label`.
    pub fn new(label: &str) -> Progress {
        Progress {
            label: label.to_owned(),
            converged: false,
            converged_at: None,
            rollback: false,
            message: None,
            initialized: false,
            done: false,
            slot_map: BTreeMap::new(),
        }
    }

    /// Whether the last poll saw the service converged.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Takes one poll; returns the lines to write and whether the wait is over.
    pub fn poll(&mut self, p: Poll<'_>) -> (Vec<Line>, Outcome) {
        let mut lines = Vec::new();
        let monitor = match p.service.spec.update_config.monitor {
            m if m.is_zero() => Duration::from_secs(5),
            m => m,
        };
        if let Some(outcome) = self.update_status(p.service, &mut lines) {
            return (lines, outcome);
        }
        if let Some(at) = self.converged_at.filter(|_| self.converged)
            && p.at.saturating_since(at) >= monitor
        {
            lines.push(Line::text("verify", format!("Service {} converged", self.label)));
            lines.extend(self.message.take());
            return (lines, Outcome::Converged);
        }
        let version = p.service.spec_version;
        let up_to_date: Vec<&Task> =
            p.tasks.iter().map(|v| &v.task).filter(|t| t.spec_version == version).collect();
        self.converged = match p.service.spec.mode {
            ServiceMode::Replicated { replicas } => {
                self.replicated(replicas, &up_to_date, p.active_nodes, &mut lines)
            }
            ServiceMode::Global => self.global(&up_to_date, p.active_nodes, &mut lines),
        };
        if self.converged {
            let at = *self.converged_at.get_or_insert(p.at);
            // Docker prints the remaining wait rounded up to whole seconds.
            let wait = monitor.saturating_sub(p.at.saturating_since(at));
            let seconds = wait.as_nanos().div_ceil(1_000_000_000);
            let action = format!("Waiting {seconds} seconds to verify that tasks are stable...");
            lines.push(Line::text("verify", action));
        } else if self.converged_at.take().is_some() {
            lines.push(Line::text("verify", "Detected task failure"));
        }
        (lines, Outcome::Waiting)
    }

    fn update_status(&mut self, service: &ServiceInfo, lines: &mut Vec<Line>) -> Option<Outcome> {
        let status = service.update_status.as_ref()?;
        match status.state {
            UpdateState::Updating => self.rollback = false,
            UpdateState::Completed if !self.converged => return Some(Outcome::Converged),
            UpdateState::Completed => {}
            UpdateState::Paused => {
                return Some(Outcome::Failed(format!("service update paused: {}", status.message)));
            }
            UpdateState::RollbackStarted => {
                if !self.rollback && !status.message.is_empty() {
                    lines.push(Line::text("rollback", status.message.clone()));
                }
                self.rollback = true;
            }
            UpdateState::RollbackPaused => {
                return Some(Outcome::Failed(format!(
                    "service rollback paused: {}",
                    status.message
                )));
            }
            UpdateState::RollbackCompleted => {
                if !self.converged {
                    self.message = Some(Line::text("rollback", status.message.clone()));
                }
                self.rollback = true;
            }
        }
        None
    }

    fn overall(&self, running: u64, total: u64) -> Line {
        let action = if self.rollback {
            format!("rolling back update: {running} out of {total} tasks")
        } else {
            format!("{running} out of {total} tasks")
        };
        Line::text("overall progress", action)
    }

    fn replicated(
        &mut self,
        replicas: u64,
        tasks: &[&Task],
        active: &BTreeSet<NodeId>,
        lines: &mut Vec<Line>,
    ) -> bool {
        if !self.initialized {
            lines.push(self.overall(0, replicas));
            if replicas <= MAX_PROGRESS_BARS {
                lines.extend((1..=replicas).map(|i| Line::text(&format!("{i}/{replicas}"), " ")));
            }
            self.initialized = true;
        }
        let by_slot = pick(
            tasks,
            |t| Some(t.slot),
            |t| t.node_id.as_ref().is_none_or(|n| active.contains(n)),
        );
        if self.done && by_slot.values().any(|t| t.status.state != TaskState::Running) {
            self.done = false;
        }
        let mut running = 0;
        for (slot, task) in &by_slot {
            let next = u64::try_from(self.slot_map.len()).unwrap_or(u64::MAX).saturating_add(1);
            let mapped = *self.slot_map.entry(*slot).or_insert(next);
            if !terminal(task.desired_state) && task.status.state == TaskState::Running {
                running += 1;
            }
            if !self.done && replicas <= MAX_PROGRESS_BARS && mapped <= replicas {
                lines.extend(task_line(&format!("{mapped}/{replicas}"), task));
            }
        }
        if !self.done {
            lines.push(self.overall(running, replicas));
            self.done = running == replicas;
        }
        running == replicas
    }

    fn global(
        &mut self,
        tasks: &[&Task],
        active: &BTreeSet<NodeId>,
        lines: &mut Vec<Line>,
    ) -> bool {
        let by_node = pick(tasks, |t| t.node_id.clone(), |_| true);
        let count = u64::try_from(by_node.len()).unwrap_or(u64::MAX);
        if !self.initialized {
            if count == 0 {
                lines.push(Line::text("overall progress", "waiting for new tasks"));
                return false;
            }
            lines.push(self.overall(0, count));
            self.initialized = true;
        }
        if self.done && by_node.values().any(|t| t.status.state != TaskState::Running) {
            self.done = false;
        }
        let mut running = 0;
        for (node, task) in by_node.iter().filter(|(n, _)| active.contains(*n)) {
            if !terminal(task.desired_state) && task.status.state == TaskState::Running {
                running += 1;
            }
            if !self.done && count <= MAX_PROGRESS_BARS {
                lines.extend(task_line(short_id(node.as_str()), task));
            }
        }
        if !self.done {
            lines.push(self.overall(running, count));
            self.done = running == count;
        }
        running == count
    }
}

/// One task per key (slot or node): the lowest desired state wins, then the lowest observed
/// state (Docker's `tasksBySlot` / `tasksByNode`); tasks in states progress ignores, and
/// those `keep` refuses, are left out.
fn pick<'a, K: Ord>(
    tasks: &[&'a Task],
    key: impl Fn(&Task) -> Option<K>,
    keep: impl Fn(&Task) -> bool,
) -> BTreeMap<K, &'a Task> {
    let mut by_key: BTreeMap<K, &Task> = BTreeMap::new();
    for t in tasks {
        if numbered(t.desired_state) == 0 || numbered(t.status.state) == 0 || !keep(t) {
            continue;
        }
        let Some(k) = key(t) else { continue };
        let better = by_key.get(&k).is_none_or(|e| {
            let (ed, td) = (numbered(e.desired_state), numbered(t.desired_state));
            ed > td || ed == td && numbered(e.status.state) > numbered(t.status.state)
        });
        if better {
            by_key.insert(k, t);
        }
    }
    by_key
}

/// A task's line: its error, or its state with a bar while it is on its way to RUNNING.
fn task_line(id: &str, task: &Task) -> Option<Line> {
    if !task.status.err.is_empty() {
        return Some(Line::text(id, trunc_error(&task.status.err)));
    }
    if terminal(task.desired_state) || terminal(task.status.state) {
        return None;
    }
    let action = format!("{:<LONGEST_STATE$}", task.status.state.as_str());
    Some(Line { id: id.to_owned(), action, bar: Some((numbered(task.status.state), MAX_PROGRESS)) })
}

/// Docker's `truncError`: newlines become spaces, and at most 75 characters are kept.
fn trunc_error(err: &str) -> String {
    let flat = err.replace('\n', " ");
    if flat.chars().count() > MAX_ERR_WIDTH {
        flat.chars().take(MAX_ERR_WIDTH - 1).collect::<String>() + "…"
    } else {
        flat
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
