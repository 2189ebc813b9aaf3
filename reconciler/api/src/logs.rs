//! `service logs`: the operator endpoint that streams a service's (or a task's) logs, and
//! its client. The manager that leads asks each node holding a task for its lines (a log
//! subscription, see [`crate::dispatcher`]) and merges what comes back; a follower passes the
//! leader's stream through.
//!
//! ```text
//! GET /v1/logs?target=KEY[&follow=true][&tail=N][&since_ns=T]
//!   → one JSON object a line (application/x-ndjson):
//!     {"target":{"service":"shop_web","replicas":3}}     first: what KEY named
//!     {"line":{ServiceLogLine}}                          then the lines, as they come
//!     {"warning":"..."}                                  a node whose lines cannot come
//! ```
//!
//! `KEY` is a service (full id, name or unique id prefix) or a task id. Without `follow` the
//! stream ends once every node has sent its lines.

use crate::client::{ApiClient, ClientError};
use crate::dispatcher::ServiceLogLine;
use reconciler_types::MonoTime;
use serde::{Deserialize, Serialize};

/// The path of the endpoint.
pub const SERVICE_LOGS_PATH: &str = "/v1/logs";

/// What to stream (`service logs` flags).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceLogsQuery {
    /// A service (id, name, unique id prefix) or a task id.
    pub target: String,
    /// Keep streaming new lines (`-f`).
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines of each task (`--tail`).
    #[serde(default)]
    pub tail: Option<u64>,
    /// Only lines at or after this time, nanoseconds since the Unix epoch (`--since`).
    #[serde(default)]
    pub since_ns: Option<u64>,
}

impl ServiceLogsQuery {
    /// `since_ns` as a time.
    pub fn since(&self) -> Option<MonoTime> {
        self.since_ns.map(|ns| MonoTime(std::time::Duration::from_nanos(ns)))
    }

    /// The request path with its query string.
    pub fn path(&self) -> String {
        let mut out = format!("{SERVICE_LOGS_PATH}?target={}", encode(&self.target));
        if self.follow {
            out.push_str("&follow=true");
        }
        if let Some(n) = self.tail {
            out.push_str(&format!("&tail={n}"));
        }
        if let Some(ns) = self.since_ns {
            out.push_str(&format!("&since_ns={ns}"));
        }
        out
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a `service logs` stream names first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsTarget {
    /// The service's name.
    pub service: String,
    /// Its replica count (0 for a global service): Docker pads slot numbers to its width.
    pub replicas: u64,
}

/// One object of a `service logs` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogsItem {
    /// What the key named (first).
    Target(LogsTarget),
    /// A line.
    Line(ServiceLogLine),
    /// Lines that cannot come (a node without a session, one that did not answer).
    Warning(String),
}

impl LogsItem {
    /// The item as one line of the stream, with its line break.
    pub fn to_line(&self) -> String {
        // Plain fields always serialize.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

impl ApiClient {
    /// `service logs`: the streamed answer (read it line by line as [`LogsItem`]s).
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` when the key names no service or task.
    pub async fn service_logs(
        &self,
        q: &ServiceLogsQuery,
    ) -> Result<reqwest::Response, ClientError> {
        self.stream(&q.path()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatcher::{LogLine, LogStream};
    use reconciler_types::{NodeId, TaskId};

    #[test]
    fn the_query_travels_in_the_path() {
        let q = ServiceLogsQuery {
            target: "shop web".into(),
            follow: true,
            tail: Some(5),
            since_ns: Some(7),
        };
        assert_eq!(q.path(), "/v1/logs?target=shop%20web&follow=true&tail=5&since_ns=7");
        assert_eq!(
            ServiceLogsQuery { target: "t".into(), ..q.clone() }.since(),
            Some(MonoTime(std::time::Duration::from_nanos(7)))
        );
        let bare = ServiceLogsQuery { target: "web".into(), ..ServiceLogsQuery::default() };
        assert_eq!(bare.path(), "/v1/logs?target=web");
    }

    #[test]
    fn items_are_one_json_object_a_line() {
        let line = ServiceLogLine {
            service: "web".into(),
            slot: 1,
            node_id: NodeId::new("n1"),
            node_hostname: "host1".into(),
            line: LogLine {
                task_id: TaskId::new("t1"),
                timestamp: MonoTime::from_secs(1),
                stream: LogStream::Stdout,
                line: "hello".into(),
            },
        };
        let text = LogsItem::Line(line.clone()).to_line();
        assert!(text.starts_with("{\"line\":") && text.ends_with("}\n"), "{text}");
        assert_eq!(serde_json::from_str::<LogsItem>(text.trim()).unwrap(), LogsItem::Line(line));
        let w = LogsItem::Warning("node n2 is down".into()).to_line();
        assert_eq!(w, "{\"warning\":\"node n2 is down\"}\n");
    }
}
