//! Runs the `docker stack config` conformance corpus the way its README describes: paths as
//! if the corpus were at `/tmp/stack-corpus`, `HOME=/home/user`, a fixed `PATH`, and the
//! sidecar environment files.
//!
//! The corpus is external test data, never copied into the repository. It lives in
//! `../shared/corpus` beside the checkout (beside the main checkout when this one is a git
//! worktree), or wherever `FLOTILLA_CORPUS` points; `tests/corpus-dir` prints the same path
//! for scripts. Every test that needs it is named `corpus_…` and calls [`require`], which
//! fails with the path it looked at: a missing corpus is never a silent pass. `tests/run`
//! leaves the `corpus_` tests out, and says so, only under `FLOTILLA_SKIP_CORPUS=1`.

use schema::load::{Files, LoadInput, SourceFile, load};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the corpus pretends to live (the prefix of every absolute path in its outputs).
pub const VIRTUAL_ROOT: &str = "/tmp/stack-corpus";

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder that holds the main checkout: the repository root, or for a git worktree the
/// root of the checkout that owns its git folder (`<git dir>/commondir` names it).
fn main_checkout(root: &Path) -> PathBuf {
    let Ok(text) = std::fs::read_to_string(root.join(".git")) else {
        return root.to_owned();
    };
    let Some(git_dir) = text.trim().strip_prefix("gitdir:").map(|d| root.join(d.trim())) else {
        return root.to_owned();
    };
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or(git_dir);
    let common = std::fs::canonicalize(&common).unwrap_or(common);
    common.parent().map_or_else(|| root.to_owned(), Path::to_owned)
}

/// The corpus folder: `FLOTILLA_CORPUS` when set, else `../shared/corpus` beside the main
/// checkout. It may not exist; see [`require`].
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("FLOTILLA_CORPUS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => main_checkout(&repo_root()).join("../shared/corpus"),
    }
}

/// The corpus folder, or a panic that says where it was looked for and what to do.
///
/// # Panics
/// When `MANIFEST.tsv` is not in [`corpus_dir`].
pub fn require() -> PathBuf {
    let dir = corpus_dir();
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the conformance corpus is not at {} (no MANIFEST.tsv): put it in ../shared/corpus \
         beside the checkout or set FLOTILLA_CORPUS; tests/run leaves corpus tests out only \
         under FLOTILLA_SKIP_CORPUS=1",
        dir.display()
    );
    dir
}

/// One row of MANIFEST.tsv.
#[derive(Debug, Clone)]
pub struct Case {
    /// Path under the corpus (`stacks/valid/x.yml` or `stacks/overrides/name/base.yml`).
    pub path: String,
    /// `ok` or `error`.
    pub expect_ok: bool,
    /// Docker's first error line.
    pub error_first_line: String,
    /// Sidecar env file, if any.
    pub env: Option<String>,
}

/// Reads MANIFEST.tsv.
///
/// # Panics
/// When the corpus is missing or its manifest cannot be read.
pub fn cases() -> Vec<Case> {
    let manifest = require().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let get = |i: usize| cols.get(i).copied().unwrap_or("").to_owned();
            (!get(0).is_empty()).then(|| Case {
                path: get(0),
                expect_ok: get(3) == "ok",
                error_first_line: get(4),
                env: Some(get(5)).filter(|s| !s.is_empty()),
            })
        })
        .collect()
}

/// Reads files, mapping the virtual root onto the real corpus.
pub struct CorpusFiles;

impl CorpusFiles {
    fn real(path: &str) -> PathBuf {
        match path.strip_prefix(VIRTUAL_ROOT) {
            Some(rest) => corpus_dir().join("stacks").join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }
}

impl Files for CorpusFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(Self::real(path)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
            _ => format!("open {path}: {e}"),
        })
    }
}

/// The environment the oracle ran with, plus the sidecar.
pub fn environment(sidecar: Option<&str>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned());
    env.insert("HOME".to_owned(), "/home/user".to_owned());
    if let Some(s) = sidecar {
        let path = corpus_dir().join(s);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("sidecar environment {}: {e}", path.display()));
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                env.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    env
}

/// What flotilla made of a case: stdout or the error, and warnings.
#[derive(Debug)]
pub struct Outcome {
    /// The YAML on success, or the error message.
    pub result: Result<String, String>,
    /// Warnings printed.
    pub warnings: Vec<String>,
}

/// Loads the given corpus files (relative to `stacks/`) as `docker stack config -c ...`.
pub fn run(files: &[&str], sidecar: Option<&str>) -> Outcome {
    let sources: Vec<SourceFile> = files
        .iter()
        .map(|f| {
            let filename = format!("{VIRTUAL_ROOT}/{f}");
            let bytes = CorpusFiles.read(&filename).unwrap_or_default();
            SourceFile { filename, bytes }
        })
        .collect();
    let first = sources.first().map(|s| s.filename.clone()).unwrap_or_default();
    let working_dir =
        Path::new(&first).parent().map(|p| p.display().to_string()).unwrap_or_default();
    let input = LoadInput {
        files: sources,
        working_dir,
        env: environment(sidecar),
        skip_interpolation: false,
        reader: &CorpusFiles,
    };
    match load(&input) {
        Ok(l) => {
            Outcome { result: Ok(schema::yaml::emit(&l.config.to_out())), warnings: l.warnings }
        }
        Err(e) => Outcome { result: Err(e.message), warnings: Vec::new() },
    }
}

/// Reads an expected file of the corpus, if it exists.
pub fn expected(rel: &str) -> Option<String> {
    std::fs::read_to_string(corpus_dir().join(rel)).ok()
}
