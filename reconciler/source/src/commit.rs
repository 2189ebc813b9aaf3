//! Who made a commit and what it says: the deployment record's author and subject.

use crate::SourceError;
use crate::repo::Repo;
use git2::Oid;

/// A commit's author, subject and time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitInfo {
    /// `Name <email>`.
    pub author: String,
    /// The first line of the message.
    pub subject: String,
    /// The author time, in seconds since the Unix epoch.
    pub time: i64,
}

impl Repo {
    /// The author, subject and time of `commit` (a full commit id).
    ///
    /// # Errors
    /// When the id is not a commit of this repository.
    pub fn commit_info(&self, commit: &str) -> Result<CommitInfo, SourceError> {
        let repo = self.inner.lock().map_err(|_| SourceError::Poisoned)?;
        let not_found = || SourceError::Revision { repo: self.display.clone(), rev: commit.into() };
        let oid = Oid::from_str(commit).map_err(|_| not_found())?;
        let c = repo.find_commit(oid).map_err(|_| not_found())?;
        let author = c.author();
        Ok(CommitInfo {
            author: format!(
                "{} <{}>",
                String::from_utf8_lossy(author.name_bytes()),
                String::from_utf8_lossy(author.email_bytes())
            ),
            subject: c
                .summary_bytes()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default(),
            time: author.when().seconds(),
        })
    }
}
