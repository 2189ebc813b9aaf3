//! Writing YAML exactly as yaml.v3 does with a 2-space indent: block style, mapping keys in
//! yaml.v3's "natural" order, and libyaml's rules for choosing plain, single-quoted,
//! double-quoted or literal scalars.

use super::resolve::{Scalar, format_float, resolve};
use std::borrow::Cow;
use std::cmp::Ordering;

/// A value ready to be written. Mappings are written in the order given (callers sort map
/// keys with [`sort_keys`]; struct fields come in their declared order).
#[derive(Debug, Clone, PartialEq)]
pub enum Out<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A 32-bit float (printed with float32 precision).
    Float32(f32),
    /// A string, quoted when needed (borrowed from the model where possible).
    Str(Cow<'a, str>),
    /// A sequence.
    Seq(Vec<Out<'a>>),
    /// A mapping, in the order given.
    Map(Vec<(Cow<'a, str>, Out<'a>)>),
    /// A value built only while it is written.
    Deferred(Deferred<'a>),
}

/// Something that becomes an [`Out`] when it is written, so that a large document never
/// exists as one whole tree (a stack's services are written one at a time).
pub trait ToOut {
    /// The value to write.
    fn to_out(&self) -> Out<'_>;
}

/// A part of the document built only while it is written (see [`ToOut`]).
#[derive(Clone, Copy)]
pub struct Deferred<'a>(pub &'a dyn ToOut);

impl std::fmt::Debug for Deferred<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Deferred").field(&self.0.to_out()).finish()
    }
}

impl PartialEq for Deferred<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_out() == other.0.to_out()
    }
}

/// Writes a document (ending with a newline).
pub fn emit(root: &Out<'_>) -> String {
    let mut w = String::with_capacity(4096);
    if let Out::Deferred(d) = root {
        return emit(&d.0.to_out());
    }
    match root {
        Out::Map(m) if !m.is_empty() => write_map(&mut w, m, 0),
        Out::Seq(s) if !s.is_empty() => write_seq(&mut w, s, 0),
        other => {
            write_inline(&mut w, other, 0);
            w.push('\n');
        }
    }
    w
}

fn write_map(w: &mut String, m: &[(Cow<'_, str>, Out<'_>)], indent: usize) {
    for (k, v) in m {
        push_indent(w, indent);
        w.push_str(&scalar_text(k, indent, true));
        w.push(':');
        write_value(w, v, indent);
    }
}

fn write_seq(w: &mut String, s: &[Out<'_>], indent: usize) {
    for v in s {
        if let Out::Deferred(d) = v {
            write_seq(w, std::slice::from_ref(&d.0.to_out()), indent);
            continue;
        }
        push_indent(w, indent);
        w.push('-');
        match v {
            Out::Map(m) if !m.is_empty() => {
                // The first key goes on the dash line.
                w.push(' ');
                let mut first = true;
                for (k, val) in m {
                    if !first {
                        push_indent(w, indent + 2);
                    }
                    first = false;
                    w.push_str(&scalar_text(k, indent + 2, true));
                    w.push(':');
                    write_value(w, val, indent + 2);
                }
            }
            Out::Seq(inner) if !inner.is_empty() => {
                w.push(' ');
                let mut buf = String::new();
                write_seq(&mut buf, inner, indent + 2);
                w.push_str(buf.trim_start());
            }
            other => {
                w.push(' ');
                write_inline(w, other, indent + 2);
                w.push('\n');
            }
        }
    }
}

fn write_value(w: &mut String, v: &Out<'_>, indent: usize) {
    match v {
        Out::Deferred(d) => write_value(w, &d.0.to_out(), indent),
        Out::Map(m) if !m.is_empty() => {
            w.push('\n');
            write_map(w, m, indent + 2);
        }
        Out::Seq(s) if !s.is_empty() => {
            w.push('\n');
            write_seq(w, s, indent + 2);
        }
        other => {
            w.push(' ');
            write_inline(w, other, indent + 2);
            w.push('\n');
        }
    }
}

fn write_inline(w: &mut String, v: &Out<'_>, indent: usize) {
    match v {
        Out::Null => w.push_str("null"),
        Out::Bool(b) => w.push_str(if *b { "true" } else { "false" }),
        Out::Int(i) => w.push_str(&i.to_string()),
        Out::Float(f) => w.push_str(&yaml_float(*f, false)),
        Out::Float32(f) => w.push_str(&yaml_float(f64::from(*f), true)),
        Out::Str(s) => w.push_str(&scalar_text(s, indent, false)),
        Out::Seq(_) => w.push_str("[]"),
        Out::Map(_) => w.push_str("{}"),
        Out::Deferred(d) => write_inline(w, &d.0.to_out(), indent),
    }
}

fn yaml_float(f: f64, bits32: bool) -> String {
    match format_float(f, bits32).as_str() {
        "+Inf" => ".inf".into(),
        "-Inf" => "-.inf".into(),
        "NaN" => ".nan".into(),
        s => s.to_owned(),
    }
}

fn push_indent(w: &mut String, n: usize) {
    for _ in 0..n {
        w.push(' ');
    }
}

/// How a string is written: yaml.v3 asks for plain style unless the text would read back as
/// another type (or contains a line break: literal), then libyaml downgrades to single or
/// double quotes when the text cannot be written that way.
fn scalar_text(s: &str, indent: usize, is_key: bool) -> Cow<'_, str> {
    if is_simple_plain(s) {
        return Cow::Borrowed(s);
    }
    quoted_text(s, indent, is_key)
}

