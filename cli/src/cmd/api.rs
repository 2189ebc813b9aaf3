//! What every command that talks to a manager shares: the global `-H/--host`, `--token` and
//! `--output` flags, the API client, and a tokio runtime for the call.
//!
//! Without `-H`/`FLOTILLA_HOST`, a command talks to the cluster `flotilla up` runs with the
//! default data folder (its address in `DATA/host`), and for that manager only it takes the
//! API token and the CA from `DATA/manager/` when `--token` and `--tlscacert` (or their
//! variables) are not given; otherwise to 127.0.0.1:2377.

use anyhow::Context;
use clap::{Args, ValueEnum};
use reconciler_api::ApiClient;
use reconciler_manager::identity::API_TOKEN_FILE;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// The manager port flotilla uses by default (Swarm's cluster management port).
pub const DEFAULT_HOST: &str = "127.0.0.1:2377";

/// The file of `flotilla up`'s data folder that holds its manager's address.
pub const HOST_FILE: &str = "host";

/// `flotilla up`'s default data folder: `$XDG_STATE_HOME/flotilla`, else
/// `~/.local/state/flotilla`.
pub fn default_data_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("XDG_STATE_HOME")
        .filter(|d| d.is_absolute())
        .map(|d| d.join("flotilla"))
        .or_else(|| env("HOME").map(|h| h.join(".local/state/flotilla")))
}

/// The manager `flotilla up` runs with the default data folder, when there is one.
struct Local {
    host: String,
    manager_dir: PathBuf,
}

fn local() -> Option<Local> {
    let dir = default_data_dir()?;
    let host = std::fs::read_to_string(dir.join(HOST_FILE)).ok()?.trim().to_owned();
    (!host.is_empty()).then(|| Local { host, manager_dir: dir.join("manager") })
}

fn bare(host: &str) -> &str {
    let host = host.strip_prefix("https://").unwrap_or(host);
    host.strip_suffix('/').unwrap_or(host)
}

/// Global flags.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The manager to talk to (host:port or URL).
    /// (default: the cluster of `flotilla up`, else 127.0.0.1:2377)
    #[arg(short = 'H', long = "host", env = "FLOTILLA_HOST", global = true)]
    pub host: Option<String>,
    /// The API token (a manager writes it to DATA_DIR/api-token); for `manager --join`, the
    /// manager join token.
    #[arg(long, env = "FLOTILLA_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Trust managers whose certificate comes from this CA (a manager writes it to
    /// DATA_DIR/ca.pem, beside api-token).
    #[arg(long, value_name = "FILE", env = "FLOTILLA_TLSCACERT", global = true)]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Authenticate with this certificate (a manager's DATA_DIR/node-cert.pem) instead of
    /// the API token.
    #[arg(long, value_name = "FILE", env = "FLOTILLA_TLSCERT", global = true, requires = "tlskey")]
    pub tlscert: Option<std::path::PathBuf>,
    /// The key of --tlscert.
    #[arg(long, value_name = "FILE", env = "FLOTILLA_TLSKEY", global = true, requires = "tlscert")]
    pub tlskey: Option<std::path::PathBuf>,
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
    /// The manager to talk to: `--host`, else the one `flotilla up` runs with the default
    /// data folder, else [`DEFAULT_HOST`].
    pub fn host(&self) -> String {
        self.host.clone().or_else(|| local().map(|l| l.host)).unwrap_or_else(|| DEFAULT_HOST.into())
    }

    /// The data folder of `flotilla up`'s manager when the host is that manager.
    fn local_manager(&self) -> Option<PathBuf> {
        let l = local()?;
        (bare(&self.host()) == bare(&l.host)).then_some(l.manager_dir)
    }

    /// `--tlscacert`, else the CA of `flotilla up`'s manager when the host is that manager.
    fn ca_file(&self) -> Option<PathBuf> {
        self.tlscacert.clone().or_else(|| {
            let ca = self.local_manager()?.join("ca.pem");
            ca.is_file().then_some(ca)
        })
    }

    /// A client of the manager named by `--host`, with `--token` or `--tlscert`: over TLS
    /// verified against `--tlscacert`, or plain for an `http://` host (a manager started
    /// with `--insecure-listen`). For `flotilla up`'s manager, its token and CA files are
    /// the defaults.
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        let token = match (&self.token, &self.tlscert) {
            (Some(t), _) => t.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => {
                let file = self.local_manager().map(|d| d.join(API_TOKEN_FILE));
                match file.and_then(|f| std::fs::read_to_string(f).ok()) {
                    Some(t) => t.trim().to_owned(),
                    None => anyhow::bail!(
                        "no API token: pass --token or set FLOTILLA_TOKEN (a manager writes it to DATA_DIR/api-token), or --tlscert/--tlskey"
                    ),
                }
            }
        };
        self.client_with(&token)
    }

    /// A client of the manager named by `--host` with this bearer token (empty: none).
    pub fn client_with(&self, token: &str) -> anyhow::Result<ApiClient> {
        let timeout = Duration::from_secs(30);
        let host = self.host();
        if host.starts_with("http://") {
            return Ok(ApiClient::new(&host, token, timeout)?);
        }
        let Some(ca_file) = &self.ca_file() else {
            anyhow::bail!(
                "the manager at {host} speaks TLS: pass --tlscacert DATA_DIR/ca.pem (a manager writes it beside api-token), or use http://HOST for a manager started with --insecure-listen"
            );
        };
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
        };
        let ca = read(ca_file)?;
        let pair = match (&self.tlscert, &self.tlskey) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            _ => None,
        };
        let pair = pair.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
        Ok(ApiClient::with_tls(&host, token, timeout, &ca, pair)?)
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
