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
//!
//! Following a service (`docker service logs -f`) also follows the tasks that start after the
//! stream began: each time the store applies entries, the service's tasks that have started
//! (RUNNING or later) and are not followed yet get a subscription of their own, from their
//! first line. A task is subscribed once it has started because only then does its node have
//! a log to read; the lines it wrote while STARTING come with the rest.

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
use reconciler_types::{NodeId, ServiceId, ServiceMode, Task, TaskId, TaskState};
use std::collections::{BTreeMap, BTreeSet};
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

/// Tasks by node: node → (hostname, tasks with their slots).
type ByNode = BTreeMap<NodeId, (String, Vec<(TaskId, u64)>)>;

/// What a key names: the service's name and replicas, and its tasks by node.
struct Plan {
    target: LogsTarget,
    /// The service, when the key named one (not a task): what `follow` watches.
    service: Option<ServiceId>,
    nodes: ByNode,
}

/// Adds placed tasks to `nodes` by node.
fn by_node<'a>(state: &ClusterState, tasks: impl IntoIterator<Item = &'a Task>) -> ByNode {
    let mut nodes = ByNode::new();
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
    nodes
}

fn plan(state: &ClusterState, key: &str) -> Result<Plan, ApiError> {
    let no_such = || ApiError::NotFound(format!("no such task or service: {key}"));
    let (service, named, tasks): (_, _, Vec<_>) = match rules::resolve(state, key) {
        Ok(r) => (
            r,
            Some(r.id.clone()),
            state.tasks.values().filter(|t| t.task.service_id == r.id).map(|t| &t.task).collect(),
        ),
        Err(ApiError::NotFound(_)) => {
            let t = state.tasks.get(&TaskId::new(key)).ok_or_else(no_such)?;
            let s = state.services.get(&t.task.service_id).ok_or_else(no_such)?;
            (s, None, vec![&t.task])
        }
        Err(e) => return Err(e),
    };
    let replicas = match service.spec.mode {
        ServiceMode::Replicated { replicas } => replicas,
        ServiceMode::Global => 0,
    };
    let target = LogsTarget { service: service.spec.name.clone(), replicas };
    Ok(Plan { target, service: named, nodes: by_node(state, tasks) })
}

/// The tasks of `service` that have started on a node (RUNNING or later: their node has a
/// log for them) and are not in `followed`.
fn started_tasks(state: &ClusterState, service: &ServiceId, followed: &BTreeSet<TaskId>) -> ByNode {
    // Through the task index: this runs on every applied entry while a follower reads.
    let tasks = state
        .service_tasks(service)
        .filter(|t| t.status.state >= TaskState::Running && !followed.contains(&t.id));
    by_node(state, tasks)
}

/// Subscribes to every node's lines (leader only) and merges them.
fn serve(m: &Arc<Manager>, q: &ServiceLogsQuery) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let (tx, rx) = mpsc::channel(BUFFER);
    let options = LogOptions { follow: q.follow, tail: q.tail, since: q.since() };
    let (plan, started) = m.node.state.read(|s| {
        let plan = plan(&s.state, &q.target)?;
        // Following a service: the tasks not started yet are followed once they start.
        let started = match (&plan.service, q.follow) {
            (Some(id), true) => Some(started_tasks(&s.state, id, &BTreeSet::new())),
            _ => None,
        };
        Ok::<_, ApiError>((plan, started))
    })?;
    let _ = tx.try_send(Bytes::from(LogsItem::Target(plan.target.clone()).to_line()));
    let service = plan.target.service.clone();
    let Some((id, started)) = plan.service.zip(started) else {
        subscribe(m, &service, plan.nodes, &options, &tx)?;
        return Ok(rx);
    };
    let present: BTreeSet<TaskId> =
        plan.nodes.values().flat_map(|(_, ts)| ts.iter().map(|(t, _)| t.clone())).collect();
    let followed: BTreeSet<TaskId> =
        started.values().flat_map(|(_, ts)| ts.iter().map(|(t, _)| t.clone())).collect();
    subscribe(m, &service, started, &options, &tx)?;
    let follow = FollowService { id, service, options, present, followed };
    tokio::spawn(follow.run(m.clone(), tx));
    Ok(rx)
}

