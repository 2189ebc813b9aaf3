//! A task as a Docker container: the create body built from the task's spec, the way moby's
//! swarm executor builds it (`daemon/cluster/executor/container/container.go`), with
//! flotilla's labels, configs and secrets bind-mounted read-only from the agent's files, and
//! every service port published on the node (host mode at its number, otherwise at a port
//! the engine picks, which the task then reports).

use super::LABEL_NODE;
use crate::runtime::{TaskContext, TaskFile};
use agent_core::launch::task_env;
use agent_core::logs::LogLimits;
use bollard::models::{
    ContainerCreateBody, HealthConfig as DockerHealth, HostConfig, HostConfigLogConfig, Mount,
    MountTmpfsOptions, MountType as DockerMountType, MountVolumeOptions, PortBinding, PortMap,
    ResourcesUlimits,
};
use reconciler_types::{MountType, PortConfig, PortProtocol, PublishMode};
use std::collections::HashMap;
use std::path::PathBuf;

/// The service's id.
pub const LABEL_SERVICE_ID: &str = "com.flotilla.service.id";
/// The service's name.
pub const LABEL_SERVICE_NAME: &str = "com.flotilla.service.name";
/// The task's id.
pub const LABEL_TASK_ID: &str = "com.flotilla.task.id";
/// The task's name (`<service>.<slot>.<task id>`).
pub const LABEL_TASK_NAME: &str = "com.flotilla.task.name";
/// The task's slot.
pub const LABEL_TASK_SLOT: &str = "com.flotilla.task.slot";

/// `80/tcp`.
pub fn port_key(p: &PortConfig) -> String {
    let proto = match p.protocol {
        PortProtocol::Tcp => "tcp",
        PortProtocol::Udp => "udp",
        PortProtocol::Sctp => "sctp",
    };
    format!("{}/{proto}", p.target_port)
}

/// Where a config or secret file is on the node.
pub type FileSource<'a> = &'a dyn Fn(&TaskFile) -> PathBuf;

/// The container's create body; `source` says where each config and secret file is on the
/// node.
pub fn container_body(
    task: &TaskContext,
    source: FileSource<'_>,
    limits: LogLimits,
) -> ContainerCreateBody {
    let spec = &task.spec.container_spec;
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let some_str = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let env: Vec<String> = task_env(&spec.env, &task.who, &task.ports, false)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: some_vec(&spec.command),
        cmd: some_vec(&spec.args),
        env: Some(env),
        labels: Some(labels(task)),
        hostname: some_str(&spec.hostname),
        working_dir: some_str(&spec.dir),
        user: some_str(&spec.user),
        tty: Some(spec.tty),
        open_stdin: Some(spec.open_stdin),
        stop_signal: some_str(&spec.stop_signal),
        stop_timeout: Some(grace_secs(task)),
        // The agent runs the health check itself (the same rules on both runtimes).
        healthcheck: Some(DockerHealth { test: Some(vec!["NONE".into()]), ..Default::default() }),
        exposed_ports: Some(task.ports.iter().map(port_key).collect()),
        host_config: Some(host_config(task, source, limits)),
        ..Default::default()
    }
}

/// The grace period in whole seconds, rounded up (the Engine API counts seconds).
pub fn grace_secs(task: &TaskContext) -> i64 {
    let g = task.stop_grace();
    let secs = g.as_secs() + u64::from(g.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn labels(task: &TaskContext) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> =
        task.spec.container_spec.labels.clone().into_iter().collect();
    let who = &task.who;
    for (k, v) in [
        (LABEL_NODE, who.node_id.to_string()),
        (LABEL_SERVICE_ID, who.service_id.clone()),
        (LABEL_SERVICE_NAME, who.service_name.clone()),
        (LABEL_TASK_ID, who.task_id.to_string()),
        (LABEL_TASK_NAME, who.name()),
        (LABEL_TASK_SLOT, who.slot.to_string()),
    ] {
        labels.insert(k.to_owned(), v);
    }
    labels
}

fn host_config(task: &TaskContext, source: FileSource<'_>, limits: LogLimits) -> HostConfig {
    let spec = &task.spec.container_spec;
    let res = &task.spec.resources.limits;
    let positive = |v: i64| (v > 0).then_some(v);
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let binds: Vec<String> = task
        .files
        .iter()
        .map(|f| format!("{}:/{}:ro", source(f).display(), f.placed.path.display()))
        .collect();
    let log_config = HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([
            ("max-size".to_owned(), limits.max_size.to_string()),
            ("max-file".to_owned(), limits.max_files.to_string()),
        ])),
    };
    HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!spec.mounts.is_empty()).then(|| spec.mounts.iter().map(mount).collect()),
        port_bindings: Some(port_bindings(&task.ports)),
        init: spec.init,
        nano_cpus: positive(res.nano_cpus),
        memory: positive(res.memory_bytes),
        pids_limit: positive(res.pids),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        cap_add: some_vec(&spec.cap_add),
        cap_drop: some_vec(&spec.cap_drop),
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        readonly_rootfs: Some(spec.read_only),
        dns: some_vec(&spec.dns_config.nameservers),
        dns_search: some_vec(&spec.dns_config.search),
        dns_options: some_vec(&spec.dns_config.options),
        extra_hosts: (!spec.hosts.is_empty())
            .then(|| spec.hosts.iter().flat_map(|h| host_entries(h)).collect()),
        log_config: Some(log_config),
        ..Default::default()
    }
}

