//! `flotilla probe`: a built-in HTTP workload, so demos and tests need no image or program
//! from outside. It listens on `PORT` (or `--listen`) and answers:
//!
//! ```text
//! GET /                  {"version":V,"task":ID,"hostname":H}   (V from --version-label or PROBE_VERSION)
//! GET /health            200 ok, or 503 once told to fail
//! GET /fail-health       from now on /health answers 503
//! GET /exit?code=N       exits with code N
//! GET /file?path=P       the SHA-256 of a file (a config or secret), relative to the task
//! GET /slow?ms=N         answers after N milliseconds
//! ```
//!
//! Told by environment: `PROBE_START_DELAY` (listen only after it, a slow start),
//! `PROBE_FAIL_HEALTH=1` (unhealthy from the start), `PROBE_FAIL_HEALTH_AFTER` (unhealthy
//! after a while), `PROBE_EXIT_CODE` with `PROBE_EXIT_AFTER` (exit on its own),
//! `PROBE_IGNORE_STOP=1` (ignore SIGTERM and SIGINT, to be killed after the grace period),
//! `PROBE_UDP_ECHO=T` (also answer each UDP datagram on the node port of the service's
//! target port T, `FLOTILLA_PORT_T`, with `<task id> <the datagram>`).
//! Otherwise either signal ends it with code 0, as a server that shuts down cleanly (it
//! handles them itself, so it stops the same way as PID 1 of a container). Durations are
//! humantime (`1s`, `500ms`). Each request is logged on stdout.
//!
//! `flotilla probe check [URL]` is a health-check command: exit 0 when URL answers 2xx
//! within 5 s, 1 otherwise. The URL defaults to `/health`; one that starts with `/` is a path
//! on `http://127.0.0.1:$PORT`. Without `PORT` (a task that publishes no port) both the
//! server and `check` use port 8080, so `check` asks the probe that runs beside it.

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `flotilla probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(subcommand)]
    command: Option<ProbeCommand>,
    /// The version to report (default: $PROBE_VERSION, else "v1").
    #[arg(long)]
    version_label: Option<String>,
    /// Address to listen on (default: 0.0.0.0:$PORT, else 0.0.0.0:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum ProbeCommand {
    /// Exit 0 when URL answers 2xx (a health-check command).
    Check {
        /// The URL, or a path on http://127.0.0.1:$PORT (8080 without PORT; default /health).
        url: Option<String>,
    },
}

struct Probe {
    version: String,
    task: String,
    hostname: String,
    unhealthy: AtomicBool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_duration(name: &str) -> anyhow::Result<Option<Duration>> {
    env(name)
        .map(|v| {
            humantime::parse_duration(&v).with_context(|| format!("{name}={v:?} is not a duration"))
        })
        .transpose()
}

/// Runs `flotilla probe ...`.
pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        Some(ProbeCommand::Check { url }) => rt.block_on(check(url)),
        None => rt.block_on(serve(args.version_label, args.listen)),
    }
}

/// The port the server listens on without `--listen`, and `check` asks for a path: `PORT`
/// (the task's first port), else 8080.
const DEFAULT_PORT: u16 = 8080;

fn port(value: Option<&str>) -> anyhow::Result<u16> {
    value.map_or(Ok(DEFAULT_PORT), |p| {
        p.parse().with_context(|| format!("PORT={p:?} is not a port"))
    })
}

/// What `check` asks: a URL as given, or a path (default `/health`) on the local probe.
fn check_url(url: Option<String>, port_var: Option<&str>) -> anyhow::Result<String> {
    let url = url.unwrap_or_else(|| "/health".into());
    if url.starts_with('/') {
        return Ok(format!("http://127.0.0.1:{}{url}", port(port_var)?));
    }
    Ok(url)
}

async fn check(url: Option<String>) -> anyhow::Result<ExitCode> {
    let url = check_url(url, env("PORT").as_deref())?;
    let http = reconciler_api::http::http_client(Duration::from_secs(5))?;
    match http.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(r) => {
            println!("{url}: {}", r.status());
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            println!("{url}: {}", e.without_url());
            Ok(ExitCode::from(1))
        }
    }
}

async fn serve(version: Option<String>, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let probe = Arc::new(Probe {
        version: version.or_else(|| env("PROBE_VERSION")).unwrap_or_else(|| "v1".into()),
        task: env("FLOTILLA_TASK_ID").unwrap_or_default(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        unhealthy: AtomicBool::new(env("PROBE_FAIL_HEALTH").is_some_and(|v| v != "0")),
    });
    let addr = match listen {
        Some(a) => a,
        None => SocketAddr::from(([0, 0, 0, 0], port(env("PORT").as_deref())?)),
    };
    if let Some(d) = env_duration("PROBE_START_DELAY")? {
        println!("probe {} starting slowly: listening in {d:?}", probe.version);
        tokio::time::sleep(d).await;
    }
    if let Some(d) = env_duration("PROBE_FAIL_HEALTH_AFTER")? {
        let p = probe.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            println!("probe: failing health checks from now on");
            p.unhealthy.store(true, Ordering::SeqCst);
        });
    }
    if let Some(d) = env_duration("PROBE_EXIT_AFTER")? {
        let code: u8 = env("PROBE_EXIT_CODE").map(|c| c.parse()).transpose()?.unwrap_or(0);
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            println!("probe: exiting with code {code}");
            std::process::exit(i32::from(code));
        });
    }
    watch_stop_signals(env("PROBE_IGNORE_STOP").is_some_and(|v| v != "0"))?;
    if let Some(target) = env("PROBE_UDP_ECHO") {
        let var = format!("FLOTILLA_PORT_{target}");
        let port =
            env(&var).with_context(|| format!("PROBE_UDP_ECHO={target}: {var} is not set"))?;
        let port: u16 = port.parse().with_context(|| format!("{var}={port:?} is not a port"))?;
        let socket = tokio::net::UdpSocket::bind(SocketAddr::from((addr.ip(), port)))
            .await
            .with_context(|| format!("cannot listen on udp port {port}"))?;
        println!("probe {} echoing udp on {}", probe.version, socket.local_addr()?);
        tokio::spawn(udp_echo(socket, probe.task.clone()));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("probe {} listening on {}", probe.version, listener.local_addr()?);
    let app = Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/fail-health", get(fail_health))
        .route("/exit", get(exit))
        .route("/file", get(file))
        .route("/slow", get(slow))
        .with_state(probe);
    axum::serve(listener, app).await.context("probe server failed")?;
    bail!("probe server stopped")
}

/// Answers each datagram with `<task> <datagram>`.
async fn udp_echo(socket: tokio::net::UdpSocket, task: String) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        let mut reply = format!("{task} ").into_bytes();
        reply.extend_from_slice(&buf[..n]);
        let _ = socket.send_to(&reply, from).await;
    }
}

async fn root(State(p): State<Arc<Probe>>) -> String {
    println!("GET /");
    let body = serde_json::json!({"version": p.version, "task": p.task, "hostname": p.hostname});
    format!("{body}\n")
}

async fn health(State(p): State<Arc<Probe>>) -> (StatusCode, &'static str) {
    if p.unhealthy.load(Ordering::SeqCst) {
        println!("GET /health: unhealthy");
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn fail_health(State(p): State<Arc<Probe>>) -> &'static str {
    println!("GET /fail-health");
    p.unhealthy.store(true, Ordering::SeqCst);
    "health checks fail from now on\n"
}

async fn exit(Query(q): Query<HashMap<String, String>>) -> &'static str {
    let code: i32 = q.get("code").and_then(|c| c.parse().ok()).unwrap_or(0);
    println!("GET /exit: exiting with code {code}");
    tokio::spawn(async move {
        // Answer first, then exit.
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::process::exit(code);
    });
    "exiting\n"
}

async fn file(Query(q): Query<HashMap<String, String>>) -> (StatusCode, String) {
    let Some(path) = q.get("path") else {
        return (StatusCode::BAD_REQUEST, "give ?path=FILE\n".into());
    };
    println!("GET /file?path={path}");
    match std::fs::read(path) {
        Ok(bytes) => {
            let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            (StatusCode::OK, format!("{hex}\n"))
        }
        Err(e) => (StatusCode::NOT_FOUND, format!("{path}: {e}\n")),
    }
}

async fn slow(Query(q): Query<HashMap<String, String>>) -> &'static str {
    let ms: u64 = q.get("ms").and_then(|c| c.parse().ok()).unwrap_or(1000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow\n"
}

/// Handles SIGTERM and SIGINT: exit 0, or carry on when `ignore`.
fn watch_stop_signals(ignore: bool) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [(SignalKind::terminate(), "SIGTERM"), (SignalKind::interrupt(), "SIGINT")]
    {
        let mut stream = signal(kind).with_context(|| format!("cannot handle {name}"))?;
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if ignore {
                    println!("probe: ignoring {name}");
                } else {
                    println!("probe: stopping on {name}");
                    std::process::exit(0);
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_asks_the_port_the_server_listens_on_with_or_without_port() {
        // Without PORT (a task that publishes no port) the server listens on 8080: so does
        // check ask, instead of refusing.
        assert_eq!(check_url(None, None).unwrap(), "http://127.0.0.1:8080/health");
        assert_eq!(port(None).unwrap(), 8080);
        assert_eq!(
            check_url(Some("/ready".into()), Some("41000")).unwrap(),
            "http://127.0.0.1:41000/ready"
        );
        assert_eq!(port(Some("41000")).unwrap(), 41000);
        assert_eq!(check_url(Some("http://h:1/x".into()), None).unwrap(), "http://h:1/x");
        assert!(check_url(None, Some("eighty")).is_err());
        assert!(port(Some("70000")).is_err());
    }
}
