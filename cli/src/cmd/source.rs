//! `flotilla source set | show | rm | refresh`: the Git repository the cluster deploys
//! from. It is cluster state (any manager that leads fetches it), set at `manager --init
//! --repo` or here; secrets given here are sealed by the leader and never shown again.

use super::api::{GlobalArgs, OutputFormat, block_on, print_json};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reconciler_api::source::{CredentialSet, SourceSet, SourceView};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `flotilla source`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(subcommand)]
    command: SourceCommand,
}

#[derive(Debug, Subcommand)]
enum SourceCommand {
    /// Set the Git source, or change some of its settings.
    Set(Box<SetArgs>),
    /// Show the Git source and what the leader last fetched.
    #[command(visible_alias = "inspect")]
    Show,
    /// Stop deploying from Git (what runs stays as it is).
    #[command(visible_alias = "remove")]
    Rm,
    /// Fetch now instead of at the next poll.
    Refresh,
}

#[derive(Debug, Args)]
struct SetArgs {
    /// The repository: a URL (https, ssh, file), a Git folder, or a plain folder whose files
    /// are deployed as they are (folders must exist on every manager).
    #[arg(long, value_name = "URL|DIR")]
    repo: Option<String>,
    /// The branch to deploy (a new source: main).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// The repository's folder that holds the stacks (a new source: stacks).
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
    /// How often the leader fetches, with jitter (a new source: 60s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    poll: Option<Duration>,
    /// A file holding the secret forges sign push webhooks with (POST /v1/webhook).
    #[arg(long, value_name = "FILE", conflicts_with = "no_webhook_secret")]
    webhook_secret_file: Option<PathBuf>,
    /// Forget the webhook secret.
    #[arg(long)]
    no_webhook_secret: bool,
    /// A file holding an ssh private key for an ssh URL.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["token_file", "no_credential"])]
    ssh_key_file: Option<PathBuf>,
    /// A file holding an https token (a password or personal access token).
    #[arg(long, value_name = "FILE", conflicts_with = "no_credential")]
    token_file: Option<PathBuf>,
    /// The user name that goes with --token-file (default: x-access-token).
    #[arg(long, requires = "token_file")]
    username: Option<String>,
    /// Forget the repository credential.
    #[arg(long)]
    no_credential: bool,
    /// Deploy only the stacks this runtime can run (the others are skipped and listed in
    /// `source show`); `any`: every stack.
    #[arg(long, value_name = "process|docker|any")]
    runtime: Option<String>,
}

/// A secret file's content without its final line break.
pub fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(text.to_owned())
}

/// A repository as the managers will open it: a URL as given, a folder as an absolute path.
pub fn repo_location(repo: &str) -> anyhow::Result<String> {
    if reconciler_source::repo::is_url(repo) {
        return Ok(repo.to_owned());
    }
    let path = std::fs::canonicalize(repo)
        .with_context(|| format!("{repo}: no such folder (a repository is a URL or a folder)"))?;
    Ok(path.display().to_string())
}

impl SetArgs {
    fn to_set(&self) -> anyhow::Result<SourceSet> {
        let secret = |p: &Option<PathBuf>| p.as_deref().map(read_secret_file).transpose();
        let credential = match (secret(&self.ssh_key_file)?, secret(&self.token_file)?) {
            (Some(key), _) => {
                Some(CredentialSet { kind: "ssh-key".into(), username: None, secret: key })
            }
            (None, Some(token)) => Some(CredentialSet {
                kind: "token".into(),
                username: Some(self.username.clone().unwrap_or_else(|| "x-access-token".into())),
                secret: token,
            }),
            (None, None) => None,
        };
        Ok(SourceSet {
            url: self.repo.as_deref().map(repo_location).transpose()?,
            branch: self.branch.clone(),
            path: self.path.clone(),
            poll: self.poll,
            webhook_secret: secret(&self.webhook_secret_file)?,
            clear_webhook_secret: self.no_webhook_secret,
            credential,
            clear_credential: self.no_credential,
            runtime: self.runtime.clone(),
            version: None,
        })
    }
}

