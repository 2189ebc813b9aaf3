//! The Raft log and vote in redb.
//!
//! One redb file (`raft.redb` in the manager's data folder) holds three tables: `logs`
//! (index → JSON entry), `meta` (vote, committed, last purged) and the state machine's
//! snapshot table (see `state_machine`). Every write commits with redb's default durability
//! (fsync), so an acknowledged append or vote survives a crash. The newest entries (up to
//! 64 MiB as stored) also stay decoded in memory for replication, which reads what was just
//! appended; each replication call carries at most [`MAX_APPEND_BYTES`].

use crate::type_config::{Entry, LogId, RaftId, StorageError, TypeConfig};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// Opens (or creates) the redb file of a manager and makes sure every table exists.
///
/// # Errors
/// The file cannot be opened or is not a redb database.
pub fn open_database(path: &Path) -> Result<Arc<Database>, redb::Error> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    txn.open_table(LOGS)?;
    txn.open_table(META)?;
    txn.open_table(SNAPSHOT)?;
    txn.commit()?;
    Ok(Arc::new(db))
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

/// How many bytes (as stored) of the newest entries stay decoded in memory.
const TAIL_BYTES: usize = 64 << 20;

/// The newest entries, decoded, with their stored sizes: always a contiguous run ending at
/// the last entry of the log, so replication (which reads what was just appended) does not
/// decode what it encoded a moment before.
#[derive(Default)]
struct Tail {
    entries: BTreeMap<u64, (Entry, usize)>,
    bytes: usize,
}

impl Tail {
    fn push(&mut self, entry: Entry, size: usize) {
        let index = entry.log_id.index;
        let follows = self.entries.last_key_value().is_none_or(|(last, _)| last + 1 == index);
        if !follows {
            self.remove(index..);
            if self.entries.last_key_value().is_some_and(|(last, _)| last + 1 != index) {
                *self = Tail::default();
            }
        }
        self.entries.insert(index, (entry, size));
        self.bytes += size;
        while self.bytes > TAIL_BYTES {
            let Some((_, (_, size))) = self.entries.pop_first() else { break };
            self.bytes -= size;
        }
    }

    fn remove(&mut self, range: impl RangeBounds<u64>) {
        let gone: Vec<u64> = self.entries.range(range).map(|(i, _)| *i).collect();
        for i in gone {
            if let Some((_, size)) = self.entries.remove(&i) {
                self.bytes -= size;
            }
        }
    }

    /// `range` within `budget`, when the tail holds its start (and so all of it).
    fn read(&self, range: &impl RangeBounds<u64>, budget: usize) -> Option<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        if !self.entries.contains_key(&start) {
            return None;
        }
        let mut out = Vec::new();
        let mut size = 0;
        for (i, (entry, bytes)) in self.entries.range(start..) {
            if !range.contains(i) {
                break;
            }
            out.push(entry.clone());
            size += bytes;
            if size >= budget {
                break;
            }
        }
        Some(out)
    }
}

/// The Raft log store (and vote) on redb.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    tail: Arc<Mutex<Tail>>,
}

impl LogStore {
    /// A log store on an open database (see [`open_database`]).
    pub fn new(db: Arc<Database>) -> Self {
        LogStore { db, tail: Arc::default() }
    }

    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(META).map_err(read_err)?;
        match table.get(key).map_err(read_err)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(read_err),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        let txn = self.db.begin_write().map_err(write_err)?;
        txn.open_table(META)
            .map_err(write_err)?
            .insert(key, bytes.as_slice())
            .map_err(write_err)?;
        txn.commit().map_err(write_err)
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOGS).map_err(read_err)?;
        match table.last().map_err(read_err)? {
            None => Ok(None),
            Some((_, v)) => {
                let entry: Entry = serde_json::from_slice(v.value()).map_err(read_err)?;
                Ok(Some(entry.log_id))
            }
        }
    }

    fn remove_range(&self, range: impl RangeBounds<u64> + Clone) -> Result<(), StorageError> {
        self.tail().remove(range.clone());
        let txn = self.db.begin_write().map_err(write_err)?;
        txn.open_table(LOGS)
            .map_err(write_err)?
            .retain_in(range, |_, _| false)
            .map_err(write_err)?;
        txn.commit().map_err(write_err)
    }
}

/// The most bytes of stored entries one replication call carries (at least one entry,
/// whatever its size). openraft gives every AppendEntries call the heartbeat interval as its
/// deadline; bounded by count alone, sixteen large orchestrator entries (a pass placing
/// thousands of tasks) took longer than that on a loaded machine, every call timed out and
/// replication backed off instead of progressing.
pub const MAX_APPEND_BYTES: usize = 1 << 20;

impl LogStore {
    /// Entries of `range` in order, stopping after the first that brings the total stored
    /// size to `budget` bytes or more (never empty when the range holds an entry).
    ///
    /// # Errors
    /// The log cannot be read or holds an entry that does not decode.
    pub fn entries_within(
        &self,
        range: impl RangeBounds<u64>,
        budget: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if let Some(entries) = self.tail().read(&range, budget) {
            return Ok(entries);
        }
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOGS).map_err(read_err)?;
        let mut out = Vec::new();
        let mut size = 0;
        for item in table.range(range).map_err(read_err)? {
            let (_, v) = item.map_err(read_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(read_err)?);
            size += v.value().len();
            if size >= budget {
                break;
            }
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries_within(range, usize::MAX)
    }

