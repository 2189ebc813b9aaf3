//! Sync decisions and deployment outcomes, on states made through the real `apply`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../planner/tests/support/mod.rs"]
mod support;

use reconciler_deploy::sync::{Decision, Request, SyncInput, decide};
use reconciler_deploy::{actual, outcome};
use reconciler_orchestrator::state::gitops::{Deployment, Outcome, StackSync, Trigger};
use reconciler_orchestrator::state::{ClusterState, StoreCommand};
use reconciler_planner::diff;
use reconciler_planner::plan::{StackPlan, Warning};
use reconciler_types::{
    MonoTime, ServiceId, StackPolicy, StackSet, SyncPolicy, Task, TaskId, TaskState, TaskStatus,
    UpdateState, UpdateStatus,
};
use std::collections::BTreeMap;

fn part(desired: &str, running: &str, prune: bool) -> (StackPlan, Vec<Warning>) {
    let mut state = ClusterState::default();
    let policy = StackPolicy { prune, ..StackPolicy::default() };
    let run = support::convert("shop", running, &[]);
    for (i, spec) in run.services.values().enumerate() {
        state.apply(
            &StoreCommand::CreateService {
                id: ServiceId::new(format!("s{i}")),
                spec: Box::new(spec.clone()),
            },
            1,
        );
    }
    let mut want = support::convert("shop", desired, &[]);
    want.policy = policy;
    let set =
        StackSet { source: "git".into(), stacks: BTreeMap::from([(want.name.clone(), want)]) };
    let plan = diff(&set, &actual(&state, "c"), policy);
    (plan.stacks["shop"].clone(), plan.warnings)
}

fn input<'a>(
    plan: &'a StackPlan,
    warnings: &'a [&'a Warning],
    policy: StackPolicy,
    sync: Option<&'a StackSync>,
) -> SyncInput<'a> {
    SyncInput { plan: Some(plan), warnings, policy, head: "c2", sync, request: None, pinned: false }
}

const TWO: &str = "services:\n  web:\n    image: nginx\n  db:\n    image: pg\n";
const THREE: &str =
    "services:\n  web:\n    image: nginx\n  db:\n    image: pg\n  cache:\n    image: redis\n";

#[test]
fn a_new_commit_is_applied_with_auto_sync_and_waits_with_manual() {
    let (plan, _) = part(THREE, TWO, false);
    let seen = StackSync { head: Some("c1".into()), ..StackSync::default() };
    let auto = StackPolicy::default();
    assert_eq!(decide(&input(&plan, &[], auto, Some(&seen))), Decision::Apply(Trigger::Sync));
    let manual = StackPolicy { sync: SyncPolicy::Manual, ..auto };
    assert_eq!(decide(&input(&plan, &[], manual, Some(&seen))), Decision::OutOfSync);
    let ask = Request { by: "ops".into(), allow_mass_delete: false };
    let asked = SyncInput { request: Some(&ask), ..input(&plan, &[], manual, Some(&seen)) };
    assert_eq!(decide(&asked), Decision::Apply(Trigger::Reconcile { by: "ops".into() }));
}

#[test]
fn removing_more_than_half_of_a_stack_waits_for_allow_mass_delete() {
    let (plan, warnings) = part("services:\n  web:\n    image: nginx\n", THREE, true);
    let w: Vec<&Warning> = warnings.iter().collect();
    assert_eq!(w.len(), 1, "{warnings:?}");
    let policy = StackPolicy { prune: true, ..StackPolicy::default() };
    assert!(
        matches!(decide(&input(&plan, &w, policy, None)), Decision::Hold(m) if m.contains("2 of 3"))
    );
    let ask = Request { by: "ops".into(), allow_mass_delete: false };
    assert!(matches!(
        decide(&SyncInput { request: Some(&ask), ..input(&plan, &w, policy, None) }),
        Decision::Hold(_)
    ));
    let allow = Request { by: "ops".into(), allow_mass_delete: true };
    let d = decide(&SyncInput { request: Some(&allow), ..input(&plan, &w, policy, None) });
    assert_eq!(d, Decision::Apply(Trigger::Reconcile { by: "ops".into() }));
}

#[test]
fn a_change_by_hand_at_the_deployed_commit_is_drift_healed_or_reported() {
    let (plan, _) = part(TWO, &TWO.replace("image: pg", "image: pg:2"), false);
    let at_head = StackSync { head: Some("c2".into()), ..StackSync::default() };
    let auto = StackPolicy::default();
    assert_eq!(
        decide(&input(&plan, &[], auto, Some(&at_head))),
        Decision::Apply(Trigger::SelfHeal)
    );
    let off = StackPolicy { self_heal: Some(false), ..auto };
    assert_eq!(
        decide(&input(&plan, &[], off, Some(&at_head))),
        Decision::Drift(vec!["shop_db".into()])
    );
}

