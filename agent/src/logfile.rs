//! A task's log on disk: the rotating writer (used by the process runtime's supervisor) and
//! the reader behind `service logs` (`--tail`, `--since`, `-f`). Records are
//! [`agent_core::logs::LogRecord`] lines; the current file is `task.log`, older ones
//! `task.log.1` (newest) up to `task.log.<max_files - 1>`.

use agent_core::logs::{LogLimits, LogRecord};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::runtime::LogQuery;

const CURRENT: &str = "task.log";

/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

fn numbered(dir: &Path, n: u32) -> PathBuf {
    if n == 0 { dir.join(CURRENT) } else { dir.join(format!("{CURRENT}.{n}")) }
}

/// Appends records to `task.log`, rotating it at the size limit.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    limits: LogLimits,
    file: File,
    size: u64,
}

impl LogWriter {
    /// Opens (or creates) the log in `dir`.
    ///
    /// # Errors
    /// The folder or file cannot be created.
    pub fn open(dir: &Path, limits: LogLimits) -> io::Result<LogWriter> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new().create(true).append(true).open(numbered(dir, 0))?;
        let size = file.metadata()?.len();
        Ok(LogWriter { dir: dir.to_owned(), limits, file, size })
    }

    /// Writes one record, rotating first when it would pass the limit.
    ///
    /// # Errors
    /// The file cannot be written or rotated.
    pub fn write(&mut self, record: &LogRecord) -> io::Result<()> {
        let line = record.encode();
        if self.limits.must_rotate(self.size, line.len() as u64) {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.limits.max_files.max(1);
        let last = numbered(&self.dir, keep - 1);
        match std::fs::remove_file(&last) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..keep).rev() {
            let from = numbered(&self.dir, n - 1);
            if from.exists() {
                std::fs::rename(&from, numbered(&self.dir, n))?;
            }
        }
        self.file = OpenOptions::new().create(true).append(true).open(numbered(&self.dir, 0))?;
        self.size = 0;
        Ok(())
    }
}

/// The log files of `dir`, oldest first.
pub fn files_oldest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = match name.strip_prefix(CURRENT)? {
                "" => 0,
                rest => rest.strip_prefix('.')?.parse().ok()?,
            };
            Some((n, e.path()))
        })
        .collect();
    out.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    out.into_iter().map(|(_, p)| p).collect()
}

/// Reads the log in `dir` into `out` per `query`; with `follow`, keeps reading until
/// `finished()` says the writer is gone and everything it wrote has been sent. Blocking:
/// run it on a blocking thread.
///
/// # Errors
/// A log file cannot be read.
pub fn read_blocking(
    dir: &Path,
    query: LogQuery,
    out: &mpsc::Sender<LogRecord>,
    finished: &dyn Fn() -> bool,
) -> io::Result<()> {
    let keep = |r: &LogRecord| query.since.is_none_or(|s| r.time >= s);
    let mut tail: VecDeque<LogRecord> = VecDeque::new();
    let limit = query.tail.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut send = |r: LogRecord| -> bool {
        match limit {
            Some(0) => true,
            Some(n) => {
                if tail.len() == n {
                    tail.pop_front();
                }
                tail.push_back(r);
                true
            }
            None => out.blocking_send(r).is_ok(),
        }
    };
    let files = files_oldest_first(dir);
    let mut current: Option<(BufReader<File>, u64)> = None;
    for path in &files {
        let Ok(file) = File::open(path) else { continue };
        let ino = file.metadata()?.ino();
        let mut reader = BufReader::new(file);
        if !drain(&mut reader, &keep, &mut send)? {
            return Ok(());
        }
        if path.file_name().is_some_and(|n| n == CURRENT) {
            current = Some((reader, ino));
        }
    }
    for r in tail {
        if out.blocking_send(r).is_err() {
            return Ok(());
        }
    }
    if query.follow {
        follow(dir, current, &keep, out, finished)?;
    }
    Ok(())
}

/// Sends every complete record left in `reader`; `false` once the receiver is gone.
fn drain(
    reader: &mut BufReader<File>,
    keep: &dyn Fn(&LogRecord) -> bool,
    send: &mut dyn FnMut(LogRecord) -> bool,
) -> io::Result<bool> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Ok(true);
        }
        if !line.ends_with('\n') {
            // A record still being written: read it again next time.
            reader.seek(SeekFrom::Current(-(n as i64)))?;
            return Ok(true);
        }
        if let Some(r) = LogRecord::decode(line.trim_end())
            && keep(&r)
            && !send(r)
        {
            return Ok(false);
        }
    }
}

