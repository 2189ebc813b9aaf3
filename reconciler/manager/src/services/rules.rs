//! Swarm's checks of a service request and the views the service endpoints answer with, as
//! pure functions of the replicated state (unit-tested without Raft). The messages are
//! Docker's (swarmkit `manager/controlapi/service.go`, `common.go`; moby
//! `daemon/cluster/helpers.go`).

use crate::error::ApiError;
use reconciler_api::services::{ServiceInfo, ServiceStatus, TaskView};
use reconciler_store::ClusterState;
use reconciler_store::cluster_state::ServiceRecord;
use reconciler_types::{
    EndpointMode, Node, NodeId, PublishMode, ServiceId, ServiceMode, ServiceSpec, TaskState,
    UpdateConfig,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Finds a service by full id, then full name, then unique id prefix (as Docker does).
///
/// # Errors
/// `service <key> not found`, or `service <key> is ambiguous (<n> matches found)`.
pub fn resolve<'a>(state: &'a ClusterState, key: &str) -> Result<&'a ServiceRecord, ApiError> {
    if let Some(r) = state.services.get(&ServiceId::new(key)) {
        return Ok(r);
    }
    let by_name: Vec<&ServiceRecord> =
        state.services.values().filter(|r| r.spec.name == key).collect();
    let matches = if by_name.is_empty() {
        let prefix = |r: &&ServiceRecord| !key.is_empty() && r.id.as_str().starts_with(key);
        state.services.values().filter(prefix).collect()
    } else {
        by_name
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(ApiError::NotFound(format!("service {key} not found"))),
        many => Err(ApiError::BadRequest(format!(
            "service {key} is ambiguous ({} matches found)",
            many.len()
        ))),
    }
}

/// What the CLI sees of a service record.
pub fn service_info(r: &ServiceRecord) -> ServiceInfo {
    ServiceInfo {
        id: r.id.clone(),
        version: r.version,
        spec: r.spec.clone(),
        spec_version: r.spec_version,
        previous_spec: r.previous_spec.clone(),
        previous_spec_version: r.previous_spec_version,
        update_status: r.update_status.clone(),
        endpoint_ports: r.endpoint_ports.clone(),
        status: None,
    }
}

/// Docker's `ServiceStatus` of every service, in one pass over the tasks: running = observed
/// RUNNING with desired RUNNING on a node that is up; desired = the replicas, or for a global
/// service the tasks desired to run.
pub fn service_statuses(
    state: &ClusterState,
    active: &BTreeSet<NodeId>,
) -> BTreeMap<ServiceId, ServiceStatus> {
    let mut out: BTreeMap<ServiceId, ServiceStatus> = state
        .services
        .values()
        .map(|r| {
            let desired = r.spec.replicas().unwrap_or(0);
            (r.id.clone(), ServiceStatus { running_tasks: 0, desired_tasks: desired })
        })
        .collect();
    for t in state.tasks.values().map(|t| &t.task) {
        let (Some(status), Some(record)) =
            (out.get_mut(&t.service_id), state.services.get(&t.service_id))
        else {
            continue;
        };
        let on_active = t.node_id.as_ref().is_some_and(|n| active.contains(n));
        if t.status.state == TaskState::Running
            && t.desired_state == TaskState::Running
            && on_active
        {
            status.running_tasks += 1;
        }
        if matches!(record.spec.mode, ServiceMode::Global) && t.desired_state <= TaskState::Running
        {
            status.desired_tasks += 1;
        }
    }
    out
}

/// The nodes `is_up` says are not down.
pub fn active_nodes(state: &ClusterState, is_up: impl Fn(&Node) -> bool) -> BTreeSet<NodeId> {
    state.nodes.values().filter(|n| is_up(&n.node)).map(|n| n.node.id.clone()).collect()
}

/// Every task of a service, with its node's hostname and the host-mode ports it publishes.
pub fn task_views(state: &ClusterState, r: &ServiceRecord) -> Vec<TaskView> {
    let host_ports: Vec<_> = r
        .spec
        .endpoint_spec
        .ports
        .iter()
        .filter(|p| p.publish_mode == PublishMode::Host && p.published_port != 0)
        .cloned()
        .collect();
    let node_name = |id: &NodeId| match state.nodes.get(id) {
        Some(n) if !n.node.description.hostname.is_empty() => n.node.description.hostname.clone(),
        _ => id.to_string(),
    };
    state
        .tasks
        .values()
        .map(|t| &t.task)
        .filter(|t| t.service_id == r.id)
        .map(|t| TaskView {
            task: t.clone(),
            node: t.node_id.as_ref().map(node_name).unwrap_or_default(),
            ports: if t.status.state == TaskState::Running {
                host_ports.clone()
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// Swarm's `validateAnnotations`: a DNS label of at most 63 characters.
fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(invalid("meta: name must be provided"));
    }
    // ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$: alphanumerics, with - and _ only between them.
    let bytes = name.as_bytes();
    let edges_ok = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if !edges_ok || !bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
        return Err(invalid("name must be valid as a DNS name component"));
    }
    if name.len() > 63 {
        return Err(invalid("name must be 63 characters or fewer"));
    }
    Ok(())
}

fn validate_rollout(u: &UpdateConfig) -> Result<(), ApiError> {
    if !(0.0..=1.0).contains(&u.max_failure_ratio) {
        return Err(invalid(
            "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1",
        ));
    }
    Ok(())
}

fn validate_resources(nano_cpus: i64, memory: i64) -> Result<(), ApiError> {
    if nano_cpus != 0 && nano_cpus < 1_000_000 {
        #[allow(clippy::cast_precision_loss)]
        let cpus = nano_cpus as f64 / 1e9;
        return Err(invalid(format!("invalid cpu value {cpus}: Must be at least 0.001")));
    }
    if memory != 0 && memory < 4 * 1024 * 1024 {
        return Err(invalid(format!("invalid memory value {memory}: Must be at least 4MiB")));
    }
    Ok(())
}

fn validate_health(spec: &ServiceSpec) -> Result<(), ApiError> {
    let Some(h) = &spec.task_template.container_spec.healthcheck else { return Ok(()) };
    let min = Duration::from_millis(1);
    for (name, value) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if value.is_some_and(|v| !v.is_zero() && v < min) {
            return Err(invalid(format!(
                "ContainerSpec: {name} in HealthConfig cannot be less than 1ms"
            )));
        }
    }
    Ok(())
}

