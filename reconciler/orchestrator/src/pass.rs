//! The context of the orchestrator's work. [`Scratch`] lasts a whole driver pass: the time,
//! the task-id allocator, and the rollout runs touched (each read from the state once,
//! changed in place by every handler of the pass, written back once at its end). [`Pass`] is
//! one handler's view of it, handed whole to every part of the orchestrator (orchestrators,
//! updater, restart supervisor), with the decisions that handler makes.

use crate::rollout::Rollout;
use crate::slot::TaskIdAllocator;
use crate::state::{ClusterState, StoreCommand};
use reconciler_types::{MonoTime, ServiceId, TaskId, TaskState};
use std::collections::BTreeMap;

/// What lasts for one driver pass.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    /// The time of the pass.
    pub now: MonoTime,
    /// Where new task ids come from.
    pub ids: TaskIdAllocator,
    runs: BTreeMap<ServiceId, Rollout>,
}

impl Scratch {
    /// A pass at `now`, allocating task ids from `ids`.
    pub fn new(now: MonoTime, ids: TaskIdAllocator) -> Self {
        Scratch { now, ids, runs: BTreeMap::new() }
    }

    /// The end of the pass: every run that differs from the state's, to be written (in
    /// service order).
    pub fn flush(&mut self, state: &ClusterState) -> Vec<StoreCommand> {
        let runs = std::mem::take(&mut self.runs);
        let changed = runs
            .into_values()
            .filter(|r| state.rollouts.get(r.service()).is_none_or(|stored| stored.rollout != *r));
        changed.map(StoreCommand::put_rollout).collect()
    }

    /// The services whose run this pass touched.
    pub fn touched(&self) -> impl Iterator<Item = &ServiceId> {
        self.runs.keys()
    }
}

/// One handler's working state.
pub struct Pass<'a> {
    /// The cluster as it is, including the decisions of the driver's earlier handlers (the
    /// runs excepted: read them through [`Pass::run`]).
    pub state: &'a ClusterState,
    /// The time.
    pub now: MonoTime,
    /// Where new task ids come from.
    pub ids: TaskIdAllocator,
    /// The decisions so far, in order.
    pub out: Vec<StoreCommand>,
    runs: &'a mut BTreeMap<ServiceId, Rollout>,
}

impl<'a> Pass<'a> {
    /// A handler's context over `state`, within the pass `scratch`.
    pub fn new(state: &'a ClusterState, scratch: &'a mut Scratch) -> Self {
        let (now, ids) = (scratch.now, scratch.ids);
        Pass { state, now, ids, out: Vec::new(), runs: &mut scratch.runs }
    }

    /// The decisions (a desired state decided twice for a task, by the rollout and by the
    /// orchestrator, written once), and the allocator to continue from.
    pub fn finish(self) -> (Vec<StoreCommand>, TaskIdAllocator) {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = self.out;
        out.retain(|c| match c {
            StoreCommand::SetTaskDesiredState { id, state, .. } => {
                seen.insert((id.clone(), *state))
            }
            _ => true,
        });
        (out, self.ids)
    }

    /// Decides a task's desired state.
    pub fn desire(&mut self, task: &TaskId, state: TaskState) {
        self.out.push(StoreCommand::set_desired(task, state));
    }

    /// The service's run as this pass sees it.
    pub fn run(&self, service: &ServiceId) -> Option<&Rollout> {
        self.runs.get(service).or_else(|| self.state.rollouts.get(service).map(|r| &r.rollout))
    }

    /// The service's run, to change (copied from the state the first time in the pass).
    pub fn run_mut(&mut self, service: &ServiceId) -> Option<&mut Rollout> {
        if !self.runs.contains_key(service) {
            let run = self.state.rollouts.get(service)?.rollout.clone();
            self.runs.insert(service.clone(), run);
        }
        self.runs.get_mut(service)
    }

    /// Replaces the service's run for this pass.
    pub fn set_run(&mut self, service: &ServiceId, run: Rollout) {
        self.runs.insert(service.clone(), run);
    }

    /// The services with a run, stored or touched in this pass.
    pub fn services_with_runs(&self) -> Vec<ServiceId> {
        let stored = self.state.rollouts.keys();
        let mut ids: Vec<ServiceId> = stored.chain(self.runs.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        ids
    }
}
