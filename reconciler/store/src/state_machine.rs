//! The Raft state machine: a thin wrapper around [`ClusterState::apply`] that tracks the
//! last applied log id and membership, builds and installs snapshots, and publishes the
//! applied index and every applied command ([`StoreEvent`], for the leader's orchestrator).
//!
//! Durability: the state lives in memory; its snapshot (state, last applied id, membership)
//! is written to redb's `snapshot` table every time one is built or installed. On restart the
//! state machine starts from that snapshot and openraft re-applies the committed log after
//! it, so nothing acknowledged is lost. Openraft's snapshot policy bounds the replay.

use crate::cluster_state::ClusterState;
use crate::command::{StoreCommand, StoreResponse};
use crate::log_store::SNAPSHOT;
use crate::type_config::{Entry, LogId, RaftId, StorageError, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use redb::{Database, ReadableDatabase};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::{broadcast, watch};

/// How many applied entries a slow subscriber may fall behind before it is told it lagged
/// (and must reread the state).
const EVENT_BUFFER: usize = 4096;

/// What the state machine did, as its subscribers see it, in log order.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// A command was applied (or refused: `response.refusal`) at `index`.
    Applied {
        /// The log index.
        index: u64,
        /// The command.
        command: Arc<StoreCommand>,
        /// What applying it answered.
        response: StoreResponse,
    },
    /// The whole state was replaced by a snapshot up to `index`: reread it.
    Reset {
        /// The snapshot's last index.
        index: u64,
    },
}

/// The state a manager reads: the cluster state plus where in the log it stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppliedState {
    /// The replicated state.
    pub state: ClusterState,
    /// The last log id applied.
    pub last_applied: Option<LogId>,
    /// The last membership applied.
    pub membership: StoredMembership<RaftId, BasicNode>,
}

/// A shared view of the applied state, a watch of the applied index, and the stream of
/// applied commands.
#[derive(Clone)]
pub struct StateHandle {
    inner: Arc<RwLock<AppliedState>>,
    applied: watch::Receiver<u64>,
    events: broadcast::Sender<StoreEvent>,
    /// Held (written) by a pass for as long as it holds the state; async code waits on it
    /// before taking the state's lock ([`StateHandle::settled`]).
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl StateHandle {
    /// Runs `f` on the current applied state, under the read lock: a consistent read that
    /// copies nothing. Keep `f` short; the state machine waits for it.
    /// Called from async code, it never stalls the runtime (see [`crate::lock`]).
    pub fn read<T>(&self, f: impl FnOnce(&AppliedState) -> T) -> T {
        let guard = crate::lock::read(&self.inner);
        f(&guard)
    }

    /// Waits, without holding a thread, until no pass holds the state: async code calls it
    /// before it reads the state, so that requests arriving during a long pass wait here
    /// instead of inside [`crate::lock`], where each waiter takes a thread of tokio's
    /// blocking pool. With a thousand agents calling during a multi-second pass, the pool's
    /// 512 threads were all waiting, tokio could not start a worker in place of a blocked
    /// one, and the manager stopped answering, Raft included. A pass queued behind the
    /// gate goes first: readers that arrive after it wait for it.
    pub async fn settled(&self) {
        drop(self.gate.read().await);
    }

    /// A copy of the whole current cluster state (costly on a large cluster: prefer
    /// [`StateHandle::read`]).
    pub fn snapshot(&self) -> ClusterState {
        self.read(|s| s.state.clone())
    }

    /// Runs an orchestrator pass on the applied state without copying it: `f` may change the
    /// state (the pass tries its decisions on it) and every change is undone before the lock
    /// is released (`ClusterState::tentatively`), so readers and the log only ever see
    /// committed state. Holds the write lock for as long as `f` runs: call it from a blocking
    /// thread (`spawn_blocking`), never while awaiting. Closes the gate of
    /// [`StateHandle::settled`] first.
    pub fn pass<T>(&self, f: impl FnOnce(&mut ClusterState, u64) -> T) -> T {
        let _gate = self.gate.blocking_write();
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let index = guard.last_applied.map(|l| l.index).unwrap_or(0);
        guard.state.tentatively(|s| f(s, index))
    }

    /// A receiver that changes every time entries are applied (value: last applied index).
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Every command applied from now on, in log order ([`StoreEvent`]). A receiver that
    /// falls more than a few thousand entries behind gets `RecvError::Lagged` and must
    /// reread the state, as after a [`StoreEvent::Reset`].
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<RaftId, BasicNode>,
    data: Vec<u8>,
}

const CURRENT: &str = "current";

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

/// The state machine store.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    inner: Arc<RwLock<AppliedState>>,
    applied: Arc<watch::Sender<u64>>,
    events: broadcast::Sender<StoreEvent>,
}

impl StateMachineStore {
    /// Opens the state machine on a database, starting from its stored snapshot if any.
    ///
    /// # Errors
    /// The stored snapshot cannot be read.
    pub fn open(db: Arc<Database>) -> Result<(Self, StateHandle), StorageError> {
        let mut start = AppliedState::default();
        if let Some(stored) = read_stored(&db)? {
            start = serde_json::from_slice(&stored.data).map_err(sm_read_err)?;
        }
        let index = start.last_applied.map(|l| l.index).unwrap_or(0);
        let (tx, rx) = watch::channel(index);
        let inner = Arc::new(RwLock::new(start));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let handle = StateHandle {
            inner: inner.clone(),
            applied: rx,
            events: events.clone(),
            gate: Arc::default(),
        };
        Ok((StateMachineStore { db, inner, applied: Arc::new(tx), events }, handle))
    }

