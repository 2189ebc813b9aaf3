//! A `flotilla up` process as a user runs it, for `up.rs` and `up_docker.rs`: started against
//! a Git repository with its state in a folder of the test's, the lines it prints collected
//! as they come (or, under `script`, everything it drew on a pseudo-terminal), SIGINT to stop
//! it; and the helpers around it (commits to a temporary
//! repository, a free loopback port, `GET /` on a published port, a client of its manager).

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reconciler_api::ApiClient;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any wait of these tests lasts at most.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A loopback port nothing listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `git` in `repo` as a test author; answers its output.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes `files` (path in the repository, content), commits them with `message`; answers
/// the commit's short id (as `up` prints it).
pub fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, text) in files {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])[..12].to_owned()
}

/// One `flotilla up` process and the lines it printed.
pub struct Up {
    /// `flotilla up`, or `script` running it on a pseudo-terminal.
    pub child: Child,
    /// Whether `child` is `script`.
    on_terminal: bool,
    /// Its state folder (`XDG_STATE_HOME`); its data folder is `flotilla` in it.
    pub state: PathBuf,
    /// Its manager's port on 127.0.0.1.
    pub listen: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Up {
    /// Starts `flotilla up --repo REPO` with its data in `<state>/flotilla` (the default
    /// folder, as `XDG_STATE_HOME` is `state`), its manager on `listen`, polling the
    /// repository every 200 ms, with `extra` arguments; its log goes to `<state>/up.log`.
    pub fn start(repo: &Path, state: &Path, listen: u16, extra: &[&str]) -> Up {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
        cmd.args(up_args(repo, state, listen, extra));
        Up::spawn(cmd, state, listen, false)
    }

    /// [`Up::start`] with its stdout on a pseudo-terminal of 120 columns: `script` (util-linux)
    /// runs it, and what it drew there, escape sequences and all, is what it printed.
    pub fn start_on_terminal(repo: &Path, state: &Path, listen: u16, extra: &[&str]) -> Up {
        let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
        let exe = quote(env!("CARGO_BIN_EXE_flotilla"));
        let mut line = format!("stty cols 120 rows 40; exec {exe}");
        for a in up_args(repo, state, listen, extra) {
            line.push(' ');
            line.push_str(&quote(&a));
        }
        // Its log stays off the terminal.
        let log = state.join("up.log");
        line.push_str(&format!(" 2>>{}", quote(&log.display().to_string())));
        let mut cmd = Command::new("script");
        cmd.args(["-q", "-e", "-c", &line, "/dev/null"]);
        Up::spawn(cmd, state, listen, true)
    }

    fn spawn(mut cmd: Command, state: &Path, listen: u16, on_terminal: bool) -> Up {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.join("up.log"))
            .unwrap();
        let mut child = cmd
            .env("XDG_STATE_HOME", state)
            .env_remove("FLOTILLA_HOST")
            .env_remove("FLOTILLA_TOKEN")
            .env_remove("FLOTILLA_TLSCACERT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Up { child, on_terminal, state: state.to_owned(), listen, lines }
    }

    /// The `flotilla up` process (under `script`, its child).
    fn up_pid(&self) -> i32 {
        if !self.on_terminal {
            return i32::try_from(self.child.id()).unwrap();
        }
        let start = Instant::now();
        loop {
            if let Some(pid) = self.script_child() {
                return pid;
            }
            assert!(start.elapsed() < DEADLINE, "script started no process");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process `script` runs, while it runs.
    fn script_child(&self) -> Option<i32> {
        if !self.on_terminal {
            return None;
        }
        let pid = self.child.id();
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// Its data folder.
    pub fn data(&self) -> PathBuf {
        self.state.join("flotilla")
    }

    /// Everything it printed so far.
    pub fn printed(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The tail of its log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.state.join("up.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Waits until a printed line contains `text`.
    pub fn wait_line(&mut self, text: &str) {
        let start = Instant::now();
        while !self.printed().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "up exited ({status}) before printing {text:?}:\n{}\n--- log\n{}",
                    self.printed(),
                    self.log_tail()
                );
            }
            assert!(start.elapsed() < DEADLINE, "no line {text:?} in:\n{}", self.printed());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, then the exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.up_pid()), Signal::SIGINT).unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "up did not stop:\n{}", self.printed());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of its manager, with the token and CA `up` wrote in its data folder.
    pub fn client(&self) -> ApiClient {
        let manager = self.data().join("manager");
        let token =
            std::fs::read_to_string(manager.join(reconciler_manager::identity::API_TOKEN_FILE))
                .unwrap();
        let ca = std::fs::read_to_string(manager.join(reconciler_tls::files::CA_FILE)).unwrap();
        let addr = format!("127.0.0.1:{}", self.listen);
        ApiClient::with_tls(&addr, token.trim(), Duration::from_secs(10), &ca, None).unwrap()
    }
}

/// The arguments of `flotilla up` for [`Up::start`].
fn up_args(repo: &Path, state: &Path, listen: u16, extra: &[&str]) -> Vec<String> {
    let data = state.join("flotilla");
    let mut args = vec!["up".to_owned(), "--repo".to_owned(), repo.display().to_string()];
    args.extend(["--data-dir".to_owned(), data.display().to_string()]);
    args.extend(["--listen".to_owned(), format!("127.0.0.1:{listen}")]);
    args.extend(["--poll".to_owned(), "200ms".to_owned()]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

impl Drop for Up {
    fn drop(&mut self) {
        let script_child = self.script_child();
        if let Some(pid) = script_child {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed `up` cannot remove its routing mesh's kernel rules: nothing may be left.
        let pids = script_child.and_then(|p| u32::try_from(p).ok()).into_iter();
        for pid in pids.chain([self.child.id()]) {
            agent::mesh::kernel::remove_tables_of(pid);
        }
    }
}

/// The body of `GET /` on the published port, if it answers.
pub fn get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
}

/// Waits until the published port answers with the probe's JSON for `version`.
pub fn wait_answer(up: &Up, port: u16, version: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(body) = get(port)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(body.trim())
            && v["version"] == version
        {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "port {port} never answered {version}:\n{}\n--- log\n{}",
            up.printed(),
            up.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
