//! Time as data. Pure code never reads a clock: a [`Clock`] (a daemon's `SystemClock`, a
//! test's `FakeClock`) produces `MonoTime` values and the caller passes them in.

use serde::{Deserialize, Serialize};
use std::ops::{Add, Sub};
use std::time::Duration;

/// A source of time, handed to the code that drives the pure core. Daemons use the store's
/// `SystemClock`, whose origin is the Unix epoch so that every manager and agent shares it and
/// stored times stay meaningful after a restart or a leader change; tests use a fake clock.
pub trait Clock {
    /// The current time.
    fn now(&self) -> MonoTime;
}

/// A point on a monotonic timeline, as a duration since an origin (the Unix epoch for
/// `SystemClock`; t=0 for a test's fake clock).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct MonoTime(#[serde(with = "crate::duration_ns")] pub Duration);

impl MonoTime {
    /// The origin of the timeline.
    pub const ZERO: MonoTime = MonoTime(Duration::ZERO);

    /// A time `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Self {
        MonoTime(Duration::from_secs(secs))
    }

    /// A time `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        MonoTime(Duration::from_millis(millis))
    }

    /// The time elapsed since `earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: MonoTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for MonoTime {
    type Output = MonoTime;
    fn add(self, rhs: Duration) -> MonoTime {
        MonoTime(self.0.saturating_add(rhs))
    }
}

impl Sub<MonoTime> for MonoTime {
    type Output = Duration;
    fn sub(self, rhs: MonoTime) -> Duration {
        self.saturating_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_time_arithmetic_saturates() {
        let t = MonoTime::from_secs(10);
        assert_eq!(t + Duration::from_secs(5), MonoTime::from_secs(15));
        assert_eq!(t - MonoTime::from_secs(4), Duration::from_secs(6));
        assert_eq!(MonoTime::from_secs(1) - t, Duration::ZERO);
    }
}
