//! Where a task's configs and secrets go, decided without touching the disk.
//!
//! Docker places a secret at `/run/secrets/<target>` (an absolute target is kept) and a
//! config at its target (a relative one under `/`), `docs/swarm-semantics.md` §9. The
//! docker runtime uses those paths inside the container; the process runtime puts the same
//! paths under the task's own folder, so a target is always a path *relative to a root* and
//! may never leave it: `..` that climbs above the root is refused, as are two files with one
//! target and a file over Swarm's size limit.

use reconciler_types::ContainerSpec;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The largest secret Swarm accepts (`< 500 KiB`).
pub const MAX_SECRET_BYTES: usize = 500 * 1024;
/// The largest config Swarm accepts (`< 1000 KiB`).
pub const MAX_CONFIG_BYTES: usize = 1000 * 1024;

/// Config or secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// A config.
    Config,
    /// A secret.
    Secret,
}

impl FileKind {
    /// `config` or `secret`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Secret => "secret",
        }
    }
}

/// One file a task needs, placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedFile {
    /// Config or secret.
    pub kind: FileKind,
    /// The object's cluster name.
    pub name: String,
    /// The path relative to the task's root (`run/secrets/db_password`).
    pub path: PathBuf,
    /// Owner uid and gid as given (`"0"` by default).
    pub uid: String,
    /// Owner gid.
    pub gid: String,
    /// File mode.
    pub mode: u32,
}

/// Why a task's files cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The target leaves the task's root, or is empty.
    #[error(
        "{kind} {name}: target {target:?} {reason}; use an absolute path such as /run/secrets/{name}, which stays inside the task"
    )]
    BadTarget {
        /// Config or secret.
        kind: &'static str,
        /// The object.
        name: String,
        /// The target as given.
        target: String,
        /// Why.
        reason: &'static str,
    },
    /// Two references write the same path.
    #[error("{kind} {name}: target {target:?} is used twice in this service")]
    DuplicateTarget {
        /// Config or secret.
        kind: &'static str,
        /// The second object.
        name: String,
        /// The path.
        target: String,
    },
    /// The content is larger than Swarm allows.
    #[error("{kind} {name} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Config or secret.
        kind: &'static str,
        /// The object.
        name: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The node did not receive the object's content.
    #[error("{kind} {name} was not sent to this node")]
    Missing {
        /// Config or secret.
        kind: &'static str,
        /// The object.
        name: String,
    },
}

/// Places every config and secret of a container spec (configs first, in spec order).
///
/// # Errors
/// See [`FileError`].
pub fn place_files(spec: &ContainerSpec) -> Result<Vec<PlacedFile>, FileError> {
    let mut placed = Vec::new();
    let mut seen = BTreeSet::new();
    let configs = spec
        .configs
        .iter()
        .map(|c| (FileKind::Config, &c.config_name, &c.target, &c.uid, &c.gid, c.mode));
    let secrets = spec
        .secrets
        .iter()
        .map(|s| (FileKind::Secret, &s.secret_name, &s.target, &s.uid, &s.gid, s.mode));
    for (kind, name, target, uid, gid, mode) in configs.chain(secrets) {
        let path = target_path(kind, name, target)?;
        if !seen.insert(path.clone()) {
            return Err(FileError::DuplicateTarget {
                kind: kind.as_str(),
                name: name.clone(),
                target: target.clone(),
            });
        }
        placed.push(PlacedFile {
            kind,
            name: name.clone(),
            path,
            uid: uid.clone(),
            gid: gid.clone(),
            mode: if mode == 0 { 0o444 } else { mode },
        });
    }
    Ok(placed)
}

