//! The bodies of the service endpoints, behind `flotilla service create | update | ls | ps |
//! inspect | scale | rollback | rm` (Docker's `/services` API in flotilla's shape).
//!
//! ```text
//! GET    /v1/services                  → [ServiceInfo]     (with task counts, for `service ls`)
//! POST   /v1/services                  ServiceCreate → ServiceCreated
//! GET    /v1/services/{key}            → ServiceInspect    (key: full id, name or unique id prefix)
//! POST   /v1/services/{key}/update     ServiceUpdate → ServiceCreated   (compare-and-set on version)
//! POST   /v1/services/{key}/rollback   ServiceRollback → ServiceCreated (swap with the previous spec)
//! DELETE /v1/services/{key}            → {}
//! GET    /v1/services/{key}/tasks      → ServiceTasks      (the service, its tasks, the time)
//! ```
//!
//! Like Docker, the CLI reads a service, changes its spec and sends it back with the version it
//! read; a service changed in between is refused (`update out of sequence`) rather than
//! overwritten. Times are the managers' epoch clock ([`MonoTime`] since the Unix epoch): an
//! answer that the CLI turns into "5 seconds ago" carries the manager's `now`, so the age does
//! not depend on the CLI machine's clock.

use crate::client::{ApiClient, ClientError, Empty};
use reconciler_types::{MonoTime, NodeId, PortConfig, ServiceId, ServiceSpec, Task, UpdateStatus};
use serde::{Deserialize, Serialize};

/// The collection path.
pub const SERVICES_PATH: &str = "/v1/services";

/// `POST /v1/services`: creates a service from a spec. An empty name gets a generated one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCreate {
    /// The spec.
    pub spec: ServiceSpec,
}

/// `POST /v1/services/{key}/update`: replaces a service's spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceUpdate {
    /// The version the spec was read at ([`ServiceInfo::version`]).
    pub version: u64,
    /// The new spec.
    pub spec: ServiceSpec,
}

/// `POST /v1/services/{key}/rollback`: swaps the spec with the previous one (Docker's
/// `rollback=previous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRollback {
    /// The version the service was read at.
    pub version: u64,
}

/// The answer to a create, update or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCreated {
    /// The service's id.
    pub id: ServiceId,
    /// Its new version.
    pub version: u64,
    /// Warnings for the operator (Docker prints them on stderr).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A service as the managers hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Its id (25 base-36 characters, as Swarm's).
    pub id: ServiceId,
    /// The version of the record (the log index that last wrote it); an update names it.
    pub version: u64,
    /// The spec in force.
    pub spec: ServiceSpec,
    /// The version of that spec; tasks made from it carry the same number.
    pub spec_version: u64,
    /// The spec it replaced (what a rollback returns to).
    pub previous_spec: Option<ServiceSpec>,
    /// The version of the previous spec.
    pub previous_spec_version: Option<u64>,
    /// The rolling update's status (Docker's `UpdateStatus`), when one ran since the last
    /// update.
    pub update_status: Option<UpdateStatus>,
    /// The published ports as allocated (dynamic published ports filled in).
    pub endpoint_ports: Vec<PortConfig>,
    /// Task counts (in `service ls`; `None` elsewhere).
    #[serde(default)]
    pub status: Option<ServiceStatus>,
}

/// How many tasks of a service run, and how many should (Docker's `ServiceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Tasks observed RUNNING, desired RUNNING, on a node that is not down.
    pub running_tasks: u64,
    /// Replicas for a replicated service; for a global one, the tasks whose desired state is
    /// not past RUNNING.
    pub desired_tasks: u64,
}

/// `GET /v1/services/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInspect {
    /// The service.
    pub service: ServiceInfo,
    /// The answering manager's time, for ages ("started 5 seconds ago").
    pub now: MonoTime,
}

/// One task as `service ps` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task.
    pub task: Task,
    /// Its node's hostname (its id when the node is gone or has no hostname; empty when the
    /// task is not placed).
    pub node: String,
    /// The ports it publishes on its node (host mode), once running (Docker's PortStatus).
    #[serde(default)]
    pub ports: Vec<PortConfig>,
}

/// `GET /v1/services/{key}/tasks`: a service with every task it has (history included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceTasks {
    /// The service.
    pub service: ServiceInfo,
    /// Its tasks, in no particular order.
    pub tasks: Vec<TaskView>,
    /// The ids of the nodes that are not down (global convergence counts only these).
    #[serde(default)]
    pub active_nodes: Vec<NodeId>,
    /// The answering manager's time, for ages ("Running 5 seconds ago").
    pub now: MonoTime,
}

/// Builds the path of one service (`/v1/services/{key}`), with the key percent-encoded so that
/// any name reaches the manager intact.
pub fn service_path(key: &str) -> String {
    let mut out = String::from(SERVICES_PATH);
    out.push('/');
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ApiClient {
    /// `service ls`: every service with its task counts.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn services(&self) -> Result<Vec<ServiceInfo>, ClientError> {
        self.get(SERVICES_PATH).await
    }

    /// `service inspect`: one service by full id, name or unique id prefix.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` when nothing matches.
    pub async fn inspect_service(&self, key: &str) -> Result<ServiceInspect, ClientError> {
        self.get(&service_path(key)).await
    }

    /// `service create`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn create_service(&self, spec: &ServiceSpec) -> Result<ServiceCreated, ClientError> {
        self.post(SERVICES_PATH, &ServiceCreate { spec: spec.clone() }).await
    }

    /// `service update` / `service scale`: the new spec, refused when the service changed
    /// since `version`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn update_service(
        &self,
        key: &str,
        version: u64,
        spec: &ServiceSpec,
    ) -> Result<ServiceCreated, ClientError> {
        let body = ServiceUpdate { version, spec: spec.clone() };
        self.post(&format!("{}/update", service_path(key)), &body).await
    }

    /// `service rollback`.
    ///
    /// # Errors
    /// See [`ClientError`]; `FailedPrecondition` without a previous spec.
    pub async fn rollback_service(
        &self,
        key: &str,
        version: u64,
    ) -> Result<ServiceCreated, ClientError> {
        let body = ServiceRollback { version };
        self.post(&format!("{}/rollback", service_path(key)), &body).await
    }

    /// `service rm`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn remove_service(&self, key: &str) -> Result<(), ClientError> {
        self.delete::<Empty>(&service_path(key)).await.map(|_| ())
    }

    /// `service ps` and convergence progress: a service and all its tasks.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn service_tasks(&self, key: &str) -> Result<ServiceTasks, ClientError> {
        self.get(&format!("{}/tasks", service_path(key))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_path_keeps_names_and_escapes_the_rest() {
        assert_eq!(service_path("shop_web"), "/v1/services/shop_web");
        assert_eq!(service_path("a/b c"), "/v1/services/a%2Fb%20c");
    }

    #[test]
    fn service_info_round_trips_through_json() {
        let info = ServiceInfo {
            id: ServiceId::new("abc"),
            version: 7,
            spec: ServiceSpec { name: "web".into(), ..ServiceSpec::default() },
            spec_version: 3,
            previous_spec: None,
            previous_spec_version: None,
            update_status: None,
            endpoint_ports: Vec::new(),
            status: Some(ServiceStatus { running_tasks: 1, desired_tasks: 2 }),
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<ServiceInfo>(&json).unwrap(), info);
    }
}
