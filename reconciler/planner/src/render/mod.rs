//! Rendering a plan for humans (text, markdown) and machines (json). Output is byte-stable:
//! its order comes from `BTreeMap`s, it carries no timestamps, and secrets are never shown.

pub mod constants;
pub mod json;
pub mod lines;
pub mod markdown;
pub mod text;

/// An output format of `reconcile --dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Terraform-like diff, colored on a terminal.
    Text,
    /// A pull-request comment.
    Markdown,
    /// The plan as JSON (`schema/json/plan.schema.json`).
    Json,
}

/// Renders `plan` in `format`; `color` only affects text.
pub fn render(plan: &crate::plan::Plan, format: Format, color: bool) -> String {
    match format {
        Format::Text => text::render(plan, color),
        Format::Markdown => markdown::render(plan),
        Format::Json => json::render(plan),
    }
}
