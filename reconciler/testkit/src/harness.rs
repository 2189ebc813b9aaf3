//! A harness that runs real `flotilla manager` processes on loopback ports, for process-level
//! tests and benchmarks: start a cluster, find the leader, `kill -9` a manager, restart it
//! from its data folder. Every process is killed when the harness is dropped.

use reconciler_api::ApiClient;
use reconciler_manager::identity::API_TOKEN_FILE;
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
    Client(#[from] reconciler_api::ClientError),
    /// An agent has no node identity yet.
    #[error("agent {0} has not joined")]
    NotJoined(String),
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
    /// The cluster CA the clients verify managers against (empty with `insecure`).
    pub ca: String,
    /// Plain HTTP (`--insecure-listen`) instead of mutual TLS.
    pub insecure: bool,
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
        Self::start_with(binary, root, n, false).await
    }

    /// [`ProcessCluster::start`], over plain HTTP when `insecure`.
    ///
    /// # Errors
    /// As [`ProcessCluster::start`].
    pub async fn start_with(
        binary: &Path,
        root: &Path,
        n: usize,
        insecure: bool,
    ) -> Result<Self, HarnessError> {
        Self::start_with_init_args(binary, root, n, insecure, &[]).await
    }

    /// [`ProcessCluster::start_with`], giving the first manager `init_args` beside `--init`
    /// (such as `--cert-expiry 10s`).
    ///
    /// # Errors
    /// As [`ProcessCluster::start`].
    pub async fn start_with_init_args(
        binary: &Path,
        root: &Path,
        n: usize,
        insecure: bool,
        init_args: &[&str],
    ) -> Result<Self, HarnessError> {
        let mut cluster = ProcessCluster {
            binary: binary.to_owned(),
            root: root.to_owned(),
            managers: Vec::new(),
            token: String::new(),
            ca: String::new(),
            insecure,
        };
        let init: Vec<&str> = std::iter::once("--init").chain(init_args.iter().copied()).collect();
        cluster.spawn_new(&init, "")?;
        cluster.token = wait_for_token(&cluster.managers[0].data_dir).await?;
        if !insecure {
            let ca = cluster.managers[0].data_dir.join(reconciler_tls::files::CA_FILE);
            cluster.ca = std::fs::read_to_string(ca)?;
        }
        cluster.wait_ready(0).await?;
        // A leader exists before the bootstrap batch (cluster record, CA) has applied.
        let first_client = cluster.client(0)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let join = loop {
            match first_client.join_token("manager", false).await {
                Ok(view) => break view.token,
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
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
        // Each manager's log goes beside its data folder (`m1.log`), appended across restarts.
        if let Some(parent) = m.data_dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.data_dir.with_extension("log"))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("manager")
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen", &m.addr, "--advertise", &m.addr, "--hostname"])
            .arg(m.data_dir.file_name().unwrap_or_default())
            .args(extra)
            .args(self.insecure.then_some("--insecure-listen"))
            .env_remove("FLOTILLA_TOKEN")
            .stdout(Stdio::null())
            .stderr(log);
        if !token.is_empty() {
            cmd.args(["--token", token]);
        }
        cmd.spawn()
    }

    /// The `flotilla` binary the managers run.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The CA file the CLI verifies managers against (`--tlscacert`).
    pub fn ca_file(&self) -> PathBuf {
        self.managers[0].data_dir.join(reconciler_tls::files::CA_FILE)
    }

    /// A client of manager `i`.
    ///
    /// # Errors
    /// The client cannot be built.
    pub fn client(&self, i: usize) -> Result<ApiClient, HarnessError> {
        let (addr, timeout) = (&self.managers[i].addr, Duration::from_secs(10));
        if self.insecure {
            return Ok(ApiClient::new(addr, &self.token, timeout)?);
        }
        Ok(ApiClient::with_tls(addr, &self.token, timeout, &self.ca, None)?)
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