/// Subscribes to the lines of `nodes`' tasks; a node without a session gets a warning.
fn subscribe(
    m: &Manager,
    service: &str,
    nodes: ByNode,
    options: &LogOptions,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    for (node, (host, tasks)) in nodes {
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
        let from = Source { service: service.to_owned(), node, host, name, slots };
        tokio::spawn(forward(chunks, from, options.follow, tx.clone()));
    }
    Ok(())
}

/// `-f` on a service: follows its tasks as they start, until the reader goes away.
struct FollowService {
    id: ServiceId,
    service: String,
    /// The stream's options; a task that did not exist when the stream began is read from
    /// its first line (`--tail` counted back from when the command ran).
    options: LogOptions,
    /// The service's tasks when the stream began.
    present: BTreeSet<TaskId>,
    /// The tasks subscribed to.
    followed: BTreeSet<TaskId>,
}

impl FollowService {
    async fn run(mut self, m: Arc<Manager>, tx: mpsc::Sender<Bytes>) {
        let mut applied = m.node.state.applied();
        loop {
            // Checked first: a task may have started since the stream's first read.
            let started = m.node.state.read(|s| started_tasks(&s.state, &self.id, &self.followed));
            self.subscribe_started(&m, started, &tx);
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
        }
    }

    fn subscribe_started(&mut self, m: &Manager, started: ByNode, tx: &mpsc::Sender<Bytes>) {
        if started.is_empty() {
            return;
        }
        let (mut old, mut new) = (ByNode::new(), ByNode::new());
        for (node, (host, tasks)) in started {
            for (task, slot) in tasks {
                self.followed.insert(task.clone());
                let into = if self.present.contains(&task) { &mut old } else { &mut new };
                into.entry(node.clone())
                    .or_insert_with(|| (host.clone(), Vec::new()))
                    .1
                    .push((task, slot));
            }
        }
        let from_start = LogOptions { tail: None, ..self.options.clone() };
        for (nodes, options) in [(old, &self.options), (new, &from_start)] {
            if let Err(e) = subscribe(m, &self.service, nodes, options, tx) {
                tracing::warn!(service = %self.service, error = %e, "cannot follow new tasks");
            }
        }
    }
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
    fn following_a_service_picks_up_its_tasks_once_they_started_and_each_once() {
        let mut s = state();
        let id = ServiceId::new("svc1");
        for (t, st) in [
            ("t1", TaskState::Running),
            ("t2", TaskState::Failed),
            ("t3", TaskState::Starting),
            ("t4", TaskState::Running),
        ] {
            s.tasks.get_mut(&TaskId::new(t)).unwrap().task.status.state = st;
        }
        let ids = |n: &ByNode| -> Vec<String> {
            n.values().flat_map(|(_, ts)| ts.iter().map(|(t, _)| t.to_string())).collect()
        };
        // t3 has no log yet (STARTING), t4 is on no node.
        assert_eq!(ids(&started_tasks(&s, &id, &BTreeSet::new())), ["t1", "t2"]);
        let followed: BTreeSet<TaskId> = [TaskId::new("t1"), TaskId::new("t2")].into();
        assert!(started_tasks(&s, &id, &followed).is_empty());
        s.tasks.get_mut(&TaskId::new("t3")).unwrap().task.status.state = TaskState::Running;
        let next = started_tasks(&s, &id, &followed);
        assert_eq!(next[&NodeId::new("n1")].1, [(TaskId::new("t3"), 3)]);
        assert!(started_tasks(&s, &ServiceId::new("other"), &BTreeSet::new()).is_empty());
        assert_eq!(plan(&s, "shop_web").unwrap().service, Some(id), "a service key is followed");
        assert_eq!(plan(&s, "t1").unwrap().service, None, "a task key is not");
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
