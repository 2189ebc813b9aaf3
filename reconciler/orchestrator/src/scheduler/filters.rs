//! The filter pipeline (swarmkit `manager/scheduler/filter.go`, `pipeline.go`): what a task
//! needs, what a node has left, and why a node is rejected, in Swarm's words.

use super::constraint::{self, Constraint};
use reconciler_types::{
    Availability, Node, NodeId, NodeState, PortProtocol, PublishMode, ServiceId, ServiceSpec, Task,
};
use std::collections::{BTreeMap, BTreeSet};

/// The filters, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    /// Node READY and availability ACTIVE.
    Ready,
    /// CPU, memory and generic-resource reservations fit.
    Resources,
    /// Placement constraints hold.
    Constraint,
    /// Host-mode published ports are free.
    HostPort,
    /// Fewer than `max_replicas_per_node` tasks of the service there.
    MaxReplicas,
}

impl Filter {
    /// Swarm's explanation for `n` nodes failing this filter.
    pub fn explain(self, n: usize) -> String {
        let nodes = if n == 1 { "1 node".to_owned() } else { format!("{n} nodes") };
        match self {
            Filter::Ready => format!("{nodes} not available for new tasks"),
            Filter::Resources => format!("insufficient resources on {nodes}"),
            Filter::Constraint => format!("scheduling constraints not satisfied on {nodes}"),
            Filter::HostPort => format!("host-mode port already in use on {nodes}"),
            Filter::MaxReplicas => "max replicas per node limit exceed".to_owned(),
        }
    }
}

/// Why one node was rejected: the filter and a precise reason ("drained", "lacks 512 MiB
/// memory").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The node.
    pub node: NodeId,
    /// The first filter that failed.
    pub filter: Filter,
    /// A human reason.
    pub detail: String,
}

/// What the tasks of one service (at one spec version) need from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs<'a> {
    /// The service.
    pub service: &'a ServiceId,
    /// Reserved CPU (1e-9 CPUs).
    pub nano_cpus: i64,
    /// Reserved memory (bytes).
    pub memory_bytes: i64,
    /// Reserved generic resources.
    pub generic: BTreeMap<String, i64>,
    /// Parsed constraints (an unparsable set never matches: `None`).
    pub constraints: Option<Vec<Constraint>>,
    /// Host-mode published ports.
    pub host_ports: Vec<(PortProtocol, u32)>,
    /// `max_replicas_per_node` (0 = none).
    pub max_replicas: u64,
}

impl<'a> Needs<'a> {
    /// The needs of a task of `service` made from `spec`.
    pub fn of(service: &'a ServiceId, spec: &ServiceSpec, task: &Task) -> Needs<'a> {
        let r = &task.spec.resources.reservations;
        let mut generic = BTreeMap::new();
        for g in &r.generic_resources {
            *generic.entry(g.kind.clone()).or_insert(0) += g.value;
        }
        let placement = &task.spec.placement;
        Needs {
            service,
            nano_cpus: r.nano_cpus,
            memory_bytes: r.memory_bytes,
            generic,
            constraints: constraint::parse_all(&spec.name, &placement.constraints).ok(),
            host_ports: host_ports(spec),
            max_replicas: placement.max_replicas,
        }
    }

    /// Only what an already placed task reserves on its node (resources), for accounting.
    pub fn reservations(task: &'a Task) -> Needs<'a> {
        let r = &task.spec.resources.reservations;
        let mut generic = BTreeMap::new();
        for g in &r.generic_resources {
            *generic.entry(g.kind.clone()).or_insert(0) += g.value;
        }
        Needs {
            service: &task.service_id,
            nano_cpus: r.nano_cpus,
            memory_bytes: r.memory_bytes,
            generic,
            constraints: None,
            host_ports: Vec::new(),
            max_replicas: 0,
        }
    }
}

/// The host-mode published ports of a spec.
pub fn host_ports(spec: &ServiceSpec) -> Vec<(PortProtocol, u32)> {
    spec.endpoint_spec
        .ports
        .iter()
        .filter(|p| p.publish_mode == PublishMode::Host && p.published_port != 0)
        .map(|p| (p.protocol, p.published_port))
        .collect()
}

/// What a node has and what is already placed on it (swarmkit `nodeinfo.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo<'a> {
    /// The node.
    pub node: &'a Node,
    /// Active tasks (assigned, desired ≤ COMPLETE).
    pub total: usize,
    /// Active tasks per service.
    pub per_service: BTreeMap<&'a ServiceId, usize>,
    /// Unreserved CPU.
    pub nano_cpus: i64,
    /// Unreserved memory.
    pub memory_bytes: i64,
    /// Unreserved generic resources.
    pub generic: BTreeMap<String, i64>,
    /// Host ports in use.
    pub host_ports: BTreeSet<(PortProtocol, u32)>,
}

impl<'a> NodeInfo<'a> {
    /// An empty node.
    pub fn new(node: &'a Node) -> Self {
        let mut generic = BTreeMap::new();
        for g in &node.description.generic_resources {
            *generic.entry(g.kind.clone()).or_insert(0) += g.value;
        }
        NodeInfo {
            node,
            total: 0,
            per_service: BTreeMap::new(),
            nano_cpus: node.description.nano_cpus,
            memory_bytes: node.description.memory_bytes,
            generic,
            host_ports: BTreeSet::new(),
        }
    }

    /// Accounts for a task placed here.
    pub fn add(&mut self, needs: &Needs<'a>) {
        self.total += 1;
        *self.per_service.entry(needs.service).or_insert(0) += 1;
        self.nano_cpus -= needs.nano_cpus;
        self.memory_bytes -= needs.memory_bytes;
        for (k, v) in &needs.generic {
            *self.generic.entry(k.clone()).or_insert(0) -= v;
        }
        self.host_ports.extend(needs.host_ports.iter().copied());
    }

