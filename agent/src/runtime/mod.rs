//! The one interface between the agent and what runs tasks, after swarmkit's exec
//! `Controller`: prepare, start, wait, stop with a grace period, remove, and adopt (find a
//! task again after an agent restart). Implementations pass one shared test suite (the
//! `flotilla` package's `runtime_suite`): [`process`] (host processes, each under a small
//! supervisor) and the docker runtime (containers through the Docker Engine API).
//!
//! Every call takes the task's [`TaskContext`] and is idempotent: preparing a prepared task,
//! starting a running one or stopping a stopped one succeeds without doing it twice, which
//! is what lets an agent that restarted mid-call carry on.

pub mod docker;
pub mod process;

use agent_core::files::PlacedFile;
use agent_core::logs::{LogLimits, LogRecord};
use agent_core::task::OpError;
use agent_core::{HealthTest, TaskIdentity};
use reconciler_types::{HealthConfig, MonoTime, PortConfig, TaskSpec};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Where a long `prepare` (an image pull) reports progress; the agent shows the latest
/// message as the task's status message while it is PREPARING.
pub type Progress = watch::Sender<String>;

/// Docker's default grace period between the stop signal and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// Everything a runtime needs to know about one task.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// Who the task is.
    pub who: TaskIdentity,
    /// Its template.
    pub spec: TaskSpec,
    /// The service's labels.
    pub service_labels: BTreeMap<String, String>,
    /// The service's published ports (as allocated by the managers).
    pub ports: Vec<PortConfig>,
    /// Its configs and secrets, placed, with their content.
    pub files: Vec<TaskFile>,
    /// How large its log may grow.
    pub log_limits: LogLimits,
}

impl TaskContext {
    /// The grace period between the stop signal and SIGKILL.
    pub fn stop_grace(&self) -> Duration {
        self.spec.container_spec.stop_grace_period.unwrap_or(DEFAULT_STOP_GRACE)
    }

    /// The stop signal's name (`SIGTERM` unless the spec says otherwise).
    pub fn stop_signal(&self) -> &str {
        match self.spec.container_spec.stop_signal.as_str() {
            "" => "SIGTERM",
            s => s,
        }
    }
}

/// A config or secret with its content. `Debug` shows the placement only.
#[derive(Clone)]
pub struct TaskFile {
    /// Where it goes.
    pub placed: PlacedFile,
    /// Its content.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for TaskFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFile")
            .field("placed", &self.placed)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// A runtime failure, fatal or temporary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuntimeError {
    /// What went wrong (shown in `service ps`).
    pub message: String,
    /// Retry later without a state change.
    pub temporary: bool,
    /// The task's exit code, when known.
    pub exit_code: Option<i32>,
}

impl RuntimeError {
    /// A fatal error.
    pub fn fatal(message: impl Into<String>) -> RuntimeError {
        RuntimeError { message: message.into(), temporary: false, exit_code: None }
    }

    /// A temporary error.
    pub fn temporary(message: impl Into<String>) -> RuntimeError {
        RuntimeError { message: message.into(), temporary: true, exit_code: None }
    }
}

impl From<RuntimeError> for OpError {
    fn from(e: RuntimeError) -> OpError {
        OpError { message: e.message, temporary: e.temporary, exit_code: e.exit_code }
    }
}

/// What a runtime found of a task after an agent restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Nothing: never prepared, or removed.
    Absent,
    /// Prepared, not started.
    Prepared,
    /// Running, reachable at these ports.
    Running {
        /// The task's ports.
        ports: Vec<PortConfig>,
    },
    /// Exited with this code while nobody watched.
    Exited(i32),
}

/// The result of one health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Exit code 0 within the timeout.
    pub passed: bool,
    /// What it printed (bounded), or why it could not run.
    pub output: String,
}

/// Which lines of a task's log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogQuery {
    /// Only the last N lines.
    pub tail: Option<u64>,
    /// Only lines at or after this time.
    pub since: Option<MonoTime>,
    /// Keep reading new lines until the task has exited and everything is sent.
    pub follow: bool,
}

/// What runs tasks on this node.
pub trait Runtime: Send + Sync + 'static {
    /// `process` or `docker`.
    fn name(&self) -> &'static str;

    /// A line for `node inspect` saying which resource limits this runtime enforces here.
    fn limits_enforced(&self) -> String;

    /// Makes everything the task needs (image, files, ports, working folder) so that
    /// starting is immediate.
    fn prepare(
        &self,
        task: &TaskContext,
        progress: &Progress,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// The health check the task's image brings, used when its spec has none (an image's
    /// `HEALTHCHECK`); the process runtime has no images.
    fn image_health(
        &self,
        _task: &TaskContext,
    ) -> impl Future<Output = Option<HealthConfig>> + Send {
        std::future::ready(None)
    }

    /// Starts the prepared task; answers the ports it is reachable at.
    fn start(
        &self,
        task: &TaskContext,
    ) -> impl Future<Output = Result<Vec<PortConfig>, RuntimeError>> + Send;

    /// Waits until the task exits; answers its exit code (128 + N when killed by signal N).
    fn wait(&self, task: &TaskContext) -> impl Future<Output = Result<i32, RuntimeError>> + Send;

    /// Sends the stop signal, then SIGKILL after the grace period, and returns once the task
    /// and everything it started are gone.
    fn stop(&self, task: &TaskContext) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Removes everything the task left (stops it first if needed), its log included.
    fn remove(&self, task: &TaskContext) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Finds a task again after an agent restart.
    fn adopt(&self, task: &TaskContext)
    -> impl Future<Output = Result<Found, RuntimeError>> + Send;

    /// The ids of every task this runtime holds on this node (to clean up what no
    /// assignment names any more).
    fn list(&self) -> impl Future<Output = Result<Vec<String>, RuntimeError>> + Send;

    /// Removes a task known only by its id (see [`Runtime::list`]).
    fn remove_by_id(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Runs one health probe in the task's environment.
    fn probe(
        &self,
        task: &TaskContext,
        test: &HealthTest,
        timeout: Duration,
    ) -> impl Future<Output = Result<ProbeResult, RuntimeError>> + Send;

    /// Sends the task's log lines to `out` (see [`LogQuery`]); returns when done or when
    /// `out` is closed.
    fn logs(
        &self,
        task: &TaskContext,
        query: LogQuery,
        out: mpsc::Sender<LogRecord>,
    ) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}
