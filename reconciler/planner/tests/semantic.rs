//! Conversion with Docker's names and defaults, and the property that the diff of a stack
//! with itself is empty however it is formatted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed step should panic

mod support;

use proptest::prelude::*;
use reconciler_planner::diff::diff_stack;
use reconciler_types::{FailureAction, MountType, RestartCondition, ServiceMode, UpdateOrder};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{convert, convert_config, load_stack};

#[test]
fn convert_uses_docker_names_labels_and_defaults() {
    let spec = convert(
        "shop",
        "services:\n  web:\n    image: nginx\n    configs: [conf]\n    secrets: [pw]\n    volumes: [data:/data]\n    deploy:\n      update_config: { delay: 5s }\n  db:\n    image: pg\n    networks: [back]\nnetworks:\n  back: {}\nvolumes:\n  data: {}\nconfigs:\n  conf: { file: ./c.txt }\nsecrets:\n  pw: { file: ./pw.txt }\n",
        &[("c.txt", "x=1\n"), ("pw.txt", "hunter2")],
    );
    let web = &spec.services["web"];
    assert_eq!(web.name, "shop_web");
    assert_eq!(web.labels["com.docker.stack.namespace"], "shop");
    assert_eq!(web.labels["com.docker.stack.image"], "nginx");
    assert_eq!(web.task_template.container_spec.labels["com.docker.stack.namespace"], "shop");
    assert_eq!(web.mode, ServiceMode::Replicated { replicas: 1 });
    let nets = &web.task_template.networks;
    assert_eq!(
        (nets[0].target.as_str(), nets[0].aliases.clone()),
        ("shop_default", vec!["web".to_owned()])
    );
    assert_eq!(spec.services["db"].task_template.networks[0].target, "shop_back");
    assert!(spec.networks.contains_key("shop_default") && spec.networks.contains_key("shop_back"));
    assert_eq!(spec.networks["shop_back"].driver, "overlay");
    let c = &web.task_template.container_spec;
    assert!(c.configs[0].config_name.starts_with("shop_conf-"), "{}", c.configs[0].config_name);
    assert_eq!((c.configs[0].target.as_str(), c.configs[0].mode), ("/conf", 0o444));
    assert_eq!(
        (c.secrets[0].secret_name.as_str(), c.secrets[0].target.as_str()),
        ("shop_pw", "pw")
    );
    assert_eq!(c.mounts[0].source, "shop_data");
    assert_eq!(c.mounts[0].kind, MountType::Volume);
    let rp = &web.task_template.restart_policy;
    assert_eq!((rp.condition, rp.delay), (RestartCondition::Any, Some(Duration::from_secs(5))));
    let u = &web.update_config;
    assert_eq!(
        (u.parallelism, u.delay, u.monitor),
        (1, Duration::from_secs(5), Duration::from_secs(5))
    );
    assert_eq!((u.failure_action, u.order), (FailureAction::Pause, UpdateOrder::StopFirst));
    assert_ne!(spec.secrets["shop_pw"].digest, "hunter2");
}

#[test]
fn convert_reports_every_broken_reference() {
    let yaml = "services:\n  a:\n    image: x\n    secrets: [nope]\n  b:\n    image: y\n    configs: [gone]\n";
    let (config, files) = load_stack(yaml, &[]);
    let errors = convert_config("s", &config, &files).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["services.a.secrets", "services.b.configs"]);
}

#[derive(Debug, Clone)]
struct Svc {
    image: String,
    replicas: u64,
    env: BTreeMap<String, String>,
    ports: Vec<(u32, u32)>,
    labels: BTreeMap<String, String>,
    constraints: Vec<String>,
    parallelism: u64,
}

fn svc() -> impl Strategy<Value = Svc> {
    (
        "[a-z]{1,8}(:[0-9]{1,2})?",
        0u64..10,
        prop::collection::btree_map("[A-Z]{1,6}", "[a-z0-9]{0,6}", 0..4),
        prop::collection::btree_map(1000u32..2000, 1u32..65535, 0..3),
        prop::collection::btree_map("[a-z]{1,5}", "[a-z]{1,5}", 0..3),
        prop::collection::btree_set("node\\.labels\\.[a-z]{1,4} == [a-z]{1,4}", 0..3),
        0u64..4,
    )
        .prop_map(|(image, replicas, env, ports, labels, constraints, parallelism)| Svc {
            image,
            replicas,
            env,
            ports: ports.into_iter().collect(),
            labels,
            constraints: constraints.into_iter().collect(),
            parallelism,
        })
}

