//! Runs the `docker stack config` conformance corpus (`../shared/corpus/`) the way its
//! README describes: paths as if the corpus were at `/tmp/stack-corpus`, `HOME=/home/user`,
//! a fixed `PATH`, and the sidecar environment files.

use schema::load::{Files, LoadInput, SourceFile, load};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the corpus pretends to live (the prefix of every absolute path in its outputs).
pub const VIRTUAL_ROOT: &str = "/tmp/stack-corpus";

/// The corpus folder (`<repo>/../shared/corpus`).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
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
pub fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).unwrap_or_default();
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
        let text = std::fs::read_to_string(corpus_dir().join(s)).unwrap_or_default();
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
