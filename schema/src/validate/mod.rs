//! Schema validation of a compose v3 document, reporting errors exactly as
//! `docker stack config` does.
//!
//! Docker validates with gojsonschema against one JSON Schema per file-format version and
//! prints one error: the deepest one (by the number of dot-separated parts of its field
//! path), an invalid-type error winning ties; for a failed `oneOf` it prints the first error
//! of the closest branch. [`validate`] returns that error first, followed by every other
//! violation found. Our schemas live in `schema/json/` (see `PROVENANCE.md` there).

mod check;
#[cfg(test)]
mod compile;
mod duration;
mod engine;
mod keywords;
mod ports;
mod schema;

pub use duration::{DurationError, parse_go_duration};
pub use ports::{PortSpec, PortSpecError, float_numerator, parse_port_spec};

use crate::Value;
use engine::{Kind, RawError};
use schema::Schema;

/// One schema violation, worded as Docker words it.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// gojsonschema's field path: "(root)", "services.web.image", "services.web.ports.0".
    pub path: String,
    /// The whole line Docker prints, e.g. "services.web.image must be a string".
    pub message: String,
}

const VERSIONS: [&str; 14] = [
    "3.0", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12",
    "3.13",
];

#[cfg(test)]
const SOURCES: [&str; 14] = [
    include_str!("../../json/config_schema_v3.0.json"),
    include_str!("../../json/config_schema_v3.1.json"),
    include_str!("../../json/config_schema_v3.2.json"),
    include_str!("../../json/config_schema_v3.3.json"),
    include_str!("../../json/config_schema_v3.4.json"),
    include_str!("../../json/config_schema_v3.5.json"),
    include_str!("../../json/config_schema_v3.6.json"),
    include_str!("../../json/config_schema_v3.7.json"),
    include_str!("../../json/config_schema_v3.8.json"),
    include_str!("../../json/config_schema_v3.9.json"),
    include_str!("../../json/config_schema_v3.10.json"),
    include_str!("../../json/config_schema_v3.11.json"),
    include_str!("../../json/config_schema_v3.12.json"),
    include_str!("../../json/config_schema_v3.13.json"),
];

/// Versions the loader supports, "3.0" through "3.13".
pub fn supported_versions() -> &'static [&'static str] {
    &VERSIONS
}

/// Validates a document (after interpolation) against the schema of `version`, which must
/// already be normalized as Docker does it: a missing version, `""` and `"3"` all mean
/// `"3.13"` (Docker's default), and a numeric `version: 3.0` is `"3"`, i.e. 3.13. An
/// unsupported version is reported with Docker's message. Returns every violation; the
/// FIRST element is the one Docker would report.
pub fn validate(doc: &Value, version: &str) -> Result<(), Vec<Violation>> {
    let Some(schema) = compiled(version) else {
        return Err(vec![Violation {
            path: "(root)".into(),
            message: format!("unsupported Compose file version: {version}"),
        }]);
    };
    // Most documents are valid: check that first, in one pass that records nothing.
    if check::is_valid(&schema, schema.root, doc) {
        return Ok(());
    }
    if let Some(message) = unencodable(doc) {
        return Err(vec![Violation { path: "(root)".into(), message }]);
    }
    let errors = engine::run(&schema, doc).errors;
    if errors.is_empty() {
        return Ok(());
    }
    Err(report(&errors))
}

/// The compiled schema of a supported version.
fn compiled(version: &str) -> Option<Schema> {
    let index = VERSIONS.iter().position(|v| *v == version)?;
    Schema::of_version(index)
}

/// Docker hands the document to gojsonschema through `json.Marshal`, which fails on a
/// mapping with non-string keys and on infinite or NaN floats. Maps are visited in sorted
/// key order, as `encoding/json` does.
fn unencodable(value: &Value) -> Option<String> {
    match value {
        Value::AnyMap(_) => Some("json: unsupported type: map[interface {}]interface {}".into()),
        Value::Float(f) if f.is_nan() => Some("json: unsupported value: NaN".into()),
        Value::Float(f) if f.is_infinite() => {
            let sign = if *f > 0.0 { "+" } else { "-" };
            Some(format!("json: unsupported value: {sign}Inf"))
        }
        Value::Seq(items) => items.iter().find_map(unencodable),
        Value::Map(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.into_iter().find_map(|k| unencodable(&map[k]))
        }
        _ => None,
    }
}

/// Docker's choice first, then every other violation (without the `oneOf` wrappers).
fn report(errors: &[RawError]) -> Vec<Violation> {
    let chosen = most_specific(errors);
    let child = match errors[chosen].kind {
        Kind::OneOf | Kind::AnyOf => errors.get(chosen + 1),
        _ => None,
    };
    let first = render(&errors[chosen], child);
    let mut out = vec![first];
    for (i, error) in errors.iter().enumerate() {
        if i == chosen || matches!(error.kind, Kind::OneOf | Kind::AnyOf) {
            continue;
        }
        let violation = render(error, None);
        if !out.contains(&violation) {
            out.push(violation);
        }
    }
    out
}

/// docker/cli `getMostSpecificError`.
fn most_specific(errors: &[RawError]) -> usize {
    let depth = |e: &RawError| e.field.split('.').count();
    let is_type = |e: &RawError| matches!(e.kind, Kind::InvalidType { .. });
    let mut best = 0;
    for (i, error) in errors.iter().enumerate() {
        let (d, best_d) = (depth(error), depth(&errors[best]));
        if d > best_d || (d == best_d && is_type(error) && !is_type(&errors[best])) {
            best = i;
        }
    }
    best
}

/// docker/cli `validationError.Error`: the field, then the description.
fn render(error: &RawError, child: Option<&RawError>) -> Violation {
    let description = match (&error.kind, child) {
        (Kind::InvalidType { expected, .. }, _) => format!("must be a {}", human_type(expected)),
        (Kind::OneOf | Kind::AnyOf, Some(child)) => child.description(),
        _ => error.description(),
    };
    Violation { path: error.field.clone(), message: format!("{} {description}", error.field) }
}

/// docker/cli `humanReadableType`: object -> mapping, array -> list, lists as "a, b or c".
fn human_type(expected: &str) -> String {
    let one = |t: &str| match t {
        "object" => "mapping".to_string(),
        "array" => "list".to_string(),
        other => other.to_string(),
    };
    match expected.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(list) => {
            let names: Vec<String> = list.split(',').map(one).collect();
            let (last, rest) = names.split_last().map_or(("", &[][..]), |(l, r)| (l.as_str(), r));
            format!("{} or {last}", rest.join(", "))
        }
        None => one(expected),
    }
}

#[cfg(test)]
mod tests;
