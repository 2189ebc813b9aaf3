//! The Git source as cluster state: set at `manager --init --repo`, changed with
//! `flotilla source set`, removed with `flotilla source rm`. Secrets (the webhook secret, a
//! repository credential) are sealed with the cluster key here, on the leader, before they
//! are written; views never carry them.

use crate::error::ApiError;
use crate::keys::SymmetricKey;
use crate::manager::Manager;
use reconciler_api::source::{SourceInfo, SourceSet, SourceStatusView, SourceView};
use reconciler_orchestrator::state::ClusterState;
use reconciler_orchestrator::state::gitops::{
    CredentialKind, DEFAULT_POLL, GitSource, GitopsCommand, SealedCredential,
};
use reconciler_store::{Expect, StoreCommand, SystemClock};
use reconciler_types::Clock;
use std::time::Duration;

/// The branch a new source deploys when none is given.
pub const DEFAULT_BRANCH: &str = "main";
/// The stacks' folder of a new source when none is given.
pub const DEFAULT_PATH: &str = "stacks";
/// The shortest poll interval accepted.
pub const MIN_POLL: Duration = Duration::from_millis(100);

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn sealing(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("cannot seal a secret: {e}"))
}

/// The source `set` makes of `current` (`None`: there is none yet), secrets sealed with
/// `key`.
///
/// # Errors
/// [`ApiError::BadRequest`]: no URL for a new source, an empty field, a poll interval under
/// [`MIN_POLL`], an unknown credential kind, or a path that leaves the repository.
pub fn merged(
    current: Option<&GitSource>,
    set: &SourceSet,
    key: &SymmetricKey,
) -> Result<GitSource, ApiError> {
    let text = |given: &Option<String>, old: Option<&String>, default: &str, what: &str| {
        let v = given.clone().or_else(|| old.cloned()).unwrap_or_else(|| default.to_owned());
        let v = v.trim().to_owned();
        if v.is_empty() { Err(bad(format!("the source's {what} cannot be empty"))) } else { Ok(v) }
    };
    let url = match (&set.url, current) {
        (None, None) => return Err(bad("a new Git source needs a repository (--repo URL|DIR)")),
        _ => text(&set.url, current.map(|c| &c.url), "", "repository")?,
    };
    let branch = text(&set.branch, current.map(|c| &c.branch), DEFAULT_BRANCH, "branch")?;
    let path = text(&set.path, current.map(|c| &c.path), DEFAULT_PATH, "path")?;
    let path = clean_path(&path)?;
    let poll = set.poll.or(current.map(|c| c.poll)).unwrap_or(DEFAULT_POLL);
    if poll < MIN_POLL {
        return Err(bad(format!("the poll interval must be at least {MIN_POLL:?}")));
    }
    let webhook_secret = match (&set.webhook_secret, set.clear_webhook_secret) {
        (Some(_), true) => return Err(bad("a webhook secret cannot be both set and cleared")),
        (Some(s), false) if s.is_empty() => return Err(bad("the webhook secret is empty")),
        (Some(s), false) => Some(key.seal(s.as_bytes()).map_err(sealing)?),
        (None, true) => None,
        (None, false) => current.and_then(|c| c.webhook_secret.clone()),
    };
    let credential = match (&set.credential, set.clear_credential) {
        (Some(_), true) => return Err(bad("a credential cannot be both set and cleared")),
        (Some(c), false) => {
            let kind = match c.kind.as_str() {
                "ssh-key" => CredentialKind::SshKey,
                "token" => CredentialKind::Token,
                other => {
                    return Err(bad(format!(
                        "unknown credential kind {other:?}: ssh-key or token"
                    )));
                }
            };
            if c.secret.is_empty() {
                return Err(bad("the credential is empty"));
            }
            let sealed = key.seal(c.secret.as_bytes()).map_err(sealing)?;
            Some(SealedCredential { kind, username: c.username.clone(), sealed })
        }
        (None, true) => None,
        (None, false) => current.and_then(|c| c.credential.clone()),
    };
    let runtime = match set.runtime.as_deref().map(str::trim) {
        None => current.and_then(|c| c.runtime.clone()),
        Some("any") => None,
        Some(r @ ("process" | "docker")) => Some(r.to_owned()),
        Some(other) => {
            return Err(bad(format!("unknown runtime {other:?}: process, docker or any")));
        }
    };
    Ok(GitSource { url, branch, path, poll, credential, webhook_secret, runtime, version: 0 })
}

/// A stacks path inside the repository: `/`-separated, no `..`, no leading `/` (`.` is the
/// repository's root).
fn clean_path(path: &str) -> Result<String, ApiError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad(format!("the path {path:?} leaves the repository"))),
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() { ".".to_owned() } else { parts.join("/") })
}

/// The source without its secrets.
pub fn info(s: &GitSource) -> SourceInfo {
    SourceInfo {
        url: s.url.clone(),
        branch: s.branch.clone(),
        path: s.path.clone(),
        poll: s.poll,
        credential: s.credential.as_ref().map(|c| match c.kind {
            CredentialKind::SshKey => "ssh-key".to_owned(),
            CredentialKind::Token => "token".to_owned(),
        }),
        webhook: s.webhook_secret.is_some(),
        runtime: s.runtime.clone(),
        version: s.version,
    }
}

