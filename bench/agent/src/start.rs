//! Assignment → running: the agent's worker, task runner and runtime, handed a dispatcher
//! answer as JSON (what the session receives), timed until the runner queues RUNNING in the
//! outbox the session reports from; then the task is unassigned (removed) before the next
//! run. Next to it, `docker run -d` of the same image until the engine says it runs.
//!
//! Runs are interleaved (process, docker runtime, docker run) so that a busy moment of the
//! machine falls on all three; one warm-up round is not counted.

use crate::docker::{Containers, LABEL_BENCH};
use crate::timed::Timed;
use crate::{Options, median, ms};
use agent::clock::AgentClock;
use agent::outbox::Outbox;
use agent::runner::Shared;
use agent::runtime::Runtime;
use agent::runtime::docker::{DockerConfig, DockerRuntime, LABEL_NODE};
use agent::runtime::process::layout::Started;
use agent::runtime::process::{ProcessConfig, ProcessRuntime};
use agent::taskstore::TaskStore;
use agent::worker::Worker;
use agent_core::logs::LogLimits;
use anyhow::{Context, bail};
use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use reconciler_api::dispatcher::{
    Assignment, AssignmentChange, Assignments, AssignmentsKind, TaskAssignment,
};
use reconciler_types::{NodeId, ServiceId, Task, TaskId, TaskState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The service name the tasks carry.
const SERVICE: &str = "bench_probe";
/// The longest a task may take to run, or to go away.
const DEADLINE: Duration = Duration::from_secs(60);

/// One runtime under the agent's worker, and what its runs measured.
struct Bench<R: Runtime> {
    worker: Worker<Timed<R>>,
    node: NodeId,
    image: String,
    generation: u64,
    /// Assignment → RUNNING, per run (ms).
    totals: Vec<f64>,
    /// Time in each runtime call, per run (ms).
    calls: BTreeMap<&'static str, Vec<f64>>,
    /// Everything else (the runner, its saved records, the outbox), per run (ms).
    rest: Vec<f64>,
}

impl<R: Runtime> Bench<R> {
    async fn new(rt: R, dir: &Path, node: NodeId, image: &str) -> anyhow::Result<Bench<R>> {
        let shared = Shared {
            rt: Arc::new(Timed::new(rt)),
            outbox: Arc::new(Outbox::default()),
            store: TaskStore::open(dir.join("tasks"))?,
            clock: AgentClock::new(),
        };
        let worker = Worker::new(shared, node.clone(), LogLimits::default());
        worker.start().await;
        Ok(Bench {
            worker,
            node,
            image: image.to_owned(),
            generation: 0,
            totals: Vec::new(),
            calls: BTreeMap::new(),
            rest: Vec::new(),
        })
    }

    /// A complete answer holding `task` (or nothing), as the dispatcher sends it.
    fn answer(&mut self, task: Option<TaskAssignment>) -> anyhow::Result<Vec<u8>> {
        self.generation += 1;
        let changes = task
            .into_iter()
            .map(|t| AssignmentChange::Update { assignment: Assignment::Task(Box::new(t)) })
            .collect();
        let answer = Assignments {
            kind: AssignmentsKind::Complete,
            applies_to: 0,
            generation: self.generation,
            changes,
            log_subscriptions: Vec::new(),
        };
        Ok(serde_json::to_vec(&answer)?)
    }

    /// One task: assigned, RUNNING, unassigned and gone. Records the figures when `counted`.
    async fn once(&mut self, id: &str, counted: bool) -> anyhow::Result<Duration> {
        let task = assignment(id, &self.image, &self.node);
        let body = self.answer(Some(task))?;
        let rt = self.worker.runtime().clone();
        rt.take();
        let started = Instant::now();
        let answer: Assignments = serde_json::from_slice(&body)?;
        self.worker.apply(answer)?;
        wait_running(self.worker.outbox(), &TaskId::new(id)).await?;
        let took = started.elapsed();
        let calls = rt.take();
        let body = self.answer(None)?;
        self.worker.apply(serde_json::from_slice(&body)?)?;
        wait_gone(&*rt).await.with_context(|| format!("{} task {id}", rt.name()))?;
        if counted {
            self.totals.push(ms(took));
            let mut in_calls = Duration::ZERO;
            for (call, d) in calls {
                in_calls += d;
                self.calls.entry(call).or_default().push(ms(d));
            }
            self.rest.push(ms(took.saturating_sub(in_calls)));
        }
        Ok(took)
    }

    /// `12.3 ms (prepare 1.0 ms, start 9.9 ms, the rest 1.4 ms)`.
    fn summary(&self) -> String {
        let mut parts: Vec<String> =
            self.calls.iter().map(|(c, xs)| format!("{c} {:.1} ms", median(xs.clone()))).collect();
        parts.push(format!("the rest {:.1} ms", median(self.rest.clone())));
        format!("{:.1} ms ({})", median(self.totals.clone()), parts.join(", "))
    }
}

/// A task of the probe, as the dispatcher delivers it to `node`.
fn assignment(id: &str, image: &str, node: &NodeId) -> TaskAssignment {
    let mut task = Task {
        id: TaskId::new(id),
        service_id: ServiceId::new("benchservice"),
        slot: 1,
        node_id: Some(node.clone()),
        spec_version: 1,
        ..Task::default()
    };
    let c = &mut task.spec.container_spec;
    c.image = image.to_owned();
    c.command = vec!["flotilla".into(), "probe".into()];
    c.stop_grace_period = Some(Duration::from_secs(2));
    task.desired_state = TaskState::Running;
    task.status.state = TaskState::Assigned;
    task.status.message = "assigned".into();
    TaskAssignment {
        task,
        service_name: SERVICE.into(),
        service_labels: BTreeMap::new(),
        endpoint: Default::default(),
    }
}

/// Drains the outbox as the session does, until `id` is RUNNING.
async fn wait_running(outbox: &Outbox, id: &TaskId) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let batch = outbox.batch();
        outbox.sent(&batch);
        for u in batch.iter().filter(|u| u.task_id == *id) {
            match u.status.state {
                TaskState::Running => return Ok(()),
                s if s.is_terminal() => {
                    bail!("task {id} ended {s}: {} {}", u.status.message, u.status.err)
                }
                _ => {}
            }
        }
        tokio::time::timeout_at(deadline, outbox.queued.notified())
            .await
            .with_context(|| format!("task {id} not RUNNING within {DEADLINE:?}"))?;
    }
}

