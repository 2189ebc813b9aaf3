//! Decoding the top-level networks, volumes, secrets and configs, with Docker's checks on
//! `external` and its deprecation warnings.

use super::fields::Fields;
use super::{DecodeError, extras, labels, string_map};
use crate::model::*;
use crate::paths::abs_path;
use crate::value::{Map, Value};
use std::collections::BTreeMap;

/// What decoding the top-level objects needs to know.
pub struct ObjectContext<'a> {
    /// The version of the first file (for deprecation warnings).
    pub version: &'a str,
    /// The folder relative paths are resolved against.
    pub working_dir: &'a str,
    /// `HOME`, for `~`.
    pub home: &'a str,
}

fn version_ge(v: &str, min: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (a, b) = (parse(v), parse(min));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied().unwrap_or(0), b.get(i).copied().unwrap_or(0));
        if x != y {
            return x > y;
        }
    }
    true
}

/// Docker's handling of `external:` names shared by networks, volumes, secrets and configs:
/// the deprecated `external.name` moves to `name` (with a warning from `warn_from` on), a
/// clash between the two is an error, and an external object without a name takes its key.
fn external_name(
    kind: &str,
    key: &str,
    name: &mut String,
    external: &mut External,
    (version, warn_from): (&str, &str),
    warnings: &mut Vec<String>,
) -> Result<(), DecodeError> {
    if external.name.is_empty() {
        if name.is_empty() {
            *name = key.to_owned();
        }
        return Ok(());
    }
    if !name.is_empty() {
        return Err(DecodeError(format!(
            "{kind} {key}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"
        )));
    }
    if version_ge(version, warn_from) {
        warnings.push(format!(
            "{kind} {key}: {kind}.external.name is deprecated in favor of {kind}.name"
        ));
    }
    *name = std::mem::take(&mut external.name);
    Ok(())
}

fn external(v: Option<&Value>) -> Result<External, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(External::default()),
        Some(Value::Bool(b)) => Ok(External { name: String::new(), external: *b }),
        Some(Value::Map(m)) => {
            let name = match m.get("name") {
                Some(Value::Str(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => crate::gostr::sprint(other),
            };
            Ok(External { name, external: true })
        }
        Some(other) => {
            Err(DecodeError(format!("invalid type {} for external", super::go_type(other))))
        }
    }
}

fn entries(section: Option<&Value>) -> Vec<(&String, Option<&Map>)> {
    match section {
        Some(Value::Map(m)) => m.iter().map(|(k, v)| (k, v.as_map())).collect(),
        _ => Vec::new(),
    }
}

fn sub_map(f: &Fields<'_>, key: &str, name: &str) -> Result<BTreeMap<String, String>, DecodeError> {
    match f.raw(key) {
        Some(v) => string_map(v, &f.sub(name)),
        None => Ok(BTreeMap::default()),
    }
}

