//! A pass's decisions made shorter before they are written: a task the pass created and the
//! scheduler then placed is written once, created on its node, instead of a creation and a
//! placement. Scaling a service to 100,000 replicas writes 100,000 commands instead of
//! 200,000, and no task waits for the pass's last creation to be committed before its
//! placement can be (the creations used to fill the first half of the pass's entries).
//!
//! The fused command leaves the state exactly as the two did: the placement's effect is
//! [`state::place`], the function `apply` runs for [`StoreCommand::AssignTask`], and a
//! placement is folded only when no command between the two touches the task.
//!
//! Then the creations that follow one another are grouped by node ([`by_node`]): the
//! scheduler spreads consecutive tasks over different nodes, so an entry of 200 creations
//! touched 200 nodes and each node's long poll was answered once per task (100,000 answers,
//! and as many status reports, for a scale to 100,000); grouped, an entry touches a node or
//! two and each node receives its tasks in one answer. Each of those creations writes a task
//! no other command of the run touches, so their order does not change the state.

use crate::state::{self, Expect, StoreCommand};
use reconciler_types::{NodeId, TaskId};
use std::collections::HashMap;

/// `batch` with each placement of a task it created folded into that creation.
pub fn placements(batch: Vec<StoreCommand>) -> Vec<StoreCommand> {
    let mut out: Vec<StoreCommand> = Vec::with_capacity(batch.len());
    // Created in this batch and untouched since: the position of the creation in `out`.
    let mut created: HashMap<TaskId, usize> = HashMap::new();
    for cmd in batch {
        if let StoreCommand::AssignTask { id, node, message, at } = &cmd
            && let Some(i) = created.remove(id)
            && let Some(StoreCommand::PutTask { task, .. }) = out.get_mut(i)
        {
            state::place(task, node, message, *at);
            continue;
        }
        if let Some(id) = task_of(&cmd) {
            created.remove(id);
        }
        if let StoreCommand::PutTask { task, expected: Expect::Absent } = &cmd {
            created.insert(task.id.clone(), out.len());
        }
        out.push(cmd);
    }
    out
}

/// `batch` with every run of consecutive creations on a node ordered by node (stable: a
/// node's tasks keep their order). Commands of any other kind stay where they are.
pub fn by_node(mut batch: Vec<StoreCommand>) -> Vec<StoreCommand> {
    let mut start = 0;
    while start < batch.len() {
        let run = batch[start..].iter().take_while(|c| created_on(c).is_some()).count();
        if run > 1 {
            batch[start..start + run].sort_by(|a, b| created_on(a).cmp(&created_on(b)));
        }
        start += run.max(1);
    }
    batch
}

/// The node of a task created on it (by a folded placement, or a global task's creation).
fn created_on(cmd: &StoreCommand) -> Option<&NodeId> {
    match cmd {
        StoreCommand::PutTask { task, expected: Expect::Absent } => task.node_id.as_ref(),
        _ => None,
    }
}

