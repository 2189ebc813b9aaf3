//! Merging several stack files left to right, with Docker's rules per field (its `mergo`
//! options: later files override scalars and map keys, lists are appended; ports are keyed
//! by published port, volumes by target, configs and secrets by source; `command` and
//! `entrypoint` are replaced; `logging` merges options when the driver is the same; ulimits
//! and top-level objects are replaced whole). Top-level `x-*` keys come from the first file.

use crate::model::*;
use crate::value::{Map, Value};
use std::collections::BTreeMap;

/// Merges the files' configurations in order.
pub fn merge(mut configs: Vec<Config>) -> Config {
    if configs.is_empty() {
        return Config::default();
    }
    let mut base = configs.remove(0);
    for over in configs {
        base.services = merge_services(std::mem::take(&mut base.services), over.services);
        base.volumes.extend(over.volumes);
        base.networks.extend(over.networks);
        base.secrets.extend(over.secrets);
        base.configs.extend(over.configs);
    }
    base
}

fn merge_services(base: Vec<ServiceConfig>, over: Vec<ServiceConfig>) -> Vec<ServiceConfig> {
    let mut by_name: BTreeMap<String, ServiceConfig> =
        base.into_iter().map(|s| (s.name.clone(), s)).collect();
    for o in over {
        match by_name.get_mut(&o.name) {
            Some(b) => service(b, o),
            None => {
                by_name.insert(o.name.clone(), o);
            }
        }
    }
    by_name.into_values().collect()
}

fn string(d: &mut String, s: String) {
    if !s.is_empty() {
        *d = s;
    }
}

fn flag(d: &mut bool, s: bool) {
    if s {
        *d = true;
    }
}

fn append<T>(d: &mut Vec<T>, s: Vec<T>) {
    d.extend(s);
}

fn replace_list<T>(d: &mut Vec<T>, s: Vec<T>) {
    if !s.is_empty() {
        *d = s;
    }
}

fn int<T: Default + PartialEq>(d: &mut T, s: T) {
    if s != T::default() {
        *d = s;
    }
}

/// A pointer to a scalar: set when absent, otherwise overridden by a non-zero value.
fn opt<T: Default + PartialEq>(d: &mut Option<T>, s: Option<T>) {
    match (d.as_mut(), s) {
        (_, None) => {}
        (None, Some(s)) => *d = Some(s),
        (Some(dv), Some(s)) => int(dv, s),
    }
}

fn opt_struct<T>(d: &mut Option<T>, s: Option<T>, f: impl FnOnce(&mut T, T)) {
    match (d.as_mut(), s) {
        (_, None) => {}
        (None, Some(s)) => *d = Some(s),
        (Some(dv), Some(s)) => f(dv, s),
    }
}

fn strmap(d: &mut BTreeMap<String, String>, s: BTreeMap<String, String>) {
    d.extend(s);
}

/// `map[string]*string`: a key is set when new or empty; otherwise only a non-empty value
/// replaces it.
fn envmap(d: &mut BTreeMap<String, Option<String>>, s: BTreeMap<String, Option<String>>) {
    for (k, v) in s {
        match d.get_mut(&k) {
            None | Some(None) => {
                d.insert(k, v);
            }
            Some(Some(existing)) => {
                if let Some(v) = v
                    && !v.is_empty()
                {
                    *existing = v;
                }
            }
        }
    }
}

fn keyed<T, K: Ord>(d: &mut Vec<T>, s: Vec<T>, key: impl Fn(&T) -> K) {
    let mut m: BTreeMap<K, T> = BTreeMap::new();
    for item in std::mem::take(d).into_iter().chain(s) {
        m.insert(key(&item), item);
    }
    *d = m.into_values().collect();
}

