//! The executor against the real planner and the real `ClusterState::apply`: a plan applied
//! leaves nothing to plan, in Swarm's order, all or nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../planner/tests/support/mod.rs"]
mod support;

use reconciler_deploy::{Apply, SealedSecret, actual, execute};
use reconciler_orchestrator::state::gitops::{Deployment, Outcome, Trigger};
use reconciler_orchestrator::state::{ClusterState, StoreCommand};
use reconciler_planner::diff;
use reconciler_planner::secret_digest::salted;
use reconciler_types::{MonoTime, ServiceId, StackName, StackPolicy, StackSet, StackSpec};
use std::collections::BTreeMap;

fn record(commit: &str) -> Deployment {
    Deployment {
        id: 0,
        commit: commit.into(),
        author: "A <a@example.com>".into(),
        subject: "change".into(),
        at: MonoTime::from_secs(1),
        summary: String::new(),
        trigger: Trigger::Sync,
        services: BTreeMap::new(),
        outcome: Outcome::InProgress,
        message: String::new(),
    }
}

fn set(stacks: &[&StackSpec]) -> StackSet {
    StackSet {
        source: "git".into(),
        stacks: stacks.iter().map(|s| (s.name.clone(), (*s).clone())).collect(),
    }
}

/// Plans `desired` against `state` and returns the batch for stack `shop`.
fn batch(
    state: &ClusterState,
    desired: Option<&StackSpec>,
    secrets: &BTreeMap<String, SealedSecret>,
    next: &mut u32,
) -> StoreCommand {
    let wanted = set(&desired.into_iter().collect::<Vec<_>>());
    let plan =
        diff(&wanted, &actual(state, "cluster"), StackPolicy { prune: true, ..Default::default() });
    let stack = StackName::new("shop");
    let part = plan.stacks.get("shop").expect("shop changes");
    let a = Apply { stack: &stack, plan: part, desired, secrets, deployment: record("c1") };
    let mut ids = || {
        *next += 1;
        ServiceId::new(format!("svc{next}"))
    };
    execute(&a, state, &mut ids).unwrap()
}

fn commands(b: &StoreCommand) -> Vec<String> {
    let StoreCommand::Batch { commands } = b else { panic!("not a batch") };
    commands
        .iter()
        .map(|c| {
            let json = serde_json::to_value(c).unwrap();
            let v = &json["args"];
            let name = v
                .pointer("/spec/name")
                .or(v.pointer("/config/name"))
                .or(v.pointer("/secret/name"))
                .or(v.get("name"))
                .or(v.get("id"));
            format!(
                "{} {}",
                json["op"].as_str().unwrap(),
                name.and_then(|n| n.as_str()).unwrap_or("")
            )
        })
        .collect()
}

fn no_changes_left(state: &ClusterState, desired: &StackSpec) {
    let plan = diff(&set(&[desired]), &actual(state, "cluster"), StackPolicy::default());
    assert!(!plan.has_changes(), "{plan:#?}");
}

const WEB_DB: &str = "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n";

#[test]
fn s45_a_new_stack_is_created_network_first_and_leaves_nothing_to_plan() {
    let mut state = ClusterState::default();
    let shop = support::convert("shop", WEB_DB, &[]);
    let b = batch(&state, Some(&shop), &BTreeMap::new(), &mut 0);
    assert_eq!(
        commands(&b),
        vec![
            "put_network shop_default",
            "create_service shop_db",
            "create_service shop_web",
            "record_stack_commit ",
            "gitops ",
        ]
    );
    assert_eq!(state.apply(&b, 7).refusal, None);
    no_changes_left(&state, &shop);
    let h = &state.stacks[&StackName::new("shop")];
    assert_eq!(h.applied.last().unwrap().commit, "c1");
    let d = &h.deploy.deployments[0];
    assert_eq!(d.id, 7);
    // Each service the deployment wrote, at the spec version it got.
    let versions: Vec<u64> = d.services.values().copied().collect();
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|v| *v > 0), "{versions:?}");
    assert_eq!(h.deploy.sync.head.as_deref(), Some("c1"));
    // What it applied is kept, for `stack rollback`.
    assert_eq!(h.deploy.kept(7).unwrap().stack, shop);
}

#[test]
fn a_mode_change_is_remove_then_create_and_a_scale_is_an_update() {
    let mut state = ClusterState::default();
    let mut n = 0;
    let shop = support::convert("shop", WEB_DB, &[]);
    state.apply(&batch(&state, Some(&shop), &BTreeMap::new(), &mut n), 1);
    let global = support::convert(
        "shop",
        "services:\n  web:\n    image: nginx\n    deploy:\n      mode: global\n  db:\n    image: postgres\n    deploy:\n      replicas: 3\n",
        &[],
    );
    let b = batch(&state, Some(&global), &BTreeMap::new(), &mut n);
    assert_eq!(
        commands(&b)[..3],
        ["update_service shop_db", "remove_service svc2", "create_service shop_web"]
    );
    assert_eq!(state.apply(&b, 2).refusal, None);
    no_changes_left(&state, &global);
}

