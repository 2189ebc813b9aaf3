//! Bad input never panics and never hangs: arbitrary bytes, YAML-like noise, alias bombs,
//! deep nesting, and every interpolation form on random strings.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use schema::load::{Files, LoadInput, SourceFile, load};
use std::collections::BTreeMap;

struct NoFiles;

impl Files for NoFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!("open {path}: no such file or directory"))
    }
}

fn load_bytes(bytes: Vec<u8>) -> Result<String, String> {
    let input = LoadInput {
        files: vec![SourceFile { filename: "/w/stack.yml".into(), bytes }],
        working_dir: "/w".into(),
        env: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
        skip_interpolation: false,
        reader: &NoFiles,
    };
    load(&input).map(|l| schema::yaml::emit(&l.config.to_out())).map_err(|e| e.message)
}

/// Runs on a thread with a large stack, as the CLI does.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new().stack_size(1 << 30).spawn_scoped(s, f).unwrap().join().unwrap()
    })
}

const YAMLISH: &str = "(version: \"3.8\"\n|services:\n|  web:\n|    image: |[a-z$\\{\\}:\\-?]{0,12}|\n|    ports: |\\[\"80:80\"\\]|&a |\\*a|<<: |- |\\{|\\}|\\[|\\]|'|\"|#|    deploy:\n|      replicas: |[0-9]{1,3}|    environment:\n|      X: |\t| ){0,40}";

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = load_bytes(bytes);
    }

    #[test]
    fn yaml_like_text_never_panics(text in YAMLISH) {
        let _ = load_bytes(text.into_bytes());
    }

    #[test]
    fn interpolation_never_panics(s in "[a-zA-Z0-9_${}:?+\\- ]{0,40}") {
        let env = BTreeMap::from([("A".to_owned(), "x".to_owned()), ("E".to_owned(), String::new())]);
        let _ = schema::interpolate::substitute(&s, &env);
    }
}

#[test]
fn alias_bombs_fail_fast() {
    let mut s = String::from(
        "version: '3.8'\nx-a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let (prev, cur) = (w[0], w[1]);
        s.push_str(&format!("x-{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    // Bounded time is enforced by the test runner's timeout.
    assert_eq!(
        load_bytes(s.into_bytes()),
        Err("yaml: document contains excessive aliasing".into())
    );
}

#[test]
fn nesting_thousands_deep_is_a_clear_error() {
    let deep = format!("version: '3.8'\nx-a: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    let r = on_big_stack(|| load_bytes(deep.into_bytes()));
    assert_eq!(r, Err("yaml: line 2: exceeded max depth of 10000".into()));
    let ok = format!(
        "version: '3.8'\nservices: {{}}\nx-a: {}{}\n",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    assert!(on_big_stack(|| load_bytes(ok.into_bytes())).is_ok());
}

#[test]
fn invalid_utf8_and_duplicate_keys_are_errors() {
    assert_eq!(
        load_bytes(b"version: '3.8'\nx: \"\xff\"\n".to_vec()),
        Err("yaml: invalid leading UTF-8 octet".into())
    );
    assert_eq!(
        load_bytes(b"version: '3.8'\nservices: {}\nservices: {}\n".to_vec()),
        Err(
            "yaml: unmarshal errors:\n  line 3: mapping key \"services\" already defined at line 2"
                .into()
        )
    );
}

#[test]
fn a_missing_env_file_is_named() {
    let r = load_bytes(
        b"version: '3.8'\nservices:\n  a:\n    image: x\n    env_file: ../../etc/x.env\n".to_vec(),
    );
    assert_eq!(r, Err("open /etc/x.env: no such file or directory".into()));
}