    /// Active tasks of a service here.
    pub fn of_service(&self, service: &ServiceId) -> usize {
        self.per_service.get(service).copied().unwrap_or(0)
    }

    /// Runs the pipeline: `Ok` or the first failing filter with its reason.
    pub fn check(&self, needs: &Needs<'_>) -> Result<(), (Filter, String)> {
        let n = self.node;
        if n.status.state != NodeState::Ready || n.spec.availability != Availability::Active {
            let why = match (n.status.state, n.spec.availability) {
                (NodeState::Ready, Availability::Drain) => "drained".to_owned(),
                (NodeState::Ready, Availability::Pause) => "paused".to_owned(),
                (state, _) => format!("{state:?}").to_lowercase(),
            };
            return Err((Filter::Ready, why));
        }
        self.check_resources(needs).map_err(|why| (Filter::Resources, why))?;
        match &needs.constraints {
            Some(c) if constraint::all_match(c, n) => {}
            Some(_) => return Err((Filter::Constraint, "constraints not satisfied".to_owned())),
            None => return Err((Filter::Constraint, "malformed constraint".to_owned())),
        }
        if let Some((proto, port)) = needs.host_ports.iter().find(|p| self.host_ports.contains(p)) {
            return Err((Filter::HostPort, format!("port {port}/{proto:?} in use").to_lowercase()));
        }
        if needs.max_replicas > 0 && self.of_service(needs.service) as u64 >= needs.max_replicas {
            return Err((
                Filter::MaxReplicas,
                format!("already runs {} of the service", needs.max_replicas),
            ));
        }
        Ok(())
    }

    /// Whether the reservations fit in what is left.
    pub fn fits(&self, needs: &Needs<'_>) -> bool {
        self.check_resources(needs).is_ok()
    }

    fn check_resources(&self, needs: &Needs<'_>) -> Result<(), String> {
        if needs.nano_cpus > self.nano_cpus {
            let lack = needs.nano_cpus - self.nano_cpus.max(0);
            return Err(format!("lacks {} CPUs", fmt_cpus(lack)));
        }
        if needs.memory_bytes > self.memory_bytes {
            let lack = needs.memory_bytes - self.memory_bytes.max(0);
            return Err(format!("lacks {} memory", fmt_bytes(lack)));
        }
        for (kind, want) in &needs.generic {
            let have = self.generic.get(kind).copied().unwrap_or(0);
            if *want > have {
                return Err(format!("lacks {} {kind}", want - have.max(0)));
            }
        }
        Ok(())
    }
}

fn fmt_cpus(nano: i64) -> String {
    let whole = nano / 1_000_000_000;
    let frac = (nano % 1_000_000_000) / 10_000_000;
    if frac == 0 { format!("{whole}") } else { format!("{whole}.{frac:02}") }
}

fn fmt_bytes(b: i64) -> String {
    const MIB: i64 = 1024 * 1024;
    if b >= MIB && b % MIB == 0 { format!("{} MiB", b / MIB) } else { format!("{b} bytes") }
}

/// The explanation of why no node fits: filters with failures, most failures first
/// (`pipeline.go` `Explain`), joined by `"; "`.
pub fn explain(rejections: &[Rejection]) -> String {
    let mut counts: BTreeMap<Filter, usize> = BTreeMap::new();
    for r in rejections {
        *counts.entry(r.filter).or_insert(0) += 1;
    }
    let mut by_count: Vec<(Filter, usize)> = counts.into_iter().collect();
    by_count.sort_by_key(|x| std::cmp::Reverse(x.1));
    let parts: Vec<String> = by_count.into_iter().map(|(f, n)| f.explain(n)).collect();
    if parts.is_empty() {
        "no suitable node".to_owned()
    } else {
        format!("no suitable node ({})", parts.join("; "))
    }
}

/// A longer explanation for humans: `3 nodes: 2 drained, 1 lacks 512 MiB memory`.
pub fn explain_nodes(total_nodes: usize, rejections: &[Rejection]) -> String {
    let mut details: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rejections {
        *details.entry(r.detail.as_str()).or_insert(0) += 1;
    }
    let mut parts: Vec<(usize, &str)> = details.into_iter().map(|(d, n)| (n, d)).collect();
    parts.sort_by_key(|x| std::cmp::Reverse(x.0));
    let body: Vec<String> = parts.into_iter().map(|(n, d)| format!("{n} {d}")).collect();
    let nodes = if total_nodes == 1 { "1 node".to_owned() } else { format!("{total_nodes} nodes") };
    format!("{nodes}: {}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rej(filter: Filter, detail: &str) -> Rejection {
        Rejection { node: NodeId::new("n"), filter, detail: detail.into() }
    }

    #[test]
    fn explanation_orders_filters_by_failure_count() {
        let r = [
            rej(Filter::Ready, "drained"),
            rej(Filter::Constraint, "x"),
            rej(Filter::Constraint, "x"),
        ];
        assert_eq!(
            explain(&r),
            "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not available for new tasks)"
        );
        assert_eq!(explain(&[]), "no suitable node");
    }

    #[test]
    fn node_explanation_names_the_precise_reasons() {
        let r = [
            rej(Filter::Ready, "drained"),
            rej(Filter::Ready, "drained"),
            rej(Filter::Resources, "lacks 512 MiB memory"),
        ];
        assert_eq!(explain_nodes(3, &r), "3 nodes: 2 drained, 1 lacks 512 MiB memory");
    }
}
