//! From the validated, interpolated document to the model: Docker's `Transform` step
//! (mapstructure with its compose-specific hooks), one function per shape.

mod fields;
mod objects;
mod service;

pub use objects::{ObjectContext, decode_configs, decode_networks, decode_secrets, decode_volumes};
pub use service::decode_service;

use crate::gostr::sprint;
use crate::value::{Map, Value};
use std::collections::BTreeMap;

/// A decoding failure, worded as Docker words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl DecodeError {
    /// mapstructure's wrapper around one failed field.
    pub(crate) fn field(path: &str, reason: impl std::fmt::Display) -> Self {
        DecodeError(format!(
            "decoding failed due to the following error(s):\n\nerror decoding '{path}': {reason}"
        ))
    }

    /// mapstructure's wording for a value of the wrong type.
    pub(crate) fn wrong_type(path: &str, want: &str, got: &Value) -> Self {
        DecodeError(format!(
            "decoding failed due to the following error(s):\n\n'{path}' expected type '{want}', got unconvertible type '{}', value: '{}'",
            go_type(got),
            sprint(got)
        ))
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::Seq(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::AnyMap(_) => "map[interface {}]interface {}",
    }
}

/// The `x-*` keys of a mapping.
pub fn extras(m: &Map) -> Map {
    m.iter().filter(|(k, _)| k.starts_with("x-")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// `fmt.Sprint` of a value, or "" for null (Docker's `toString(v, false)`).
pub(crate) fn to_string_or_empty(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        v => sprint(v),
    }
}

/// A mapping of strings (`map[string]string`): values printed, null as "".
pub(crate) fn string_map(v: &Value, path: &str) -> Result<BTreeMap<String, String>, DecodeError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Map(m) => Ok(m.iter().map(|(k, v)| (k.clone(), to_string_or_empty(v))).collect()),
        other => Err(DecodeError::wrong_type(path, "map[string]string", other)),
    }
}

/// A mapping given as a mapping or as a `key=value` list (labels, sysctls, args, env).
pub(crate) fn mapping_or_list(
    v: &Value,
    sep: char,
    allow_nil: bool,
    path: &str,
) -> Result<BTreeMap<String, Option<String>>, DecodeError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Map(m) => Ok(m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Null if allow_nil => None,
                    v => Some(to_string_or_empty(v)),
                };
                (k.clone(), v)
            })
            .collect()),
        Value::Seq(items) => {
            let mut out = BTreeMap::new();
            for item in items {
                let s = sprint(item);
                match s.split_once(sep) {
                    Some((k, val)) => out.insert(k.to_owned(), Some(val.to_owned())),
                    None if allow_nil => out.insert(s, None),
                    None => out.insert(s, Some(String::new())),
                };
            }
            Ok(out)
        }
        other => Err(DecodeError::field(
            path,
            format!("expected a map or a list, got {}: {}", go_type(other), sprint(other)),
        )),
    }
}

/// Like [`mapping_or_list`] without nulls.
pub(crate) fn labels(v: &Value, path: &str) -> Result<BTreeMap<String, String>, DecodeError> {
    Ok(mapping_or_list(v, '=', false, path)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}
