//! The flags of `service create` and `service update`, with Docker's names, short forms and
//! value syntaxes (`cli/command/service/opts.go`, `create.go`, `update.go`). A flag that is
//! not given is `None` (or empty): that is how the conversion in [`super::spec`] knows what the
//! operator changed, as Docker's `flags.Changed` does.

use super::parse;
use clap::{Args, ValueEnum};
use reconciler_types::{
    EndpointMode, FailureAction, PlacementPreference, PortConfig, RestartCondition, UpdateOrder,
};
use std::time::Duration;

/// `-d/--detach` and `-q/--quiet`, shared by every command that can wait for convergence.
#[derive(Debug, Clone, Default, Args)]
pub struct WaitFlags {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
}

/// Service mode (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// A fixed number of replicas.
    Replicated,
    /// One task on every eligible node.
    Global,
    /// Not supported yet.
    #[value(name = "replicated-job")]
    ReplicatedJob,
    /// Not supported yet.
    #[value(name = "global-job")]
    GlobalJob,
}

/// A value of `--restart-condition`.
pub fn restart_condition(text: &str) -> Result<RestartCondition, String> {
    match text {
        "none" => Ok(RestartCondition::None),
        "on-failure" => Ok(RestartCondition::OnFailure),
        "any" => Ok(RestartCondition::Any),
        other => {
            Err(format!("invalid restart condition {other:?}: \"none\", \"on-failure\" or \"any\""))
        }
    }
}

/// A value of `--update-failure-action` / `--rollback-failure-action`.
pub fn failure_action(text: &str) -> Result<FailureAction, String> {
    match text {
        "pause" => Ok(FailureAction::Pause),
        "continue" => Ok(FailureAction::Continue),
        "rollback" => Ok(FailureAction::Rollback),
        other => Err(format!(
            "unrecognized failure action {other}: \"pause\", \"continue\" or \"rollback\""
        )),
    }
}

/// A value of `--update-order` / `--rollback-order`.
pub fn update_order(text: &str) -> Result<UpdateOrder, String> {
    match text {
        "stop-first" => Ok(UpdateOrder::StopFirst),
        "start-first" => Ok(UpdateOrder::StartFirst),
        other => {
            Err(format!("unrecognized update order {other}: \"start-first\" or \"stop-first\""))
        }
    }
}

/// A value of `--endpoint-mode`.
pub fn endpoint_mode(text: &str) -> Result<EndpointMode, String> {
    match text.to_ascii_lowercase().as_str() {
        "vip" => Ok(EndpointMode::Vip),
        "dnsrr" => Ok(EndpointMode::Dnsrr),
        _ => Err(format!("invalid endpoint mode {text:?}: vip or dnsrr")),
    }
}

/// A value of `--max-failure-ratio` flags (a float; the managers check the range).
pub fn ratio(text: &str) -> Result<f32, String> {
    text.parse::<f32>().map_err(|_| format!("invalid ratio {text:?}: a number between 0 and 1"))
}

/// A command split into words (a newtype, so that clap keeps one flag's words together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

/// A shell-split command (`--entrypoint "sh -c 'x'"`, `--args`).
pub fn shell_words(text: &str) -> Result<Words, String> {
    schema::shlex::split(text).map(Words).map_err(|e| format!("invalid command {text:?}: {e}"))
}

/// The ports of one `--publish` (a range gives several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports(pub Vec<PortConfig>);

fn ports(text: &str) -> Result<Ports, String> {
    parse::ports(text).map(Ports)
}

/// `--update-*` or `--rollback-*`: how a rollout proceeds.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct RolloutFlags {
    /// Maximum number of tasks updated simultaneously (0 to update all at once)
    #[arg(id = "update_parallelism", long = "update-parallelism", value_name = "uint")]
    pub parallelism: Option<u64>,
    /// Delay between updates (ns|us|ms|s|m|h) (default 0s)
    #[arg(id = "update_delay", long = "update-delay", value_name = "duration", value_parser = parse::go_duration)]
    pub delay: Option<Duration>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h) (default 5s)
    #[arg(id = "update_monitor", long = "update-monitor", value_name = "duration", value_parser = parse::go_duration)]
    pub monitor: Option<Duration>,
    /// Action on update failure ("pause", "continue", "rollback") (default "pause")
    #[arg(id = "update_failure_action", long = "update-failure-action", value_name = "string", value_parser = failure_action)]
    pub failure_action: Option<FailureAction>,
    /// Failure rate to tolerate during an update (default 0)
    #[arg(id = "update_max_failure_ratio", long = "update-max-failure-ratio", value_name = "float", value_parser = ratio)]
    pub max_failure_ratio: Option<f32>,
    /// Update order ("start-first", "stop-first") (default "stop-first")
    #[arg(id = "update_order", long = "update-order", value_name = "string", value_parser = update_order)]
    pub order: Option<UpdateOrder>,
}

