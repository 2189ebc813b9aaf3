//! Fetching a remote repository into the cache by running `git`, as Argo CD's repo server
//! does: git brings every transport (https, ssh, file), the user's credential helpers,
//! ssh-agent and `~/.ssh/config`, and flotilla links no TLS or SSH library of its own.
//! Reading (trees, blobs, revisions) stays in-process with libgit2.
//!
//! The cache folder is a bare repository with `origin` set to the URL; branches are fetched
//! to `refs/remotes/origin/*`, tags to `refs/tags/*`, with pruning, so a later fetch only
//! brings what is new. git never prompts: a missing credential is an error, not a hang.

use crate::SourceError;
use std::path::Path;
use std::process::{Command, Stdio};

/// Branches and tags, mirrored under `origin/`.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"];

/// What one fetch hands to `git` besides the user's own setup: environment variables and
/// `-c` settings that live only in the `git` process (a token in a credential helper that
/// reads it from the environment, an ssh command naming a key file that exists only for
/// the fetch). Its `Debug` never shows the values.
#[derive(Clone, Default)]
pub struct FetchAuth {
    /// Environment variables of the `git` process.
    pub env: Vec<(String, String)>,
    /// `-c key=value` settings.
    pub config: Vec<String>,
}

impl std::fmt::Debug for FetchAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("FetchAuth").field("env", &names).finish_non_exhaustive()
    }
}

/// Clones `url` bare into `path` when it is not there yet, then fetches it.
///
/// # Errors
/// When `git` cannot be run, the cache folder cannot be made, or the fetch fails (git's own
/// message, e.g. an unreachable host or refused credentials).
pub fn fetch(url: &str, path: &Path) -> Result<(), SourceError> {
    fetch_with(url, path, &FetchAuth::default())
}

/// [`fetch`] with credentials that exist only in the `git` process.
///
/// # Errors
/// As [`fetch`].
pub fn fetch_with(url: &str, path: &Path, auth: &FetchAuth) -> Result<(), SourceError> {
    let fail = |message: String| SourceError::Fetch { url: url.to_owned(), message };
    if !has_origin(path) {
        create(url, path).map_err(fail)?;
    }
    let mut args: Vec<&str> = Vec::new();
    for c in &auth.config {
        args.extend(["-c", c.as_str()]);
    }
    args.extend(["fetch", "--quiet", "--prune", "--no-write-fetch-head", "origin"]);
    args.extend(REFSPECS);
    git_env(path, &args, &auth.env).map_err(fail)?;
    // The remote's default branch becomes `origin/HEAD`; a remote without one (empty, or a
    // server that does not say) leaves `HEAD` to be named explicitly.
    let _ = git(path, &["remote", "set-head", "origin", "--auto"]);
    Ok(())
}

/// Whether `path` is a cache repository that was made in full (its config names `origin`).
fn has_origin(path: &Path) -> bool {
    std::fs::read_to_string(path.join("config"))
        .is_ok_and(|config| config.contains("[remote \"origin\"]"))
}

/// Makes the bare cache repository with its `origin` in a folder of its own and moves it into
/// place, so that an interrupted first clone never leaves a repository without `origin`.
fn create(url: &str, path: &Path) -> Result<(), String> {
    let cannot =
        |e: std::io::Error| format!("cannot create the cache folder {}: {e}", path.display());
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(cannot)?;
    git(&partial, &["init", "--quiet", "--bare"])?;
    git(&partial, &["remote", "add", "origin", url])?;
    let _ = std::fs::remove_dir_all(path);
    std::fs::rename(&partial, path).map_err(cannot)
}

/// Runs `git -C dir ARGS` without a terminal prompt; on failure, git's last words.
fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    git_env(dir, args, &[])
}

/// [`git`] with extra environment variables (after flotilla's own, so they win).
fn git_env(dir: &Path, args: &[&str], env: &[(String, String)]) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=60"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(batch_ssh())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git (is it installed and on PATH?): {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>();
    Err(if message.is_empty() {
        let verb = args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).unwrap_or(&"");
        format!("git {verb} failed: {}", out.status)
    } else {
        message.join("; ")
    })
}

/// Unless the user chose an ssh command (`GIT_SSH_COMMAND`, `GIT_SSH`), ssh runs in batch
/// mode, so a passphrase or host-key question is an error rather than a prompt nobody answers.
#[expect(
    clippy::disallowed_methods,
    reason = "git reads these itself; flotilla only defers to them"
)]
fn batch_ssh() -> Option<(&'static str, &'static str)> {
    let chosen =
        std::env::var_os("GIT_SSH_COMMAND").is_some() || std::env::var_os("GIT_SSH").is_some();
    (!chosen).then_some(("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_remote_is_an_error_naming_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            fetch("file:///nonexistent/flotilla-repo", &dir.path().join("c.git")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("file:///nonexistent/flotilla-repo"), "{text}");
        assert!(
            text.contains("does not appear to be a git repository") || text.contains("fatal"),
            "{text}"
        );
    }
}
