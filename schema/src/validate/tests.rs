//! Unit tests of the validator: one per keyword and Docker message shape. Expected messages
//! were checked against `docker stack config` (docker CLI 28.2.2).

use super::*;
use crate::Map;

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map>())
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

fn seq(items: Vec<Value>) -> Value {
    Value::Seq(items)
}

/// A document with one service `web` (image `x`) plus `extra` service keys.
fn web(version: &str, extra: Vec<(&str, Value)>) -> Value {
    let mut service = vec![("image", s("x"))];
    service.extend(extra);
    map(vec![("version", s(version)), ("services", map(vec![("web", map(service))]))])
}

fn first(doc: &Value, version: &str) -> String {
    match validate(doc, version) {
        Ok(()) => "OK".into(),
        Err(violations) => violations[0].message.clone(),
    }
}

#[test]
fn every_schema_compiles() {
    for (version, source) in VERSIONS.iter().zip(SOURCES) {
        let nodes = compile::compile(source);
        assert!(nodes.is_ok(), "{version}: {:?}", nodes.err());
        assert!(compiled(version).is_some());
    }
    assert!(compiled("3.14").is_none());
}

/// The tables built at build time hold exactly what the JSON Schemas say.
#[test]
fn static_tables_match_the_json_schemas() {
    for (version, source) in VERSIONS.iter().zip(SOURCES) {
        let nodes = compile::compile(source).unwrap();
        let schema = compiled(version).unwrap();
        let mut seen = std::collections::HashSet::new();
        same_node(&nodes, 0, &schema, schema.root, &mut seen);
    }
}

fn same_node(
    nodes: &[compile::Node],
    a: usize,
    schema: &schema::Schema,
    b: usize,
    seen: &mut std::collections::HashSet<(usize, usize)>,
) {
    use keywords::JsonType::*;
    if !seen.insert((a, b)) {
        return;
    }
    let (x, y) = (&nodes[a], schema.node(b));
    for t in [Null, Boolean, Integer, Number, String, Array, Object] {
        assert_eq!(x.types.contains(&t), y.has_type(t));
    }
    assert_eq!(x.types.is_empty(), !y.has_types());
    assert_eq!(x.types_text, y.types_text());
    assert_eq!(x.additional, y.additional);
    assert_eq!(x.required, y.required().collect::<Vec<_>>());
    assert_eq!(x.enumeration, y.enumeration().collect::<Vec<_>>());
    assert_eq!(x.enumeration.is_empty(), !y.has_enumeration());
    assert_eq!(x.format, y.format);
    assert_eq!(x.unique_items, y.unique_items);
    assert_eq!(x.minimum, y.minimum);
    let pairs = |p: Option<usize>, q: Option<usize>| {
        assert_eq!(p.is_some(), q.is_some());
        p.zip(q)
    };
    let mut children = Vec::new();
    children.extend(pairs(x.reference, y.reference()));
    children.extend(pairs(x.items, y.items()));
    let properties: Vec<_> = y.properties().collect();
    assert_eq!(x.properties.len(), properties.len());
    for ((name, p), (other, q)) in x.properties.iter().zip(properties) {
        assert_eq!(name, other);
        assert_eq!(y.property(name), Some(q));
        children.push((*p, q));
    }
    let patterns: Vec<_> = y.pattern_properties().collect();
    assert_eq!(x.pattern_properties.len(), patterns.len());
    for ((pattern, p), (other, q)) in x.pattern_properties.iter().zip(patterns) {
        assert_eq!(*pattern, other);
        children.push((*p, q));
    }
    let one_of: Vec<_> = y.one_of().collect();
    let any_of: Vec<_> = y.any_of().collect();
    assert_eq!((x.one_of.len(), x.any_of.len()), (one_of.len(), any_of.len()));
    assert_eq!((x.one_of.is_empty(), x.any_of.is_empty()), (!y.has_one_of(), !y.has_any_of()));
    children.extend(x.one_of.iter().copied().zip(one_of));
    children.extend(x.any_of.iter().copied().zip(any_of));
    for (p, q) in children {
        same_node(nodes, p, schema, q, seen);
    }
}

#[test]
fn valid_document_passes() {
    let doc = web("3.8", vec![("ports", seq(vec![s("80:80"), Value::Int(443)]))]);
    assert_eq!(validate(&doc, "3.8"), Ok(()));
}

