//! docs/swarm-semantics.md §12 scenarios for the scheduler, the replicated and global orchestrators,
//! node availability and failure, and the restart supervisor (S1–S22, S38–S41, S44), run
//! through the whole pure core in the simulator with a fake clock.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic

use reconciler_orchestrator::state::StoreCommand;
use reconciler_sim::{SimCluster, Workload};
use reconciler_types::{
    Availability, GenericResource, MonoTime, PlacementPreference, PortConfig, PublishMode,
    RestartCondition, ServiceMode, ServiceSpec, TaskId, TaskState,
};
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> MonoTime {
    MonoTime::from_secs(s)
}

fn spec(image: &str, replicas: u64) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: "svc".into(),
        mode: ServiceMode::Replicated { replicas },
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = image.into();
    s
}

fn cluster(nodes: &[&str]) -> SimCluster {
    let mut c = SimCluster::new();
    for n in nodes {
        c.add_node(n, |_| {});
    }
    c
}

fn nodes_of(c: &SimCluster, service: &str) -> Vec<String> {
    let mut v: Vec<String> = c.running(service).into_iter().map(|(_, n, _)| n).collect();
    v.sort();
    v
}

fn pending_errs(c: &SimCluster, service: &str) -> Vec<String> {
    c.tasks_of(service)
        .into_iter()
        .filter(|t| t.status.state == TaskState::Pending && t.desired_state <= TaskState::Running)
        .map(|t| t.status.err.clone())
        .collect()
}

fn set_replicas(c: &mut SimCluster, n: u64) {
    c.update_service("svc", |s| s.mode = ServiceMode::Replicated { replicas: n }).unwrap();
}

#[test]
fn s1_create_replicated_spreads_one_task_per_node() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.create_service("svc", spec("v1", 3));
    c.run_until(at(1));
    let mut slots: Vec<u64> = c.running("svc").iter().map(|r| r.0).collect();
    slots.sort_unstable();
    assert_eq!(slots, [1, 2, 3]);
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2", "n3"]);
    assert_eq!(c.status_line("svc"), "nil");
}

#[test]
fn s2_scale_up_places_new_slots_on_different_nodes() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.create_service("svc", spec("v1", 3));
    c.run_until(at(1));
    let before: Vec<_> = c.tasks_of("svc").iter().map(|t| t.id.clone()).collect();
    set_replicas(&mut c, 5);
    c.run_until(at(2));
    let new: Vec<_> = c.running("svc").into_iter().filter(|r| r.0 > 3).collect();
    assert_eq!(new.iter().map(|r| r.0).collect::<Vec<_>>(), [4, 5]);
    assert_ne!(new[0].1, new[1].1, "the two new slots go to different nodes");
    assert!(
        before.iter().all(|id| c.task(id).unwrap().desired_state == TaskState::Running),
        "no existing task replaced"
    );
}

#[test]
fn s3_scale_down_removes_extra_copies_on_crowded_nodes() {
    let mut c = cluster(&["n1"]);
    c.create_service("svc", spec("v1", 3));
    c.run_until(at(1));
    c.add_node("n2", |_| {});
    c.add_node("n3", |_| {});
    set_replicas(&mut c, 5);
    c.run_until(at(2));
    let placement: Vec<(u64, String)> = {
        let mut v: Vec<_> = c.running("svc").into_iter().map(|(s, n, _)| (s, n)).collect();
        v.sort();
        v
    };
    assert_eq!(
        placement,
        [(1, "n1".into()), (2, "n1".into()), (3, "n1".into()), (4, "n2".into()), (5, "n3".into())]
    );
    set_replicas(&mut c, 2);
    let removed: Vec<u64> = c
        .tasks_of("svc")
        .iter()
        .filter(|t| t.desired_state == TaskState::Remove)
        .map(|t| t.slot)
        .collect();
    assert_eq!(removed, [2, 3, 5]);
    c.run_until(at(3));
    let mut left: Vec<u64> = c.tasks_of("svc").iter().map(|t| t.slot).collect();
    left.sort_unstable();
    assert_eq!(left, [1, 4], "the reaper deleted the removed tasks once they shut down");
}

