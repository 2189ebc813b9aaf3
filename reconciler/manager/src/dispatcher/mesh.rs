//! The routing mesh's table on the leader (`reconciler_api::mesh`): every published ingress
//! port and the tasks behind it, kept up to date from the applied commands the node index
//! already follows, with a log of recent changes so that each agent's poll is answered with
//! the changes after the version it holds.
//!
//! ```text
//!  applied commands ─► Touched (tasks, services, nodes) ─► MeshTable::update
//!                                   only those ─┘            │ Open/Close/Add/Remove, one version
//!  agent poll (since V) ◄── the log's entries after V ◄──────┘ (complete table: new or behind)
//! ```
//!
//! Cost: an update looks only at the touched tasks, the tasks of touched nodes and the
//! backends of touched services; an answer is the log entries after `since`. Nothing here
//! walks every task, except [`MeshTable::rebuild`] once per term (and after a snapshot).

use super::index::NodeIndex;
use crate::error::ApiError;
use reconciler_api::dispatcher::MAX_WAIT_MS;
use reconciler_api::mesh::{Backend, PublishedPort, RouteChange, Routes, RoutesKind, RoutesQuery};
use reconciler_store::ClusterState;
use reconciler_types::{
    NodeId, NodeState, PortProtocol, PublishMode, ServiceId, Task, TaskId, TaskState,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// The most change entries kept; an agent further behind gets the complete table.
pub const MAX_LOG: usize = 100_000;

/// One ingress port of a service: the published port and the task port behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ingress {
    port: PublishedPort,
    target: u32,
}

/// The routing table and its recent changes.
#[derive(Debug, Default)]
pub struct MeshTable {
    version: u64,
    /// The oldest `since` the log can answer.
    floor: u64,
    log: VecDeque<(u64, RouteChange)>,
    /// Published port → the service that publishes it (id, name).
    ports: BTreeMap<PublishedPort, (ServiceId, String)>,
    /// Each service's ingress ports, as last seen.
    services: HashMap<ServiceId, Vec<Ingress>>,
    /// Port → its backends.
    backends: BTreeMap<PublishedPort, BTreeMap<TaskId, Backend>>,
    /// What each task contributes (only tasks that are backends somewhere).
    by_task: HashMap<TaskId, (ServiceId, Vec<(PublishedPort, Backend)>)>,
    /// The tasks that are backends, by service.
    by_service: HashMap<ServiceId, BTreeSet<TaskId>>,
}

/// The host part of an advertised address (`10.0.0.5`, `10.0.0.5:2377`, `[::1]:2377`).
fn host_of(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => addr.to_owned(),
    }
}

/// A service's ingress ports (published, forwardable: tcp and udp).
fn ingress_of(state: &ClusterState, id: &ServiceId) -> Vec<Ingress> {
    let Some(s) = state.services.get(id) else { return Vec::new() };
    s.endpoint_ports
        .iter()
        .filter(|p| p.publish_mode == PublishMode::Ingress && p.protocol != PortProtocol::Sctp)
        .filter_map(|p| {
            let port = u16::try_from(p.published_port).ok().filter(|p| *p != 0)?;
            Some(Ingress {
                port: PublishedPort { protocol: p.protocol, port },
                target: p.target_port,
            })
        })
        .collect()
}

/// Whether a task takes new connections: it runs, is meant to, and was not found unhealthy
/// (an unhealthy task is reported RUNNING with its error while it is being stopped).
pub fn serves(t: &Task) -> bool {
    t.status.state == TaskState::Running
        && t.desired_state == TaskState::Running
        && t.status.err.is_empty()
}

