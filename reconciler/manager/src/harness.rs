//! A harness that runs real `flotilla manager` processes on loopback ports, for process-level
//! tests and benchmarks: start a cluster, find the leader, `kill -9` a manager, restart it
//! from its data folder. Every process is killed when the harness is dropped.

use crate::client::ApiClient;
use crate::identity::API_TOKEN_FILE;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// Why the harness failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Spawning or I/O failed.
    #[error("harness i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A manager did not get ready in time.
    #[error("{0}")]
    Timeout(String),
    /// An API call failed.
    #[error("api: {0}")]
    Client(#[from] crate::client::ClientError),
}

/// One manager process.
pub struct ManagerProcess {
    /// Its data folder.
    pub data_dir: PathBuf,
    /// Its address (`127.0.0.1:port`).
    pub addr: String,
    child: Option<Child>,
}

impl ManagerProcess {
    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A cluster of manager processes.
pub struct ProcessCluster {
    binary: PathBuf,
    root: PathBuf,
    /// The managers, in start order (index 0 ran `--init`).
    pub managers: Vec<ManagerProcess>,
    /// The API token.
    pub token: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ProcessCluster {
    /// Starts `n` managers with the `flotilla` binary at `binary`, data folders under `root`.
    ///
    /// # Errors
    /// A process does not start or does not become ready within 30 s.
    pub async fn start(binary: &Path, root: &Path, n: usize) -> Result<Self, HarnessError> {
        let mut cluster = ProcessCluster {
            binary: binary.to_owned(),
            root: root.to_owned(),
            managers: Vec::new(),
            token: String::new(),
        };
        cluster.spawn_new(&["--init"], "")?;
        cluster.token = wait_for_token(&cluster.managers[0].data_dir).await?;
        cluster.wait_ready(0).await?;
        let join = cluster.client(0)?.join_token("manager", false).await?.token;
        let first = cluster.managers[0].addr.clone();
        for _ in 1..n {
            cluster.spawn_new(&["--join", &first], &join)?;
            let i = cluster.managers.len() - 1;
            cluster.wait_voters(i, i + 1).await?;
        }
        Ok(cluster)
    }

    fn spawn_new(&mut self, extra: &[&str], token: &str) -> Result<(), HarnessError> {
        let i = self.managers.len();
        let data_dir = self.root.join(format!("m{}", i + 1));
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut m = ManagerProcess { data_dir, addr, child: None };
        m.child = Some(self.spawn(&m, extra, token)?);
        self.managers.push(m);
        Ok(())
    }

    fn spawn(&self, m: &ManagerProcess, extra: &[&str], token: &str) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("manager")
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen", &m.addr, "--advertise", &m.addr, "--hostname"])
            .arg(m.data_dir.file_name().unwrap_or_default())
            .args(extra)
            .env_remove("FLOTILLA_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !token.is_empty() {
            cmd.args(["--token", token]);
        }
        cmd.spawn()
    }

    /// A client of manager `i`.
    ///
    /// # Errors
    /// The client cannot be built.
    pub fn client(&self, i: usize) -> Result<ApiClient, HarnessError> {
        Ok(ApiClient::new(&self.managers[i].addr, &self.token, Duration::from_secs(10))?)
    }

    /// Waits until manager `i` answers its status.
    ///
    /// # Errors
    /// Not within 30 s.
    pub async fn wait_ready(&self, i: usize) -> Result<(), HarnessError> {
        self.wait_voters(i, 1).await
    }

    /// Waits until manager `i` sees a leader and at least `n` voters.
    ///
    /// # Errors
    /// Not within 30 s.
    pub async fn wait_voters(&self, i: usize, n: usize) -> Result<(), HarnessError> {
        let client = self.client(i)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(s) = client.status().await
                && s.leader.is_some()
                && s.voters.len() >= n
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(HarnessError::Timeout(format!("manager {} not ready with {n} voters", i + 1)))
    }

    /// The index of the manager that leads, as the running managers see it.
    ///
    /// # Errors
    /// No leader within 30 s.
    pub async fn leader(&self) -> Result<usize, HarnessError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let running: Vec<usize> =
                (0..self.managers.len()).filter(|i| self.managers[*i].is_running()).collect();
            for i in running {
                let Ok(s) = self.client(i)?.status().await else { continue };
                if s.leader == Some(s.raft_id) {
                    return Ok(i);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(HarnessError::Timeout("no leader".into()))
    }

    /// `kill -9` manager `i`.
    ///
    /// # Errors
    /// The signal cannot be sent.
    pub fn kill(&mut self, i: usize) -> Result<(), HarnessError> {
        if let Some(mut child) = self.managers[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Restarts manager `i` from its data folder.
    ///
    /// # Errors
    /// The process does not start.
    pub fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.kill(i)?;
        let child = self.spawn(&self.managers[i], &[], "")?;
        self.managers[i].child = Some(child);
        Ok(())
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for m in &mut self.managers {
            if let Some(mut child) = m.child.take() {
                let _already_dead = child.kill();
                let _reaped = child.wait();
            }
        }
    }
}

async fn wait_for_token(dir: &Path) -> Result<String, HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(t) = std::fs::read_to_string(dir.join(API_TOKEN_FILE)) {
            return Ok(t.trim().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(HarnessError::Timeout(format!("no api token in {}", dir.display())))
}
