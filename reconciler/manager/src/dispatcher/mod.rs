//! The dispatcher: the leader's side of the agent protocol (`reconciler_api::dispatcher`).
//!
//! ```text
//!  agent ──credential──► routes ──(follower: forward to the leader, same credential)──┐
//!                          │ leader                                                   │
//!                          ▼                                                          │
//!   register ─► node READY (queued, waits for its batch) ─► session + heartbeat table │
//!   heartbeat ─► deadline += 3 periods        expiry loop ─► node DOWN (queued)       │
//!   assignments ─► AssignmentSet of the node (long poll woken by the node index)     │
//!   status ─► checked, queued ─────────► flush loop: one Raft batch at a time ◄──────┘
//!   logs ─► the subscriber's channel
//!   routes ─► the mesh table's changes since the agent's version (long poll, all agents)
//! ```
//!
//! Everything here lives in the leader's memory and starts again with each term (see
//! [`run`]): a new leader marks every node that is not down *unknown* and gives it six
//! periods to open a session. Start at [`Dispatcher`]; the pure parts are [`sessions`]
//! (heartbeats), [`assignments`] (what a node holds), [`updates`] (batches), [`logs`] and
//! [`mesh`] (the routing table).

pub mod assignments;
pub mod credential;
pub mod index;
pub mod logs;
pub mod mesh;
pub mod routes;
pub mod run;
pub mod sessions;
pub mod updates;

use crate::error::ApiError;
use crate::keys::SymmetricKey;
use crate::manager::Manager;
use crate::token::{new_hex, random_bytes};
use assignments::{AssignmentSet, Sources};
use index::NodeIndex;
use logs::{Delivery, LogRoutes};
use reconciler_api::dispatcher::{
    Assignments, AssignmentsKind, AssignmentsQuery, HeartbeatAck, LogAck, LogChunk,
    LogSubscription, MAX_WAIT_MS, RefusedUpdate, RegisterRequest, Session, StatusAck, StatusReport,
    TaskAssignment,
};
use reconciler_store::ClusterState;
use reconciler_types::{NodeId, NodeState, Task};
use sessions::{PeriodChooser, Sessions, UnknownSession};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use updates::{NodeChange, NodeStatusChange, Pending};

/// How the dispatcher batches (the heartbeat period is a cluster setting, read from the
/// state: `manager --init --dispatcher-heartbeat`).
#[derive(Debug, Clone, Copy)]
pub struct DispatcherConfig {
    /// How long the first queued update waits for others before its batch is written; by
    /// default none: a batch is written as soon as the one before it was, with everything
    /// queued meanwhile (swarmkit waits up to 100 ms, a window that every task start of a
    /// rolling update would wait out).
    pub batch_interval: Duration,
    /// With a `batch_interval`, a batch is written at once when it holds this many tasks and
    /// nodes (swarmkit: 10,000).
    pub max_batch: usize,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig { batch_interval: Duration::ZERO, max_batch: 10_000 }
    }
}

/// One node's open session and what it holds.
struct Held {
    session: String,
    set: AssignmentSet,
}

/// The dispatcher's memory, behind one lock (never held across an await; taken before the
/// state's read lock, never after).
struct Core {
    /// The Raft term this dispatcher serves agents in; `None` when not leading (or starting).
    term: Option<u64>,
    /// How many times serving stopped (a term's start that finishes late checks it).
    stops: u64,
    sessions: Sessions,
    held: HashMap<NodeId, Held>,
    index: NodeIndex,
    logs: LogRoutes,
    wake: HashMap<NodeId, watch::Sender<u64>>,
    /// The routing mesh's table, and the wake-up of every routes poll.
    mesh: mesh::MeshTable,
    mesh_wake: watch::Sender<u64>,
}

impl Core {
    fn wake(&mut self, node: &NodeId) {
        if let Some(tx) = self.wake.get(node) {
            tx.send_modify(|n| *n += 1);
        }
    }

