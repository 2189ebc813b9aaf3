//! The supervisor of one process task (`flotilla agent-shim DIR`), like containerd's shim:
//! the agent starts it, it starts the task's program and outlives the agent, so a restarted
//! agent finds the task again and still learns its real exit code.
//!
//! ```text
//! agent ──spawn──► shim: lock shim.lock ─► set ulimits ─► spawn program (own process group)
//!   ◄── "started <pid>" on stdout ──┘      write shim.json          │ stdout/stderr
//!                                                                  ▼
//!                       log/task.log (rotating) ◄── two reader threads
//! program exits ─► shim: SIGKILL what is left of the group ─► exit.json ─► remove secrets
//!                  ─► exit (the lock is released: whoever waits on it wakes up)
//! ```

use super::layout::{Exited, Launch, Started, TaskDir, read_json, write_json};
use crate::clock;
use crate::logfile::LogWriter;
use agent_core::logs::{LineSplitter, LogRecord, Stream};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the supervisor waits for the output readers after the program exited (a
/// process that left the group may hold the pipes open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the supervisor for the task folder `dir`. Prints `started <pid>` or `error <why>`
/// as its first line, so the agent knows how the start went.
pub fn main(dir: &Path) -> ExitCode {
    let task = TaskDir { dir: dir.to_owned(), secrets: dir.join("unused") };
    match supervise(&task) {
        Ok(code) => {
            if code == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            // The agent reads this line; if it is gone there is nobody to tell.
            let _ = writeln!(io::stdout(), "error {e}");
            ExitCode::from(2)
        }
    }
}

fn supervise(task: &TaskDir) -> io::Result<i32> {
    let launch: Launch = read_json(&task.launch())?
        .ok_or_else(|| io::Error::other("launch.json is missing: the task was not prepared"))?;
    let lock = File::create(task.lock())?;
    lock.try_lock().map_err(|_| io::Error::other("another supervisor runs this task"))?;
    if read_json::<Started>(&task.started())?.is_some() {
        return Err(io::Error::other("the task was already started once"));
    }
    let log = Arc::new(Mutex::new(LogWriter::open(&launch.log_dir, launch.log_limits())?));
    for u in &launch.ulimits {
        set_ulimit(&u.name, u.soft, u.hard)?;
    }
    // Orphans of the task become the supervisor's children, so it reaps them at once instead
    // of leaving zombies in the task's group until init gets to them.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut child = spawn(&launch)?;
    let pgid = child.id();
    write_json(&task.started(), &Started { shim_pid: std::process::id(), pgid })?;
    let readers = [
        child.stdout.take().map(|o| read_into(o, Stream::Stdout, log.clone())),
        child.stderr.take().map(|e| read_into(e, Stream::Stderr, log.clone())),
    ];
    let _ = writeln!(io::stdout(), "started {pgid}");
    let _ = io::stdout().flush();
    let code = exit_code(&mut child)?;
    // Nothing of the task outlives it: kill what is left of its group and wait (bounded) until
    // the group is empty, so whoever waits for the task finds nothing of it running.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    if let Ok(pid) = i32::try_from(pgid) {
        let group = Pid::from_raw(pid);
        let _ = killpg(group, Signal::SIGKILL);
        while killpg(group, None).is_ok() && Instant::now() < deadline {
            reap_orphans();
            std::thread::sleep(Duration::from_millis(5));
        }
        reap_orphans();
    }
    for r in readers.into_iter().flatten() {
        while !r.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if r.is_finished() {
            let _ = r.join();
        }
    }
    write_json(&task.exit(), &Exited { code })?;
    if let Some(s) = &launch.secrets_dir {
        let _ = std::fs::remove_dir_all(s);
    }
    drop(lock);
    Ok(code)
}

fn spawn(launch: &Launch) -> io::Result<Child> {
    let (program, args) =
        launch.argv.split_first().ok_or_else(|| io::Error::other("nothing to run"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(&launch.env)
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((uid, gid)) = launch.user {
        cmd.uid(uid).gid(gid);
    }
    cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("cannot start {program}: {e}")))
}

/// Reaps every exited orphan the supervisor inherited.
fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

fn exit_code(child: &mut Child) -> io::Result<i32> {
    let status = child.wait()?;
    Ok(status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255))
}

fn read_into(
    mut from: impl Read + Send + 'static,
    stream: Stream,
    log: Arc<Mutex<LogWriter>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut splitter = LineSplitter::default();
        let mut buf = [0u8; 8192];
        let write = |lines: Vec<String>| {
            let Ok(mut w) = log.lock() else { return };
            for line in lines {
                let record = LogRecord { time: clock::now(), stream, log: line };
                // A full disk loses log lines, never the task.
                let _ = w.write(&record);
            }
        };
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => write(splitter.push(&buf[..n])),
            }
        }
        write(splitter.finish().into_iter().collect());
    })
}

fn set_ulimit(name: &str, soft: i64, hard: i64) -> io::Result<()> {
    let resource = match name {
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "stack" => Resource::RLIMIT_STACK,
        "as" => Resource::RLIMIT_AS,
        "locks" => Resource::RLIMIT_LOCKS,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        other => return Err(io::Error::other(format!("unknown ulimit {other:?}"))),
    };
    let as_limit = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    setrlimit(resource, as_limit(soft), as_limit(hard))
        .map_err(|e| io::Error::other(format!("ulimit {name}={soft}:{hard}: {e}")))
}
