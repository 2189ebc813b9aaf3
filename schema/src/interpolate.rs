//! Variable substitution in string values (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `$$`), with every quirk of Docker's
//! `template` package kept: unbraced names may carry a default (`$VAR-x`), the separators are
//! tried in the order `:-`, `-`, `:?`, `?`, and an error in one substitution can be cleared
//! by a later one in the same string. After substitution, values at known paths are cast to
//! int, float or bool as Docker does.

use crate::value::{Map, Value};
use std::collections::BTreeMap;

/// Why interpolation failed; the message is Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InterpolateError {
    /// Docker's message.
    pub message: String,
    /// The dotted path of the value (`services.web.image`).
    pub path: String,
}

/// A substitution that failed: Docker's `InvalidTemplateError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTemplate(pub String);

/// Substitutes the variables of one string.
pub fn substitute(
    template: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, InvalidTemplate> {
    let b = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut err: Option<InvalidTemplate> = None;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&template[last..i]);
        let (replacement, end) = match_at(template, i);
        match replacement {
            Match::Escaped => out.push('$'),
            Match::Invalid => {
                err = Some(InvalidTemplate(template.to_owned()));
            }
            Match::Sub(sub) => {
                let (value, e) = apply(sub, env);
                err = e;
                if err.is_none() {
                    out.push_str(&value);
                }
            }
        }
        i = end;
        last = end;
    }
    out.push_str(&template[last..]);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

