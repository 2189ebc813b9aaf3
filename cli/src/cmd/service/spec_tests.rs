use super::*;
use crate::cmd::service::flags::{CreateArgs, UpdateArgs};
use clap::{Args, Command, FromArgMatches};
use reconciler_types::{EndpointMode, FailureAction, PortProtocol, RestartCondition, UpdateOrder};
use std::time::Duration;

fn parse<T: Args + FromArgMatches>(words: &[&str]) -> T {
    let cmd = T::augment_args(Command::new("x").no_binary_name(true));
    let matches = cmd.try_get_matches_from(words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    T::from_arg_matches(&matches).unwrap()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn create(words: &[&str]) -> ServiceSpec {
    create_spec(&parse::<CreateArgs>(words), no_env).unwrap()
}

fn update(spec: &ServiceSpec, words: &[&str]) -> ServiceSpec {
    let mut words = words.to_vec();
    words.push("svc");
    let args = parse::<UpdateArgs>(&words);
    let mut out = spec.clone();
    update_spec(&args.flags, &mut out, no_env).unwrap();
    out
}

#[test]
fn create_without_flags_takes_swarms_defaults() {
    let spec = create(&["nginx:1.25"]);
    assert_eq!(spec.task_template.container_spec.image, "nginx:1.25");
    assert_eq!(spec.mode, ServiceMode::Replicated { replicas: 1 });
    assert_eq!(spec.update_config, UpdateConfig::default());
    assert_eq!(spec.rollback_config, UpdateConfig::default());
    assert_eq!(spec.task_template.restart_policy, RestartPolicy::default());
    assert_eq!(spec.endpoint_spec, EndpointSpec::default());
    assert_eq!(spec.name, "", "the manager names an unnamed service");
}

#[test]
fn create_takes_command_and_args_after_the_image() {
    let spec = create(&["--name", "web", "busybox", "sh", "-c", "echo hi", "--replicas", "3"]);
    let c = &spec.task_template.container_spec;
    assert_eq!(
        c.args,
        ["sh", "-c", "echo hi", "--replicas", "3"],
        "flags after the image are args"
    );
    assert_eq!(spec.replicas(), Some(1));
    let spec = create(&["--entrypoint", "flotilla probe", "img", "--port", "8080"]);
    let c = &spec.task_template.container_spec;
    assert_eq!(
        (c.command.as_slice(), c.args.as_slice()),
        (
            &["flotilla".to_owned(), "probe".to_owned()][..],
            &["--port".to_owned(), "8080".to_owned()][..]
        )
    );
}

#[test]
fn create_maps_every_rollout_flag() {
    let spec = create(&[
        "--replicas",
        "6",
        "--update-parallelism",
        "2",
        "--update-delay",
        "10s",
        "--update-order",
        "start-first",
        "--update-failure-action",
        "rollback",
        "--update-max-failure-ratio",
        "0.34",
        "--update-monitor",
        "1m30s",
        "--rollback-parallelism",
        "0",
        "--rollback-monitor",
        "2s",
        "--rollback-order",
        "start-first",
        "--rollback-failure-action",
        "continue",
        "--rollback-delay",
        "1s",
        "--rollback-max-failure-ratio",
        "0.5",
        "img",
    ]);
    assert_eq!(spec.replicas(), Some(6));
    let u = &spec.update_config;
    assert_eq!(
        (u.parallelism, u.delay, u.order),
        (2, Duration::from_secs(10), UpdateOrder::StartFirst)
    );
    assert_eq!(
        (u.failure_action, u.max_failure_ratio, u.monitor),
        (FailureAction::Rollback, 0.34, Duration::from_secs(90))
    );
    let r = &spec.rollback_config;
    assert_eq!(
        (r.parallelism, r.monitor, r.order),
        (0, Duration::from_secs(2), UpdateOrder::StartFirst)
    );
    assert_eq!(
        (r.failure_action, r.delay, r.max_failure_ratio),
        (FailureAction::Continue, Duration::from_secs(1), 0.5)
    );
}

#[test]
fn create_maps_restart_placement_env_labels_and_ports() {
    let spec = create(&[
        "--restart-condition",
        "on-failure",
        "--restart-delay",
        "2s",
        "--restart-max-attempts",
        "3",
        "--restart-window",
        "1m",
        "--constraint",
        "node.labels.az==a",
        "--placement-pref",
        "spread=node.labels.rack",
        "-e",
        "B=2",
        "--env",
        "A=1",
        "-e",
        "B=3",
        "-l",
        "team=x",
        "--container-label",
        "c=1",
        "-p",
        "8080:80",
        "-p",
        "published=53,target=53,protocol=udp",
        "--replicas-max-per-node",
        "2",
        "img",
    ]);
    let t = &spec.task_template;
    let rp = &t.restart_policy;
    assert_eq!(
        (rp.condition, rp.delay, rp.max_attempts, rp.window),
        (
            RestartCondition::OnFailure,
            Some(Duration::from_secs(2)),
            3,
            Some(Duration::from_secs(60))
        )
    );
    assert_eq!(t.placement.constraints, ["node.labels.az==a"]);
    assert_eq!(t.placement.preferences[0].spread, "node.labels.rack");
    assert_eq!(t.placement.max_replicas, 2);
    assert_eq!(t.container_spec.env, ["A=1", "B=3"], "the last value of a key wins");
    assert_eq!(spec.labels.get("team").map(String::as_str), Some("x"));
    assert_eq!(t.container_spec.labels.get("c").map(String::as_str), Some("1"));
    let ports: Vec<_> = spec
        .endpoint_spec
        .ports
        .iter()
        .map(|p| (p.published_port, p.target_port, p.protocol))
        .collect();
    assert_eq!(ports, [(53, 53, PortProtocol::Udp), (8080, 80, PortProtocol::Tcp)]);
}

#[test]
fn create_maps_the_process_runtime_flags() {
    let spec = create(&[
        "--health-cmd",
        "curl -f localhost",
        "--health-interval",
        "2s",
        "--health-retries",
        "3",
        "--health-timeout",
        "1s",
        "--health-start-period",
        "5s",
        "-w",
        "/srv",
        "-u",
        "app",
        "--hostname",
        "h",
        "--stop-signal",
        "SIGINT",
        "--stop-grace-period",
        "3s",
        "-t",
        "--read-only",
        "--init",
        "--limit-memory",
        "64m",
        "--reserve-cpu",
        "0.25",
        "--secret",
        "db",
        "--config",
        "source=app,target=/etc/app",
        "--endpoint-mode",
        "dnsrr",
        "img",
    ]);
    let c = &spec.task_template.container_spec;
    let hc = c.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, ["CMD-SHELL", "curl -f localhost"]);
    assert_eq!(
        (hc.interval, hc.retries, hc.timeout, hc.start_period),
        (
            Some(Duration::from_secs(2)),
            Some(3),
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(5))
        )
    );
    assert_eq!(
        (c.dir.as_str(), c.user.as_str(), c.hostname.as_str(), c.stop_signal.as_str()),
        ("/srv", "app", "h", "SIGINT")
    );
    assert_eq!(
        (c.tty, c.read_only, c.init, c.stop_grace_period),
        (true, true, Some(true), Some(Duration::from_secs(3)))
    );
    assert_eq!(spec.task_template.resources.limits.memory_bytes, 64 << 20);
    assert_eq!(spec.task_template.resources.reservations.nano_cpus, 250_000_000);
    assert_eq!(c.secrets[0].target, "db");
    assert_eq!(c.configs[0].target, "/etc/app");
    assert_eq!(spec.endpoint_spec.mode, EndpointMode::Dnsrr);
}

