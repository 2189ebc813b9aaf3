//! Reading stacks from real temporary Git repositories: a work tree, a bare clone, and a
//! remote (a `file://` URL) cloned into a cache and fetched incrementally.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed step should panic

use git2::{IndexAddOption, Repository, Signature, Time};
use reconciler_source::{Repo, SourceError};
use reconciler_types::{StackPolicy, SyncPolicy};
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn commit(repo: &Repository, message: &str, when: i64) -> String {
    let sig = Signature::new("t", "t@flotilla.invalid", &Time::new(when, 0)).unwrap();
    let mut index = repo.index().unwrap();
    index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap().to_string()
}

const STACK: &str = "services:\n  web:\n    image: nginx:${TAG:-1}\n    env_file: web.env\n    configs: [conf]\nconfigs:\n  conf:\n    file: ./conf.txt\n";

fn sample() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    write(dir.path(), "stacks/web/stack.yml", STACK);
    write(dir.path(), "stacks/web/web.env", "A=1\n");
    write(dir.path(), "stacks/web/conf.txt", "hello\n");
    write(dir.path(), "stacks/web/.env", "TAG=2\n");
    write(dir.path(), "stacks/notastack/README.md", "nothing here\n");
    commit(&repo, "one", 1_700_000_000);
    (dir, repo)
}

fn cache() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn read_loads_stacks_with_env_files_and_config_contents_from_the_tree() {
    let (dir, _repo) = sample();
    // The work tree changes, the commit does not: the reader must not look at the files.
    write(dir.path(), "stacks/web/conf.txt", "uncommitted\n");
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let rev = repo.read("HEAD", "stacks", None).unwrap();
    assert!(rev.problems.is_empty(), "{:?}", rev.problems);
    assert_eq!(rev.stacks.len(), 1, "only folders with a stack file are stacks");
    let web = &rev.stacks[&"web".into()];
    let svc = &web.config.services[0];
    assert_eq!(svc.image, "nginx:2", ".env feeds interpolation");
    assert_eq!(svc.environment.get("A"), Some(&Some("1".to_owned())));
    assert_eq!(web.files.values().next().unwrap(), b"hello\n");
}

#[test]
fn read_refuses_an_env_file_outside_the_repository() {
    let (dir, repo) = sample();
    write(dir.path(), "stacks/web/stack.yml", &STACK.replace("web.env", "../../../../etc/passwd"));
    commit(&repo, "escape", 1_700_000_100);
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let rev = repo.read("HEAD", "stacks", None).unwrap();
    assert!(rev.stacks.is_empty());
    assert_eq!(rev.problems.len(), 1);
    assert!(rev.problems[0].message.contains("outside the repository"), "{:?}", rev.problems);
    assert_eq!(rev.problems[0].path.as_deref(), Some("services.web.env_file"));
}

#[test]
fn read_follows_flotilla_yaml_when_it_lists_stacks() {
    let (dir, repo) = sample();
    write(dir.path(), "stacks/other/main.yml", "services:\n  a:\n    image: busybox\n");
    write(dir.path(), "stacks/other/override.yml", "services:\n  a:\n    image: busybox:2\n");
    write(
        dir.path(),
        "stacks/flotilla.yaml",
        "prune: true\nstacks:\n  other:\n    files: [main.yml, override.yml]\n    sync: manual\n",
    );
    commit(&repo, "settings", 1_700_000_100);
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let rev = repo.read("HEAD", "stacks", None).unwrap();
    assert_eq!(rev.stacks.keys().map(|k| k.as_str()).collect::<Vec<_>>(), vec!["other"]);
    let other = &rev.stacks[&"other".into()];
    assert_eq!(other.config.services[0].image, "busybox:2");
    assert_eq!(
        other.policy,
        StackPolicy { sync: SyncPolicy::Manual, prune: true, self_heal: None }
    );
    assert!(rev.default_policy.prune);
}

