//! The daemons' clock. Its `MonoTime` is the time since the Unix epoch, so every manager and
//! agent shares the origin and a time stored in the replicated state (a held restart's
//! deadline, an update's `started_at`) means the same on the next leader. Within one process it
//! never goes backwards, even when the system clock is stepped back.

use reconciler_types::{Clock, MonoTime};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The system clock, as nanoseconds since the Unix epoch, made monotonic.
#[derive(Debug, Default)]
pub struct SystemClock {
    last: AtomicU64,
}

impl SystemClock {
    /// A clock.
    pub fn new() -> Self {
        SystemClock::default()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> MonoTime {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let nanos = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
        let previous = self.last.fetch_max(nanos, Ordering::Relaxed);
        MonoTime(Duration::from_nanos(nanos.max(previous)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_is_measured_from_the_unix_epoch_and_never_goes_back() {
        let clock = SystemClock::new();
        let a = clock.now();
        assert!(a.0 > Duration::from_secs(1_600_000_000), "{a:?} is not since 1970");
        clock.last.store(u64::MAX / 2, Ordering::Relaxed);
        assert_eq!(
            clock.now().0,
            Duration::from_nanos(u64::MAX / 2),
            "a stepped-back system clock is not followed"
        );
    }
}