fn quoted_text(s: &str, indent: usize, is_key: bool) -> Cow<'_, str> {
    let resolves_to_str = matches!(resolve(None, s), Ok(Scalar::Str(_)));
    let can_plain = resolves_to_str && !is_base60_float(s) && !is_old_bool(s);
    let a = analyze(s);
    if s.contains('\n') && !is_key {
        if a.block_allowed {
            return Cow::Owned(literal(s, indent));
        }
        return Cow::Owned(double_quoted(s));
    }
    if can_plain && a.plain_allowed && !(is_key && a.multiline) {
        return Cow::Borrowed(s);
    }
    // yaml.v3 asks for double quotes when the plain form would read back as another type;
    // otherwise libyaml falls back from plain to single quotes when it can.
    if can_plain && !a.multiline && a.single_allowed {
        return Cow::Owned(single_quoted(s));
    }
    Cow::Owned(double_quoted(s))
}

/// A fast answer for the common case: a word starting with a letter, made of letters,
/// digits and `_ . / -`, that YAML would not read as a boolean or null.
fn is_simple_plain(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(first) = b.first() else { return false };
    first.is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        && !is_old_bool(s)
        && !matches!(
            s,
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "null" | "Null" | "NULL"
        )
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        if i < b.len()
            && (b'0'..=b'5').contains(&b[i])
            && i + 1 < b.len()
            && b[i + 1].is_ascii_digit()
        {
            i += 2;
        } else if i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

struct Analysis {
    multiline: bool,
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
        || (0x10000..=0x10FFFF).contains(&u)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_space(c: char) -> bool {
    c == ' '
}

/// libyaml's `yaml_emitter_analyze_scalar`, for block context.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            plain_allowed: false,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special = false;
    let mut tab = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;
    if s.starts_with("---") || s.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_ws = true;
    let count = s.chars().count();
    let mut iter = s.chars().peekable();
    let mut i = 0usize;
    while let Some(c) = iter.next() {
        let next = iter.peek().copied();
        let followed_by_ws = next.is_none_or(|n| n == ' ' || n == '\t' || is_break(n));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                '?' | ':' => {
                    flow_indicators = true;
                    if followed_by_ws {
                        block_indicators = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_indicators = true,
                ':' => {
                    flow_indicators = true;
                    if followed_by_ws {
                        block_indicators = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        }
        if c == '\t' {
            // yaml.v3 allows tabs in block scalars only.
            tab = true;
        } else if !is_printable(c) || c == '\u{FEFF}' {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if is_space(c) {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == count {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == count {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = c == ' ' || c == '\t' || is_break(c);
        i += 1;
    }
    let mut plain = true;
    let mut single = true;
    let mut block = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        plain = false;
    }
    if trailing_space {
        block = false;
    }
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
        block = false;
    }
    if line_breaks || tab {
        plain = false;
    }
    if tab {
        single = false;
    }
    if block_indicators {
        plain = false;
    }
    let _ = flow_indicators;
    Analysis {
        multiline: line_breaks,
        plain_allowed: plain,
        single_allowed: single,
        block_allowed: block,
    }
}

fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{FEFF}' => {
                let u = c as u32;
                if u <= 0xFF {
                    out.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xFFFF {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block scalar (`|`, `|-`, `|+`, with an indentation indicator when the text
/// starts with a space or a break).
fn literal(s: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if s.starts_with(' ') || s.starts_with('\n') {
        out.push('2');
    }
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.len() == 1 || s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    out.push_str(chomp);
    out.push('\n');
    // yaml.v3 drops a leading line break of a literal block (and so prints what reads back
    // without it); flotilla prints what yaml.v3 prints.
    let body = s.strip_prefix('\n').unwrap_or(s);
    if body.is_empty() {
        out.pop();
        return out;
    }
    let body = body.strip_suffix('\n').unwrap_or(body);
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(&mut out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    // The caller adds the final newline.
    out.pop();
    out
}

/// yaml.v3's order of mapping keys (`sorter.go`): numbers inside strings compare by value,
/// letters before other characters.
pub fn sort_keys(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if key_less(a, b) { Ordering::Less } else { Ordering::Greater }
}

fn key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    let n = ar.len().min(br.len());
    for i in 0..n {
        if ar[i] == br[i] {
            digits = ar[i].is_numeric() && ar[i].is_ascii_digit();
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        scalar_text(x, 2, false).into_owned()
    }

    #[test]
    fn scalars_are_quoted_like_yaml_v3() {
        assert_eq!(s("3000"), "\"3000\"");
        assert_eq!(s("yes"), "\"yes\"");
        assert_eq!(s(""), "\"\"");
        assert_eq!(s("a: b"), "'a: b'");
        assert_eq!(s("a:b"), "a:b");
        assert_eq!(s("-x"), "-x");
        assert_eq!(s("- x"), "'- x'");
        assert_eq!(s("'q'"), "'''q'''");
        assert_eq!(s("a\tb"), "\"a\\tb\"");
        assert_eq!(s("1:20"), "\"1:20\"");
        assert_eq!(s("2020-01-01"), "\"2020-01-01\"");
        assert_eq!(s("---"), "'---'");
        assert_eq!(s(" "), "' '");
        assert_eq!(s("a\x01b"), "\"a\\x01b\"");
        assert_eq!(s("a\r\nb"), "\"a\\r\\nb\"");
    }

    #[test]
    fn keys_sort_naturally() {
        let mut k = vec![
            "x12", "x1a", "a10", "a9", "a09", "a009", "a.b", "a-b", "a_b", "aB", "ab", "A", "1",
            "01", "é", "z", "a", "a1",
        ];
        k.sort_by(|a, b| sort_keys(a, b));
        assert_eq!(
            k,
            vec![
                "1", "01", "A", "a", "a-b", "a.b", "a_b", "a1", "a9", "a09", "a009", "a10", "aB",
                "ab", "x1a", "x12", "z", "é"
            ]
        );
    }

    #[test]
    fn literal_blocks_keep_and_strip() {
        let doc = emit(&Out::Map(vec![
            ("a".into(), Out::Str("l1\nl2\n".into())),
            ("b".into(), Out::Str("l1\nl2".into())),
            ("c".into(), Out::Str("l1\n\n".into())),
            ("d".into(), Out::Str("  x\ny".into())),
        ]));
        assert_eq!(doc, "a: |\n  l1\n  l2\nb: |-\n  l1\n  l2\nc: |+\n  l1\n\nd: |2-\n    x\n  y\n");
    }
}
