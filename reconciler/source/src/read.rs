//! Reading every stack of one revision: settings, discovery, loading each stack with
//! `schema::load` over the commit's tree, and reading the files its configs and secrets
//! name. A broken stack does not stop the others: every problem is collected.

use crate::SourceError;
use crate::convention::{SETTINGS_FILE, STACK_FILES, Settings, StackSettings, valid_stack_name};
use crate::repo::Repo;
use crate::tree::{ROOT, TreeFiles, normalize, repo_relative};
use git2::{ObjectType, Oid};
use reconciler_types::{StackName, StackPolicy};
use schema::load::{Files, LoadInput, SourceFile, load};
use schema::model::Config;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One stack as Git has it, loaded.
#[derive(Debug, Clone)]
pub struct StackSource {
    /// The stack's name.
    pub name: StackName,
    /// Its folder, relative to the repository root.
    pub dir: String,
    /// The loaded (merged, interpolated, validated) stack file(s).
    pub config: Config,
    /// Contents of the files its configs and secrets name, by loader path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Sync and prune.
    pub policy: StackPolicy,
    /// Docker's warnings while loading.
    pub warnings: Vec<String>,
    /// Identifies everything the stack was loaded from (its folder's tree id and the
    /// settings), when it reads nothing outside its folder: equal fingerprints at two
    /// revisions mean equal results, so the second load can be skipped.
    pub fingerprint: Option<String>,
}

/// A stack that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackProblem {
    /// The stack.
    pub stack: String,
    /// The file at fault, relative to the repository root.
    pub file: String,
    /// The field path, when known.
    pub path: Option<String>,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Every stack of one revision.
#[derive(Debug, Clone)]
pub struct Revision {
    /// The commit id.
    pub commit: String,
    /// Whether the stacks path exists at this revision.
    pub path_found: bool,
    /// Stacks that loaded.
    pub stacks: BTreeMap<StackName, StackSource>,
    /// Stacks that did not, with every problem found.
    pub problems: Vec<StackProblem>,
    /// The policy of stacks the revision does not have.
    pub default_policy: StackPolicy,
}

struct Found {
    name: String,
    dir: Vec<String>,
    files: Vec<String>,
    env_files: Option<Vec<String>>,
    settings: Option<StackSettings>,
    fingerprint: String,
}

fn problem(stack: &str, file: &str, message: impl Into<String>) -> StackProblem {
    StackProblem {
        stack: stack.to_owned(),
        file: file.to_owned(),
        path: None,
        line: None,
        message: message.into(),
    }
}

impl Repo {
    /// Reads the stacks under `stacks_path` at `rev` (only `only`, when given).
    ///
    /// # Errors
    /// When the revision does not resolve or `flotilla.yaml` is broken. Broken stacks are
    /// reported in [`Revision::problems`] instead.
    pub fn read(
        &self,
        rev: &str,
        stacks_path: &str,
        only: Option<&str>,
    ) -> Result<Revision, SourceError> {
        self.read_reusing(rev, stacks_path, only, None)
    }

    /// [`Repo::read`], taking stacks whose inputs did not change from `earlier` (another
    /// revision of the same repository) instead of loading them again.
    ///
    /// # Errors
    /// As [`Repo::read`].
    pub fn read_reusing(
        &self,
        rev: &str,
        stacks_path: &str,
        only: Option<&str>,
        earlier: Option<&Revision>,
    ) -> Result<Revision, SourceError> {
        let commit = self.resolve(rev)?;
        let tree = self.tree_of(&commit)?;
        let files = TreeFiles::new(&self.inner, tree);
        let base = normalize(stacks_path).unwrap_or_default();
        let path_found = base.is_empty() || self.is_dir(tree, &base.join("/"))?;
        let mut settings_path = base.clone();
        settings_path.push(SETTINGS_FILE.to_owned());
        let shown = settings_path.join("/");
        let (settings, settings_text) = match files.read_rel(&settings_path, &shown) {
            Ok(text) => (
                Settings::parse(&text)
                    .map_err(|message| SourceError::Settings { file: shown.clone(), message })?,
                text,
            ),
            Err(_) => (Settings::default(), Vec::new()),
        };
        let mut rev_out = Revision {
            commit,
            path_found,
            stacks: BTreeMap::new(),
            problems: Vec::new(),
            default_policy: settings.default_policy(),
        };
        let found = match &settings.stacks {
            Some(list) => listed(list, &base),
            None => self.discover(tree, &base)?,
        };
        let settings_digest = crate::repo::short_digest(&settings_text);
        let mut found: Vec<Found> =
            found.into_iter().filter(|f| only.is_none_or(|o| o == f.name)).collect();
        for f in &mut found {
            let dir = self.subtree(tree, &f.dir.join("/"))?;
            f.fingerprint = format!("{dir}:{settings_digest}");
        }
        let (reused, found): (Vec<Found>, Vec<Found>) = found.into_iter().partition(|f| {
            earlier
                .and_then(|e| e.stacks.get(&StackName::new(f.name.clone())))
                .is_some_and(|s| s.fingerprint.as_deref() == Some(f.fingerprint.as_str()))
        });
        for f in reused {
            if let Some(s) = earlier.and_then(|e| e.stacks.get(&StackName::new(f.name))) {
                rev_out.stacks.insert(s.name.clone(), s.clone());
            }
        }
        let results = load_all(&files, &found, &settings);
        for result in results {
            match result {
                Ok(s) => {
                    rev_out.stacks.insert(s.name.clone(), s);
                }
                Err(mut p) => rev_out.problems.append(&mut p),
            }
        }
        Ok(rev_out)
    }

