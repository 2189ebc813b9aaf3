//! Rolling update of 6 replicas (parallelism 2, delay 0, monitor 100 ms), start-first and
//! stop-first, from the update command until the service's update status is `completed`:
//! on flotilla (a real manager and one real process agent; the service inspected and
//! updated through the API, as `flotilla service update` does), and on Swarm on the local
//! engine (`docker service update --detach`, the scratch probe image). Each update changes
//! `PROBE_VERSION`; both sides are polled every 10 ms.

use crate::docker::{Swarm, docker, docker_out};
use crate::{Options, median};
use anyhow::{Context, bail};
use bollard::Docker;
use bollard::models::{ServiceUpdateStatusStateEnum, TaskState as SwarmTaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;
use reconciler_api::ApiClient;
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{ServiceMode, ServiceSpec, TaskState, UpdateOrder, UpdateState};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

const REPLICAS: u64 = 6;
const POLL: Duration = Duration::from_millis(10);
const DEADLINE: Duration = Duration::from_secs(120);

fn order_name(order: UpdateOrder) -> &'static str {
    match order {
        UpdateOrder::StartFirst => "start-first",
        UpdateOrder::StopFirst => "stop-first",
    }
}

const ORDERS: [UpdateOrder; 2] = [UpdateOrder::StartFirst, UpdateOrder::StopFirst];

/// The probe service of `REPLICAS` replicas with the benchmark's update config.
pub fn spec(name: &str, order: UpdateOrder, version: &str) -> ServiceSpec {
    let mut spec = ServiceSpec { name: name.into(), ..ServiceSpec::default() };
    spec.mode = ServiceMode::Replicated { replicas: REPLICAS };
    let c = &mut spec.task_template.container_spec;
    c.image = "flotilla/probe".into();
    c.command = vec!["flotilla".into(), "probe".into()];
    c.env = vec![format!("PROBE_VERSION={version}")];
    c.stop_grace_period = Some(Duration::from_secs(2));
    let u = &mut spec.update_config;
    u.parallelism = 2;
    u.delay = Duration::ZERO;
    u.monitor = Duration::from_millis(100);
    u.order = order;
    spec
}

