//! Specs flattened into `compose path → value` maps, the unit of the semantic diff.
//!
//! Paths use the stack file's words (`deploy.replicas`, `environment.LOG_LEVEL`,
//! `volumes[/data].source`), so a reviewer reads the diff in the language they wrote.
//! Lists whose order carries no meaning are keyed by identity (mounts by target, ports by
//! published:target/protocol, configs and secrets by target, networks by name), so
//! reordering them is not a change; lists whose order matters (command, entrypoint,
//! placement preferences) are one value.

use reconciler_types::stack::{IMAGE_LABEL, NAMESPACE_LABEL};
use reconciler_types::{
    ConfigSpec, FailureAction, NetworkSpec, PortProtocol, PublishMode, RestartCondition,
    SecretSpec, ServiceMode, ServiceSpec, UpdateConfig, UpdateOrder,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// A flattened object: dotted compose path → rendered value.
pub type Fields = BTreeMap<String, String>;

/// Go's `time.Duration.String()` (`1m30s`, `500ms`, `0s`).
pub fn fmt_duration(d: Duration) -> String {
    schema::gostr::format_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Nano CPUs as the decimal a stack file would write (`0.5`).
pub fn fmt_cpus(nano: i64) -> String {
    let whole = nano / 1_000_000_000;
    let frac = nano % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:09}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Bytes in the largest binary unit that divides them exactly (`256MiB`).
pub fn fmt_bytes(b: i64) -> String {
    const UNITS: [(&str, i64); 4] =
        [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)];
    for (unit, size) in UNITS {
        if b != 0 && b % size == 0 {
            return format!("{}{unit}", b / size);
        }
    }
    "0".into()
}

fn list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn put(f: &mut Fields, k: impl Into<String>, v: impl Into<String>) {
    f.insert(k.into(), v.into());
}

fn put_nonempty(f: &mut Fields, k: &str, v: &str) {
    if !v.is_empty() {
        put(f, k, v);
    }
}

fn put_map(f: &mut Fields, prefix: &str, m: &BTreeMap<String, String>) {
    for (k, v) in m {
        if k != NAMESPACE_LABEL && k != IMAGE_LABEL {
            put(f, format!("{prefix}.{k}"), v.clone());
        }
    }
}

fn protocol(p: PortProtocol) -> &'static str {
    match p {
        PortProtocol::Tcp => "tcp",
        PortProtocol::Udp => "udp",
        PortProtocol::Sctp => "sctp",
    }
}

/// The restart condition as written in a stack file.
pub fn condition_str(c: RestartCondition) -> &'static str {
    match c {
        RestartCondition::None => "none",
        RestartCondition::OnFailure => "on-failure",
        RestartCondition::Any => "any",
    }
}

/// The failure action as written in a stack file.
pub fn failure_action_str(a: FailureAction) -> &'static str {
    match a {
        FailureAction::Pause => "pause",
        FailureAction::Continue => "continue",
        FailureAction::Rollback => "rollback",
    }
}

/// The update order as written in a stack file.
pub fn order_str(o: UpdateOrder) -> &'static str {
    match o {
        UpdateOrder::StopFirst => "stop-first",
        UpdateOrder::StartFirst => "start-first",
    }
}

fn put_update(f: &mut Fields, prefix: &str, u: &UpdateConfig) {
    put(f, format!("{prefix}.parallelism"), u.parallelism.to_string());
    put(f, format!("{prefix}.delay"), fmt_duration(u.delay));
    put(f, format!("{prefix}.failure_action"), failure_action_str(u.failure_action));
    put(f, format!("{prefix}.monitor"), fmt_duration(u.monitor));
    put(f, format!("{prefix}.max_failure_ratio"), u.max_failure_ratio.to_string());
    put(f, format!("{prefix}.order"), order_str(u.order));
}

