//! A cheap upper bound on how deeply a YAML text can nest once parsed, read without parsing
//! it. Every stage of the load walks the tree recursively, so a caller runs a file whose
//! bound is large on a thread with [`crate::load::LOADER_STACK_BYTES`] of stack, and an
//! ordinary file right where it is (starting a thread costs more than loading a small file).
//!
//! Why it is a bound:
//! - Block collections: libyaml opens a nested block mapping or sequence only at a column
//!   greater than its parent's indentation; the one exception, a sequence at its mapping
//!   key's column, must itself hold deeper content. So block depth is at most twice the
//!   number of columns at which a block collection can start. Such a start is either a
//!   line's first character or follows `- `, `? ` or `: ` on the same line, so it lies
//!   within the line's prefix of spaces, tabs and `-?:` — the widest prefix bounds it.
//! - Flow collections: each level opens with `[` or `{`. Counting every bracket, even
//!   inside quotes, only raises the bound.
//! - Aliases repeat a subtree that was anchored earlier; a chain of anchors can stack one
//!   subtree inside another, so with aliases present the bound is multiplied by the number
//!   of anchors plus one.

/// An upper bound on the nesting depth of the value `source` parses into.
pub fn nesting_bound(source: &[u8]) -> usize {
    let text = 2 * (widest_prefix(source) + 1) + deepest_flow(source) + 1;
    let anchors = memchr::memchr_iter(b'&', source).count();
    let aliases = memchr::memchr(b'*', source).is_some();
    if aliases { text.saturating_mul(anchors + 1) } else { text }
}

/// The widest run of spaces, tabs and `-?:` that starts a line.
fn widest_prefix(source: &[u8]) -> usize {
    let prefix = |line: &[u8]| {
        line.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'-' | b'?' | b':')).count()
    };
    let mut widest = prefix(source);
    for newline in memchr::memchr_iter(b'\n', source) {
        widest = widest.max(prefix(&source[newline + 1..]));
    }
    widest
}

/// The deepest nesting of brackets, counting every `[{` and `]}` wherever they stand.
fn deepest_flow(source: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut braces = memchr::memchr_iter(b'}', source).peekable();
    for at in memchr::memchr3_iter(b'[', b']', b'{', source) {
        while braces.next_if(|&close| close < at).is_some() {
            depth = depth.saturating_sub(1);
        }
        if source[at] == b']' {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::nesting_bound;
    use crate::value::Value;
    use crate::yaml::parse;
    use proptest::prelude::*;

    fn depth(v: &Value) -> usize {
        match v {
            Value::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Map(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::AnyMap(m) => {
                1 + m.iter().map(|(k, v)| depth(k).max(depth(v))).max().unwrap_or(0)
            }
            _ => 0,
        }
    }

    fn assert_bounded(text: &str) {
        let Ok(v) = parse(text.as_bytes()) else { return };
        assert!(depth(&v) <= nesting_bound(text.as_bytes()), "{text:?}: {}", depth(&v));
    }

    #[test]
    fn an_ordinary_stack_is_shallow() {
        let text = "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n    \
                    deploy:\n      labels: {a: b}\n";
        assert!(nesting_bound(text.as_bytes()) < 30);
        assert_bounded(text);
    }

    #[test]
    fn compact_sequences_flows_and_alias_chains_stay_under_the_bound() {
        for text in [
            "- - - - - a\n",
            "-\t-\t-\t- a\n",
            "a:\n- b:\n  - c:\n    - d\n",
            "? - - a\n: - - b\n",
            "[[[[[[1]]]]]]",
            "a: &a [x]\nb: &b [*a]\nc: &c [*b, *b]\nd: [*c]\n",
            "a: &a {k: [1]}\nb:\n  <<: *a\n  c: *a\n",
            "- &x - a\n",
            "- \"[\" \n- [b]\n",
        ] {
            assert_bounded(text);
        }
    }

    fn tree() -> impl Strategy<Value = String> {
        let leaf = "[a-z]{1,3}".prop_map(|s| s);
        leaf.prop_recursive(12, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec(inner, 1..4).prop_map(|items| {
                    let body: Vec<String> =
                        items.iter().enumerate().map(|(i, v)| format!("k{i}: {v}")).collect();
                    format!("{{{}}}", body.join(", "))
                }),
            ]
        })
    }

    /// Writes a flow value as block YAML at `indent`, compact forms included.
    fn to_block(flow: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match flow {
            Value::Seq(items) => {
                for item in items {
                    out.push_str(&format!("{pad}-\n"));
                    to_block(item, indent + 1, out);
                }
            }
            Value::Map(m) => {
                for (k, v) in m {
                    out.push_str(&format!("{pad}{k}:\n"));
                    to_block(v, indent + 1, out);
                }
            }
            Value::Str(s) => out.push_str(&format!("{pad}{s}\n")),
            _ => out.push_str(&format!("{pad}x\n")),
        }
    }

    proptest! {
        #[test]
        fn flow_depth_counts_brackets_in_order(text in "[\\[\\]{}a\n]{0,40}") {
            let (mut depth, mut deepest) = (0usize, 0usize);
            for b in text.bytes() {
                match b {
                    b'[' | b'{' => { depth += 1; deepest = deepest.max(depth); }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            prop_assert_eq!(super::deepest_flow(text.as_bytes()), deepest);
        }

        #[test]
        fn the_bound_holds_for_flow_and_block_trees(flow in tree()) {
            assert_bounded(&flow);
            let Ok(v) = parse(flow.as_bytes()) else { return Ok(()) };
            let mut block = String::new();
            to_block(&v, 0, &mut block);
            assert_bounded(&block);
        }
    }
}
