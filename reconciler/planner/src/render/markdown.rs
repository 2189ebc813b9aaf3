//! `--output markdown`: a pull-request comment. A summary table (stack, created, updated,
//! removed, orphaned, rollout batches), warnings up front, then one collapsible `diff` block
//! per stack (GitHub colors its `+`/`-` lines).

use super::lines::{marker, stack_lines, word};
use crate::plan::{Action, Plan};

/// The first line of every comment, so a CI job can find and update its earlier comment.
pub const MARKER: &str = "<!-- flotilla-plan -->";

fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// Renders the plan as a markdown comment.
pub fn render(plan: &Plan) -> String {
    let mut out = format!("{MARKER}\n## flotilla plan\n\n");
    out.push_str(&format!("`{}` → `{}`\n\n", escape(&plan.actual), escape(&plan.desired)));
    for w in &plan.warnings {
        out.push_str(&format!("> [!WARNING]\n> **{}**\n\n", escape(&w.message)));
    }
    if plan.stacks.is_empty() {
        out.push_str("No changes: the cluster already matches Git.\n");
        return out;
    }
    out.push_str("| stack | change | created | updated | removed | orphaned | rollout batches |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for (name, s) in &plan.stacks {
        let c = s.counts;
        let action = s.action.unwrap_or(Action::Update);
        out.push_str(&format!(
            "| {} | {} {} | {} | {} | {} | {} | {} |\n",
            escape(name),
            marker(action),
            word(action),
            c.created,
            c.updated,
            c.removed,
            c.orphaned,
            c.rollout_batches
        ));
    }
    out.push('\n');
    for (name, s) in &plan.stacks {
        out.push_str(&format!(
            "<details><summary>stack <code>{}</code></summary>\n\n",
            escape(name)
        ));
        out.push_str("```diff\n");
        for l in stack_lines(name, s) {
            let text = l.text.replace("```", "'''");
            out.push_str(&format!("{}{} {}\n", l.marker, "  ".repeat(l.depth), text));
        }
        out.push_str("```\n\n</details>\n\n");
    }
    out.push_str(&super::text::summary(plan));
    out.push('\n');
    out
}
