//! The one driver loop of the orchestration core, shared by the leader's background task and
//! the simulator: events in, one batch of store commands and a wake-up time out.
//!
//! # Contract (what a leader loop does)
//!
//! ```text
//!   became leader at term T ─► driver.lead(T)
//!   every applied store command (StoreEvent::Applied, in log order, refused ones too)
//!                           ─► driver.observe(&command, &response)
//!   lagged / snapshot installed ─► driver.resync()
//!   lost leadership         ─► driver.step_down()            (before anything else is written)
//!   whenever it may have work (after observing, or at next_wake):
//!       out = driver.pass(&mut state, clock.now())           (state: the applied state, see below)
//!       out.batches: [cmd..] ─► write each through Raft as ONE entry, in order (submitted
//!                               together, or one after another stopping at the first
//!                               refused one); tell the driver how many were never
//!                               written (driver.abandon()); do not call pass again until
//!                               every entry written was observed (applied or refused)
//!       out.next_wake         ─► sleep until then, or until the next applied command
//! ```
//!
//! * **Inputs**: the applied commands ([`Driver::observe`], which derives events with
//!   [`crate::events::of`]), the time (`now`, from a `Clock`; ticks are raised by `pass`
//!   itself when `next_wake` has come), and leadership ([`Driver::lead`] with the Raft term as
//!   the epoch, [`Driver::step_down`]).
//! * **Output**: one pass's decisions (every pending event's, the scheduler's placements;
//!   a placement of a task the pass created folded into its creation, consecutive creations
//!   grouped by node, [`crate::fuse`]) as
//!   [`StoreCommand::Orchestrate`] entries of at most [`MAX_COMMANDS_PER_ENTRY`] commands,
//!   fenced (epoch, task-id counter): the first entry moves the task-id counter past every id
//!   the pass allocated, the later ones expect it there. Swarm splits a batch into
//!   transactions the same way (`MaxChangesPerTransaction`), so that one Raft entry stays
//!   small whatever a pass decides (a service scaled to 100,000 replicas). A new leader's
//!   first entry claims its epoch, even when it decides nothing.
//! * **The state**: `pass` needs `&mut ClusterState` only to try its decisions as it makes
//!   them (each event's handler sees the earlier handlers' decisions); it leaves the state
//!   exactly as it found it ([`ClusterState::tentatively`]). The store's
//!   `StateHandle::pass` runs it on the applied state under the write lock without copying
//!   it; run that on a blocking thread.
//! * **After the batch is applied**: observe it like every other command; that clears the
//!   in-flight mark (and, for a new leader, records the claim). Then call `pass` again if
//!   events arrived meanwhile.
//! * **When the batch is refused**: [`Refusal::Fenced`] because another manager claimed a
//!   newer epoch → the driver steps down by itself ([`Driver::is_leader`] turns false: stop
//!   the loop). Any other refusal → the batch is lost, so the driver queues a full
//!   resynchronisation ([`Event::LeaderElected`], [`Event::ReconcileAll`]) for the next pass.
//! * A batch written by a newer epoch (another leader's) also steps this driver down.

use crate::events;
use crate::fuse;
use crate::orchestrator::{self, Event};
use crate::pass::Scratch;
use crate::scheduler;
use crate::slot::TaskIdAllocator;
use crate::state::{ClusterState, Fence, Refusal, StoreCommand, StoreResponse};
use reconciler_types::MonoTime;
use std::collections::{BTreeSet, VecDeque};

/// Leading at an epoch, and whether the cluster has seen this epoch's claim applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leadership {
    epoch: u64,
    claimed: bool,
}

/// The most commands one Raft entry of a pass carries (swarmkit's
/// `MaxChangesPerTransaction` is 200).
pub const MAX_COMMANDS_PER_ENTRY: usize = 200;

/// What one pass produced.
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use]
pub struct PassOutput {
    /// The entries to write, in order (one Raft entry each); empty when nothing is to be
    /// written.
    pub batches: Vec<StoreCommand>,
    /// When to call `pass` again at the latest (nothing else happening).
    pub next_wake: Option<MonoTime>,
    /// Decisions the state refused while the pass tried them (a decision about a task that
    /// is gone); left out of the batch. Anything but a moot refusal here is a bug.
    pub dropped: Vec<(StoreCommand, Refusal)>,
}

/// The driver: pending events, leadership, the entries in flight, the next wake-up.
#[derive(Debug, Clone, Default)]
pub struct Driver {
    leader: Option<Leadership>,
    queue: VecDeque<Event>,
    queued: BTreeSet<Event>,
    /// The fences of the entries written and not yet observed, in log order (entries after
    /// a pass's first one may carry equal fences: they are matched in order).
    in_flight: VecDeque<Fence>,
    wake: Option<MonoTime>,
}