#[test]
fn create_refuses_docker_s_contradictions() {
    let err =
        |words: &[&str]| create_spec(&parse::<CreateArgs>(words), no_env).unwrap_err().to_string();
    assert_eq!(
        err(&["--mode", "global", "--replicas", "2", "img"]),
        "replicas can only be used with replicated or replicated-job mode"
    );
    assert_eq!(
        err(&["--no-healthcheck", "--health-cmd", "x", "img"]),
        "--no-healthcheck conflicts with --health-* options"
    );
    assert!(err(&["--mode", "replicated-job", "img"]).contains("not supported"));
    assert_eq!(create(&["--mode", "global", "img"]).mode, ServiceMode::Global);
}

#[test]
fn env_key_without_value_comes_from_the_cli_environment() {
    let args = parse::<CreateArgs>(&["-e", "TOKEN", "img"]);
    let spec = create_spec(&args, |k| (k == "TOKEN").then(|| "s3".to_owned())).unwrap();
    assert_eq!(spec.task_template.container_spec.env, ["TOKEN=s3"]);
}

#[test]
fn update_changes_only_what_its_flags_name() {
    let base = create(&[
        "--replicas",
        "3",
        "-e",
        "A=1",
        "-e",
        "B=2",
        "-l",
        "x=1",
        "--constraint",
        "node.role==worker",
        "-p",
        "8080:80",
        "img:1",
    ]);
    assert_eq!(update(&base, &[]), base, "no flag, no change");
    let next = update(
        &base,
        &[
            "--image",
            "img:2",
            "--replicas",
            "5",
            "--env-add",
            "C=3",
            "--env-rm",
            "A",
            "--label-rm",
            "x",
            "--label-add",
            "y=2",
        ],
    );
    assert_eq!(next.task_template.container_spec.image, "img:2");
    assert_eq!(next.replicas(), Some(5));
    assert_eq!(next.task_template.container_spec.env, ["B=2", "C=3"]);
    assert_eq!(next.labels.keys().collect::<Vec<_>>(), ["y"]);
    assert_eq!(next.update_config, base.update_config);
    assert_eq!(next.endpoint_spec, base.endpoint_spec);
}

