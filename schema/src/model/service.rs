//! A service and everything under it.

use super::Duration;
use crate::value::Map;
use std::collections::BTreeMap;

/// One service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceConfig {
    /// The service's key in `services:`.
    pub name: String,
    /// `build:`.
    pub build: BuildConfig,
    /// `cap_add:`.
    pub cap_add: Vec<String>,
    /// `cap_drop:`.
    pub cap_drop: Vec<String>,
    /// `cgroupns_mode:`.
    pub cgroupns_mode: String,
    /// `cgroup_parent:`.
    pub cgroup_parent: String,
    /// `command:` (a string is split like a shell would).
    pub command: Vec<String>,
    /// `configs:`.
    pub configs: Vec<FileReference>,
    /// `container_name:`.
    pub container_name: String,
    /// `credential_spec:`.
    pub credential_spec: CredentialSpec,
    /// `depends_on:`.
    pub depends_on: Vec<String>,
    /// `deploy:`.
    pub deploy: DeployConfig,
    /// `devices:`.
    pub devices: Vec<String>,
    /// `dns:`.
    pub dns: Vec<String>,
    /// `dns_search:`.
    pub dns_search: Vec<String>,
    /// `domainname:`.
    pub domainname: String,
    /// `entrypoint:`.
    pub entrypoint: Vec<String>,
    /// `environment:` merged with `env_file:` (a key without value is `None`).
    pub environment: BTreeMap<String, Option<String>>,
    /// `env_file:`.
    pub env_file: Vec<String>,
    /// `expose:`.
    pub expose: Vec<String>,
    /// `external_links:`.
    pub external_links: Vec<String>,
    /// `extra_hosts:`.
    pub extra_hosts: Vec<String>,
    /// `hostname:`.
    pub hostname: String,
    /// `healthcheck:`.
    pub healthcheck: Option<HealthCheck>,
    /// `image:`.
    pub image: String,
    /// `init:`.
    pub init: Option<bool>,
    /// `ipc:`.
    pub ipc: String,
    /// `isolation:`.
    pub isolation: String,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `links:`.
    pub links: Vec<String>,
    /// `logging:`.
    pub logging: Option<Logging>,
    /// `mac_address:`.
    pub mac_address: String,
    /// `network_mode:`.
    pub network_mode: String,
    /// `networks:` (a network listed without settings is `None`).
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    /// `pid:`.
    pub pid: String,
    /// `ports:` in long syntax.
    pub ports: Vec<PortConfig>,
    /// `privileged:`.
    pub privileged: bool,
    /// `read_only:`.
    pub read_only: bool,
    /// `restart:`.
    pub restart: String,
    /// `secrets:`.
    pub secrets: Vec<FileReference>,
    /// `security_opt:`.
    pub security_opt: Vec<String>,
    /// `shm_size:`.
    pub shm_size: String,
    /// `stdin_open:`.
    pub stdin_open: bool,
    /// `stop_grace_period:`.
    pub stop_grace_period: Option<Duration>,
    /// `stop_signal:`.
    pub stop_signal: String,
    /// `sysctls:`.
    pub sysctls: BTreeMap<String, String>,
    /// `tmpfs:`.
    pub tmpfs: Vec<String>,
    /// `tty:`.
    pub tty: bool,
    /// `ulimits:`.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `user:`.
    pub user: String,
    /// `userns_mode:`.
    pub userns_mode: String,
    /// `volumes:` in long syntax.
    pub volumes: Vec<VolumeMount>,
    /// `working_dir:`.
    pub working_dir: String,
    /// `x-*` keys.
    pub extras: Map,
}

/// `build:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildConfig {
    /// `context:`.
    pub context: String,
    /// `dockerfile:`.
    pub dockerfile: String,
    /// `args:`.
    pub args: BTreeMap<String, Option<String>>,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `cache_from:`.
    pub cache_from: Vec<String>,
    /// `extra_hosts:`.
    pub extra_hosts: Vec<String>,
    /// `network:`.
    pub network: String,
    /// `target:`.
    pub target: String,
}

/// `credential_spec:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialSpec {
    /// `config:`.
    pub config: String,
    /// `file:`.
    pub file: String,
    /// `registry:`.
    pub registry: String,
}

/// A config or secret mounted into a service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReference {
    /// `source:`.
    pub source: String,
    /// `target:`.
    pub target: String,
    /// `uid:`.
    pub uid: String,
    /// `gid:`.
    pub gid: String,
    /// `mode:`.
    pub mode: Option<u32>,
}

