//! The bodies of the stack endpoints, behind `flotilla stack ls | services | ps | history |
//! rollback | rm`: Docker's stack commands (a stack is what carries the
//! `com.docker.stack.namespace` label) with what flotilla's GitOps records add (the revision
//! a stack runs, its sync state, its deployments).
//!
//! ```text
//! GET    /v1/stacks                    → StackList       (`stack ls`)
//! GET    /v1/stacks/{name}/services    → StackServices   (`stack services`: services with task counts)
//! GET    /v1/stacks/{name}/tasks       → StackTasks      (`stack ps`: every task of every service)
//! GET    /v1/stacks/{name}/history     → StackHistory    (`stack history`: deployments, newest first)
//! POST   /v1/stacks/{name}/rollback    StackRollback → StackRolledBack
//! DELETE /v1/stacks/{name}             → StackRemoved    (`stack rm`: one batch)
//! ```
//!
//! An unknown stack is `404` (Docker's `Nothing found in stack: NAME`). Times are the
//! managers' epoch clock; every answer with ages carries the manager's `now`. The JSON of
//! [`StackList`] and [`StackHistory`] is described by `schema/json/stacks.schema.json`.

use crate::client::{ApiClient, ClientError};
use crate::services::{ServiceInfo, ServiceTasks, TaskView};
use reconciler_types::MonoTime;
use serde::{Deserialize, Serialize};

/// The collection path.
pub const STACKS_PATH: &str = "/v1/stacks";

/// A stack's sync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// The cluster runs what Git's head says.
    Synced,
    /// Git offers a commit that is not applied (manual sync, or a held mass deletion).
    OutOfSync,
    /// Services differ from what the last deployment applied (changed by hand).
    Drifted,
    /// Git's head could not be applied, or the last deployment's rollout failed.
    Failed,
    /// Rolled back (`stack rollback`, or a rollout that rolled back by itself).
    RolledBack,
    /// Not deployed from Git.
    Unmanaged,
}

impl SyncStatus {
    /// What `stack ls` prints: `synced`, `out of sync`, `drifted`, `failed`, `rolled back`,
    /// or `-` for a stack Git does not deploy.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "synced",
            SyncStatus::OutOfSync => "out of sync",
            SyncStatus::Drifted => "drifted",
            SyncStatus::Failed => "failed",
            SyncStatus::RolledBack => "rolled back",
            SyncStatus::Unmanaged => "-",
        }
    }
}

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentOutcome {
    /// Its rollouts are still running.
    InProgress,
    /// Every rollout it started completed.
    Succeeded,
    /// A rollout failed and was rolled back.
    RolledBack,
    /// A rollout failed and stopped, or the plan could not be applied.
    Failed,
}

impl DeploymentOutcome {
    /// `in progress`, `succeeded`, `rolled back`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentOutcome::InProgress => "in progress",
            DeploymentOutcome::Succeeded => "succeeded",
            DeploymentOutcome::RolledBack => "rolled back",
            DeploymentOutcome::Failed => "failed",
        }
    }
}

/// What made a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeploymentTrigger {
    /// Auto sync applied a new commit.
    Sync,
    /// `flotilla reconcile --stack S`.
    Reconcile,
    /// Self-heal reverted a change made by hand.
    SelfHeal,
    /// `flotilla stack rollback`.
    Rollback,
}

impl DeploymentTrigger {
    /// `sync`, `reconcile`, `self-heal`, `rollback`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentTrigger::Sync => "sync",
            DeploymentTrigger::Reconcile => "reconcile",
            DeploymentTrigger::SelfHeal => "self-heal",
            DeploymentTrigger::Rollback => "rollback",
        }
    }
}

/// One deployment record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentView {
    /// Its id (the log index that recorded it).
    pub id: u64,
    /// The commit whose specs were applied.
    pub commit: String,
    /// The commit's author.
    pub author: String,
    /// The commit's subject line.
    pub subject: String,
    /// When it was applied.
    pub at: MonoTime,
    /// The plan's summary (`1 created, 2 updated`).
    pub summary: String,
    /// What made it.
    pub trigger: DeploymentTrigger,
    /// Who asked (a reconcile or a rollback).
    #[serde(default)]
    pub by: Option<String>,
    /// How it ended.
    pub outcome: DeploymentOutcome,
    /// Why it failed or rolled back.
    #[serde(default)]
    pub message: String,
}

/// One stack as `stack ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackView {
    /// Its name.
    pub name: String,
    /// How many services it has.
    pub services: u64,
    /// The commit it runs (its last deployment's).
    pub revision: Option<String>,
    /// Its sync state.
    pub sync: SyncStatus,
    /// Why it is in that state (empty when synced).
    #[serde(default)]
    pub message: String,
    /// The services that differ from what the last deployment applied.
    #[serde(default)]
    pub drifted: Vec<String>,
    /// Its last deployment.
    pub last_deployment: Option<DeploymentView>,
}

