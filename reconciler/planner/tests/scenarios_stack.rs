//! docs/swarm-semantics.md §12, stack deploy scenarios (S45, S46): the specs the planner
//! converts a stack into, the plan against what runs, and the order of its steps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed step should panic

mod support;

use reconciler_planner::diff_one;
use reconciler_planner::plan::Action;
use reconciler_planner::plan::StackPlan;
use reconciler_planner::steps::{ObjectKind, Step, steps};
use reconciler_types::stack::{IMAGE_LABEL, NAMESPACE_LABEL};
use reconciler_types::{StackPolicy, StackSpec};
use support::convert;

fn step(action: Action, kind: ObjectKind, name: &str) -> Step {
    Step { action, kind, name: name.to_owned() }
}

fn plan(desired: Option<&StackSpec>, actual: Option<&StackSpec>, prune: bool) -> StackPlan {
    let policy = StackPolicy { prune, ..StackPolicy::default() };
    let desired = desired.map(|d| StackSpec { policy, ..d.clone() });
    diff_one(desired.as_ref(), actual, policy).expect("a change")
}

#[test]
fn s45_stack_deploy_names_labels_and_creates_the_default_network_first() {
    let shop = convert(
        "shop",
        "services:\n  web:\n    image: nginx:1.27\n  db:\n    image: postgres\n",
        &[],
    );
    let names: Vec<&str> = shop.services.values().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shop_db", "shop_web"]);
    let network = &shop.networks["shop_default"];
    assert_eq!(network.driver, "overlay");
    assert_eq!(network.labels[NAMESPACE_LABEL], "shop");
    for (key, image) in [("web", "nginx:1.27"), ("db", "postgres")] {
        let svc = &shop.services[key];
        assert_eq!(svc.labels[NAMESPACE_LABEL], "shop", "{key}");
        assert_eq!(svc.labels[IMAGE_LABEL], image, "{key}");
        let container = &svc.task_template.container_spec;
        assert_eq!(container.labels[NAMESPACE_LABEL], "shop", "{key}");
        assert_eq!(svc.task_template.networks[0].target, "shop_default", "{key}");
    }
    let deploy = plan(Some(&shop), None, false);
    assert_eq!(
        steps(&deploy),
        [
            step(Action::Create, ObjectKind::Network, "shop_default"),
            step(Action::Create, ObjectKind::Service, "shop_db"),
            step(Action::Create, ObjectKind::Service, "shop_web"),
        ]
    );
}

const SHOP_WITH_CACHE: &str = "services:
  web:
    image: nginx
  db:
    image: postgres
  cache:
    image: redis
    networks: [back]
networks:
  back: {}
";

const SHOP_WITHOUT_CACHE: &str = "services:
  web:
    image: nginx
  db:
    image: postgres:17
networks:
  back: {}
";

#[test]
fn s46_prune_removes_the_service_first_and_leaves_the_network() {
    let before = convert("shop", SHOP_WITH_CACHE, &[]);
    let after = convert("shop", SHOP_WITHOUT_CACHE, &[]);
    let pruned = plan(Some(&after), Some(&before), true);
    assert_eq!(pruned.services["cache"].action, Action::Remove);
    assert_eq!(pruned.networks["shop_back"].action, Action::Orphan);
    assert!(!pruned.services.contains_key("web"), "an unchanged service is not updated");
    assert_eq!(
        steps(&pruned),
        [
            step(Action::Remove, ObjectKind::Service, "shop_cache"),
            step(Action::Update, ObjectKind::Service, "shop_db"),
        ]
    );
    let kept = plan(Some(&after), Some(&before), false);
    assert_eq!(kept.services["cache"].action, Action::Orphan);
    assert_eq!(kept.networks["shop_back"].action, Action::Orphan);
    assert_eq!(steps(&kept), [step(Action::Update, ObjectKind::Service, "shop_db")]);
}

/// A stack that leaves Git with prune on goes whole, as `docker stack rm` removes it:
/// services, then secrets, configs and networks.
#[test]
fn a_stack_removed_with_prune_goes_in_stack_rm_order() {
    let before = convert("shop", SHOP_WITH_CACHE, &[]);
    let removed = plan(None, Some(&before), true);
    assert_eq!(removed.action, Some(Action::Remove));
    let all = steps(&removed);
    let order: Vec<(ObjectKind, &str)> = all.iter().map(|s| (s.kind, s.name.as_str())).collect();
    assert_eq!(
        order,
        [
            (ObjectKind::Service, "shop_cache"),
            (ObjectKind::Service, "shop_db"),
            (ObjectKind::Service, "shop_web"),
            (ObjectKind::Network, "shop_back"),
            (ObjectKind::Network, "shop_default"),
        ]
    );
    assert!(steps(&plan(None, Some(&before), false)).is_empty(), "prune off: all orphaned");
}
