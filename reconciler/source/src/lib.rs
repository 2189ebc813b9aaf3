//! flotilla's Git source: every stack of a repository at any revision, read straight from
//! the object database (no work tree, no checkout), from a local folder, a bare repository
//! or a remote URL cloned into a cache and fetched incrementally.
//!
//! ```text
//!  Repo::open(path | url) ─► resolve(rev) ─► commit tree ─► flotilla.yaml + discovery
//!       └─ remote: <cache>/<hash>.git, `git fetch` │
//!                                                 ▼
//!                     per stack: schema::load over TreeFiles (refuses paths outside the repo)
//!                                + config/secret file contents ─► Revision { stacks, problems }
//! ```
//!
//! Entry points: [`Repo::open`], [`Repo::read`], and for two revisions at once (one pool of
//! loading threads, each stack converted where it loaded) [`Repo::read_pair`] and
//! [`Repo::compare`]. [`webhook::verify`] checks a forge's push webhook; [`folder::snapshot`]
//! makes a plain folder's files a revision.

pub mod commit;
pub mod convention;
pub mod fetch;
pub mod folder;
pub mod read;
pub mod repo;
pub mod tree;
pub mod webhook;

pub use commit::CommitInfo;
pub use fetch::FetchAuth;
pub use read::{Revision, StackProblem, StackSource};
pub use repo::Repo;

/// Stops libgit2 from hashing every object it reads again to check it against its id, for
/// the whole process, as `git` itself reads objects (`git fsck` is what checks them); zlib
/// still checks every object's compressed stream. Reading a large stack file costs less
/// than hashing it with SHA-1's collision detection: on the reconcile benchmark (100 loads
/// of 200 KB stack files) the check is about 3 % of the CPU time.
pub fn skip_object_hash_checks() {
    git2::opts::strict_hash_verification(false);
}

/// Why a repository or revision could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Not a Git repository.
    #[error("cannot open repository {repo}: {message}")]
    Open {
        /// The path given.
        repo: String,
        /// libgit2's message.
        message: String,
    },
    /// Cloning or fetching a remote failed.
    #[error("cannot fetch {url}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The revision does not exist.
    #[error("revision {rev:?} not found in {repo}")]
    Revision {
        /// The repository.
        repo: String,
        /// The revision.
        rev: String,
    },
    /// `flotilla.yaml` is invalid.
    #[error("{file}: {message}")]
    Settings {
        /// Its path.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Any other libgit2 failure.
    #[error("git: {0}")]
    Git(String),
    /// A thread panicked while holding the repository.
    #[error("the repository handle was poisoned by a panic")]
    Poisoned,
}
