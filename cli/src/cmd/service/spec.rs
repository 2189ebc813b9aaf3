//! Flags → `ServiceSpec`, as Docker's CLI builds the spec it sends (`opts.go` `ToService` for
//! `service create`, `update.go` `updateService` for `service update`). Pure: the caller reads
//! the environment (for `--env KEY`) and the current spec; this module only computes.
//!
//! Where Docker leaves an order to Go's map iteration (environment after `--env-add`), the
//! result here is sorted, so that the same flags always give the same spec.

use super::flags::{
    CommonFlags, CreateArgs, ModeArg, Ports, RollbackFlags, RolloutFlags, UpdateFlags,
};
use super::parse::{env_key, kv_map};
use reconciler_types::{
    EndpointSpec, HealthConfig, Placement, PortConfig, PublishMode, RestartPolicy, ServiceMode,
    ServiceSpec, TaskSpec, UpdateConfig,
};
use std::collections::BTreeMap;

/// Why flags do not make a spec: Docker's message for a contradictory or unsupported
/// combination.
pub type SpecError = anyhow::Error;

fn invalid(msg: &str) -> SpecError {
    anyhow::anyhow!("{msg}")
}

/// The spec `service create` sends. `lookup_env` completes `--env KEY` (Docker reads the
/// CLI's environment).
///
/// # Errors
/// Contradictory flags (`--replicas` with `--mode global`, `--no-healthcheck` with
/// `--health-*`), or a job mode.
pub fn create_spec(
    args: &CreateArgs,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> Result<ServiceSpec, SpecError> {
    let common = &args.common;
    let mode = match args.mode {
        ModeArg::Replicated => ServiceMode::Replicated { replicas: common.replicas.unwrap_or(1) },
        ModeArg::Global => {
            if common.replicas.is_some() {
                return Err(invalid(
                    "replicas can only be used with replicated or replicated-job mode",
                ));
            }
            if common.max_replicas.is_some_and(|m| m > 0) {
                return Err(invalid(
                    "replicas-max-per-node can only be used with replicated or replicated-job mode",
                ));
            }
            ServiceMode::Global
        }
        ModeArg::ReplicatedJob | ModeArg::GlobalJob => {
            return Err(invalid(
                "job modes (replicated-job, global-job) are not supported by flotilla yet: use --mode replicated or global",
            ));
        }
    };
    let mut spec = ServiceSpec {
        name: args.name.clone().unwrap_or_default(),
        labels: kv_map(&args.labels),
        mode,
        ..ServiceSpec::default()
    };
    let task = &mut spec.task_template;
    let c = &mut task.container_spec;
    c.image.clone_from(&args.image);
    c.args.clone_from(&args.args);
    c.labels = kv_map(&args.container_labels);
    c.env = dedup_env(super::parse::env_entries(&args.env, lookup_env));
    c.secrets = args.secrets.iter().map(super::parse::FileRef::secret).collect();
    c.secrets.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
    c.configs = args.configs.iter().map(super::parse::FileRef::config).collect();
    c.configs.sort_by(|a, b| a.config_name.cmp(&b.config_name));
    task.placement = Placement {
        constraints: args.constraints.clone(),
        preferences: args.placement_prefs.clone(),
        max_replicas: common.max_replicas.unwrap_or(0),
    };
    let mut ports: Vec<PortConfig> = args.publish.iter().flat_map(|p| p.0.clone()).collect();
    sort_ports(&mut ports);
    spec.endpoint_spec = EndpointSpec { mode: common.endpoint_mode.unwrap_or_default(), ports };
    apply_common(common, &mut spec)?;
    Ok(spec)
}

/// `--env` entries with later entries for the same key replacing earlier ones, sorted.
fn dedup_env(entries: Vec<String>) -> Vec<String> {
    let by_key: BTreeMap<String, String> =
        entries.into_iter().map(|e| (env_key(&e).to_owned(), e)).collect();
    by_key.into_values().collect()
}

/// Sorts ports as Docker's `updatePorts` does (by `published:target/protocol/mode`), and drops
/// exact duplicates.
fn sort_ports(ports: &mut Vec<PortConfig>) {
    let key = |p: &PortConfig| {
        let mode = match p.publish_mode {
            PublishMode::Ingress => "ingress",
            PublishMode::Host => "host",
        };
        format!("{}:{}/{:?}/{mode}", p.published_port, p.target_port, p.protocol).to_lowercase()
    };
    ports.sort_by_key(key);
    ports.dedup();
}

/// Applies `service update`'s flags to the spec read from the managers.
///
/// # Errors
/// `--replicas` on a global service, `--no-healthcheck` with `--health-*`.
pub fn update_spec(
    flags: &UpdateFlags,
    spec: &mut ServiceSpec,
    lookup_env: impl Fn(&str) -> Option<String>,
) -> Result<(), SpecError> {
    for k in &flags.label_rm {
        spec.labels.remove(k);
    }
    spec.labels.extend(kv_map(&flags.label_add));
    let task = &mut spec.task_template;
    let c = &mut task.container_spec;
    for k in &flags.container_label_rm {
        c.labels.remove(k);
    }
    c.labels.extend(kv_map(&flags.container_label_add));
    if let Some(image) = &flags.image {
        c.image.clone_from(image);
    }
    if let Some(args) = &flags.args {
        c.args.clone_from(&args.0);
    }
    update_env(&flags.env_rm, &super::parse::env_entries(&flags.env_add, lookup_env), &mut c.env);
    update_files(flags, &mut task.container_spec);
    update_placement(flags, &mut task.placement);
    update_ports(&flags.publish_rm, &flags.publish_add, &mut spec.endpoint_spec.ports);
    if flags.force {
        spec.task_template.force_update = spec.task_template.force_update.saturating_add(1);
    }
    if let Some(r) = flags.common.replicas {
        match &mut spec.mode {
            ServiceMode::Replicated { replicas } => *replicas = r,
            ServiceMode::Global => {
                return Err(invalid("replicas can only be used with replicated mode"));
            }
        }
    }
    if let Some(m) = flags.common.max_replicas {
        spec.task_template.placement.max_replicas = m;
    }
    if let Some(mode) = flags.common.endpoint_mode {
        spec.endpoint_spec.mode = mode;
    }
    apply_common(&flags.common, spec)
}

fn update_env(remove: &[String], add: &[String], env: &mut Vec<String>) {
    if remove.is_empty() && add.is_empty() {
        return;
    }
    env.retain(|e| !remove.iter().any(|k| k == env_key(e)));
    let mut by_key: BTreeMap<String, String> =
        env.drain(..).map(|e| (env_key(&e).to_owned(), e)).collect();
    by_key.extend(add.iter().map(|e| (env_key(e).to_owned(), e.clone())));
    *env = by_key.into_values().collect();
}

fn update_files(flags: &UpdateFlags, c: &mut reconciler_types::ContainerSpec) {
    let removed = |name: &str, rm: &[String], added: &[super::parse::FileRef]| {
        rm.iter().any(|r| r == name) || added.iter().any(|a| a.source == name)
    };
    c.secrets.retain(|s| !removed(&s.secret_name, &flags.secret_rm, &flags.secret_add));
    c.secrets.extend(flags.secret_add.iter().map(super::parse::FileRef::secret));
    c.secrets.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
    c.configs.retain(|s| !removed(&s.config_name, &flags.config_rm, &flags.config_add));
    c.configs.extend(flags.config_add.iter().map(super::parse::FileRef::config));
    c.configs.sort_by(|a, b| a.config_name.cmp(&b.config_name));
}

fn update_placement(flags: &UpdateFlags, placement: &mut Placement) {
    if !flags.constraint_add.is_empty() || !flags.constraint_rm.is_empty() {
        placement.constraints.extend(flags.constraint_add.iter().cloned());
        placement.constraints.retain(|c| !flags.constraint_rm.contains(c));
        placement.constraints.sort();
    }
    placement.preferences.retain(|p| !flags.placement_pref_rm.iter().any(|r| r.spread == p.spread));
    placement.preferences.extend(flags.placement_pref_add.iter().cloned());
}

/// Docker's `updatePorts`: removes the ports matching a `--publish-rm` (same target, protocol
/// and mode), adds the `--publish-add` ones that are not there yet, and sorts.
fn update_ports(remove: &[Ports], add: &[Ports], ports: &mut Vec<PortConfig>) {
    if remove.is_empty() && add.is_empty() {
        return;
    }
    let remove: Vec<&PortConfig> = remove.iter().flat_map(|p| &p.0).collect();
    ports.retain(|p| {
        !remove.iter().any(|r| {
            r.target_port == p.target_port
                && r.protocol == p.protocol
                && r.publish_mode == p.publish_mode
        })
    });
    for p in add.iter().flat_map(|p| &p.0) {
        if !ports.contains(p) {
            ports.push(p.clone());
        }
    }
    sort_ports(ports);
}

/// The flags `create` and `update` share, applied on top of `spec`.
fn apply_common(flags: &CommonFlags, spec: &mut ServiceSpec) -> Result<(), SpecError> {
    let task: &mut TaskSpec = &mut spec.task_template;
    let c = &mut task.container_spec;
    set(&mut c.dir, &flags.workdir);
    set(&mut c.user, &flags.user);
    set(&mut c.hostname, &flags.hostname);
    set(&mut c.stop_signal, &flags.stop_signal);
    if let Some(words) = &flags.entrypoint {
        c.command.clone_from(&words.0);
    }
    set(&mut c.tty, &flags.tty);
    set(&mut c.read_only, &flags.read_only);
    if flags.init.is_some() {
        c.init = flags.init;
    }
    if flags.stop_grace_period.is_some() {
        c.stop_grace_period = flags.stop_grace_period;
    }
    apply_health(flags, c)?;
    let r = &flags.resources;
    set(&mut task.resources.limits.nano_cpus, &r.limit_cpu);
    set(&mut task.resources.limits.memory_bytes, &r.limit_memory);
    set(&mut task.resources.limits.pids, &r.limit_pids);
    set(&mut task.resources.reservations.nano_cpus, &r.reserve_cpu);
    set(&mut task.resources.reservations.memory_bytes, &r.reserve_memory);
    apply_restart(flags, &mut task.restart_policy);
    apply_rollout(&flags.update, &mut spec.update_config);
    apply_rollout(&rollback_as_rollout(&flags.rollback), &mut spec.rollback_config);
    Ok(())
}

fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        field.clone_from(v);
    }
}

