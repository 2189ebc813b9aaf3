//! The docker runtime: a task is a container of the Docker Engine on this node, named
//! `<service>.<slot>.<task id>` and labelled with flotilla's node, service and task ids, so a
//! restarted agent finds its containers again by label instead of starting duplicates.
//!
//! * prepare: the image (pulled when missing, see [`pull`]), the configs and secrets as files
//!   on the node (secrets on tmpfs where available), the container created ([`create`]);
//! * start: starts it and reads the node ports the engine published;
//! * wait / stop / remove: the Engine's wait, stop (stop signal, SIGKILL after the grace
//!   period) and forced remove;
//! * probe: the health check run inside the container (`exec`), by the agent, with the same
//!   rules as the process runtime;
//! * logs: the engine's `json-file` log, bounded by the agent's size and count.

pub mod create;
mod engine;
pub mod pull;

use super::{Found, LogQuery, ProbeResult, Progress, Runtime, RuntimeError, TaskContext};
use crate::runtime::TaskFile;
use agent_core::HealthTest;
use agent_core::files::FileKind;
use agent_core::logs::LogRecord;
use bollard::Docker;
use create::{LABEL_TASK_ID, container_body};
pub use engine::engine_error;
use reconciler_types::{HealthConfig, NodeId, PortConfig};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// The node that runs a container.
pub const LABEL_NODE: &str = "com.flotilla.node.id";

/// Where the docker runtime keeps task files, and whose containers are its own.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// This node: containers carry it, and only containers carrying it are this agent's.
    pub node_id: NodeId,
    /// Config files per task (`<dir>/<task id>/<target>`), bind-mounted read-only.
    pub files_dir: PathBuf,
    /// Secret files per task, on tmpfs where available.
    pub secrets_dir: PathBuf,
}

/// The docker runtime.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    cfg: DockerConfig,
    version: String,
}

impl DockerRuntime {
    /// Connects to the engine (`DOCKER_HOST`, else the local socket) and agrees on an API
    /// version with it.
    ///
    /// # Errors
    /// No engine answers.
    pub async fn connect(cfg: DockerConfig) -> Result<DockerRuntime, RuntimeError> {
        let docker = Docker::connect_with_defaults()
            .map_err(|e| engine_error("connecting to the Docker engine", e))?
            .negotiate_version()
            .await
            .map_err(|e| engine_error("connecting to the Docker engine", e))?;
        let version = docker.version().await.ok().and_then(|v| v.version).unwrap_or_default();
        for d in [&cfg.files_dir, &cfg.secrets_dir] {
            fs::create_dir_all(d)
                .map_err(|e| RuntimeError::fatal(format!("creating {}: {e}", d.display())))?;
        }
        Ok(DockerRuntime { docker, cfg, version })
    }

    /// The engine's version.
    pub fn engine_version(&self) -> &str {
        &self.version
    }

    fn files_dir(&self, id: &str) -> PathBuf {
        self.cfg.files_dir.join(id)
    }

    fn secrets_dir(&self, id: &str) -> PathBuf {
        self.cfg.secrets_dir.join(id)
    }

    /// Where a task's config or secret file is on the node: configs under the files
    /// folder, secrets under the secrets folder (tmpfs where available).
    fn source(&self, id: &str, f: &TaskFile) -> PathBuf {
        let dir = match f.placed.kind {
            FileKind::Config => self.files_dir(id),
            FileKind::Secret => self.secrets_dir(id),
        };
        dir.join(&f.placed.path)
    }

