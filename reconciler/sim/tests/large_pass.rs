//! A pass that decides more than one Raft entry should carry: a service scaled from 0 to
//! 1,000 replicas is written as fenced entries of at most `MAX_COMMANDS_PER_ENTRY`
//! commands (as swarmkit splits a batch into transactions), every one applied, the task-id
//! counter moved once, and the service converges with no id used twice.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic

use reconciler_orchestrator::driver::MAX_COMMANDS_PER_ENTRY;
use reconciler_orchestrator::state::StoreCommand;
use reconciler_sim::SimCluster;
use reconciler_types::{MonoTime, ServiceMode, ServiceSpec, TaskState};
use std::collections::BTreeSet;

fn spec(replicas: u64) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: "svc".into(),
        mode: ServiceMode::Replicated { replicas },
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = "app:1".into();
    s
}

/// The orchestrator's entries applied since `from` (index into the history), with their
/// command counts.
fn entries_since(c: &SimCluster, from: usize) -> Vec<(usize, bool, u64, u64)> {
    c.history[from..]
        .iter()
        .filter_map(|a| match &a.command {
            StoreCommand::Orchestrate { fence, commands } => {
                assert!(a.refusal.is_none(), "an entry was refused: {:?}", a.refusal);
                Some((commands.len(), fence.claim, fence.next_task_id, fence.task_ids))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_thousand_new_tasks_are_written_as_entries_of_at_most_200_commands() {
    let mut c = SimCluster::new();
    for n in ["n1", "n2", "n3"] {
        c.add_node(n, |_| {});
    }
    c.create_service("svc", spec(0));
    c.run_until(MonoTime::from_secs(1));
    let from = c.history.len();
    let counter = c.state.counters.next_task_id;
    c.update_service("svc", |s| s.mode = ServiceMode::Replicated { replicas: 1000 }).unwrap();
    c.run_until(MonoTime::from_secs(5));

    let entries = entries_since(&c, from);
    assert!(entries.len() >= 2, "one pass was written as {entries:?}");
    assert!(entries.iter().all(|e| e.0 <= MAX_COMMANDS_PER_ENTRY), "{entries:?}");
    // The pass that created the tasks: its first entry moves the counter by all 1,000 ids,
    // the entries after it expect the counter there and move it no further.
    let first = entries.iter().position(|e| e.3 > 0).unwrap();
    assert_eq!((entries[first].2, entries[first].3), (counter, 1000));
    let later = &entries[first + 1..];
    assert!(later.iter().take_while(|e| e.3 == 0).count() >= 4, "{entries:?}");
    assert!(later.iter().all(|e| e.2 == counter + 1000 || e.3 > 0), "{entries:?}");
    assert_eq!(c.state.counters.next_task_id, counter + 1000);

    let running = c.running("svc");
    assert_eq!(running.len(), 1000, "{}", c.status_line("svc"));
    let slots: BTreeSet<u64> = running.iter().map(|r| r.0).collect();
    assert_eq!(slots.len(), 1000, "a slot ran twice");
    let tasks = c.tasks_of("svc");
    let ids: BTreeSet<_> = tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids.len(), tasks.len());
    assert!(tasks.iter().all(|t| t.status.state == TaskState::Running));
    assert!(c.anomalies.is_empty(), "{:?}", c.anomalies);
}
