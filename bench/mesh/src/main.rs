//! The routing mesh's cost: a client talks to a stand-in task directly, then through the
//! mesh (`agent::mesh`, fed one route as the dispatcher would) on each of its data paths, all
//! on loopback, and the program prints the medians of several runs, naming the path of each
//! column:
//!
//! * the kernel path (nftables destination NAT; needs root and `nft`, else not measured and
//!   the reason printed);
//! * the userspace path (the agent's forwarder: accept, connect, splice).
//!
//! What is measured:
//!
//! * latency: p50 of a 64-byte request and its echo on one open connection, and of a new
//!   connection plus one such round trip;
//! * throughput: 512 MiB written on one connection to a task that reads and discards it
//!   (the clock stops at the task's acknowledgement of the last byte).
//!
//! ```text
//! cargo run --release -p bench-mesh -- [--runs 5]
//! ```

use agent::mesh::{Mesh, MeshPath};
use anyhow::{Context, bail};
use reconciler_api::mesh::{Backend, PublishedPort, RouteChange, Routes, RoutesKind};
use reconciler_types::{PortProtocol, TaskId};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROUND_TRIPS: usize = 20_000;
const CONNECTS: usize = 2_000;
const BULK: usize = 512 * 1024 * 1024;
const MESSAGE: usize = 64;

/// A stand-in task: echoes what it reads; a connection that starts with `S` is a sink that
/// reads to the end and answers one byte.
async fn task() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = l.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = c.set_nodelay(true);
                let mut buf = vec![0u8; 256 * 1024];
                let mut first = true;
                let mut sink = false;
                loop {
                    let n = match c.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if first {
                        sink = buf[0] == b'S';
                        first = false;
                    }
                    if !sink && c.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                if sink {
                    let _ = c.write_all(b"k").await;
                }
            });
        }
    });
    Ok(port)
}

/// The mesh on a free loopback port, forwarding it to `task_port` on `path`; answers the
/// port.
fn mesh(task_port: u16, path: MeshPath) -> anyhow::Result<(Mesh, u16)> {
    let published = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
    let port = PublishedPort { protocol: PortProtocol::Tcp, port: published };
    let mesh = Mesh::with_path(Ipv4Addr::LOCALHOST.into(), path)?;
    let backend = Backend { task_id: TaskId::new("t1"), addr: "127.0.0.1".into(), port: task_port };
    let routes = Routes {
        kind: RoutesKind::Complete,
        applies_to: 0,
        version: 1,
        changes: vec![
            RouteChange::Open { port, service: "bench".into() },
            RouteChange::Add { port, backend },
        ],
    };
    mesh.apply(routes)?;
    Ok((mesh, published))
}

async fn connect(port: u16) -> anyhow::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let c = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
    c.set_nodelay(true)?;
    Ok(c)
}

async fn round_trip(c: &mut TcpStream, msg: &[u8], buf: &mut [u8]) -> anyhow::Result<()> {
    c.write_all(msg).await?;
    c.read_exact(buf).await?;
    if buf != msg {
        bail!("the echo differs");
    }
    Ok(())
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// p50 of a round trip on one connection.
async fn latency(port: u16) -> anyhow::Result<Duration> {
    let mut c = connect(port).await?;
    let msg = [b'x'; MESSAGE];
    let mut buf = [0u8; MESSAGE];
    for _ in 0..1_000 {
        round_trip(&mut c, &msg, &mut buf).await?;
    }
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        round_trip(&mut c, &msg, &mut buf).await?;
        times.push(t.elapsed());
    }
    Ok(p50(times))
}

/// p50 of a new connection and one round trip.
async fn connect_latency(port: u16) -> anyhow::Result<Duration> {
    let msg = [b'x'; MESSAGE];
    let mut buf = [0u8; MESSAGE];
    let mut times = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        let t = Instant::now();
        let mut c = connect(port).await?;
        round_trip(&mut c, &msg, &mut buf).await?;
        times.push(t.elapsed());
    }
    Ok(p50(times))
}

