//! Opening a repository: a local folder (with or without a work tree), a bare repository, or
//! a remote URL (https, ssh, file) cloned bare into a cache folder and fetched incrementally
//! on every open (by the `git` program, see [`crate::fetch`]).

use crate::SourceError;
use git2::Repository;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An open repository.
pub struct Repo {
    pub(crate) inner: Mutex<Repository>,
    /// What the user named (a path or a URL).
    pub display: String,
    remote: bool,
}

/// Whether `spec` names a remote repository rather than a folder.
pub fn is_url(spec: &str) -> bool {
    if spec.contains("://") {
        return true;
    }
    // scp-like `user@host:path`, but not a Windows drive or a local path with a colon.
    match (spec.find('@'), spec.find(':'), spec.find('/')) {
        (Some(at), Some(colon), slash) => at < colon && slash.is_none_or(|s| colon < s),
        _ => false,
    }
}

/// Whether `path` is a Git repository (a work tree's root, its `.git`, or a bare
/// repository).
pub fn is_repository(path: &Path) -> bool {
    Repository::open(path).is_ok()
}

/// The first 16 hex digits of `sha256(data)`.
pub fn short_digest(data: &[u8]) -> String {
    Sha256::digest(data).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The cache folder of a URL: `<cache>/<first 16 hex of sha256(url)>.git`.
pub fn cache_path(cache: &Path, url: &str) -> PathBuf {
    cache.join(format!("{}.git", short_digest(url.as_bytes())))
}

impl Repo {
    /// Opens a local repository (work tree or bare) or fetches a remote one into `cache`.
    ///
    /// # Errors
    /// When the folder is not a repository, or the fetch fails.
    pub fn open(spec: &str, cache: &Path) -> Result<Repo, SourceError> {
        Self::open_with(spec, cache, &crate::FetchAuth::default())
    }

    /// [`Repo::open`], a remote fetched with `auth` (see [`crate::fetch::fetch_with`]).
    ///
    /// # Errors
    /// As [`Repo::open`].
    pub fn open_with(
        spec: &str,
        cache: &Path,
        auth: &crate::FetchAuth,
    ) -> Result<Repo, SourceError> {
        if is_url(spec) {
            return Self::open_remote(spec, cache, auth);
        }
        let repo = Repository::open(spec).map_err(|e| SourceError::Open {
            repo: spec.to_owned(),
            message: e.message().to_owned(),
        })?;
        Ok(Repo { inner: Mutex::new(repo), display: spec.to_owned(), remote: false })
    }

    /// A repository already open (a folder snapshot's store), shown as `display`.
    pub fn from_repository(repo: Repository, display: String) -> Repo {
        Repo { inner: Mutex::new(repo), display, remote: false }
    }

    fn open_remote(url: &str, cache: &Path, auth: &crate::FetchAuth) -> Result<Repo, SourceError> {
        let path = cache_path(cache, url);
        crate::fetch::fetch_with(url, &path, auth)?;
        let repo = Repository::open_bare(&path).map_err(|e| SourceError::Fetch {
            url: url.to_owned(),
            message: e.message().to_owned(),
        })?;
        Ok(Repo { inner: Mutex::new(repo), display: url.to_owned(), remote: true })
    }

    /// The commit id a revision names (`HEAD`, a branch, a tag, a commit, `main~2`). For a
    /// remote repository, branch names are looked up among the fetched `origin/` branches.
    ///
    /// # Errors
    /// When nothing matches.
    pub fn resolve(&self, rev: &str) -> Result<String, SourceError> {
        let repo = self.inner.lock().map_err(|_| SourceError::Poisoned)?;
        let mut candidates = vec![rev.to_owned()];
        if self.remote {
            let r = if rev == "HEAD" { "origin/HEAD".to_owned() } else { format!("origin/{rev}") };
            candidates.insert(0, r);
        }
        for c in &candidates {
            if let Ok(obj) = repo.revparse_single(c)
                && let Ok(commit) = obj.peel_to_commit()
            {
                return Ok(commit.id().to_string());
            }
        }
        Err(SourceError::Revision { repo: self.display.clone(), rev: rev.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_url_tells_remotes_from_folders() {
        assert!(is_url("https://github.com/a/b.git"));
        assert!(is_url("ssh://git@host/a.git"));
        assert!(is_url("git@github.com:a/b.git"));
        assert!(is_url("file:///tmp/x"));
        assert!(!is_url("/tmp/repo"));
        assert!(!is_url("./repo"));
        assert!(!is_url("dir/a@b:c"));
    }
}