/// The task a command reads or writes, if any.
fn task_of(cmd: &StoreCommand) -> Option<&TaskId> {
    use StoreCommand as C;
    match cmd {
        C::PutTask { task, .. } => Some(&task.id),
        C::SetTaskDesiredState { id, .. }
        | C::SetTaskStatus { id, .. }
        | C::AssignTask { id, .. }
        | C::RemoveTask { id, .. }
        | C::DelayStart { task: id, .. }
        | C::ClearDelay { task: id } => Some(id),
        // Listed one by one: a new command that touches a task must be added above.
        C::InitCluster { .. }
        | C::SetJoinSecret { .. }
        | C::SetSettings { .. }
        | C::PutNode { .. }
        | C::SetNodeDescription { .. }
        | C::SetNodeStatus { .. }
        | C::SetNodeCredential { .. }
        | C::Pki { .. }
        | C::RemoveNode { .. }
        | C::CreateService { .. }
        | C::UpdateService { .. }
        | C::PutService { .. }
        | C::RollbackService { .. }
        | C::RemoveService { .. }
        | C::SetUpdateStatus { .. }
        | C::AutoRollback { .. }
        | C::RecordRestart { .. }
        | C::PutConfig { .. }
        | C::RemoveConfig { .. }
        | C::PutSecret { .. }
        | C::RemoveSecret { .. }
        | C::PutNetwork { .. }
        | C::RemoveNetwork { .. }
        | C::PutRollout { .. }
        | C::RemoveRollout { .. }
        | C::RecordStackCommit { .. }
        | C::Gitops(_)
        | C::Batch { .. }
        | C::Orchestrate { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Driver;
    use crate::state::ClusterState;
    use reconciler_types::{
        MonoTime, Node, NodeId, NodeState, ServiceId, ServiceMode, ServiceSpec, Task, TaskState,
    };

    fn node(state: &mut ClusterState, id: &str, index: u64) {
        let mut n = Node { id: NodeId::new(id), ..Node::default() };
        n.description.hostname = id.into();
        n.description.nano_cpus = 4_000_000_000;
        n.description.memory_bytes = 8 << 30;
        n.status.state = NodeState::Ready;
        let put = StoreCommand::PutNode { node: Box::new(n), expected: Expect::Absent };
        assert_eq!(state.apply(&put, index).refusal, None);
    }

    fn put(id: &str) -> StoreCommand {
        let task = Task { id: TaskId::new(id), slot: 1, ..Task::default() };
        StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent }
    }

    fn assign(id: &str) -> StoreCommand {
        StoreCommand::AssignTask {
            id: TaskId::new(id),
            node: NodeId::new("n1"),
            message: "scheduler assigned task to node".into(),
            at: MonoTime::from_secs(7),
        }
    }

    fn applied(mut state: ClusterState, batch: &[StoreCommand]) -> ClusterState {
        for cmd in batch {
            assert_eq!(state.apply(cmd, 9).refusal, None, "{cmd:?}");
        }
        state
    }

    #[test]
    fn a_placement_of_a_task_created_in_the_batch_is_folded_and_the_state_is_the_same() {
        let mut state = ClusterState::default();
        node(&mut state, "n1", 1);
        let before = applied(state, &[put("old")]);
        let batch = vec![
            put("t1"),
            put("t2"),
            StoreCommand::set_desired(&TaskId::new("t2"), TaskState::Shutdown),
            assign("t1"),
            assign("t2"),
            assign("old"),
        ];
        let fused = placements(batch.clone());
        assert_eq!(fused.len(), 5, "only t1's placement folds: {fused:#?}");
        let StoreCommand::PutTask { task, .. } = &fused[0] else { panic!("{fused:?}") };
        assert_eq!(task.node_id, Some(NodeId::new("n1")));
        assert_eq!(task.status.state, TaskState::Assigned);
        assert_eq!(fused[3], assign("t2"), "t2 was changed between its creation and placement");
        assert_eq!(fused[4], assign("old"), "old was not created by the batch");
        assert_eq!(applied(before.clone(), &fused), applied(before, &batch));
    }

    fn put_on(id: &str, node: &str) -> StoreCommand {
        let mut cmd = put(id);
        if let StoreCommand::PutTask { task, .. } = &mut cmd {
            task.node_id = Some(NodeId::new(node));
        }
        cmd
    }

    #[test]
    fn runs_of_creations_are_grouped_by_node_and_other_commands_stay_in_place() {
        let mut state = ClusterState::default();
        node(&mut state, "n1", 1);
        node(&mut state, "n2", 2);
        let batch = vec![
            put_on("a", "n2"),
            put_on("b", "n1"),
            put_on("c", "n2"),
            put_on("d", "n1"),
            StoreCommand::set_desired(&TaskId::new("a"), TaskState::Shutdown),
            put_on("e", "n2"),
            put_on("f", "n1"),
            put("g"),
            put_on("h", "n2"),
        ];
        let grouped = by_node(batch.clone());
        let order: Vec<String> = grouped
            .iter()
            .map(|c| match c {
                StoreCommand::PutTask { task, .. } => task.id.to_string(),
                _ => "desire".to_owned(),
            })
            .collect();
        assert_eq!(order, ["b", "d", "a", "c", "desire", "f", "e", "g", "h"]);
        assert_eq!(applied(state.clone(), &grouped), applied(state, &batch));
    }

    #[test]
    fn a_scale_pass_writes_one_command_per_task_each_created_on_its_node() {
        let mut state = ClusterState::default();
        node(&mut state, "n1", 1);
        node(&mut state, "n2", 2);
        let mut spec = ServiceSpec { name: "web".into(), ..ServiceSpec::default() };
        spec.mode = ServiceMode::Replicated { replicas: 6 };
        let create = StoreCommand::CreateService { id: ServiceId::new("s1"), spec: Box::new(spec) };
        assert_eq!(state.apply(&create, 3).refusal, None);
        let mut driver = Driver::new();
        driver.lead(1);
        let batches = driver.pass(&mut state, MonoTime::from_secs(1)).batches;
        let commands: Vec<&StoreCommand> = batches
            .iter()
            .flat_map(|b| match b {
                StoreCommand::Orchestrate { commands, .. } => commands.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(commands.len(), 6, "{commands:#?}");
        let mut nodes = Vec::new();
        for cmd in commands {
            let StoreCommand::PutTask { task, .. } = cmd else { panic!("{cmd:?}") };
            assert_eq!(task.status.state, TaskState::Assigned);
            nodes.push(task.node_id.clone().map(|n| n.to_string()).unwrap_or_default());
        }
        assert_eq!(nodes, ["n1", "n1", "n1", "n2", "n2", "n2"], "spread, then grouped by node");
    }
}
