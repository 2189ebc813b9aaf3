//! The stack commands' reads and writes on states made through the real executor and the
//! real `apply`: sync state and drift, a rollback to an earlier deployment's specs (and what
//! auto sync does after it), and a stack's removal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../planner/tests/support/mod.rs"]
mod support;

use reconciler_deploy::stacks::{
    self, RollbackError, RollbackRequest, SyncState, plan_summary, rollback, status,
};
use reconciler_deploy::sync::{Decision, SyncInput, decide, still_pinned};
use reconciler_deploy::{Apply, SealedSecret, actual, execute};
use reconciler_orchestrator::state::gitops::{
    Deployment, GitSource, GitopsCommand, Outcome, SourceStatus, StackSync, Trigger,
};
use reconciler_orchestrator::state::{ClusterState, Expect, StoreCommand};
use reconciler_planner::diff;
use reconciler_planner::plan::Counts;
use reconciler_types::{MonoTime, ServiceId, StackName, StackPolicy, StackSet, StackSpec};
use std::collections::BTreeMap;
use std::time::Duration;

const C1: &str = "c1c1c1c1c1c1c1c1c1c1";
const C2: &str = "c2c2c2c2c2c2c2c2c2c2";
const C3: &str = "c3c3c3c3c3c3c3c3c3c3";

const WEB_DB: &str = "services:\n  web:\n    image: nginx\n  db:\n    image: postgres\n";
const WEB2_DB_CACHE: &str = "services:\n  web:\n    image: nginx:2\n  db:\n    image: postgres\n  cache:\n    image: redis\n";

fn shop() -> StackName {
    StackName::new("shop")
}

fn set(s: &StackSpec) -> StackSet {
    StackSet { source: "git".into(), stacks: BTreeMap::from([(s.name.clone(), s.clone())]) }
}

/// A cluster with a manager's counters: ids and log indexes move on with every write.
struct Cluster {
    state: ClusterState,
    index: u64,
    ids: u32,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster { state: ClusterState::default(), index: 0, ids: 0 }
    }

    #[track_caller]
    fn write(&mut self, cmd: &StoreCommand) -> u64 {
        self.index += 1;
        let r = self.state.apply(cmd, self.index);
        assert_eq!(r.refusal, None, "{cmd:?}");
        self.index
    }

    /// What the GitOps loop writes for a commit of the shop stack: the plan, applied, with
    /// its deployment record; then the outcome.
    fn deploy(
        &mut self,
        commit: &str,
        spec: &StackSpec,
        secrets: &BTreeMap<String, SealedSecret>,
        outcome: Outcome,
    ) -> u64 {
        let policy = StackPolicy { prune: true, ..StackPolicy::default() };
        let plan = diff(&set(spec), &actual(&self.state, "cluster"), policy);
        let part = plan.stacks.get("shop").expect("shop changes");
        let deployment = Deployment {
            id: 0,
            commit: commit.into(),
            author: "Ann <ann@example.com>".into(),
            subject: format!("commit {commit}"),
            at: MonoTime::from_secs(100),
            summary: plan_summary(&part.counts),
            trigger: Trigger::Sync,
            services: BTreeMap::new(),
            outcome: Outcome::InProgress,
            message: String::new(),
        };
        let stack = shop();
        let a = Apply { stack: &stack, plan: part, desired: Some(spec), secrets, deployment };
        let ids = &mut self.ids;
        let batch = execute(&a, &self.state, &mut || {
            *ids += 1;
            ServiceId::new(format!("svc{ids}"))
        })
        .unwrap();
        let id = self.write(&batch);
        let message = String::new();
        let set = GitopsCommand::SetOutcome { stack: shop(), id, outcome, message };
        self.write(&StoreCommand::Gitops(Box::new(set)));
        id
    }

    fn rollback(&mut self, to: Option<&str>) -> Result<stacks::Rollback, RollbackError> {
        let req = RollbackRequest { to, by: "bob", at: MonoTime::from_secs(200) };
        let ids = &mut self.ids;
        rollback(&self.state, &shop(), &req, &mut || {
            *ids += 1;
            ServiceId::new(format!("svc{ids}"))
        })
    }

    fn sync(&self) -> StackSync {
        self.state.stacks[&shop()].deploy.sync.clone()
    }

    fn by_hand(&mut self, service: &str, image: &str) {
        let r = self.state.services.values().find(|r| r.spec.name == service).unwrap().clone();
        let mut spec = r.spec.clone();
        spec.task_template.container_spec.image = image.into();
        let cmd = StoreCommand::UpdateService {
            id: r.id,
            spec: Box::new(spec),
            expected: Expect::Version(r.version),
        };
        self.write(&cmd);
    }
}

