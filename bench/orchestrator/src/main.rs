//! Benchmarks of flotilla's pure orchestration core. Run in release:
//!
//! ```text
//! cargo run --release -p bench-orchestrator
//! ```
//!
//! Prints the median of several runs for: scheduling 50,000 tasks onto 1,000 nodes with a
//! constraint and a spread preference (goal < 1 s); one reconcile pass over 5,000 unchanged
//! services (goal < 50 ms); the decision overhead per batch of a rollout (goal < 1 ms).

use anyhow::{Result, ensure};
use reconciler_orchestrator::orchestrator;
use reconciler_orchestrator::rollout::{Input, Rollout, RolloutTarget, SlotSnapshot, SlotTask};
use reconciler_orchestrator::scheduler;
use reconciler_orchestrator::service::ServiceRecord;
use reconciler_orchestrator::slot::{SlotKey, TaskIdAllocator};
use reconciler_orchestrator::view::{ClusterView, StoreChange};
use reconciler_types::{
    MonoTime, Node, NodeId, NodeRole, NodeState, PlacementPreference, ServiceId, ServiceMode,
    ServiceSpec, Task, TaskId, TaskState, TaskStatus, UpdateConfig,
};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn nodes(view: &mut ClusterView, count: usize) {
    for i in 0..count {
        let mut n = Node { id: NodeId(format!("node{i:04}")), ..Node::default() };
        n.description.hostname = n.id.0.clone();
        n.description.nano_cpus = 64_000_000_000;
        n.description.memory_bytes = 256 << 30;
        n.spec.role = if i % 10 == 0 { NodeRole::Manager } else { NodeRole::Worker };
        n.spec.labels.insert("zone".into(), format!("z{}", i % 5));
        n.status.state = NodeState::Ready;
        view.nodes.insert(n.id.clone(), n);
    }
}

fn spec(name: &str, replicas: u64) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: name.into(),
        mode: ServiceMode::Replicated { replicas },
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = "app:1".into();
    s
}

fn task(
    service: &ServiceRecord,
    slot: u64,
    id: &mut TaskIdAllocator,
    node: Option<NodeId>,
) -> Task {
    let running = node.is_some();
    Task {
        id: id.alloc(),
        service_id: service.id.clone(),
        slot,
        node_id: node,
        spec_version: service.spec_version,
        spec: service.spec.task_template.clone(),
        desired_state: TaskState::Running,
        status: TaskStatus {
            state: if running { TaskState::Running } else { TaskState::Pending },
            ..TaskStatus::default()
        },
    }
}

/// 50 services × 1,000 pending tasks, each constrained to workers and spread over 5 zones.
fn scheduling_view() -> ClusterView {
    let mut view = ClusterView::default();
    nodes(&mut view, 1000);
    let mut ids = TaskIdAllocator::default();
    for s in 0..50 {
        let mut sp = spec(&format!("svc{s}"), 1000);
        sp.task_template.placement.constraints = vec!["node.role==worker".into()];
        sp.task_template.placement.preferences =
            vec![PlacementPreference { spread: "node.labels.zone".into() }];
        sp.task_template.resources.reservations.nano_cpus = 10_000_000;
        let rec = ServiceRecord::new(ServiceId(format!("svc{s}")), sp, 1);
        for slot in 1..=1000 {
            let t = task(&rec, slot, &mut ids, None);
            view.tasks.insert(t.id.clone(), t);
        }
        view.services.insert(rec.id.clone(), rec);
    }
    view.ids = ids;
    view
}

fn bench_scheduler() -> Result<Duration> {
    let view = scheduling_view();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let pass = scheduler::schedule(&view, MonoTime::ZERO);
        times.push(start.elapsed());
        let assigned =
            pass.changes.iter().filter(|c| matches!(c, StoreChange::Assign { .. })).count();
        ensure!(assigned == 50_000, "only {assigned} of 50000 tasks placed");
    }
    Ok(median(times))
}

