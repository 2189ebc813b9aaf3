//! Placement constraints (swarmkit `manager/constraint/constraint.go`): `key==value` and
//! `key!=value`, case-insensitive full-string comparison, a missing field is `""`.

use reconciler_types::{Node, NodeRole};
use std::net::IpAddr;

/// The comparison of a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `==`
    Eq,
    /// `!=`
    NotEq,
}

/// One parsed constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The key, lowercased except for a label name (`node.labels.Zone` keeps `Zone`).
    pub key: String,
    /// `==` or `!=`.
    pub op: Operator,
    /// The expected value.
    pub value: String,
}

/// A constraint that cannot be parsed; names the service it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {service}: invalid placement constraint {constraint:?}: {reason}")]
pub struct ConstraintError {
    /// The service.
    pub service: String,
    /// The constraint as written.
    pub constraint: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn key_ok(key: &str) -> bool {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest: Vec<char> = chars.collect();
    first_ok
        && !rest.is_empty()
        && rest.iter().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
}

fn value_ok(value: &str) -> bool {
    value.chars().all(|c| c.is_alphanumeric() || ":-_ .*()?+[]\\^$|/".contains(c))
}

/// Parses one constraint.
///
/// # Errors
/// A [`ConstraintError`] naming `service` when there is no operator or the key or value has
/// characters Swarm refuses.
pub fn parse(service: &str, text: &str) -> Result<Constraint, ConstraintError> {
    let err = |reason| ConstraintError {
        service: service.to_owned(),
        constraint: text.to_owned(),
        reason,
    };
    let (key, op, value) = if let Some((k, v)) = text.split_once("==") {
        (k, Operator::Eq, v)
    } else if let Some((k, v)) = text.split_once("!=") {
        (k, Operator::NotEq, v)
    } else {
        return Err(err("expected key==value or key!=value"));
    };
    let (key, value) = (key.trim(), value.trim());
    if !key_ok(key) {
        return Err(err("invalid key"));
    }
    if value.is_empty() || !value_ok(value) {
        return Err(err("invalid value"));
    }
    let key = match split_label(key) {
        Some((prefix, name)) => format!("{}{name}", prefix.to_ascii_lowercase()),
        None => key.to_ascii_lowercase(),
    };
    Ok(Constraint { key, op, value: value.to_owned() })
}

/// Parses all constraints of a service.
///
/// # Errors
/// The first malformed constraint.
pub fn parse_all(
    service: &str,
    constraints: &[String],
) -> Result<Vec<Constraint>, ConstraintError> {
    constraints.iter().map(|c| parse(service, c)).collect()
}

/// Validates a service's placement constraints (for the planner and the API): a malformed
/// one is an error naming the service.
///
/// # Errors
/// The first malformed constraint.
pub fn validate(spec: &reconciler_types::ServiceSpec) -> Result<(), ConstraintError> {
    parse_all(&spec.name, &spec.task_template.placement.constraints).map(|_| ())
}

/// Splits `node.labels.<name>` / `engine.labels.<name>` (prefix matched case-insensitively).
fn split_label(key: &str) -> Option<(&str, &str)> {
    for prefix in ["node.labels.", "engine.labels."] {
        if key.len() > prefix.len()
            && key.is_char_boundary(prefix.len())
            && key[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            return Some((&key[..prefix.len()], &key[prefix.len()..]));
        }
    }
    None
}

fn node_field<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    let d = &node.description;
    let v = match key {
        "node.id" => node.id.as_str(),
        "node.hostname" => d.hostname.as_str(),
        "node.role" => match node.spec.role {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
        },
        "node.platform.os" => d.platform.os.as_str(),
        "node.platform.arch" => d.platform.architecture.as_str(),
        _ => {
            if let Some(name) = key.strip_prefix("node.labels.") {
                return Some(node.spec.labels.get(name).map_or("", String::as_str));
            }
            if let Some(name) = key.strip_prefix("engine.labels.") {
                return Some(d.engine.labels.get(name).map_or("", String::as_str));
            }
            return None;
        }
    };
    Some(v)
}

