//! The validation walk, in gojsonschema's order and with its scoring, so that the errors come
//! out in the order Docker sees them and `oneOf` picks the branch gojsonschema picks.
//!
//! gojsonschema visits object keys and schema properties in Go map order, which is random;
//! where it does, this walk uses document order.

use std::collections::HashMap;

use super::ports::{float_numerator, parse_port_spec};
use super::schema::{Additional, Format, JsonType, Node, Schema};
use super::duration::parse_go_duration;
use crate::Value;

/// One step of a field path.
#[derive(Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A field path, as a chain of steps from the root.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Option<Step<'a>>,
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path { parent: None, step: None };

    fn child(&'a self, step: Step<'a>) -> Path<'a> {
        Path { parent: Some(self), step: Some(step) }
    }

    /// gojsonschema's field: `(root)`, or the steps joined with dots.
    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut cursor = Some(self);
        while let Some(path) = cursor {
            if let Some(step) = path.step {
                steps.push(step);
            }
            cursor = path.parent;
        }
        if steps.is_empty() {
            return "(root)".to_string();
        }
        let parts: Vec<String> = steps
            .iter()
            .rev()
            .map(|step| match step {
                Step::Key(key) => (*key).to_string(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        parts.join(".")
    }
}

/// What went wrong, with gojsonschema's details.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    InvalidType { expected: String, given: &'static str },
    OneOf,
    AnyOf,
    Required(String),
    AdditionalProperty(String),
    Format(&'static str),
    Unique(usize, usize),
    Enum(String),
    Minimum(String),
}

/// One gojsonschema result error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawError {
    pub(crate) field: String,
    pub(crate) kind: Kind,
}

impl RawError {
    /// gojsonschema's description (its English locale).
    pub(crate) fn description(&self) -> String {
        match &self.kind {
            Kind::InvalidType { expected, given } => {
                format!("Invalid type. Expected: {expected}, given: {given}")
            }
            Kind::OneOf => "Must validate one and only one schema (oneOf)".to_string(),
            Kind::AnyOf => "Must validate at least one schema (anyOf)".to_string(),
            Kind::Required(property) => format!("{property} is required"),
            Kind::AdditionalProperty(property) => {
                format!("Additional property {property} is not allowed")
            }
            Kind::Format(format) => format!("Does not match format '{format}'"),
            Kind::Unique(i, j) => format!("array items[{i},{j}] must be unique"),
            Kind::Enum(allowed) => {
                format!("{} must be one of the following: {allowed}", self.field)
            }
            Kind::Minimum(min) => format!("Must be greater than or equal to {min}"),
        }
    }
}

/// A (sub)result: its errors in order, and gojsonschema's closeness score.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) errors: Vec<RawError>,
    score: i64,
}

impl Outcome {
    fn add(&mut self, path: &Path<'_>, kind: Kind) {
        self.errors.push(RawError { field: path.render(), kind });
        self.score -= 2;
    }

    fn merge(&mut self, other: Outcome) {
        self.errors.extend(other.errors);
        self.score += other.score;
    }
}

/// Validates `value` against the root of `schema`.
pub(crate) fn run(schema: &Schema, value: &Value) -> Outcome {
    let mut outcome = Outcome::default();
    Walker { schema }.walk(0, value, &Path::ROOT, &mut outcome);
    outcome
}

struct Walker<'s> {
    schema: &'s Schema,
}

