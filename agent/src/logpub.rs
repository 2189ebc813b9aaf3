//! Sending task logs for a subscription (`service logs`): the runtime reads each task's log
//! (with `--tail`, `--since`, `-f`), lines are gathered into chunks (up to [`MAX_LINES`] or
//! [`GATHER`]) and posted to the dispatcher, which hands them to whoever asked. A chunk the
//! dispatcher answers `cancelled` stops everything; the last chunk says `done`.

use crate::runtime::{LogQuery, Runtime};
use crate::worker::Worker;
use agent_core::logs::{LogRecord, Stream};
use reconciler_api::DispatcherClient;
use reconciler_api::dispatcher::{LogChunk, LogLine, LogStream, LogSubscription};
use reconciler_types::TaskId;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The most lines in one chunk.
pub const MAX_LINES: usize = 500;
/// How long lines gather before a chunk is sent.
pub const GATHER: Duration = Duration::from_millis(100);

/// The subscriptions being served (a subscription is sent again with each new session;
/// it is served once).
#[derive(Debug, Clone, Default)]
pub struct LogPublishers {
    active: Arc<Mutex<BTreeSet<String>>>,
}

impl LogPublishers {
    /// Marks `id` served; `false` when it already is.
    pub fn start(&self, id: &str) -> bool {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned())
    }

    /// Marks `id` finished.
    pub fn finish(&self, id: &str) {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

fn line(task: &TaskId, r: LogRecord) -> LogLine {
    let stream = match r.stream {
        Stream::Stdout => LogStream::Stdout,
        Stream::Stderr => LogStream::Stderr,
    };
    LogLine { task_id: task.clone(), timestamp: r.time, stream, line: r.log }
}

/// Serves one subscription until its logs end or nobody reads them any more.
pub async fn publish<R: Runtime>(
    client: &DispatcherClient,
    session: &str,
    worker: &Worker<R>,
    sub: LogSubscription,
) {
    let query =
        LogQuery { tail: sub.options.tail, since: sub.options.since, follow: sub.options.follow };
    let (tx, mut rx) = mpsc::channel::<LogLine>(MAX_LINES * 2);
    let mut readers = tokio::task::JoinSet::new();
    for task in &sub.tasks {
        let Some(ctx) = worker.task(task) else { continue };
        let (rt, tx, task) = (worker.runtime().clone(), tx.clone(), task.clone());
        readers.spawn(async move {
            let (rtx, mut rrx) = mpsc::channel(MAX_LINES);
            let read = rt.logs(&ctx, query, rtx);
            let forward = async {
                while let Some(r) = rrx.recv().await {
                    if tx.send(line(&task, r)).await.is_err() {
                        return;
                    }
                }
            };
            let (result, ()) = tokio::join!(read, forward);
            if let Err(e) = result {
                tracing::warn!(task = %task, error = %e, "cannot read the task's log");
            }
        });
    }
    drop(tx);
    let chunk = |lines: Vec<LogLine>, done: bool| LogChunk {
        session: session.to_owned(),
        subscription: sub.id.clone(),
        lines,
        done,
    };
    loop {
        let (lines, ended) = gather(&mut rx).await;
        if ended {
            let _ = client.publish_logs(&chunk(lines, true)).await;
            return;
        }
        match client.publish_logs(&chunk(lines, false)).await {
            Ok(ack) if !ack.cancelled => {}
            Ok(_) => return,
            Err(e) => {
                tracing::info!(subscription = %sub.id, error = %e, "stopped sending logs");
                return;
            }
        }
    }
}

/// The next lines: at least one, then whatever comes within [`GATHER`], up to
/// [`MAX_LINES`]. `true` once every reader has finished.
async fn gather(rx: &mut mpsc::Receiver<LogLine>) -> (Vec<LogLine>, bool) {
    let mut lines = Vec::new();
    match rx.recv().await {
        Some(l) => lines.push(l),
        None => return (lines, true),
    }
    let deadline = tokio::time::Instant::now() + GATHER;
    while lines.len() < MAX_LINES {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(l)) => lines.push(l),
            Ok(None) => return (lines, true),
            Err(_) => break,
        }
    }
    (lines, false)
}
