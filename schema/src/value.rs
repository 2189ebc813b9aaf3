//! The parsed YAML document, as Docker sees it after `yaml.Unmarshal` into `interface{}`:
//! null, booleans, integers, floats, strings, sequences and mappings. Mapping keys are
//! strings; a mapping with any non-string key is kept apart (`AnyMap`) because Docker
//! treats it differently (it fails later, at schema validation).

use std::hash::BuildHasher;

/// Mappings with more entries than this get a hash index; smaller ones are searched in
/// order, which is faster for the handful of keys most mappings have and costs no memory.
const INDEXED_ABOVE: usize = 12;

/// A mapping with string keys, in source order.
///
/// Stack files hold hundreds of thousands of small mappings, so this is kept small: the
/// entries in a vector, plus a hash index (foldhash) only for large mappings. Equality
/// ignores the order, as for a Go map.
#[derive(Clone, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
    index: Option<Box<hashbrown::HashTable<u32>>>,
}

fn hash(key: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0).hash_one(key)
}

impl Map {
    /// An empty mapping.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty mapping with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map { entries: Vec::with_capacity(n), index: None }
    }

    /// Rebuilds the index (or drops it for a small mapping).
    fn reindex(&mut self) {
        if self.entries.len() <= INDEXED_ABOVE {
            self.index = None;
            return;
        }
        let mut table = hashbrown::HashTable::with_capacity(self.entries.len());
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let entries = &self.entries;
            table.insert_unique(hash(k), i as u32, |&j| hash(&entries[j as usize].0));
        }
        self.index = Some(Box::new(table));
    }

    /// Frees the room the entries do not use: moves them into a vector of exactly their
    /// number (shrinking in place would often keep the whole block).
    pub fn shrink_to_fit(&mut self) {
        if self.entries.capacity() > self.entries.len() {
            let mut exact = Vec::with_capacity(self.entries.len());
            exact.append(&mut self.entries);
            self.entries = exact;
        }
    }

    /// The position of `key`.
    pub fn get_index_of(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(table) => {
                table.find(hash(key), |&i| self.entries[i as usize].0 == key).map(|&i| i as usize)
            }
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.get_index_of(key).map(|i| &self.entries[i].1)
    }

    /// The value of `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.get_index_of(key).map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get_index_of(key).is_some()
    }

    /// Sets `key`; an existing key keeps its place and its old value is returned.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        if let Some(i) = self.get_index_of(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        self.push_new(key, value);
        None
    }

    /// Adds an entry whose key the caller knows is not set yet.
    pub(crate) fn push_new(&mut self, key: String, value: Value) {
        let position = self.entries.len() as u32;
        let h = hash(&key);
        self.entries.push((key, value));
        match &mut self.index {
            Some(table) => {
                let entries = &self.entries;
                table.insert_unique(h, position, |&j| hash(&entries[j as usize].0));
            }
            None if self.entries.len() > INDEXED_ABOVE => self.reindex(),
            None => {}
        }
    }

    /// Removes `key`, keeping the order of the others.
    pub fn shift_remove(&mut self, key: &str) -> Option<Value> {
        let i = self.get_index_of(key)?;
        let (_, value) = self.entries.remove(i);
        self.reindex();
        Some(value)
    }

    /// The entries in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The entries in order, with changeable values.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The values in order, to change them.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Value> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

/// The entries of a [`Map`], in order.
pub struct Iter<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The entries of a [`Map`], in order, with changeable values.
pub struct IterMut<'a>(std::slice::IterMut<'a, (String, Value)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a String, &'a mut Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a String, &'a mut Value);
    type IntoIter = IterMut<'a>;

    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut map = Map::new();
        map.extend(iter);
        map
    }
}

impl Extend<(String, Value)> for Map {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;

    /// The value of `key`; panics when it is not set (like `IndexMap`), so only for tests.
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no key {key:?} in the mapping"),
        }
    }
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Builds sequences of exactly the size they end up with: their items are gathered on a
/// shared stack and moved out in one piece when complete (a vector grown by doubling wastes
/// a quarter of its room on average, and shrinking it in place rarely gives any back).
#[derive(Default)]
pub(crate) struct Stacks {
    items: Vec<Value>,
}

impl Stacks {
    /// Where a new sequence's items start.
    pub(crate) fn seq_start(&self) -> usize {
        self.items.len()
    }

    /// Adds an item to the current sequence.
    pub(crate) fn push_item(&mut self, item: Value) {
        self.items.push(item);
    }

    /// The sequence started at `start`, complete.
    pub(crate) fn finish_seq(&mut self, start: usize) -> Vec<Value> {
        self.items.split_off(start)
    }
}

/// One YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float (including `.inf` and `.nan`).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping with string keys.
    Map(Map),
    /// A mapping with at least one non-string key, as (key, value) pairs in source order.
    AnyMap(Vec<(Value, Value)>),
}

impl Value {
    /// The mapping, when this is a mapping with string keys.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The JSON-schema type name of the value (`null`, `boolean`, `integer`, `number`,
    /// `string`, `array`, `object`). A float with an integral value counts as an integer,
    /// as it does for Docker's validator.
    pub fn json_type(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) | Value::AnyMap(_) => "object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_small() {
        assert!(std::mem::size_of::<Value>() <= 32, "{}", std::mem::size_of::<Value>());
    }

    #[test]
    fn large_and_small_maps_find_keys_and_keep_order() {
        for n in [0, 3, INDEXED_ABOVE, INDEXED_ABOVE + 1, 100] {
            let mut map: Map = (0..n).map(|i| (format!("k{i}"), Value::Int(i as i64))).collect();
            assert_eq!(map.len(), n);
            for i in 0..n {
                assert_eq!(map.get(&format!("k{i}")), Some(&Value::Int(i as i64)));
            }
            assert!(!map.contains_key("nope"));
            assert_eq!(map.insert("k0".into(), Value::Null).is_some(), n > 0);
            map.insert("new".into(), Value::Bool(true));
            assert_eq!(map.keys().last().map(String::as_str), Some("new"));
            if n > 1 {
                assert_eq!(map.shift_remove("k1"), Some(Value::Int(1)));
                assert_eq!(map.get("k1"), None);
                assert_eq!(map.get(&format!("k{}", n - 1)), Some(&Value::Int(n as i64 - 1)));
            }
            let reversed: Map = map.clone().into_iter().rev().collect();
            assert_eq!(reversed, map);
        }
    }
}
