//! The value syntaxes of Docker's service flags, parsed and printed exactly as Docker does:
//! Go durations (`1m30s`, `500ms`), memory sizes (`512m`), CPU counts (`0.5`), published ports
//! (`8080:80/udp`, `published=8080,target=80,mode=host`), secret and config references
//! (`name`, `source=name,target=file,mode=0400`) and `KEY=VALUE` lists. Pure: no clock, no
//! environment (an `--env KEY` without a value is looked up by the caller's closure).

use reconciler_types::{
    ConfigReference, PlacementPreference, PortConfig, PortProtocol, PublishMode, SecretReference,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Parses a Go duration (`time.ParseDuration`: `1h30m`, `1.5s`, `300ms`), refusing negative
/// ones (no service field takes one).
///
/// # Errors
/// Go's message for a malformed duration, or a negative one.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    let nanos = schema::gostr::parse_duration(text)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("invalid duration {text:?}: it cannot be negative"))
}

/// Formats a duration as Go's `Duration.String()` does (`0s`, `1.5s`, `1m30s`).
pub fn go_duration_string(d: Duration) -> String {
    reconciler_planner::fields::fmt_duration(d)
}

/// Parses a memory size as Docker's `RAMInBytes` (`512m`, `1.5G`, `2GiB`).
///
/// # Errors
/// go-units' message for a malformed size.
pub fn mem_bytes(text: &str) -> Result<i64, String> {
    schema::units::ram_in_bytes(text)
}

/// Parses a CPU count (`0.5`, `2`) into nano-CPUs as Docker's `ParseCPUs`.
///
/// # Errors
/// Not a number, or more precise than 1e-9.
pub fn nano_cpus(text: &str) -> Result<i64, String> {
    reconciler_planner::parse_cpus(text)
}

/// Formats nano-CPUs as a decimal CPU count (`500000000` → `0.5`).
pub fn cpus_string(nano: i64) -> String {
    reconciler_planner::fields::fmt_cpus(nano)
}

/// Formats bytes as Docker's `BytesSize` (binary units, four significant digits, Go's
/// `%.4g`: `512MiB`, `1.5GiB`).
pub fn bytes_string(bytes: i64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut size = bytes.max(0) as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", significant4(size), UNITS[unit])
}

/// `v` with four significant digits and no trailing zeros (Go's `%.4g` for 0 ≤ v < 10000).
fn significant4(v: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let int_digits = if v < 1.0 { 1 } else { v.log10().floor() as usize + 1 };
    let text = format!("{v:.*}", 4usize.saturating_sub(int_digits));
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Parses one `--publish` value: the short syntax `[published:]target[/protocol]` (either side
/// may be a range `a-b` of the same length), or the long syntax
/// `published=P,target=T,protocol=tcp|udp|sctp,mode=ingress|host`.
///
/// # Errors
/// Docker's messages for a malformed value.
pub fn ports(text: &str) -> Result<Vec<PortConfig>, String> {
    if text.contains('=') {
        return long_port(text).map(|p| vec![p]);
    }
    let spec = schema::validate::parse_port_spec(text).map_err(|e| e.to_string())?;
    if !spec.host_ip.is_empty() {
        return Err("hostip is not supported".into());
    }
    let proto = protocol(&spec.protocol)?;
    let (cs, ce) = spec.container_ports;
    let mut out = Vec::new();
    for target in cs..=ce {
        match spec.host_ports {
            None => out.push(port_config(proto, u32::from(target), 0)),
            // One container port bound to a range of host ports: one entry per host port.
            Some((hs, he)) if cs == ce => {
                out.extend((hs..=he).map(|h| port_config(proto, u32::from(target), u32::from(h))));
            }
            Some((hs, _)) => {
                let published = u32::from(hs) + u32::from(target - cs);
                out.push(port_config(proto, u32::from(target), published));
            }
        }
    }
    Ok(out)
}

fn port_config(protocol: PortProtocol, target: u32, published: u32) -> PortConfig {
    PortConfig {
        protocol,
        target_port: target,
        published_port: published,
        publish_mode: PublishMode::Ingress,
    }
}

fn protocol(text: &str) -> Result<PortProtocol, String> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(PortProtocol::Tcp),
        "udp" => Ok(PortProtocol::Udp),
        "sctp" => Ok(PortProtocol::Sctp),
        _ => Err(format!("invalid protocol value '{text}'")),
    }
}

