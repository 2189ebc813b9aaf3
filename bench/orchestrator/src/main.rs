//! Benchmarks of flotilla's pure orchestration core and its replicated model. Run in release:
//!
//! ```text
//! cargo run --release -p bench-orchestrator
//! ```
//!
//! Prints the median of several runs for: scheduling 50,000 tasks onto 1,000 nodes with a
//! constraint and a spread preference, checked to honour both (goal < 1 s); one reconcile of
//! 5,000 unchanged services, and a new leader's whole first pass over them (goal < 50 ms); the
//! cost of each batch of a 1,000-slot rolling update, measured batch by batch (goal < 1 ms);
//! applying a 1,000-decision batch to a state of 100,000 tasks, accepted and refused, against
//! what a whole copy of that state costs; the overhead of a tentative pass (the leader's
//! consistent read without a copy) and a one-event pass at 100,000 tasks; the leader's pass
//! that creates and places every task of a scale from 0 to 100,000 replicas on 1,000 nodes.

mod rollout;
mod world;

use anyhow::{Result, ensure};
use reconciler_orchestrator::driver::Driver;
use reconciler_orchestrator::orchestrator::{self, Event};
use reconciler_orchestrator::pass::Scratch;
use reconciler_orchestrator::scheduler;
use reconciler_orchestrator::slot::TaskIdAllocator;
use reconciler_orchestrator::state::{ClusterState, Fence, StoreCommand};
use reconciler_types::{MonoTime, NodeRole, ServiceId, TaskId, TaskState, TaskStatus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Every placement went to a worker, and every service has the same number of tasks in each
/// zone (the spread preference), 1,000 / 5.
fn check_placement(state: &ClusterState, commands: &[StoreCommand]) -> Result<()> {
    let mut per_zone: BTreeMap<(&ServiceId, &str), usize> = BTreeMap::new();
    for c in commands {
        let StoreCommand::AssignTask { id, node, .. } = c else { continue };
        let n = state.node(node).ok_or_else(|| anyhow::anyhow!("unknown node {node}"))?;
        ensure!(
            n.spec.role == NodeRole::Worker,
            "{id} placed on manager {node} despite node.role==worker"
        );
        let task = state.task(id).ok_or_else(|| anyhow::anyhow!("unknown task {id}"))?;
        let zone = n.spec.labels.get("zone").map_or("", String::as_str);
        *per_zone.entry((&task.service_id, zone)).or_insert(0) += 1;
    }
    ensure!(per_zone.len() == 50 * 5, "{} (service, zone) pairs used, want 250", per_zone.len());
    let uneven = per_zone.iter().find(|(_, n)| **n != 200);
    ensure!(uneven.is_none(), "spread not honoured: {uneven:?} (want 200 per zone)");
    Ok(())
}

fn bench_scheduler() -> Result<Duration> {
    let state = world::scheduling();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let pass = scheduler::schedule(&state, MonoTime::ZERO);
        times.push(start.elapsed());
        let assigned =
            pass.commands.iter().filter(|c| matches!(c, StoreCommand::AssignTask { .. })).count();
        ensure!(assigned == 50_000, "only {assigned} of 50000 tasks placed");
        check_placement(&state, &pass.commands)?;
    }
    Ok(median(times))
}

/// One reconcile of every service, and a new leader's whole first pass.
fn bench_reconcile() -> Result<(Duration, Duration)> {
    let mut state = world::steady(5000, 2);
    let (mut reconcile, mut first_pass) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let ids = TaskIdAllocator::starting_at(state.counters.next_task_id);
        let mut scratch = Scratch::new(MonoTime::ZERO, ids);
        let mut out = orchestrator::handle(&state, &Event::ReconcileAll, &mut scratch);
        out.extend(scratch.flush(&state));
        reconcile.push(start.elapsed());
        ensure!(out.is_empty(), "an unchanged cluster produced {} commands", out.len());
        let mut driver = Driver::new();
        driver.lead(1);
        let start = Instant::now();
        let pass = driver.pass(&mut state, MonoTime::ZERO);
        first_pass.push(start.elapsed());
        let decided: usize = pass
            .batches
            .iter()
            .filter_map(|b| match b {
                StoreCommand::Orchestrate { commands, .. } => Some(commands.len()),
                _ => None,
            })
            .sum();
        ensure!(
            decided == 0,
            "a new leader's pass over an unchanged cluster decided {decided} things"
        );
    }
    Ok((median(reconcile), median(first_pass)))
}

