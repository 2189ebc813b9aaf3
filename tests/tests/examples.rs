//! Every stack under `examples/stacks/` loads, and prints exactly what `docker stack config`
//! printed for it (goldens in `tests/golden/examples/`, made with docker CLI 28.2.2 with the
//! examples folder at `/tmp/flotilla-examples`).

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use schema::load::{Files, LoadInput, SourceFile, load};
use std::path::{Path, PathBuf};

const VIRTUAL: &str = "/tmp/flotilla-examples";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/stacks")
}

struct ExampleFiles;

impl Files for ExampleFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let real = match path.strip_prefix(VIRTUAL) {
            Some(rest) => examples_dir().join(rest.trim_start_matches('/')),
            None => PathBuf::from(path),
        };
        std::fs::read(real).map_err(|e| format!("open {path}: {e}"))
    }
}

#[test]
fn every_example_stack_loads_as_docker_loads_it() {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("examples/stacks exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("stack.yml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 3, "expected at least three example stacks, found {names:?}");
    for name in names {
        let filename = format!("{VIRTUAL}/{name}/stack.yml");
        let bytes = ExampleFiles.read(&filename).expect("stack.yml readable");
        let env = [("HOME", "/home/user"), ("PATH", "/usr/local/bin:/usr/bin:/bin")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let input = LoadInput {
            files: vec![SourceFile { filename, bytes }],
            working_dir: format!("{VIRTUAL}/{name}"),
            env,
            skip_interpolation: false,
            reader: &ExampleFiles,
        };
        let loaded = load(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = schema::yaml::emit(&loaded.config.to_out());
        let golden =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("golden/examples/{name}.yml"));
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{name}: no golden file {}", golden.display()));
        assert_eq!(got, want, "{name}: output differs from docker stack config");
        assert!(loaded.warnings.is_empty(), "{name}: unexpected warnings {:?}", loaded.warnings);
    }
}