    fn tree_of(&self, commit: &str) -> Result<Oid, SourceError> {
        let repo = self.inner.lock().map_err(|_| SourceError::Poisoned)?;
        let oid = Oid::from_str(commit).map_err(|e| SourceError::Git(e.message().to_owned()))?;
        let c = repo.find_commit(oid).map_err(|e| SourceError::Git(e.message().to_owned()))?;
        Ok(c.tree_id())
    }

    /// The id of the tree at `rel` (empty when there is none).
    fn subtree(&self, tree: Oid, rel: &str) -> Result<String, SourceError> {
        let repo = self.inner.lock().map_err(|_| SourceError::Poisoned)?;
        let t = repo.find_tree(tree).map_err(|e| SourceError::Git(e.message().to_owned()))?;
        Ok(t.get_path(std::path::Path::new(rel)).map(|e| e.id().to_string()).unwrap_or_default())
    }

    fn is_dir(&self, tree: Oid, rel: &str) -> Result<bool, SourceError> {
        let repo = self.inner.lock().map_err(|_| SourceError::Poisoned)?;
        let t = repo.find_tree(tree).map_err(|e| SourceError::Git(e.message().to_owned()))?;
        Ok(t.get_path(std::path::Path::new(rel)).is_ok_and(|e| e.kind() == Some(ObjectType::Tree)))
    }

