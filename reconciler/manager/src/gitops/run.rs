//! The GitOps loop, run by the manager that leads the Raft term (every manager runs
//! [`serve`]; it idles while another leads):
//!
//! ```text
//!  poll timer (interval + up to 10 % jitter) ─┐
//!  refresh (webhook, source set, folder watch) ┼─► look (blocking thread: fetch, resolve, read)
//!  the source changed ─────────────────────────┘        │ error → source status, nothing else
//!                                                         ▼
//!  a service changed by hand (drift) ──────────────► apply_head (plan, decide, write per stack)
//!  any write ──────────────────────────────────────► record_outcomes (rollouts that ended)
//! ```
//!
//! A head already read is kept for the term, so a fetch that finds the same commit reads
//! nothing, and a change made by hand is compared with Git at once without fetching.

use super::fetch::{Fetched, Looked, look};
use super::pass::{apply_head, head_status, record_outcomes};
use crate::dispatcher::run::leading_term;
use crate::manager::Manager;
use reconciler_orchestrator::state::gitops::{GitSource, GitopsCommand, SourceStatus};
use reconciler_store::type_config::RaftMetrics;
use reconciler_store::{StoreCommand, StoreEvent, SystemClock};
use reconciler_types::Clock;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

/// How soon a pass whose write was refused (the state moved) is tried again.
const RETRY: Duration = Duration::from_millis(300);
/// The shortest time between two passes started by changes in the state (drift).
const DRIFT_SPACING: Duration = Duration::from_millis(500);

