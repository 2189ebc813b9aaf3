//! The plan as a list of marked, indented lines: what text and markdown both print.

use super::constants::{ADD, ARROW, CHANGE, NOTE, ORPHAN, REMOVE, SECRET_CHANGED};
use crate::fields::fmt_duration;
use crate::plan::{Action, FieldChange, ObjectPlan, Rollout, ServicePlan, StackPlan, UpdateKind};
use std::time::Duration;

/// One output line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Nesting depth (0 = stack).
    pub depth: usize,
    /// The prefix (`+`, `-`, `~`, `?`, ` `).
    pub marker: char,
    /// The text after the prefix.
    pub text: String,
}

fn line(depth: usize, marker: char, text: impl Into<String>) -> Line {
    Line { depth, marker, text: text.into() }
}

/// The prefix of an action.
pub fn marker(a: Action) -> char {
    match a {
        Action::Create => ADD,
        Action::Update => CHANGE,
        Action::Remove => REMOVE,
        Action::Orphan => ORPHAN,
    }
}

/// The word for an action.
pub fn word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Remove => "remove",
        Action::Orphan => "would orphan (prune is off)",
    }
}

fn field_line(depth: usize, f: &FieldChange) -> Line {
    match (&f.old, &f.new) {
        (None, Some(n)) => line(depth, ADD, format!("{}: {n}", f.path)),
        (Some(o), None) => line(depth, REMOVE, format!("{}: {o}", f.path)),
        (Some(o), Some(n)) => line(depth, CHANGE, format!("{}: {o} {ARROW} {n}", f.path)),
        (None, None) => line(depth, NOTE, f.path.clone()),
    }
}

fn ns(n: u64) -> String {
    fmt_duration(Duration::from_nanos(n))
}

fn rollout_lines(out: &mut Vec<Line>, r: &Rollout) {
    let tasks = match r.tasks {
        Some(n) => format!("{n} task{}", if n == 1 { "" } else { "s" }),
        None => "one task per node".into(),
    };
    let width = if r.parallelism == 0 {
        "all at once".to_owned()
    } else {
        format!("{} at a time", r.parallelism)
    };
    out.push(line(
        3,
        NOTE,
        format!(
            "rollout: {tasks}, {width}, {}, delay {}, monitor {}, on failure {}, max failure ratio {}",
            r.order,
            ns(r.delay_ns),
            ns(r.monitor_ns),
            r.failure_action,
            r.max_failure_ratio
        ),
    ));
    for (i, b) in r.batches.iter().enumerate() {
        let slots: Vec<String> = b.slots.iter().map(u64::to_string).collect();
        out.push(line(
            4,
            NOTE,
            format!(
                "batch {}: slot{} {}",
                i + 1,
                if slots.len() == 1 { "" } else { "s" },
                slots.join(", ")
            ),
        ));
    }
    out.push(line(
        4,
        NOTE,
        format!("shortest time: {} ({})", ns(r.min_duration_ns), r.min_duration_formula),
    ));
}

fn service_header(s: &ServicePlan) -> String {
    match (s.action, s.update) {
        (Action::Update, Some(UpdateKind::Rolling)) => {
            format!("service {}: rolling update", s.name)
        }
        (Action::Update, Some(UpdateKind::Recreate)) => {
            format!("service {}: remove and create (Swarm cannot change a service's mode)", s.name)
        }
        (Action::Update, _) => {
            let scale = s.fields.iter().find(|f| f.path == "deploy.replicas");
            match scale {
                Some(FieldChange { old: Some(o), new: Some(n), .. }) => {
                    format!(
                        "service {}: in place, scale {o} {ARROW} {n} (no task replaced)",
                        s.name
                    )
                }
                _ => format!("service {}: in place (no task replaced)", s.name),
            }
        }
        (a, _) => format!("service {}: {}", s.name, word(a)),
    }
}

fn service_lines(out: &mut Vec<Line>, s: &ServicePlan) {
    out.push(line(1, marker(s.action), service_header(s)));
    for f in &s.fields {
        out.push(field_line(3, f));
    }
    for r in &s.reasons {
        out.push(line(3, CHANGE, r.clone()));
    }
    if let Some(r) = &s.rollout {
        rollout_lines(out, r);
    }
}

/// What an orphaned network, config or secret says when prune is on.
const ORPHAN_PRUNE_ON: &str = "would orphan (prune removes only services)";

fn object_lines(out: &mut Vec<Line>, kind: &str, o: &ObjectPlan, prune: bool) {
    let what = if prune && o.action == Action::Orphan { ORPHAN_PRUNE_ON } else { word(o.action) };
    let mut head = format!("{kind} {}: {what}", o.name);
    if o.content_changed {
        head = format!("{kind} {}: {SECRET_CHANGED}", o.name);
    }
    out.push(line(1, marker(o.action), head));
    for f in &o.fields {
        out.push(field_line(3, f));
    }
    if let Some(d) = &o.content_diff {
        for l in d.lines() {
            let (m, rest) = match l.chars().next() {
                Some(c @ ('+' | '-')) if !l.starts_with("+++") && !l.starts_with("---") => {
                    (c, &l[1..])
                }
                _ => (NOTE, l),
            };
            out.push(line(3, m, format!("| {rest}")));
        }
    }
}

/// The lines of one stack.
pub fn stack_lines(name: &str, s: &StackPlan) -> Vec<Line> {
    let mut out = Vec::new();
    let action = s.action.unwrap_or(Action::Update);
    out.push(line(0, marker(action), format!("stack {name}: {}", word(action))));
    for o in s.networks.values() {
        object_lines(&mut out, "network", o, s.prune);
    }
    for o in s.configs.values() {
        object_lines(&mut out, "config", o, s.prune);
    }
    for o in s.secrets.values() {
        object_lines(&mut out, "secret", o, s.prune);
    }
    for svc in s.services.values() {
        service_lines(&mut out, svc);
    }
    out
}
