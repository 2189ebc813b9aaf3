//! Beyond Swarm (stack-level `x-flotilla: rollout:`): health-gated waves between the
//! services of a stack deployment, and the stack-wide failure budget.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic

use reconciler_orchestrator::stack::{
    DeploymentState, FailureBudget, StackDeployment, StackRolloutPolicy,
};
use reconciler_sim::{SimCluster, Workload};
use reconciler_types::{
    FailureAction, MonoTime, ServiceId, ServiceMode, ServiceSpec, StackName, UpdateConfig,
};
use std::collections::BTreeMap;
use std::time::Duration;

fn at(s: u64) -> MonoTime {
    MonoTime::from_secs(s)
}

fn spec(name: &str, image: &str) -> ServiceSpec {
    let mut s = ServiceSpec {
        name: format!("shop_{name}"),
        mode: ServiceMode::Replicated { replicas: 2 },
        ..ServiceSpec::default()
    };
    s.task_template.container_spec.image = image.into();
    s.update_config =
        UpdateConfig { failure_action: FailureAction::Rollback, ..UpdateConfig::default() };
    s
}

/// db, api and web at commit A (`:1` images), all running.
fn shop() -> SimCluster {
    let mut c = SimCluster::new();
    for n in ["n1", "n2"] {
        c.add_node(n, |_| {});
    }
    for name in ["db", "api", "web"] {
        c.create_service(name, spec(name, &format!("{name}:1")));
    }
    c.run_until(at(0));
    c
}

/// Commit B changes every service's image to `:2`.
fn commit_b(policy: StackRolloutPolicy) -> StackDeployment {
    let targets: BTreeMap<ServiceId, ServiceSpec> = ["db", "api", "web"]
        .iter()
        .map(|n| (ServiceId::new(*n), spec(n, &format!("{n}:2"))))
        .collect();
    StackDeployment {
        stack: StackName::new("shop"),
        commit: "b".into(),
        policy,
        targets,
        applied: BTreeMap::new(),
        state: DeploymentState::Rolling,
    }
}

fn waves() -> Vec<Vec<ServiceId>> {
    vec![vec![ServiceId::new("db")], vec![ServiceId::new("api")], vec![ServiceId::new("web")]]
}

fn image_of(c: &SimCluster, service: &str) -> String {
    c.service(service).unwrap().spec.task_template.container_spec.image.clone()
}

fn crashing() -> Workload {
    Workload { exit_after: Some((Duration::from_secs(1), 1)), ..Workload::default() }
}

#[test]
fn waves_apply_each_service_once_the_previous_wave_is_healthy() {
    let mut c = shop();
    c.deploy_stack(commit_b(StackRolloutPolicy {
        waves: waves(),
        ..StackRolloutPolicy::default()
    }));
    c.run_until(at(60));
    let applies: Vec<String> =
        c.lines("stack apply").iter().map(|l| l.rsplit_once(' ').unwrap().0.to_owned()).collect();
    assert_eq!(applies, ["t=0 stack apply db", "t=5 stack apply api", "t=10 stack apply web"]);
    assert_eq!(c.deployments[0].state, DeploymentState::Completed);
    assert_eq!(c.lines("stack shop Completed"), ["t=15 stack shop Completed"]);
}

#[test]
fn a_failing_wave_halts_the_later_waves() {
    let mut c = shop();
    c.workloads.insert("api:2".into(), crashing());
    c.deploy_stack(commit_b(StackRolloutPolicy {
        waves: waves(),
        ..StackRolloutPolicy::default()
    }));
    c.run_until(at(60));
    assert_eq!(c.deployments[0].state, DeploymentState::Halted { cause: ServiceId::new("api") });
    assert_eq!(
        (image_of(&c, "db"), image_of(&c, "api"), image_of(&c, "web")),
        ("db:2".into(), "api:1".into(), "web:1".into())
    );
    assert!(c.lines("stack apply web").is_empty(), "web is never changed");
}

#[test]
fn stack_failure_budget_rolls_every_changed_service_back_to_the_previous_commit() {
    let mut c = shop();
    c.workloads.insert("api:2".into(), crashing());
    let policy = StackRolloutPolicy { failure_budget: FailureBudget::Stack, waves: waves() };
    c.deploy_stack(commit_b(policy));
    c.run_until(at(120));
    assert_eq!(
        c.deployments[0].state,
        DeploymentState::RolledBack { cause: ServiceId::new("api") }
    );
    assert_eq!(
        (image_of(&c, "db"), image_of(&c, "api"), image_of(&c, "web")),
        ("db:1".into(), "api:1".into(), "web:1".into())
    );
    assert_eq!(c.status_line("db"), "rollback_completed: rollback completed");
    assert!(c.lines("status db rollback_started").is_empty());
    assert_eq!(
        c.lines("rollback db")
            .iter()
            .map(|l| l.split_once(' ').unwrap().1.to_owned())
            .collect::<Vec<_>>(),
        [
            "rollback db rollback_started: stack shop rolled back: service api rolled back (commit b)"
        ]
    );
    assert!(c.running("db").iter().all(|(_, _, v)| *v == 1), "db runs commit A's spec again");
}

#[test]
fn without_settings_services_roll_out_at_once_and_fail_alone() {
    let mut c = shop();
    c.workloads.insert("api:2".into(), crashing());
    c.deploy_stack(commit_b(StackRolloutPolicy::default()));
    c.run_until(at(120));
    let applies: Vec<String> =
        c.lines("stack apply").iter().map(|l| l.split(' ').next().unwrap().to_owned()).collect();
    assert_eq!(applies, ["t=0", "t=0", "t=0"]);
    assert_eq!(
        (image_of(&c, "db"), image_of(&c, "api"), image_of(&c, "web")),
        ("db:2".into(), "api:1".into(), "web:2".into())
    );
    assert_eq!(c.deployments[0].state, DeploymentState::Halted { cause: ServiceId::new("api") });
}