enum Match<'a> {
    Escaped,
    Invalid,
    Sub(&'a str),
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Matches `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?` at `start`, returning its end.
fn substitution_end(b: &[u8], start: usize) -> Option<usize> {
    if start >= b.len() || !is_name_start(b[start]) {
        return None;
    }
    let mut i = start + 1;
    while i < b.len() && is_name(b[i]) {
        i += 1;
    }
    let mut j = i;
    if j < b.len() && b[j] == b':' {
        j += 1;
    }
    if j < b.len() && (b[j] == b'-' || b[j] == b'?') {
        j += 1;
        while j < b.len() && b[j] != b'}' {
            j += 1;
        }
        return Some(j);
    }
    Some(i)
}

/// What the `$` at `i` introduces, and where the match ends.
fn match_at(t: &str, i: usize) -> (Match<'_>, usize) {
    let b = t.as_bytes();
    let next = i + 1;
    if next < b.len() && b[next] == b'$' {
        return (Match::Escaped, next + 1);
    }
    if let Some(end) = substitution_end(b, next) {
        return (Match::Sub(&t[next..end]), end);
    }
    if next < b.len() && b[next] == b'{' {
        let start = next + 1;
        if let Some(end) = substitution_end(b, start) {
            if end < b.len() && b[end] == b'}' {
                return (Match::Sub(&t[start..end]), end + 1);
            }
            // Without the optional part, the name alone must be followed by '}'.
            let mut n = start + 1;
            while n < b.len() && is_name(b[n]) {
                n += 1;
            }
            if n < b.len() && b[n] == b'}' {
                return (Match::Sub(&t[start..n]), n + 1);
            }
        }
    }
    (Match::Invalid, next)
}

/// Runs Docker's substitution functions in order on one `NAME[op[arg]]`.
fn apply(sub: &str, env: &BTreeMap<String, String>) -> (String, Option<InvalidTemplate>) {
    let lookup = |name: &str| env.get(name).cloned();
    if let Some((name, default)) = sub.split_once(":-") {
        return match lookup(name) {
            Some(v) if !v.is_empty() => (v, None),
            _ => (default.to_owned(), None),
        };
    }
    if let Some((name, default)) = sub.split_once('-') {
        return (lookup(name).unwrap_or_else(|| default.to_owned()), None);
    }
    for (sep, non_empty) in [(":?", true), ("?", false)] {
        if let Some((name, msg)) = sub.split_once(sep) {
            return match lookup(name) {
                Some(v) if !non_empty || !v.is_empty() => (v, None),
                _ => (
                    String::new(),
                    Some(InvalidTemplate(format!(
                        "required variable {name} is missing a value: {msg}"
                    ))),
                ),
            };
        }
    }
    (lookup(sub).unwrap_or_default(), None)
}

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Paths whose substituted values Docker casts (`loader/interpolate.go`).
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.[].mode", Cast::Int),
    ("services.*.secrets.[].mode", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    ("services.*.deploy.update_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    ("services.*.deploy.rollback_config.max_failure_ratio", Cast::Float),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    ("services.*.deploy.placement.max_replicas_per_node", Cast::Int),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.ports.[].published", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

fn cast_for(path: &[&str]) -> Option<Cast> {
    CASTS.iter().find_map(|(pattern, cast)| {
        let mut parts = pattern.split('.');
        let matches = path.iter().all(|q| parts.next().is_some_and(|p| p == "*" || p == *q))
            && parts.next().is_none();
        matches.then_some(*cast)
    })
}

/// Interpolates every string value of a document in place (keys are left alone).
pub fn interpolate(doc: &mut Map, env: &BTreeMap<String, String>) -> Result<(), InterpolateError> {
    let mut path = Vec::new();
    for (k, v) in doc.iter_mut() {
        path.push(k.as_str());
        walk(v, &mut path, env)?;
        path.pop();
    }
    Ok(())
}

fn walk<'a>(
    v: &'a mut Value,
    path: &mut Vec<&'a str>,
    env: &BTreeMap<String, String>,
) -> Result<(), InterpolateError> {
    match v {
        Value::Str(s) if s.contains('$') => {
            *v = string(s, path, env)?;
        }
        Value::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.as_str());
                let r = walk(v, path, env);
                path.pop();
                r?;
            }
        }
        Value::Seq(items) => {
            for item in items.iter_mut() {
                path.push("[]");
                let r = walk(item, path, env);
                path.pop();
                r?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn string(
    s: &str,
    path: &[&str],
    env: &BTreeMap<String, String>,
) -> Result<Value, InterpolateError> {
    if !s.contains('$') {
        return Ok(Value::Str(s.to_owned()));
    }
    let new = substitute(s, env).map_err(|InvalidTemplate(t)| {
        let dotted = path.join(".");
        InterpolateError {
            message: format!(
                "invalid interpolation format for {dotted}: {}; you may need to escape any $ with another $",
                crate::gostr::quote(&t)
            ),
            path: dotted,
        }
    })?;
    if new == s {
        return Ok(Value::Str(new));
    }
    let Some(cast) = cast_for(path) else { return Ok(Value::Str(new)) };
    cast_value(&new, cast).map_err(|reason| {
        let dotted = path.join(".");
        InterpolateError {
            message: format!(
                "error while interpolating {dotted}: failed to cast to expected type: {reason}"
            ),
            path: dotted,
        }
    })
}

fn cast_value(s: &str, cast: Cast) -> Result<Value, String> {
    match cast {
        Cast::Int => crate::gostr::atoi(s).map(Value::Int),
        Cast::Float => crate::gostr::parse_float(s).map(Value::Float),
        Cast::Bool => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("invalid boolean: {s}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("A", "a"), ("EMPTY", ""), ("HOME", "/home/u")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn sub(s: &str) -> Result<String, InvalidTemplate> {
        substitute(s, &env())
    }

    #[test]
    fn every_form_substitutes() {
        assert_eq!(sub("$A ${A} $$A").unwrap(), "a a $A");
        assert_eq!(sub("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-d}").unwrap(), "d  d d");
    }

    #[test]
    fn defaults_follow_docker() {
        assert_eq!(sub("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(sub("${EMPTY-d}").unwrap(), "");
        assert_eq!(sub("${UNSET-d}").unwrap(), "d");
        assert_eq!(sub("$UNSET").unwrap(), "");
        assert_eq!(sub("$HOME-dir").unwrap(), "/home/u");
        assert_eq!(sub("$A:x").unwrap(), "a:x");
    }

    #[test]
    fn required_forms_fail_with_dockers_message() {
        assert_eq!(
            sub("${UNSET:?must be set}").unwrap_err(),
            InvalidTemplate("required variable UNSET is missing a value: must be set".into())
        );
        assert_eq!(sub("${EMPTY?x}").unwrap(), "");
        // A '-' in the message makes Docker treat it as a default.
        assert_eq!(sub("${UNSET:?must-be set}").unwrap(), "be set");
    }

    #[test]
    fn invalid_templates_name_the_whole_string() {
        for t in ["costs 5$", "${}", "${IMAGE", "${A:+x}"] {
            assert_eq!(sub(t).unwrap_err(), InvalidTemplate(t.into()), "{t}");
        }
    }

    #[test]
    fn a_later_substitution_clears_an_earlier_error() {
        assert_eq!(sub("${UNSET:?x} $A").unwrap(), " a");
    }
}
