//! Validates `--output json` against `schema/json/plan.schema.json`.

use std::path::Path;

#[track_caller]
pub fn validate_plan(json: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/json/plan.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let instance: serde_json::Value = serde_json::from_str(json).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "plan does not match plan.schema.json:\n{}", errors.join("\n"));
}

#[test]
fn plan_schema_rejects_a_secret_content_diff() {
    let bad = r#"{"format":1,"desired":"a","actual":"b","warnings":[],
      "totals":{"created":0,"updated":1,"removed":0,"orphaned":0,"rollout_batches":0},
      "stacks":{"s":{"prune":false,"services":{},"networks":{},"configs":{},"actual_services":0,
        "counts":{"created":0,"updated":1,"removed":0,"orphaned":0,"rollout_batches":0},
        "secrets":{"s_x":{"name":"s_x","action":"update","fields":[],"content_changed":true,"content_diff":"-a\n+b"}}}}}"#;
    let result = std::panic::catch_unwind(|| validate_plan(bad));
    assert!(result.is_err(), "the schema must refuse a secret with a content diff");
}