    fn waker(&mut self, node: &NodeId) -> watch::Receiver<u64> {
        self.wake.entry(node.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    fn check(&self, node: &NodeId, session: &str) -> Result<(), ApiError> {
        if self.term.is_none() {
            return Err(not_serving());
        }
        self.sessions.check(node, session).map_err(session_gone)
    }

    /// Forgets every session and wakes every waiting poll (which then finds its session gone).
    fn reset(&mut self, term: Option<u64>) {
        self.term = term;
        self.sessions.clear();
        self.held.clear();
        for tx in self.wake.values() {
            tx.send_modify(|n| *n += 1);
        }
        self.mesh_wake.send_modify(|n| *n += 1);
        self.wake.retain(|_, tx| tx.receiver_count() > 0);
    }
}

fn not_serving() -> ApiError {
    ApiError::Unavailable("this manager is not serving agents yet (leader changing); retry".into())
}

fn session_gone(_: UnknownSession) -> ApiError {
    ApiError::NotFound("session not found: register again".into())
}

/// The leader's dispatcher.
pub struct Dispatcher {
    config: DispatcherConfig,
    core: Mutex<Core>,
    pending: Mutex<Pending>,
    /// Wakes the flush loop (a report or a node change was queued).
    queued: Notify,
    /// Wakes the expiry loop (a deadline may have moved earlier).
    deadlines: Notify,
}

impl Dispatcher {
    /// A dispatcher that serves nobody until [`run::serve`] finds this manager leading.
    pub fn new(config: DispatcherConfig) -> Self {
        let seed =
            random_bytes(8).ok().and_then(|b| b.try_into().ok()).map_or(0x5eed, u64::from_le_bytes);
        let core = Core {
            term: None,
            stops: 0,
            sessions: Sessions::new(PeriodChooser::new(Duration::from_secs(5), seed)),
            held: HashMap::new(),
            index: NodeIndex::default(),
            logs: LogRoutes::default(),
            wake: HashMap::new(),
            mesh: mesh::MeshTable::default(),
            mesh_wake: watch::channel(0).0,
        };
        Dispatcher {
            config,
            core: Mutex::new(core),
            pending: Mutex::new(Pending::default()),
            queued: Notify::new(),
            deadlines: Notify::new(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &DispatcherConfig {
        &self.config
    }

    /// The sessions, index and routes. `sync_index` holds this lock while it waits for the
    /// state (which a leader loop pass may hold for a second or more), so async callers wait
    /// for it off their worker thread ([`reconciler_store::lock`]).
    fn core(&self) -> MutexGuard<'_, Core> {
        reconciler_store::lock::mutex(&self.core)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a node change for the next batch, and answers a receiver of its outcome.
    fn queue_node(
        &self,
        node: NodeId,
        change: NodeChange,
    ) -> tokio::sync::oneshot::Receiver<Result<(), ApiError>> {
        let mut p = self.pending();
        p.add_node(node, change);
        let rx = p.wait();
        drop(p);
        self.queued.notify_one();
        rx
    }

    /// Opens a session (leader only): the node's description, address and READY state are
    /// written through Raft (in the next batch) before the session is answered, so the
    /// scheduler can place tasks on the node from then on.
    ///
    /// # Errors
    /// Not serving agents (leader changing), or the write failed.
    pub async fn register(
        &self,
        m: &Manager,
        node: NodeId,
        req: RegisterRequest,
    ) -> Result<Session, ApiError> {
        let term = self.core().term.ok_or_else(not_serving)?;
        let session = new_hex(16).map_err(|e| ApiError::Internal(e.to_string()))?;
        let ready = NodeStatusChange {
            state: NodeState::Ready,
            message: String::new(),
            addr: Some(req.addr.clone()),
        };
        let change = NodeChange { status: Some(ready), description: Some(req.description) };
        await_batch(self.queue_node(node.clone(), change)).await?;
        let period = {
            let mut core = self.core();
            if core.term != Some(term) {
                return Err(not_serving());
            }
            let period = core.sessions.register(node.clone(), session.clone(), Instant::now());
            core.held.insert(
                node.clone(),
                Held { session: session.clone(), set: AssignmentSet::default() },
            );
            core.wake(&node);
            period
        };
        self.deadlines.notify_one();
        let managers = m.node.state.read(|s| {
            s.state
                .managers()
                .values()
                .filter_map(|n| n.manager_status.as_ref())
                .map(|ms| ms.addr.clone())
                .collect()
        });
        Ok(Session { session, node_id: node, heartbeat_period_ms: millis(period), managers })
    }

    /// A heartbeat: answers the next period.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the session is gone (register again).
    pub fn heartbeat(&self, node: &NodeId, session: &str) -> Result<HeartbeatAck, ApiError> {
        let mut core = self.core();
        if core.term.is_none() {
            return Err(not_serving());
        }
        let period =
            core.sessions.heartbeat(node, session, Instant::now()).map_err(session_gone)?;
        Ok(HeartbeatAck { period_ms: millis(period) })
    }

    /// The long poll: answers as soon as the node has something newer than `query.since`, or
    /// an empty incremental answer after `query.wait_ms` (at most [`MAX_WAIT_MS`]).
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the session is gone (register again).
    pub async fn assignments(
        &self,
        m: &Manager,
        node: &NodeId,
        query: &AssignmentsQuery,
    ) -> Result<Assignments, ApiError> {
        let deadline = Instant::now() + Duration::from_millis(query.wait_ms.min(MAX_WAIT_MS));
        let mut woken = self.core().waker(node);
        loop {
            woken.borrow_and_update();
            m.node.state.settled().await;
            if let Some(answer) = self.answer(m, node, query)? {
                tracing::debug!(%node, generation = answer.generation, changes = answer.changes.len(), "dispatcher: assignments answered");
                return Ok(answer);
            }
            match tokio::time::timeout_at(deadline, woken.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let core = self.core();
                    core.check(node, &query.session)?;
                    let generation = core.held.get(node).map_or(0, |h| h.set.generation());
                    return Ok(Assignments {
                        kind: AssignmentsKind::Incremental,
                        applies_to: generation,
                        generation,
                        changes: Vec::new(),
                        log_subscriptions: Vec::new(),
                    });
                }
            }
        }
    }

    /// The answer to a poll now, or `None` when the node has nothing new.
    fn answer(
        &self,
        m: &Manager,
        node: &NodeId,
        query: &AssignmentsQuery,
    ) -> Result<Option<Assignments>, ApiError> {
        let mut guard = self.core();
        let core = &mut *guard;
        core.check(node, &query.session)?;
        let Some(held) = core.held.get_mut(node) else { return Err(session_gone(UnknownSession)) };
        let complete = query.since == 0 || query.since != held.set.generation();
        if !complete && !held.set.is_touched() && !core.logs.has_new(node, &held.session) {
            return Ok(None);
        }
        let index = &core.index;
        let answer = m.node.state.read(|s| {
            let src = StateSources { state: &s.state, key: &m.cluster_key };
            if complete {
                let tasks =
                    index.tasks_of(node).filter_map(|id| s.state.tasks.get(id)).map(|r| &r.task);
                Some(held.set.complete(tasks, &src))
            } else {
                let current = |id: &reconciler_types::TaskId| {
                    let here = index.node_of(id) == Some(node);
                    here.then(|| s.state.tasks.get(id)).flatten().map(|r| &r.task)
                };
                held.set.incremental(current, &src)
            }
        });
        let subs = core.logs.take_for(node, &held.session, complete);
        Ok(match answer {
            Some(mut a) => {
                a.log_subscriptions = subs;
                Some(a)
            }
            None if !subs.is_empty() => {
                let generation = held.set.generation();
                Some(Assignments {
                    kind: AssignmentsKind::Incremental,
                    applies_to: generation,
                    generation,
                    changes: Vec::new(),
                    log_subscriptions: subs,
                })
            }
            None => None,
        })
    }

    /// Task states from an agent: checked now (only the node's own tasks, never backwards),
    /// written with the next batch; answers once that batch is committed.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the session is gone, or the batch could not be written.
    pub async fn report(
        &self,
        m: &Manager,
        node: &NodeId,
        report: StatusReport,
    ) -> Result<StatusAck, ApiError> {
        self.core().check(node, &report.session)?;
        let mut refused = Vec::new();
        let mut accepted = Vec::new();
        m.node.state.read(|s| {
            for u in report.updates {
                match updates::refuse_report(&s.state, node, &u.task_id, &u.status) {
                    Some(reason) => refused.push(RefusedUpdate { task_id: u.task_id, reason }),
                    None => accepted.push(u),
                }
            }
        });
        if accepted.is_empty() {
            return Ok(StatusAck { refused });
        }
        tracing::debug!(%node, updates = accepted.len(), "dispatcher: task states queued");
        let done = {
            let mut p = self.pending();
            for u in accepted {
                p.add_task(u.task_id, u.status);
            }
            p.wait()
        };
        self.queued.notify_one();
        await_batch(done).await?;
        Ok(StatusAck { refused })
    }

    /// Log lines from an agent, handed to the subscriber.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the session is gone.
    pub async fn publish_logs(&self, node: &NodeId, chunk: LogChunk) -> Result<LogAck, ApiError> {
        let delivery = {
            let mut core = self.core();
            core.check(node, &chunk.session)?;
            core.logs.route(node, &chunk)
        };
        let cancelled = match delivery {
            Delivery::To(tx) => tx.send(chunk).await.is_err(),
            Delivery::Cancelled => true,
        };
        Ok(LogAck { cancelled })
    }

    /// Asks `node` for the logs of some of its tasks: the subscription goes out with the
    /// node's next assignments answer, and its chunks arrive on the receiver. Dropping the
    /// receiver cancels it. Works on the leader only (where the node's session lives).
    pub fn subscribe_logs(
        &self,
        node: &NodeId,
        subscription: LogSubscription,
    ) -> tokio::sync::mpsc::Receiver<LogChunk> {
        let mut core = self.core();
        let rx = core.logs.subscribe(node.clone(), subscription);
        core.wake(node);
        rx
    }

    /// Whether `node` has an open session on this manager.
    pub fn has_session(&self, node: &NodeId) -> bool {
        self.core().sessions.registered().any(|n| n == node)
    }
}

/// Waits for the batch a change was queued in.
async fn await_batch(
    rx: tokio::sync::oneshot::Receiver<Result<(), ApiError>>,
) -> Result<(), ApiError> {
    rx.await.unwrap_or_else(|_| Err(not_serving()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Content and service details read from the applied state.
struct StateSources<'a> {
    state: &'a ClusterState,
    key: &'a SymmetricKey,
}

impl Sources for StateSources<'_> {
    fn config(&self, name: &str) -> Option<Vec<u8>> {
        self.state.configs.get(name).map(|c| c.data.clone())
    }

    fn secret(&self, name: &str) -> Option<Vec<u8>> {
        let sealed = &self.state.secrets.get(name)?.sealed;
        match self.key.open(sealed) {
            Ok(plain) => Some(plain),
            Err(e) => {
                tracing::warn!(secret = name, error = %e, "cannot unseal a secret for a node");
                None
            }
        }
    }

    fn describe(&self, task: &Task) -> TaskAssignment {
        let service = self.state.services.get(&task.service_id).map(|s| &s.spec);
        TaskAssignment {
            task: task.clone(),
            service_name: service.map(|s| s.name.clone()).unwrap_or_default(),
            service_labels: service.map(|s| s.labels.clone()).unwrap_or_default(),
            endpoint: service.map(|s| s.endpoint_spec.clone()).unwrap_or_default(),
        }
    }
}
