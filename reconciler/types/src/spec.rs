//! The service spec as Swarm holds it: what `docker stack deploy` would create from a
//! compose service, with Docker's defaults already filled in. The planner builds these from
//! stack files; the store keeps them (current and previous); the orchestrators and the
//! scheduler read them.
//!
//! Field names follow the Docker Engine API (`ServiceSpec`, `TaskTemplate`,
//! `ContainerSpec`, ...) in snake case.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A service: its tasks' template, how many, and how to change them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Docker's name, `<stack>_<service>`.
    pub name: String,
    /// Service labels (`deploy.labels`), including `com.docker.stack.namespace`.
    pub labels: BTreeMap<String, String>,
    /// What each task runs.
    pub task_template: TaskSpec,
    /// Replicated (with a count) or global.
    pub mode: ServiceMode,
    /// How a changed spec is rolled out (`deploy.update_config`).
    pub update_config: UpdateConfig,
    /// How a rollback is rolled out (`deploy.rollback_config`).
    pub rollback_config: UpdateConfig,
    /// VIP or DNS round-robin, and the published ports.
    pub endpoint_spec: EndpointSpec,
}

impl ServiceSpec {
    /// The replica count of a replicated service; `None` for a global one.
    pub fn replicas(&self) -> Option<u64> {
        match self.mode {
            ServiceMode::Replicated { replicas } => Some(replicas),
            ServiceMode::Global => None,
        }
    }
}

/// The template every task of a service is made from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The container (or process) to run.
    pub container_spec: ContainerSpec,
    /// Limits and reservations.
    pub resources: Resources,
    /// When a stopped task is replaced.
    pub restart_policy: RestartPolicy,
    /// Where tasks may run.
    pub placement: Placement,
    /// Networks the tasks attach to, with their aliases.
    pub networks: Vec<NetworkAttachment>,
    /// Logging driver, when not the default.
    pub log_driver: Option<LogDriver>,
    /// Bumped to force a redeploy without another change (`docker service update --force`).
    pub force_update: u64,
}

/// The container a task runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Image reference (the process runtime records it without pulling).
    pub image: String,
    /// Container labels (the service's `labels:`), plus the stack namespace.
    pub labels: BTreeMap<String, String>,
    /// The entrypoint (`entrypoint:`), empty for the image's.
    pub command: Vec<String>,
    /// Arguments (`command:`).
    pub args: Vec<String>,
    /// Hostname inside the container.
    pub hostname: String,
    /// Environment as sorted `KEY=VALUE` strings (a key without value is `KEY`).
    pub env: Vec<String>,
    /// Working directory.
    pub dir: String,
    /// User (`user:`).
    pub user: String,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Mount the root filesystem read-only.
    pub read_only: bool,
    /// Mounts (binds, volumes, tmpfs).
    pub mounts: Vec<Mount>,
    /// Signal sent to stop the container (`stop_signal:`).
    pub stop_signal: String,
    /// How long to wait after the stop signal before killing (Docker's default 10 s).
    #[serde(with = "crate::duration_ns::option")]
    pub stop_grace_period: Option<Duration>,
    /// Health check, if any.
    pub healthcheck: Option<HealthConfig>,
    /// Extra `/etc/hosts` entries, as `IP HOSTNAME...` lines (Docker's format).
    pub hosts: Vec<String>,
    /// DNS settings.
    pub dns_config: DnsConfig,
    /// Swarm configs mounted as files.
    pub configs: Vec<ConfigReference>,
    /// Swarm secrets mounted as files.
    pub secrets: Vec<SecretReference>,
    /// Namespaced kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// Capabilities added.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// Resource limits for the process (`ulimits:`).
    pub ulimits: Vec<Ulimit>,
    /// Run an init process (`init:`).
    pub init: Option<bool>,
    /// Isolation technology (`isolation:`), Windows only.
    pub isolation: String,
}

/// A health check (`healthcheck:`), with durations as given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(with = "crate::duration_ns::option")]
    pub interval: Option<Duration>,
    /// Time one check may take.
    #[serde(with = "crate::duration_ns::option")]
    pub timeout: Option<Duration>,
    /// Consecutive failures that make the task unhealthy.
    pub retries: Option<u64>,
    /// Start-up time during which failures do not count.
    #[serde(with = "crate::duration_ns::option")]
    pub start_period: Option<Duration>,
    /// Interval between checks during the start period.
    #[serde(with = "crate::duration_ns::option")]
    pub start_interval: Option<Duration>,
}

