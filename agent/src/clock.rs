//! The agent's clock: time since the Unix epoch as a `MonoTime`, the timeline every manager
//! and agent shares (status timestamps, log records). [`AgentClock`] reads it once and then
//! moves with tokio's monotonic clock, so it never jumps backwards, and a test with tokio's
//! paused time drives it.

use reconciler_types::{Clock, MonoTime};
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, from the system clock (zero if it is before 1970).
pub fn now() -> MonoTime {
    MonoTime(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// Epoch time anchored once, advanced by tokio's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct AgentClock {
    origin: MonoTime,
    start: tokio::time::Instant,
}

impl AgentClock {
    /// A clock reading the system clock now.
    pub fn new() -> AgentClock {
        AgentClock { origin: now(), start: tokio::time::Instant::now() }
    }

    /// A clock that reads `origin` now (tests).
    pub fn starting_at(origin: MonoTime) -> AgentClock {
        AgentClock { origin, start: tokio::time::Instant::now() }
    }
}

impl Default for AgentClock {
    fn default() -> Self {
        AgentClock::new()
    }
}

impl Clock for AgentClock {
    fn now(&self) -> MonoTime {
        self.origin + self.start.elapsed()
    }
}
