//! The systemd units in `deploy/systemd/` start the binary with flags it has: every `--flag`
//! of each unit's `ExecStart` and of the environment files documented beside them is one
//! that `flotilla <command> --help` lists, so a renamed flag fails here, not on a server.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The long flags in `words`.
fn flags(words: &str) -> Vec<String> {
    words
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.split('=').next().unwrap_or(w).to_owned())
        .collect()
}

fn help(command: &str) -> String {
    let out = Command::cargo_bin("flotilla")
        .expect("the flotilla binary is built")
        .args([command, "--help"])
        .output()
        .expect("flotilla runs");
    assert!(out.status.success(), "flotilla {command} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Flags the unit's `ExecStart` passes, and its command.
fn exec_start(unit: &str) -> (String, Vec<String>) {
    let text = read(unit);
    let line = text.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/flotilla"), "{unit}: the binary");
    let command = words.next().expect("a command").to_owned();
    (command, flags(line))
}

/// Flags in the documented `FLOTILLA_<COMMAND>_ARGS=` lines (commented ones too).
fn documented(command: &str) -> Vec<String> {
    let key = format!("FLOTILLA_{}_ARGS=", command.to_uppercase());
    let readme = read("deploy/systemd/README.md");
    let lines = readme.lines().map(|l| l.trim_start_matches(['#', ' ']));
    lines.filter_map(|l| l.strip_prefix(key.as_str())).flat_map(flags).collect()
}

#[test]
fn every_flag_the_units_and_their_environment_files_pass_exists() {
    for unit in ["deploy/systemd/flotilla-manager.service", "deploy/systemd/flotilla-agent.service"]
    {
        let (command, mut used) = exec_start(unit);
        used.extend(documented(&command));
        assert!(used.len() >= 3, "{unit}: flags found: {used:?}");
        let help = help(&command);
        let listed = |f: &String| help.split_whitespace().any(|w| w.trim_end_matches(',') == f);
        let unknown: Vec<&String> = used.iter().filter(|f| !listed(f)).collect();
        assert!(unknown.is_empty(), "{unit}: `flotilla {command}` has no {unknown:?}");
    }
}

#[test]
fn the_agent_unit_leaves_tasks_running_for_the_next_start_to_adopt() {
    let unit = read("deploy/systemd/flotilla-agent.service");
    assert!(unit.lines().any(|l| l == "KillMode=process"), "only the agent is signalled");
}
