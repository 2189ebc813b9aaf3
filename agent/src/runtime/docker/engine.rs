//! The Engine API calls of the docker runtime, each turned into a [`RuntimeError`] that
//! says what failed: an engine that does not answer is temporary (retried), anything the
//! engine refuses is fatal for the task.

use super::{LABEL_NODE, task_filter};
use crate::runtime::{LogQuery, ProbeResult, RuntimeError};
use agent_core::logs::{LineSplitter, LogRecord, Stream};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use reconciler_types::{HealthConfig, MonoTime, PortConfig};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a probe's output is cut to (Docker keeps 4 KiB).
const MAX_OUTPUT: usize = 4096;

/// An engine error as a runtime error: `what` failed, and why.
pub fn engine_error(what: &str, e: DockerError) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError { status_code, message } if status_code < 500 => {
            RuntimeError::fatal(format!("{what}: {message}"))
        }
        DockerError::DockerResponseServerError { message, .. } => {
            RuntimeError::fatal(format!("{what}: {message}"))
        }
        other => RuntimeError::temporary(format!("{what}: {other}")),
    }
}

/// A task's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: State,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, never started.
    Created,
    /// Running (or paused, restarting).
    Running,
    /// Exited with this code.
    Exited(i32),
}

/// The container of a task, if there is one.
pub async fn find(docker: &Docker, task_id: &str) -> Result<Option<Container>, RuntimeError> {
    let filters = HashMap::from([("label", vec![task_filter(task_id)])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let found = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error("listing containers", e))?;
    let Some(c) = found.into_iter().next() else { return Ok(None) };
    let id = c.id.unwrap_or_default();
    let state = match c.state {
        Some(ContainerSummaryStateEnum::CREATED) => State::Created,
        Some(ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD) => {
            State::Exited(exit_code(docker, &id).await?)
        }
        _ => State::Running,
    };
    Ok(Some(Container { id, state }))
}

async fn exit_code(docker: &Docker, id: &str) -> Result<i32, RuntimeError> {
    let inspect = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| engine_error("inspecting the container", e))?;
    let code = inspect.state.and_then(|s| s.exit_code).unwrap_or(-1);
    Ok(i32::try_from(code).unwrap_or(-1))
}

/// The task ids of every container of this node.
pub async fn list(docker: &Docker, node_id: &str) -> Result<Vec<String>, RuntimeError> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_NODE}={node_id}")])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let found = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error("listing containers", e))?;
    let mut ids: Vec<String> = found
        .into_iter()
        .filter_map(|c| c.labels?.get(super::create::LABEL_TASK_ID).cloned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Creates the container.
pub async fn create(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<(), RuntimeError> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map(|_| ())
        .map_err(|e| engine_error("creating the container", e))
}

/// Starts the container (a running one stays as it is).
pub async fn start(docker: &Docker, id: &str) -> Result<(), RuntimeError> {
    match docker.start_container(id, None).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
        Err(e) => Err(engine_error("starting the container", e)),
    }
}

/// The node ports the engine published for each service port.
pub async fn published_ports(
    docker: &Docker,
    id: &str,
    ports: &[PortConfig],
) -> Result<Vec<PortConfig>, RuntimeError> {
    let inspect = docker
        .inspect_container(id, None)
        .await
        .map_err(|e| engine_error("inspecting the container", e))?;
    let map = inspect.network_settings.and_then(|n| n.ports).unwrap_or_default();
    ports
        .iter()
        .map(|p| {
            let key = super::create::port_key(p);
            let host_port = map
                .get(&key)
                .and_then(|b| b.as_ref())
                .and_then(|b| b.iter().find_map(|b| b.host_port.as_deref()?.parse::<u32>().ok()))
                .ok_or_else(|| RuntimeError::fatal(format!("the engine did not publish {key}")))?;
            Ok(PortConfig { published_port: host_port, ..p.clone() })
        })
        .collect()
}

/// Waits until the container is not running; its exit code.
pub async fn wait(docker: &Docker, id: &str) -> Result<i32, RuntimeError> {
    let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut stream = docker.wait_container(id, Some(options));
    match stream.next().await {
        Some(Ok(r)) => Ok(i32::try_from(r.status_code).unwrap_or(-1)),
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
            Ok(i32::try_from(code).unwrap_or(-1))
        }
        Some(Err(e)) => Err(engine_error("waiting for the container", e)),
        None => exit_code(docker, id).await,
    }
}

/// Stops the container: `signal` (its own stop signal when empty), SIGKILL after `grace`
/// seconds. A stopped or missing container is fine.
pub async fn stop(docker: &Docker, id: &str, signal: &str, grace: i64) -> Result<(), RuntimeError> {
    let mut builder =
        StopContainerOptionsBuilder::default().t(i32::try_from(grace).unwrap_or(i32::MAX));
    if !signal.is_empty() {
        builder = builder.signal(signal);
    }
    match docker.stop_container(id, Some(builder.build())).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 304 | 404, .. }) => {
            Ok(())
        }
        Err(e) => Err(engine_error("stopping the container", e)),
    }
}