/// `--rollback-*`: how a rollback proceeds.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct RollbackFlags {
    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once)
    #[arg(id = "rollback_parallelism", long = "rollback-parallelism", value_name = "uint")]
    pub parallelism: Option<u64>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h) (default 0s)
    #[arg(id = "rollback_delay", long = "rollback-delay", value_name = "duration", value_parser = parse::go_duration)]
    pub delay: Option<Duration>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h) (default 5s)
    #[arg(id = "rollback_monitor", long = "rollback-monitor", value_name = "duration", value_parser = parse::go_duration)]
    pub monitor: Option<Duration>,
    /// Action on rollback failure ("pause", "continue") (default "pause")
    #[arg(id = "rollback_failure_action", long = "rollback-failure-action", value_name = "string", value_parser = failure_action)]
    pub failure_action: Option<FailureAction>,
    /// Failure rate to tolerate during a rollback (default 0)
    #[arg(id = "rollback_max_failure_ratio", long = "rollback-max-failure-ratio", value_name = "float", value_parser = ratio)]
    pub max_failure_ratio: Option<f32>,
    /// Rollback order ("start-first", "stop-first") (default "stop-first")
    #[arg(id = "rollback_order", long = "rollback-order", value_name = "string", value_parser = update_order)]
    pub order: Option<UpdateOrder>,
}

/// `--restart-*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct RestartFlags {
    /// Restart when condition is met ("none", "on-failure", "any") (default "any")
    #[arg(id = "restart_condition", long = "restart-condition", value_name = "string", value_parser = restart_condition)]
    pub condition: Option<RestartCondition>,
    /// Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)
    #[arg(id = "restart_delay", long = "restart-delay", value_name = "duration", value_parser = parse::go_duration)]
    pub delay: Option<Duration>,
    /// Maximum number of restarts before giving up
    #[arg(id = "restart_max_attempts", long = "restart-max-attempts", value_name = "uint")]
    pub max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h)
    #[arg(id = "restart_window", long = "restart-window", value_name = "duration", value_parser = parse::go_duration)]
    pub window: Option<Duration>,
}

/// `--health-*` and `--no-healthcheck`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct HealthFlags {
    /// Command to run to check health
    #[arg(id = "health_cmd", long = "health-cmd", value_name = "string")]
    pub cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(id = "health_interval", long = "health-interval", value_name = "duration", value_parser = parse::go_duration)]
    pub interval: Option<Duration>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(id = "health_timeout", long = "health-timeout", value_name = "duration", value_parser = parse::go_duration)]
    pub timeout: Option<Duration>,
    /// Consecutive failures needed to report unhealthy
    #[arg(id = "health_retries", long = "health-retries", value_name = "int")]
    pub retries: Option<u64>,
    /// Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)
    #[arg(id = "health_start_period", long = "health-start-period", value_name = "duration", value_parser = parse::go_duration)]
    pub start_period: Option<Duration>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(id = "health_start_interval", long = "health-start-interval", value_name = "duration", value_parser = parse::go_duration)]
    pub start_interval: Option<Duration>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(id = "health_no_healthcheck", long = "no-healthcheck")]
    pub no_healthcheck: bool,
}

/// `--limit-*` and `--reserve-*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ResourceFlags {
    /// Limit CPUs
    #[arg(long = "limit-cpu", value_name = "decimal", value_parser = parse::nano_cpus)]
    pub limit_cpu: Option<i64>,
    /// Limit Memory
    #[arg(long = "limit-memory", value_name = "bytes", value_parser = parse::mem_bytes)]
    pub limit_memory: Option<i64>,
    /// Limit maximum number of processes (default 0 = unlimited)
    #[arg(long = "limit-pids", value_name = "int")]
    pub limit_pids: Option<i64>,
    /// Reserve CPUs
    #[arg(long = "reserve-cpu", value_name = "decimal", value_parser = parse::nano_cpus)]
    pub reserve_cpu: Option<i64>,
    /// Reserve Memory
    #[arg(long = "reserve-memory", value_name = "bytes", value_parser = parse::mem_bytes)]
    pub reserve_memory: Option<i64>,
}

/// The flags `service create` and `service update` share (Docker's `addServiceFlags`).
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct CommonFlags {
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Container hostname
    #[arg(long, value_name = "string")]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "command", value_parser = shell_words)]
    pub entrypoint: Option<Words>,
    /// Number of tasks
    #[arg(long, value_name = "uint")]
    pub replicas: Option<u64>,
    /// Maximum number of tasks per node (default 0 = unlimited)
    #[arg(long = "replicas-max-per-node", value_name = "uint")]
    pub max_replicas: Option<u64>,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s)
    #[arg(long = "stop-grace-period", value_name = "duration", value_parser = parse::go_duration)]
    pub stop_grace_period: Option<Duration>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tty: Option<bool>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_only: Option<bool>,
    /// Use an init inside each service container to forward signals and reap processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<bool>,
    /// Endpoint mode (vip or dnsrr) (default "vip")
    #[arg(long = "endpoint-mode", value_name = "string", value_parser = endpoint_mode)]
    pub endpoint_mode: Option<EndpointMode>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub restart: RestartFlags,
    #[command(flatten)]
    pub update: RolloutFlags,
    #[command(flatten)]
    pub rollback: RollbackFlags,
    #[command(flatten)]
    pub health: HealthFlags,
}

