//! `--state FILE` against a snapshot written by the real store type (`ClusterState`), so
//! a renamed field on either side shows up here.

use crate::support::{GitRepo, golden_all};
use reconciler_planner::{StackInput, convert_stack};
use reconciler_source::Repo;
use reconciler_store::cluster_state::{
    AppliedCommit, ClusterState, ConfigRecord, NetworkRecord, SecretRecord, ServiceRecord,
    StackHistory,
};
use reconciler_types::stack::NAMESPACE_LABEL;
use reconciler_types::{ServiceId, ServiceSpec, StackName};
use std::collections::BTreeMap;

/// The cluster as it would be after deploying `rev` of `repo`.
fn deployed(repo: &GitRepo, rev: &str) -> ClusterState {
    let cache = tempfile::tempdir().unwrap();
    let source = Repo::open(repo.path().to_str().unwrap(), cache.path()).unwrap();
    let revision = source.read(rev, "stacks", None).unwrap();
    let mut state = ClusterState::default();
    for (name, s) in &revision.stacks {
        let input = StackInput { name, config: &s.config, files: &s.files, policy: s.policy };
        let spec = convert_stack(&input).unwrap();
        for svc in spec.services.values() {
            let id = ServiceId::new(format!("id-{}", svc.name));
            let record =
                ServiceRecord { version: 3, ..ServiceRecord::new(id.clone(), svc.clone(), 1) };
            state.services.insert(id, record);
        }
        for c in spec.configs.values() {
            let record = ConfigRecord {
                name: c.name.clone(),
                labels: c.labels.clone(),
                data: c.data.clone(),
                version: 2,
            };
            state.configs.insert(c.name.clone(), record);
        }
        for s in spec.secrets.values() {
            // As a cluster stores it: the digest salted per secret.
            let salt = reconciler_planner::secret_digest::salt_for(s.name.as_bytes());
            let record = SecretRecord {
                name: s.name.clone(),
                labels: s.labels.clone(),
                digest: reconciler_planner::secret_digest::salted(&salt, &s.digest),
                salt,
                sealed: vec![1, 2, 3],
                size: 3,
                version: 2,
            };
            state.secrets.insert(s.name.clone(), record);
        }
        for n in spec.networks.values() {
            state.networks.insert(n.name.clone(), NetworkRecord { spec: n.clone(), version: 1 });
        }
        let history = StackHistory {
            applied: vec![AppliedCommit { commit: revision.commit.clone(), index: 4 }],
            version: 4,
            ..StackHistory::default()
        };
        state.stacks.insert(name.clone(), history);
    }
    state
}

#[test]
fn reconcile_diffs_against_a_state_snapshot_when_given_one() {
    let mut repo = GitRepo::new().with_examples();
    let base = repo.commit("examples");
    let mut state = deployed(&repo, &base);
    // A service of a stack Git does not have, and an older config version kept for rollback.
    let mut legacy = ServiceSpec { name: "legacy_worker".into(), ..ServiceSpec::default() };
    legacy.labels.insert(NAMESPACE_LABEL.into(), "legacy".into());
    let id = ServiceId::new("id-legacy");
    state
        .services
        .insert(id.clone(), ServiceRecord { version: 1, ..ServiceRecord::new(id, legacy, 1) });
    let old = ConfigRecord {
        name: "shop_web_settings-0000000000".into(),
        labels: BTreeMap::from([(NAMESPACE_LABEL.to_owned(), "shop".to_owned())]),
        data: b"old".to_vec(),
        version: 1,
    };
    state.configs.insert(old.name.clone(), old);
    state.stacks.insert(StackName::new("legacy"), StackHistory::default());
    repo.edit("stacks/shop/stack.yml", |t| t.replace("replicas: 3", "replicas: 4"));
    repo.write("stacks/shop/secrets/db_password.txt", "rotated");
    repo.commit("scale web, rotate the password");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    assert_eq!(golden_all("state_snapshot", repo.path(), &["--state", file.to_str().unwrap()]), 2);
}

#[test]
fn reconcile_shows_no_change_when_the_snapshot_matches_git() {
    let mut repo = GitRepo::new().with_examples();
    let base = repo.commit("examples");
    let state = deployed(&repo, &base);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, serde_json::to_string(&state).unwrap()).unwrap();
    let run = crate::support::reconcile(repo.path(), &["--state", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}
