//! The routing mesh's cost: a client talks to a stand-in task directly, then through the
//! mesh (`agent::mesh`, the agent's own forwarder, fed one route as the dispatcher would),
//! all on loopback, and the program prints the medians of several runs:
//!
//! * latency: p50 of a 64-byte request and its echo on one open connection, and of a new
//!   connection plus one such round trip;
//! * throughput: 512 MiB written on one connection to a task that reads and discards it
//!   (the clock stops at the task's acknowledgement of the last byte).
//!
//! ```text
//! cargo run --release -p bench-mesh -- [--runs 5]
//! ```

use agent::mesh::Mesh;
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

/// The mesh on a free loopback port, forwarding it to `task_port`; answers the port.
fn mesh(task_port: u16) -> anyhow::Result<(Mesh, u16)> {
    let published = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
    let port = PublishedPort { protocol: PortProtocol::Tcp, port: published };
    let mesh = Mesh::new(Ipv4Addr::LOCALHOST.into());
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

fn main() -> anyhow::Result<()> {
    let runs = runs_arg()?.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let task_port = task().await?;
        let (_mesh, published) = mesh(task_port)?;
        let (mut direct, mut meshed) = (Runs::default(), Runs::default());
        for run in 1..=runs {
            // Alternate the order so that neither side always runs on a warmer machine.
            if run % 2 == 1 {
                direct.measure(task_port).await?;
                meshed.measure(published).await?;
            } else {
                meshed.measure(published).await?;
                direct.measure(task_port).await?;
            }
            eprintln!("run {run}/{runs} done");
        }
        let (d_rtt, d_conn, d_mibs) = direct.medians();
        let (m_rtt, m_conn, m_mibs) = meshed.medians();
        let ratio = |m: Duration, d: Duration| m.as_secs_f64() / d.as_secs_f64();
        println!("routing mesh on loopback, median of {runs} runs");
        println!("| measure | through the mesh | direct to the task | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| p50 round trip, {MESSAGE} B on an open connection | {:.1} µs | {:.1} µs | {:.2}× (goal ≤ 1.2×) |",
            m_rtt.as_secs_f64() * 1e6,
            d_rtt.as_secs_f64() * 1e6,
            ratio(m_rtt, d_rtt)
        );
        println!(
            "| p50 new connection + one round trip | {:.1} µs | {:.1} µs | {:.2}× |",
            m_conn.as_secs_f64() * 1e6,
            d_conn.as_secs_f64() * 1e6,
            ratio(m_conn, d_conn)
        );
        println!(
            "| throughput, 512 MiB on one connection | {:.0} MiB/s | {:.0} MiB/s | {:.0} % (goal ≥ 80 %) |",
            m_mibs,
            d_mibs,
            100.0 * m_mibs / d_mibs
        );
        Ok(())
    })
}
