//! Parsing: libyaml events straight into a [`Value`], as yaml.v3's decoder would decode the
//! document into an `interface{}`: anchors and aliases (with its excessive-aliasing guard),
//! merge keys, duplicate-key errors, its scalar typing and its error wording. Lines are not
//! kept; [`line_of`] finds the line of a field path on demand, for error messages.

use super::resolve::{Scalar, resolve};
use crate::value::{Map, Stacks, Value};
use libyaml_safer::{Event, EventData, Parser, ScalarStyle};
use std::collections::HashMap;

/// Deepest nesting accepted, as in yaml.v3.
const MAX_DEPTH: usize = 10_000;

/// How much of the text the scanner is handed at a time. libyaml decodes what it is handed
/// into a queue of `char`s (4 bytes each) at once: handing it the whole text would hold a
/// copy four times its size.
const CHUNK: usize = 8 * 1024;

/// The text, handed to the scanner in chunks of about [`CHUNK`] bytes that end on
/// character boundaries.
struct Chunked<'a> {
    rest: &'a [u8],
}

impl Chunked<'_> {
    /// The length of the next chunk: at most [`CHUNK`] bytes unless one character is longer,
    /// and never a partial UTF-8 character.
    fn next_len(&self) -> usize {
        if self.rest.len() <= CHUNK {
            return self.rest.len();
        }
        let mut end = CHUNK;
        // Back up over continuation bytes (at most three) to the start of a character.
        while end > CHUNK - 4 && self.rest.get(end).is_some_and(|b| b & 0xC0 == 0x80) {
            end -= 1;
        }
        end
    }
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        buf[..n].copy_from_slice(head);
        self.rest = tail;
        Ok(n)
    }
}

impl std::io::BufRead for Chunked<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let n = self.next_len();
        Ok(&self.rest[..n])
    }

    fn consume(&mut self, amount: usize) {
        self.rest = &self.rest[amount.min(self.rest.len())..];
    }
}

/// A parser reading `source`.
fn parser(source: &[u8]) -> Parser<Chunked<'_>> {
    let mut parser = Parser::new();
    parser.set_input(Chunked { rest: source });
    parser
}

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