    /// Every folder under `base` holding a stack file.
    fn discover(&self, tree: Oid, base: &[String]) -> Result<Vec<Found>, SourceError> {
        let repo = self.inner.lock().map_err(|_| SourceError::Poisoned)?;
        let git = |e: git2::Error| SourceError::Git(e.message().to_owned());
        let root = repo.find_tree(tree).map_err(git)?;
        let dir = if base.is_empty() {
            root
        } else {
            match root.get_path(std::path::Path::new(&base.join("/"))) {
                Ok(e) if e.kind() == Some(ObjectType::Tree) => {
                    repo.find_tree(e.id()).map_err(git)?
                }
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        for entry in dir.iter().filter(|e| e.kind() == Some(ObjectType::Tree)) {
            let Ok(name) = entry.name() else { continue };
            let sub = repo.find_tree(entry.id()).map_err(git)?;
            let Some(file) = STACK_FILES.iter().find(|f| sub.get_name(f).is_some()) else {
                continue;
            };
            let mut d = base.to_vec();
            d.push(name.to_owned());
            out.push(Found {
                name: name.to_owned(),
                dir: d,
                files: vec![(*file).to_owned()],
                env_files: None,
                settings: None,
                fingerprint: String::new(),
            });
        }
        Ok(out)
    }
}

type Loaded = Result<StackSource, Vec<StackProblem>>;

/// Loads every stack, on as many threads as there are cores (loading is CPU-bound; the
/// repository is only locked while a blob is read), each with the loader's large stack so
/// that deeply nested YAML is an error, not a crash. Results come back in `found`'s order.
fn load_all(files: &TreeFiles<'_>, found: &[Found], settings: &Settings) -> Vec<Loaded> {
    let load_one = |f: &Found| -> Loaded {
        if !valid_stack_name(&f.name) {
            return Err(vec![problem(&f.name, &f.dir.join("/"), "invalid stack name")]);
        }
        load_stack(files, f, settings.policy(f.settings.as_ref()))
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(found.len());
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Loaded>> = Vec::new();
    slots.resize_with(found.len(), || None);
    let done: Vec<Vec<(usize, Loaded)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .filter_map(|_| {
                let worker = || {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = found.get(i) else { break };
                        out.push((i, load_one(f)));
                    }
                    out
                };
                std::thread::Builder::new()
                    .name("load".into())
                    .stack_size(schema::load::LOADER_STACK_BYTES)
                    .spawn_scoped(scope, worker)
                    .ok()
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (i, r) in done.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .zip(found)
        .map(|(r, f)| {
            r.unwrap_or_else(|| {
                Err(vec![problem(&f.name, &f.dir.join("/"), "loading stopped unexpectedly")])
            })
        })
        .collect()
}

fn listed(list: &BTreeMap<String, StackSettings>, base: &[String]) -> Vec<Found> {
    list.iter()
        .map(|(name, s)| {
            let rel = s.path.clone().unwrap_or_else(|| name.clone());
            let dir = normalize(&format!("{}/{rel}", base.join("/"))).unwrap_or_default();
            let files =
                if s.files.is_empty() { vec!["stack.yml".to_owned()] } else { s.files.clone() };
            Found {
                name: name.clone(),
                dir,
                files,
                env_files: s.env_files.clone(),
                settings: Some(s.clone()),
                fingerprint: String::new(),
            }
        })
        .collect()
}

fn read_env(
    files: &TreeFiles<'_>,
    f: &Found,
    dir: &str,
) -> Result<BTreeMap<String, String>, StackProblem> {
    let (names, required) = match &f.env_files {
        Some(list) => (list.clone(), true),
        None => (vec![".env".to_owned()], false),
    };
    let mut env = BTreeMap::new();
    for name in names {
        let path = schema::paths::abs_path(&format!("{ROOT}/{dir}"), &name, "");
        let shown = path.strip_prefix(&format!("{ROOT}/")).unwrap_or(&path).to_owned();
        let data = match files.read(&path) {
            Ok(d) => d,
            Err(_) if !required => continue,
            Err(e) => return Err(problem(&f.name, &shown, e)),
        };
        let lines = schema::envfile::parse(&shown, &data, &|_| None)
            .map_err(|e| problem(&f.name, &shown, e))?;
        for l in lines {
            if let Some((k, v)) = l.split_once('=') {
                env.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Ok(env)
}

fn load_stack(
    files: &TreeFiles<'_>,
    f: &Found,
    policy: StackPolicy,
) -> Result<StackSource, Vec<StackProblem>> {
    let dir = f.dir.join("/");
    let env = read_env(files, f, &dir).map_err(|p| vec![p])?;
    let mut sources = Vec::new();
    for name in &f.files {
        let rel = format!("{dir}/{name}");
        let parts = normalize(&rel)
            .ok_or_else(|| vec![problem(&f.name, &rel, "path is outside the repository")])?;
        let shown = parts.join("/");
        let bytes =
            files.read_rel(&parts, &shown).map_err(|e| vec![problem(&f.name, &shown, e)])?;
        sources.push(SourceFile { filename: shown, bytes });
    }
    let input = LoadInput {
        files: sources,
        working_dir: format!("{ROOT}/{dir}"),
        env,
        skip_interpolation: false,
        reader: files,
    };
    let loaded = load(&input).map_err(|e| {
        let mut out = vec![StackProblem {
            stack: f.name.clone(),
            file: e.file.clone(),
            path: e.path.clone(),
            line: e.line,
            message: e.message.clone(),
        }];
        out.extend(e.more.iter().map(|m| problem(&f.name, &e.file, m.clone())));
        out
    })?;
    let config = loaded.config;
    let objects = read_objects(files, f, &dir, &config)?;
    let fingerprint = self_contained(f, &dir, &config, &objects).then(|| f.fingerprint.clone());
    Ok(StackSource {
        name: StackName::new(f.name.clone()),
        dir,
        config,
        files: objects,
        policy,
        warnings: loaded.warnings,
        fingerprint,
    })
}

/// The contents of the files the stack's configs and secrets name.
fn read_objects(
    files: &TreeFiles<'_>,
    f: &Found,
    dir: &str,
    config: &Config,
) -> Result<BTreeMap<String, Vec<u8>>, Vec<StackProblem>> {
    let mut objects = BTreeMap::new();
    let mut problems = Vec::new();
    let referenced = config
        .configs
        .iter()
        .map(|(k, o)| ("configs", k, o))
        .chain(config.secrets.iter().map(|(k, o)| ("secrets", k, o)));
    for (kind, key, obj) in referenced {
        if obj.external.external || obj.file.is_empty() {
            continue;
        }
        let file = f.files.first().map(|n| format!("{dir}/{n}")).unwrap_or_default();
        let shown =
            repo_relative(&obj.file).map(|p| p.join("/")).unwrap_or_else(|_| obj.file.clone());
        match files.read(&obj.file) {
            Ok(data) => {
                objects.insert(obj.file.clone(), data);
            }
            Err(e) => problems.push(StackProblem {
                stack: f.name.clone(),
                file,
                path: Some(format!("{kind}.{key}.file")),
                line: None,
                message: format!("{shown}: {}", e.rsplit(": ").next().unwrap_or(&e)),
            }),
        }
    }
    if problems.is_empty() { Ok(objects) } else { Err(problems) }
}

/// Whether everything the stack read lies inside its folder (stack files, env files,
/// config and secret files), so that its folder's tree id identifies its inputs.
fn self_contained(
    f: &Found,
    dir: &str,
    config: &Config,
    objects: &BTreeMap<String, Vec<u8>>,
) -> bool {
    let root = format!("{ROOT}/{dir}");
    let inside = |p: &str| {
        let abs = schema::paths::abs_path(&root, p, "");
        abs.strip_prefix(&root).is_some_and(|rest| rest.starts_with('/'))
    };
    f.files.iter().all(|p| inside(p))
        && f.env_files.iter().flatten().all(|p| inside(p))
        && config.services.iter().flat_map(|s| &s.env_file).all(|p| inside(p))
        && objects.keys().all(|p| inside(p))
}
