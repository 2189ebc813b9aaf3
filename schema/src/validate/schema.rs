//! Our JSON Schemas (`schema/json/config_schema_v3.*.json`), compiled into a flat tree of
//! nodes. Only the draft-04 keywords the compose schemas use are supported; a schema using
//! anything else fails to compile (and the unit tests compile every version).

use std::collections::HashMap;

use serde_json::Value as Json;

/// A JSON type name, as schemas spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "null" => Self::Null,
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "string" => Self::String,
            "array" => Self::Array,
            "object" => Self::Object,
            other => return Err(format!("unknown type {other:?}")),
        })
    }
}

/// The formats Docker registers with its validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Go's `time.ParseDuration` accepts it.
    Duration,
    /// `nat.ParsePortSpec` accepts it.
    Ports,
    /// Registered, but accepts everything.
    Expose,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Duration => "duration",
            Self::Ports => "ports",
            Self::Expose => "expose",
        }
    }
}

/// The property-name patterns the schemas use, as Go's regexp reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `^[a-zA-Z0-9._-]+$`
    ResourceName,
    /// `^[a-z]+$`
    LowerWord,
    /// `^x-`
    Extension,
    /// `^.+$`: non-empty, no newline.
    WholeLine,
    /// `.+`: at least one character other than a newline.
    AnyChar,
}

impl Pattern {
    fn parse(source: &str) -> Result<Self, String> {
        Ok(match source {
            "^[a-zA-Z0-9._-]+$" => Self::ResourceName,
            "^[a-z]+$" => Self::LowerWord,
            "^x-" => Self::Extension,
            "^.+$" => Self::WholeLine,
            ".+" => Self::AnyChar,
            other => return Err(format!("unsupported pattern {other:?}")),
        })
    }

    pub(crate) fn matches(self, key: &str) -> bool {
        match self {
            Self::ResourceName => {
                !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }
            Self::LowerWord => !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase()),
            Self::Extension => key.starts_with("x-"),
            Self::WholeLine => !key.is_empty() && !key.contains('\n'),
            Self::AnyChar => key.chars().any(|c| c != '\n'),
        }
    }
}

/// `additionalProperties`: absent, or a boolean (the schemas never use a schema there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Additional {
    Unspecified,
    Allowed,
    Forbidden,
}

/// One compiled schema node. Indices point into [`Schema::nodes`].
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) reference: Option<usize>,
    pub(crate) types: Vec<JsonType>,
    /// The `type` keyword as gojsonschema prints it: `string` or `[string,number]`.
    pub(crate) types_text: String,
    /// The declared properties, sorted by (length, name) for a fast lookup.
    pub(crate) properties: Vec<(String, usize)>,
    pub(crate) pattern_properties: Vec<(Pattern, usize)>,
    pub(crate) additional: Additional,
    pub(crate) required: Vec<String>,
    pub(crate) enumeration: Vec<String>,
    pub(crate) format: Option<Format>,
    pub(crate) items: Option<usize>,
    pub(crate) unique_items: bool,
    pub(crate) minimum: Option<f64>,
    pub(crate) one_of: Vec<usize>,
    pub(crate) any_of: Vec<usize>,
}

impl Node {
    fn empty() -> Self {
        Self {
            reference: None,
            types: Vec::new(),
            types_text: String::new(),
            properties: Vec::new(),
            pattern_properties: Vec::new(),
            additional: Additional::Unspecified,
            required: Vec::new(),
            enumeration: Vec::new(),
            format: None,
            items: None,
            unique_items: false,
            minimum: None,
            one_of: Vec::new(),
            any_of: Vec::new(),
        }
    }

    pub(crate) fn has_type(&self, t: JsonType) -> bool {
        self.types.contains(&t)
    }

    /// The schema of a declared property.
    pub(crate) fn property(&self, name: &str) -> Option<usize> {
        let found = self.properties.binary_search_by(|(n, _)| name_order(n, name));
        found.ok().map(|i| self.properties[i].1)
    }
}

/// The order of [`Node::properties`]: by length, then byte by byte (cheap for short names).
fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.bytes().cmp(b.bytes()))
}

/// A compiled schema: node 0 is the root.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) nodes: Vec<Node>,
}

impl Schema {
    /// Compiles a schema document.
    pub(crate) fn compile(text: &str) -> Result<Self, String> {
        let doc: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let definitions = doc.get("definitions").and_then(Json::as_object);
        let mut compiler = Compiler { nodes: vec![Node::empty()], definitions: HashMap::new() };
        // Reserve a node for each definition first, so references can point at them.
        if let Some(defs) = definitions {
            for name in defs.keys() {
                compiler.nodes.push(Node::empty());
                compiler.definitions.insert(name.clone(), compiler.nodes.len() - 1);
            }
            for (name, def) in defs {
                let slot = compiler.definitions[name];
                compiler.fill(slot, def)?;
            }
        }
        compiler.fill(0, &doc)?;
        Ok(Self { nodes: compiler.nodes })
    }
}

struct Compiler {
    nodes: Vec<Node>,
    definitions: HashMap<String, usize>,
}

