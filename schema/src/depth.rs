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
    let (mut prefix, mut widest_prefix, mut in_prefix) = (0usize, 0usize, true);
    let (mut flow, mut deepest_flow) = (0usize, 0usize);
    let (mut anchors, mut aliases) = (0usize, false);
    for &b in source {
        match b {
            b'\n' => (prefix, in_prefix) = (0, true),
            b' ' | b'\t' | b'-' | b'?' | b':' if in_prefix => {
                prefix += 1;
                widest_prefix = widest_prefix.max(prefix);
            }
            b'[' | b'{' => {
                (flow, in_prefix) = (flow + 1, false);
                deepest_flow = deepest_flow.max(flow);
            }
            b']' | b'}' => (flow, in_prefix) = (flow.saturating_sub(1), false),
            b'&' => (anchors, in_prefix) = (anchors + 1, false),
            b'*' => (aliases, in_prefix) = (true, false),
            _ => in_prefix = false,
        }
    }
    let text = 2 * (widest_prefix + 1) + deepest_flow + 1;
    if aliases { text.saturating_mul(anchors + 1) } else { text }
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
        fn the_bound_holds_for_flow_and_block_trees(flow in tree()) {
            assert_bounded(&flow);
            let Ok(v) = parse(flow.as_bytes()) else { return Ok(()) };
            let mut block = String::new();
            to_block(&v, 0, &mut block);
            assert_bounded(&block);
        }
    }
}
