//! Taking a lock of the state from async code without stalling the runtime.
//!
//! The applied state sits behind a `std` lock, and the leader loop's pass holds its write
//! lock while it decides (a second or more when a pass places 100,000 tasks). An async task
//! that waited for it in place held its worker thread; with two worker threads (a 2-core
//! machine) two agents' requests waiting were enough to stop the whole manager, Raft
//! heartbeats and votes included, and its followers elected another leader. These functions
//! take the lock at once when it is free, and otherwise wait inside `block_in_place`, which
//! hands the thread's other tasks to another thread first.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

/// The read lock of `lock`.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    acquire(|| now(lock.try_read()), || lock.read().unwrap_or_else(|p| p.into_inner()))
}

/// The write lock of `lock`.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    acquire(|| now(lock.try_write()), || lock.write().unwrap_or_else(|p| p.into_inner()))
}

/// The lock of `mutex` (for locks held while waiting for the state's).
pub fn mutex<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    acquire(|| now(mutex.try_lock()), || mutex.lock().unwrap_or_else(|p| p.into_inner()))
}

/// A guard if the lock was free (a poisoned lock is taken as it is: its holder panicked,
/// the state itself is only changed through whole commands).
fn now<G>(tried: Result<G, TryLockError<G>>) -> Option<G> {
    match tried {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

fn acquire<G>(now: impl FnOnce() -> Option<G>, wait: impl FnOnce() -> G) -> G {
    if let Some(guard) = now() {
        return guard;
    }
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread { tokio::task::block_in_place(wait) } else { wait() }
}
