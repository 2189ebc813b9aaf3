//! Running a task's health check: probes at the times the pure
//! [`agent_core::HealthTracker`] asks for, through the runtime (a host command for the process
//! runtime, an `exec` in the container for docker), until the task's health is decided.

use crate::runtime::{Runtime, TaskContext};
use agent_core::{Health, HealthPolicy, HealthTracker};
use reconciler_types::{Clock, HealthConfig};

/// The error of a task stopped for failing its health check, as Swarm words it for its
/// Docker executor (`docs/swarm-semantics.md` §1.3, S53): `dockerexec: unhealthy container`;
/// the process runtime says `processexec:`.
pub fn unhealthy_error(runtime: &str) -> String {
    format!("{runtime}exec: unhealthy container")
}

/// The task's health check: its spec's, else its image's; `None` without one.
///
/// # Errors
/// A malformed test (the task cannot run as asked).
pub async fn policy<R: Runtime>(
    rt: &R,
    task: &TaskContext,
) -> Result<Option<HealthPolicy>, String> {
    let config: Option<HealthConfig> = match &task.spec.container_spec.healthcheck {
        Some(c) => Some(c.clone()),
        None => rt.image_health(task).await,
    };
    match config {
        None => Ok(None),
        Some(c) => HealthPolicy::from_config(&c).map_err(|e| e.to_string()),
    }
}

/// Probes until the tracker's health is no longer `from` (Starting → decided, or Healthy →
/// Unhealthy); answers the new health. Probe errors count as failed probes.
pub async fn probe_until_changed<R: Runtime>(
    rt: &R,
    task: &TaskContext,
    tracker: &mut HealthTracker,
    clock: &impl Clock,
) -> Health {
    let from = tracker.health();
    let mut previous_end = clock.now();
    loop {
        let at = tracker.next_probe_at(previous_end);
        let wait = at.saturating_since(clock.now());
        tokio::time::sleep(wait).await;
        let began = clock.now();
        let policy = tracker.policy().clone();
        let (passed, output) = match rt.probe(task, &policy.test, policy.timeout).await {
            Ok(r) => (r.passed, r.output),
            Err(e) => (false, e.message),
        };
        let health = tracker.record(passed, &output, began);
        previous_end = clock.now();
        if health != from {
            tracing::debug!(task = %task.who.task_id, ?health, "health changed");
            return health;
        }
    }
}
