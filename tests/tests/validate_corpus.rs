//! Runs the conformance corpus (see `flotilla_tests::corpus` for where it lives) through the
//! schema validator alone: every case docker accepted must validate cleanly, and every case
//! docker rejected with a schema error must produce docker's exact message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schema::validate::{supported_versions, validate};
use schema::{Map, Value};

/// Docker picks this case's error at random among four (see the corpus README).
const RANDOM_ERROR: &str = "stacks/invalid/example-voting-app__docker-compose.yml";

/// The four errors docker may report for [`RANDOM_ERROR`].
fn random_error_allowed(message: &str) -> bool {
    ["result", "worker", "vote", "seed"]
        .iter()
        .any(|s| message == format!("services.{s}.depends_on must be a list"))
}

fn version_of(doc: &Map) -> String {
    let text = match doc.get("version") {
        None => String::new(),
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Float(f)) => format!("{f}"),
        Some(Value::Bool(b)) => b.to_string(),
        Some(_) => "?".to_string(),
    };
    match text.as_str() {
        "" | "3" => "3.13".to_string(),
        _ => text,
    }
}

fn read_env(path: Option<&Path>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("PATH".to_string(), "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("HOME".to_string(), "/home/user".to_string()),
    ]);
    if let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) {
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some((key, value)) = line.split_once('=') {
                env.insert(key.to_string(), value.to_string());
            }
        }
    }
    env
}

/// What our validator says about one file: `Ok(None)` when it validates, `Ok(Some(msg))` for
/// docker's message, `Err(reason)` when the file never reaches schema validation.
fn check_file(path: &Path, env: &BTreeMap<String, String>) -> Result<Option<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let parsed = schema::yaml::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let Value::Map(mut doc) = parsed else { return Err("top level not a mapping".into()) };
    let version = version_of(&doc);
    if !supported_versions().contains(&version.as_str()) {
        return Err(format!("unsupported version {version}"));
    }
    schema::interpolate::interpolate(&mut doc, env).map_err(|e| e.to_string())?;
    match validate(&Value::Map(doc), &version) {
        Ok(()) => Ok(None),
        Err(violations) => Ok(Some(violations[0].message.clone())),
    }
}

fn is_schema_error(line: &str) -> bool {
    let markers = [
        " must be a ",
        "Additional property",
        "Does not match format",
        " is required",
        "must be unique",
        "Must be greater",
        "must be one of the following",
        "json: unsupported",
    ];
    let not_schema = ["top-level object", "invalid interpolation", "error while interpolating"];
    !not_schema.iter().any(|p| line.starts_with(p)) && markers.iter().any(|m| line.contains(m))
}

struct Case {
    path: String,
    ok: bool,
    files: Vec<PathBuf>,
    env: BTreeMap<String, String>,
    expected_error: Option<String>,
}

fn cases(root: &Path) -> Vec<Case> {
    let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("corpus manifest under {}: {e}", root.display()));
    let mut out = Vec::new();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (path, ok, env) = (cols[0], cols[3] == "ok", cols.get(5).copied().unwrap_or(""));
        let full = root.join(path);
        let (files, error_file) = if path.starts_with("stacks/overrides/") {
            (
                vec![full.join("base.yml"), full.join("override.yml")],
                full.join("expected-error.txt"),
            )
        } else {
            (vec![full.clone()], full.with_extension("expected-error.txt"))
        };
        let expected_error = std::fs::read_to_string(error_file)
            .ok()
            .and_then(|t| t.lines().next().map(String::from));
        let env_file = root.join(env);
        let env = read_env((!env.is_empty()).then_some(env_file.as_path()));
        out.push(Case { path: path.to_string(), ok, files, env, expected_error });
    }
    out
}

/// The first schema error over the files of a case, stopping at a file that never reaches
/// validation.
fn first_error(case: &Case) -> Result<Option<String>, String> {
    for file in &case.files {
        if let Some(message) = check_file(file, &case.env)? {
            return Ok(Some(message));
        }
    }
    Ok(None)
}

#[test]
fn corpus_schema_errors_match_docker() {
    let root = flotilla_tests::corpus::require();
    let (mut matched, mut schema_cases, mut valid_ok, mut skipped) = (0, 0, 0, Vec::new());
    let mut failures = Vec::new();
    for case in cases(&root) {
        let outcome = first_error(&case);
        if case.ok {
            match outcome {
                Ok(None) => valid_ok += 1,
                other => {
                    failures.push(format!("{}: docker accepts it, we say {other:?}", case.path))
                }
            }
            continue;
        }
        let Some(expected) = case.expected_error.clone().filter(|e| is_schema_error(e)) else {
            continue;
        };
        schema_cases += 1;
        match outcome {
            Ok(Some(got)) if got == expected => matched += 1,
            Ok(Some(got)) if case.path == RANDOM_ERROR && random_error_allowed(&got) => {
                matched += 1
            }
            Err(reason) => skipped.push(format!("{} ({reason})", case.path)),
            other => failures.push(format!("{}: want {expected:?}, got {other:?}", case.path)),
        }
    }
    println!(
        "schema errors matching docker: {matched}/{schema_cases}; valid cases validating: {valid_ok}"
    );
    for skip in &skipped {
        println!("skipped: {skip}");
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(matched >= 40 && valid_ok >= 100, "too few cases ran: {matched} / {valid_ok}");
}
