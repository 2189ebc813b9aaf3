//! Swarm's rules for a service's spec (swarmkit `controlapi/service.go`, `update/updater.go`,
//! docs/swarm-semantics.md §6.2, §7.2), applied inside `apply`:
//! * create: a new spec version, dynamic published ports, port conflicts refused;
//! * update: PreviousSpec ← Spec (always, even when identical), a new spec version (always),
//!   update status cleared, a mode change refused;
//! * manual rollback: swap Spec and PreviousSpec with their versions, status
//!   `rollback_started` / `manually requested rollback`; refused without a previous spec;
//! * automatic rollback: Spec ← PreviousSpec, PreviousSpec ← none.

use super::ClusterState;
use super::apply::{check, not_found};
use super::command::{Expect, RecordKind, Refusal};
use super::records::ServiceRecord;
use crate::rollout::policy::MSG_MANUAL_ROLLBACK;
use reconciler_types::{MonoTime, ServiceId, ServiceMode, ServiceSpec, UpdateState, UpdateStatus};

/// Swarm's refusal of a replicated ↔ global change (codes.Unimplemented).
pub const MSG_MODE_CHANGE: &str = "service mode change is not allowed";

/// Swarm's refusal of a rollback with nothing to roll back to (codes.FailedPrecondition).
pub fn msg_no_previous_spec(id: &ServiceId) -> String {
    format!("service {id} does not have a previous spec")
}

impl ClusterState {
    fn next_spec_version(&mut self) -> u64 {
        let v = self.counters.next_spec_version;
        self.counters.next_spec_version = v.saturating_add(1);
        v
    }

    pub(super) fn create_service(
        &mut self,
        id: &ServiceId,
        spec: &ServiceSpec,
        index: u64,
    ) -> Result<(), Refusal> {
        let actual = self.services.get(id).map(|r| r.version);
        check(RecordKind::Service, id.as_str(), Expect::Absent, actual)?;
        let endpoint_ports = self.allocate_ports(id, spec, true)?;
        let spec_version = self.next_spec_version();
        let record = ServiceRecord {
            endpoint_ports,
            version: index,
            ..ServiceRecord::new(id.clone(), spec.clone(), spec_version)
        };
        self.services.insert(id.clone(), record);
        Ok(())
    }

    pub(super) fn update_service(
        &mut self,
        id: &ServiceId,
        spec: &ServiceSpec,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let current =
            self.services.get(id).ok_or_else(|| not_found(RecordKind::Service, id.as_str()))?;
        check(RecordKind::Service, id.as_str(), expected, Some(current.version))?;
        let global = |m: &ServiceMode| matches!(m, ServiceMode::Global);
        if global(&spec.mode) != global(&current.spec.mode) {
            return Err(Refusal::invalid(MSG_MODE_CHANGE));
        }
        let endpoint_ports = self.allocate_ports(id, spec, true)?;
        let spec_version = self.next_spec_version();
        let Some(record) = self.services.get_mut(id) else {
            return Err(not_found(RecordKind::Service, id.as_str()));
        };
        let old = std::mem::replace(&mut record.spec, spec.clone());
        record.previous_spec = Some(old);
        record.previous_spec_version = Some(record.spec_version);
        record.spec_version = spec_version;
        record.update_status = None;
        record.endpoint_ports = endpoint_ports;
        record.version = index;
        Ok(())
    }

    pub(super) fn put_service(
        &mut self,
        id: &ServiceId,
        spec: &ServiceSpec,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let actual = self.services.get(id).map(|r| r.version);
        check(RecordKind::Service, id.as_str(), expected, actual)?;
        if actual.is_none() {
            self.create_service(id, spec, index)
        } else {
            self.update_service(id, spec, Expect::Any, index)
        }
    }

    pub(super) fn rollback_service(
        &mut self,
        id: &ServiceId,
        expected: Expect,
        at: MonoTime,
        index: u64,
    ) -> Result<(), Refusal> {
        let current =
            self.services.get(id).ok_or_else(|| not_found(RecordKind::Service, id.as_str()))?;
        check(RecordKind::Service, id.as_str(), expected, Some(current.version))?;
        let (Some(previous), Some(previous_version)) =
            (current.previous_spec.clone(), current.previous_spec_version)
        else {
            return Err(Refusal::precondition(msg_no_previous_spec(id)));
        };
        let endpoint_ports = self.allocate_ports(id, &previous, true)?;
        let Some(record) = self.services.get_mut(id) else {
            return Err(not_found(RecordKind::Service, id.as_str()));
        };
        let current_spec = std::mem::replace(&mut record.spec, previous);
        record.previous_spec = Some(current_spec);
        record.previous_spec_version = Some(record.spec_version);
        record.spec_version = previous_version;
        record.update_status = Some(UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: MSG_MANUAL_ROLLBACK.to_owned(),
            started_at: Some(at),
            completed_at: None,
        });
        record.endpoint_ports = endpoint_ports;
        record.version = index;
        Ok(())
    }

    pub(super) fn remove_service(
        &mut self,
        id: &ServiceId,
        expected: Expect,
    ) -> Result<(), Refusal> {
        let actual = self.services.get(id).map(|r| r.version);
        if actual.is_none() {
            return Err(not_found(RecordKind::Service, id.as_str()));
        }
        check(RecordKind::Service, id.as_str(), expected, actual)?;
        self.services.remove(id);
        self.rollouts.remove(id);
        self.restarts.remove(id);
        Ok(())
    }

    pub(super) fn set_update_status(
        &mut self,
        id: &ServiceId,
        status: Option<UpdateStatus>,
        index: u64,
    ) -> Result<(), Refusal> {
        let record =
            self.services.get_mut(id).ok_or_else(|| not_found(RecordKind::Service, id.as_str()))?;
        record.update_status = status;
        record.version = index;
        Ok(())
    }

    /// The failure action `rollback`: back to the previous spec, which is then forgotten.
    /// Without a previous spec only the status changes. Published ports are kept where the
    /// restored spec still publishes them; nothing is refused (the orchestrator must be able
    /// to roll back whatever happened meanwhile).
    pub(super) fn auto_rollback(
        &mut self,
        id: &ServiceId,
        status: &UpdateStatus,
        index: u64,
    ) -> Result<(), Refusal> {
        let current =
            self.services.get(id).ok_or_else(|| not_found(RecordKind::Service, id.as_str()))?;
        let restored = current.previous_spec.clone().zip(current.previous_spec_version);
        let ports = match &restored {
            Some((spec, _)) => Some(self.allocate_ports(id, spec, false)?),
            None => None,
        };
        let Some(record) = self.services.get_mut(id) else {
            return Err(not_found(RecordKind::Service, id.as_str()));
        };
        if let (Some((spec, version)), Some(ports)) = (restored, ports) {
            record.spec = spec;
            record.spec_version = version;
            record.previous_spec = None;
            record.previous_spec_version = None;
            record.endpoint_ports = ports;
        }
        record.update_status = Some(status.clone());
        record.version = index;
        Ok(())
    }
}
