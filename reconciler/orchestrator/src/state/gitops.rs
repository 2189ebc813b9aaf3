//! What the GitOps loop replicates: the Git source the leader deploys from (so whichever
//! manager leads runs the loop), what the leader last saw of it, and per stack its
//! deployment records and sync state. Written only through [`GitopsCommand`], one variant of
//! [`StoreCommand`](super::StoreCommand); read by `stack ls|ps|history` on any manager.
//!
//! Credentials and webhook secrets are sealed with the cluster key before they are written;
//! this module never sees them in the clear.

use super::apply::check;
use super::command::{Expect, RecordKind, Refusal};
use super::{ClusterState, StackHistory};
use reconciler_types::{MonoTime, ServiceId, ServiceSpec, StackName, StackSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How many deployment records a stack keeps.
pub const DEPLOYMENT_HISTORY_LIMIT: usize = 50;

/// How many of a stack's newest deployments keep what they applied (the rollback targets of
/// `flotilla stack rollback`).
pub const ROLLBACK_TARGET_LIMIT: usize = 10;

/// The default poll interval of a Git source.
pub const DEFAULT_POLL: Duration = Duration::from_secs(60);

/// A credential for a private repository, sealed with the cluster key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCredential {
    /// `ssh-key` (a private key for ssh URLs) or `token` (an https password or token).
    pub kind: CredentialKind,
    /// The user name given with a token (`x-access-token`, `oauth2`, ...).
    #[serde(default)]
    pub username: Option<String>,
    /// The sealed secret.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCredential").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// The kind of a repository credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// An ssh private key.
    SshKey,
    /// An https token (used as the password).
    Token,
}

/// The Git source of the cluster's stacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    /// A URL (https, ssh, file) or a folder on the managers.
    pub url: String,
    /// The branch whose head is deployed.
    pub branch: String,
    /// The folder of the repository that holds the stacks.
    pub path: String,
    /// How often the leader fetches (with jitter).
    #[serde(with = "reconciler_types::duration_ns")]
    pub poll: Duration,
    /// A credential for a private repository.
    #[serde(default)]
    pub credential: Option<SealedCredential>,
    /// The webhook secret (GitHub and Gitea signatures, GitLab's token), sealed.
    #[serde(default)]
    pub webhook_secret: Option<Vec<u8>>,
    /// The one runtime the cluster's nodes run (`process` or `docker`), when the source
    /// should deploy only the stacks it can run (`flotilla up`); the others are skipped and
    /// listed with the reason in [`SourceStatus::skipped`]. `None`: every stack is deployed.
    #[serde(default)]
    pub runtime: Option<String>,
    /// The log index that last wrote it (ignored in commands).
    #[serde(default)]
    pub version: u64,
}

/// What the leader last saw of the source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The branch head at the last successful fetch.
    pub commit: Option<String>,
    /// Why the last fetch or load failed (`None` when it succeeded).
    pub error: Option<String>,
    /// When the leader last looked.
    pub at: MonoTime,
    /// The head's stacks left out because the source's runtime cannot run them, each as
    /// `stack S: why`.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// How a deployment ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written; the rollouts it started are still running.
    InProgress,
    /// Every rollout it started completed.
    Succeeded,
    /// A rollout failed and was rolled back (never a success).
    RolledBack,
    /// A rollout failed and stopped (paused), or the plan could not be applied.
    Failed,
}

impl Outcome {
    /// `in progress`, `succeeded`, `rolled back`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::InProgress => "in progress",
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack => "rolled back",
            Outcome::Failed => "failed",
        }
    }
}

/// What made a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// The loop applied a new commit (auto sync).
    Sync,
    /// `flotilla reconcile --stack S` (manual sync, or a held mass deletion allowed).
    Reconcile {
        /// Who asked.
        by: String,
    },
    /// Self-heal returned drifted services to Git's state.
    SelfHeal,
    /// `flotilla stack rollback`.
    Rollback {
        /// Who asked.
        by: String,
    },
}

/// One deployment of one stack at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Its id: the log index that recorded it.
    #[serde(default)]
    pub id: u64,
    /// The commit whose specs were applied.
    pub commit: String,
    /// The commit's author (`Name <email>`).
    pub author: String,
    /// The commit's subject line.
    #[serde(default)]
    pub subject: String,
    /// When it was applied.
    pub at: MonoTime,
    /// The plan's summary (`1 created, 2 updated`).
    pub summary: String,
    /// What made it.
    pub trigger: Trigger,
    /// The services it wrote, with the spec version each got: its outcome follows their
    /// rollouts.
    pub services: BTreeMap<ServiceId, u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or rolled back.
    #[serde(default)]
    pub message: String,
}

