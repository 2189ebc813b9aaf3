//! Every prefix, label and color of the rendered plan, in one place (docs/architecture.md, "Plans for humans").

/// Prefix of a created object or added field.
pub const ADD: char = '+';
/// Prefix of a removed object or field.
pub const REMOVE: char = '-';
/// Prefix of a changed object or field.
pub const CHANGE: char = '~';
/// Prefix of an object left in the cluster because prune is off.
pub const ORPHAN: char = '?';
/// Prefix of a note line (rollout, reasons).
pub const NOTE: char = ' ';
/// Prefix of a warning.
pub const WARN: char = '!';
/// Between an old and a new value.
pub const ARROW: &str = "->";
/// What a secret's value is shown as: never more.
pub const SECRET_CHANGED: &str = "content changed";

/// ANSI green.
pub const GREEN: &str = "\x1b[32m";
/// ANSI red.
pub const RED: &str = "\x1b[31m";
/// ANSI yellow.
pub const YELLOW: &str = "\x1b[33m";
/// ANSI magenta.
pub const MAGENTA: &str = "\x1b[35m";
/// ANSI bold red, for warnings.
pub const BOLD_RED: &str = "\x1b[1;31m";
/// ANSI dim, for notes.
pub const DIM: &str = "\x1b[2m";
/// ANSI reset.
pub const RESET: &str = "\x1b[0m";

/// The color of a line with this prefix.
pub fn color_of(marker: char) -> &'static str {
    match marker {
        ADD => GREEN,
        REMOVE => RED,
        CHANGE => YELLOW,
        ORPHAN => MAGENTA,
        WARN => BOLD_RED,
        _ => DIM,
    }
}
