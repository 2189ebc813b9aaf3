//! Seeded random deployments: a random cluster, random services and update configs, a
//! random new version (healthy, crashing or slow), injected failures (task crashes, node
//! loss, a leader change), and invariant checks while it runs and once it has settled.

use crate::{SimCluster, SimRng, Workload};
use reconciler_orchestrator::slot::SlotKey;
use reconciler_types::{
    FailureAction, MonoTime, NodeState, ServiceMode, ServiceSpec, TaskState, UpdateConfig,
    UpdateOrder, UpdateState,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a random run lasts (simulated).
pub const RUN_FOR: Duration = Duration::from_secs(400);

/// What a finished run looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Final update status per service (`nil` when none).
    pub statuses: BTreeMap<String, String>,
    /// The full narrative (for determinism checks and for reading a failing seed).
    pub log: Vec<String>,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn random_config(rng: &mut SimRng) -> UpdateConfig {
    UpdateConfig {
        parallelism: rng.below(4),
        delay: secs(rng.below(6)),
        failure_action: [FailureAction::Pause, FailureAction::Continue, FailureAction::Rollback]
            [rng.below(3) as usize],
        monitor: secs(1 + rng.below(6)),
        max_failure_ratio: [0.0, 0.2, 0.5][rng.below(3) as usize],
        order: if rng.chance(50) { UpdateOrder::StartFirst } else { UpdateOrder::StopFirst },
    }
}

fn random_workload(rng: &mut SimRng, healthy_percent: u64) -> Workload {
    let mut w = Workload {
        start_after: secs(rng.below(4)),
        stop_after: secs(rng.below(4)),
        ..Workload::default()
    };
    if !rng.chance(healthy_percent) {
        if rng.chance(50) {
            w.exit_after = Some((secs(rng.below(9)), 1));
        } else {
            w.fail_before_running = Some(secs(1 + rng.below(3)));
        }
    }
    w
}

fn build(rng: &mut SimRng) -> (SimCluster, Vec<String>) {
    let mut c = SimCluster::new();
    let nodes = 3 + rng.below(4);
    for i in 1..=nodes {
        let zone = ["a", "b"][rng.below(2) as usize].to_owned();
        c.add_node(&format!("n{i}"), |n| {
            n.spec.labels.insert("zone".into(), zone);
        });
    }
    c.workloads.insert("v1".into(), random_workload(rng, 100));
    c.workloads.insert("v2".into(), random_workload(rng, 60));
    let mut names = Vec::new();
    for i in 0..1 + rng.below(3) {
        let name = format!("s{i}");
        let mode = if rng.chance(20) {
            ServiceMode::Global
        } else {
            ServiceMode::Replicated { replicas: 1 + rng.below(6) }
        };
        let mut spec = ServiceSpec { name: name.clone(), mode, ..ServiceSpec::default() };
        spec.task_template.container_spec.image = "v1".into();
        spec.update_config = random_config(rng);
        spec.rollback_config =
            UpdateConfig { failure_action: FailureAction::Pause, ..random_config(rng) };
        c.create_service(&name, spec);
        names.push(name);
    }
    (c, names)
}

/// Checks that hold at every moment.
fn check_always(c: &SimCluster) -> Result<(), String> {
    for (id, record) in c.state.rollouts.iter() {
        let run = &record.rollout;
        if run.in_flight() > run.capacity() {
            return Err(format!(
                "{id}: {} slots in flight with {} workers",
                run.in_flight(),
                run.capacity()
            ));
        }
    }
    for t in c.state.all_tasks() {
        if t.status.state == TaskState::Assigned
            && let Some(n) = t.node_id.as_ref().and_then(|n| c.state.node(n))
            && n.status.state == NodeState::Unknown
        {
            return Err(format!("{} assigned to a node in unknown state", t.id));
        }
    }
    Ok(())
}

/// Checks once the run has settled.
fn check_settled(c: &SimCluster, names: &[String]) -> Result<(), String> {
    for name in names {
        let svc = &c.state.services[&reconciler_types::ServiceId::new(name.as_str())];
        let state = svc.update_status.as_ref().map(|s| s.state);
        if state == Some(UpdateState::Updating) || state == Some(UpdateState::RollbackStarted) {
            return Err(format!("{name}: still {} long after the update", c.status_line(name)));
        }
        let converged =
            matches!(state, None | Some(UpdateState::Completed | UpdateState::RollbackCompleted));
        let mut wanted: BTreeMap<SlotKey, usize> = BTreeMap::new();
        let mut outdated = Vec::new();
        let mut current_running = std::collections::BTreeSet::new();
        for t in c.tasks_of(name) {
            let on_live_node = !c.state.node_lost(t.node_id.as_ref());
            let Some(slot) = SlotKey::of(t) else { continue };
            if t.spec_version == svc.spec_version && t.status.state == TaskState::Running {
                current_running.insert(slot.clone());
            }
            if t.desired_state == TaskState::Running
                && on_live_node
                && !t.status.state.is_terminal()
            {
                if t.spec_version != svc.spec_version {
                    outdated.push((slot.clone(), t.id.clone(), t.spec_version));
                }
                if t.status.state == TaskState::Running {
                    *wanted.entry(slot).or_insert(0) += 1;
                }
            }
        }
        // An outdated task may keep serving only where no task of the current spec ever came
        // up (a start-first update whose new tasks keep failing, as in Swarm's S26).
        if converged
            && let Some((slot, id, v)) =
                outdated.iter().find(|(s, _, _)| current_running.contains(s))
        {
            return Err(format!(
                "{name}: {state:?} but {id} in slot {slot} runs spec v{v} not v{}",
                svc.spec_version
            ));
        }
        if converged && let Some((slot, n)) = wanted.iter().find(|(_, n)| **n > 1) {
            return Err(format!("{name}: slot {slot} has {n} running tasks after convergence"));
        }
    }
    Ok(())
}

/// Runs one seeded deployment; `Err` names the broken invariant.
///
/// # Errors
/// The first invariant that failed, with the time.
pub fn run(seed: u64) -> Result<Outcome, String> {
    simulate(seed).1
}

/// The narrative of a seeded run, whatever its outcome (to read a failing seed).
pub fn narrative(seed: u64) -> Vec<String> {
    simulate(seed).0.log
}

fn simulate(seed: u64) -> (SimCluster, Result<Outcome, String>) {
    let mut c = SimCluster::new();
    let result = simulate_into(seed, &mut c);
    (c, result)
}

fn simulate_into(seed: u64, out: &mut SimCluster) -> Result<Outcome, String> {
    let mut rng = SimRng::new(seed);
    let (c, names) = build(&mut rng);
    *out = c;
    let c = out;
    let update_at = 5 + rng.below(20);
    let crash_at = update_at + rng.below(60);
    let node_loss_at = (rng.chance(30)).then(|| 10 + rng.below(100));
    let failover_at = (rng.chance(30)).then(|| update_at + rng.below(40));
    let end = RUN_FOR.as_secs();
    for t in 0..=end {
        let now = MonoTime::from_secs(t);
        if t == update_at {
            for name in &names {
                c.update_service(name, |s| s.task_template.container_spec.image = "v2".into())
                    .map_err(|e| e.to_string())?;
            }
        }
        if t == crash_at {
            let victim = c
                .state
                .all_tasks()
                .find(|t| t.status.state == TaskState::Running)
                .map(|t| t.id.clone());
            if let Some(id) = victim {
                c.report(&id, TaskState::Failed);
            }
        }
        if node_loss_at == Some(t) {
            let node = format!("n{}", 1 + rng.below(c.state.nodes.len() as u64));
            c.stop_heartbeats(&node);
        }
        if failover_at == Some(t) {
            c.leaderless_until(now + secs(1 + rng.below(10)));
            c.elect_new_leader();
        }
        c.run_until(now.max(c.now()));
        check_always(c).map_err(|e| format!("t={t}: {e}"))?;
    }
    check_settled(c, &names).map_err(|e| format!("settled at t={end}: {e}"))?;
    let statuses = names.iter().map(|n| (n.clone(), c.status_line(n))).collect();
    Ok(Outcome { statuses, log: c.log.clone() })
}
