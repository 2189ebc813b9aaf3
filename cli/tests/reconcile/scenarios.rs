//! The dry run on the examples and on hand-made edge cases.

use crate::support::{GitRepo, assert_golden, golden_all, reconcile};

const API: &str = "stacks/api/stack.yml";
const SHOP: &str = "stacks/shop/stack.yml";

fn examples() -> (GitRepo, String) {
    let mut repo = GitRepo::new().with_examples();
    let base = repo.commit("examples");
    (repo, base)
}

fn empty_state() -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().prefix("empty").suffix(".json").tempfile().unwrap();
    std::fs::write(f.path(), "{}").unwrap();
    f
}

#[test]
fn reconcile_creates_every_example_when_the_cluster_is_empty() {
    let (repo, _) = examples();
    let state = empty_state();
    let state_arg = state.path().to_str().unwrap();
    let run = reconcile(repo.path(), &["--state", state_arg]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // The state file's name is random; golden files use a fixed one.
    let stable = tempfile::tempdir().unwrap();
    let fixed = stable.path().join("empty.json");
    std::fs::write(&fixed, "{}").unwrap();
    assert_eq!(
        golden_all("examples_created", repo.path(), &["--state", fixed.to_str().unwrap()]),
        2
    );
}

#[test]
fn reconcile_exits_0_when_base_and_head_are_the_same() {
    let (repo, _) = examples();
    let run = reconcile(repo.path(), &["--base", "HEAD"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
}

#[test]
fn reconcile_shows_no_change_when_only_formatting_changes() {
    let (mut repo, base) = examples();
    repo.write(
        SHOP,
        r#"# Same shop, written differently: keys reordered, long syntax, flow style, env file.
version: "3.8"
secrets: { db_password: { file: ./secrets/db_password.txt } }
configs:
  db_tuning: { file: config/tuning.conf }
  web_settings: { file: "./config/../config/settings.toml" }
volumes: { db_data: {} }
networks:
  backend: { internal: true, driver: overlay }
  frontend: { driver: overlay }
services:
  db:
    deploy:
      resources: { reservations: { memory: "536870912" } }
      placement: { constraints: ["node.labels.storage == ssd"] }
      replicas: 1
    logging: { driver: json-file, options: { max-file: "3", max-size: 10m } }
    networks: [backend]
    secrets: [{ source: db_password }]
    configs: [{ source: db_tuning, target: /etc/postgresql/conf.d/tuning.conf }]
    volumes:
      - { type: volume, source: db_data, target: /var/lib/postgresql/data }
    environment: [POSTGRES_PASSWORD_FILE=/run/secrets/db_password, POSTGRES_DB=shop]
    image: "postgres:16-alpine"
  web:
    deploy:
      resources: { limits: { memory: 256M, cpus: "0.5" } }
      restart_policy: { condition: on-failure }
      update_config: { failure_action: rollback, order: start-first, delay: 10000ms, parallelism: 1 }
      replicas: 3
    logging: { driver: json-file, options: { max-size: 10m, max-file: "3" } }
    healthcheck: { retries: 3, timeout: 2s, interval: 10s, test: [CMD, wget, -qO-, "http://localhost:8080/health"] }
    networks: { frontend: {}, backend: {} }
    secrets: [db_password]
    configs: [{ source: web_settings, mode: 288, target: /etc/shop/settings.toml }]
    ports: [{ target: 8080, published: 8080, protocol: tcp, mode: ingress }]
    env_file: [web.env]
    environment:
      DATABASE_PASSWORD_FILE: /run/secrets/db_password
      LOG_LEVEL: info
    command: serve --port 8080
    image: ghcr.io/example/shop-web:1.4.2
"#,
    );
    repo.write("stacks/shop/web.env", "DATABASE_HOST=db\nDATABASE_NAME=shop\n");
    repo.commit("reformat shop");
    let run = reconcile(repo.path(), &["--base", &base]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
}

/// One edit of the api stack per field kind, each diffed against the examples.
const FIELD_EDITS: &[(&str, &str, &str)] = &[
    ("image", "orders-api:2.7.0", "orders-api:2.8.0"),
    ("replicas", "replicas: 6", "replicas: 8"),
    ("command", "[\"--listen\", \":9000\"]", "[\"--listen\", \":9100\"]"),
    ("entrypoint", "[\"/app/orders-api\"]", "[\"/app/orders\"]"),
    ("environment", "- RUST_LOG=info", "- RUST_LOG=info\n      - FEATURE_X=on"),
    ("user", "user: \"1000:1000\"", "user: \"1001:1001\""),
    ("working_dir", "working_dir: /app", "working_dir: /srv"),
    ("stop_grace_period", "stop_grace_period: 30s", "stop_grace_period: 1m"),
    ("healthcheck", "interval: 5s", "interval: 15s"),
    ("ports", "\"9000:9000\"", "\"9001:9000\""),
    ("update_config", "parallelism: 2", "parallelism: 3"),
    ("rollback_config", "monitor: 10s", "monitor: 20s"),
    ("restart_policy", "max_attempts: 3", "max_attempts: 5"),
    ("resources", "cpus: \"1.0\"", "cpus: \"1.5\""),
    (
        "constraints",
        "max_replicas_per_node: 2",
        "max_replicas_per_node: 2\n        constraints: [node.role == worker]",
    ),
    (
        "preferences",
        "max_replicas_per_node: 2",
        "max_replicas_per_node: 2\n        preferences: [{ spread: node.labels.zone }]",
    ),
    ("max_replicas_per_node", "max_replicas_per_node: 2", "max_replicas_per_node: 3"),
    ("deploy_labels", "com.example.service: orders", "com.example.service: orders-v2"),
    (
        "labels",
        "    user: \"1000:1000\"",
        "    user: \"1000:1000\"\n    labels: { com.example.tier: backend }",
    ),
    ("mode", "mode: replicated\n      replicas: 6", "mode: global"),
    ("hostname", "    user: \"1000:1000\"", "    user: \"1000:1000\"\n    hostname: orders"),
    (
        "extra_hosts",
        "    user: \"1000:1000\"",
        "    user: \"1000:1000\"\n    extra_hosts: [\"db:10.0.0.5\"]",
    ),
    (
        "logging",
        "    user: \"1000:1000\"",
        "    user: \"1000:1000\"\n    logging: { driver: syslog }",
    ),
    (
        "volumes",
        "    user: \"1000:1000\"",
        "    user: \"1000:1000\"\n    volumes: [{ type: tmpfs, target: /tmp }]",
    ),
    ("endpoint_mode", "endpoint_mode: vip", "endpoint_mode: dnsrr"),
    ("stop_signal", "stop_signal: SIGTERM", "stop_signal: SIGINT"),
];

#[test]
fn reconcile_shows_each_field_kind_when_changed_alone() {
    let (mut repo, base) = examples();
    let original = repo.read(API);
    let mut all = String::new();
    for (name, from, to) in FIELD_EDITS {
        assert!(original.contains(from), "edit {name}: {from:?} not in the api stack");
        repo.write(API, &original.replacen(from, to, 1));
        repo.commit(name);
        let run = reconcile(repo.path(), &["--base", &base, "--stack", "api"]);
        assert_eq!(run.code, 2, "edit {name}: {}", run.stderr);
        all.push_str(&format!("=== {name}\n{}\n", run.stdout));
    }
    assert_golden("field_kinds.txt", &all);
}

#[test]
fn reconcile_shows_a_line_diff_when_a_config_file_changes() {
    let (mut repo, base) = examples();
    repo.edit("stacks/monitoring/config/prometheus.yml", |t| t.replace("15s", "30s"));
    repo.commit("scrape less often");
    assert_eq!(golden_all("config_content", repo.path(), &["--base", &base]), 2);
}

#[test]
fn reconcile_never_shows_a_secret_value_when_a_secret_changes() {
    let (mut repo, base) = examples();
    let old = repo.read("stacks/shop/secrets/db_password.txt");
    let new = "s3cr3t-new-value-1234";
    repo.write("stacks/shop/secrets/db_password.txt", new);
    repo.commit("rotate the db password");
    assert_eq!(golden_all("secret_change", repo.path(), &["--base", &base]), 2);
    for fmt in ["text", "markdown", "json"] {
        let run = reconcile(repo.path(), &["--base", &base, "--output", fmt]);
        assert!(
            run.stdout.contains("content changed")
                || run.stdout.contains("\"content_changed\": true")
        );
        for value in [old.trim(), new] {
            assert!(!run.stdout.contains(value), "{fmt} output shows a secret value");
            assert!(!run.stderr.contains(value), "{fmt} errors show a secret value");
        }
    }
}

#[test]
fn reconcile_creates_and_orphans_when_a_service_is_renamed() {
    let (mut repo, base) = examples();
    repo.edit(SHOP, |t| t.replace("  web:\n", "  storefront:\n"));
    repo.commit("rename web");
    assert_eq!(golden_all("rename", repo.path(), &["--base", &base]), 2);
}

fn remove_services(repo: &mut GitRepo) {
    // shop loses db (half of its services: no warning); monitoring loses both of its
    // services for a new one (a warning); api is deleted (a warning).
    repo.edit(SHOP, |t| {
        let start = t.find("  db:\n").unwrap();
        let end = t.find("networks:\n  frontend").unwrap();
        format!("{}{}", &t[..start], &t[end..])
    });
    repo.write(
        "stacks/monitoring/stack.yml",
        "version: \"3.8\"\nservices:\n  probe:\n    image: flotilla/probe:1\n",
    );
    repo.remove("stacks/api");
}

#[test]
fn reconcile_removes_and_warns_when_prune_is_on() {
    let (mut repo, base) = examples();
    remove_services(&mut repo);
    repo.write("stacks/flotilla.yaml", "prune: true\n");
    repo.commit("remove things, prune on");
    assert_eq!(golden_all("prune_on", repo.path(), &["--base", &base]), 2);
}

#[test]
fn reconcile_orphans_when_prune_is_off() {
    let (mut repo, base) = examples();
    remove_services(&mut repo);
    repo.commit("remove things, prune off");
    assert_eq!(golden_all("prune_off", repo.path(), &["--base", &base]), 2);
}

#[test]
fn reconcile_exits_0_when_only_orphans_remain() {
    let (mut repo, base) = examples();
    repo.remove("stacks/api");
    repo.commit("drop api, prune off");
    let run = reconcile(repo.path(), &["--base", &base]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("? stack api: would orphan"), "{}", run.stdout);
}

#[test]
fn reconcile_reports_every_invalid_stack_when_several_are_broken() {
    let (mut repo, base) = examples();
    repo.edit(SHOP, |t| t.replace("replicas: 3", "replicas: many"));
    repo.edit(API, |t| t.replace("    user:", "    networks: [nowhere]\n    user:"));
    repo.commit("break two stacks");
    let run = reconcile(repo.path(), &["--base", &base]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_golden("invalid_stacks.stderr", &run.stderr);
}

#[test]
fn reconcile_refuses_files_outside_the_repository() {
    let (mut repo, _) = examples();
    repo.edit(API, |t| t.replace("    user:", "    env_file: ../../../../etc/passwd\n    user:"));
    repo.edit("stacks/monitoring/stack.yml", |t| {
        t.replace("./config/prometheus.yml", "../../../etc/hostname")
    });
    repo.commit("escape");
    let run = reconcile(repo.path(), &["--base", "HEAD"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("stack api:"), "{}", run.stderr);
    assert!(run.stderr.contains("stack monitoring:"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("outside the repository").count(), 2, "{}", run.stderr);
}

#[test]
fn reconcile_limits_the_plan_to_one_stack_when_asked() {
    let (mut repo, base) = examples();
    repo.edit(SHOP, |t| t.replace("replicas: 3", "replicas: 4"));
    repo.edit(API, |t| t.replace("replicas: 6", "replicas: 7"));
    repo.commit("scale two stacks");
    let run = reconcile(repo.path(), &["--base", &base, "--stack", "shop"]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.contains("scale 3 -> 4") && !run.stdout.contains("api"), "{}", run.stdout);
}

#[test]
fn reconcile_fails_when_the_revision_does_not_exist() {
    let (repo, _) = examples();
    let run = reconcile(repo.path(), &["--base", "no-such-branch"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no-such-branch"), "{}", run.stderr);
}

/// `-H URL`: the plan is made against the state a live manager exports; a fresh cluster
/// gives the same plan as an empty state snapshot (only the `actual` line differs).
#[test]
fn reconcile_diffs_against_a_live_manager() {
    let (repo, _) = examples();
    let root = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = runtime
        .block_on(reconciler_testkit::harness::ProcessCluster::start(binary, root.path(), 1))
        .unwrap();
    let host = cluster.managers[0].addr.clone();
    let ca = cluster.ca_file();
    let ca = ca.to_str().unwrap();
    let live = ["-H", &host, "--token", &cluster.token, "--tlscacert", ca, "--output", "json"];
    let run = reconcile(repo.path(), &live);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let state = empty_state();
    let from_file = ["--state", state.path().to_str().unwrap(), "--output", "json"];
    let expected = reconcile(repo.path(), &from_file);
    let plan = |text: &str| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        let actual = v["actual"].take();
        (v, actual)
    };
    let (live_plan, live_actual) = plan(&run.stdout);
    let (file_plan, _) = plan(&expected.stdout);
    assert_eq!(live_actual, format!("manager {host}"));
    assert_eq!(live_plan, file_plan);
    drop(cluster);
}

/// `-H URL` with secrets: the manager shows only salted digests, and the dry run salts Git's
/// value with the salt it reads, so an unchanged secret shows no change and a new value does.
#[test]
fn reconcile_compares_secrets_with_a_live_manager_through_their_salts() {
    let (mut repo, _) = examples();
    let root = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = runtime
        .block_on(reconciler_testkit::harness::ProcessCluster::start(binary, root.path(), 1))
        .unwrap();
    let value = repo.read("stacks/shop/secrets/db_password.txt");
    let secret = reconciler_api::operator::SecretCreate {
        name: "shop_db_password".into(),
        labels: [("com.docker.stack.namespace".to_owned(), "shop".to_owned())].into(),
        data: value.clone().into_bytes(),
    };
    let client = cluster.client(0).unwrap();
    let shown: reconciler_api::operator::SecretView =
        runtime.block_on(client.post("/v1/secrets", &secret)).unwrap();
    assert!(!shown.salt.is_empty(), "the manager salts the digest");
    let host = cluster.managers[0].addr.clone();
    let ca = cluster.ca_file();
    let ca = ca.to_str().unwrap();
    let live = ["-H", &host, "--token", &cluster.token, "--tlscacert", ca, "--output", "json"];
    let secrets_in = |stdout: &str| {
        let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
        v["stacks"]["shop"]["secrets"].clone()
    };
    let run = reconcile(repo.path(), &live);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let secrets = secrets_in(&run.stdout);
    assert!(secrets.get("shop_db_password").is_none(), "an unchanged secret: {secrets}");
    repo.write("stacks/shop/secrets/db_password.txt", &format!("{value}-rotated"));
    repo.commit("rotate the password");
    let run = reconcile(repo.path(), &live);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let changed = &secrets_in(&run.stdout)["shop_db_password"];
    assert_eq!(
        (changed["action"].as_str(), changed["content_changed"].as_bool()),
        (Some("update"), Some(true)),
        "{changed}"
    );
    assert!(!run.stdout.contains(&shown.digest) && !run.stdout.contains(&value));
    drop(cluster);
}
