//! The agent ↔ dispatcher wire: Swarm's agent session over HTTP/JSON.
//!
//! An agent joins once (`POST /v1/join` with the worker join token; the answer carries its
//! own node credential, see [`crate::credential`]), then keeps a session with the leader's
//! dispatcher, presenting that credential as a bearer token on every call:
//!
//! ```text
//! agent                                        any manager (a follower forwards to the leader)
//!  POST /v1/dispatcher/session    RegisterRequest → Session
//!  POST /v1/dispatcher/heartbeat  Heartbeat → HeartbeatAck           every period (±0.5 s)
//!  GET  /v1/dispatcher/assignments?session=S&since=G&wait_ms=W → Assignments   (long poll)
//!  POST /v1/dispatcher/status     StatusReport → StatusAck           batched task states
//!  POST /v1/dispatcher/logs       LogChunk → LogAck                  lines for a subscription
//! ```
//!
//! Why long polls of plain requests rather than server-sent events, a WebSocket or gRPC: the
//! operator API and Raft already run on one axum router and one reqwest client, so this adds no
//! dependency; every call stands alone, so a follower forwards it to the leader unchanged and an
//! agent can move to another manager between two calls (the assignment generation, not the
//! connection, carries the session's position); and it runs unchanged under mutual TLS.
//!
//! Sessions live in the leader's memory, not in Raft. After a leader change a session is
//! unknown (404 on any call): the agent registers again and receives a complete assignment set.
//! Assignments are generation-stamped: `since` is the generation the agent last applied; the
//! answer is incremental on top of it when the dispatcher still knows it, complete otherwise,
//! and an agent never applies a set whose `applies_to` is not what it holds.