/// `GET /v1/source` from a state.
pub fn view(state: &ClusterState, now: reconciler_types::MonoTime) -> SourceView {
    let st = &state.source_status;
    SourceView {
        source: state.source.as_ref().map(info),
        status: SourceStatusView {
            commit: st.commit.clone(),
            error: st.error.clone(),
            at: st.at,
            skipped: st.skipped.clone(),
        },
        now,
    }
}

/// The command that sets the source `set` makes of the current one.
///
/// # Errors
/// As [`merged`].
pub fn set_command(
    state: &ClusterState,
    set: &SourceSet,
    key: &SymmetricKey,
) -> Result<StoreCommand, ApiError> {
    let current = state.source.as_ref();
    let source = merged(current, set, key)?;
    let expected = match (set.version, current) {
        (Some(v), _) => Expect::Version(v),
        (None, Some(c)) => Expect::Version(c.version),
        (None, None) => Expect::Absent,
    };
    Ok(StoreCommand::Gitops(Box::new(GitopsCommand::SetSource { source: Some(source), expected })))
}

impl Manager {
    /// `source show`, from this manager's state.
    pub fn source_view(&self) -> SourceView {
        let now = SystemClock::new().now();
        self.node.state.read(|s| view(&s.state, now))
    }

    /// `source set` (leader only): the source changed as asked, its secrets sealed; the
    /// loop fetches the new source at once.
    ///
    /// # Errors
    /// As [`merged`]; `Conflict` when the source changed since `set.version`.
    pub async fn set_source(&self, set: &SourceSet) -> Result<SourceView, ApiError> {
        let cmd = self.node.state.read(|s| set_command(&s.state, set, &self.cluster_key))?;
        self.write(cmd).await?;
        self.gitops.refresh.notify_one();
        Ok(self.source_view())
    }

    /// `source rm` (leader only): the cluster stops deploying from Git; what runs stays.
    ///
    /// # Errors
    /// `NotFound` without a source, or a failed write.
    pub async fn remove_source(&self) -> Result<(), ApiError> {
        let version = self.node.state.read(|s| s.state.source.as_ref().map(|s| s.version));
        let Some(version) = version else {
            return Err(ApiError::NotFound("the cluster has no Git source".into()));
        };
        let expected = Expect::Version(version);
        let cmd =
            StoreCommand::Gitops(Box::new(GitopsCommand::SetSource { source: None, expected }));
        self.write(cmd).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SymmetricKey {
        SymmetricKey::generate().unwrap()
    }

    #[test]
    fn a_new_source_gets_the_defaults_and_needs_a_url() {
        let k = key();
        let err = merged(None, &SourceSet::default(), &k).unwrap_err();
        assert!(err.to_string().contains("needs a repository"), "{err}");
        let set = SourceSet { url: Some("https://example.com/r.git".into()), ..Default::default() };
        let s = merged(None, &set, &k).unwrap();
        assert_eq!((s.branch.as_str(), s.path.as_str(), s.poll), ("main", "stacks", DEFAULT_POLL));
        assert_eq!((s.webhook_secret, s.credential), (None, None));
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_seals_secrets() {
        let k = key();
        let set = SourceSet {
            url: Some("https://example.com/r.git".into()),
            webhook_secret: Some("hush".into()),
            ..Default::default()
        };
        let first = merged(None, &set, &k).unwrap();
        let sealed = first.webhook_secret.clone().unwrap();
        assert_ne!(sealed, b"hush".to_vec());
        assert_eq!(k.open(&sealed).unwrap(), b"hush".to_vec());
        let change = SourceSet { branch: Some("prod".into()), ..Default::default() };
        let second = merged(Some(&first), &change, &k).unwrap();
        assert_eq!(
            (second.url.as_str(), second.branch.as_str()),
            ("https://example.com/r.git", "prod")
        );
        assert_eq!(second.webhook_secret, first.webhook_secret);
        let clear = SourceSet { clear_webhook_secret: true, ..Default::default() };
        assert_eq!(merged(Some(&second), &clear, &k).unwrap().webhook_secret, None);
        assert!(info(&second).credential.is_none() && info(&second).webhook);
    }

    #[test]
    fn a_runtime_filter_is_kept_until_changed_and_any_clears_it() {
        let k = key();
        let set = SourceSet {
            url: Some("/srv/repo".into()),
            runtime: Some("process".into()),
            ..Default::default()
        };
        let first = merged(None, &set, &k).unwrap();
        assert_eq!(first.runtime.as_deref(), Some("process"));
        let other = SourceSet { branch: Some("prod".into()), ..Default::default() };
        assert_eq!(merged(Some(&first), &other, &k).unwrap().runtime.as_deref(), Some("process"));
        let any = SourceSet { runtime: Some("any".into()), ..Default::default() };
        assert_eq!(merged(Some(&first), &any, &k).unwrap().runtime, None);
        let bad = SourceSet { runtime: Some("vm".into()), ..Default::default() };
        assert!(merged(Some(&first), &bad, &k).is_err());
    }

    #[test]
    fn paths_stay_inside_the_repository_and_polls_are_not_too_short() {
        let k = key();
        let with = |path: &str| SourceSet {
            url: Some("/srv/repo".into()),
            path: Some(path.into()),
            ..Default::default()
        };
        assert_eq!(merged(None, &with("./deploy//stacks/"), &k).unwrap().path, "deploy/stacks");
        assert_eq!(merged(None, &with("/"), &k).unwrap().path, ".");
        assert!(merged(None, &with("../x"), &k).is_err());
        let fast = SourceSet { poll: Some(Duration::from_millis(1)), ..with("stacks") };
        assert!(merged(None, &fast, &k).is_err());
    }
}
