//! What every command that talks to a manager shares: the global `-H/--host`, `--token` and
//! `--output` flags, the API client, and a tokio runtime for the call.

use anyhow::Context;
use clap::{Args, ValueEnum};
use reconciler_api::ApiClient;
use std::future::Future;
use std::time::Duration;

/// The manager port flotilla uses by default (Swarm's cluster management port).
pub const DEFAULT_HOST: &str = "127.0.0.1:2377";

/// Global flags.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The manager to talk to (host:port or URL).
    #[arg(short = 'H', long = "host", env = "FLOTILLA_HOST", global = true, default_value = DEFAULT_HOST)]
    pub host: String,
    /// The API token (a manager writes it to DATA_DIR/api-token); for `manager --join`, the
    /// manager join token.
    #[arg(long, env = "FLOTILLA_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and messages for people.
    Text,
    /// JSON for programs.
    Json,
    /// A pull-request comment (`reconcile --dry-run`; other commands print text).
    Markdown,
}

impl GlobalArgs {
    /// A client of the manager named by `--host`, with `--token`.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let token = self.token.as_deref().context(
            "no API token: pass --token or set FLOTILLA_TOKEN (a manager writes it to DATA_DIR/api-token)",
        )?;
        Ok(ApiClient::new(&self.host, token, Duration::from_secs(30))?)
    }
}

/// Runs one future on a fresh runtime.
pub fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(f)
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Formats rows as Docker's tables do (Go's tabwriter with a minimum width of 10 and a
/// padding of 3): every column but the last is as wide as its widest cell plus 3, and at
/// least 10 characters; trailing blanks are trimmed.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i != last {
                let column = (w + PADDING).max(MIN_WIDTH);
                out.extend(std::iter::repeat_n(' ', column - width(cell)));
            }
        }
        out.trim_end().to_owned()
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_as_dockers_tabwriter() {
        let rows =
            vec![vec!["abc".to_owned(), "x".to_owned()], vec!["a".to_owned(), String::new()]];
        assert_eq!(table(&["ID", "NAME"], &rows), "ID        NAME\nabc       x\na");
        let wide = vec![vec!["abcdefghijkl".to_owned(), "…".to_owned(), "z".to_owned()]];
        assert_eq!(
            table(&["A", "B", "C"], &wide),
            "A              B         C\nabcdefghijkl   …         z"
        );
    }
}