/// Waits until the runtime holds no task.
async fn wait_gone(rt: &impl Runtime) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if rt.list().await?.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("still held {DEADLINE:?} after it was unassigned");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills, when dropped, every task process group the process runtime left in its folder.
struct ProcessTasks {
    state_dir: PathBuf,
}

impl Drop for ProcessTasks {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.state_dir) else { return };
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

/// `docker run -d` of the probe until the engine shows the container running.
async fn docker_run(docker: &Docker, image: &str, name: &str, label: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = tokio::process::Command::new("docker")
        .args(["run", "-d", "--name", name, "--label", label, image, "flotilla", "probe"])
        .output()
        .await?;
    if !out.status.success() {
        bail!("docker run: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    loop {
        let c = docker.inspect_container(name, None).await?;
        if c.state.and_then(|s| s.running) == Some(true) {
            break;
        }
        if started.elapsed() > DEADLINE {
            bail!("container {name} not running within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    let force = RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(name, Some(force)).await?;
    Ok(ms(took))
}

/// `0.05 (goal ≤ 0.1: met)`.
fn ratio(x: f64, reference: f64, goal: f64) -> String {
    let r = x / reference;
    let verdict = if r <= goal { "met" } else { "not met" };
    format!("{r:.2}× (goal ≤ {goal}×: {verdict})")
}

/// Measures and prints part 1.
///
/// # Errors
/// A runtime cannot start, a task does not run, or a docker command fails.
pub async fn run(o: &Options, image: Option<&str>) -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let tag = format!("bench{}", std::process::id());
    let pdir = root.path().join("process-agent");
    let state_dir = pdir.join("process");
    let _process_tasks = ProcessTasks { state_dir: state_dir.clone() };
    let cfg = ProcessConfig {
        state_dir,
        secrets_dir: pdir.join("secrets"),
        flotilla_exe: o.flotilla.clone(),
    };
    let probe_image = image.unwrap_or("flotilla/probe");
    let node = NodeId::new(format!("{tag}p"));
    let mut process = Bench::new(ProcessRuntime::new(cfg)?, &pdir, node, probe_image).await?;

    let mut docker_side = None;
    if let Some(image) = image {
        let ddir = root.path().join("docker-agent");
        let node = NodeId::new(format!("{tag}d"));
        let guard = Containers { label: format!("{LABEL_NODE}={node}") };
        let cfg = DockerConfig {
            node_id: node.clone(),
            files_dir: ddir.join("docker-files"),
            secrets_dir: ddir.join("secrets"),
        };
        let rt = DockerRuntime::connect(cfg).await.context("the docker runtime")?;
        let version = rt.engine_version().to_owned();
        let bench = Bench::new(rt, &ddir, node, image).await?;
        let engine = Docker::connect_with_defaults()?.negotiate_version().await?;
        let run_guard = Containers { label: format!("{LABEL_BENCH}={tag}") };
        docker_side = Some((bench, guard, engine, run_guard, Vec::new(), version));
    }

    println!("== assignment -> running ({} runs after one warm-up)", o.runs);
    for i in 0..=o.runs {
        let counted = i > 0;
        let p = process.once(&format!("{tag}p{i}"), counted).await?;
        let mut line = format!("process {:.1} ms", ms(p));
        if let Some((bench, _, engine, run_guard, refs, _)) = docker_side.as_mut() {
            let d = bench.once(&format!("{tag}d{i}"), counted).await?;
            let name = format!("{tag}-run{i}");
            let r = docker_run(engine, &bench.image, &name, &run_guard.label).await?;
            if counted {
                refs.push(r);
            }
            line.push_str(&format!(", docker runtime {:.1} ms, docker run {r:.1} ms", ms(d)));
        }
        let which = if counted { format!("run {i}") } else { "warm-up".into() };
        println!("  {which}: {line}");
    }

    println!("assignment -> running, agent worker + task runner + runtime, median of {}:", o.runs);
    println!("  process runtime: {}", process.summary());
    if let Some((bench, _, _, _, refs, version)) = docker_side {
        let reference = median(refs);
        println!("  docker runtime: {}", bench.summary());
        println!("  docker run -d until running (engine {version}): {reference:.1} ms");
        let p = median(process.totals.clone());
        let d = median(bench.totals.clone());
        println!("  process / docker run: {}", ratio(p, reference, 0.1));
        println!("  docker runtime / docker run: {}", ratio(d, reference, 1.2));
    }
    Ok(())
}
