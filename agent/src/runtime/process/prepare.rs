//! Preparing a process task: check what it asks for, resolve its program, lay out its
//! folder, write its configs and secrets, give it node ports, and write `launch.json`.

use super::layout::{Launch, TaskDir, write_json};
use crate::runtime::{RuntimeError, TaskContext, TaskFile};
use agent_core::files::{FileKind, working_dir};
use agent_core::launch::{check_runtime, process_argv, task_env};
use reconciler_types::{PortConfig, PortProtocol, PublishMode};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Builds the launch of a task (everything but the disk).
pub(super) fn plan(
    task: &TaskContext,
    dir: &TaskDir,
    exe: &Path,
    agent_path: &str,
) -> Result<Launch, RuntimeError> {
    let spec = &task.spec.container_spec;
    let fatal = |e: &dyn std::fmt::Display| RuntimeError::fatal(e.to_string());
    check_runtime(spec, "process").map_err(|e| fatal(&e))?;
    let exe_str = exe.to_string_lossy();
    let argv = process_argv(spec, &task.who.service_name, &exe_str).map_err(|e| fatal(&e))?;
    if let Some(m) = spec.mounts.first() {
        return Err(RuntimeError::fatal(format!(
            "the process runtime cannot mount volumes or host paths (mount at {:?}); \
             run this service with the docker runtime",
            m.target
        )));
    }
    let root = dir.root();
    let cwd = root.join(working_dir(&spec.dir).map_err(|e| fatal(&e))?);
    let mut env = task_env(&spec.env, &task.who, &[], true);
    // `flotilla` in a shell command or a CMD-SHELL health check is the agent's own binary,
    // as it is as the first word of a command: its link leads the task's PATH.
    let path = env.get("PATH").map_or(agent_path, String::as_str);
    let path = format!("{}:{path}", dir.bin().display());
    env.insert("PATH".into(), path);
    env.entry("HOME".into()).or_insert_with(|| root.to_string_lossy().into_owned());
    Ok(Launch {
        argv,
        env,
        cwd,
        log_dir: dir.log_dir(),
        log_max_size: task.log_limits.max_size,
        log_max_files: task.log_limits.max_files,
        ulimits: spec.ulimits.clone(),
        user: user_ids(&spec.user)?,
        secrets_dir: (!task.files.is_empty()).then(|| dir.secrets.clone()),
        ports: Vec::new(),
    })
}

/// Lays out the folder, writes the files, resolves the program (which may be one of the
/// files), allocates ports and writes `launch.json` last (its presence means "prepared").
pub(super) fn write(
    task: &TaskContext,
    dir: &TaskDir,
    exe: &Path,
    mut launch: Launch,
) -> Result<(), RuntimeError> {
    let io = |e: io::Error| RuntimeError::fatal(format!("preparing the task's folder: {e}"));
    fs::create_dir_all(&launch.cwd).map_err(io)?;
    fs::create_dir_all(&launch.log_dir).map_err(io)?;
    link_flotilla(&dir.bin(), exe).map_err(io)?;
    let root = dir.root();
    for f in &task.files {
        write_file(&root, &dir.secrets, f).map_err(|e| {
            RuntimeError::fatal(format!(
                "writing {} {}: {e}",
                f.placed.kind.as_str(),
                f.placed.name
            ))
        })?;
    }
    let path = launch.env.get("PATH").cloned().unwrap_or_default();
    let program = launch.argv.first().cloned().unwrap_or_default();
    let found = find_program(&program, &path, &launch.cwd).ok_or_else(|| {
        RuntimeError::fatal(format!("exec: {program:?}: executable file not found in $PATH"))
    })?;
    if let Some(first) = launch.argv.first_mut() {
        *first = found.to_string_lossy().into_owned();
    }
    launch.ports = allocate_ports(&task.ports)
        .map_err(|e| RuntimeError::fatal(format!("allocating node ports: {e}")))?;
    let env = task_env(&task.spec.container_spec.env, &task.who, &launch.ports, true);
    for (k, v) in env.into_iter().filter(|(k, _)| k == "PORT" || k.starts_with("FLOTILLA_PORT_")) {
        launch.env.insert(k, v);
    }
    // Tasks here share the node's network (no namespace of their own): one that publishes no
    // port still gets a free one in PORT, so that two replicas on a node do not both listen
    // on a default port. A PORT the service sets wins.
    if !launch.env.contains_key("PORT") {
        let port = free_port(PortProtocol::Tcp)
            .map_err(|e| RuntimeError::fatal(format!("allocating a node port: {e}")))?;
        launch.env.insert("PORT".to_owned(), port.to_string());
    }
    write_json(&dir.launch(), &launch).map_err(io)
}

