//! A deterministic simulator of a flotilla cluster for tests: a [`FakeClock`], simulated
//! nodes and agents that follow their tasks' desired states with scripted [`Workload`]s
//! (slow starts, health checks, crashes), injectable failures (node loss, leader changes,
//! a stale leader's batch), all driven by the orchestration core's own driver loop.
//!
//! ```text
//!   SimCluster::run_until(t)
//!     loop: next event (agent report | heartbeat timeout | registration | tick | operator)
//!       └─► StoreCommand ─► ClusterState::apply (as the Raft state machine does)
//!             └─► Driver::observe ─► Driver::pass ─► one Orchestrate batch ─► apply
//!                   └─► agents react (schedule their reports) ─► tick at next_wake
//! ```
//!
//! Everything is ordered (time, then insertion), so a run is a function of its inputs and
//! its seed: a failing [`random`] run prints its seed and `SIM_SEED=<seed>` replays it.

pub mod agents;
pub mod cluster;
pub mod invariants;
pub mod narrative;
pub mod random;

pub use agents::Workload;
pub use cluster::{Applied, SimCluster};

use reconciler_types::{Clock, MonoTime};
use std::time::Duration;

/// A clock that only moves when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FakeClock {
    now: MonoTime,
}

impl FakeClock {
    /// A clock at the origin.
    pub fn new() -> Self {
        FakeClock::default()
    }

    /// The current time.
    pub fn now(&self) -> MonoTime {
        self.now
    }

    /// Moves forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Moves to `t` (never backwards).
    pub fn set(&mut self, t: MonoTime) {
        self.now = self.now.max(t);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> MonoTime {
        self.now
    }
}

/// A small, seeded pseudo-random generator (SplitMix64): the same seed gives the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_only_moves_forward() {
        let mut c = FakeClock::new();
        c.advance(Duration::from_secs(5));
        c.set(MonoTime::from_secs(2));
        assert_eq!(c.now(), MonoTime::from_secs(5));
    }

    #[test]
    fn rng_is_reproducible() {
        let (mut a, mut b) = (SimRng::new(7), SimRng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.below(100)).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.below(100)).collect();
        assert_eq!(xs, ys);
        assert_ne!(SimRng::new(8).next_u64(), SimRng::new(7).next_u64());
    }
}