/// Checks a file's size against Swarm's limit for its kind.
///
/// # Errors
/// [`FileError::TooLarge`] (and an empty file counts as too small for Swarm, but a node
/// receives only what the managers accepted, so it is allowed here).
pub fn check_size(kind: FileKind, name: &str, size: usize) -> Result<(), FileError> {
    let limit = match kind {
        FileKind::Config => MAX_CONFIG_BYTES,
        FileKind::Secret => MAX_SECRET_BYTES,
    };
    if size >= limit {
        return Err(FileError::TooLarge {
            kind: kind.as_str(),
            name: name.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}

/// The path of one target relative to the task's root.
///
/// # Errors
/// [`FileError::BadTarget`] for an empty target or one that climbs out of the root.
pub fn target_path(kind: FileKind, name: &str, target: &str) -> Result<PathBuf, FileError> {
    let bad = |reason| FileError::BadTarget {
        kind: kind.as_str(),
        name: name.to_owned(),
        target: target.to_owned(),
        reason,
    };
    let given = if target.is_empty() { name } else { target };
    if given.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let full = match kind {
        FileKind::Secret if !given.starts_with('/') => Path::new("/run/secrets").join(given),
        _ => Path::new("/").join(given),
    };
    inside_root(&full).map_err(bad)
}

/// `full` (absolute) as a path relative to `/`, refusing one that climbs above it or names
/// nothing.
fn inside_root(full: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in full.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() {
                    return Err("leaves the task's folder");
                }
            }
            Component::Prefix(_) => return Err("is not a Unix path"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("names no file");
    }
    Ok(out)
}

/// A path relative to the task's root for a working directory (`working_dir:`); empty
/// means the root itself.
///
/// # Errors
/// A directory that climbs out of the root.
pub fn working_dir(dir: &str) -> Result<PathBuf, FileError> {
    if dir.is_empty() || dir == "/" {
        return Ok(PathBuf::new());
    }
    inside_root(&Path::new("/").join(dir)).map_err(|reason| FileError::BadTarget {
        kind: "working_dir",
        name: String::new(),
        target: dir.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::{ConfigReference, SecretReference};

    #[test]
    fn secrets_go_under_run_secrets_and_configs_under_the_root() {
        let p = |k, t| target_path(k, "db", t).unwrap();
        assert_eq!(p(FileKind::Secret, "db"), Path::new("run/secrets/db"));
        assert_eq!(p(FileKind::Secret, ""), Path::new("run/secrets/db"));
        assert_eq!(p(FileKind::Secret, "/etc/db.pw"), Path::new("etc/db.pw"));
        assert_eq!(p(FileKind::Config, "/etc/app/conf.yml"), Path::new("etc/app/conf.yml"));
        assert_eq!(p(FileKind::Config, "conf.yml"), Path::new("conf.yml"));
        assert_eq!(p(FileKind::Config, "/a/./b/../c"), Path::new("a/c"));
    }

    #[test]
    fn a_target_that_climbs_out_of_the_task_folder_is_refused() {
        for t in ["../../etc/passwd", "/../x", "/a/../../b", "/", "."] {
            let e = target_path(FileKind::Config, "app", t).unwrap_err();
            assert!(matches!(e, FileError::BadTarget { .. }), "{t}: {e}");
        }
        let e = target_path(FileKind::Secret, "pw", "../../../../etc/shadow").unwrap_err();
        assert!(e.to_string().contains("leaves the task's folder"), "{e}");
        assert!(working_dir("../up").is_err());
        assert_eq!(working_dir("/srv/app").unwrap(), Path::new("srv/app"));
    }

    #[test]
    fn two_files_with_one_target_are_refused_and_modes_default_to_0444() {
        let mut spec = ContainerSpec::default();
        spec.configs.push(ConfigReference {
            config_name: "app_conf".into(),
            target: "/run/secrets/pw".into(),
            ..ConfigReference::default()
        });
        spec.secrets.push(SecretReference {
            secret_name: "pw".into(),
            target: "pw".into(),
            mode: 0o400,
            ..SecretReference::default()
        });
        assert!(matches!(place_files(&spec), Err(FileError::DuplicateTarget { .. })));
        spec.configs[0].target = "/app.conf".into();
        let placed = place_files(&spec).unwrap();
        assert_eq!(placed[0].mode, 0o444);
        assert_eq!(placed[1].mode, 0o400);
    }

    #[test]
    fn sizes_over_swarms_limits_are_refused() {
        assert!(check_size(FileKind::Secret, "s", MAX_SECRET_BYTES - 1).is_ok());
        let e = check_size(FileKind::Secret, "s", MAX_SECRET_BYTES).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
        assert!(check_size(FileKind::Config, "c", MAX_SECRET_BYTES).is_ok());
    }
}
