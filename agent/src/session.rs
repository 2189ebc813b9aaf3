//! The agent's session with the dispatcher (swarmkit `agent/session.go`, `agent/agent.go`):
//! register, then three loops at once until one of them loses the session:
//!
//! ```text
//!  register ─► Session ─┬─ heartbeat every period the dispatcher names
//!                       ├─ long-poll assignments ─► worker.apply, log subscriptions
//!                       ├─ long-poll the routing table ─► mesh.apply (when the mesh runs)
//!                       └─ report the outbox in batches
//!  session gone (404) ─► register again      manager unreachable ─► the next manager, backoff
//!  credential refused (401) ─► stop: this node was removed
//! ```
//!
//! Every failure is logged with what happens next; the tasks keep running meanwhile.

use crate::logpub::{LogPublishers, publish};
use crate::mesh::Mesh;
use crate::runtime::Runtime;
use crate::worker::Worker;
use reconciler_api::dispatcher::{
    AssignmentsQuery, MAX_WAIT_MS, RegisterRequest, Session, StatusReport,
};
use reconciler_api::mesh::RoutesQuery;
use reconciler_api::{ApiError, ClientError, DispatcherClient};
use std::sync::Arc;
use std::time::Duration;

/// The longest wait between two attempts to reach a manager.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The dispatcher no longer knows the session (leader change): register again.
    SessionGone,
    /// The manager did not answer: try another.
    Unreachable(String),
    /// The node's credential was refused: the node was removed from the cluster.
    Revoked,
}

fn classify(e: &ClientError) -> End {
    match e {
        ClientError::Api(ApiError::NotFound(_)) => End::SessionGone,
        ClientError::Api(ApiError::Unauthorized) => End::Revoked,
        other => End::Unreachable(other.to_string()),
    }
}

/// The managers an agent knows, and the one it talks to.
pub struct Managers {
    addrs: Vec<String>,
    current: usize,
    tls: bool,
}

impl Managers {
    /// Starts with `first` (the join address); `tls` gives bare addresses `https://`.
    pub fn new(first: Vec<String>, tls: bool) -> Managers {
        Managers { addrs: first, current: 0, tls }
    }

    /// The URL of the manager to talk to.
    pub fn current(&self) -> String {
        let addr = self.addrs.get(self.current).cloned().unwrap_or_default();
        if addr.contains("://") {
            addr
        } else if self.tls {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        }
    }

    /// Moves to the next manager.
    pub fn next(&mut self) {
        if !self.addrs.is_empty() {
            self.current = (self.current + 1) % self.addrs.len();
        }
    }

    /// Learns the managers a session names (keeping the one in use first).
    pub fn learn(&mut self, managers: &[String]) {
        let now = self.addrs.get(self.current).cloned();
        let mut addrs: Vec<String> = now.iter().cloned().collect();
        for m in self.addrs.iter().chain(managers) {
            if !m.is_empty() && !addrs.contains(m) {
                addrs.push(m.clone());
            }
        }
        self.addrs = addrs;
        self.current = 0;
    }

    /// Every address known.
    pub fn all(&self) -> &[String] {
        &self.addrs
    }
}

