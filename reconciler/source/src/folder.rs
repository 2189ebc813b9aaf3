//! A plain folder (no Git history) as a source: its files as they are now are committed into
//! a private bare repository, so that the folder's content becomes a revision like any
//! other and everything downstream (reading, planning, deployment records) is the same as
//! for a Git source. A folder whose content did not change makes no new commit, so a
//! restart or a second look deploys nothing again.
//!
//! Symlinks are kept as links (the tree reader refuses those that leave the folder); `.git`
//! folders are skipped; the walk stops at [`MAX_ENTRIES`] entries.

use crate::SourceError;
use crate::repo::Repo;
use git2::{FileMode, Oid, Repository, Signature};
use std::path::Path;

/// The branch the snapshots are committed to.
pub const SNAPSHOT_BRANCH: &str = "refs/heads/main";

/// The most files and folders a snapshot takes.
pub const MAX_ENTRIES: usize = 20_000;

fn git(e: &git2::Error) -> SourceError {
    SourceError::Git(e.message().to_owned())
}

fn io(dir: &Path, e: &std::io::Error) -> SourceError {
    SourceError::Open { repo: dir.display().to_string(), message: e.to_string() }
}

/// Commits the content of `dir` into the bare repository at `store` (made when missing)
/// unless its last snapshot has the same content; answers the repository and the commit.
///
/// # Errors
/// When the folder cannot be read, holds more than [`MAX_ENTRIES`] entries, or the store
/// cannot be written.
pub fn snapshot(dir: &Path, store: &Path) -> Result<(Repo, String), SourceError> {
    let repo = match Repository::open_bare(store) {
        Ok(r) => r,
        Err(_) => Repository::init_bare(store).map_err(|e| git(&e))?,
    };
    let mut budget = MAX_ENTRIES;
    let tree = write_tree(&repo, dir, dir, &mut budget)?;
    let commit = commit_tree(&repo, dir, tree)?;
    let display = dir.display().to_string();
    Ok((Repo::from_repository(repo, display), commit.to_string()))
}

/// The commit of `tree` on [`SNAPSHOT_BRANCH`]: the branch's head when it has that tree,
/// else a new commit on top of it.
fn commit_tree(repo: &Repository, dir: &Path, tree: Oid) -> Result<Oid, SourceError> {
    let parent = repo.find_reference(SNAPSHOT_BRANCH).ok().and_then(|r| r.peel_to_commit().ok());
    if let Some(p) = parent.as_ref().filter(|p| p.tree_id() == tree) {
        return Ok(p.id());
    }
    let tree = repo.find_tree(tree).map_err(|e| git(&e))?;
    let who = Signature::now("flotilla", "flotilla@localhost").map_err(|e| git(&e))?;
    let message = format!("the files of {}", dir.display());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some(SNAPSHOT_BRANCH), &who, &who, &message, &tree, &parents).map_err(|e| git(&e))
}

/// The tree of `dir`, written into `repo`.
fn write_tree(
    repo: &Repository,
    root: &Path,
    dir: &Path,
    budget: &mut usize,
) -> Result<Oid, SourceError> {
    let mut builder = repo.treebuilder(None).map_err(|e| git(&e))?;
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, &e))?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        *budget = budget.checked_sub(1).ok_or_else(|| SourceError::Open {
            repo: root.display().to_string(),
            message: format!("more than {MAX_ENTRIES} files: is this the right folder?"),
        })?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io(&path, &e))?;
        let (oid, mode) = if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| io(&path, &e))?;
            let bytes = target.to_string_lossy().into_owned().into_bytes();
            (repo.blob(&bytes).map_err(|e| git(&e))?, FileMode::Link)
        } else if kind.is_dir() {
            let sub = write_tree(repo, root, &path, budget)?;
            if repo.find_tree(sub).map_err(|e| git(&e))?.is_empty() {
                continue;
            }
            (sub, FileMode::Tree)
        } else if kind.is_file() {
            let data = std::fs::read(&path).map_err(|e| io(&path, &e))?;
            let exec = is_executable(&entry);
            let mode = if exec { FileMode::BlobExecutable } else { FileMode::Blob };
            (repo.blob(&data).map_err(|e| git(&e))?, mode)
        } else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        builder.insert(&name, oid, i32::from(mode)).map_err(|e| git(&e))?;
    }
    builder.write().map_err(|e| git(&e))
}

fn is_executable(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    entry.metadata().is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_becomes_a_commit_that_changes_only_with_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        let stacks = dir.path().join("web");
        std::fs::create_dir_all(&stacks).unwrap();
        std::fs::write(stacks.join("stack.yml"), "services:\n  a:\n    image: x\n").unwrap();
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        let at = store.path().join("s.git");
        let (repo, first) = snapshot(dir.path(), &at).unwrap();
        assert_eq!(repo.resolve("main").unwrap(), first);
        let (_, again) = snapshot(dir.path(), &at).unwrap();
        assert_eq!(again, first, "same content, same commit");
        std::fs::write(stacks.join("stack.yml"), "services:\n  a:\n    image: y\n").unwrap();
        let (repo, second) = snapshot(dir.path(), &at).unwrap();
        assert_ne!(second, first);
        let read = repo.read(&second, ".", None).unwrap();
        assert_eq!(read.stacks.len(), 1, "{:?}", read.problems);
        assert!(read.stacks.contains_key(&reconciler_types::StackName::new("web")));
    }
}
