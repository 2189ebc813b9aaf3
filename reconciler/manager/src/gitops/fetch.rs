//! One look at the source, on a blocking thread: fetch (the `git` program for a URL, a
//! snapshot for a plain folder, nothing for a local repository), resolve the branch, and —
//! when the head moved since the last look — read and convert its stacks. A credential is
//! opened only for the `git` process of the fetch: a token through the environment, an ssh
//! key through a file (owner-only) that is removed as soon as the fetch ends.

use crate::keys::SymmetricKey;
use reconciler_gitops::Desired;
use reconciler_orchestrator::state::gitops::{CredentialKind, GitSource};
use reconciler_source::repo::{cache_path, is_repository, is_url};
use reconciler_source::{CommitInfo, FetchAuth, Repo};
use std::path::{Path, PathBuf};

/// What one look found.
pub enum Looked {
    /// The head is the commit already read.
    Same(String),
    /// A new head, read.
    New(Box<Fetched>),
}

/// A head, read and converted.
pub struct Fetched {
    /// The commit.
    pub commit: String,
    /// Its author and subject.
    pub info: CommitInfo,
    /// Its stacks (secret values kept, to be sealed).
    pub desired: Desired,
}

/// Where a source's repositories live in the cache.
fn store(cache: &Path, url: &str) -> PathBuf {
    cache_path(cache, url)
}

/// Fetches `source` and reads its head unless it is `known`.
///
/// # Errors
/// A message for the source status: the fetch failed, the branch is missing, the folder
/// cannot be read, or `flotilla.yaml` is broken.
pub fn look(
    source: &GitSource,
    cache: &Path,
    key: &SymmetricKey,
    known: Option<&str>,
) -> Result<Looked, String> {
    let (repo, commit) = open(source, cache, key)?;
    if known == Some(commit.as_str()) {
        return Ok(Looked::Same(commit));
    }
    let mut desired = reconciler_gitops::desired(&repo, &commit, &source.path, None, true)
        .map_err(|e| e.to_string())?;
    if let Some(runtime) = &source.runtime {
        reconciler_gitops::skip_unrunnable(&mut desired, runtime, &installed);
    }
    if !desired.path_found {
        return Err(format!(
            "{} has no folder {:?} at {}",
            repo.display,
            source.path,
            reconciler_gitops::short(&commit)
        ));
    }
    let info = repo.commit_info(&commit).map_err(|e| e.to_string())?;
    Ok(Looked::New(Box::new(Fetched { commit, info, desired })))
}

/// Whether the process runtime of this machine (`flotilla up`'s, which shares the
/// manager's process) finds `program`: an absolute path to a file, a name on `PATH`; a
/// relative path (to the task's folder) is taken as found. A flag (`--config.file=...`,
/// the arguments of an image's own entrypoint) is no program.
fn installed(program: &str) -> bool {
    let path = Path::new(program);
    if program.is_empty() || program.starts_with('-') {
        return false;
    }
    if program.contains('/') {
        return !path.is_absolute() || path.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| d.join(program).is_file()))
}

/// The repository of `source` and its head.
fn open(source: &GitSource, cache: &Path, key: &SymmetricKey) -> Result<(Repo, String), String> {
    if is_url(&source.url) {
        let auth = Auth::open(source, cache, key)?;
        let repo = Repo::open_with(&source.url, cache, &auth.fetch);
        drop(auth);
        let repo = repo.map_err(|e| e.to_string())?;
        let commit = repo.resolve(&source.branch).map_err(|e| e.to_string())?;
        return Ok((repo, commit));
    }
    let dir = Path::new(&source.url);
    if is_repository(dir) {
        let repo = Repo::open(&source.url, cache).map_err(|e| e.to_string())?;
        let commit = repo.resolve(&source.branch).map_err(|e| e.to_string())?;
        return Ok((repo, commit));
    }
    if !dir.is_dir() {
        return Err(format!("{}: no such folder on this manager", source.url));
    }
    let at = store(cache, &format!("folder:{}", source.url));
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    reconciler_source::folder::snapshot(dir, &at).map_err(|e| e.to_string())
}

/// A credential opened for one fetch; the key file (if any) is removed on drop.
struct Auth {
    fetch: FetchAuth,
    key_file: Option<PathBuf>,
}

impl Auth {
    fn open(source: &GitSource, cache: &Path, key: &SymmetricKey) -> Result<Auth, String> {
        let Some(c) = &source.credential else {
            return Ok(Auth { fetch: FetchAuth::default(), key_file: None });
        };
        let secret = key.open(&c.sealed).map_err(|e| format!("cannot open the credential: {e}"))?;
        let secret = String::from_utf8(secret).map_err(|_| "the credential is not text")?;
        match c.kind {
            CredentialKind::Token => {
                let user = c.username.clone().unwrap_or_else(|| "x-access-token".into());
                let helper = "!f() { echo \"username=${FLOTILLA_GIT_USERNAME}\"; echo \"password=${FLOTILLA_GIT_PASSWORD}\"; }; f";
                Ok(Auth {
                    fetch: FetchAuth {
                        env: vec![
                            ("FLOTILLA_GIT_USERNAME".into(), user),
                            ("FLOTILLA_GIT_PASSWORD".into(), secret),
                        ],
                        config: vec![
                            "credential.helper=".into(),
                            format!("credential.helper={helper}"),
                        ],
                    },
                    key_file: None,
                })
            }
            CredentialKind::SshKey => {
                std::fs::create_dir_all(cache).map_err(|e| e.to_string())?;
                let nonce = crate::token::new_hex(8).map_err(|e| e.to_string())?;
                let file = cache.join(format!("key-{nonce}"));
                let mut text = secret;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                crate::identity::write_private_file(&file, text.as_bytes())
                    .map_err(|e| format!("cannot write the ssh key for the fetch: {e}"))?;
                let ssh =
                    format!("ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes", file.display());
                Ok(Auth {
                    fetch: FetchAuth {
                        env: vec![("GIT_SSH_COMMAND".into(), ssh)],
                        config: Vec::new(),
                    },
                    key_file: Some(file),
                })
            }
        }
    }
}

impl Drop for Auth {
    fn drop(&mut self) {
        if let Some(f) = &self.key_file {
            let _gone = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_on_path_or_by_its_absolute_path_and_a_flag_is_none() {
        assert!(installed("sh"));
        assert!(installed("/bin/sh"));
        assert!(installed("./run.sh"), "relative to the task's folder");
        assert!(!installed("/app/orders-api"));
        assert!(!installed("no-such-program-anywhere"));
        assert!(!installed("--path.rootfs=/host"));
    }
}
