//! The actual side from a state snapshot (`flotilla state export`, the store's
//! `ClusterState` as JSON), read through small tolerant views: missing fields default,
//! unknown fields are ignored. Objects are grouped into stacks by their
//! `com.docker.stack.namespace` label; objects without one belong to no stack.

use crate::convert::versioned_config_name;
use reconciler_types::stack::NAMESPACE_LABEL;
use reconciler_types::{
    ConfigSpec, NetworkSpec, SecretSpec, ServiceSpec, StackName, StackSet, StackSpec,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not JSON, or not shaped like a cluster state.
    #[error("the state snapshot is not valid")]
    Invalid(#[from] serde_json::Error),
    /// A service spec that does not read as one.
    #[error("service {service} in the state snapshot has an unreadable spec")]
    Service {
        /// The service id.
        service: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StateView {
    services: BTreeMap<String, ServiceView>,
    configs: BTreeMap<String, ConfigView>,
    secrets: BTreeMap<String, SecretView>,
    networks: BTreeMap<String, NetworkView>,
    stacks: BTreeMap<String, StackView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceView {
    spec: serde_json::Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigView {
    name: String,
    labels: BTreeMap<String, String>,
    data: Vec<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SecretView {
    name: String,
    labels: BTreeMap<String, String>,
    digest: String,
    salt: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NetworkView {
    spec: NetworkSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StackView {
    applied: Vec<AppliedView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AppliedView {
    commit: String,
}

fn stack_of(labels: &BTreeMap<String, String>) -> Option<StackName> {
    labels.get(NAMESPACE_LABEL).map(|s| StackName::new(s.clone()))
}

/// The unversioned name of a versioned config (`shop_conf-0123456789` → `shop_conf`).
pub fn unversioned_config_name(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, v)) if v.len() == 10 && v.bytes().all(|b| b.is_ascii_hexdigit()) => base,
        _ => name,
    }
}

/// What runs, as plain objects, before it is grouped into stacks: read from a snapshot by
/// [`stacks_from_snapshot`], or from the live `ClusterState` by the leader, so that the dry
/// run and the loop see the cluster through one [`group`].
#[derive(Debug, Clone, Default)]
pub struct LiveObjects {
    /// Every service's spec.
    pub services: Vec<ServiceSpec>,
    /// Every network.
    pub networks: Vec<NetworkSpec>,
    /// Every secret (digest only).
    pub secrets: Vec<SecretSpec>,
    /// Every config, under its versioned name.
    pub configs: Vec<ConfigSpec>,
    /// The last applied commit of each stack that has one.
    pub applied: BTreeMap<String, String>,
}

/// Reads a snapshot into stacks. `source` names it in the plan.
///
/// # Errors
/// When the text is not JSON or a service spec is unreadable.
pub fn stacks_from_snapshot(json: &str, source: &str) -> Result<StackSet, SnapshotError> {
    let view: StateView = serde_json::from_str(json)?;
    let mut live = LiveObjects::default();
    for (id, s) in view.services {
        let spec = read_spec(s.spec)
            .map_err(|source| SnapshotError::Service { service: id.clone(), source })?;
        live.services.push(spec);
    }
    live.networks = view.networks.into_values().map(|n| n.spec).collect();
    live.secrets = view
        .secrets
        .into_values()
        .map(|s| SecretSpec {
            name: s.name,
            labels: s.labels,
            digest: s.digest,
            salt: s.salt,
            external: false,
        })
        .collect();
    live.configs = view
        .configs
        .into_values()
        .map(|c| ConfigSpec { name: c.name, labels: c.labels, data: c.data, external: false })
        .collect();
    live.applied = view
        .stacks
        .into_iter()
        .filter_map(|(name, h)| h.applied.last().map(|c| (name, c.commit.clone())))
        .collect();
    Ok(group(live, source))
}

/// Groups what runs into stacks by the `com.docker.stack.namespace` label. `source` names
/// it in the plan (followed by each stack's applied commit).
pub fn group(live: LiveObjects, source: &str) -> StackSet {
    let mut stacks: BTreeMap<StackName, StackSpec> = BTreeMap::new();
    let mut used_configs = BTreeSet::new();
    for spec in live.services {
        let Some(stack) = stack_of(&spec.labels) else { continue };
        for c in &spec.task_template.container_spec.configs {
            used_configs.insert(c.config_name.clone());
        }
        let short = spec.name.strip_prefix(&format!("{stack}_")).unwrap_or(&spec.name).to_owned();
        stack_mut(&mut stacks, stack).services.insert(short, spec);
    }
    for n in live.networks {
        if let Some(stack) = stack_of(&n.labels) {
            stack_mut(&mut stacks, stack).networks.insert(n.name.clone(), n);
        }
    }
    for s in live.secrets {
        if let Some(stack) = stack_of(&s.labels) {
            stack_mut(&mut stacks, stack).secrets.insert(s.name.clone(), s);
        }
    }
    for spec in live.configs {
        let Some(stack) = stack_of(&spec.labels) else { continue };
        let base = unversioned_config_name(&spec.name).to_owned();
        let configs = &mut stack_mut(&mut stacks, stack).configs;
        // Several versions may be kept (for rollbacks): the one services use now wins.
        let keep = match configs.get(&base) {
            None => true,
            Some(old) => !used_configs.contains(&old.name) && used_configs.contains(&spec.name),
        };
        if keep {
            configs.insert(base, spec);
        }
    }
    let applied: Vec<String> =
        live.applied.iter().map(|(name, c)| format!("{name}@{}", short(c))).collect();
    let source = if applied.is_empty() {
        source.to_owned()
    } else {
        format!("{source} ({})", applied.join(", "))
    };
    StackSet { source, stacks }
}

/// Overlays `value` on `base`: objects merge key by key, anything else replaces.
fn overlay(base: &mut serde_json::Value, value: serde_json::Value) {
    match (base, value) {
        (serde_json::Value::Object(b), serde_json::Value::Object(v)) => {
            for (k, val) in v {
                match b.get_mut(&k) {
                    Some(slot) => overlay(slot, val),
                    None => {
                        b.insert(k, val);
                    }
                }
            }
        }
        (slot, val) => *slot = val,
    }
}

/// A service spec, with Swarm's defaults for whatever a (newer or older) snapshot leaves out.
fn read_spec(value: serde_json::Value) -> Result<ServiceSpec, serde_json::Error> {
    let mut full = serde_json::to_value(ServiceSpec::default())?;
    overlay(&mut full, value);
    serde_json::from_value(full)
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn stack_mut(stacks: &mut BTreeMap<StackName, StackSpec>, name: StackName) -> &mut StackSpec {
    stacks.entry(name.clone()).or_insert_with(|| StackSpec { name, ..StackSpec::default() })
}

/// Whether a config name carries the version suffix flotilla gives it for this content.
pub fn is_version_of(name: &str, data: &[u8]) -> bool {
    versioned_config_name(unversioned_config_name(name), data) == name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unversioned_config_name_strips_only_a_content_version() {
        assert_eq!(unversioned_config_name("shop_conf-0123456789"), "shop_conf");
        assert_eq!(unversioned_config_name("shop_my-conf"), "shop_my-conf");
        assert!(is_version_of(&versioned_config_name("shop_conf", b"x"), b"x"));
    }

    #[test]
    fn stacks_from_snapshot_groups_by_namespace_and_tolerates_unknown_fields() {
        let json = r#"{"cluster": null, "future_field": 1,
            "services": {"id1": {"id": "id1", "version": 1, "spec": {"name": "shop_web",
              "labels": {"com.docker.stack.namespace": "shop"}}}},
            "configs": {"shop_c-0123456789": {"name": "shop_c-0123456789",
              "labels": {"com.docker.stack.namespace": "shop"}, "data": [104, 105]}},
            "stacks": {"shop": {"applied": [{"commit": "abcdef0123456789", "index": 3}]}}}"#;
        let set = stacks_from_snapshot(json, "state s.json").unwrap();
        let shop = &set.stacks[&StackName::new("shop")];
        assert!(shop.services.contains_key("web"));
        assert_eq!(shop.configs["shop_c"].data, b"hi");
        assert_eq!(set.source, "state s.json (shop@abcdef012345)");
    }
}