#[test]
fn invalid_type_words() {
    let doc = web("3.8", vec![("image", Value::Int(1))]);
    assert_eq!(first(&doc, "3.8"), "services.web.image must be a string");
    let doc = web("3.8", vec![("deploy", map(vec![("replicas", s("2"))]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.deploy.replicas must be a integer");
    let doc = web("3.8", vec![("pid", Value::Int(1))]);
    assert_eq!(first(&doc, "3.8"), "services.web.pid must be a string or null");
    let doc = web("3.8", vec![("environment", map(vec![("A", Value::Bool(true))]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.environment.A must be a string, number or null");
    let doc = map(vec![("version", s("3.8")), ("services", seq(vec![]))]);
    assert_eq!(first(&doc, "3.8"), "services must be a mapping");
    let doc = web("3.8", vec![("cap_add", s("ALL"))]);
    assert_eq!(first(&doc, "3.8"), "services.web.cap_add must be a list");
    assert_eq!(human_type("[object,null]"), "mapping or null");
}

#[test]
fn additional_properties() {
    let doc = map(vec![("version", s("3.8")), ("service", map(vec![]))]);
    assert_eq!(first(&doc, "3.8"), "(root) Additional property service is not allowed");
    let doc = web("3.8", vec![("imagee", s("x"))]);
    assert_eq!(first(&doc, "3.8"), "services.web Additional property imagee is not allowed");
}

#[test]
fn version_gates() {
    let doc = web("3.2", vec![("configs", seq(vec![]))]);
    assert_eq!(first(&doc, "3.2"), "services.web Additional property configs is not allowed");
    assert_eq!(first(&web("3.3", vec![("configs", seq(vec![]))]), "3.3"), "OK");
    let doc = map(vec![("version", s("3.3")), ("x-common", Value::Null)]);
    assert_eq!(first(&doc, "3.3"), "(root) Additional property x-common is not allowed");
    let doc = map(vec![("version", s("3.4")), ("x-common", Value::Null)]);
    assert_eq!(first(&doc, "3.4"), "OK");
    let limits = |v| {
        web(
            v,
            vec![(
                "deploy",
                map(vec![("resources", map(vec![("limits", map(vec![("pids", Value::Int(5))]))]))]),
            )],
        )
    };
    assert_eq!(
        first(&limits("3.8"), "3.8"),
        "services.web.deploy.resources.limits Additional property pids is not allowed"
    );
    assert_eq!(first(&limits("3.9"), "3.9"), "OK");
}

#[test]
fn required() {
    let ulimits = |entry| web("3.8", vec![("ulimits", map(vec![("nofile", entry)]))]);
    let doc = ulimits(map(vec![("soft", Value::Int(1))]));
    assert_eq!(first(&doc, "3.8"), "services.web.ulimits.nofile hard is required");
    let doc = ulimits(map(vec![]));
    assert_eq!(first(&doc, "3.8"), "services.web.ulimits.nofile soft is required");
    let doc = web("3.8", vec![("volumes", seq(vec![map(vec![("source", s("a"))])]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.volumes.0 type is required");
}

#[test]
fn formats() {
    let doc = web("3.8", vec![("stop_grace_period", s("1d"))]);
    assert_eq!(
        first(&doc, "3.8"),
        "services.web.stop_grace_period Does not match format 'duration'"
    );
    let doc = web("3.8", vec![("ports", seq(vec![s("70000:80")]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.ports.0 Does not match format 'ports'");
    let doc = web("3.8", vec![("ports", seq(vec![Value::Float(32768.5)]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.ports.0 Does not match format 'ports'");
    let doc = web("3.8", vec![("ports", seq(vec![Value::Float(1.5)]))]);
    assert_eq!(first(&doc, "3.8"), "OK");
    let doc = web("3.8", vec![("expose", seq(vec![s("abc")]))]);
    assert_eq!(first(&doc, "3.8"), "OK");
    // Before 3.4 the healthcheck durations were plain strings.
    let doc = |v| web(v, vec![("healthcheck", map(vec![("interval", s("1d"))]))]);
    assert_eq!(first(&doc("3.3"), "3.3"), "OK");
    assert_eq!(
        first(&doc("3.4"), "3.4"),
        "services.web.healthcheck.interval Does not match format 'duration'"
    );
}

#[test]
fn unique_items() {
    let labels = seq(vec![s("a=1"), s("b=2"), s("a=1")]);
    let doc = web("3.8", vec![("deploy", map(vec![("labels", labels)]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.deploy.labels array items[0,2] must be unique");
    let doc = web("3.8", vec![("ports", seq(vec![Value::Int(80), Value::Float(80.0)]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.ports array items[0,1] must be unique");
    let doc = web("3.8", vec![("ports", seq(vec![Value::Int(80), s("80")]))]);
    assert_eq!(first(&doc, "3.8"), "OK");
    // From 3.2 on the service volumes list is not checked for duplicates.
    let doc = |v| web(v, vec![("volumes", seq(vec![s("/a:/a"), s("/a:/a")]))]);
    assert_eq!(first(&doc("3.1"), "3.1"), "services.web.volumes array items[0,1] must be unique");
    assert_eq!(first(&doc("3.2"), "3.2"), "OK");
}

#[test]
fn minimum_and_enum() {
    let tmpfs = map(vec![("size", Value::Int(-1))]);
    let mount = map(vec![("type", s("tmpfs")), ("target", s("/x")), ("tmpfs", tmpfs)]);
    let doc = web("3.8", vec![("volumes", seq(vec![mount]))]);
    assert_eq!(
        first(&doc, "3.8"),
        "services.web.volumes.0.tmpfs.size Must be greater than or equal to 0"
    );
    let update = map(vec![("order", s("x"))]);
    let doc = web("3.8", vec![("deploy", map(vec![("update_config", update)]))]);
    assert_eq!(
        first(&doc, "3.8"),
        "services.web.deploy.update_config.order services.web.deploy.update_config.order \
         must be one of the following: \"start-first\", \"stop-first\""
    );
}

#[test]
fn one_of_reports_the_closest_branch() {
    // Three bad keys score lower than a type mismatch: gojsonschema picks the number branch.
    let bad = |n: usize| {
        let keys: Vec<(&str, Value)> =
            ["a", "b", "c", "d"][..n].iter().map(|k| (*k, Value::Int(1))).collect();
        web("3.8", vec![("ports", seq(vec![map(keys)]))])
    };
    assert_eq!(first(&bad(2), "3.8"), "services.web.ports.0 Additional property a is not allowed");
    assert_eq!(first(&bad(3), "3.8"), "services.web.ports.0 must be a number");
    let doc = web("3.8", vec![("ports", seq(vec![Value::Bool(true)]))]);
    assert_eq!(first(&doc, "3.8"), "services.web.ports.0 must be a number");
    let doc = web("3.8", vec![("build", Value::Int(5))]);
    assert_eq!(first(&doc, "3.8"), "services.web.build must be a string");
    let doc = web("3.8", vec![("environment", Value::Int(5))]);
    assert_eq!(first(&doc, "3.8"), "services.web.environment must be a mapping");
}

#[test]
fn unencodable_documents() {
    let any = Value::AnyMap(vec![(Value::Int(1), s("a"))]);
    let doc = web("3.8", vec![("labels", any)]);
    let err = validate(&doc, "3.8").unwrap_err();
    assert_eq!(
        err,
        vec![Violation {
            path: "(root)".into(),
            message: "json: unsupported type: map[interface {}]interface {}".into()
        }]
    );
    let doc = web("3.8", vec![("x", Value::Float(f64::NEG_INFINITY))]);
    assert_eq!(first(&doc, "3.8"), "json: unsupported value: -Inf");
    let doc = web("3.8", vec![("x", Value::Float(f64::NAN))]);
    assert_eq!(first(&doc, "3.8"), "json: unsupported value: NaN");
}

#[test]
fn every_violation_is_listed() {
    let doc =
        web("3.8", vec![("image", Value::Int(1)), ("command", Value::Int(2)), ("bogus", s("x"))]);
    let messages: Vec<String> =
        validate(&doc, "3.8").unwrap_err().into_iter().map(|v| v.message).collect();
    assert_eq!(messages[0], "services.web.image must be a string");
    assert!(messages.contains(&"services.web.command must be a string".to_string()));
    assert!(
        messages.contains(&"services.web Additional property bogus is not allowed".to_string())
    );
    assert_eq!(messages.len(), 3);
}

#[test]
fn unsupported_version_is_reported() {
    let doc = map(vec![]);
    assert_eq!(first(&doc, "3.14"), "unsupported Compose file version: 3.14");
}

/// Random documents built from the schemas' own vocabulary.
fn arbitrary_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    const KEYS: &[&str] = &[
        "version",
        "services",
        "networks",
        "volumes",
        "secrets",
        "configs",
        "x-a",
        "web",
        "image",
        "ports",
        "deploy",
        "labels",
        "environment",
        "build",
        "context",
        "healthcheck",
        "interval",
        "test",
        "ulimits",
        "nofile",
        "soft",
        "hard",
        "target",
        "published",
        "mode",
        "type",
        "tmpfs",
        "size",
        "update_config",
        "order",
        "resources",
        "limits",
        "pids",
        "external",
        "name",
        "aliases",
        "a b",
        "zzz",
        "x-cluster-spec",
        "stop_grace_period",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..70_000).prop_map(Value::Int),
        prop_oneof![Just(1.5), Just(-0.5), Just(32768.5), Just(2.0)].prop_map(Value::Float),
        prop_oneof![
            Just("x"),
            Just("1d"),
            Just("10s"),
            Just("80:80"),
            Just("stop-first"),
            Just("")
        ]
        .prop_map(|t| Value::Str(t.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Seq),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |entries| Value::Map(
                    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )
            ),
        ]
    })
}

proptest::proptest! {
    /// The fast yes/no walk and the full walk always agree on validity.
    #[test]
    fn fast_and_full_walks_agree(doc in arbitrary_value(), minor in 0usize..14) {
        let schema = compiled(VERSIONS[minor]).unwrap();
        let full = engine::run(&schema, &doc).errors.is_empty();
        proptest::prop_assert_eq!(check::is_valid(&schema, schema.root, &doc), full);
    }
}