/// Runs `flotilla source ...`.
pub fn run(args: SourceArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = global.client()?;
    let view = match args.command {
        SourceCommand::Set(set) => {
            let req = set.to_set()?;
            block_on(async { Ok(client.set_source(&req).await?) })?
        }
        SourceCommand::Show => block_on(async { Ok(client.source().await?) })?,
        SourceCommand::Rm => {
            block_on(async { Ok(client.remove_source().await?) })?;
            eprintln!("The cluster no longer deploys from Git; what runs stays as it is.");
            return Ok(ExitCode::SUCCESS);
        }
        SourceCommand::Refresh => {
            block_on(async { Ok(client.refresh_source().await?) })?;
            eprintln!("The leader fetches the source now.");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if global.output == OutputFormat::Json {
        print_json(&view)?;
    } else {
        print!("{}", render(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// `source show` for people.
pub fn render(view: &SourceView) -> String {
    let Some(s) = &view.source else {
        return "No Git source: the cluster deploys nothing from Git (flotilla source set --repo URL).\n"
            .into();
    };
    let mut rows = vec![
        ("Repository", s.url.clone()),
        ("Branch", s.branch.clone()),
        ("Path", s.path.clone()),
        ("Poll", humantime::format_duration(s.poll).to_string()),
        ("Credential", s.credential.clone().unwrap_or_else(|| "none".into())),
        ("Webhook", if s.webhook { "secret set (POST /v1/webhook)" } else { "no secret" }.into()),
    ];
    if let Some(r) = &s.runtime {
        rows.push(("Runtime", format!("{r} (stacks it cannot run are skipped)")));
    }
    let st = &view.status;
    let ago = || {
        let d = view.now.saturating_since(st.at);
        let d = Duration::from_secs(d.as_secs());
        format!("{} ago", humantime::format_duration(d))
    };
    let looked = st.at != reconciler_types::MonoTime::ZERO;
    match (&st.commit, looked) {
        (Some(c), true) => rows.push(("Commit", format!("{} (checked {})", short(c), ago()))),
        (Some(c), false) => rows.push(("Commit", short(c).to_owned())),
        (None, true) => rows.push(("Commit", format!("none (checked {})", ago()))),
        (None, false) => rows.push(("Commit", "not fetched yet".into())),
    }
    if let Some(e) = &st.error {
        rows.push(("Error", e.clone()));
    }
    for why in &st.skipped {
        rows.push(("Skipped", why.clone()));
    }
    rows.iter().map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:"))).collect()
}

fn short(c: &str) -> &str {
    c.get(..12).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_api::source::{SourceInfo, SourceStatusView};
    use reconciler_types::MonoTime;

    #[test]
    fn show_names_the_source_its_commit_and_its_error() {
        let view = SourceView {
            source: Some(SourceInfo {
                url: "https://example.com/ops.git".into(),
                branch: "main".into(),
                path: "stacks".into(),
                poll: Duration::from_secs(60),
                credential: None,
                webhook: true,
                runtime: None,
                version: 4,
            }),
            status: SourceStatusView {
                commit: Some("0123456789abcdef".into()),
                error: Some("cannot fetch".into()),
                at: MonoTime::from_secs(100),
                skipped: Vec::new(),
            },
            now: MonoTime::from_secs(105),
        };
        let text = render(&view);
        assert!(text.contains("Repository: https://example.com/ops.git\n"), "{text}");
        assert!(text.contains("Poll:       1m\n"), "{text}");
        assert!(text.contains("Commit:     0123456789ab (checked 5s ago)\n"), "{text}");
        assert!(text.contains("Error:      cannot fetch\n"), "{text}");
        let none = SourceView { source: None, ..view };
        assert!(render(&none).starts_with("No Git source"));
    }

    #[test]
    fn a_secret_file_loses_its_final_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "hush\n").unwrap();
        assert_eq!(read_secret_file(&f).unwrap(), "hush");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_secret_file(&f).is_err());
    }
}
