//! Seeded random deployments: a random cluster (some nodes register late), random services
//! and update configs, a random new version (healthy, crashing, failing its health check or
//! slow), injected failures (a task crash, node loss, a leader change, a deposed leader's
//! batch arriving after its successor's), then the operator's fix (a healthy version) and
//! convergence. The invariants are the harness's own ([`crate::invariants`]).

use crate::invariants::{check_converged, check_history};
use crate::{SimCluster, SimRng, Workload};
use reconciler_orchestrator::state::Refusal;
use reconciler_types::{
    FailureAction, HealthConfig, MonoTime, Node, NodeId, NodeState, ServiceMode, ServiceSpec,
    TaskState, UpdateConfig, UpdateOrder,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a random run lasts before the operator's fix (simulated).
pub const RUN_FOR: Duration = Duration::from_secs(400);

/// How long the fix is given to converge.
pub const FIX_FOR: Duration = Duration::from_secs(600);

/// What a finished run looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Update status per service before the fix (`nil` when none).
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
            [usize::try_from(rng.below(3)).unwrap_or(0)],
        monitor: secs(1 + rng.below(6)),
        max_failure_ratio: [0.0, 0.2, 0.5][usize::try_from(rng.below(3)).unwrap_or(0)],
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
        match rng.below(3) {
            0 => w.exit_after = Some((secs(rng.below(9)), 1)),
            1 => w.fail_before_running = Some(secs(1 + rng.below(3))),
            _ => w.unhealthy = true,
        }
    }
    w
}

/// A described node `id` with a zone label.
fn node(id: &str, zone: &str) -> Node {
    let mut n = Node { id: NodeId::new(id), ..Node::default() };
    n.description.hostname = id.to_owned();
    n.description.nano_cpus = 4_000_000_000;
    n.description.memory_bytes = 8 << 30;
    n.status.state = NodeState::Ready;
    n.spec.labels.insert("zone".into(), zone.to_owned());
    n
}

fn build(rng: &mut SimRng) -> (SimCluster, Vec<String>) {
    let mut c = SimCluster::new();
    for i in 1..=3 + rng.below(4) {
        let zone = ["a", "b"][usize::try_from(rng.below(2)).unwrap_or(0)];
        // Some nodes join now but register (describe themselves, READY) only later.
        let late = rng.chance(30).then(|| secs(1 + rng.below(40)));
        c.join_node(node(&format!("n{i}"), zone), late);
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

/// The v2 spec: the new image, and for some seeds a health check (which v2 may fail).
fn to_v2(rng: &mut SimRng, spec: &mut ServiceSpec) {
    spec.task_template.container_spec.image = "v2".into();
    if rng.chance(30) {
        spec.task_template.container_spec.healthcheck = Some(HealthConfig {
            test: vec!["CMD".into(), "probe".into()],
            interval: Some(secs(1 + rng.below(5))),
            retries: Some(1 + rng.below(3)),
            ..HealthConfig::default()
        });
    }
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

/// A leader change at `t`: the deposed leader's next batch (if it had one) is written after
/// its successor's claim, and must be refused.
fn fail_over(c: &mut SimCluster, rng: &mut SimRng, now: MonoTime) -> Result<(), String> {
    let mut deposed = c.driver.clone();
    c.leaderless_until(now + secs(1 + rng.below(10)));
    let later = c.now();
    let stale = deposed.pass(&mut c.state, later).batches.into_iter().next();
    c.elect_new_leader();
    if let Some(batch) = stale {
        match c.write(batch) {
            Err(Refusal::Fenced { .. }) => {}
            other => return Err(format!("a deposed leader's batch was not fenced: {other:?}")),
        }
    }
    Ok(())
}

fn simulate_into(seed: u64, out: &mut SimCluster) -> Result<Outcome, String> {
    let mut rng = SimRng::new(seed);
    let (c, names) = build(&mut rng);
    *out = c;
    let c = out;
    let update_at = 5 + rng.below(20);
    let crash_at = update_at + rng.below(60);
    let node_loss_at = (rng.chance(30)).then(|| 10 + rng.below(100));
    let failover_at = (rng.chance(40)).then(|| update_at + rng.below(40));
    for t in 0..=RUN_FOR.as_secs() {
        let now = MonoTime::from_secs(t);
        if t == update_at {
            for name in &names {
                c.update_service(name, |s| to_v2(&mut rng, s)).map_err(|e| e.to_string())?;
            }
        }
        if t == crash_at {
            let victim = c.state.all_tasks().find(|t| t.status.state == TaskState::Running);
            if let Some(id) = victim.map(|t| t.id.clone()) {
                c.report(&id, TaskState::Failed);
            }
        }
        if node_loss_at == Some(t) {
            let node = format!("n{}", 1 + rng.below(c.state.nodes.len() as u64));
            c.stop_heartbeats(&node);
        }
        if failover_at == Some(t) {
            fail_over(c, &mut rng, now)?;
        }
        c.run_until(now.max(c.now()));
    }
    let statuses = names.iter().map(|n| (n.clone(), c.status_line(n))).collect();
    fix(c, &names)?;
    if !c.anomalies.is_empty() {
        return Err(format!("anomalies: {:?}", c.anomalies));
    }
    check_history(&c.history)?;
    check_converged(c).map_err(|e| format!("after the fix: {e}"))?;
    Ok(Outcome { statuses, log: c.log.clone() })
}

/// The operator's fix: a healthy version of every service, then time to converge.
fn fix(c: &mut SimCluster, names: &[String]) -> Result<(), String> {
    c.workloads.insert("v3".into(), Workload::default());
    for name in names {
        c.update_service(name, |s| {
            s.task_template.container_spec.image = "v3".into();
            s.task_template.container_spec.healthcheck = None;
        })
        .map_err(|e| e.to_string())?;
    }
    let end = c.now() + FIX_FOR;
    c.run_until(end);
    Ok(())
}