impl Driver {
    /// A driver that does not lead (yet).
    pub fn new() -> Self {
        Driver::default()
    }

    /// This manager leads at `epoch` (its Raft term): forget everything and start with a
    /// full resynchronisation; the first batch claims the epoch.
    pub fn lead(&mut self, epoch: u64) {
        self.step_down();
        self.leader = Some(Leadership { epoch, claimed: false });
        self.resync();
    }

    /// [`Driver::lead`], told the epoch the state was last claimed at: when it is this
    /// leader's own (Raft has one leader per term, so this manager claimed it before: a
    /// one-manager cluster restarted in the same term, or this leader's loop started
    /// again), its batches follow that claim instead of claiming again, which the fence
    /// refuses.
    pub fn lead_at(&mut self, epoch: u64, claimed_epoch: u64) {
        self.lead(epoch);
        if claimed_epoch == epoch
            && let Some(l) = &mut self.leader
        {
            l.claimed = true;
        }
    }

    /// This manager no longer leads: nothing more is decided or written.
    pub fn step_down(&mut self) {
        *self = Driver::new();
    }

    /// Whether this driver leads.
    pub fn is_leader(&self) -> bool {
        self.leader.is_some()
    }

    /// The epoch it leads at.
    pub fn epoch(&self) -> Option<u64> {
        self.leader.map(|l| l.epoch)
    }

