//! The Docker side of the benchmark: the probe image, `docker` commands, and guards that
//! remove the containers and the swarm the benchmark made whatever happens.

use anyhow::{Context, bail};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository of the benchmark's images.
pub const IMAGE_REPO: &str = "flotilla-bench";

/// The label every container the benchmark runs itself carries (its value: this process).
pub const LABEL_BENCH: &str = "com.flotilla.bench";

/// Runs `docker ARGS`; fails with its stderr unless it succeeds.
pub fn docker(args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new("docker").args(args).output().context("running docker")?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

/// `docker ARGS`' stdout, trimmed.
pub fn docker_out(args: &[&str]) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&docker(args)?.stdout).trim().to_owned())
}

/// The image `FROM scratch` around the static binary at `bin`, built when missing; its tag
/// names the build (size and modification time). Older tags of [`IMAGE_REPO`] are removed.
///
/// # Errors
/// The binary cannot be read or `docker build` fails.
pub fn image(bin: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(bin).with_context(|| format!("{}", bin.display()))?;
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?;
    let image = format!("{IMAGE_REPO}:{}-{}", meta.len(), mtime.as_nanos());
    let have = Command::new("docker").args(["image", "inspect", &image]).output()?;
    if have.status.success() {
        return Ok(image);
    }
    let ctx = tempfile::tempdir()?;
    std::fs::copy(bin, ctx.path().join("flotilla"))?;
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY flotilla /usr/local/bin/flotilla\n",
    )?;
    let dir = ctx.path().to_string_lossy().into_owned();
    docker(&["build", "--quiet", "-t", &image, &dir])?;
    let list = docker_out(&["images", IMAGE_REPO, "--format", "{{.Repository}}:{{.Tag}}"])?;
    for old in list.lines().filter(|l| *l != image) {
        let _in_use_elsewhere = Command::new("docker").args(["rmi", old]).output();
    }
    println!("built {image} from {}", bin.display());
    Ok(image)
}

/// Removes, when dropped, every container that carries `label` (`key=value`).
pub struct Containers {
    /// The label filter.
    pub label: String,
}

impl Containers {
    fn ids(&self) -> Vec<String> {
        let filter = format!("label={}", self.label);
        let out = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output();
        let Ok(out) = out else { return Vec::new() };
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
    }

    /// Whether a container with the label exists.
    pub fn any(&self) -> bool {
        !self.ids().is_empty()
    }

    /// Removes every container with the label now.
    pub fn remove_all(&self) {
        let ids = self.ids();
        if !ids.is_empty() {
            let _gone_already = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
        }
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// A single-node swarm on the local engine, left (`--force`) when dropped. While it is up,
/// the lock file (if any) is held, so others on this engine wait instead of leaving it
/// under the benchmark.
pub struct Swarm {
    _lock: Option<File>,
    /// The services created in it (removed, with their containers, before leaving).
    pub services: Vec<String>,
}

impl Swarm {
    /// Takes the lock, then `docker swarm init` on loopback. Refuses an engine that is in a
    /// swarm already (someone else's: the benchmark would leave it).
    ///
    /// # Errors
    /// The lock cannot be taken, the engine is in a swarm, or init fails.
    pub fn init(lock: Option<&PathBuf>) -> anyhow::Result<Swarm> {
        let lock = match lock {
            Some(p) => {
                let f = File::options().create(true).append(true).open(p)?;
                f.lock().with_context(|| format!("locking {}", p.display()))?;
                Some(f)
            }
            None => None,
        };
        let state = docker_out(&["info", "--format", "{{.Swarm.LocalNodeState}}"])?;
        if state != "inactive" {
            bail!("the engine's swarm state is {state:?}: another swarm is up, not touching it");
        }
        let swarm = Swarm { _lock: lock, services: Vec::new() };
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"])?;
        Ok(swarm)
    }

    /// Removes the services and waits (30 s at most) until their containers are gone.
    pub fn remove_services(&mut self) {
        for name in std::mem::take(&mut self.services) {
            let _gone_already = Command::new("docker").args(["service", "rm", &name]).output();
            let tasks = Containers { label: format!("com.docker.swarm.service.name={name}") };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while tasks.any() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // Dropping `tasks` removes whatever is still there.
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.remove_services();
        let left = Command::new("docker").args(["swarm", "leave", "--force"]).output();
        if let Ok(out) = left
            && !out.status.success()
        {
            eprintln!("docker swarm leave --force: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
