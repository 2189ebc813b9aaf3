//! The context of one event handler, handed whole to every part of the orchestrator
//! (orchestrators, updater, restart supervisor): the state to read, the time, the task-id
//! allocator, the decisions so far, and the rollout runs this handler touched.

use crate::rollout::Rollout;
use crate::slot::TaskIdAllocator;
use crate::state::{ClusterState, StoreCommand};
use reconciler_types::{MonoTime, ServiceId, TaskId, TaskState};
use std::collections::BTreeMap;

/// One handler's working state.
pub struct Pass<'a> {
    /// The cluster as it is, including the decisions of the driver's earlier handlers.
    pub state: &'a ClusterState,
    /// The time.
    pub now: MonoTime,
    /// Where new task ids come from.
    pub ids: TaskIdAllocator,
    /// The decisions so far, in order.
    pub out: Vec<StoreCommand>,
    /// The rollout runs touched: read from the state once, changed in place, written back
    /// by [`Pass::finish`] (so two inputs to the same run in one handler do not overwrite
    /// each other).
    runs: BTreeMap<ServiceId, Rollout>,
}

impl<'a> Pass<'a> {
    /// A handler's context over `state` at `now`.
    pub fn new(state: &'a ClusterState, now: MonoTime, ids: TaskIdAllocator) -> Self {
        Pass { state, now, ids, out: Vec::new(), runs: BTreeMap::new() }
    }

    /// The decisions, every run that changed written back last (in service order), and the
    /// allocator to continue from.
    pub fn finish(mut self) -> (Vec<StoreCommand>, TaskIdAllocator) {
        let state = self.state;
        let changed = self
            .runs
            .into_values()
            .filter(|r| state.rollouts.get(r.service()).is_none_or(|stored| stored.rollout != *r));
        self.out.extend(changed.map(StoreCommand::put_rollout));
        (self.out, self.ids)
    }

    /// Decides a task's desired state.
    pub fn desire(&mut self, task: &TaskId, state: TaskState) {
        self.out.push(StoreCommand::set_desired(task, state));
    }

    /// The service's run as this handler sees it.
    pub fn run(&self, service: &ServiceId) -> Option<&Rollout> {
        self.runs.get(service).or_else(|| self.state.rollouts.get(service).map(|r| &r.rollout))
    }

    /// The service's run, to change (copied from the state the first time).
    pub fn run_mut(&mut self, service: &ServiceId) -> Option<&mut Rollout> {
        if !self.runs.contains_key(service) {
            let run = self.state.rollouts.get(service)?.rollout.clone();
            self.runs.insert(service.clone(), run);
        }
        self.runs.get_mut(service)
    }

    /// Replaces (or, with `None`, forgets) the service's run for this handler.
    pub fn set_run(&mut self, service: &ServiceId, run: Option<Rollout>) {
        match run {
            Some(r) => {
                self.runs.insert(service.clone(), r);
            }
            None => {
                self.runs.remove(service);
            }
        }
    }
}
