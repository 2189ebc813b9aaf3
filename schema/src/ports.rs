//! Port specifications (`"127.0.0.1:8080-8081:80-81/udp"`) read as Docker reads them
//! (`go-connections/nat` `ParsePortSpec`), and turned into long-syntax ports the way
//! `docker stack` does, warnings included.

use crate::model::PortConfig;
use std::net::IpAddr;

/// One container port with its binding, as `nat.ParsePortSpec` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The container port.
    pub port: u16,
    /// The host IP, when given.
    pub host_ip: String,
    /// The host port or range, when given.
    pub host_port: String,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |p: &str| p.parse::<u16>().map(u64::from).map_err(|e| e.to_string());
    match s.split_once('-') {
        None => {
            let p = parse(s)?;
            Ok((p, p))
        }
        Some((a, rest)) => {
            let b = rest.split('-').next().unwrap_or(rest);
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid range specified for port: {s}"));
            }
            Ok((a, b))
        }
    }
}

fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1].to_owned();
    match n {
        1 => (String::new(), String::new(), container),
        2 => (String::new(), parts[0].to_owned(), container),
        3 => (parts[0].to_owned(), parts[1].to_owned(), container),
        _ => (parts[..n - 2].join(":"), parts[n - 2].to_owned(), container),
    }
}

fn split_proto(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].to_owned());
    }
    (parts[1].to_owned(), parts[0].to_owned())
}

/// `nat.ParsePortSpec`.
pub fn parse_port_spec(raw: &str) -> Result<Vec<PortMapping>, String> {
    let (mut ip, host_port, container) = split_parts(raw);
    let (proto, container) = split_proto(&container);
    if let Some(inner) = ip.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(i) => ip = i.to_owned(),
            None => return Err(format!("invalid IP address {ip}: missing ']' in address")),
        }
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (mut hstart, mut hend) = (0, 0);
    if !host_port.is_empty() {
        (hstart, hend) =
            parse_range(&host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?;
    }
    if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        ));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut hp = String::new();
        if !host_port.is_empty() {
            hp = (hstart + i).to_string();
        }
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        out.push(PortMapping {
            proto: proto.clone(),
            port: u16::try_from(start + i).unwrap_or(u16::MAX),
            host_ip: ip.clone(),
            host_port: hp,
        });
    }
    Ok(out)
}

/// A short-syntax port as long-syntax ports, with Docker's warnings for host IPs (which a
/// swarm ignores). Ports come in Docker's order: container ports sorted as strings.
pub fn to_port_configs(spec: &str, warnings: &mut Vec<String>) -> Result<Vec<PortConfig>, String> {
    let mut mappings = parse_port_spec(spec)?;
    mappings.sort_by_key(|m| format!("{}/{}", m.port, m.proto));
    let mut out = Vec::new();
    for m in mappings {
        if let Ok(ip) = m.host_ip.parse::<IpAddr>()
            && !ip.is_unspecified()
        {
            let host = if m.host_ip.contains(':') {
                format!("[{}]:{}", m.host_ip, m.host_port)
            } else {
                format!("{}:{}", m.host_ip, m.host_port)
            };
            warnings.push(format!(
                "ignoring IP-address ({host}:{}/{}) service will listen on '0.0.0.0'",
                m.port, m.proto
            ));
        }
        let (hs, he) = match parse_range(&m.host_port) {
            Ok(r) => r,
            Err(_) if m.host_port.is_empty() => (0, 0),
            Err(_) => {
                return Err(format!(
                    "invalid hostport binding ({}) for port ({})",
                    m.host_port, m.port
                ));
            }
        };
        for p in hs..=he {
            out.push(PortConfig {
                mode: "ingress".into(),
                target: u32::from(m.port),
                published: u32::try_from(p).unwrap_or(0),
                protocol: m.proto.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_and_host_ips_warn() {
        let mut w = Vec::new();
        let p = to_port_configs("127.0.0.1:5000-5001:6000-6001", &mut w).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].target, p[0].published), (6000, 5000));
        assert_eq!(
            w[0],
            "ignoring IP-address (127.0.0.1:5000:6000/tcp) service will listen on '0.0.0.0'"
        );
        let p = to_port_configs("8-10", &mut w).unwrap();
        assert_eq!(p.iter().map(|p| p.target).collect::<Vec<_>>(), [10, 8, 9]);
        let p = to_port_configs("8000-8002:80", &mut w).unwrap();
        assert_eq!(p.iter().map(|p| p.published).collect::<Vec<_>>(), [8000, 8001, 8002]);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(parse_port_spec("80:80:80:80").is_err());
        assert!(parse_port_spec("70000").is_err());
        assert!(parse_port_spec("80-81:90-92").is_err());
        assert!(parse_port_spec("80/foo").is_err());
        assert!(parse_port_spec("[::1]:80:80").is_ok());
    }
}
