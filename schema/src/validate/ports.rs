//! The `ports` format: docker/go-connections `nat.ParsePortSpec` (the version vendored by
//! docker CLI 28.2.2), which accepts `[[ip:]host[-end]:]container[-end][/proto]`.
//!
//! Numbers are checked too: Docker hands the checker the number as a Go `*big.Rat` and checks
//! the text before its `/`, so `1.5` (`3/2`) passes as port 3 and `32768.5` (`65537/2`) fails.

use std::net::IpAddr;

/// A port specification that `nat.ParsePortSpec` accepts, before it is expanded into one
/// mapping per container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The host IP, brackets removed; empty when none was given.
    pub host_ip: String,
    /// The host port range, when a host port was given (start, end; equal for one port).
    pub host_ports: Option<(u16, u16)>,
    /// The container port range (start, end; equal for one port).
    pub container_ports: (u16, u16),
    /// `tcp`, `udp` or `sctp`, lower-cased.
    pub protocol: String,
}

/// Why a port specification was rejected (go-connections' wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// The IP part is not an IP address.
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    /// Nothing after the last colon.
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    /// The container port (range) does not parse.
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    /// The host port (range) does not parse.
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    /// Both are ranges, of different lengths.
    #[error("invalid ranges specified for container and host Ports: {0} and {1}")]
    RangeMismatch(String, String),
    /// The protocol is not tcp, udp or sctp.
    #[error("invalid proto: {0}")]
    InvalidProtocol(String),
}

/// Parses a port specification exactly as `nat.ParsePortSpec` does.
pub fn parse_port_spec(raw: &str) -> Result<PortSpec, PortSpecError> {
    let (ip, host_port, container) = split_parts(raw);
    let (protocol, container_port) = split_proto_port(container);
    let mut host_ip = ip.to_string();
    if ip.starts_with('[') {
        host_ip = strip_brackets(ip).ok_or_else(|| PortSpecError::InvalidIp(ip.to_string()))?;
    }
    if !host_ip.is_empty() && host_ip.parse::<IpAddr>().is_err() {
        return Err(PortSpecError::InvalidIp(host_ip));
    }
    if container_port.is_empty() {
        return Err(PortSpecError::NoPort(raw.to_string()));
    }
    let container_ports = parse_port_range(container_port)
        .ok_or_else(|| PortSpecError::InvalidContainerPort(container_port.to_string()))?;
    let mut host_ports = None;
    if !host_port.is_empty() {
        let range = parse_port_range(host_port)
            .ok_or_else(|| PortSpecError::InvalidHostPort(host_port.to_string()))?;
        let container_len = container_ports.1 - container_ports.0;
        if range.1 - range.0 != container_len && container_len != 0 {
            return Err(PortSpecError::RangeMismatch(
                container_port.to_string(),
                host_port.to_string(),
            ));
        }
        host_ports = Some(range);
    }
    let protocol = protocol.to_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(PortSpecError::InvalidProtocol(protocol));
    }
    Ok(PortSpec { host_ip, host_ports, container_ports, protocol })
}

/// The text Docker checks for a float: the numerator of `value` (as Go's JSON encoder writes
/// it, read back exactly as a fraction in lowest terms).
pub fn float_numerator(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        return Some("0".to_string());
    }
    // Shortest round-trip digits, as Go's encoder produces them: d.ddd e exp.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    let scale = exponent - i32::try_from(frac_part.len()).ok()?;
    let sign = if value < 0.0 { "-" } else { "" };
    if scale >= 0 {
        let zeros = "0".repeat(usize::try_from(scale).ok()?);
        return Some(format!("{sign}{digits}{zeros}"));
    }
    // Divide out the factors of 2 and 5 shared with the denominator 10^-scale.
    let mut numerator: u64 = digits.parse().ok()?;
    let (mut twos, mut fives) = (-scale, -scale);
    while twos > 0 && numerator.is_multiple_of(2) {
        numerator /= 2;
        twos -= 1;
    }
    while fives > 0 && numerator.is_multiple_of(5) {
        numerator /= 5;
        fives -= 1;
    }
    Some(format!("{sign}{numerator}"))
}