/// `bin/flotilla`, a link to the agent's binary (made again if it is there already).
fn link_flotilla(bin: &Path, exe: &Path) -> io::Result<()> {
    fs::create_dir_all(bin)?;
    let link = bin.join("flotilla");
    match fs::remove_file(&link) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(exe, link)
}

fn write_file(root: &Path, secrets: &Path, f: &TaskFile) -> io::Result<()> {
    let target = root.join(&f.placed.path);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    match f.placed.kind {
        FileKind::Config => create_with_mode(&target, &f.data, f.placed.mode & 0o777),
        FileKind::Secret => {
            // The content lives on tmpfs (when available); the target is a link to it.
            let real = secrets.join(&f.placed.path);
            if let Some(parent) = real.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::set_permissions(secrets, fs::Permissions::from_mode(0o700))?;
            create_with_mode(&real, &f.data, 0o400)?;
            match fs::remove_file(&target) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::os::unix::fs::symlink(&real, &target)
        }
    }
}

fn create_with_mode(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.write_all(data)?;
    // The umask may have narrowed the mode given at creation.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// A node port for each of the service's ports: the published port itself for a host-mode
/// port with a number, otherwise a free port from the kernel.
fn allocate_ports(ports: &[PortConfig]) -> io::Result<Vec<PortConfig>> {
    ports
        .iter()
        .map(|p| {
            let node_port = if p.publish_mode == PublishMode::Host && p.published_port != 0 {
                p.published_port
            } else {
                free_port(p.protocol)?
            };
            Ok(PortConfig { published_port: node_port, ..p.clone() })
        })
        .collect()
}

fn free_port(protocol: PortProtocol) -> io::Result<u32> {
    let port = match protocol {
        PortProtocol::Udp => UdpSocket::bind("0.0.0.0:0")?.local_addr()?.port(),
        PortProtocol::Tcp | PortProtocol::Sctp => {
            TcpListener::bind("0.0.0.0:0")?.local_addr()?.port()
        }
    };
    Ok(u32::from(port))
}

/// Finds a program as `execvp` would: a name with a `/` relative to the working folder,
/// otherwise on `PATH`.
pub(super) fn find_program(name: &str, path: &str, cwd: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = cwd.join(name);
        return executable(&p).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| executable(p))
}

