//! Short-syntax ports (`"127.0.0.1:8080-8081:80-81/udp"`) turned into long-syntax ports
//! the way `docker stack` does, warnings included. The spec itself is read by
//! [`crate::validate::parse_port_spec`], the same go-connections parser the schema's `ports`
//! format uses.

use crate::model::PortConfig;
use crate::validate::parse_port_spec;
use std::net::IpAddr;

/// One container port with its binding, as `nat.ParsePortSpecs` expands a spec.
struct PortMapping {
    proto: String,
    port: u16,
    host_ip: String,
    /// Published ports: none, one, or a range of host ports for a single container port.
    published: Option<(u16, u16)>,
    /// The host port as Docker writes it in its warning (`8080`, `8000-8010` or empty).
    host_text: String,
}

fn mappings(spec: &str) -> Result<Vec<PortMapping>, String> {
    let p = parse_port_spec(spec).map_err(|e| e.to_string())?;
    let (cs, ce) = p.container_ports;
    let mut out = Vec::new();
    for port in cs..=ce {
        let published = p
            .host_ports
            .map(|(hs, he)| if cs == ce { (hs, he) } else { (hs + (port - cs), hs + (port - cs)) });
        let host_text = match published {
            None => String::new(),
            Some((a, b)) if a == b => a.to_string(),
            Some((a, b)) => format!("{a}-{b}"),
        };
        out.push(PortMapping {
            proto: p.protocol.clone(),
            port,
            host_ip: p.host_ip.clone(),
            published,
            host_text,
        });
    }
    Ok(out)
}

/// A short-syntax port as long-syntax ports, with Docker's warnings for host IPs (which a
/// swarm ignores). Ports come in Docker's order: container ports sorted as strings.
pub fn to_port_configs(spec: &str, warnings: &mut Vec<String>) -> Result<Vec<PortConfig>, String> {
    let mut mappings = mappings(spec)?;
    mappings.sort_by_key(|m| format!("{}/{}", m.port, m.proto));
    let mut out = Vec::new();
    for m in mappings {
        if let Ok(ip) = m.host_ip.parse::<IpAddr>()
            && !ip.is_unspecified()
        {
            let host = if m.host_ip.contains(':') {
                format!("[{}]:{}", m.host_ip, m.host_text)
            } else {
                format!("{}:{}", m.host_ip, m.host_text)
            };
            warnings.push(format!(
                "ignoring IP-address ({host}:{}/{}) service will listen on '0.0.0.0'",
                m.port, m.proto
            ));
        }
        let (hs, he) = m.published.unwrap_or((0, 0));
        for p in hs..=he {
            out.push(PortConfig {
                mode: "ingress".into(),
                target: u32::from(m.port),
                published: u32::from(p),
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
        let mut w = Vec::new();
        assert!(to_port_configs("80:80:80:80", &mut w).is_err());
        assert!(to_port_configs("70000", &mut w).is_err());
        assert_eq!(
            to_port_configs("80-81:90-92", &mut w).unwrap_err(),
            "invalid ranges specified for container and host Ports: 90-92 and 80-81"
        );
        assert!(to_port_configs("80/foo", &mut w).is_err());
        let p = to_port_configs("[::1]:8092:92", &mut w).unwrap();
        assert_eq!((p[0].target, p[0].published), (92, 8092));
        assert!(w.last().unwrap().starts_with("ignoring IP-address ([::1]:8092:92/tcp)"));
    }
}
