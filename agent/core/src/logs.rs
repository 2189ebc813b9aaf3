//! A task's log as the agent keeps it: one JSON record a line
//! (`{"time":<ns since the epoch>,"stream":"stdout","log":"text"}`), in a file that rotates
//! at a size limit and keeps a bounded number of old files (Docker's `json-file` driver's
//! `max-size` / `max-file`). Output is cut into lines, and a line longer than 16 KiB into
//! pieces, as Docker does.

use reconciler_types::{LogDriver, MonoTime};
use serde::{Deserialize, Serialize};

/// The longest piece of a line kept as one record (Docker's 16 KiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Which output a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a task's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When it was read.
    pub time: MonoTime,
    /// stdout or stderr.
    pub stream: Stream,
    /// The text, without its line break.
    pub log: String,
}

impl LogRecord {
    /// The record as one line of the file, with its line break.
    pub fn encode(&self) -> String {
        // A record of plain fields always serializes.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Reads one line of the file; `None` for a line that is not a record (a torn write).
    pub fn decode(line: &str) -> Option<LogRecord> {
        serde_json::from_str(line).ok()
    }
}

/// Cuts a byte stream into lines (invalid UTF-8 replaced), long lines into pieces.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Adds bytes; answers the complete lines they finish.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                out.push(self.take());
            } else {
                self.buf.push(b);
                if self.buf.len() >= MAX_LINE_BYTES {
                    out.push(self.take());
                }
            }
        }
        out
    }

    /// The unfinished last line, at the end of the stream.
    pub fn finish(&mut self) -> Option<String> {
        (!self.buf.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        line.strip_suffix('\r').map(str::to_owned).unwrap_or(line)
    }
}

/// How large a task's log may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Rotate the file once it reaches this many bytes.
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
}

impl Default for LogLimits {
    /// 10 MiB, 3 files.
    fn default() -> Self {
        LogLimits { max_size: 10 * 1024 * 1024, max_files: 3 }
    }
}

/// A bad size or count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log option {option}={value:?}: {reason}")]
pub struct LogLimitError {
    /// The option.
    pub option: &'static str,
    /// Its value.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

impl LogLimits {
    /// Whether a file of `size` bytes must rotate before `next` more bytes are written.
    pub fn must_rotate(&self, size: u64, next: u64) -> bool {
        size > 0 && size.saturating_add(next) > self.max_size
    }

    /// These limits, overridden by a service's `logging:` options (`max-size`, `max-file`)
    /// when its driver is `json-file` or `local` (or not named).
    ///
    /// # Errors
    /// An option that is not a size or a count.
    pub fn with_driver(self, driver: Option<&LogDriver>) -> Result<LogLimits, LogLimitError> {
        let Some(d) = driver else { return Ok(self) };
        if !matches!(d.name.as_str(), "" | "json-file" | "local") {
            return Ok(self);
        }
        let mut out = self;
        if let Some(v) = d.options.get("max-size") {
            out.max_size = parse_size(v).map_err(|reason| LogLimitError {
                option: "max-size",
                value: v.clone(),
                reason,
            })?;
        }
        if let Some(v) = d.options.get("max-file") {
            out.max_files = v.parse().ok().filter(|n| *n >= 1).ok_or(LogLimitError {
                option: "max-file",
                value: v.clone(),
                reason: "expected a whole number of files, at least 1",
            })?;
        }
        Ok(out)
    }
}

/// Docker's sizes: a number with an optional `k`, `m` or `g` (or `kb`, `mb`, `gb`, any
/// case), in powers of 1024.
///
/// # Errors
/// Anything else, or zero.
pub fn parse_size(s: &str) -> Result<u64, &'static str> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let factor: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err("expected a size such as 10m (units k, m, g)"),
    };
    let n: u64 = digits.trim().parse().map_err(|_| "expected a size such as 10m")?;
    match n.checked_mul(factor) {
        Some(0) => Err("the size must be more than zero"),
        Some(v) => Ok(v),
        None => Err("the size is too large"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn records_round_trip_through_one_line() {
        let r = LogRecord {
            time: MonoTime::from_millis(1_700_000_000_123),
            stream: Stream::Stderr,
            log: "a \"q\"".into(),
        };
        let line = r.encode();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        assert_eq!(LogRecord::decode(line.trim_end()), Some(r));
        assert_eq!(LogRecord::decode("{\"time\":1,"), None);
    }

    #[test]
    fn output_is_cut_into_lines_and_long_lines_into_pieces() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"one\ntw"), ["one"]);
        assert_eq!(s.push(b"o\r\nthree"), ["two"]);
        assert_eq!(s.finish().as_deref(), Some("three"));
        assert_eq!(s.finish(), None);
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let pieces = s.push(&long);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].len(), MAX_LINE_BYTES);
        assert_eq!(s.finish().map(|l| l.len()), Some(10));
        assert_eq!(s.push(&[0xff, b'\n']), ["\u{fffd}"]);
    }

    #[test]
    fn sizes_parse_as_docker_writes_them() {
        assert_eq!(parse_size("10m"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("1gb"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5t").is_err());
    }

    #[test]
    fn a_services_logging_options_override_the_agents_limits() {
        let opts = |pairs: &[(&str, &str)]| LogDriver {
            name: "json-file".into(),
            options: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        let base = LogLimits::default();
        let got = base.with_driver(Some(&opts(&[("max-size", "1k"), ("max-file", "5")]))).unwrap();
        assert_eq!(got, LogLimits { max_size: 1024, max_files: 5 });
        assert!(base.with_driver(Some(&opts(&[("max-file", "0")]))).is_err());
        let syslog = LogDriver { name: "syslog".into(), ..opts(&[("max-size", "junk")]) };
        assert_eq!(base.with_driver(Some(&syslog)).unwrap(), base);
        assert!(base.must_rotate(10 * 1024 * 1024 - 1, 2));
        assert!(!base.must_rotate(0, u64::MAX));
    }
}
