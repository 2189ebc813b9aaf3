//! The validation walk, in gojsonschema's order and with its scoring, so that the errors come
//! out in the order Docker sees them and `oneOf` picks the branch gojsonschema picks.
//!
//! gojsonschema visits object keys and schema properties in Go map order, which is random;
//! where it does, this walk uses document order.

use super::check::{check_type, duplicates, enum_ok, format_ok, is_valid, minimum_ok};
use super::keywords::Additional;
use super::schema::{Node, Schema};
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
    Walker { schema }.walk(schema.root, value, &Path::ROOT, &mut outcome);
    outcome
}

struct Walker<'s> {
    schema: &'s Schema,
}

impl Walker<'_> {
    fn walk(&self, index: usize, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        let node = self.schema.node(index);
        if let Some(target) = node.reference() {
            return self.walk(target, value, path, out);
        }
        if let Err(given) = check_type(node, value) {
            let expected = node.types_text().to_string();
            out.add(path, Kind::InvalidType { expected, given });
            return;
        }
        self.combinators(node, value, path, out);
        match value {
            Value::Int(_) | Value::Float(_) => Self::number(node, value, path, out),
            Value::Seq(items) => self.array(node, items, path, out),
            Value::Map(map) => self.object(node, map, path, out),
            _ => {}
        }
        Self::enumeration(node, value, path, out);
        if let Value::Str(_) = value {
            Self::format(node, value, path, out);
            out.score += 1;
        }
        if let Value::Map(map) = value {
            for (key, child) in map {
                if let Some(property) = node.property(key) {
                    self.walk(property, child, &path.child(Step::Key(key)), out);
                }
            }
        }
        out.score += 1;
    }

    /// `anyOf` and `oneOf` (gojsonschema's validateSchema).
    fn combinators(&self, node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        if node.has_any_of() && !node.any_of().any(|b| is_valid(self.schema, b, value)) {
            out.add(path, Kind::AnyOf);
            out.merge(self.closest(node.any_of(), value, path));
        }
        if node.has_one_of() {
            let passed = node.one_of().filter(|&b| is_valid(self.schema, b, value)).count();
            if passed != 1 {
                out.add(path, Kind::OneOf);
                if passed == 0 {
                    out.merge(self.closest(node.one_of(), value, path));
                }
            }
        }
        out.score += 1;
    }

    /// The result of the failing branch with the best score (the first of equals).
    fn closest(
        &self,
        branches: impl Iterator<Item = usize>,
        value: &Value,
        path: &Path<'_>,
    ) -> Outcome {
        let mut best: Option<Outcome> = None;
        for branch in branches {
            let mut attempt = Outcome::default();
            self.walk(branch, value, path, &mut attempt);
            if best.as_ref().is_none_or(|b| attempt.score > b.score) {
                best = Some(attempt);
            }
        }
        best.unwrap_or_default()
    }

    fn number(node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        if let Some(min) = node.minimum
            && !minimum_ok(node, value)
        {
            out.add(path, Kind::Minimum(format_number(min)));
        }
        Self::format(node, value, path, out);
        out.score += 1;
    }

    fn format(node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        if let Some(format) = node.format
            && !format_ok(format, value)
        {
            out.add(path, Kind::Format(format.name()));
        }
    }

    fn enumeration(node: &Node, value: &Value, path: &Path<'_>, out: &mut Outcome) {
        if !enum_ok(node, value) {
            let quoted: Vec<String> =
                node.enumeration().map(|e| serde_json::Value::from(e).to_string()).collect();
            out.add(path, Kind::Enum(quoted.join(", ")));
        }
        out.score += 1;
    }

    fn array(&self, node: &Node, items: &[Value], path: &Path<'_>, out: &mut Outcome) {
        if let Some(item_schema) = node.items() {
            for (i, item) in items.iter().enumerate() {
                self.walk(item_schema, item, &path.child(Step::Index(i)), out);
            }
        }
        if node.unique_items {
            for (i, j) in duplicates(items) {
                out.add(path, Kind::Unique(i, j));
            }
        }
        out.score += 1;
    }

    fn object(&self, node: &Node, map: &crate::Map, path: &Path<'_>, out: &mut Outcome) {
        for name in node.required() {
            if map.contains_key(name) {
                out.score += 1;
            } else {
                out.add(path, Kind::Required(name.to_string()));
            }
        }
        if node.additional != Additional::Allowed {
            for (key, child) in map {
                let matched = self.pattern_properties(node, key, child, path, out);
                let known = node.property(key).is_some();
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
        for (pattern, schema) in node.pattern_properties() {
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