#[test]
fn a_commit_the_stack_was_rolled_back_from_is_not_applied_again() {
    let (plan, _) = part(THREE, TWO, false);
    let pinned = StackSync {
        head: Some("c1".into()),
        rolled_back_from: Some("c2".into()),
        ..StackSync::default()
    };
    assert_eq!(decide(&input(&plan, &[], StackPolicy::default(), Some(&pinned))), Decision::Pinned);
    // Nothing differs: in sync, and a head not yet seen is recorded.
    let none = SyncInput { plan: None, ..input(&plan, &[], StackPolicy::default(), Some(&pinned)) };
    assert_eq!(decide(&none), Decision::InSync { record: true });
}

fn deployed(state: &mut ClusterState, replicas: u64) -> Deployment {
    let mut spec = support::convert("shop", TWO, &[]).services["web"].clone();
    spec.mode = reconciler_types::ServiceMode::Replicated { replicas };
    let id = ServiceId::new("w");
    state.apply(&StoreCommand::CreateService { id: id.clone(), spec: Box::new(spec) }, 1);
    let d = Deployment {
        id: 0,
        commit: "c1".into(),
        author: String::new(),
        subject: String::new(),
        at: MonoTime::ZERO,
        summary: String::new(),
        trigger: Trigger::Sync,
        services: BTreeMap::from([(id, 0)]),
        outcome: Outcome::InProgress,
        message: String::new(),
    };
    let stack = reconciler_types::StackName::new("shop");
    let cmd = reconciler_orchestrator::state::GitopsCommand::Deployed {
        stack: stack.clone(),
        deployment: d,
        desired: None,
    };
    assert_eq!(state.apply(&StoreCommand::Gitops(Box::new(cmd)), 2).refusal, None);
    state.stacks[&stack].deploy.deployments[0].clone()
}

fn status(state: UpdateState, message: &str) -> StoreCommand {
    StoreCommand::SetUpdateStatus {
        service: ServiceId::new("w"),
        status: Some(UpdateStatus {
            state,
            message: message.into(),
            started_at: None,
            completed_at: None,
        }),
    }
}

#[test]
fn a_deployment_succeeds_only_once_its_replicas_run_at_its_version() {
    let mut state = ClusterState::default();
    let d = deployed(&mut state, 2);
    assert_eq!(outcome(&d, &state), None);
    let v = d.services[&ServiceId::new("w")];
    for slot in 1..=2 {
        let task = Task {
            id: TaskId::new(format!("t{slot}")),
            service_id: ServiceId::new("w"),
            slot,
            spec_version: v,
            desired_state: TaskState::Running,
            status: TaskStatus { state: TaskState::Running, ..TaskStatus::default() },
            ..Task::default()
        };
        let put = StoreCommand::PutTask {
            task: Box::new(task),
            expected: reconciler_orchestrator::state::Expect::Any,
        };
        state.apply(&put, 3);
        let expect = if slot == 2 { Some((Outcome::Succeeded, String::new())) } else { None };
        assert_eq!(outcome(&d, &state), expect);
    }
    state.apply(&status(UpdateState::Updating, "update in progress"), 4);
    assert_eq!(outcome(&d, &state), None);
    state.apply(&status(UpdateState::Paused, "update paused due to failure"), 5);
    assert_eq!(outcome(&d, &state).unwrap().0, Outcome::Failed);
}

#[test]
fn a_rollout_rolled_back_by_itself_is_never_a_success() {
    let mut state = ClusterState::default();
    let d = deployed(&mut state, 1);
    let auto = reconciler_orchestrator::state::StoreCommand::AutoRollback {
        service: ServiceId::new("w"),
        status: UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: "update rolled back due to failure or early termination of task t1".into(),
            started_at: None,
            completed_at: None,
        },
    };
    // An automatic rollback needs a previous spec: update first.
    let spec = state.services[&ServiceId::new("w")].spec.clone();
    state.apply(
        &StoreCommand::UpdateService {
            id: ServiceId::new("w"),
            spec: Box::new(spec),
            expected: reconciler_orchestrator::state::Expect::Any,
        },
        3,
    );
    let d = Deployment {
        services: BTreeMap::from([(
            ServiceId::new("w"),
            state.services[&ServiceId::new("w")].spec_version,
        )]),
        ..d
    };
    assert_eq!(state.apply(&auto, 4).refusal, None);
    let (o, m) = outcome(&d, &state).unwrap();
    assert_eq!(o, Outcome::RolledBack);
    assert!(m.contains("rolled back due to failure"), "{m}");
}
