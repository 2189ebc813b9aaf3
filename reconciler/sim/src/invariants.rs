//! The seeded runs' invariants, computed by the harness itself from the log of applied
//! commands (replayed over a fresh state), never by asking the orchestrator:
//! * every placement goes to a node that was READY and active when it was written (so the
//!   scheduler never uses a node that joined but has not registered yet, or one that is down);
//! * a rolling update never has more slots being replaced at once than its parallelism
//!   (docs/swarm-semantics.md §6.3), counted from the tasks it created;
//! * at the end, every service has converged: its replica count (or one task per eligible
//!   node) running, one task per slot, all of them on the service's current spec.

use crate::SimCluster;
use crate::cluster::Applied;
use reconciler_orchestrator::global;
use reconciler_orchestrator::slot::SlotKey;
use reconciler_orchestrator::state::{ClusterState, Expect, StoreCommand};
use reconciler_types::{Availability, NodeState, ServiceId, ServiceMode, Task, TaskId, TaskState};
use std::collections::{BTreeMap, BTreeSet};

/// What the replay tracks about updates.
#[derive(Default)]
struct Updates {
    /// Tasks created to replace a live task of an older spec, per service, since the last
    /// leader change.
    replacing: BTreeMap<ServiceId, BTreeSet<TaskId>>,
    /// Slots that already got their first task of the current spec version, per service.
    started: BTreeMap<ServiceId, (u64, BTreeSet<Option<SlotKey>>)>,
}

impl Updates {
    /// Whether `task` (about to be created) replaces a live task of another spec in its slot:
    /// the first of its spec version there, beside a task that still wants to run on a
    /// healthy node. A restart is not one: its slot held a task that ended while still wanted
    /// when the batch began (`ended`), or whose node was lost or drained.
    fn classify(
        &mut self,
        state: &ClusterState,
        task: &Task,
        ended: &BTreeSet<(ServiceId, SlotKey)>,
    ) -> bool {
        let Some(service) = state.services.get(&task.service_id) else { return false };
        if task.spec_version != service.spec_version {
            return false;
        }
        let slot = SlotKey::of(task);
        let started = self.started.entry(task.service_id.clone()).or_default();
        if started.0 != service.spec_version {
            *started = (service.spec_version, BTreeSet::new());
        }
        if !started.1.insert(slot.clone()) {
            return false;
        }
        let Some(slot) = slot else { return false };
        if ended.contains(&(task.service_id.clone(), slot.clone())) {
            return false;
        }
        state.slot_tasks(&task.service_id, slot).any(|o| {
            let node = o.node_id.as_ref().and_then(|n| state.node(n));
            o.spec_version != task.spec_version
                && o.desired_state <= TaskState::Running
                && !o.status.state.is_terminal()
                && node.is_some_and(|n| {
                    n.status.state == NodeState::Ready && n.spec.availability != Availability::Drain
                })
        })
    }
}

/// How many slots a service may replace at once: its parallelism, or (0) all of them.
fn bound(state: &ClusterState, id: &ServiceId) -> usize {
    let Some(s) = state.services.get(id) else { return usize::MAX };
    let config = match s.update_status.as_ref().map(|u| u.state.as_str()) {
        Some("rollback_started" | "rollback_paused") => &s.spec.rollback_config,
        _ => &s.spec.update_config,
    };
    match config.parallelism {
        0 => usize::MAX,
        p => usize::try_from(p).unwrap_or(usize::MAX),
    }
}

/// An assignment to a node that was not READY and active: a placement, or a creation on a
/// node (a task the same pass created and placed, `reconciler_orchestrator::fuse`).
fn bad_placement(state: &ClusterState, cmd: &StoreCommand) -> Option<String> {
    let (id, node) = match cmd {
        StoreCommand::AssignTask { id, node, .. } => (id, node),
        StoreCommand::PutTask { task, expected: Expect::Absent }
            if task.status.state == TaskState::Assigned =>
        {
            (&task.id, task.node_id.as_ref()?)
        }
        _ => return None,
    };
    let n = state.node(node);
    let fine = n.is_some_and(|n| {
        n.status.state == NodeState::Ready && n.spec.availability == Availability::Active
    });
    (!fine).then(|| {
        format!(
            "{id} placed on {node}, which is {:?}",
            n.map(|n| (n.status.state, n.spec.availability))
        )
    })
}