impl Walker<'_> {
    fn walk(&self, index: usize, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        let node = &self.schema.nodes[index];
        if let Some(target) = node.reference {
            return self.walk(target, value, path, out);
        }
        let (given, accepted) = match value {
            Value::Null => ("null", node.has_type(JsonType::Null)),
            Value::Bool(_) => ("boolean", node.has_type(JsonType::Boolean)),
            Value::Int(_) | Value::Float(_) => {
                let integer = value.json_type() == "integer";
                let given = if integer { "integer" } else { "number" };
                let ok = node.has_type(JsonType::Number)
                    || (integer && node.has_type(JsonType::Integer));
                (given, ok)
            }
            Value::Str(_) => ("string", node.has_type(JsonType::String)),
            Value::Seq(_) => ("array", node.has_type(JsonType::Array)),
            Value::Map(_) | Value::AnyMap(_) => ("object", node.has_type(JsonType::Object)),
        };
        if !node.types.is_empty() && !accepted {
            let expected = node.types_text.clone();
            out.add(path, Kind::InvalidType { expected, given });
            return;
        }
        self.combinators(node, value, path, out);
        match value {
            Value::Int(_) | Value::Float(_) => self.number(node, value, path, out),
            Value::Seq(items) => self.array(node, items, path, out),
            Value::Map(map) => self.object(node, map, path, out),
            _ => {}
        }
        Self::enumeration(node, value, path, out);
        if let Value::Str(text) = value {
            Self::string(node, text, path, out);
        }
        if let Value::Map(map) = value {
            for (key, child) in map {
                if let Some(&property) = node.property_index.get(key) {
                    self.walk(property, child, &path.child(Step::Key(key)), out);
                }
            }
        }
        out.score += 1;
    }

    /// `anyOf` and `oneOf` (gojsonschema's validateSchema).
    fn combinators(&self, node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        if !node.any_of.is_empty() {
            let mut best: Option<Outcome> = None;
            let mut valid = false;
            for &branch in &node.any_of {
                let mut attempt = Outcome::default();
                self.walk(branch, value, path, &mut attempt);
                if attempt.errors.is_empty() {
                    valid = true;
                    break;
                }
                if best.as_ref().is_none_or(|b| attempt.score > b.score) {
                    best = Some(attempt);
                }
            }
            if !valid {
                out.add(path, Kind::AnyOf);
                if let Some(best) = best {
                    out.merge(best);
                }
            }
        }
        if !node.one_of.is_empty() {
            let mut passed = 0;
            let mut best: Option<Outcome> = None;
            for &branch in &node.one_of {
                let mut attempt = Outcome::default();
                self.walk(branch, value, path, &mut attempt);
                if attempt.errors.is_empty() {
                    passed += 1;
                } else if passed == 0 && best.as_ref().is_none_or(|b| attempt.score > b.score) {
                    best = Some(attempt);
                }
            }
            if passed != 1 {
                out.add(path, Kind::OneOf);
                if let (0, Some(best)) = (passed, best) {
                    out.merge(best);
                }
            }
        }
        out.score += 1;
    }

    fn number(&self, node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        let number = match value {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => return,
        };
        if let Some(min) = node.minimum
            && number < min
        {
            out.add(path, Kind::Minimum(format_number(min)));
        }
        if let Some(format) = node.format {
            let ok = match format {
                Format::Expose => true,
                Format::Duration => false,
                Format::Ports => {
                    let text = match value {
                        Value::Int(i) => Some(i.to_string()),
                        _ => float_numerator(number),
                    };
                    text.is_some_and(|t| parse_port_spec(&t).is_ok())
                }
            };
            if !ok {
                out.add(path, Kind::Format(format.name()));
            }
        }
        out.score += 1;
    }

    fn string(node: &Node, text: &str, path: &Path<'_>, out: &mut Outcome) {
        if let Some(format) = node.format {
            let ok = match format {
                Format::Expose => true,
                Format::Duration => parse_go_duration(text).is_ok(),
                Format::Ports => parse_port_spec(text).is_ok(),
            };
            if !ok {
                out.add(path, Kind::Format(format.name()));
            }
        }
        out.score += 1;
    }

    fn enumeration(node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        if !node.enumeration.is_empty() {
            let found = matches!(value, Value::Str(s) if node.enumeration.contains(s));
            if !found {
                let quoted: Vec<String> =
                    node.enumeration.iter().map(|e| serde_json::Value::from(e.as_str()).to_string()).collect();
                out.add(path, Kind::Enum(quoted.join(", ")));
            }
        }
        out.score += 1;
    }

    fn array(&self, node: &Node, items: &[Value], path: &Path<'_>, out: &mut Outcome) {
        if let Some(item_schema) = node.items {
            for (i, item) in items.iter().enumerate() {
                self.walk(item_schema, item, &path.child(Step::Index(i)), out);
            }
        }
        if node.unique_items {
            let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
            for (j, item) in items.iter().enumerate() {
                let key = canonical(item);
                if let Some(&i) = seen.get(&key) {
                    out.add(path, Kind::Unique(i, j));
                }
                seen.insert(key, j);
            }
        }
        out.score += 1;
    }

    fn object(&self, node: &Node, map: &crate::Map, path: &Path<'_>, out: &mut Outcome) {
        for name in &node.required {
            if map.contains_key(name) {
                out.score += 1;
            } else {
                out.add(path, Kind::Required(name.clone()));
            }
        }
        if node.additional != Additional::Allowed {
            for (key, child) in map {
                let matched = self.pattern_properties(node, key, child, path, out);
                let known = node.property_index.contains_key(key);
                if node.additional == Additional::Forbidden && !known && !matched {
                    out.add(path, Kind::AdditionalProperty(key.clone()));
                }
            }
        }
        out.score += 1;
    }

    /// Validates `child` against every pattern its key matches; whether any matched.
    fn pattern_properties(
        &self,
        node: &Node,
        key: &str,
        child: &Value,
        path: &Path<'_>,
        out: &mut Outcome,
    ) -> bool {
        let mut matched = false;
        for &(pattern, schema) in &node.pattern_properties {
            if pattern.matches(key) {
                matched = true;
                self.walk(schema, child, &path.child(Step::Key(key)), out);
            }
        }
        if matched {
            out.score += 1;
        }
        matched
    }
}

/// A number as gojsonschema prints a schema bound.
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// The JSON text gojsonschema compares for `uniqueItems`: numbers as float64, keys sorted.
fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&format!("{:?}", *i as f64)),
        Value::Float(f) => out.push_str(&format!("{f:?}")),
        Value::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::AnyMap(_) => out.push_str("{?}"),
    }
}
