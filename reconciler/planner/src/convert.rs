//! Stack file → the specs `docker stack deploy` would create (cli: `cli/compose/convert/`).
//!
//! Names are scoped `<stack>_<name>` unless a `name:` override or `external` says otherwise,
//! every created object carries `com.docker.stack.namespace`, a service without `networks:`
//! joins `<stack>_default`, and Swarm's server-side defaults are filled in so that writing
//! a default explicitly is not a change. Configs are versioned by content:
//! `<name>-<first 10 hex of sha256>`.

use crate::convert_service::convert_service;
use reconciler_types::stack::NAMESPACE_LABEL;
use reconciler_types::{
    ConfigSpec, NetworkSpec, SecretSpec, StackName, StackPolicy, StackSpec, VolumeSpec,
};
use schema::model::{Config, FileObjectConfig};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Why a stack could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConvertError {
    /// The field at fault (`services.web.deploy.resources.limits.cpus`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConvertError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConvertError { path: path.into(), message: message.into() }
    }
}

/// The contents of the files named by `configs:` and `secrets:` (`file:`), by the absolute
/// path the loader gave them.
pub type ObjectFiles = BTreeMap<String, Vec<u8>>;

/// Everything the conversion of one stack needs.
pub struct StackInput<'a> {
    /// The stack's name.
    pub name: &'a StackName,
    /// The loaded stack file(s).
    pub config: &'a Config,
    /// Config and secret file contents.
    pub files: &'a ObjectFiles,
    /// Sync and prune settings.
    pub policy: StackPolicy,
}

/// The names a stack's services refer to, resolved to cluster names.
pub(crate) struct Names<'a> {
    pub stack: &'a str,
    pub config: &'a Config,
    /// Unversioned config name → versioned name.
    pub config_versions: BTreeMap<String, String>,
}

impl Names<'_> {
    /// `Namespace.Scope`.
    pub fn scope(&self, name: &str) -> String {
        format!("{}_{}", self.stack, name)
    }

    /// The namespace label plus `labels`.
    pub fn labels(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = labels.clone();
        out.insert(NAMESPACE_LABEL.to_owned(), self.stack.to_owned());
        out
    }

    /// The cluster name of a secret or config: its `name:`, else `<stack>_<key>`.
    pub fn object_name(&self, key: &str, obj: &FileObjectConfig) -> String {
        if obj.external.external || !obj.name.is_empty() {
            obj.name.clone()
        } else {
            self.scope(key)
        }
    }
}

/// `sha256` of `data` in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The versioned cluster name of a config with this content.
pub fn versioned_config_name(name: &str, data: &[u8]) -> String {
    format!("{name}-{}", &sha256_hex(data)[..10])
}

/// Converts one stack. Every problem found is returned, not only the first.
///
/// # Errors
/// Undeclared networks, configs or secrets, unreadable object files, unparseable values
/// and compose features Swarm stacks cannot express.
pub fn convert_stack(input: &StackInput<'_>) -> Result<StackSpec, Vec<ConvertError>> {
    let stack = input.name.as_str();
    let mut errors = Vec::new();
    let mut names = Names { stack, config: input.config, config_versions: BTreeMap::new() };
    let configs = convert_configs(&names, input.files, &mut errors);
    names.config_versions = configs.iter().map(|(k, c)| (k.clone(), c.name.clone())).collect();
    let secrets = convert_secrets(&names, input.files, &mut errors);
    let mut services = BTreeMap::new();
    for svc in &input.config.services {
        match convert_service(&names, svc) {
            Ok(spec) => {
                services.insert(svc.name.clone(), spec);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    let networks = convert_networks(&names);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StackSpec {
        name: input.name.clone(),
        services,
        networks,
        volumes: convert_volumes(&names),
        configs,
        secrets,
        policy: input.policy,
    })
}

/// The plain values of a stack's own secrets, by cluster name (the names and files
/// [`convert_stack`] gives them), for the leader to seal; secrets it could not read are left
/// out ([`convert_stack`] reports them).
pub fn secret_values<'f>(input: &StackInput<'f>) -> BTreeMap<String, &'f [u8]> {
    let names = Names {
        stack: input.name.as_str(),
        config: input.config,
        config_versions: BTreeMap::new(),
    };
    let mut ignored = Vec::new();
    let mut out = BTreeMap::new();
    for (key, obj) in &input.config.secrets {
        if obj.external.external {
            continue;
        }
        if let Some(data) = read_object("secret", key, obj, input.files, &mut ignored) {
            out.insert(names.object_name(key, obj), data);
        }
    }
    out
}

