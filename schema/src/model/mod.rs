//! The loaded stack file: the same shape and field order as Docker's compose `types`
//! package, so that writing it out reproduces `docker stack config` byte for byte. Pointer
//! fields of Docker's structs are `Option`s here; `omitempty` fields are left out when
//! empty, as yaml.v3 leaves them out.

mod out;
mod service;

pub use out::value_out;
pub use service::*;

use crate::value::Map;
use std::collections::BTreeMap;

/// A whole stack file (or the merge of several).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The file it was read from (not written out).
    pub filename: String,
    /// The `version:` (as given, or Docker's default).
    pub version: String,
    /// Services, sorted by name when written.
    pub services: Vec<ServiceConfig>,
    /// Networks.
    pub networks: BTreeMap<String, NetworkConfig>,
    /// Named volumes.
    pub volumes: BTreeMap<String, VolumeConfig>,
    /// Secrets.
    pub secrets: BTreeMap<String, FileObjectConfig>,
    /// Configs.
    pub configs: BTreeMap<String, FileObjectConfig>,
    /// Top-level `x-*` keys.
    pub extras: Map,
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkConfig {
    /// `name:`.
    pub name: String,
    /// `driver:`.
    pub driver: String,
    /// `driver_opts:`.
    pub driver_opts: BTreeMap<String, String>,
    /// `ipam:`.
    pub ipam: IpamConfig,
    /// `external:`.
    pub external: External,
    /// `internal:`.
    pub internal: bool,
    /// `attachable:`.
    pub attachable: bool,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `x-*` keys (Docker keeps them only for external networks).
    pub extras: Map,
}

/// IPAM settings of a network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamConfig {
    /// `driver:`.
    pub driver: String,
    /// `config:` pools.
    pub config: Vec<IpamPool>,
}

/// One IPAM pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamPool {
    /// `subnet:`.
    pub subnet: String,
}

/// `external:` of a network, volume, config or secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct External {
    /// The deprecated `external.name`.
    pub name: String,
    /// Whether it is external.
    pub external: bool,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeConfig {
    /// `name:`.
    pub name: String,
    /// `driver:`.
    pub driver: String,
    /// `driver_opts:`.
    pub driver_opts: BTreeMap<String, String>,
    /// `external:`.
    pub external: External,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `x-*` keys (Docker keeps them only for external volumes).
    pub extras: Map,
    /// `x-cluster-spec:` (a cluster volume), kept as written.
    pub cluster_spec: Option<crate::Value>,
}

/// A top-level secret or config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileObjectConfig {
    /// `name:`.
    pub name: String,
    /// `file:` (made absolute).
    pub file: String,
    /// `external:`.
    pub external: External,
    /// `labels:`.
    pub labels: BTreeMap<String, String>,
    /// `x-*` keys.
    pub extras: Map,
    /// `driver:`.
    pub driver: String,
    /// `driver_opts:`.
    pub driver_opts: BTreeMap<String, String>,
    /// `template_driver:`.
    pub template_driver: String,
}

/// A Go `time.Duration`, in nanoseconds.
pub type Duration = i64;
