//! `flotilla stack config` as a whole program: output, exit codes, stdin, errors with
//! their location, warnings on stderr.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn flotilla() -> Command {
    Command::cargo_bin("flotilla").expect("the flotilla binary is built")
}

/// Writes `text` to `name` in a new folder and runs `flotilla stack config -c name` there.
fn stack_config_of(name: &str, text: &str) -> std::process::Output {
    let dir = tempdir();
    std::fs::write(dir.join(name), text).expect("write");
    flotilla().current_dir(&dir).args(["stack", "config", "-c", name]).output().expect("runs")
}

#[test]
fn stack_config_prints_the_final_file() {
    let out =
        stack_config_of("stack.yml", "services:\n  web:\n    image: nginx\n    ports: [\"80\"]\n");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "version: \"3.13\"\nservices:\n  web:\n    image: nginx\n    ports:\n      - mode: ingress\n        target: 80\n        protocol: tcp\n"
    );
}

#[test]
fn stack_config_reads_stdin() {
    let out = flotilla()
        .args(["stack", "config", "-c", "-"])
        .write_stdin("version: '3.8'\nservices: {a: {image: x}}\n")
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("version: \"3.8\"\n"));
}

#[test]
fn stack_config_names_file_line_and_field_on_error() {
    let out = stack_config_of("bad.yml", "version: '3.8'\nservices:\n  web:\n    image: 42\n");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("services.web.image must be a string\n"), "{err}");
    assert!(err.contains("in bad.yml, line 4, at services.web.image"), "{err}");
}

#[test]
fn stack_config_lists_every_schema_violation_after_the_first() {
    let text =
        "version: '3.8'\nservices:\n  web:\n    image: 42\n    ports: x\n  db:\n    image: [1]\n";
    let out = stack_config_of("bad.yml", text);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "services.web.image must be a string\n  in bad.yml, line 4, at services.web.image\n  \
         and 2 more problem(s) in the same file:\n  - services.web.ports must be a list\n  \
         - services.db.image must be a string\n"
    );
}

#[test]
fn stack_config_fails_on_missing_file_and_no_file() {
    let out = flotilla()
        .args(["stack", "config", "-c", "/nonexistent/stack.yml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "open /nonexistent/stack.yml: no such file or directory\n"
    );
    let out = flotilla().args(["stack", "config"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

/// Docker prints this warning (logrus format) for a host IP in a port; the expected line is
/// docker CLI 28.2.2's, recorded in the corpus case `valid/written__ports-short-long`.
#[test]
fn stack_config_prints_warnings_like_docker() {
    let text =
        "version: '3.8'\nservices:\n  edge:\n    image: x\n    ports: [\"127.0.0.1:8090:90\"]\n";
    let out = stack_config_of("ports.yml", text);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "level=warning msg=\"ignoring IP-address (127.0.0.1:8090:90/tcp) service will listen on '0.0.0.0'\"\n"
    );
}

fn tempdir() -> std::path::PathBuf {
    let base =
        std::env::temp_dir().join(format!("flotilla-cli-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&base).expect("temp dir");
    base
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn stack_config_refuses_a_folder_and_an_oversized_file() {
    let dir = tempdir();
    let out = flotilla().args(["stack", "config", "-c"]).arg(&dir).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).ends_with(": is a directory\n"));
    let big = dir.join("big.yml");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(64 * 1024 * 1024 + 1).expect("grow");
    let out = flotilla().args(["stack", "config", "-c"]).arg(&big).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("file is larger than flotilla's limit of 64 MiB"), "{err}");
}

#[test]
fn stack_config_locates_decoding_errors() {
    let text = "version: '3.8'\nservices:\n  web:\n    image: x\n    volumes: [':/data']\n";
    let out = stack_config_of("v.yml", text);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid spec: :/data: empty section between colons"), "{err}");
    assert!(err.contains("in v.yml, line 3, at services.web"), "{err}");
}

/// Files shallow enough to load on the main thread (nesting bound at most 256) and deeper
/// ones (loaded on a thread with a large stack) both load, whatever the stage that recurses.
#[test]
fn stack_config_loads_nesting_on_either_side_of_the_main_thread_limit() {
    let dir = tempdir();
    for depth in [240, 2_000] {
        let nest =
            |open: &str, close: &str| format!("{}1{}", open.repeat(depth), close.repeat(depth));
        let cases = [
            (format!("x-deep: {}\nservices:\n  web:\n    image: x\n", nest("[", "]")), true),
            (format!("services:\n  web:\n    image: x\n    x-d: {}\n", nest("{a: ", "}")), true),
            (format!("services:\n  web:\n    image: x\n    labels: {}\n", nest("[", "]")), false),
            (
                format!("services:\n  web:\n    image: x\n    deploy: {}\n", nest("{a: ", "}")),
                false,
            ),
        ];
        for (i, (text, ok)) in cases.into_iter().enumerate() {
            let file = dir.join(format!("deep-{depth}-{i}.yml"));
            std::fs::write(&file, format!("version: '3.8'\n{text}")).expect("write");
            let out = flotilla().args(["stack", "config", "-c"]).arg(&file).output().expect("runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(if ok { 0 } else { 1 }), "{depth}/{i}: {err}");
        }
    }
}
