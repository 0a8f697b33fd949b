//! Unit tests of `crd`.

use super::*;

fn schema() -> serde_json::Value {
    let crd = serde_json::to_value(RedisInstance::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn crd_has_identity_of_the_contract() {
    let crd = RedisInstance::crd();
    assert_eq!(crd.spec.group, GROUP);
    assert_eq!(crd.spec.names.plural, "redisinstances");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["cdsredis".to_owned()][..])
    );
    assert_eq!(crd.spec.names.categories.as_deref(), Some(&["cds".to_owned()][..]));
    assert_eq!(crd.spec.scope, "Namespaced");
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.subresources.as_ref().unwrap().status.is_some());
    let cols: Vec<_> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(cols, ["Ready", "Phase", "Endpoint", "UUID", "Age"]);
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    let conds = &schema()["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conds["x-kubernetes-list-type"], "map");
    assert_eq!(conds["x-kubernetes-list-map-keys"], serde_json::json!(["type"]));
}

#[test]
fn every_spec_and_status_field_is_documented() {
    fn walk(path: &str, s: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
            for (name, p) in props {
                let here = format!("{path}.{name}");
                if p.get("description").and_then(|d| d.as_str()).is_none_or(str::is_empty) {
                    missing.push(here.clone());
                }
                walk(&here, p, missing);
                if let Some(items) = p.get("items") {
                    walk(&here, items, missing);
                }
            }
        }
    }
    let s = schema();
    let mut missing = vec![];
    walk("spec", &s["properties"]["spec"], &mut missing);
    walk("status", &s["properties"]["status"], &mut missing);
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}

/// Every description in the CRD, with its path.
fn descriptions(path: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                match child {
                    serde_json::Value::String(text) if k == "description" => out.push((path.to_owned(), text.clone())),
                    _ => descriptions(&format!("{path}.{k}"), child, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                descriptions(&format!("{path}[{i}]"), child, out);
            }
        }
        _ => {}
    }
}

#[test]
fn crd_descriptions_are_flowing_paragraphs() {
    let crd: serde_json::Value = serde_norway::from_str(crd_yaml().trim_start_matches("---\n")).unwrap();
    let mut all = vec![];
    descriptions("", &crd, &mut all);
    assert!(all.len() > 40, "{} descriptions", all.len());
    for (path, text) in &all {
        // A line break is only ever a paragraph break.
        assert!(
            !text.replace("\n\n", "").contains('\n') && !text.contains("\n\n\n"),
            "{path}: a line break inside a paragraph: {text:?}"
        );
        assert_eq!(text.trim(), text, "{path}");
    }
    // A doc comment of several lines reads as one sentence, words intact.
    let name = all
        .iter()
        .find(|(p, _)| p.ends_with(".spec.properties.instanceName"))
        .unwrap();
    assert!(
        name.1
            .contains("derived from the namespace, the object name and the first 8 characters"),
        "{}",
        name.1
    );
}

#[test]
fn reflow_joins_lines_and_keeps_paragraphs() {
    assert_eq!(reflow("one\ntwo"), "one two");
    assert_eq!(reflow("a\n b \n\n\nc\nd\n"), "a b\n\nc d");
    assert_eq!(reflow("single"), "single");
    let mut v = serde_json::json!({
        "description": "x\ny",
        "properties": { "description": { "description": "p\nq", "default": "keep\nme" } },
        "anyOf": [{ "description": "r\n\ns\nt" }],
    });
    reflow_descriptions(&mut v);
    assert_eq!(v["description"], "x y");
    assert_eq!(v["properties"]["description"]["description"], "p q");
    assert_eq!(v["properties"]["description"]["default"], "keep\nme");
    assert_eq!(v["anyOf"][0]["description"], "r\n\ns t");
}

#[test]
fn optional_enum_fields_keep_their_own_description() {
    let s = schema();
    let spec = &s["properties"]["spec"]["properties"];
    let status = &s["properties"]["status"]["properties"];
    for (field, words) in [
        (&spec["deletionPolicy"], "--default-deletion-policy"),
        (&spec["managementPolicy"], "ObserveOnly"),
        (
            &status["deletionPolicy"],
            "in force when `spec.deletionPolicy` is not set",
        ),
        (&status["phase"], "`Pending`, `Creating`"),
    ] {
        let text = field["description"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains(words), "{text:?} lacks {words:?}");
    }
}

#[test]
fn deletion_protection_is_an_optional_boolean_off_by_default() {
    let s = schema();
    let field = &s["properties"]["spec"]["properties"]["deletionProtection"];
    assert_eq!(field["type"], "boolean");
    assert!(field.get("default").is_none(), "no default written into objects");
    let required = s["properties"]["spec"]["required"].as_array().unwrap();
    assert!(!required.iter().any(|r| r == "deletionProtection"));
    let text = field["description"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("set this to false first, then delete"), "{text}");
    let spec: RedisInstanceSpec = serde_json::from_value(serde_json::json!({
        "regionId": "r", "vdcId": "v", "basePipeId": "p", "paasGoodsId": 1,
        "passwordSecretRef": { "name": "pw" },
    }))
    .unwrap();
    assert_eq!(spec.deletion_protection, None);
    assert!(serde_json::to_value(&spec).unwrap().get("deletionProtection").is_none());
}

#[test]
fn password_key_defaults_to_password() {
    let r: SecretKeyRef = serde_json::from_str(r#"{"name":"s"}"#).unwrap();
    assert_eq!(r.key, "password");
    let key = &schema()["properties"]["spec"]["properties"]["passwordSecretRef"]["properties"]["key"];
    assert_eq!(key["default"], "password");
}

#[test]
fn service_port_rule_is_the_clouds() {
    use crate::cds::wire::{DEFAULT_SERVICE_PORT, FORBIDDEN_SERVICE_PORTS, SERVICE_PORTS};
    let port = &schema()["properties"]["spec"]["properties"]["servicePort"];
    let rule = port["x-kubernetes-validations"][0]["rule"].as_str().unwrap();
    let forbidden = FORBIDDEN_SERVICE_PORTS.map(|p| p.to_string()).join(", ");
    assert_eq!(
        rule,
        format!(
            "self >= {} && self <= {} && !(self in [{forbidden}])",
            SERVICE_PORTS.start(),
            SERVICE_PORTS.end()
        )
    );
    let doc = port["description"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        doc.contains(&format!("uses {DEFAULT_SERVICE_PORT} when unset")),
        "{doc}"
    );
}

#[test]
fn architectures_are_spelled_as_the_cloud_names_them() {
    let all = [
        Architecture::MasterReplica,
        Architecture::Cluster,
        Architecture::EconomicalMasterReplica,
    ];
    let mapped: std::collections::HashSet<_> = all.iter().map(|&a| catalogue::Architecture::from(a)).collect();
    assert_eq!(
        mapped.len(),
        catalogue::Architecture::ALL.len(),
        "one cloud architecture each"
    );
    for a in all {
        assert_eq!(serde_json::to_value(a).unwrap(), a.to_string());
        assert_eq!(a.to_string(), catalogue::Architecture::from(a).name());
    }
    let flavor = Flavor {
        version: "5.0".into(),
        architecture: Architecture::Cluster,
        ram_gb: 8,
    };
    let wanted = catalogue::Flavor::from(&flavor);
    assert_eq!(wanted.architecture.cloud_type(), 2);
    assert_eq!(wanted.to_string(), flavor.to_string());
}
