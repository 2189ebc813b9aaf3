//! Turning the model into the [`Out`] tree that is written: Docker's field order, its
//! `omitempty` rules and its custom marshalers (durations, byte sizes, `external`, ulimits).

use super::*;
use crate::gostr::format_duration;
use crate::value::Value;
use crate::yaml::{Deferred, Out, ToOut, sort_keys};
use std::borrow::Cow;

/// Builds a mapping, leaving out fields that are `None`.
struct Fields<'a>(Vec<(Cow<'a, str>, Out<'a>)>);

impl<'a> Fields<'a> {
    fn new() -> Self {
        Fields(Vec::new())
    }
    fn put(&mut self, k: &'static str, v: Option<Out<'a>>) -> &mut Self {
        if let Some(v) = v {
            self.0.push((Cow::Borrowed(k), v));
        }
        self
    }
    fn extras(&mut self, m: &'a Map) -> &mut Self {
        self.0.extend(map_out(m));
        self
    }
    fn done(&mut self) -> Out<'a> {
        Out::Map(std::mem::take(&mut self.0))
    }
}

fn s(v: &str) -> Option<Out<'_>> {
    (!v.is_empty()).then_some(Out::Str(Cow::Borrowed(v)))
}

fn b(v: bool) -> Option<Out<'static>> {
    v.then_some(Out::Bool(true))
}

fn uint(v: u64) -> Option<Out<'static>> {
    (v != 0).then(|| Out::Int(i64::try_from(v).unwrap_or(i64::MAX)))
}

fn int(v: i64) -> Option<Out<'static>> {
    (v != 0).then_some(Out::Int(v))
}

fn dur(v: Duration) -> Option<Out<'static>> {
    (v != 0).then(|| Out::Str(Cow::Owned(format_duration(v))))
}

fn opt_dur(v: Option<Duration>) -> Option<Out<'static>> {
    v.map(|d| Out::Str(Cow::Owned(format_duration(d))))
}

fn opt_uint(v: Option<u64>) -> Option<Out<'static>> {
    v.map(|n| Out::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn bytes(v: i64) -> Option<Out<'static>> {
    (v != 0).then(|| Out::Str(Cow::Owned(v.to_string())))
}

fn list(v: &[String]) -> Option<Out<'_>> {
    (!v.is_empty()).then(|| Out::Seq(v.iter().map(|x| Out::Str(Cow::Borrowed(x))).collect()))
}

fn sorted<'a, T>(
    m: &'a BTreeMap<String, T>,
    f: impl Fn(&'a T) -> Out<'a>,
) -> Vec<(Cow<'a, str>, Out<'a>)> {
    let mut entries: Vec<(&'a String, &'a T)> = m.iter().collect();
    entries.sort_by(|a, b| sort_keys(a.0, b.0));
    entries.into_iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), f(v))).collect()
}

fn smap(m: &BTreeMap<String, String>) -> Option<Out<'_>> {
    (!m.is_empty()).then(|| Out::Map(sorted(m, |v| Out::Str(Cow::Borrowed(v)))))
}

fn nmap(m: &BTreeMap<String, Option<String>>) -> Option<Out<'_>> {
    (!m.is_empty()).then(|| {
        Out::Map(sorted(m, |v| v.as_ref().map_or(Out::Null, |s| Out::Str(Cow::Borrowed(s)))))
    })
}

fn map_out(m: &Map) -> Vec<(Cow<'_, str>, Out<'_>)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| sort_keys(a.0, b.0));
    entries.into_iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), value_out(v))).collect()
}

/// A plain YAML value (extension fields): maps sorted as Go sorts map keys.
pub fn value_out(v: &Value) -> Out<'_> {
    match v {
        Value::Null => Out::Null,
        Value::Bool(b) => Out::Bool(*b),
        Value::Int(i) => Out::Int(*i),
        Value::Float(f) => Out::Float(*f),
        Value::Str(s) => Out::Str(Cow::Borrowed(s)),
        Value::Seq(items) => Out::Seq(items.iter().map(value_out).collect()),
        Value::Map(m) => Out::Map(map_out(m)),
        Value::AnyMap(pairs) => Out::Map(
            pairs
                .iter()
                .map(|(k, v)| (Cow::Owned(crate::gostr::sprint(k)), value_out(v)))
                .collect(),
        ),
    }
}

fn external(e: &External) -> Option<Out<'_>> {
    if e.name.is_empty() {
        b(e.external)
    } else {
        Some(Fields::new().put("name", s(&e.name)).done())
    }
}

