//! Decoding one service.

use super::fields::Fields;
use super::{DecodeError, extras, labels, mapping_or_list, string_map};
use crate::gostr::sprint;
use crate::model::*;
use crate::value::{Map, Value};

/// Decodes the mapping of one service. Port warnings are appended to `warnings`.
pub fn decode_service(
    name: &str,
    m: &Map,
    warnings: &mut Vec<String>,
) -> Result<ServiceConfig, DecodeError> {
    let f = Fields::new(m, "");
    let mut s = ServiceConfig { name: name.to_owned(), ..Default::default() };
    s.build = build(&f)?;
    s.cap_add = f.strings("cap_add", "cap_add")?;
    s.cap_drop = f.strings("cap_drop", "cap_drop")?;
    s.cgroupns_mode = f.string("cgroupns_mode", "cgroupns_mode")?;
    s.cgroup_parent = f.string("cgroup_parent", "cgroup_parent")?;
    s.command = shell_command(&f, "command", "Command")?;
    s.configs = file_refs(&f, "configs", "Configs")?;
    s.container_name = f.string("container_name", "container_name")?;
    if let Some(c) = f.map("credential_spec") {
        let c = Fields::new(c, "credential_spec");
        s.credential_spec = CredentialSpec {
            config: c.string("config", "config")?,
            file: c.string("file", "file")?,
            registry: c.string("registry", "registry")?,
        };
    }
    s.depends_on = f.strings("depends_on", "depends_on")?;
    if let Some(d) = f.map("deploy") {
        s.deploy = deploy(&Fields::new(d, "Deploy"))?;
    }
    s.devices = f.strings("devices", "Devices")?;
    s.dns = f.string_list("dns", "DNS")?;
    s.dns_search = f.string_list("dns_search", "dns_search")?;
    s.domainname = f.string("domainname", "domainname")?;
    s.entrypoint = shell_command(&f, "entrypoint", "Entrypoint")?;
    if let Some(v) = f.raw("environment") {
        s.environment = mapping_or_list(v, '=', true, "Environment")?;
    }
    s.env_file = f.string_list("env_file", "env_file")?;
    s.expose = f.strings("expose", "Expose")?;
    s.external_links = f.strings("external_links", "external_links")?;
    s.extra_hosts = hosts(f.get("extra_hosts"));
    s.hostname = f.string("hostname", "Hostname")?;
    if let Some(h) = f.map("healthcheck") {
        s.healthcheck = Some(healthcheck(&Fields::new(h, "HealthCheck"))?);
    }
    s.image = f.string("image", "Image")?;
    s.init = f.opt_bool("init", "Init")?;
    s.ipc = f.string("ipc", "Ipc")?;
    s.isolation = f.string("isolation", "isolation")?;
    if let Some(v) = f.raw("labels") {
        s.labels = labels(v, "Labels")?;
    }
    s.links = f.strings("links", "Links")?;
    if let Some(l) = f.map("logging") {
        let l = Fields::new(l, "Logging");
        s.logging = Some(Logging {
            driver: l.string("driver", "Driver")?,
            options: match l.raw("options") {
                Some(v) => string_map(v, "Logging.Options")?,
                None => Default::default(),
            },
        });
    }
    s.mac_address = f.string("mac_address", "mac_address")?;
    s.network_mode = f.string("network_mode", "network_mode")?;
    s.networks = networks(f.get("networks"))?;
    s.pid = f.string("pid", "Pid")?;
    s.ports = ports(f.get("ports"), warnings)?;
    finish(&f, s, m)
}

