//! The routing mesh's wire: the table of published ingress ports and the tasks behind them,
//! which every agent follows to forward each published port to the service's tasks on any
//! node.
//!
//! ```text
//! agent                                        any manager (a follower forwards to the leader)
//!  GET /v1/dispatcher/routes?session=S&since=V&wait_ms=W → Routes   (long poll)
//! ```
//!
//! Why a poll of its own rather than more changes in [`crate::dispatcher::Assignments`]:
//! assignments are per node (the tasks and files one node holds, a generation per node),
//! while the routing table is one table that every node holds alike. The leader keeps it
//! once, with a log of its recent changes, and answers every agent from that log: a task
//! state change costs one log entry, and each agent receives only the entries after the
//! version it holds (never the whole table, unless it is new or fell behind the log). The
//! node assignment protocol, its generations and its answer sizes stay as they were, and a
//! route change never wakes the assignment polls.
//!
//! A backend is a task that runs (observed RUNNING and wanted running; a task found unhealthy
//! is reported RUNNING with its error while it stops, and is no backend from then on) on a
//! node that is not down, at the node's address and the node port its runtime gave the task.
//! Versions are the leader's and only mean something within one session: a new session
//! starts again from 0 (a complete table).

use reconciler_types::{PortProtocol, TaskId};
use serde::{Deserialize, Serialize};

/// `GET`: long poll for routing-table changes.
pub const ROUTES_PATH: &str = "/v1/dispatcher/routes";

/// The query of the routes long poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesQuery {
    /// The session.
    pub session: String,
    /// The table version the agent holds (0: none, send the complete table).
    pub since: u64,
    /// How long the dispatcher may wait for a change before answering (capped at
    /// [`crate::dispatcher::MAX_WAIT_MS`]); 0 answers at once.
    pub wait_ms: u64,
}

/// A published port: its protocol and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    /// tcp or udp (sctp is not forwarded).
    pub protocol: PortProtocol,
    /// The port every node listens on.
    pub port: u16,
}

impl std::fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        };
        write!(f, "{}/{proto}", self.port)
    }
}

/// A task a published port forwards to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Backend {
    /// The task.
    pub task_id: TaskId,
    /// Its node's address (what the agent advertised).
    pub addr: String,
    /// The node port the runtime gave the task for this port.
    pub port: u16,
}

/// One change to the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RouteChange {
    /// A service publishes this port (listen on it), or its service changed.
    Open {
        /// The port.
        port: PublishedPort,
        /// The service's name (for logs).
        service: String,
    },
    /// No service publishes this port any more (stop listening, forget its backends).
    Close {
        /// The port.
        port: PublishedPort,
    },
    /// A task to forward new connections to.
    Add {
        /// The port.
        port: PublishedPort,
        /// The task.
        backend: Backend,
    },
    /// A task that gets no new connections from now on (its open ones go on).
    Remove {
        /// The port.
        port: PublishedPort,
        /// The task.
        task_id: TaskId,
    },
}

/// Whether an answer replaces the table the agent holds or changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutesKind {
    /// The whole table: anything else is forgotten.
    Complete,
    /// Changes on top of `applies_to`.
    Incremental,
}

/// An answer of the routes poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// Complete or incremental.
    pub kind: RoutesKind,
    /// The version these changes apply on top of (0 for a complete table).
    pub applies_to: u64,
    /// The version after applying them: the next `since`.
    pub version: u64,
    /// The changes, in order (a complete table: every `Open`, then every `Add`).
    pub changes: Vec<RouteChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_serialize_with_tagged_changes() {
        let port = PublishedPort { protocol: PortProtocol::Udp, port: 53 };
        let routes = Routes {
            kind: RoutesKind::Incremental,
            applies_to: 3,
            version: 5,
            changes: vec![
                RouteChange::Add {
                    port,
                    backend: Backend {
                        task_id: TaskId::new("t1"),
                        addr: "10.0.0.2".into(),
                        port: 41000,
                    },
                },
                RouteChange::Remove { port, task_id: TaskId::new("t0") },
            ],
        };
        let json = serde_json::to_value(&routes).unwrap();
        assert_eq!(json["changes"][0]["action"], "add");
        assert_eq!(json["changes"][0]["port"]["protocol"], "udp");
        assert_eq!(json["changes"][1]["task_id"], "t0");
        assert_eq!(serde_json::from_value::<Routes>(json).unwrap(), routes);
        assert_eq!(port.to_string(), "53/udp");
    }
}