/// Replays the log and checks placements and update parallelism at every step.
///
/// # Errors
/// The first broken invariant, with the time and log index.
pub fn check_history(history: &[Applied]) -> Result<(), String> {
    let mut state = ClusterState::default();
    let mut updates = Updates::default();
    for a in history.iter().filter(|a| a.refusal.is_none()) {
        let at = |what: String| format!("t={:?} index {}: {what}", a.at.0, a.index);
        match &a.command {
            StoreCommand::Orchestrate { fence, commands } => {
                if fence.claim {
                    updates.replacing.clear();
                }
                let ended: BTreeSet<(ServiceId, SlotKey)> = state
                    .all_tasks()
                    .filter(|t| {
                        t.desired_state <= TaskState::Running && t.status.state.is_terminal()
                    })
                    .filter_map(|t| SlotKey::of(t).map(|s| (t.service_id.clone(), s)))
                    .collect();
                for cmd in commands {
                    if let Some(bad) = bad_placement(&state, cmd) {
                        return Err(at(bad));
                    }
                    if let StoreCommand::PutTask { task, .. } = cmd
                        && updates.classify(&state, task, &ended)
                    {
                        updates
                            .replacing
                            .entry(task.service_id.clone())
                            .or_default()
                            .insert(task.id.clone());
                    }
                    state.apply(cmd, a.index);
                }
            }
            other => {
                state.apply(other, a.index);
            }
        }
        for (service, tasks) in &updates.replacing {
            let version = state.services.get(service).map(|s| s.spec_version);
            let starting = tasks
                .iter()
                .filter_map(|id| state.task(id))
                .filter(|t| Some(t.spec_version) == version)
                .filter(|t| {
                    t.desired_state <= TaskState::Running && t.status.state < TaskState::Running
                })
                .count();
            if starting > bound(&state, service) {
                return Err(at(format!(
                    "{service}: {starting} slots being replaced at once, parallelism {}",
                    bound(&state, service)
                )));
            }
        }
    }
    Ok(())
}