/// Parses the first document of `source` into a value, as `yaml.Unmarshal` into an
/// `interface{}` does. An empty document gives `Value::Null`.
pub fn parse(source: &[u8]) -> Result<Value, ParseError> {
    let transcoded = from_utf16(source)?;
    let source = transcoded.as_deref().unwrap_or(source);
    check_utf8(source)?;
    let mut b = Builder {
        parser: parser(source),
        anchors: HashMap::new(),
        stacks: Stacks::default(),
        keys: Vec::new(),
        depth: 0,
        decode_count: 0,
        alias_count: 0,
    };
    loop {
        let ev = b.next()?;
        match ev.data {
            EventData::StreamStart { .. } => continue,
            EventData::StreamEnd => return Ok(Value::Null),
            EventData::DocumentStart { .. } => break,
            _ => return Err(ParseError::new("did not find expected <document start>")),
        }
    }
    let ev = b.next()?;
    if matches!(ev.data, EventData::DocumentEnd { .. }) {
        return Ok(Value::Null);
    }
    Ok(b.node(ev, false)?.value)
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

/// A UTF-16 document (with its byte order mark) as UTF-8, with libyaml's error wording.
fn from_utf16(source: &[u8]) -> Result<Option<Vec<u8>>, ParseError> {
    let big_endian = match source {
        [0xFE, 0xFF, ..] => true,
        [0xFF, 0xFE, ..] => false,
        _ => return Ok(None),
    };
    let body = &source[2..];
    if !body.len().is_multiple_of(2) {
        return Err(ParseError::new("incomplete UTF-16 character"));
    }
    let units = body.chunks_exact(2).map(|c| {
        let pair = [c[0], c[1]];
        if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
    });
    let text: String = char::decode_utf16(units)
        .collect::<Result<_, _>>()
        .map_err(|_| ParseError::new("invalid UTF-16 surrogate pair"))?;
    Ok(Some(text.into_bytes()))
}

/// Rejects invalid UTF-8 with libyaml's wording.
fn check_utf8(source: &[u8]) -> Result<(), ParseError> {
    match std::str::from_utf8(source) {
        Ok(_) => Ok(()),
        Err(e) => {
            let at = source.get(e.valid_up_to()).copied().unwrap_or(0);
            let problem = match e.error_len() {
                None => "incomplete UTF-8 octet sequence",
                Some(_) if (0xC2..=0xF4).contains(&at) => "invalid trailing UTF-8 octet",
                Some(_) => "invalid leading UTF-8 octet",
            };
            Err(ParseError::new(problem))
        }
    }
}

/// A decoded node: its value, how many nodes it stands for (for the alias guard), and,
/// for scalars read as keys, the text as written (for duplicate-key checks and merge keys).
struct Built {
    value: Value,
    size: u64,
    raw: Option<Raw>,
    is_map: bool,
}

/// The text of a scalar key as written.
enum Raw {
    /// The text is the key's string value itself (the common case: no copy is kept).
    Same { plain: bool },
    /// The text differs from the value, or the value is no string.
    Text { text: String, plain: bool },
}

/// A key of the mapping being decoded, for duplicate-key checks: its line and whether it
/// was written as exactly its string value.
#[derive(Clone, Copy)]
struct KeySeen {
    line: usize,
    same: bool,
}

struct Anchored {
    value: Value,
    size: u64,
    is_map: bool,
}

struct Builder<'a> {
    parser: Parser<Chunked<'a>>,
    anchors: HashMap<String, Anchored>,
    /// Where mappings and sequences gather their items.
    stacks: Stacks,
    /// The keys of the mappings being decoded, one per entry, in order.
    keys: Vec<KeySeen>,
    depth: usize,
    decode_count: u64,
    alias_count: u64,
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

fn line_of_event(ev: &Event) -> usize {
    usize::try_from(ev.start_mark.line).unwrap_or(usize::MAX).saturating_add(1)
}

impl Builder<'_> {
    fn next(&mut self) -> Result<Event, ParseError> {
        self.parser.parse().map_err(|e| scan_error(&e))
    }

    /// Counts decoded nodes as yaml.v3 does and stops documents that expand aliases
    /// without bound.
    fn count(&mut self, nodes: u64, via_alias: bool) -> Result<(), ParseError> {
        self.decode_count += nodes;
        if via_alias {
            self.alias_count += nodes;
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

    fn remember(&mut self, anchor: Option<String>, b: &Built) {
        if let Some(a) = anchor {
            let anchored = Anchored { value: b.value.clone(), size: b.size, is_map: b.is_map };
            self.anchors.insert(a, anchored);
        }
    }

    /// Decodes the node starting with `ev`; `key` keeps a scalar's text (for duplicate-key
    /// checks and merge keys).
    fn node(&mut self, ev: Event, key: bool) -> Result<Built, ParseError> {
        let line = line_of_event(&ev);
        match ev.data {
            EventData::Scalar { anchor, tag, value, style, .. } => {
                self.count(1, false)?;
                let plain = matches!(style, ScalarStyle::Plain | ScalarStyle::Any);
                let raw = key.then(|| {
                    if stays_string(&value, tag.as_deref(), plain) {
                        Raw::Same { plain }
                    } else {
                        Raw::Text { text: value.clone(), plain }
                    }
                });
                let v = scalar(value, tag.as_deref(), plain)?;
                let b = Built { value: v, size: 1, raw, is_map: false };
                self.remember(anchor, &b);
                Ok(b)
            }
            EventData::Alias { anchor } => {
                let Some(a) = self.anchors.get(&anchor) else {
                    return Err(ParseError::new(format!("unknown anchor '{anchor}' referenced")));
                };
                let (size, is_map) = (a.size, a.is_map);
                self.count(size, true)?;
                let value =
                    self.anchors.get(&anchor).map(|a| a.value.clone()).unwrap_or(Value::Null);
                Ok(Built { value, size, raw: None, is_map })
            }
            EventData::SequenceStart { anchor, .. } => {
                self.enter(line)?;
                self.count(1, false)?;
                let start = self.stacks.seq_start();
                let mut size = 1;
                loop {
                    let ev = self.next()?;
                    if matches!(ev.data, EventData::SequenceEnd) {
                        break;
                    }
                    let item = self.node(ev, false)?;
                    size += item.size;
                    self.stacks.push_item(item.value);
                }
                let items = self.stacks.finish_seq(start);
                self.depth -= 1;
                let b = Built { value: Value::Seq(items), size, raw: None, is_map: false };
                self.remember(anchor, &b);
                Ok(b)
            }
            EventData::MappingStart { anchor, .. } => {
                self.enter(line)?;
                self.count(1, false)?;
                let b = self.mapping()?;
                self.depth -= 1;
                self.remember(anchor, &b);
                Ok(b)
            }
            _ => Err(ParseError::new("unexpected event")),
        }
    }

    fn mapping(&mut self) -> Result<Built, ParseError> {
        let mut entries = Entries::Strings(Map::default());
        // The keys written differently from their string value (and merge keys), with lines.
        let mut odd: Vec<(String, usize)> = Vec::new();
        let keys_start = self.keys.len();
        let mut dups = Vec::new();
        let mut merge: Option<Built> = None;
        let mut size = 1;
        loop {
            let ev = self.next()?;
            if matches!(ev.data, EventData::MappingEnd) {
                break;
            }
            let line = line_of_event(&ev);
            let key = self.node(ev, true)?;
            let ev = self.next()?;
            let value = self.node(ev, false)?;
            size += key.size + value.size;
            let mut same = false;
            let mut position = None;
            if let Some(raw) = &key.raw {
                let (text, plain) = match raw {
                    Raw::Same { plain } => (key.value.as_str().unwrap_or_default(), *plain),
                    Raw::Text { text, plain } => (text.as_str(), *plain),
                };
                position = entries.position_of_str(text);
                if let Some(first) = self.first_line_of(position, keys_start, &odd, text) {
                    dups.push(format!(
                        "  line {line}: mapping key {} already defined at line {first}",
                        crate::gostr::quote(text)
                    ));
                }
                let is_merge = plain && text == "<<";
                match raw {
                    Raw::Same { .. } if !is_merge => same = true,
                    _ => odd.push((text.to_owned(), line)),
                }
                if is_merge {
                    merge = Some(value);
                    continue;
                }
            }
            if matches!(key.value, Value::Seq(_) | Value::Map(_) | Value::AnyMap(_)) {
                return Err(ParseError::new("invalid map key"));
            }
            let before = entries.len();
            match (&mut entries, key.value) {
                // A key written as its own string and not set yet (the common case).
                (Entries::Strings(m), Value::Str(k)) if same && position.is_none() => {
                    m.push_new(k, value.value);
                }
                (entries, k) => entries.set(k, value.value, true),
            }
            if entries.len() > before {
                self.keys.push(KeySeen { line, same });
            }
        }
        self.keys.truncate(keys_start);
        if !dups.is_empty() {
            return Err(ParseError {
                message: format!("unmarshal errors:\n{}", dups.join("\n")),
                line: None,
            });
        }
        if let Some(m) = merge {
            merge_into(&mut entries, m)?;
        }
        Ok(Built { value: entries.into_value(), size, raw: None, is_map: true })
    }

    /// The line of the first key of the mapping being decoded that was written as `text`.
    /// `position` is where the mapping has the string key `text`, if it has it.
    fn first_line_of(
        &self,
        position: Option<usize>,
        keys_start: usize,
        odd: &[(String, usize)],
        text: &str,
    ) -> Option<usize> {
        let by_value =
            position.and_then(|i| self.keys.get(keys_start + i)).filter(|k| k.same).map(|k| k.line);
        let by_text = odd.iter().find(|(t, _)| t == text).map(|(_, line)| *line);
        match (by_value, by_text) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn enter(&mut self, line: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError {
                message: format!("line {line}: exceeded max depth of {MAX_DEPTH}"),
                line: Some(line),
            });
        }
        Ok(())
    }
}

/// Adds the keys of a merge source (a mapping, or a list of them) that the mapping does
/// not set itself; earlier sources win over later ones.
fn merge_into(entries: &mut Entries, merge: Built) -> Result<(), ParseError> {
    let want_map = || ParseError::new("map merge requires map or sequence of maps as the value");
    let sources = match merge.value {
        Value::Map(_) | Value::AnyMap(_) if merge.is_map => vec![merge.value],
        Value::Seq(items) => {
            if items.iter().any(|i| !matches!(i, Value::Map(_) | Value::AnyMap(_))) {
                return Err(want_map());
            }
            items
        }
        _ => return Err(want_map()),
    };
    for src in sources {
        for (k, v) in map_entries(src) {
            entries.set(k, v, false);
        }
    }
    Ok(())
}

/// The entries of a mapping being decoded: string keys in an index map (fast lookups),
/// switching to a list of pairs once a non-string key appears.
enum Entries {
    Strings(Map),
    Any(Vec<(Value, Value)>),
}

impl Entries {
    /// Sets `key`; when `overwrite` is false an existing key is kept (merge keys).
    fn set(&mut self, key: Value, value: Value, overwrite: bool) {
        if let (Entries::Strings(m), Value::Str(k)) = (&mut *self, &key) {
            if overwrite || !m.contains_key(k.as_str()) {
                m.insert(k.clone(), value);
            }
            return;
        }
        if let Entries::Strings(m) = self {
            let pairs = std::mem::take(m).into_iter().map(|(k, v)| (Value::Str(k), v)).collect();
            *self = Entries::Any(pairs);
        }
        if let Entries::Any(pairs) = self {
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) if overwrite => slot.1 = value,
                Some(_) => {}
                None => pairs.push((key, value)),
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Entries::Strings(m) => m.len(),
            Entries::Any(pairs) => pairs.len(),
        }
    }

    /// The position of the string key `key`.
    fn position_of_str(&self, key: &str) -> Option<usize> {
        match self {
            Entries::Strings(m) => m.get_index_of(key),
            Entries::Any(pairs) => {
                pairs.iter().position(|(k, _)| matches!(k, Value::Str(s) if s == key))
            }
        }
    }

    fn into_value(self) -> Value {
        match self {
            Entries::Strings(mut m) => {
                m.shrink_to_fit();
                Value::Map(m)
            }
            Entries::Any(pairs) => Value::AnyMap(pairs),
        }
    }
}

