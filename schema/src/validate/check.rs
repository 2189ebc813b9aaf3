//! The keyword checks, shared by the full walk (which records errors and scores) and by a
//! fast yes/no walk that validates the common, valid document without allocating.

use super::duration::parse_go_duration;
use super::keywords::{Additional, Format, JsonType};
use super::ports::{float_numerator, parse_port_spec};
use super::schema::{Node, Schema};
use crate::Value;

/// `Err(given type)` when the node's `type` keyword rejects the value.
pub(crate) fn check_type(node: &Node, value: &Value) -> Result<(), &'static str> {
    if !node.has_types() {
        return Ok(());
    }
    let (given, accepted) = match value {
        Value::Null => ("null", node.has_type(JsonType::Null)),
        Value::Bool(_) => ("boolean", node.has_type(JsonType::Boolean)),
        Value::Int(_) | Value::Float(_) => {
            let integer = value.json_type() == "integer";
            let given = if integer { "integer" } else { "number" };
            let ok =
                node.has_type(JsonType::Number) || (integer && node.has_type(JsonType::Integer));
            (given, ok)
        }
        Value::Str(_) => ("string", node.has_type(JsonType::String)),
        Value::Seq(_) => ("array", node.has_type(JsonType::Array)),
        Value::Map(_) | Value::AnyMap(_) => ("object", node.has_type(JsonType::Object)),
    };
    if accepted { Ok(()) } else { Err(given) }
}

/// Whether a string or number passes a format checker as Docker registers them.
pub(crate) fn format_ok(format: Format, value: &Value) -> bool {
    match (format, value) {
        (Format::Expose, _) => true,
        (Format::Duration, Value::Str(text)) => parse_go_duration(text).is_ok(),
        (Format::Duration, _) => false,
        (Format::Ports, Value::Str(text)) => parse_port_spec(text).is_ok(),
        (Format::Ports, Value::Int(i)) => parse_port_spec(&i.to_string()).is_ok(),
        (Format::Ports, Value::Float(f)) => {
            float_numerator(*f).is_some_and(|text| parse_port_spec(&text).is_ok())
        }
        (Format::Ports, _) => true,
    }
}

/// Whether the value is one of the node's `enum` strings (or there is no `enum`).
pub(crate) fn enum_ok(node: &Node, value: &Value) -> bool {
    !node.has_enumeration() || matches!(value, Value::Str(s) if node.enumeration().any(|e| e == s))
}

/// Whether a number is at least the node's `minimum` (or there is none).
pub(crate) fn minimum_ok(node: &Node, value: &Value) -> bool {
    let number = match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => return true,
    };
    node.minimum.is_none_or(|min| number >= min)
}

/// gojsonschema's `uniqueItems` findings: for each item equal to an earlier one, the index of
/// the latest earlier equal item and its own index.
pub(crate) fn duplicates(items: &[Value]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    for j in 1..items.len() {
        if let Some(i) = (0..j).rev().find(|&i| json_equal(&items[i], &items[j])) {
            found.push((i, j));
        }
    }
    found
}

fn has_duplicate(items: &[Value]) -> bool {
    if items.iter().all(|item| matches!(item, Value::Str(_))) && items.len() > 16 {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        return !items.iter().filter_map(Value::as_str).all(|s| seen.insert(s));
    }
    (1..items.len()).any(|j| (0..j).any(|i| json_equal(&items[i], &items[j])))
}

/// Equality after a JSON round trip through float64, as gojsonschema compares items.
fn json_equal(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => matches!((number(a), number(b)), (Some(x), Some(y)) if x == y),
    }
}

/// Whether `value` validates against node `index`, with exactly the verdict of the full walk
/// (no errors) but without recording anything. It also fails a value that `json.Marshal`
/// cannot encode (see [`encodable`]), so that a valid document needs one pass only.
pub(crate) fn is_valid(schema: &Schema, index: usize, value: &Value) -> bool {
    let node = schema.node(index);
    if let Some(target) = node.reference() {
        return is_valid(schema, target, value);
    }
    match value {
        Value::AnyMap(_) => return false,
        Value::Float(f) if !f.is_finite() => return false,
        _ => {}
    }
    if check_type(node, value).is_err() {
        return false;
    }
    if node.has_any_of() && !node.any_of().any(|b| is_valid(schema, b, value)) {
        return false;
    }
    if node.has_one_of() {
        let passing = node.one_of().filter(|&b| is_valid(schema, b, value)).take(2);
        if passing.count() != 1 {
            return false;
        }
    }
    if !enum_ok(node, value) {
        return false;
    }
    match value {
        Value::Int(_) | Value::Float(_) | Value::Str(_) => {
            minimum_ok(node, value) && node.format.is_none_or(|f| format_ok(f, value))
        }
        Value::Seq(items) => {
            let items_ok = match node.items() {
                Some(s) => items.iter().all(|item| is_valid(schema, s, item)),
                None => items.iter().all(encodable),
            };
            items_ok && !(node.unique_items && has_duplicate(items))
        }
        Value::Map(map) => {
            node.required().all(|name| map.contains_key(name))
                && map.iter().all(|(key, child)| entry_is_valid(schema, node, key, child))
        }
        Value::Null | Value::Bool(_) | Value::AnyMap(_) => true,
    }
}

/// Whether `json.Marshal` can encode the value: no mapping with non-string keys, no
/// infinite or NaN float.
pub(crate) fn encodable(value: &Value) -> bool {
    match value {
        Value::AnyMap(_) => false,
        Value::Float(f) => f.is_finite(),
        Value::Seq(items) => items.iter().all(encodable),
        Value::Map(map) => map.values().all(encodable),
        _ => true,
    }
}

fn entry_is_valid(schema: &Schema, node: &Node, key: &str, child: &Value) -> bool {
    let property = node.property(key);
    let mut matched = false;
    if node.additional != Additional::Allowed {
        for (pattern, sub) in node.pattern_properties() {
            if pattern.matches(key) {
                matched = true;
                if !is_valid(schema, sub, child) {
                    return false;
                }
            }
        }
        if node.additional == Additional::Forbidden && property.is_none() && !matched {
            return false;
        }
    }
    match property {
        Some(sub) => is_valid(schema, sub, child),
        None => matched || encodable(child),
    }
}