#[test]
fn read_reports_a_broken_flotilla_yaml() {
    let (dir, repo) = sample();
    write(dir.path(), "stacks/flotilla.yaml", "prnue: true\n");
    commit(&repo, "typo", 1_700_000_100);
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let err = repo.read("HEAD", "stacks", None).unwrap_err();
    assert!(matches!(err, SourceError::Settings { .. }), "{err}");
}

#[test]
fn open_reads_a_bare_repository_at_an_older_revision() {
    let (dir, repo) = sample();
    let first = repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    write(dir.path(), "stacks/web/conf.txt", "changed\n");
    commit(&repo, "two", 1_700_000_100);
    let bare_dir = tempfile::tempdir().unwrap();
    let bare = Repository::init_bare(bare_dir.path()).unwrap();
    let mut remote = bare.remote_anonymous(dir.path().to_str().unwrap()).unwrap();
    remote.fetch(&["+refs/heads/*:refs/heads/*"], None, None).unwrap();
    let repo = Repo::open(bare_dir.path().to_str().unwrap(), cache().path()).unwrap();
    let rev = repo.read(&first, "stacks", None).unwrap();
    assert_eq!(rev.commit, first);
    assert_eq!(rev.stacks[&"web".into()].files.values().next().unwrap(), b"hello\n");
}

#[test]
fn open_clones_a_remote_into_the_cache_and_fetches_new_commits() {
    let (dir, repo) = sample();
    let url = format!("file://{}", dir.path().display());
    let cache = cache();
    let first = Repo::open(&url, cache.path()).unwrap();
    let head1 = first.resolve("HEAD").unwrap();
    drop(first);
    write(dir.path(), "stacks/web/conf.txt", "v2\n");
    let new = commit(&repo, "two", 1_700_000_100);
    let branch = repo.head().unwrap().shorthand().unwrap().to_owned();
    let second = Repo::open(&url, cache.path()).unwrap();
    assert_eq!(second.resolve("HEAD").unwrap(), new, "the second open fetched the new commit");
    assert_eq!(second.resolve(&branch).unwrap(), new);
    assert_ne!(head1, new);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1, "one cache folder per URL");
    let rev = second.read(&head1, "stacks", None).unwrap();
    assert_eq!(rev.stacks[&"web".into()].files.values().next().unwrap(), b"hello\n");
}