/// Block style, short syntax, env as a list, keys in one order.
fn render_a(services: &BTreeMap<String, Svc>) -> String {
    let mut y = String::from("version: \"3.8\"\nservices:\n");
    for (name, s) in services {
        y.push_str(&format!("  {name}:\n    image: \"{}\"\n", s.image));
        if !s.env.is_empty() {
            y.push_str("    environment:\n");
            for (k, v) in &s.env {
                y.push_str(&format!("      - \"{k}={v}\"\n"));
            }
        }
        if !s.ports.is_empty() {
            y.push_str("    ports:\n");
            for (p, t) in &s.ports {
                y.push_str(&format!("      - \"{p}:{t}\"\n"));
            }
        }
        y.push_str(&format!("    deploy:\n      replicas: {}\n", s.replicas));
        y.push_str(&format!("      update_config:\n        parallelism: {}\n", s.parallelism));
        if !s.labels.is_empty() {
            y.push_str("      labels:\n");
            for (k, v) in &s.labels {
                y.push_str(&format!("        {k}: \"{v}\"\n"));
            }
        }
        if !s.constraints.is_empty() {
            y.push_str("      placement:\n        constraints:\n");
            for c in &s.constraints {
                y.push_str(&format!("          - \"{c}\"\n"));
            }
        }
    }
    y
}

/// Flow style, long syntax, env as a map with half of it in an env file, keys reversed,
/// lists reversed.
fn render_b(services: &BTreeMap<String, Svc>) -> (String, Vec<(String, String)>) {
    let mut files = Vec::new();
    let mut y = String::from("services:\n");
    for (name, s) in services.iter().rev() {
        y.push_str(&format!("  {name}:\n"));
        let labels: Vec<String> =
            s.labels.iter().rev().map(|(k, v)| format!("{k}: '{v}'")).collect();
        let constraints: Vec<String> =
            s.constraints.iter().rev().map(|c| format!("'{c}'")).collect();
        y.push_str(&format!(
            "    deploy: {{ placement: {{ constraints: [{}] }}, labels: {{ {} }}, update_config: {{ parallelism: {} }}, replicas: {} }}\n",
            constraints.join(", "),
            labels.join(", "),
            s.parallelism,
            s.replicas
        ));
        let ports: Vec<String> = s
            .ports
            .iter()
            .rev()
            .map(|(p, t)| {
                format!("{{ target: {t}, published: {p}, protocol: tcp, mode: ingress }}")
            })
            .collect();
        y.push_str(&format!("    ports: [{}]\n", ports.join(", ")));
        let (in_file, inline): (Vec<_>, Vec<_>) =
            s.env.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        if !in_file.is_empty() {
            let body: String = in_file.iter().map(|(_, (k, v))| format!("{k}={v}\n")).collect();
            files.push((format!("{name}.env"), body));
            y.push_str(&format!("    env_file: {name}.env\n"));
        }
        let inline: Vec<String> = inline.iter().map(|(_, (k, v))| format!("{k}: '{v}'")).collect();
        y.push_str(&format!("    environment: {{ {} }}\n", inline.join(", ")));
        y.push_str(&format!("    image: '{}'\n", s.image));
    }
    (y, files)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn diff_of_a_stack_with_itself_is_empty_whatever_its_formatting(
        services in prop::collection::btree_map("[a-z]{1,6}", svc(), 1..4)
    ) {
        let a = convert("p", &render_a(&services), &[]);
        let (b_yaml, b_files) = render_b(&services);
        let files: Vec<(&str, &str)> = b_files.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let b = convert("p", &b_yaml, &files);
        let plan = diff_stack(&a, &b, true);
        prop_assert!(plan.services.is_empty(), "{:#?}", plan.services);
        prop_assert!(plan.networks.is_empty() && plan.configs.is_empty() && plan.secrets.is_empty());
        let same = diff_stack(&a, &a, true);
        prop_assert!(same.services.is_empty());
    }
}