/// A service's `IP HOST...` hosts line as the Engine's `HOST:IP` entries.
fn host_entries(line: &str) -> Vec<String> {
    let mut parts = line.split_whitespace();
    let ip = parts.next().unwrap_or_default();
    parts.map(|host| format!("{host}:{ip}")).collect()
}

fn port_bindings(ports: &[PortConfig]) -> PortMap {
    ports
        .iter()
        .map(|p| {
            let host_port = if p.publish_mode == PublishMode::Host && p.published_port != 0 {
                p.published_port.to_string()
            } else {
                String::new()
            };
            let binding =
                PortBinding { host_ip: Some("0.0.0.0".into()), host_port: Some(host_port) };
            (port_key(p), Some(vec![binding]))
        })
        .collect()
}

fn mount(m: &reconciler_types::Mount) -> Mount {
    let typ = match m.kind {
        MountType::Bind => DockerMountType::BIND,
        MountType::Volume => DockerMountType::VOLUME,
        MountType::Tmpfs => DockerMountType::TMPFS,
        MountType::Npipe => DockerMountType::NPIPE,
        MountType::Cluster => DockerMountType::CLUSTER,
    };
    let opt = |k: &str| m.options.get(k);
    Mount {
        target: Some(m.target.clone()),
        source: (!m.source.is_empty()).then(|| m.source.clone()),
        typ: Some(typ),
        read_only: Some(m.read_only),
        volume_options: (m.kind == MountType::Volume).then(|| MountVolumeOptions {
            no_copy: opt("nocopy").map(|v| v == "true"),
            ..Default::default()
        }),
        tmpfs_options: (m.kind == MountType::Tmpfs).then(|| MountTmpfsOptions {
            size_bytes: opt("size").and_then(|v| v.parse().ok()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::TaskIdentity;
    use agent_core::files::{FileKind, PlacedFile};
    use reconciler_types::{NodeId, TaskId, TaskSpec};
    use std::path::Path;
    use std::time::Duration;

    fn task() -> TaskContext {
        let mut spec = TaskSpec::default();
        spec.container_spec.image = "probe:1".into();
        spec.container_spec.args = vec!["flotilla".into(), "probe".into()];
        spec.container_spec.stop_grace_period = Some(Duration::from_millis(1500));
        spec.container_spec.hosts = vec!["10.0.0.1 db db.local".into()];
        spec.resources.limits.memory_bytes = 64 << 20;
        TaskContext {
            who: TaskIdentity {
                task_id: TaskId::new("t1"),
                service_name: "shop_web".into(),
                service_id: "s1".into(),
                slot: 2,
                node_id: NodeId::new("n1"),
            },
            spec,
            service_labels: Default::default(),
            ports: vec![
                PortConfig { target_port: 80, ..PortConfig::default() },
                PortConfig {
                    target_port: 53,
                    published_port: 5353,
                    protocol: PortProtocol::Udp,
                    publish_mode: PublishMode::Host,
                },
            ],
            files: vec![TaskFile {
                placed: PlacedFile {
                    kind: FileKind::Secret,
                    name: "pw".into(),
                    path: "run/secrets/pw".into(),
                    uid: "0".into(),
                    gid: "0".into(),
                    mode: 0o400,
                },
                data: b"x".to_vec(),
            }],
            log_limits: LogLimits::default(),
        }
    }

    #[test]
    fn the_container_carries_flotillas_labels_ports_files_and_limits() {
        let source = |f: &TaskFile| Path::new("/files/t1").join(&f.placed.path);
        let limits = LogLimits { max_size: 1024, max_files: 2 };
        let body = container_body(&task(), &source, limits);
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_TASK_NAME], "shop_web.2.t1");
        assert_eq!(labels[LABEL_NODE], "n1");
        assert_eq!(body.entrypoint, None, "the image's entrypoint is kept");
        assert_eq!(body.stop_timeout, Some(2));
        assert!(body.env.unwrap().contains(&"PORT=80".to_owned()));
        let host = body.host_config.unwrap();
        assert_eq!(host.binds.unwrap(), ["/files/t1/run/secrets/pw:/run/secrets/pw:ro"]);
        let ports = host.port_bindings.unwrap();
        assert_eq!(ports["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(), Some(""));
        assert_eq!(ports["53/udp"].as_ref().unwrap()[0].host_port.as_deref(), Some("5353"));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.nano_cpus, None);
        assert_eq!(host.extra_hosts.unwrap(), ["db:10.0.0.1", "db.local:10.0.0.1"]);
        assert_eq!(host.log_config.unwrap().config.unwrap()["max-file"], "2");
    }
}