fn apply_restart(flags: &CommonFlags, policy: &mut RestartPolicy) {
    let r = &flags.restart;
    set(&mut policy.condition, &r.condition);
    if r.delay.is_some() {
        policy.delay = r.delay;
    }
    set(&mut policy.max_attempts, &r.max_attempts);
    if r.window.is_some() {
        policy.window = r.window;
    }
}

fn rollback_as_rollout(r: &RollbackFlags) -> RolloutFlags {
    RolloutFlags {
        parallelism: r.parallelism,
        delay: r.delay,
        monitor: r.monitor,
        failure_action: r.failure_action,
        max_failure_ratio: r.max_failure_ratio,
        order: r.order,
    }
}

fn apply_rollout(flags: &RolloutFlags, config: &mut UpdateConfig) {
    set(&mut config.parallelism, &flags.parallelism);
    set(&mut config.delay, &flags.delay);
    set(&mut config.monitor, &flags.monitor);
    set(&mut config.failure_action, &flags.failure_action);
    set(&mut config.max_failure_ratio, &flags.max_failure_ratio);
    set(&mut config.order, &flags.order);
}

/// Docker's `updateHealthcheck` (which `toHealthConfig` agrees with for a new service).
fn apply_health(
    flags: &CommonFlags,
    c: &mut reconciler_types::ContainerSpec,
) -> Result<(), SpecError> {
    let h = &flags.health;
    let any_setting = h.cmd.is_some()
        || h.interval.is_some()
        || h.timeout.is_some()
        || h.retries.is_some()
        || h.start_period.is_some()
        || h.start_interval.is_some();
    if h.no_healthcheck {
        if any_setting {
            return Err(invalid("--no-healthcheck conflicts with --health-* options"));
        }
        c.healthcheck = Some(HealthConfig { test: vec!["NONE".into()], ..HealthConfig::default() });
        return Ok(());
    }
    if !any_setting {
        return Ok(());
    }
    let hc = c.healthcheck.get_or_insert_with(HealthConfig::default);
    if hc.test.first().is_some_and(|t| t == "NONE") {
        hc.test.clear();
    }
    if let Some(cmd) = &h.cmd {
        hc.test = if cmd.is_empty() { Vec::new() } else { vec!["CMD-SHELL".into(), cmd.clone()] };
    }
    for (field, value) in [
        (&mut hc.interval, h.interval),
        (&mut hc.timeout, h.timeout),
        (&mut hc.start_period, h.start_period),
        (&mut hc.start_interval, h.start_interval),
    ] {
        if value.is_some() {
            *field = value;
        }
    }
    if h.retries.is_some() {
        hc.retries = h.retries;
    }
    Ok(())
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