#[track_caller]
fn no_changes_left(state: &ClusterState, desired: &StackSpec) {
    let plan = diff(&set(desired), &actual(state, "cluster"), StackPolicy::default());
    assert!(!plan.has_changes(), "{plan:#?}");
}

fn sync_of(c: &Cluster) -> (SyncState, String) {
    let s = status(&c.state, &shop()).expect("shop is a stack");
    (s.sync, s.message)
}

#[test]
fn plan_summaries_name_what_changes() {
    let c = Counts { created: 1, updated: 2, removed: 0, orphaned: 4, rollout_batches: 3 };
    assert_eq!(plan_summary(&c), "1 created, 2 updated");
    assert_eq!(plan_summary(&Counts::default()), "no changes");
}

#[test]
fn a_deployed_stack_is_synced_until_changed_by_hand_or_git_moves_on() {
    let mut c = Cluster::new();
    let one = support::convert("shop", WEB_DB, &[]);
    c.deploy(C1, &one, &BTreeMap::new(), Outcome::Succeeded);
    let s = status(&c.state, &shop()).unwrap();
    assert_eq!(
        (s.services, s.sync, s.last.map(|d| d.commit.as_str())),
        (2, SyncState::Synced, Some(C1))
    );
    // Git's head moves on: out of sync until the loop applies it (or finds it in sync).
    let source = GitSource {
        url: "https://example.com/shop.git".into(),
        branch: "main".into(),
        path: "stacks".into(),
        poll: Duration::from_secs(60),
        credential: None,
        webhook_secret: None,
        runtime: None,
        version: 0,
    };
    c.write(&StoreCommand::Gitops(Box::new(GitopsCommand::SetSource {
        source: Some(source),
        expected: Expect::Any,
    })));
    let seen = SourceStatus {
        commit: Some(C2.into()),
        error: None,
        at: MonoTime::from_secs(150),
        skipped: Vec::new(),
    };
    c.write(&StoreCommand::Gitops(Box::new(GitopsCommand::SourceStatus { status: seen })));
    assert_eq!(sync_of(&c), (SyncState::OutOfSync, "c2c2c2c2c2c2 is not applied".into()));
    let in_sync = StackSync { head: Some(C2.into()), ..c.sync() };
    c.write(&StoreCommand::Gitops(Box::new(GitopsCommand::SetSync {
        stack: shop(),
        sync: in_sync,
    })));
    assert_eq!(sync_of(&c).0, SyncState::Synced);
    // A change by hand is drift, against what the last deployment applied.
    c.by_hand("shop_db", "postgres:17");
    assert_eq!(sync_of(&c), (SyncState::Drifted, "changed by hand: shop_db".into()));
    assert_eq!(status(&c.state, &shop()).unwrap().drifted, ["shop_db"]);
    // A commit that cannot be applied is a failure, whatever else holds.
    let failed = StackSync { error: Some("stack.yml: invalid".into()), ..c.sync() };
    c.write(&StoreCommand::Gitops(Box::new(GitopsCommand::SetSync {
        stack: shop(),
        sync: failed,
    })));
    assert_eq!(sync_of(&c), (SyncState::Failed, "stack.yml: invalid".into()));
}

#[test]
fn a_service_removed_by_hand_is_drift_and_the_stack_stays_listed() {
    let mut c = Cluster::new();
    let one = support::convert("shop", WEB_DB, &[]);
    c.deploy(C1, &one, &BTreeMap::new(), Outcome::Succeeded);
    let (cmd, _) = stacks::remove(&c.state, &shop()).unwrap();
    c.write(&cmd);
    let s = status(&c.state, &shop()).expect("a stack Git deploys stays listed");
    assert_eq!((s.services, s.sync), (0, SyncState::Drifted));
    assert_eq!(s.drifted, ["shop_db", "shop_web"]);
}

#[test]
fn stacks_without_records_are_unmanaged_and_a_stack_with_nothing_is_none() {
    let mut c = Cluster::new();
    let one = support::convert("shop", WEB_DB, &[]);
    for (i, spec) in one.services.values().enumerate() {
        let id = ServiceId::new(format!("s{i}"));
        c.write(&StoreCommand::CreateService { id, spec: Box::new(spec.clone()) });
    }
    let all = stacks::statuses(&c.state);
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].services, all[0].sync), (2, SyncState::Unmanaged));
    assert_eq!(status(&c.state, &StackName::new("other")), None);
    assert_eq!(stacks::remove(&c.state, &StackName::new("other")), None);
}