/// A mount of the container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mount {
    /// bind, volume, tmpfs, npipe or cluster.
    pub kind: MountType,
    /// Host path, volume name (namespaced with the stack unless external), or empty.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Bind propagation, volume nocopy, tmpfs size and the like, as `key=value` options.
    pub options: BTreeMap<String, String>,
}

/// The kind of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountType {
    /// A host path.
    Bind,
    /// A named (or anonymous) volume.
    #[default]
    Volume,
    /// A tmpfs.
    Tmpfs,
    /// A Windows named pipe.
    Npipe,
    /// A cluster (CSI) volume.
    Cluster,
}

/// DNS settings of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsConfig {
    /// Name servers.
    pub nameservers: Vec<String>,
    /// Search domains.
    pub search: Vec<String>,
    /// resolv.conf options.
    pub options: Vec<String>,
}

/// A Swarm config mounted into a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigReference {
    /// The config's cluster name (namespaced and, for flotilla, versioned by content).
    pub config_name: String,
    /// Path in the container (Docker's default: `/<source>`).
    pub target: String,
    /// File owner uid (default "0").
    pub uid: String,
    /// File owner gid (default "0").
    pub gid: String,
    /// File mode (default 0o444).
    pub mode: u32,
}

/// A Swarm secret mounted into a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecretReference {
    /// The secret's cluster name.
    pub secret_name: String,
    /// File name under `/run/secrets/` (Docker's default: the source name).
    pub target: String,
    /// File owner uid (default "0").
    pub uid: String,
    /// File owner gid (default "0").
    pub gid: String,
    /// File mode (default 0o444).
    pub mode: u32,
}

/// A resource limit of the process (`ulimits:`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ulimit {
    /// Its name (`nofile`, `nproc`, ...).
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Limits and reservations of a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Upper bounds.
    pub limits: ResourceLimits,
    /// What the scheduler must find free on a node.
    pub reservations: ResourceReservations,
}

/// Upper bounds on a task's resources (0 = none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// CPU in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// Memory in bytes.
    pub memory_bytes: i64,
    /// Process count.
    pub pids: i64,
}

/// Reserved resources of a task (0 = none).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceReservations {
    /// CPU in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// Memory in bytes.
    pub memory_bytes: i64,
    /// Discrete generic resources (`gpu=2`).
    pub generic_resources: Vec<GenericResource>,
}

/// A discrete, user-defined resource such as `gpu=2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct GenericResource {
    /// The kind (`gpu`, `ssd`, ...).
    pub kind: String,
    /// How many.
    pub value: i64,
}

/// When a stopped task is replaced (`deploy.restart_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// none, on-failure or any (Swarm's default).
    pub condition: RestartCondition,
    /// Wait between a task stopping and its replacement starting (Swarm's default 5 s).
    #[serde(with = "crate::duration_ns::option")]
    pub delay: Option<Duration>,
    /// Restarts allowed within `window` (0 = unlimited).
    pub max_attempts: u64,
    /// The window in which attempts are counted (None or 0 = unbounded).
    #[serde(with = "crate::duration_ns::option")]
    pub window: Option<Duration>,
}

/// The restart condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    /// Never restart.
    None,
    /// Restart when the task exits non-zero or fails.
    OnFailure,
    /// Restart whatever the exit (Swarm's default).
    #[default]
    Any,
}

/// Where tasks may run (`deploy.placement`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Placement {
    /// Constraints such as `node.role==manager`.
    pub constraints: Vec<String>,
    /// Spread preferences, outermost first.
    pub preferences: Vec<PlacementPreference>,
    /// At most this many tasks of the service per node (0 = no limit).
    pub max_replicas: u64,
}

/// A placement preference.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlacementPreference {
    /// Spread tasks evenly over the values of this descriptor (`node.labels.az`).
    pub spread: String,
}

/// A network a task attaches to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// The network's cluster name (`<stack>_<name>` unless external).
    pub target: String,
    /// DNS aliases on that network (the service's short name first).
    pub aliases: Vec<String>,
}

/// A logging driver and its options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogDriver {
    /// Driver name.
    pub name: String,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

/// Replicated with a count, or global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceMode {
    /// A fixed number of slots.
    Replicated {
        /// The replica count (Docker's default 1).
        replicas: u64,
    },
    /// One task on every eligible node.
    Global,
}

impl Default for ServiceMode {
    fn default() -> Self {
        ServiceMode::Replicated { replicas: 1 }
    }
}