/// Waits until the service runs `replicas` tasks of `version` and nothing else is meant to.
pub async fn converged(
    c: &ApiClient,
    name: &str,
    version: &str,
    replicas: u64,
) -> anyhow::Result<()> {
    let env = format!("PROBE_VERSION={version}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(t) = c.service_tasks(name).await {
            let meant: Vec<_> =
                t.tasks.iter().filter(|v| v.task.desired_state <= TaskState::Running).collect();
            let running = meant.iter().filter(|v| {
                v.task.status.state == TaskState::Running
                    && v.task.spec.container_spec.env.contains(&env)
            });
            if meant.len() as u64 == replicas && running.count() as u64 == replicas {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{name} did not converge on {version} within {DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One update on flotilla: inspect, update, poll until completed (seconds).
async fn flotilla_update(c: &ApiClient, spec: &ServiceSpec) -> anyhow::Result<f64> {
    let started = Instant::now();
    let info = c.inspect_service(&spec.name).await?.service;
    let before = info.update_status.and_then(|s| s.started_at);
    c.update_service(&spec.name, info.version, spec).await?;
    loop {
        let s = c.inspect_service(&spec.name).await?.service;
        if let Some(u) = s.update_status
            && u.started_at != before
        {
            match u.state {
                UpdateState::Completed => return Ok(started.elapsed().as_secs_f64()),
                UpdateState::Updating => {}
                other => bail!("the update of {} went {other}: {}", spec.name, u.message),
            }
        }
        if started.elapsed() > DEADLINE {
            bail!("the update of {} did not complete within {DEADLINE:?}", spec.name);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Rolling updates on flotilla: medians per order (seconds).
async fn on_flotilla(o: &Options) -> anyhow::Result<Vec<f64>> {
    let root = tempfile::tempdir()?;
    let cluster = ProcessCluster::start(&o.flotilla, root.path(), 1).await?;
    let agent = cluster.start_agent(root.path(), "a1", "warn").await?;
    let c = cluster.client(0)?;
    let mut medians = Vec::new();
    for order in ORDERS {
        let name = format!("bench_{}", order_name(order).replace('-', "_"));
        c.create_service(&spec(&name, order, "v0")).await?;
        converged(&c, &name, "v0", REPLICAS).await?;
        let mut took = Vec::new();
        for i in 1..=o.update_runs {
            let version = format!("v{i}");
            let s = flotilla_update(&c, &spec(&name, order, &version)).await?;
            converged(&c, &name, &version, REPLICAS).await.context("after the update completed")?;
            println!("  flotilla {}: update {i}: {s:.2} s", order_name(order));
            took.push(s);
        }
        c.remove_service(&name).await?;
        let deadline = Instant::now() + DEADLINE;
        while agent.task_dirs() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        medians.push(median(took));
    }
    drop(agent);
    drop(cluster);
    Ok(medians)
}

/// Waits until the swarm service runs `REPLICAS` tasks.
async fn swarm_converged(engine: &Docker, name: &str) -> anyhow::Result<()> {
    let filters = HashMap::from([("service", vec![name]), ("desired-state", vec!["running"])]);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        let tasks = engine.list_tasks(Some(options)).await?;
        let running = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(SwarmTaskState::RUNNING))
            .count();
        if running as u64 == REPLICAS && tasks.len() as u64 == REPLICAS {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("swarm service {name} did not converge within {DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One update on Swarm: `docker service update --detach`, poll until completed (seconds).
async fn swarm_update(engine: &Docker, name: &str, version: &str) -> anyhow::Result<f64> {
    let before = engine.inspect_service(name, None).await?.update_status;
    let before = format!("{:?}", before.and_then(|s| s.started_at));
    let started = Instant::now();
    let env = format!("PROBE_VERSION={version}");
    let out = tokio::process::Command::new("docker")
        .args(["service", "update", "--detach", "--no-resolve-image", "--env-add", &env, name])
        .output()
        .await?;
    if !out.status.success() {
        bail!("docker service update: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    loop {
        let s = engine.inspect_service(name, None).await?;
        if let Some(u) = s.update_status
            && format!("{:?}", u.started_at) != before
        {
            match u.state {
                Some(ServiceUpdateStatusStateEnum::COMPLETED) => {
                    return Ok(started.elapsed().as_secs_f64());
                }
                Some(ServiceUpdateStatusStateEnum::UPDATING) | None => {}
                Some(other) => bail!("the swarm update went {other}: {:?}", u.message),
            }
        }
        if started.elapsed() > DEADLINE {
            bail!("the swarm update of {name} did not complete within {DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Rolling updates on Swarm: medians per order (seconds). The swarm is left however this
/// ends.
async fn on_swarm(o: &Options, image: &str) -> anyhow::Result<Vec<f64>> {
    let mut swarm = Swarm::init(o.swarm_lock.as_ref())?;
    let engine = Docker::connect_with_defaults()?.negotiate_version().await?;
    let mut medians = Vec::new();
    for order in ORDERS {
        let name = format!("bench_{}", order_name(order).replace('-', "_"));
        swarm.services.push(name.clone());
        docker(&[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            &name,
            "--replicas",
            &REPLICAS.to_string(),
            "--update-parallelism",
            "2",
            "--update-delay",
            "0s",
            "--update-monitor",
            "100ms",
            "--update-order",
            order_name(order),
            "--stop-grace-period",
            "2s",
            "--env",
            "PROBE_VERSION=v0",
            image,
            "flotilla",
            "probe",
        ])?;
        swarm_converged(&engine, &name).await?;
        let mut took = Vec::new();
        for i in 1..=o.swarm_runs {
            let s = swarm_update(&engine, &name, &format!("v{i}")).await?;
            swarm_converged(&engine, &name).await.context("after the update completed")?;
            println!("  Swarm {}: update {i}: {s:.2} s", order_name(order));
            took.push(s);
        }
        swarm.remove_services();
        medians.push(median(took));
    }
    Ok(medians)
}

/// Measures and prints part 2.
///
/// # Errors
/// The cluster or the swarm cannot start, or an update does not complete.
pub async fn run(o: &Options, image: Option<&str>) -> anyhow::Result<()> {
    println!(
        "== rolling update, {REPLICAS} replicas, parallelism 2, delay 0, monitor 100 ms \
         ({} runs on flotilla, {} on Swarm)",
        o.update_runs, o.swarm_runs
    );
    let ours = on_flotilla(o).await?;
    let theirs = match image {
        Some(image) if !o.skip_swarm => Some(on_swarm(o, image).await?),
        _ => None,
    };
    let version = if theirs.is_some() {
        docker_out(&["version", "--format", "{{.Server.Version}}"])?
    } else {
        String::new()
    };
    println!("rolling update, update command -> update completed, median:");
    for (i, order) in ORDERS.into_iter().enumerate() {
        let mut line = format!("  {}: flotilla {:.2} s", order_name(order), ours[i]);
        if let Some(t) = &theirs {
            line.push_str(&format!(
                ", Swarm (engine {version}) {:.2} s: {:.2}× Swarm's time",
                t[i],
                ours[i] / t[i]
            ));
        }
        println!("{line}");
    }
    Ok(())
}