#[test]
fn a_rollback_returns_to_the_previous_deployment_and_pins_the_commit_it_left() {
    let mut c = Cluster::new();
    let one = support::convert("shop", WEB_DB, &[]);
    let two = support::convert("shop", WEB2_DB_CACHE, &[]);
    c.deploy(C1, &one, &BTreeMap::new(), Outcome::Succeeded);
    c.deploy(C2, &two, &BTreeMap::new(), Outcome::Succeeded);
    let r = c.rollback(None).unwrap();
    assert_eq!((r.target.commit.as_str(), r.from.as_str()), (C1, C2));
    assert_eq!(r.summary, "1 updated, 1 removed");
    c.write(&r.command);
    // The stack runs what c1 applied: web back to nginx, cache gone.
    no_changes_left(&c.state, &one);
    let deploys = &c.state.stacks[&shop()].deploy;
    let last = deploys.deployments.last().unwrap();
    assert_eq!(last.commit, C1);
    assert_eq!(last.trigger, Trigger::Rollback { by: "bob".into() });
    assert_eq!(
        (last.at, last.summary.as_str()),
        (MonoTime::from_secs(200), "1 updated, 1 removed")
    );
    assert_eq!(deploys.sync.head.as_deref(), Some(C1));
    assert_eq!(deploys.sync.rolled_back_from.as_deref(), Some(C2));
    assert_eq!(sync_of(&c), (SyncState::RolledBack, "rolled back from c2c2c2c2c2c2".into()));
    // Auto sync does not apply c2 again; a new commit is applied.
    let git = diff(&set(&two), &actual(&c.state, "cluster"), StackPolicy::default());
    let input = |head| SyncInput {
        plan: git.stacks.get("shop"),
        warnings: &[],
        policy: StackPolicy::default(),
        head,
        sync: Some(&deploys.sync),
        request: None,
        pinned: false,
    };
    assert_eq!(decide(&input(C2)), Decision::Pinned);
    assert_eq!(decide(&input(C3)), Decision::Apply(Trigger::Sync));
    // A commit that changes only other stacks offers the same stack: still pinned.
    assert!(still_pinned(deploys, Some(&two)));
    assert_eq!(decide(&SyncInput { pinned: true, ..input(C3) }), Decision::Pinned);
    let three = support::convert("shop", &WEB2_DB_CACHE.replace("redis", "redis:8"), &[]);
    assert!(!still_pinned(deploys, Some(&three)), "a change to the stack ends the pin");
    assert!(!still_pinned(deploys, Some(&one)) && !still_pinned(deploys, None));
}

#[test]
fn a_second_rollback_goes_further_back_and_keeps_the_pin() {
    let mut c = Cluster::new();
    let zero = support::convert("shop", "services:\n  web:\n    image: nginx:0\n", &[]);
    let one = support::convert("shop", WEB_DB, &[]);
    let two = support::convert("shop", WEB2_DB_CACHE, &[]);
    c.deploy("c0c0c0c0c0", &zero, &BTreeMap::new(), Outcome::Succeeded);
    c.deploy(C1, &one, &BTreeMap::new(), Outcome::Succeeded);
    c.deploy(C2, &two, &BTreeMap::new(), Outcome::RolledBack);
    // c2 is the current deployment: the first rollback returns to c1, the second skips c1
    // (current) and c2 (the commit it was rolled back from) and returns to c0.
    let first = c.rollback(None).unwrap();
    assert_eq!(first.target.commit, C1);
    c.write(&first.command);
    let second = c.rollback(None).unwrap();
    assert_eq!((second.target.commit.as_str(), second.from.as_str()), ("c0c0c0c0c0", C2));
    c.write(&second.command);
    no_changes_left(&c.state, &zero);
    assert_eq!(c.sync().rolled_back_from.as_deref(), Some(C2));
}

#[test]
fn rollback_to_a_revision_names_it_by_a_prefix_and_says_why_it_cannot() {
    let mut c = Cluster::new();
    let one = support::convert("shop", WEB_DB, &[]);
    let two = support::convert("shop", WEB2_DB_CACHE, &[]);
    c.deploy(C1, &one, &BTreeMap::new(), Outcome::Succeeded);
    c.deploy("c1d1d1d1d1", &two, &BTreeMap::new(), Outcome::Succeeded);
    c.deploy(C2, &one, &BTreeMap::new(), Outcome::Succeeded);
    let err = |c: &mut Cluster, to| c.rollback(Some(to)).unwrap_err().to_string();
    assert_eq!(
        err(&mut c, "c1"),
        "revision c1 is ambiguous in stack shop's history: c1c1c1c1c1c1, c1d1d1d1d1"
    );
    assert_eq!(err(&mut c, "ffff"), "stack shop has no deployment of revision ffff");
    let r = c.rollback(Some("c1d")).unwrap();
    assert_eq!(r.target.commit, "c1d1d1d1d1");
    c.write(&r.command);
    no_changes_left(&c.state, &two);
    assert_eq!(
        err(&mut c, C2),
        "stack shop was rolled back from c2c2c2c2c2c2c2c2c2c2: apply it again with `flotilla reconcile --stack shop`"
    );
    // Specs are kept for the newest deployments only.
    for i in 0..10 {
        let spec = if i % 2 == 0 { &one } else { &two };
        c.deploy(&format!("d{i}"), spec, &BTreeMap::new(), Outcome::Succeeded);
    }
    assert_eq!(
        err(&mut c, "c1c1"),
        "the deployment of c1c1 to stack shop no longer keeps its specs (only the newest 10 do): revert the commit in Git instead"
    );
    let fresh = Cluster::new();
    let req = RollbackRequest { to: None, by: "bob", at: MonoTime::ZERO };
    let e = rollback(&fresh.state, &shop(), &req, &mut || ServiceId::new("x")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "stack shop has no deployments: only stacks deployed from Git can be rolled back"
    );
}