fn bench_rollout() -> Result<(Duration, usize)> {
    let mut medians = Vec::new();
    let mut batches = 0;
    for _ in 0..RUNS {
        let timing = rollout::rollout(world::steady(1, 1000), 10)?;
        ensure!(
            timing.batches >= 100,
            "expected at least 100 rollout batches, got {}",
            timing.batches
        );
        batches = timing.per_batch.len();
        medians.push(median(timing.per_batch));
    }
    Ok((median(medians), batches))
}

/// A batch of 500 new tasks and 500 desired-state changes, fenced as a new leader's first.
fn decisions(state: &ClusterState, refused: bool) -> StoreCommand {
    let start = state.counters.next_task_id;
    let mut ids = TaskIdAllocator::starting_at(start);
    let template = state.tasks.values().next().map(|r| r.task.clone()).unwrap_or_default();
    let mut commands: Vec<StoreCommand> = (0..500)
        .map(|_| {
            StoreCommand::create_task(reconciler_types::Task {
                id: ids.alloc(),
                ..template.clone()
            })
        })
        .collect();
    let existing = state.tasks.keys().step_by(150).take(500);
    commands.extend(existing.map(|id| StoreCommand::set_desired(id, TaskState::Shutdown)));
    if refused {
        commands.push(StoreCommand::create_task(template));
    }
    let fence = Fence { epoch: 1, claim: true, next_task_id: start, task_ids: ids.next - start };
    StoreCommand::Orchestrate { fence, commands }
}

struct ApplyCost {
    accepted: Duration,
    refused: Duration,
    clone: Duration,
}

fn bench_apply() -> Result<ApplyCost> {
    let base = world::steady(1000, 100);
    ensure!(base.tasks.len() == 100_000, "{} tasks", base.tasks.len());
    let (mut accepted, mut refused, mut clone) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        let mut state = base.clone();
        clone.push(start.elapsed());
        let batch = decisions(&state, false);
        let start = Instant::now();
        let r = state.apply(&batch, 2);
        accepted.push(start.elapsed());
        ensure!(r.refusal.is_none() && state.tasks.len() == 100_500, "{:?}", r.refusal);
        let mut state = base.clone();
        let batch = decisions(&state, true);
        let start = Instant::now();
        let r = state.apply(&batch, 2);
        refused.push(start.elapsed());
        ensure!(
            r.refusal.is_some() && state.tasks.len() == 100_000,
            "the refused batch left changes"
        );
    }
    Ok(ApplyCost { accepted: median(accepted), refused: median(refused), clone: median(clone) })
}

/// The tentative pass's own overhead, and a pass over one agent report, at 100,000 tasks.
fn bench_pass() -> Result<(Duration, Duration)> {
    let mut state = world::steady(1000, 100);
    let mut driver = Driver::new();
    driver.lead(1);
    let out = driver.pass(&mut state, MonoTime::ZERO);
    ensure!(!out.batches.is_empty(), "no claim");
    for batch in out.batches {
        let response = state.apply(&batch, state.last_index + 1);
        driver.observe(&batch, &response);
    }
    let (mut empty, mut one) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let start = Instant::now();
        state.tentatively(|_| ());
        empty.push(start.elapsed());
        let id = TaskId(format!("t{:06}", i * 7));
        let running = state.task(&id).map(|t| t.status.clone()).unwrap_or_default();
        let status = TaskStatus { state: TaskState::Failed, ..running };
        let report = StoreCommand::SetTaskStatus { id, status: Box::new(status) };
        let index = state.last_index + 1;
        let r = state.apply(&report, index);
        driver.observe(&report, &r);
        let start = Instant::now();
        let out = driver.pass(&mut state, MonoTime::from_secs(1));
        one.push(start.elapsed());
        ensure!(!out.batches.is_empty(), "a failed task made no decision");
        for batch in out.batches {
            let r = state.apply(&batch, state.last_index + 1);
            driver.observe(&batch, &r);
            ensure!(r.refusal.is_none(), "{:?}", r.refusal);
        }
    }
    Ok((median(empty), median(one)))
}

