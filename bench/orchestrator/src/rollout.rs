//! A rolling update driven to completion by the real driver over the replicated state, with
//! agents that start and stop tasks at once; each batch is timed on its own (the driver's
//! pass plus applying the batch), the agents' reports are not.

use anyhow::{Result, ensure};
use reconciler_orchestrator::driver::Driver;
use reconciler_orchestrator::state::{ClusterState, Expect, StoreCommand};
use reconciler_types::{
    MonoTime, ServiceId, TaskId, TaskState, TaskStatus, UpdateConfig, UpdateState,
};
use std::time::{Duration, Instant};

/// What one rollout cost.
pub struct Timing {
    /// The time of each batch (pass + apply).
    pub per_batch: Vec<Duration>,
    /// Batches that placed or created tasks for the update.
    pub batches: usize,
}

struct Harness {
    state: ClusterState,
    driver: Driver,
    index: u64,
}

impl Harness {
    fn write(&mut self, cmd: StoreCommand) -> Result<()> {
        self.index += 1;
        let response = self.state.apply(&cmd, self.index);
        self.driver.observe(&cmd, &response);
        ensure!(response.refusal.is_none(), "refused: {:?}", response.refusal);
        Ok(())
    }

    /// What agents report about the tasks a batch touched, at once.
    fn agents(&mut self, batch: &StoreCommand, now: MonoTime) -> Result<()> {
        let StoreCommand::Orchestrate { commands, .. } = batch else { return Ok(()) };
        let touched: Vec<TaskId> = commands
            .iter()
            .filter_map(|c| match c {
                StoreCommand::AssignTask { id, .. }
                | StoreCommand::SetTaskDesiredState { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        for id in touched {
            let Some(t) = self.state.task(&id) else { continue };
            let observed = match t.desired_state {
                _ if t.node_id.is_none() || t.status.state.is_terminal() => continue,
                TaskState::Running if t.status.state < TaskState::Running => TaskState::Running,
                TaskState::Ready if t.status.state < TaskState::Ready => TaskState::Ready,
                d if d >= TaskState::Shutdown => TaskState::Shutdown,
                _ => continue,
            };
            let status = TaskStatus { state: observed, timestamp: now, ..t.status.clone() };
            self.write(StoreCommand::SetTaskStatus { id, status: Box::new(status) })?;
        }
        Ok(())
    }
}

/// Updates every task of a `replicas`-slot service with `parallelism` workers.
pub fn rollout(mut state: ClusterState, parallelism: u64) -> Result<Timing> {
    let id = ServiceId::new("svc00000");
    let mut spec = state.services.get(&id).map(|s| s.spec.clone()).unwrap_or_default();
    spec.update_config = UpdateConfig { parallelism, ..UpdateConfig::default() };
    spec.task_template.container_spec.image = "app:2".into();
    state.last_index = 1;
    let mut h = Harness { state, driver: Driver::new(), index: 1 };
    h.driver.lead(1);
    h.write(StoreCommand::UpdateService {
        id: id.clone(),
        spec: Box::new(spec),
        expected: Expect::Any,
    })?;
    let mut timing = Timing { per_batch: Vec::new(), batches: 0 };
    let mut now = MonoTime::ZERO;
    for _ in 0..1_000_000 {
        let done =
            h.state.services.get(&id).and_then(|s| s.update_status.as_ref()).map(|s| s.state);
        if done == Some(UpdateState::Completed) {
            return Ok(timing);
        }
        let started = Instant::now();
        let out = h.driver.pass(&mut h.state, now);
        if out.batches.is_empty() {
            now = out.next_wake.filter(|w| *w > now).unwrap_or(now + Duration::from_millis(10));
            continue;
        }
        let mut puts = false;
        for batch in out.batches {
            h.index += 1;
            let response = h.state.apply(&batch, h.index);
            h.driver.observe(&batch, &response);
            ensure!(response.refusal.is_none(), "a batch was refused: {:?}", response.refusal);
            if let StoreCommand::Orchestrate { commands, .. } = &batch {
                puts |= commands.iter().any(|c| matches!(c, StoreCommand::PutTask { .. }));
            }
            h.agents(&batch, now)?;
        }
        timing.per_batch.push(started.elapsed());
        if puts {
            timing.batches += 1;
        }
    }
    anyhow::bail!("the rollout did not complete")
}