fn long_port(text: &str) -> Result<PortConfig, String> {
    let mut p = port_config(PortProtocol::Tcp, 0, 0);
    for field in text.split(',') {
        let lower = field.to_ascii_lowercase();
        let Some((key, value)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("invalid field: {field}"));
        };
        let number = |what: &str| {
            value.parse::<u16>().map(u32::from).map_err(|_| {
                format!("invalid {what} port ({value}): value must be an integer: invalid syntax")
            })
        };
        match key {
            "protocol" => p.protocol = protocol(value)?,
            "mode" => {
                p.publish_mode = match value {
                    "ingress" => PublishMode::Ingress,
                    "host" => PublishMode::Host,
                    _ => {
                        return Err(format!(
                            "invalid publish mode value ({value}): must be either 'ingress' or 'host'"
                        ));
                    }
                }
            }
            "target" => p.target_port = number("target")?,
            "published" => p.published_port = number("published")?,
            _ => return Err(format!("invalid field key: {key}")),
        }
    }
    if p.target_port == 0 {
        return Err("missing mandatory field 'target'".into());
    }
    Ok(p)
}

/// The fields of a `--secret` / `--config` value, before it becomes a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The object's name.
    pub source: String,
    /// The file name (secrets) or path (configs).
    pub target: String,
    /// Owner uid.
    pub uid: String,
    /// Owner gid.
    pub gid: String,
    /// File mode.
    pub mode: u32,
}

/// Parses `name` or `source=name,target=file,uid=0,gid=0,mode=0444` (Docker's `SecretOpt` and
/// `ConfigOpt`).
///
/// # Errors
/// Docker's messages for a malformed value.
pub fn file_ref(text: &str) -> Result<FileRef, String> {
    let mut r = FileRef {
        source: String::new(),
        target: String::new(),
        uid: "0".into(),
        gid: "0".into(),
        mode: 0o444,
    };
    if !text.contains('=') {
        r.source = text.to_owned();
    }
    for field in text.split(',').filter(|_| text.contains('=')) {
        let Some((key, value)) = field.split_once('=') else {
            return Err(format!("invalid field '{field}' must be a key=value pair"));
        };
        match key.to_ascii_lowercase().as_str() {
            "source" | "src" => r.source = value.to_owned(),
            "target" => r.target = value.to_owned(),
            "uid" => r.uid = value.to_owned(),
            "gid" => r.gid = value.to_owned(),
            "mode" => {
                r.mode = u32::from_str_radix(value, 8)
                    .map_err(|_| format!("invalid mode specified: {value}"))?;
            }
            _ => return Err(format!("invalid field in secret request: {key}")),
        }
    }
    if r.source.is_empty() {
        return Err("source is required".into());
    }
    Ok(r)
}

impl FileRef {
    /// A secret reference; the target defaults to the source name.
    pub fn secret(&self) -> SecretReference {
        let target = if self.target.is_empty() { self.source.clone() } else { self.target.clone() };
        SecretReference {
            secret_name: self.source.clone(),
            target,
            uid: self.uid.clone(),
            gid: self.gid.clone(),
            mode: self.mode,
        }
    }

    /// A config reference; the target defaults to `/<source>`.
    pub fn config(&self) -> ConfigReference {
        let target =
            if self.target.is_empty() { format!("/{}", self.source) } else { self.target.clone() };
        ConfigReference {
            config_name: self.source.clone(),
            target,
            uid: self.uid.clone(),
            gid: self.gid.clone(),
            mode: self.mode,
        }
    }
}

/// Parses a `--placement-pref` value (`spread=node.labels.az`).
///
/// # Errors
/// Docker's messages for another strategy or a malformed value.
pub fn placement_pref(text: &str) -> Result<PlacementPreference, String> {
    match text.split_once('=') {
        Some(("spread", arg)) => Ok(PlacementPreference { spread: arg.to_owned() }),
        Some((strategy, _)) if !strategy.is_empty() => {
            Err(format!("unsupported placement preference {strategy} (only spread is supported)"))
        }
        _ => Err(r#"placement preference must be of the format "<strategy>=<arg>""#.into()),
    }
}

/// `KEY=VALUE` strings as a map (`KEY` alone maps to an empty value), as Docker's
/// `ConvertKVStringsToMap`.
pub fn kv_map<'a>(pairs: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.clone(), String::new()),
        })
        .collect()
}

/// Checks a label (`KEY=VALUE` or `KEY`): the key must not be empty.
///
/// # Errors
/// An empty key.
pub fn label(text: &str) -> Result<String, String> {
    let key = text.split_once('=').map_or(text, |(k, _)| k);
    if key.trim().is_empty() {
        return Err(format!("invalid label '{text}': empty name"));
    }
    Ok(text.to_owned())
}

