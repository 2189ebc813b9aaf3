//! A service as the managers hold it: its spec, its previous spec, their versions and its
//! update status, with the three ways the spec changes (swarmkit `controlapi/service.go`,
//! `update/updater.go`): an update, a manual rollback (swap), an automatic rollback.

use crate::rollout::policy::MSG_MANUAL_ROLLBACK;
use reconciler_types::{MonoTime, ServiceId, ServiceMode, ServiceSpec, UpdateState, UpdateStatus};
use serde::{Deserialize, Serialize};

/// A service record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its id.
    pub id: ServiceId,
    /// The current spec.
    pub spec: ServiceSpec,
    /// The current spec's version (bumped by every update, even a no-op one).
    pub spec_version: u64,
    /// The spec before the last update (`None` after an automatic rollback).
    pub previous_spec: Option<ServiceSpec>,
    /// The previous spec's version.
    pub previous_spec_version: Option<u64>,
    /// The rolling-update status (`None` after every update until a run sets it).
    pub update_status: Option<UpdateStatus>,
}

/// Why a service change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Replicated ↔ global is refused.
    #[error("service mode change is not allowed")]
    ModeChange,
    /// A rollback without a previous spec.
    #[error("service {0} does not have a previous spec")]
    NoPreviousSpec(ServiceId),
}

impl ServiceRecord {
    /// A new service at `version`.
    pub fn new(id: ServiceId, spec: ServiceSpec, version: u64) -> Self {
        ServiceRecord {
            id,
            spec,
            spec_version: version,
            previous_spec: None,
            previous_spec_version: None,
            update_status: None,
        }
    }

    /// `UpdateService`: PreviousSpec ← Spec (always, even when identical), Spec ← `spec`,
    /// version ← `version`, UpdateStatus ← nil.
    ///
    /// # Errors
    /// [`ServiceError::ModeChange`] when the mode kind changes.
    pub fn update(&mut self, spec: ServiceSpec, version: u64) -> Result<(), ServiceError> {
        let global = |m: &ServiceMode| matches!(m, ServiceMode::Global);
        if global(&spec.mode) != global(&self.spec.mode) {
            return Err(ServiceError::ModeChange);
        }
        let old = std::mem::replace(&mut self.spec, spec);
        self.previous_spec = Some(old);
        self.previous_spec_version = Some(self.spec_version);
        self.spec_version = version;
        self.update_status = None;
        Ok(())
    }

    /// Manual rollback (`docker service rollback`): swaps Spec and PreviousSpec (and their
    /// versions); status `rollback_started` / `manually requested rollback`.
    ///
    /// # Errors
    /// [`ServiceError::NoPreviousSpec`] when there is nothing to roll back to (for example
    /// after an automatic rollback); nothing changes then.
    pub fn rollback(&mut self, now: MonoTime) -> Result<(), ServiceError> {
        let (Some(prev), Some(prev_version)) =
            (self.previous_spec.take(), self.previous_spec_version)
        else {
            return Err(ServiceError::NoPreviousSpec(self.id.clone()));
        };
        let current = std::mem::replace(&mut self.spec, prev);
        self.previous_spec = Some(current);
        self.previous_spec_version = Some(self.spec_version);
        self.spec_version = prev_version;
        self.update_status = Some(UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: MSG_MANUAL_ROLLBACK.to_owned(),
            started_at: Some(now),
            completed_at: None,
        });
        Ok(())
    }

    /// Automatic rollback (failure action rollback): Spec ← PreviousSpec, PreviousSpec ←
    /// none, status as given (`rollback_started`). Without a previous spec only the status
    /// changes.
    pub fn auto_rollback(&mut self, status: UpdateStatus) {
        if let (Some(prev), Some(version)) =
            (self.previous_spec.take(), self.previous_spec_version.take())
        {
            self.spec = prev;
            self.spec_version = version;
        }
        self.update_status = Some(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: &str) -> ServiceSpec {
        let mut s = ServiceSpec { name: "shop_web".into(), ..ServiceSpec::default() };
        s.task_template.container_spec.image = image.into();
        s
    }

    #[test]
    fn manual_rollback_toggles_between_the_two_specs() {
        let mut svc = ServiceRecord::new(ServiceId::new("s1"), spec("v1"), 1);
        svc.update(spec("v2"), 2).unwrap();
        svc.rollback(MonoTime::from_secs(3)).unwrap();
        assert_eq!(svc.spec.task_template.container_spec.image, "v1");
        assert_eq!(svc.spec_version, 1);
        assert_eq!(svc.previous_spec_version, Some(2));
        let status = svc.update_status.clone().unwrap();
        assert_eq!(
            (status.state, status.message.as_str()),
            (UpdateState::RollbackStarted, "manually requested rollback")
        );
        svc.rollback(MonoTime::from_secs(4)).unwrap();
        assert_eq!(svc.spec.task_template.container_spec.image, "v2");
        assert_eq!(svc.previous_spec.unwrap().task_template.container_spec.image, "v1");
    }

    #[test]
    fn rollback_after_automatic_rollback_fails_and_changes_nothing() {
        let mut svc = ServiceRecord::new(ServiceId::new("s1"), spec("v1"), 1);
        svc.update(spec("v2"), 2).unwrap();
        let status = UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: "m".into(),
            started_at: None,
            completed_at: None,
        };
        svc.auto_rollback(status);
        assert_eq!(svc.spec_version, 1);
        let before = svc.clone();
        let err = svc.rollback(MonoTime::from_secs(9)).unwrap_err();
        assert_eq!(err.to_string(), "service s1 does not have a previous spec");
        assert_eq!(svc, before);
    }

    #[test]
    fn update_keeps_previous_spec_even_when_identical_and_clears_status() {
        let mut svc = ServiceRecord::new(ServiceId::new("s1"), spec("v1"), 1);
        svc.update_status = Some(UpdateStatus {
            state: UpdateState::Completed,
            message: "update completed".into(),
            started_at: None,
            completed_at: None,
        });
        svc.update(spec("v1"), 2).unwrap();
        assert_eq!(svc.previous_spec.as_ref(), Some(&svc.spec));
        assert_eq!(svc.update_status, None);
        assert_eq!(svc.spec_version, 2);
    }

    /// docs/swarm-semantics.md §12 S50.
    #[test]
    fn s50_mode_change_is_refused_and_the_spec_is_unchanged() {
        let mut svc = ServiceRecord::new(ServiceId::new("s1"), spec("v1"), 1);
        let before = svc.clone();
        let mut g = spec("v1");
        g.mode = ServiceMode::Global;
        assert_eq!(svc.update(g, 2).unwrap_err().to_string(), "service mode change is not allowed");
        assert_eq!(svc, before);
    }
}
