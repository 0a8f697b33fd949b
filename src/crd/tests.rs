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