/// The key of an environment entry (`KEY=VALUE` → `KEY`).
pub fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Completes `--env` entries as Docker's `ValidateEnv`: `KEY` without `=` takes its value
/// from `lookup` (the CLI's environment) when set, and stays `KEY` otherwise.
pub fn env_entries(entries: &[String], lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    entries
        .iter()
        .map(|e| match (e.contains('='), lookup(e)) {
            (false, Some(v)) => format!("{e}={v}"),
            _ => e.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(go_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(go_duration("10"), Err("time: missing unit in duration \"10\"".into()));
        assert!(go_duration("").is_err());
        assert!(go_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(go_duration("-5s").unwrap_err().contains("negative"));
        assert!(go_duration("1..5s").is_err());
    }

    #[test]
    fn go_durations_print_like_go() {
        assert_eq!(go_duration_string(Duration::ZERO), "0s");
        assert_eq!(go_duration_string(Duration::from_secs(5)), "5s");
        assert_eq!(go_duration_string(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration_string(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration_string(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration_string(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration_string(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration_string(Duration::from_nanos(7)), "7ns");
    }

    #[test]
    fn memory_sizes_are_binary_units() {
        assert_eq!(mem_bytes("512m"), Ok(512 << 20));
        assert_eq!(mem_bytes("1g"), Ok(1 << 30));
        assert_eq!(mem_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(mem_bytes("2048"), Ok(2048));
        assert_eq!(mem_bytes("1.5k"), Ok(1536));
        assert!(mem_bytes("12x").is_err());
        assert_eq!(bytes_string(512 << 20), "512MiB");
        assert_eq!(bytes_string(1536 << 20), "1.5GiB");
        assert_eq!(bytes_string(100), "100B");
    }

    #[test]
    fn cpus_are_decimal_nano_cpus() {
        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus(".25"), Ok(250_000_000));
        assert_eq!(nano_cpus("0.0000000001"), Err("value is too precise".into()));
        assert!(nano_cpus("x").is_err());
        assert_eq!(cpus_string(500_000_000), "0.5");
        assert_eq!(cpus_string(2_000_000_000), "2");
    }

    #[test]
    fn short_port_syntax_follows_docker() {
        assert_eq!(ports("8080:80"), Ok(vec![port_config(PortProtocol::Tcp, 80, 8080)]));
        assert_eq!(ports("80"), Ok(vec![port_config(PortProtocol::Tcp, 80, 0)]));
        assert_eq!(ports("53:53/udp"), Ok(vec![port_config(PortProtocol::Udp, 53, 53)]));
        let range = ports("8080-8081:80-81").unwrap();
        assert_eq!(
            range.iter().map(|p| (p.published_port, p.target_port)).collect::<Vec<_>>(),
            [(8080, 80), (8081, 81)]
        );
        assert_eq!(ports("1.2.3.4:80:80"), Err("hostip is not supported".into()));
        assert_eq!(ports("8080:80/xyz"), Err("invalid proto: xyz".into()));
        assert_eq!(
            ports("8080-8082:80-81"),
            Err("invalid ranges specified for container and host Ports: 80-81 and 8080-8082".into())
        );
        let host_range = ports("8080-8081:80").unwrap();
        assert_eq!(
            host_range.iter().map(|p| (p.published_port, p.target_port)).collect::<Vec<_>>(),
            [(8080, 80), (8081, 80)]
        );
        assert!(ports("a:80").is_err());
    }

    #[test]
    fn long_port_syntax_follows_docker() {
        let p = ports("published=8080,target=80,protocol=udp,mode=host").unwrap();
        assert_eq!(
            p,
            vec![PortConfig {
                publish_mode: PublishMode::Host,
                ..port_config(PortProtocol::Udp, 80, 8080)
            }]
        );
        assert_eq!(ports("published=8080"), Err("missing mandatory field 'target'".into()));
        assert_eq!(ports("target=80,x=1"), Err("invalid field key: x".into()));
        assert!(
            ports("target=80,mode=weird")
                .unwrap_err()
                .contains("must be either 'ingress' or 'host'")
        );
    }

    #[test]
    fn secret_and_config_references_take_docker_defaults() {
        let s = file_ref("db_pass").unwrap().secret();
        assert_eq!(
            (s.secret_name.as_str(), s.target.as_str(), s.mode),
            ("db_pass", "db_pass", 0o444)
        );
        let c = file_ref("source=app,target=/etc/app.conf,mode=0400").unwrap().config();
        assert_eq!(
            (c.config_name.as_str(), c.target.as_str(), c.mode),
            ("app", "/etc/app.conf", 0o400)
        );
        assert_eq!(file_ref("source=app").unwrap().config().target, "/app");
        assert_eq!(file_ref("target=x"), Err("source is required".into()));
    }

    #[test]
    fn placement_preferences_are_spread_only() {
        assert_eq!(placement_pref("spread=node.labels.az").unwrap().spread, "node.labels.az");
        assert!(placement_pref("pack=x").unwrap_err().contains("only spread is supported"));
        assert!(placement_pref("spread").is_err());
    }

    #[test]
    fn env_without_value_is_taken_from_the_callers_environment() {
        let entries = vec!["A=1".to_owned(), "HOME".to_owned(), "MISSING".to_owned()];
        let got = env_entries(&entries, |k| (k == "HOME").then(|| "/root".to_owned()));
        assert_eq!(got, ["A=1", "HOME=/root", "MISSING"]);
        assert_eq!(env_key("A=1"), "A");
        assert!(label("=x").is_err());
    }
}