/// The leader's pass for `service scale` 0 → 100,000 on 1,000 nodes: every task created and
/// placed (what `bench-scale` waits on before the first entry is written).
fn bench_scale_pass() -> Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let mut state = world::steady(1, 0);
        let mut driver = Driver::new();
        driver.lead(1);
        for batch in driver.pass(&mut state, MonoTime::ZERO).batches {
            let response = state.apply(&batch, state.last_index + 1);
            driver.observe(&batch, &response);
        }
        let service = state.services.values().next().map(|s| (s.id.clone(), s.version));
        let Some((id, version)) = service else { anyhow::bail!("no service") };
        let update = StoreCommand::UpdateService {
            id,
            spec: Box::new(world::spec("svc0", 100_000)),
            expected: reconciler_orchestrator::state::Expect::Version(version),
        };
        let response = state.apply(&update, state.last_index + 1);
        ensure!(response.refusal.is_none(), "{:?}", response.refusal);
        driver.observe(&update, &response);
        let start = Instant::now();
        let out = driver.pass(&mut state, MonoTime::from_secs(1));
        times.push(start.elapsed());
        let decided: usize = out
            .batches
            .iter()
            .map(|b| match b {
                StoreCommand::Orchestrate { commands, .. } => commands.len(),
                _ => 0,
            })
            .sum();
        ensure!(
            decided == 100_000,
            "the scale pass decided {decided} things (one creation on its node per task)"
        );
    }
    Ok(median(times))
}

fn main() -> Result<()> {
    println!("flotilla orchestration core, median of {RUNS} runs (release build)");
    let s = bench_scheduler()?;
    println!(
        "schedule 50,000 tasks onto 1,000 nodes (constraint + spread, both checked): {:>8.1} ms  (goal < 1000 ms)",
        ms(s)
    );
    let (r, p) = bench_reconcile()?;
    println!(
        "reconcile 5,000 unchanged services:                                     {:>8.1} ms  (goal < 50 ms)",
        ms(r)
    );
    println!(
        "a new leader's first pass over them (restart check, reconcile, schedule):{:>8.1} ms  (goal < 50 ms)",
        ms(p)
    );
    let (b, n) = bench_rollout()?;
    println!(
        "rolling update of 1,000 slots, parallelism 10: per batch (pass + apply):  {:>8.1} µs  (goal < 1000 µs; {n} batches)",
        b.as_secs_f64() * 1e6
    );
    let a = bench_apply()?;
    println!(
        "apply a 1,000-decision batch at 100,000 tasks:                           {:>8.3} ms",
        ms(a.accepted)
    );
    println!(
        "the same batch refused by its last decision (undone):                    {:>8.3} ms",
        ms(a.refused)
    );
    println!(
        "a whole copy of that state (what each batch and each read cost before):  {:>8.1} ms",
        ms(a.clone)
    );
    let (e, o) = bench_pass()?;
    println!(
        "a tentative pass's own cost at 100,000 tasks (read without a copy):      {:>8.3} ms",
        ms(e)
    );
    println!(
        "a driver pass over one failed task at 100,000 tasks (with scheduling):   {:>8.1} ms",
        ms(o)
    );
    let p = bench_scale_pass()?;
    println!(
        "the leader's pass for a scale 0 -> 100,000 on 1,000 nodes (create, place): {:>8.1} ms",
        ms(p)
    );
    Ok(())
}