/// go-connections `splitParts`: IP, host port and container part, split on colons.
fn split_parts(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [container] => ("", "", container),
        [host, container] => ("", host, container),
        [ip, host, container] => (ip, host, container),
        _ => {
            let n = parts.len();
            let ip_len = raw.len() - parts[n - 2].len() - parts[n - 1].len() - 2;
            (&raw[..ip_len], parts[n - 2], parts[n - 1])
        }
    }
}

/// go-connections `SplitProtoPort` (v0.5): protocol and port, defaulting to tcp.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return ("", "");
    }
    if parts.len() == 1 {
        return ("tcp", raw);
    }
    if parts[1].is_empty() {
        return ("tcp", parts[0]);
    }
    (parts[1], parts[0])
}

/// `net.SplitHostPort(ip + ":")` for a bracketed IP: the text inside the brackets.
fn strip_brackets(ip: &str) -> Option<String> {
    let end = ip.find(']')?;
    if end + 1 != ip.len() || ip[1..].contains('[') {
        return None;
    }
    Some(ip[1..end].to_string())
}

/// go-connections `ParsePortRange`: `N` or `N-M` with M >= N (extra `-` parts ignored).
fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    if !text.contains('-') {
        let port = parse_uint16(text)?;
        return Some((port, port));
    }
    let mut parts = text.split('-');
    let start = parse_uint16(parts.next()?)?;
    let end = parse_uint16(parts.next()?)?;
    (end >= start).then_some((start, end))
}

/// `strconv.ParseUint(text, 10, 16)`: ASCII digits only, at most 65535.
fn parse_uint16(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 5 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_docker_accepts() {
        for spec in [
            "80",
            "0",
            "080",
            "00080",
            "65535",
            "80/tcp",
            "80/udp",
            "80/sctp",
            "80/TCP",
            "80/",
            "80/tcp/extra",
            "8080:80",
            ":80",
            "1.2.3.4:80:80",
            "1.2.3.4::80",
            "[::1]:80:80",
            "::1:80:80",
            "[]:80:80",
            "8000-8005:9000-9005",
            "8000-8005:9000",
            "1-2-3",
            "127.0.0.1:5000-5010:5000-5010/udp",
        ] {
            assert!(parse_port_spec(spec).is_ok(), "{spec:?} should be accepted");
        }
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for spec in [
            "",
            "abc",
            "1.5",
            "+80",
            "-1",
            "65536",
            "70000:80",
            "80-",
            "9000-8000",
            "80/xyz",
            "/tcp",
            "80:",
            "2223:23:23",
            "8000-8005:9000-9001",
            "8000:9000-9005",
            "1.2.3:80:80",
            "[::1:80:80",
            "01.2.3.4:80:80",
            "80 ",
        ] {
            assert!(parse_port_spec(spec).is_err(), "{spec:?} should be rejected");
        }
    }

    #[test]
    fn parses_the_parts() {
        let spec = parse_port_spec("[::1]:8000-8001:80-81/UDP").unwrap();
        assert_eq!(
            spec,
            PortSpec {
                host_ip: "::1".into(),
                host_ports: Some((8000, 8001)),
                container_ports: (80, 81),
                protocol: "udp".into(),
            }
        );
        assert_eq!(parse_port_spec("70000:80").unwrap_err().to_string(), "invalid hostPort: 70000");
    }

    #[test]
    fn numbers_are_checked_by_their_numerator() {
        let cases: &[(f64, &str)] = &[
            (1.5, "3"),
            (32768.5, "65537"),
            (0.5, "1"),
            (100.25, "401"),
            (1.0, "1"),
            (1e3, "1000"),
            (1.5e10, "15000000000"),
            (-1.0, "-1"),
            (0.1, "1"),
            (-0.0, "0"),
        ];
        for (value, want) in cases {
            assert_eq!(float_numerator(*value).as_deref(), Some(*want), "{value}");
        }
        assert!(parse_port_spec("3").is_ok());
        assert!(parse_port_spec("65537").is_err());
        assert_eq!(float_numerator(f64::INFINITY), None);
    }
}
