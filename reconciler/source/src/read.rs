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
use std::sync::Mutex;
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

/// Every stack of one revision: [`StackSource`]s from [`Repo::read`], or whatever
/// [`Repo::read_pair`]'s `then` made of each.
#[derive(Debug, Clone)]
pub struct Revision<S = StackSource> {
    /// The commit id.
    pub commit: String,
    /// Whether the stacks path exists at this revision.
    pub path_found: bool,
    /// Stacks that loaded.
    pub stacks: BTreeMap<StackName, S>,
    /// Stacks that did not, with every problem found.
    pub problems: Vec<StackProblem>,
    /// The policy of stacks the revision does not have.
    pub default_policy: StackPolicy,
}

/// One revision before its stacks are loaded: what to load, from which tree.
struct Planned {
    commit: String,
    path_found: bool,
    tree: Oid,
    settings: Settings,
    found: Vec<Found>,
}

impl<S> Revision<S> {
    /// The same revision without its stacks.
    fn emptied<T>(self) -> Revision<T> {
        Revision {
            commit: self.commit,
            path_found: self.path_found,
            stacks: BTreeMap::new(),
            problems: self.problems,
            default_policy: self.default_policy,
        }
    }
}

impl Planned {
    fn revision<S>(&self) -> Revision<S> {
        Revision {
            commit: self.commit.clone(),
            path_found: self.path_found,
            stacks: BTreeMap::new(),
            problems: Vec::new(),
            default_policy: self.settings.default_policy(),
        }
    }
}

/// One unit of work of [`Repo::read_pair`]'s pool, by index into the revisions' stacks.
#[derive(Clone, Copy)]
enum Job {
    /// A stack of the head.
    Head(usize),
    /// A stack of the base.
    Base(usize),
    /// The same stack at both revisions, with equal fingerprints: loaded at the head, and
    /// at the base only when the head's load turns out not to be reusable.
    Both(usize, usize),
}

/// A stack loaded and turned into a `T`, or why it could not be.
type Made<T> = Result<T, Vec<StackProblem>>;

/// One stack's sides waiting for each other in [`Repo::compare`].
struct Meeting<T> {
    head: Option<T>,
    base: Option<T>,
    /// Jobs of the stack still running.
    pending: usize,
}

/// What one job of [`Repo::compare`] gave: whether each side it loaded did (its problems
/// if not), and the stack's `meet` when it was the stack's last job.
struct Worked<U> {
    head: Option<Made<()>>,
    base: Option<Made<()>>,
    met: Option<U>,
}

