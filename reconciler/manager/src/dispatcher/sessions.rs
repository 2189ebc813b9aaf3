//! The leader's table of agent sessions and heartbeat deadlines (swarmkit `nodes.go`,
//! `period.go`), kept in memory only. Time comes in as arguments, so the rules are tested
//! without waiting.
//!
//! * A heartbeat answers the next period: the configured one randomised by ±10 % (±0.5 s
//!   at Swarm's 5 s default), and pushes the node's deadline to 3 such periods away.
//! * A new leader starts every node that is not down as *unknown*, with 6 periods to open a
//!   session; a node that misses its deadline is reported once, with Swarm's message.

use reconciler_types::NodeId;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Missed periods before a registered node is down (`defaultGracePeriodMultiplier`).
pub const GRACE_MULTIPLIER: u32 = 3;
/// Periods a node has after a leader change to open a session (twice the normal grace).
pub const UNKNOWN_MULTIPLIER: u32 = 6;
/// Why a registered node went down.
pub const HEARTBEAT_FAILURE: &str = "heartbeat failure";
/// Why a node left unknown by a leader change went down.
pub const UNKNOWN_FAILURE: &str = "heartbeat failure for node in \"unknown\" state";
/// The message of a node a new leader has not heard from yet.
pub const UNKNOWN_MESSAGE: &str =
    "Node moved to \"unknown\" state due to leadership change in cluster";

/// Chooses heartbeat periods: the base period ± a tenth of it (Swarm: 5 s ± 0.5 s).
#[derive(Debug, Clone)]
pub struct PeriodChooser {
    period: Duration,
    rng: u64,
}

impl PeriodChooser {
    /// A chooser around `period`, randomised from `seed`.
    pub fn new(period: Duration, seed: u64) -> Self {
        PeriodChooser { period, rng: seed }
    }

    /// The base period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Changes the base period (the cluster setting changed); later choices use it.
    pub fn set_period(&mut self, period: Duration) {
        self.period = period;
    }

    /// The next period, uniformly within ±10 % of the base.
    pub fn choose(&mut self) -> Duration {
        let epsilon = self.period / 10;
        let span = u64::try_from(epsilon.as_nanos() * 2).unwrap_or(u64::MAX);
        if span == 0 {
            return self.period;
        }
        let offset = Duration::from_nanos(self.next_u64() % span);
        (self.period + offset).saturating_sub(epsilon)
    }

    /// SplitMix64.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// `None`: unknown (left over from the previous leader, no session yet).
    session: Option<String>,
    deadline: Instant,
}

/// Why a session call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSession;

/// The heartbeat table.
#[derive(Debug, Clone)]
pub struct Sessions {
    periods: PeriodChooser,
    nodes: HashMap<NodeId, Entry>,
}

impl Sessions {
    /// An empty table.
    pub fn new(periods: PeriodChooser) -> Self {
        Sessions { periods, nodes: HashMap::new() }
    }

    /// The base heartbeat period.
    pub fn period(&self) -> Duration {
        self.periods.period()
    }

    /// Changes the base heartbeat period: sessions keep their deadlines until their next
    /// heartbeat (swarmkit's `updatePeriod`).
    pub fn set_period(&mut self, period: Duration) {
        self.periods.set_period(period);
    }

    /// Forgets every session (leadership lost or regained).
    pub fn clear(&mut self) {
        self.nodes.clear();
    }

    /// A node known from the store but without a session: it has 6 periods to open one.
    pub fn add_unknown(&mut self, node: NodeId, now: Instant) {
        let deadline = now + self.periods.choose() * UNKNOWN_MULTIPLIER;
        self.nodes.insert(node, Entry { session: None, deadline });
    }

    /// Opens a session (replacing any earlier one of the node); answers the first period.
    pub fn register(&mut self, node: NodeId, session: String, now: Instant) -> Duration {
        let period = self.periods.choose();
        let deadline = now + period * GRACE_MULTIPLIER;
        self.nodes.insert(node, Entry { session: Some(session), deadline });
        period
    }

    /// Checks that `session` is the node's current session.
    ///
    /// # Errors
    /// [`UnknownSession`] when the node has no session or another one.
    pub fn check(&self, node: &NodeId, session: &str) -> Result<(), UnknownSession> {
        match self.nodes.get(node) {
            Some(Entry { session: Some(s), .. }) if s == session => Ok(()),
            _ => Err(UnknownSession),
        }
    }

