//! A service's final environment: its `env_file:` files in order, then `environment:`, with
//! empty values filled from the caller's environment, as Docker's `resolveEnvironment` does.

use crate::load::Files;
use crate::model::ServiceConfig;
use crate::paths::abs_path;
use std::collections::BTreeMap;

fn update(
    env: &mut BTreeMap<String, Option<String>>,
    vars: BTreeMap<String, Option<String>>,
    lookup: &BTreeMap<String, String>,
) {
    for (k, v) in vars {
        let empty = v.as_deref().is_none_or(str::is_empty);
        match lookup.get(&k) {
            Some(found) if empty => env.insert(k, Some(found.clone())),
            _ => env.insert(k, v),
        };
    }
}

/// Merges `env_file:` and `environment:` into `svc.environment`.
pub fn resolve(
    svc: &mut ServiceConfig,
    working_dir: &str,
    lookup: &BTreeMap<String, String>,
    reader: &dyn Files,
) -> Result<(), String> {
    let mut env = BTreeMap::new();
    if !svc.env_file.is_empty() {
        let home = lookup.get("HOME").map_or("", String::as_str);
        let mut lines = Vec::new();
        for file in &svc.env_file {
            let path = abs_path(working_dir, file, home);
            let data = reader.read(&path)?;
            let pass = |name: &str| lookup.get(name).cloned();
            lines.extend(crate::envfile::parse(&path, &data, &pass)?);
        }
        let mut vars = BTreeMap::new();
        for line in lines {
            match line.split_once('=') {
                Some((k, v)) => vars.insert(k.to_owned(), Some(v.to_owned())),
                None => vars.insert(line, None),
            };
        }
        update(&mut env, vars, lookup);
    }
    update(&mut env, std::mem::take(&mut svc.environment), lookup);
    svc.environment = env;
    Ok(())
}
