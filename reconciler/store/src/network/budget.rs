//! How many entries one AppendEntries call to a peer may carry.
//!
//! openraft 0.9 gives every AppendEntries call the heartbeat interval as its deadline and,
//! when the call misses it, sends the same range again. On a loaded machine a large append
//! (a lagging follower catching up after a pass that placed thousands of tasks) can miss
//! that deadline every time: nothing replicates, the leader loses its quorum and elections
//! follow. The budget adapts instead: an append that missed the deadline halves the number
//! of entries the next may carry, and an append that used the whole budget and came back in
//! under half the deadline raises it by one, up to openraft's `max_payload_entries`.
//! A call over budget is refused before it is sent with openraft's `PayloadTooLarge` and the
//! budget as its hint, and openraft sends the smaller range at once.

use std::time::Duration;

/// The most entries one append carries (openraft's `max_payload_entries`).
pub const MAX_APPEND_ENTRIES: u64 = 16;

/// The append budget of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendBudget {
    limit: u64,
    /// The size of an append that started and has not finished: when the next one starts,
    /// it was dropped at openraft's deadline.
    unfinished: Option<u64>,
}

impl Default for AppendBudget {
    fn default() -> Self {
        AppendBudget { limit: MAX_APPEND_ENTRIES, unfinished: None }
    }
}

impl AppendBudget {
    /// The entries an append may carry now.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Before sending `entries`: `Err(limit)` when it is over budget (send at most `limit`).
    ///
    /// # Errors
    /// The budget, when `entries` exceeds it.
    pub fn admit(&mut self, entries: u64) -> Result<(), u64> {
        if let Some(missed) = self.unfinished.take() {
            self.shrink(missed);
        }
        if entries > self.limit {
            return Err(self.limit);
        }
        if entries > 0 {
            self.unfinished = Some(entries);
        }
        Ok(())
    }

    /// After an append of `entries` came back (answered or failed) after `took`.
    pub fn finished(&mut self, entries: u64, took: Duration, deadline: Duration) {
        self.unfinished = None;
        if entries == 0 {
            return;
        }
        if took >= deadline {
            self.shrink(entries);
        } else if took < deadline / 2 && entries >= self.limit {
            self.limit = (self.limit + 1).min(MAX_APPEND_ENTRIES);
        }
    }

    fn shrink(&mut self, missed: u64) {
        self.limit = self.limit.min((missed / 2).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(100);

    #[test]
    fn an_append_dropped_at_the_deadline_halves_the_next_one() {
        let mut b = AppendBudget::default();
        assert_eq!(b.admit(6), Ok(()));
        // openraft dropped the call: the next admit learns it.
        assert_eq!(b.admit(6), Err(3));
        assert_eq!(b.admit(3), Ok(()));
        assert_eq!(b.admit(3), Err(1));
        assert_eq!(b.admit(1), Ok(()));
        // Never below one entry, so replication always moves.
        assert_eq!(b.admit(1), Ok(()));
        assert_eq!(b.limit(), 1);
    }

    #[test]
    fn an_append_answered_late_also_halves_the_budget() {
        let mut b = AppendBudget::default();
        assert_eq!(b.admit(8), Ok(()));
        b.finished(8, DEADLINE, DEADLINE);
        assert_eq!(b.admit(8), Err(4));
    }

    #[test]
    fn fast_full_appends_grow_the_budget_back_to_the_maximum() {
        let mut b = AppendBudget::default();
        assert_eq!(b.admit(4), Ok(()));
        assert_eq!(b.admit(4), Err(2));
        for expected in 3..=MAX_APPEND_ENTRIES {
            let n = b.limit();
            assert_eq!(b.admit(n), Ok(()));
            b.finished(n, DEADLINE / 4, DEADLINE);
            assert_eq!(b.limit(), expected);
        }
        b.finished(MAX_APPEND_ENTRIES, Duration::ZERO, DEADLINE);
        assert_eq!(b.limit(), MAX_APPEND_ENTRIES, "never above openraft's maximum");
    }

    #[test]
    fn small_or_slowish_appends_leave_the_budget_alone() {
        let mut b = AppendBudget::default();
        assert_eq!(b.admit(4), Ok(()));
        assert_eq!(b.admit(4), Err(2));
        // Under budget: says nothing about whether a full one would fit.
        assert_eq!(b.admit(1), Ok(()));
        b.finished(1, Duration::ZERO, DEADLINE);
        // Full but between half the deadline and the deadline: kept.
        assert_eq!(b.admit(2), Ok(()));
        b.finished(2, DEADLINE * 3 / 4, DEADLINE);
        assert_eq!(b.limit(), 2);
        // Heartbeats carry nothing and never count.
        assert_eq!(b.admit(0), Ok(()));
        assert_eq!(b.admit(0), Ok(()));
        assert_eq!(b.limit(), 2);
    }
}