#[test]
fn update_force_increments_force_update() {
    let base = create(&["img"]);
    let once = update(&base, &["--force"]);
    assert_eq!(once.task_template.force_update, 1);
    assert_eq!(update(&once, &["--force"]).task_template.force_update, 2);
}

#[test]
fn update_edits_lists_as_docker_does() {
    let base = create(&[
        "--constraint",
        "b==1",
        "--placement-pref",
        "spread=node.labels.az",
        "-p",
        "8080:80",
        "-p",
        "9090:90",
        "--secret",
        "s1",
        "img",
    ]);
    let next = update(
        &base,
        &[
            "--constraint-add",
            "a==1",
            "--constraint-rm",
            "b==1",
            "--placement-pref-rm",
            "spread=node.labels.az",
            "--placement-pref-add",
            "spread=node.labels.rack",
            "--publish-rm",
            "90",
            "--publish-add",
            "7070:70",
            "--secret-rm",
            "s1",
            "--secret-add",
            "source=s2,target=t2",
        ],
    );
    let t = &next.task_template;
    assert_eq!(t.placement.constraints, ["a==1"]);
    assert_eq!(
        t.placement.preferences.iter().map(|p| p.spread.as_str()).collect::<Vec<_>>(),
        ["node.labels.rack"]
    );
    let ports: Vec<_> =
        next.endpoint_spec.ports.iter().map(|p| (p.published_port, p.target_port)).collect();
    assert_eq!(ports, [(7070, 70), (8080, 80)]);
    assert_eq!(
        t.container_spec
            .secrets
            .iter()
            .map(|s| (s.secret_name.as_str(), s.target.as_str()))
            .collect::<Vec<_>>(),
        [("s2", "t2")]
    );
}

#[test]
fn update_rollout_and_restart_flags_keep_the_other_fields() {
    let base = create(&[
        "--update-parallelism",
        "2",
        "--update-delay",
        "5s",
        "--restart-max-attempts",
        "4",
        "img",
    ]);
    let next = update(
        &base,
        &[
            "--update-order",
            "start-first",
            "--restart-condition",
            "none",
            "--rollback-monitor",
            "9s",
        ],
    );
    assert_eq!(
        (next.update_config.parallelism, next.update_config.delay, next.update_config.order),
        (2, Duration::from_secs(5), UpdateOrder::StartFirst)
    );
    assert_eq!(
        (
            next.task_template.restart_policy.max_attempts,
            next.task_template.restart_policy.condition
        ),
        (4, RestartCondition::None)
    );
    assert_eq!(next.rollback_config.monitor, Duration::from_secs(9));
}

#[test]
fn update_health_follows_docker() {
    let base = create(&["--no-healthcheck", "img"]);
    assert_eq!(base.task_template.container_spec.healthcheck.as_ref().unwrap().test, ["NONE"]);
    let next = update(&base, &["--health-interval", "3s"]);
    let hc = next.task_template.container_spec.healthcheck.unwrap();
    assert!(hc.test.is_empty(), "NONE is cleared once a setting is given");
    assert_eq!(hc.interval, Some(Duration::from_secs(3)));
}

#[test]
fn update_refuses_replicas_on_a_global_service() {
    let base = create(&["--mode", "global", "img"]);
    let args = parse::<UpdateArgs>(&["--replicas", "2", "svc"]);
    let err = update_spec(&args.flags, &mut base.clone(), no_env).unwrap_err();
    assert_eq!(err.to_string(), "replicas can only be used with replicated mode");
}
