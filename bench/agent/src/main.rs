//! Benchmark of the agent (issue 12), printing medians of several runs:
//!
//! 1. **Assignment → running**: the agent's own path (`agent::worker::Worker`, one task
//!    runner, the task state machine and the runtime) handed a dispatcher answer (JSON, as
//!    the session receives it), timed until the runner queues RUNNING in the outbox the
//!    session reports from. For the process runtime and the docker runtime, next to
//!    `docker run -d` of the same image on the same engine until the container runs.
//! 2. **Rolling update** of 6 replicas (parallelism 2, delay 0, monitor 100 ms), start-first
//!    and stop-first: a real `flotilla manager` and one real `flotilla agent` (process
//!    runtime), from the update's API call until the service's update status is completed;
//!    next to the same update on Swarm on the local engine (`docker service update`).
//! 3. **Idle cost**: the agent's resident memory and CPU while it holds 100 running tasks.
//!
//! ```text
//!  start:  dispatcher answer ─► Worker::apply ─► runner: ACCEPTED … STARTING ─► RUNNING (outbox)
//!          `docker run -d IMAGE flotilla probe` ─► inspect: State.Running
//!  update: update_service ─► leader loop ─► agent ─► … ─► update status `completed`
//!          `docker service update` ─► swarmkit ─► … ─► UpdateStatus.State `completed`
//!  idle:   100 replicas RUNNING ─► /proc/<agent>/{status,stat} over --idle-secs
//! ```
//!
//! The docker image is `FROM scratch` around the static `flotilla` binary (as the docker
//! runtime suite builds it), tagged by the binary's size and time and kept for the next run.
//! Every container, swarm and task process the benchmark made is removed when it ends, on an
//! error or on Ctrl-C.
//!
//! ```text
//! cargo build --release -p flotilla -p bench-agent
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p flotilla \
//!     --target x86_64-unknown-linux-gnu
//! target/release/bench-agent [--runs 20] [--update-runs 5] [--swarm-runs 3] [--tasks 100]
//!     [--idle-secs 10] [--only start|update|idle] [--skip-docker] [--skip-swarm]
//!     [--swarm-lock FILE] [--flotilla PATH] [--static-flotilla PATH]
//! ```

mod docker;
mod idle;
mod start;
mod timed;
mod update;

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::time::Duration;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs of each start measurement.
    pub runs: usize,
    /// Rolling updates measured on flotilla, per order.
    pub update_runs: usize,
    /// Rolling updates measured on Swarm, per order.
    pub swarm_runs: usize,
    /// Tasks the agent holds for the idle measurement.
    pub tasks: u64,
    /// How long the idle CPU is measured.
    pub idle: Duration,
    /// Only this part (`start`, `update` or `idle`).
    pub only: Option<String>,
    /// No Docker at all (process runtime and flotilla only).
    pub skip_docker: bool,
    /// No Swarm.
    pub skip_swarm: bool,
    /// A file locked (flock, exclusive) while the engine is in a swarm.
    pub swarm_lock: Option<PathBuf>,
    /// The `flotilla` binary the managers, the agent and the task supervisors run.
    pub flotilla: PathBuf,
    /// The static `flotilla` binary the image is made of.
    pub static_flotilla: PathBuf,
}

impl Options {
    fn wants(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == part)
    }
}

fn parse_args() -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let static_default = dir.parent().map(|t| t.join(&triple).join("release/flotilla"));
    let mut o = Options {
        runs: 20,
        update_runs: 5,
        swarm_runs: 3,
        tasks: 100,
        idle: Duration::from_secs(10),
        only: None,
        skip_docker: false,
        skip_swarm: false,
        swarm_lock: None,
        flotilla: dir.join("flotilla"),
        static_flotilla: static_default.unwrap_or_default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--skip-docker" => {
                o.skip_docker = true;
                continue;
            }
            "--skip-swarm" => {
                o.skip_swarm = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--runs" => o.runs = value.parse::<usize>()?.max(1),
            "--update-runs" => o.update_runs = value.parse::<usize>()?.max(1),
            "--swarm-runs" => o.swarm_runs = value.parse::<usize>()?.max(1),
            "--tasks" => o.tasks = value.parse::<u64>()?.max(1),
            "--idle-secs" => o.idle = Duration::from_secs(value.parse::<u64>()?.max(1)),
            "--only" if ["start", "update", "idle"].contains(&value.as_str()) => {
                o.only = Some(value);
            }
            "--swarm-lock" => o.swarm_lock = Some(value.into()),
            "--flotilla" => o.flotilla = value.into(),
            "--static-flotilla" => o.static_flotilla = value.into(),
            other => bail!("unknown flag {other} {value}"),
        }
    }
    if !o.flotilla.exists() {
        bail!(
            "no flotilla binary at {}; build it (-p flotilla) or pass --flotilla",
            o.flotilla.display()
        );
    }
    // Task supervisors run it from their own folders.
    o.flotilla = std::fs::canonicalize(&o.flotilla)?;
    if !o.skip_docker && !o.static_flotilla.exists() {
        bail!(
            "no static flotilla binary at {} for the image; build it with \
             RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p flotilla \
             --target {triple}, pass --static-flotilla, or --skip-docker",
            o.static_flotilla.display()
        );
    }
    Ok(o)
}

/// The median (the upper one of an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(o: Options) -> anyhow::Result<()> {
    let image = if o.skip_docker { None } else { Some(docker::image(&o.static_flotilla)?) };
    if o.wants("start") {
        start::run(&o, image.as_deref()).await?;
    }
    if o.wants("update") {
        update::run(&o, image.as_deref()).await?;
    }
    if o.wants("idle") {
        idle::run(&o).await?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = parse_args()?;
    // The in-process agent's log, as `flotilla agent` writes it (`FLOTILLA_LOG`, default
    // errors only).
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOTILLA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        // On Ctrl-C or SIGTERM the run is dropped: every guard it holds removes what it made.
        tokio::select! {
            r = run(o) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted; cleaned up"),
            _ = term.recv() => bail!("terminated; cleaned up"),
        }
    })
}
