//! `--output json`: the plan as serde writes it, pretty-printed, one trailing newline.

use crate::plan::Plan;

/// Renders the plan as JSON.
pub fn render(plan: &Plan) -> String {
    let mut s =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