/// What `task` contributes to the table of `state`.
fn contribution(state: &ClusterState, task: &Task) -> Vec<(PublishedPort, Backend)> {
    if !serves(task) {
        return Vec::new();
    }
    let Some(node) = task.node_id.as_ref().and_then(|n| state.nodes.get(n)) else {
        return Vec::new();
    };
    let status = &node.node.status;
    if status.state == NodeState::Down || status.addr.is_empty() {
        return Vec::new();
    }
    let addr = host_of(&status.addr);
    let ingress = ingress_of(state, &task.service_id);
    let mut out = Vec::new();
    for p in task.status.ports.iter().filter(|p| p.publish_mode == PublishMode::Ingress) {
        let Ok(node_port) = u16::try_from(p.published_port) else { continue };
        let found =
            ingress.iter().find(|i| i.target == p.target_port && i.port.protocol == p.protocol);
        if let Some(i) = found
            && node_port != 0
        {
            let backend = Backend { task_id: task.id.clone(), addr: addr.clone(), port: node_port };
            out.push((i.port, backend));
        }
    }
    out
}

impl MeshTable {
    /// The version of the table.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Rebuilds the table from the whole state (a new term, a snapshot, missed events);
    /// agents holding an older version get the complete table.
    pub fn rebuild(&mut self, state: &ClusterState) {
        let version = self.version + 1;
        *self = MeshTable { version, floor: version, ..MeshTable::default() };
        let mut sink = Vec::new();
        for id in state.services.keys() {
            self.sync_service(state, id, &mut sink);
        }
        for record in state.tasks.values() {
            self.sync_task(state, &record.task.id, &mut sink);
        }
    }