fn validate_endpoint(spec: &ServiceSpec) -> Result<(), ApiError> {
    let e = &spec.endpoint_spec;
    let mut seen = BTreeSet::new();
    for p in &e.ports {
        if e.mode == EndpointMode::Dnsrr && p.publish_mode == PublishMode::Ingress {
            return Err(invalid(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
            ));
        }
        if p.published_port != 0 && !seen.insert((p.published_port, p.protocol)) {
            return Err(invalid("EndpointSpec: duplicate published ports provided"));
        }
    }
    Ok(())
}

/// Names missing from `have`, as Swarm's `checkSecretExistence` words it.
fn check_exist<'a>(
    kind: &str,
    wanted: impl Iterator<Item = &'a String>,
    have: impl Fn(&str) -> bool,
) -> Result<(), ApiError> {
    let missing: BTreeSet<&String> = wanted.filter(|n| !have(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let noun = if missing.len() == 1 { kind.to_owned() } else { format!("{kind}s") };
    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    Err(invalid(format!("{noun} not found: {}", names.join(", "))))
}

/// Two references that would write the same file.
fn check_targets<'a>(
    kind: &str,
    refs: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<(), ApiError> {
    let mut by_target: BTreeMap<&String, &String> = BTreeMap::new();
    for (name, target) in refs {
        if let Some(prev) = by_target.insert(target, name) {
            return Err(invalid(format!(
                "{kind} references '{prev}' and '{name}' have a conflicting target: '{target}'"
            )));
        }
    }
    Ok(())
}

/// Swarm's `validateServiceSpec` and the existence of the secrets and configs it uses.
///
/// # Errors
/// The first rule the spec breaks, with Docker's message.
pub fn validate(spec: &ServiceSpec, state: &ClusterState) -> Result<(), ApiError> {
    validate_name(&spec.name)?;
    let c = &spec.task_template.container_spec;
    if c.image.is_empty() {
        return Err(invalid("ContainerSpec: image reference must be provided"));
    }
    if c.image.chars().any(char::is_whitespace) {
        return Err(invalid(format!("ContainerSpec: {:?} is not a valid repository/tag", c.image)));
    }
    validate_health(spec)?;
    let r = &spec.task_template.resources;
    validate_resources(r.limits.nano_cpus, r.limits.memory_bytes)?;
    validate_resources(r.reservations.nano_cpus, r.reservations.memory_bytes)?;
    reconciler_orchestrator::scheduler::constraint::validate(spec)
        .map_err(|e| invalid(e.to_string()))?;
    validate_rollout(&spec.update_config)?;
    validate_rollout(&spec.rollback_config)?;
    validate_endpoint(spec)?;
    check_targets("secret", c.secrets.iter().map(|s| (&s.secret_name, &s.target)))?;
    check_targets("config", c.configs.iter().map(|s| (&s.config_name, &s.target)))?;
    check_exist("secret", c.secrets.iter().map(|s| &s.secret_name), |n| {
        state.secrets.contains_key(n)
    })?;
    check_exist("config", c.configs.iter().map(|s| &s.config_name), |n| {
        state.configs.contains_key(n)
    })
}

/// A create's name must not be taken (Swarm's AlreadyExists).
///
/// # Errors
/// `name conflicts with an existing object: service <name> already exists`.
pub fn check_name_free(state: &ClusterState, name: &str) -> Result<(), ApiError> {
    if state.services.values().any(|r| r.spec.name == name) {
        return Err(ApiError::Conflict(format!(
            "name conflicts with an existing object: service {name} already exists"
        )));
    }
    Ok(())
}

/// An update may not rename the service (Swarm's Unimplemented; the store refuses a mode
/// change itself).
///
/// # Errors
/// `renaming services is not supported`.
pub fn check_update(current: &ServiceRecord, spec: &ServiceSpec) -> Result<(), ApiError> {
    if current.spec.name != spec.name {
        return Err(invalid("renaming services is not supported"));
    }
    Ok(())
}

const ADJECTIVES: [&str; 24] = [
    "brave",
    "calm",
    "clever",
    "eager",
    "fervent",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "merry",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "steady",
    "tender",
    "upbeat",
    "vibrant",
    "wise",
    "zealous",
];
const SURNAMES: [&str; 24] = [
    "babbage", "bardeen", "curie", "dijkstra", "einstein", "euler", "faraday", "gauss", "hopper",
    "kepler", "knuth", "lamport", "lovelace", "maxwell", "meitner", "newton", "noether", "pascal",
    "ritchie", "shannon", "thompson", "turing", "volta", "wozniak",
];

/// A name for a service created without one, `<adjective>_<surname>` as Docker generates
/// (from two random bytes).
pub fn generated_name(random: [u8; 2]) -> String {
    let a = ADJECTIVES[usize::from(random[0]) % ADJECTIVES.len()];
    let s = SURNAMES[usize::from(random[1]) % SURNAMES.len()];
    format!("{a}_{s}")
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