fn map_entries(v: Value) -> Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
        Value::AnyMap(pairs) => pairs,
        _ => Vec::new(),
    }
}

/// Whether [`scalar`] gives the text back unchanged as a string.
fn stays_string(value: &str, tag: Option<&str>, plain: bool) -> bool {
    tag.is_none() && (!plain || is_plain_word(value))
}

fn scalar(value: String, tag: Option<&str>, plain: bool) -> Result<Value, ParseError> {
    if stays_string(&value, tag, plain) {
        return Ok(Value::Str(value));
    }
    let tag = match tag {
        Some(t) => Some(t),
        None if plain => None,
        None => Some("tag:yaml.org,2002:str"),
    };
    match resolve(tag, &value).map_err(ParseError::new)? {
        Scalar::Null => Ok(Value::Null),
        Scalar::Bool(b) => Ok(Value::Bool(b)),
        Scalar::Int(i) => Ok(Value::Int(i)),
        Scalar::Float(f) => Ok(Value::Float(f)),
        Scalar::Str(s) | Scalar::Timestamp(s) => Ok(Value::Str(s)),
    }
}

/// A plain scalar that can only be a string: it starts with a letter (so it is no number or
/// timestamp) and is no null or boolean word.
fn is_plain_word(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && !matches!(
            s,
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "null" | "Null" | "NULL"
        )
}