fn objs(m: &BTreeMap<String, FileObjectConfig>) -> Option<Out<'_>> {
    (!m.is_empty()).then(|| Out::Map(sorted(m, FileObjectConfig::to_out)))
}

impl Config {
    /// The document `docker stack config` prints.
    pub fn to_out(&self) -> Out<'_> {
        let mut services: Vec<&ServiceConfig> = self.services.iter().collect();
        services.sort_by(|a, b| sort_keys(&a.name, &b.name));
        // Each service is built only while it is written: a large stack is never one tree.
        let services = Out::Map(
            services
                .into_iter()
                .map(|s| (Cow::Borrowed(s.name.as_str()), Out::Deferred(Deferred(s))))
                .collect(),
        );

        Fields::new()
            .put("version", Some(Out::Str(Cow::Borrowed(&self.version))))
            .put("services", Some(services))
            .put(
                "networks",
                (!self.networks.is_empty())
                    .then(|| Out::Map(sorted(&self.networks, NetworkConfig::to_out))),
            )
            .put(
                "volumes",
                (!self.volumes.is_empty())
                    .then(|| Out::Map(sorted(&self.volumes, VolumeConfig::to_out))),
            )
            .put("secrets", objs(&self.secrets))
            .put("configs", objs(&self.configs))
            .extras(&self.extras)
            .done()
    }
}

impl NetworkConfig {
    fn to_out(&self) -> Out<'_> {
        let ipam = (!self.ipam.driver.is_empty() || !self.ipam.config.is_empty()).then(|| {
            Fields::new()
                .put("driver", s(&self.ipam.driver))
                .put(
                    "config",
                    (!self.ipam.config.is_empty()).then(|| {
                        Out::Seq(
                            self.ipam
                                .config
                                .iter()
                                .map(|p| Fields::new().put("subnet", s(&p.subnet)).done())
                                .collect(),
                        )
                    }),
                )
                .done()
        });
        Fields::new()
            .put("name", s(&self.name))
            .put("driver", s(&self.driver))
            .put("driver_opts", smap(&self.driver_opts))
            .put("ipam", ipam)
            .put("external", external(&self.external))
            .put("internal", b(self.internal))
            .put("attachable", b(self.attachable))
            .put("labels", smap(&self.labels))
            .extras(&self.extras)
            .done()
    }
}

impl VolumeConfig {
    fn to_out(&self) -> Out<'_> {
        Fields::new()
            .put("name", s(&self.name))
            .put("driver", s(&self.driver))
            .put("driver_opts", smap(&self.driver_opts))
            .put("external", external(&self.external))
            .put("labels", smap(&self.labels))
            .put("x-cluster-spec", self.cluster_spec.as_ref().map(crate::cluster::spec_out))
            .extras(&self.extras)
            .done()
    }
}

impl FileObjectConfig {
    fn to_out(&self) -> Out<'_> {
        Fields::new()
            .put("name", s(&self.name))
            .put("file", s(&self.file))
            .put("external", external(&self.external))
            .put("labels", smap(&self.labels))
            .put("driver", s(&self.driver))
            .put("driver_opts", smap(&self.driver_opts))
            .put("template_driver", s(&self.template_driver))
            .extras(&self.extras)
            .done()
    }
}

impl ToOut for ServiceConfig {
    fn to_out(&self) -> Out<'_> {
        self.out()
    }
}

