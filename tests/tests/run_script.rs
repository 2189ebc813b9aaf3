//! `tests/run` and `deploy/multihost/test.sh` as programs: they refuse the variables that
//! narrow the sweep or rewrite golden files, a missing Docker engine or corpus is a failure
//! unless acknowledged (and then named in the summary), and the Docker step runs after the
//! tests whatever their result. `cargo` and `docker` are stand-ins on `PATH` that record
//! their arguments, so the scripts' control flow runs in milliseconds.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flotilla_tests::corpus::{corpus_dir, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A folder of stand-in programs and the log they append to.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    /// `cargo` logs its arguments and fails `nextest run` with `$FAKE_NEXTEST_STATUS`;
    /// `docker` answers nothing (no engine).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let cargo = "#!/bin/sh\necho \"cargo $*\" >> \"$FAKE_LOG\"\n\
                     case \"$*\" in *'nextest run'*) exit \"${FAKE_NEXTEST_STATUS:-0}\";; esac\n";
        write_script(&bin.join("cargo"), cargo);
        write_script(&bin.join("cargo-nextest"), "#!/bin/sh\nexit 0\n");
        write_script(
            &bin.join("docker"),
            "#!/bin/sh\necho \"docker $*\" >> \"$FAKE_LOG\"\nexit 1\n",
        );
        let corpus = dir.path().join("corpus");
        std::fs::create_dir(&corpus).unwrap();
        std::fs::write(corpus.join("MANIFEST.tsv"), "path\n").unwrap();
        Fakes { dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Runs `script` (relative to the repository) with only the variables given.
    fn run(&self, script: &str, vars: &[(&str, &str)]) -> (Output, String, String) {
        let path = format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display());
        let out = Command::new(repo_root().join(script))
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("FAKE_LOG", self.dir.path().join("log"))
            .env("FLOTILLA_CORPUS", self.dir.path().join("corpus"))
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stdout, stderr)
    }
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn run_refuses_variables_that_narrow_the_sweep_or_rewrite_goldens() {
    for var in ["UPDATE_GOLDEN", "SIM_SEED", "PROPTEST_CASES"] {
        let fakes = Fakes::new();
        let (out, _, stderr) = fakes.run("tests/run", &[(var, "0")]);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(&format!("{var} is set")), "{var}: {stderr}");
        assert_eq!(fakes.log(), "", "{var}: tests/run ran something before refusing");
    }
    let fakes = Fakes::new();
    let (out, _, stderr) = fakes.run("tests/run", &[("FLOTILLA_SKIP_DOCKER", "yes")]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FLOTILLA_SKIP_DOCKER must be 1 or unset"), "{stderr}");
}

#[test]
fn run_without_docker_fails_after_running_the_tests() {
    let fakes = Fakes::new();
    let (out, stdout, stderr) = fakes.run("tests/run", &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let log = fakes.log();
    assert!(log.contains("cargo nextest run --workspace --locked --profile ci --no-fail-fast\n"));
    assert!(log.contains("docker info"), "the Docker step did not run: {log}");
    let tests = stdout.find("=== tests (cargo nextest)").expect("a test step");
    let docker = stdout.find("=== multi-host manager test on Docker").expect("a Docker step");
    assert!(tests < docker, "the Docker step must come after the tests:\n{stdout}");
    assert!(stderr.contains("FAIL multihost: no Docker engine"), "{stderr}");
    assert!(stdout.contains("FAILED: multi-host manager test on Docker"), "{stdout}");
    assert!(!stdout.contains("SKIP multihost"), "{stdout}");
}

#[test]
fn run_with_failing_tests_still_runs_docker_and_reports_both() {
    let fakes = Fakes::new();
    let (out, stdout, _) = fakes.run("tests/run", &[("FAKE_NEXTEST_STATUS", "100")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(fakes.log().contains("docker info"), "a test failure must not hide the Docker step");
    assert!(stdout.contains("FAILED: tests (cargo nextest)"), "{stdout}");
    assert!(stdout.contains("FAILED: multi-host manager test on Docker"), "{stdout}");
}

#[test]
fn run_with_skip_docker_passes_and_says_what_was_not_run() {
    let fakes = Fakes::new();
    let (out, stdout, stderr) = fakes.run("tests/run", &[("FLOTILLA_SKIP_DOCKER", "1")]);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let log = fakes.log();
    assert!(!log.lines().any(|l| l.starts_with("docker ")), "docker was called: {log}");
    assert!(
        stdout.contains("!!! NOT RUN: multi-host manager test on Docker (FLOTILLA_SKIP_DOCKER=1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "!!! NOT RUN: docker tests: the docker runtime suite and up --runtime docker \
             (FLOTILLA_SKIP_DOCKER=1)"
        ),
        "{stdout}"
    );
    assert!(
        log.contains("--no-fail-fast -E not binary(/_docker$/)\n"),
        "the docker tests are left out of the tests: {log}"
    );
}

#[test]
fn run_without_the_corpus_fails_unless_acknowledged_and_runs_the_other_tests() {
    let fakes = Fakes::new();
    let missing = fakes.dir.path().join("no-corpus");
    let missing = missing.to_str().unwrap();
    let vars = [("FLOTILLA_SKIP_DOCKER", "1"), ("FLOTILLA_CORPUS", missing)];
    let (out, stdout, _) = fakes.run("tests/run", &vars);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("FAILED: conformance corpus missing at {missing}")));
    let fakes = Fakes::new();
    let vars = [vars[0], vars[1], ("FLOTILLA_SKIP_CORPUS", "1")];
    let (out, stdout, _) = fakes.run("tests/run", &vars);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .contains(&format!("!!! NOT RUN: corpus conformance: the corpus is not at {missing}"))
    );
    assert!(
        fakes.log().contains("--no-fail-fast -E not binary(/_docker$/) and not test(/^corpus_/)\n"),
        "the other tests must still run: {}",
        fakes.log()
    );
}

#[test]
fn multihost_test_fails_without_docker() {
    let fakes = Fakes::new();
    let (out, stdout, stderr) = fakes.run("deploy/multihost/test.sh", &[]);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("SKIP multihost"), "{stdout}");
    assert!(stderr.contains("FLOTILLA_SKIP_DOCKER=1"), "{stderr}");
}

#[test]
fn script_and_library_find_the_same_corpus() {
    let out = Command::new(repo_root().join("tests/corpus-dir")).output().unwrap();
    let printed = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    assert_eq!(canonical(&printed), canonical(&corpus_dir()));
    assert_eq!(out.status.success(), corpus_dir().join("MANIFEST.tsv").is_file());
}
