//! The leader loop: the orchestration core driven on the Raft leader.
//!
//! One round per Raft term this manager leads, following the contract of
//! [`reconciler_orchestrator::driver`]:
//!
//! ```text
//!  became leader (term T) ─► catch up with the log ─► Driver::lead(T)
//!  loop:
//!    applied commands (StoreEvent) ─► Driver::observe      lagged / snapshot ─► Driver::resync
//!    Driver::pass on the applied state (a blocking thread, no copy: StateHandle::pass)
//!      entries? ─► submitted to Raft in order, one entry each (a pass's decisions in
//!                  entries of at most 200 commands), replicated together; the next pass
//!                  waits until they were all observed
//!    sleep until next_wake or the next applied command
//!  leadership moves ─► the round is dropped before its next write
//! ```
//!
//! Time is the shared epoch-based [`SystemClock`], so a deadline one leader stored (a held
//! restart, an update's monitor window) means the same to the next. When an entry gets no
//! answer (no quorum), it may still commit: the loop keeps waiting for it to be observed
//! rather than writing it twice, and a leadership change ends the round.

use crate::dispatcher::run::{leadership_moves, leading_term};
use crate::manager::Manager;
use openraft::raft::ClientWriteResult;
use reconciler_orchestrator::driver::{Driver, PassOutput};
use reconciler_store::{StoreCommand, StoreEvent, SystemClock, TypeConfig};
use reconciler_types::{Clock, MonoTime};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// The longest the loop sleeps without an event (a safety net; `next_wake` is exact).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// What the leader loop has done, for `/metrics` and the benchmark.
#[derive(Debug, Default)]
pub struct LoopStats {
    /// Passes run.
    pub passes: AtomicU64,
    /// Batches written (Raft entries).
    pub batches: AtomicU64,
    /// Decisions written (store commands inside the batches).
    pub decisions: AtomicU64,
    /// Duration of the last pass, in microseconds.
    pub last_pass_micros: AtomicU64,
    /// Total time spent in passes, in microseconds.
    pub pass_micros: AtomicU64,
}

impl LoopStats {
    /// The counters as the status endpoint shows them.
    pub fn view(&self) -> reconciler_api::operator::LeaderLoopStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        reconciler_api::operator::LeaderLoopStats {
            passes: get(&self.passes),
            batches: get(&self.batches),
            decisions: get(&self.decisions),
            last_pass_micros: get(&self.last_pass_micros),
            pass_micros: get(&self.pass_micros),
        }
    }
}

/// Runs the leader loop of `m` for as long as the manager runs.
pub async fn serve(m: Arc<Manager>) {
    let clock = Arc::new(SystemClock::new());
    let mut metrics = m.node.raft.metrics();
    loop {
        let term = leading_term(&metrics.borrow_and_update());
        if let Some(term) = term {
            tokio::select! {
                () = lead(&m, term, &clock) => {}
                () = leadership_moves(&mut metrics, term) => {}
            }
            tracing::info!(term, "leader loop: stopped");
            continue;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Leads one term (returns only if the state cannot be brought up to date or the driver was
/// fenced off by a newer leader).
async fn lead(m: &Arc<Manager>, term: u64, clock: &Arc<SystemClock>) {
    if let Err(e) = m.node.raft.ensure_linearizable().await {
        tracing::warn!(error = %e, "leader loop: cannot catch up with the log as a new leader");
        return;
    }
    // Subscribed before the first pass: every command applied after it is observed, and
    // the first pass reconciles everything applied before.
    let mut events = m.node.state.subscribe();
    let mut driver = Driver::new();
    let claimed = m.node.state.read(|s| s.state.counters.orchestrator_epoch);
    driver.lead_at(term, claimed);
    tracing::info!(term, "leader loop: leading");
    loop {
        if !drain(&mut events, &mut driver) || !driver.is_leader() {
            return;
        }
        if !driver.in_flight() {
            let (d, out) = match run_pass(m, driver, clock.now()).await {
                Some(done) => done,
                None => return,
            };
            driver = d;
            if !out.batches.is_empty() {
                tracing::debug!(entries = out.batches.len(), "leader loop: writing a pass");
                let unwritten = write(m, out.batches).await;
                driver.abandon(unwritten);
                continue;
            }
        }
        let wait = until(driver.next_wake(), clock.now());
        match tokio::time::timeout(wait, events.recv()).await {
            Err(_) => {}
            Ok(Ok(event)) => observe(&event, &mut driver),
            Ok(Err(RecvError::Lagged(_))) => driver.resync(),
            Ok(Err(RecvError::Closed)) => return,
        }
    }
}

/// Observes every applied command already published; false when the store went away.
fn drain(events: &mut Receiver<StoreEvent>, driver: &mut Driver) -> bool {
    loop {
        match events.try_recv() {
            Ok(event) => observe(&event, driver),
            Err(TryRecvError::Lagged(_)) => driver.resync(),
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Closed) => return false,
        }
    }
}

fn observe(event: &StoreEvent, driver: &mut Driver) {
    match event {
        StoreEvent::Applied { command, response, .. } => driver.observe(command, response),
        StoreEvent::Reset { .. } => driver.resync(),
    }
}

/// One pass on a blocking thread, on the applied state under its write lock (no copy).
async fn run_pass(
    m: &Arc<Manager>,
    mut driver: Driver,
    now: MonoTime,
) -> Option<(Driver, PassOutput)> {
    let m2 = m.clone();
    let job = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let out = m2.node.state.pass(|state, _| driver.pass(state, now));
        (driver, out, started.elapsed())
    });
    let (driver, out, took) = match job.await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "leader loop: a pass failed");
            return None;
        }
    };
    record(&m.leader_stats, &out, took);
    tracing::debug!(
        millis = took.as_millis(),
        entries = out.batches.len(),
        "leader loop: pass done"
    );
    for (_, refusal) in &out.dropped {
        tracing::debug!(?refusal, "leader loop: a decision was moot");
    }
    Some((driver, out))
}