fn read_object<'f>(
    kind: &str,
    key: &str,
    obj: &FileObjectConfig,
    files: &'f ObjectFiles,
    errors: &mut Vec<ConvertError>,
) -> Option<&'f [u8]> {
    let path = format!("{kind}s.{key}.file");
    if !obj.driver.is_empty() {
        errors
            .push(ConvertError::new(path, format!("{kind} drivers are not supported by flotilla")));
        return None;
    }
    match files.get(&obj.file) {
        Some(data) => Some(data),
        None => {
            errors.push(ConvertError::new(
                path,
                format!("open {}: no such file or directory", obj.file),
            ));
            None
        }
    }
}

fn convert_configs(
    names: &Names<'_>,
    files: &ObjectFiles,
    errors: &mut Vec<ConvertError>,
) -> BTreeMap<String, ConfigSpec> {
    let mut out = BTreeMap::new();
    for (key, obj) in &names.config.configs {
        if obj.external.external {
            continue;
        }
        let Some(data) = read_object("config", key, obj, files, errors) else { continue };
        let base = names.object_name(key, obj);
        let spec = ConfigSpec {
            name: versioned_config_name(&base, data),
            labels: names.labels(&obj.labels),
            data: data.to_vec(),
            external: false,
        };
        out.insert(base, spec);
    }
    out
}

fn convert_secrets(
    names: &Names<'_>,
    files: &ObjectFiles,
    errors: &mut Vec<ConvertError>,
) -> BTreeMap<String, SecretSpec> {
    let mut out = BTreeMap::new();
    for (key, obj) in &names.config.secrets {
        if obj.external.external {
            continue;
        }
        let Some(data) = read_object("secret", key, obj, files, errors) else { continue };
        let name = names.object_name(key, obj);
        let spec = SecretSpec {
            name: name.clone(),
            labels: names.labels(&obj.labels),
            digest: sha256_hex(data),
            salt: String::new(),
            external: false,
        };
        out.insert(name, spec);
    }
    out
}

/// `convertNetworks`: only the networks services use are created, `default` included when
/// a service has no `networks:`; external networks are referenced, not created.
fn convert_networks(names: &Names<'_>) -> BTreeMap<String, NetworkSpec> {
    let mut used: BTreeMap<&str, ()> = BTreeMap::new();
    for svc in &names.config.services {
        if svc.networks.is_empty() {
            used.insert("default", ());
        }
        for key in svc.networks.keys() {
            used.insert(key, ());
        }
    }
    let mut out = BTreeMap::new();
    for key in used.keys() {
        let spec = match names.config.networks.get(*key) {
            Some(n) if n.external.external => continue,
            Some(n) => NetworkSpec {
                name: if n.name.is_empty() { names.scope(key) } else { n.name.clone() },
                driver: if n.driver.is_empty() { "overlay".into() } else { n.driver.clone() },
                driver_opts: n.driver_opts.clone(),
                labels: names.labels(&n.labels),
                internal: n.internal,
                attachable: n.attachable,
                ipam_driver: n.ipam.driver.clone(),
                ipam_subnets: n.ipam.config.iter().map(|p| p.subnet.clone()).collect(),
                external: false,
            },
            None if *key == "default" => NetworkSpec {
                name: names.scope("default"),
                driver: "overlay".into(),
                labels: names.labels(&BTreeMap::new()),
                ..NetworkSpec::default()
            },
            // An undeclared network is reported by the service that names it.
            None => continue,
        };
        out.insert(spec.name.clone(), spec);
    }
    out
}

fn convert_volumes(names: &Names<'_>) -> BTreeMap<String, VolumeSpec> {
    let mut out = BTreeMap::new();
    for (key, v) in &names.config.volumes {
        let name = if v.external.external || !v.name.is_empty() {
            if v.name.is_empty() { key.clone() } else { v.name.clone() }
        } else {
            names.scope(key)
        };
        let spec = VolumeSpec {
            name: name.clone(),
            driver: v.driver.clone(),
            driver_opts: v.driver_opts.clone(),
            labels: if v.external.external { v.labels.clone() } else { names.labels(&v.labels) },
            external: v.external.external,
        };
        out.insert(name, spec);
    }
    out
}
