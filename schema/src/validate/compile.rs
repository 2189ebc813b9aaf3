//! Compiles one of our JSON Schemas (`schema/json/config_schema_v3.*.json`) into a flat list
//! of nodes. Only the draft-04 keywords the compose schemas use are supported; a schema using
//! anything else fails to compile.
//!
//! The build script (`build.rs`) runs this on every schema and writes the result out as
//! static tables (see `schema.rs`), so a load parses no JSON. The unit tests use it too.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::keywords::{Additional, Format, JsonType, Pattern, name_order};

/// One compiled schema node. Indices point into the list [`compile`] returns; node 0 is the
/// root.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) reference: Option<usize>,
    pub(crate) types: Vec<JsonType>,
    /// The `type` keyword as gojsonschema prints it: `string` or `[string,number]`.
    pub(crate) types_text: String,
    /// The declared properties, sorted by [`name_order`] for a binary search.
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
}

/// Compiles a schema document; node 0 of the result is its root.
pub(crate) fn compile(text: &str) -> Result<Vec<Node>, String> {
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
    Ok(compiler.nodes)
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
    fn rejects_unsupported_keywords() {
        assert!(compile(r#"{"type": "object", "maxItems": 3}"#).is_err());
        assert!(compile(r#"{"format": "email"}"#).is_err());
        assert!(compile(r##"{"$ref": "#/definitions/missing"}"##).is_err());
        assert!(compile(r#"{"patternProperties": {"^a+$": {}}}"#).is_err());
    }

    #[test]
    fn prints_types_like_gojsonschema() {
        let nodes = compile(r#"{"type": ["string", "number", "null"]}"#).unwrap();
        assert_eq!(nodes[0].types_text, "[string,number,null]");
        let nodes = compile(r#"{"type": "object"}"#).unwrap();
        assert_eq!(nodes[0].types_text, "object");
    }
}
