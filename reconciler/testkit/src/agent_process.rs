//! A real `flotilla agent` process (process runtime) for process-level tests: spawn it
//! against a manager, `kill -9` it, spawn it again from its data folder, read its node id and
//! its tasks' process groups. Dropping it kills the agent and every task process group it
//! left, and removes its secrets folder, so a failed test leaves nothing running.

use crate::harness::{HarnessError, ProcessCluster};
use agent::node::NodeFile;
use agent::runtime::process::default_secrets_dir;
use agent::runtime::process::layout::Started;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reconciler_types::{NodeId, NodeState};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// One agent process and its data folder.
pub struct AgentProcess {
    binary: PathBuf,
    /// Its data folder (node identity, task records, task folders).
    pub dir: PathBuf,
    /// The manager it joins through.
    pub join: String,
    /// The worker join token.
    pub token: String,
    /// The hostname it reports.
    pub hostname: String,
    /// `FLOTILLA_LOG` for the agent (default `info`).
    pub log_level: String,
    /// Where its routing mesh listens (`--mesh-addr`, default `127.0.0.1`: tests stay on
    /// loopback; give each agent its own 127.0.0.x when both must serve a port).
    pub mesh_addr: String,
    /// `--advertise` (default: none, the agent's address towards the manager).
    pub advertise: Option<String>,
    child: Option<Child>,
}

impl AgentProcess {
    /// An agent (not yet running) of the `flotilla` binary at `binary`, with its data in
    /// `dir`, joining through `join` with the worker `token`.
    pub fn new(binary: &Path, dir: &Path, join: &str, token: &str, hostname: &str) -> Self {
        AgentProcess {
            binary: binary.to_owned(),
            dir: dir.to_owned(),
            join: join.to_owned(),
            token: token.to_owned(),
            hostname: hostname.to_owned(),
            log_level: "info".into(),
            mesh_addr: "127.0.0.1".into(),
            advertise: None,
            child: None,
        }
    }

    /// Where the agent's stderr (its log) goes: `<dir>.log`.
    pub fn log_file(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// An agent (not yet running) of `cluster`'s binary that joins through its first manager
    /// with the worker token, with its data in `dir` and its routing mesh and advertised
    /// address on `ip` (a loopback address of its own, so several agents share a machine).
    ///
    /// # Errors
    /// The worker token cannot be read.
    pub async fn at_address(
        cluster: &ProcessCluster,
        dir: &Path,
        hostname: &str,
        ip: &str,
    ) -> Result<Self, HarnessError> {
        let token = cluster.client(0)?.join_token("worker", false).await?.token;
        let join = &cluster.managers[0].addr;
        let mut a = AgentProcess::new(cluster.binary(), dir, join, &token, hostname);
        a.mesh_addr = ip.into();
        a.advertise = Some(ip.into());
        Ok(a)
    }

    /// Starts the process (again, after [`AgentProcess::kill`]: it finds its node identity
    /// and tasks in its data folder). The log is appended to [`AgentProcess::log_file`].
    ///
    /// # Errors
    /// The log cannot be opened or the process cannot be spawned.
    pub fn spawn(&mut self) -> Result<(), HarnessError> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_file())?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(["agent", "--join", &self.join, "--hostname", &self.hostname, "--data-dir"])
            .arg(&self.dir)
            .args(["--mesh-addr", &self.mesh_addr]);
        if let Some(a) = &self.advertise {
            cmd.args(["--advertise", a]);
        }
        let child = cmd
            .env("FLOTILLA_TOKEN", &self.token)
            .env("FLOTILLA_LOG", &self.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `kill -9` the agent (its tasks keep running under their supervisors).
    ///
    /// # Errors
    /// The signal cannot be sent.
    pub fn kill(&mut self) -> Result<(), HarnessError> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
            // A killed agent cannot remove its routing mesh's kernel rules: nothing may be
            // left after a test.
            agent::mesh::kernel::remove_tables_of(c.id());
        }
        Ok(())
    }

    /// The node id the agent was given when it joined (from its data folder).
    ///
    /// # Errors
    /// The agent has not joined yet.
    pub fn node_id(&self) -> Result<NodeId, HarnessError> {
        let file: Option<NodeFile> = agent::fsutil::read_json(&self.dir.join("node.json"))?;
        file.map(|f| f.node_id).ok_or_else(|| HarnessError::NotJoined(self.hostname.clone()))
    }

    /// The process group of a started task (`None` before its supervisor started it).
    pub fn task_pgid(&self, task: &str) -> Option<u32> {
        let path = self.dir.join("process").join(task).join("shim.json");
        agent::fsutil::read_json::<Started>(&path).ok().flatten().map(|s| s.pgid)
    }

    /// The task folders the process runtime holds.
    pub fn task_dirs(&self) -> usize {
        std::fs::read_dir(self.dir.join("process")).map(|d| d.count()).unwrap_or(0)
    }

    /// Waits until the managers see this agent's node READY.
    ///
    /// # Errors
    /// Not within 60 s.
    pub async fn wait_ready(&self, cluster: &ProcessCluster) -> Result<(), HarnessError> {
        let client = cluster.client(0)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let nodes = client.nodes().await.unwrap_or_default();
            if nodes.iter().any(|n| n.hostname == self.hostname && n.status == NodeState::Ready) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(HarnessError::Timeout(format!("agent {} not ready", self.hostname)))
    }

    /// Kills every task process group the agent's tasks left.
    fn kill_tasks(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("process")) else { return };
        for e in entries.flatten() {
            let path = e.path().join("shim.json");
            if let Ok(Some(s)) = agent::fsutil::read_json::<Started>(&path)
                && let Ok(pgid) = i32::try_from(s.pgid)
                && pgid > 1
            {
                let _gone_already = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
    }
}

impl ProcessCluster {
    /// Starts an agent named `hostname` with its data in `<root>/<hostname>`, joined through
    /// manager 0 with a worker token, and waits until its node is READY.
    ///
    /// # Errors
    /// The token cannot be read, the agent does not start or is not ready within 60 s.
    pub async fn start_agent(
        &self,
        root: &Path,
        hostname: &str,
        log_level: &str,
    ) -> Result<AgentProcess, HarnessError> {
        let token = self.client(0)?.join_token("worker", false).await?.token;
        let mut agent = AgentProcess::new(
            self.binary(),
            &root.join(hostname),
            &self.managers[0].addr,
            &token,
            hostname,
        );
        log_level.clone_into(&mut agent.log_level);
        agent.spawn()?;
        agent.wait_ready(self).await?;
        Ok(agent)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _already_dead = self.kill();
        // The tasks outlive their agent (by design); after a test nothing may be left.
        self.kill_tasks();
        // Its secrets folder is outside the data folder when on tmpfs (`/dev/shm`).
        if let Ok(node) = self.node_id() {
            let secrets = default_secrets_dir(&self.dir, node.as_str());
            let _never_made = std::fs::remove_dir_all(secrets);
        }
    }
}