/// `deploy:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployConfig {
    /// `mode:`.
    pub mode: String,
    /// `replicas:`.
    pub replicas: Option<u64>,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `update_config:`.
    pub update_config: Option<UpdateConfig>,
    /// `rollback_config:`.
    pub rollback_config: Option<UpdateConfig>,
    /// `resources:`.
    pub resources: Resources,
    /// `restart_policy:`.
    pub restart_policy: Option<RestartPolicy>,
    /// `placement:`.
    pub placement: Placement,
    /// `endpoint_mode:`.
    pub endpoint_mode: String,
}

/// `update_config:` / `rollback_config:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateConfig {
    /// `parallelism:`.
    pub parallelism: Option<u64>,
    /// `delay:`.
    pub delay: Duration,
    /// `failure_action:`.
    pub failure_action: String,
    /// `monitor:`.
    pub monitor: Duration,
    /// `max_failure_ratio:` (a float32 in Docker).
    pub max_failure_ratio: f32,
    /// `order:`.
    pub order: String,
}

/// `resources:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `limits:`.
    pub limits: Option<ResourceLimit>,
    /// `reservations:`.
    pub reservations: Option<ResourceReservation>,
}

/// `resources.limits:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceLimit {
    /// `cpus:` as written.
    pub cpus: String,
    /// `memory:` in bytes.
    pub memory: i64,
    /// `pids:`.
    pub pids: i64,
}

/// `resources.reservations:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceReservation {
    /// `cpus:` as written.
    pub cpus: String,
    /// `memory:` in bytes.
    pub memory: i64,
    /// `generic_resources:`.
    pub generic_resources: Vec<GenericResource>,
}

/// One generic resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenericResource {
    /// `discrete_resource_spec:`.
    pub discrete_resource_spec: Option<DiscreteResource>,
}

/// `discrete_resource_spec:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiscreteResource {
    /// `kind:`.
    pub kind: String,
    /// `value:`.
    pub value: i64,
}

/// `restart_policy:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartPolicy {
    /// `condition:`.
    pub condition: String,
    /// `delay:`.
    pub delay: Option<Duration>,
    /// `max_attempts:`.
    pub max_attempts: Option<u64>,
    /// `window:`.
    pub window: Option<Duration>,
}

/// `placement:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// `constraints:`.
    pub constraints: Vec<String>,
    /// `preferences:` (spread descriptors).
    pub preferences: Vec<String>,
    /// `max_replicas_per_node:`.
    pub max_replicas_per_node: u64,
}

/// `healthcheck:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthCheck {
    /// `test:` (a string becomes `CMD-SHELL`).
    pub test: Vec<String>,
    /// `timeout:`.
    pub timeout: Option<Duration>,
    /// `interval:`.
    pub interval: Option<Duration>,
    /// `retries:`.
    pub retries: Option<u64>,
    /// `start_period:`.
    pub start_period: Option<Duration>,
    /// `start_interval:`.
    pub start_interval: Option<Duration>,
    /// `disable:`.
    pub disable: bool,
}

/// `logging:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logging {
    /// `driver:`.
    pub driver: String,
    /// `options:`.
    pub options: BTreeMap<String, String>,
}

/// A service's settings on one network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceNetwork {
    /// `aliases:`.
    pub aliases: Vec<String>,
    /// `driver_opts:`.
    pub driver_opts: BTreeMap<String, String>,
    /// `ipv4_address:`.
    pub ipv4_address: String,
    /// `ipv6_address:`.
    pub ipv6_address: String,
}

/// One published or exposed port, in long syntax.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortConfig {
    /// `mode:`.
    pub mode: String,
    /// `target:`.
    pub target: u32,
    /// `published:`.
    pub published: u32,
    /// `protocol:`.
    pub protocol: String,
}

/// One `ulimits:` entry: a single number, or soft and hard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ulimit {
    /// The single value form.
    pub single: i64,
    /// `soft:`.
    pub soft: i64,
    /// `hard:`.
    pub hard: i64,
}

/// One mount, in long syntax.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeMount {
    /// `type:`.
    pub kind: String,
    /// `source:`.
    pub source: String,
    /// `target:`.
    pub target: String,
    /// `read_only:`.
    pub read_only: bool,
    /// `consistency:`.
    pub consistency: String,
    /// `bind.propagation:`.
    pub bind: Option<String>,
    /// `volume.nocopy:`.
    pub volume_nocopy: Option<bool>,
    /// `tmpfs.size:`.
    pub tmpfs_size: Option<i64>,
    /// `cluster:` (empty).
    pub cluster: bool,
}
