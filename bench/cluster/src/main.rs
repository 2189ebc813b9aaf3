//! Benchmark of the manager cluster: three real `flotilla manager` processes on loopback.
//!
//! Prints, as medians of several runs:
//! - writes acknowledged per second through the API (concurrent clients, to the leader);
//! - the same writes on a cluster started with `--insecure-listen` (plain HTTP between the
//!   managers and to the API), for what mutual TLS costs;
//! - failover time: from `kill -9` of the leader to the first write acknowledged by the new
//!   leader (Swarm's managers take about 10 s with their default election settings), and
//!   where it goes: when a survivor started an election (its term rose: the loss of the
//!   leader detected), when one reported itself leader, when the write was acknowledged
//!   (each survivor's status polled every 2 ms).
//!
//! ```text
//! cargo build --release -p flotilla -p bench-cluster
//! target/release/bench-cluster [--runs 5] [--writes 2000] [--clients 16] [--flotilla PATH]
//! ```

use anyhow::{Context, bail};
use reconciler_api::{ApiClient, ApiError, ClientError};
use reconciler_store::{Expect, StoreCommand};
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{Node, NodeId};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

struct Options {
    runs: usize,
    writes: usize,
    clients: usize,
    binary: PathBuf,
}

fn parse_args() -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    let sibling = exe.parent().map(|d| d.join("flotilla")).unwrap_or_default();
    let mut o = Options { runs: 5, writes: 2000, clients: 16, binary: sibling };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--runs" => o.runs = value.parse()?,
            "--writes" => o.writes = value.parse()?,
            "--clients" => o.clients = value.parse()?,
            "--flotilla" => o.binary = value.into(),
            other => bail!("unknown flag {other}"),
        }
    }
    if !o.binary.exists() {
        bail!(
            "no flotilla binary at {}; build it (-p flotilla) or pass --flotilla",
            o.binary.display()
        );
    }
    Ok(o)
}

fn put(name: String) -> StoreCommand {
    StoreCommand::PutNode {
        node: Box::new(Node { id: NodeId::new(name), ..Node::default() }),
        expected: Expect::Absent,
    }
}

async fn throughput(cluster: &ProcessCluster, leader: usize, o: &Options) -> anyhow::Result<f64> {
    let client = cluster.client(leader)?;
    let per_client = o.writes / o.clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let client: ApiClient = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                client.write(put(format!("t{c}-{i}"))).await?;
            }
            Ok::<_, ClientError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per_client * o.clients) as f64 / start.elapsed().as_secs_f64())
}

/// What one failover took, each figure from the `kill -9` of the leader.
struct Failover {
    /// A surviving manager started an election (its term rose): how long the loss of the
    /// leader took to detect (the leader's lease plus the survivor's election timeout).
    election_started: Duration,
    /// A surviving manager reported itself the leader of the new term.
    elected: Duration,
    /// The first write was acknowledged (through the survivors' API, as a client would).
    acknowledged: Duration,
}

/// Polls one survivor's status until it reports a term past `term` and then itself as the
/// leader of a newer term; returns when each was first seen (from `killed`), or `None` when
/// the survivor never saw it before the failover ended.
async fn watch_survivor(
    client: ApiClient,
    term: u64,
    killed: Instant,
) -> (Option<Duration>, Option<Duration>) {
    let (mut started, mut elected) = (None, None);
    while killed.elapsed() < Duration::from_secs(60) {
        if let Ok(s) = client.status().await {
            if s.term > term && started.is_none() {
                started = Some(killed.elapsed());
            }
            if s.term > term && s.leader == Some(s.raft_id) {
                elected = Some(killed.elapsed());
                break;
            }
            if s.term > term && s.leader.is_some() {
                // Another survivor leads: it reports its own election.
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (started, elected)
}

async fn failover(cluster: &mut ProcessCluster, leader: usize) -> anyhow::Result<Failover> {
    let others: Vec<usize> = (0..cluster.managers.len()).filter(|i| *i != leader).collect();
    let clients: Vec<ApiClient> =
        others.iter().map(|i| cluster.client(*i)).collect::<Result<_, _>>()?;
    let watchers: Vec<ApiClient> =
        others.iter().map(|i| cluster.client(*i)).collect::<Result<_, _>>()?;
    let term = cluster.client(leader)?.status().await?.term;
    let killed = Instant::now();
    cluster.kill(leader)?;
    let watches: Vec<_> =
        watchers.into_iter().map(|c| tokio::spawn(watch_survivor(c, term, killed))).collect();
    let mut n = 0u64;
    let mut acknowledged = None;
    'retry: while killed.elapsed() < Duration::from_secs(60) {
        for c in &clients {
            n += 1;
            match c.write(put(format!("f{n}"))).await {
                Ok(_) | Err(ClientError::Api(ApiError::Conflict(_))) => {
                    acknowledged = Some(killed.elapsed());
                    break 'retry;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
    let Some(acknowledged) = acknowledged else {
        bail!("no write was acknowledged within 60 s of killing the leader")
    };
    let (mut started, mut elected) = (Vec::new(), Vec::new());
    for w in watches {
        let (s, e) = w.await?;
        started.extend(s);
        elected.extend(e);
    }
    Ok(Failover {
        election_started: started.into_iter().min().unwrap_or(acknowledged),
        elected: elected.into_iter().min().unwrap_or(acknowledged),
        acknowledged,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn run(o: Options) -> anyhow::Result<()> {
    let mut rates = Vec::new();
    let mut plain_rates = Vec::new();
    let mut failovers = Vec::new();
    for run in 1..=o.runs {
        let root = tempfile::tempdir()?;
        let plain_dir = root.path().join("plain");
        let plain = ProcessCluster::start_with(&o.binary, &plain_dir, 3, true).await?;
        let plain_rate = throughput(&plain, plain.leader().await?, &o).await?;
        drop(plain);
        let mut cluster = ProcessCluster::start(&o.binary, &root.path().join("tls"), 3).await?;
        let leader = cluster.leader().await?;
        let rate = throughput(&cluster, leader, &o).await?;
        let f = failover(&mut cluster, leader).await?;
        println!(
            "run {run}: {rate:.0} writes/s (plain HTTP {plain_rate:.0}), failover {:.0} ms \
             (election started {:.0} ms, leader elected {:.0} ms)",
            ms(f.acknowledged),
            ms(f.election_started),
            ms(f.elected)
        );
        rates.push(rate);
        plain_rates.push(plain_rate);
        failovers.push(f);
    }
    println!(
        "three managers on loopback, {} writes by {} clients, median of {} runs:",
        o.writes, o.clients, o.runs
    );
    let (tls, plain) = (median(rates), median(plain_rates));
    println!("  writes acknowledged per second: {tls:.0}");
    println!(
        "  the same with --insecure-listen (plain HTTP): {plain:.0} (mutual TLS keeps {:.0} %)",
        100.0 * tls / plain
    );
    let of = |f: fn(&Failover) -> f64| median(failovers.iter().map(f).collect());
    let started = of(|f| ms(f.election_started));
    let elected = of(|f| ms(f.elected));
    let acked = of(|f| ms(f.acknowledged));
    println!("  failover (leader kill -9 -> first acknowledged write): {acked:.0} ms");
    println!(
        "    loss detected, a survivor starts an election: {started:.0} ms; \
         it is elected: {elected:.0} ms; the write is acknowledged: {acked:.0} ms"
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let o = parse_args()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(o))
}
