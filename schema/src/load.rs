//! The whole load, in Docker's order:
//!
//! ```text
//! for each -c file:  parse YAML ─► check version ─► forbidden keys ─► interpolate
//!                    ─► schema validation ─► decode (services, networks, volumes,
//!                    secrets, configs) ─► env_file + environment, bind paths
//! then:              merge the files left to right
//! ```
//!
//! Pure: files named by `env_file:` are read through the [`Files`] the caller passes in,
//! and the environment is a map.

use crate::decode::{self, DecodeError, ObjectContext};
use crate::interpolate::interpolate;
use crate::model::Config;
use crate::paths::abs_path;
use crate::value::{Map, Value};
use crate::yaml::{line_of, parse};
use std::collections::BTreeMap;

/// Stack size for a thread that loads stack files: YAML may nest 10,000 levels deep, as
/// Docker allows, and every stage walks the tree recursively. Only the pages a load uses are
/// touched, so a large reservation costs nothing for shallow files.
pub const LOADER_STACK_BYTES: usize = 1 << 30;

/// The default when a file has no `version:` (or `"3"`).
pub const DEFAULT_VERSION: &str = "3.13";

/// Service keys Docker refuses outright.
const FORBIDDEN: &[&str] = &[
    "extends",
    "volume_driver",
    "volumes_from",
    "cpu_quota",
    "cpu_shares",
    "cpuset",
    "mem_limit",
    "memswap_limit",
];

/// Reads the files a stack refers to (`env_file:`).
pub trait Files: Sync {
    /// The bytes of `path`, or Go's error text (`open P: no such file or directory`).
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
}

/// One `-c` file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name as given (its folder is the working folder for the first file).
    pub filename: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Everything a load needs.
pub struct LoadInput<'a> {
    /// The `-c` files, in order.
    pub files: Vec<SourceFile>,
    /// The folder relative paths are resolved against (the first file's folder).
    pub working_dir: String,
    /// The environment for interpolation, `env_file` pass-through and `~`.
    pub env: BTreeMap<String, String>,
    /// Skip variable substitution (`--skip-interpolation`).
    pub skip_interpolation: bool,
    /// How referenced files are read.
    pub reader: &'a dyn Files,
}

/// A loaded stack and the warnings Docker would print while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged, normalized configuration.
    pub config: Config,
    /// Warnings, in order (Docker prints them with `level=warning`).
    pub warnings: Vec<String>,
}

/// Why a stack could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LoadError {
    /// Docker's message, exactly.
    pub message: String,
    /// The file at fault.
    pub file: String,
    /// The field path, when known (`services.web.image`).
    pub path: Option<String>,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// Further problems of the same file beyond the one Docker reports.
    pub more: Vec<String>,
}

impl LoadError {
    fn new(file: &str, message: impl Into<String>) -> Self {
        LoadError {
            message: message.into(),
            file: file.to_owned(),
            path: None,
            line: None,
            more: Vec::new(),
        }
    }

    fn at(mut self, path: &str, source: &[u8]) -> Self {
        self.line = lookup_line(path, source);
        self.path = Some(path.to_owned());
        self
    }
}

/// The line of `path`, or of its nearest parent that can be found.
fn lookup_line(path: &str, source: &[u8]) -> Option<usize> {
    let mut p = path.replace(".[]", ".0");
    loop {
        if let Some(l) = line_of(source, &p) {
            return Some(l);
        }
        match p.rfind('.') {
            Some(i) => p.truncate(i),
            None => return None,
        }
    }
}

/// `normalizeVersion` and `schema.Version`.
fn version_of(doc: &Map) -> String {
    match doc.get("version") {
        None => DEFAULT_VERSION.into(),
        Some(v) => match crate::gostr::sprint(v).as_str() {
            "" | "3" => DEFAULT_VERSION.into(),
            other => other.to_owned(),
        },
    }
}

struct Parsed<'a> {
    name: String,
    doc: Map,
    lines: &'a [u8],
}

fn parse_file(f: &SourceFile) -> Result<Parsed<'_>, LoadError> {
    let value = parse(&f.bytes)
        .map_err(|e| LoadError { line: e.line, ..LoadError::new(&f.filename, e.to_string()) })?;
    match value {
        Value::Map(doc) => Ok(Parsed { name: f.filename.clone(), doc, lines: &f.bytes }),
        _ => Err(LoadError::new(&f.filename, "top-level object must be a mapping")),
    }
}

/// Loads and merges stack files as `docker stack config` does.
pub fn load(input: &LoadInput<'_>) -> Result<Loaded, LoadError> {
    if input.files.is_empty() {
        return Err(LoadError::new("", "No files specified"));
    }
    let parsed = input.files.iter().map(parse_file).collect::<Result<Vec<_>, _>>()?;
    let version = parsed.first().map(|p| version_of(&p.doc)).unwrap_or_default();
    let mut warnings = Vec::new();
    let mut configs = Vec::with_capacity(parsed.len());
    for p in parsed {
        configs.push(load_one(p, &version, input, &mut warnings)?);
    }
    let config = crate::merge::merge(configs);
    Ok(Loaded { config, warnings })
}

