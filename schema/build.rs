//! Compiles the compose JSON Schemas (`json/config_schema_v3.*.json`, the source of truth)
//! into static tables (`$OUT_DIR/schemas.rs`, included by `src/validate/schema.rs`), so that
//! loading a stack file parses no JSON and compiles no schema.
//!
//! The 14 versions share most of their nodes: identical subtrees are stored once. Every
//! table entry is made of integers (strings are ranges of one string constant), so the
//! tables need no relocation when the program starts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

#[path = "src/validate/keywords.rs"]
#[allow(dead_code)]
mod keywords;

#[path = "src/validate/compile.rs"]
mod compile;

use compile::Node;

/// The schema versions, in the order of `validate::VERSIONS`.
const MINORS: std::ops::RangeInclusive<u32> = 0..=13;

fn main() {
    if let Err(message) = run() {
        eprintln!("schema/build.rs: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/validate/compile.rs");
    println!("cargo::rerun-if-changed=src/validate/keywords.rs");
    let mut tables = Tables::default();
    let mut roots = Vec::new();
    for minor in MINORS {
        let file = format!("json/config_schema_v3.{minor}.json");
        println!("cargo::rerun-if-changed={file}");
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
        let nodes = compile::compile(&text).map_err(|e| format!("{file}: {e}"))?;
        let mut memo = vec![Slot::Todo; nodes.len()];
        roots.push(tables.intern(&nodes, 0, &mut memo).map_err(|e| format!("{file}: {e}"))?);
    }
    // Cargo tells a build script where to write through the environment; the library itself
    // reads none.
    #[allow(clippy::disallowed_methods)]
    let out = std::env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    let code = tables.render(&roots)?;
    std::fs::write(Path::new(&out).join("schemas.rs"), code).map_err(|e| e.to_string())
}

#[derive(Clone, Copy)]
enum Slot {
    Todo,
    InProgress,
    Done(u16),
}

#[derive(Default)]
struct Tables {
    /// Every node, as the Rust expression that builds it.
    nodes: Vec<String>,
    /// A node's content (children as table indices) to its index.
    by_content: HashMap<String, u16>,
    strings: String,
    by_string: HashMap<String, (usize, usize)>,
    properties: Vec<((usize, usize), u16)>,
    patterns: Vec<(keywords::Pattern, u16)>,
    texts: Vec<(usize, usize)>,
    children: Vec<u16>,
}

impl Tables {
    /// The table index of node `index` of a compiled schema, adding it (and what it points
    /// at) unless an identical node is already there.
    fn intern(&mut self, nodes: &[Node], index: usize, memo: &mut [Slot]) -> Result<u16, String> {
        match memo[index] {
            Slot::Done(id) => return Ok(id),
            Slot::InProgress => return Err("recursive schemas are not supported".into()),
            Slot::Todo => memo[index] = Slot::InProgress,
        }
        let node = &nodes[index];
        let mut child = |i: usize| self.intern(nodes, i, memo);
        let reference = node.reference.map(&mut child).transpose()?;
        let items = node.items.map(&mut child).transpose()?;
        let mut properties = Vec::new();
        for (name, i) in &node.properties {
            properties.push((name.as_str(), child(*i)?));
        }
        let mut patterns = Vec::new();
        for (pattern, i) in &node.pattern_properties {
            patterns.push((*pattern, child(*i)?));
        }
        let one_of = node.one_of.iter().map(|i| child(*i)).collect::<Result<Vec<_>, _>>()?;
        let any_of = node.any_of.iter().map(|i| child(*i)).collect::<Result<Vec<_>, _>>()?;
        let content = format!(
            "{reference:?} {:?} {:?} {properties:?} {patterns:?} {:?} {:?} {:?} {:?} {items:?} \
             {} {:?} {one_of:?} {any_of:?}",
            node.types,
            node.types_text,
            node.additional,
            node.required,
            node.enumeration,
            node.format,
            node.unique_items,
            node.minimum.map(f64::to_bits),
        );
        if let Some(&id) = self.by_content.get(&content) {
            memo[index] = Slot::Done(id);
            return Ok(id);
        }
        let types: u8 = node.types.iter().map(|t| t.bit()).fold(0, |a, b| a | b);
        let types_text = self.text(&node.types_text);
        let properties_span = {
            let start = self.properties.len();
            for (name, id) in properties {
                let text = self.text(name);
                self.properties.push((text, id));
            }
            (start, self.properties.len() - start)
        };
        let patterns_span = {
            let start = self.patterns.len();
            self.patterns.extend(patterns);
            (start, self.patterns.len() - start)
        };
        let required = self.text_list(&node.required);
        let enumeration = self.text_list(&node.enumeration);
        let one_of = self.child_list(&one_of);
        let any_of = self.child_list(&any_of);
        let mut expr = String::from("Node { ");
        let none = "u16::MAX".to_string();
        let _ = write!(
            expr,
            "reference: {}, types: {types}, types_text: {}, properties: {}, \
             pattern_properties: {}, additional: Additional::{:?}, required: {}, \
             enumeration: {}, format: {}, items: {}, unique_items: {}, minimum: {:?}, \
             one_of: {}, any_of: {} }}",
            reference.map_or(none.clone(), |r| r.to_string()),
            text_expr(types_text),
            span_expr(properties_span),
            span_expr(patterns_span),
            node.additional,
            span_expr(required),
            span_expr(enumeration),
            node.format.map_or("None".to_string(), |f| format!("Some(Format::{f:?})")),
            items.map_or(none, |r| r.to_string()),
            node.unique_items,
            node.minimum,
            span_expr(one_of),
            span_expr(any_of),
        );
        let id = u16::try_from(self.nodes.len()).map_err(|_| "too many schema nodes")?;
        if id == u16::MAX {
            return Err("too many schema nodes".into());
        }
        self.nodes.push(expr);
        self.by_content.insert(content, id);
        memo[index] = Slot::Done(id);
        Ok(id)
    }

    /// The range of `s` in the string constant.
    fn text(&mut self, s: &str) -> (usize, usize) {
        if let Some(&range) = self.by_string.get(s) {
            return range;
        }
        let range = (self.strings.len(), s.len());
        self.strings.push_str(s);
        self.by_string.insert(s.to_owned(), range);
        range
    }

    fn text_list(&mut self, list: &[String]) -> (usize, usize) {
        let start = self.texts.len();
        for s in list {
            let text = self.text(s);
            self.texts.push(text);
        }
        (start, list.len())
    }

    fn child_list(&mut self, list: &[u16]) -> (usize, usize) {
        let start = self.children.len();
        self.children.extend_from_slice(list);
        (start, list.len())
    }

    fn render(&self, roots: &[u16]) -> Result<String, String> {
        let limit = usize::from(u16::MAX);
        for (name, len) in [
            ("strings", self.strings.len()),
            ("properties", self.properties.len()),
            ("patterns", self.patterns.len()),
            ("texts", self.texts.len()),
            ("children", self.children.len()),
        ] {
            if len > limit {
                return Err(format!("the {name} table is too large for 16-bit indices"));
            }
        }
        let mut out = String::from("// @generated by schema/build.rs from schema/json/.\n\n");
        let _ = writeln!(out, "const STRINGS: &str = {:?};", self.strings);
        let _ = writeln!(out, "static ROOTS: [u16; {}] = {roots:?};", roots.len());
        let _ = writeln!(out, "static NODES: [Node; {}] = [", self.nodes.len());
        for node in &self.nodes {
            let _ = writeln!(out, "    {node},");
        }
        out.push_str("];\n");
        let _ = writeln!(out, "static PROPERTIES: [(Text, u16); {}] = [", self.properties.len());
        for (text, id) in &self.properties {
            let _ = writeln!(out, "    ({}, {id}),", text_expr(*text));
        }
        out.push_str("];\n");
        let _ = writeln!(out, "static PATTERNS: [(Pattern, u16); {}] = [", self.patterns.len());
        for (pattern, id) in &self.patterns {
            let _ = writeln!(out, "    (Pattern::{pattern:?}, {id}),");
        }
        out.push_str("];\n");
        let _ = writeln!(out, "static TEXTS: [Text; {}] = [", self.texts.len());
        for text in &self.texts {
            let _ = writeln!(out, "    {},", text_expr(*text));
        }
        out.push_str("];\n");
        let _ =
            writeln!(out, "static CHILDREN: [u16; {}] = {:?};", self.children.len(), self.children);
        Ok(out)
    }
}

fn text_expr((start, len): (usize, usize)) -> String {
    format!("Text {{ start: {start}, len: {len} }}")
}

fn span_expr((start, len): (usize, usize)) -> String {
    format!("Span {{ start: {start}, len: {len} }}")
}
