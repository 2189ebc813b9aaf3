//! A runtime that times the calls of the runtime it wraps, to say where an assignment's
//! time goes (the runtime's calls, or the runner around them).

use agent::runtime::{Found, LogQuery, ProbeResult, Progress, Runtime, RuntimeError, TaskContext};
use agent_core::HealthTest;
use agent_core::logs::LogRecord;
use reconciler_types::{HealthConfig, PortConfig};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// `R`, with the time spent in each call since the last [`Timed::take`].
pub struct Timed<R> {
    /// The runtime.
    pub inner: R,
    spent: Mutex<BTreeMap<&'static str, Duration>>,
}

impl<R: Runtime> Timed<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Timed<R> {
        Timed { inner, spent: Mutex::default() }
    }

    /// The time spent per call (prepare, image_health, start) since the last take.
    pub fn take(&self) -> BTreeMap<&'static str, Duration> {
        std::mem::take(&mut *self.spent.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn add(&self, call: &'static str, since: Instant) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        *spent.entry(call).or_default() += since.elapsed();
    }
}

impl<R: Runtime> Runtime for Timed<R> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn limits_enforced(&self) -> String {
        self.inner.limits_enforced()
    }

    async fn prepare(&self, task: &TaskContext, progress: &Progress) -> Result<(), RuntimeError> {
        let t = Instant::now();
        let r = self.inner.prepare(task, progress).await;
        self.add("prepare", t);
        r
    }

    async fn image_health(&self, task: &TaskContext) -> Option<HealthConfig> {
        let t = Instant::now();
        let r = self.inner.image_health(task).await;
        self.add("image health", t);
        r
    }

    async fn start(&self, task: &TaskContext) -> Result<Vec<PortConfig>, RuntimeError> {
        let t = Instant::now();
        let r = self.inner.start(task).await;
        self.add("start", t);
        r
    }

    async fn wait(&self, task: &TaskContext) -> Result<i32, RuntimeError> {
        self.inner.wait(task).await
    }

    async fn stop(&self, task: &TaskContext) -> Result<(), RuntimeError> {
        self.inner.stop(task).await
    }

    async fn remove(&self, task: &TaskContext) -> Result<(), RuntimeError> {
        self.inner.remove(task).await
    }

    async fn adopt(&self, task: &TaskContext) -> Result<Found, RuntimeError> {
        self.inner.adopt(task).await
    }

    async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        self.inner.list().await
    }

    async fn remove_by_id(&self, id: &str) -> Result<(), RuntimeError> {
        self.inner.remove_by_id(id).await
    }

    async fn probe(
        &self,
        task: &TaskContext,
        test: &HealthTest,
        timeout: Duration,
    ) -> Result<ProbeResult, RuntimeError> {
        self.inner.probe(task, test, timeout).await
    }

    async fn logs(
        &self,
        task: &TaskContext,
        query: LogQuery,
        out: mpsc::Sender<LogRecord>,
    ) -> Result<(), RuntimeError> {
        self.inner.logs(task, query, out).await
    }
}