fn load_one(
    mut p: Parsed<'_>,
    version: &str,
    input: &LoadInput<'_>,
    warnings: &mut Vec<String>,
) -> Result<Config, LoadError> {
    let own = version_of(&p.doc);
    if own != version {
        return Err(LoadError::new(
            &p.name,
            format!("version mismatched between two composefiles : {version} and {own}"),
        ));
    }
    if let Some(Value::Map(services)) = p.doc.get("services") {
        let bad = services.iter().find_map(|(name, s)| {
            let m = s.as_map()?;
            FORBIDDEN.iter().find(|k| m.contains_key(k)).map(|k| format!("services.{name}.{k}"))
        });
        if let Some(path) = bad {
            return Err(LoadError::new(&p.name, "Configuration contains forbidden properties")
                .at(&path, p.lines));
        }
    }
    let mut doc = std::mem::take(&mut p.doc);
    if !input.skip_interpolation {
        interpolate(&mut doc, &input.env)
            .map_err(|e| LoadError::new(&p.name, e.message).at(&e.path, p.lines))?;
    }
    let doc = Value::Map(doc);
    validate(&doc, version, &p)?;
    let Value::Map(doc) = doc else { return Ok(Config::default()) };
    decode_sections(doc, version, &p, input, warnings)
}

fn validate(value: &Value, version: &str, p: &Parsed<'_>) -> Result<(), LoadError> {
    if !crate::validate::supported_versions().contains(&version) {
        return Err(LoadError::new(
            &p.name,
            format!("unsupported Compose file version: {version}"),
        ));
    }
    crate::validate::validate(value, version).map_err(|violations| {
        let first = &violations[0];
        let mut e = LoadError::new(&p.name, first.message.clone());
        if first.path != "(root)" {
            e = e.at(&first.path, p.lines);
        }
        e.more = violations[1..].iter().map(|v| v.message.clone()).collect();
        e
    })
}

/// Decodes the document, dropping each service's tree once it is decoded (the tree and the
/// model of a large stack are never both whole).
fn decode_sections(
    mut doc: Map,
    version: &str,
    p: &Parsed<'_>,
    input: &LoadInput<'_>,
    warnings: &mut Vec<String>,
) -> Result<Config, LoadError> {
    let err = |e: DecodeError| LoadError::new(&p.name, e.0);
    let home = input.env.get("HOME").cloned().unwrap_or_default();
    let mut cfg =
        Config { filename: p.name.clone(), version: version.to_owned(), ..Default::default() };
    if let Some(Value::Map(services)) =
        doc.get_mut("services").map(|s| std::mem::replace(s, Value::Null))
    {
        cfg.services.reserve_exact(services.len());
        for (name, s) in services {
            let Value::Map(sm) = s else { continue };
            let mut svc = decode::decode_service(&name, &sm, warnings)
                .map_err(|e| err(e).at(&format!("services.{name}"), p.lines))?;
            crate::environment::resolve(&mut svc, &input.working_dir, &input.env, input.reader)
                .map_err(|m| {
                    LoadError::new(&p.name, m).at(&format!("services.{name}.env_file"), p.lines)
                })?;
            resolve_bind_paths(&mut svc, &input.working_dir, &input.env, warnings).map_err(
                |m| LoadError::new(&p.name, m).at(&format!("services.{name}.volumes"), p.lines),
            )?;
            cfg.services.push(svc);
        }
    }
    let ctx = ObjectContext { version, working_dir: &input.working_dir, home: &home };
    cfg.networks = decode::decode_networks(doc.get("networks"), &ctx, warnings)
        .map_err(|e| err(e).at("networks", p.lines))?;
    cfg.volumes = decode::decode_volumes(doc.get("volumes"), &ctx, warnings)
        .map_err(|e| err(e).at("volumes", p.lines))?;
    cfg.secrets = decode::decode_secrets(doc.get("secrets"), &ctx, warnings)
        .map_err(|e| err(e).at("secrets", p.lines))?;
    cfg.configs = decode::decode_configs(doc.get("configs"), &ctx, warnings)
        .map_err(|e| err(e).at("configs", p.lines))?;
    cfg.extras = decode::extras(&doc);
    Ok(cfg)
}

fn resolve_bind_paths(
    svc: &mut crate::model::ServiceConfig,
    working_dir: &str,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    for v in svc.volumes.iter_mut().filter(|v| v.kind == "bind") {
        if v.source.is_empty() {
            return Err(
                "invalid mount config for type \"bind\": field Source must not be empty".into()
            );
        }
        let mut path = v.source.clone();
        if path.starts_with('~') {
            match env.get("HOME") {
                Some(home) => path = path.replacen('~', home, 1),
                None => {
                    warnings.push("cannot expand '~', because the environment lacks HOME".into())
                }
            }
        }
        if !path.starts_with('/') && !is_windows_abs(&path) {
            path = abs_path(working_dir, &path, env.get("HOME").map_or("", String::as_str));
        }
        v.source = path;
    }
    Ok(())
}

fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || p.starts_with("\\\\")
}