/// Whether every service has converged.
///
/// # Errors
/// The first service that has not, and how.
pub fn check_converged(c: &SimCluster) -> Result<(), String> {
    for s in c.state.services.values() {
        let want = match s.spec.mode {
            ServiceMode::Replicated { replicas } => usize::try_from(replicas).unwrap_or(usize::MAX),
            ServiceMode::Global => c
                .state
                .nodes
                .values()
                .filter(|r| {
                    r.node.status.state == NodeState::Ready
                        && r.node.spec.availability == Availability::Active
                })
                .filter(|r| global::eligible(s, &r.node))
                .count(),
        };
        let running: Vec<&Task> = c
            .state
            .service_tasks(&s.id)
            .filter(|t| {
                t.status.state == TaskState::Running && t.desired_state == TaskState::Running
            })
            .collect();
        let slots: BTreeSet<Option<SlotKey>> = running.iter().map(|t| SlotKey::of(t)).collect();
        if running.len() != want || slots.len() != want {
            return Err(format!(
                "{}: {} tasks running in {} slots, want {want}",
                s.id,
                running.len(),
                slots.len()
            ));
        }
        if let Some(t) = running.iter().find(|t| t.spec != s.spec.task_template) {
            return Err(format!(
                "{}: {} runs {} not the current spec",
                s.id, t.id, t.spec.container_spec.image
            ));
        }
        let state = s.update_status.as_ref().map(|u| u.state.as_str());
        if !matches!(state, None | Some("completed" | "rollback_completed")) {
            return Err(format!("{}: update status {state:?}", s.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_orchestrator::state::{Expect, Fence};
    use reconciler_types::{MonoTime, Node, NodeId, ServiceSpec};

    fn applied(index: u64, command: StoreCommand) -> Applied {
        Applied { at: MonoTime::ZERO, index, command, refusal: None }
    }

    fn orchestrate(commands: Vec<StoreCommand>) -> StoreCommand {
        StoreCommand::Orchestrate {
            fence: Fence { epoch: 1, claim: true, next_task_id: 0, task_ids: 1 },
            commands,
        }
    }

    #[test]
    fn a_placement_on_a_node_that_has_not_registered_is_caught() {
        let node = Node { id: NodeId::new("n1"), ..Node::default() };
        let svc = ServiceId::new("s");
        let task =
            Task { id: TaskId::new("t0"), service_id: svc.clone(), slot: 1, ..Task::default() };
        let pass = vec![
            StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent },
            StoreCommand::AssignTask {
                id: TaskId::new("t0"),
                node: NodeId::new("n1"),
                message: String::new(),
                at: MonoTime::ZERO,
            },
        ];
        // As decided, and as written (the placement folded into the creation).
        let fused = reconciler_orchestrator::fuse::placements(pass.clone());
        assert_eq!(fused.len(), 1);
        for commands in [pass, fused] {
            let history = vec![
                applied(
                    1,
                    StoreCommand::PutNode {
                        node: Box::new(node.clone()),
                        expected: Expect::Absent,
                    },
                ),
                applied(
                    2,
                    StoreCommand::CreateService {
                        id: svc.clone(),
                        spec: Box::new(ServiceSpec::default()),
                    },
                ),
                applied(3, orchestrate(commands)),
            ];
            let err = check_history(&history).unwrap_err();
            assert!(err.contains("t0 placed on n1, which is Some((Unknown, Active))"), "{err}");
        }
    }

    #[test]
    fn more_slots_replaced_at_once_than_the_parallelism_is_caught() {
        let mut c = SimCluster::new();
        c.add_node("n1", |_| {});
        let mut spec = ServiceSpec {
            name: "s".into(),
            mode: ServiceMode::Replicated { replicas: 3 },
            ..ServiceSpec::default()
        };
        spec.task_template.container_spec.image = "v1".into();
        c.create_service("s", spec);
        c.run_until(MonoTime::from_secs(1));
        let v1: Vec<Task> = c.tasks_of("s").into_iter().cloned().collect();
        c.update_service("s", |s| s.task_template.container_spec.image = "v2".into()).unwrap();
        let version = c.service("s").unwrap().spec_version;
        let mut history: Vec<Applied> = c
            .history
            .iter()
            .take_while(|a| !matches!(a.command, StoreCommand::UpdateService { .. }))
            .cloned()
            .collect();
        history.push(
            c.history
                .iter()
                .find(|a| matches!(a.command, StoreCommand::UpdateService { .. }))
                .unwrap()
                .clone(),
        );
        // A forged batch replacing all three slots at once, parallelism 1.
        let forged: Vec<StoreCommand> = v1
            .iter()
            .map(|old| {
                let mut t = old.clone();
                t.id = TaskId::new(format!("new{}", old.slot));
                t.spec_version = version;
                t.node_id = None;
                t.status = Default::default();
                StoreCommand::PutTask { task: Box::new(t), expected: Expect::Absent }
            })
            .collect();
        let fence = Fence { epoch: 1, claim: false, next_task_id: 0, task_ids: 0 };
        history.push(Applied {
            at: MonoTime::ZERO,
            index: 999,
            command: StoreCommand::Orchestrate { fence, commands: forged },
            refusal: None,
        });
        let err = check_history(&history).unwrap_err();
        assert!(err.contains("3 slots being replaced at once, parallelism 1"), "{err}");
    }
}