/// `networks:`.
pub fn decode_networks(
    section: Option<&Value>,
    ctx: &ObjectContext<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, NetworkConfig>, DecodeError> {
    let mut out = BTreeMap::default();
    for (name, m) in entries(section) {
        let empty = Map::default();
        let f = Fields::new(m.unwrap_or(&empty), format!("[{name}]"));
        let mut n = NetworkConfig {
            name: f.string("name", "name")?,
            driver: f.string("driver", "driver")?,
            driver_opts: sub_map(&f, "driver_opts", "driver_opts")?,
            external: external(f.raw("external"))?,
            internal: f.boolean("internal", "internal")?,
            attachable: f.boolean("attachable", "attachable")?,
            labels: match f.raw("labels") {
                Some(v) => labels(v, &f.sub("labels"))?,
                None => BTreeMap::default(),
            },
            ..Default::default()
        };
        if let Some(ipam) = f.map("ipam") {
            let i = Fields::new(ipam, f.sub("ipam"));
            n.ipam.driver = i.string("driver", "driver")?;
            if let Some(Value::Seq(pools)) = i.get("config") {
                for p in pools {
                    if let Value::Map(pm) = p {
                        let subnet = Fields::new(pm, "").string("subnet", "subnet")?;
                        n.ipam.config.push(IpamPool { subnet });
                    }
                }
            }
        }
        if n.external.external {
            let v = (ctx.version, "3.5");
            external_name("network", name, &mut n.name, &mut n.external, v, warnings)?;
            n.extras = extras(f.map);
        }
        out.insert(name.clone(), n);
    }
    Ok(out)
}

fn conflict(volume: &str, key: &str) -> DecodeError {
    DecodeError(format!(
        "conflicting parameters \"external\" and {} specified for volume {}",
        crate::gostr::quote(key),
        crate::gostr::quote(volume)
    ))
}

/// `volumes:`.
pub fn decode_volumes(
    section: Option<&Value>,
    ctx: &ObjectContext<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, VolumeConfig>, DecodeError> {
    let mut out = BTreeMap::default();
    for (name, m) in entries(section) {
        let empty = Map::default();
        let f = Fields::new(m.unwrap_or(&empty), format!("[{name}]"));
        let mut v = VolumeConfig {
            name: f.string("name", "name")?,
            driver: f.string("driver", "driver")?,
            driver_opts: sub_map(&f, "driver_opts", "driver_opts")?,
            external: external(f.raw("external"))?,
            labels: match f.raw("labels") {
                Some(l) => labels(l, &f.sub("labels"))?,
                None => BTreeMap::default(),
            },
            extras: Map::default(),
            cluster_spec: match f.get("x-cluster-spec") {
                Some(spec) => Some(crate::cluster::normalize(spec)?),
                None => None,
            },
        };
        if v.external.external {
            if !v.driver.is_empty() {
                return Err(conflict(name, "driver"));
            }
            if !v.driver_opts.is_empty() {
                return Err(conflict(name, "driver_opts"));
            }
            if !v.labels.is_empty() {
                return Err(conflict(name, "labels"));
            }
            let ver = (ctx.version, "3.4");
            external_name("volume", name, &mut v.name, &mut v.external, ver, warnings)?;
            v.extras = extras(f.map);
            v.extras.shift_remove("x-cluster-spec");
        }
        out.insert(name.clone(), v);
    }
    Ok(out)
}

/// `secrets:`.
pub fn decode_secrets(
    section: Option<&Value>,
    ctx: &ObjectContext<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, FileObjectConfig>, DecodeError> {
    file_objects(section, "secret", ctx, warnings)
}

/// `configs:`.
pub fn decode_configs(
    section: Option<&Value>,
    ctx: &ObjectContext<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, FileObjectConfig>, DecodeError> {
    file_objects(section, "config", ctx, warnings)
}

fn file_objects(
    section: Option<&Value>,
    kind: &str,
    ctx: &ObjectContext<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, FileObjectConfig>, DecodeError> {
    let mut out = BTreeMap::default();
    for (name, m) in entries(section) {
        let empty = Map::default();
        let f = Fields::new(m.unwrap_or(&empty), format!("[{name}]"));
        let mut o = FileObjectConfig {
            name: f.string("name", "name")?,
            file: f.string("file", "file")?,
            external: external(f.raw("external"))?,
            labels: match f.raw("labels") {
                Some(l) => labels(l, &f.sub("labels"))?,
                None => BTreeMap::default(),
            },
            extras: extras(f.map),
            driver: f.string("driver", "driver")?,
            driver_opts: sub_map(&f, "driver_opts", "driver_opts")?,
            template_driver: f.string("template_driver", "template_driver")?,
        };
        if o.external.external {
            let v = (ctx.version, "3.5");
            external_name(kind, name, &mut o.name, &mut o.external, v, warnings)?;
        } else if !o.driver.is_empty() {
            if !o.file.is_empty() {
                return Err(DecodeError(format!(
                    "{kind} {name}: {kind}.driver and {kind}.file conflict; only use {kind}.driver"
                )));
            }
        } else {
            o.file = abs_path(ctx.working_dir, &o.file, ctx.home);
        }
        out.insert(name.clone(), o);
    }
    Ok(out)
}