/// Runs the GitOps loop of `m` for as long as the manager runs.
pub async fn serve(m: Arc<Manager>) {
    let mut metrics = m.node.raft.metrics();
    loop {
        let term = leading_term(&metrics.borrow_and_update());
        if let Some(term) = term {
            tokio::select! {
                () = lead(&m) => {}
                () = leadership_moves(&mut metrics, term) => {}
            }
            continue;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

async fn leadership_moves(metrics: &mut tokio::sync::watch::Receiver<RaftMetrics>, term: u64) {
    loop {
        if metrics.changed().await.is_err() || leading_term(&metrics.borrow()) != Some(term) {
            return;
        }
    }
}

/// The loop's memory for one term.
struct Term {
    /// The source the last look was of (its version).
    source_version: Option<u64>,
    /// The head last read, for that source.
    head: Option<Arc<Fetched>>,
    /// When to fetch next.
    next_fetch: Instant,
    /// A change in the state calls for a pass over the head already read.
    drift: bool,
    /// When the last pass started.
    last_pass: Instant,
}

/// Serves one term; returns only if the state cannot be brought up to date.
async fn lead(m: &Arc<Manager>) {
    if let Err(e) = m.node.raft.ensure_linearizable().await {
        tracing::warn!(error = %e, "gitops: cannot catch up with the log as a new leader");
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    }
    let mut events = m.node.state.subscribe();
    let now = Instant::now();
    let mut t =
        Term { source_version: None, head: None, next_fetch: now, drift: false, last_pass: now };
    loop {
        let source = m.node.state.read(|s| s.state.source.clone());
        let version = source.as_ref().map(|s| s.version);
        if version != t.source_version {
            t = Term { source_version: version, head: None, next_fetch: Instant::now(), ..t };
        }
        record_outcomes(m).await;
        if let Some(src) = &source {
            if Instant::now() >= t.next_fetch {
                t.last_pass = Instant::now();
                t.drift = false;
                let again = fetch_pass(m, src, &mut t).await;
                t.next_fetch = Instant::now() + again.unwrap_or_else(|| jittered(src.poll));
            } else if t.drift && t.last_pass.elapsed() >= DRIFT_SPACING {
                t.last_pass = Instant::now();
                t.drift = false;
                if let Some(head) = t.head.clone()
                    && apply_head(m, &head).await.retry
                {
                    t.drift = true;
                }
            }
        }
        let drift_at = t.drift.then(|| t.last_pass + DRIFT_SPACING);
        let wake = match (source.is_some(), drift_at) {
            (true, Some(d)) => Some(d.min(t.next_fetch)),
            (true, None) => Some(t.next_fetch),
            (false, _) => None,
        };
        let refresh = m.gitops.refresh.notified();
        tokio::select! {
            () = sleep_until(wake) => {}
            () = refresh => t.next_fetch = Instant::now(),
            event = events.recv() => {
                match event {
                    Ok(e) => t.drift |= changes_specs(&e),
                    Err(RecvError::Lagged(_)) => t.drift = true,
                    Err(RecvError::Closed) => return,
                }
                loop {
                    match events.try_recv() {
                        Ok(e) => t.drift |= changes_specs(&e),
                        Err(TryRecvError::Lagged(_)) => t.drift = true,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Closed) => return,
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Looks at the source and applies a new head; answers when to look again if sooner than
/// the poll interval.
async fn fetch_pass(m: &Arc<Manager>, src: &GitSource, t: &mut Term) -> Option<Duration> {
    let started = std::time::Instant::now();
    let cache = cache_dir(m);
    let known = t.head.as_ref().map(|h| h.commit.clone());
    let (m2, src2) = (m.clone(), src.clone());
    let job = move || look(&src2, &cache, &m2.cluster_key, known.as_deref());
    tracing::debug!(url = %src.url, "gitops: fetching");
    let looked = match tokio::task::spawn_blocking(job).await {
        Ok(r) => r,
        Err(e) => Err(format!("the fetch stopped: {e}")),
    };
    tracing::debug!(new = matches!(looked, Ok(Looked::New(_))), "gitops: fetched");
    m.gitops.passes.fetch_add(1, Ordering::Relaxed);
    let status = match looked {
        Err(error) => {
            m.gitops.fetch_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url = %src.url, error, "gitops: cannot read the source");
            let (commit, skipped) = m.node.state.read(|s| {
                let st = &s.state.source_status;
                (st.commit.clone(), st.skipped.clone())
            });
            SourceStatus { commit, error: Some(error), at: SystemClock::new().now(), skipped }
        }
        Ok(looked) => {
            let head = match looked {
                Looked::New(f) => Arc::new(*f),
                Looked::Same(_) => match &t.head {
                    Some(h) => h.clone(),
                    None => return None,
                },
            };
            t.head = Some(head.clone());
            let report = apply_head(m, &head).await;
            m.gitops.record_pass(started.elapsed());
            if report.retry {
                write_status(m, head_status(&head)).await;
                return Some(RETRY);
            }
            head_status(&head)
        }
    };
    write_status(m, status).await;
    None
}

async fn write_status(m: &Manager, status: SourceStatus) {
    let cmd = StoreCommand::Gitops(Box::new(GitopsCommand::SourceStatus { status }));
    if let Err(e) = m.write(cmd).await {
        tracing::warn!(error = %e, "gitops: cannot record the source status");
    }
}

fn cache_dir(m: &Manager) -> PathBuf {
    m.gitops.cache_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("flotilla-gitops"))
}

/// The poll interval plus up to a tenth of it, at random (as Argo CD spreads its polls).
pub fn jittered(poll: Duration) -> Duration {
    let r =
        crate::token::random_bytes(2).map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])));
    poll + poll / 10 * r / u32::from(u16::MAX)
}

/// Whether an applied command changed a service, network, config or secret (a change by
/// hand is drift; the loop's own writes find nothing to do).
fn changes_specs(e: &StoreEvent) -> bool {
    match e {
        StoreEvent::Applied { command, response, .. } => {
            response.refusal.is_none() && touches_specs(command)
        }
        StoreEvent::Reset { .. } => true,
    }
}

fn touches_specs(c: &StoreCommand) -> bool {
    match c {
        StoreCommand::CreateService { .. }
        | StoreCommand::UpdateService { .. }
        | StoreCommand::PutService { .. }
        | StoreCommand::RollbackService { .. }
        | StoreCommand::RemoveService { .. }
        | StoreCommand::AutoRollback { .. }
        | StoreCommand::PutConfig { .. }
        | StoreCommand::RemoveConfig { .. }
        | StoreCommand::PutSecret { .. }
        | StoreCommand::RemoveSecret { .. }
        | StoreCommand::PutNetwork { .. }
        | StoreCommand::RemoveNetwork { .. } => true,
        StoreCommand::Batch { commands } | StoreCommand::Orchestrate { commands, .. } => {
            commands.iter().any(touches_specs)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_tenth_of_the_interval() {
        for _ in 0..50 {
            let d = jittered(Duration::from_secs(60));
            assert!(d >= Duration::from_secs(60) && d <= Duration::from_secs(66), "{d:?}");
        }
    }
}
