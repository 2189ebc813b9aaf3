//! `--output text`: a Terraform-like diff, colored only when asked to (a terminal without
//! `NO_COLOR`; the CLI decides).

use super::constants::{RESET, WARN, color_of};
use super::lines::{Line, stack_lines};
use crate::plan::Plan;

/// A unified line diff of a config's content (`similar`), or a size note for binary data.
pub fn content_diff(old: &[u8], new: &[u8]) -> String {
    match (std::str::from_utf8(old), std::str::from_utf8(new)) {
        (Ok(o), Ok(n)) => similar::TextDiff::from_lines(o, n)
            .unified_diff()
            .context_radius(2)
            .header("before", "after")
            .to_string(),
        _ => format!("binary content changed ({} bytes -> {} bytes)\n", old.len(), new.len()),
    }
}

fn write_line(out: &mut String, l: &Line, color: bool) {
    let indent = "  ".repeat(l.depth);
    if color {
        out.push_str(color_of(l.marker));
    }
    out.push_str(&format!("{indent}{} {}", l.marker, l.text));
    if color {
        out.push_str(RESET);
    }
    out.push('\n');
}

/// The one-line summary at the end.
pub fn summary(plan: &Plan) -> String {
    let t = plan.totals;
    if !plan.has_changes() && t.orphaned == 0 {
        return "No changes: the cluster already matches Git.".into();
    }
    format!(
        "Plan: {} to create, {} to update, {} to remove, {} orphaned; {} rollout batch{}.",
        t.created,
        t.updated,
        t.removed,
        t.orphaned,
        t.rollout_batches,
        if t.rollout_batches == 1 { "" } else { "es" }
    )
}

/// Renders the plan as text.
pub fn render(plan: &Plan, color: bool) -> String {
    let mut out = format!("flotilla plan: {} -> {}\n", plan.actual, plan.desired);
    for w in &plan.warnings {
        out.push('\n');
        write_line(
            &mut out,
            &Line { depth: 0, marker: WARN, text: format!("WARNING: {}", w.message) },
            color,
        );
    }
    for (name, stack) in &plan.stacks {
        out.push('\n');
        for l in stack_lines(name, stack) {
            write_line(&mut out, &l, color);
        }
    }
    out.push('\n');
    out.push_str(&summary(plan));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::plan::{Counts, Plan, Warning};

    #[test]
    fn color_codes_appear_only_when_asked_for() {
        let warning =
            Warning { stack: "s".into(), kind: "stack_removed".into(), message: "m".into() };
        let plan = Plan {
            format: 1,
            desired: "head".into(),
            actual: "base".into(),
            stacks: Default::default(),
            warnings: vec![warning],
            totals: Counts::default(),
        };
        assert!(render(&plan, true).contains("\u{1b}["));
        assert!(!render(&plan, false).contains('\u{1b}'));
    }
}