#[test]
fn s4_scale_down_prefers_non_running_and_deletes_it_at_once() {
    let mut c = cluster(&["n1", "n2"]);
    let mut s = spec("v1", 3);
    s.task_template.placement.max_replicas = 1;
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(pending_errs(&c, "svc").len(), 1, "slot 3 cannot be placed");
    c.update_service("svc", |s| s.mode = ServiceMode::Replicated { replicas: 2 }).unwrap();
    let mut slots: Vec<u64> = c.tasks_of("svc").iter().map(|t| t.slot).collect();
    slots.sort_unstable();
    assert_eq!(slots, [1, 2], "slot 3 was removed and deleted right away");
}

#[test]
fn s5_replicas_zero_removes_every_task() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.create_service("svc", spec("v1", 3));
    c.run_until(at(1));
    set_replicas(&mut c, 0);
    assert_eq!(
        c.tasks_of("svc").iter().filter(|t| t.desired_state == TaskState::Remove).count(),
        3
    );
    c.run_until(at(2));
    assert!(c.tasks_of("svc").is_empty());
    assert_eq!(c.status_line("svc"), "nil");
}

fn global_spec(image: &str) -> ServiceSpec {
    ServiceSpec { mode: ServiceMode::Global, ..spec(image, 1) }
}

#[test]
fn s6_global_creates_exactly_one_task_on_a_new_node() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.create_service("svc", global_spec("v1"));
    c.run_until(at(1));
    let before = c.log.len();
    c.add_node("n4", |_| {});
    c.run_until(at(2));
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2", "n3", "n4"]);
    let new: Vec<_> = c.log[before..].iter().filter(|l| l.contains("create")).cloned().collect();
    assert_eq!(new.len(), 1);
    assert!(new[0].contains("on n4"));
    let t = c
        .tasks_of("svc")
        .into_iter()
        .find(|t| t.node_id.as_ref().is_some_and(|n| n.as_str() == "n4"))
        .unwrap();
    assert_eq!(
        assignment_message(&c, &t.id),
        Some("scheduler confirmed task can run on preassigned node")
    );
}

/// The message the scheduler wrote when it assigned `task`.
fn assignment_message<'a>(c: &'a SimCluster, task: &TaskId) -> Option<&'a str> {
    c.history.iter().find_map(|a| match &a.command {
        StoreCommand::Orchestrate { commands, .. } => commands.iter().find_map(|cmd| match cmd {
            StoreCommand::AssignTask { id, message, .. } if id == task => Some(message.as_str()),
            // Created and placed in one pass: the placement is folded into the creation.
            StoreCommand::PutTask { task: t, .. }
                if &t.id == task && t.status.state == TaskState::Assigned =>
            {
                Some(t.status.message.as_str())
            }
            _ => None,
        }),
        _ => None,
    })
}

#[test]
fn s7_global_drain_shuts_down_and_reactivation_recreates() {
    let mut c = cluster(&["n1", "n2", "n3", "n4"]);
    c.create_service("svc", global_spec("v1"));
    c.run_until(at(1));
    let tasks = c.tasks_of("svc").len();
    c.update_node("n2", |n| n.spec.availability = Availability::Drain);
    c.run_until(at(2));
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n3", "n4"]);
    assert_eq!(c.tasks_of("svc").len(), tasks, "no task is created elsewhere");
    c.update_node("n2", |n| n.spec.availability = Availability::Active);
    c.run_until(at(3));
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2", "n3", "n4"]);
}