/// Keeps a session with some manager until the credential is refused.
pub async fn run<R: Runtime>(
    worker: Arc<Worker<R>>,
    managers: &mut Managers,
    client: &mut DispatcherClient,
    register: RegisterRequest,
    on_managers: &(dyn Fn(&[String]) + Send + Sync),
    mesh: Option<Arc<Mesh>>,
) -> End {
    let mut backoff = Duration::from_millis(200);
    let publishers = LogPublishers::default();
    loop {
        client.use_manager(&managers.current());
        let session = match client.register(&register).await {
            Ok(s) => s,
            Err(e) => {
                let end = classify(&e);
                if end == End::Revoked {
                    return end;
                }
                tracing::warn!(manager = %managers.current(), error = %e, retry_in = ?backoff,
                    "cannot open a session; trying the next manager");
                managers.next();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        managers.learn(&session.managers);
        on_managers(managers.all());
        tracing::info!(manager = %managers.current(), node = %session.node_id,
            heartbeat_ms = session.heartbeat_period_ms, "session open");
        worker.new_session();
        let end = tokio::select! {
            e = heartbeats(client, &session) => e,
            e = poll(client, &session, &worker, &publishers) => e,
            e = report(client, &session, &worker) => e,
            e = routes(client, &session, mesh.as_deref()) => e,
        };
        match end {
            End::Revoked => return End::Revoked,
            End::SessionGone => {
                tracing::info!(manager = %managers.current(), "session gone; registering again");
            }
            End::Unreachable(why) => {
                tracing::warn!(manager = %managers.current(), error = %why, retry_in = ?backoff,
                    "lost the manager; trying the next one");
                managers.next();
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

async fn heartbeats(client: &DispatcherClient, session: &Session) -> End {
    let mut period = Duration::from_millis(session.heartbeat_period_ms.max(100));
    loop {
        tokio::time::sleep(period).await;
        match client.heartbeat(&session.session).await {
            Ok(ack) => period = Duration::from_millis(ack.period_ms.max(100)),
            Err(e) => return classify(&e),
        }
    }
}

async fn poll<R: Runtime>(
    client: &DispatcherClient,
    session: &Session,
    worker: &Arc<Worker<R>>,
    publishers: &LogPublishers,
) -> End {
    loop {
        let query = AssignmentsQuery {
            session: session.session.clone(),
            since: worker.generation(),
            wait_ms: MAX_WAIT_MS,
        };
        let answer = match client.assignments(&query).await {
            Ok(a) => a,
            Err(e) => return classify(&e),
        };
        tracing::debug!(kind = ?answer.kind, generation = answer.generation, changes = answer.changes.len(), "assignments received");
        let subscriptions = answer.log_subscriptions.clone();
        if let Err(stale) = worker.apply(answer) {
            tracing::info!(%stale, "asking for a complete set of assignments");
            worker.reset_generation();
        }
        for sub in subscriptions {
            if publishers.start(&sub.id) {
                let (client, session, worker) =
                    (client.clone(), session.session.clone(), worker.clone());
                let done = publishers.clone();
                tokio::spawn(async move {
                    let id = sub.id.clone();
                    publish(&client, &session, &worker, sub).await;
                    done.finish(&id);
                });
            }
        }
    }
}

/// Follows the routing table into the mesh (never ends without a mesh).
async fn routes(client: &DispatcherClient, session: &Session, mesh: Option<&Mesh>) -> End {
    let Some(mesh) = mesh else { return std::future::pending().await };
    mesh.new_session();
    loop {
        let query = RoutesQuery {
            session: session.session.clone(),
            since: mesh.version(),
            wait_ms: MAX_WAIT_MS,
        };
        let answer = match client.routes(&query).await {
            Ok(a) => a,
            Err(e) => return classify(&e),
        };
        if let Err(stale) = mesh.apply(answer) {
            tracing::info!(%stale, "asking for the complete routing table");
            mesh.new_session();
        }
    }
}

async fn report<R: Runtime>(
    client: &DispatcherClient,
    session: &Session,
    worker: &Worker<R>,
) -> End {
    let outbox = worker.outbox();
    loop {
        let updates = outbox.next_batch().await;
        let body = StatusReport { session: session.session.clone(), updates };
        tracing::debug!(updates = body.updates.len(), "reporting task states");
        match client.report(&body).await {
            Ok(ack) => {
                tracing::debug!(updates = body.updates.len(), "task states written");
                outbox.sent(&body.updates);
                for r in ack.refused {
                    tracing::warn!(task = %r.task_id, reason = %r.reason, "status refused");
                }
            }
            Err(e) => return classify(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managers_rotate_and_learn_new_addresses_keeping_the_current_one_first() {
        let mut m = Managers::new(vec!["a:1".into()], true);
        assert_eq!(m.current(), "https://a:1");
        m.learn(&["b:1".into(), "a:1".into(), "c:1".into()]);
        assert_eq!(m.all(), ["a:1", "b:1", "c:1"]);
        m.next();
        assert_eq!(m.current(), "https://b:1");
        m.learn(&["c:1".into()]);
        assert_eq!(m.all(), ["b:1", "a:1", "c:1"]);
        let plain = Managers::new(vec!["http://x:2".into(), "y:2".into()], false);
        assert_eq!(plain.current(), "http://x:2");
        assert_eq!(classify(&ClientError::Api(ApiError::Unauthorized)), End::Revoked);
        assert_eq!(classify(&ClientError::Api(ApiError::NotFound("s".into()))), End::SessionGone);
    }
}