fn finish(f: &Fields<'_>, mut s: ServiceConfig, m: &Map) -> Result<ServiceConfig, DecodeError> {
    s.privileged = f.boolean("privileged", "Privileged")?;
    s.read_only = f.boolean("read_only", "read_only")?;
    s.restart = f.string("restart", "Restart")?;
    s.secrets = file_refs(f, "secrets", "Secrets")?;
    s.security_opt = f.strings("security_opt", "security_opt")?;
    s.shm_size = match f.get("shm_size") {
        Some(v @ (Value::Int(_) | Value::Float(_))) => sprint(v),
        _ => f.string("shm_size", "shm_size")?,
    };
    s.stdin_open = f.boolean("stdin_open", "stdin_open")?;
    s.stop_grace_period = f.duration("stop_grace_period", "stop_grace_period")?;
    s.stop_signal = f.string("stop_signal", "stop_signal")?;
    if let Some(v) = f.raw("sysctls") {
        s.sysctls = labels(v, "Sysctls")?;
    }
    s.tmpfs = f.string_list("tmpfs", "Tmpfs")?;
    s.tty = f.boolean("tty", "tty")?;
    if let Some(u) = f.map("ulimits") {
        for (k, v) in u {
            let limit = match v {
                Value::Int(i) => Ulimit { single: *i, ..Default::default() },
                Value::Map(lm) => {
                    let lf = Fields::new(lm, format!("Ulimits[{k}]"));
                    Ulimit {
                        single: 0,
                        soft: lf.int("soft", "Soft")?,
                        hard: lf.int("hard", "Hard")?,
                    }
                }
                other => {
                    return Err(DecodeError::wrong_type(&format!("Ulimits[{k}]"), "int", other));
                }
            };
            s.ulimits.insert(k.clone(), limit);
        }
    }
    s.user = f.string("user", "User")?;
    s.userns_mode = f.string("userns_mode", "userns_mode")?;
    s.volumes = volumes(f.get("volumes"))?;
    s.working_dir = f.string("working_dir", "working_dir")?;
    s.extras = extras(m);
    Ok(s)
}

fn build(f: &Fields<'_>) -> Result<BuildConfig, DecodeError> {
    match f.get("build") {
        None => Ok(BuildConfig::default()),
        Some(Value::Str(s)) => Ok(BuildConfig { context: s.clone(), ..Default::default() }),
        Some(Value::Map(b)) => {
            let b = Fields::new(b, "Build");
            Ok(BuildConfig {
                context: b.string("context", "Context")?,
                dockerfile: b.string("dockerfile", "Dockerfile")?,
                args: match b.raw("args") {
                    Some(v) => mapping_or_list(v, '=', true, "Build.Args")?,
                    None => Default::default(),
                },
                labels: match b.raw("labels") {
                    Some(v) => labels(v, "Build.Labels")?,
                    None => Default::default(),
                },
                cache_from: b.string_list("cache_from", "cache_from")?,
                extra_hosts: hosts(b.get("extra_hosts")),
                network: b.string("network", "Network")?,
                target: b.string("target", "Target")?,
            })
        }
        Some(other) => Err(DecodeError::wrong_type("Build", "BuildConfig", other)),
    }
}

fn shell_command(f: &Fields<'_>, key: &str, name: &str) -> Result<Vec<String>, DecodeError> {
    match f.get(key) {
        Some(Value::Str(s)) => {
            crate::shlex::split(s).map_err(|e| DecodeError::field(name, e.to_string()))
        }
        _ => f.strings(key, name),
    }
}

fn file_refs(f: &Fields<'_>, key: &str, name: &str) -> Result<Vec<FileReference>, DecodeError> {
    let Some(Value::Seq(items)) = f.get(key) else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{name}[{i}]");
        out.push(match item {
            Value::Str(s) => FileReference { source: s.clone(), ..Default::default() },
            Value::Map(m) => {
                let r = Fields::new(m, path.clone());
                let mode = match r.get("mode") {
                    None => None,
                    Some(Value::Int(i)) => u32::try_from(*i).ok(),
                    Some(other) => {
                        return Err(DecodeError::wrong_type(&r.sub("Mode"), "uint32", other));
                    }
                };
                FileReference {
                    source: r.string("source", "Source")?,
                    target: r.string("target", "Target")?,
                    uid: r.string("uid", "UID")?,
                    gid: r.string("gid", "GID")?,
                    mode,
                }
            }
            other => return Err(DecodeError::wrong_type(&path, "FileReferenceConfig", other)),
        });
    }
    Ok(out)
}

/// `HostsList`: `host:ip` entries (`host=ip` accepted, IPv6 brackets removed, entries
/// without an address dropped); a mapping becomes sorted entries.
fn hosts(v: Option<&Value>) -> Vec<String> {
    let entry = |host: &str, ip: &str| {
        let ip = ip.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(ip);
        format!("{host}:{ip}")
    };
    match v {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|item| {
                let s = sprint(item);
                let (h, ip) = s.split_once('=').or_else(|| s.split_once(':'))?;
                Some(entry(h, ip))
            })
            .collect(),
        Some(Value::Map(m)) => {
            let mut out: Vec<String> = m
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Null))
                .map(|(k, v)| entry(k, &sprint(v)))
                .collect();
            out.sort();
            out
        }
        _ => Vec::new(),
    }
}