/// Flattens a service spec.
pub fn service_fields(s: &ServiceSpec) -> Fields {
    let mut f = Fields::new();
    let c = &s.task_template.container_spec;
    put(&mut f, "image", c.image.clone());
    put_map(&mut f, "labels", &c.labels);
    if !c.command.is_empty() {
        put(&mut f, "entrypoint", list(&c.command));
    }
    if !c.args.is_empty() {
        put(&mut f, "command", list(&c.args));
    }
    put_nonempty(&mut f, "hostname", &c.hostname);
    for e in &c.env {
        match e.split_once('=') {
            Some((k, v)) => put(&mut f, format!("environment.{k}"), v),
            None => put(&mut f, format!("environment.{e}"), "(no value)"),
        }
    }
    put_nonempty(&mut f, "working_dir", &c.dir);
    put_nonempty(&mut f, "user", &c.user);
    for (k, v) in [("tty", c.tty), ("stdin_open", c.open_stdin), ("read_only", c.read_only)] {
        if v {
            put(&mut f, k, "true");
        }
    }
    put_nonempty(&mut f, "stop_signal", &c.stop_signal);
    if let Some(d) = c.stop_grace_period {
        put(&mut f, "stop_grace_period", fmt_duration(d));
    }
    if let Some(i) = c.init {
        put(&mut f, "init", i.to_string());
    }
    put_nonempty(&mut f, "isolation", &c.isolation);
    container_lists(&mut f, s);
    task_fields(&mut f, s);
    deploy_fields(&mut f, s);
    f
}

fn container_lists(f: &mut Fields, s: &ServiceSpec) {
    let c = &s.task_template.container_spec;
    for m in &c.mounts {
        let p = format!("volumes[{}]", m.target);
        put(f, format!("{p}.type"), format!("{:?}", m.kind).to_lowercase());
        put_nonempty(f, &format!("{p}.source"), &m.source);
        if m.read_only {
            put(f, format!("{p}.read_only"), "true");
        }
        put_map(f, &p, &m.options);
    }
    if let Some(h) = &c.healthcheck {
        put(f, "healthcheck.test", list(&h.test));
        let durations = [
            ("interval", h.interval),
            ("timeout", h.timeout),
            ("start_period", h.start_period),
            ("start_interval", h.start_interval),
        ];
        for (k, d) in durations {
            if let Some(d) = d {
                put(f, format!("healthcheck.{k}"), fmt_duration(d));
            }
        }
        if let Some(r) = h.retries {
            put(f, "healthcheck.retries", r.to_string());
        }
    }
    for (k, v) in [("extra_hosts", &c.hosts), ("dns", &c.dns_config.nameservers)] {
        if !v.is_empty() {
            put(f, k, list(v));
        }
    }
    for (k, v) in [("dns_search", &c.dns_config.search), ("dns_opt", &c.dns_config.options)] {
        if !v.is_empty() {
            put(f, k, list(v));
        }
    }
    for r in &c.configs {
        let p = format!("configs[{}]", r.target);
        put(f, format!("{p}.source"), r.config_name.clone());
        put(f, format!("{p}.uid"), r.uid.clone());
        put(f, format!("{p}.gid"), r.gid.clone());
        put(f, format!("{p}.mode"), format!("{:04o}", r.mode));
    }
    for r in &c.secrets {
        let p = format!("secrets[{}]", r.target);
        put(f, format!("{p}.source"), r.secret_name.clone());
        put(f, format!("{p}.uid"), r.uid.clone());
        put(f, format!("{p}.gid"), r.gid.clone());
        put(f, format!("{p}.mode"), format!("{:04o}", r.mode));
    }
    put_map(f, "sysctls", &c.sysctls);
    for (k, v) in [("cap_add", &c.cap_add), ("cap_drop", &c.cap_drop)] {
        if !v.is_empty() {
            put(f, k, list(v));
        }
    }
    for u in &c.ulimits {
        put(f, format!("ulimits.{}", u.name), format!("{}:{}", u.soft, u.hard));
    }
}

