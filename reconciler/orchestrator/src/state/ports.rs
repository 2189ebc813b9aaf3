//! Published ports (docs/swarm-semantics.md §8, S49; swarmkit `controlapi/service.go`
//! `checkPortConflicts`, `allocator/portallocator.go`): a published port used by another
//! service is refused with Swarm's message; an ingress port published without a number gets
//! one from 30000–32767, serially per protocol (the next after the last handed out, wrapping,
//! skipping ports in use), and keeps it across updates.

use super::ClusterState;
use super::command::Refusal;
use reconciler_types::{PortConfig, PortProtocol, PublishMode, ServiceId, ServiceSpec};
use std::collections::BTreeSet;

/// The first port of the dynamic range.
pub const DYNAMIC_PORTS_START: u32 = 30000;
/// The last port of the dynamic range.
pub const DYNAMIC_PORTS_END: u32 = 32767;

/// A published port of another service.
struct InUse<'a> {
    port: &'a PortConfig,
    name: &'a str,
    id: &'a ServiceId,
}

fn conflict(new: &PortConfig, other: &InUse<'_>) -> Option<Refusal> {
    if new.published_port == 0
        || new.published_port != other.port.published_port
        || new.protocol != other.port.protocol
    {
        return None;
    }
    let how = match (other.port.publish_mode, new.publish_mode) {
        (PublishMode::Ingress, _) => "an ingress port",
        (PublishMode::Host, PublishMode::Ingress) => "a host-published port",
        (PublishMode::Host, PublishMode::Host) => return None,
    };
    Some(Refusal::invalid(format!(
        "port '{}' is already in use by service '{}' ({}) as {how}",
        new.published_port, other.name, other.id
    )))
}

impl ClusterState {
    /// The published ports of `spec` for service `id` as allocated (Swarm's
    /// `Endpoint.Ports`); with `refuse_conflicts`, a port another service publishes is
    /// refused. Moves the serial allocator only when it succeeds.
    pub(super) fn allocate_ports(
        &mut self,
        id: &ServiceId,
        spec: &ServiceSpec,
        refuse_conflicts: bool,
    ) -> Result<Vec<PortConfig>, Refusal> {
        let others: Vec<InUse<'_>> = self
            .services
            .values()
            .filter(|s| &s.id != id)
            .flat_map(|s| {
                s.endpoint_ports.iter().map(|port| InUse { port, name: &s.spec.name, id: &s.id })
            })
            .collect();
        if refuse_conflicts
            && let Some(r) = spec
                .endpoint_spec
                .ports
                .iter()
                .find_map(|p| others.iter().find_map(|o| conflict(p, o)))
        {
            return Err(r);
        }
        let mut taken: BTreeSet<(PortProtocol, u32)> =
            others.iter().map(|o| (o.port.protocol, o.port.published_port)).collect();
        taken.extend(spec.endpoint_spec.ports.iter().map(|p| (p.protocol, p.published_port)));
        let previous = self.previous_dynamic(id);
        let mut last = self.counters.last_dynamic_port;
        let mut ports = spec.endpoint_spec.ports.clone();
        for p in ports
            .iter_mut()
            .filter(|p| p.publish_mode == PublishMode::Ingress && p.published_port == 0)
        {
            let kept = previous
                .iter()
                .find(|q| q.protocol == p.protocol && q.target_port == p.target_port)
                .map(|q| q.published_port)
                .filter(|n| !taken.contains(&(p.protocol, *n)));
            let n = match kept {
                Some(n) => n,
                None => {
                    next_free(*last.get_mut(p.protocol), p.protocol, &taken).ok_or_else(|| {
                        Refusal::invalid(format!(
                            "no published port is free in {DYNAMIC_PORTS_START}-{DYNAMIC_PORTS_END}"
                        ))
                    })?
                }
            };
            if kept.is_none() {
                *last.get_mut(p.protocol) = n;
            }
            taken.insert((p.protocol, n));
            p.published_port = n;
        }
        self.counters.last_dynamic_port = last;
        Ok(ports)
    }

    /// The dynamic ports the service holds now (ingress ports its spec left unnumbered).
    fn previous_dynamic(&self, id: &ServiceId) -> Vec<PortConfig> {
        let Some(s) = self.services.get(id) else { return Vec::new() };
        s.endpoint_ports
            .iter()
            .filter(|p| {
                s.spec.endpoint_spec.ports.iter().any(|q| {
                    q.published_port == 0
                        && q.protocol == p.protocol
                        && q.target_port == p.target_port
                })
            })
            .cloned()
            .collect()
    }
}

/// The first free port after `last`, wrapping within the dynamic range.
fn next_free(
    last: u32,
    protocol: PortProtocol,
    taken: &BTreeSet<(PortProtocol, u32)>,
) -> Option<u32> {
    let size = DYNAMIC_PORTS_END - DYNAMIC_PORTS_START + 1;
    let start = if (DYNAMIC_PORTS_START..DYNAMIC_PORTS_END).contains(&last) {
        last + 1
    } else {
        DYNAMIC_PORTS_START
    };
    (0..size)
        .map(|i| DYNAMIC_PORTS_START + (start - DYNAMIC_PORTS_START + i) % size)
        .find(|n| !taken.contains(&(protocol, *n)))
}
