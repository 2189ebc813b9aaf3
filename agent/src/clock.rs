//! The agent's clock: time since the Unix epoch as a `MonoTime`, the timeline every manager
//! and agent shares (status timestamps, log records).

use reconciler_types::MonoTime;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as time since the Unix epoch (zero if the system clock is before 1970).
pub fn now() -> MonoTime {
    MonoTime(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}
