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

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers, each with an
/// optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such as `1h30m`,
/// `1.5s` or `300ms`; `0` alone is zero. Negative durations are refused (no service field
/// takes one).
///
/// # Errors
/// The text is not a duration, or it is negative.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let s = text.strip_prefix('+').unwrap_or(text);
    if s.starts_with('-') {
        return Err(format!("invalid duration {text:?}: it cannot be negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            other => return Err(format!("time: unknown unit {other:?} in duration {text:?}")),
        };
        let value: f64 = num.parse().map_err(|_| invalid())?;
        total += value * scale;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(invalid());
    }
    // Rounding to whole nanoseconds, as Go's integer arithmetic ends up.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Duration::from_nanos(total.round() as u64))
}

/// Formats a duration as Go's `Duration.String()` does: `0s`, `1.5s`, `1m30s`, `1h0m0s`,
/// `300ms`, `1.5µs`.
pub fn go_duration_string(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let secs_part = nanos % 60_000_000_000;
    let minutes = nanos / 60_000_000_000;
    let seconds = format!("{}s", fraction(secs_part, 1_000_000_000));
    match (minutes / 60, minutes % 60) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// `value / unit` with its fraction, trailing zeros removed (`1500, 1000` → `1.5`).
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.ilog10() as usize;
    let text = format!("{frac:0digits$}");
    format!("{whole}.{}", text.trim_end_matches('0'))
}

/// Parses a memory size as Docker's `RAMInBytes`: a number with an optional binary unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, any case, optionally followed by `i` and/or `b`).
///
/// # Errors
/// Not a size.
pub fn mem_bytes(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let t = text.trim_end_matches(['b', 'B']);
    let t = t.trim_end_matches(['i', 'I']);
    let (num, shift) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                _ => return Err(invalid()),
            };
            (&t[..t.len() - 1], shift)
        }
        _ => (t, 0),
    };
    let num = num.trim_end();
    let value: f64 = num.parse().map_err(|_| invalid())?;
    if num.is_empty() || !value.is_finite() || value < 0.0 {
        return Err(invalid());
    }
    let bytes = value * 2f64.powi(shift);
    if bytes > i64::MAX as f64 {
        return Err(invalid());
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(bytes as i64)
}

/// Parses a CPU count (`0.5`, `2`) into nano-CPUs, refusing more precision than 1e-9 as Docker
/// does.
///
/// # Errors
/// Not a number, negative, or too precise.
pub fn nano_cpus(text: &str) -> Result<i64, String> {
    let invalid = || format!("failed to parse {text} as a rational number");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
    let frac_nanos: i64 =
        if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| invalid())? };
    whole.checked_mul(1_000_000_000).and_then(|w| w.checked_add(frac_nanos)).ok_or_else(invalid)
}

/// Formats nano-CPUs as a decimal CPU count (`500000000` → `0.5`).
pub fn cpus_string(nano: i64) -> String {
    fraction(u128::from(nano.unsigned_abs()), 1_000_000_000)
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
    let (ports, proto) = match text.rsplit_once('/') {
        Some((p, proto)) => (p, protocol(proto)?),
        None => (text, PortProtocol::Tcp),
    };
    let (published, target) = match ports.rsplit_once(':') {
        Some((published, target)) => {
            if published.contains(':') {
                return Err("hostip is not supported".into());
            }
            (Some(port_range(published, text)?), port_range(target, text)?)
        }
        None => (None, port_range(ports, text)?),
    };
    let count = target.1 - target.0 + 1;
    if let Some(p) = published
        && p.1 - p.0 + 1 != count
        && count != 1
    {
        return Err(format!("invalid ranges specified for container and host Ports: {text}"));
    }
    let mut out = Vec::new();
    match published {
        None => {
            for t in target.0..=target.1 {
                out.push(port_config(proto, t, 0));
            }
        }
        Some(p) => {
            for (i, pub_port) in (p.0..=p.1).enumerate() {
                let offset = if count == 1 { 0 } else { u32::try_from(i).unwrap_or(0) };
                out.push(port_config(proto, target.0 + offset, pub_port));
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

fn port_number(text: &str, whole: &str) -> Result<u32, String> {
    match text.parse::<u16>() {
        Ok(p) => Ok(u32::from(p)),
        Err(_) => Err(format!("invalid containerPort: {whole}")),
    }
}

fn port_range(text: &str, whole: &str) -> Result<(u32, u32), String> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a, whole)?, port_number(b, whole)?);
            if b < a {
                return Err(format!("invalid range specified for port: {whole}"));
            }
            Ok((a, b))
        }
        None => {
            let p = port_number(text, whole)?;
            Ok((p, p))
        }
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
        assert!(ports("8080:80/xyz").unwrap_err().contains("invalid protocol"));
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
