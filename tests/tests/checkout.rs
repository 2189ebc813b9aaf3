//! A checkout that explains itself: every numbered scenario of `docs/swarm-semantics.md` §12
//! has a test named after it (`fn s23_…`), except those the README lists as "not yet", and
//! no source file cites a design document that is not in the repository.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flotilla_tests::corpus::repo_root;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Scenarios that have no named test yet because the work that implements them is in
/// flight. Remove a number here and from the README's "not yet" list when its test lands
/// (this test fails until both are done).
const NOT_YET: &[u32] = &[];

/// The README line that repeats [`NOT_YET`] for readers, after this marker.
const README_MARKER: &str = "Scenarios without a named test yet: ";

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The S-numbers of §12 (`**S23 Rolling update timeline.**`).
fn scenarios(semantics: &str) -> Vec<u32> {
    let start = semantics.find("\n## 12.").expect("docs/swarm-semantics.md has a §12");
    let section = &semantics[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .lines()
        .filter_map(|l| l.strip_prefix("**S"))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// Every file under the repository root whose name ends with one of `exts`, or has no
/// extension when `exts` holds `""`, outside `target/` and `.git/`.
fn files(exts: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    walk(&path, exts, out);
                }
            } else if exts.contains(&path.extension().map_or("", |e| e.to_str().unwrap_or("?"))) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root(), exts, &mut out);
    out
}

/// The scenarios that some Rust source names a test after.
fn named_tests() -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    for file in files(&["rs"]) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (at, _) in text.match_indices("fn s") {
            let rest = &text[at + 4..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && rest[digits.len()..].starts_with('_') {
                found.insert(digits.parse().unwrap());
            }
        }
    }
    found
}

fn list(numbers: &[u32]) -> String {
    numbers.iter().map(|n| format!("S{n}")).collect::<Vec<_>>().join(", ")
}

#[test]
fn every_numbered_scenario_has_a_named_test() {
    let all = scenarios(&read("docs/swarm-semantics.md"));
    assert_eq!(all, (1..=53).collect::<Vec<_>>(), "§12 should number S1 to S53 in order");
    let named = named_tests();
    let missing: Vec<u32> =
        all.iter().copied().filter(|n| !named.contains(n) && !NOT_YET.contains(n)).collect();
    assert!(missing.is_empty(), "no test named `fn s<N>_…` for {}", list(&missing));
    let landed: Vec<u32> = NOT_YET.iter().copied().filter(|n| named.contains(n)).collect();
    assert!(
        landed.is_empty(),
        "{} now have a named test: remove them from NOT_YET in {} and from the README's \
         \"{README_MARKER}\" line",
        list(&landed),
        file!()
    );
    let readme = read("README.md");
    let line = readme
        .lines()
        .find_map(|l| l.split_once(README_MARKER).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("the README has no \"{README_MARKER}\" line"));
    let want = if NOT_YET.is_empty() { "none.".to_owned() } else { format!("{}.", list(NOT_YET)) };
    assert_eq!(line, want, "the README's list of scenarios without a test differs from NOT_YET");
}

/// The section numbers of `docs/swarm-semantics.md` (`## 6.` and `### 6.3`).
fn sections(semantics: &str) -> BTreeSet<String> {
    semantics
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .filter_map(|l| l.split(' ').next())
        .map(|n| n.trim_end_matches('.').to_owned())
        .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

#[test]
fn references_resolve_inside_the_repository() {
    let own = Path::new(file!()).file_name().unwrap().to_owned();
    let known = sections(&read("docs/swarm-semantics.md"));
    // Documents that live outside the repository; spelled in two halves so that this file
    // does not cite them itself.
    let outside = [["DESIGN", ".md"], ["style", ".md"], ["crates", ".md"], ["design", "/"]];
    let mut bad = Vec::new();
    for file in files(&["rs", "sh", "py", "toml", "md", ""]) {
        if file.file_name() == Some(own.as_os_str()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let rel = file.strip_prefix(repo_root()).unwrap_or(&file).display().to_string();
        let is_md = rel.ends_with(".md");
        for [a, b] in outside {
            let name = format!("{a}{b}");
            // Markdown may name another project's `design/` folder; code may not cite one.
            if text.contains(&name) && !(is_md && b == "/") {
                bad.push(format!("{rel} cites {name}, which is not in the repository"));
            }
        }
        for (at, _) in text.match_indices("docs/") {
            let doc: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c))
                .collect();
            let doc = doc.trim_end_matches('.');
            if doc.ends_with(".md") && !repo_root().join(doc).is_file() {
                bad.push(format!("{rel} cites {doc}, which does not exist"));
            }
        }
        if rel.ends_with(".rs") {
            for (at, _) in text.match_indices('§') {
                let n: String = text[at + '§'.len_utf8()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let n = n.trim_end_matches('.');
                if !known.contains(n) {
                    bad.push(format!("{rel} cites §{n}, not a section of swarm-semantics.md"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