/// A stack's sync state besides its deployments.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StackSync {
    /// The commit Git last offered for this stack.
    pub head: Option<String>,
    /// Why the head is not applied: invalid files, a refused plan, a held mass deletion.
    pub error: Option<String>,
    /// A held plan waits for `reconcile --stack S --allow-mass-delete`.
    #[serde(default)]
    pub held: bool,
    /// Services whose spec differs from the applied commit's (changed by hand).
    #[serde(default)]
    pub drifted: Vec<String>,
    /// The commit the stack was rolled back from: auto sync does not apply it again.
    #[serde(default)]
    pub rolled_back_from: Option<String>,
}

/// A secret's value as a deployment found it: sealed with the cluster key, as the secret
/// record holds it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSecret {
    /// The sealed value.
    pub sealed: Vec<u8>,
    /// The size of the plain value in bytes.
    pub size: u64,
}

impl std::fmt::Debug for KeptSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptSecret").field("size", &self.size).finish_non_exhaustive()
    }
}

/// What a deployment applied, as kept: the stack as Git had it at its commit with its
/// services' specs kept once per stack in [`StackDeploys::kept_services`] (consecutive
/// deployments share most of them), and the sealed values of the secrets it used. Read it
/// whole with [`StackDeploys::kept`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedStack {
    /// The stack's specs, its `services` left empty.
    pub stack: StackSpec,
    /// Its services: the key under `services:` → the key of the spec in `kept_services`.
    #[serde(default)]
    pub services: BTreeMap<String, u64>,
    /// Its secrets' values by cluster name, sealed.
    #[serde(default)]
    pub secrets: BTreeMap<String, KeptSecret>,
}

/// What a deployment applied, whole: what `flotilla stack rollback` returns a stack to, so
/// that it needs no Git (and works after the configs and secrets it used were collected).
#[derive(Debug, Clone, PartialEq)]
pub struct KeptStack {
    /// The stack's specs.
    pub stack: StackSpec,
    /// Its secrets' values by cluster name, sealed.
    pub secrets: BTreeMap<String, KeptSecret>,
}

/// A stack's deployments (newest last) and sync state, kept in its [`StackHistory`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StackDeploys {
    /// Deployment records, oldest first.
    pub deployments: Vec<Deployment>,
    /// The sync state.
    pub sync: StackSync,
    /// What the newest deployments applied, by deployment id (at most
    /// [`ROLLBACK_TARGET_LIMIT`]; a deployment of a stack that left Git has none).
    #[serde(default)]
    pub applied: BTreeMap<u64, AppliedStack>,
    /// The service specs those deployments applied, each once, by key.
    #[serde(default)]
    pub kept_services: BTreeMap<u64, ServiceSpec>,
}

impl StackDeploys {
    /// What deployment `id` applied (`None`: it keeps nothing, being too old or of a stack
    /// that left Git).
    pub fn kept(&self, id: u64) -> Option<KeptStack> {
        let a = self.applied.get(&id)?;
        let mut stack = a.stack.clone();
        for (name, key) in &a.services {
            stack.services.insert(name.clone(), self.kept_services.get(key)?.clone());
        }
        Some(KeptStack { stack, secrets: a.secrets.clone() })
    }

    /// Whether deployment `id` keeps what it applied.
    pub fn keeps(&self, id: u64) -> bool {
        self.applied.contains_key(&id)
    }

    /// Keeps what deployment `id` applied, each service spec once.
    fn keep(&mut self, id: u64, desired: &StackSpec, secrets: BTreeMap<String, KeptSecret>) {
        let mut services = BTreeMap::new();
        for (name, spec) in &desired.services {
            let found = self.kept_services.iter().find(|(_, s)| *s == spec).map(|(k, _)| *k);
            let key = found.unwrap_or_else(|| {
                let key = self.kept_services.keys().next_back().map_or(0, |k| k + 1);
                self.kept_services.insert(key, spec.clone());
                key
            });
            services.insert(name.clone(), key);
        }
        let stack = StackSpec { services: BTreeMap::new(), ..desired.clone() };
        self.applied.insert(id, AppliedStack { stack, services, secrets });
    }

    /// Keeps only what the newest [`ROLLBACK_TARGET_LIMIT`] deployments applied.
    fn forget_old(&mut self) {
        let newest: Vec<u64> =
            self.deployments.iter().rev().take(ROLLBACK_TARGET_LIMIT).map(|d| d.id).collect();
        self.applied.retain(|id, _| newest.contains(id));
        let used: std::collections::BTreeSet<u64> =
            self.applied.values().flat_map(|a| a.services.values().copied()).collect();
        self.kept_services.retain(|k, _| used.contains(k));
    }
}

