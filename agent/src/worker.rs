//! The tasks of this node (swarmkit `agent/worker.go`): applies the dispatcher's
//! assignments, keeps one [`Runner`] per task, and after a restart finds the tasks it ran
//! again instead of starting duplicates.
//!
//! ```text
//! start:   tasks/<id>.json ─► prepared or later: runner (adopt: running? exited with what?)
//!                          └► not yet prepared: dormant until the dispatcher sends it again
//!          runtime leftovers no record names ─► removed
//! answer:  new task ─► TaskContext (configs, secrets placed) ─► runner
//!          changed task ─► its runner's desired state     gone ─► removed (stop, clean, forget)
//! ```

use crate::holdings::{Holdings, Stale};
use crate::outbox::Outbox;
use crate::runner::{Control, Runner, Shared};
use crate::runtime::{Runtime, TaskContext, TaskFile};
use crate::taskstore::Record;
use agent_core::TaskIdentity;
use agent_core::files::{FileError, FileKind, check_size, place_files};
use agent_core::logs::LogLimits;
use reconciler_api::dispatcher::{Assignments, AssignmentsKind, TaskAssignment};
use reconciler_types::{NodeId, TaskId, TaskState, TaskStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

struct Handle {
    control: watch::Sender<Control>,
    ctx: TaskContext,
}

struct State {
    holdings: Holdings,
    runners: BTreeMap<TaskId, Handle>,
    /// Saved tasks not yet prepared when the agent restarted: they wait for the dispatcher
    /// to send them again (with their configs and secrets), or are removed.
    dormant: BTreeMap<TaskId, Record>,
}

/// This node's tasks.
pub struct Worker<R: Runtime> {
    shared: Arc<Shared<R>>,
    node_id: NodeId,
    log_limits: LogLimits,
    state: Mutex<State>,
}

impl<R: Runtime> Worker<R> {
    /// A worker running tasks for `node_id` with `shared`'s runtime, store and outbox.
    pub fn new(shared: Shared<R>, node_id: NodeId, log_limits: LogLimits) -> Worker<R> {
        let state = State {
            holdings: Holdings::default(),
            runners: BTreeMap::new(),
            dormant: BTreeMap::new(),
        };
        Worker { shared: Arc::new(shared), node_id, log_limits, state: Mutex::new(state) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outbox status changes go to.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.shared.outbox
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<R> {
        &self.shared.rt
    }

    /// The generation to poll from (0: ask for a complete set).
    pub fn generation(&self) -> u64 {
        self.state().holdings.generation()
    }

    /// After a new session: the next poll asks for a complete set, and every task's status
    /// is reported again (the new leader may have missed some).
    pub fn new_session(&self) {
        self.reset_generation();
        for (id, status) in self.statuses() {
            self.shared.outbox.push(id, status);
        }
    }

    /// The next poll asks for a complete set (after a [`Stale`] answer).
    pub fn reset_generation(&self) {
        self.state().holdings.reset_generation();
    }

    /// Loads the saved tasks, finds them in the runtime, starts their runners, and removes
    /// what the runtime holds that no record names. Call once, before the first session.
    pub async fn start(&self) {
        let records = self.shared.store.load_all();
        let known: BTreeSet<String> =
            records.iter().map(|r| r.assignment.task.id.to_string()).collect();
        for record in records {
            let id = record.assignment.task.id.clone();
            if record.status.state < TaskState::Ready && !record.status.state.is_terminal() {
                self.state().dormant.insert(id, record);
                continue;
            }
            let (ctx, _) = self.context(&record.assignment, &Holdings::default());
            let desired = record.assignment.task.desired_state;
            let (tx, rx) = watch::channel(Control { desired, removed: false });
            let mut runner = Runner::new(self.shared.clone(), ctx.clone(), record, rx, None);
            runner.adopt().await;
            tokio::spawn(runner.run());
            self.state().runners.insert(id, Handle { control: tx, ctx });
        }
        match self.shared.rt.list().await {
            Ok(ids) => {
                for id in ids.into_iter().filter(|i| !known.contains(i)) {
                    tracing::info!(task = %id, "removing a task no record names");
                    if let Err(e) = self.shared.rt.remove_by_id(&id).await {
                        tracing::warn!(task = %id, error = %e, "cannot remove a leftover task");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the runtime's tasks"),
        }
    }

    /// Applies an answer of the dispatcher.
    ///
    /// # Errors
    /// [`Stale`]: an incremental answer for another generation (poll for a complete set).
    pub fn apply(&self, answer: Assignments) -> Result<(), Stale> {
        let complete = answer.kind == AssignmentsKind::Complete;
        let mut st = self.state();
        let applied = st.holdings.apply(answer)?;
        for t in applied.updated {
            self.update(&mut st, t);
        }
        let mut gone: Vec<TaskId> = applied.removed;
        if complete {
            let held: BTreeSet<TaskId> = st.holdings.tasks().map(|t| t.task.id.clone()).collect();
            gone.extend(st.runners.keys().filter(|id| !held.contains(*id)).cloned());
            gone.extend(st.dormant.keys().filter(|id| !held.contains(*id)).cloned());
        }
        for id in gone {
            self.remove(&mut st, &id);
        }
        Ok(())
    }

    fn update(&self, st: &mut State, t: TaskAssignment) {
        let id = t.task.id.clone();
        if let Some(h) = st.runners.get(&id) {
            // The desired state only moves forward (swarmkit ignores an older one).
            let desired = t.task.desired_state;
            h.control.send_if_modified(|c| {
                let later = desired > c.desired;
                if later {
                    c.desired = desired;
                }
                later
            });
            return;
        }
        let status = match st.dormant.remove(&id) {
            Some(saved) => saved.status,
            None => t.task.status.clone(),
        };
        let (ctx, resolve_error) = self.context(&t, &st.holdings);
        let record = Record { assignment: t, status };
        if let Err(e) = self.shared.store.save(&record) {
            tracing::warn!(task = %id, error = %e, "cannot save the task's record");
        }
        let control = Control { desired: record.assignment.task.desired_state, removed: false };
        let (tx, rx) = watch::channel(control);
        let runner = Runner::new(self.shared.clone(), ctx.clone(), record, rx, resolve_error);
        tokio::spawn(runner.run());
        st.runners.insert(id, Handle { control: tx, ctx });
    }

    fn remove(&self, st: &mut State, id: &TaskId) {
        if let Some(h) = st.runners.remove(id) {
            h.control.send_modify(|c| c.removed = true);
            return;
        }
        if st.dormant.remove(id).is_some() {
            let (rt, store, id) = (self.shared.rt.clone(), self.shared.store.clone(), id.clone());
            tokio::spawn(async move {
                if let Err(e) = rt.remove_by_id(id.as_str()).await {
                    tracing::warn!(task = %id, error = %e, "cannot remove a task");
                }
                let _ = store.remove(&id);
            });
        }
    }

    /// The context of a task this node runs (for its logs).
    pub fn task(&self, id: &TaskId) -> Option<TaskContext> {
        self.state().runners.get(id).map(|h| h.ctx.clone())
    }

    /// The latest status the agent saw of every task it runs.
    pub fn statuses(&self) -> Vec<(TaskId, TaskStatus)> {
        let ids: BTreeSet<TaskId> = self.state().runners.keys().cloned().collect();
        self.shared
            .store
            .load_all()
            .into_iter()
            .filter(|r| ids.contains(&r.assignment.task.id))
            .map(|r| (r.assignment.task.id, r.status))
            .collect()
    }

    /// Builds a task's context; the second value says why it cannot run, if it cannot.
    fn context(&self, t: &TaskAssignment, holdings: &Holdings) -> (TaskContext, Option<String>) {
        let spec = &t.task.spec;
        let mut problems = Vec::new();
        let log_limits =
            self.log_limits.with_driver(spec.log_driver.as_ref()).unwrap_or_else(|e| {
                problems.push(e.to_string());
                self.log_limits
            });
        let files = match place_files(&spec.container_spec) {
            Ok(placed) => placed
                .into_iter()
                .filter_map(|p| {
                    let data = match p.kind {
                        FileKind::Config => holdings.config(&p.name),
                        FileKind::Secret => holdings.secret(&p.name),
                    };
                    let checked = data
                        .ok_or_else(|| FileError::Missing {
                            kind: p.kind.as_str(),
                            name: p.name.clone(),
                        })
                        .and_then(|d| check_size(p.kind, &p.name, d.len()).map(|()| d.to_vec()));
                    match checked {
                        Ok(data) => Some(TaskFile { placed: p, data }),
                        Err(e) => {
                            problems.push(e.to_string());
                            None
                        }
                    }
                })
                .collect(),
            Err(e) => {
                problems.push(e.to_string());
                Vec::new()
            }
        };
        let ctx = TaskContext {
            who: TaskIdentity {
                task_id: t.task.id.clone(),
                service_name: t.service_name.clone(),
                service_id: t.task.service_id.to_string(),
                slot: t.task.slot,
                node_id: self.node_id.clone(),
            },
            spec: spec.clone(),
            service_labels: t.service_labels.clone(),
            ports: t.endpoint.ports.clone(),
            files,
            log_limits,
        };
        (ctx, (!problems.is_empty()).then(|| problems.join("; ")))
    }

    /// Stops following the tasks without stopping them (they keep running under their
    /// supervisors or the engine, for the next agent to adopt).
    pub fn detach(&self) {
        self.state().runners.clear();
    }
}