/// `service create [OPTIONS] IMAGE [COMMAND] [ARG...]`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Service name
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Service mode ("replicated", "global", "replicated-job", "global-job")
    #[arg(long, value_enum, default_value = "replicated")]
    pub mode: ModeArg,
    /// Service labels
    #[arg(short = 'l', long = "label", value_name = "list", value_parser = parse::label)]
    pub labels: Vec<String>,
    /// Container labels
    #[arg(long = "container-label", value_name = "list", value_parser = parse::label)]
    pub container_labels: Vec<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Placement constraints
    #[arg(long = "constraint", value_name = "list")]
    pub constraints: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref", value_name = "pref", value_parser = parse::placement_pref)]
    pub placement_prefs: Vec<PlacementPreference>,
    /// Publish a port as a node port
    #[arg(short = 'p', long = "publish", value_name = "port", value_parser = ports)]
    pub publish: Vec<Ports>,
    /// Specify secrets to expose to the service
    #[arg(long = "secret", value_name = "secret", value_parser = parse::file_ref)]
    pub secrets: Vec<parse::FileRef>,
    /// Specify configurations to expose to the service
    #[arg(long = "config", value_name = "config", value_parser = parse::file_ref)]
    pub configs: Vec<parse::FileRef>,
    #[command(flatten)]
    pub common: CommonFlags,
    #[command(flatten)]
    pub wait: WaitFlags,
    /// The image (recorded, not pulled, by the process runtime)
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub args: Vec<String>,
}

/// What `service update` changes (everything but the service, `--rollback` and waiting).
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct UpdateFlags {
    /// Service image tag
    #[arg(long, value_name = "string")]
    pub image: Option<String>,
    /// Service command args
    #[arg(long, value_name = "command", value_parser = shell_words)]
    pub args: Option<Words>,
    /// Force update even if no changes require it
    #[arg(long)]
    pub force: bool,
    /// Add or update an environment variable
    #[arg(long = "env-add", value_name = "list")]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long = "env-rm", value_name = "list")]
    pub env_rm: Vec<String>,
    /// Add or update a service label
    #[arg(long = "label-add", value_name = "list", value_parser = parse::label)]
    pub label_add: Vec<String>,
    /// Remove a label by its key
    #[arg(long = "label-rm", value_name = "list")]
    pub label_rm: Vec<String>,
    /// Add or update a container label
    #[arg(long = "container-label-add", value_name = "list", value_parser = parse::label)]
    pub container_label_add: Vec<String>,
    /// Remove a container label by its key
    #[arg(long = "container-label-rm", value_name = "list")]
    pub container_label_rm: Vec<String>,
    /// Add or update a placement constraint
    #[arg(long = "constraint-add", value_name = "list")]
    pub constraint_add: Vec<String>,
    /// Remove a constraint
    #[arg(long = "constraint-rm", value_name = "list")]
    pub constraint_rm: Vec<String>,
    /// Add a placement preference
    #[arg(long = "placement-pref-add", value_name = "pref", value_parser = parse::placement_pref)]
    pub placement_pref_add: Vec<PlacementPreference>,
    /// Remove a placement preference
    #[arg(long = "placement-pref-rm", value_name = "pref", value_parser = parse::placement_pref)]
    pub placement_pref_rm: Vec<PlacementPreference>,
    /// Add or update a published port
    #[arg(long = "publish-add", value_name = "port", value_parser = ports)]
    pub publish_add: Vec<Ports>,
    /// Remove a published port by its target port
    #[arg(long = "publish-rm", value_name = "port", value_parser = ports)]
    pub publish_rm: Vec<Ports>,
    /// Add or update a secret on a service
    #[arg(long = "secret-add", value_name = "secret", value_parser = parse::file_ref)]
    pub secret_add: Vec<parse::FileRef>,
    /// Remove a secret
    #[arg(long = "secret-rm", value_name = "list")]
    pub secret_rm: Vec<String>,
    /// Add or update a config file on a service
    #[arg(long = "config-add", value_name = "config", value_parser = parse::file_ref)]
    pub config_add: Vec<parse::FileRef>,
    /// Remove a configuration file
    #[arg(long = "config-rm", value_name = "list")]
    pub config_rm: Vec<String>,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// `service update [OPTIONS] SERVICE`.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Rollback to previous specification
    #[arg(long)]
    pub rollback: bool,
    #[command(flatten)]
    pub flags: UpdateFlags,
    #[command(flatten)]
    pub wait: WaitFlags,
    /// The service (id, name or unique id prefix)
    pub service: String,
}