fn task_fields(f: &mut Fields, s: &ServiceSpec) {
    let t = &s.task_template;
    let (l, r) = (&t.resources.limits, &t.resources.reservations);
    let res = "deploy.resources";
    for (k, v) in [("limits.cpus", l.nano_cpus), ("reservations.cpus", r.nano_cpus)] {
        if v != 0 {
            put(f, format!("{res}.{k}"), fmt_cpus(v));
        }
    }
    for (k, v) in [("limits.memory", l.memory_bytes), ("reservations.memory", r.memory_bytes)] {
        if v != 0 {
            put(f, format!("{res}.{k}"), fmt_bytes(v));
        }
    }
    if l.pids != 0 {
        put(f, format!("{res}.limits.pids"), l.pids.to_string());
    }
    for g in &r.generic_resources {
        put(f, format!("{res}.reservations.generic_resources.{}", g.kind), g.value.to_string());
    }
    let rp = &t.restart_policy;
    put(f, "deploy.restart_policy.condition", condition_str(rp.condition));
    if let Some(d) = rp.delay {
        put(f, "deploy.restart_policy.delay", fmt_duration(d));
    }
    put(f, "deploy.restart_policy.max_attempts", rp.max_attempts.to_string());
    if let Some(w) = rp.window {
        put(f, "deploy.restart_policy.window", fmt_duration(w));
    }
    let pl = &t.placement;
    let mut constraints = pl.constraints.clone();
    constraints.sort();
    constraints.dedup();
    if !constraints.is_empty() {
        put(f, "deploy.placement.constraints", list(&constraints));
    }
    if !pl.preferences.is_empty() {
        let spreads: Vec<String> = pl.preferences.iter().map(|p| p.spread.clone()).collect();
        put(f, "deploy.placement.preferences", list(&spreads));
    }
    if pl.max_replicas != 0 {
        put(f, "deploy.placement.max_replicas_per_node", pl.max_replicas.to_string());
    }
    for n in &t.networks {
        put(f, format!("networks[{}].aliases", n.target), list(&n.aliases));
    }
    if let Some(d) = &t.log_driver {
        put(f, "logging.driver", d.name.clone());
        put_map(f, "logging.options", &d.options);
    }
    if t.force_update != 0 {
        put(f, "force_update", t.force_update.to_string());
    }
}

fn deploy_fields(f: &mut Fields, s: &ServiceSpec) {
    match s.mode {
        ServiceMode::Replicated { replicas } => {
            put(f, "deploy.mode", "replicated");
            put(f, "deploy.replicas", replicas.to_string());
        }
        ServiceMode::Global => put(f, "deploy.mode", "global"),
    }
    put_map(f, "deploy.labels", &s.labels);
    put_update(f, "deploy.update_config", &s.update_config);
    put_update(f, "deploy.rollback_config", &s.rollback_config);
    let mode = match s.endpoint_spec.mode {
        reconciler_types::EndpointMode::Vip => "vip",
        reconciler_types::EndpointMode::Dnsrr => "dnsrr",
    };
    put(f, "deploy.endpoint_mode", mode);
    for p in &s.endpoint_spec.ports {
        let published =
            if p.published_port == 0 { String::new() } else { p.published_port.to_string() };
        let key = format!("ports[{published}:{}/{}]", p.target_port, protocol(p.protocol));
        let mode = match p.publish_mode {
            PublishMode::Ingress => "ingress",
            PublishMode::Host => "host",
        };
        put(f, key, mode);
    }
}

/// Flattens a network spec.
pub fn network_fields(n: &NetworkSpec) -> Fields {
    let mut f = Fields::new();
    put(&mut f, "driver", n.driver.clone());
    put_map(&mut f, "driver_opts", &n.driver_opts);
    put_map(&mut f, "labels", &n.labels);
    put(&mut f, "internal", n.internal.to_string());
    put(&mut f, "attachable", n.attachable.to_string());
    put_nonempty(&mut f, "ipam.driver", &n.ipam_driver);
    if !n.ipam_subnets.is_empty() {
        put(&mut f, "ipam.config", list(&n.ipam_subnets));
    }
    f
}

/// Flattens a config's metadata (its content is compared separately).
pub fn config_fields(c: &ConfigSpec) -> Fields {
    let mut f = Fields::new();
    put(&mut f, "name", c.name.clone());
    put_map(&mut f, "labels", &c.labels);
    f
}

/// Flattens a secret's metadata. Never its digest or value.
pub fn secret_fields(s: &SecretSpec) -> Fields {
    let mut f = Fields::new();
    put_map(&mut f, "labels", &s.labels);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_duration_matches_go() {
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn fmt_cpus_and_bytes_read_like_a_stack_file() {
        assert_eq!(fmt_cpus(500_000_000), "0.5");
        assert_eq!(fmt_cpus(2_000_000_000), "2");
        assert_eq!(fmt_bytes(256 << 20), "256MiB");
        assert_eq!(fmt_bytes(1000), "1000B");
    }
}