use reconciler_types::{EndpointSpec, MonoTime, NodeDescription, NodeId, Task, TaskId, TaskStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST`: open a session.
pub const SESSION_PATH: &str = "/v1/dispatcher/session";
/// `POST`: heartbeat.
pub const HEARTBEAT_PATH: &str = "/v1/dispatcher/heartbeat";
/// `GET`: long poll for assignments.
pub const ASSIGNMENTS_PATH: &str = "/v1/dispatcher/assignments";
/// `POST`: task status reports.
pub const STATUS_PATH: &str = "/v1/dispatcher/status";
/// `POST`: log lines for a subscription.
pub const LOGS_PATH: &str = "/v1/dispatcher/logs";

/// The longest long poll a dispatcher holds before answering with no change.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Opens a session: the node describes itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Hostname, platform, CPUs, memory, engine labels (the agent's `--label`s).
    pub description: NodeDescription,
    /// The address this node is reached at by other nodes (routing mesh, host ports).
    pub addr: String,
    /// The runtimes this agent runs tasks with (`process`, `docker`).
    pub runtimes: Vec<String>,
}

/// An open session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id, sent with every later call.
    pub session: String,
    /// The node this session belongs to.
    pub node_id: NodeId,
    /// How often to heartbeat, in milliseconds.
    pub heartbeat_period_ms: u64,
    /// The API addresses of every manager, to move to when this one stops answering.
    pub managers: Vec<String>,
}

/// A heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The session.
    pub session: String,
}

/// The answer to a heartbeat: when to send the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// Milliseconds until the next heartbeat (the period, randomised by ±0.5 s).
    pub period_ms: u64,
}

/// The query of the assignments long poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentsQuery {
    /// The session.
    pub session: String,
    /// The generation the agent holds (0: none, send the complete set).
    pub since: u64,
    /// How long the dispatcher may wait for a change before answering (capped at
    /// [`MAX_WAIT_MS`]); 0 answers at once.
    pub wait_ms: u64,
}

/// Whether a set of assignments replaces what the agent holds or changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentsKind {
    /// Everything this node should hold; anything else is removed.
    Complete,
    /// Changes on top of `applies_to`.
    Incremental,
}

/// A set of assignment changes, stamped with generations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    /// Complete or incremental.
    pub kind: AssignmentsKind,
    /// The generation these changes apply on top of (0 for a complete set).
    pub applies_to: u64,
    /// The generation after applying them: the next `since`.
    pub generation: u64,
    /// The changes, tasks after the configs and secrets they use.
    pub changes: Vec<AssignmentChange>,
    /// Log subscriptions opened since the last answer (tasks of this node).
    #[serde(default)]
    pub log_subscriptions: Vec<LogSubscription>,
}

/// One change to what a node holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AssignmentChange {
    /// Add or replace.
    Update {
        /// What.
        assignment: Assignment,
    },
    /// Remove.
    Remove {
        /// What.
        item: AssignmentRef,
    },
}

/// Something a node holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Assignment {
    /// A task to run (or to stop, per its desired state).
    Task(Box<TaskAssignment>),
    /// A config a task of this node uses.
    Config(FileAssignment),
    /// A secret a task of this node uses (sent to no other node).
    Secret(FileAssignment),
}

/// Names something a node holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssignmentRef {
    /// A task.
    Task {
        /// Its id.
        id: TaskId,
    },
    /// A config.
    Config {
        /// Its name.
        name: String,
    },
    /// A secret.
    Secret {
        /// Its name.
        name: String,
    },
}

/// A task as its node receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAssignment {
    /// The task: spec, slot, desired state, spec version, last status.
    pub task: Task,
    /// The service's name (`shop_web`): log prefixes and container names
    /// (`<service>.<slot>.<task id>`).
    pub service_name: String,
    /// The service's labels.
    #[serde(default)]
    pub service_labels: BTreeMap<String, String>,
    /// The service's endpoint, with published ports as allocated.
    #[serde(default)]
    pub endpoint: EndpointSpec,
}

/// A config or secret file's content. `Debug` shows the name and size only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAssignment {
    /// The object's name (what a task's `config_name` / `secret_name` refers to).
    pub name: String,
    /// The content (a secret's plain value: it travels only to the node that needs it).
    #[serde(with = "crate::b64")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for FileAssignment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAssignment")
            .field("name", &self.name)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// A batch of task state changes observed by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The session.
    pub session: String,
    /// The changes, oldest first.
    pub updates: Vec<TaskStatusUpdate>,
}

/// One observed task state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusUpdate {
    /// The task.
    pub task_id: TaskId,
    /// What was observed (state, timestamp, message, error, exit code).
    pub status: TaskStatus,
}

/// The answer to a status report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusAck {
    /// Updates not recorded, and why (not this node's task, unknown task, a state that would
    /// move backwards). The others were recorded.
    #[serde(default)]
    pub refused: Vec<RefusedUpdate>,
}

/// An update the dispatcher did not record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedUpdate {
    /// The task.
    pub task_id: TaskId,
    /// Why.
    pub reason: String,
}

/// A request for the logs of some of this node's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSubscription {
    /// The subscription's id, sent back with every chunk.
    pub id: String,
    /// The tasks (all on this node).
    pub tasks: Vec<TaskId>,
    /// What to send.
    pub options: LogOptions,
}

/// Which lines of a log (`service logs` flags).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogOptions {
    /// Keep sending new lines until the subscription is cancelled.
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines of each task (`--tail`).
    #[serde(default)]
    pub tail: Option<u64>,
    /// Only lines written at or after this time (`--since`).
    #[serde(default)]
    pub since: Option<MonoTime>,
}

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a task's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The task.
    pub task_id: TaskId,
    /// When the agent read it.
    pub timestamp: MonoTime,
    /// stdout or stderr.
    pub stream: LogStream,
    /// The line, without its line break (invalid UTF-8 replaced).
    pub line: String,
}

/// Lines for a subscription, from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    /// The session.
    pub session: String,
    /// The subscription.
    pub subscription: String,
    /// The lines, in order.
    pub lines: Vec<LogLine>,
    /// No more lines will come (not following, or every task ended).
    #[serde(default)]
    pub done: bool,
}

/// The answer to a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogAck {
    /// Nobody reads this subscription any more: stop sending.
    pub cancelled: bool,
}

/// One line of `service logs`, as a manager streams it to the CLI (one JSON object a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLogLine {
    /// The service's name.
    pub service: String,
    /// The task's slot (0 for a global service's task).
    pub slot: u64,
    /// The node the task ran on.
    pub node_id: NodeId,
    /// The node's hostname, when known.
    #[serde(default)]
    pub node_hostname: String,
    /// The line.
    pub line: LogLine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_serialize_with_tagged_changes_and_base64_files() {
        let set = Assignments {
            kind: AssignmentsKind::Incremental,
            applies_to: 4,
            generation: 5,
            changes: vec![
                AssignmentChange::Update {
                    assignment: Assignment::Secret(FileAssignment {
                        name: "db_password".into(),
                        data: b"hunter2".to_vec(),
                    }),
                },
                AssignmentChange::Remove { item: AssignmentRef::Task { id: TaskId::new("t1") } },
            ],
            log_subscriptions: Vec::new(),
        };
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["changes"][0]["action"], "update");
        assert_eq!(json["changes"][0]["assignment"]["kind"], "secret");
        assert_eq!(json["changes"][0]["assignment"]["data"], "aHVudGVyMg==");
        assert_eq!(json["changes"][1]["item"]["kind"], "task");
        let back: Assignments = serde_json::from_value(json).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn a_file_assignment_never_shows_its_content_in_debug() {
        let f = FileAssignment { name: "db_password".into(), data: b"hunter2".to_vec() };
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