/// Both revisions of [`Repo::compare`], and what `meet` made of each stack.
#[derive(Debug)]
pub struct Compared<U> {
    /// The head: its commit, settings and problems; `stacks` names those that loaded.
    pub head: Revision<()>,
    /// The base, or why it could not be read at all.
    pub base: Result<Revision<()>, SourceError>,
    /// `meet`'s result for every stack of either revision.
    pub stacks: BTreeMap<StackName, U>,
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
        let planned = self.plan(rev, stacks_path, only)?;
        let mut rev_out = planned.revision();
        let (reused, found): (Vec<&Found>, Vec<&Found>) = planned.found.iter().partition(|f| {
            earlier
                .and_then(|e| e.stacks.get(&StackName::new(f.name.clone())))
                .is_some_and(|s| s.fingerprint.as_deref() == Some(f.fingerprint.as_str()))
        });
        for f in reused {
            if let Some(s) = earlier.and_then(|e| e.stacks.get(&StackName::new(f.name.clone()))) {
                rev_out.stacks.insert(s.name.clone(), s.clone());
            }
        }
        let files = TreeFiles::new(&self.inner, planned.tree);
        let results = in_pool(&found, &|f: &&Found| load_found(&files, f, &planned.settings));
        for (result, f) in results.into_iter().zip(&found) {
            match result.unwrap_or_else(|| Err(stopped(f))) {
                Ok(s) => {
                    rev_out.stacks.insert(s.name.clone(), s);
                }
                Err(mut p) => rev_out.problems.append(&mut p),
            }
        }
        Ok(rev_out)
    }

    /// Reads the stacks of two revisions at once, as `reconcile --base` compares them: every
    /// load of both revisions in one pool of threads from the start, each stack turned into
    /// a `T` by `then` on the thread that loaded it (so that the loaded stack file is freed
    /// at once), and a stack whose inputs are equal at both revisions loaded only once.
    ///
    /// The base's own failures (a revision that does not resolve, a broken `flotilla.yaml`)
    /// come back as its `Err`, so that the caller can report the head's problems first.
    ///
    /// # Errors
    /// When the head's revision does not resolve or its `flotilla.yaml` is broken.
    #[allow(clippy::type_complexity)] // the two revisions, the second fallible on its own
    pub fn read_pair<T, F>(
        &self,
        head: &str,
        base: &str,
        stacks_path: &str,
        only: Option<&str>,
        then: F,
    ) -> Result<(Revision<T>, Result<Revision<T>, SourceError>), SourceError>
    where
        T: Clone + Send,
        F: Fn(&StackSource) -> T + Sync,
    {
        let met = self.compare(head, base, stacks_path, only, then, |_, h, b| (h, b))?;
        let (mut head_out, mut base_out) = (met.head.emptied(), met.base.map(Revision::emptied));
        for (name, (h, b)) in met.stacks {
            if let Some(h) = h {
                head_out.stacks.insert(name.clone(), h);
            }
            if let (Some(b), Ok(base)) = (b, &mut base_out) {
                base.stacks.insert(name, b);
            }
        }
        Ok((head_out, base_out))
    }

    /// [`Repo::read_pair`], and each stack's two sides handed to `meet` as soon as both are
    /// ready, on the thread that made the second: `meet(name, at_head, at_base)`, where
    /// `None` is a stack that the revision does not have or could not load (its problems
    /// are in that revision's [`Revision::problems`]). Nothing but `meet`'s results is kept,
    /// so a caller that only needs, say, the difference of the two sides never holds every
    /// stack of both revisions at once. The revisions' `stacks` name the stacks that loaded.
    ///
    /// # Errors
    /// As [`Repo::read_pair`].
    pub fn compare<T, U, F, M>(
        &self,
        head: &str,
        base: &str,
        stacks_path: &str,
        only: Option<&str>,
        then: F,
        meet: M,
    ) -> Result<Compared<U>, SourceError>
    where
        T: Clone + Send,
        U: Send,
        F: Fn(&StackSource) -> T + Sync,
        M: Fn(&StackName, Option<T>, Option<T>) -> U + Sync,
    {
        let head_plan = self.plan(head, stacks_path, only)?;
        let base_plan = self.plan(base, stacks_path, only);
        let (head_out, base_out, stacks) =
            self.load_planned(&head_plan, base_plan.as_ref().ok(), &then, &meet);
        let base_out = base_plan.map(|bp| base_out.unwrap_or_else(|| bp.revision()));
        Ok(Compared { head: head_out, base: base_out, stacks })
    }

    /// [`Repo::read`], each stack turned into a `T` by `then` on the thread that loaded it.
    ///
    /// # Errors
    /// As [`Repo::read`].
    pub fn read_with<T, F>(
        &self,
        rev: &str,
        stacks_path: &str,
        only: Option<&str>,
        then: F,
    ) -> Result<Revision<T>, SourceError>
    where
        T: Clone + Send,
        F: Fn(&StackSource) -> T + Sync,
    {
        let planned = self.plan(rev, stacks_path, only)?;
        let (rev, _, stacks) = self.load_planned(&planned, None, &then, &|_, h, _| h);
        let mut out = rev.emptied();
        out.stacks = stacks.into_iter().filter_map(|(name, t)| Some((name, t?))).collect();
        Ok(out)
    }

    /// Loads the stacks of `head_plan` and `base_plan` in one pool (see [`Repo::compare`]).
    #[allow(clippy::type_complexity)] // the two revisions and the met stacks
    fn load_planned<T, U, F, M>(
        &self,
        head_plan: &Planned,
        base_plan: Option<&Planned>,
        then: &F,
        meet: &M,
    ) -> (Revision<()>, Option<Revision<()>>, BTreeMap<StackName, U>)
    where
        T: Clone + Send,
        U: Send,
        F: Fn(&StackSource) -> T + Sync,
        M: Fn(&StackName, Option<T>, Option<T>) -> U + Sync,
    {
        let no_stacks = Vec::new();
        let base_found = base_plan.map_or(&no_stacks, |bp| &bp.found);
        // Every stack name of either revision, in order; a stack's jobs are next to each
        // other, so that its two sides meet (and are freed) soon after they are made.
        let mut sides: BTreeMap<&str, (Option<usize>, Option<usize>)> = BTreeMap::new();
        for (i, h) in head_plan.found.iter().enumerate() {
            sides.entry(h.name.as_str()).or_default().0.get_or_insert(i);
        }
        for (j, b) in base_found.iter().enumerate() {
            sides.entry(b.name.as_str()).or_default().1.get_or_insert(j);
        }
        let names: Vec<StackName> = sides.keys().map(|n| StackName::new((*n).to_owned())).collect();
        let mut jobs = Vec::with_capacity(head_plan.found.len() + base_found.len());
        let mut meetings = Vec::with_capacity(names.len());
        for (k, (h, b)) in sides.values().enumerate() {
            let same =
                |i: usize, j: usize| base_found[j].fingerprint == head_plan.found[i].fingerprint;
            let pending = match (*h, *b) {
                (Some(i), Some(j)) if same(i, j) => {
                    jobs.push((k, Job::Both(i, j)));
                    1
                }
                (h, b) => {
                    jobs.extend(h.map(|i| (k, Job::Head(i))));
                    jobs.extend(b.map(|j| (k, Job::Base(j))));
                    usize::from(h.is_some()) + usize::from(b.is_some())
                }
            };
            meetings.push(Mutex::new(Meeting { head: None, base: None, pending }));
        }

        let head_files = TreeFiles::new(&self.inner, head_plan.tree);
        let base_files = base_plan.map(|bp| TreeFiles::new(&self.inner, bp.tree));
        let at_head = |i: usize| -> (Made<T>, bool) {
            let loaded = load_found(&head_files, &head_plan.found[i], &head_plan.settings);
            let reusable = loaded.as_ref().is_ok_and(|s| s.fingerprint.is_some());
            (loaded.map(|s| then(&s)), reusable)
        };
        let at_base = |j: usize| -> Made<T> {
            match (base_plan, &base_files) {
                (Some(bp), Some(files)) => {
                    load_found(files, &bp.found[j], &bp.settings).map(|s| then(&s))
                }
                _ => Err(stopped(&base_found[j])),
            }
        };
        let work = |&(k, job): &(usize, Job)| -> Worked<U> {
            let (h, b) = match job {
                Job::Head(i) => (Some(at_head(i).0), None),
                Job::Base(j) => (None, Some(at_base(j))),
                Job::Both(i, j) => {
                    let (h, reusable) = at_head(i);
                    let b = match &h {
                        Ok(t) if reusable => Ok(t.clone()),
                        _ => at_base(j),
                    };
                    (Some(h), Some(b))
                }
            };
            let split = |r: Option<Made<T>>| match r {
                Some(Ok(t)) => (Some(t), None, true),
                Some(Err(p)) => (None, Some(p), false),
                None => (None, None, false),
            };
            let ((ht, hp, h_ok), (bt, bp, b_ok)) = (split(h), split(b));
            let ready = meetings.get(k).and_then(|m| m.lock().ok()).and_then(|mut m| {
                m.head = m.head.take().or(ht);
                m.base = m.base.take().or(bt);
                m.pending = m.pending.saturating_sub(1);
                (m.pending == 0).then(|| (m.head.take(), m.base.take()))
            });
            let met = ready.map(|(h, b)| meet(&names[k], h, b));
            Worked {
                head: hp.map(Err).or(h_ok.then_some(Ok(()))),
                base: bp.map(Err).or(b_ok.then_some(Ok(()))),
                met,
            }
        };
        let results = in_pool(&jobs, &work);

        let mut head_slots: Vec<Option<Made<()>>> = Vec::new();
        head_slots.resize_with(head_plan.found.len(), || None);
        let mut base_slots: Vec<Option<Made<()>>> = Vec::new();
        base_slots.resize_with(base_found.len(), || None);
        let mut stacks = BTreeMap::new();
        for (done, (k, job)) in results.into_iter().zip(&jobs) {
            let Some(done) = done else { continue };
            match *job {
                Job::Head(i) => head_slots[i] = done.head,
                Job::Base(j) => base_slots[j] = done.base,
                Job::Both(i, j) => {
                    head_slots[i] = done.head;
                    base_slots[j] = done.base;
                }
            }
            if let Some(u) = done.met {
                stacks.insert(names[*k].clone(), u);
            }
        }
        (collect(head_plan, head_slots), base_plan.map(|bp| collect(bp, base_slots)), stacks)
    }

    /// Resolves `rev` and lists its stacks, with their fingerprints.
    fn plan(
        &self,
        rev: &str,
        stacks_path: &str,
        only: Option<&str>,
    ) -> Result<Planned, SourceError> {
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
        Ok(Planned { commit, path_found, tree, settings, found })
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

/// Loads one stack of a revision.
fn load_found(files: &TreeFiles<'_>, f: &Found, settings: &Settings) -> Loaded {
    if !valid_stack_name(&f.name) {
        return Err(vec![problem(&f.name, &f.dir.join("/"), "invalid stack name")]);
    }
    load_stack(files, f, settings.policy(f.settings.as_ref()))
}

/// The problem of a stack whose loading thread went away.
fn stopped(f: &Found) -> Vec<StackProblem> {
    vec![problem(&f.name, &f.dir.join("/"), "loading stopped unexpectedly")]
}

/// A revision from its stacks' results, in the order they were found: the problems come
/// out in that order.
fn collect<T>(planned: &Planned, slots: Vec<Option<Made<T>>>) -> Revision<T> {
    let mut out = planned.revision();
    for (slot, f) in slots.into_iter().zip(&planned.found) {
        match slot.unwrap_or_else(|| Err(stopped(f))) {
            Ok(t) => {
                out.stacks.insert(StackName::new(f.name.clone()), t);
            }
            Err(mut p) => out.problems.append(&mut p),
        }
    }
    out
}

/// Runs `work` on every job, on as many threads as there are cores (loading is CPU-bound;
/// the repository is only locked while a blob is read), each with the loader's large stack
/// so that deeply nested YAML is an error, not a crash. Threads take the next job as they
/// finish one. Results come back in `jobs`' order; `None` where no thread ran the job.
fn in_pool<J: Sync, R: Send>(jobs: &[J], work: &(dyn Fn(&J) -> R + Sync)) -> Vec<Option<R>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len());
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = Vec::new();
    slots.resize_with(jobs.len(), || None);
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .filter_map(|_| {
                let worker = || {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        out.push((i, work(job)));
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
