//! Every case of the `docker stack config` corpus: valid cases must print Docker's output
//! byte for byte with the same warnings, invalid cases must fail with Docker's first error
//! line, override pairs must merge as Docker merges them. Prints `N passed, N failed`.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flotilla_tests::corpus::{Case, cases, expected, run};

/// The one case whose Docker message is not stable: the file has four schema violations at
/// the same depth and Docker reports one of them picked in Go map order, so five runs gave
/// four different first lines (the corpus README says to compare its status only). It must
/// still fail; its message is not compared.
const RANDOM_MESSAGE: &str = "stacks/invalid/example-voting-app__docker-compose.yml";

fn strip_stacks(p: &str) -> &str {
    p.strip_prefix("stacks/").unwrap_or(p)
}

fn check(case: &Case, failures: &mut Vec<String>) {
    let rel = strip_stacks(&case.path);
    let (files, exp_base): (Vec<String>, String) = if rel.starts_with("overrides/") {
        let dir =
            if rel.ends_with(".yml") { rel.rsplit_once('/').map_or(rel, |(d, _)| d) } else { rel };
        let dir = dir.trim_end_matches('/').to_owned();
        (
            vec![format!("{dir}/base.yml"), format!("{dir}/override.yml")],
            format!("stacks/{dir}/expected"),
        )
    } else {
        (
            vec![rel.to_owned()],
            format!("stacks/{}", rel.trim_end_matches(".yml").to_owned() + ".expected"),
        )
    };
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = run(&refs, case.env.as_deref());
    let sep = "-";
    let yml = expected(&format!("{exp_base}.yml"));
    let err = expected(&format!("{exp_base}{sep}error.txt"));
    let warn = expected(&format!("{exp_base}{sep}warnings.txt"))
        .map(|w| {
            w.lines()
                .map(|l| l.trim_start_matches("level=warning msg=").trim_matches('"').to_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    match (&out.result, yml, case.expect_ok) {
        (Ok(got), Some(want), true) => {
            if *got != want {
                failures.push(format!("{}: output differs\n{}", case.path, diff(&want, got)));
            } else if out.warnings != warn {
                failures.push(format!(
                    "{}: warnings differ\n want {:?}\n  got {:?}",
                    case.path, warn, out.warnings
                ));
            }
        }
        (Err(e), _, true) => failures.push(format!("{}: rejected: {e}", case.path)),
        (Ok(_), _, false) => failures.push(format!("{}: accepted, Docker rejects it", case.path)),
        (Err(_), _, false) if case.path == RANDOM_MESSAGE => {}
        (Err(e), _, false) => {
            let want =
                err.as_deref().and_then(|t| t.lines().next()).unwrap_or(&case.error_first_line);
            let got = e.lines().next().unwrap_or("");
            if got != want {
                failures.push(format!(
                    "{}: error message differs\n    docker:   {want}\n    flotilla: {got}",
                    case.path
                ));
            }
        }
        (Ok(_), None, true) => {
            failures.push(format!("{}: no expected output in the corpus", case.path))
        }
    }
}

fn diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    for i in 0..w.len().max(g.len()) {
        if w.get(i) != g.get(i) {
            return format!(
                "  line {}:\n    docker:   {:?}\n    flotilla: {:?}",
                i + 1,
                w.get(i),
                g.get(i)
            );
        }
    }
    String::new()
}

#[test]
fn corpus_matches_docker_stack_config() {
    let all = cases();
    assert!(all.len() > 150, "the corpus manifest lists only {} cases", all.len());
    let mut failures = Vec::new();
    let mut seen_overrides = std::collections::BTreeSet::new();
    let mut total = 0;
    for case in &all {
        if case.path.contains("/overrides/") {
            let dir = if case.path.ends_with(".yml") {
                case.path.rsplit_once('/').map(|(d, _)| d.to_owned()).unwrap_or_default()
            } else {
                case.path.trim_end_matches('/').to_owned()
            };
            if !seen_overrides.insert(dir) {
                continue;
            }
        }
        total += 1;
        check(case, &mut failures);
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    let messages = all.iter().filter(|c| !c.expect_ok && c.path != RANDOM_MESSAGE).count();
    println!("corpus: {} passed, {} failed", total - failures.len(), failures.len());
    println!("error messages compared with Docker's first line: {messages} invalid cases");
    assert!(failures.is_empty(), "{} corpus cases failed", failures.len());
}