    /// What replication sends in one call: bounded by [`MAX_APPEND_BYTES`] as well as by
    /// openraft's `max_payload_entries`.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries_within(start..end, MAX_APPEND_BYTES)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(LAST_PURGED)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<RaftId>) -> Result<(), StorageError> {
        self.put_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<RaftId>>, StorageError> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut written = Vec::new();
        let result = (|| {
            let txn = self.db.begin_write().map_err(write_err)?;
            {
                let mut table = txn.open_table(LOGS).map_err(write_err)?;
                for entry in entries {
                    let len = match &entry.payload {
                        openraft::EntryPayload::Normal(c) => c.encoded_len().map_err(write_err)?,
                        _ => 0,
                    };
                    let mut bytes = Vec::with_capacity(len + 128);
                    serde_json::to_writer(&mut bytes, &entry).map_err(write_err)?;
                    table.insert(entry.log_id.index, bytes.as_slice()).map_err(write_err)?;
                    written.push((entry, bytes.len()));
                }
            }
            txn.commit().map_err(write_err)
        })();
        if result.is_ok() {
            let mut tail = self.tail();
            for (entry, size) in written {
                tail.push(entry, size);
            }
        } else {
            // What redb holds after a failed write is not known here: read it from there.
            *self.tail() = Tail::default();
        }
        let io = result.as_ref().map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io);
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_range(log_id.index..)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta(LAST_PURGED, &log_id)?;
        self.remove_range(..=log_id.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreCommand;
    use reconciler_types::TaskId;

    /// Stores entries 1..=n, each about `bytes` long, straight into the log table.
    fn store(n: u64, bytes: usize) -> (tempfile::TempDir, LogStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_database(&dir.path().join("raft.redb")).expect("open");
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(LOGS).expect("table");
            for index in 1..=n {
                let id = TaskId::new("x".repeat(bytes));
                let cmd = StoreCommand::RemoveTask { id, expected: crate::Expect::Any };
                let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
                let entry = Entry { log_id, payload: openraft::EntryPayload::Normal(cmd.into()) };
                let bytes = serde_json::to_vec(&entry).expect("encode");
                table.insert(index, bytes.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        (dir, LogStore::new(db))
    }

    #[tokio::test]
    async fn replication_reads_stop_at_the_byte_budget_but_always_carry_one_entry() {
        let (_dir, mut log) = store(40, MAX_APPEND_BYTES / 8);
        let sent = log.limited_get_log_entries(1, 41).await.expect("read");
        assert_eq!(sent.len(), 8, "eight entries of an eighth of the budget each (and a bit)");
        assert_eq!(sent.first().map(|e| e.log_id.index), Some(1));
        let all = log.try_get_log_entries(1..41).await.expect("read");
        assert_eq!(all.len(), 40, "other reads are not bounded");

        let (_dir, mut huge) = store(3, MAX_APPEND_BYTES * 2);
        let one = huge.limited_get_log_entries(2, 4).await.expect("read");
        assert_eq!(one.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), [2]);
    }

    fn entry(index: u64) -> Entry {
        let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
        Entry { log_id, payload: openraft::EntryPayload::Blank }
    }

    fn indexes(entries: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        entries.map(|es| es.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn the_tail_serves_the_newest_entries_and_follows_truncation_purge_and_gaps() {
        let mut tail = Tail::default();
        for i in 5..=9 {
            tail.push(entry(i), 10);
        }
        assert_eq!(indexes(tail.read(&(6..9), usize::MAX)), Some(vec![6, 7, 8]));
        assert_eq!(indexes(tail.read(&(6..), 20)), Some(vec![6, 7]), "byte budget");
        assert_eq!(indexes(tail.read(&(4..9), usize::MAX)), None, "older: read from redb");
        tail.remove(8..);
        tail.push(entry(8), 10);
        assert_eq!(indexes(tail.read(&(5..), usize::MAX)), Some(vec![5, 6, 7, 8]), "truncated");
        tail.push(entry(7), 10);
        assert_eq!(indexes(tail.read(&(5..), usize::MAX)), Some(vec![5, 6, 7]), "overwritten");
        tail.remove(..=6);
        assert_eq!(indexes(tail.read(&(7..), usize::MAX)), Some(vec![7]), "purged");
        tail.push(entry(20), 10);
        assert_eq!(indexes(tail.read(&(7..), usize::MAX)), None, "a gap empties the tail");
        assert_eq!(indexes(tail.read(&(20..), usize::MAX)), Some(vec![20]));
        assert_eq!(tail.bytes, 10);
        tail.push(entry(21), TAIL_BYTES);
        assert_eq!(indexes(tail.read(&(21..), usize::MAX)), Some(vec![21]), "oldest evicted");
        assert_eq!(indexes(tail.read(&(20..), usize::MAX)), None);
    }
}