fn follow(
    dir: &Path,
    mut current: Option<(BufReader<File>, u64)>,
    keep: &dyn Fn(&LogRecord) -> bool,
    out: &mpsc::Sender<LogRecord>,
    finished: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut send = |r: LogRecord| out.blocking_send(r).is_ok();
    loop {
        // Checked before reading, so lines written just before the end are still sent.
        let done = finished();
        if let Some((reader, _)) = current.as_mut()
            && !drain(reader, keep, &mut send)?
        {
            return Ok(());
        }
        // After a rotation the open file is task.log.1: switch to the new task.log.
        let now = File::open(dir.join(CURRENT)).ok();
        if let Some(file) = now {
            let ino = file.metadata()?.ino();
            if current.as_ref().is_none_or(|(_, i)| *i != ino) {
                current = Some((BufReader::new(file), ino));
                continue;
            }
        }
        if done || out.is_closed() {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::logs::Stream;
    use reconciler_types::MonoTime;

    fn rec(i: u64) -> LogRecord {
        LogRecord { time: MonoTime::from_secs(i), stream: Stream::Stdout, log: format!("line {i}") }
    }

    fn read(dir: &Path, query: LogQuery) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(10_000);
        read_blocking(dir, query, &tx, &|| true).unwrap();
        drop(tx);
        let mut got = vec![];
        while let Ok(r) = rx.try_recv() {
            got.push(r.log);
        }
        got
    }

    #[test]
    fn the_log_rotates_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        // Records 10..99 all have the same length.
        let one = rec(10).encode().len() as u64;
        let limits = LogLimits { max_size: one * 10, max_files: 3 };
        let mut w = LogWriter::open(dir.path(), limits).unwrap();
        for i in 10..100 {
            w.write(&rec(i)).unwrap();
        }
        let files = files_oldest_first(dir.path());
        let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["task.log.2", "task.log.1", "task.log"]);
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= one * 10);
        }
        // The newest 30 lines survive, in order.
        let got = read(dir.path(), LogQuery::default());
        let want: Vec<_> = (70..100).map(|i| format!("line {i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn tail_and_since_pick_the_last_lines_after_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), LogLimits::default()).unwrap();
        for i in 0..10 {
            w.write(&rec(i)).unwrap();
        }
        assert_eq!(
            read(dir.path(), LogQuery { tail: Some(2), ..LogQuery::default() }),
            ["line 8", "line 9"]
        );
        let since = LogQuery { since: Some(MonoTime::from_secs(7)), ..LogQuery::default() };
        assert_eq!(read(dir.path(), since), ["line 7", "line 8", "line 9"]);
        assert!(read(dir.path(), LogQuery { tail: Some(0), ..LogQuery::default() }).is_empty());
    }

    #[test]
    fn a_half_written_record_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), LogLimits::default()).unwrap();
        w.write(&rec(1)).unwrap();
        let mut f = OpenOptions::new().append(true).open(dir.path().join(CURRENT)).unwrap();
        f.write_all(b"{\"time\":2,").unwrap();
        assert_eq!(read(dir.path(), LogQuery::default()), ["line 1"]);
    }

    #[test]
    fn a_follower_sees_lines_written_after_it_started_and_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let one = rec(0).encode().len() as u64;
        let limits = LogLimits { max_size: one * 2, max_files: 2 };
        let mut w = LogWriter::open(dir.path(), limits).unwrap();
        w.write(&rec(0)).unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let path = dir.path().to_owned();
        let reader = std::thread::spawn(move || {
            let q = LogQuery { follow: true, ..LogQuery::default() };
            read_blocking(&path, q, &tx, &|| d2.load(std::sync::atomic::Ordering::SeqCst))
        });
        let first = rx.blocking_recv().unwrap();
        assert_eq!(first.log, "line 0");
        for i in 1..5 {
            w.write(&rec(i)).unwrap();
            assert_eq!(rx.blocking_recv().unwrap().log, format!("line {i}"));
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap().unwrap();
        assert!(rx.blocking_recv().is_none());
    }
}
