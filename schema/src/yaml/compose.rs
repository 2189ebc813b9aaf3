//! Parsing: libyaml events into a node tree, then the node tree into a [`Value`] as yaml.v3's
//! decoder does it (aliases expanded with its excessive-aliasing guard, merge keys, duplicate
//! key detection).

use super::resolve::{Scalar, resolve};
use crate::value::{Map, Value};
use libyaml_safer::{Event, EventData, Parser, ScalarStyle};
use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting accepted before giving up (yaml.v3 stops at 10,000).
const MAX_DEPTH: usize = 10_000;

/// Why a YAML text could not be read. The message is yaml.v3's, without its `yaml: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("yaml: {message}")]
pub struct ParseError {
    /// yaml.v3's message, e.g. `line 4: found character that cannot start any token`.
    pub message: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
}

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        ParseError { message: message.into(), line: None }
    }
}

#[derive(Debug)]
enum Kind {
    Scalar { value: String, tag: Option<String>, plain: bool },
    Seq(Vec<Rc<Node>>),
    Map(Vec<(Rc<Node>, Rc<Node>)>),
    Alias(Rc<Node>),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    line: usize,
}

/// Parses the first document of `source` into a value, as `yaml.Unmarshal` into an
/// `interface{}` does. An empty document gives `Value::Null`.
pub fn parse(source: &[u8]) -> Result<Value, ParseError> {
    parse_with_lines(source).map(|(v, _)| v)
}

/// Where each mapping key and list item starts: dotted path (`services.web.ports.0`) to
/// 1-based line. Keys reached only through aliases or merge keys are not listed.
pub type LineIndex = std::collections::HashMap<String, usize>;

/// Like [`parse`], also returning the line of every key.
pub fn parse_with_lines(source: &[u8]) -> Result<(Value, LineIndex), ParseError> {
    let root = compose(source)?;
    let Some(root) = root else { return Ok((Value::Null, LineIndex::new())) };
    let mut d = Decoder::default();
    let value = d.decode(&root)?;
    let mut lines = LineIndex::new();
    index_lines(&root, "", &mut lines);
    Ok((value, lines))
}

fn index_lines(node: &Node, prefix: &str, lines: &mut LineIndex) {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match &node.kind {
        Kind::Map(pairs) => {
            for (k, v) in pairs {
                if let Kind::Scalar { value, .. } = &k.kind {
                    let path = join(value);
                    lines.entry(path.clone()).or_insert(k.line);
                    index_lines(v, &path, lines);
                }
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = join(&i.to_string());
                lines.entry(path.clone()).or_insert(item.line);
                index_lines(item, &path, lines);
            }
        }
        _ => {}
    }
}

fn scan_error(e: &libyaml_safer::Error) -> ParseError {
    let scanner = matches!(e.kind(), libyaml_safer::ErrorKind::Scanner);
    let context_line = e.context_mark().map(|m| m.line).unwrap_or(0);
    let problem_line = e.problem_mark().map(|m| m.line).unwrap_or(0);
    let mut line = if context_line != 0 { context_line } else { problem_line };
    if line != 0 && scanner {
        line += 1;
    }
    let problem = e.problem();
    let problem = if problem.is_empty() { "unknown problem parsing YAML content" } else { problem };
    if line != 0 {
        let line = usize::try_from(line).unwrap_or(usize::MAX);
        ParseError { message: format!("line {line}: {problem}"), line: Some(line) }
    } else {
        ParseError::new(problem)
    }
}

struct Composer<'a> {
    parser: Parser<&'a [u8]>,
    anchors: HashMap<String, Rc<Node>>,
    depth: usize,
}

fn compose(source: &[u8]) -> Result<Option<Rc<Node>>, ParseError> {
    if std::str::from_utf8(source).is_err() && !source.starts_with(&[0xFF, 0xFE]) {
        // libyaml reports invalid UTF-8 itself; keep its wording.
    }
    let mut c = Composer { parser: Parser::new(), anchors: HashMap::new(), depth: 0 };
    c.parser.set_input(source);
    loop {
        let ev = c.next()?;
        match ev.data {
            EventData::StreamStart { .. } => continue,
            EventData::StreamEnd => return Ok(None),
            EventData::DocumentStart { .. } => break,
            _ => return Err(ParseError::new("did not find expected <document start>")),
        }
    }
    let ev = c.next()?;
    if matches!(ev.data, EventData::DocumentEnd { .. }) {
        return Ok(None);
    }
    let node = c.node(ev)?;
    Ok(Some(node))
}

