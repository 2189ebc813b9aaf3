//! Benchmark of the leader loop and the dispatcher at scale: three real `flotilla manager`
//! processes on loopback and many fake nodes (`reconciler-testkit`, the real dispatcher
//! protocol over mutual TLS), then `service scale` of one service to many replicas.
//!
//! Prints the time from the scale's acknowledgement until every task is placed and delivered
//! to its node (each fake node counts the tasks it was sent; the leader commits a placement
//! through Raft before any node can see it), until every task is reported running, and the
//! leader loop's Raft batches, decisions and pass times (from the managers' status): each run
//! on a fresh cluster, then the medians.
//!
//! ```text
//! cargo build --release -p flotilla -p bench-cluster
//! target/release/bench-scale [--nodes 1000] [--replicas 100000] [--runs 3] [--flotilla PATH]
//! ```
//!
//! With `BENCH_TRACE=1` in the environment it also prints, every 100 ms of a run, how many
//! tasks the nodes have received (to see where the time goes: the pass, then the delivery).

use anyhow::{Context, bail};
use reconciler_api::ApiClient;
use reconciler_api::operator::LeaderLoopStats;
use reconciler_testkit::fake_agent::{self, FakeAgent, FakeNode};
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{ServiceMode, ServiceSpec};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

struct Options {
    nodes: usize,
    replicas: u64,
    runs: usize,
    binary: PathBuf,
}

/// What one run measured.
struct Figures {
    assigned: Duration,
    running: Duration,
    entries: u64,
    decisions: u64,
    /// The highest Raft term among the managers before the scale and after it: each election
    /// in between raised it (elections following one another under load would show here).
    terms: (u64, u64),
}

fn parse_args() -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    let sibling = exe.parent().map(|d| d.join("flotilla")).unwrap_or_default();
    let mut o = Options { nodes: 1000, replicas: 100_000, runs: 3, binary: sibling };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => o.nodes = value.parse()?,
            "--replicas" => o.replicas = value.parse()?,
            "--runs" => o.runs = value.parse::<usize>()?.max(1),
            "--flotilla" => o.binary = value.into(),
            other => bail!("unknown flag {other}"),
        }
    }
    if !o.binary.exists() {
        bail!("no flotilla binary at {}; build it or pass --flotilla", o.binary.display());
    }
    Ok(o)
}

async fn start_nodes(
    cluster: &ProcessCluster,
    root: &std::path::Path,
    n: usize,
) -> anyhow::Result<Vec<FakeAgent>> {
    let worker = cluster.client(0)?.join_token("worker", false).await?.token;
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..n {
        let (addr, token) = (cluster.managers[i % 3].addr.clone(), worker.clone());
        let dir = root.join(format!("n{i}"));
        joins.spawn(async move {
            let node = FakeNode::named(&format!("n{i}"));
            FakeAgent::start(&addr, &token, false, &dir, node, fake_agent::healthy()).await
        });
    }
    let mut agents = Vec::new();
    while let Some(joined) = joins.join_next().await {
        agents.push(joined??);
    }
    Ok(agents)
}

async fn wait_ready(client: &ApiClient, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let nodes = client.nodes().await.unwrap_or_default();
        let ready = nodes.iter().filter(|v| v.status == reconciler_types::NodeState::Ready);
        if ready.count() >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the fake nodes did not all become ready")
}

async fn leader_stats(cluster: &ProcessCluster) -> anyhow::Result<LeaderLoopStats> {
    let leader = cluster.leader().await?;
    Ok(cluster.client(leader)?.status().await?.leader_loop)
}

/// The highest Raft term any manager reports.
async fn highest_term(cluster: &ProcessCluster) -> anyhow::Result<u64> {
    let mut term = 0;
    for i in 0..cluster.managers.len() {
        term = term.max(cluster.client(i)?.status().await?.term);
    }
    Ok(term)
}

async fn measure(o: &Options) -> anyhow::Result<Figures> {
    let root = tempfile::tempdir()?;
    let cluster = ProcessCluster::start(&o.binary, &root.path().join("m"), 3).await?;
    let client = cluster.client(cluster.leader().await?)?;
    let joined = Instant::now();
    let agents = start_nodes(&cluster, root.path(), o.nodes).await?;
    wait_ready(&client, o.nodes).await?;
    println!("{} fake nodes joined and ready in {:.1} s", o.nodes, joined.elapsed().as_secs_f64());
    let mut spec = ServiceSpec { name: "scale".into(), ..ServiceSpec::default() };
    spec.task_template.container_spec.image = "probe:v1".into();
    spec.mode = ServiceMode::Replicated { replicas: 0 };
    let created = client.create_service(&spec).await?;
    let before = leader_stats(&cluster).await?;
    let term_before = highest_term(&cluster).await?;
    spec.mode = ServiceMode::Replicated { replicas: o.replicas };
    let start = Instant::now();
    client.update_service(created.id.as_str(), created.version, &spec).await?;
    let target = usize::try_from(o.replicas)?;
    let mut assigned = None;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let running = loop {
        if Instant::now() > deadline {
            bail!("the tasks did not all run within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let delivered: usize = agents.iter().map(FakeAgent::tasks_seen).sum();
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprintln!("trace {:.1} s delivered {delivered}", start.elapsed().as_secs_f64());
        }
        if assigned.is_none() && delivered >= target {
            assigned = Some(start.elapsed());
        }
        if assigned.is_none() {
            continue;
        }
        let services = client.services().await?;
        let status = services.iter().find(|s| s.id == created.id).and_then(|s| s.status);
        if status.is_some_and(|s| s.running_tasks >= o.replicas) {
            break start.elapsed();
        }
    };
    let after = leader_stats(&cluster).await?;
    let term_after = highest_term(&cluster).await?;
    drop(agents);
    let f = Figures {
        assigned: assigned.unwrap_or(running),
        running,
        entries: after.batches - before.batches,
        decisions: after.decisions - before.decisions,
        terms: (term_before, term_after),
    };
    println!(
        "  run: delivered {:.2} s, running {:.2} s, {} Raft entries, {} decisions, passes {:.1} ms, \
         Raft term {} -> {}",
        f.assigned.as_secs_f64(),
        f.running.as_secs_f64(),
        f.entries,
        f.decisions,
        (after.pass_micros - before.pass_micros) as f64 / 1000.0,
        f.terms.0,
        f.terms.1
    );
    Ok(f)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

async fn run(o: Options) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for _ in 0..o.runs {
        all.push(measure(&o).await?);
    }
    let assigned = median(all.iter().map(|f| f.assigned).collect());
    let running = median(all.iter().map(|f| f.running).collect());
    let entries = all.last().map_or(0, |f| f.entries);
    let rate = |d: Duration| o.replicas as f64 / d.as_secs_f64();
    println!(
        "three managers, {} fake nodes, service scaled 0 -> {}, median of {} runs:",
        o.nodes, o.replicas, o.runs
    );
    println!(
        "  every task placed, committed and delivered to its node: {:.2} s ({:.0} tasks/s)",
        assigned.as_secs_f64(),
        rate(assigned)
    );
    println!(
        "  every task reported running: {:.2} s ({:.0} tasks/s)",
        running.as_secs_f64(),
        rate(running)
    );
    println!("  Raft entries written by the leader loop (last run): {entries}");
    let elections: u64 = all.iter().map(|f| f.terms.1 - f.terms.0).sum();
    println!("  elections during the scale (Raft terms gained), all runs: {elections}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = parse_args()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(o))
}