fn service(d: &mut ServiceConfig, s: ServiceConfig) {
    build(&mut d.build, s.build);
    append(&mut d.cap_add, s.cap_add);
    append(&mut d.cap_drop, s.cap_drop);
    string(&mut d.cgroupns_mode, s.cgroupns_mode);
    string(&mut d.cgroup_parent, s.cgroup_parent);
    replace_list(&mut d.command, s.command);
    merge_refs(&mut d.configs, s.configs);
    string(&mut d.container_name, s.container_name);
    string(&mut d.credential_spec.config, s.credential_spec.config);
    string(&mut d.credential_spec.file, s.credential_spec.file);
    string(&mut d.credential_spec.registry, s.credential_spec.registry);
    append(&mut d.depends_on, s.depends_on);
    deploy(&mut d.deploy, s.deploy);
    append(&mut d.devices, s.devices);
    append(&mut d.dns, s.dns);
    append(&mut d.dns_search, s.dns_search);
    string(&mut d.domainname, s.domainname);
    replace_list(&mut d.entrypoint, s.entrypoint);
    envmap(&mut d.environment, s.environment);
    append(&mut d.env_file, s.env_file);
    append(&mut d.expose, s.expose);
    append(&mut d.external_links, s.external_links);
    append(&mut d.extra_hosts, s.extra_hosts);
    string(&mut d.hostname, s.hostname);
    opt_struct(&mut d.healthcheck, s.healthcheck, healthcheck);
    string(&mut d.image, s.image);
    opt_struct(&mut d.init, s.init, flag);
    string(&mut d.ipc, s.ipc);
    string(&mut d.isolation, s.isolation);
    strmap(&mut d.labels, s.labels);
    append(&mut d.links, s.links);
    opt_struct(&mut d.logging, s.logging, logging);
    string(&mut d.mac_address, s.mac_address);
    string(&mut d.network_mode, s.network_mode);
    networks(&mut d.networks, s.networks);
    string(&mut d.pid, s.pid);
    if d.ports.is_empty() {
        append(&mut d.ports, s.ports);
    } else {
        keyed(&mut d.ports, s.ports, |p| p.published);
    }
    rest(d, s.privileged, s.read_only, s.restart, s.secrets, s.security_opt, s.shm_size);
    flag(&mut d.stdin_open, s.stdin_open);
    opt(&mut d.stop_grace_period, s.stop_grace_period);
    string(&mut d.stop_signal, s.stop_signal);
    strmap(&mut d.sysctls, s.sysctls);
    append(&mut d.tmpfs, s.tmpfs);
    flag(&mut d.tty, s.tty);
    d.ulimits.extend(s.ulimits);
    string(&mut d.user, s.user);
    string(&mut d.userns_mode, s.userns_mode);
    if d.volumes.is_empty() {
        append(&mut d.volumes, s.volumes);
    } else {
        keyed(&mut d.volumes, s.volumes, |v| v.target.clone());
    }
    string(&mut d.working_dir, s.working_dir);
    extras(&mut d.extras, s.extras);
}

#[allow(clippy::too_many_arguments)] // one call site, splitting `service` for size
fn rest(
    d: &mut ServiceConfig,
    privileged: bool,
    read_only: bool,
    restart: String,
    secrets: Vec<FileReference>,
    security_opt: Vec<String>,
    shm_size: String,
) {
    flag(&mut d.privileged, privileged);
    flag(&mut d.read_only, read_only);
    string(&mut d.restart, restart);
    merge_refs(&mut d.secrets, secrets);
    append(&mut d.security_opt, security_opt);
    string(&mut d.shm_size, shm_size);
}

fn merge_refs(d: &mut Vec<FileReference>, s: Vec<FileReference>) {
    if d.is_empty() {
        append(d, s);
    } else {
        keyed(d, s, |r| r.source.clone());
    }
}

fn build(d: &mut BuildConfig, s: BuildConfig) {
    string(&mut d.context, s.context);
    string(&mut d.dockerfile, s.dockerfile);
    envmap(&mut d.args, s.args);
    strmap(&mut d.labels, s.labels);
    append(&mut d.cache_from, s.cache_from);
    append(&mut d.extra_hosts, s.extra_hosts);
    string(&mut d.network, s.network);
    string(&mut d.target, s.target);
}

