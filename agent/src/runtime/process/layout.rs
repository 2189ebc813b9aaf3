//! A process task's folder and the small files the agent and the task's supervisor share:
//!
//! ```text
//! <state>/<task id>/
//!   launch.json   what to run (written by prepare)            agent → supervisor
//!   root/         the task's working folder; configs here, secrets linked from tmpfs
//!   bin/flotilla  a link to the agent's binary; bin/ leads the task's PATH   agent
//!   log/task.log  its output, rotated to task.log.1, .2, ...   supervisor
//!   shim.lock     held by the supervisor while it lives        supervisor
//!   shim.json     the task's process group, once started      supervisor → agent
//!   exit.json     its exit code, once it exited               supervisor → agent
//! <secrets>/<task id>/   (tmpfs where available) secret files, removed when the task ends
//! ```
//!
//! Every file is written whole and renamed into place, so a reader never sees half of one.

use agent_core::logs::LogLimits;
use reconciler_types::{PortConfig, Ulimit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The paths of one task.
#[derive(Debug, Clone)]
pub struct TaskDir {
    /// `<state>/<task id>`.
    pub dir: PathBuf,
    /// `<secrets>/<task id>`.
    pub secrets: PathBuf,
}

impl TaskDir {
    /// The task's working folder.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// The folder put first on the task's `PATH`: `flotilla` there is the agent's binary.
    pub fn bin(&self) -> PathBuf {
        self.dir.join("bin")
    }
    /// The log folder.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }
    /// `launch.json`.
    pub fn launch(&self) -> PathBuf {
        self.dir.join("launch.json")
    }
    /// `shim.lock`.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("shim.lock")
    }
    /// `shim.json`.
    pub fn started(&self) -> PathBuf {
        self.dir.join("shim.json")
    }
    /// `exit.json`.
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
}

/// What the supervisor runs (`launch.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// Program and arguments (the program resolved to a path).
    pub argv: Vec<String>,
    /// The whole environment.
    pub env: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: PathBuf,
    /// Where the log goes.
    pub log_dir: PathBuf,
    /// Log rotation: bytes per file.
    pub log_max_size: u64,
    /// Log rotation: files kept.
    pub log_max_files: u32,
    /// Resource limits (`ulimits:`), set before the program starts.
    #[serde(default)]
    pub ulimits: Vec<Ulimit>,
    /// uid and gid to run as, when the spec names a user.
    #[serde(default)]
    pub user: Option<(u32, u32)>,
    /// The secrets folder, removed when the program exits.
    #[serde(default)]
    pub secrets_dir: Option<PathBuf>,
    /// The node ports the task listens on.
    #[serde(default)]
    pub ports: Vec<PortConfig>,
}

impl Launch {
    /// The log limits.
    pub fn log_limits(&self) -> LogLimits {
        LogLimits { max_size: self.log_max_size, max_files: self.log_max_files }
    }
}

/// Written by the supervisor once the program runs (`shim.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The supervisor's pid.
    pub shim_pid: u32,
    /// The program's pid, which is also its process group.
    pub pgid: u32,
}

/// Written by the supervisor once the program exited (`exit.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exited {
    /// The exit code (128 + N when killed by signal N).
    pub code: i32,
}

pub use crate::fsutil::{read_json, write_json};
