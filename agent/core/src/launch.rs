//! What a task runs, decided from its spec: which runtime it asks for, the process runtime's
//! argv, the environment flotilla adds (identity and ports), and the task's display name.

use reconciler_types::{ContainerSpec, NodeId, PortConfig, TaskId};
use std::collections::BTreeMap;

/// The container label a service sets to ask for a runtime (`process` or `docker`); without
/// it, any runtime runs the task.
pub const RUNTIME_LABEL: &str = "com.flotilla.runtime";

/// The engine label every agent reports with the runtime it runs tasks with, for
/// constraints such as `engine.labels.com.flotilla.runtime==process`.
pub const ENGINE_RUNTIME_LABEL: &str = "com.flotilla.runtime";

/// Why a task cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The task asks for a runtime this node does not run.
    #[error(
        "the task asks for the {wanted} runtime (label {RUNTIME_LABEL}) but this node runs {have}; \
         add the constraint engine.labels.{ENGINE_RUNTIME_LABEL}=={wanted}"
    )]
    WrongRuntime {
        /// What the task asks for.
        wanted: String,
        /// What the node runs.
        have: String,
    },
    /// Nothing to run.
    #[error(
        "the process runtime runs a service's entrypoint and command, and {service} has neither \
         (its image {image:?} is recorded, not run); set command: in the stack file"
    )]
    NoCommand {
        /// The service.
        service: String,
        /// Its image.
        image: String,
    },
}

/// Checks that this node's runtime may run the task.
///
/// # Errors
/// [`LaunchError::WrongRuntime`].
pub fn check_runtime(spec: &ContainerSpec, runtime: &str) -> Result<(), LaunchError> {
    match spec.labels.get(RUNTIME_LABEL) {
        Some(wanted) if wanted != runtime => {
            Err(LaunchError::WrongRuntime { wanted: wanted.clone(), have: runtime.to_owned() })
        }
        _ => Ok(()),
    }
}

/// The process runtime's argv: the entrypoint (`command` in the spec) then the command
/// (`args`). A first word `flotilla` is replaced by `flotilla_exe`, so a task can run this
/// very binary without it being on `PATH`.
///
/// # Errors
/// [`LaunchError::NoCommand`] when both are empty.
pub fn process_argv(
    spec: &ContainerSpec,
    service: &str,
    flotilla_exe: &str,
) -> Result<Vec<String>, LaunchError> {
    let mut argv: Vec<String> = spec.command.iter().chain(&spec.args).cloned().collect();
    match argv.first_mut() {
        None => {
            Err(LaunchError::NoCommand { service: service.to_owned(), image: spec.image.clone() })
        }
        Some(first) => {
            if first == "flotilla" {
                flotilla_exe.clone_into(first);
            }
            Ok(argv)
        }
    }
}

/// Who a task is, for its environment, labels and log prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskIdentity {
    /// The task.
    pub task_id: TaskId,
    /// The service's name (`shop_web`).
    pub service_name: String,
    /// The service's id.
    pub service_id: String,
    /// The slot (0 for a global service).
    pub slot: u64,
    /// This node.
    pub node_id: NodeId,
}

impl TaskIdentity {
    /// Docker's task name: `<service>.<slot>.<task id>`, or `<service>.<node id>.<task id>`
    /// for a global service's task.
    pub fn name(&self) -> String {
        if self.slot == 0 {
            format!("{}.{}.{}", self.service_name, self.node_id, self.task_id)
        } else {
            format!("{}.{}.{}", self.service_name, self.slot, self.task_id)
        }
    }
}