fn record(stats: &LoopStats, out: &PassOutput, took: Duration) {
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    stats.passes.fetch_add(1, Ordering::Relaxed);
    stats.last_pass_micros.store(micros, Ordering::Relaxed);
    stats.pass_micros.fetch_add(micros, Ordering::Relaxed);
    for batch in &out.batches {
        if let StoreCommand::Orchestrate { commands, .. } = batch {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            let n = u64::try_from(commands.len()).unwrap_or(u64::MAX);
            stats.decisions.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// How many of a pass's entries may be submitted and not yet answered. openraft's core writes
/// submitted entries to the log synchronously, between its heartbeats: a 100,000-task pass
/// submitted whole (1,000 entries) kept it writing for seconds, the followers heard nothing
/// and elected another leader. A window keeps each of its log writes short.
const IN_FLIGHT: usize = 32;

/// Submits one pass's entries to Raft in order, at most [`IN_FLIGHT`] unanswered at a time
/// (openraft appends and replicates them together, up to `max_payload_entries` per call),
/// then waits for the rest of the answers. Each submitted entry's outcome reaches the driver
/// as an applied (or refused) command, so one that is refused or unanswered is not written
/// again: every entry submitted stays in flight until observed (a refused one makes the
/// driver resync; the pass's later entries are checked like any entry, those that need it
/// are refused, and the next pass starts from what applied).
/// Answers how many were never submitted (Raft stopped, or quorum lost midway).
async fn write(m: &Manager, batches: Vec<StoreCommand>) -> usize {
    let n = batches.len();
    let submit = |i: usize, batch: StoreCommand| async move {
        match m.node.raft.client_write_ff(batch.into()).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!(error = %e, entry = i + 1, of = n, "leader loop: an entry of a pass was not submitted");
                None
            }
        }
    };
    windowed(batches, IN_FLIGHT, submit, |i, answer| settle(m, i, n, answer)).await
}

/// Submits `items` in order, with at most `window` of them submitted and not yet settled,
/// settling each (in order) before the one `window` places after it is submitted. Stops at
/// the first item that cannot be submitted (`None`) or settled (`false`); answers how many
/// were never submitted.
async fn windowed<T, A, Submitted, Settled>(
    items: Vec<T>,
    window: usize,
    mut submit: impl FnMut(usize, T) -> Submitted,
    mut settle: impl FnMut(usize, A) -> Settled,
) -> usize
where
    Submitted: Future<Output = Option<A>>,
    Settled: Future<Output = bool>,
{
    let n = items.len();
    let mut answers = std::collections::VecDeque::with_capacity(window);
    for (i, item) in items.into_iter().enumerate() {
        if answers.len() >= window
            && let Some((j, answer)) = answers.pop_front()
            && !settle(j, answer).await
        {
            return n - i;
        }
        match submit(i, item).await {
            Some(answer) => answers.push_back((i, answer)),
            None => return n - i,
        }
    }
    for (i, answer) in answers {
        if !settle(i, answer).await {
            return 0;
        }
    }
    0
}

/// Waits for the answer to entry `i` of `n`, at most `write_timeout` (past that, quorum is
/// lost and the entry stays in flight until observed or leadership moves: `false`).
async fn settle<E>(
    m: &Manager,
    i: usize,
    n: usize,
    answer: impl Future<Output = Result<ClientWriteResult<TypeConfig>, E>>,
) -> bool {
    let error = match tokio::time::timeout(m.write_timeout, answer).await {
        Err(_) => {
            tracing::warn!(error = %m.no_quorum(), entry = i + 1, of = n, "leader loop: no answer for an entry of a pass");
            return false;
        }
        Ok(Err(_)) => Some("Raft stopped".to_owned()),
        Ok(Ok(Err(e))) => Some(e.to_string()),
        Ok(Ok(Ok(r))) => r.data.into_result().err().map(|r| r.to_string()),
    };
    if let Some(error) = error {
        tracing::warn!(%error, entry = i + 1, of = n, "leader loop: an entry of a pass was not applied");
    }
    true
}

/// How long to sleep until `wake` (capped), measured on the shared clock.
fn until(wake: Option<MonoTime>, now: MonoTime) -> Duration {
    match wake {
        Some(at) => at.saturating_since(now).min(MAX_IDLE),
        None => MAX_IDLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `windowed` over `n` items; `settled_ok` says which settles succeed, `submitted_ok`
    /// which submits do. Answers (unsubmitted count, most outstanding at once, settle order).
    async fn run_window(
        n: usize,
        submitted_ok: impl Fn(usize) -> bool,
        settled_ok: impl Fn(usize) -> bool,
    ) -> (usize, usize, Vec<usize>) {
        let outstanding = std::cell::Cell::new(0usize);
        let most = std::cell::Cell::new(0usize);
        let order = std::cell::RefCell::new(Vec::new());
        let items: Vec<usize> = (0..n).collect();
        let (count, top, seen) = (&outstanding, &most, &order);
        let (submitted_ok, settled_ok) = (&submitted_ok, &settled_ok);
        let unsubmitted = windowed(
            items,
            IN_FLIGHT,
            |i, item: usize| async move {
                assert_eq!(i, item);
                if !submitted_ok(i) {
                    return None;
                }
                count.set(count.get() + 1);
                top.set(top.get().max(count.get()));
                Some(i)
            },
            |i, answer: usize| async move {
                assert_eq!(i, answer);
                count.set(count.get() - 1);
                seen.borrow_mut().push(i);
                settled_ok(i)
            },
        )
        .await;
        (unsubmitted, most.get(), order.into_inner())
    }

    #[tokio::test]
    async fn a_pass_keeps_at_most_the_window_of_entries_unanswered_and_settles_them_in_order() {
        let (unsubmitted, most, order) = run_window(100, |_| true, |_| true).await;
        assert_eq!(unsubmitted, 0);
        assert_eq!(most, IN_FLIGHT);
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_entry_without_answer_or_not_submitted_stops_the_rest() {
        // Entry 3 gets no answer: submitted up to 3 + IN_FLIGHT, the rest never written.
        let (unsubmitted, _, order) = run_window(100, |_| true, |i| i != 3).await;
        assert_eq!(unsubmitted, 100 - (3 + IN_FLIGHT));
        assert_eq!(order, [0, 1, 2, 3]);
        // Raft refuses to take entry 40 (after settling entry 8 to make room): 60 never
        // submitted, the 31 still unanswered stay in flight for the driver to observe.
        let (unsubmitted, _, order) = run_window(100, |i| i != 40, |_| true).await;
        assert_eq!(unsubmitted, 60);
        assert_eq!(order, (0..=8).collect::<Vec<_>>());
    }

    #[test]
    fn the_loop_sleeps_until_the_next_wake_and_never_past_the_cap() {
        let now = MonoTime::from_secs(100);
        assert_eq!(until(Some(MonoTime::from_secs(103)), now), Duration::from_secs(3));
        assert_eq!(until(Some(MonoTime::from_secs(99)), now), Duration::ZERO);
        assert_eq!(until(Some(MonoTime::from_secs(1000)), now), MAX_IDLE);
        assert_eq!(until(None, now), MAX_IDLE);
    }
}
