//! `x-cluster-spec:` of a cluster (CSI) volume: Docker decodes it into a typed struct, so
//! its fields come out in that struct's order, sizes in bytes and segments as string maps.

use crate::decode::DecodeError;
use crate::gostr::sprint;
use crate::value::{Map, Value};
use crate::yaml::{Out, sort_keys};
use std::borrow::Cow;

/// Normalizes the spec as Docker's decoding does.
pub fn normalize(v: &Value) -> Result<Value, DecodeError> {
    let Value::Map(m) = v else { return Ok(Value::Map(Map::default())) };
    let mut out = Map::default();
    for (k, v) in m {
        let nv = match k.as_str() {
            "capacity_range" => sizes(v)?,
            "accessibility_requirements" => topology(v),
            _ => v.clone(),
        };
        out.insert(k.clone(), nv);
    }
    Ok(Value::Map(out))
}

fn sizes(v: &Value) -> Result<Value, DecodeError> {
    let Value::Map(m) = v else { return Ok(v.clone()) };
    let mut out = Map::default();
    for (k, v) in m {
        let bytes = match v {
            Value::Str(s) => crate::units::ram_in_bytes(s)
                .map_err(|e| DecodeError::field(&format!("Spec.capacity_range.{k}"), e))?,
            Value::Int(i) => *i,
            _ => 0,
        };
        out.insert(k.clone(), Value::Str(bytes.to_string()));
    }
    Ok(Value::Map(out))
}

fn topology(v: &Value) -> Value {
    let Value::Map(m) = v else { return v.clone() };
    let mut out = Map::default();
    for (k, groups) in m {
        let Value::Seq(items) = groups else {
            out.insert(k.clone(), groups.clone());
            continue;
        };
        let items = items
            .iter()
            .map(|item| {
                let Value::Map(im) = item else { return item.clone() };
                let mut o = Map::default();
                for (ik, iv) in im {
                    let seg = if ik == "segments" { segments(iv) } else { iv.clone() };
                    o.insert(ik.clone(), seg);
                }
                Value::Map(o)
            })
            .collect();
        out.insert(k.clone(), Value::Seq(items));
    }
    Value::Map(out)
}

fn segments(v: &Value) -> Value {
    let mut out = Map::default();
    match v {
        Value::Map(m) => {
            for (k, v) in m {
                out.insert(k.clone(), Value::Str(crate::decode::to_string_or_empty(v)));
            }
        }
        Value::Seq(items) => {
            for item in items {
                let s = sprint(item);
                let (k, val) = s.split_once('=').unwrap_or((&s, ""));
                out.insert(k.to_owned(), Value::Str(val.to_owned()));
            }
        }
        _ => {}
    }
    Value::Map(out)
}

const ORDER: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "group",
            "access_mode",
            "accessibility_requirements",
            "capacity_range",
            "secrets",
            "availability",
        ],
    ),
    ("access_mode", &["scope", "sharing", "mount_volume", "block_volume"]),
    ("mount_volume", &["fs_type", "mount_flags"]),
    ("accessibility_requirements", &["requisite", "preferred"]),
    ("capacity_range", &["required_bytes", "limit_bytes"]),
    ("secrets", &["key", "secret"]),
];

/// Writes the spec in the struct order of Docker's `ClusterVolumeSpec`.
pub fn spec_out(v: &Value) -> Out<'_> {
    ordered(v, "")
}

fn ordered<'a>(v: &'a Value, field: &str) -> Out<'a> {
    match v {
        Value::Map(m) => {
            let order = ORDER.iter().find(|(f, _)| *f == field).map(|(_, o)| *o);
            let mut keys: Vec<&String> = m.keys().collect();
            match order {
                Some(o) => {
                    keys.retain(|k| o.contains(&k.as_str()));
                    keys.sort_by_key(|k| o.iter().position(|x| x == k));
                }
                None => keys.sort_by(|a, b| sort_keys(a, b)),
            }
            Out::Map(
                keys.into_iter()
                    .map(|k| (Cow::Borrowed(k.as_str()), ordered(&m[k.as_str()], k)))
                    .collect(),
            )
        }
        Value::Seq(items) => Out::Seq(items.iter().map(|i| ordered(i, field)).collect()),
        other => crate::model::value_out(other),
    }
}
