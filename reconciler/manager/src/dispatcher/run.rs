//! The dispatcher's background work, one round per Raft term this manager leads:
//!
//! 1. start: forget the previous term's sessions, wait until the state holds everything
//!    committed, mark every node that is not down *unknown* (six periods to open a session);
//! 2. then, until leadership moves: write queued updates in batches (flush loop), mark nodes
//!    that miss their heartbeats down (expiry loop), and keep the node index up to date with
//!    the applied state, waking the polls of the nodes whose tasks changed (index loop);
//! 3. stop: forget the sessions (their polls end; agents register with the next leader) and
//!    fail the updates still queued.

use super::index::{self, Touched};
use super::sessions::UNKNOWN_MESSAGE;
use super::updates::{NodeChange, NodeStatusChange, Pending};
use super::{Dispatcher, not_serving};
use crate::error::ApiError;
use crate::manager::Manager;
use reconciler_store::type_config::RaftMetrics;
use reconciler_store::{StoreCommand, StoreEvent};
use reconciler_types::{NodeId, NodeState};
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

/// Attempts at writing one batch when the state moved under it (each attempt re-reads it).
const WRITE_ATTEMPTS: usize = 5;

/// The term this manager leads in, if it leads.
pub fn leading_term(m: &RaftMetrics) -> Option<u64> {
    (m.state == openraft::ServerState::Leader).then_some(m.current_term)
}

