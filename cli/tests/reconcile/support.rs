//! Real temporary Git repositories with deterministic commits, the `flotilla` binary, and
//! golden files (`UPDATE_GOLDEN=1` rewrites them).

use git2::{IndexAddOption, Repository, Signature, Time};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary repository whose commit ids are the same on every run.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
    repo: Repository,
    clock: i64,
}

impl GitRepo {
    pub fn new() -> GitRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        GitRepo { dir, repo, clock: 1_700_000_000 }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn remove(&self, rel: &str) -> &Self {
        let p = self.path().join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Rewrites a file with `edit`.
    pub fn edit(&self, rel: &str, edit: impl FnOnce(String) -> String) -> &Self {
        let text = edit(self.read(rel));
        self.write(rel, &text)
    }

    /// Copies the repository's `examples/stacks` under `stacks/`.
    pub fn with_examples(self) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/stacks");
        copy_dir(&root, &self.path().join("stacks"));
        self
    }

    /// Commits everything in the work tree; returns the commit id.
    pub fn commit(&mut self, message: &str) -> String {
        self.clock += 60;
        let sig =
            Signature::new("flotilla test", "test@flotilla.invalid", &Time::new(self.clock, 0))
                .unwrap();
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap();
        id.to_string()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// What a run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `flotilla reconcile --dry-run --repo REPO ARGS...`.
pub fn reconcile(repo: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("reconcile")
        .arg("--dry-run")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("FLOTILLA_HOST")
        .env_remove("FLOTILLA_TOKEN")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/output/reconcile")
}

/// What to do with golden files, from `UPDATE_GOLDEN`: unset, compare; exactly `1`,
/// rewrite (review the diff before committing it); anything else is a mistake, refused.
#[derive(Debug, PartialEq, Eq)]
pub enum GoldenMode {
    /// Compare the output with the file.
    Compare,
    /// Write the output into the file.
    Rewrite,
}

/// The golden mode for a value of `UPDATE_GOLDEN`.
///
/// # Errors
/// Any value other than `1`.
pub fn golden_mode(value: Option<&std::ffi::OsStr>) -> Result<GoldenMode, String> {
    match value {
        None => Ok(GoldenMode::Compare),
        Some(v) if v == "1" => Ok(GoldenMode::Rewrite),
        Some(v) => Err(format!(
            "UPDATE_GOLDEN={v:?}: only UPDATE_GOLDEN=1 rewrites golden files; unset it to compare"
        )),
    }
}

/// Compares `actual` with the golden file `name` (rewrites it under `UPDATE_GOLDEN=1`).
#[track_caller]
pub fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    let mode = golden_mode(std::env::var_os("UPDATE_GOLDEN").as_deref());
    if mode.unwrap_or_else(|e| panic!("{e}")) == GoldenMode::Rewrite {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("missing golden file {}; run with UPDATE_GOLDEN=1", path.display())
    });
    if expected != actual {
        panic!(
            "output differs from {}; run with UPDATE_GOLDEN=1 and review the diff\n--- actual ---\n{actual}",
            path.display()
        );
    }
}

/// Runs the dry run in all three formats, checks exit codes agree, and compares each with
/// its golden file `<name>.{txt,md,json}`. Returns the exit code.
#[track_caller]
pub fn golden_all(name: &str, repo: &Path, args: &[&str]) -> i32 {
    let mut code = None;
    for (fmt, ext) in [("text", "txt"), ("markdown", "md"), ("json", "json")] {
        let mut a = args.to_vec();
        a.extend(["--output", fmt]);
        let run = reconcile(repo, &a);
        assert!(run.code == 0 || run.code == 2, "{name} {fmt}: exit {}: {}", run.code, run.stderr);
        if fmt == "json" {
            crate::schema_check::validate_plan(&run.stdout);
        }
        assert_golden(&format!("{name}.{ext}"), &run.stdout);
        assert!(code.is_none_or(|c| c == run.code), "exit codes differ between formats");
        code = Some(run.code);
    }
    code.unwrap_or(1)
}

#[test]
fn update_golden_rewrites_only_when_exactly_1() {
    use std::ffi::OsStr;
    assert_eq!(golden_mode(None), Ok(GoldenMode::Compare));
    assert_eq!(golden_mode(Some(OsStr::new("1"))), Ok(GoldenMode::Rewrite));
    for other in ["0", "", "true", "yes", "1 ", "01"] {
        let err = golden_mode(Some(OsStr::new(other))).unwrap_err();
        assert!(err.contains("only UPDATE_GOLDEN=1 rewrites"), "{other:?}: {err}");
    }
}
