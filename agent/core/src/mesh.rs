//! The routing mesh's decisions, as data: which task a new connection goes to
//! ([`Balancer`]: least connections, ties in turn), and which UDP flows have gone idle
//! ([`Flows`]). The agent's forwarders (TCP streams, UDP flows) ask these and do the I/O.
//!
//! ```text
//!  new connection ─► Balancer::pick (fewest open, ties round robin, skipping failed tries)
//!                         │ open ─► copy both ways ─► Balancer::closed
//!  datagram from C ─► Flows::get(C) ─► its backend │ none: pick, Flows::insert
//!  every sweep ─► Flows::expire(now) ─► flows idle for the timeout end (Balancer::closed)
//! ```

pub mod nat;

use reconciler_types::MonoTime;
use std::collections::BTreeMap;
use std::time::Duration;

/// One backend and its open connections.
#[derive(Debug, Clone)]
struct Entry<K, V> {
    key: K,
    value: V,
    open: usize,
}

/// Spreads new connections over a port's backends: the backend with the fewest open
/// connections, ties broken in turn (round robin), so equal backends alternate and a slow
/// one that holds connections gets fewer new ones. A removed backend gets no new connection
/// at once; its open ones are not counted any more.
#[derive(Debug, Clone)]
pub struct Balancer<K, V> {
    backends: Vec<Entry<K, V>>,
    /// Where the next tie-break starts.
    cursor: usize,
}

impl<K, V> Default for Balancer<K, V> {
    fn default() -> Self {
        Balancer { backends: Vec::new(), cursor: 0 }
    }
}

impl<K: Ord + Clone, V: Clone> Balancer<K, V> {
    /// How many backends there are.
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// Adds a backend, or replaces its value (keeping its open count).
    pub fn add(&mut self, key: K, value: V) {
        match self.backends.iter_mut().find(|e| e.key == key) {
            Some(e) => e.value = value,
            None => self.backends.push(Entry { key, value, open: 0 }),
        }
    }

    /// Removes a backend: no new connection goes to it.
    pub fn remove(&mut self, key: &K) {
        self.backends.retain(|e| &e.key != key);
    }

    /// Removes every backend.
    pub fn clear(&mut self) {
        self.backends.clear();
    }

    /// The backends, keys and values.
    pub fn backends(&self) -> impl Iterator<Item = (&K, &V)> {
        self.backends.iter().map(|e| (&e.key, &e.value))
    }

    /// Chooses the backend of a new connection, leaving out `skip` (backends already tried
    /// for it), and counts the connection open on it; `None` when no backend is left.
    pub fn pick(&mut self, skip: &[K]) -> Option<(K, V)> {
        let n = self.backends.len();
        let mut best: Option<usize> = None;
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let e = &self.backends[i];
            if skip.contains(&e.key) {
                continue;
            }
            if best.is_none_or(|b| e.open < self.backends[b].open) {
                best = Some(i);
            }
        }
        let i = best?;
        self.cursor = (i + 1) % n;
        let e = &mut self.backends[i];
        e.open += 1;
        Some((e.key.clone(), e.value.clone()))
    }

    /// A connection to `key` ended (or could not be opened).
    pub fn closed(&mut self, key: &K) {
        if let Some(e) = self.backends.iter_mut().find(|e| &e.key == key) {
            e.open = e.open.saturating_sub(1);
        }
    }

    /// The open connections counted on `key`.
    pub fn open(&self, key: &K) -> usize {
        self.backends.iter().find(|e| &e.key == key).map_or(0, |e| e.open)
    }
}

/// UDP flows by client address: each client keeps its backend while it sends or receives,
/// and its flow ends after `idle` without traffic either way.
#[derive(Debug, Clone)]
pub struct Flows<C, F> {
    idle: Duration,
    flows: BTreeMap<C, (F, MonoTime)>,
}

impl<C: Ord + Clone, F> Flows<C, F> {
    /// No flows; each ends after `idle` without traffic.
    pub fn new(idle: Duration) -> Self {
        Flows { idle, flows: BTreeMap::new() }
    }

    /// The flow of `client`, marked active at `now`.
    pub fn get(&mut self, client: &C, now: MonoTime) -> Option<&F> {
        let (flow, seen) = self.flows.get_mut(client)?;
        *seen = (*seen).max(now);
        Some(flow)
    }

    /// A new flow for `client`, active at `now`.
    pub fn insert(&mut self, client: C, flow: F, now: MonoTime) {
        self.flows.insert(client, (flow, now));
    }

    /// Traffic of `client`'s flow at `now` (a reply from its backend).
    pub fn touch(&mut self, client: &C, now: MonoTime) {
        if let Some((_, seen)) = self.flows.get_mut(client) {
            *seen = (*seen).max(now);
        }
    }

