//! The agent's idle cost: a real manager and one real `flotilla agent` (process runtime)
//! holding `--tasks` running `flotilla probe` tasks; once all run and the reports have
//! settled, the agent's resident memory (RSS, and PSS: shared pages split among the
//! processes that map them) and its CPU over `--idle-secs`, from `/proc`. The tasks'
//! supervisors (`flotilla agent-shim`, one per task) are reported beside it.

use crate::Options;
use crate::update::{converged, spec};
use anyhow::{Context, bail};
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{ServiceMode, UpdateOrder};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// Memory and CPU time of one process.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    rss_kib: u64,
    pss_kib: u64,
    cpu_ticks: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            rss_kib: self.rss_kib + o.rss_kib,
            pss_kib: self.pss_kib + o.pss_kib,
            cpu_ticks: self.cpu_ticks + o.cpu_ticks,
        }
    }
}

/// `Name:   1234 kB` from a `/proc` file.
fn kib(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

fn usage(pid: u32) -> anyhow::Result<Usage> {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(proc.join("status"))?;
    let rollup = std::fs::read_to_string(proc.join("smaps_rollup")).unwrap_or_default();
    let stat = std::fs::read_to_string(proc.join("stat"))?;
    // Fields after the command (which may hold spaces) in parentheses: utime is the 14th
    // field of the line, stime the 15th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Ok(Usage {
        rss_kib: kib(&status, "VmRSS:"),
        pss_kib: kib(&rollup, "Pss:"),
        cpu_ticks: tick(11) + tick(12),
    })
}

/// The supervisors of the agent's tasks: `<flotilla> agent-shim <task folder under dir>`.
fn shims(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args.get(1) == Some(&b"agent-shim".as_slice())
            && args
                .get(2)
                .is_some_and(|d| Path::new(&*String::from_utf8_lossy(d)).starts_with(dir));
        if is_shim {
            pids.push(pid);
        }
    }
    pids
}

fn total(pids: &[u32]) -> Usage {
    pids.iter().filter_map(|p| usage(*p).ok()).fold(Usage::default(), |a, b| a + b)
}

fn mib(k: u64) -> f64 {
    k as f64 / 1024.0
}

/// Measures and prints part 3.
///
/// # Errors
/// The cluster does not start or the tasks do not all run.
pub async fn run(o: &Options) -> anyhow::Result<()> {
    println!("== idle agent with {} running tasks ({} s)", o.tasks, o.idle.as_secs());
    let root = tempfile::tempdir()?;
    let cluster = ProcessCluster::start(&o.flotilla, root.path(), 1).await?;
    let agent = cluster.start_agent(root.path(), "a1", "warn").await?;
    let pid = agent.pid().context("the agent is not running")?;
    let c = cluster.client(0)?;
    let name = "bench_idle";
    let mut s = spec(name, UpdateOrder::StopFirst, "v0");
    s.mode = ServiceMode::Replicated { replicas: o.tasks };
    let created = Instant::now();
    c.create_service(&s).await?;
    converged(&c, name, "v0", o.tasks).await?;
    println!("  {} tasks running {:.1} s after the service was created", o.tasks, {
        created.elapsed().as_secs_f64()
    });
    // Let the last reports and their acknowledgements pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shim_pids = shims(&agent.dir);
    if shim_pids.len() as u64 != o.tasks {
        bail!("{} task supervisors found for {} tasks", shim_pids.len(), o.tasks);
    }
    let (a0, s0, t0) = (usage(pid)?, total(&shim_pids), Instant::now());
    tokio::time::sleep(o.idle).await;
    let (a1, s1, secs) = (usage(pid)?, total(&shim_pids), t0.elapsed().as_secs_f64());
    // `/proc` counts CPU time in ticks: no tick in the window is under one tick's share.
    let cpu = |u0: Usage, u1: Usage| {
        let ticks = u1.cpu_ticks.saturating_sub(u0.cpu_ticks);
        let tick_share = 100.0 / TICKS_PER_SEC / secs;
        match ticks {
            0 => format!("under {tick_share:.2} %"),
            n => format!("{:.2} %", n as f64 * tick_share),
        }
    };
    println!(
        "  agent: RSS {:.1} MiB (PSS {:.1} MiB), CPU {} of one core over {secs:.0} s",
        mib(a1.rss_kib),
        mib(a1.pss_kib),
        cpu(a0, a1)
    );
    println!(
        "  its {} task supervisors (agent-shim): RSS {:.1} MiB in all, PSS {:.1} MiB \
         ({:.2} MiB each), CPU {} of one core",
        shim_pids.len(),
        mib(s1.rss_kib),
        mib(s1.pss_kib),
        mib(s1.pss_kib) / shim_pids.len() as f64,
        cpu(s0, s1)
    );
    c.remove_service(name).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while agent.task_dirs() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(agent);
    drop(cluster);
    Ok(())
}