/// The 1-based line where the key or list item at `path` (`services.web.ports.0`) is
/// written, found by reading the document again. Paths through aliases are not followed.
pub fn line_of(source: &[u8], path: &str) -> Option<usize> {
    let target: Vec<&str> = path.split('.').collect();
    let mut parser = parser(source);
    loop {
        let ev = parser.parse().ok()?;
        match ev.data {
            EventData::StreamStart { .. } | EventData::DocumentStart { .. } => continue,
            EventData::StreamEnd | EventData::DocumentEnd { .. } => return None,
            _ => return find(&mut parser, ev, &mut Vec::new(), &target).ok().flatten(),
        }
    }
}

/// Walks one node; `Err` on a parse error, `Ok(Some(line))` once the target is found.
fn find(
    parser: &mut Parser<Chunked<'_>>,
    ev: Event,
    path: &mut Vec<String>,
    target: &[&str],
) -> Result<Option<usize>, ()> {
    let here = |path: &Vec<String>| {
        path.len() == target.len() && path.iter().zip(target).all(|(a, b)| a == b)
    };
    match ev.data {
        EventData::MappingStart { .. } => loop {
            let k = parser.parse().map_err(|_| ())?;
            if matches!(k.data, EventData::MappingEnd) {
                return Ok(None);
            }
            let line = line_of_event(&k);
            let name = match &k.data {
                EventData::Scalar { value, .. } => value.clone(),
                _ => {
                    find(parser, k, &mut vec!["\0".into()], &[])?;
                    "\0".into()
                }
            };
            path.push(name);
            if here(path) {
                return Ok(Some(line));
            }
            let v = parser.parse().map_err(|_| ())?;
            if let Some(found) = find(parser, v, path, target)? {
                return Ok(Some(found));
            }
            path.pop();
        },
        EventData::SequenceStart { .. } => {
            let mut i = 0usize;
            loop {
                let item = parser.parse().map_err(|_| ())?;
                if matches!(item.data, EventData::SequenceEnd) {
                    return Ok(None);
                }
                path.push(i.to_string());
                if here(path) {
                    return Ok(Some(line_of_event(&item)));
                }
                if let Some(found) = find(parser, item, path, target)? {
                    return Ok(Some(found));
                }
                path.pop();
                i += 1;
            }
        }
        _ => Ok(None),
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
        let v = p("a: &x {k: 1}\nc: &y {k: 2, m: 3}\nb:\n  <<: [*x, *y]\n");
        let b = v.as_map().unwrap()["b"].as_map().unwrap().clone();
        assert_eq!((b["k"].clone(), b["m"].clone()), (Value::Int(1), Value::Int(3)));
    }

    #[test]
    fn a_merge_of_a_scalar_is_an_error() {
        let e = parse(b"a: &x 1\nb:\n  <<: *x\n").unwrap_err();
        assert_eq!(e.message, "map merge requires map or sequence of maps as the value");
    }

    #[test]
    fn duplicate_keys_are_reported_with_lines() {
        let e = parse(b"a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            e.message,
            "unmarshal errors:\n  line 3: mapping key \"a\" already defined at line 1"
        );
    }

    #[test]
    fn duplicates_are_keys_written_alike() {
        let dup = |src: &str| parse(src.as_bytes()).unwrap_err().message;
        assert_eq!(
            dup("a: 1\n'a': 2\n"),
            "unmarshal errors:\n  line 2: mapping key \"a\" already defined at line 1"
        );
        assert_eq!(
            dup("1: a\nb: 2\n\"1\": b\n"),
            "unmarshal errors:\n  line 3: mapping key \"1\" already defined at line 1"
        );
        assert_eq!(
            dup("<<: {a: 1}\n<<: {b: 2}\n"),
            "unmarshal errors:\n  line 2: mapping key \"<<\" already defined at line 1"
        );
        // Written differently, the same string: no duplicate, the later value wins.
        let v = p("2001-12-14: a\n\"2001-12-14 00:00:00 +0000 UTC\": b\n");
        let m = v.as_map().unwrap();
        assert_eq!((m.len(), &m["2001-12-14 00:00:00 +0000 UTC"]), (1, &Value::Str("b".into())));
        let many: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        assert_eq!(
            dup(&format!("{many}k39: x\n")),
            "unmarshal errors:\n  line 41: mapping key \"k39\" already defined at line 40"
        );
    }

    #[test]
    fn alias_bombs_stop_early() {
        let mut s = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (i, c) in "bcdefghi".chars().enumerate() {
            let prev = (b'a' + i as u8) as char;
            s.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        }
        assert_eq!(
            parse(s.as_bytes()).unwrap_err().message,
            "document contains excessive aliasing"
        );
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

    #[test]
    fn utf16_documents_are_read_and_broken_ones_refused() {
        let mut le = vec![0xFF, 0xFE];
        for u in "a: 1\n".encode_utf16() {
            le.extend(u.to_le_bytes());
        }
        assert!(matches!(parse(&le).unwrap(), Value::Map(_)));
        assert!(parse(&[0xFF, 0xFE, 0x61]).is_err());
        assert!(parse(&[0xFF, 0xFE, 0x00, 0xD8, 0x61, 0x00]).is_err());
    }

    #[test]
    fn multibyte_characters_across_chunks_are_read_whole() {
        let mut src = String::new();
        let mut expected = Vec::new();
        for i in 0..4 * CHUNK / 10 {
            let value = format!("{}é😀{}", "x".repeat(i % 7), "ü".repeat(i % 3));
            src.push_str(&format!("k{i}: {value}\n"));
            expected.push((format!("k{i}"), Value::Str(value)));
        }
        let Value::Map(map) = p(&src) else { panic!("not a mapping") };
        assert_eq!(map.into_iter().collect::<Vec<_>>(), expected);
        let last = expected.len() - 1;
        assert_eq!(line_of(src.as_bytes(), &format!("k{last}")), Some(last + 1));
    }

    #[test]
    fn lines_of_paths_are_found() {
        let src = b"version: '3.8'\nservices:\n  web:\n    image: x\n    ports:\n      - 80\n      - 81\n  db:\n    image: [y]\n";
        assert_eq!(line_of(src, "services.web.image"), Some(4));
        assert_eq!(line_of(src, "services.web.ports.1"), Some(7));
        assert_eq!(line_of(src, "services.db.image"), Some(9));
        assert_eq!(line_of(src, "services.db.image.0"), Some(9));
        assert_eq!(line_of(src, "services.nope"), None);
    }
}
