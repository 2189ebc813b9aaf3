//! One health probe of a process task: the test command run on the node with the task's
//! environment and working folder, in its own process group, killed at the timeout.

use super::layout::Launch;
use super::signal_group;
use crate::runtime::ProbeResult;
use agent_core::HealthTest;
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// What a probe's output is cut to (Docker keeps 4 KiB).
const MAX_OUTPUT: usize = 4096;

/// Runs `test` for the task launched as `launch`.
pub(super) async fn run(
    test: &HealthTest,
    launch: &Launch,
    exe: &Path,
    timeout: Duration,
) -> ProbeResult {
    let mut argv = test.argv();
    if argv.first().is_some_and(|p| p == "flotilla") {
        argv[0] = exe.to_string_lossy().into_owned();
    }
    let Some((program, args)) = argv.split_first() else {
        return ProbeResult { passed: false, output: "empty health check".into() };
    };
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(&launch.env)
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return ProbeResult { passed: false, output: format!("cannot run {program}: {e}") };
        }
    };
    let pgid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let work = async {
        let (mut out, err) = tokio::join!(read_some(stdout.as_mut()), read_some(stderr.as_mut()));
        let status = child.wait().await;
        out.extend_from_slice(&err);
        out.truncate(MAX_OUTPUT);
        (status, String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((Ok(status), output)) => ProbeResult { passed: status.success(), output },
        Ok((Err(e), _)) => ProbeResult { passed: false, output: format!("health check: {e}") },
        Err(_) => {
            if let Some(pid) = pgid {
                signal_group(pid, Signal::SIGKILL);
            }
            let secs = timeout.as_secs_f64();
            ProbeResult {
                passed: false,
                output: format!("Health check exceeded timeout ({secs}s)"),
            }
        }
    }
}

async fn read_some(from: Option<&mut (impl tokio::io::AsyncRead + Unpin)>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(f) = from {
        let _ = f.take(MAX_OUTPUT as u64).read_to_end(&mut buf).await;
    }
    buf
}
