//! Reading files out of one commit's tree, without a work tree, through a virtual root:
//! the stack loader sees the repository at [`ROOT`], and any path that resolves outside it
//! (`../../etc/passwd`, an absolute path, a symlink pointing out) is refused.

use git2::{ObjectType, Oid, Repository};
use schema::load::Files;
use std::collections::HashMap;
use std::sync::Mutex;

/// Where the repository appears to the stack loader (working folders, `file:` paths).
pub const ROOT: &str = "/repo";

/// How many symlinks a lookup follows before giving up.
const MAX_LINKS: usize = 8;

/// Largest file read from a tree.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Largest file [`TreeFiles`] keeps after reading it once.
const MAX_KEPT_BYTES: usize = 64 * 1024;

/// Splits a path into normal components, resolving `.` and `..`. `None` when `..` climbs
/// above the start.
pub fn normalize(rel: &str) -> Option<Vec<String>> {
    let mut parts: Vec<String> = Vec::new();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other.to_owned()),
        }
    }
    Some(parts)
}

/// A repository-relative path for a loader path, or why it is refused.
pub fn repo_relative(path: &str) -> Result<Vec<String>, String> {
    let outside = || format!("{path}: path is outside the repository");
    let rest = path.strip_prefix(ROOT).ok_or_else(outside)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(outside());
    }
    normalize(rest).ok_or_else(outside)
}

/// The files of one commit's tree.
pub struct TreeFiles<'r> {
    repo: &'r Mutex<Repository>,
    tree: Oid,
    /// Small files already read, by repository-relative path. A tree never changes, so a
    /// file named again (every service's `env_file: ./common.env`) is taken from here
    /// instead of being looked up and inflated once per service, under the repository's
    /// lock, while the other loading threads wait for it.
    kept: Mutex<HashMap<Vec<String>, Vec<u8>>>,
}

impl<'r> TreeFiles<'r> {
    /// The files of `tree` in `repo`.
    pub fn new(repo: &'r Mutex<Repository>, tree: Oid) -> Self {
        TreeFiles { repo, tree, kept: Mutex::new(HashMap::new()) }
    }

    /// Reads a repository-relative path (components already normalized).
    ///
    /// # Errors
    /// Go-style text: `open P: no such file or directory`, `read P: is a directory`, or a
    /// refusal for paths and links that leave the repository.
    pub fn read_rel(&self, parts: &[String], shown: &str) -> Result<Vec<u8>, String> {
        if let Some(data) = self.kept.lock().ok().and_then(|k| k.get(parts).cloned()) {
            return Ok(data);
        }
        let data = self.read_tree(parts, shown)?;
        if data.len() <= MAX_KEPT_BYTES
            && let Ok(mut kept) = self.kept.lock()
        {
            kept.insert(parts.to_vec(), data.clone());
        }
        Ok(data)
    }

    fn read_tree(&self, parts: &[String], shown: &str) -> Result<Vec<u8>, String> {
        let repo =
            self.repo.lock().map_err(|_| format!("open {shown}: repository lock poisoned"))?;
        let mut parts = parts.to_vec();
        for _ in 0..MAX_LINKS {
            let tree =
                repo.find_tree(self.tree).map_err(|e| format!("open {shown}: {}", e.message()))?;
            let rel = parts.join("/");
            if rel.is_empty() {
                return Err(format!("read {shown}: is a directory"));
            }
            let entry = tree
                .get_path(std::path::Path::new(&rel))
                .map_err(|_| format!("open {shown}: no such file or directory"))?;
            if entry.kind() == Some(ObjectType::Tree) {
                return Err(format!("read {shown}: is a directory"));
            }
            let obj =
                entry.to_object(&repo).map_err(|e| format!("open {shown}: {}", e.message()))?;
            let blob = obj.as_blob().ok_or_else(|| format!("open {shown}: not a file"))?;
            if blob.size() > MAX_FILE_BYTES {
                return Err(format!(
                    "read {shown}: file is larger than flotilla's limit of 64 MiB"
                ));
            }
            if entry.filemode() != 0o120000 {
                return Ok(blob.content().to_vec());
            }
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            if target.starts_with('/') {
                return Err(format!("{shown}: symbolic link points outside the repository"));
            }
            let dir = &parts[..parts.len() - 1];
            parts = normalize(&format!("{}/{target}", dir.join("/")))
                .ok_or_else(|| format!("{shown}: symbolic link points outside the repository"))?;
        }
        Err(format!("open {shown}: too many levels of symbolic links"))
    }
}

impl Files for TreeFiles<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let parts = repo_relative(path)?;
        self.read_rel(&parts, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_relative_refuses_paths_that_leave_the_repository() {
        assert_eq!(repo_relative("/repo/stacks/a/.env").unwrap(), vec!["stacks", "a", ".env"]);
        assert!(repo_relative("/etc/passwd").unwrap_err().contains("outside the repository"));
        assert!(repo_relative("/repository/x").is_err());
        assert!(repo_relative("/repo/../x").is_err());
    }
}