/// MiB/s of a bulk write to the sink.
async fn throughput(port: u16) -> anyhow::Result<f64> {
    let mut c = connect(port).await?;
    let chunk = vec![b'S'; 256 * 1024];
    let t = Instant::now();
    let mut sent = 0;
    while sent < BULK {
        c.write_all(&chunk).await?;
        sent += chunk.len();
    }
    c.shutdown().await?;
    let mut ack = [0u8; 1];
    c.read_exact(&mut ack).await?;
    let secs = t.elapsed().as_secs_f64();
    Ok(sent as f64 / (1024.0 * 1024.0) / secs)
}

#[derive(Default)]
struct Runs {
    rtt: Vec<Duration>,
    connect: Vec<Duration>,
    mibs: Vec<f64>,
}

impl Runs {
    async fn measure(&mut self, port: u16) -> anyhow::Result<()> {
        self.rtt.push(latency(port).await?);
        self.connect.push(connect_latency(port).await?);
        self.mibs.push(throughput(port).await?);
        Ok(())
    }

    fn medians(&self) -> (Duration, Duration, f64) {
        let mut mibs = self.mibs.clone();
        mibs.sort_by(f64::total_cmp);
        (p50(self.rtt.clone()), p50(self.connect.clone()), mibs[mibs.len() / 2])
    }
}

fn runs_arg() -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(5),
        [flag, n] if flag == "--runs" => Ok(n.parse().context("--runs N")?),
        _ => bail!("usage: bench-mesh [--runs N]"),
    }
}

/// One column of the table: a name, the port measured, its runs.
struct Column {
    name: &'static str,
    port: u16,
    runs: Runs,
}

fn main() -> anyhow::Result<()> {
    let runs = runs_arg()?.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let task_port = task().await?;
        let (_user, user_port) = mesh(task_port, MeshPath::Userspace)?;
        let kernel = mesh(task_port, MeshPath::Kernel);
        let mut cols = vec![Column { name: "direct to the task", port: task_port, runs: Runs::default() }];
        let _kernel_mesh = match kernel {
            Ok((m, port)) => {
                let name = "mesh, kernel path (nftables DNAT)";
                cols.push(Column { name, port, runs: Runs::default() });
                Some(m)
            }
            Err(e) => {
                println!("kernel path not measured: {e:#}");
                None
            }
        };
        let name = "mesh, userspace path (splice forwarder)";
        cols.push(Column { name, port: user_port, runs: Runs::default() });
        for run in 1..=runs {
            // Rotate the order so that no column always runs on a warmer machine.
            let n = cols.len();
            for k in 0..n {
                let c = &mut cols[(k + run) % n];
                c.runs.measure(c.port).await?;
            }
            eprintln!("run {run}/{runs} done");
        }
        let medians: Vec<_> = cols.iter().map(|c| c.runs.medians()).collect();
        let (d_rtt, d_conn, d_mibs) = medians[0];
        let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
        let ratio = |m: Duration, d: Duration| m.as_secs_f64() / d.as_secs_f64();
        println!("routing mesh on loopback, median of {runs} runs (ratio: against direct)");
        println!("| path | p50 round trip, {MESSAGE} B on an open connection | p50 new connection + one round trip | throughput, 512 MiB on one connection |");
        println!("|---|---|---|---|");
        println!("| {} | {} | {} | {d_mibs:.0} MiB/s |", cols[0].name, us(d_rtt), us(d_conn));
        for (c, (rtt, conn, mibs)) in cols.iter().zip(&medians).skip(1) {
            println!(
                "| {} | {} ({:.2}×, goal ≤ 1.2×) | {} ({:.2}×) | {mibs:.0} MiB/s ({:.0} %, goal ≥ 80 %) |",
                c.name,
                us(*rtt),
                ratio(*rtt, d_rtt),
                us(*conn),
                ratio(*conn, d_conn),
                100.0 * mibs / d_mibs
            );
        }
        Ok(())
    })
}
