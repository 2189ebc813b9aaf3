//! What the planner's test suites share: a stack file loaded from memory and converted.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test helpers

use reconciler_planner::{ConvertError, ObjectFiles, StackInput, convert_stack};
use reconciler_types::{StackName, StackPolicy, StackSpec};
use schema::load::{Files, LoadInput, SourceFile, load};
use schema::model::Config;
use std::collections::BTreeMap;

/// Files in memory, by absolute path.
pub struct MemFiles(pub BTreeMap<String, Vec<u8>>);

impl Files for MemFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.0.get(path).cloned().ok_or_else(|| format!("open {path}: no such file or directory"))
    }
}

/// Loads `yaml` (as `/repo/stack.yml`) with `files` readable, relative to `/repo`.
pub fn load_stack(yaml: &str, files: &[(&str, &str)]) -> (Config, ObjectFiles) {
    let mem: BTreeMap<String, Vec<u8>> =
        files.iter().map(|(k, v)| (format!("/repo/{k}"), v.as_bytes().to_vec())).collect();
    let reader = MemFiles(mem.clone());
    let input = LoadInput {
        files: vec![SourceFile { filename: "stack.yml".into(), bytes: yaml.as_bytes().to_vec() }],
        working_dir: "/repo".into(),
        env: BTreeMap::new(),
        skip_interpolation: false,
        reader: &reader,
    };
    let loaded = load(&input).unwrap_or_else(|e| panic!("{e}: {:?}\n{yaml}", e.path));
    (loaded.config, mem)
}

/// Converts stack `name` of `config` with the object files `files`.
pub fn convert_config(
    name: &str,
    config: &Config,
    files: &ObjectFiles,
) -> Result<StackSpec, Vec<ConvertError>> {
    let name = StackName::new(name);
    let policy = StackPolicy::default();
    convert_stack(&StackInput { name: &name, config, files, policy })
}

/// Loads `yaml` as stack `stack` with `files` (relative to `/repo`) and converts it.
pub fn convert(stack: &str, yaml: &str, files: &[(&str, &str)]) -> StackSpec {
    let (config, objects) = load_stack(yaml, files);
    convert_config(stack, &config, &objects).unwrap_or_else(|e| panic!("{e:?}"))
}