#[test]
fn s8_global_with_constraint_follows_labels() {
    let mut c = SimCluster::new();
    c.add_node("n1", |n| {
        n.spec.labels.insert("type".into(), "edge".into());
    });
    c.add_node("n2", |_| {});
    c.add_node("n3", |_| {});
    let mut s = global_spec("v1");
    s.task_template.placement.constraints = vec!["node.labels.type==edge".into()];
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(nodes_of(&c, "svc"), ["n1"]);
    c.update_node("n3", |n| {
        n.spec.labels.insert("type".into(), "edge".into());
    });
    c.run_until(at(2));
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n3"]);
    let n1_task = c
        .tasks_of("svc")
        .into_iter()
        .find(|t| t.node_id.as_ref().is_some_and(|n| n.as_str() == "n1"))
        .unwrap()
        .id
        .clone();
    c.update_node("n1", |n| {
        n.spec.labels.remove("type");
    });
    c.run_until(at(3));
    let t = &c.task(&n1_task).unwrap();
    assert_eq!(t.status.state, TaskState::Rejected);
    assert_eq!(t.status.err, "assigned node no longer meets constraints");
    assert_eq!(t.desired_state, TaskState::Shutdown);
    assert_eq!(nodes_of(&c, "svc"), ["n3"], "no replacement");
}

fn zone_eu(s: &mut ServiceSpec) {
    s.task_template.placement.constraints = vec!["node.labels.zone==eu".into()];
}

#[test]
fn s9_unsatisfiable_constraint_stays_pending_until_a_node_matches() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    let mut s = spec("v1", 1);
    zone_eu(&mut s);
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(
        pending_errs(&c, "svc"),
        ["no suitable node (scheduling constraints not satisfied on 3 nodes)"]
    );
    c.update_node("n2", |n| {
        n.spec.labels.insert("zone".into(), "eu".into());
    });
    c.run_until(at(2));
    assert_eq!(nodes_of(&c, "svc"), ["n2"]);
}

#[test]
fn s10_explanations_are_ordered_by_failure_count() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.update_node("n1", |n| n.spec.availability = Availability::Drain);
    let mut s = spec("v1", 1);
    zone_eu(&mut s);
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(
        pending_errs(&c, "svc"),
        [
            "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not available for new tasks)"
        ]
    );
    let pass = reconciler_orchestrator::scheduler::schedule(&c.state, c.now());
    assert_eq!(pass.unschedulable[0].detail, "3 nodes: 2 constraints not satisfied, 1 drained");
}

#[test]
fn s11_resources_leave_the_third_task_pending() {
    let mut c = SimCluster::new();
    c.add_node("n1", |n| n.description.nano_cpus = 2_000_000_000);
    let mut s = spec("v1", 3);
    s.task_template.resources.reservations.nano_cpus = 1_000_000_000;
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(c.running("svc").len(), 2);
    assert_eq!(pending_errs(&c, "svc"), ["no suitable node (insufficient resources on 1 node)"]);
    let pass = reconciler_orchestrator::scheduler::schedule(&c.state, c.now());
    assert_eq!(pass.unschedulable[0].detail, "1 node: 1 lacks 1 CPUs");
    set_replicas(&mut c, 2);
    c.run_until(at(2));
    assert!(pending_errs(&c, "svc").is_empty());
}

#[test]
fn s11_generic_resources_and_memory_are_reserved_too() {
    let mut c = SimCluster::new();
    c.add_node("n1", |n| {
        n.description.memory_bytes = 1 << 30;
        n.description.generic_resources = vec![GenericResource { kind: "gpu".into(), value: 1 }];
    });
    let mut s = spec("v1", 2);
    s.task_template.resources.reservations.memory_bytes = 512 << 20;
    s.task_template.resources.reservations.generic_resources =
        vec![GenericResource { kind: "gpu".into(), value: 1 }];
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(c.running("svc").len(), 1);
    let pass = reconciler_orchestrator::scheduler::schedule(&c.state, c.now());
    assert_eq!(pass.unschedulable[0].detail, "1 node: 1 lacks 1 gpu");
}

#[test]
fn s12_max_replicas_per_node() {
    let mut c = cluster(&["n1", "n2"]);
    let mut s = spec("v1", 3);
    s.task_template.placement.max_replicas = 1;
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2"]);
    assert_eq!(pending_errs(&c, "svc"), ["no suitable node (max replicas per node limit exceed)"]);
}