fn healthcheck(h: &Fields<'_>) -> Result<HealthCheck, DecodeError> {
    let test = match h.get("test") {
        Some(Value::Str(s)) => vec!["CMD-SHELL".to_owned(), s.clone()],
        _ => h.strings("test", "Test")?,
    };
    Ok(HealthCheck {
        test,
        timeout: h.duration("timeout", "Timeout")?,
        interval: h.duration("interval", "Interval")?,
        retries: h.uint("retries", "Retries")?,
        start_period: h.duration("start_period", "start_period")?,
        start_interval: h.duration("start_interval", "start_interval")?,
        disable: h.boolean("disable", "Disable")?,
    })
}

fn networks(
    v: Option<&Value>,
) -> Result<std::collections::BTreeMap<String, Option<ServiceNetwork>>, DecodeError> {
    let mut out = std::collections::BTreeMap::new();
    match v {
        Some(Value::Seq(items)) => {
            for item in items {
                out.insert(sprint(item), None);
            }
        }
        Some(Value::Map(m)) => {
            for (k, v) in m {
                let n = match v {
                    Value::Map(nm) => {
                        let nf = Fields::new(nm, format!("Networks[{k}]"));
                        Some(ServiceNetwork {
                            aliases: nf.strings("aliases", "Aliases")?,
                            driver_opts: match nf.raw("driver_opts") {
                                Some(v) => string_map(v, "driver_opts")?,
                                None => Default::default(),
                            },
                            ipv4_address: nf.string("ipv4_address", "ipv4_address")?,
                            ipv6_address: nf.string("ipv6_address", "ipv6_address")?,
                        })
                    }
                    _ => None,
                };
                out.insert(k.clone(), n);
            }
        }
        _ => {}
    }
    Ok(out)
}

fn ports(v: Option<&Value>, warnings: &mut Vec<String>) -> Result<Vec<PortConfig>, DecodeError> {
    let Some(Value::Seq(items)) = v else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Int(_) | Value::Str(_) => {
                let spec = sprint(item);
                let p = crate::ports::to_port_configs(&spec, warnings)
                    .map_err(|e| DecodeError::field("Ports", e))?;
                out.extend(p);
            }
            Value::Map(m) => {
                let p = Fields::new(m, format!("Ports[{i}]"));
                let num = |k: &str, n: &str| -> Result<u32, DecodeError> {
                    Ok(p.uint(k, n)?.map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)))
                };
                out.push(PortConfig {
                    mode: p.string("mode", "Mode")?,
                    target: num("target", "Target")?,
                    published: num("published", "Published")?,
                    protocol: p.string("protocol", "Protocol")?,
                });
            }
            other => {
                return Err(DecodeError::field(
                    "Ports",
                    format!("invalid type {} for port", super::go_type(other)),
                ));
            }
        }
    }
    Ok(out)
}

fn volumes(v: Option<&Value>) -> Result<Vec<VolumeMount>, DecodeError> {
    let Some(Value::Seq(items)) = v else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("Volumes[{i}]");
        out.push(match item {
            Value::Str(s) => {
                crate::volume_spec::parse_volume(s).map_err(|e| DecodeError::field(&path, e))?
            }
            Value::Map(m) => volume_long(&Fields::new(m, path))?,
            other => return Err(DecodeError::wrong_type(&path, "ServiceVolumeConfig", other)),
        });
    }
    Ok(out)
}

fn volume_long(v: &Fields<'_>) -> Result<VolumeMount, DecodeError> {
    let sub = |k: &str| v.map(k).map(|m| Fields::new(m, v.sub(k)));
    Ok(VolumeMount {
        kind: v.string("type", "Type")?,
        source: v.string("source", "Source")?,
        target: v.string("target", "Target")?,
        read_only: v.boolean("read_only", "read_only")?,
        consistency: v.string("consistency", "Consistency")?,
        bind: match sub("bind") {
            Some(b) => Some(b.string("propagation", "Propagation")?),
            None => v.raw("bind").filter(|x| !matches!(x, Value::Null)).map(|_| String::new()),
        },
        volume_nocopy: match sub("volume") {
            Some(b) => Some(b.boolean("nocopy", "nocopy")?),
            None => None,
        },
        tmpfs_size: match sub("tmpfs") {
            Some(t) => Some(t.size("size", "Size")?),
            None => None,
        },
        cluster: v.get("cluster").is_some(),
    })
}