/// How a rollout proceeds (`update_config` or `rollback_config`), with Swarm's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    /// Tasks updated at once (0 = all at once). Default 1.
    pub parallelism: u64,
    /// Wait between batches. Default 0.
    #[serde(with = "crate::duration_ns")]
    pub delay: Duration,
    /// What to do when the failure ratio is exceeded. Default pause.
    pub failure_action: FailureAction,
    /// How long after a task starts a failure still counts. Default 5 s.
    #[serde(with = "crate::duration_ns")]
    pub monitor: Duration,
    /// Tolerated failure ratio. Default 0.
    pub max_failure_ratio: f32,
    /// stop-first (default) or start-first.
    pub order: UpdateOrder,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            parallelism: 1,
            delay: Duration::ZERO,
            failure_action: FailureAction::Pause,
            monitor: Duration::from_secs(5),
            max_failure_ratio: 0.0,
            order: UpdateOrder::StopFirst,
        }
    }
}

/// What a rollout does when too many tasks fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureAction {
    /// Stop and wait for an operator.
    #[default]
    Pause,
    /// Carry on.
    Continue,
    /// Roll back to the previous spec.
    Rollback,
}

/// Whether the old task stops before or after its replacement starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old task, then start the new one.
    #[default]
    StopFirst,
    /// Start the new task, then stop the old one.
    StartFirst,
}

/// VIP or DNS round-robin, and the published ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// vip (default) or dnsrr.
    pub mode: EndpointMode,
    /// Published ports, sorted as Docker sorts them.
    pub ports: Vec<PortConfig>,
}

/// Service discovery mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointMode {
    /// A virtual IP in front of the tasks.
    #[default]
    Vip,
    /// DNS round-robin over the task addresses.
    Dnsrr,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct PortConfig {
    /// tcp, udp or sctp.
    pub protocol: PortProtocol,
    /// The port inside the container.
    pub target_port: u32,
    /// The published port (0 = none or assigned).
    pub published_port: u32,
    /// ingress (routing mesh) or host.
    pub publish_mode: PublishMode,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortProtocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// How a port is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishMode {
    /// Through the routing mesh on every node.
    #[default]
    Ingress,
    /// Only on the node running the task.
    Host,
}

/// A network of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Cluster name (`<stack>_<name>`, or the given `name:`).
    pub name: String,
    /// Driver (`overlay` by default in a swarm).
    pub driver: String,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels, including the stack namespace.
    pub labels: BTreeMap<String, String>,
    /// Internal (no outside access).
    pub internal: bool,
    /// Attachable by standalone containers.
    pub attachable: bool,
    /// IPAM driver.
    pub ipam_driver: String,
    /// IPAM subnets.
    pub ipam_subnets: Vec<String>,
    /// Managed outside flotilla; only referenced.
    pub external: bool,
}

/// A named volume of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// Cluster name.
    pub name: String,
    /// Driver.
    pub driver: String,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels, including the stack namespace.
    pub labels: BTreeMap<String, String>,
    /// Managed outside flotilla; only referenced.
    pub external: bool,
}

/// A Swarm config object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigSpec {
    /// Cluster name.
    pub name: String,
    /// Labels, including the stack namespace.
    pub labels: BTreeMap<String, String>,
    /// The content.
    pub data: Vec<u8>,
    /// Managed outside flotilla; only referenced.
    pub external: bool,
}

/// A Swarm secret object. Its data never appears in a diff, log, error or API response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecretSpec {
    /// Cluster name.
    pub name: String,
    /// Labels, including the stack namespace.
    pub labels: BTreeMap<String, String>,
    /// A digest of the content (never the content itself): the plain SHA-256 from Git, the
    /// salted one a cluster shows (see `reconciler_planner::secret_digest`).
    pub digest: String,
    /// The salt of `digest`; empty for Git's plain digest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
    /// Managed outside flotilla; only referenced.
    pub external: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_config_defaults_are_swarms() {
        let u = UpdateConfig::default();
        assert_eq!(u.parallelism, 1);
        assert_eq!(u.monitor, Duration::from_secs(5));
        assert_eq!(u.failure_action, FailureAction::Pause);
        assert_eq!(u.order, UpdateOrder::StopFirst);
    }

    #[test]
    fn service_spec_round_trips_through_json() {
        let mut spec = ServiceSpec { name: "shop_web".into(), ..Default::default() };
        spec.task_template.container_spec.stop_grace_period = Some(Duration::from_secs(10));
        let json = serde_json::to_string(&spec).unwrap();
        let back: ServiceSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(spec, back);
        assert_eq!(back.replicas(), Some(1));
    }
}