#[test]
fn resolve_names_the_missing_revision() {
    let (dir, _repo) = sample();
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let err = repo.resolve("nope").unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn read_reusing_takes_unchanged_stacks_and_reloads_changed_ones() {
    let (dir, repo) = sample();
    write(
        dir.path(),
        "stacks/other/stack.yml",
        "services:\n  a:\n    image: busybox\n    env_file: ../web/web.env\n",
    );
    let first = commit(&repo, "two stacks", 1_700_000_100);
    write(dir.path(), "stacks/web/web.env", "A=2\n");
    commit(&repo, "change web's env file", 1_700_000_200);
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let head = repo.read("HEAD", "stacks", None).unwrap();
    let web = &head.stacks[&"web".into()];
    let other = &head.stacks[&"other".into()];
    assert!(web.fingerprint.is_some(), "web reads only its own folder");
    assert!(other.fingerprint.is_none(), "other reads a file outside its folder");
    let base = repo.read_reusing(&first, "stacks", None, Some(&head)).unwrap();
    let env = |r: &reconciler_source::Revision, s: &str| {
        r.stacks[&s.into()].config.services[0].environment.get("A").cloned().flatten()
    };
    assert_eq!(env(&base, "web").as_deref(), Some("1"), "web changed: loaded again");
    assert_eq!(env(&base, "other").as_deref(), Some("1"), "other is never reused");
    assert_eq!(env(&head, "other").as_deref(), Some("2"));
    let same = repo.read_reusing("HEAD", "stacks", None, Some(&head)).unwrap();
    assert_eq!(same.stacks[&"web".into()].fingerprint, web.fingerprint);
}

#[test]
fn read_pair_loads_both_revisions_as_read_does_and_reports_a_missing_base_apart() {
    let (dir, repo) = sample();
    write(
        dir.path(),
        "stacks/other/stack.yml",
        "services:\n  a:\n    image: busybox\n    env_file: ../web/web.env\n",
    );
    write(dir.path(), "stacks/same/stack.yml", "services:\n  s:\n    image: busybox:1\n");
    write(dir.path(), "stacks/gone/stack.yml", "services:\n  g:\n    image: busybox\n");
    write(dir.path(), "stacks/broken/stack.yml", "services:\n  b:\n    image: [1\n");
    let first = commit(&repo, "five stacks", 1_700_000_100);
    write(dir.path(), "stacks/web/web.env", "A=2\n");
    std::fs::remove_dir_all(dir.path().join("stacks/gone")).unwrap();
    write(dir.path(), "stacks/new/stack.yml", "services:\n  n:\n    image: busybox\n");
    commit(&repo, "change web's env file, drop one stack, add one", 1_700_000_200);
    let repo = Repo::open(dir.path().to_str().unwrap(), cache().path()).unwrap();
    let env = |s: &reconciler_source::StackSource| {
        (s.config.services[0].image.clone(), s.config.services[0].environment.get("A").cloned())
    };
    let (head, base) = repo.read_pair("HEAD", &first, "stacks", None, env).unwrap();
    let base = base.unwrap();
    let want_head = repo.read("HEAD", "stacks", None).unwrap();
    let want_base = repo.read(&first, "stacks", None).unwrap();
    for (got, want) in [(&head, &want_head), (&base, &want_base)] {
        assert_eq!(got.commit, want.commit);
        assert_eq!(got.problems, want.problems);
        let want: Vec<_> = want.stacks.iter().map(|(k, s)| (k.clone(), env(s))).collect();
        let got: Vec<_> = got.stacks.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        assert_eq!(got, want);
    }
    assert_eq!(base.stacks[&"other".into()].1, Some(Some("1".to_owned())), "never reused");
    assert_eq!(head.problems.len(), 1, "{:?}", head.problems);

    let sides =
        |_: &reconciler_types::StackName, h: Option<_>, b: Option<_>| (h.is_some(), b.is_some());
    let met = repo.compare("HEAD", &first, "stacks", None, env, sides).unwrap();
    let got: Vec<_> = met.stacks.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let want = [("broken", (false, false)), ("gone", (false, true)), ("new", (true, false))];
    let want = want.into_iter().map(|(k, v)| (k.to_owned(), v));
    let same = ["other", "same", "web"].into_iter().map(|k| (k.to_owned(), (true, true)));
    let mut want: Vec<_> = want.chain(same).collect();
    want.sort();
    assert_eq!(got, want, "every stack of either revision meets once");
    assert_eq!(met.head.problems, want_head.problems);
    assert_eq!(met.head.stacks.len(), want_head.stacks.len());

    let (head, base) = repo.read_pair("HEAD", "nope", "stacks", None, env).unwrap();
    assert_eq!(head.stacks.len(), want_head.stacks.len());
    assert!(base.unwrap_err().to_string().contains("nope"));
    assert!(repo.read_pair("nope", "HEAD", "stacks", None, env).is_err());
}

#[test]
fn open_replaces_a_cache_folder_left_half_made() {
    let (dir, _repo) = sample();
    let url = format!("file://{}", dir.path().display());
    let cache = cache();
    let folder = reconciler_source::repo::cache_path(cache.path(), &url);
    Repository::init_bare(&folder).unwrap(); // as if stopped before its `origin` was added
    let repo = Repo::open(&url, cache.path()).unwrap();
    assert!(repo.resolve("HEAD").is_ok(), "the half-made folder was replaced by a clone");
}
