//! The process runtime (flotilla's embedded default): a task is a host process in its own
//! folder and process group, under a supervisor (`flotilla agent-shim`, see [`shim`]) that
//! outlives the agent, keeps the task's log and records its exit code. `image` is recorded,
//! not run.
//!
//! * prepare ([`prepare`]): argv and environment, configs in the task folder, secrets on
//!   tmpfs (mode 0400, linked from their targets, removed when the task ends), node ports
//!   (`PORT`, `FLOTILLA_PORT_<target>`), `flotilla` on `PATH` (the agent's binary, for
//!   shell commands and CMD-SHELL health checks), `launch.json`;
//! * start: runs the supervisor and waits for its first line (`started <pid>`);
//! * wait: takes a shared lock on `shim.lock`, which the supervisor holds while it lives,
//!   then reads `exit.json`;
//! * stop: the stop signal to the task's process group, SIGKILL after the grace period;
//! * adopt: reads the same files, so a restarted agent finds running tasks and the exit
//!   codes of those that ended while it was away.
//!
//! Resource limits: `ulimits:` are set by the supervisor before the program starts. CPU,
//! memory and pids limits need cgroups, which this runtime does not manage yet; the agent
//! says so in `node inspect` (engine label `com.flotilla.limits`).

pub mod layout;
mod prepare;
mod probe;
pub mod shim;

use super::{Found, LogQuery, ProbeResult, Progress, Runtime, RuntimeError, TaskContext};
use crate::logfile;
use agent_core::HealthTest;
use agent_core::logs::LogRecord;
use layout::{Exited, Launch, Started, TaskDir, read_json};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reconciler_types::PortConfig;
use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// How long a supervisor may take to start the program.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a task to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the process runtime keeps its tasks.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Task folders (`<data dir>/process`).
    pub state_dir: PathBuf,
    /// Secret folders, on tmpfs where available (see [`default_secrets_dir`]).
    pub secrets_dir: PathBuf,
    /// This very binary, run for `flotilla ...` commands and as the supervisor.
    pub flotilla_exe: PathBuf,
}

/// `/dev/shm/flotilla-<tag>` when `/dev/shm` is a tmpfs, otherwise `<data dir>/secrets`.
/// `tag` keeps two agents on one machine apart (the node id, say).
pub fn default_secrets_dir(data_dir: &Path, tag: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let tmpfs = nix::sys::statfs::statfs(shm)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    if tmpfs { shm.join(format!("flotilla-{tag}")) } else { data_dir.join("secrets") }
}

/// The process runtime.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    cfg: ProcessConfig,
    agent_path: String,
}

impl ProcessRuntime {
    /// A runtime keeping its tasks under `cfg`'s folders (created here).
    ///
    /// # Errors
    /// A folder cannot be created.
    pub fn new(cfg: ProcessConfig) -> io::Result<ProcessRuntime> {
        std::fs::create_dir_all(&cfg.state_dir)?;
        std::fs::create_dir_all(&cfg.secrets_dir)?;
        let agent_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        Ok(ProcessRuntime { cfg, agent_path })
    }

    fn dir(&self, id: &str) -> TaskDir {
        TaskDir { dir: self.cfg.state_dir.join(id), secrets: self.cfg.secrets_dir.join(id) }
    }

    fn task_dir(&self, task: &TaskContext) -> TaskDir {
        self.dir(task.who.task_id.as_str())
    }

    async fn launch(&self, dir: &TaskDir) -> Result<Launch, RuntimeError> {
        read_json(&dir.launch())
            .map_err(|e| RuntimeError::fatal(format!("reading launch.json: {e}")))?
            .ok_or_else(|| RuntimeError::fatal("the task was not prepared"))
    }