/// The task's environment: the spec's `KEY=VALUE` entries (a bare `KEY` removes it), then
/// flotilla's: `FLOTILLA_TASK_ID`, `FLOTILLA_TASK_NAME`, `FLOTILLA_TASK_SLOT`,
/// `FLOTILLA_SERVICE_NAME`, `FLOTILLA_NODE_ID`, and for each port `FLOTILLA_PORT_<target>`
/// with the port the task must listen on, the first one also as `PORT`. `listen_on_node`
/// says the task shares the node's network (the process runtime: it listens on the node
/// port); otherwise it listens on its target port (a container).
pub fn task_env(
    spec_env: &[String],
    who: &TaskIdentity,
    ports: &[PortConfig],
    listen_on_node: bool,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for entry in spec_env {
        match entry.split_once('=') {
            Some((k, v)) => env.insert(k.to_owned(), v.to_owned()),
            None => env.remove(entry),
        };
    }
    let mut set = |k: &str, v: String| env.insert(k.to_owned(), v);
    set("FLOTILLA_TASK_ID", who.task_id.to_string());
    set("FLOTILLA_TASK_NAME", who.name());
    set("FLOTILLA_TASK_SLOT", who.slot.to_string());
    set("FLOTILLA_SERVICE_NAME", who.service_name.clone());
    set("FLOTILLA_NODE_ID", who.node_id.to_string());
    for (i, p) in ports.iter().enumerate() {
        let listen = if listen_on_node { p.published_port } else { p.target_port };
        set(&format!("FLOTILLA_PORT_{}", p.target_port), listen.to_string());
        if i == 0 {
            set("PORT", listen.to_string());
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(slot: u64) -> TaskIdentity {
        TaskIdentity {
            task_id: TaskId::new("t9"),
            service_name: "shop_web".into(),
            service_id: "s1".into(),
            slot,
            node_id: NodeId::new("n1"),
        }
    }

    #[test]
    fn names_follow_docker() {
        assert_eq!(who(2).name(), "shop_web.2.t9");
        assert_eq!(who(0).name(), "shop_web.n1.t9");
    }

    #[test]
    fn argv_is_entrypoint_then_command_and_flotilla_is_this_binary() {
        let mut spec = ContainerSpec {
            command: vec!["flotilla".into()],
            args: vec!["probe".into(), "--version-label".into(), "v2".into()],
            ..ContainerSpec::default()
        };
        let argv = process_argv(&spec, "web", "/opt/flotilla").unwrap();
        assert_eq!(argv, ["/opt/flotilla", "probe", "--version-label", "v2"]);
        spec.command.clear();
        spec.args = vec!["python3".into(), "-m".into(), "http.server".into()];
        assert_eq!(process_argv(&spec, "web", "/x").unwrap()[0], "python3");
    }

    #[test]
    fn a_service_without_entrypoint_or_command_is_refused_with_the_reason() {
        let spec = ContainerSpec { image: "nginx:1.27".into(), ..ContainerSpec::default() };
        let e = process_argv(&spec, "shop_web", "/x").unwrap_err().to_string();
        assert!(e.contains("shop_web has neither") && e.contains("nginx:1.27"), "{e}");
    }

    #[test]
    fn a_task_asking_for_another_runtime_is_refused() {
        let mut spec = ContainerSpec::default();
        assert!(check_runtime(&spec, "process").is_ok());
        spec.labels.insert(RUNTIME_LABEL.into(), "docker".into());
        assert!(check_runtime(&spec, "docker").is_ok());
        let e = check_runtime(&spec, "process").unwrap_err().to_string();
        assert!(e.contains("asks for the docker runtime") && e.contains("runs process"), "{e}");
    }

    #[test]
    fn the_environment_carries_identity_and_ports() {
        let ports = [
            PortConfig { target_port: 80, published_port: 41000, ..PortConfig::default() },
            PortConfig { target_port: 9090, published_port: 41001, ..PortConfig::default() },
        ];
        let env = task_env(&["A=1".into(), "B=2".into(), "B".into()], &who(3), &ports, true);
        assert_eq!(env["A"], "1");
        assert!(!env.contains_key("B"));
        assert_eq!(env["PORT"], "41000");
        assert_eq!(env["FLOTILLA_PORT_9090"], "41001");
        assert_eq!(env["FLOTILLA_TASK_NAME"], "shop_web.3.t9");
        let in_container = task_env(&[], &who(3), &ports, false);
        assert_eq!(in_container["PORT"], "80");
    }
}