/// The uid and gid of `user:` (`name`, `uid`, `name:group` or `uid:gid`); `None` when empty.
fn user_ids(user: &str) -> Result<Option<(u32, u32)>, RuntimeError> {
    if user.is_empty() {
        return Ok(None);
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let err = |what: &str| RuntimeError::fatal(format!("user {user:?}: {what}"));
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(uid) => (uid, uid),
        Err(_) => {
            let found = nix::unistd::User::from_name(u).map_err(|e| err(&e.to_string()))?;
            let found = found.ok_or_else(|| err("no such user on this node"))?;
            (found.uid.as_raw(), found.gid.as_raw())
        }
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => nix::unistd::Group::from_name(g)
                .map_err(|e| err(&e.to_string()))?
                .ok_or_else(|| err("no such group on this node"))?
                .gid
                .as_raw(),
        },
    };
    let me = nix::unistd::getuid().as_raw();
    if me != 0 && uid != me {
        return Err(err(
            "the process runtime runs a task as another user only when the agent runs as root",
        ));
    }
    Ok(Some((uid, gid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task with nothing set: no ports, no files, no command.
    fn bare_task() -> TaskContext {
        TaskContext {
            who: agent_core::TaskIdentity::default(),
            spec: reconciler_types::TaskSpec::default(),
            service_labels: Default::default(),
            ports: Vec::new(),
            files: Vec::new(),
            log_limits: Default::default(),
        }
    }

    #[test]
    fn programs_are_found_on_path_or_relative_to_the_working_folder() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        create_with_mode(&bin.join("tool"), b"#!/bin/sh\n", 0o755).unwrap();
        create_with_mode(&bin.join("data"), b"x", 0o644).unwrap();
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(find_program("tool", &path, dir.path()), Some(bin.join("tool")));
        assert_eq!(find_program("data", &path, dir.path()), None);
        assert_eq!(find_program("bin/tool", "", dir.path()), Some(dir.path().join("bin/tool")));
        assert_eq!(find_program("nope", &path, dir.path()), None);
    }

    #[test]
    fn flotilla_on_the_tasks_path_is_the_agents_binary_even_beside_a_path_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("agent-binary");
        create_with_mode(&exe, b"#!/bin/sh\n", 0o755).unwrap();
        let dir = TaskDir { dir: tmp.path().join("t1"), secrets: tmp.path().join("s") };
        let mut task = bare_task();
        task.spec.container_spec.command = vec!["/bin/sh".into(), "-c".into(), "flotilla".into()];
        for (spec_env, rest) in [(None, "/usr/bin:/bin"), (Some("PATH=/opt/x"), "/opt/x")] {
            task.spec.container_spec.env = spec_env.into_iter().map(String::from).collect();
            let launch = plan(&task, &dir, &exe, "/usr/bin:/bin").unwrap();
            write(&task, &dir, &exe, launch).unwrap();
            let launch: Launch = crate::fsutil::read_json(&dir.launch()).unwrap().unwrap();
            let path = &launch.env["PATH"];
            assert_eq!(*path, format!("{}:{rest}", dir.bin().display()));
            let found = find_program("flotilla", path, &launch.cwd).unwrap();
            assert_eq!(found.canonicalize().unwrap(), exe.canonicalize().unwrap());
        }
    }

    #[test]
    fn a_task_without_ports_gets_a_port_of_its_own_unless_its_service_sets_one() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = tmp.path().join("agent-binary");
        create_with_mode(&exe, b"#!/bin/sh\n", 0o755).unwrap();
        let mut task = bare_task();
        task.spec.container_spec.command = vec!["flotilla".into(), "probe".into()];
        let mut port_of = |name: &str, env: Vec<String>| {
            task.spec.container_spec.env = env;
            let dir = TaskDir { dir: tmp.path().join(name), secrets: tmp.path().join("s") };
            let launch = plan(&task, &dir, &exe, "/usr/bin:/bin").unwrap();
            write(&task, &dir, &exe, launch).unwrap();
            let launch: Launch = crate::fsutil::read_json(&dir.launch()).unwrap().unwrap();
            launch.env["PORT"].parse::<u16>().unwrap()
        };
        let (a, b) = (port_of("t1", vec![]), port_of("t2", vec![]));
        assert!(a != 0 && b != 0, "each replica gets a port: {a} {b}");
        assert_eq!(port_of("t3", vec!["PORT=9000".into()]), 9000);
    }

    #[test]
    fn users_resolve_to_ids() {
        assert_eq!(user_ids("").unwrap(), None);
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(user_ids(&format!("{me}:{me}")).unwrap(), Some((me, me)));
        assert!(user_ids("no-such-user-here").is_err());
    }

    #[test]
    fn host_ports_keep_their_number_and_others_get_a_free_one() {
        let ports = [
            PortConfig {
                target_port: 80,
                published_port: 8080,
                publish_mode: PublishMode::Host,
                ..PortConfig::default()
            },
            PortConfig { target_port: 81, published_port: 30001, ..PortConfig::default() },
            PortConfig { target_port: 53, protocol: PortProtocol::Udp, ..PortConfig::default() },
        ];
        let got = allocate_ports(&ports).unwrap();
        assert_eq!(got[0].published_port, 8080);
        assert!(got[1].published_port != 0 && got[1].published_port != 30001);
        assert!(got[2].published_port != 0);
        assert_eq!(got[2].protocol, PortProtocol::Udp);
    }
}
