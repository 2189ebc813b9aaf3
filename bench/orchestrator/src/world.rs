//! The clusters the benchmarks run on, built directly in the replicated state.

use reconciler_orchestrator::slot::TaskIdAllocator;
use reconciler_orchestrator::state::{ClusterState, NodeRecord, ServiceRecord, TaskRecord};
use reconciler_types::{
    NodeId, NodeRole, NodeState, PlacementPreference, ServiceId, ServiceMode, ServiceSpec, Task,
    TaskState, TaskStatus,
};

/// `count` READY nodes, every tenth a manager, spread over 5 zones (`zone=z<i % 5>`).
pub fn nodes(state: &mut ClusterState, count: usize) {
    for i in 0..count {
        let mut n =
            reconciler_types::Node { id: NodeId(format!("node{i:04}")), ..Default::default() };
        n.description.hostname = n.id.0.clone();
        n.description.nano_cpus = 64_000_000_000;
        n.description.memory_bytes = 256 << 30;
        n.spec.role = if i % 10 == 0 { NodeRole::Manager } else { NodeRole::Worker };
        n.spec.labels.insert("zone".into(), format!("z{}", i % 5));
        n.status.state = NodeState::Ready;
        state
            .nodes
            .insert(n.id.clone(), NodeRecord { node: n, version: 1, credential_digest: None });
    }
}

/// A replicated spec.
pub fn spec(name: &str, replicas: u64) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: name.into(),
        mode: ServiceMode::Replicated { replicas },
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = "app:1".into();
    s
}

/// A task of `service` in `slot`: RUNNING on `node`, or PENDING without one.
pub fn task(
    service: &ServiceRecord,
    slot: u64,
    ids: &mut TaskIdAllocator,
    node: Option<NodeId>,
) -> Task {
    let running = node.is_some();
    Task {
        id: ids.alloc(),
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

fn insert(state: &mut ClusterState, t: Task) {
    state.tasks.insert(t.id.clone(), TaskRecord { task: t, version: 1 });
}

/// 50 services × 1,000 pending tasks, each constrained to workers and spread over the zones.
pub fn scheduling() -> ClusterState {
    let mut state = ClusterState::default();
    nodes(&mut state, 1000);
    let mut ids = TaskIdAllocator::default();
    for s in 0..50 {
        let mut sp = spec(&format!("svc{s}"), 1000);
        sp.task_template.placement.constraints = vec!["node.role==worker".into()];
        sp.task_template.placement.preferences =
            vec![PlacementPreference { spread: "node.labels.zone".into() }];
        sp.task_template.resources.reservations.nano_cpus = 10_000_000;
        let rec = ServiceRecord::new(ServiceId(format!("svc{s}")), sp, 1);
        for slot in 1..=1000 {
            insert(&mut state, task(&rec, slot, &mut ids, None));
        }
        state.services.insert(rec.id.clone(), rec);
    }
    state.counters.next_task_id = ids.next;
    state.reindex();
    state
}

/// `services` services × `replicas` running, up-to-date replicas on 1,000 nodes.
pub fn steady(services: usize, replicas: u64) -> ClusterState {
    let mut state = ClusterState::default();
    nodes(&mut state, 1000);
    let node_ids: Vec<NodeId> = state.nodes.keys().cloned().collect();
    let mut ids = TaskIdAllocator::default();
    for s in 0..services {
        let rec = ServiceRecord::new(
            ServiceId(format!("svc{s:05}")),
            spec(&format!("svc{s}"), replicas),
            1,
        );
        for slot in 1..=replicas {
            let node =
                node_ids[(s * 7 + usize::try_from(slot).unwrap_or(0)) % node_ids.len()].clone();
            insert(&mut state, task(&rec, slot, &mut ids, Some(node)));
        }
        state.services.insert(rec.id.clone(), rec);
    }
    state.counters.next_task_id = ids.next;
    state.counters.next_spec_version = 2;
    state.reindex();
    state
}
