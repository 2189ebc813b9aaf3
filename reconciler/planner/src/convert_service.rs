//! One compose service → a Swarm `ServiceSpec` (cli: `cli/compose/convert/service.go`).

use crate::convert::{ConvertError, Names};
use reconciler_types::stack::IMAGE_LABEL;
use reconciler_types::{
    ConfigReference, ContainerSpec, DnsConfig, EndpointMode, EndpointSpec, FailureAction,
    GenericResource, HealthConfig, LogDriver, Mount, MountType, NetworkAttachment, Placement,
    PlacementPreference, PortConfig, PortProtocol, PublishMode, ResourceLimits,
    ResourceReservations, Resources, RestartCondition, RestartPolicy, SecretReference, ServiceMode,
    ServiceSpec, TaskSpec, Ulimit, UpdateConfig, UpdateOrder,
};
use schema::model::{self as m, ServiceConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// Swarm's restart delay when none is given.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(5);

/// Converts one service, collecting every problem.
pub(crate) fn convert_service(
    names: &Names<'_>,
    svc: &ServiceConfig,
) -> Result<ServiceSpec, Vec<ConvertError>> {
    let mut errors = Vec::new();
    let at = |field: &str| format!("services.{}.{field}", svc.name);
    let mut push =
        |field: &str, message: String| errors.push(ConvertError::new(at(field), message));
    let mode = match (svc.deploy.mode.as_str(), svc.deploy.replicas) {
        ("" | "replicated", r) => ServiceMode::Replicated { replicas: r.unwrap_or(1) },
        ("global", None) => ServiceMode::Global,
        ("global", Some(_)) => {
            push("deploy.replicas", "replicas can only be used with replicated mode".into());
            ServiceMode::Global
        }
        (other, _) => {
            push("deploy.mode", format!("service mode {other:?} is not supported by flotilla"));
            ServiceMode::default()
        }
    };
    let resources = convert_resources(&svc.deploy.resources).unwrap_or_else(|(f, e)| {
        push(f, e);
        Resources::default()
    });
    let healthcheck = convert_healthcheck(svc.healthcheck.as_ref()).unwrap_or_else(|e| {
        push("healthcheck", e);
        None
    });
    let mounts = convert_mounts(names, svc).unwrap_or_else(|e| {
        push("volumes", e);
        Vec::new()
    });
    let secrets = convert_secret_refs(names, svc).unwrap_or_else(|e| {
        push("secrets", e);
        Vec::new()
    });
    let configs = convert_config_refs(names, svc).unwrap_or_else(|e| {
        push("configs", e);
        Vec::new()
    });
    let networks = convert_networks(names, svc).unwrap_or_else(|e| {
        push("networks", e);
        Vec::new()
    });
    let restart_policy = convert_restart(svc).unwrap_or_else(|e| {
        push("restart", e);
        RestartPolicy::default()
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut labels = names.labels(&svc.deploy.labels);
    labels.insert(IMAGE_LABEL.to_owned(), svc.image.clone());
    let container_spec = container_spec(names, svc, mounts, healthcheck, configs, secrets);
    Ok(ServiceSpec {
        name: names.scope(&svc.name),
        labels,
        task_template: TaskSpec {
            container_spec,
            resources,
            restart_policy,
            placement: convert_placement(&svc.deploy.placement),
            networks,
            log_driver: svc
                .logging
                .as_ref()
                .map(|l| LogDriver { name: l.driver.clone(), options: l.options.clone() }),
            force_update: 0,
        },
        mode,
        update_config: convert_update(svc.deploy.update_config.as_ref()),
        rollback_config: convert_update(svc.deploy.rollback_config.as_ref()),
        endpoint_spec: EndpointSpec {
            mode: if svc.deploy.endpoint_mode == "dnsrr" {
                EndpointMode::Dnsrr
            } else {
                EndpointMode::Vip
            },
            ports: convert_ports(&svc.ports),
        },
    })
}

/// The container part of the spec, from the parts already checked.
fn container_spec(
    names: &Names<'_>,
    svc: &ServiceConfig,
    mounts: Vec<Mount>,
    healthcheck: Option<HealthConfig>,
    configs: Vec<ConfigReference>,
    secrets: Vec<SecretReference>,
) -> ContainerSpec {
    ContainerSpec {
        image: svc.image.clone(),
        labels: names.labels(&svc.labels),
        command: svc.entrypoint.clone(),
        args: svc.command.clone(),
        hostname: svc.hostname.clone(),
        env: convert_env(&svc.environment),
        dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        tty: svc.tty,
        open_stdin: svc.stdin_open,
        read_only: svc.read_only,
        mounts,
        stop_signal: svc.stop_signal.clone(),
        stop_grace_period: svc.stop_grace_period.map(nanos),
        healthcheck,
        hosts: svc.extra_hosts.iter().map(|h| convert_host(h)).collect(),
        dns_config: DnsConfig {
            nameservers: svc.dns.clone(),
            search: svc.dns_search.clone(),
            options: Vec::new(),
        },
        configs,
        secrets,
        sysctls: svc.sysctls.clone(),
        cap_add: normalize_caps(&svc.cap_add),
        cap_drop: normalize_caps(&svc.cap_drop),
        ulimits: convert_ulimits(&svc.ulimits),
        init: svc.init,
        isolation: svc.isolation.clone(),
    }
}

/// A Go duration in nanoseconds (negative ones are refused by the loader) as a `Duration`.
pub fn nanos(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn convert_env(env: &BTreeMap<String, Option<String>>) -> Vec<String> {
    env.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect()
}

/// `host:ip` (or `host=ip`) → `ip host`, as `convertExtraHosts` writes `/etc/hosts` lines.
fn convert_host(h: &str) -> String {
    match h.find([':', '=']) {
        Some(i) => format!("{} {}", &h[i + 1..], &h[..i]),
        None => h.to_owned(),
    }
}

/// `EffectiveCapAddCapDrop`'s normal form: upper case, `CAP_` prefix, sorted, unique.
fn normalize_caps(caps: &[String]) -> Vec<String> {
    let mut out: Vec<String> = caps
        .iter()
        .map(|c| {
            let u = c.to_uppercase();
            if u == "ALL" || u.starts_with("CAP_") { u } else { format!("CAP_{u}") }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn convert_ulimits(u: &BTreeMap<String, m::Ulimit>) -> Vec<Ulimit> {
    u.iter()
        .map(|(name, l)| {
            let (soft, hard) = if l.single != 0 { (l.single, l.single) } else { (l.soft, l.hard) };
            Ulimit { name: name.clone(), soft, hard }
        })
        .collect()
}

/// `opts.ParseCPUs`: an exact decimal number of CPUs → nano CPUs.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let bad = || format!("failed to parse {s} as a rational number");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let whole: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let part: i64 =
        if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| bad())? };
    whole.checked_mul(1_000_000_000).and_then(|w| w.checked_add(part)).ok_or_else(bad)
}

fn convert_resources(r: &m::Resources) -> Result<Resources, (&'static str, String)> {
    let mut out = Resources::default();
    if let Some(l) = &r.limits {
        out.limits = ResourceLimits {
            nano_cpus: parse_cpus(&l.cpus).map_err(|e| ("deploy.resources.limits.cpus", e))?,
            memory_bytes: l.memory,
            pids: l.pids,
        };
    }
    if let Some(res) = &r.reservations {
        let mut generic: Vec<GenericResource> = res
            .generic_resources
            .iter()
            .filter_map(|g| g.discrete_resource_spec.as_ref())
            .map(|d| GenericResource { kind: d.kind.clone(), value: d.value })
            .collect();
        generic.sort();
        out.reservations = ResourceReservations {
            nano_cpus: parse_cpus(&res.cpus)
                .map_err(|e| ("deploy.resources.reservations.cpus", e))?,
            memory_bytes: res.memory,
            generic_resources: generic,
        };
    }
    Ok(out)
}

fn convert_healthcheck(h: Option<&m::HealthCheck>) -> Result<Option<HealthConfig>, String> {
    let Some(h) = h else { return Ok(None) };
    let d = |v: Option<i64>| v.map(nanos);
    if h.disable {
        if !h.test.is_empty() {
            return Err("test and disable can't be set at the same time".into());
        }
        return Ok(Some(HealthConfig { test: vec!["NONE".into()], ..HealthConfig::default() }));
    }
    Ok(Some(HealthConfig {
        test: h.test.clone(),
        interval: d(h.interval),
        timeout: d(h.timeout),
        retries: h.retries,
        start_period: d(h.start_period),
        start_interval: d(h.start_interval),
    }))
}

fn convert_mounts(names: &Names<'_>, svc: &ServiceConfig) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for v in &svc.volumes {
        let mut mount = Mount {
            kind: match v.kind.as_str() {
                "bind" => MountType::Bind,
                "tmpfs" => MountType::Tmpfs,
                "npipe" => MountType::Npipe,
                "cluster" => MountType::Cluster,
                _ => MountType::Volume,
            },
            source: v.source.clone(),
            target: v.target.clone(),
            read_only: v.read_only,
            options: BTreeMap::new(),
        };
        let opts = &mut mount.options;
        if !v.consistency.is_empty() {
            opts.insert("consistency".into(), v.consistency.clone());
        }
        if let Some(p) = &v.bind {
            opts.insert("propagation".into(), p.clone());
        }
        if let Some(n) = v.volume_nocopy {
            opts.insert("nocopy".into(), n.to_string());
        }
        if let Some(s) = v.tmpfs_size {
            opts.insert("size".into(), s.to_string());
        }
        if mount.kind == MountType::Volume && !v.source.is_empty() {
            let Some(vol) = names.config.volumes.get(&v.source) else {
                return Err(format!("undefined volume \"{}\"", v.source));
            };
            if vol.external.external {
                mount.source = vol.name.clone();
            } else {
                mount.source =
                    if vol.name.is_empty() { names.scope(&v.source) } else { vol.name.clone() };
                for (k, val) in names.labels(&vol.labels) {
                    opts.insert(format!("volume-label.{k}"), val);
                }
                if !vol.driver.is_empty() {
                    opts.insert("volume-driver".into(), vol.driver.clone());
                }
                for (k, val) in &vol.driver_opts {
                    opts.insert(format!("volume-opt.{k}"), val.clone());
                }
            }
        }
        out.push(mount);
    }
    Ok(out)
}

fn file_ref_defaults(r: &m::FileReference) -> (String, String, u32) {
    let uid = if r.uid.is_empty() { "0".to_owned() } else { r.uid.clone() };
    let gid = if r.gid.is_empty() { "0".to_owned() } else { r.gid.clone() };
    (uid, gid, r.mode.unwrap_or(0o444))
}

fn convert_secret_refs(
    names: &Names<'_>,
    svc: &ServiceConfig,
) -> Result<Vec<SecretReference>, String> {
    let mut out = Vec::new();
    for r in &svc.secrets {
        let Some(obj) = names.config.secrets.get(&r.source) else {
            return Err(format!("undefined secret \"{}\"", r.source));
        };
        let (uid, gid, mode) = file_ref_defaults(r);
        let target = if r.target.is_empty() { r.source.clone() } else { r.target.clone() };
        let secret_name = names.object_name(&r.source, obj);
        out.push(SecretReference { secret_name, target, uid, gid, mode });
    }
    out.sort_by(|a, b| (&a.secret_name, &a.target).cmp(&(&b.secret_name, &b.target)));
    Ok(out)
}

fn convert_config_refs(
    names: &Names<'_>,
    svc: &ServiceConfig,
) -> Result<Vec<ConfigReference>, String> {
    let mut out = Vec::new();
    for r in &svc.configs {
        let Some(obj) = names.config.configs.get(&r.source) else {
            return Err(format!("undefined config \"{}\"", r.source));
        };
        let (uid, gid, mode) = file_ref_defaults(r);
        let target = match r.target.as_str() {
            "" => format!("/{}", r.source),
            t if !t.starts_with('/') => format!("/{t}"),
            t => t.to_owned(),
        };
        let base = names.object_name(&r.source, obj);
        let config_name = names.config_versions.get(&base).cloned().unwrap_or(base);
        out.push(ConfigReference { config_name, target, uid, gid, mode });
    }
    out.sort_by(|a, b| (&a.config_name, &a.target).cmp(&(&b.config_name, &b.target)));
    Ok(out)
}

fn convert_networks(
    names: &Names<'_>,
    svc: &ServiceConfig,
) -> Result<Vec<NetworkAttachment>, String> {
    if svc.networks.is_empty() {
        return Ok(vec![NetworkAttachment {
            target: names.scope("default"),
            aliases: vec![svc.name.clone()],
        }]);
    }
    let mut out = Vec::new();
    for (key, settings) in &svc.networks {
        let target = match names.config.networks.get(key) {
            Some(n) if n.external.external || !n.name.is_empty() => {
                if n.name.is_empty() {
                    key.clone()
                } else {
                    n.name.clone()
                }
            }
            Some(_) => names.scope(key),
            None if key == "default" => names.scope(key),
            None => {
                return Err(format!(
                    "service \"{}\" references network \"{key}\", which is not declared",
                    svc.name
                ));
            }
        };
        let mut aliases = vec![svc.name.clone()];
        if let Some(s) = settings {
            aliases.extend(s.aliases.iter().cloned());
        }
        out.push(NetworkAttachment { target, aliases });
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(out)
}

fn convert_restart(svc: &ServiceConfig) -> Result<RestartPolicy, String> {
    if let Some(p) = &svc.deploy.restart_policy {
        let condition = match p.condition.as_str() {
            "none" => RestartCondition::None,
            "on-failure" => RestartCondition::OnFailure,
            "" | "any" => RestartCondition::Any,
            other => return Err(format!("invalid restart policy condition {other:?}")),
        };
        return Ok(RestartPolicy {
            condition,
            delay: Some(p.delay.map_or(DEFAULT_RESTART_DELAY, nanos)),
            max_attempts: p.max_attempts.unwrap_or(0),
            window: p.window.map(nanos).filter(|w| !w.is_zero()),
        });
    }
    let default = RestartPolicy { delay: Some(DEFAULT_RESTART_DELAY), ..RestartPolicy::default() };
    let r = svc.restart.as_str();
    match r {
        "" | "no" | "always" | "unless-stopped" => Ok(default),
        _ => match r.strip_prefix("on-failure") {
            Some("") => Ok(RestartPolicy { condition: RestartCondition::OnFailure, ..default }),
            Some(n) => {
                let max = n
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("invalid restart policy: {r}"))?;
                Ok(RestartPolicy {
                    condition: RestartCondition::OnFailure,
                    max_attempts: max,
                    ..default
                })
            }
            None => Err(format!("invalid restart policy: unknown policy '{r}'")),
        },
    }
}

fn convert_placement(p: &m::Placement) -> Placement {
    Placement {
        constraints: p.constraints.clone(),
        preferences: p
            .preferences
            .iter()
            .map(|s| PlacementPreference { spread: s.clone() })
            .collect(),
        max_replicas: p.max_replicas_per_node,
    }
}

/// `convertUpdateConfig` plus Swarm's server defaults (monitor 5 s when 0, pause, stop-first).
fn convert_update(u: Option<&m::UpdateConfig>) -> UpdateConfig {
    let Some(u) = u else { return UpdateConfig::default() };
    let defaults = UpdateConfig::default();
    UpdateConfig {
        parallelism: u.parallelism.unwrap_or(1),
        delay: nanos(u.delay),
        failure_action: match u.failure_action.as_str() {
            "continue" => FailureAction::Continue,
            "rollback" => FailureAction::Rollback,
            _ => FailureAction::Pause,
        },
        monitor: if u.monitor == 0 { defaults.monitor } else { nanos(u.monitor) },
        max_failure_ratio: u.max_failure_ratio,
        order: if u.order == "start-first" {
            UpdateOrder::StartFirst
        } else {
            UpdateOrder::StopFirst
        },
    }
}

fn convert_ports(ports: &[m::PortConfig]) -> Vec<PortConfig> {
    let mut out: Vec<PortConfig> = ports
        .iter()
        .map(|p| PortConfig {
            protocol: match p.protocol.as_str() {
                "udp" => PortProtocol::Udp,
                "sctp" => PortProtocol::Sctp,
                _ => PortProtocol::Tcp,
            },
            target_port: p.target,
            published_port: p.published,
            publish_mode: if p.mode == "host" { PublishMode::Host } else { PublishMode::Ingress },
        })
        .collect();
    out.sort_by_key(|p| (p.published_port, p.target_port, p.protocol, p.publish_mode));
    out
}
