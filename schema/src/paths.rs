//! Path handling as Go's `path/filepath` does it on Unix: `Join` (which cleans) and the
//! loader's `absPath` with `~` expansion.

/// Go's `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Join`.
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

/// The loader's `absPath`: `~` is the home folder, absolute paths stay, relative ones are
/// joined to the working folder.
pub fn abs_path(working_dir: &str, file: &str, home: &str) -> String {
    if let Some(rest) = file.strip_prefix('~') {
        return join(home, rest);
    }
    if file.starts_with('/') {
        return file.to_owned();
    }
    join(working_dir, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_clean_like_go() {
        assert_eq!(join("/tmp/x", "./a/../b/"), "/tmp/x/b");
        assert_eq!(join("/tmp/x", ""), "/tmp/x");
        assert_eq!(abs_path("/w", "~/c", "/home/u"), "/home/u/c");
        assert_eq!(abs_path("/w", "/abs//x", "/h"), "/abs//x");
        assert_eq!(clean("../a/./b/.."), "../a");
    }
}
