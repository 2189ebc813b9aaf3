//! The log broker behind `service logs` (`reconciler_api::logs`): on the leader, it asks
//! every node that holds a task of the target for its lines (a log subscription through the
//! dispatcher) and merges the chunks into one stream; a follower passes the leader's stream
//! through.
//!
//! ```text
//! GET /v1/logs?target=web ─► resolve (service or task) ─► tasks by node
//!   node with a session ─► dispatcher.subscribe_logs ─► chunks ─► {"line":..} ─┐
//!   node without one ───► {"warning":"..."}                                   ├─► NDJSON
//!   {"target":..} first ──────────────────────────────────────────────────────┘
//! ```
//!
//! Without `follow` the stream ends once every node said `done` (or stayed silent for
//! [`SILENCE`]); with it, when the reader goes away, which cancels every subscription.

use crate::error::ApiError;
use crate::manager::Manager;
use crate::server::ApiAuth;
use crate::services::rules;
use crate::token::new_hex;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use reconciler_api::dispatcher::{LogChunk, LogOptions, LogSubscription, ServiceLogLine};
use reconciler_api::logs::{LogsItem, LogsTarget, SERVICE_LOGS_PATH, ServiceLogsQuery};
use reconciler_store::ClusterState;
use reconciler_types::{NodeId, ServiceMode, TaskId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a node may stay silent before a non-following stream gives up on it.
pub const SILENCE: Duration = Duration::from_secs(15);
/// Items buffered towards a slow reader.
const BUFFER: usize = 256;

/// The route, merged into the manager's router.
pub fn routes() -> Router<Arc<Manager>> {
    Router::new().route(SERVICE_LOGS_PATH, get(logs))
}

async fn logs(
    _: ApiAuth,
    State(m): State<Arc<Manager>>,
    Query(q): Query<ServiceLogsQuery>,
) -> Result<Response, ApiError> {
    let rx = match m.leader_base()? {
        None => serve(&m, &q)?,
        Some(base) => proxy(&m, &base, &q).await?,
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Passes the leader's stream through.
async fn proxy(
    m: &Manager,
    base: &str,
    q: &ServiceLogsQuery,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let resp = m
        .client
        .get(format!("{base}{}", q.path()))
        .bearer_auth(&m.identity.peer_token)
        .timeout(Duration::from_secs(365 * 24 * 3600))
        .send()
        .await
        .map_err(|e| {
            ApiError::Unavailable(format!("the leader did not answer: {}", e.without_url()))
        })?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<reconciler_api::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        return Err(ApiError::from_remote(status.as_u16(), message));
    }
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut resp = resp;
        while let Ok(Some(chunk)) = resp.chunk().await {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// What a key names: the service's name and replicas, and its tasks by node.
struct Plan {
    target: LogsTarget,
    /// node → (hostname, tasks with their slots).
    nodes: BTreeMap<NodeId, (String, Vec<(TaskId, u64)>)>,
}

fn plan(state: &ClusterState, key: &str) -> Result<Plan, ApiError> {
    let no_such = || ApiError::NotFound(format!("no such task or service: {key}"));
    let (service, tasks): (_, Vec<_>) = match rules::resolve(state, key) {
        Ok(r) => (
            r,
            state.tasks.values().filter(|t| t.task.service_id == r.id).map(|t| &t.task).collect(),
        ),
        Err(ApiError::NotFound(_)) => {
            let t = state.tasks.get(&TaskId::new(key)).ok_or_else(no_such)?;
            let s = state.services.get(&t.task.service_id).ok_or_else(no_such)?;
            (s, vec![&t.task])
        }
        Err(e) => return Err(e),
    };
    let replicas = match service.spec.mode {
        ServiceMode::Replicated { replicas } => replicas,
        ServiceMode::Global => 0,
    };
    let mut nodes: BTreeMap<NodeId, (String, Vec<(TaskId, u64)>)> = BTreeMap::new();
    for t in tasks {
        let Some(node) = &t.node_id else { continue };
        let host =
            state.nodes.get(node).map(|n| n.node.description.hostname.clone()).unwrap_or_default();
        nodes
            .entry(node.clone())
            .or_insert_with(|| (host, Vec::new()))
            .1
            .push((t.id.clone(), t.slot));
    }
    Ok(Plan { target: LogsTarget { service: service.spec.name.clone(), replicas }, nodes })
}

/// Subscribes to every node's lines (leader only) and merges them.
fn serve(m: &Manager, q: &ServiceLogsQuery) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let plan = m.node.state.read(|s| plan(&s.state, &q.target))?;
    let (tx, rx) = mpsc::channel(BUFFER);
    let first = Bytes::from(LogsItem::Target(plan.target.clone()).to_line());
    let _ = tx.try_send(first);
    let options = LogOptions { follow: q.follow, tail: q.tail, since: q.since() };
    for (node, (host, tasks)) in plan.nodes {
        let name = if host.is_empty() { node.to_string() } else { host.clone() };
        if !m.dispatcher.has_session(&node) {
            let warning =
                format!("node {name} is not connected: the logs of its tasks are not shown");
            let _ = tx.try_send(Bytes::from(LogsItem::Warning(warning).to_line()));
            continue;
        }
        let id = new_hex(16).map_err(|e| ApiError::Internal(e.to_string()))?;
        let subscription = LogSubscription {
            id,
            tasks: tasks.iter().map(|(t, _)| t.clone()).collect(),
            options: options.clone(),
        };
        let chunks = m.dispatcher.subscribe_logs(&node, subscription);
        let slots: BTreeMap<TaskId, u64> = tasks.into_iter().collect();
        let from = Source { service: plan.target.service.clone(), node, host, name, slots };
        tokio::spawn(forward(chunks, from, q.follow, tx.clone()));
    }
    Ok(rx)
}

/// Where a node's lines come from.
struct Source {
    service: String,
    node: NodeId,
    host: String,
    name: String,
    slots: BTreeMap<TaskId, u64>,
}

/// Turns one node's chunks into stream lines until it is done (or silent too long, when not
/// following) or the reader is gone.
async fn forward(
    mut chunks: mpsc::Receiver<LogChunk>,
    from: Source,
    follow: bool,
    tx: mpsc::Sender<Bytes>,
) {
    loop {
        let next = if follow {
            chunks.recv().await
        } else {
            match tokio::time::timeout(SILENCE, chunks.recv()).await {
                Ok(c) => c,
                Err(_) => {
                    let w =
                        format!("node {} did not send the logs of its tasks in time", from.name);
                    let _ = tx.send(Bytes::from(LogsItem::Warning(w).to_line())).await;
                    return;
                }
            }
        };
        let Some(chunk) = next else { return };
        for line in chunk.lines {
            let item = LogsItem::Line(ServiceLogLine {
                service: from.service.clone(),
                slot: from.slots.get(&line.task_id).copied().unwrap_or_default(),
                node_id: from.node.clone(),
                node_hostname: from.host.clone(),
                line,
            });
            if tx.send(Bytes::from(item.to_line())).await.is_err() {
                return;
            }
        }
        if chunk.done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_store::cluster_state::{ServiceRecord, TaskRecord};
    use reconciler_types::{ServiceId, ServiceSpec, Task};

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        let spec = ServiceSpec {
            name: "shop_web".into(),
            mode: ServiceMode::Replicated { replicas: 12 },
            ..ServiceSpec::default()
        };
        let id = ServiceId::new("svc1");
        s.services
            .insert(id.clone(), ServiceRecord { id: id.clone(), spec, ..ServiceRecord::default() });
        for (t, node, slot) in
            [("t1", Some("n1"), 1), ("t2", Some("n2"), 2), ("t3", Some("n1"), 3), ("t4", None, 4)]
        {
            let task = Task {
                id: TaskId::new(t),
                service_id: id.clone(),
                node_id: node.map(NodeId::new),
                slot,
                ..Task::default()
            };
            s.tasks.insert(task.id.clone(), TaskRecord { task, version: 1 });
        }
        s
    }

    #[test]
    fn a_service_key_plans_every_placed_task_by_node() {
        let p = plan(&state(), "shop_web").unwrap();
        assert_eq!(p.target, LogsTarget { service: "shop_web".into(), replicas: 12 });
        let n1: Vec<_> =
            p.nodes[&NodeId::new("n1")].1.iter().map(|(t, s)| (t.to_string(), *s)).collect();
        assert_eq!(n1, [("t1".to_owned(), 1), ("t3".to_owned(), 3)]);
        assert_eq!(p.nodes.len(), 2, "an unplaced task has no logs");
    }

    #[test]
    fn a_task_key_plans_that_task_and_an_unknown_key_is_docker_s_error() {
        let p = plan(&state(), "t2").unwrap();
        assert_eq!(p.nodes.len(), 1);
        assert_eq!(p.target.service, "shop_web");
        let e = plan(&state(), "nope").err().unwrap();
        assert_eq!(e, ApiError::NotFound("no such task or service: nope".into()));
    }
}