    /// Removes and answers the flows idle for the timeout at `now`.
    pub fn expire(&mut self, now: MonoTime) -> Vec<(C, F)> {
        let idle: Vec<C> = self
            .flows
            .iter()
            .filter(|(_, (_, seen))| now.saturating_since(*seen) >= self.idle)
            .map(|(c, _)| c.clone())
            .collect();
        idle.into_iter().filter_map(|c| self.flows.remove(&c).map(|(f, _)| (c, f))).collect()
    }

    /// Removes `client`'s flow.
    pub fn remove(&mut self, client: &C) -> Option<F> {
        self.flows.remove(client).map(|(f, _)| f)
    }

    /// Removes every flow whose value matches `f` (a backend gone), and answers them.
    pub fn remove_where(&mut self, mut f: impl FnMut(&F) -> bool) -> Vec<(C, F)> {
        let gone: Vec<C> =
            self.flows.iter().filter(|(_, (v, _))| f(v)).map(|(c, _)| c.clone()).collect();
        gone.into_iter().filter_map(|c| self.flows.remove(&c).map(|(v, _)| (c, v))).collect()
    }

    /// How many flows there are.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balancer(keys: &[&'static str]) -> Balancer<&'static str, u16> {
        let mut b = Balancer::default();
        for (i, k) in keys.iter().enumerate() {
            b.add(*k, 41000 + u16::try_from(i).unwrap());
        }
        b
    }

    fn pick(b: &mut Balancer<&'static str, u16>, skip: &[&'static str]) -> Option<&'static str> {
        b.pick(skip).map(|(k, _)| k)
    }

    #[test]
    fn equal_backends_take_new_connections_in_turn() {
        let mut b = balancer(&["t1", "t2", "t3"]);
        let mut got = Vec::new();
        for _ in 0..6 {
            let k = pick(&mut b, &[]).unwrap();
            b.closed(&k);
            got.push(k);
        }
        assert_eq!(got, ["t1", "t2", "t3", "t1", "t2", "t3"]);
    }

    #[test]
    fn a_backend_holding_connections_gets_fewer_new_ones() {
        let mut b = balancer(&["t1", "t2"]);
        assert_eq!(pick(&mut b, &[]), Some("t1"));
        // t1's connection stays open: the next three go where fewer are open.
        assert_eq!(pick(&mut b, &[]), Some("t2"));
        assert_eq!(b.open(&"t1"), 1);
        b.closed(&"t2");
        assert_eq!(pick(&mut b, &[]), Some("t2"), "t2 has none open, t1 has one");
        b.closed(&"t2");
        b.closed(&"t1");
        assert_eq!((b.open(&"t1"), b.open(&"t2")), (0, 0));
        b.closed(&"t1");
        assert_eq!(b.open(&"t1"), 0, "never below zero");
    }

    #[test]
    fn a_removed_backend_gets_no_new_connection_and_failed_tries_are_skipped() {
        let mut b = balancer(&["t1", "t2", "t3"]);
        b.remove(&"t2");
        for _ in 0..4 {
            let k = pick(&mut b, &[]).unwrap();
            assert_ne!(k, "t2");
            b.closed(&k);
        }
        assert_eq!(pick(&mut b, &["t1", "t3"]), None, "every backend tried");
        assert_eq!(pick(&mut b, &["t1"]), Some("t3"));
        b.clear();
        assert_eq!(pick(&mut b, &[]), None);
        assert!(b.is_empty());
        b.add("t4", 1);
        b.add("t4", 2);
        assert_eq!(b.len(), 1);
        assert_eq!(b.pick(&[]), Some(("t4", 2)), "the new value");
    }

    #[test]
    fn a_udp_flow_ends_after_the_idle_timeout_without_traffic_either_way() {
        let mut f: Flows<&str, &str> = Flows::new(Duration::from_secs(30));
        let t = MonoTime::from_secs;
        f.insert("c1", "t1", t(0));
        f.insert("c2", "t2", t(0));
        assert_eq!(f.get(&"c1", t(20)), Some(&"t1"), "client traffic keeps it");
        f.touch(&"c2", t(25));
        assert!(f.expire(t(29)).is_empty());
        assert!(f.expire(t(49)).is_empty(), "c1 seen at 20, c2 answered at 25");
        assert_eq!(f.expire(t(50)), [("c1", "t1")]);
        assert_eq!(f.len(), 1);
        assert_eq!(f.get(&"c1", t(51)), None, "a new datagram starts a new flow");
        f.insert("c3", "t3", t(50));
        assert_eq!(f.remove(&"c3"), Some("t3"));
        assert_eq!(f.remove_where(|b| *b == "t2"), [("c2", "t2")]);
        assert!(f.is_empty());
    }
}