/// A write of GitOps state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "gitops", rename_all = "snake_case")]
pub enum GitopsCommand {
    /// Sets (or, with `None`, clears) the Git source.
    SetSource {
        /// The source.
        source: Option<GitSource>,
        /// CAS on the source.
        expected: Expect,
    },
    /// Records what the leader saw of the source.
    SourceStatus {
        /// The observation.
        status: SourceStatus,
    },
    /// Appends a deployment record: its id becomes the log index and each of its services
    /// gets the spec version it has now (write it after the service commands of the same
    /// batch). The stack's head becomes the commit, the sync error, hold and drift are
    /// cleared, and `rolled_back_from` is kept only by a rollback. With `desired`, the
    /// stack's specs and its secrets' sealed values (read from the secret records, so write
    /// it after the secret commands too) are kept as the deployment's [`AppliedStack`].
    Deployed {
        /// The stack.
        stack: StackName,
        /// The record.
        deployment: Deployment,
        /// The stack as the deployment wrote it (`None`: it left Git).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        desired: Option<Box<StackSpec>>,
    },
    /// Sets a deployment's outcome.
    SetOutcome {
        /// The stack.
        stack: StackName,
        /// The deployment's id.
        id: u64,
        /// The outcome.
        outcome: Outcome,
        /// Why, for a failure or a rollback.
        message: String,
    },
    /// Replaces a stack's sync state.
    SetSync {
        /// The stack.
        stack: StackName,
        /// The new sync state.
        sync: StackSync,
    },
}

impl ClusterState {
    pub(super) fn apply_gitops(&mut self, cmd: &GitopsCommand, index: u64) -> Result<(), Refusal> {
        match cmd {
            GitopsCommand::SetSource { source, expected } => {
                let actual = self.source.as_ref().map(|s| s.version);
                check(RecordKind::Settings, "git source", *expected, actual)?;
                self.source = source.clone().map(|s| GitSource { version: index, ..s });
                Ok(())
            }
            GitopsCommand::SourceStatus { status } => {
                self.source_status = status.clone();
                Ok(())
            }
            GitopsCommand::Deployed { stack, deployment, desired } => {
                let mut record = Deployment { id: index, ..deployment.clone() };
                for (id, v) in &mut record.services {
                    *v = self.services.get(id).map_or(0, |r| r.spec_version);
                }
                let secrets = desired.as_deref().map(|d| self.kept_secrets(d));
                let h = self.stack_mut(stack, index);
                let rollback = matches!(deployment.trigger, Trigger::Rollback { .. });
                h.deploy.deployments.push(record);
                let excess = h.deploy.deployments.len().saturating_sub(DEPLOYMENT_HISTORY_LIMIT);
                h.deploy.deployments.drain(..excess);
                if let (Some(d), Some(secrets)) = (desired.as_deref(), secrets) {
                    h.deploy.keep(index, d, secrets);
                }
                h.deploy.forget_old();
                let sync = &mut h.deploy.sync;
                sync.head = Some(deployment.commit.clone());
                sync.error = None;
                sync.held = false;
                sync.drifted.clear();
                if !rollback {
                    sync.rolled_back_from = None;
                }
                Ok(())
            }
            GitopsCommand::SetOutcome { stack, id, outcome, message } => {
                let h = self.stack_mut(stack, index);
                let Some(d) = h.deploy.deployments.iter_mut().find(|d| d.id == *id) else {
                    return Err(Refusal::NotFound {
                        kind: RecordKind::Stack,
                        id: format!("{stack} deployment {id}"),
                    });
                };
                d.outcome = *outcome;
                d.message.clone_from(message);
                Ok(())
            }
            GitopsCommand::SetSync { stack, sync } => {
                self.stack_mut(stack, index).deploy.sync = sync.clone();
                Ok(())
            }
        }
    }

    /// The sealed values of a stack's secrets, as the secret records hold them.
    fn kept_secrets(&self, desired: &StackSpec) -> BTreeMap<String, KeptSecret> {
        desired
            .secrets
            .keys()
            .filter_map(|name| {
                let r = self.secrets.get(name)?;
                Some((name.clone(), KeptSecret { sealed: r.sealed.clone(), size: r.size }))
            })
            .collect()
    }