fn ip_matches(addr: &str, value: &str) -> bool {
    let Ok(ip) = addr.parse::<IpAddr>() else { return false };
    if let Some((net, bits)) = value.split_once('/') {
        let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
            return false;
        };
        return match (ip, net) {
            (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        };
    }
    value.parse::<IpAddr>().is_ok_and(|v| v == ip)
}

impl Constraint {
    /// Whether the node satisfies the constraint. Unknown keys never match.
    pub fn matches(&self, node: &Node) -> bool {
        if self.key == "node.ip" {
            let addr =
                node.status.addr.rsplit_once(':').map_or(node.status.addr.as_str(), |(h, _)| h);
            let eq = ip_matches(addr, &self.value) || ip_matches(&node.status.addr, &self.value);
            return match self.op {
                Operator::Eq => eq,
                Operator::NotEq => !eq,
            };
        }
        let Some(actual) = node_field(node, &self.key) else { return false };
        let eq = actual.eq_ignore_ascii_case(&self.value)
            || actual.to_lowercase() == self.value.to_lowercase();
        match self.op {
            Operator::Eq => eq,
            Operator::NotEq => !eq,
        }
    }
}

/// Whether the node satisfies every constraint (an unparsable one never matches).
pub fn node_matches(service: &str, constraints: &[String], node: &Node) -> bool {
    constraints.iter().all(|c| parse(service, c).is_ok_and(|c| c.matches(node)))
}

/// Whether all the parsed constraints hold on the node.
pub fn all_match(constraints: &[Constraint], node: &Node) -> bool {
    constraints.iter().all(|c| c.matches(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        let mut n = Node { id: "n1".into(), ..Node::default() };
        n.description.hostname = "Web-1".into();
        n.spec.labels.insert("zone".into(), "eu".into());
        n.description.platform.os = "linux".into();
        n.status.addr = "10.0.1.7".into();
        n
    }

    #[test]
    fn equality_is_case_insensitive_and_missing_labels_are_empty() {
        let n = node();
        assert!(parse("s", "node.hostname==web-1").unwrap().matches(&n));
        assert!(parse("s", " node.labels.zone == EU ").unwrap().matches(&n));
        assert!(!parse("s", "node.labels.x==foo").unwrap().matches(&n));
        assert!(parse("s", "node.labels.x!=foo").unwrap().matches(&n));
        assert!(parse("s", "node.role==worker").unwrap().matches(&n));
        assert!(parse("s", "NODE.PLATFORM.OS==linux").unwrap().matches(&n));
        assert!(!parse("s", "node.unknown==x").unwrap().matches(&n));
    }

    #[test]
    fn label_names_are_case_sensitive() {
        assert!(!parse("s", "node.labels.Zone==eu").unwrap().matches(&node()));
    }

    #[test]
    fn node_ip_matches_addresses_and_cidrs() {
        let n = node();
        assert!(parse("s", "node.ip==10.0.1.7").unwrap().matches(&n));
        assert!(parse("s", "node.ip==10.0.0.0/16").unwrap().matches(&n));
        assert!(!parse("s", "node.ip==10.1.0.0/16").unwrap().matches(&n));
    }

    #[test]
    fn malformed_constraints_name_the_service() {
        let e = parse("shop_web", "node.labels.zone=eu").unwrap_err();
        assert_eq!(
            e.to_string(),
            "service shop_web: invalid placement constraint \"node.labels.zone=eu\": expected key==value or key!=value"
        );
        assert!(parse("shop_web", "1abc==x").is_err());
        assert!(parse("shop_web", "node.id==a;b").is_err());
        assert!(parse_all("shop_web", &["node.role==manager".into(), "x".into()]).is_err());
    }
}