fn healthcheck(d: &mut HealthCheck, s: HealthCheck) {
    append(&mut d.test, s.test);
    opt(&mut d.timeout, s.timeout);
    opt(&mut d.interval, s.interval);
    opt(&mut d.retries, s.retries);
    opt(&mut d.start_period, s.start_period);
    opt(&mut d.start_interval, s.start_interval);
    flag(&mut d.disable, s.disable);
}

fn logging(d: &mut Logging, s: Logging) {
    if d.driver == s.driver || d.driver.is_empty() || s.driver.is_empty() {
        if d.driver.is_empty() {
            d.driver = s.driver;
        }
        strmap(&mut d.options, s.options);
    } else {
        *d = s;
    }
}

fn networks(
    d: &mut BTreeMap<String, Option<ServiceNetwork>>,
    s: BTreeMap<String, Option<ServiceNetwork>>,
) {
    for (k, v) in s {
        match d.get_mut(&k) {
            None | Some(None) => {
                d.insert(k, v);
            }
            Some(Some(existing)) => {
                if let Some(v) = v {
                    existing.aliases = v.aliases;
                    string(&mut existing.ipv4_address, v.ipv4_address);
                    string(&mut existing.ipv6_address, v.ipv6_address);
                }
            }
        }
    }
}

fn update(d: &mut UpdateConfig, s: UpdateConfig) {
    opt(&mut d.parallelism, s.parallelism);
    int(&mut d.delay, s.delay);
    string(&mut d.failure_action, s.failure_action);
    int(&mut d.monitor, s.monitor);
    if s.max_failure_ratio != 0.0 {
        d.max_failure_ratio = s.max_failure_ratio;
    }
    string(&mut d.order, s.order);
}

fn deploy(d: &mut DeployConfig, s: DeployConfig) {
    string(&mut d.mode, s.mode);
    if s.replicas.is_some() {
        d.replicas = s.replicas;
    }
    strmap(&mut d.labels, s.labels);
    opt_struct(&mut d.update_config, s.update_config, update);
    opt_struct(&mut d.rollback_config, s.rollback_config, update);
    opt_struct(&mut d.resources.limits, s.resources.limits, |d, s| {
        string(&mut d.cpus, s.cpus);
        int(&mut d.memory, s.memory);
        int(&mut d.pids, s.pids);
    });
    opt_struct(&mut d.resources.reservations, s.resources.reservations, |d, s| {
        string(&mut d.cpus, s.cpus);
        int(&mut d.memory, s.memory);
        append(&mut d.generic_resources, s.generic_resources);
    });
    opt_struct(&mut d.restart_policy, s.restart_policy, |d, s| {
        string(&mut d.condition, s.condition);
        opt(&mut d.delay, s.delay);
        opt(&mut d.max_attempts, s.max_attempts);
        opt(&mut d.window, s.window);
    });
    append(&mut d.placement.constraints, s.placement.constraints);
    append(&mut d.placement.preferences, s.placement.preferences);
    int(&mut d.placement.max_replicas_per_node, s.placement.max_replicas_per_node);
    string(&mut d.endpoint_mode, s.endpoint_mode);
}

/// `map[string]interface{}` as mergo merges it: nested maps merge, lists append, anything
/// else (null included) is replaced.
fn extras(d: &mut Map, s: Map) {
    for (k, v) in s {
        match (d.get_mut(&k), v) {
            (Some(Value::Map(dm)), Value::Map(sm)) if !dm.is_empty() => extras(dm, sm),
            (Some(Value::Seq(dl)), Value::Seq(sl)) => dl.extend(sl),
            (_, v) => {
                d.insert(k, v);
            }
        }
    }
}