    /// Whether an entry was written and not yet observed.
    pub fn in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The writer never wrote the last `n` entries of the pass (it stopped at a refused one,
    /// or Raft stopped taking writes): they will never be observed, and the next pass starts
    /// from a full resynchronisation, since the entries that did apply may be only part of
    /// the pass.
    pub fn abandon(&mut self, n: usize) {
        if n == 0 || self.leader.is_none() {
            return;
        }
        let keep = self.in_flight.len().saturating_sub(n);
        self.in_flight.truncate(keep);
        self.resync();
    }

    /// When the driver wants its next pass at the latest.
    pub fn next_wake(&self) -> Option<MonoTime> {
        self.wake
    }

    /// Queues a full resynchronisation (after lagging behind the applied commands, a
    /// snapshot install, or a lost batch).
    pub fn resync(&mut self) {
        self.push(Event::LeaderElected);
        self.push(Event::ReconcileAll);
    }

    fn push(&mut self, event: Event) {
        if self.queued.insert(event.clone()) {
            self.queue.push_back(event);
        }
    }

    /// The store applied (or refused) `cmd`: queue the events it raises, or settle the batch
    /// in flight.
    pub fn observe(&mut self, cmd: &StoreCommand, response: &StoreResponse) {
        if let StoreCommand::Orchestrate { fence, .. } = cmd {
            self.observe_batch(fence, response);
        } else if response.refusal.is_none() && self.leader.is_some() {
            for e in events::of(cmd) {
                self.push(e);
            }
        }
    }

    fn observe_batch(&mut self, fence: &Fence, response: &StoreResponse) {
        let Some(lead) = self.leader else { return };
        let ours = self.in_flight.front() == Some(fence);
        if ours {
            self.in_flight.pop_front();
        }
        match (&response.refusal, ours) {
            (None, true) => self.leader = Some(Leadership { claimed: true, ..lead }),
            (None, false) if fence.epoch > lead.epoch => self.step_down(),
            (Some(Refusal::Fenced { current_epoch, .. }), true)
                if *current_epoch > lead.epoch || (fence.claim && *current_epoch >= lead.epoch) =>
            {
                self.step_down()
            }
            (Some(_), true) => {
                // The pass's later entries were decided with this one applied: a writer that
                // stops here abandons them; written ones are checked like any entry (those
                // that need this one are refused) and the resync starts from what applied.
                self.resync();
            }
            _ => {}
        }
    }

    /// One pass: every pending event (and a tick when `next_wake` has come) handled in order,
    /// each handler's decisions tried on `state` before the next, then the scheduler. Leaves
    /// `state` as it found it. Nothing happens while a batch is in flight or when not leading.
    pub fn pass(&mut self, state: &mut ClusterState, now: MonoTime) -> PassOutput {
        let idle = PassOutput { next_wake: self.wake, ..PassOutput::default() };
        let Some(lead) = self.leader else { return idle };
        if self.in_flight() {
            return idle;
        }
        if self.wake.is_some_and(|w| w <= now) {
            self.push(Event::Tick);
        }
        if self.queue.is_empty() && lead.claimed {
            return idle;
        }
        let events: Vec<Event> = self.queue.drain(..).collect();
        self.queued.clear();
        let start = state.counters.next_task_id;
        let tried = state.tentatively(|s| decide(s, &events, now, start));
        self.wake = tried.wake;
        if tried.batch.is_empty() && lead.claimed {
            return PassOutput { next_wake: tried.wake, dropped: tried.dropped, batches: vec![] };
        }
        let task_ids = tried.scratch.ids.next.saturating_sub(start);
        let batches = entries(lead, start, task_ids, fuse::by_node(fuse::placements(tried.batch)));
        self.in_flight = batches.iter().filter_map(fence_of).collect();
        PassOutput { batches, next_wake: tried.wake, dropped: tried.dropped }
    }
}

/// A pass's commands as fenced entries of at most [`MAX_COMMANDS_PER_ENTRY`]: the first
/// claims the epoch (for a new leader) and moves the task-id counter by every id the pass
/// allocated; the others expect the counter already moved.
fn entries(
    lead: Leadership,
    start: u64,
    task_ids: u64,
    commands: Vec<StoreCommand>,
) -> Vec<StoreCommand> {
    let mut out = Vec::with_capacity(commands.len().div_ceil(MAX_COMMANDS_PER_ENTRY).max(1));
    let mut fence =
        Fence { epoch: lead.epoch, claim: !lead.claimed, next_task_id: start, task_ids };
    // Each command is moved once (splitting the rest off the front at every entry would copy
    // the remainder each time: quadratic in the pass's size).
    let mut rest = commands.into_iter().peekable();
    loop {
        let commands: Vec<StoreCommand> = rest.by_ref().take(MAX_COMMANDS_PER_ENTRY).collect();
        out.push(StoreCommand::Orchestrate { fence, commands });
        if rest.peek().is_none() {
            return out;
        }
        fence = Fence {
            claim: false,
            next_task_id: start.saturating_add(task_ids),
            task_ids: 0,
            ..fence
        };
    }
}

fn fence_of(cmd: &StoreCommand) -> Option<Fence> {
    match cmd {
        StoreCommand::Orchestrate { fence, .. } => Some(*fence),
        _ => None,
    }
}

/// A pass's decisions as tried on the state.
struct Tried {
    batch: Vec<StoreCommand>,
    dropped: Vec<(StoreCommand, Refusal)>,
    scratch: Scratch,
    wake: Option<MonoTime>,
}

fn decide(state: &mut ClusterState, events: &[Event], now: MonoTime, start: u64) -> Tried {
    let scratch = Scratch::new(now, TaskIdAllocator::starting_at(start));
    let mut tried = Tried { batch: Vec::new(), dropped: Vec::new(), scratch, wake: None };
    for event in events {
        let cmds = orchestrator::handle(state, event, &mut tried.scratch);
        try_all(state, cmds, &mut tried);
    }
    let runs = tried.scratch.flush(state);
    try_all(state, runs, &mut tried);
    let placed = scheduler::schedule(state, now);
    try_all(state, placed.commands, &mut tried);
    tried.wake = orchestrator::next_wake(state, now);
    tried
}

/// Applies one handler's decisions to the state, in order, then what the store's watchers do
/// about each of them ([`orchestrator::after_change`]), which sees all of them applied (so a
/// run a handler stored cannot overwrite the run an automatic rollback starts).
fn try_all(state: &mut ClusterState, cmds: Vec<StoreCommand>, tried: &mut Tried) {
    let first = tried.batch.len();
    for cmd in cmds {
        let index = state.last_index;
        match state.apply(&cmd, index).refusal {
            Some(refusal) => tried.dropped.push((cmd, refusal)),
            None => tried.batch.push(cmd),
        }
    }
    for i in first..tried.batch.len() {
        let more = orchestrator::after_change(state, &tried.batch[i], &mut tried.scratch);
        try_all(state, more, tried);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_whose_epoch_the_state_already_holds_does_not_claim_it_again() {
        let mut state = ClusterState::default();
        let mut d = Driver::new();
        d.lead_at(3, 2);
        let claim = d.pass(&mut state, MonoTime::ZERO).batches;
        assert!(
            matches!(claim.first(), Some(StoreCommand::Orchestrate { fence, .. }) if fence.claim && fence.epoch == 3),
            "a new epoch is claimed by the first batch"
        );
        let mut again = Driver::new();
        again.lead_at(3, 3);
        assert!(
            again.pass(&mut state, MonoTime::ZERO).batches.is_empty(),
            "nothing to claim or do"
        );
    }
}
