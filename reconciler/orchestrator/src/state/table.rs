//! A map that can undo: [`Table`] is a `BTreeMap` that, while a journal is open, remembers
//! the old value of every entry it changes, so a batch that is refused (or an orchestrator
//! pass that only tried its decisions) is undone in time proportional to what it touched,
//! never by cloning the whole state.
//!
//! Reads go through `Deref` to the `BTreeMap`; every write goes through a method here, so no
//! write can escape the journal, and every write counts ([`Table::writes`], restored by an
//! undo), so an index built beside a table can tell whether it is still in step with it.
//! Serialized exactly as the map it holds.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

/// A `BTreeMap` with an undo journal.
pub struct Table<K, V> {
    map: BTreeMap<K, V>,
    journal: Vec<(K, Option<Box<V>>)>,
    recording: bool,
    writes: u64,
}

/// How far a table's journal reached, and how many writes it had, when a savepoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark(usize, u64);

impl<K: Ord + Clone, V: Clone> Table<K, V> {
    /// An empty table.
    pub fn new() -> Self {
        Table { map: BTreeMap::new(), journal: Vec::new(), recording: false, writes: 0 }
    }

    /// How many writes the table has had (undone ones not counted; a table read from a
    /// serialized map counts as written once).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Counts a write and, while recording, journals `key`'s value before it (`None`: absent).
    /// Old values are boxed: a journal entry stays two words however large the record, so a
    /// pass that touches 200,000 tasks does not copy a journal of whole records as it grows.
    fn journal(&mut self, key: &K, old: Option<&V>) {
        self.writes = self.writes.wrapping_add(1);
        if self.recording {
            self.journal.push((key.clone(), old.map(|v| Box::new(v.clone()))));
        }
    }

    /// Inserts or replaces an entry; answers the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.writes = self.writes.wrapping_add(1);
        if !self.recording {
            return self.map.insert(key, value);
        }
        let old = self.map.insert(key.clone(), value);
        self.journal.push((key, old.clone().map(Box::new)));
        old
    }

    /// Removes an entry; answers it.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key)?;
        self.journal(key, Some(&old));
        Some(old)
    }

    /// A mutable reference to an entry (its old value is journaled first).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        self.writes = self.writes.wrapping_add(1);
        if self.recording {
            self.journal.push((key.clone(), Some(Box::new(value.clone()))));
        }
        Some(value)
    }

    /// The entry for `key`, inserted with `make` when absent (journaled either way).
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let old = self.map.get(&key).cloned();
        self.journal(&key, old.as_ref());
        self.map.entry(key).or_insert_with(make)
    }

    /// Every value, mutably (each is journaled first).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.writes = self.writes.wrapping_add(1);
        if self.recording {
            let old = self.map.iter().map(|(k, v)| (k.clone(), Some(Box::new(v.clone()))));
            self.journal.extend(old);
        }
        self.map.values_mut()
    }

    /// Keeps only the entries `keep` answers true for.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let gone: Vec<K> =
            self.map.iter().filter(|(k, v)| !keep(k, v)).map(|(k, _)| k.clone()).collect();
        for k in gone {
            self.remove(&k);
        }
    }

    /// Starts journaling (nested savepoints share one journal); answers where it stands.
    pub(crate) fn mark(&mut self) -> Mark {
        self.recording = true;
        Mark(self.journal.len(), self.writes)
    }

    /// Undoes every change made since `mark`, newest first.
    pub(crate) fn undo_to(&mut self, mark: Mark) {
        while self.journal.len() > mark.0 {
            let Some((key, old)) = self.journal.pop() else { break };
            match old {
                Some(v) => self.map.insert(key, *v),
                None => self.map.remove(&key),
            };
        }
        self.writes = mark.1;
    }

    /// Stops journaling when the outermost savepoint (`mark` 0) is released.
    pub(crate) fn release(&mut self, mark: Mark) {
        if mark.0 == 0 {
            self.journal.clear();
            self.recording = false;
        }
    }
}

impl<K: Ord + Clone, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Table::new()
    }
}

impl<K, V> Deref for Table<K, V> {
    type Target = BTreeMap<K, V>;
    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: Clone, V: Clone> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table { map: self.map.clone(), journal: Vec::new(), recording: false, writes: self.writes }
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map.fmt(f)
    }
}

impl<K: Ord, V> From<BTreeMap<K, V>> for Table<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        let writes = u64::from(!map.is_empty());
        Table { map, journal: Vec::new(), recording: false, writes }
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for Table<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Table::from(iter.into_iter().collect::<BTreeMap<K, V>>())
    }
}

impl<K: Serialize, V: Serialize> Serialize for Table<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for Table<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(Table::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_restores_inserts_replacements_and_removals_newest_first() {
        let mut t: Table<u32, String> =
            [(1, "a".to_owned()), (2, "b".to_owned())].into_iter().collect();
        let mark = t.mark();
        t.insert(3, "c".into());
        t.insert(1, "a2".into());
        t.remove(&2);
        if let Some(v) = t.get_mut(&1) {
            v.push('!');
        }
        assert_eq!(t.len(), 2);
        t.undo_to(mark);
        assert_eq!(*t, BTreeMap::from([(1, "a".to_owned()), (2, "b".to_owned())]));
        t.release(mark);
        t.insert(4, "d".into());
        assert!(t.journal.is_empty(), "nothing is journaled outside a savepoint");
    }

    #[test]
    fn an_inner_savepoint_undoes_only_its_own_changes() {
        let mut t: Table<u32, u32> = Table::new();
        let outer = t.mark();
        t.insert(1, 1);
        let inner = t.mark();
        t.insert(2, 2);
        t.undo_to(inner);
        t.release(inner);
        assert_eq!(*t, BTreeMap::from([(1, 1)]));
        t.undo_to(outer);
        t.release(outer);
        assert!(t.is_empty());
    }

    #[test]
    fn serializes_as_the_plain_map() {
        let t: Table<String, u32> = [("x".to_owned(), 1)].into_iter().collect();
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"x":1}"#);
        let back: Table<String, u32> = serde_json::from_str(r#"{"x":1}"#).unwrap();
        assert_eq!(back, t);
    }
}