/// 5,000 services × 2 running, up-to-date replicas.
fn steady_view() -> ClusterView {
    let mut view = ClusterView::default();
    nodes(&mut view, 1000);
    let node_ids: Vec<NodeId> = view.nodes.keys().cloned().collect();
    let mut ids = TaskIdAllocator::default();
    for s in 0..5000 {
        let rec =
            ServiceRecord::new(ServiceId(format!("svc{s:04}")), spec(&format!("svc{s}"), 2), 1);
        for slot in 1..=2 {
            let node = node_ids[(s * 2 + slot as usize) % node_ids.len()].clone();
            let t = task(&rec, slot, &mut ids, Some(node));
            view.tasks.insert(t.id.clone(), t);
        }
        view.services.insert(rec.id.clone(), rec);
    }
    view.ids = ids;
    view
}

fn bench_reconcile() -> Result<Duration> {
    let view = steady_view();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let changes = orchestrator::reconcile_all(&view, MonoTime::ZERO);
        times.push(start.elapsed());
        ensure!(changes.is_empty(), "an unchanged cluster produced {} changes", changes.len());
    }
    Ok(median(times))
}

/// Drives a 1,000-slot update with parallelism 10 to completion; answers time per batch.
fn bench_rollout() -> Result<Duration> {
    let slots: Vec<SlotSnapshot> = (1..=1000u64)
        .map(|n| SlotSnapshot {
            slot: SlotKey::Replica(n),
            tasks: vec![SlotTask {
                id: TaskId(format!("old{n}")),
                clean: false,
                desired: TaskState::Running,
                observed: TaskState::Running,
                node_down: false,
            }],
        })
        .collect();
    let update = UpdateConfig { parallelism: 10, ..UpdateConfig::default() };
    let service = ServiceId::new("svc");
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let mut ids = TaskIdAllocator::default();
        let target = RolloutTarget {
            service: &service,
            spec_version: 2,
            update_config: &update,
            rollback_config: &update,
            status: None,
        };
        let start = Instant::now();
        let (mut run, mut cmds) = Rollout::start(&target, slots.clone(), MonoTime::ZERO, &mut ids);
        let mut now = MonoTime::ZERO;
        let mut batches = 0u32;
        while run.is_active() {
            batches += 1;
            ensure!(batches < 1_000_000, "the rollout did not finish");
            now = now + Duration::from_millis(10);
            let mut next = Vec::new();
            for c in &cmds {
                if let reconciler_orchestrator::rollout::Command::SetDesired { task, state } = c {
                    let observed = if *state == TaskState::Shutdown {
                        TaskState::Shutdown
                    } else {
                        TaskState::Running
                    };
                    next.extend(run.handle(
                        Input::TaskObserved { task: task.clone(), state: observed, at: now },
                        &mut ids,
                    ));
                }
            }
            if next.is_empty() {
                now = run.next_wake().unwrap_or(now);
                next = run.handle(Input::Tick { now }, &mut ids);
            }
            cmds = next;
        }
        let elapsed = start.elapsed();
        ensure!(batches >= 100, "expected at least 100 batches, got {batches}");
        times.push(elapsed / batches);
    }
    Ok(median(times))
}

fn main() -> Result<()> {
    println!("flotilla orchestration core, median of {RUNS} runs (release build)");
    let s = bench_scheduler()?;
    println!(
        "schedule 50,000 tasks onto 1,000 nodes (constraint + spread): {:>10.1} ms  (goal < 1000 ms)",
        s.as_secs_f64() * 1e3
    );
    let r = bench_reconcile()?;
    println!(
        "reconcile pass over 5,000 unchanged services:                 {:>10.1} ms  (goal < 50 ms)",
        r.as_secs_f64() * 1e3
    );
    let b = bench_rollout()?;
    println!(
        "rollout decision overhead per batch (1,000 slots, par. 10):  {:>10.1} µs  (goal < 1000 µs)",
        b.as_secs_f64() * 1e6
    );
    Ok(())
}
