//! `GET /metrics` (Prometheus text format) and `GET /healthz` on every manager.
//!
//! Gauges are read from the applied state at scrape time (any manager answers for the whole
//! cluster as far as it has applied the log); counters are this manager's own (the leader
//! loop's and the GitOps loop's work while it led). Neither endpoint needs the API token:
//! they carry no secret, and a scraper or a load balancer's probe has none (as Docker's
//! `--metrics-addr`).

use crate::manager::Manager;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use reconciler_store::ClusterState;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The content type of Prometheus' text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Vec<(String, String)>;

/// `GET /metrics`.
pub async fn metrics(State(m): State<Arc<Manager>>) -> Response {
    match render(&m) {
        Ok(body) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the metrics: {e}\n"))
            .into_response(),
    }
}

/// `GET /healthz`: 200 `ok` while this manager follows or is a leader, 503 with the reason
/// while it knows none (no quorum, or an election under way).
pub async fn healthz(State(m): State<Arc<Manager>>) -> Response {
    let raft = m.metrics();
    match raft.current_leader {
        Some(_) => (StatusCode::OK, "ok\n").into_response(),
        None => {
            let why = format!("no leader known (term {}): {}\n", raft.current_term, m.no_quorum());
            (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
        }
    }
}

/// The whole exposition, rendered into a fresh registry.
///
/// # Errors
/// The encoder failed (it writes into a `String`, so only on a formatting bug).
pub fn render(m: &Manager) -> Result<String, std::fmt::Error> {
    let mut r = Registry::with_prefix("flotilla");
    raft(&mut r, m);
    m.node.state.read(|s| cluster(&mut r, &s.state));
    leader_loop(&mut r, m);
    gitops(&mut r, m);
    let mut out = String::new();
    encode(&mut out, &r)?;
    Ok(out)
}

fn gauge(r: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    r.register(name, help, g);
}

fn counter(r: &mut Registry, name: &str, help: &str, value: &AtomicU64) {
    let c = Counter::<u64>::default();
    c.inc_by(value.load(Ordering::Relaxed));
    r.register(name, help, c);
}

fn seconds(r: &mut Registry, name: &str, help: &str, micros: &AtomicU64) {
    let c = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    // Microseconds to seconds: the counter is exposed in seconds, as Prometheus names it.
    c.inc_by(micros.load(Ordering::Relaxed) as f64 / 1e6);
    r.register(name, help, c);
}

/// A gauge family with one series per key of `counts` (label `label`).
fn by_label(r: &mut Registry, name: &str, help: &str, counts: BTreeMap<Labels, i64>) {
    let family = Family::<Labels, Gauge<i64>>::default();
    for (labels, n) in counts {
        family.get_or_create(&labels).set(n);
    }
    r.register(name, help, family);
}

/// Counts states by value first and names each distinct one once (a scrape at 100,000 tasks
/// names a handful of states, not every task's).
fn count_states<'a, T: Ord + serde::Serialize + 'a>(
    states: impl IntoIterator<Item = &'a T>,
) -> BTreeMap<Labels, i64> {
    let mut by_value: BTreeMap<&T, i64> = BTreeMap::new();
    for s in states {
        *by_value.entry(s).or_insert(0) += 1;
    }
    by_value.into_iter().map(|(s, n)| (one("state", state_name(s)), n)).collect()
}

fn count(keys: impl IntoIterator<Item = Labels>) -> BTreeMap<Labels, i64> {
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_insert(0) += 1;
    }
    counts
}

fn one(label: &str, value: impl ToString) -> Labels {
    vec![(label.to_owned(), value.to_string())]
}

fn raft(r: &mut Registry, m: &Manager) {
    let raft = m.metrics();
    let leads = raft.current_leader == Some(m.node.id);
    gauge(r, "manager_leader", "1 on the manager that leads the Raft cluster", i64::from(leads));
    let term = i64::try_from(raft.current_term).unwrap_or(i64::MAX);
    gauge(r, "raft_term", "the Raft term this manager is in", term);
}

fn cluster(r: &mut Registry, s: &ClusterState) {
    let nodes = count_states(s.nodes.values().map(|n| &n.node.status.state));
    by_label(r, "nodes", "nodes by their recorded state", nodes);
    let tasks = count_states(s.tasks.values().map(|t| &t.task.status.state));
    by_label(r, "tasks", "tasks by their current state", tasks);
    let services = i64::try_from(s.services.len()).unwrap_or(i64::MAX);
    gauge(r, "services", "services in the cluster", services);
    let updates = s.services.values().filter_map(|sv| sv.update_status.as_ref().map(|u| &u.state));
    let help = "services by the state of their last update";
    by_label(r, "service_updates", help, count_states(updates));
    let mut last = BTreeMap::new();
    for sv in s.services.values() {
        let Some(u) = &sv.update_status else { continue };
        if let (Some(from), Some(to)) = (u.started_at, u.completed_at) {
            let secs = i64::try_from(to.saturating_since(from).as_secs()).unwrap_or(i64::MAX);
            last.insert(one("service", &sv.spec.name), secs);
        }
    }
    let help = "how long each service's last finished update (or rollback) took, in seconds";
    by_label(r, "service_last_update_seconds", help, last);
    let deployments = s.stacks.iter().flat_map(|(stack, h)| {
        h.deploy.deployments.iter().map(move |d| {
            vec![
                ("stack".to_owned(), stack.to_string()),
                ("outcome".to_owned(), state_name(&d.outcome)),
            ]
        })
    });
    let help = "the deployments each stack keeps in its history, by outcome";
    by_label(r, "stack_deployments", help, count(deployments));
    let failing = i64::from(s.source_status.error.is_some());
    gauge(r, "gitops_source_failing", "1 while the Git source cannot be read", failing);
}

fn leader_loop(r: &mut Registry, m: &Manager) {
    let l = &m.leader_stats;
    counter(r, "leader_loop_passes", "orchestration passes this manager ran", &l.passes);
    counter(r, "leader_loop_entries", "Raft entries the leader loop wrote", &l.batches);
    counter(r, "leader_loop_decisions", "store commands the leader loop wrote", &l.decisions);
    let help = "time spent in orchestration passes";
    seconds(r, "leader_loop_pass_seconds", help, &l.pass_micros);
}

fn gitops(r: &mut Registry, m: &Manager) {
    let g = &m.gitops;
    counter(r, "gitops_fetches", "looks at the Git source (fetches)", &g.passes);
    counter(r, "gitops_fetch_failures", "looks at the Git source that failed", &g.fetch_failures);
    let help = "webhook calls refused (bad or missing signature)";
    counter(r, "gitops_webhook_rejections", help, &g.webhook_rejections);
    counter(r, "gitops_applies", "GitOps passes that applied a head", &g.applied_passes);
    seconds(r, "gitops_apply_seconds", "time spent applying heads", &g.pass_micros);
}

/// A state's name as the API spells it (`running`, `rollback_completed`, `in_progress`).
fn state_name(state: &impl serde::Serialize) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}
