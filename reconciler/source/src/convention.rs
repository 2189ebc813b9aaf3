//! The repository convention (docs/architecture.md): stacks live under one path (default `stacks/`),
//! one folder per stack holding `stack.yml`, `docker-compose.yml` or `compose.yaml`, the
//! stack named after the folder. An optional `flotilla.yaml` at that path sets defaults
//! and may list the stacks explicitly:
//!
//! ```yaml
//! prune: false          # default for every stack (services that left Git are orphaned)
//! sync: auto            # auto | manual
//! self_heal: true       # revert changes made by hand (default: on with auto sync)
//! stacks:               # optional: when present, exactly these stacks
//!   shop:
//!     path: shop        # folder under the stacks path (default: the stack's name)
//!     files: [stack.yml, stack.prod.yml]   # merged in order, like `-c a -c b`
//!     env_files: [.env] # interpolation variables (default: `.env` when the folder has one)
//!     sync: manual
//!     prune: true
//!     self_heal: false
//! ```

use reconciler_types::{StackPolicy, SyncPolicy};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The name of the settings file.
pub const SETTINGS_FILE: &str = "flotilla.yaml";

/// File names that make a folder a stack, in order of preference.
pub const STACK_FILES: &[&str] = &[
    "stack.yml",
    "stack.yaml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.yaml",
    "compose.yml",
];

/// `flotilla.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Default prune for every stack.
    #[serde(default)]
    pub prune: bool,
    /// Default sync policy.
    #[serde(default)]
    pub sync: SyncPolicy,
    /// Default self-heal.
    #[serde(default)]
    pub self_heal: Option<bool>,
    /// Stacks listed explicitly (when present, discovery is off).
    #[serde(default)]
    pub stacks: Option<BTreeMap<String, StackSettings>>,
}

/// One stack in `flotilla.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSettings {
    /// The folder under the stacks path.
    #[serde(default)]
    pub path: Option<String>,
    /// Stack files merged in order.
    #[serde(default)]
    pub files: Vec<String>,
    /// Env files for interpolation.
    #[serde(default)]
    pub env_files: Option<Vec<String>>,
    /// Sync policy.
    #[serde(default)]
    pub sync: Option<SyncPolicy>,
    /// Prune.
    #[serde(default)]
    pub prune: Option<bool>,
    /// Self-heal.
    #[serde(default)]
    pub self_heal: Option<bool>,
}

impl Settings {
    /// Parses `flotilla.yaml`.
    ///
    /// # Errors
    /// YAML errors and unknown keys, as text.
    pub fn parse(text: &[u8]) -> Result<Settings, String> {
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Settings::default());
        }
        serde_yaml::from_slice(text).map_err(|e| e.to_string())
    }

    /// The policy of a stack.
    pub fn policy(&self, stack: Option<&StackSettings>) -> StackPolicy {
        StackPolicy {
            sync: stack.and_then(|s| s.sync).unwrap_or(self.sync),
            prune: stack.and_then(|s| s.prune).unwrap_or(self.prune),
            self_heal: stack.and_then(|s| s.self_heal).or(self.self_heal),
        }
    }

    /// The default policy (for stacks Git no longer has).
    pub fn default_policy(&self) -> StackPolicy {
        self.policy(None)
    }
}

/// Whether a stack name is one Docker accepts (it becomes part of every object's name).
pub fn valid_stack_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with(['.', '-', '_'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_stacks_and_policies() {
        let s = Settings::parse(
            b"prune: true\nstacks:\n  shop:\n    files: [a.yml, b.yml]\n    sync: manual\n",
        )
        .unwrap();
        assert!(s.prune);
        let shop = &s.stacks.as_ref().unwrap()["shop"];
        assert_eq!(shop.files, vec!["a.yml", "b.yml"]);
        assert_eq!(
            s.policy(Some(shop)),
            StackPolicy { sync: SyncPolicy::Manual, prune: true, self_heal: None }
        );
        assert!(!s.policy(Some(shop)).self_heals());
        assert!(s.default_policy().self_heals());
    }

    #[test]
    fn settings_refuse_unknown_keys() {
        assert!(Settings::parse(b"prnue: true\n").unwrap_err().contains("prnue"));
    }

    #[test]
    fn valid_stack_name_refuses_odd_folders() {
        assert!(valid_stack_name("shop-2"));
        assert!(!valid_stack_name(".git"));
        assert!(!valid_stack_name("a b"));
    }
}
