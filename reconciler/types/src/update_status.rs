//! A service's rolling-update status, as `docker service inspect` shows it (`UpdateStatus`).
//! The orchestrator's rollout state machine sets it; the store keeps it on the service.

use crate::time::MonoTime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The state of a service's update (swarmkit `UpdateStatus_UpdateState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    /// A rolling update is in progress.
    Updating,
    /// The update stopped after too many failures (failure action pause).
    Paused,
    /// The update finished.
    Completed,
    /// A rollback (automatic or manual) is in progress.
    RollbackStarted,
    /// The rollback stopped after too many failures.
    RollbackPaused,
    /// The rollback finished.
    RollbackCompleted,
}

impl UpdateState {
    /// Docker's lowercase name (`updating`, `rollback_started`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Updating => "updating",
            UpdateState::Paused => "paused",
            UpdateState::Completed => "completed",
            UpdateState::RollbackStarted => "rollback_started",
            UpdateState::RollbackPaused => "rollback_paused",
            UpdateState::RollbackCompleted => "rollback_completed",
        }
    }

    /// Paused or rollback-paused: nothing proceeds until the next service update.
    pub fn is_paused(self) -> bool {
        matches!(self, UpdateState::Paused | UpdateState::RollbackPaused)
    }
}

impl fmt::Display for UpdateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service's update status: state, Docker's message, and when it started and completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// The state.
    pub state: UpdateState,
    /// The message Docker shows (`update in progress`, `update completed`, ...).
    pub message: String,
    /// When the update (or rollback) started.
    pub started_at: Option<MonoTime>,
    /// When it completed.
    pub completed_at: Option<MonoTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_state_names_are_dockers() {
        assert_eq!(UpdateState::RollbackStarted.as_str(), "rollback_started");
        assert_eq!(UpdateState::Paused.to_string(), "paused");
        assert!(UpdateState::RollbackPaused.is_paused());
        assert!(!UpdateState::Completed.is_paused());
    }
}