    fn stack_mut(&mut self, stack: &StackName, index: u64) -> &mut StackHistory {
        let h = self.stacks.get_or_insert_with(stack.clone(), Default::default);
        h.version = index;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StoreCommand;

    fn source(url: &str) -> GitSource {
        GitSource {
            url: url.into(),
            branch: "main".into(),
            path: "stacks".into(),
            poll: DEFAULT_POLL,
            credential: None,
            webhook_secret: None,
            runtime: None,
            version: 0,
        }
    }

    #[test]
    fn the_source_is_set_with_compare_and_set_and_survives_serialization() {
        let mut state = ClusterState::default();
        let set = |s: GitSource, expected| {
            StoreCommand::Gitops(Box::new(GitopsCommand::SetSource { source: Some(s), expected }))
        };
        let cmd = set(source("https://example.com/a.git"), Expect::Absent);
        let json = serde_json::to_string(&cmd).unwrap();
        assert_eq!(serde_json::from_str::<StoreCommand>(&json).unwrap(), cmd);
        assert_eq!(state.apply(&cmd, 3).refusal, None);
        assert_eq!(state.source.as_ref().unwrap().version, 3);
        let stale = set(source("https://example.com/b.git"), Expect::Absent);
        assert!(state.apply(&stale, 4).refusal.is_some());
        assert_eq!(state.source.as_ref().unwrap().url, "https://example.com/a.git");
        let round: ClusterState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(round.source, state.source);
    }

    #[test]
    fn a_refused_batch_undoes_the_source_and_the_deployment_record() {
        let mut state = ClusterState::default();
        let d = Deployment {
            id: 0,
            commit: "c1".into(),
            author: String::new(),
            subject: String::new(),
            at: MonoTime::ZERO,
            summary: String::new(),
            trigger: Trigger::Sync,
            services: BTreeMap::new(),
            outcome: Outcome::InProgress,
            message: String::new(),
        };
        let stack = StackName::new("shop");
        let batch = StoreCommand::Batch {
            commands: vec![
                StoreCommand::Gitops(Box::new(GitopsCommand::SetSource {
                    source: Some(source("x")),
                    expected: Expect::Any,
                })),
                StoreCommand::Gitops(Box::new(GitopsCommand::Deployed {
                    stack: stack.clone(),
                    deployment: d,
                    desired: None,
                })),
                StoreCommand::RemoveNetwork { name: "missing".into(), expected: Expect::Any },
            ],
        };
        assert!(state.apply(&batch, 5).refusal.is_some());
        assert_eq!(state.source, None);
        assert!(!state.stacks.contains_key(&stack));
    }

    fn deployment(commit: &str) -> Deployment {
        Deployment {
            id: 0,
            commit: commit.into(),
            author: String::new(),
            subject: String::new(),
            at: MonoTime::ZERO,
            summary: String::new(),
            trigger: Trigger::Sync,
            services: BTreeMap::new(),
            outcome: Outcome::InProgress,
            message: String::new(),
        }
    }

    #[test]
    fn the_newest_deployments_keep_their_specs_and_sealed_secret_values() {
        use super::super::SecretRecord;
        use reconciler_types::SecretSpec;
        let mut state = ClusterState::default();
        let stack = StackName::new("shop");
        let secret = SecretRecord {
            name: "shop_pw".into(),
            labels: BTreeMap::new(),
            digest: "d1".into(),
            salt: String::new(),
            sealed: vec![7, 7],
            size: 2,
            version: 0,
        };
        let put = StoreCommand::PutSecret { secret: Box::new(secret), expected: Expect::Absent };
        assert_eq!(state.apply(&put, 1).refusal, None);
        let mut spec = StackSpec { name: stack.clone(), ..StackSpec::default() };
        spec.secrets.insert(
            "shop_pw".into(),
            SecretSpec { name: "shop_pw".into(), ..SecretSpec::default() },
        );
        let db = ServiceSpec { name: "shop_db".into(), ..ServiceSpec::default() };
        spec.services.insert("db".into(), db);
        // The web service changes every fourth commit; the db never.
        let at = |i: u64| {
            let mut s = spec.clone();
            let mut web = ServiceSpec { name: "shop_web".into(), ..ServiceSpec::default() };
            web.task_template.container_spec.image = format!("nginx:{}", i / 4);
            s.services.insert("web".into(), web);
            s
        };
        for i in 0..12u64 {
            let cmd = StoreCommand::Gitops(Box::new(GitopsCommand::Deployed {
                stack: stack.clone(),
                deployment: deployment(&format!("c{i}")),
                desired: Some(Box::new(at(i))),
            }));
            assert_eq!(state.apply(&cmd, 10 + i).refusal, None);
        }
        let deploy = &state.stacks[&stack].deploy;
        let kept: Vec<u64> = deploy.applied.keys().copied().collect();
        assert_eq!(kept, (12..22).collect::<Vec<u64>>(), "only the newest {ROLLBACK_TARGET_LIMIT}");
        assert_eq!(deploy.kept_services.len(), 4, "each service spec once: db, web 0, 1 and 2");
        assert_eq!(deploy.kept(12).unwrap().stack, at(2));
        assert_eq!(deploy.kept(11), None);
        let newest = deploy.kept(21).unwrap();
        assert_eq!(newest.stack, at(11));
        assert_eq!(newest.secrets["shop_pw"], KeptSecret { sealed: vec![7, 7], size: 2 });
        assert!(!format!("{newest:?}").contains("[7, 7]"), "sealed values stay out of Debug");
        let round: ClusterState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(round.stacks[&stack].deploy, *deploy);
    }
}
