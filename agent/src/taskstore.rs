//! The tasks this agent runs, kept in its data folder (`tasks/<id>.json`, owner-only: a
//! spec may carry secrets in its environment), so a restarted agent knows what it ran and
//! the status it last saw before the dispatcher answers (swarmkit `agent/storage.go`).

use crate::fsutil::{read_json, write_json};
use reconciler_api::dispatcher::TaskAssignment;
use reconciler_types::{TaskId, TaskStatus};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

/// One task as the agent holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The assignment as last received.
    pub assignment: TaskAssignment,
    /// The status the agent last observed (its own, canonical).
    pub status: TaskStatus,
}

/// The `tasks/` folder.
#[derive(Debug, Clone)]
pub struct TaskStore {
    dir: PathBuf,
}

impl TaskStore {
    /// Opens (creates) the folder.
    ///
    /// # Errors
    /// It cannot be created.
    pub fn open(dir: PathBuf) -> io::Result<TaskStore> {
        std::fs::create_dir_all(&dir)?;
        Ok(TaskStore { dir })
    }

    fn path(&self, id: &TaskId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Saves a record.
    ///
    /// # Errors
    /// It cannot be written.
    pub fn save(&self, record: &Record) -> io::Result<()> {
        write_json(&self.path(&record.assignment.task.id), record)
    }

    /// Forgets a task.
    ///
    /// # Errors
    /// The file exists but cannot be removed.
    pub fn remove(&self, id: &TaskId) -> io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every record, by task id; files that cannot be read are reported and skipped.
    pub fn load_all(&self) -> Vec<Record> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return out };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match read_json::<Record>(&path) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "skipping a task record")
                }
            }
        }
        out.sort_by(|a, b| a.assignment.task.id.cmp(&b.assignment.task.id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_types::{Task, TaskState};

    #[test]
    fn records_round_trip_and_go_away() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(dir.path().join("tasks")).unwrap();
        let task = Task { id: TaskId::new("t1"), ..Task::default() };
        let assignment = TaskAssignment {
            task,
            service_name: "web".into(),
            service_labels: Default::default(),
            endpoint: Default::default(),
        };
        let status = TaskStatus { state: TaskState::Running, ..TaskStatus::default() };
        let r = Record { assignment, status };
        store.save(&r).unwrap();
        std::fs::write(dir.path().join("tasks/junk.json"), "{").unwrap();
        assert_eq!(store.load_all(), std::slice::from_ref(&r));
        store.remove(&TaskId::new("t1")).unwrap();
        store.remove(&TaskId::new("t1")).unwrap();
        assert!(store.load_all().is_empty());
    }
}