impl ServiceConfig {
    fn out(&self) -> Out<'_> {
        let mut f = Fields::new();
        f.put("build", self.build.to_out())
            .put("cap_add", list(&self.cap_add))
            .put("cap_drop", list(&self.cap_drop))
            .put("cgroupns_mode", s(&self.cgroupns_mode))
            .put("cgroup_parent", s(&self.cgroup_parent))
            .put("command", list(&self.command))
            .put("configs", refs(&self.configs))
            .put("container_name", s(&self.container_name))
            .put("credential_spec", self.credential_spec.to_out())
            .put("depends_on", list(&self.depends_on))
            .put("deploy", self.deploy.to_out())
            .put("devices", list(&self.devices))
            .put("dns", list(&self.dns))
            .put("dns_search", list(&self.dns_search))
            .put("domainname", s(&self.domainname))
            .put("entrypoint", list(&self.entrypoint))
            .put("environment", nmap(&self.environment))
            .put("env_file", list(&self.env_file))
            .put("expose", list(&self.expose))
            .put("external_links", list(&self.external_links))
            .put("extra_hosts", list(&self.extra_hosts))
            .put("hostname", s(&self.hostname))
            .put("healthcheck", self.healthcheck.as_ref().map(HealthCheck::to_out))
            .put("image", s(&self.image))
            .put("init", self.init.map(Out::Bool))
            .put("ipc", s(&self.ipc))
            .put("isolation", s(&self.isolation))
            .put("labels", smap(&self.labels))
            .put("links", list(&self.links))
            .put("logging", self.logging.as_ref().map(Logging::to_out))
            .put("mac_address", s(&self.mac_address))
            .put("network_mode", s(&self.network_mode))
            .put("networks", self.networks_out())
            .put("pid", s(&self.pid))
            .put(
                "ports",
                (!self.ports.is_empty())
                    .then(|| Out::Seq(self.ports.iter().map(PortConfig::to_out).collect())),
            );
        f.put("privileged", b(self.privileged))
            .put("read_only", b(self.read_only))
            .put("restart", s(&self.restart))
            .put("secrets", refs(&self.secrets))
            .put("security_opt", list(&self.security_opt))
            .put("shm_size", s(&self.shm_size))
            .put("stdin_open", b(self.stdin_open))
            .put("stop_grace_period", opt_dur(self.stop_grace_period))
            .put("stop_signal", s(&self.stop_signal))
            .put("sysctls", smap(&self.sysctls))
            .put("tmpfs", list(&self.tmpfs))
            .put("tty", b(self.tty))
            .put(
                "ulimits",
                (!self.ulimits.is_empty()).then(|| Out::Map(sorted(&self.ulimits, Ulimit::to_out))),
            )
            .put("user", s(&self.user))
            .put("userns_mode", s(&self.userns_mode))
            .put(
                "volumes",
                (!self.volumes.is_empty())
                    .then(|| Out::Seq(self.volumes.iter().map(VolumeMount::to_out).collect())),
            )
            .put("working_dir", s(&self.working_dir))
            .extras(&self.extras)
            .done()
    }

    fn networks_out(&self) -> Option<Out<'_>> {
        (!self.networks.is_empty()).then(|| {
            Out::Map(sorted(&self.networks, |n| match n {
                None => Out::Null,
                Some(n) => Fields::new()
                    .put("aliases", list(&n.aliases))
                    .put("driver_opts", smap(&n.driver_opts))
                    .put("ipv4_address", s(&n.ipv4_address))
                    .put("ipv6_address", s(&n.ipv6_address))
                    .done(),
            }))
        })
    }
}

fn refs(v: &[FileReference]) -> Option<Out<'_>> {
    (!v.is_empty()).then(|| {
        Out::Seq(
            v.iter()
                .map(|r| {
                    Fields::new()
                        .put("source", s(&r.source))
                        .put("target", s(&r.target))
                        .put("uid", s(&r.uid))
                        .put("gid", s(&r.gid))
                        .put("mode", r.mode.map(|m| Out::Int(i64::from(m))))
                        .done()
                })
                .collect(),
        )
    })
}

fn non_empty(o: Out<'_>) -> Option<Out<'_>> {
    match &o {
        Out::Map(m) if m.is_empty() => None,
        _ => Some(o),
    }
}

impl BuildConfig {
    fn to_out(&self) -> Option<Out<'_>> {
        non_empty(
            Fields::new()
                .put("context", s(&self.context))
                .put("dockerfile", s(&self.dockerfile))
                .put("args", nmap(&self.args))
                .put("labels", smap(&self.labels))
                .put("cache_from", list(&self.cache_from))
                .put("extra_hosts", list(&self.extra_hosts))
                .put("network", s(&self.network))
                .put("target", s(&self.target))
                .done(),
        )
    }
}

impl CredentialSpec {
    fn to_out(&self) -> Option<Out<'_>> {
        non_empty(
            Fields::new()
                .put("config", s(&self.config))
                .put("file", s(&self.file))
                .put("registry", s(&self.registry))
                .done(),
        )
    }
}