    fn write(&self) -> RwLockWriteGuard<'_, AppliedState> {
        crate::lock::write(&self.inner)
    }

    fn read(&self) -> RwLockReadGuard<'_, AppliedState> {
        crate::lock::read(&self.inner)
    }

    fn save_snapshot(&self, snap: &StoredSnapshot) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(snap).map_err(sm_write_err)?;
        let txn = self.db.begin_write().map_err(sm_write_err)?;
        txn.open_table(SNAPSHOT)
            .map_err(sm_write_err)?
            .insert(CURRENT, bytes.as_slice())
            .map_err(sm_write_err)?;
        txn.commit().map_err(sm_write_err)
    }
}

fn read_stored(db: &Database) -> Result<Option<StoredSnapshot>, StorageError> {
    let txn = db.begin_read().map_err(sm_read_err)?;
    let table = txn.open_table(SNAPSHOT).map_err(sm_read_err)?;
    match table.get(CURRENT).map_err(sm_read_err)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(sm_read_err),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, last_log_id, last_membership) = {
            let state = self.read();
            let data = serde_json::to_vec(&*state).map_err(sm_read_err)?;
            (data, state.last_applied, state.membership.clone())
        };
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };
        let stored = StoredSnapshot { meta: meta.clone(), data };
        self.save_snapshot(&stored)?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(stored.data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<RaftId, BasicNode>), StorageError> {
        let state = self.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<StoreResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        let mut published = Vec::new();
        let listening = self.events.receiver_count() > 0;
        let last = {
            let mut state = self.write();
            for entry in entries {
                let index = entry.log_id.index;
                state.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => StoreResponse { index, refusal: None },
                    EntryPayload::Normal(cmd) => {
                        let response = state.state.apply(cmd.command(), index);
                        if listening {
                            let command = cmd.shared();
                            let response = response.clone();
                            published.push(StoreEvent::Applied { index, command, response });
                        }
                        response
                    }
                    EntryPayload::Membership(m) => {
                        state.membership = StoredMembership::new(Some(entry.log_id), m);
                        StoreResponse { index, refusal: None }
                    }
                };
                responses.push(response);
            }
            state.last_applied.map(|l| l.index).unwrap_or(0)
        };
        for event in published {
            // No receiver left is not an error: nobody is listening any more.
            let _ = self.events.send(event);
        }
        self.applied.send_replace(last);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<RaftId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut incoming: AppliedState = serde_json::from_slice(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e))
        })?;
        incoming.last_applied = meta.last_log_id;
        incoming.membership = meta.last_membership.clone();
        self.save_snapshot(&StoredSnapshot { meta: meta.clone(), data })?;
        let last = incoming.last_applied.map(|l| l.index).unwrap_or(0);
        *self.write() = incoming;
        let _ = self.events.send(StoreEvent::Reset { index: last });
        self.applied.send_replace(last);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(read_stored(&self.db)?
            .map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Holds the state in a pass on a runtime of two workers (a 2-core machine) and
    /// `blocking` blocking threads, starts `readers` async readers (waiting at the gate first
    /// when `gated`), and once `started` of them have begun, asks the runtime to release the
    /// pass. Answers whether the release ran (false: the runtime stalled for 5 s); every
    /// reader must then have read.
    fn release_during_a_pass(blocking: usize, readers: usize, started: usize, gated: bool) -> bool {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::log_store::open_database(&dir.path().join("raft.redb")).expect("db");
        let (_store, handle) = StateMachineStore::open(db).expect("open");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(blocking)
            .enable_all()
            .build()
            .expect("runtime");
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let pass_handle = handle.clone();
        let pass = rt.spawn_blocking(move || {
            pass_handle.pass(|_, _| {
                held_tx.send(()).expect("held");
                release_rx.recv_timeout(Duration::from_secs(5)).is_ok()
            })
        });
        held_rx.recv().expect("the pass holds the state");
        let begun = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..readers)
            .map(|_| {
                let (h, begun) = (handle.clone(), begun.clone());
                rt.spawn(async move {
                    begun.fetch_add(1, Ordering::SeqCst);
                    if gated {
                        h.settled().await;
                    }
                    h.read(|s| s.last_applied)
                })
            })
            .collect();
        while begun.load(Ordering::SeqCst) < started {
            std::thread::sleep(Duration::from_millis(1));
        }
        rt.spawn(async move { release_tx.send(()) });
        let released = rt.block_on(pass).expect("pass");
        for r in readers {
            assert_eq!(rt.block_on(r).expect("reader"), None);
        }
        released
    }

    /// While a pass holds the state, readers from async tasks wait for it (each worker
    /// thread inside one, or past it, before the release is asked); the runtime must still
    /// run everything else.
    #[test]
    fn readers_waiting_for_a_pass_do_not_stall_the_runtime() {
        let released = release_during_a_pass(512, 4, 2, false);
        assert!(released, "the runtime stalled: nothing ran while readers waited for the pass");
    }

    /// Many more readers than tokio's blocking pool has threads (8 here, 512 by default)
    /// arrive during a pass: they wait at the gate, not on threads, and the runtime goes on.
    #[test]
    fn readers_arriving_during_a_pass_wait_at_the_gate_without_threads() {
        let released = release_during_a_pass(8, 50, 50, true);
        assert!(released, "the runtime stalled while readers waited for the pass");
    }
}