#[test]
fn a_batch_written_on_a_stale_read_changes_nothing() {
    let mut state = ClusterState::default();
    let mut n = 0;
    let shop = support::convert("shop", WEB_DB, &[]);
    state.apply(&batch(&state, Some(&shop), &BTreeMap::new(), &mut n), 1);
    let scaled = support::convert("shop", &WEB_DB.replace("image: nginx", "image: nginx:2"), &[]);
    let b = batch(&state, Some(&scaled), &BTreeMap::new(), &mut n);
    // Someone updates shop_web between the plan and the write.
    let web = state.services.values().find(|r| r.spec.name == "shop_web").unwrap().clone();
    let by_hand = StoreCommand::UpdateService {
        id: web.id.clone(),
        spec: Box::new(web.spec.clone()),
        expected: reconciler_orchestrator::state::Expect::Any,
    };
    state.apply(&by_hand, 2);
    let before = state.clone();
    let r = state.apply(&b, 3);
    assert!(r.refusal.is_some());
    assert_eq!(state.services, before.services);
    assert_eq!(state.stacks, before.stacks);
}

const WITH_SECRET: &str =
    "services:\n  web:\n    image: nginx\n    secrets: [db]\nsecrets:\n  db:\n    file: ./db.txt\n";

fn sealed(v: &str) -> BTreeMap<String, SealedSecret> {
    let s = SealedSecret { sealed: format!("sealed:{v}").into_bytes(), size: v.len() as u64 };
    BTreeMap::from([("shop_db".to_owned(), s)])
}

#[test]
fn secrets_are_written_sealed_and_a_content_change_is_refused_whole() {
    let mut state = ClusterState::default();
    let mut n = 0;
    let shop = support::convert("shop", WITH_SECRET, &[("db.txt", "one")]);
    let b = batch(&state, Some(&shop), &sealed("one"), &mut n);
    assert_eq!(state.apply(&b, 1).refusal, None);
    assert_eq!(state.secrets["shop_db"].sealed, b"sealed:one");
    let stored = state.secrets["shop_db"].clone();
    let plain = &shop.secrets["shop_db"].digest;
    assert_eq!(stored.salt.len(), 32);
    assert_ne!(&stored.digest, plain, "the cluster shows a salted digest, not the plain SHA-256");
    assert_eq!(stored.digest, salted(&stored.salt, plain));
    no_changes_left(&state, &shop);
    // A label change keeps the sealed value, the salt and the digest.
    let relabelled = WITH_SECRET.replace("file: ./db.txt", "file: ./db.txt\n    labels: {team: a}");
    let relabelled = support::convert("shop", &relabelled, &[("db.txt", "one")]);
    let b = batch(&state, Some(&relabelled), &sealed("one, sealed again"), &mut n);
    assert_eq!(state.apply(&b, 2).refusal, None);
    let kept = &state.secrets["shop_db"];
    assert_eq!(
        (&kept.sealed, &kept.salt, &kept.digest),
        (&stored.sealed, &stored.salt, &stored.digest)
    );
    assert_eq!(kept.labels["team"], "a");
    no_changes_left(&state, &relabelled);
    // Swarm refuses new content under the same name; nothing of the batch is applied.
    let changed = support::convert(
        "shop",
        &WITH_SECRET.replace("image: nginx", "image: nginx:2"),
        &[("db.txt", "two")],
    );
    let before = state.clone();
    let b = batch(&state, Some(&changed), &sealed("two"), &mut n);
    let refusal = state.apply(&b, 3).refusal.expect("refused");
    assert!(refusal.to_string().contains("only updates to Labels are allowed"), "{refusal}");
    assert_eq!(state.services, before.services);
    // A secret to create without a sealed value is the caller's mistake, not a write.
    let fresh = ClusterState::default();
    let wanted = set(&[&shop]);
    let plan = diff(&wanted, &actual(&fresh, "c"), StackPolicy::default());
    let stack = StackName::new("shop");
    let a = Apply {
        stack: &stack,
        plan: &plan.stacks["shop"],
        desired: Some(&shop),
        secrets: &BTreeMap::new(),
        deployment: record("c1"),
    };
    let err = execute(&a, &fresh, &mut || ServiceId::new("x")).unwrap_err();
    assert_eq!(err.to_string(), "secret shop_db has no value to write");
}

#[test]
fn s47_a_config_change_creates_a_new_version_and_the_old_one_stays() {
    let yaml = "services:\n  web:\n    image: nginx\n    configs: [app]\nconfigs:\n  app:\n    file: ./app.conf\n";
    let mut state = ClusterState::default();
    let mut n = 0;
    let one = support::convert("shop", yaml, &[("app.conf", "A")]);
    state.apply(&batch(&state, Some(&one), &BTreeMap::new(), &mut n), 1);
    let two = support::convert("shop", yaml, &[("app.conf", "B")]);
    let b = batch(&state, Some(&two), &BTreeMap::new(), &mut n);
    assert_eq!(state.apply(&b, 2).refusal, None);
    assert_eq!(state.configs.len(), 2);
    no_changes_left(&state, &two);
}

#[test]
fn a_stack_that_left_git_with_prune_is_taken_down_services_first() {
    let mut state = ClusterState::default();
    let mut n = 0;
    let shop = support::convert("shop", WITH_SECRET, &[("db.txt", "one")]);
    state.apply(&batch(&state, Some(&shop), &sealed("one"), &mut n), 1);
    let b = batch(&state, None, &BTreeMap::new(), &mut n);
    assert_eq!(
        commands(&b)[..3],
        ["remove_service svc1", "remove_secret shop_db", "remove_network shop_default"]
    );
    assert_eq!(state.apply(&b, 2).refusal, None);
    assert!(state.services.is_empty() && state.secrets.is_empty() && state.networks.is_empty());
}