    async fn spawn_supervisor(&self, dir: &TaskDir) -> Result<(), RuntimeError> {
        let err_log = File::create(dir.dir.join("shim.err"))
            .map_err(|e| RuntimeError::fatal(format!("creating shim.err: {e}")))?;
        let mut child = tokio::process::Command::new(&self.cfg.flotilla_exe)
            .arg("agent-shim")
            .arg(&dir.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err_log)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                RuntimeError::fatal(format!(
                    "cannot run the task supervisor {}: {e}",
                    self.cfg.flotilla_exe.display()
                ))
            })?;
        let stdout =
            child.stdout.take().ok_or_else(|| RuntimeError::fatal("no supervisor pipe"))?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        match tokio::time::timeout(START_TIMEOUT, reader.read_line(&mut line)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(RuntimeError::fatal(format!("task supervisor: {e}"))),
            Err(_) => return Err(RuntimeError::fatal("the task supervisor did not start in time")),
        }
        // The supervisor is reaped by tokio once it exits; the agent follows it by its lock.
        drop(child);
        let line = line.trim();
        if line.starts_with("started ") {
            return Ok(());
        }
        let why = line.strip_prefix("error ").map(str::to_owned).unwrap_or_else(|| {
            let err = std::fs::read_to_string(dir.dir.join("shim.err")).unwrap_or_default();
            format!("the task supervisor exited: {}", err.trim())
        });
        Err(RuntimeError::fatal(why))
    }

    async fn exit_code(&self, dir: &TaskDir) -> Result<i32, RuntimeError> {
        wait_unlocked(dir.lock()).await?;
        match read_json::<Exited>(&dir.exit()) {
            Ok(Some(e)) => Ok(e.code),
            _ => {
                // The supervisor died without a word: make sure nothing of the task is left.
                if let Ok(Some(s)) = read_json::<Started>(&dir.started()) {
                    signal_group(s.pgid, Signal::SIGKILL);
                }
                Err(RuntimeError::fatal(
                    "the task's supervisor died; the task was killed and its exit code is unknown",
                ))
            }
        }
    }

    async fn stop_dir(
        &self,
        dir: &TaskDir,
        signal: Signal,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let Ok(Some(started)) = read_json::<Started>(&dir.started()) else { return Ok(()) };
        if !supervisor_alive(&dir.lock()) {
            return Ok(());
        }
        signal_group(started.pgid, signal);
        if tokio::time::timeout(grace, wait_unlocked(dir.lock())).await.is_ok() {
            return Ok(());
        }
        signal_group(started.pgid, Signal::SIGKILL);
        match tokio::time::timeout(KILL_TIMEOUT, wait_unlocked(dir.lock())).await {
            Ok(r) => r,
            Err(_) => Err(RuntimeError::temporary("the task did not exit after SIGKILL")),
        }
    }

    async fn remove_dir(&self, dir: &TaskDir) -> Result<(), RuntimeError> {
        self.stop_dir(dir, Signal::SIGKILL, Duration::ZERO).await?;
        for d in [&dir.dir, &dir.secrets] {
            match std::fs::remove_dir_all(d) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(RuntimeError::temporary(format!("removing {}: {e}", d.display())));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Sends a signal to a task's process group (a group that is already gone is fine).
fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pgid)
        && pid > 1
    {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// Whether a supervisor holds the lock.
fn supervisor_alive(lock: &Path) -> bool {
    let Ok(f) = File::open(lock) else { return false };
    matches!(f.try_lock_shared(), Err(TryLockError::WouldBlock))
}

/// Returns once no supervisor holds the lock (a blocking lock on a blocking thread).
async fn wait_unlocked(lock: PathBuf) -> Result<(), RuntimeError> {
    let waited = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let f = File::open(&lock)?;
        f.lock_shared()
    })
    .await;
    match waited {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RuntimeError::fatal(format!("waiting for the task: {e}"))),
        Err(e) => Err(RuntimeError::temporary(format!("waiting for the task: {e}"))),
    }
}

/// `SIGTERM`, `TERM` or `15`.
fn parse_signal(name: &str) -> Result<Signal, RuntimeError> {
    let bad = || RuntimeError::fatal(format!("stop_signal {name:?} is not a signal"));
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&full).map_err(|_| bad())
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn limits_enforced(&self) -> String {
        "ulimits".into()
    }

    async fn prepare(&self, task: &TaskContext, _progress: &Progress) -> Result<(), RuntimeError> {
        let dir = self.task_dir(task);
        if dir.launch().exists() {
            return Ok(());
        }
        let launch = prepare::plan(task, &dir, &self.cfg.flotilla_exe, &self.agent_path)?;
        prepare::write(task, &dir, &self.cfg.flotilla_exe, launch)
    }

    async fn start(&self, task: &TaskContext) -> Result<Vec<PortConfig>, RuntimeError> {
        let dir = self.task_dir(task);
        parse_signal(task.stop_signal())?;
        let launch = self.launch(&dir).await?;
        if !dir.started().exists() {
            self.spawn_supervisor(&dir).await?;
        }
        Ok(launch.ports)
    }

    async fn wait(&self, task: &TaskContext) -> Result<i32, RuntimeError> {
        self.exit_code(&self.task_dir(task)).await
    }

    async fn stop(&self, task: &TaskContext) -> Result<(), RuntimeError> {
        let signal = parse_signal(task.stop_signal()).unwrap_or(Signal::SIGTERM);
        self.stop_dir(&self.task_dir(task), signal, task.stop_grace()).await
    }

    async fn remove(&self, task: &TaskContext) -> Result<(), RuntimeError> {
        self.remove_dir(&self.task_dir(task)).await
    }

    async fn adopt(&self, task: &TaskContext) -> Result<Found, RuntimeError> {
        let dir = self.task_dir(task);
        let Ok(Some(launch)) = read_json::<Launch>(&dir.launch()) else { return Ok(Found::Absent) };
        if !dir.started().exists() {
            return Ok(Found::Prepared);
        }
        if supervisor_alive(&dir.lock()) {
            return Ok(Found::Running { ports: launch.ports });
        }
        self.exit_code(&dir).await.map(Found::Exited)
    }

    async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let entries = std::fs::read_dir(&self.cfg.state_dir)
            .map_err(|e| RuntimeError::temporary(format!("listing tasks: {e}")))?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn remove_by_id(&self, id: &str) -> Result<(), RuntimeError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(RuntimeError::fatal(format!("{id:?} is not a task id")));
        }
        self.remove_dir(&self.dir(id)).await
    }

    async fn probe(
        &self,
        task: &TaskContext,
        test: &HealthTest,
        timeout: Duration,
    ) -> Result<ProbeResult, RuntimeError> {
        let launch = self.launch(&self.task_dir(task)).await?;
        Ok(probe::run(test, &launch, &self.cfg.flotilla_exe, timeout).await)
    }

    async fn logs(
        &self,
        task: &TaskContext,
        query: LogQuery,
        out: mpsc::Sender<LogRecord>,
    ) -> Result<(), RuntimeError> {
        let dir = self.task_dir(task);
        let log_dir = dir.log_dir();
        let finished = move || dir.exit().exists() || !supervisor_alive(&dir.lock());
        tokio::task::spawn_blocking(move || {
            logfile::read_blocking(&log_dir, query, &out, &finished)
        })
        .await
        .map_err(|e| RuntimeError::temporary(format!("reading the log: {e}")))?
        .map_err(|e| RuntimeError::temporary(format!("reading the log: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_parse_in_every_docker_spelling() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("usr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