/// `GET /v1/stacks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackList {
    /// The stacks, by name.
    pub stacks: Vec<StackView>,
    /// The answering manager's time, for ages.
    pub now: MonoTime,
}

/// `GET /v1/stacks/{name}/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackServices {
    /// The stack.
    pub stack: String,
    /// Its services, with their task counts.
    pub services: Vec<ServiceInfo>,
    /// The services that differ from what the last deployment applied.
    #[serde(default)]
    pub drifted: Vec<String>,
}

/// `GET /v1/stacks/{name}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackTasks {
    /// The stack.
    pub stack: String,
    /// Each service with its tasks.
    pub services: Vec<ServiceTasks>,
    /// Tasks of the stack's services that were removed, until they stop and are reaped
    /// (what `stack rm --detach=false` waits for).
    #[serde(default)]
    pub removed: Vec<TaskView>,
    /// The services that differ from what the last deployment applied.
    #[serde(default)]
    pub drifted: Vec<String>,
    /// The answering manager's time, for ages.
    pub now: MonoTime,
}

/// `GET /v1/stacks/{name}/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackHistory {
    /// The stack.
    pub stack: String,
    /// Its deployments, newest first.
    pub deployments: Vec<DeploymentView>,
    /// The commit the stack was rolled back from (auto sync leaves it alone).
    #[serde(default)]
    pub rolled_back_from: Option<String>,
    /// The answering manager's time, for ages.
    pub now: MonoTime,
}

/// `POST /v1/stacks/{name}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRollback {
    /// A commit or a prefix of one (`None`: the deployment before the current one).
    #[serde(default)]
    pub to: Option<String>,
    /// Who asks (recorded with the deployment).
    pub by: String,
}

/// The answer to a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRolledBack {
    /// The new deployment's id.
    pub deployment: u64,
    /// The commit the stack returned to.
    pub commit: String,
    /// The commit it left (auto sync will not apply it again).
    pub from: String,
    /// What changed (`1 updated, 1 removed`).
    pub summary: String,
}

/// One object `stack rm` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedObject {
    /// `service`, `secret`, `config` or `network`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// The answer to `DELETE /v1/stacks/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRemoved {
    /// What was removed, in order.
    pub removed: Vec<RemovedObject>,
    /// The stack is deployed from Git: the GitOps loop may create it again.
    #[serde(default)]
    pub from_git: bool,
}

/// The path of one stack (`/v1/stacks/{name}`), percent-encoded.
pub fn stack_path(name: &str) -> String {
    let mut out = String::from(STACKS_PATH);
    out.push('/');
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ApiClient {
    /// `stack ls`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn stacks(&self) -> Result<StackList, ClientError> {
        self.get(STACKS_PATH).await
    }

    /// `stack services`.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` for a stack with nothing in it.
    pub async fn stack_services(&self, name: &str) -> Result<StackServices, ClientError> {
        self.get(&format!("{}/services", stack_path(name))).await
    }

    /// `stack ps`.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` for a stack without tasks.
    pub async fn stack_tasks(&self, name: &str) -> Result<StackTasks, ClientError> {
        self.get(&format!("{}/tasks", stack_path(name))).await
    }

    /// `stack history`.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` for a stack without deployments.
    pub async fn stack_history(&self, name: &str) -> Result<StackHistory, ClientError> {
        self.get(&format!("{}/history", stack_path(name))).await
    }

    /// `stack rollback`.
    ///
    /// # Errors
    /// See [`ClientError`]; `FailedPrecondition` when there is nothing to return to.
    pub async fn rollback_stack(
        &self,
        name: &str,
        req: &StackRollback,
    ) -> Result<StackRolledBack, ClientError> {
        self.post(&format!("{}/rollback", stack_path(name)), req).await
    }

    /// `stack rm`.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` when nothing carries the stack's name.
    pub async fn remove_stack(&self, name: &str) -> Result<StackRemoved, ClientError> {
        self.delete(&stack_path(name)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn states_and_outcomes_read_as_flotilla_prints_them_and_serialize_in_snake_case() {
        assert_eq!(SyncStatus::OutOfSync.as_str(), "out of sync");
        assert_eq!(serde_json::to_string(&SyncStatus::OutOfSync).unwrap(), "\"out_of_sync\"");
        assert_eq!(DeploymentOutcome::RolledBack.as_str(), "rolled back");
        assert_eq!(serde_json::to_string(&DeploymentTrigger::SelfHeal).unwrap(), "\"self-heal\"");
        assert_eq!(stack_path("shop"), "/v1/stacks/shop");
        assert_eq!(stack_path("a/b c"), "/v1/stacks/a%2Fb%20c");
    }
}
