//! The parsed YAML document, as Docker sees it after `yaml.Unmarshal` into `interface{}`:
//! null, booleans, integers, floats, strings, sequences and mappings. Mapping keys are
//! strings; a mapping with any non-string key is kept apart (`AnyMap`) because Docker
//! treats it differently (it fails later, at schema validation).

use indexmap::IndexMap;

/// A mapping with string keys, in source order (hashed with foldhash: fast, and the order
/// is insertion order whatever the hash).
pub type Map = IndexMap<String, Value, foldhash::fast::FixedState>;

/// One YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float (including `.inf` and `.nan`).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping with string keys.
    Map(Map),
    /// A mapping with at least one non-string key, as (key, value) pairs in source order.
    AnyMap(Vec<(Value, Value)>),
}

impl Value {
    /// The mapping, when this is a mapping with string keys.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The JSON-schema type name of the value (`null`, `boolean`, `integer`, `number`,
    /// `string`, `array`, `object`). A float with an integral value counts as an integer,
    /// as it does for Docker's validator.
    pub fn json_type(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) | Value::AnyMap(_) => "object",
        }
    }
}