#[test]
fn s13_host_mode_port_conflicts() {
    let mut c = cluster(&["n1", "n2"]);
    let mut s = spec("v1", 3);
    s.endpoint_spec.ports = vec![PortConfig {
        target_port: 80,
        published_port: 8080,
        publish_mode: PublishMode::Host,
        ..PortConfig::default()
    }];
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2"]);
    assert_eq!(
        pending_errs(&c, "svc"),
        ["no suitable node (host-mode port already in use on 2 nodes)"]
    );
}

fn zone(c: &mut SimCluster, node: &str, z: Option<&str>) {
    let z = z.map(str::to_owned);
    c.add_node(node, move |n| {
        if let Some(z) = z {
            n.spec.labels.insert("zone".into(), z);
        }
    });
}

fn spread_spec(replicas: u64) -> ServiceSpec {
    let mut s = spec("v1", replicas);
    s.task_template.placement.preferences =
        vec![PlacementPreference { spread: "node.labels.zone".into() }];
    s
}

fn per_node(c: &SimCluster) -> Vec<(String, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for (_, n, _) in c.running("svc") {
        *m.entry(n).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

#[test]
fn s14_spread_counts_unlabelled_nodes_as_a_group() {
    let mut c = SimCluster::new();
    zone(&mut c, "n1", Some("a"));
    zone(&mut c, "n2", Some("a"));
    zone(&mut c, "n3", Some("b"));
    zone(&mut c, "n4", None);
    c.create_service("svc", spread_spec(6));
    c.run_until(at(1));
    assert_eq!(
        per_node(&c),
        [("n1".into(), 1), ("n2".into(), 1), ("n3".into(), 2), ("n4".into(), 2)]
    );
}

#[test]
fn s15_spread_redistributes_from_a_full_branch() {
    let mut c = SimCluster::new();
    zone(&mut c, "n1", Some("a"));
    zone(&mut c, "n2", Some("b"));
    zone(&mut c, "n3", Some("c"));
    c.update_node("n3", |n| n.spec.availability = Availability::Drain);
    c.create_service("svc", spread_spec(6));
    c.run_until(at(1));
    assert_eq!(per_node(&c), [("n1".into(), 3), ("n2".into(), 3)]);
    assert!(pending_errs(&c, "svc").is_empty());
}

#[test]
fn s16_spread_remainder_goes_to_the_first_value() {
    let mut c = SimCluster::new();
    zone(&mut c, "n1", Some("a"));
    zone(&mut c, "n2", Some("b"));
    c.create_service("svc", spread_spec(7));
    c.run_until(at(1));
    assert_eq!(per_node(&c), [("n1".into(), 4), ("n2".into(), 3)]);
}

#[test]
fn spread_nested_preferences_split_each_level() {
    let mut c = SimCluster::new();
    for (n, dc, rack) in [("n1", "x", "r1"), ("n2", "x", "r2"), ("n3", "y", "r1")] {
        c.add_node(n, |node| {
            node.spec.labels.insert("dc".into(), dc.into());
            node.spec.labels.insert("rack".into(), rack.into());
        });
    }
    let mut s = spec("v1", 4);
    s.task_template.placement.preferences = vec![
        PlacementPreference { spread: "node.labels.dc".into() },
        PlacementPreference { spread: "node.labels.rack".into() },
    ];
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(per_node(&c), [("n1".into(), 1), ("n2".into(), 1), ("n3".into(), 2)]);
}

fn exiting(code: i32, after: u64) -> Workload {
    Workload { exit_after: Some((secs(after), code)), ..Workload::default() }
}

#[test]
fn s17_default_restart_after_five_seconds() {
    let mut c = cluster(&["n1"]);
    c.workloads.insert("v1".into(), exiting(0, 10));
    c.create_service("svc", spec("v1", 1));
    c.run_until(at(11));
    let t1 = c.tasks_of("svc")[0].id.clone();
    assert_eq!(c.task(&t1).unwrap().status.state, TaskState::Complete);
    assert_eq!(c.task(&t1).unwrap().desired_state, TaskState::Shutdown);
    let t2 = c.tasks_of("svc")[1].id.clone();
    assert_eq!(c.lines(&format!("create {t2}")), [format!("t=10 create {t2} svc slot 1 v1 ready")]);
    c.run_until(at(20));
    assert_eq!(c.lines(&format!("desire {t2} running")), [format!("t=15 desire {t2} running")]);
    assert_eq!(c.lines(&format!("observed {t2} running")), [format!("t=15 observed {t2} running")]);
}

#[test]
fn s18_on_failure_does_not_restart_a_clean_exit() {
    let mut c = cluster(&["n1", "n2"]);
    c.workloads.insert("v1".into(), Workload::default());
    let mut s = spec("v1", 2);
    s.task_template.restart_policy.condition = RestartCondition::OnFailure;
    c.create_service("svc", s);
    c.run_until(at(1));
    let ids: Vec<_> = c.tasks_of("svc").iter().map(|t| t.id.clone()).collect();
    // Slot 1 exits 0, slot 2 exits 1, both at t=1.
    inject_exit(&mut c, &ids[0], TaskState::Complete);
    inject_exit(&mut c, &ids[1], TaskState::Failed);
    c.run_until(at(10));
    assert_eq!(
        c.tasks_of("svc").iter().filter(|t| t.slot == 1).count(),
        1,
        "slot 1 is not replaced"
    );
    let slot2: Vec<_> = c.running("svc");
    assert_eq!(slot2.len(), 1);
    assert_eq!(slot2[0].0, 2);
    let replacement = c.tasks_of("svc").into_iter().rfind(|t| t.slot == 2).unwrap().id.clone();
    assert_eq!(
        c.lines(&format!("observed {replacement} running")),
        [format!("t=6 observed {replacement} running")]
    );
}

fn inject_exit(c: &mut SimCluster, id: &reconciler_types::TaskId, state: TaskState) {
    c.report(id, state);
}

#[test]
fn s19_condition_none_does_not_replace_on_node_failure() {
    let mut c = cluster(&["n1", "n2"]);
    let mut s = spec("v1", 2);
    s.task_template.restart_policy.condition = RestartCondition::None;
    c.create_service("svc", s);
    c.run_until(at(0));
    c.stop_heartbeats("n2");
    c.run_until(at(30));
    assert_eq!(c.lines("node n2 down"), ["t=15 node n2 down"]);
    assert_eq!(c.tasks_of("svc").len(), 2, "no replacement is created");
    let on_n2 = c
        .tasks_of("svc")
        .into_iter()
        .find(|t| t.node_id.as_ref().is_some_and(|n| n.as_str() == "n2"))
        .unwrap();
    assert_eq!(on_n2.desired_state, TaskState::Shutdown);
}

fn crash_loop(max_attempts: u64, window: Option<u64>) -> SimCluster {
    let mut c = cluster(&["n1"]);
    c.workloads.insert("v1".into(), exiting(1, 1));
    let mut s = spec("v1", 1);
    s.task_template.restart_policy.max_attempts = max_attempts;
    s.task_template.restart_policy.window = window.map(secs);
    c.create_service("svc", s);
    c
}

fn starts(c: &SimCluster) -> Vec<String> {
    c.lines("running")
        .into_iter()
        .filter(|l| l.contains("observed"))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

#[test]
fn s20_max_attempts_without_window() {
    let mut c = crash_loop(3, None);
    c.run_until(at(100));
    assert_eq!(starts(&c), ["t=0", "t=6", "t=12", "t=18"]);
    assert_eq!(c.lines("observed").iter().filter(|l| l.ends_with("failed")).count(), 4);
    assert_eq!(c.tasks_of("svc").len(), 4, "retention is max_attempts + 1");
    assert!(c.running("svc").is_empty(), "the service shows 0/1");
}

#[test]
fn s21_max_attempts_with_window() {
    let mut c = crash_loop(2, Some(60));
    c.run_until(at(200));
    assert_eq!(starts(&c), ["t=0", "t=6", "t=12"]);
    assert_eq!(
        c.lines("create").iter().map(|l| l.split(' ').next().unwrap()).collect::<Vec<_>>(),
        ["t=0", "t=1", "t=7"]
    );
}

#[test]
fn s22_update_resets_the_restart_budget() {
    let mut c = crash_loop(3, None);
    c.run_until(at(100));
    c.workloads.insert("v2".into(), exiting(1, 1));
    c.update_service("svc", |s| s.task_template.container_spec.image = "v2".into()).unwrap();
    c.run_until(at(300));
    let version = c.service("svc").unwrap().spec_version;
    let v2_tasks: Vec<String> = c
        .lines("create")
        .iter()
        .filter(|l| l.contains(&format!(" v{version} ")))
        .map(|l| l.split(' ').nth(2).unwrap().to_owned())
        .collect();
    assert_eq!(v2_tasks.len(), 4, "the new spec's first task and its own 3 restarts: {v2_tasks:?}");
    let starts: Vec<String> = v2_tasks
        .iter()
        .flat_map(|id| c.lines(&format!("observed {id} running")))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        starts,
        ["t=100", "t=106", "t=112", "t=118"],
        "each ran once, 5 s after the last failed"
    );
    assert!(c.running("svc").is_empty(), "after the 4th failure nothing more is started");
}

#[test]
fn s38_node_down_reschedules_after_the_restart_delay() {
    let mut c = cluster(&["n1", "n2", "n3", "n4"]);
    c.create_service("svc", spec("v1", 4));
    c.run_until(at(0));
    c.stop_heartbeats("n4");
    c.run_until(at(14));
    assert_eq!(c.running("svc").len(), 4, "nothing happens before the grace period");
    c.run_until(at(30));
    let old = c
        .tasks_of("svc")
        .into_iter()
        .find(|t| t.node_id.as_ref().is_some_and(|n| n.as_str() == "n4"))
        .unwrap();
    assert_eq!((old.desired_state, old.status.state), (TaskState::Shutdown, TaskState::Running));
    let new = c.tasks_of("svc").into_iter().last().unwrap();
    assert_eq!(new.slot, old.slot);
    assert_eq!(new.node_id.as_ref().map(|n| n.as_str()), Some("n1"));
    assert_eq!(
        c.lines(&format!("desire {} running", new.id)),
        [format!("t=20 desire {} running", new.id)]
    );
}

#[test]
fn s39_drain_moves_tasks_without_delay_after_the_old_one_stops() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.workloads.insert("v1".into(), Workload { stop_after: secs(3), ..Workload::default() });
    let mut s = spec("v1", 2);
    s.task_template.placement.max_replicas = 1;
    c.create_service("svc", s);
    c.run_until(at(0));
    c.update_node("n3", |n| n.spec.availability = Availability::Pause);
    c.update_node("n3", |n| n.spec.availability = Availability::Active);
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2"]);
    c.update_node("n2", |n| n.spec.availability = Availability::Drain);
    let new = c.tasks_of("svc").into_iter().last().unwrap().id.clone();
    assert_eq!(c.task(&new).unwrap().node_id.as_ref().map(|n| n.as_str()), Some("n3"));
    assert_eq!(c.task(&new).unwrap().desired_state, TaskState::Ready);
    c.run_until(at(10));
    assert_eq!(c.lines(&format!("desire {new} running")), [format!("t=3 desire {new} running")]);
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n3"]);
}

#[test]
fn s40_paused_node_keeps_its_tasks_and_gets_no_new_ones() {
    let mut c = cluster(&["n1", "n2"]);
    c.create_service("svc", spec("v1", 2));
    c.run_until(at(1));
    c.update_node("n2", |n| n.spec.availability = Availability::Pause);
    set_replicas(&mut c, 4);
    c.run_until(at(2));
    assert_eq!(per_node(&c), [("n1".into(), 3), ("n2".into(), 1)]);
}

#[test]
fn s41_task_history_limit() {
    let mut c = cluster(&["n1"]);
    c.workloads.insert("v1".into(), exiting(1, 1));
    c.create_service("svc", spec("v1", 1));
    c.run_until(at(58));
    let failed = c.lines("observed").iter().filter(|l| l.ends_with("failed")).count();
    assert_eq!(failed, 10);
    let tasks = c.tasks_of("svc");
    assert_eq!(tasks.len(), 5);
    assert_eq!(tasks.iter().filter(|t| t.status.state == TaskState::Failed).count(), 4);
    c.update_settings(|s| s.task_history_limit = 2);
    c.run_until(at(64));
    assert_eq!(c.tasks_of("svc").len(), 2);
}

#[test]
fn s44_constraint_only_change_replaces_only_when_the_node_no_longer_matches() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.update_node("n2", |n| {
        n.spec.labels.insert("zone".into(), "eu".into());
    });
    let mut s = spec("v1", 1);
    zone_eu(&mut s);
    c.create_service("svc", s);
    c.run_until(at(1));
    let first = c.tasks_of("svc")[0].id.clone();
    c.update_service("svc", |s| {
        s.task_template.placement.constraints = vec!["node.labels.zone!=us".into()]
    })
    .unwrap();
    c.run_until(at(10));
    assert_eq!(c.tasks_of("svc").len(), 1, "not replaced: n2 still matches");
    assert_eq!(c.tasks_of("svc")[0].id, first);
    c.update_service("svc", |s| {
        s.task_template.placement.constraints = vec!["node.hostname==n1".into()]
    })
    .unwrap();
    c.run_until(at(20));
    assert_eq!(nodes_of(&c, "svc"), ["n1"]);
}