fn update_config(
    d: &Fields<'_>,
    key: &str,
    name: &str,
) -> Result<Option<UpdateConfig>, DecodeError> {
    let Some(u) = d.map(key) else { return Ok(None) };
    let u = Fields::new(u, d.sub(name));
    Ok(Some(UpdateConfig {
        parallelism: u.uint("parallelism", "Parallelism")?,
        delay: u.duration("delay", "Delay")?.unwrap_or(0),
        failure_action: u.string("failure_action", "failure_action")?,
        monitor: u.duration("monitor", "Monitor")?.unwrap_or(0),
        max_failure_ratio: u.float("max_failure_ratio", "max_failure_ratio")? as f32,
        order: u.string("order", "Order")?,
    }))
}

fn deploy(d: &Fields<'_>) -> Result<DeployConfig, DecodeError> {
    let mut out = DeployConfig {
        mode: d.string("mode", "Mode")?,
        replicas: d.uint("replicas", "Replicas")?,
        ..Default::default()
    };
    if let Some(v) = d.raw("labels") {
        out.labels = labels(v, "Deploy.Labels")?;
    }
    out.update_config = update_config(d, "update_config", "update_config")?;
    out.rollback_config = update_config(d, "rollback_config", "rollback_config")?;
    if let Some(r) = d.map("resources") {
        let r = Fields::new(r, d.sub("Resources"));
        if let Some(l) = r.map("limits") {
            let l = Fields::new(l, r.sub("Limits"));
            out.resources.limits = Some(ResourceLimit {
                cpus: l.string("cpus", "cpus")?,
                memory: l.size("memory", "memory")?,
                pids: l.int("pids", "pids")?,
            });
        }
        if let Some(l) = r.map("reservations") {
            let l = Fields::new(l, r.sub("Reservations"));
            out.resources.reservations = Some(ResourceReservation {
                cpus: l.string("cpus", "cpus")?,
                memory: l.size("memory", "memory")?,
                generic_resources: generic_resources(&l)?,
            });
        }
    }
    if let Some(r) = d.map("restart_policy") {
        let r = Fields::new(r, d.sub("restart_policy"));
        out.restart_policy = Some(RestartPolicy {
            condition: r.string("condition", "Condition")?,
            delay: r.duration("delay", "Delay")?,
            max_attempts: r.uint("max_attempts", "max_attempts")?,
            window: r.duration("window", "Window")?,
        });
    }
    if let Some(p) = d.map("placement") {
        let p = Fields::new(p, d.sub("Placement"));
        let mut prefs = Vec::new();
        if let Some(Value::Seq(items)) = p.get("preferences") {
            for item in items {
                if let Value::Map(m) = item {
                    prefs.push(Fields::new(m, "").string("spread", "Spread")?);
                }
            }
        }
        out.placement = Placement {
            constraints: p.strings("constraints", "Constraints")?,
            preferences: prefs,
            max_replicas_per_node: p
                .uint("max_replicas_per_node", "max_replicas_per_node")?
                .unwrap_or(0),
        };
    }
    out.endpoint_mode = d.string("endpoint_mode", "endpoint_mode")?;
    Ok(out)
}

fn generic_resources(l: &Fields<'_>) -> Result<Vec<GenericResource>, DecodeError> {
    let Some(Value::Seq(items)) = l.get("generic_resources") else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for item in items {
        let Value::Map(m) = item else { continue };
        let g = Fields::new(m, l.sub("generic_resources"));
        let spec = match g.map("discrete_resource_spec") {
            Some(d) => {
                let d = Fields::new(d, g.sub("discrete_resource_spec"));
                Some(DiscreteResource {
                    kind: d.string("kind", "Kind")?,
                    value: d.int("value", "Value")?,
                })
            }
            None => None,
        };
        out.push(GenericResource { discrete_resource_spec: spec });
    }
    Ok(out)
}