    fn write_files(&self, task: &TaskContext) -> io::Result<()> {
        for f in &task.files {
            let path = self.source(task.who.task_id.as_str(), f);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let _ = fs::remove_file(&path);
            fs::write(&path, &f.data)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(f.placed.mode & 0o777))?;
            // The owner the reference names, when the agent may give files away.
            if let (Ok(uid), Ok(gid)) = (f.placed.uid.parse(), f.placed.gid.parse())
                && nix::unistd::getuid().is_root()
            {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    fn remove_files(&self, id: &str) -> Result<(), RuntimeError> {
        for d in [self.files_dir(id), self.secrets_dir(id)] {
            match fs::remove_dir_all(&d) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(RuntimeError::temporary(format!("removing {}: {e}", d.display())));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn limits_enforced(&self) -> String {
        "cpus, memory, pids, ulimits (by the Docker engine)".into()
    }

    async fn prepare(&self, task: &TaskContext, progress: &Progress) -> Result<(), RuntimeError> {
        agent_core::launch::check_runtime(&task.spec.container_spec, "docker")
            .map_err(|e| RuntimeError::fatal(e.to_string()))?;
        if engine::find(&self.docker, task.who.task_id.as_str()).await?.is_some() {
            return Ok(());
        }
        pull::ensure_image(&self.docker, &task.spec.container_spec.image, progress).await?;
        self.write_files(task)
            .map_err(|e| RuntimeError::fatal(format!("writing the task's files: {e}")))?;
        let id = task.who.task_id.as_str();
        let body = container_body(task, &|f| self.source(id, f), task.log_limits);
        engine::create(&self.docker, &task.who.name(), body).await
    }

    async fn image_health(&self, task: &TaskContext) -> Option<HealthConfig> {
        engine::image_health(&self.docker, &task.spec.container_spec.image).await
    }

    async fn start(&self, task: &TaskContext) -> Result<Vec<PortConfig>, RuntimeError> {
        let id = engine::find(&self.docker, task.who.task_id.as_str())
            .await?
            .ok_or_else(|| RuntimeError::fatal("the task's container is gone"))?;
        engine::start(&self.docker, &id.id).await?;
        engine::published_ports(&self.docker, &id.id, &task.ports).await
    }

    async fn wait(&self, task: &TaskContext) -> Result<i32, RuntimeError> {
        let c = engine::find(&self.docker, task.who.task_id.as_str())
            .await?
            .ok_or_else(|| RuntimeError::fatal("the task's container is gone"))?;
        engine::wait(&self.docker, &c.id).await
    }

    async fn stop(&self, task: &TaskContext) -> Result<(), RuntimeError> {
        match engine::find(&self.docker, task.who.task_id.as_str()).await? {
            Some(c) => {
                let signal = task.spec.container_spec.stop_signal.as_str();
                engine::stop(&self.docker, &c.id, signal, create::grace_secs(task)).await
            }
            None => Ok(()),
        }
    }

    async fn remove(&self, task: &TaskContext) -> Result<(), RuntimeError> {
        self.remove_by_id(task.who.task_id.as_str()).await
    }

    async fn adopt(&self, task: &TaskContext) -> Result<Found, RuntimeError> {
        let Some(c) = engine::find(&self.docker, task.who.task_id.as_str()).await? else {
            return Ok(Found::Absent);
        };
        match c.state {
            engine::State::Created => Ok(Found::Prepared),
            engine::State::Running => {
                let ports = engine::published_ports(&self.docker, &c.id, &task.ports).await?;
                Ok(Found::Running { ports })
            }
            engine::State::Exited(code) => Ok(Found::Exited(code)),
        }
    }

    async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        engine::list(&self.docker, self.cfg.node_id.as_str()).await
    }

    async fn remove_by_id(&self, id: &str) -> Result<(), RuntimeError> {
        if let Some(c) = engine::find(&self.docker, id).await? {
            engine::remove(&self.docker, &c.id).await?;
        }
        self.remove_files(id)
    }

    async fn probe(
        &self,
        task: &TaskContext,
        test: &HealthTest,
        timeout: Duration,
    ) -> Result<ProbeResult, RuntimeError> {
        let c = engine::find(&self.docker, task.who.task_id.as_str())
            .await?
            .ok_or_else(|| RuntimeError::fatal("the task's container is gone"))?;
        Ok(engine::exec_probe(&self.docker, &c.id, test.argv(), timeout).await)
    }

    async fn logs(
        &self,
        task: &TaskContext,
        query: LogQuery,
        out: mpsc::Sender<LogRecord>,
    ) -> Result<(), RuntimeError> {
        let Some(c) = engine::find(&self.docker, task.who.task_id.as_str()).await? else {
            return Ok(());
        };
        engine::logs(&self.docker, &c.id, query, out).await
    }
}

/// The label filter that finds a task's container.
fn task_filter(task_id: &str) -> String {
    format!("{LABEL_TASK_ID}={task_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_keys_name_target_and_protocol() {
        let p = PortConfig {
            target_port: 53,
            protocol: reconciler_types::PortProtocol::Udp,
            ..PortConfig::default()
        };
        assert_eq!(create::port_key(&p), "53/udp");
        assert_eq!(task_filter("t1"), "com.flotilla.task.id=t1");
    }
}