impl Composer<'_> {
    fn next(&mut self) -> Result<Event, ParseError> {
        self.parser.parse().map_err(|e| scan_error(&e))
    }

    fn remember(&mut self, anchor: Option<String>, node: &Rc<Node>) {
        if let Some(a) = anchor {
            self.anchors.insert(a, Rc::clone(node));
        }
    }

    fn node(&mut self, ev: Event) -> Result<Rc<Node>, ParseError> {
        let line = usize::try_from(ev.start_mark.line).unwrap_or(usize::MAX).saturating_add(1);
        match ev.data {
            EventData::Scalar { anchor, tag, value, style, .. } => {
                let plain = matches!(style, ScalarStyle::Plain | ScalarStyle::Any);
                let node = Rc::new(Node { kind: Kind::Scalar { value, tag, plain }, line });
                self.remember(anchor, &node);
                Ok(node)
            }
            EventData::Alias { anchor } => match self.anchors.get(&anchor) {
                Some(target) => Ok(Rc::new(Node { kind: Kind::Alias(Rc::clone(target)), line })),
                None => Err(ParseError::new(format!("unknown anchor '{anchor}' referenced"))),
            },
            EventData::SequenceStart { anchor, .. } => {
                self.enter()?;
                let mut items = Vec::new();
                loop {
                    let ev = self.next()?;
                    if matches!(ev.data, EventData::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev)?);
                }
                self.depth -= 1;
                let node = Rc::new(Node { kind: Kind::Seq(items), line });
                self.remember(anchor, &node);
                Ok(node)
            }
            EventData::MappingStart { anchor, .. } => {
                self.enter()?;
                let mut pairs = Vec::new();
                loop {
                    let ev = self.next()?;
                    if matches!(ev.data, EventData::MappingEnd) {
                        break;
                    }
                    let k = self.node(ev)?;
                    let ev = self.next()?;
                    let v = self.node(ev)?;
                    pairs.push((k, v));
                }
                self.depth -= 1;
                let node = Rc::new(Node { kind: Kind::Map(pairs), line });
                self.remember(anchor, &node);
                Ok(node)
            }
            _ => Err(ParseError::new("unexpected event")),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError::new("exceeded max depth of 10000"));
        }
        Ok(())
    }
}

/// Decodes nodes into values, counting like yaml.v3 to stop alias bombs.
#[derive(Default)]
struct Decoder {
    decode_count: u64,
    alias_count: u64,
    alias_depth: u32,
}

fn allowed_alias_ratio(decode_count: u64) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let n = decode_count as f64;
    if n <= LOW {
        0.99
    } else if n >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((n - LOW) / (HIGH - LOW))
    }
}

impl Decoder {
    fn count(&mut self) -> Result<(), ParseError> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
        }
        if self.alias_count > 100
            && self.decode_count > 1000
            && self.alias_count as f64 / self.decode_count as f64
                > allowed_alias_ratio(self.decode_count)
        {
            return Err(ParseError::new("document contains excessive aliasing"));
        }
        Ok(())
    }

    fn decode(&mut self, node: &Node) -> Result<Value, ParseError> {
        self.count()?;
        match &node.kind {
            Kind::Scalar { value, tag, plain } => scalar(value, tag.as_deref(), *plain),
            Kind::Alias(target) => {
                self.alias_depth += 1;
                let v = self.decode(target);
                self.alias_depth -= 1;
                v
            }
            Kind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.decode(item)?);
                }
                Ok(Value::Seq(out))
            }
            Kind::Map(pairs) => self.mapping(pairs),
        }
    }

    fn mapping(&mut self, pairs: &[(Rc<Node>, Rc<Node>)]) -> Result<Value, ParseError> {
        check_duplicates(pairs)?;
        let mut entries: Vec<(Value, Value)> = Vec::with_capacity(pairs.len());
        let mut merge: Option<&Rc<Node>> = None;
        for (k, v) in pairs {
            if is_merge(k) {
                merge = Some(v);
                continue;
            }
            let key = self.decode(k)?;
            if matches!(key, Value::Seq(_) | Value::Map(_) | Value::AnyMap(_)) {
                return Err(ParseError::new("invalid map key"));
            }
            let value = self.decode(v)?;
            set_entry(&mut entries, key, value);
        }
        if let Some(m) = merge {
            self.merge_into(&mut entries, m)?;
        }
        Ok(into_map(entries))
    }

    /// Adds the keys of a merge source that the mapping does not set itself.
    fn merge_into(
        &mut self,
        entries: &mut Vec<(Value, Value)>,
        merge: &Rc<Node>,
    ) -> Result<(), ParseError> {
        let sources: Vec<&Node> = match &merge.kind {
            Kind::Seq(items) => items.iter().map(|n| n.as_ref()).collect(),
            _ => vec![merge.as_ref()],
        };
        for src in sources {
            let target = match &src.kind {
                Kind::Alias(t) => t.as_ref(),
                _ => src,
            };
            if !matches!(target.kind, Kind::Map(_)) {
                return Err(ParseError::new(
                    "map merge requires map or sequence of maps as the value",
                ));
            }
            let merged = self.decode(src)?;
            for (k, v) in map_entries(merged) {
                if !entries.iter().any(|(ek, _)| *ek == k) {
                    entries.push((k, v));
                }
            }
        }
        Ok(())
    }
}