impl Compiler {
    fn add(&mut self, json: &Json) -> Result<usize, String> {
        self.nodes.push(Node::empty());
        let slot = self.nodes.len() - 1;
        self.fill(slot, json)?;
        Ok(slot)
    }

    fn fill(&mut self, slot: usize, json: &Json) -> Result<(), String> {
        let object = json.as_object().ok_or("a schema must be an object")?;
        let mut node = Node::empty();
        for (keyword, value) in object {
            self.keyword(&mut node, keyword, value)?;
        }
        self.nodes[slot] = node;
        Ok(())
    }

    fn keyword(&mut self, node: &mut Node, keyword: &str, value: &Json) -> Result<(), String> {
        match keyword {
            "$schema" | "description" | "definitions" | "id" | "default" => {}
            "$ref" => {
                let target = value.as_str().ok_or("$ref must be a string")?;
                let name = target.strip_prefix("#/definitions/").ok_or("unsupported $ref")?;
                let index = self.definitions.get(name).ok_or(format!("no definition {name}"))?;
                node.reference = Some(*index);
            }
            "type" => {
                let names: Vec<&str> = match value {
                    Json::String(one) => vec![one.as_str()],
                    Json::Array(many) => many.iter().filter_map(Json::as_str).collect(),
                    _ => return Err("bad type".into()),
                };
                node.types = names.iter().map(|n| JsonType::parse(n)).collect::<Result<_, _>>()?;
                node.types_text = match names.as_slice() {
                    [one] => (*one).to_string(),
                    many => format!("[{}]", many.join(",")),
                };
            }
            "properties" => {
                for (name, schema) in value.as_object().ok_or("bad properties")? {
                    let index = self.add(schema)?;
                    node.properties.push((name.clone(), index));
                }
                node.properties.sort_by(|(a, _), (b, _)| name_order(a, b));
            }
            "patternProperties" => {
                for (source, schema) in value.as_object().ok_or("bad patternProperties")? {
                    let pattern = Pattern::parse(source)?;
                    let index = self.add(schema)?;
                    node.pattern_properties.push((pattern, index));
                }
            }
            "additionalProperties" => {
                node.additional = match value.as_bool().ok_or("additionalProperties: bool only")? {
                    true => Additional::Allowed,
                    false => Additional::Forbidden,
                };
            }
            "required" => {
                let names = value.as_array().ok_or("bad required")?;
                node.required = names.iter().filter_map(Json::as_str).map(String::from).collect();
            }
            "enum" => {
                let values = value.as_array().ok_or("bad enum")?;
                node.enumeration =
                    values.iter().filter_map(Json::as_str).map(String::from).collect();
                if node.enumeration.len() != values.len() {
                    return Err("enum: strings only".into());
                }
            }
            "format" => {
                node.format = Some(match value.as_str() {
                    Some("duration") => Format::Duration,
                    Some("ports") => Format::Ports,
                    Some("expose") => Format::Expose,
                    other => return Err(format!("unsupported format {other:?}")),
                });
            }
            "items" => node.items = Some(self.add(value)?),
            "uniqueItems" => node.unique_items = value.as_bool().ok_or("bad uniqueItems")?,
            "minimum" => node.minimum = Some(value.as_f64().ok_or("bad minimum")?),
            "oneOf" | "anyOf" => {
                let branches = value.as_array().ok_or("bad oneOf/anyOf")?;
                let mut indices = Vec::with_capacity(branches.len());
                for branch in branches {
                    indices.push(self.add(branch)?);
                }
                if keyword == "oneOf" {
                    node.one_of = indices;
                } else {
                    node.any_of = indices;
                }
            }
            other => return Err(format!("unsupported keyword {other:?}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_read_like_go_regexps() {
        assert!(Pattern::ResourceName.matches("web_1.a-b"));
        assert!(!Pattern::ResourceName.matches("web app"));
        assert!(!Pattern::ResourceName.matches(""));
        assert!(Pattern::LowerWord.matches("nofile"));
        assert!(!Pattern::LowerWord.matches("NOFILE"));
        assert!(Pattern::Extension.matches("x-common"));
        assert!(!Pattern::Extension.matches("X-common"));
        assert!(Pattern::WholeLine.matches("a b"));
        assert!(!Pattern::WholeLine.matches("a\nb"));
        assert!(!Pattern::WholeLine.matches(""));
        assert!(Pattern::AnyChar.matches("a\nb"));
        assert!(!Pattern::AnyChar.matches("\n"));
    }

    #[test]
    fn rejects_unsupported_keywords() {
        assert!(Schema::compile(r#"{"type": "object", "maxItems": 3}"#).is_err());
        assert!(Schema::compile(r#"{"format": "email"}"#).is_err());
        assert!(Schema::compile(r##"{"$ref": "#/definitions/missing"}"##).is_err());
        assert!(Schema::compile(r#"{"patternProperties": {"^a+$": {}}}"#).is_err());
    }

    #[test]
    fn prints_types_like_gojsonschema() {
        let schema = Schema::compile(r#"{"type": ["string", "number", "null"]}"#).unwrap();
        assert_eq!(schema.nodes[0].types_text, "[string,number,null]");
        let schema = Schema::compile(r#"{"type": "object"}"#).unwrap();
        assert_eq!(schema.nodes[0].types_text, "object");
    }
}