/// Removes the container and its anonymous volumes, running or not.
pub async fn remove(docker: &Docker, id: &str) -> Result<(), RuntimeError> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(engine_error("removing the container", e)),
    }
}

/// The health check an image declares (`HEALTHCHECK`), as a service's would be.
pub async fn image_health(docker: &Docker, image: &str) -> Option<HealthConfig> {
    let config = docker.inspect_image(image).await.ok()?.config?;
    let h = config.healthcheck?;
    let d = |ns: Option<i64>| {
        ns.and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0).map(Duration::from_nanos)
    };
    Some(HealthConfig {
        test: h.test?,
        interval: d(h.interval),
        timeout: d(h.timeout),
        retries: h.retries.and_then(|r| u64::try_from(r).ok()),
        start_period: d(h.start_period),
        start_interval: d(h.start_interval),
    })
}

/// Runs a health probe inside the container.
pub async fn exec_probe(
    docker: &Docker,
    id: &str,
    argv: Vec<String>,
    timeout: Duration,
) -> ProbeResult {
    let run = async {
        let exec = docker
            .create_exec(
                id,
                CreateExecOptions::<String> {
                    cmd: Some(argv),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let mut output = Vec::new();
        if let StartExecResults::Attached { output: mut stream, .. } =
            docker.start_exec(&exec.id, Some(StartExecOptions::default())).await?
        {
            while let Some(chunk) = stream.next().await {
                let bytes = chunk?.into_bytes();
                let room = MAX_OUTPUT.saturating_sub(output.len());
                output.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
        let code = docker.inspect_exec(&exec.id).await?.exit_code;
        Ok::<_, DockerError>((code, String::from_utf8_lossy(&output).into_owned()))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok((Some(0), output))) => ProbeResult { passed: true, output },
        Ok(Ok((_, output))) => ProbeResult { passed: false, output },
        Ok(Err(e)) => ProbeResult { passed: false, output: format!("health check: {e}") },
        Err(_) => {
            let secs = timeout.as_secs_f64();
            ProbeResult {
                passed: false,
                output: format!("Health check exceeded timeout ({secs}s)"),
            }
        }
    }
}

/// Sends the container's log lines to `out`.
pub async fn logs(
    docker: &Docker,
    id: &str,
    query: LogQuery,
    out: mpsc::Sender<LogRecord>,
) -> Result<(), RuntimeError> {
    let mut builder = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .follow(query.follow);
    if let Some(n) = query.tail {
        builder = builder.tail(&n.to_string());
    }
    if let Some(since) = query.since {
        builder = builder.since(i32::try_from(since.0.as_secs()).unwrap_or(i32::MAX));
    }
    let mut stream = docker.logs(id, Some(builder.build()));
    let mut splitters = [LineSplitter::default(), LineSplitter::default()];
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| engine_error("reading the container's log", e))?;
        let (stream_kind, bytes) = match chunk {
            LogOutput::StdErr { message } => (Stream::Stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Stream::Stdout, message)
            }
            LogOutput::StdIn { .. } => continue,
        };
        let splitter = &mut splitters[usize::from(stream_kind == Stream::Stderr)];
        for line in splitter.push(&bytes) {
            let record = parse_line(stream_kind, &line);
            if query.since.is_some_and(|s| record.time < s) {
                continue;
            }
            if out.send(record).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A line the engine prefixed with its RFC 3339 timestamp.
fn parse_line(stream: Stream, line: &str) -> LogRecord {
    let (time, text) = match line.split_once(' ') {
        Some((ts, rest)) => match humantime::parse_rfc3339(ts) {
            Ok(t) => (t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(), rest),
            Err(_) => (Duration::ZERO, line),
        },
        None => (Duration::ZERO, line),
    };
    LogRecord { time: MonoTime(time), stream, log: text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_log_lines_carry_their_timestamp() {
        let r = parse_line(Stream::Stdout, "2024-03-01T10:00:00.5Z hello world");
        assert_eq!(r.log, "hello world");
        assert_eq!(r.time, MonoTime(Duration::from_millis(1_709_287_200_500)));
        let bare = parse_line(Stream::Stderr, "no timestamp here");
        assert_eq!((bare.log.as_str(), bare.time), ("no timestamp here", MonoTime::ZERO));
    }

    #[test]
    fn refusals_are_fatal_and_unreachable_engines_temporary() {
        let refused = DockerError::DockerResponseServerError {
            status_code: 409,
            message: "name in use".into(),
        };
        let e = engine_error("creating the container", refused);
        assert!(!e.temporary && e.message == "creating the container: name in use");
        let gone = DockerError::RequestTimeoutError;
        assert!(engine_error("starting", gone).temporary);
    }
}