impl DeployConfig {
    fn to_out(&self) -> Option<Out<'_>> {
        let r = &self.resources;
        let resources = non_empty(
            Fields::new()
                .put(
                    "limits",
                    r.limits.as_ref().map(|l| {
                        Fields::new()
                            .put("cpus", s(&l.cpus))
                            .put("memory", bytes(l.memory))
                            .put("pids", int(l.pids))
                            .done()
                    }),
                )
                .put(
                    "reservations",
                    r.reservations.as_ref().map(|l| {
                        Fields::new()
                            .put("cpus", s(&l.cpus))
                            .put("memory", bytes(l.memory))
                            .put("generic_resources", generic(&l.generic_resources))
                            .done()
                    }),
                )
                .done(),
        );
        let p = &self.placement;
        let placement = non_empty(
            Fields::new()
                .put("constraints", list(&p.constraints))
                .put(
                    "preferences",
                    (!p.preferences.is_empty()).then(|| {
                        Out::Seq(
                            p.preferences
                                .iter()
                                .map(|x| Fields::new().put("spread", s(x)).done())
                                .collect(),
                        )
                    }),
                )
                .put("max_replicas_per_node", uint(p.max_replicas_per_node))
                .done(),
        );
        non_empty(
            Fields::new()
                .put("mode", s(&self.mode))
                .put("replicas", opt_uint(self.replicas))
                .put("labels", smap(&self.labels))
                .put("update_config", self.update_config.as_ref().map(UpdateConfig::to_out))
                .put("rollback_config", self.rollback_config.as_ref().map(UpdateConfig::to_out))
                .put("resources", resources)
                .put(
                    "restart_policy",
                    self.restart_policy.as_ref().map(|r| {
                        Fields::new()
                            .put("condition", s(&r.condition))
                            .put("delay", opt_dur(r.delay))
                            .put("max_attempts", opt_uint(r.max_attempts))
                            .put("window", opt_dur(r.window))
                            .done()
                    }),
                )
                .put("placement", placement)
                .put("endpoint_mode", s(&self.endpoint_mode))
                .done(),
        )
    }
}

fn generic(v: &[GenericResource]) -> Option<Out<'_>> {
    (!v.is_empty()).then(|| {
        Out::Seq(
            v.iter()
                .map(|g| {
                    Fields::new()
                        .put(
                            "discrete_resource_spec",
                            g.discrete_resource_spec.as_ref().map(|d| {
                                Fields::new()
                                    .put("kind", Some(Out::Str(Cow::Borrowed(&d.kind))))
                                    .put("value", Some(Out::Int(d.value)))
                                    .done()
                            }),
                        )
                        .done()
                })
                .collect(),
        )
    })
}

impl UpdateConfig {
    fn to_out(&self) -> Out<'_> {
        Fields::new()
            .put("parallelism", opt_uint(self.parallelism))
            .put("delay", dur(self.delay))
            .put("failure_action", s(&self.failure_action))
            .put("monitor", dur(self.monitor))
            .put(
                "max_failure_ratio",
                (self.max_failure_ratio != 0.0).then_some(Out::Float32(self.max_failure_ratio)),
            )
            .put("order", s(&self.order))
            .done()
    }
}

impl HealthCheck {
    fn to_out(&self) -> Out<'_> {
        Fields::new()
            .put("test", list(&self.test))
            .put("timeout", opt_dur(self.timeout))
            .put("interval", opt_dur(self.interval))
            .put("retries", opt_uint(self.retries))
            .put("start_period", opt_dur(self.start_period))
            .put("start_interval", opt_dur(self.start_interval))
            .put("disable", b(self.disable))
            .done()
    }
}

impl Logging {
    fn to_out(&self) -> Out<'_> {
        Fields::new().put("driver", s(&self.driver)).put("options", smap(&self.options)).done()
    }
}

impl PortConfig {
    fn to_out(&self) -> Out<'_> {
        Fields::new()
            .put("mode", s(&self.mode))
            .put("target", uint(u64::from(self.target)))
            .put("published", uint(u64::from(self.published)))
            .put("protocol", s(&self.protocol))
            .done()
    }
}

impl Ulimit {
    fn to_out(&self) -> Out<'_> {
        if self.single != 0 {
            return Out::Int(self.single);
        }
        Fields::new().put("soft", int(self.soft)).put("hard", int(self.hard)).done()
    }
}

impl VolumeMount {
    fn to_out(&self) -> Out<'_> {
        Fields::new()
            .put("type", s(&self.kind))
            .put("source", s(&self.source))
            .put("target", s(&self.target))
            .put("read_only", b(self.read_only))
            .put("consistency", s(&self.consistency))
            .put("bind", self.bind.as_ref().map(|p| Fields::new().put("propagation", s(p)).done()))
            .put("volume", self.volume_nocopy.map(|n| Fields::new().put("nocopy", b(n)).done()))
            .put("tmpfs", self.tmpfs_size.map(|n| Fields::new().put("size", int(n)).done()))
            .put("cluster", self.cluster.then(|| Fields::new().done()))
            .done()
    }
}