fn is_merge(node: &Node) -> bool {
    matches!(&node.kind, Kind::Scalar { value, tag, plain: true }
        if value == "<<" && tag.as_deref().is_none_or(|t| t == "tag:yaml.org,2002:merge"))
}

fn check_duplicates(pairs: &[(Rc<Node>, Rc<Node>)]) -> Result<(), ParseError> {
    let mut errors = Vec::new();
    for (i, (ki, _)) in pairs.iter().enumerate() {
        let Kind::Scalar { value: vi, .. } = &ki.kind else { continue };
        for (kj, _) in &pairs[i + 1..] {
            if let Kind::Scalar { value: vj, .. } = &kj.kind
                && vi == vj
            {
                errors.push(format!(
                    "  line {}: mapping key {} already defined at line {}",
                    kj.line,
                    crate::gostr::quote(vj),
                    ki.line
                ));
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ParseError { message: format!("unmarshal errors:\n{}", errors.join("\n")), line: None })
}

fn set_entry(entries: &mut Vec<(Value, Value)>, key: Value, value: Value) {
    if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else {
        entries.push((key, value));
    }
}

fn map_entries(v: Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
        Value::AnyMap(pairs) => pairs,
        _ => Vec::new(),
    }
}

fn into_map(entries: Vec<(Value, Value)>) -> Value {
    if entries.iter().all(|(k, _)| matches!(k, Value::Str(_))) {
        let mut m = Map::with_capacity(entries.len());
        for (k, v) in entries {
            if let Value::Str(k) = k {
                m.insert(k, v);
            }
        }
        Value::Map(m)
    } else {
        Value::AnyMap(entries)
    }
}

fn scalar(value: &str, tag: Option<&str>, plain: bool) -> Result<Value, ParseError> {
    let tag = match tag {
        Some(t) => Some(t),
        None if plain => None,
        None => Some("tag:yaml.org,2002:str"),
    };
    match resolve(tag, value).map_err(ParseError::new)? {
        Scalar::Null => Ok(Value::Null),
        Scalar::Bool(b) => Ok(Value::Bool(b)),
        Scalar::Int(i) => Ok(Value::Int(i)),
        Scalar::Float(f) => Ok(Value::Float(f)),
        Scalar::Str(s) | Scalar::Timestamp(s) => Ok(Value::Str(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Value {
        parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn merge_keys_do_not_override_explicit_keys() {
        let v = p("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n");
        let b = v.as_map().unwrap()["b"].as_map().unwrap().clone();
        assert_eq!(b["k"], Value::Int(3));
        assert_eq!(b["j"], Value::Int(2));
    }

    #[test]
    fn duplicate_keys_are_reported_with_lines() {
        let e = parse(b"a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.message, "unmarshal errors:\n  line 3: mapping key \"a\" already defined at line 1");
    }

    #[test]
    fn alias_bombs_stop_early() {
        let mut s = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (i, c) in "bcdefghi".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            s.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        assert_eq!(parse(s.as_bytes()).unwrap_err().message, "document contains excessive aliasing");
    }

    #[test]
    fn unknown_anchor_is_an_error() {
        assert_eq!(parse(b"a: *nope\n").unwrap_err().message, "unknown anchor 'nope' referenced");
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(p(""), Value::Null);
        assert_eq!(p("# just a comment\n"), Value::Null);
    }

    #[test]
    fn non_string_keys_make_an_any_map() {
        assert!(matches!(p("1: a\n"), Value::AnyMap(_)));
    }
}