    /// Brings the table up to date with what the applied commands touched: these tasks,
    /// services and nodes. Answers whether it changed.
    pub fn update<'a>(
        &mut self,
        state: &ClusterState,
        index: &NodeIndex,
        tasks: impl IntoIterator<Item = &'a TaskId>,
        services: impl IntoIterator<Item = &'a ServiceId>,
        nodes: impl IntoIterator<Item = &'a NodeId>,
    ) -> bool {
        let mut changes = Vec::new();
        for id in services {
            self.sync_service(state, id, &mut changes);
        }
        for id in tasks {
            self.sync_task(state, id, &mut changes);
        }
        for node in nodes {
            let ids: Vec<TaskId> = index.tasks_of(node).cloned().collect();
            for id in &ids {
                self.sync_task(state, id, &mut changes);
            }
        }
        if changes.is_empty() {
            return false;
        }
        self.version += 1;
        let v = self.version;
        self.log.extend(changes.into_iter().map(|c| (v, c)));
        while self.log.len() > MAX_LOG {
            if let Some((dropped, _)) = self.log.pop_front() {
                self.floor = self.floor.max(dropped);
            }
        }
        true
    }

    /// The answer to an agent holding `since`: the changes after it, the complete table when
    /// it holds nothing, an unknown version or one the log no longer reaches; `None` when it
    /// is up to date.
    pub fn answer(&self, since: u64) -> Option<Routes> {
        if since == self.version {
            return None;
        }
        if since == 0 || since > self.version || since < self.floor {
            return Some(self.complete());
        }
        let start = self.log.partition_point(|(v, _)| *v <= since);
        let changes = self.log.iter().skip(start).map(|(_, c)| c.clone()).collect();
        Some(Routes {
            kind: RoutesKind::Incremental,
            applies_to: since,
            version: self.version,
            changes,
        })
    }

    /// The whole table.
    pub fn complete(&self) -> Routes {
        let mut changes: Vec<RouteChange> = self
            .ports
            .iter()
            .map(|(port, (_, name))| RouteChange::Open { port: *port, service: name.clone() })
            .collect();
        for (port, backends) in &self.backends {
            for b in backends.values() {
                changes.push(RouteChange::Add { port: *port, backend: b.clone() });
            }
        }
        Routes { kind: RoutesKind::Complete, applies_to: 0, version: self.version, changes }
    }

    fn sync_service(&mut self, state: &ClusterState, id: &ServiceId, out: &mut Vec<RouteChange>) {
        let now = ingress_of(state, id);
        let before = self.services.get(id).cloned().unwrap_or_default();
        let name = state.services.get(id).map(|s| s.spec.name.clone()).unwrap_or_default();
        if now == before && self.ports.values().all(|(s, n)| s != id || *n == name) {
            return;
        }
        for gone in before.iter().filter(|b| !now.iter().any(|n| n.port == b.port)) {
            if self.ports.get(&gone.port).is_some_and(|(s, _)| s == id) {
                self.ports.remove(&gone.port);
                self.backends.remove(&gone.port);
                out.push(RouteChange::Close { port: gone.port });
            }
        }
        for i in &now {
            let entry = (id.clone(), name.clone());
            if self.ports.get(&i.port) != Some(&entry) {
                self.ports.insert(i.port, entry);
                out.push(RouteChange::Open { port: i.port, service: name.clone() });
            }
        }
        if now.is_empty() {
            self.services.remove(id);
        } else {
            self.services.insert(id.clone(), now);
        }
        // Its backends follow the new port numbers (or go).
        let tasks: Vec<TaskId> =
            self.by_service.get(id).map(|t| t.iter().cloned().collect()).unwrap_or_default();
        for t in &tasks {
            self.sync_task(state, t, out);
        }
    }

    fn sync_task(&mut self, state: &ClusterState, id: &TaskId, out: &mut Vec<RouteChange>) {
        let task = state.tasks.get(id).map(|r| &r.task);
        let now = task.map(|t| contribution(state, t)).unwrap_or_default();
        let (service, before) = match self.by_task.get(id) {
            Some((s, b)) => (Some(s.clone()), b.clone()),
            None => (None, Vec::new()),
        };
        if now == before {
            return;
        }
        for (port, b) in &before {
            if now.iter().any(|(p, n)| p == port && n == b) {
                continue;
            }
            let removed = self.backends.get_mut(port).and_then(|m| m.remove(&b.task_id));
            if removed.is_some() {
                out.push(RouteChange::Remove { port: *port, task_id: b.task_id.clone() });
            }
        }
        for (port, b) in &now {
            if before.iter().any(|(p, o)| p == port && o == b) {
                continue;
            }
            // A backend only of a port some service publishes (it always is, from the same state).
            if self.ports.contains_key(port) {
                self.backends.entry(*port).or_default().insert(b.task_id.clone(), b.clone());
                out.push(RouteChange::Add { port: *port, backend: b.clone() });
            }
        }
        if let Some(s) = &service
            && let Some(set) = self.by_service.get_mut(s)
        {
            set.remove(id);
            if set.is_empty() {
                self.by_service.remove(s);
            }
        }
        match task {
            Some(t) if !now.is_empty() => {
                self.by_service.entry(t.service_id.clone()).or_default().insert(id.clone());
                self.by_task.insert(id.clone(), (t.service_id.clone(), now));
            }
            _ => {
                self.by_task.remove(id);
            }
        }
    }
}

impl super::Dispatcher {
    /// The routes long poll: answers as soon as the table is newer than `query.since`, or an
    /// empty incremental answer after `query.wait_ms` (at most `MAX_WAIT_MS`).
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the session is gone (register again).
    pub async fn routes(&self, node: &NodeId, query: &RoutesQuery) -> Result<Routes, ApiError> {
        let wait = Duration::from_millis(query.wait_ms.min(MAX_WAIT_MS));
        let deadline = Instant::now() + wait;
        let mut woken = self.core().mesh_wake.subscribe();
        loop {
            woken.borrow_and_update();
            {
                let core = self.core();
                core.check(node, &query.session)?;
                if let Some(answer) = core.mesh.answer(query.since) {
                    return Ok(answer);
                }
            }
            match tokio::time::timeout_at(deadline, woken.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let core = self.core();
                    core.check(node, &query.session)?;
                    let version = core.mesh.version();
                    return Ok(Routes {
                        kind: RoutesKind::Incremental,
                        applies_to: version,
                        version,
                        changes: Vec::new(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "mesh_tests.rs"]
mod tests;