#[test]
fn a_stack_with_one_deployment_has_nothing_to_roll_back_to() {
    let mut c = Cluster::new();
    c.deploy(C1, &support::convert("shop", WEB_DB, &[]), &BTreeMap::new(), Outcome::Succeeded);
    assert_eq!(
        c.rollback(None).unwrap_err().to_string(),
        "stack shop has no earlier successful deployment to roll back to (the newest 10 deployments keep their specs)"
    );
}

const WITH_SECRET: &str = "services:\n  web:\n    image: nginx\n    secrets: [db]\n    configs: [app]\nsecrets:\n  db:\n    file: ./db.txt\nconfigs:\n  app:\n    file: ./app.conf\n";

#[test]
fn a_rollback_brings_back_a_secret_and_a_config_removed_since() {
    let mut c = Cluster::new();
    let files = [("db.txt", "one"), ("app.conf", "A")];
    let one = support::convert("shop", WITH_SECRET, &files);
    let sealed = SealedSecret { sealed: b"sealed:one".to_vec(), size: 3 };
    c.deploy(C1, &one, &BTreeMap::from([("shop_db".to_owned(), sealed)]), Outcome::Succeeded);
    let two = support::convert("shop", "services:\n  web:\n    image: nginx:2\n", &[]);
    c.deploy(C2, &two, &BTreeMap::new(), Outcome::Succeeded);
    // The orphaned secret and config are removed by hand.
    let secret = c.state.secrets["shop_db"].version;
    c.write(&StoreCommand::RemoveSecret {
        name: "shop_db".into(),
        expected: Expect::Version(secret),
    });
    let config = c.state.configs.values().next().unwrap().clone();
    let expected = Expect::Version(config.version);
    c.write(&StoreCommand::RemoveConfig { name: config.name.clone(), expected });
    let r = c.rollback(None).unwrap();
    c.write(&r.command);
    no_changes_left(&c.state, &one);
    assert_eq!(c.state.secrets["shop_db"].sealed, b"sealed:one");
    assert_eq!(c.state.configs[&config.name].data, b"A");
}

#[test]
fn stack_rm_removes_services_secrets_configs_and_networks_in_one_batch() {
    let mut c = Cluster::new();
    let files = [("db.txt", "one"), ("app.conf", "A")];
    let one = support::convert("shop", WITH_SECRET, &files);
    let sealed = SealedSecret { sealed: b"sealed:one".to_vec(), size: 3 };
    c.deploy(C1, &one, &BTreeMap::from([("shop_db".to_owned(), sealed)]), Outcome::Succeeded);
    let other = support::convert("other", WEB_DB, &[]);
    for (i, spec) in other.services.values().enumerate() {
        let id = ServiceId::new(format!("o{i}"));
        c.write(&StoreCommand::CreateService { id, spec: Box::new(spec.clone()) });
    }
    let (cmd, removed) = stacks::remove(&c.state, &shop()).unwrap();
    let lines: Vec<String> = removed.iter().map(|r| format!("{} {}", r.kind, r.name)).collect();
    let config = c.state.configs.keys().next().unwrap().clone();
    assert_eq!(
        lines,
        [
            "service shop_web".to_owned(),
            "secret shop_db".to_owned(),
            format!("config {config}"),
            "network shop_default".to_owned(),
        ]
    );
    c.write(&cmd);
    assert!(c.state.secrets.is_empty() && c.state.configs.is_empty());
    assert!(c.state.networks.is_empty());
    assert_eq!(c.state.services.len(), 2, "the other stack stays");
    // A change between the read and the write refuses the whole batch.
    let (cmd, _) = stacks::remove(&c.state, &StackName::new("other")).unwrap();
    c.by_hand("other_web", "nginx:2");
    let before = c.state.clone();
    c.index += 1;
    assert!(c.state.apply(&cmd, c.index).refusal.is_some());
    assert_eq!(c.state.services, before.services);
}