/// Runs the dispatcher of `m` for as long as the manager runs.
pub async fn serve(m: Arc<Manager>) {
    let mut metrics = m.node.raft.metrics();
    loop {
        let term = leading_term(&metrics.borrow_and_update());
        if let Some(term) = term {
            tokio::select! {
                () = lead(&m, term) => {}
                () = leadership_moves(&mut metrics, term) => {}
            }
            m.dispatcher.stop();
            continue;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Returns once this manager no longer leads in `term`.
pub(crate) async fn leadership_moves(
    metrics: &mut tokio::sync::watch::Receiver<RaftMetrics>,
    term: u64,
) {
    loop {
        if metrics.changed().await.is_err() || leading_term(&metrics.borrow()) != Some(term) {
            return;
        }
    }
}

/// Serves one term (returns only if the state cannot be brought up to date).
async fn lead(m: &Arc<Manager>, term: u64) {
    if let Err(e) = m.node.raft.ensure_linearizable().await {
        tracing::warn!(error = %e, "dispatcher: cannot catch up with the log as a new leader");
        return;
    }
    // Subscribed before the index is built, so no applied command falls in between.
    let events = m.node.state.subscribe();
    let stops = m.dispatcher.core().stops;
    let m2 = m.clone();
    let start = move || m2.dispatcher.start(&m2, term, stops);
    if let Err(e) = tokio::task::spawn_blocking(start).await {
        tracing::error!(error = %e, "dispatcher: cannot start serving agents");
        return;
    }
    tokio::join!(flush_loop(m), expiry_loop(m), index_loop(m, events));
}

impl Dispatcher {
    /// A new term: the node index is rebuilt from the state (before any poll is answered: a
    /// complete set from an empty index would tell agents to stop everything), and every node
    /// that is not down becomes unknown with six periods of grace.
    /// `stops` is how many times the dispatcher had stopped when this term began: a start
    /// that finishes after leadership moved again (it runs on a blocking thread) does nothing.
    fn start(&self, m: &Manager, term: u64, stops: u64) {
        let now = Instant::now();
        let mut core = self.core();
        if core.stops != stops {
            return;
        }
        let nodes: Vec<(NodeId, NodeState)> = m.node.state.read(|s| {
            core.index = index::NodeIndex::default();
            core.index.refresh(&s.state);
            core.mesh.rebuild(&s.state);
            core.sessions.set_period(s.state.settings.dispatcher_heartbeat);
            let up = s.state.nodes.values().filter(|r| r.node.status.state != NodeState::Down);
            up.map(|r| (r.node.id.clone(), r.node.status.state)).collect()
        });
        core.reset(Some(term));
        let mut p = self.pending();
        for (id, state) in nodes {
            core.sessions.add_unknown(id.clone(), now);
            // A node never heard from (just joined) is unknown already: nothing to write.
            if state != NodeState::Unknown {
                let unknown = NodeStatusChange {
                    state: NodeState::Unknown,
                    message: UNKNOWN_MESSAGE.to_owned(),
                    addr: None,
                };
                p.add_node(id, NodeChange { status: Some(unknown), description: None });
            }
        }
        drop((p, core));
        self.queued.notify_one();
        self.deadlines.notify_one();
    }

    /// Leadership moved: sessions end, queued updates fail.
    fn stop(&self) {
        let mut core = self.core();
        core.stops += 1;
        core.reset(None);
        drop(core);
        let batch = std::mem::take(&mut *self.pending());
        batch.finish(&Err(not_serving()));
    }
}

/// Writes queued updates, one batch at a time (see [`Dispatcher::next_batch`]).
async fn flush_loop(m: &Manager) {
    let d = &m.dispatcher;
    loop {
        let batch = d.next_batch().await;
        tracing::debug!(updates = batch.len(), "dispatcher: writing a batch");
        let result = write_batch(m, &batch).await;
        tracing::debug!(updates = batch.len(), ok = result.is_ok(), "dispatcher: batch written");
        if let Err(e) = &result {
            tracing::warn!(error = %e, "dispatcher: a batch of agent updates was not written");
        }
        batch.finish(&result);
    }
}

impl Dispatcher {
    /// Waits until an update is queued and takes every queued update as the next batch. With
    /// no `batch_interval` (the default) that is at once: a report waits only for the batch
    /// being written before it (group commit), and everything queued meanwhile goes in the
    /// next one, so batches grow with the load instead of every report waiting out a window.
    /// With a `batch_interval`, the batch is taken that long after the first update was
    /// queued, or as soon as `max_batch` are waiting.
    async fn next_batch(&self) -> Pending {
        loop {
            let queued = self.queued.notified();
            if !self.pending().is_empty() {
                break;
            }
            queued.await;
        }
        if !self.config.batch_interval.is_zero() {
            let deadline = Instant::now() + self.config.batch_interval;
            while self.pending().len() < self.config.max_batch {
                if tokio::time::timeout_at(deadline, self.queued.notified()).await.is_err() {
                    break;
                }
            }
        }
        std::mem::take(&mut *self.pending())
    }
}

/// Writes one batch as one Raft entry, rebuilt from the state if it moved meanwhile.
async fn write_batch(m: &Manager, batch: &Pending) -> Result<(), ApiError> {
    let mut last = Ok(());
    for _ in 0..WRITE_ATTEMPTS {
        m.node.state.settled().await;
        let commands = m.node.state.read(|s| batch.commands(&s.state));
        if commands.is_empty() {
            return Ok(());
        }
        match m.write(StoreCommand::Batch { commands }).await {
            Ok(_) => return Ok(()),
            Err(
                e @ (ApiError::Conflict(_)
                | ApiError::NotFound(_)
                | ApiError::FailedPrecondition(_)),
            ) => {
                last = Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    last
}

/// Marks nodes whose heartbeats stopped down (`heartbeat failure`).
async fn expiry_loop(m: &Manager) {
    let d = &m.dispatcher;
    loop {
        let moved = d.deadlines.notified();
        let next = d.core().sessions.next_deadline();
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = moved => {}
                }
            }
            None => moved.await,
        }
        let expired = {
            let mut core = d.core();
            let expired = core.sessions.expire(Instant::now());
            for (node, _) in &expired {
                core.held.remove(node);
                core.wake(node);
            }
            expired
        };
        if expired.is_empty() {
            continue;
        }
        let mut p = d.pending();
        for (node, message) in expired {
            tracing::info!(%node, message, "node down");
            let down = NodeStatusChange {
                state: NodeState::Down,
                message: message.to_owned(),
                addr: None,
            };
            p.add_node(node, NodeChange { status: Some(down), description: None });
        }
        drop(p);
        d.queued.notify_one();
    }
}

/// Follows the applied commands: updates the node index (off the async threads when a
/// command touched many tasks) and wakes the polls of the nodes whose tasks changed; ends the
/// sessions of removed nodes. After a snapshot or missed events it rebuilds the index.
async fn index_loop(m: &Arc<Manager>, mut events: tokio::sync::broadcast::Receiver<StoreEvent>) {
    let mut touched = Touched::default();
    let mut full = false;
    loop {
        loop {
            match events.try_recv() {
                Ok(event) => absorb(&event, &mut touched, &mut full),
                Err(TryRecvError::Lagged(_)) => full = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        // Before the dispatcher's lock: sync_index reads the state while it holds that lock,
        // and every agent's call needs it.
        m.node.state.settled().await;
        let work = std::mem::take(&mut touched);
        if full || work.tasks.len() > INLINE_TOUCHED {
            let m2 = m.clone();
            let job =
                tokio::task::spawn_blocking(move || m2.dispatcher.sync_index(&m2, full, work));
            if let Err(e) = job.await {
                tracing::error!(error = %e, "dispatcher: the node index could not be updated");
            }
        } else if !work.is_empty() {
            m.dispatcher.sync_index(m, false, work);
        }
        full = false;
        match events.recv().await {
            Ok(event) => absorb(&event, &mut touched, &mut full),
            Err(RecvError::Lagged(_)) => full = true,
            Err(RecvError::Closed) => return,
        }
    }
}

/// Up to this many touched tasks are indexed on the async thread; more go to a blocking one.
const INLINE_TOUCHED: usize = 256;

fn absorb(event: &StoreEvent, touched: &mut Touched, full: &mut bool) {
    match event {
        StoreEvent::Applied { command, response, .. } if response.refusal.is_none() => {
            index::touched(command, touched);
        }
        StoreEvent::Applied { .. } => {}
        StoreEvent::Reset { .. } => *full = true,
    }
}

impl Dispatcher {
    fn sync_index(&self, m: &Manager, full: bool, touched: Touched) {
        let mut guard = self.core();
        let core = &mut *guard;
        let (changed, mut removed) = m.node.state.read(|s| {
            let changed = if full {
                core.index.refresh(&s.state)
            } else {
                core.index.update(&s.state, &touched.tasks)
            };
            if full || touched.settings {
                core.sessions.set_period(s.state.settings.dispatcher_heartbeat);
            }
            let routed = if full {
                core.mesh.rebuild(&s.state);
                true
            } else {
                let t = &touched;
                core.mesh.update(&s.state, &core.index, &t.tasks, &t.services, &t.nodes)
            };
            if routed {
                core.mesh_wake.send_modify(|n| *n += 1);
            }
            let gone = core.held.keys().filter(|n| !s.state.nodes.contains_key(*n));
            (changed, gone.cloned().collect::<Vec<NodeId>>())
        });
        removed.extend(touched.removed_nodes);
        for node in removed {
            core.sessions.remove(&node);
            core.held.remove(&node);
            core.wake(&node);
        }
        for (node, ids) in changed {
            if let Some(held) = core.held.get_mut(&node) {
                held.set.touch(ids);
            }
            core.wake(&node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatcher::DispatcherConfig;
    use reconciler_types::{TaskId, TaskState, TaskStatus};
    use std::time::Duration;

    fn queue(d: &Dispatcher, task: &str) {
        let status = TaskStatus { state: TaskState::Running, ..TaskStatus::default() };
        d.pending().add_task(TaskId::new(task), status);
        d.queued.notify_one();
    }

    /// A RUNNING report is on the way of every rollout batch (start-first waits for it): it
    /// is written as soon as nothing else is being written, not after a window.
    #[tokio::test(start_paused = true)]
    async fn a_report_is_written_at_once_and_reports_queued_meanwhile_go_in_the_next_batch() {
        let d = Dispatcher::new(DispatcherConfig::default());
        let start = Instant::now();
        queue(&d, "t1");
        let first = d.next_batch().await;
        assert_eq!((first.len(), start.elapsed()), (1, Duration::ZERO), "no batching window");
        // Two more arrive while the first batch is being written: one batch, taken at once.
        queue(&d, "t2");
        queue(&d, "t3");
        let second = d.next_batch().await;
        assert_eq!((second.len(), start.elapsed()), (2, Duration::ZERO));
        // Nothing queued: the next batch waits for the next report, however long.
        let later = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            queue(&d, "t4");
        };
        let (third, ()) = tokio::join!(d.next_batch(), later);
        assert_eq!((third.len(), start.elapsed()), (1, Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_configured_window_gathers_reports_until_it_ends_or_the_batch_is_full() {
        let window = Duration::from_millis(100);
        let d = Dispatcher::new(DispatcherConfig { batch_interval: window, max_batch: 3 });
        let start = Instant::now();
        queue(&d, "t1");
        let late = async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            queue(&d, "t2");
        };
        let (b, ()) = tokio::join!(d.next_batch(), late);
        assert_eq!((b.len(), start.elapsed()), (2, window));
        for t in ["t3", "t4", "t5"] {
            queue(&d, t);
        }
        assert_eq!((d.next_batch().await.len(), start.elapsed()), (3, window), "full: at once");
    }
}