    /// A heartbeat: moves the deadline and answers the next period.
    ///
    /// # Errors
    /// [`UnknownSession`] as [`Sessions::check`].
    pub fn heartbeat(
        &mut self,
        node: &NodeId,
        session: &str,
        now: Instant,
    ) -> Result<Duration, UnknownSession> {
        self.check(node, session)?;
        let period = self.periods.choose();
        if let Some(e) = self.nodes.get_mut(node) {
            e.deadline = now + period * GRACE_MULTIPLIER;
        }
        Ok(period)
    }

    /// Drops a node's session (the node was removed).
    pub fn remove(&mut self, node: &NodeId) {
        self.nodes.remove(node);
    }

    /// The nodes whose deadline has passed, with the message to record; they are forgotten.
    pub fn expire(&mut self, now: Instant) -> Vec<(NodeId, &'static str)> {
        let mut out: Vec<(NodeId, &'static str)> = self
            .nodes
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(id, e)| {
                (id.clone(), if e.session.is_some() { HEARTBEAT_FAILURE } else { UNKNOWN_FAILURE })
            })
            .collect();
        out.sort();
        for (id, _) in &out {
            self.nodes.remove(id);
        }
        out
    }

    /// The earliest deadline, if any node is tracked.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.nodes.values().map(|e| e.deadline).min()
    }

    /// The nodes with an open session.
    pub fn registered(&self) -> impl Iterator<Item = &NodeId> {
        self.nodes.iter().filter(|(_, e)| e.session.is_some()).map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_secs(5);

    fn table() -> Sessions {
        Sessions::new(PeriodChooser::new(P, 42))
    }

    #[test]
    fn periods_stay_within_half_a_second_of_five_and_vary() {
        let mut c = PeriodChooser::new(P, 7);
        let picks: Vec<Duration> = (0..200).map(|_| c.choose()).collect();
        for p in &picks {
            assert!(*p >= Duration::from_millis(4500) && *p < Duration::from_millis(5500), "{p:?}");
        }
        assert!(picks.iter().any(|p| *p < Duration::from_millis(4900)));
        assert!(picks.iter().any(|p| *p > Duration::from_millis(5100)));
    }

    #[test]
    fn a_silent_node_expires_after_three_periods_with_swarms_message() {
        let mut t = table();
        let start = Instant::now();
        let n = NodeId::new("n1");
        t.register(n.clone(), "s1".into(), start);
        assert!(t.expire(start + Duration::from_millis(13_400)).is_empty(), "3 × 4.5 s at least");
        assert_eq!(
            t.expire(start + Duration::from_millis(16_500)),
            vec![(n.clone(), HEARTBEAT_FAILURE)]
        );
        assert_eq!(t.check(&n, "s1"), Err(UnknownSession), "an expired session is gone");
        assert!(t.expire(start + Duration::from_secs(60)).is_empty(), "reported once");
    }

    #[test]
    fn heartbeats_keep_a_node_alive_and_need_its_current_session() {
        let mut t = table();
        let start = Instant::now();
        let n = NodeId::new("n1");
        t.register(n.clone(), "s1".into(), start);
        for i in 1..=10 {
            let at = start + P * i;
            assert!(t.heartbeat(&n, "s1", at).is_ok());
            assert!(t.expire(at).is_empty());
        }
        assert_eq!(t.heartbeat(&n, "old", start), Err(UnknownSession));
        t.register(n.clone(), "s2".into(), start + P * 11);
        assert_eq!(t.check(&n, "s1"), Err(UnknownSession), "a new session replaces the old");
    }

    #[test]
    fn an_unknown_node_gets_six_periods_and_its_own_message() {
        let mut t = table();
        let start = Instant::now();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        t.add_unknown(a.clone(), start);
        t.add_unknown(b.clone(), start);
        assert_eq!(t.check(&a, ""), Err(UnknownSession), "unknown has no session");
        assert!(t.expire(start + Duration::from_secs(26)).is_empty(), "6 × 4.5 s at least");
        t.register(a.clone(), "s".into(), start + Duration::from_secs(26));
        assert_eq!(t.expire(start + Duration::from_secs(33)), vec![(b, UNKNOWN_FAILURE)]);
        assert!(t.next_deadline().is_some_and(|d| d > start + Duration::from_secs(33)));
    }
}
