//! `flotilla service logs SERVICE|TASK [-f] [--tail N] [-t] [--since T] [--raw]`: the lines
//! of a service's tasks (or one task's), streamed through the manager, printed as Docker
//! prints them:
//!
//! ```text
//! [2024-03-01T10:00:00.5Z ]shop_web.1.7ac1d3e5b2f4@node-1    | GET /
//! ```
//!
//! the task's name (`<service>.<slot>.<task id>`, the id cut to 12 characters unless
//! `--no-trunc`, left out with `--no-task-ids`), `@` its node's hostname (its id with
//! `--no-resolve`), padded to the width of the replica count, then `    | ` and the line;
//! stderr lines go to stderr. `--raw` prints the lines alone.

use super::super::api::GlobalArgs;
use anyhow::{Context, bail};
use clap::Args;
use reconciler_api::dispatcher::{LogStream, ServiceLogLine};
use reconciler_api::logs::{LogsItem, ServiceLogsQuery};
use reconciler_types::MonoTime;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `service logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for
    /// 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Do not neatly format logs
    #[arg(long)]
    raw: bool,
    /// Do not include task IDs in output
    #[arg(long = "no-task-ids")]
    no_task_ids: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Do not map IDs to Names in output
    #[arg(long = "no-resolve")]
    no_resolve: bool,
    /// The service or task
    target: String,
}

/// How lines are printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    /// `-t`.
    pub timestamps: bool,
    /// `--raw`.
    pub raw: bool,
    /// `--no-task-ids`.
    pub no_task_ids: bool,
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `--no-resolve`.
    pub no_resolve: bool,
    /// The width slots are padded to (digits of the replica count, at least 1).
    pub width: usize,
}

/// Go's RFC3339Nano (what Docker prints): UTC, the fraction without trailing zeros.
pub fn rfc3339_nano(t: MonoTime) -> String {
    let text = humantime::format_rfc3339_nanos(UNIX_EPOCH + t.0).to_string();
    let Some((whole, frac)) = text.trim_end_matches('Z').split_once('.') else { return text };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{whole}Z") } else { format!("{whole}.{frac}Z") }
}

/// One line as Docker prints it (without the line break).
pub fn format_line(l: &ServiceLogLine, f: &Format) -> String {
    let mut out = String::new();
    if f.timestamps {
        out.push_str(&rfc3339_nano(l.line.timestamp));
        out.push(' ');
    }
    if !f.raw {
        out.push_str(&format!("{}.{}", l.service, l.slot));
        if !f.no_task_ids {
            let id = l.line.task_id.as_str();
            let id = if f.no_trunc { id } else { id.get(..12).unwrap_or(id) };
            out.push('.');
            out.push_str(id);
        }
        let node = if f.no_resolve || l.node_hostname.is_empty() {
            l.node_id.as_str()
        } else {
            l.node_hostname.as_str()
        };
        out.push('@');
        out.push_str(node);
        let digits = l.slot.to_string().len();
        out.push_str(&" ".repeat(f.width.saturating_sub(digits)));
        out.push_str("    | ");
    }
    out.push_str(&l.line.line);
    out
}

/// `--since`: an RFC 3339 time, a Unix time (`1700000000.5`), or a duration before now.
pub fn parse_since(s: &str, now: SystemTime) -> anyhow::Result<MonoTime> {
    let epoch = |t: SystemTime| MonoTime(t.duration_since(UNIX_EPOCH).unwrap_or_default());
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(epoch(t));
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs >= 0.0
    {
        return Ok(MonoTime(Duration::from_secs_f64(secs)));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(epoch(now.checked_sub(d).unwrap_or(UNIX_EPOCH)));
    }
    bail!("--since {s:?}: expected a time (2013-01-02T13:23:37Z), a Unix time or a duration (42m)")
}

fn query(a: &LogsArgs) -> anyhow::Result<ServiceLogsQuery> {
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        n => Some(
            n.parse::<i64>().with_context(|| format!("--tail {n:?}: expected a number or all"))?,
        )
        .and_then(|n| u64::try_from(n).ok()),
    };
    let since = a.since.as_deref().map(|s| parse_since(s, SystemTime::now())).transpose()?;
    let since_ns = since.map(|t| u64::try_from(t.0.as_nanos()).unwrap_or(u64::MAX));
    Ok(ServiceLogsQuery { target: a.target.clone(), follow: a.follow, tail, since_ns })
}

/// Runs `flotilla service logs`.
pub fn run(a: LogsArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let q = query(&a)?;
    let mut format = Format {
        timestamps: a.timestamps,
        raw: a.raw,
        no_task_ids: a.no_task_ids,
        no_trunc: a.no_trunc,
        no_resolve: a.no_resolve,
        width: 1,
    };
    super::super::api::block_on(async move {
        let mut resp = client.service_logs(&q).await?;
        let mut pending = Vec::new();
        while let Some(chunk) = resp.chunk().await.context("reading the logs")? {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                print_item(&line, &mut format)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_item(line: &[u8], format: &mut Format) -> anyhow::Result<()> {
    let item: LogsItem =
        serde_json::from_slice(line).context("the manager sent a malformed log line")?;
    match item {
        LogsItem::Target(t) => format.width = t.replicas.max(1).to_string().len(),
        LogsItem::Line(l) => {
            let text = format_line(&l, format);
            // A reader that went away (`| head`) ends the command quietly.
            let _ = match l.line.stream {
                LogStream::Stdout => writeln!(std::io::stdout(), "{text}"),
                LogStream::Stderr => writeln!(std::io::stderr(), "{text}"),
            };
        }
        LogsItem::Warning(w) => eprintln!("warning: {w}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_api::dispatcher::LogLine;
    use reconciler_types::{NodeId, TaskId};

    fn line(slot: u64, stream: LogStream) -> ServiceLogLine {
        ServiceLogLine {
            service: "shop_web".into(),
            slot,
            node_id: NodeId::new("n0d3id"),
            node_hostname: "node-1".into(),
            line: LogLine {
                task_id: TaskId::new("7ac1d3e5b2f4a9c8d7e6"),
                timestamp: MonoTime(Duration::from_millis(1_709_287_200_500)),
                stream,
                line: "GET /".into(),
            },
        }
    }

    #[test]
    fn lines_carry_dockers_prefix_padded_to_the_replica_count() {
        let f = Format { width: 2, ..Format::default() };
        assert_eq!(
            format_line(&line(3, LogStream::Stdout), &f),
            "shop_web.3.7ac1d3e5b2f4@node-1     | GET /"
        );
        assert_eq!(
            format_line(&line(12, LogStream::Stdout), &f),
            "shop_web.12.7ac1d3e5b2f4@node-1    | GET /"
        );
        let g = Format { no_task_ids: true, no_resolve: true, width: 1, ..Format::default() };
        assert_eq!(format_line(&line(1, LogStream::Stderr), &g), "shop_web.1@n0d3id    | GET /");
        let full = Format { no_trunc: true, width: 1, ..Format::default() };
        assert!(format_line(&line(1, LogStream::Stdout), &full).contains(".7ac1d3e5b2f4a9c8d7e6@"));
    }

    #[test]
    fn timestamps_and_raw_print_as_docker_does() {
        let t = Format { timestamps: true, raw: true, width: 1, ..Format::default() };
        assert_eq!(format_line(&line(1, LogStream::Stdout), &t), "2024-03-01T10:00:00.5Z GET /");
        assert_eq!(rfc3339_nano(MonoTime::from_secs(1_709_287_200)), "2024-03-01T10:00:00Z");
    }

    #[test]
    fn since_reads_times_unix_times_and_durations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_since("2024-03-01T10:00:00Z", now).unwrap(),
            MonoTime::from_secs(1_709_287_200)
        );
        assert_eq!(
            parse_since("1700000000.5", now).unwrap(),
            MonoTime::from_millis(1_700_000_000_500)
        );
        assert_eq!(parse_since("10m", now).unwrap(), MonoTime::from_secs(1_000_000 - 600));
        assert!(parse_since("yesterday", now).is_err());
    }
}