#[test]
fn global_leaves_paused_nodes_alone_and_deletes_tasks_of_removed_nodes() {
    let mut c = cluster(&["n1", "n2", "n3"]);
    c.create_service("svc", global_spec("v1"));
    c.run_until(at(1));
    c.update_node("n2", |n| n.spec.availability = Availability::Pause);
    c.update_service("svc", |s| s.task_template.container_spec.image = "v2".into()).unwrap();
    c.run_until(at(30));
    let on = |c: &SimCluster, node: &str| -> Vec<u64> {
        c.running("svc").into_iter().filter(|(_, n, _)| n == node).map(|(_, _, v)| v).collect()
    };
    assert_eq!(on(&c, "n2"), [1], "the paused node keeps its old task, not updated");
    assert_eq!((on(&c, "n1"), on(&c, "n3")), (vec![2], vec![2]));
    c.remove_node("n3");
    c.run_until(at(31));
    assert!(
        c.tasks_of("svc").iter().all(|t| t.node_id.as_ref().is_none_or(|n| n.as_str() != "n3"))
    );
}

#[test]
fn malformed_constraint_is_a_validation_error_naming_the_service() {
    let mut s = spec("v1", 1);
    s.name = "shop_web".into();
    s.task_template.placement.constraints = vec!["node.labels.zone=eu".into()];
    let err = reconciler_orchestrator::scheduler::constraint::validate(&s).unwrap_err();
    assert!(err.to_string().starts_with("service shop_web: invalid placement constraint"));
}

#[test]
fn constraint_enforcer_rejects_tasks_that_no_longer_fit_a_shrunk_node() {
    let mut c = SimCluster::new();
    c.add_node("n1", |n| n.description.memory_bytes = 2 << 30);
    let mut s = spec("v1", 2);
    s.task_template.resources.reservations.memory_bytes = 1 << 30;
    c.create_service("svc", s);
    c.run_until(at(1));
    assert_eq!(c.running("svc").len(), 2);
    c.add_node("n2", |n| n.description.memory_bytes = 4 << 30);
    c.update_node("n1", |n| n.description.memory_bytes = 1 << 30);
    c.run_until(at(10));
    let rejected: Vec<_> =
        c.tasks_of("svc").into_iter().filter(|t| t.status.state == TaskState::Rejected).collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].status.err, "assigned node no longer meets constraints");
    assert_eq!(nodes_of(&c, "svc"), ["n1", "n2"], "the rejected task was restarted on n2");
}
