//! Progress lines redrawn in place on a terminal (indicatif), shared by the commands that show
//! progress as it happens: `service create | update | rollback | scale` waiting for their
//! service to converge (`service::watch`) and `up` showing rollouts (`up`). Each
//! [`Line`] is one drawn line, keyed by its id; one with a `bar` is drawn with a bar. Text
//! printed meanwhile goes above the drawn lines.
//!
//! Callers decide whether stdout is a terminal; this module only draws.

use super::service::progress::Line;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;

/// Lines redrawn in place on stdout.
pub struct Bars {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
}

impl Bars {
    /// Lines drawn on stdout (a terminal).
    pub fn stdout() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: BTreeMap::new(),
        }
    }

    /// Draws each of `lines`: a line already drawn with the same id is redrawn in place, a
    /// new id gets a line under the others.
    pub fn show(&mut self, lines: &[Line]) {
        for l in lines {
            let bar = self.bars.entry(l.id.clone()).or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_prefix(l.id.clone());
                bar
            });
            let template =
                if l.bar.is_some() { "{prefix}: {msg} [{bar:50}]" } else { "{prefix}: {msg}" };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            if let Some((current, total)) = l.bar {
                bar.set_length(total);
                bar.set_position(current);
            }
            bar.set_message(l.action.clone());
        }
    }

    /// Removes the drawn lines whose id is not in `ids` (what they showed is over).
    pub fn keep_only(&mut self, ids: &[&str]) {
        self.bars.retain(|id, bar| {
            let keep = ids.contains(&id.as_str());
            if !keep {
                bar.finish_and_clear();
                self.multi.remove(bar);
            }
            keep
        });
    }

    /// Prints `text` as a line above the drawn ones (they are cleared, the line printed, and
    /// they are drawn again; `MultiProgress::println` prints nothing while no line is drawn).
    pub fn println(&self, text: &str) {
        self.multi.suspend(|| println!("{text}"));
    }

    /// Leaves every drawn line as it was last drawn; later output goes under them.
    pub fn abandon(&mut self) {
        for bar in self.bars.values() {
            bar.abandon();
        }
    }
}
